//! Webhooks: the payload Herald POSTs to an app's endpoint, and its signature.
//!
//! The body is `{"time_ms": …, "events": […]}`; `X-Pusher-Key` names the app key and
//! `X-Pusher-Signature` is the hex HMAC-SHA256 of the raw body under the app secret. SDKs check that
//! `Content-Type` is exactly `application/json`.

use serde::Serialize;

use crate::sign::{constant_time_eq, hmac_sha256_hex};

/// The content type webhook requests must carry, exactly.
pub const CONTENT_TYPE: &str = "application/json";
/// Header naming the app key.
pub const KEY_HEADER: &str = "X-Pusher-Key";
/// Header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Pusher-Signature";

/// One webhook event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum WebhookEvent {
    /// The first subscriber joined a channel.
    ChannelOccupied {
        /// The channel.
        channel: String,
    },
    /// The last subscriber left a channel.
    ChannelVacated {
        /// The channel.
        channel: String,
    },
    /// A user's first connection joined a presence channel.
    MemberAdded {
        /// The channel.
        channel: String,
        /// The user.
        user_id: String,
    },
    /// A user's last connection left a presence channel.
    MemberRemoved {
        /// The channel.
        channel: String,
        /// The user.
        user_id: String,
    },
    /// A client event was relayed.
    ClientEvent {
        /// The channel.
        channel: String,
        /// The event name.
        event: String,
        /// The event data as a string (the JSON text when the client sent an object).
        data: String,
        /// The sender.
        socket_id: String,
        /// The sender's presence user id, on presence channels.
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    /// A subscriber found a cache channel empty.
    CacheMiss {
        /// The channel.
        channel: String,
    },
    /// A channel's subscription count changed.
    SubscriptionCount {
        /// The channel.
        channel: String,
        /// Connections subscribed.
        subscription_count: usize,
    },
}

/// The kinds of webhook event, named as in the payload (`channel_occupied`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    /// `channel_occupied`.
    ChannelOccupied,
    /// `channel_vacated`.
    ChannelVacated,
    /// `member_added`.
    MemberAdded,
    /// `member_removed`.
    MemberRemoved,
    /// `client_event`.
    ClientEvent,
    /// `cache_miss`.
    CacheMiss,
    /// `subscription_count`.
    SubscriptionCount,
}

impl WebhookKind {
    /// Every kind.
    pub const ALL: [WebhookKind; 7] = [
        Self::ChannelOccupied,
        Self::ChannelVacated,
        Self::MemberAdded,
        Self::MemberRemoved,
        Self::ClientEvent,
        Self::CacheMiss,
        Self::SubscriptionCount,
    ];

    /// The name in the payload's `name` field.
    pub fn name(self) -> &'static str {
        match self {
            Self::ChannelOccupied => "channel_occupied",
            Self::ChannelVacated => "channel_vacated",
            Self::MemberAdded => "member_added",
            Self::MemberRemoved => "member_removed",
            Self::ClientEvent => "client_event",
            Self::CacheMiss => "cache_miss",
            Self::SubscriptionCount => "subscription_count",
        }
    }
}

impl WebhookEvent {
    /// The event's kind.
    pub fn kind(&self) -> WebhookKind {
        match self {
            Self::ChannelOccupied { .. } => WebhookKind::ChannelOccupied,
            Self::ChannelVacated { .. } => WebhookKind::ChannelVacated,
            Self::MemberAdded { .. } => WebhookKind::MemberAdded,
            Self::MemberRemoved { .. } => WebhookKind::MemberRemoved,
            Self::ClientEvent { .. } => WebhookKind::ClientEvent,
            Self::CacheMiss { .. } => WebhookKind::CacheMiss,
            Self::SubscriptionCount { .. } => WebhookKind::SubscriptionCount,
        }
    }

    /// The channel it is about.
    pub fn channel(&self) -> &str {
        match self {
            Self::ChannelOccupied { channel }
            | Self::ChannelVacated { channel }
            | Self::MemberAdded { channel, .. }
            | Self::MemberRemoved { channel, .. }
            | Self::ClientEvent { channel, .. }
            | Self::CacheMiss { channel }
            | Self::SubscriptionCount { channel, .. } => channel,
        }
    }
}

/// The webhook `data` of a client event: a string as itself, anything else as its JSON text.
pub fn client_event_data(data: Option<&crate::RawJson>) -> String {
    match data {
        None => String::new(),
        Some(raw) => serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_owned()),
    }
}

#[derive(Serialize)]
struct Payload<'a> {
    time_ms: u64,
    events: &'a [WebhookEvent],
}

/// The request body for `events`, created at `time_ms` (unix milliseconds).
pub fn encode(time_ms: u64, events: &[WebhookEvent]) -> String {
    // Serializing plain strings and integers cannot fail.
    serde_json::to_string(&Payload { time_ms, events }).expect("webhook payload serializes")
}

/// `X-Pusher-Signature` for a body.
pub fn sign(secret: &str, body: &[u8]) -> String {
    hmac_sha256_hex(secret.as_bytes(), body)
}

/// Check `X-Pusher-Signature`, in constant time.
pub fn verify(secret: &str, body: &[u8], signature: &str) -> bool {
    constant_time_eq(sign(secret, body).as_bytes(), signature.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_the_payload_names() {
        for kind in WebhookKind::ALL {
            let parsed: WebhookKind = serde_json::from_value(serde_json::Value::from(kind.name())).unwrap();
            assert_eq!(parsed, kind);
        }
    }

    #[test]
    fn client_event_data_is_a_string() {
        let raw = |s: &str| crate::RawJson::parse(s).unwrap();
        assert_eq!(client_event_data(Some(&raw(r#""Unencrypted""#))), "Unencrypted");
        assert_eq!(client_event_data(Some(&raw(r#"{"a": 1}"#))), r#"{"a": 1}"#);
        assert_eq!(client_event_data(None), "");
        let event = WebhookEvent::MemberAdded { channel: "presence-a".into(), user_id: "1".into() };
        assert_eq!((event.kind(), event.channel()), (WebhookKind::MemberAdded, "presence-a"));
    }

    #[test]
    fn payload_shape() {
        let body = encode(
            1530710011901,
            &[WebhookEvent::ClientEvent {
                channel: "private-my-channel".into(),
                event: "client-event".into(),
                data: "Unencrypted".into(),
                socket_id: "240621.35780774".into(),
                user_id: None,
            }],
        );
        assert_eq!(
            body,
            r#"{"time_ms":1530710011901,"events":[{"name":"client_event","channel":"private-my-channel","event":"client-event","data":"Unencrypted","socket_id":"240621.35780774"}]}"#
        );
        assert!(verify(
            "thisisasecret",
            body.as_bytes(),
            "a19cab2af3ca1029257570395e78d5d675e9e700ca676d18a375a7083178df1c"
        ));
        let occupied = encode(1353088179000, &[WebhookEvent::ChannelOccupied { channel: "project-3".into() }]);
        assert_eq!(
            occupied,
            r#"{"time_ms":1353088179000,"events":[{"name":"channel_occupied","channel":"project-3"}]}"#
        );
    }
}
