//! The hub: one app's channels and who is subscribed to them on this node, with this node's view of
//! the rest of the cluster (how many subscribers the other nodes have, who is present there).
//!
//! Every method is synchronous. Locks are std mutexes taken in one order (shard, then channel) and
//! released before returning, so no lock can be held across an `.await` by construction. A publish
//! encodes its frame once and queues the same bytes in every subscriber's outbox; it returns once
//! every current subscriber has the frame queued, without waiting for any socket.
//!
//! What happens here is told to one [`Observer`] with the channel locked (webhooks, and in a
//! cluster the link to Redis); what happened on other nodes comes back through [`Hub::apply`]
//! (`remote.rs`), which takes the same locks and follows the same paths. Reads (counts, rosters,
//! the channel list) never leave the node.

mod channel;
mod observer;
mod presence;
mod remote;
mod shards;
mod users;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pusher_wire::frame::server;
use pusher_wire::limits::{CACHE_TTL_SECS, MAX_PRESENCE_MEMBERS};
use pusher_wire::presence::PresenceMember;
use pusher_wire::{ChannelKind, ChannelName, SocketId};

pub(crate) use self::channel::{CachedEvent, SMALL_CHANNEL_COUNT_INTERVAL};
use self::channel::{Channel, ChannelState, CountUpdate, Subscriber};
#[cfg(test)]
pub(crate) use self::observer::Ignore;
pub(crate) use self::observer::{Observer, Relayed, Transition};
pub(crate) use self::remote::{Remote, Share};
use self::shards::ShardedMap;
pub(crate) use self::users::Users;
use crate::connection::outbox::{ConnId, Frame, Outbox};

/// One node of a cluster: the first half of the socket ids it hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NodeId(pub(crate) u32);

/// One app's channels.
#[derive(Debug)]
pub(crate) struct Hub {
    channels: ShardedMap<Arc<Channel>>,
    /// Signed-in users: server-to-user events, terminations, watchlists.
    pub(crate) users: Users,
    /// Whether subscribers get `pusher_internal:subscription_count` (the app's setting, which a
    /// reload may change).
    send_counts: AtomicBool,
    /// Most members of one presence channel, cluster-wide (the app's setting).
    max_members: AtomicUsize,
    /// Channels whose count update the throttle held back.
    deferred_counts: Mutex<HashSet<Box<str>>>,
    /// Hears every local transition, with the channel locked.
    observer: Arc<dyn Observer>,
}

/// What a subscriber gets right after `subscription_succeeded`, and what changed on this node.
#[derive(Debug)]
pub(crate) struct Joined {
    /// On presence channels, the `subscription_succeeded` frame with the roster (the subscriber
    /// included); `None` on other kinds.
    pub(crate) presence_snapshot: Option<String>,
    /// On cache channels, the event to replay or a miss.
    pub(crate) cache: CacheReplay,
    /// The channel had no subscribers on this node before.
    pub(crate) occupied: bool,
    /// This was the user's first connection to the presence channel on this node.
    pub(crate) member_added: bool,
    /// The subscription count, if an update was sent to the subscribers.
    pub(crate) count_sent: Option<usize>,
}

/// The cached event a new subscriber of a cache channel receives.
#[derive(Debug, PartialEq)]
pub(crate) enum CacheReplay {
    /// Not a cache channel.
    NotCached,
    /// The last event, to send as is.
    Hit(Frame),
    /// Nothing cached: send `pusher:cache_miss`.
    Miss,
}

/// Why a subscription is refused by the hub.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JoinError {
    /// The presence channel already has the maximum number of members (cluster-wide).
    #[error("presence channel is full: {max} members at most")]
    PresenceFull {
        /// The limit.
        max: usize,
    },
}

/// What changed on this node when a connection left a channel.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Left {
    /// The channel has no subscribers on this node any more.
    pub(crate) vacated: bool,
    /// The user whose last connection on this node this was, on presence channels.
    pub(crate) member_removed: Option<String>,
    /// The subscription count, if an update was sent to the subscribers.
    pub(crate) count_sent: Option<usize>,
}

/// Counts and cache of one channel, for the REST read API.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ChannelInfo {
    /// Connections subscribed, on every node.
    pub(crate) subscription_count: usize,
    /// Distinct presence users, on every node.
    pub(crate) user_count: usize,
    /// The cached event's data and seconds left, on cache channels.
    pub(crate) cache: Option<(String, u64)>,
}

/// An occupied channel in the REST channel list.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Occupied<'a> {
    /// The channel.
    pub(crate) name: &'a str,
    /// Connections subscribed, on every node.
    pub(crate) subscription_count: usize,
    /// Distinct presence users, on every node.
    pub(crate) user_count: usize,
}

