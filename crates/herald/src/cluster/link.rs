//! [`Link`]: the hub's observer in a cluster. It turns each local transition into a [`Forward`] and
//! `try_send`s it into the one bounded queue that the Redis task drains; it never waits. What a
//! node decides alone (`subscription_count`, `client_event` and `cache_miss` webhooks) goes
//! straight to the app's webhooks; occupancy and membership webhooks are left to Redis, which sees
//! every node.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pusher_wire::{ChannelKind, RawJson, SocketId};
use tokio::sync::mpsc;

use crate::connection::outbox::Frame;
use crate::hub::{Observer, Transition};
use crate::metrics;
use crate::webhooks::Webhooks;

/// How many transitions may wait for the Redis task. A full queue costs the events in it (counted)
/// and a re-announcement of this node's share; it never slows the hub.
pub(crate) const QUEUE: usize = 64 * 1024;

/// One transition on its way to Redis.
#[derive(Debug)]
pub(crate) struct Outbound {
    /// The app it belongs to.
    pub(crate) app: Arc<str>,
    /// What to forward.
    pub(crate) forward: Forward,
}

/// What the Redis task forwards.
#[derive(Debug)]
pub(crate) enum Forward {
    /// This node's subscriber count of a channel.
    Count {
        /// The channel.
        channel: Box<str>,
        /// Subscribers here.
        subscribers: usize,
    },
    /// A user's first connection to a presence channel here.
    MemberAdded {
        /// The channel.
        channel: Box<str>,
        /// The user.
        user_id: Box<str>,
        /// Their `user_info`.
        info: Option<RawJson>,
    },
    /// A user's last connection to a presence channel here left.
    MemberRemoved {
        /// The channel.
        channel: Box<str>,
        /// The user.
        user_id: Box<str>,
    },
    /// A user's first connection here signed in.
    SignedIn {
        /// The user.
        user_id: Box<str>,
    },
    /// A user's last signed-in connection here is gone.
    SignedOut {
        /// The user.
        user_id: Box<str>,
    },
    /// A REST event, for the other nodes' subscribers.
    Event {
        /// The channel.
        channel: Box<str>,
        /// The frame, shared with the local subscribers.
        frame: Frame,
        /// The socket the publisher excluded.
        except: Option<SocketId>,
        /// The data, on cache channels (the other nodes keep it for `info=cache`).
        cached: Option<Box<str>>,
    },
    /// A client event, for the other nodes' subscribers.
    ClientEvent {
        /// The channel.
        channel: Box<str>,
        /// The frame.
        frame: Frame,
    },
    /// A server-to-user event, for the user's connections on other nodes.
    UserEvent {
        /// The user.
        user_id: Box<str>,
        /// The frame.
        frame: Frame,
        /// The socket the publisher excluded.
        except: Option<SocketId>,
    },
    /// Terminate the user's connections on the other nodes.
    Terminate {
        /// The user.
        user_id: Box<str>,
    },
}

impl Forward {
    /// Whether this changes the node's share (rather than being an event).
    pub(crate) fn is_share_change(&self) -> bool {
        matches!(
            self,
            Self::Count { .. }
                | Self::MemberAdded { .. }
                | Self::MemberRemoved { .. }
                | Self::SignedIn { .. }
                | Self::SignedOut { .. }
        )
    }
}

/// Set when a share change could not be queued: the Redis task re-announces the whole share.
#[derive(Debug, Default)]
pub(crate) struct Overflow {
    share_lost: AtomicBool,
}

impl Overflow {
    /// Whether a share change was lost since the last call (and forget it).
    pub(crate) fn take(&self) -> bool {
        self.share_lost.swap(false, Ordering::AcqRel)
    }
}

/// One app's observer in a cluster.
#[derive(Debug)]
pub(crate) struct Link {
    app: Arc<str>,
    queue: mpsc::Sender<Outbound>,
    webhooks: Webhooks,
    overflow: Arc<Overflow>,
    metrics: metrics::Cluster,
}

impl Link {
    /// The observer of app `app`, forwarding into `queue`.
    pub(crate) fn new(
        app: &str,
        queue: mpsc::Sender<Outbound>,
        webhooks: Webhooks,
        overflow: Arc<Overflow>,
        metrics: metrics::Cluster,
    ) -> Self {
        Self { app: app.into(), queue, webhooks, overflow, metrics }
    }

