//! [`Users`]: signed-in users of one app, for server-to-user events, `terminate_connections` and
//! watchlists.
//!
//! Each user id maps to this node's connections signed in as that user, the other nodes where the
//! user is signed in, and this node's connections watching them. A user is online while some node
//! has a connection signed in as them; the first sign-in anywhere sends `online` to this node's
//! watchers and the last sign-out anywhere `offline`. A user's first and last sign-in on this node
//! are told to the observer (so the other nodes learn of them). Locks are taken one shard at a
//! time, never nested, and frames are queued without waiting.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use pusher_wire::frame::server;

use super::shards::ShardedMap;
use super::{Except, NodeId, Observer, Transition};
use crate::connection::outbox::{ConnId, Frame, Kill, Outbox};

/// Every signed-in user of an app, and who watches whom.
#[derive(Debug)]
pub(crate) struct Users {
    entries: ShardedMap<UserEntry>,
    observer: Arc<dyn Observer>,
}

#[derive(Debug, Default)]
struct UserEntry {
    /// This node's connections signed in as this user.
    connections: HashMap<ConnId, Arc<Outbox>>,
    /// Other nodes with a connection signed in as this user.
    nodes: Vec<NodeId>,
    /// This node's connections whose watchlist names this user.
    watchers: HashMap<ConnId, Arc<Outbox>>,
}

impl UserEntry {
    fn is_online(&self) -> bool {
        !self.connections.is_empty() || !self.nodes.is_empty()
    }

    fn is_empty(&self) -> bool {
        !self.is_online() && self.watchers.is_empty()
    }
}

/// The watched users' status at sign-in.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct WatchlistStatus {
    /// Watched users with at least one signed-in connection.
    pub(crate) online: Vec<String>,
    /// The others.
    pub(crate) offline: Vec<String>,
}

impl Users {
    /// No users yet; sign-ins and user events are told to `observer`.
    pub(crate) fn new(observer: Arc<dyn Observer>) -> Self {
        Self { entries: ShardedMap::default(), observer }
    }

    /// Sign `outbox`'s connection in as `user_id`, watching `watchlist`. Returns the watched users'
    /// current status, which the caller sends after `signin_success`.
    pub(crate) fn sign_in(&self, user_id: &str, outbox: &Arc<Outbox>, watchlist: &[String]) -> WatchlistStatus {
        let id = outbox.id();
        self.entries.with_shard(user_id, |shard| {
            let entry = shard.entry(user_id.into()).or_default();
            let came_online = !entry.is_online();
            let first_here = entry.connections.is_empty();
            entry.connections.insert(id, outbox.clone());
            if came_online {
                notify(&entry.watchers, &server::watchlist_events(&[user_id], &[]).into());
            }
            if first_here {
                self.observer.observe(Transition::SignedIn { user_id });
            }
        });
        self.watch(outbox, watchlist)
    }

    /// A connection signed in again as the same user: swap its watchlist. The user stays online
    /// throughout, so their watchers hear nothing.
    pub(crate) fn rewatch(&self, outbox: &Arc<Outbox>, old: &[String], new: &[String]) -> WatchlistStatus {
        self.unwatch(outbox.id(), old);
        self.watch(outbox, new)
    }

    fn watch(&self, outbox: &Arc<Outbox>, watchlist: &[String]) -> WatchlistStatus {
        let id = outbox.id();
        let mut status = WatchlistStatus::default();
        for watched in watchlist {
            let online = self.entries.with_shard(watched, |shard| {
                let entry = shard.entry(watched.as_str().into()).or_default();
                entry.watchers.insert(id, outbox.clone());
                entry.is_online()
            });
            if online { &mut status.online } else { &mut status.offline }.push(watched.clone());
        }
        status
    }

    /// Undo [`Self::sign_in`] (the connection closed or signed in again).
    pub(crate) fn sign_out(&self, user_id: &str, conn: ConnId, watchlist: &[String]) {
        self.entries.with_shard(user_id, |shard| {
            let Some(entry) = shard.get_mut(user_id) else { return };
            if entry.connections.remove(&conn).is_some() && entry.connections.is_empty() {
                self.observer.observe(Transition::SignedOut { user_id });
                if !entry.is_online() {
                    notify(&entry.watchers, &server::watchlist_events(&[], &[user_id]).into());
                }
            }
            if entry.is_empty() {
                shard.remove(user_id);
            }
        });
        self.unwatch(conn, watchlist);
    }

