//! What the other nodes of a cluster did, applied here: [`Hub::apply`] is the one way in for the
//! cluster link. It takes the same locks, in the same order, and sends the same frames as a local
//! change would, but tells the observer nothing (the change is not this node's to announce).
//!
//! Each remote node's contribution is kept apart (its subscription count per channel, its
//! presence members, its signed-in users), so a node's later message replaces its earlier one and a
//! node that dies is subtracted exactly. [`Share`] is that contribution as a whole, for a node
//! (re)joining the cluster or re-reading another's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use pusher_wire::frame::server;
use pusher_wire::{ChannelName, RawJson};

use super::channel::ChannelState;
use super::{CachedEvent, Hub, NodeId, keep_cached};
use crate::connection::outbox::{ConnId, Frame};

/// A change made on another node.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Remote<'a> {
    /// A REST event published there: queue it for the subscribers here (and keep it on cache
    /// channels).
    Event {
        /// The channel.
        channel: &'a ChannelName,
        /// The frame exactly as the publishing node encoded it.
        frame: &'a Frame,
        /// The event data, used on cache channels only.
        data: &'a str,
        /// The connection the publisher excluded, when it is on this node.
        except: Option<ConnId>,
    },
    /// The last event of a cache channel, read from Redis (a node starting after it was published):
    /// kept unless this node has a newer one; delivered to nobody.
    Cached {
        /// The channel.
        channel: &'a ChannelName,
        /// The frame as the publishing node encoded it.
        frame: &'a Frame,
        /// The event data.
        data: &'a str,
        /// When it stops being replayed.
        expires: Instant,
    },
    /// A client event sent by a connection there.
    ClientEvent {
        /// The channel.
        channel: &'a str,
        /// The frame as the sender's node encoded it (with `user_id` on presence channels).
        frame: &'a Frame,
    },
    /// A server-to-user event published there.
    UserEvent {
        /// The user.
        user_id: &'a str,
        /// The encoded event.
        frame: &'a Frame,
        /// The connection the publisher excluded, when it is on this node.
        except: Option<ConnId>,
    },
    /// The app terminated a user's connections there: close them here too.
    Terminate {
        /// The user.
        user_id: &'a str,
    },
    /// The number of subscribers `node` has on a channel.
    Count {
        /// The node.
        node: NodeId,
        /// The channel.
        channel: &'a ChannelName,
        /// Its subscribers there.
        subscribers: usize,
    },
    /// A user's first connection to a presence channel on `node`.
    MemberAdded {
        /// The node.
        node: NodeId,
        /// The channel.
        channel: &'a ChannelName,
        /// The user.
        user_id: &'a str,
        /// Their `user_info`.
        user_info: Option<&'a RawJson>,
    },
    /// A user's last connection to a presence channel on `node` left.
    MemberRemoved {
        /// The node.
        node: NodeId,
        /// The channel.
        channel: &'a ChannelName,
        /// The user.
        user_id: &'a str,
    },
    /// A user's first connection on `node` signed in.
    SignedIn {
        /// The node.
        node: NodeId,
        /// The user.
        user_id: &'a str,
    },
    /// A user's last signed-in connection on `node` is gone.
    SignedOut {
        /// The node.
        node: NodeId,
        /// The user.
        user_id: &'a str,
    },
    /// Everything `node` contributes, replacing what was known of it.
    Share {
        /// The node.
        node: NodeId,
        /// Its contribution.
        share: &'a Share,
    },
    /// `node` left the cluster or died: subtract everything it contributed.
    NodeGone {
        /// The node.
        node: NodeId,
    },
}

/// One node's contribution to an app: what it announces to the cluster and what the others keep of
/// it.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Share {
    /// Subscribers per channel (channels without subscribers are absent).
    pub(crate) counts: BTreeMap<String, usize>,
    /// Presence members per channel, with their `user_info`.
    pub(crate) members: BTreeMap<String, BTreeMap<String, Option<RawJson>>>,
    /// Signed-in users.
    pub(crate) users: BTreeSet<String>,
}

