//! [`Subscriptions`]: the channels one connection is subscribed to, with its presence user id on
//! presence channels.
//!
//! Most connections hold one channel or a few, and every idle connection pays for this set: a hash
//! map's smallest table has four slots (about 200 bytes for one subscription), so a few are kept in
//! a vector sized to fit instead. Past [`SCAN_LIMIT`] a map takes over, so that a connection near
//! the limit of 1,000 does not compare every name on each client event.

use std::collections::HashMap;

use pusher_wire::ChannelName;

/// Most subscriptions kept in the vector.
const SCAN_LIMIT: usize = 16;

/// A connection's channels and its presence user id on each.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions(Set);

#[derive(Debug)]
enum Set {
    Few(Vec<(ChannelName, Option<Box<str>>)>),
    Many(HashMap<ChannelName, Option<Box<str>>>),
}

impl Default for Set {
    fn default() -> Self {
        Self::Few(Vec::new())
    }
}

impl Subscriptions {
    /// The presence user id on `channel` (`Some(None)` on a channel that is not presence), or
    /// `None` if not subscribed.
    pub(crate) fn get(&self, channel: &ChannelName) -> Option<Option<&str>> {
        match &self.0 {
            Set::Few(few) => few.iter().find(|(name, _)| name == channel).map(|(_, user)| user.as_deref()),
            Set::Many(many) => many.get(channel).map(|user| user.as_deref()),
        }
    }

    /// Whether any channel held satisfies `test`.
    pub(crate) fn any(&self, test: impl Fn(&ChannelName) -> bool) -> bool {
        match &self.0 {
            Set::Few(few) => few.iter().any(|(name, _)| test(name)),
            Set::Many(many) => many.keys().any(test),
        }
    }

    pub(crate) fn contains(&self, channel: &ChannelName) -> bool {
        self.get(channel).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        match &self.0 {
            Set::Few(few) => few.len(),
            Set::Many(many) => many.len(),
        }
    }

    /// Add `channel` (not already held).
    pub(crate) fn insert(&mut self, channel: ChannelName, user_id: Option<String>) {
        let user_id = user_id.map(String::into_boxed_str);
        match &mut self.0 {
            Set::Few(few) if few.len() < SCAN_LIMIT => {
                // One slot at a time at first: most connections stop at one or two.
                if few.len() < 2 {
                    few.reserve_exact(1);
                }
                few.push((channel, user_id));
            }
            Set::Few(few) => {
                let mut many: HashMap<_, _> = few.drain(..).collect();
                many.insert(channel, user_id);
                self.0 = Set::Many(many);
            }
            Set::Many(many) => {
                many.insert(channel, user_id);
            }
        }
    }

    /// Drop `channel`; whether it was held.
    pub(crate) fn remove(&mut self, channel: &ChannelName) -> bool {
        match &mut self.0 {
            Set::Few(few) => match few.iter().position(|(name, _)| name == channel) {
                Some(at) => {
                    few.swap_remove(at);
                    true
                }
                None => false,
            },
            Set::Many(many) => many.remove(channel).is_some(),
        }
    }

    /// Every channel, leaving the set empty.
    pub(crate) fn take(&mut self) -> Vec<ChannelName> {
        match std::mem::take(&mut self.0) {
            Set::Few(few) => few.into_iter().map(|(name, _)| name).collect(),
            Set::Many(many) => many.into_keys().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> ChannelName {
        ChannelName::parse(text).unwrap()
    }

    #[test]
    fn channels_are_found_with_their_user_before_and_after_the_switch_to_a_map() {
        let mut set = Subscriptions::default();
        set.insert(name("presence-room"), Some("ann".into()));
        set.insert(name("news"), None);
        assert_eq!(set.get(&name("presence-room")), Some(Some("ann")));
        assert_eq!(set.get(&name("news")), Some(None));
        assert_eq!(set.get(&name("other")), None);
        for i in 0..40 {
            set.insert(name(&format!("c{i}")), None);
        }
        assert!(matches!(set.0, Set::Many(_)));
        assert_eq!((set.len(), set.get(&name("presence-room"))), (42, Some(Some("ann"))));
        assert!(set.remove(&name("news")) && !set.remove(&name("news")) && !set.contains(&name("news")));
        let mut left = set.take();
        left.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(left.len(), 41);
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn a_lone_subscription_takes_one_slot() {
        let mut set = Subscriptions::default();
        set.insert(name("news"), None);
        let Set::Few(few) = &set.0 else { panic!("a vector") };
        assert_eq!(few.capacity(), 1);
    }
}