    fn unwatch(&self, conn: ConnId, watchlist: &[String]) {
        for watched in watchlist {
            self.entries.with_shard(watched, |shard| {
                let Some(entry) = shard.get_mut(watched.as_str()) else { return };
                entry.watchers.remove(&conn);
                if entry.is_empty() {
                    shard.remove(watched.as_str());
                }
            });
        }
    }

    /// Queue a server-to-user event for every connection signed in as `user_id` here, and tell the
    /// observer (the user may be connected to other nodes too). Returns how many got it here.
    pub(crate) fn publish(&self, user_id: &str, frame: &Frame, except: Option<Except<'_>>) -> usize {
        self.entries.with_shard(user_id, |shard| {
            let delivered = shard.get(user_id).map_or(0, |entry| deliver(entry, frame, except.and_then(|e| e.local)));
            let except = except.map(|except| except.socket_id);
            self.observer.observe(Transition::UserEvent { user_id, frame, except });
            delivered
        })
    }

    /// Close every connection signed in as `user_id` here (the app's `terminate_connections`), and
    /// tell the observer; returns how many there were here.
    pub(crate) fn terminate(&self, user_id: &str) -> usize {
        let closed = self.kill(user_id);
        self.observer.observe(Transition::Terminated { user_id });
        closed
    }

    /// Queue an event another node published for `user_id`; returns how many got it.
    pub(crate) fn deliver(&self, user_id: &str, frame: &Frame, except: Option<ConnId>) -> usize {
        self.entries.with_shard(user_id, |shard| shard.get(user_id).map_or(0, |entry| deliver(entry, frame, except)))
    }

    /// Close this node's connections of `user_id` (terminated on another node); returns how many.
    pub(crate) fn kill(&self, user_id: &str) -> usize {
        self.entries.with_shard(user_id, |shard| {
            let Some(entry) = shard.get(user_id) else { return 0 };
            for outbox in entry.connections.values() {
                outbox.kill(Kill::Terminated);
            }
            entry.connections.len()
        })
    }

    /// `node` signed `user_id` in for the first time there.
    pub(crate) fn sign_in_remote(&self, node: NodeId, user_id: &str) {
        self.entries.with_shard(user_id, |shard| {
            let entry = shard.entry(user_id.into()).or_default();
            let came_online = !entry.is_online();
            if !entry.nodes.contains(&node) {
                entry.nodes.push(node);
            }
            if came_online {
                notify(&entry.watchers, &server::watchlist_events(&[user_id], &[]).into());
            }
        });
    }

    /// `node` has no connection signed in as `user_id` any more.
    pub(crate) fn sign_out_remote(&self, node: NodeId, user_id: &str) {
        self.entries.with_shard(user_id, |shard| {
            let Some(entry) = shard.get_mut(user_id) else { return };
            let was_online = entry.is_online();
            entry.nodes.retain(|n| *n != node);
            if was_online && !entry.is_online() {
                notify(&entry.watchers, &server::watchlist_events(&[], &[user_id]).into());
            }
            if entry.is_empty() {
                shard.remove(user_id);
            }
        });
    }

    /// Make `node`'s signed-in users exactly `users`.
    pub(crate) fn replace_node(&self, node: NodeId, users: &BTreeSet<String>) {
        for user_id in self.entries.keys_where(|entry| entry.nodes.contains(&node)) {
            if !users.contains(&*user_id) {
                self.sign_out_remote(node, &user_id);
            }
        }
        for user_id in users {
            self.sign_in_remote(node, user_id);
        }
    }

    /// The users signed in on this node.
    pub(crate) fn local_users(&self) -> BTreeSet<String> {
        self.entries.keys_where(|entry| !entry.connections.is_empty()).into_iter().map(String::from).collect()
    }

    /// Whether at least one connection is signed in as `user_id`, on any node.
    #[cfg(test)]
    pub(crate) fn is_online(&self, user_id: &str) -> bool {
        self.entries.with_shard(user_id, |shard| shard.get(user_id).is_some_and(UserEntry::is_online))
    }
}

fn deliver(entry: &UserEntry, frame: &Frame, except: Option<ConnId>) -> usize {
    entry
        .connections
        .iter()
        .filter(|(id, outbox)| Some(**id) != except && outbox.try_send(frame.clone()).is_ok())
        .count()
}

