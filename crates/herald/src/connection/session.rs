//! [`Session`]: everything one connection knows about itself, owned by its task alone (no lock).
//!
//! The connection loop hands every text message to [`Session::handle`], which parses it, acts on the
//! hub, and appends the frames to send back to `replies` (written before anything queued in the
//! outbox, so `subscription_succeeded` precedes the channel's events).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use pusher_wire::frame::server;
use pusher_wire::{ChannelName, ClientFrame, SocketId};

use super::outbox::{Frame, Outbox};
use super::subscribe;
use crate::apps::App;

/// One connection's state.
#[derive(Debug)]
pub struct Session {
    /// The id announced in `connection_established`.
    pub socket_id: SocketId,
    /// Where the rest of the server sends this connection's frames.
    pub outbox: Arc<Outbox>,
    /// The app it connected to.
    pub app: Arc<App>,
    /// Channels it is subscribed to in the hub.
    pub subscriptions: HashSet<ChannelName>,
}

impl Session {
    /// A fresh session.
    pub fn new(socket_id: SocketId, outbox: Arc<Outbox>, app: Arc<App>) -> Self {
        Self { socket_id, outbox, app, subscriptions: HashSet::new() }
    }

    /// Act on one message from the client, appending replies. Bad input is answered, never fatal.
    pub fn handle(&mut self, text: &str, now: Instant, replies: &mut Vec<Frame>) {
        match ClientFrame::parse(text) {
            Ok(ClientFrame::Ping) => replies.push(Frame::from_static(server::PONG)),
            Ok(ClientFrame::Pong) => {}
            Ok(ClientFrame::Subscribe(request)) => subscribe::subscribe(self, request, now, replies),
            Ok(ClientFrame::Unsubscribe { channel }) => subscribe::unsubscribe(self, &channel, now),
            Ok(ClientFrame::Signin(_)) => {
                replies.push(server::error(None, "pusher:signin is not supported by this server yet").into());
            }
            Ok(ClientFrame::ClientEvent(event)) => {
                let message = format!("client events are not supported by this server yet (event {})", event.event);
                replies.push(server::error(None, &message).into());
            }
            Ok(ClientFrame::Other { event }) => {
                tracing::debug!(socket_id = %self.socket_id, event, "ignored unknown event");
            }
            Err(error) => subscribe::refuse_frame(&error, replies),
        }
    }

    /// Leave every channel (the connection is closing).
    pub fn leave_all(&mut self, now: Instant) {
        for channel in self.subscriptions.drain() {
            self.app.hub.unsubscribe(channel.as_str(), self.outbox.id(), now);
        }
    }
}
