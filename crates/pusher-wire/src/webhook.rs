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
