//! The outbound task: the only writer of this node's share in Redis and the only publisher of its
//! events. It drains the link's queue in batches and sends each batch as one pipeline, in order:
//! consecutive share changes of an app become one `apply.lua` call (the last change of each key
//! only), each event one `SPUBLISH` of its envelope on its channel's lane.
//!
//! It also keeps the node alive in Redis (a heartbeat every [`HEARTBEAT`], which also finds dead
//! nodes), sends the removal webhooks whose delay is over, and re-announces the node's whole share
//! whenever Redis may have lost track of it: at start, after an outage, after a full queue, or when
//! a script says the share is stale. While Redis is unreachable it drops what it cannot send
//! (counting the events) and the node keeps serving its own clients.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use fred::clients::Pipeline;
use fred::prelude::*;
use fred::types::{ClusterHash, CustomCommand};
use pusher_wire::webhook::WebhookEvent;
use tokio::sync::mpsc;

use super::envelope::{self, Kind, Parts};
use super::link::{Forward, Outbound, Overflow};
use super::redis::Redis;
use super::scripts::{self, AppKeys};
use super::state::{self, Batch, Op};
use crate::apps::App;
use crate::node::Node;

/// How often a node tells Redis it is alive.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);
/// A node silent this long is dropped by the others: its members leave, its counts go.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(5);
/// After an outage, a node does not judge others for this long: every node is reconnecting (with
/// at most 2 s between attempts), and none has had the chance to send a heartbeat yet.
const RECONNECT_GRACE: Duration = Duration::from_secs(10);
/// How often the removals whose delay is over are collected.
const DUE_POLL: Duration = Duration::from_millis(250);
/// Most removals taken per poll.
const DUE_BATCH: usize = 500;
/// Most transitions sent in one pipeline.
const MAX_BATCH: usize = 4096;

/// One app as the outbound task sees it.
struct AppLink {
    app: Arc<App>,
    keys: AppKeys,
    /// The epoch of the share last announced.
    epoch: String,
}

/// Whether Redis answers, and whether it holds this node's share as the node last announced it.
#[derive(Debug, Default)]
struct Health {
    up: bool,
    announced: bool,
    /// From when this node may find other nodes dead.
    judge_from: Option<Instant>,
    /// The current outage has been logged (once per outage).
    down_logged: bool,
}

/// What a pipelined command was, to read its reply.
enum Sent {
    Apply(usize),
    Publish,
    Store,
}

/// The outbound task.
pub(crate) struct Sender {
    node: Arc<Node>,
    redis: Redis,
    apps: Vec<AppLink>,
    overflow: Arc<Overflow>,
    apply_sha: String,
    health: Health,
    delay_ms: u64,
}

impl Sender {
    /// The task for `node`'s apps.
    pub(crate) fn new(node: Arc<Node>, redis: Redis, overflow: Arc<Overflow>) -> Self {
        let apps = node
            .apps()
            .iter()
            .map(|app| AppLink { app: app.clone(), keys: AppKeys::new(&app.id), epoch: String::new() })
            .collect();
        let delay_ms = node.config.webhook_delay.as_millis() as u64;
        Self { node, redis, apps, overflow, apply_sha: String::new(), health: Health::default(), delay_ms }
    }

