//! The inbound task: everything the other nodes do reaches this node's hubs here, through
//! [`Hub::apply`](crate::hub::Hub::apply).
//!
//! Events arrive on the lanes as envelopes; this node's own are skipped (its subscribers were
//! served when it published). Share changes arrive on each app's state channel, numbered per node
//! (an epoch, then a sequence number): the next number is applied, an older one ignored, and a gap
//! or a new epoch makes this node re-read that node's whole share from Redis. Every share is read
//! again after a reconnection or when the subscriber fell behind. A node that vanishes from Redis
//! without saying goodbye (Redis lost its data) is kept for [`MISSING_GRACE`], time for it to
//! announce itself again, so that a Redis restart does not make every member leave and come back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::{ClusterHash, CustomCommand, Message};
use pusher_wire::ChannelName;
use tokio::sync::broadcast::error::RecvError;

use super::envelope::{self, Kind};
use super::outbound;
use super::redis::Redis;
use super::scripts::{self, AppKeys};
use super::state::{self, Op, Snapshot, StateMessage};
use crate::apps::App;
use crate::hub::{NodeId, Remote};
use crate::node::Node;

/// How long a node missing from Redis stays in this node's view before it counts as gone.
pub(crate) const MISSING_GRACE: Duration = Duration::from_secs(10);

/// What this node knows of another node's share.
#[derive(Debug)]
struct Peer {
    epoch: String,
    seq: u64,
    /// Not found in Redis since then.
    missing_since: Option<Instant>,
}

/// One app as the inbound task sees it.
struct AppView {
    app: Arc<App>,
    keys: AppKeys,
    peers: HashMap<NodeId, Peer>,
}

/// The inbound task.
pub(crate) struct Receiver {
    node: Arc<Node>,
    redis: Redis,
    /// By state channel name.
    views: HashMap<String, AppView>,
    /// The channels subscribed to: the lanes, then every app's state channel.
    channels: Vec<String>,
}

impl Receiver {
    /// The task for `node`'s apps.
    pub(crate) fn new(node: Arc<Node>, redis: Redis) -> Self {
        let views: HashMap<String, AppView> = node
            .apps()
            .iter()
            .map(|app| {
                let keys = AppKeys::new(&app.id);
                (keys.state_channel.clone(), AppView { app: app.clone(), keys, peers: HashMap::new() })
            })
            .collect();
        let channels = (0..scripts::LANES).map(scripts::lane).chain(views.keys().cloned()).collect();
        Self { node, redis, views, channels }
    }

    /// Run until shutdown.
    pub(crate) async fn run(mut self) {
        let mut messages = self.redis.subscriber.message_rx();
        let mut connections = self.redis.subscriber.reconnect_rx();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if self.redis.subscriber.is_connected() {
            self.subscribe_and_read().await;
        }
        loop {
            tokio::select! {
                () = self.node.shutdown.cancelled() => return,
                message = messages.recv() => match message {
                    Ok(message) => self.handle(message).await,
                    Err(RecvError::Lagged(lost)) => {
                        tracing::warn!(lost, "cluster subscriber fell behind: messages lost; re-reading every share");
                        self.node.metrics.cluster.events_lost.inc_by(lost);
                        self.read_all().await;
                    }
                    Err(RecvError::Closed) => return,
                },
                connected = connections.recv() => match connected {
                    Ok(_) | Err(RecvError::Lagged(_)) => self.subscribe_and_read().await,
                    Err(RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    self.follow_apps().await;
                    self.forget_missing();
                }
            }
        }
    }

    /// (Re)subscribe to every channel, then read every share: what was published while this node
    /// was not listening is in the shares.
    async fn subscribe_and_read(&mut self) {
        for channel in &self.channels {
            if let Err(error) = subscribe(&self.redis.subscriber, self.redis.sharded(), channel).await {
                tracing::debug!(%error, channel, "cluster subscription failed; retried on the next connection");
                return;
            }
        }
        self.read_all().await;
    }

    async fn handle(&mut self, message: Message) {
        let Some(payload) = bytes_of(message.value) else { return };
        if message.channel.starts_with("herald:events:") {
            self.deliver(payload);
        } else if let Some(view) = self.views.get_mut(&*message.channel) {
            let Ok(change) = serde_json::from_slice::<StateMessage>(&payload) else { return };
            change_of(&self.node, &self.redis, view, change).await;
        }
    }

    /// An event from another node, for this node's subscribers.
    fn deliver(&self, payload: bytes::Bytes) {
        let envelope = match envelope::decode(payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::debug!(%error, "ignored a message on a cluster lane");
                return;
            }
        };
        if envelope.origin == self.node.id {
            return;
        }
        let apps = self.node.apps();
        let Some(app) = apps.by_id(&envelope.app) else { return };
        let except = envelope.except.as_ref().and_then(|socket_id| self.node.conn_id_of(socket_id));
        let now = Instant::now();
        let frame = &envelope.frame;
        let delivered = match envelope.kind {
            Kind::Event => {
                let Ok(channel) = ChannelName::parse(&envelope.target) else { return };
                app.hub.apply(Remote::Event { channel: &channel, frame, data: &envelope.data, except }, now)
            }
            Kind::ClientEvent => app.hub.apply(Remote::ClientEvent { channel: &envelope.target, frame }, now),
            Kind::UserEvent => app.hub.apply(Remote::UserEvent { user_id: &envelope.target, frame, except }, now),
            Kind::Terminate => app.hub.apply(Remote::Terminate { user_id: &envelope.target }, now),
        };
        self.node.metrics.cluster.events_received.inc();
        self.node.metrics.deliveries.inc_by(delivered as u64);
    }

