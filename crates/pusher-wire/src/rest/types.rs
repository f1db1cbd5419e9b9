//! Trigger and batch request bodies, validated into [`Trigger`] and [`BatchEvent`] lists.
//!
//! `POST /events` comes as `channels: [...]` (Ruby, Node, Python, PHP up to 7.0) or `channel: "..."`
//! (PHP 7.1+ with one channel); both are accepted. `data` must be a string and is kept byte for byte.

use serde::Deserialize;

use crate::channel::ChannelName;
use crate::error::{EXCERPT_CHARS, TriggerError, excerpt};
use crate::event::validate_event_name;
use crate::limits::{MAX_CHANNELS_PER_TRIGGER, MAX_EVENT_DATA_BYTES, MAX_EVENTS_PER_BATCH};
use crate::raw_json::is_object_text;
use crate::socket_id::SocketId;

/// The limits a trigger is checked against; [`Default`] gives hosted Pusher's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TriggerLimits {
    /// Most channels in one trigger.
    pub max_channels: usize,
    /// Largest `data`, in bytes.
    pub max_data_bytes: usize,
    /// Most events in one batch.
    pub max_batch_events: usize,
}

impl Default for TriggerLimits {
    fn default() -> Self {
        Self {
            max_channels: MAX_CHANNELS_PER_TRIGGER,
            max_data_bytes: MAX_EVENT_DATA_BYTES,
            max_batch_events: MAX_EVENTS_PER_BATCH,
        }
    }
}

/// The `info` attributes a trigger or channel query asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Info {
    /// `user_count`: distinct users (presence channels only).
    pub user_count: bool,
    /// `subscription_count`: connections.
    pub subscription_count: bool,
    /// `cache`: the cached event (channel query on cache channels only).
    pub cache: bool,
}

impl Info {
    /// Parse a comma-separated attribute list, refusing unknown attributes.
    pub fn parse(list: &str) -> Result<Self, TriggerError> {
        let mut info = Self::default();
        for attribute in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match attribute {
                "user_count" => info.user_count = true,
                "subscription_count" => info.subscription_count = true,
                "cache" => info.cache = true,
                other => return Err(TriggerError::UnknownInfo(excerpt(other, EXCERPT_CHARS))),
            }
        }
        Ok(info)
    }

    /// Whether no attribute was asked for.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A validated `POST /events` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// Event name.
    pub name: String,
    /// Event data, exactly as sent.
    pub data: String,
    /// Target channels, without duplicates, in the order given.
    pub channels: Vec<ChannelName>,
    /// The connection to leave out, if any.
    pub socket_id: Option<SocketId>,
    /// Counts to return per channel.
    pub info: Info,
}

/// One validated item of a `POST /batch_events` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchEvent {
    /// Event name.
    pub name: String,
    /// Event data, exactly as sent.
    pub data: String,
    /// Target channel.
    pub channel: ChannelName,
    /// The connection to leave out, if any.
    pub socket_id: Option<SocketId>,
    /// Counts to return for this item.
    pub info: Info,
}

