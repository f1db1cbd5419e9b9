//! Frames a client sends, parsed into [`ClientFrame`].
//!
//! Parsing never panics and never accepts half a frame: anything that is not JSON, not an object,
//! or lacks a required field of the right type is a [`FrameError`] the server answers with
//! `pusher:error`, keeping the connection. Unknown events are [`ClientFrame::Other`]: Pusher reserves
//! the `pusher:` prefix, so they are logged and ignored, not errors.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::RawJson;
use crate::channel::ChannelName;
use crate::error::{EXCERPT_CHARS, FrameError, excerpt};
use crate::event::{is_client_event, validate_event_name};
use crate::raw_json::is_object_text;

/// One frame received from a client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    /// `pusher:subscribe`.
    Subscribe(Subscribe),
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// The channel to leave.
        channel: ChannelName,
    },
    /// `pusher:ping`: answer with `pusher:pong`.
    Ping,
    /// `pusher:pong`: the answer to the server's `pusher:ping`.
    Pong,
    /// `pusher:signin`.
    Signin(Signin),
    /// A `client-*` event to relay to the channel's other subscribers.
    ClientEvent(ClientEvent),
    /// Any other event name: ignored.
    Other {
        /// The event name, truncated for logging.
        event: String,
    },
}

/// `pusher:subscribe` data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    /// The channel to join.
    pub channel: ChannelName,
    /// The authorization token; pusher-js 3-5.0 omit it on public channels, later versions send "".
    pub auth: Option<String>,
    /// Presence member data, exactly as received (the signature covers these bytes).
    pub channel_data: Option<String>,
}

/// `pusher:signin` data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signin {
    /// The user authentication token.
    pub auth: String,
    /// The user data, exactly as received.
    pub user_data: String,
}

/// A `client-*` event.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientEvent {
    /// The event name (starts with `client-`).
    pub event: String,
    /// The channel it is sent on.
    pub channel: ChannelName,
    /// The data exactly as received (pusher-js sends an object); relayed unchanged.
    pub data: Option<RawJson>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    event: Option<&'a RawValue>,
    #[serde(borrow, default)]
    channel: Option<&'a RawValue>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

impl ClientFrame {
    /// Parse one WebSocket text message.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        if !is_object_text(text) {
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => FrameError::NotAnObject,
                Err(_) => FrameError::NotJson,
            });
        }
        let envelope: Envelope<'_> = serde_json::from_str(text)
            .map_err(|e| if e.is_data() { FrameError::NotAnObject } else { FrameError::NotJson })?;
        let event = string_field("event", envelope.event)?.ok_or(FrameError::MissingField("event"))?;
        match event.as_str() {
            "pusher:subscribe" => parse_subscribe(envelope.data),
            "pusher:unsubscribe" => {
                let mut data = data_object(envelope.data)?;
                let channel = take_string(&mut data, "channel")?.ok_or(FrameError::MissingField("channel"))?;
                Ok(Self::Unsubscribe { channel: channel_name(&channel)? })
            }
            "pusher:ping" => Ok(Self::Ping),
            "pusher:pong" => Ok(Self::Pong),
            "pusher:signin" => {
                let mut data = data_object(envelope.data)?;
                let auth = take_string(&mut data, "auth")?.ok_or(FrameError::MissingField("auth"))?;
                let user_data = take_string(&mut data, "user_data")?.ok_or(FrameError::MissingField("user_data"))?;
                Ok(Self::Signin(Signin { auth, user_data }))
            }
            name if is_client_event(name) => {
                validate_event_name(name)?;
                let channel = string_field("channel", envelope.channel)?.ok_or(FrameError::MissingField("channel"))?;
                Ok(Self::ClientEvent(ClientEvent {
                    channel: channel_name(&channel)?,
                    event,
                    data: envelope.data.map(RawJson::from_raw),
                }))
            }
            _ => Ok(Self::Other { event: excerpt(&event, EXCERPT_CHARS) }),
        }
    }
}

fn parse_subscribe(data: Option<&RawValue>) -> Result<ClientFrame, FrameError> {
    let mut data = data_object(data)?;
    let channel = take_string(&mut data, "channel")?.ok_or(FrameError::MissingField("channel"))?;
    let valid = ChannelName::parse(&channel).map_err(|source| FrameError::InvalidSubscription { channel, source })?;
    Ok(ClientFrame::Subscribe(Subscribe {
        channel: valid,
        auth: take_string(&mut data, "auth")?,
        channel_data: take_string(&mut data, "channel_data")?,
    }))
}