    fn forward(&self, forward: Forward) {
        let share_change = forward.is_share_change();
        if self.queue.try_send(Outbound { app: self.app.clone(), forward }).is_err() {
            self.metrics.queue_overflows.inc();
            if share_change {
                self.overflow.share_lost.store(true, Ordering::Release);
            } else {
                self.metrics.events_lost.inc();
            }
        }
    }
}

impl Observer for Link {
    fn observe(&self, transition: Transition<'_>) {
        let forward = match transition {
            // Occupancy follows from the counts, which Redis compares across nodes.
            Transition::Occupied { .. } | Transition::Vacated { .. } => return,
            Transition::CountSent { .. } | Transition::CacheMiss { .. } => {
                self.webhooks.observe_node_local(transition);
                return;
            }
            Transition::ClientEvent(relayed) => {
                self.webhooks.observe_node_local(transition);
                Forward::ClientEvent { channel: relayed.channel.into(), frame: relayed.frame.clone() }
            }
            Transition::Counted { channel, subscribers } => Forward::Count { channel: channel.into(), subscribers },
            Transition::MemberAdded { channel, member } => Forward::MemberAdded {
                channel: channel.into(),
                user_id: member.user_id.as_str().into(),
                info: member.user_info.clone(),
            },
            Transition::MemberRemoved { channel, user_id } => {
                Forward::MemberRemoved { channel: channel.into(), user_id: user_id.into() }
            }
            Transition::Published { channel, frame, data, except } => {
                let cached = ChannelKind::of(channel).is_cache().then(|| data.into());
                Forward::Event { channel: channel.into(), frame: frame.clone(), except: except.cloned(), cached }
            }
            Transition::SignedIn { user_id } => Forward::SignedIn { user_id: user_id.into() },
            Transition::SignedOut { user_id } => Forward::SignedOut { user_id: user_id.into() },
            Transition::UserEvent { user_id, frame, except } => {
                Forward::UserEvent { user_id: user_id.into(), frame: frame.clone(), except: except.cloned() }
            }
            Transition::Terminated { user_id } => Forward::Terminate { user_id: user_id.into() },
        };
        self.forward(forward);
    }

    fn forwards_events(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Relayed;

    fn link(capacity: usize) -> (Link, mpsc::Receiver<Outbound>, Arc<Overflow>, metrics::Cluster) {
        let (sender, receiver) = mpsc::channel(capacity);
        let overflow = Arc::new(Overflow::default());
        let counters = metrics::Cluster::default();
        (Link::new("1", sender, Webhooks::disabled(), overflow.clone(), counters.clone()), receiver, overflow, counters)
    }

    #[test]
    fn a_full_queue_costs_the_event_or_a_re_announcement_never_a_wait() {
        let (link, mut queue, overflow, counters) = link(1);
        link.observe(Transition::Counted { channel: "c", subscribers: 1 });
        assert!(!overflow.take());
        // The queue is full: a share change asks for a re-announcement, an event is lost.
        link.observe(Transition::Counted { channel: "c", subscribers: 2 });
        assert!(overflow.take(), "a lost share change is made good by re-announcing");
        assert!(!overflow.take(), "once");
        let frame = Frame::from("{}");
        let socket_id = SocketId::new(1, 1);
        let relayed = Relayed {
            channel: "private-c",
            event: "client-x",
            data: None,
            frame: &frame,
            socket_id: &socket_id,
            user_id: None,
        };
        link.observe(Transition::ClientEvent(relayed));
        assert_eq!(counters.queue_overflows.get(), 2);
        assert_eq!(counters.events_lost.get(), 1);
        assert!(matches!(queue.try_recv().map(|o| o.forward), Ok(Forward::Count { subscribers: 1, .. })));
    }

    #[test]
    fn occupancy_is_left_to_the_counts_and_cache_channels_carry_their_data() {
        let (link, mut queue, _, _) = link(8);
        link.observe(Transition::Occupied { channel: "c" });
        link.observe(Transition::Vacated { channel: "c" });
        assert!(queue.try_recv().is_err(), "nothing to forward: the counts say it");
        let frame = Frame::from("{}");
        link.observe(Transition::Published { channel: "cache-c", frame: &frame, data: "\"d\"", except: None });
        link.observe(Transition::Published { channel: "news", frame: &frame, data: "\"d\"", except: None });
        let cached = |o: Outbound| match o.forward {
            Forward::Event { cached, .. } => cached.map(String::from),
            _ => panic!("an event"),
        };
        assert_eq!(cached(queue.try_recv().unwrap()).as_deref(), Some("\"d\""));
        assert_eq!(cached(queue.try_recv().unwrap()), None);
        assert!(link.forwards_events());
    }
}
