//! The hub: one app's channels and who is subscribed to them.
//!
//! Every method is synchronous. Locks are std mutexes taken in one order (shard, then channel) and
//! released before returning, so no lock can be held across an `.await` by construction. A publish
//! encodes its frame once and queues the same bytes in every subscriber's outbox; it returns once
//! every current subscriber has the frame queued, without waiting for any socket.

mod announce;
mod channel;
mod presence;
mod shards;
mod users;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pusher_wire::frame::server;
use pusher_wire::limits::{CACHE_TTL_SECS, MAX_PRESENCE_MEMBERS};
use pusher_wire::presence::PresenceMember;
use pusher_wire::{ChannelKind, ChannelName};

pub use self::channel::{CachedEvent, SMALL_CHANNEL_COUNT_INTERVAL};
use self::channel::{Channel, ChannelState, CountUpdate, Subscriber};
use self::shards::ShardedMap;
pub use self::users::{Users, WatchlistStatus};
use crate::connection::outbox::{ConnId, Frame, Outbox};
use crate::webhooks::Webhooks;

/// One app's channels.
#[derive(Debug)]
pub struct Hub {
    channels: ShardedMap<Arc<Channel>>,
    /// Signed-in users: server-to-user events, terminations, watchlists.
    pub users: Users,
    /// Whether subscribers get `pusher_internal:subscription_count`.
    send_counts: bool,
    /// Channels whose count update the throttle held back.
    deferred_counts: Mutex<HashSet<Box<str>>>,
    /// Where the webhook events of joins and leaves go, emitted under the channel's lock.
    webhooks: Webhooks,
}

/// What a subscriber gets right after `subscription_succeeded`, and what changed.
#[derive(Debug)]
pub struct Joined {
    /// On presence channels, the `subscription_succeeded` frame with the roster (the subscriber
    /// included); `None` on other kinds.
    pub presence_snapshot: Option<String>,
    /// On cache channels, the event to replay or a miss.
    pub cache: CacheReplay,
    /// The channel had no subscribers before (`channel_occupied`).
    pub occupied: bool,
    /// This was the user's first connection in the presence channel (`member_added`).
    pub member_added: bool,
    /// The subscription count, if an update was sent to the subscribers.
    pub count_sent: Option<usize>,
}

/// The cached event a new subscriber of a cache channel receives.
#[derive(Debug, PartialEq)]
pub enum CacheReplay {
    /// Not a cache channel.
    NotCached,
    /// The last event, to send as is.
    Hit(Frame),
    /// Nothing cached: send `pusher:cache_miss`.
    Miss,
}

/// Why a subscription is refused by the hub.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The presence channel already has the maximum number of members.
    #[error("presence channel is full: {max} members at most")]
    PresenceFull {
        /// The limit.
        max: usize,
    },
}

/// What changed when a connection left a channel.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Left {
    /// The channel has no subscribers any more (`channel_vacated`).
    pub vacated: bool,
    /// The user whose last connection this was, on presence channels (`member_removed`).
    pub member_removed: Option<String>,
    /// The subscription count, if an update was sent to the subscribers.
    pub count_sent: Option<usize>,
}

/// Counts and cache of one channel, for the REST read API.
#[derive(Debug, Default, PartialEq)]
pub struct ChannelInfo {
    /// Connections subscribed.
    pub subscription_count: usize,
    /// Distinct presence users.
    pub user_count: usize,
    /// The cached event's data and seconds left, on cache channels.
    pub cache: Option<(String, u64)>,
}

impl Hub {
    /// An empty hub emitting join and leave webhooks into `webhooks`.
    pub fn new(send_counts: bool, webhooks: Webhooks) -> Self {
        Self {
            channels: ShardedMap::default(),
            users: Users::default(),
            send_counts,
            deferred_counts: Mutex::default(),
            webhooks,
        }
    }

