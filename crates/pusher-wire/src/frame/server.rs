//! One constructor per frame the server sends, each returning the encoded text.
//!
//! Constructors are named after the event they produce, so they can be found from the protocol
//! reference. Frames whose `data` the protocol sends as a string get it JSON-encoded here; callers
//! pass plain values. The text is built once and, for a broadcast, shared by every recipient.

use super::push_json_string;
use crate::RawJson;
use crate::error::ErrorCode;
use crate::socket_id::SocketId;

/// `pusher:pong`, the answer to a client's `pusher:ping`.
pub const PONG: &str = r#"{"event":"pusher:pong","data":{}}"#;
/// `pusher:ping`, sent by the server to a quiet client.
pub const PING: &str = r#"{"event":"pusher:ping","data":{}}"#;

/// The `type` of a `pusher:subscription_error`, in the shape pusher-js 7+ uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionErrorType {
    /// The authorization token or the member data was refused (status 401 or 400).
    AuthError,
    /// A limit was reached (presence members, ...).
    LimitReached,
    /// The subscription itself is malformed (an invalid channel name).
    InvalidRequest,
}

impl SubscriptionErrorType {
    fn as_str(self) -> &'static str {
        match self {
            Self::AuthError => "AuthError",
            Self::LimitReached => "LimitReached",
            Self::InvalidRequest => "InvalidRequest",
        }
    }
}

/// A frame under construction: `{"event":…,"channel":…` then one of the `data_*` finishers.
struct Frame(String);