fn channel_name(name: &str) -> Result<ChannelName, FrameError> {
    ChannelName::parse(name).map_err(|source| FrameError::InvalidChannel { channel: name.to_owned(), source })
}

/// A top-level string field; `null` counts as absent.
fn string_field(field: &'static str, raw: Option<&RawValue>) -> Result<Option<String>, FrameError> {
    match raw {
        None => Ok(None),
        Some(raw) => match serde_json::from_str::<Option<String>>(raw.get()) {
            Ok(value) => Ok(value),
            Err(_) => Err(FrameError::WrongType { field, expected: "a string" }),
        },
    }
}

/// `data` as an object, whether sent as an object or as a JSON string holding one.
fn data_object(raw: Option<&RawValue>) -> Result<Map<String, Value>, FrameError> {
    let raw = raw.ok_or(FrameError::MissingField("data"))?;
    let value: Value = serde_json::from_str(raw.get()).map_err(|_| FrameError::NotJson)?;
    let value = match value {
        Value::String(inner) => serde_json::from_str(&inner).map_err(|_| not_an_object())?,
        other => other,
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(not_an_object()),
    }
}

fn not_an_object() -> FrameError {
    FrameError::WrongType { field: "data", expected: "an object" }
}

/// Remove a string field from `data`; `null` counts as absent.
fn take_string(data: &mut Map<String, Value>, field: &'static str) -> Result<Option<String>, FrameError> {
    match data.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(FrameError::WrongType { field, expected: "a string" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ChannelNameError, EventNameError};

    fn parse(text: &str) -> Result<ClientFrame, FrameError> {
        ClientFrame::parse(text)
    }

    fn subscribe(channel: &str, auth: Option<&str>, channel_data: Option<&str>) -> ClientFrame {
        ClientFrame::Subscribe(Subscribe {
            channel: ChannelName::parse(channel).unwrap(),
            auth: auth.map(Into::into),
            channel_data: channel_data.map(Into::into),
        })
    }

    #[test]
    fn subscribe_in_every_shape_clients_send() {
        // pusher-js 3.x-5.0.x: no auth.
        assert_eq!(
            parse(r#"{"event":"pusher:subscribe","data":{"channel":"my-channel"}}"#),
            Ok(subscribe("my-channel", None, None))
        );
        // pusher-js 5.1 and later: empty auth.
        assert_eq!(
            parse(r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"my-channel"}}"#),
            Ok(subscribe("my-channel", Some(""), None))
        );
        // Presence, channel_data kept byte for byte.
        assert_eq!(
            parse(
                r#"{"event":"pusher:subscribe","data":{"auth":"k:s","channel_data":"{\"user_id\": 10}","channel":"presence-a"}}"#
            ),
            Ok(subscribe("presence-a", Some("k:s"), Some(r#"{"user_id": 10}"#)))
        );
        // data JSON-encoded in a string.
        assert_eq!(
            parse(r#"{"event":"pusher:subscribe","data":"{\"channel\":\"x\",\"auth\":null}"}"#),
            Ok(subscribe("x", None, None))
        );
    }

    #[test]
    fn the_other_frames() {
        assert_eq!(parse(r#"{"event":"pusher:ping","data":{}}"#), Ok(ClientFrame::Ping));
        assert_eq!(parse(r#"{"event":"pusher:ping"}"#), Ok(ClientFrame::Ping));
        assert_eq!(parse(r#"{"event":"pusher:pong","data":"{}"}"#), Ok(ClientFrame::Pong));
        assert_eq!(
            parse(r#"{"event":"pusher:unsubscribe","data":{"channel":"my-channel"}}"#),
            Ok(ClientFrame::Unsubscribe { channel: ChannelName::parse("my-channel").unwrap() })
        );
        assert_eq!(
            parse(r#"{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\"}"}}"#),
            Ok(ClientFrame::Signin(Signin { auth: "k:s".into(), user_data: r#"{"id":"1"}"#.into() }))
        );
        assert_eq!(
            parse(r#"{"event":"pusher:whatever","data":{}}"#),
            Ok(ClientFrame::Other { event: "pusher:whatever".into() })
        );
        assert_eq!(
            parse(r#"{"event":"typing","channel":"private-a"}"#),
            Ok(ClientFrame::Other { event: "typing".into() })
        );
    }

    #[test]
    fn client_events_keep_their_data_raw() {
        let Ok(ClientFrame::ClientEvent(event)) =
            parse(r#"{"event":"client-typing","data":{"b": 1,"a":[2]},"channel":"private-chat"}"#)
        else {
            panic!("not a client event");
        };
        assert_eq!(event.event, "client-typing");
        assert_eq!(event.channel.as_str(), "private-chat");
        assert_eq!(event.data.unwrap().get(), r#"{"b": 1,"a":[2]}"#);
        let Ok(ClientFrame::ClientEvent(event)) = parse(r#"{"event":"client-x","channel":"private-a","data":"text"}"#)
        else {
            panic!("not a client event");
        };
        assert_eq!(event.data.unwrap().get(), r#""text""#);
    }

    #[test]
    fn malformed_frames_are_typed_errors() {
        let check = |text: &str, err: FrameError| assert_eq!(parse(text), Err(err), "{text}");
        check("", FrameError::NotJson);
        check("not json", FrameError::NotJson);
        check("{\"event\":", FrameError::NotJson);
        check("[]", FrameError::NotAnObject);
        check("42", FrameError::NotAnObject);
        check("\"pusher:ping\"", FrameError::NotAnObject);
        check("null", FrameError::NotAnObject);
        check("{}", FrameError::MissingField("event"));
        check(r#"{"event":null}"#, FrameError::MissingField("event"));
        check(r#"{"event":42}"#, FrameError::WrongType { field: "event", expected: "a string" });
        check(r#"{"event":"pusher:subscribe"}"#, FrameError::MissingField("data"));
        check(r#"{"event":"pusher:subscribe","data":{}}"#, FrameError::MissingField("channel"));
        check(
            r#"{"event":"pusher:subscribe","data":[]}"#,
            FrameError::WrongType { field: "data", expected: "an object" },
        );
        check(
            r#"{"event":"pusher:subscribe","data":"nope"}"#,
            FrameError::WrongType { field: "data", expected: "an object" },
        );
        check(
            r#"{"event":"pusher:subscribe","data":{"channel":5}}"#,
            FrameError::WrongType { field: "channel", expected: "a string" },
        );
        check(
            r#"{"event":"pusher:subscribe","data":{"channel":"a","auth":{}}}"#,
            FrameError::WrongType { field: "auth", expected: "a string" },
        );
        check(
            r#"{"event":"pusher:subscribe","data":{"channel":"a b"}}"#,
            FrameError::InvalidSubscription { channel: "a b".into(), source: ChannelNameError::InvalidCharacter(' ') },
        );
        check(
            r#"{"event":"pusher:unsubscribe","data":{"channel":"a b"}}"#,
            FrameError::InvalidChannel { channel: "a b".into(), source: ChannelNameError::InvalidCharacter(' ') },
        );
        check(r#"{"event":"pusher:signin","data":{"auth":"k:s"}}"#, FrameError::MissingField("user_data"));
        check(r#"{"event":"client-x","data":{}}"#, FrameError::MissingField("channel"));
        check(
            r#"{"event":"client-x","channel":["a"]}"#,
            FrameError::WrongType { field: "channel", expected: "a string" },
        );
        let long_event = format!(r#"{{"event":"client-{}","channel":"private-a"}}"#, "x".repeat(200));
        check(&long_event, FrameError::InvalidEventName(EventNameError::TooLong { len: 207, max: 200 }));
    }

    #[test]
    fn huge_strings_are_refused_without_quoting_them_whole() {
        let name = "x".repeat(100_000);
        let text = format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"{name}"}}}}"#);
        let Err(error @ FrameError::InvalidSubscription { .. }) = parse(&text) else { panic!("accepted") };
        assert!(error.to_string().len() < 200, "the message quotes an excerpt");
        let FrameError::InvalidSubscription { channel, source } = error else { unreachable!() };
        assert_eq!(source, ChannelNameError::TooLong { len: 100_000, max: 200 });
        assert_eq!(channel.len(), 100_000, "the channel field keeps the name whole");
        let Ok(ClientFrame::Other { event }) = parse(&format!(r#"{{"event":"{name}"}}"#)) else { panic!() };
        assert!(event.len() < 100);
    }
}