    /// Subscribe a connection. `member` is its presence identity on presence channels. On success the
    /// other subscribers have been sent `member_added` (first connection of that user) and the new
    /// subscription count, and the caller sends `subscription_succeeded` then the cache replay.
    pub fn subscribe(
        &self,
        channel: &ChannelName,
        outbox: &Arc<Outbox>,
        member: Option<&PresenceMember>,
        now: Instant,
    ) -> Result<Joined, JoinError> {
        let name = channel.as_str();
        let kind = channel.kind();
        self.channels.with_shard(name, |shard| {
            let entry = shard.entry(name.into()).or_insert_with(|| Arc::new(Channel::new(kind))).clone();
            let mut state = entry.lock();
            let mut joined = join(&mut state, name, kind, outbox, member, now);
            match &mut joined {
                Ok(joined) => {
                    joined.count_sent = self.after_count_change(&mut state, name, kind, now);
                    announce::joined(&self.webhooks, name, member, joined);
                }
                Err(_) if state.is_idle(now) => {
                    shard.remove(name);
                }
                Err(_) => {}
            }
            joined
        })
    }

    /// Unsubscribe a connection; `None` if it was not subscribed.
    pub fn unsubscribe(&self, channel: &str, conn: ConnId, now: Instant) -> Option<Left> {
        self.channels.with_shard(channel, |shard| {
            let entry = shard.get(channel)?.clone();
            let mut state = entry.lock();
            let subscriber = state.subscribers.remove(&conn)?;
            let mut left = Left { vacated: state.subscribers.is_empty(), ..Left::default() };
            if let Some(user_id) = subscriber.user_id
                && state.roster.leave(&user_id)
            {
                state.broadcast(&server::member_removed(channel, &user_id).into(), None);
                left.member_removed = Some(user_id.into());
            }
            left.count_sent = self.after_count_change(&mut state, channel, entry.kind(), now);
            announce::left(&self.webhooks, channel, &left);
            if state.is_idle(now) {
                shard.remove(channel);
            }
            Some(left)
        })
    }

    /// Publish a REST event: queue it for every subscriber but `except`, and remember it on cache
    /// channels. Returns how many connections got it. Nothing is encoded for an empty channel.
    pub fn publish(
        &self,
        channel: &ChannelName,
        event: &str,
        data: &str,
        except: Option<ConnId>,
        now: Instant,
    ) -> usize {
        let name = channel.as_str();
        let encode = || Frame::from(server::channel_event(event, name, data));
        if channel.kind().is_cache() {
            // Under the shard lock, so the cache cannot land in a channel that is being dropped.
            return self.channels.with_shard(name, |shard| {
                let entry = shard.entry(name.into()).or_insert_with(|| Arc::new(Channel::new(channel.kind())));
                let mut state = entry.lock();
                let frame = encode();
                let delivered = state.broadcast(&frame, except);
                let expires = now + Duration::from_secs(CACHE_TTL_SECS);
                state.cache = Some(CachedEvent { frame, data: data.to_owned(), expires });
                delivered
            });
        }
        let Some(entry) = self.channels.get(name) else { return 0 };
        let state = entry.lock();
        if state.subscribers.is_empty() {
            return 0;
        }
        state.broadcast(&encode(), except)
    }

    /// Queue an already-encoded frame for every subscriber of `channel` but `except` (client events).
    pub fn relay(&self, channel: &str, frame: &Frame, except: ConnId) -> usize {
        self.channels.get(channel).map_or(0, |entry| entry.lock().broadcast(frame, Some(except)))
    }

    /// Counts and cache of a channel (zeros when nobody is subscribed).
    pub fn channel_info(&self, channel: &str, now: Instant) -> ChannelInfo {
        self.channels.get(channel).map_or_else(ChannelInfo::default, |entry| info(&entry.lock(), now))
    }

    /// Every channel with at least one subscriber whose name starts with `prefix`, with its info.
    /// Server-to-user channels are never listed.
    pub fn occupied_channels(&self, prefix: &str, now: Instant) -> Vec<(String, ChannelInfo)> {
        let mut channels: Vec<(String, ChannelInfo)> = self
            .channels
            .entries()
            .into_iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .filter_map(|(name, entry)| {
                let state = entry.lock();
                (!state.subscribers.is_empty()).then(|| (name.into_string(), info(&state, now)))
            })
            .collect();
        channels.sort_by(|a, b| a.0.cmp(&b.0));
        channels
    }

    /// The user ids of a presence channel.
    pub fn users(&self, channel: &str) -> Vec<String> {
        let Some(entry) = self.channels.get(channel) else { return Vec::new() };
        let state = entry.lock();
        let mut users: Vec<String> = state.roster.user_ids().map(str::to_owned).collect();
        users.sort();
        users
    }