    /// Read every other node's share of every app, replacing what was known.
    async fn read_all(&mut self) {
        self.node.metrics.cluster.resyncs.inc();
        for view in self.views.values_mut() {
            if !read_view(&self.node, &self.redis, view).await {
                return;
            }
        }
        self.count_peers();
    }

    /// Follow the node's apps after a reload: listen to a new app's changes and read its shares;
    /// forget a removed app.
    async fn follow_apps(&mut self) {
        let current = self.node.apps();
        self.views.retain(|_, view| current.by_id(&view.app.id).is_some_and(|app| Arc::ptr_eq(app, &view.app)));
        let views = &self.views;
        self.channels.retain(|channel| channel.starts_with("herald:events:") || views.contains_key(channel));
        for app in current.iter() {
            if self.views.values().any(|view| Arc::ptr_eq(&view.app, app)) {
                continue;
            }
            let keys = AppKeys::new(&app.id);
            let channel = keys.state_channel.clone();
            let mut view = AppView { app: app.clone(), keys, peers: HashMap::new() };
            if subscribe(&self.redis.subscriber, self.redis.sharded(), &channel).await.is_ok() {
                read_view(&self.node, &self.redis, &mut view).await;
            }
            self.channels.push(channel.clone());
            self.views.insert(channel, view);
        }
    }

    /// Drop the nodes missing from Redis for longer than [`MISSING_GRACE`].
    fn forget_missing(&mut self) {
        let now = Instant::now();
        for view in self.views.values_mut() {
            let gone: Vec<NodeId> = view
                .peers
                .iter()
                .filter(|(_, peer)| peer.missing_since.is_some_and(|since| now.duration_since(since) >= MISSING_GRACE))
                .map(|(node, _)| *node)
                .collect();
            for node in gone {
                tracing::info!(node = node.0, app = %view.app.id, "node no longer in Redis: removed from this node's view");
                forget(view, node, now);
            }
        }
        self.count_peers();
    }

    fn count_peers(&self) {
        let peers = self.views.values().map(|view| view.peers.len()).max().unwrap_or(0);
        self.node.metrics.cluster.peers.set(peers as i64);
    }
}

/// Apply a share change another node published, or re-read its share when it cannot be applied.
async fn change_of(node: &Node, redis: &Redis, view: &mut AppView, change: StateMessage) {
    let peer_id = NodeId(change.node);
    if peer_id == node.id {
        return;
    }
    let now = Instant::now();
    if change.gone {
        forget(view, peer_id, now);
        return;
    }
    let Some(epoch) = change.epoch else { return };
    match view.peers.get_mut(&peer_id) {
        Some(peer) if peer.epoch == epoch && change.seq <= peer.seq => {}
        Some(peer) if peer.epoch == epoch && change.seq == peer.seq + 1 => {
            peer.seq = change.seq;
            for op in change.ops.iter().filter_map(Op::from_json) {
                apply_op(&view.app, peer_id, op, now);
            }
        }
        // A new epoch (the node announced its whole share) or a gap: read the share.
        _ => reread(node, redis, view, peer_id).await,
    }
}

async fn reread(node: &Node, redis: &Redis, view: &mut AppView, peer: NodeId) {
    node.metrics.cluster.resyncs.inc();
    let args = view.keys.args(redis.publish, node.id, 0, &[&peer.0.to_string()]);
    match redis.eval(scripts::SNAPSHOT, &view.keys.keys, args).await {
        Ok(Value::Array(snapshots)) => {
            let now = Instant::now();
            match snapshots.into_iter().find_map(Snapshot::from_value) {
                Some(snapshot) => adopt(view, peer, snapshot, now),
                None => {
                    if let Some(known) = view.peers.get_mut(&peer) {
                        known.missing_since.get_or_insert(now);
                    }
                }
            }
        }
        Ok(_) => {}
        Err(error) => tracing::debug!(%error, "cannot read a node's share; retried on the next connection"),
    }
}

