//! [`Roster`]: the members of one presence channel, deduplicated by user id.
//!
//! A user with several connections (tabs) is one member. The roster counts connections per user and
//! reports whether a join was the user's first connection and whether a leave was their last, which
//! is exactly when `member_added` and `member_removed` are sent.

use std::collections::HashMap;

use pusher_wire::RawJson;

/// The members of a presence channel.
#[derive(Debug, Default)]
pub struct Roster {
    members: HashMap<String, Member>,
}

#[derive(Debug)]
struct Member {
    /// The first connection's `user_info`; later connections do not change it.
    info: Option<RawJson>,
    connections: usize,
}

impl Roster {
    /// Add a connection of `user_id`. Returns true if it is the user's first (send `member_added`).
    pub fn join(&mut self, user_id: &str, info: Option<&RawJson>) -> bool {
        match self.members.get_mut(user_id) {
            Some(member) => {
                member.connections += 1;
                false
            }
            None => {
                self.members.insert(user_id.to_owned(), Member { info: info.cloned(), connections: 1 });
                true
            }
        }
    }

    /// Remove a connection of `user_id`. Returns true if it was the user's last (send `member_removed`).
    pub fn leave(&mut self, user_id: &str) -> bool {
        let Some(member) = self.members.get_mut(user_id) else { return false };
        member.connections -= 1;
        if member.connections == 0 {
            self.members.remove(user_id);
            true
        } else {
            false
        }
    }

    /// Whether `user_id` is a member.
    pub fn contains(&self, user_id: &str) -> bool {
        self.members.contains_key(user_id)
    }

    /// Number of distinct users.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Every member as (user id, `user_info` JSON text).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.members.iter().map(|(id, m)| (id.as_str(), m.info.as_ref().map_or("null", RawJson::get)))
    }

    /// Every user id.
    pub fn user_ids(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_join_and_last_leave_are_reported() {
        let mut roster = Roster::default();
        let ann = RawJson::parse(r#"{"name":"Ann"}"#).unwrap();
        assert!(roster.join("1", Some(&ann)));
        assert!(!roster.join("1", None), "a second tab is not a new member");
        assert!(roster.join("2", None));
        assert_eq!(roster.len(), 2);
        assert!(!roster.leave("1"), "one tab of user 1 is still there");
        assert!(roster.contains("1"));
        assert!(roster.leave("1"));
        assert!(!roster.leave("1"), "unknown users are ignored");
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
}