/// The connection a publisher asked to leave out of a broadcast (`socket_id` in a trigger).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Except<'a> {
    /// The socket id as the publisher gave it; it may belong to another node.
    pub(crate) socket_id: &'a SocketId,
    /// Its connection, when it is on this node.
    pub(crate) local: Option<ConnId>,
}

impl Hub {
    /// An empty hub telling `observer` what happens in it.
    pub(crate) fn new(send_counts: bool, observer: Arc<dyn Observer>) -> Self {
        Self {
            channels: ShardedMap::default(),
            users: Users::new(observer.clone()),
            send_counts: AtomicBool::new(send_counts),
            max_members: AtomicUsize::new(MAX_PRESENCE_MEMBERS),
            deferred_counts: Mutex::default(),
            observer,
        }
    }

    /// Turn subscription counts on or off (the app's settings changed).
    pub(crate) fn set_send_counts(&self, send_counts: bool) {
        self.send_counts.store(send_counts, Ordering::Relaxed);
    }

    /// Set the most members one presence channel may have.
    pub(crate) fn set_max_members(&self, max: usize) {
        self.max_members.store(max, Ordering::Relaxed);
    }

    /// Subscribe a connection. `member` is its presence identity on presence channels. On success the
    /// other subscribers have been sent `member_added` (the user's first connection anywhere) and the
    /// new subscription count, and the caller sends `subscription_succeeded` then the cache replay.
    pub(crate) fn subscribe(
        &self,
        channel: &ChannelName,
        outbox: &Arc<Outbox>,
        member: Option<&PresenceMember>,
        now: Instant,
    ) -> Result<Joined, JoinError> {
        let name = channel.as_str();
        let kind = channel.kind();
        let max_members = self.max_members.load(Ordering::Relaxed);
        self.with_channel(channel, now, |state| {
            let mut joined = join(state, name, kind, outbox, member, max_members, now);
            if let Ok(joined) = &mut joined {
                let observe = |transition| self.observer.observe(transition);
                if joined.occupied {
                    observe(Transition::Occupied { channel: name });
                }
                if let Some(member) = member.filter(|_| joined.member_added) {
                    observe(Transition::MemberAdded { channel: name, member });
                }
                observe(Transition::Counted { channel: name, subscribers: state.subscribers.len() });
                joined.count_sent = self.count_changed_here(state, name, kind, now);
                if joined.cache == CacheReplay::Miss {
                    observe(Transition::CacheMiss { channel: name });
                }
            }
            joined
        })
    }

    /// Unsubscribe a connection; `None` if it was not subscribed.
    pub(crate) fn unsubscribe(&self, channel: &str, conn: ConnId, now: Instant) -> Option<Left> {
        let kind = ChannelKind::of(channel);
        self.with_existing(channel, now, |state| {
            let subscriber = state.subscribers.remove(&conn)?;
            let mut left = Left { vacated: state.subscribers.is_empty(), ..Left::default() };
            if let Some(user_id) = subscriber.user_id {
                let change = state.roster.leave(&user_id);
                // `member_removed` only once the user has no connection anywhere.
                if change.anywhere {
                    state.broadcast(&server::member_removed(channel, &user_id).into(), None);
                }
                if change.here {
                    self.observer.observe(Transition::MemberRemoved { channel, user_id: &user_id });
                    left.member_removed = Some(user_id.into());
                }
            }
            self.observer.observe(Transition::Counted { channel, subscribers: state.subscribers.len() });
            left.count_sent = self.count_changed_here(state, channel, kind, now);
            if left.vacated {
                self.observer.observe(Transition::Vacated { channel });
            }
            Some(left)
        })
        .flatten()
    }

    /// Publish a REST event: queue it for every subscriber but `except`, remember it on cache
    /// channels, and tell the observer. Returns how many connections here got it. Nothing is encoded
    /// for a channel without subscribers unless the observer forwards events (a cluster).
    pub(crate) fn publish(
        &self,
        channel: &ChannelName,
        event: &str,
        data: &str,
        except: Option<Except<'_>>,
        now: Instant,
    ) -> usize {
        let name = channel.as_str();
        let encode = || Frame::from(server::channel_event(event, name, data));
        let local = except.and_then(|except| except.local);
        let observe = |frame: &Frame| {
            let except = except.map(|except| except.socket_id);
            self.observer.observe(Transition::Published { channel: name, frame, data, except });
        };
        if channel.kind().is_cache() {
            return self.with_channel(channel, now, |state| {
                let frame = encode();
                let delivered = state.broadcast(&frame, local);
                observe(&frame);
                keep_cached(state, frame, data, now);
                delivered
            });
        }
        let forwards = self.observer.forwards_events();
        let Some(entry) = self.channels.get(name) else {
            if forwards {
                observe(&encode());
            }
            return 0;
        };
        let state = entry.lock();
        if state.subscribers.is_empty() && !forwards {
            return 0;
        }
        let frame = encode();
        let delivered = state.broadcast(&frame, local);
        observe(&frame);
        delivered
    }