    /// Run until the node's connections are gone after shutdown, then flush what their closing
    /// caused and leave the cluster.
    pub(crate) async fn run(mut self, mut queue: mpsc::Receiver<Outbound>) {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut due = tokio::time::interval(DUE_POLL);
        due.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = self.node.shutdown.clone();
        let connections = self.node.connections.clone();
        let connections_gone = async {
            shutdown.cancelled().await;
            connections.wait().await;
        };
        tokio::pin!(connections_gone);
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            tokio::select! {
                biased;
                () = &mut connections_gone => break,
                _ = heartbeat.tick() => self.beat().await,
                _ = due.tick() => self.send_due_removals().await,
                received = queue.recv_many(&mut batch, MAX_BATCH) => {
                    if received == 0 {
                        break;
                    }
                    self.forward(&mut batch).await;
                }
            }
        }
        while !queue.is_empty() {
            queue.recv_many(&mut batch, MAX_BATCH).await;
            self.forward(&mut batch).await;
        }
        self.leave().await;
        self.redis.quit().await;
    }

    /// Heartbeat: note whether Redis answers, re-announce if needed, find dead nodes.
    async fn beat(&mut self) {
        if !self.redis.commands.is_connected() {
            self.went_down("not connected");
            return;
        }
        if !self.health.up {
            self.came_up();
        }
        for gone in self.follow_apps() {
            self.leave_app(&gone).await;
        }
        if self.overflow.take() {
            tracing::warn!("cluster queue overflowed: re-announcing this node's share");
            self.health.announced = false;
        }
        if !self.health.announced && !self.announce().await {
            return;
        }
        let judge = self.health.judge_from.is_some_and(|from| Instant::now() >= from);
        let timeout = NODE_TIMEOUT.as_millis().to_string();
        for i in 0..self.apps.len() {
            let link = &self.apps[i];
            let extra = [link.epoch.as_str(), timeout.as_str(), if judge { "1" } else { "0" }];
            let args = link.keys.args(self.redis.publish, self.node.id, self.delay_ms, &extra);
            match self.redis.eval(scripts::HEARTBEAT, &link.keys.keys, args).await {
                Ok(Value::Array(reply)) => {
                    let mut reply = reply.into_iter().filter_map(state::text);
                    if reply.next().as_deref() != Some("ok") {
                        self.health.announced = false;
                    }
                    for dead in reply {
                        tracing::warn!(node = dead, app = %self.apps[i].app.id, "node silent for too long: removed from the cluster");
                        self.node.metrics.cluster.nodes_reaped.inc();
                    }
                }
                Ok(_) => self.health.announced = false,
                Err(error) => return self.went_down(&error.to_string()),
            }
        }
        if let Err(error) = self.redis.renew_node_id(self.node.id).await {
            self.went_down(&error.to_string());
        }
    }

    fn came_up(&mut self) {
        if self.health.down_logged {
            tracing::info!("Redis answers again: re-announcing this node's share");
        }
        // The grace applies after an outage only: at a first connection the others' heartbeats
        // are as fresh as they ever are.
        let grace = if self.health.down_logged { RECONNECT_GRACE } else { Duration::ZERO };
        let judge_from = Some(Instant::now() + grace);
        self.health = Health { up: true, announced: false, judge_from, down_logged: false };
        self.node.metrics.cluster.redis_up.set(1);
    }

    fn went_down(&mut self, why: &str) {
        if !self.health.down_logged {
            tracing::warn!(
                why,
                "Redis unreachable: this node keeps serving its own clients; the other nodes' events and changes wait for it"
            );
            self.node.metrics.cluster.redis_outages.inc();
            self.health.down_logged = true;
        }
        self.health.up = false;
        self.health.announced = false;
        self.node.metrics.cluster.redis_up.set(0);
    }

    /// Replace this node's share in Redis with its whole current share, app by app.
    async fn announce(&mut self) -> bool {
        self.node.metrics.cluster.resyncs.inc();
        // Loaded again every time: Redis may have restarted and forgotten it.
        match self.redis.commands.script_load::<String, _>(scripts::APPLY).await {
            Ok(sha) => self.apply_sha = sha,
            Err(error) => {
                self.went_down(&error.to_string());
                return false;
            }
        }
        for i in 0..self.apps.len() {
            let link = &self.apps[i];
            let share = state::share_to_json(&link.app.hub.local_share());
            let epoch = format!("{:016x}", rand::random::<u64>());
            let args = link.keys.args(self.redis.publish, self.node.id, self.delay_ms, &[&epoch, &share]);
            match self.redis.eval(scripts::ANNOUNCE, &link.keys.keys, args).await {
                Ok(reply) => {
                    self.decided(i, reply);
                    self.apps[i].epoch = epoch;
                }
                Err(error) => {
                    self.went_down(&error.to_string());
                    return false;
                }
            }
        }
        self.health.announced = true;
        true
    }

    /// Send one batch, in order, as one pipeline.
    async fn forward(&mut self, batch: &mut Vec<Outbound>) {
        if !(self.health.up && self.health.announced) {
            // The coming announcement covers the share changes; the events are lost.
            let events = batch.drain(..).filter(|item| !item.forward.is_share_change()).count();
            self.node.metrics.cluster.events_lost.inc_by(events as u64);
            return;
        }
        let pipeline = self.redis.commands.pipeline();
        let mut sent = Vec::new();
        let mut changes: Vec<(usize, Batch)> = Vec::new();
        for Outbound { app, forward } in batch.drain(..) {
            let Some(index) = self.apps.iter().position(|link| *link.app.id == *app) else { continue };
            match share_change(forward) {
                Ok(op) => match changes.iter_mut().find(|(i, _)| *i == index) {
                    Some((_, changes)) => changes.push(op),
                    None => {
                        let mut first = Batch::default();
                        first.push(op);
                        changes.push((index, first));
                    }
                },
                Err(event) => {
                    // Share changes made before this event reach Redis before it.
                    self.queue_changes(&pipeline, &mut changes, &mut sent).await;
                    self.queue_event(&pipeline, index, event, &mut sent).await;
                }
            }
        }
        self.queue_changes(&pipeline, &mut changes, &mut sent).await;
        if sent.is_empty() {
            return;
        }
        let replies = pipeline.try_all::<Value>().await;
        for (what, reply) in sent.into_iter().zip(replies) {
            match (what, reply) {
                (Sent::Apply(i), Ok(reply)) => self.decided(i, reply),
                (Sent::Publish, Ok(_)) => {
                    self.node.metrics.cluster.events_forwarded.inc();
                }
                (Sent::Store, Ok(_)) => {}
                (Sent::Publish, Err(error)) => {
                    self.node.metrics.cluster.events_lost.inc();
                    self.failed(&error);
                }
                (_, Err(error)) => self.failed(&error),
            }
        }
    }

    fn failed(&mut self, error: &Error) {
        if matches!(error.kind(), ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled) {
            self.went_down(&error.to_string());
        } else {
            // NOSCRIPT after a restart, or anything unexpected: start again from a clean share.
            tracing::warn!(%error, "cluster script failed: re-announcing this node's share");
            self.health.announced = false;
        }
    }

    async fn queue_changes(
        &self,
        pipeline: &Pipeline<Client>,
        changes: &mut Vec<(usize, Batch)>,
        sent: &mut Vec<Sent>,
    ) {
        for (i, batch) in changes.drain(..) {
            if batch.is_empty() {
                continue;
            }
            let link = &self.apps[i];
            let args =
                link.keys.args(self.redis.publish, self.node.id, self.delay_ms, &[&link.epoch, &batch.to_json()]);
            // EVALSHA sha numkeys key...: the slot is the first key's (offset 2).
            let evalsha = CustomCommand::new_static("EVALSHA", ClusterHash::Offset(2), false);
            let mut command: Vec<String> = vec![self.apply_sha.clone(), link.keys.keys.len().to_string()];
            command.extend(link.keys.keys.iter().cloned());
            command.extend(args);
            if pipeline.custom::<(), String>(evalsha, command).await.is_ok() {
                sent.push(Sent::Apply(i));
            }
        }
    }

    async fn queue_event(&self, pipeline: &Pipeline<Client>, i: usize, event: Forward, sent: &mut Vec<Sent>) {
        let app = &self.apps[i];
        let (kind, target, frame, except, cached) = match &event {
            Forward::Event { channel, frame, except, cached } => {
                (Kind::Event, channel, Some(frame), except.as_ref(), cached.as_deref())
            }
            Forward::ClientEvent { channel, frame } => (Kind::ClientEvent, channel, Some(frame), None, None),
            Forward::UserEvent { user_id, frame, except } => {
                (Kind::UserEvent, user_id, Some(frame), except.as_ref(), None)
            }
            Forward::Terminate { user_id } => (Kind::Terminate, user_id, None, None, None),
            _ => return,
        };
        let message = envelope::encode(Parts {
            kind,
            origin: self.node.id,
            app: &app.app.id,
            target,
            except,
            data: cached.unwrap_or(""),
            frame: frame.map_or(&b""[..], |f| f.as_bytes()),
        });
        let lane = scripts::lane(lane_of(&app.app.id, target));
        let publish = CustomCommand::new_static(self.redis.publish, ClusterHash::FirstKey, false);
        if pipeline.custom::<(), Value>(publish, vec![lane.into(), message.clone().into()]).await.is_ok() {
            sent.push(Sent::Publish);
        }
        if cached.is_some() {
            // Kept in Redis too, for nodes that start later: `{expires unix ms}:{envelope}`.
            let expires = unix_ms() + pusher_wire::limits::CACHE_TTL_SECS * 1000;
            let mut value = BytesMut::new();
            value.put_slice(format!("{expires}:").as_bytes());
            value.put_slice(&message);
            let hset = CustomCommand::new_static("HSET", ClusterHash::FirstKey, false);
            let args: Vec<Value> = vec![app.keys.cache.as_str().into(), target.as_ref().into(), value.freeze().into()];
            if pipeline.custom::<(), Value>(hset, args).await.is_ok() {
                sent.push(Sent::Store);
            }
        }
    }

    /// Read a script's reply: `stale` asks for a re-announcement; the decided additions become
    /// webhooks now.
    fn decided(&mut self, i: usize, reply: Value) {
        let Value::Array(reply) = reply else { return };
        let mut reply = reply.into_iter().filter_map(state::text);
        if reply.next().as_deref() != Some("ok") {
            self.health.announced = false;
            return;
        }
        let webhooks = &self.apps[i].app.webhooks;
        while let (Some(kind), Some(field)) = (reply.next(), reply.next()) {
            if let Some(event) = addition(&kind, &field) {
                webhooks.emit_decided(event);
            }
        }
    }

    /// Send the removals whose delay is over (any node may take them; each is taken once).
    async fn send_due_removals(&mut self) {
        if !(self.health.up && self.health.announced) {
            return;
        }
        for i in 0..self.apps.len() {
            let link = &self.apps[i];
            let limit = DUE_BATCH.to_string();
            let args = link.keys.args(self.redis.publish, self.node.id, self.delay_ms, &[&limit]);
            match self.redis.eval(scripts::DUE, &link.keys.keys, args).await {
                Ok(Value::Array(due)) => removals(&self.apps[i].app, due),
                Ok(_) => {}
                Err(error) => return self.went_down(&error.to_string()),
            }
        }
    }

    /// Leave the cluster: this node's share is released and deleted; when it was the last node it
    /// sends every pending removal itself.
    async fn leave(&mut self) {
        if !self.health.up {
            return;
        }
        for link in &self.apps {
            self.leave_app(link).await;
        }
        self.redis.release_node_id(self.node.id).await;
        tracing::info!("left the cluster");
    }

    /// This node no longer hosts `link`'s app (it left, or a reload removed the app).
    async fn leave_app(&self, link: &AppLink) {
        let args = link.keys.args(self.redis.publish, self.node.id, self.delay_ms, &[]);
        if let Ok(Value::Array(pending)) = self.redis.eval(scripts::LEAVE, &link.keys.keys, args).await {
            removals(&link.app, pending);
        }
    }

    /// Follow the node's apps after a reload: a new app is announced, a removed one is returned to
    /// leave.
    fn follow_apps(&mut self) -> Vec<AppLink> {
        let current = self.node.apps();
        let (kept, gone): (Vec<AppLink>, Vec<AppLink>) = std::mem::take(&mut self.apps)
            .into_iter()
            .partition(|link| current.by_id(&link.app.id).is_some_and(|app| Arc::ptr_eq(app, &link.app)));
        self.apps = kept;
        for app in current.iter() {
            if !self.apps.iter().any(|link| Arc::ptr_eq(&link.app, app)) {
                self.apps.push(AppLink { app: app.clone(), keys: AppKeys::new(&app.id), epoch: String::new() });
                self.health.announced = false;
            }
        }
        gone
    }
}

