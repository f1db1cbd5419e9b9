//! The Lua scripts that keep each node's share in Redis and decide the cluster-wide transitions,
//! and the keys and arguments they are called with. Every script starts with `lua/common.lua`,
//! which documents the keys; each app's keys share a hash tag, so a script touches one slot.

use crate::hub::NodeId;

/// Apply a batch of share changes and publish them.
pub(crate) const APPLY: &str = concat!(include_str!("lua/common.lua"), include_str!("lua/apply.lua"));
/// Replace a node's whole share under a new epoch.
pub(crate) const ANNOUNCE: &str = concat!(include_str!("lua/common.lua"), include_str!("lua/announce.lua"));
/// Record a heartbeat; drop silent nodes.
pub(crate) const HEARTBEAT: &str = concat!(include_str!("lua/common.lua"), include_str!("lua/heartbeat.lua"));
/// Leave the cluster.
pub(crate) const LEAVE: &str = concat!(include_str!("lua/common.lua"), include_str!("lua/leave.lua"));
/// Take the removals whose delay is over.
pub(crate) const DUE: &str = concat!(include_str!("lua/common.lua"), include_str!("lua/due.lua"));
/// Read other nodes' shares.
pub(crate) const SNAPSHOT: &str = concat!(include_str!("lua/common.lua"), include_str!("lua/snapshot.lua"));

/// Every Herald key starts with this.
const PREFIX: &str = "herald";

/// Pub/sub lanes for events. A channel's events always take the same lane (so they stay in order);
/// spreading channels over lanes lets a Redis Cluster spread them over its shards.
pub(crate) const LANES: u64 = 16;

/// The name of event lane `lane`.
pub(crate) fn lane(lane: u64) -> String {
    format!("{PREFIX}:events:{lane}")
}

/// The key that reserves a node id, so that socket ids are unique cluster-wide.
pub(crate) fn node_id_claim(node: NodeId) -> String {
    format!("{PREFIX}:node-id:{}", node.0)
}

/// The keys and fixed arguments of one app's scripts.
#[derive(Debug, Clone)]
pub(crate) struct AppKeys {
    /// `KEYS` of every script, in the order `common.lua` reads them.
    pub(crate) keys: [String; 4],
    /// Prefix of the per-node share keys.
    pub(crate) node_prefix: String,
    /// The pub/sub channel of share changes.
    pub(crate) state_channel: String,
    /// The app's last events of cache channels.
    pub(crate) cache: String,
}

impl AppKeys {
    /// The keys of app `app_id` (app ids are URL-safe, so they can sit in a hash tag).
    pub(crate) fn new(app_id: &str) -> Self {
        let base = format!("{PREFIX}:{{{app_id}}}");
        Self {
            keys: [
                format!("{base}:holders"),
                format!("{base}:member-holders"),
                format!("{base}:pending"),
                format!("{base}:nodes"),
            ],
            node_prefix: format!("{base}:node:"),
            state_channel: format!("{base}:state"),
            cache: format!("{base}:cache"),
        }
    }

    /// The arguments every script starts with, then `extra`.
    pub(crate) fn args(&self, publish: &str, node: NodeId, delay_ms: u64, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            self.node_prefix.clone(),
            self.state_channel.clone(),
            publish.to_owned(),
            node.0.to_string(),
            delay_ms.to_string(),
        ];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apps_keys_share_one_hash_tag() {
        let keys = AppKeys::new("42");
        for key in keys.keys.iter().chain([&keys.node_prefix, &keys.state_channel, &keys.cache]) {
            assert!(key.starts_with("herald:{42}:"), "{key}");
        }
        assert_eq!(lane(3), "herald:events:3", "lanes carry no tag: they spread over shards");
        assert_eq!(keys.args("SPUBLISH", NodeId(7), 3000, &["x"])[3..], ["7", "3000", "x"]);
    }
}
