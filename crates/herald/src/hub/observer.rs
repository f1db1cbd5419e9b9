//! The one seam between the hub and everything that reacts to it: [`Observer`] hears every local
//! [`Transition`], and nothing else the hub does.
//!
//! Webhooks are one observer; in a cluster the Redis link is another (it forwards events and share
//! changes to the other nodes, and lets Redis decide the webhooks that are cluster-wide). The hub
//! imports neither. Observers are called with the channel (or user shard) locked, so the
//! transitions of one channel reach them in the order the channel saw them; they must never wait
//! (`try_send` into a bounded queue) and must never call back into the hub.

use pusher_wire::presence::PresenceMember;
use pusher_wire::{RawJson, SocketId};

use crate::connection::outbox::Frame;

/// Something that happened on this node.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Transition<'a> {
    /// The channel got its first subscriber on this node.
    Occupied {
        /// The channel.
        channel: &'a str,
    },
    /// The channel's last subscriber on this node left.
    Vacated {
        /// The channel.
        channel: &'a str,
    },
    /// The number of this node's subscribers of the channel changed (every subscribe and
    /// unsubscribe, before any throttling).
    Counted {
        /// The channel.
        channel: &'a str,
        /// Subscribers on this node.
        subscribers: usize,
    },
    /// The subscribers were sent a new `subscription_count` because of a change on this node.
    CountSent {
        /// The channel.
        channel: &'a str,
        /// The count sent (cluster-wide).
        count: usize,
    },
    /// A user's first connection to a presence channel on this node.
    MemberAdded {
        /// The channel.
        channel: &'a str,
        /// The user and their `user_info`.
        member: &'a PresenceMember,
    },
    /// A user's last connection to a presence channel on this node left.
    MemberRemoved {
        /// The channel.
        channel: &'a str,
        /// The user.
        user_id: &'a str,
    },
    /// A REST event was queued for this node's subscribers.
    Published {
        /// The channel.
        channel: &'a str,
        /// The encoded `channel_event`, shared with every recipient.
        frame: &'a Frame,
        /// The event data, kept with the frame on cache channels.
        data: &'a str,
        /// The socket the publisher asked to leave out, wherever it is connected.
        except: Option<&'a SocketId>,
    },
    /// A client event was relayed to this node's other subscribers.
    ClientEvent(Relayed<'a>),
    /// A subscriber of a cache channel found nothing cached.
    CacheMiss {
        /// The channel.
        channel: &'a str,
    },
    /// A user's first connection on this node signed in.
    SignedIn {
        /// The user.
        user_id: &'a str,
    },
    /// A user's last signed-in connection on this node is gone.
    SignedOut {
        /// The user.
        user_id: &'a str,
    },
    /// A server-to-user event was queued for the user's connections on this node.
    UserEvent {
        /// The user.
        user_id: &'a str,
        /// The encoded event.
        frame: &'a Frame,
        /// The socket the publisher asked to leave out.
        except: Option<&'a SocketId>,
    },
    /// The app terminated the user's connections on this node.
    Terminated {
        /// The user.
        user_id: &'a str,
    },
}

/// A client event on its way from its sender to the channel's other subscribers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Relayed<'a> {
    /// The channel.
    pub(crate) channel: &'a str,
    /// The event name.
    pub(crate) event: &'a str,
    /// The event data as sent.
    pub(crate) data: Option<&'a RawJson>,
    /// The encoded frame, shared with every recipient.
    pub(crate) frame: &'a Frame,
    /// The sender.
    pub(crate) socket_id: &'a SocketId,
    /// The sender's user id, on presence channels.
    pub(crate) user_id: Option<&'a str>,
}

/// Hears the hub's local transitions. Called with hub locks held: never wait, never call the hub.
pub(crate) trait Observer: Send + Sync + std::fmt::Debug {
    /// React to one transition.
    fn observe(&self, transition: Transition<'_>);

    /// Whether published frames are wanted even when this node has no subscriber for them (a
    /// cluster forwards them to the other nodes). When false, nothing is encoded for an empty channel.
    fn forwards_events(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct Ignore;

#[cfg(test)]
impl Observer for Ignore {
    fn observe(&self, _: Transition<'_>) {}
}
