//! [`Session`]: everything one connection knows about itself, owned by its task alone (no lock).
//!
//! The connection loop hands every text message to [`Session::handle`], which parses it, acts on the
//! hub, and appends the frames to send back to `replies` (written before anything queued in the
//! outbox, so `subscription_succeeded` precedes the channel's events).

use std::sync::Arc;
use std::time::Instant;

use pusher_wire::error::FrameError;
use pusher_wire::frame::client::ClientEvent;
use pusher_wire::frame::server::{self, SubscriptionErrorType::InvalidRequest, SubscriptionErrorType::LimitReached};
use pusher_wire::{ChannelName, ClientFrame, ErrorCode, RawJson, SocketId};

use super::client_event;
use super::outbox::{Frame, Outbox};
use super::rate_limit::RateLimiter;
use super::signin::{self, SignedIn};
use super::subscribe;
use super::subscriptions::Subscriptions;
use crate::apps::App;
use crate::budget::Budget;
use crate::console::{Activity, Console};
use crate::node::Node;

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
    pub(crate) subscriptions: Subscriptions,
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
            subscriptions: Subscriptions::default(),
            user: None,
            client_events,
            commands: RateLimiter::for_commands(now),
            budget,
        }
    }

    /// Whether the connection has signed in or joined a private or presence channel (what an app
    /// with authorized connections asks of it).
    pub(crate) fn is_authorized(&self) -> bool {
        self.user.is_some() || self.subscriptions.any(|channel| channel.kind().requires_auth())
    }

    /// Act on one message from the client, appending replies. Bad input is answered, never fatal.
    /// What happened is also told to the debug console, when someone watches this app.
    pub(crate) fn handle(&mut self, text: &str, now: Instant, replies: &mut Vec<Frame>, node: &Node) {
        let metrics = &node.metrics;
        let console = &node.console;
        match ClientFrame::parse(text) {
            Ok(ClientFrame::Ping) => replies.push(Frame::from_static(server::PONG)),
            Ok(ClientFrame::Pong) => {}
            Ok(ClientFrame::Subscribe(request)) if !self.commands.allow(now) => {
                let message = "Subscription rejected due to rate limit";
                replies.push(server::subscription_error(request.channel.as_str(), LimitReached, message, 4301).into());
                self.tell(console, || refused(Some(request.channel.as_str()), Some(4301), message));
            }
            Ok(ClientFrame::Subscribe(request)) => {
                // Copied only for a watcher: the request itself goes into the hub.
                let watched = console.watched().then(|| request.channel.clone());
                let outcome = subscribe::subscribe(self, request, now, replies, metrics);
                if let Some(channel) = watched {
                    self.tell_subscription(console, &channel, &outcome);
                }
            }
            Ok(ClientFrame::Unsubscribe { channel }) => {
                if subscribe::unsubscribe(self, &channel, now) {
                    let socket_id = self.socket_id.as_str();
                    self.tell(console, || Activity::Unsubscribed { socket_id, channel: channel.as_str() });
                }
            }
            Ok(ClientFrame::Signin(_)) if !self.commands.allow(now) => {
                let message = "Sign-in rejected due to rate limit";
                replies.push(server::error(Some(ErrorCode::ClientEventRateLimit), message).into());
                self.tell(console, || refused(None, Some(ErrorCode::ClientEventRateLimit.code()), message));
            }
            Ok(ClientFrame::Signin(request)) => match signin::signin(self, request, replies) {
                Ok(()) => {
                    let socket_id = self.socket_id.as_str();
                    let user_id = self.user.as_ref().map_or("", |user| user.id.as_str());
                    self.tell(console, || Activity::SignedIn { socket_id, user_id });
                }
                Err(message) => {
                    self.tell(console, || refused(None, Some(ErrorCode::Unauthorized.code()), &message));
                }
            },
            Ok(ClientFrame::ClientEvent(event)) => {
                let watched = console.watched().then(|| event.clone());
                let outcome = client_event::client_event(self, event, now, replies);
                if outcome == client_event::Outcome::Relayed {
                    metrics.client_events.inc();
                } else if outcome == client_event::Outcome::RateLimited {
                    metrics.limited.get_or_create(&[("limit", "client_events")]).inc();
                }
                if let Some(event) = watched {
                    self.tell_client_event(console, &event, &outcome);
                }
            }
            Ok(ClientFrame::Other { event }) => {
                tracing::debug!(socket_id = %self.socket_id, event, "ignored unknown event");
            }
            Err(error) => {
                refuse_frame(&error, replies);
                if console.watched() {
                    let message = error.to_string();
                    let (channel, code) = match &error {
                        FrameError::InvalidSubscription { channel, .. } => (Some(channel.as_str()), Some(400)),
                        _ => (None, None),
                    };
                    self.tell(console, || refused(channel, code, &message));
                }
            }
        }
    }

    /// Tell the console's viewers of this app, if any; refusals get this connection's socket id.
    fn tell<'a>(&'a self, console: &Console, activity: impl FnOnce() -> Activity<'a>) {
        console.emit(&self.app.id, || match activity() {
            Activity::Refused { socket_id: None, channel, code, message } => {
                Activity::Refused { socket_id: Some(self.socket_id.as_str()), channel, code, message }
            }
            other => other,
        });
    }

    fn tell_subscription(&self, console: &Console, channel: &ChannelName, outcome: &subscribe::Outcome) {
        let socket_id = self.socket_id.as_str();
        match outcome {
            subscribe::Outcome::Subscribed => {
                let user_id = self.subscriptions.get(channel).flatten();
                self.tell(console, || Activity::Subscribed { socket_id, channel: channel.as_str(), user_id });
            }
            subscribe::Outcome::Refused { code, message } => {
                self.tell(console, || refused(Some(channel.as_str()), *code, message));
            }
        }
    }

    fn tell_client_event(&self, console: &Console, event: &ClientEvent, outcome: &client_event::Outcome) {
        let socket_id = self.socket_id.as_str();
        let channel = event.channel.as_str();
        match outcome {
            client_event::Outcome::Relayed => self.tell(console, || Activity::ClientEvent {
                socket_id,
                channel,
                event: &event.event,
                data: event.data.as_ref().map(RawJson::get),
            }),
            client_event::Outcome::RateLimited => self.tell(console, || {
                refused(
                    Some(channel),
                    Some(ErrorCode::ClientEventRateLimit.code()),
                    "Client event rejected due to rate limit",
                )
            }),
            client_event::Outcome::Refused(message) => self.tell(console, || refused(Some(channel), None, message)),
        }
    }

    /// Leave every channel and sign out (the connection is closing).
    pub(crate) fn leave_all(&mut self, now: Instant) {
        let held = self.subscriptions.len();
        for channel in self.subscriptions.take() {
            self.app.hub.unsubscribe(channel.as_str(), self.outbox.id(), now);
        }
        self.budget.give_back(held);
        self.app.subscriptions.give_back(held);
        if let Some(user) = self.user.take() {
            self.app.hub.users.sign_out(&user.id, self.outbox.id(), &user.watchlist);
        }
    }
}

/// A refusal for the console; [`Session::tell`] adds the socket id.
fn refused<'a>(channel: Option<&'a str>, code: Option<u16>, message: &'a str) -> Activity<'a> {
    Activity::Refused { socket_id: None, channel, code, message }
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
