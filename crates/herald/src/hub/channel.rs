//! [`Channel`]: one channel's subscribers, the other nodes' counts, the presence roster, the cached
//! event and the subscription-count throttle, all under one mutex so that every change to them is
//! decided in one place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pusher_wire::ChannelKind;
use pusher_wire::limits::{SUBSCRIPTION_COUNT_THROTTLE_ABOVE, SUBSCRIPTION_COUNT_THROTTLE_SECS};

use super::NodeId;
use super::presence::Roster;
use crate::connection::outbox::{ConnId, Frame, Outbox};

/// Below Pusher's throttle threshold, count updates of one channel are at least this far apart;
/// changes in between are sent together by the hub's ticker, which runs this often.
pub(crate) const SMALL_CHANNEL_COUNT_INTERVAL: Duration = Duration::from_millis(100);

/// One channel of one app.
#[derive(Debug)]
pub(crate) struct Channel {
    kind: ChannelKind,
    state: Mutex<ChannelState>,
}

/// Everything a channel holds, guarded together.
#[derive(Debug, Default)]
pub(crate) struct ChannelState {
    /// Subscribed connections of this node.
    pub(crate) subscribers: HashMap<ConnId, Subscriber>,
    /// Subscribers on the other nodes of a cluster.
    pub(crate) remote: RemoteCounts,
    /// Presence members, cluster-wide (empty on other kinds).
    pub(crate) roster: Roster,
    /// The last REST event, on cache channels.
    pub(crate) cache: Option<Box<CachedEvent>>,
    /// Removed from the hub's map: whoever finds it after looking it up must look again.
    pub(crate) dropped: bool,
    /// A deferred count update includes a change made on this node (so its `subscription_count`
    /// webhook is this node's to send).
    pub(crate) count_pending_here: bool,
    /// When the subscription count was last sent, for the throttle on large channels.
    pub(crate) count_sent_at: Option<Instant>,
    /// A count change is waiting for the throttle to allow it.
    pub(crate) count_pending: bool,
}

/// One subscribed connection.
#[derive(Debug)]
pub(crate) struct Subscriber {
    /// Where to send its frames.
    pub(crate) outbox: Arc<Outbox>,
    /// Its presence user id, on presence channels.
    pub(crate) user_id: Option<Box<str>>,
}

/// How many subscribers each other node has, kept current by the cluster link.
#[derive(Debug, Default)]
pub(crate) struct RemoteCounts {
    /// A handful of nodes at most: a vector beats a map, and costs nothing on a single node.
    by_node: Vec<(NodeId, usize)>,
    total: usize,
}

impl RemoteCounts {
    /// Set `node`'s count; returns whether it changed.
    pub(crate) fn set(&mut self, node: NodeId, count: usize) -> bool {
        let position = self.by_node.iter().position(|(n, _)| *n == node);
        let old = position.map_or(0, |i| self.by_node[i].1);
        match (position, count) {
            (_, _) if old == count => return false,
            (Some(i), 0) => {
                self.by_node.swap_remove(i);
            }
            (Some(i), _) => self.by_node[i].1 = count,
            (None, _) => self.by_node.push((node, count)),
        }
        self.total = self.total - old + count;
        true
    }

    /// Subscribers on every other node together.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// Whether no other node has subscribers.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }
}

/// The last event published on a cache channel.
#[derive(Debug, Clone)]
pub(crate) struct CachedEvent {
    /// The channel-event frame, ready to send.
    pub(crate) frame: Frame,
    /// The event data, for the REST `cache` attribute.
    pub(crate) data: String,
    /// When it stops being replayed.
    pub(crate) expires: Instant,
}

/// What to do about the subscription count after a change.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CountUpdate {
    /// Send it now.
    Send,
    /// The throttle holds it back; the hub's ticker sends it later.
    Deferred,
    /// Nothing to send (feature off, presence channel, nobody left).
    None,
}

impl Channel {
    /// An empty channel.
    pub(crate) fn new(kind: ChannelKind) -> Self {
        Self { kind, state: Mutex::new(ChannelState::default()) }
    }

    /// The channel's kind.
    pub(crate) fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// Lock the channel. Never hold the guard across an `.await` (hub methods are synchronous).
    pub(crate) fn lock(&self) -> MutexGuard<'_, ChannelState> {
        // Every mutation under this lock is a single map or field update, so the state stays
        // consistent even if a holder panicked.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ChannelState {
    /// Queue `frame` for every subscriber but `except`; returns how many got it. A subscriber whose
    /// outbox is full is being closed as a slow consumer and simply misses it.
    pub(crate) fn broadcast(&self, frame: &Frame, except: Option<ConnId>) -> usize {
        let mut delivered = 0;
        for (id, subscriber) in &self.subscribers {
            if Some(*id) != except && subscriber.outbox.try_send(frame.clone()).is_ok() {
                delivered += 1;
            }
        }
        delivered
    }

    /// The cached event, if it has not expired.
    pub(crate) fn live_cache(&self, now: Instant) -> Option<&CachedEvent> {
        self.cache.as_deref().filter(|cached| cached.expires > now)
    }

