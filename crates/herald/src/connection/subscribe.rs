//! `pusher:subscribe` and `pusher:unsubscribe`, for every channel kind.
//!
//! Checks run in Pusher's order: the name (already valid once parsed), an existing subscription, the
//! authorization token by kind, then the presence member and its limits. A refused subscription gets
//! `pusher:subscription_error` (the event pusher-js and Laravel Echo's `.error()` surface), followed
//! by the `pusher:error` hosted Pusher sends, and the connection stays open.

use std::time::Instant;

use pusher_wire::auth;
use pusher_wire::error::{AuthError, PresenceError, excerpt};
use pusher_wire::frame::client::Subscribe;
use pusher_wire::frame::server::{self, SubscriptionErrorType};
use pusher_wire::limits::MAX_SUBSCRIPTIONS_PER_CONNECTION;
use pusher_wire::presence::PresenceMember;
use pusher_wire::{ChannelKind, ChannelName, ErrorCode, RawJson};

use super::outbox::Frame;
use super::session::Session;
use crate::hub::{CacheReplay, JoinError};
use crate::metrics::Metrics;

/// What became of a subscribe request (for the debug console; the client has its replies).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Subscribed (the presence user id, if any, is in the session's subscriptions).
    Subscribed,
    /// Refused with this status (`subscription_error`) or error code.
    Refused { code: Option<u16>, message: String },
}

/// Handle `pusher:subscribe`.
pub(crate) fn subscribe(
    session: &mut Session,
    request: Subscribe,
    now: Instant,
    replies: &mut Vec<Frame>,
    metrics: &Metrics,
) -> Outcome {
    let channel = request.channel;
    if session.subscriptions.contains(&channel) {
        // Pusher's answer; pusher-js never sends this itself, so it is a client bug worth reporting.
        let message = format!("Existing subscription to channel {channel}");
        replies.push(server::error(None, &message).into());
        return Outcome::Refused { code: None, message };
    }
    if session.subscriptions.len() >= MAX_SUBSCRIPTIONS_PER_CONNECTION {
        let message = format!("at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection");
        return refuse(replies, &channel, SubscriptionErrorType::LimitReached, &message, 4100);
    }
    let kind = channel.kind();
    if kind == ChannelKind::ServerToUser {
        // pusher-js subscribes here after signin_success. Delivery goes by signed-in user, so this
        // subscription is only acknowledged, never stored in the hub.
        match &session.user {
            Some(user) if channel.server_to_user_id() == Some(user.id.as_str()) => {
                replies.push(server::subscription_succeeded(channel.as_str()).into());
                return Outcome::Subscribed;
            }
            _ => return refuse(replies, &channel, SubscriptionErrorType::AuthError, "sign in as this user first", 401),
        }
    }
    if kind.requires_auth()
        && let Err(error) = authorize(session, &channel, request.auth.as_deref(), request.channel_data.as_deref())
    {
        return refuse_auth(replies, &channel, request.auth.as_deref(), &error);
    }
    let member = if kind.is_presence() {
        match presence_member(session, request.channel_data.as_deref()) {
            Ok(member) => Some(member),
            Err(error) => {
                let kind = match error {
                    PresenceError::UserIdTooLong { .. } | PresenceError::UserInfoTooLarge { .. } => {
                        SubscriptionErrorType::LimitReached
                    }
                    _ => SubscriptionErrorType::AuthError,
                };
                return refuse(replies, &channel, kind, &error.to_string(), 400);
            }
        }
    } else {
        None
    };
    // The node's and the app's subscription budgets, before the hub holds anything.
    if !session.budget.try_take() {
        return over_capacity(replies, &channel, "this server", metrics);
    }
    if !session.app.subscriptions.try_take() {
        session.budget.give_back(1);
        return over_capacity(replies, &channel, "this app", metrics);
    }
    match session.app.hub.subscribe(&channel, &session.outbox, member.as_ref(), now) {
        Ok(joined) => {
            replies.push(match joined.presence_snapshot {
                Some(snapshot) => snapshot.into(),
                None => server::subscription_succeeded(channel.as_str()).into(),
            });
            match joined.cache {
                CacheReplay::NotCached => {}
                CacheReplay::Hit(frame) => replies.push(frame),
                CacheReplay::Miss => replies.push(server::cache_miss(channel.as_str()).into()),
            }
            session.subscriptions.insert(channel, member.map(|m| m.user_id));
            Outcome::Subscribed
        }
        Err(error @ JoinError::PresenceFull { .. }) => {
            session.budget.give_back(1);
            session.app.subscriptions.give_back(1);
            metrics.limited.get_or_create(&[("limit", "presence_members")]).inc();
            refuse(replies, &channel, SubscriptionErrorType::LimitReached, &error.to_string(), 4100)
        }
    }
}

