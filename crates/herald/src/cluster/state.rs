//! Share changes as they travel: [`Op`] is one change of a node's share, written as the JSON array
//! the scripts read (`["c", channel, n]`, `["m+", channel, user, info]`, `["m-", channel, user]`,
//! `["u+", user]`, `["u-", user]`) and published to the other nodes inside a [`StateMessage`].
//! [`Batch`] collects a node's changes between two flushes, keeping only the last change of each
//! key: a channel joined and left again in between costs nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fred::prelude::Value;
use pusher_wire::RawJson;
use serde::Deserialize;
use serde_json::json;

use crate::hub::Share;

/// One change of a node's share.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// The node's subscriber count of a channel.
    Count {
        /// The channel.
        channel: String,
        /// Subscribers on the node.
        subscribers: usize,
    },
    /// A user's first connection to a presence channel on the node.
    MemberAdded {
        /// The channel.
        channel: String,
        /// The user.
        user_id: String,
        /// Their `user_info`.
        info: Option<RawJson>,
    },
    /// A user's last connection to a presence channel on the node left.
    MemberRemoved {
        /// The channel.
        channel: String,
        /// The user.
        user_id: String,
    },
    /// A user's first connection on the node signed in.
    SignedIn {
        /// The user.
        user_id: String,
    },
    /// A user's last signed-in connection on the node is gone.
    SignedOut {
        /// The user.
        user_id: String,
    },
}

impl Op {
    /// The JSON array the scripts read.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Count { channel, subscribers } => json!(["c", channel, subscribers]),
            Self::MemberAdded { channel, user_id, info } => {
                json!(["m+", channel, user_id, info.as_ref().map(RawJson::get)])
            }
            Self::MemberRemoved { channel, user_id } => json!(["m-", channel, user_id]),
            Self::SignedIn { user_id } => json!(["u+", user_id]),
            Self::SignedOut { user_id } => json!(["u-", user_id]),
        }
    }

    /// Read an op published by another node; `None` for anything unknown.
    pub(crate) fn from_json(value: &serde_json::Value) -> Option<Self> {
        let items = value.as_array()?;
        let text = |i: usize| items.get(i).and_then(serde_json::Value::as_str).map(str::to_owned);
        Some(match items.first()?.as_str()? {
            "c" => Self::Count { channel: text(1)?, subscribers: usize::try_from(items.get(2)?.as_u64()?).ok()? },
            "m+" => Self::MemberAdded {
                channel: text(1)?,
                user_id: text(2)?,
                info: text(3).and_then(|info| RawJson::parse(&info).ok()),
            },
            "m-" => Self::MemberRemoved { channel: text(1)?, user_id: text(2)? },
            "u+" => Self::SignedIn { user_id: text(1)? },
            "u-" => Self::SignedOut { user_id: text(1)? },
            _ => return None,
        })
    }

    /// What the op is about: a later op with the same key replaces it.
    fn key(&self) -> (u8, &str, &str) {
        match self {
            Self::Count { channel, .. } => (b'c', channel, ""),
            Self::MemberAdded { channel, user_id, .. } | Self::MemberRemoved { channel, user_id } => {
                (b'm', channel, user_id)
            }
            Self::SignedIn { user_id } | Self::SignedOut { user_id } => (b'u', user_id, ""),
        }
    }
}

/// A node's share changes since the last flush, the last change of each key only, in the order the
/// keys first changed.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    ops: Vec<Op>,
    positions: HashMap<(u8, String, String), usize>,
}

impl Batch {
    /// Add a change, replacing an earlier one of the same key.
    pub(crate) fn push(&mut self, op: Op) {
        let (kind, a, b) = op.key();
        let key = (kind, a.to_owned(), b.to_owned());
        match self.positions.get(&key) {
            Some(&i) => self.ops[i] = op,
            None => {
                self.positions.insert(key, self.ops.len());
                self.ops.push(op);
            }
        }
    }

    /// Whether nothing changed.
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The changes as the JSON array `apply.lua` takes.
    pub(crate) fn to_json(&self) -> String {
        serde_json::Value::Array(self.ops.iter().map(Op::to_json).collect()).to_string()
    }
}

/// What another node published on an app's state channel.
#[derive(Debug, Deserialize)]
pub(crate) struct StateMessage {
    /// The node.
    pub(crate) node: u32,
    /// Its share's epoch (absent on `gone`).
    #[serde(default)]
    pub(crate) epoch: Option<String>,
    /// The sequence number within the epoch.
    #[serde(default)]
    pub(crate) seq: u64,
    /// The changes (none on an announcement: read the share instead).
    #[serde(default)]
    pub(crate) ops: Vec<serde_json::Value>,
    /// The node left or was found dead.
    #[serde(default)]
    pub(crate) gone: bool,
}