fn notify(watchers: &HashMap<ConnId, Arc<Outbox>>, frame: &Frame) {
    for outbox in watchers.values() {
        let _ = outbox.try_send(frame.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutboxLimits;
    use crate::connection::outbox::Batch;

    fn outbox(id: u64) -> Arc<Outbox> {
        Arc::new(Outbox::new(ConnId(id), OutboxLimits::default()))
    }

    fn queued(outbox: &Outbox) -> Vec<String> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let mut future = std::pin::pin!(outbox.next_batch());
        match std::future::Future::poll(future.as_mut(), &mut cx) {
            std::task::Poll::Ready(Batch::Frames(frames)) => frames.iter().map(|f| f.as_str().to_owned()).collect(),
            std::task::Poll::Ready(Batch::Kill(kill)) => vec![format!("killed {kill:?}")],
            std::task::Poll::Pending => vec![],
        }
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn watchers_see_first_sign_in_and_last_sign_out_only() {
        let users = Users::new(Arc::new(super::super::Ignore));
        let watcher = outbox(1);
        let status = users.sign_in("w", &watcher, &ids(&["a", "b"]));
        assert_eq!(status, WatchlistStatus { online: vec![], offline: ids(&["a", "b"]) });
        let (tab1, tab2) = (outbox(2), outbox(3));
        users.sign_in("a", &tab1, &[]);
        users.sign_in("a", &tab2, &[]);
        let online = queued(&watcher);
        assert_eq!(online.len(), 1, "two tabs are one online event: {online:?}");
        assert!(online[0].contains(r#"{"name":"online","user_ids":["a"]}"#));
        users.sign_out("a", ConnId(2), &[]);
        assert!(queued(&watcher).is_empty());
        users.sign_out("a", ConnId(3), &[]);
        assert!(queued(&watcher)[0].contains(r#"{"name":"offline","user_ids":["a"]}"#));
        let later = outbox(4);
        users.sign_in("b", &outbox(5), &[]);
        assert_eq!(
            users.sign_in("w2", &later, &ids(&["a", "b"])),
            WatchlistStatus { online: ids(&["b"]), offline: ids(&["a"]) }
        );
    }

    #[test]
    fn publish_and_terminate_reach_every_connection_of_the_user() {
        let users = Users::new(Arc::new(super::super::Ignore));
        let (a1, a2, b) = (outbox(1), outbox(2), outbox(3));
        users.sign_in("a", &a1, &[]);
        users.sign_in("a", &a2, &[]);
        users.sign_in("b", &b, &[]);
        assert_eq!(users.publish("a", &Frame::from("hello"), None), 2);
        assert_eq!(users.publish("nobody", &Frame::from("hello"), None), 0);
        assert_eq!(queued(&b), Vec::<String>::new());
        assert_eq!(users.terminate("a"), 2);
        assert_eq!(queued(&a1), ["killed Terminated"]);
        assert_eq!(queued(&b), Vec::<String>::new());
    }

    #[test]
    fn entries_are_dropped_when_nobody_uses_them() {
        let users = Users::new(Arc::new(super::super::Ignore));
        users.sign_in("a", &outbox(1), &ids(&["b"]));
        users.sign_out("a", ConnId(1), &ids(&["b"]));
        assert_eq!(users.entries.len(), 0);
        assert!(!users.is_online("a"));
    }

    #[test]
    fn a_user_online_on_another_node_is_online_here() {
        let users = Users::new(Arc::new(super::super::Ignore));
        let watcher = outbox(1);
        users.sign_in("w", &watcher, &ids(&["a"]));
        users.sign_in_remote(NodeId(7), "a");
        users.sign_in_remote(NodeId(8), "a");
        assert_eq!(queued(&watcher).len(), 1, "online once");
        users.sign_in("a", &outbox(2), &[]);
        users.sign_out("a", ConnId(2), &[]);
        users.sign_out_remote(NodeId(7), "a");
        assert!(queued(&watcher).is_empty(), "node 8 still has a");
        assert_eq!(
            users.sign_in("w2", &outbox(3), &ids(&["a"])),
            WatchlistStatus { online: ids(&["a"]), offline: vec![] }
        );
        users.replace_node(NodeId(8), &BTreeSet::new());
        assert!(queued(&watcher)[0].contains(r#"{"name":"offline","user_ids":["a"]}"#));
        assert_eq!(users.local_users(), ["w".to_owned(), "w2".to_owned()].into());
    }
}