impl Hub {
    /// Apply a change made on another node. Returns how many connections here were sent an event.
    pub(crate) fn apply(&self, remote: Remote<'_>, now: Instant) -> usize {
        match remote {
            Remote::Event { channel, frame, data, except } => self.deliver(channel, frame, data, except, now),
            Remote::ClientEvent { channel, frame } => {
                self.channels.get(channel).map_or(0, |entry| entry.lock().broadcast(frame, None))
            }
            Remote::UserEvent { user_id, frame, except } => self.users.deliver(user_id, frame, except),
            Remote::Terminate { user_id } => self.users.kill(user_id),
            Remote::Cached { channel, frame, data, expires } => {
                self.with_channel(channel, now, |state| {
                    if state.live_cache(now).is_none() && expires > now {
                        state.cache =
                            Some(Box::new(CachedEvent { frame: frame.clone(), data: data.to_owned(), expires }));
                    }
                });
                0
            }
            Remote::Count { node, channel, subscribers } => {
                self.set_count(node, channel, subscribers, now);
                0
            }
            Remote::MemberAdded { node, channel, user_id, user_info } => {
                self.add_member(node, channel, user_id, user_info, now);
                0
            }
            Remote::MemberRemoved { node, channel, user_id } => {
                self.with_existing(channel.as_str(), now, |state| {
                    remove_member(state, node, channel.as_str(), user_id)
                });
                0
            }
            Remote::SignedIn { node, user_id } => {
                self.users.sign_in_remote(node, user_id);
                0
            }
            Remote::SignedOut { node, user_id } => {
                self.users.sign_out_remote(node, user_id);
                0
            }
            Remote::Share { node, share } => {
                self.replace_share(node, share, now);
                0
            }
            Remote::NodeGone { node } => {
                self.replace_share(node, &Share::default(), now);
                0
            }
        }
    }

    /// What this node contributes, for announcing it to the cluster.
    pub(crate) fn local_share(&self) -> Share {
        let mut share = Share::default();
        for (name, entry) in self.channels.entries() {
            let state = entry.lock();
            if !state.subscribers.is_empty() {
                share.counts.insert(name.clone().into(), state.subscribers.len());
            }
            let members: BTreeMap<String, Option<RawJson>> =
                state.roster.local_members().map(|(id, info)| (id.to_owned(), info.cloned())).collect();
            if !members.is_empty() {
                share.members.insert(name.into(), members);
            }
        }
        share.users = self.users.local_users();
        share
    }

    fn deliver(&self, channel: &ChannelName, frame: &Frame, data: &str, except: Option<ConnId>, now: Instant) -> usize {
        if channel.kind().is_cache() {
            return self.with_channel(channel, now, |state| {
                let delivered = state.broadcast(frame, except);
                keep_cached(state, frame.clone(), data, now);
                delivered
            });
        }
        self.channels.get(channel.as_str()).map_or(0, |entry| entry.lock().broadcast(frame, except))
    }

    fn set_count(&self, node: NodeId, channel: &ChannelName, subscribers: usize, now: Instant) {
        let name = channel.as_str();
        let kind = channel.kind();
        let update = |state: &mut ChannelState| {
            if state.remote.set(node, subscribers) {
                self.count_changed_remotely(state, name, kind, now);
            }
        };
        if subscribers == 0 {
            self.with_existing(name, now, update);
        } else {
            self.with_channel(channel, now, update);
        }
    }

    fn add_member(
        &self,
        node: NodeId,
        channel: &ChannelName,
        user_id: &str,
        user_info: Option<&RawJson>,
        now: Instant,
    ) {
        let name = channel.as_str();
        self.with_channel(channel, now, |state| {
            if state.roster.join_remote(node, user_id, user_info) {
                let info = user_info.map_or("null", RawJson::get);
                state.broadcast(&server::member_added(name, user_id, info).into(), None);
            }
        });
    }

    /// Make `node`'s contribution exactly `share`: what it no longer has is removed (with
    /// `member_removed` where that was the user's last node), what is new is added.
    fn replace_share(&self, node: NodeId, share: &Share, now: Instant) {
        let nobody = BTreeMap::new();
        for (name, entry) in self.channels.entries() {
            let kind = entry.kind();
            let keep = share.members.get(&*name).unwrap_or(&nobody);
            let subscribers = share.counts.get(&*name).copied().unwrap_or(0);
            self.with_existing(&name, now, |state| {
                for user_id in state.roster.users_on(node) {
                    if !keep.contains_key(&user_id) {
                        remove_member(state, node, &name, &user_id);
                    }
                }
                if state.remote.set(node, subscribers) {
                    self.count_changed_remotely(state, &name, kind, now);
                }
            });
        }
        for (name, members) in &share.members {
            let Ok(channel) = ChannelName::parse(name) else { continue };
            for (user_id, info) in members {
                self.add_member(node, &channel, user_id, info.as_ref(), now);
            }
        }
        for (name, subscribers) in &share.counts {
            if let Ok(channel) = ChannelName::parse(name) {
                self.set_count(node, &channel, *subscribers, now);
            }
        }
        self.users.replace_node(node, &share.users);
    }
}

/// `node` no longer has `user_id`: `member_removed` here if that was the user's last node.
fn remove_member(state: &mut ChannelState, node: NodeId, channel: &str, user_id: &str) {
    if state.roster.leave_remote(node, user_id) {
        state.broadcast(&server::member_removed(channel, user_id).into(), None);
    }
}