/// A share as `announce.lua` takes it.
pub(crate) fn share_to_json(share: &Share) -> String {
    let members: BTreeMap<&str, BTreeMap<&str, Option<&str>>> = share
        .members
        .iter()
        .map(|(channel, users)| {
            (channel.as_str(), users.iter().map(|(id, info)| (id.as_str(), info.as_ref().map(RawJson::get))).collect())
        })
        .collect();
    // An empty Lua table reads back as either; `users` is walked with ipairs, `counts` and
    // `members` with pairs, so both shapes work.
    json!({ "counts": share.counts, "members": members, "users": share.users }).to_string()
}

/// One node's share as `snapshot.lua` returns it: node, epoch, seq, counts, members, users.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The node.
    pub(crate) node: u32,
    /// Its epoch.
    pub(crate) epoch: String,
    /// Its sequence number.
    pub(crate) seq: u64,
    /// Its share.
    pub(crate) share: Share,
}

impl Snapshot {
    /// Read one entry of `snapshot.lua`'s answer; `None` if it is not shaped like one.
    pub(crate) fn from_value(value: Value) -> Option<Self> {
        let Value::Array(items) = value else { return None };
        let mut items = items.into_iter();
        let node = text(items.next()?)?.parse().ok()?;
        let epoch = text(items.next()?)?;
        let seq = text(items.next()?)?.parse().ok()?;
        let mut share = Share::default();
        for (channel, count) in pairs(items.next()?)? {
            share.counts.insert(channel, count.parse().ok()?);
        }
        for (field, info) in pairs(items.next()?)? {
            let (channel, user) = field.split_once('\n')?;
            let info = if info.is_empty() { None } else { RawJson::parse(&info).ok() };
            share.members.entry(channel.to_owned()).or_default().insert(user.to_owned(), info);
        }
        let Value::Array(users) = items.next()? else { return None };
        share.users = users.into_iter().filter_map(text).collect::<BTreeSet<String>>();
        Some(Self { node, epoch, seq, share })
    }
}

/// A Redis reply as text (bulk strings and integers).
pub(crate) fn text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A flat `HGETALL` reply as pairs.
fn pairs(value: Value) -> Option<Vec<(String, String)>> {
    let Value::Array(items) = value else { return None };
    let mut items = items.into_iter();
    let mut out = Vec::new();
    while let Some(key) = items.next() {
        out.push((text(key)?, text(items.next()?)?));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(op: Op, json: &str) {
        assert_eq!(op.to_json().to_string(), json);
        assert_eq!(Op::from_json(&serde_json::from_str(json).unwrap()), Some(op));
    }

    #[test]
    fn ops_read_back_as_written() {
        check(Op::Count { channel: "c".into(), subscribers: 3 }, r#"["c","c",3]"#);
        let info = RawJson::parse(r#"{"name":"Ann"}"#).unwrap();
        check(
            Op::MemberAdded { channel: "presence-r".into(), user_id: "1".into(), info: Some(info) },
            r#"["m+","presence-r","1","{\"name\":\"Ann\"}"]"#,
        );
        check(
            Op::MemberAdded { channel: "presence-r".into(), user_id: "1".into(), info: None },
            r#"["m+","presence-r","1",null]"#,
        );
        check(Op::MemberRemoved { channel: "presence-r".into(), user_id: "1".into() }, r#"["m-","presence-r","1"]"#);
        check(Op::SignedIn { user_id: "u".into() }, r#"["u+","u"]"#);
        check(Op::SignedOut { user_id: "u".into() }, r#"["u-","u"]"#);
        assert_eq!(Op::from_json(&json!(["zz", 1])), None);
        assert_eq!(Op::from_json(&json!(["c", "c", -1])), None);
    }

    #[test]
    fn a_batch_keeps_the_last_change_of_each_key() {
        let mut batch = Batch::default();
        batch.push(Op::Count { channel: "a".into(), subscribers: 1 });
        batch.push(Op::SignedIn { user_id: "u".into() });
        batch.push(Op::Count { channel: "a".into(), subscribers: 0 });
        batch.push(Op::SignedOut { user_id: "u".into() });
        batch.push(Op::MemberAdded { channel: "a".into(), user_id: "u".into(), info: None });
        assert_eq!(batch.to_json(), r#"[["c","a",0],["u-","u"],["m+","a","u",null]]"#);
    }

    #[test]
    fn snapshots_read_from_redis_replies() {
        let s = |t: &str| Value::String(t.into());
        let reply = Value::Array(vec![
            s("7"),
            s("ab12"),
            s("4"),
            Value::Array(vec![s("news"), s("2")]),
            Value::Array(vec![s("presence-r\n1"), s(r#"{"name":"Ann"}"#), s("presence-r\n2"), s("")]),
            Value::Array(vec![s("1")]),
        ]);
        let snapshot = Snapshot::from_value(reply).unwrap();
        assert_eq!((snapshot.node, snapshot.epoch.as_str(), snapshot.seq), (7, "ab12", 4));
        assert_eq!(snapshot.share.counts, [("news".to_owned(), 2)].into());
        assert_eq!(snapshot.share.members["presence-r"].len(), 2);
        assert_eq!(snapshot.share.members["presence-r"]["2"], None);
        assert!(snapshot.share.users.contains("1"));
        assert!(Snapshot::from_value(s("nope")).is_none());
    }
}