    /// Send the subscription counts the throttle held back and that are now due; returns the
    /// channels and counts sent. Called every [`SMALL_CHANNEL_COUNT_INTERVAL`] by the node's ticker.
    pub fn flush_deferred_counts(&self, now: Instant) -> Vec<(String, usize)> {
        let mut sent = Vec::new();
        let pending: Vec<Box<str>> = {
            let mut deferred = self.deferred_counts.lock().unwrap_or_else(|p| p.into_inner());
            deferred.drain().collect()
        };
        for name in pending {
            let Some(entry) = self.channels.get(&name) else { continue };
            let mut state = entry.lock();
            if state.deferred_count_due(now) {
                state.broadcast(&count_frame(&name, &state), None);
                announce::count_changed(&self.webhooks, &name, state.subscribers.len());
                sent.push((name.into_string(), state.subscribers.len()));
            } else if state.count_pending {
                self.defer_count(&name);
            }
        }
        sent
    }

    /// Drop channels that have neither subscribers nor a live cached event. Called periodically,
    /// since an expired cache does not remove its channel by itself.
    pub fn sweep(&self, now: Instant) {
        for (name, _) in self.channels.entries() {
            self.channels.with_shard(&name, |shard| {
                if shard.get(&name).is_some_and(|entry| entry.lock().is_idle(now)) {
                    shard.remove(&name);
                }
            });
        }
    }

    /// Number of channels held (occupied, or holding a cached event).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// After a subscriber joined or left: send the new count now, or let the throttle defer it.
    /// Returns the count if it was sent.
    fn after_count_change(
        &self,
        state: &mut ChannelState,
        name: &str,
        kind: ChannelKind,
        now: Instant,
    ) -> Option<usize> {
        // Pusher sends no subscription counts on presence channels; server-to-user channels never
        // reach the hub.
        if !self.send_counts || kind.is_presence() {
            return None;
        }
        match state.count_changed(now) {
            CountUpdate::Send => {
                state.broadcast(&count_frame(name, state), None);
                Some(state.subscribers.len())
            }
            CountUpdate::Deferred => {
                self.defer_count(name);
                None
            }
            CountUpdate::None => None,
        }
    }

    fn defer_count(&self, name: &str) {
        self.deferred_counts.lock().unwrap_or_else(|p| p.into_inner()).insert(name.into());
    }
}

fn join(
    state: &mut ChannelState,
    name: &str,
    kind: ChannelKind,
    outbox: &Arc<Outbox>,
    member: Option<&PresenceMember>,
    now: Instant,
) -> Result<Joined, JoinError> {
    let occupied = state.subscribers.is_empty();
    let mut member_added = false;
    let mut presence_snapshot = None;
    if let Some(member) = member.filter(|_| kind.is_presence()) {
        if !state.roster.contains(&member.user_id) && state.roster.len() >= MAX_PRESENCE_MEMBERS {
            return Err(JoinError::PresenceFull { max: MAX_PRESENCE_MEMBERS });
        }
        member_added = state.roster.join(&member.user_id, member.user_info.as_ref());
        if member_added {
            let frame = server::member_added(name, &member.user_id, member.user_info_json());
            state.broadcast(&frame.into(), Some(outbox.id()));
        }
        presence_snapshot = Some(server::presence_subscription_succeeded(name, state.roster.iter()));
    }
    let user_id = member.filter(|_| kind.is_presence()).map(|m| m.user_id.clone().into_boxed_str());
    state.subscribers.insert(outbox.id(), Subscriber { outbox: outbox.clone(), user_id });
    let cache = if !kind.is_cache() {
        CacheReplay::NotCached
    } else {
        state.live_cache(now).map_or(CacheReplay::Miss, |cached| CacheReplay::Hit(cached.frame.clone()))
    };
    Ok(Joined { presence_snapshot, cache, occupied, member_added, count_sent: None })
}

fn info(state: &ChannelState, now: Instant) -> ChannelInfo {
    ChannelInfo {
        subscription_count: state.subscribers.len(),
        user_count: state.roster.len(),
        cache: state
            .live_cache(now)
            .map(|cached| (cached.data.clone(), cached.expires.saturating_duration_since(now).as_secs())),
    }
}

