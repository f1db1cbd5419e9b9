//! [`Roster`]: the members of one presence channel, cluster-wide, deduplicated by user id.
//!
//! A user with several connections (tabs) is one member, and so is a user connected to several
//! nodes. The roster counts this node's connections per user and remembers which other nodes have
//! the user, so it can tell two things apart: a user's first (last) connection on this node, which
//! this node announces to the cluster, and a user's first (last) connection anywhere, which is when
//! this node's subscribers get `member_added` (`member_removed`).

use std::collections::HashMap;

use pusher_wire::RawJson;

use super::NodeId;

/// The members of a presence channel.
#[derive(Debug, Default)]
pub(crate) struct Roster {
    /// Boxed, and absent while empty: every channel has a roster, few channels are presence
    /// channels, and an empty map inline would cost every channel its 48 bytes (the extra
    /// allocation is paid by presence channels only).
    #[allow(clippy::box_collection)]
    members: Option<Box<HashMap<String, Member>>>,
}

#[derive(Debug)]
struct Member {
    /// The `user_info` of the user's first connection anywhere; later connections do not change it.
    info: Option<RawJson>,
    /// This node's connections of the user.
    local: usize,
    /// Other nodes with at least one connection of the user.
    nodes: Vec<NodeId>,
}

impl Member {
    fn is_gone(&self) -> bool {
        self.local == 0 && self.nodes.is_empty()
    }
}

/// What a change did to a user's membership.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    /// It was the user's first connection on this node (or their last one left).
    pub(crate) here: bool,
    /// The user was not a member anywhere before (or is not one anywhere now).
    pub(crate) anywhere: bool,
}

impl Roster {
    fn get_mut(&mut self, user_id: &str) -> Option<&mut Member> {
        self.members.as_mut()?.get_mut(user_id)
    }

    fn insert(&mut self, user_id: &str, member: Member) {
        self.members.get_or_insert_with(Box::default).insert(user_id.to_owned(), member);
    }

    fn remove(&mut self, user_id: &str) {
        if let Some(members) = self.members.as_mut() {
            members.remove(user_id);
            if members.is_empty() {
                self.members = None;
            }
        }
    }

    fn all(&self) -> impl Iterator<Item = (&String, &Member)> {
        self.members.iter().flat_map(|members| members.iter())
    }

    /// Add a connection of `user_id` on this node.
    pub(crate) fn join(&mut self, user_id: &str, info: Option<&RawJson>) -> Change {
        match self.get_mut(user_id) {
            Some(member) => {
                member.local += 1;
                Change { here: member.local == 1, anywhere: false }
            }
            None => {
                self.insert(user_id, Member { info: info.cloned(), local: 1, nodes: Vec::new() });
                Change { here: true, anywhere: true }
            }
        }
    }

    /// Remove a connection of `user_id` on this node.
    pub(crate) fn leave(&mut self, user_id: &str) -> Change {
        let Some(member) = self.get_mut(user_id) else { return Change::default() };
        member.local = member.local.saturating_sub(1);
        let here = member.local == 0;
        let anywhere = member.is_gone();
        if anywhere {
            self.remove(user_id);
        }
        Change { here, anywhere }
    }

    /// Another node reports its first connection of `user_id`. Returns true if the user was not a
    /// member anywhere before.
    pub(crate) fn join_remote(&mut self, node: NodeId, user_id: &str, info: Option<&RawJson>) -> bool {
        match self.get_mut(user_id) {
            Some(member) => {
                if !member.nodes.contains(&node) {
                    member.nodes.push(node);
                }
                false
            }
            None => {
                let member = Member { info: info.cloned(), local: 0, nodes: vec![node] };
                self.insert(user_id, member);
                true
            }
        }
    }

    /// Another node reports that its last connection of `user_id` left. Returns true if the user is
    /// no longer a member anywhere.
    pub(crate) fn leave_remote(&mut self, node: NodeId, user_id: &str) -> bool {
        let Some(member) = self.get_mut(user_id) else { return false };
        member.nodes.retain(|n| *n != node);
        let gone = member.is_gone();
        if gone {
            self.remove(user_id);
        }
        gone
    }

