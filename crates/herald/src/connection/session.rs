//! [`Session`]: everything one connection knows about itself, owned by its task alone (no lock).
//!
//! The connection loop hands every text message to [`Session::handle`], which parses it, acts on the
//! hub, and appends the frames to send back to `replies` (written before anything queued in the
//! outbox, so `subscription_succeeded` precedes the channel's events).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use pusher_wire::error::FrameError;
use pusher_wire::frame::server::{self, SubscriptionErrorType::InvalidRequest, SubscriptionErrorType::LimitReached};
use pusher_wire::{ChannelName, ClientFrame, ErrorCode, SocketId};

use super::client_event;
use super::outbox::{Frame, Outbox};
use super::rate_limit::RateLimiter;
use super::signin::{self, SignedIn};
use super::subscribe;
use crate::apps::App;
use crate::budget::Budget;
use crate::metrics::Metrics;

/// One connection's state.
#[derive(Debug)]
pub(crate) struct Session {
    /// The id announced in `connection_established`.
    pub(crate) socket_id: SocketId,
    /// Where the rest of the server sends this connection's frames.
    pub(crate) outbox: Arc<Outbox>,
    /// The app it connected to.
    pub(crate) app: Arc<App>,
    /// Channels it is subscribed to in the hub, with its presence user id on presence channels.
    pub(crate) subscriptions: HashMap<ChannelName, Option<String>>,
    /// The user it signed in as.
    pub(crate) user: Option<SignedIn>,
    /// The client-event rate limit.
    pub(crate) client_events: RateLimiter,
    /// The rate limit of subscribes and sign-ins.
    pub(crate) commands: RateLimiter,
    /// The node's subscription budget (the app's is in `app`).
    pub(crate) budget: Arc<Budget>,
}

impl Session {
    /// A fresh session.
    pub(crate) fn new(
        socket_id: SocketId,
        outbox: Arc<Outbox>,
        app: Arc<App>,
        budget: Arc<Budget>,
        now: Instant,
    ) -> Self {
        let client_events = RateLimiter::per_second(app.config().max_client_events_per_second, now);
        Self {
            socket_id,
            outbox,
            app,
            subscriptions: HashMap::new(),
            user: None,
            client_events,
            commands: RateLimiter::for_commands(now),
            budget,
        }
    }

    /// Act on one message from the client, appending replies. Bad input is answered, never fatal.
    pub(crate) fn handle(&mut self, text: &str, now: Instant, replies: &mut Vec<Frame>, metrics: &Metrics) {
        match ClientFrame::parse(text) {
            Ok(ClientFrame::Ping) => replies.push(Frame::from_static(server::PONG)),
            Ok(ClientFrame::Pong) => {}
            Ok(ClientFrame::Subscribe(request)) if !self.commands.allow(now) => {
                let message = "Subscription rejected due to rate limit";
                replies.push(server::subscription_error(request.channel.as_str(), LimitReached, message, 4301).into());
            }
            Ok(ClientFrame::Subscribe(request)) => subscribe::subscribe(self, request, now, replies, metrics),
            Ok(ClientFrame::Unsubscribe { channel }) => subscribe::unsubscribe(self, &channel, now),
            Ok(ClientFrame::Signin(_)) if !self.commands.allow(now) => {
                replies.push(
                    server::error(Some(ErrorCode::ClientEventRateLimit), "Sign-in rejected due to rate limit").into(),
                );
            }
            Ok(ClientFrame::Signin(request)) => signin::signin(self, request, replies),
            Ok(ClientFrame::ClientEvent(event)) => match client_event::client_event(self, event, now, replies) {
                client_event::Outcome::Relayed => {
                    metrics.client_events.inc();
                }
                client_event::Outcome::RateLimited => {
                    metrics.limited.get_or_create(&[("limit", "client_events")]).inc();
                }
                client_event::Outcome::Refused => {}
            },
            Ok(ClientFrame::Other { event }) => {
                tracing::debug!(socket_id = %self.socket_id, event, "ignored unknown event");
            }
            Err(error) => refuse_frame(&error, replies),
        }
    }

    /// Leave every channel and sign out (the connection is closing).
    pub(crate) fn leave_all(&mut self, now: Instant) {
        let held = self.subscriptions.len();
        for (channel, _) in self.subscriptions.drain() {
            self.app.hub.unsubscribe(channel.as_str(), self.outbox.id(), now);
        }
        self.budget.give_back(held);
        self.app.subscriptions.give_back(held);
        if let Some(user) = self.user.take() {
            self.app.hub.users.sign_out(&user.id, self.outbox.id(), &user.watchlist);
        }
    }
}

/// Answer a frame that could not be understood: `pusher:error`, and for a subscription to an
/// invalid channel name also `pusher:subscription_error` on that name, so the client's channel
/// object (and Laravel Echo's `.error()`) hears about it.
fn refuse_frame(error: &FrameError, replies: &mut Vec<Frame>) {
    if let FrameError::InvalidSubscription { channel, .. } = error {
        replies.push(server::subscription_error(channel, InvalidRequest, &error.to_string(), 400).into());
    }
    replies.push(server::error(None, &error.to_string()).into());
}