/// A share change as an op, or the event it is.
fn share_change(forward: Forward) -> Result<Op, Forward> {
    Ok(match forward {
        Forward::Count { channel, subscribers } => Op::Count { channel: channel.into(), subscribers },
        Forward::MemberAdded { channel, user_id, info } => {
            Op::MemberAdded { channel: channel.into(), user_id: user_id.into(), info }
        }
        Forward::MemberRemoved { channel, user_id } => {
            Op::MemberRemoved { channel: channel.into(), user_id: user_id.into() }
        }
        Forward::SignedIn { user_id } => Op::SignedIn { user_id: user_id.into() },
        Forward::SignedOut { user_id } => Op::SignedOut { user_id: user_id.into() },
        event => return Err(event),
    })
}

/// The webhook of a decided addition: `v` channel, or `m` channel \n user.
fn addition(kind: &str, field: &str) -> Option<WebhookEvent> {
    match kind {
        "v" => Some(WebhookEvent::ChannelOccupied { channel: field.into() }),
        "m" => {
            let (channel, user_id) = field.split_once('\n')?;
            Some(WebhookEvent::MemberAdded { channel: channel.into(), user_id: user_id.into() })
        }
        _ => None,
    }
}

/// The webhooks of removals taken from the pending set: `v\nchannel` or `m\nchannel\nuser`.
fn removals(app: &App, due: Vec<Value>) {
    for entry in due.into_iter().filter_map(state::text) {
        let event = match entry.split_once('\n') {
            Some(("v", channel)) => WebhookEvent::ChannelVacated { channel: channel.into() },
            Some(("m", field)) => {
                let Some((channel, user_id)) = field.split_once('\n') else { continue };
                WebhookEvent::MemberRemoved { channel: channel.into(), user_id: user_id.into() }
            }
            _ => continue,
        };
        app.webhooks.emit_decided(event);
    }
}

/// The lane of an app's channel (or user): always the same one, so its events stay in order.
fn lane_of(app: &str, target: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    (app, target).hash(&mut hasher);
    hasher.finish() % scripts::LANES
}

/// Milliseconds since the Unix epoch, for cached events' expiry in Redis.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decided_additions_and_due_removals_become_webhooks() {
        assert_eq!(addition("v", "news"), Some(WebhookEvent::ChannelOccupied { channel: "news".into() }));
        assert_eq!(
            addition("m", "presence-r\nuser\nwith a newline"),
            Some(WebhookEvent::MemberAdded { channel: "presence-r".into(), user_id: "user\nwith a newline".into() })
        );
        assert_eq!(addition("x", "news"), None);
    }

    #[test]
    fn a_channel_keeps_its_lane() {
        assert_eq!(lane_of("1", "news"), lane_of("1", "news"));
        assert!((0..100).map(|i| lane_of("1", &format!("c{i}"))).collect::<std::collections::HashSet<_>>().len() > 4);
    }
}