    /// Subscribers on every node: what `subscription_count` and `occupied` report.
    pub(crate) fn total(&self) -> usize {
        self.subscribers.len() + self.remote.total()
    }

    /// Whether the channel can be dropped from the hub: nobody subscribed anywhere, no member left in
    /// the roster and nothing cached.
    pub(crate) fn is_idle(&self, now: Instant) -> bool {
        self.subscribers.is_empty()
            && self.remote.is_empty()
            && self.roster.is_empty()
            && self.live_cache(now).is_none()
    }

    /// The shortest time between two subscription-count updates of this channel: Pusher's 5 s above
    /// [`SUBSCRIPTION_COUNT_THROTTLE_ABOVE`] subscribers, so that N clients joining one by one cost
    /// O(N) frames rather than O(N²); [`SMALL_CHANNEL_COUNT_INTERVAL`] below, so that one client
    /// subscribing and unsubscribing in a loop cannot flood the other subscribers.
    fn count_interval(&self) -> Duration {
        if self.total() > SUBSCRIPTION_COUNT_THROTTLE_ABOVE {
            Duration::from_secs(SUBSCRIPTION_COUNT_THROTTLE_SECS)
        } else {
            SMALL_CHANNEL_COUNT_INTERVAL
        }
    }

    /// Decide whether a subscription-count change is sent now or deferred to the ticker.
    pub(crate) fn count_changed(&mut self, now: Instant) -> CountUpdate {
        if self.subscribers.is_empty() {
            self.count_pending = false;
            return CountUpdate::None;
        }
        if self.count_sent_at.is_some_and(|at| now < at + self.count_interval()) {
            self.count_pending = true;
            CountUpdate::Deferred
        } else {
            self.count_sent_at = Some(now);
            self.count_pending = false;
            CountUpdate::Send
        }
    }

    /// For the ticker: whether a deferred count is now due (and mark it sent).
    pub(crate) fn deferred_count_due(&mut self, now: Instant) -> bool {
        if self.count_pending && self.count_sent_at.is_none_or(|at| now >= at + self.count_interval()) {
            self.count_pending = false;
            self.count_sent_at = Some(now);
            !self.subscribers.is_empty()
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutboxLimits;

    fn state_with(n: u64) -> ChannelState {
        let mut state = ChannelState::default();
        for id in 0..n {
            let outbox = Arc::new(Outbox::new(ConnId(id), OutboxLimits::default()));
            state.subscribers.insert(ConnId(id), Subscriber { outbox, user_id: None });
        }
        state
    }

    #[test]
    fn small_channels_send_count_changes_at_most_every_100_ms() {
        let start = Instant::now();
        let mut state = state_with(100);
        assert_eq!(state.count_changed(start), CountUpdate::Send);
        assert_eq!(state.count_changed(start + Duration::from_millis(10)), CountUpdate::Deferred);
        assert_eq!(state.count_changed(start + Duration::from_millis(20)), CountUpdate::Deferred);
        assert!(!state.deferred_count_due(start + Duration::from_millis(50)));
        assert!(state.deferred_count_due(start + SMALL_CHANNEL_COUNT_INTERVAL));
        assert_eq!(state.count_changed(start + Duration::from_millis(300)), CountUpdate::Send);
    }

    #[test]
    fn large_channels_send_at_most_every_five_seconds() {
        let start = Instant::now();
        let mut state = state_with(101);
        assert_eq!(state.count_changed(start), CountUpdate::Send);
        assert_eq!(state.count_changed(start + Duration::from_secs(1)), CountUpdate::Deferred);
        assert_eq!(state.count_changed(start + Duration::from_secs(2)), CountUpdate::Deferred);
        assert!(!state.deferred_count_due(start + Duration::from_secs(4)));
        assert!(state.deferred_count_due(start + Duration::from_secs(5)));
        assert!(!state.deferred_count_due(start + Duration::from_secs(6)), "sent once");
        assert_eq!(state.count_changed(start + Duration::from_secs(10)), CountUpdate::Send);
    }

    #[test]
    fn remote_counts_add_up() {
        let mut counts = RemoteCounts::default();
        assert!(counts.set(NodeId(1), 3));
        assert!(counts.set(NodeId(2), 4));
        assert!(!counts.set(NodeId(2), 4));
        assert_eq!(counts.total(), 7);
        assert!(counts.set(NodeId(1), 1));
        assert!(counts.set(NodeId(2), 0));
        assert!(!counts.set(NodeId(2), 0), "an absent node has none");
        assert_eq!(counts.total(), 1);
        assert!(counts.set(NodeId(1), 0));
        assert!(counts.is_empty());
    }

    #[test]
    fn broadcast_skips_the_excluded_connection() {
        let state = state_with(3);
        assert_eq!(state.broadcast(&Frame::from("x"), Some(ConnId(1))), 2);
        assert_eq!(state.broadcast(&Frame::from("y"), None), 3);
    }
}