/// Handle `pusher:unsubscribe`; unknown channels are ignored, as on Pusher. Whether it was subscribed.
pub(crate) fn unsubscribe(session: &mut Session, channel: &ChannelName, now: Instant) -> bool {
    if !session.subscriptions.remove(channel) {
        return false;
    }
    session.app.hub.unsubscribe(channel.as_str(), session.outbox.id(), now);
    session.budget.give_back(1);
    session.app.subscriptions.give_back(1);
    true
}

/// Refuse a subscription the budget of `whose` cannot hold: `subscription_error` (limit reached,
/// 4100) and the `pusher:error` 4100 ("over capacity") Pusher sends; the connection stays.
fn over_capacity(replies: &mut Vec<Frame>, channel: &ChannelName, whose: &str, metrics: &Metrics) -> Outcome {
    metrics.limited.get_or_create(&[("limit", "subscriptions")]).inc();
    let message = format!("Over capacity: {whose} holds as many subscriptions as it may");
    let outcome = refuse(replies, channel, SubscriptionErrorType::LimitReached, &message, 4100);
    replies.push(server::error(Some(ErrorCode::OverCapacity), &message).into());
    outcome
}

/// The presence identity of a subscription: its `channel_data`, or, without it (pusher-js 7.4+ when
/// signed in), the signed-in user's id and `user_info`.
fn presence_member(session: &Session, channel_data: Option<&str>) -> Result<PresenceMember, PresenceError> {
    match (channel_data, &session.user) {
        (Some(channel_data), _) => PresenceMember::parse(channel_data),
        (None, Some(user)) => PresenceMember::new(user.id.clone(), user.user_info.as_ref().map(RawJson::as_raw)),
        (None, None) => Err(PresenceError::MissingChannelData),
    }
}

/// Check the token of a private, encrypted or presence subscription. Presence tokens sign the
/// `channel_data` as received. A private subscription that carries `channel_data` anyway may have it
/// signed or not (some servers fold it in), so both forms are accepted.
fn authorize(
    session: &Session,
    channel: &ChannelName,
    token: Option<&str>,
    channel_data: Option<&str>,
) -> Result<(), AuthError> {
    let config = session.app.config();
    let verify = |data: Option<&str>| {
        auth::verify_channel(&config.key, &config.secret, session.socket_id.as_str(), channel.as_str(), data, token)
    };
    if channel.kind().is_presence() {
        return verify(channel_data);
    }
    match channel_data {
        Some(data) => verify(None).or_else(|_| verify(Some(data))),
        None => verify(None),
    }
}

fn refuse_auth(replies: &mut Vec<Frame>, channel: &ChannelName, token: Option<&str>, error: &AuthError) -> Outcome {
    let outcome = refuse(replies, channel, SubscriptionErrorType::AuthError, &error.to_string(), 401);
    // The token is the client's own input, echoed for debugging; a valid one is under 100 bytes.
    let token: Option<String> = token.map(|t| excerpt(t, 128));
    let token = token.as_deref();
    // Hosted Pusher's own wording, for apps that log connection errors.
    let message = match error {
        AuthError::InvalidSignature { string_to_sign } => format!(
            "Invalid signature: Expected HMAC SHA256 hex digest of {string_to_sign}, but got {}",
            token.unwrap_or_default()
        ),
        AuthError::WrongKey => format!("Invalid key in subscription auth data: '{}'", token.unwrap_or_default()),
        AuthError::Missing => format!("Missing auth for subscription to {channel}"),
    };
    replies.push(server::error(None, &message).into());
    outcome
}

fn refuse(
    replies: &mut Vec<Frame>,
    channel: &ChannelName,
    kind: SubscriptionErrorType,
    message: &str,
    status: u16,
) -> Outcome {
    replies.push(server::subscription_error(channel.as_str(), kind, message, status).into());
    Outcome::Refused { code: Some(status), message: message.to_owned() }
}