    /// Relay a client event to every subscriber of its channel but the sender; returns how many got it.
    pub(crate) fn relay(&self, sender: ConnId, event: Relayed<'_>) -> usize {
        let Some(entry) = self.channels.get(event.channel) else { return 0 };
        let state = entry.lock();
        let delivered = state.broadcast(event.frame, Some(sender));
        self.observer.observe(Transition::ClientEvent(event));
        delivered
    }

    /// Counts and cache of a channel (zeros when nobody is subscribed anywhere).
    pub(crate) fn channel_info(&self, channel: &str, now: Instant) -> ChannelInfo {
        self.channels.get(channel).map_or_else(ChannelInfo::default, |entry| info(&entry.lock(), now))
    }

    /// How many parts [`occupied_in_part`](Self::occupied_in_part) divides the channels into.
    pub(crate) fn parts(&self) -> usize {
        self.channels.shard_count()
    }

    /// The channels of one part with at least one subscriber on some node and a name starting with
    /// `prefix`, in no order, each passed to `f` with its part locked (so `f` must stay short).
    /// Listing part by part lets a caller hold one part's answer at a time, and no lock between
    /// parts. Server-to-user channels are never listed.
    pub(crate) fn occupied_in_part(&self, part: usize, prefix: &str, mut f: impl FnMut(Occupied<'_>)) {
        self.channels.for_each_in_shard(part, |name, entry| {
            if !name.starts_with(prefix) {
                return;
            }
            let state = entry.lock();
            let subscription_count = state.total();
            if subscription_count > 0 {
                f(Occupied { name, subscription_count, user_count: state.roster.len() });
            }
        });
    }

    /// Up to `max` members of a presence channel, cluster-wide: user id and `user_info` JSON text.
    pub(crate) fn members(&self, channel: &str, max: usize) -> Vec<(String, String)> {
        let Some(entry) = self.channels.get(channel) else { return Vec::new() };
        let state = entry.lock();
        let mut members: Vec<(String, String)> =
            state.roster.iter().take(max).map(|(id, info)| (id.to_owned(), info.to_owned())).collect();
        members.sort();
        members
    }

    /// The user ids of a presence channel, cluster-wide.
    pub(crate) fn users(&self, channel: &str) -> Vec<String> {
        let Some(entry) = self.channels.get(channel) else { return Vec::new() };
        let state = entry.lock();
        let mut users: Vec<String> = state.roster.user_ids().map(str::to_owned).collect();
        users.sort();
        users
    }

    /// Send the subscription counts the throttle held back and that are now due; returns the
    /// channels and counts sent. Called every [`SMALL_CHANNEL_COUNT_INTERVAL`] by the node's ticker.
    pub(crate) fn flush_deferred_counts(&self, now: Instant) -> Vec<(String, usize)> {
        let mut sent = Vec::new();
        let pending: Vec<Box<str>> = {
            let mut deferred = self.deferred_counts.lock().unwrap_or_else(|p| p.into_inner());
            deferred.drain().collect()
        };
        for name in pending {
            let Some(entry) = self.channels.get(&name) else { continue };
            let mut state = entry.lock();
            if state.deferred_count_due(now) {
                let count = state.total();
                state.broadcast(&count_frame(&name, count), None);
                if std::mem::take(&mut state.count_pending_here) {
                    self.observer.observe(Transition::CountSent { channel: &name, count });
                }
                sent.push((name.into_string(), count));
            } else if state.count_pending {
                self.defer_count(&name);
            }
        }
        sent
    }

    /// Drop channels that have neither subscribers nor a live cached event. Called periodically,
    /// since an expired cache does not remove its channel by itself.
    pub(crate) fn sweep(&self, now: Instant) {
        for (name, entry) in self.channels.entries() {
            self.drop_if_idle(&name, &entry, now);
        }
    }

    /// Run `f` on `channel`, created if needed, with only the channel locked (the shard lock is
    /// held just to find it, so work on one channel never waits for another in its shard). The
    /// channel is dropped afterwards if nothing is left in it.
    fn with_channel<R>(&self, channel: &ChannelName, now: Instant, f: impl FnOnce(&mut ChannelState) -> R) -> R {
        let name = channel.as_str();
        let kind = channel.kind();
        let mut f = Some(f);
        loop {
            let entry = self.channels.with_shard(name, |shard| {
                shard.entry(name.into()).or_insert_with(|| Arc::new(Channel::new(kind))).clone()
            });
            if let Some(result) = self.locked(name, &entry, now, &mut f) {
                return result;
            }
        }
    }

    /// [`Self::with_channel`] for a channel that must exist already; `None` if it does not.
    fn with_existing<R>(&self, name: &str, now: Instant, f: impl FnOnce(&mut ChannelState) -> R) -> Option<R> {
        let mut f = Some(f);
        loop {
            let entry = self.channels.get(name)?;
            if let Some(result) = self.locked(name, &entry, now, &mut f) {
                return Some(result);
            }
        }
    }

    /// Run `f` on `entry` locked, unless it was dropped between its lookup and the lock (then
    /// `None`: look it up again).
    fn locked<R, F: FnOnce(&mut ChannelState) -> R>(
        &self,
        name: &str,
        entry: &Arc<Channel>,
        now: Instant,
        f: &mut Option<F>,
    ) -> Option<R> {
        let mut state = entry.lock();
        if state.dropped {
            return None;
        }
        // `f` is taken only here, once the channel is known to be live.
        let result = f.take().map(|f| f(&mut state))?;
        let idle = state.is_idle(now);
        drop(state);
        if idle {
            self.drop_if_idle(name, entry, now);
        }
        Some(result)
    }

    /// Drop `entry` from the map if it is still the channel there and still idle. Locks in the one
    /// order: shard, then channel.
    fn drop_if_idle(&self, name: &str, entry: &Arc<Channel>, now: Instant) {
        self.channels.with_shard(name, |shard| {
            if shard.get(name).is_some_and(|current| Arc::ptr_eq(current, entry)) {
                let mut state = entry.lock();
                if state.is_idle(now) {
                    state.dropped = true;
                    shard.remove(name);
                }
            }
        });
    }

    /// Number of channels held (occupied somewhere, or holding a cached event).
    pub(crate) fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// After a subscriber joined or left here: send the new count now, or let the throttle defer
    /// it. Returns the count if it was sent; the `subscription_count` webhook is this node's to send.
    fn count_changed_here(
        &self,
        state: &mut ChannelState,
        name: &str,
        kind: ChannelKind,
        now: Instant,
    ) -> Option<usize> {
        match self.update_count(state, name, kind, now) {
            CountUpdate::Send => {
                state.count_pending_here = false;
                let count = state.total();
                self.observer.observe(Transition::CountSent { channel: name, count });
                Some(count)
            }
            CountUpdate::Deferred => {
                state.count_pending_here = true;
                None
            }
            CountUpdate::None => None,
        }
    }

    /// After another node's count changed: the same update, but its webhook is that node's.
    fn count_changed_remotely(&self, state: &mut ChannelState, name: &str, kind: ChannelKind, now: Instant) {
        self.update_count(state, name, kind, now);
    }

    fn update_count(&self, state: &mut ChannelState, name: &str, kind: ChannelKind, now: Instant) -> CountUpdate {
        // Pusher sends no subscription counts on presence channels; server-to-user channels never
        // reach the hub.
        if !self.send_counts.load(Ordering::Relaxed) || kind.is_presence() {
            return CountUpdate::None;
        }
        let update = state.count_changed(now);
        match update {
            CountUpdate::Send => {
                state.broadcast(&count_frame(name, state.total()), None);
            }
            CountUpdate::Deferred => self.defer_count(name),
            CountUpdate::None => {}
        }
        update
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
    max_members: usize,
    now: Instant,
) -> Result<Joined, JoinError> {
    let occupied = state.subscribers.is_empty();
    let mut member_added = false;
    let mut presence_snapshot = None;
    if let Some(member) = member.filter(|_| kind.is_presence()) {
        // The roster holds every node's members, so the limit is cluster-wide.
        if !state.roster.contains(&member.user_id) && state.roster.len() >= max_members {
            return Err(JoinError::PresenceFull { max: max_members });
        }
        let change = state.roster.join(&member.user_id, member.user_info.as_ref());
        if change.anywhere {
            let frame = server::member_added(name, &member.user_id, member.user_info_json());
            state.broadcast(&frame.into(), Some(outbox.id()));
        }
        member_added = change.here;
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

/// Remember the last event of a cache channel for [`CACHE_TTL_SECS`].
fn keep_cached(state: &mut ChannelState, frame: Frame, data: &str, now: Instant) {
    let expires = now + Duration::from_secs(CACHE_TTL_SECS);
    state.cache = Some(Box::new(CachedEvent { frame, data: data.to_owned(), expires }));
}

fn info(state: &ChannelState, now: Instant) -> ChannelInfo {
    ChannelInfo {
        subscription_count: state.total(),
        user_count: state.roster.len(),
        cache: state
            .live_cache(now)
            .map(|cached| (cached.data.clone(), cached.expires.saturating_duration_since(now).as_secs())),
    }
}

fn count_frame(name: &str, count: usize) -> Frame {
    Frame::from(server::subscription_count(name, count))
}

#[cfg(test)]
mod tests;