fn count_frame(name: &str, state: &ChannelState) -> Frame {
    Frame::from(server::subscription_count(name, state.subscribers.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutboxLimits;
    use crate::connection::outbox::Batch;

    fn outbox(id: u64) -> Arc<Outbox> {
        Arc::new(Outbox::new(ConnId(id), OutboxLimits::default()))
    }

    fn channel(name: &str) -> ChannelName {
        ChannelName::parse(name).unwrap()
    }

    /// The frames queued so far, as event names (and `user_id` for member events).
    fn drain(outbox: &Outbox) -> Vec<String> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(outbox.next_batch());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(Batch::Frames(frames)) => frames
                .iter()
                .map(|f| {
                    let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
                    v["event"].as_str().unwrap().to_owned()
                })
                .collect(),
            std::task::Poll::Ready(Batch::Kill(k)) => panic!("killed {k:?}"),
            std::task::Poll::Pending => Vec::new(),
        }
    }

    fn member(id: &str) -> PresenceMember {
        PresenceMember::parse(&format!(r#"{{"user_id":"{id}"}}"#)).unwrap()
    }

    use std::future::Future;

    #[test]
    fn publish_reaches_every_subscriber_but_the_excluded_one() {
        let hub = Hub::new(false, Webhooks::disabled());
        let now = Instant::now();
        let (a, b) = (outbox(1), outbox(2));
        hub.subscribe(&channel("chat"), &a, None, now).unwrap();
        hub.subscribe(&channel("chat"), &b, None, now).unwrap();
        assert_eq!(hub.publish(&channel("chat"), "msg", "{}", Some(ConnId(2)), now), 1);
        assert_eq!(drain(&a), ["msg"]);
        assert!(drain(&b).is_empty());
        assert_eq!(hub.publish(&channel("empty"), "msg", "{}", None, now), 0);
        assert_eq!(hub.channel_count(), 1);
    }

    #[test]
    fn last_unsubscribe_drops_the_channel() {
        let hub = Hub::new(false, Webhooks::disabled());
        let now = Instant::now();
        let a = outbox(1);
        assert!(hub.subscribe(&channel("chat"), &a, None, now).unwrap().occupied);
        assert_eq!(hub.unsubscribe("chat", ConnId(9), now), None);
        assert_eq!(hub.unsubscribe("chat", ConnId(1), now), Some(Left { vacated: true, ..Left::default() }));
        assert_eq!(hub.channel_count(), 0);
    }

    #[test]
    fn presence_members_are_announced_once_per_user() {
        let hub = Hub::new(true, Webhooks::disabled());
        let now = Instant::now();
        let room = channel("presence-room");
        let (a1, b1, a2) = (outbox(1), outbox(2), outbox(3));
        let joined = hub.subscribe(&room, &a1, Some(&member("a")), now).unwrap();
        assert!(joined.member_added && joined.presence_snapshot.is_some());
        assert!(hub.subscribe(&room, &b1, Some(&member("b")), now).unwrap().member_added);
        assert_eq!(drain(&a1), ["pusher_internal:member_added"], "no subscription_count on presence");
        assert!(!hub.subscribe(&room, &a2, Some(&member("a")), now).unwrap().member_added);
        assert!(drain(&a1).is_empty() && drain(&b1).is_empty());
        assert_eq!(hub.channel_info("presence-room", now).user_count, 2);
        assert_eq!(hub.channel_info("presence-room", now).subscription_count, 3);
        assert_eq!(hub.unsubscribe("presence-room", ConnId(1), now), Some(Left::default()));
        assert!(drain(&b1).is_empty());
        let left = hub.unsubscribe("presence-room", ConnId(3), now).unwrap();
        assert_eq!(left.member_removed.as_deref(), Some("a"));
        assert_eq!(drain(&b1), ["pusher_internal:member_removed"]);
        assert_eq!(hub.users("presence-room"), ["b"]);
    }

    #[test]
    fn presence_channels_refuse_the_101st_member_but_not_another_tab() {
        let hub = Hub::new(false, Webhooks::disabled());
        let now = Instant::now();
        let room = channel("presence-big");
        for i in 0..100 {
            hub.subscribe(&room, &outbox(i), Some(&member(&i.to_string())), now).unwrap();
        }
        assert_eq!(
            hub.subscribe(&room, &outbox(500), Some(&member("new")), now).unwrap_err(),
            JoinError::PresenceFull { max: 100 }
        );
        assert!(hub.subscribe(&room, &outbox(501), Some(&member("7")), now).is_ok());
    }

    #[test]
    fn cache_channels_replay_the_last_event_until_it_expires() {
        let hub = Hub::new(false, Webhooks::disabled());
        let now = Instant::now();
        let cache = channel("cache-news");
        assert_eq!(hub.subscribe(&cache, &outbox(1), None, now).unwrap().cache, CacheReplay::Miss);
        hub.unsubscribe("cache-news", ConnId(1), now);
        hub.publish(&cache, "headline", "\"one\"", None, now);
        hub.publish(&cache, "headline", "\"two\"", None, now);
        let joined = hub.subscribe(&cache, &outbox(2), None, now).unwrap();
        let CacheReplay::Hit(frame) = joined.cache else { panic!("no cache hit") };
        assert!(frame.as_str().contains("two"));
        assert_eq!(hub.channel_info("cache-news", now).cache, Some(("\"two\"".into(), CACHE_TTL_SECS)));
        hub.unsubscribe("cache-news", ConnId(2), now);
        let later = now + Duration::from_secs(CACHE_TTL_SECS + 1);
        assert_eq!(hub.subscribe(&cache, &outbox(3), None, later).unwrap().cache, CacheReplay::Miss);
        hub.unsubscribe("cache-news", ConnId(3), later);
        hub.sweep(later);
        assert_eq!(hub.channel_count(), 0);
    }

    #[test]
    fn subscription_counts_reach_every_subscriber() {
        let hub = Hub::new(true, Webhooks::disabled());
        let start = Instant::now();
        let later = |n: u32| start + SMALL_CHANNEL_COUNT_INTERVAL * n;
        let (a, b) = (outbox(1), outbox(2));
        hub.subscribe(&channel("c"), &a, None, later(0)).unwrap();
        assert_eq!(drain(&a), ["pusher_internal:subscription_count"]);
        hub.subscribe(&channel("c"), &b, None, later(1)).unwrap();
        assert_eq!(drain(&a), ["pusher_internal:subscription_count"]);
        assert_eq!(drain(&b), ["pusher_internal:subscription_count"]);
        hub.unsubscribe("c", ConnId(2), later(2));
        assert_eq!(drain(&a), ["pusher_internal:subscription_count"]);
    }

    #[test]
    fn a_subscribe_loop_costs_the_others_one_count_per_interval() {
        let hub = Hub::new(true, Webhooks::disabled());
        let start = Instant::now();
        let watcher = outbox(1);
        hub.subscribe(&channel("c"), &watcher, None, start).unwrap();
        drain(&watcher);
        let churner = outbox(2);
        for _ in 0..1000 {
            hub.subscribe(&channel("c"), &churner, None, start).unwrap();
            hub.unsubscribe("c", ConnId(2), start);
        }
        assert!(drain(&watcher).is_empty(), "changes within the interval are deferred");
        let sent = hub.flush_deferred_counts(start + SMALL_CHANNEL_COUNT_INTERVAL);
        assert_eq!(sent, [("c".to_owned(), 1)]);
        assert_eq!(drain(&watcher), ["pusher_internal:subscription_count"]);
    }

    #[test]
    fn counts_on_large_channels_are_throttled_and_flushed_later() {
        let hub = Hub::new(true, Webhooks::disabled());
        let start = Instant::now();
        let subscribers: Vec<_> = (0..200).map(outbox).collect();
        for s in &subscribers {
            hub.subscribe(&channel("big"), s, None, start).unwrap();
        }
        // Joins 1-101 each sent a count (at most 101 frames to the first subscriber); the rest waited.
        let first = drain(&subscribers[0]).len();
        assert!(first <= 102, "{first} count frames: not throttled");
        hub.flush_deferred_counts(start + Duration::from_secs(1));
        assert!(drain(&subscribers[0]).is_empty());
        hub.flush_deferred_counts(start + Duration::from_secs(5));
        assert_eq!(drain(&subscribers[0]), ["pusher_internal:subscription_count"]);
        assert_eq!(drain(&subscribers[199]).len(), 1);
    }
}
