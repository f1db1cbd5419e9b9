//! `client-*` events: relayed from one subscriber to the channel's other subscribers.
//!
//! Pusher's rules, in order: the app allows client events; the channel is private or presence (not
//! public, not encrypted); the sender is subscribed; at most 10 per second per connection (4301,
//! the event dropped, the connection kept); data within the event size limit. The data is relayed
//! exactly as sent, never to the sender, with the sender's `user_id` on presence channels.

use std::time::Instant;

use pusher_wire::frame::client::ClientEvent;
use pusher_wire::frame::server;
use pusher_wire::{ChannelKind, ErrorCode};

use super::outbox::Frame;
use super::session::Session;
use crate::hub::Relayed;

/// What became of a client event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Sent to the channel's other subscribers.
    Relayed,
    /// Refused by the rate limit (4301).
    RateLimited,
    /// Refused by another rule, with the message sent.
    Refused(String),
}

/// Handle a `client-*` event.
pub(crate) fn client_event(
    session: &mut Session,
    event: ClientEvent,
    now: Instant,
    replies: &mut Vec<Frame>,
) -> Outcome {
    let refuse = |replies: &mut Vec<Frame>, code: Option<ErrorCode>, message: String| {
        replies.push(server::error(code, &message).into());
        Outcome::Refused(message)
    };
    let channel = &event.channel;
    if !session.app.config().client_events {
        return refuse(replies, None, "client events are disabled for this app".into());
    }
    let kind = channel.kind();
    if !kind.allows_client_events() {
        let why = if kind.is_encrypted() {
            "client events are not supported on encrypted channels"
        } else if kind == ChannelKind::ServerToUser {
            "client events cannot be sent on server-to-user channels"
        } else {
            "client events are only allowed on private and presence channels"
        };
        return refuse(replies, None, format!("Cannot broadcast client event on {channel}: {why}"));
    }
    let Some(membership) = session.subscriptions.get(channel) else {
        return refuse(
            replies,
            None,
            format!("Cannot broadcast client event (connection not subscribed to channel {channel})"),
        );
    };
    if !session.client_events.allow(now) {
        refuse(replies, Some(ErrorCode::ClientEventRateLimit), "Client event rejected due to rate limit".into());
        return Outcome::RateLimited;
    }
    let size = event.data.as_ref().map_or(0, |data| data.get().len());
    let max = session.app.config().max_event_bytes;
    if size > max {
        return refuse(replies, None, format!("Client event rejected: data is {size} bytes, the limit is {max}"));
    }
    let frame = Frame::from(server::client_event(&event.event, channel.as_str(), event.data.as_ref(), membership));
    let relayed = Relayed {
        channel: channel.as_str(),
        event: &event.event,
        data: event.data.as_ref(),
        frame: &frame,
        socket_id: &session.socket_id,
        user_id: membership,
    };
    session.app.hub.relay(session.outbox.id(), relayed);
    Outcome::Relayed
}