impl Frame {
    fn new(event: &str, channel: Option<&str>, data_len_hint: usize) -> Self {
        let mut out = String::with_capacity(32 + event.len() + channel.map_or(0, str::len) + data_len_hint);
        out.push_str(r#"{"event":"#);
        push_json_string(&mut out, event);
        if let Some(channel) = channel {
            out.push_str(r#","channel":"#);
            push_json_string(&mut out, channel);
        }
        Self(out)
    }

    /// `data` as a JSON string holding `text` (the double-encoding rule).
    fn data_string(mut self, text: &str) -> String {
        self.0.push_str(r#","data":"#);
        push_json_string(&mut self.0, text);
        self.0.push('}');
        self.0
    }

    /// `data` as the given JSON, inserted verbatim.
    fn data_json(mut self, json: &str) -> String {
        self.0.push_str(r#","data":"#);
        self.0.push_str(json);
        self.0.push('}');
        self.0
    }

    fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// `pusher:connection_established`, the first frame of every accepted connection.
pub fn connection_established(socket_id: &SocketId, activity_timeout_secs: u64) -> String {
    let mut data = String::from(r#"{"socket_id":"#);
    push_json_string(&mut data, socket_id.as_str());
    data.push_str(&format!(r#","activity_timeout":{activity_timeout_secs}}}"#));
    Frame::new("pusher:connection_established", None, data.len() + 8).data_string(&data)
}

/// `pusher:error`. `code` is `None` for errors that are not fatal (Pusher sends `"code":null`).
pub fn error(code: Option<ErrorCode>, message: &str) -> String {
    let mut data = match code {
        Some(code) => format!(r#"{{"code":{},"message":"#, code.code()),
        None => String::from(r#"{"code":null,"message":"#),
    };
    push_json_string(&mut data, message);
    data.push('}');
    Frame::new("pusher:error", None, data.len()).data_json(&data)
}

/// `pusher_internal:subscription_succeeded` for a channel without presence.
pub fn subscription_succeeded(channel: &str) -> String {
    Frame::new("pusher_internal:subscription_succeeded", Some(channel), 8).data_string("{}")
}

/// `pusher_internal:subscription_succeeded` for a presence channel: `{presence: {ids, hash, count}}`,
/// the subscriber included. `members` yields each distinct user once, as (user id, `user_info` JSON).
pub fn presence_subscription_succeeded<'a>(
    channel: &str,
    members: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut ids = String::from("[");
    let mut hash = String::from("{");
    let mut count = 0usize;
    for (user_id, user_info) in members {
        if count > 0 {
            ids.push(',');
            hash.push(',');
        }
        push_json_string(&mut ids, user_id);
        push_json_string(&mut hash, user_id);
        hash.push(':');
        hash.push_str(user_info);
        count += 1;
    }
    let data = format!(r#"{{"presence":{{"ids":{ids}],"hash":{hash}}},"count":{count}}}}}"#);
    Frame::new("pusher_internal:subscription_succeeded", Some(channel), data.len() * 5 / 4).data_string(&data)
}

/// `pusher:subscription_error` in the pusher-js 7+ shape `{type, error, status}`; Laravel Echo's
/// `.error()` callback receives it.
pub fn subscription_error(channel: &str, error_type: SubscriptionErrorType, message: &str, status: u16) -> String {
    let mut data = String::from(r#"{"type":"#);
    push_json_string(&mut data, error_type.as_str());
    data.push_str(r#","error":"#);
    push_json_string(&mut data, message);
    data.push_str(&format!(r#","status":{status}}}"#));
    Frame::new("pusher:subscription_error", Some(channel), data.len()).data_json(&data)
}

/// A channel event published through the REST API; `data` is the caller's string, relayed as is.
pub fn channel_event(event: &str, channel: &str, data: &str) -> String {
    Frame::new(event, Some(channel), data.len() * 9 / 8 + 2).data_string(data)
}

/// A client event relayed to the other subscribers: `data` exactly as the sender wrote it, and on
/// presence channels the sender's `user_id`.
pub fn client_event(event: &str, channel: &str, data: Option<&RawJson>, user_id: Option<&str>) -> String {
    let mut frame = Frame::new(event, Some(channel), data.map_or(0, |d| d.get().len()) + 16);
    if let Some(data) = data {
        frame.0.push_str(r#","data":"#);
        frame.0.push_str(data.get());
    }
    if let Some(user_id) = user_id {
        frame.0.push_str(r#","user_id":"#);
        push_json_string(&mut frame.0, user_id);
    }
    frame.finish()
}

/// `pusher_internal:member_added`: a user's first connection joined the presence channel.
pub fn member_added(channel: &str, user_id: &str, user_info: &str) -> String {
    let mut data = String::from(r#"{"user_id":"#);
    push_json_string(&mut data, user_id);
    data.push_str(r#","user_info":"#);
    data.push_str(user_info);
    data.push('}');
    Frame::new("pusher_internal:member_added", Some(channel), data.len() * 5 / 4).data_string(&data)
}

/// `pusher_internal:member_removed`: a user's last connection left the presence channel.
pub fn member_removed(channel: &str, user_id: &str) -> String {
    let mut data = String::from(r#"{"user_id":"#);
    push_json_string(&mut data, user_id);
    data.push('}');
    Frame::new("pusher_internal:member_removed", Some(channel), data.len() * 5 / 4).data_string(&data)
}

/// `pusher:cache_miss`: a cache channel had no event to replay.
pub fn cache_miss(channel: &str) -> String {
    Frame::new("pusher:cache_miss", Some(channel), 0).finish()
}

/// `pusher_internal:subscription_count`: how many connections the channel has.
pub fn subscription_count(channel: &str, count: usize) -> String {
    Frame::new("pusher_internal:subscription_count", Some(channel), 32)
        .data_string(&format!(r#"{{"subscription_count":{count}}}"#))
}

/// `pusher:signin_success`, echoing the `user_data` string verbatim.
pub fn signin_success(user_data: &str) -> String {
    let mut data = String::from(r#"{"user_data":"#);
    push_json_string(&mut data, user_data);
    data.push('}');
    Frame::new("pusher:signin_success", None, data.len()).data_json(&data)
}

/// `pusher_internal:watchlist_events` in the shape pusher-js's watchlist reads; empty groups are
/// left out.
pub fn watchlist_events(online: &[&str], offline: &[&str]) -> String {
    let mut data = String::from(r#"{"events":["#);
    let mut first = true;
    for (name, ids) in [("online", online), ("offline", offline)] {
        if ids.is_empty() {
            continue;
        }
        if !first {
            data.push(',');
        }
        first = false;
        data.push_str(&format!(r#"{{"name":"{name}","user_ids":["#));
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                data.push(',');
            }
            push_json_string(&mut data, id);
        }
        data.push_str("]}");
    }
    data.push_str("]}");
    Frame::new("pusher_internal:watchlist_events", None, data.len()).data_json(&data)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn check(frame: &str, expected: Value) {
        let got: Value = serde_json::from_str(frame).unwrap_or_else(|e| panic!("{frame}: {e}"));
        assert_eq!(got, expected, "{frame}");
    }

    #[test]
    fn connection_frames() {
        let socket_id = SocketId::new(5301, 811062);
        check(
            &connection_established(&socket_id, 120),
            json!({"event":"pusher:connection_established","data":"{\"socket_id\":\"5301.811062\",\"activity_timeout\":120}"}),
        );
        check(
            &error(Some(ErrorCode::AppNotFound), "App key nope does not exist"),
            json!({"event":"pusher:error","data":{"code":4001,"message":"App key nope does not exist"}}),
        );
        check(
            &error(None, "bad \"frame\""),
            json!({"event":"pusher:error","data":{"code":null,"message":"bad \"frame\""}}),
        );
        check(PONG, json!({"event":"pusher:pong","data":{}}));
        check(PING, json!({"event":"pusher:ping","data":{}}));
    }

    #[test]
    fn subscription_frames() {
        check(
            &subscription_succeeded("test_chat_channel"),
            json!({"event":"pusher_internal:subscription_succeeded","channel":"test_chat_channel","data":"{}"}),
        );
        let frame =
            presence_subscription_succeeded("presence-foobar", [("10", r#"{"name":"Mr. Channels"}"#), ("11", "null")]);
        let outer: Value = serde_json::from_str(&frame).unwrap();
        let inner: Value = serde_json::from_str(outer["data"].as_str().unwrap()).unwrap();
        assert_eq!(
            inner,
            json!({"presence":{"ids":["10","11"],"hash":{"10":{"name":"Mr. Channels"},"11":null},"count":2}})
        );
        let empty = presence_subscription_succeeded("presence-x", []);
        let outer: Value = serde_json::from_str(&empty).unwrap();
        assert_eq!(outer["data"], json!(r#"{"presence":{"ids":[],"hash":{},"count":0}}"#));
        check(
            &subscription_error("private-x", SubscriptionErrorType::AuthError, "invalid signature", 401),
            json!({"event":"pusher:subscription_error","channel":"private-x","data":{"type":"AuthError","error":"invalid signature","status":401}}),
        );
        check(&cache_miss("cache-x"), json!({"event":"pusher:cache_miss","channel":"cache-x"}));
        check(
            &subscription_count("my-channel", 3),
            json!({"event":"pusher_internal:subscription_count","channel":"my-channel","data":"{\"subscription_count\":3}"}),
        );
    }

    #[test]
    fn channel_events_relay_data_byte_for_byte() {
        let data = r#"{"name":"Ann","message":"hi"}"#;
        let frame = channel_event("new_message", "test_chat_channel", data);
        assert_eq!(
            frame,
            r#"{"event":"new_message","channel":"test_chat_channel","data":"{\"name\":\"Ann\",\"message\":\"hi\"}"}"#
        );
        check(
            &channel_event("App\\Events\\X", "c", "not json"),
            json!({"event":"App\\Events\\X","channel":"c","data":"not json"}),
        );
    }

    #[test]
    fn client_and_member_frames() {
        let data = RawJson::parse(r#"{"t":1}"#).unwrap();
        check(
            &client_event("client-typing", "presence-room", Some(&data), Some("2")),
            json!({"event":"client-typing","channel":"presence-room","data":{"t":1},"user_id":"2"}),
        );
        check(&client_event("client-x", "private-a", None, None), json!({"event":"client-x","channel":"private-a"}));
        check(
            &member_added("presence-foobar", "11", r#"{"name":"Ada"}"#),
            json!({"event":"pusher_internal:member_added","channel":"presence-foobar","data":"{\"user_id\":\"11\",\"user_info\":{\"name\":\"Ada\"}}"}),
        );
        check(
            &member_removed("presence-foobar", "11"),
            json!({"event":"pusher_internal:member_removed","channel":"presence-foobar","data":"{\"user_id\":\"11\"}"}),
        );
    }

    #[test]
    fn user_frames() {
        check(
            &signin_success(r#"{"id":"12345"}"#),
            json!({"event":"pusher:signin_success","data":{"user_data":"{\"id\":\"12345\"}"}}),
        );
        check(
            &watchlist_events(&["2"], &["3", "4"]),
            json!({"event":"pusher_internal:watchlist_events","data":{"events":[{"name":"online","user_ids":["2"]},{"name":"offline","user_ids":["3","4"]}]}}),
        );
        check(
            &watchlist_events(&[], &["3"]),
            json!({"event":"pusher_internal:watchlist_events","data":{"events":[{"name":"offline","user_ids":["3"]}]}}),
        );
    }
}