/// Read every other node's share of `view`'s app, replacing what was known; whether Redis answered.
async fn read_view(node: &Node, redis: &Redis, view: &mut AppView) -> bool {
    let args = view.keys.args(redis.publish, node.id, 0, &[""]);
    let snapshots = match redis.eval(scripts::SNAPSHOT, &view.keys.keys, args).await {
        Ok(Value::Array(snapshots)) => snapshots,
        Ok(_) => return true,
        Err(error) => {
            tracing::debug!(%error, "cannot read the cluster's shares; retried on the next connection");
            return false;
        }
    };
    let now = Instant::now();
    let mut found = Vec::new();
    for snapshot in snapshots.into_iter().filter_map(Snapshot::from_value) {
        let peer = NodeId(snapshot.node);
        found.push(peer);
        adopt(view, peer, snapshot, now);
    }
    for (peer, known) in &mut view.peers {
        if !found.contains(peer) {
            known.missing_since.get_or_insert(now);
        }
    }
    read_caches(redis, view).await;
    true
}

/// Keep the last events of cache channels published before this node was listening.
async fn read_caches(redis: &Redis, view: &AppView) {
    let hgetall = CustomCommand::new_static("HGETALL", ClusterHash::FirstKey, false);
    let Ok(Value::Array(flat)) = redis.commands.custom::<Value, _>(hgetall, vec![view.keys.cache.clone()]).await else {
        return;
    };
    let unix_now = outbound::unix_ms();
    let now = Instant::now();
    let mut expired = Vec::new();
    let mut flat = flat.into_iter();
    while let (Some(channel), Some(value)) = (flat.next(), flat.next()) {
        let (Some(channel), Some(value)) = (state::text(channel), bytes_of(value)) else { continue };
        let Some((expires_ms, message)) = split_cached(&value) else { continue };
        if expires_ms <= unix_now {
            expired.push(channel);
            continue;
        }
        let (Ok(name), Ok(envelope)) = (ChannelName::parse(&channel), envelope::decode(message)) else { continue };
        let expires = now + Duration::from_millis(expires_ms - unix_now);
        let cached = Remote::Cached { channel: &name, frame: &envelope.frame, data: &envelope.data, expires };
        view.app.hub.apply(cached, now);
    }
    if !expired.is_empty() {
        let hdel = CustomCommand::new_static("HDEL", ClusterHash::FirstKey, false);
        let args: Vec<String> = std::iter::once(view.keys.cache.clone()).chain(expired).collect();
        let _ = redis.commands.custom::<Value, _>(hdel, args).await;
    }
}

/// `{expires unix ms}:{envelope}`, as the outbound task stores a cache channel's last event.
fn split_cached(value: &bytes::Bytes) -> Option<(u64, bytes::Bytes)> {
    let colon = value.iter().position(|b| *b == b':')?;
    let expires = std::str::from_utf8(&value[..colon]).ok()?.parse().ok()?;
    Some((expires, value.slice(colon + 1..)))
}

fn bytes_of(value: Value) -> Option<bytes::Bytes> {
    match value {
        Value::Bytes(bytes) => Some(bytes),
        Value::String(text) => Some(text.into_inner()),
        _ => None,
    }
}

/// Take a node's whole share as read from Redis.
fn adopt(view: &mut AppView, node: NodeId, snapshot: Snapshot, now: Instant) {
    view.app.hub.apply(Remote::Share { node, share: &snapshot.share }, now);
    view.peers.insert(node, Peer { epoch: snapshot.epoch, seq: snapshot.seq, missing_since: None });
}

fn forget(view: &mut AppView, node: NodeId, now: Instant) {
    view.peers.remove(&node);
    view.app.hub.apply(Remote::NodeGone { node }, now);
}

fn apply_op(app: &App, node: NodeId, op: Op, now: Instant) {
    let hub = &app.hub;
    let channel = |name: &str| ChannelName::parse(name).ok();
    match op {
        Op::Count { channel: name, subscribers } => {
            if let Some(channel) = channel(&name) {
                hub.apply(Remote::Count { node, channel: &channel, subscribers }, now);
            }
        }
        Op::MemberAdded { channel: name, user_id, info } => {
            if let Some(channel) = channel(&name) {
                let user_info = info.as_ref();
                hub.apply(Remote::MemberAdded { node, channel: &channel, user_id: &user_id, user_info }, now);
            }
        }
        Op::MemberRemoved { channel: name, user_id } => {
            if let Some(channel) = channel(&name) {
                hub.apply(Remote::MemberRemoved { node, channel: &channel, user_id: &user_id }, now);
            }
        }
        Op::SignedIn { user_id } => {
            hub.apply(Remote::SignedIn { node, user_id: &user_id }, now);
        }
        Op::SignedOut { user_id } => {
            hub.apply(Remote::SignedOut { node, user_id: &user_id }, now);
        }
    }
}

async fn subscribe(subscriber: &SubscriberClient, sharded: bool, channel: &str) -> Result<(), Error> {
    if sharded { subscriber.ssubscribe(channel).await } else { subscriber.subscribe(channel).await }
}