#[derive(Deserialize)]
struct RawTrigger {
    name: String,
    data: String,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    socket_id: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

#[derive(Deserialize)]
struct RawBatch {
    batch: Vec<RawBatchEvent>,
}

#[derive(Deserialize)]
struct RawBatchEvent {
    name: String,
    data: String,
    channel: String,
    #[serde(default)]
    socket_id: Option<String>,
    #[serde(default)]
    info: Option<String>,
}

impl Trigger {
    /// Parse and validate a `POST /events` body.
    pub fn parse(body: &[u8], limits: &TriggerLimits) -> Result<Self, TriggerError> {
        let raw: RawTrigger = from_object(body)?;
        let names = match (raw.channels, raw.channel) {
            (Some(_), Some(_)) => return Err(TriggerError::ChannelAndChannels),
            (Some(channels), None) => channels,
            (None, Some(channel)) => vec![channel],
            (None, None) => Vec::new(),
        };
        if names.is_empty() {
            return Err(TriggerError::NoChannels);
        }
        if names.len() > limits.max_channels {
            return Err(TriggerError::TooManyChannels { count: names.len(), max: limits.max_channels });
        }
        let mut channels: Vec<ChannelName> = Vec::with_capacity(names.len());
        for name in &names {
            let channel = channel_name(name)?;
            if !channels.contains(&channel) {
                channels.push(channel);
            }
        }
        if channels.len() > 1 && channels.iter().any(|c| c.kind().is_encrypted()) {
            return Err(TriggerError::EncryptedMultiChannel);
        }
        validate_event(&raw.name, &raw.data, limits)?;
        Ok(Self {
            name: raw.name,
            data: raw.data,
            channels,
            socket_id: socket_id(raw.socket_id)?,
            info: info(raw.info)?,
        })
    }
}

impl BatchEvent {
    /// Parse and validate a `POST /batch_events` body.
    pub fn parse_batch(body: &[u8], limits: &TriggerLimits) -> Result<Vec<Self>, TriggerError> {
        let raw: RawBatch = from_object(body)?;
        if raw.batch.len() > limits.max_batch_events {
            return Err(TriggerError::BatchTooLarge { count: raw.batch.len(), max: limits.max_batch_events });
        }
        raw.batch
            .into_iter()
            .map(|item| {
                validate_event(&item.name, &item.data, limits)?;
                Ok(Self {
                    channel: channel_name(&item.channel)?,
                    name: item.name,
                    data: item.data,
                    socket_id: socket_id(item.socket_id)?,
                    info: info(item.info)?,
                })
            })
            .collect()
    }
}

/// Deserialize a body that must be a JSON object (serde's derived structs also take arrays).
fn from_object<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, TriggerError> {
    let text = std::str::from_utf8(body).map_err(|_| TriggerError::Malformed("body is not UTF-8".into()))?;
    if !is_object_text(text) {
        return Err(TriggerError::Malformed("body is not a JSON object".into()));
    }
    serde_json::from_str(text).map_err(|error| TriggerError::Malformed(error.to_string()))
}

fn channel_name(name: &str) -> Result<ChannelName, TriggerError> {
    ChannelName::parse(name)
        .map_err(|source| TriggerError::InvalidChannel { channel: excerpt(name, EXCERPT_CHARS), source })
}

fn validate_event(name: &str, data: &str, limits: &TriggerLimits) -> Result<(), TriggerError> {
    validate_event_name(name)?;
    if data.len() > limits.max_data_bytes {
        return Err(TriggerError::DataTooLarge { size: data.len(), max: limits.max_data_bytes });
    }
    Ok(())
}

fn socket_id(raw: Option<String>) -> Result<Option<SocketId>, TriggerError> {
    // Some SDKs send `null` or "" when no socket is excluded.
    raw.filter(|s| !s.is_empty()).map(|s| SocketId::parse(&s)).transpose().map_err(Into::into)
}

fn info(raw: Option<String>) -> Result<Info, TriggerError> {
    raw.map_or(Ok(Info::default()), |list| Info::parse(&list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ChannelNameError, EventNameError, SocketIdError};

    fn trigger(body: &str) -> Result<Trigger, TriggerError> {
        Trigger::parse(body.as_bytes(), &TriggerLimits::default())
    }

    fn names(trigger: &Trigger) -> Vec<&str> {
        trigger.channels.iter().map(ChannelName::as_str).collect()
    }

    #[test]
    fn bodies_as_each_sdk_sends_them() {
        let ruby = trigger(r#"{"socket_id":"1.2","name":"new_message","channels":["test_chat_channel"],"data":"{\"name\":\"Ann\",\"message\":\"hi\"}"}"#).unwrap();
        assert_eq!(names(&ruby), ["test_chat_channel"]);
        assert_eq!(ruby.data, r#"{"name":"Ann","message":"hi"}"#);
        assert_eq!(ruby.socket_id, Some(SocketId::parse("1.2").unwrap()));
        let python =
            trigger(r#"{"name": "new_message", "channels": ["a", "b"], "data": "{\"x\": 1}", "socket_id": null}"#)
                .unwrap();
        assert_eq!(names(&python), ["a", "b"]);
        assert_eq!(python.socket_id, None);
        let php = trigger(r#"{"name":"App\\Events\\X","data":"{}","channel":"private-App.Models.User.1","info":"subscription_count"}"#).unwrap();
        assert_eq!(php.name, "App\\Events\\X");
        assert_eq!(names(&php), ["private-App.Models.User.1"]);
        assert!(php.info.subscription_count && !php.info.user_count);
        let duplicate = trigger(r#"{"name":"e","data":"","channels":["a","a","b"]}"#).unwrap();
        assert_eq!(names(&duplicate), ["a", "b"]);
    }

    #[test]
    fn refusals() {
        let check = |body: &str, err: TriggerError| assert_eq!(trigger(body), Err(err), "{body}");
        check(r#"{"name":"e","data":"d"}"#, TriggerError::NoChannels);
        check(r#"{"name":"e","data":"d","channels":[]}"#, TriggerError::NoChannels);
        check(r#"{"name":"e","data":"d","channels":["a"],"channel":"b"}"#, TriggerError::ChannelAndChannels);
        check(
            r#"{"name":"e","data":"d","channels":["a b"]}"#,
            TriggerError::InvalidChannel { channel: "a b".into(), source: ChannelNameError::InvalidCharacter(' ') },
        );
        check(r#"{"name":"","data":"d","channel":"a"}"#, TriggerError::InvalidEventName(EventNameError::Empty));
        check(r#"{"name":"e","data":"d","channel":"a","socket_id":"x"}"#, TriggerError::InvalidSocketId(SocketIdError));
        check(r#"{"name":"e","data":"d","channels":["private-encrypted-a","b"]}"#, TriggerError::EncryptedMultiChannel);
        check(r#"{"name":"e","data":"d","channel":"a","info":"bogus"}"#, TriggerError::UnknownInfo("bogus".into()));
        let too_many: Vec<String> = (0..101).map(|i| format!("\"c{i}\"")).collect();
        check(
            &format!(r#"{{"name":"e","data":"d","channels":[{}]}}"#, too_many.join(",")),
            TriggerError::TooManyChannels { count: 101, max: 100 },
        );
        let big = "x".repeat(10 * 1024 + 1);
        check(
            &format!(r#"{{"name":"e","data":"{big}","channel":"a"}}"#),
            TriggerError::DataTooLarge { size: 10241, max: 10240 },
        );
        for malformed in [
            "",
            "nope",
            "[]",
            r#"["e","d",["a"]]"#,
            r#"{"data":"d","channel":"a"}"#,
            r#"{"name":"e","data":{"a":1},"channel":"a"}"#,
            r#"{"name":"e","data":"d","channels":"a"}"#,
        ] {
            assert!(matches!(trigger(malformed), Err(TriggerError::Malformed(_))), "{malformed}");
        }
        assert_eq!(TriggerError::DataTooLarge { size: 1, max: 0 }.status(), 413);
        assert_eq!(TriggerError::NoChannels.status(), 400);
    }

    #[test]
    fn exact_data_limit_is_accepted() {
        let data = "x".repeat(10 * 1024);
        assert!(trigger(&format!(r#"{{"name":"e","data":"{data}","channel":"a"}}"#)).is_ok());
    }

    #[test]
    fn batches() {
        let limits = TriggerLimits::default();
        let body = r#"{"batch":[{"channel":"project-3","name":"foo","data":"{\"some\":\"data\"}"},{"channel":"presence-foobar","name":"bar","data":"{}","socket_id":"1234.1234","info":"user_count"}]}"#;
        let batch = BatchEvent::parse_batch(body.as_bytes(), &limits).unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[1].channel.as_str(), "presence-foobar");
        assert!(batch[1].info.user_count);
        let eleven: Vec<String> = (0..11).map(|i| format!(r#"{{"channel":"c{i}","name":"e","data":""}}"#)).collect();
        assert_eq!(
            BatchEvent::parse_batch(format!(r#"{{"batch":[{}]}}"#, eleven.join(",")).as_bytes(), &limits),
            Err(TriggerError::BatchTooLarge { count: 11, max: 10 })
        );
        assert!(matches!(
            BatchEvent::parse_batch(br#"{"batch":[{"channels":["a"],"name":"e","data":""}]}"#, &limits),
            Err(TriggerError::Malformed(_))
        ));
        assert_eq!(BatchEvent::parse_batch(br#"{"batch":[]}"#, &limits), Ok(vec![]));
    }
}