    /// The users `node` has in this channel.
    pub(crate) fn users_on(&self, node: NodeId) -> Vec<String> {
        self.all().filter(|(_, m)| m.nodes.contains(&node)).map(|(id, _)| id.clone()).collect()
    }

    /// The users with a connection on this node, with their `user_info`.
    pub(crate) fn local_members(&self) -> impl Iterator<Item = (&str, Option<&RawJson>)> {
        self.all().filter(|(_, m)| m.local > 0).map(|(id, m)| (id.as_str(), m.info.as_ref()))
    }

    /// Whether `user_id` is a member anywhere.
    pub(crate) fn contains(&self, user_id: &str) -> bool {
        self.members.as_ref().is_some_and(|members| members.contains_key(user_id))
    }

    /// Number of distinct users, cluster-wide.
    pub(crate) fn len(&self) -> usize {
        self.members.as_ref().map_or(0, |members| members.len())
    }

    /// Whether nobody is a member anywhere.
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_none()
    }

    /// Every member as (user id, `user_info` JSON text).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.all().map(|(id, m)| (id.as_str(), m.info.as_ref().map_or("null", RawJson::get)))
    }

    /// Every user id.
    pub(crate) fn user_ids(&self) -> impl Iterator<Item = &str> {
        self.all().map(|(id, _)| id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE_AND_ANYWHERE: Change = Change { here: true, anywhere: true };
    const HERE_ONLY: Change = Change { here: true, anywhere: false };
    const NEITHER: Change = Change { here: false, anywhere: false };

    #[test]
    fn first_join_and_last_leave_are_reported() {
        let mut roster = Roster::default();
        let ann = RawJson::parse(r#"{"name":"Ann"}"#).unwrap();
        assert_eq!(roster.join("1", Some(&ann)), HERE_AND_ANYWHERE);
        assert_eq!(roster.join("1", None), NEITHER, "a second tab is not a new member");
        assert_eq!(roster.join("2", None), HERE_AND_ANYWHERE);
        assert_eq!(roster.len(), 2);
        assert_eq!(roster.leave("1"), NEITHER, "one tab of user 1 is still there");
        assert!(roster.contains("1"));
        assert_eq!(roster.leave("1"), HERE_AND_ANYWHERE);
        assert_eq!(roster.leave("1"), Change::default(), "unknown users are ignored");
        let members: Vec<_> = roster.iter().collect();
        assert_eq!(members, [("2", "null")]);
    }

    #[test]
    fn the_first_connections_info_is_kept() {
        let mut roster = Roster::default();
        roster.join("1", Some(&RawJson::parse("1").unwrap()));
        roster.join("1", Some(&RawJson::parse("2").unwrap()));
        assert_eq!(roster.iter().collect::<Vec<_>>(), [("1", "1")]);
    }

    #[test]
    fn a_user_on_two_nodes_is_one_member() {
        let (a, b) = (NodeId(1), NodeId(2));
        let mut roster = Roster::default();
        assert!(roster.join_remote(a, "u", Some(&RawJson::parse("7").unwrap())));
        assert!(!roster.join_remote(b, "u", None), "already a member through node a");
        assert!(!roster.join_remote(b, "u", None), "the same node twice changes nothing");
        assert_eq!(roster.join("u", None), HERE_ONLY, "first here, not first anywhere");
        assert_eq!(roster.len(), 1);
        assert_eq!(roster.local_members().collect::<Vec<_>>(), [("u", Some(&RawJson::parse("7").unwrap()))]);
        assert!(!roster.leave_remote(a, "u"));
        assert_eq!(roster.leave("u"), HERE_ONLY, "node b still has the user");
        assert_eq!(roster.users_on(b), ["u"]);
        assert!(roster.leave_remote(b, "u"), "the last node let go");
        assert!(roster.is_empty());
    }
}
