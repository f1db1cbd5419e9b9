//! One WebSocket connection: a single task owns the socket and its [`Session`], and runs one
//! `select!` loop over the shutdown signal, the outbox, inbound messages and the heartbeat timer.
//!
//! Everything the loop can end with is an [`Exit`]; cleanup (leaving every channel, the close frame)
//! happens once, after the loop, and [`Exit::close_frame`] maps each reason to its close code in one
//! match.

pub(crate) mod client_event;
pub(crate) mod heartbeat;
pub(crate) mod outbox;
pub(crate) mod rate_limit;
pub(crate) mod session;
pub(crate) mod signin;
pub(crate) mod subscribe;
pub(crate) mod subscriptions;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use pusher_wire::ErrorCode;
use pusher_wire::frame::server;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{self, Message};

use self::heartbeat::{Beat, Heartbeat};
use self::outbox::{Batch, Frame, Kill, Outbox};
use self::session::Session;
use crate::apps::App;
use crate::console::Activity;
use crate::node::Node;
use crate::upgrade::Slot;

/// The WebSocket a connection task owns.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Largest message read from a connection being refused (it is only told why and closed).
const REFUSED_MAX_MESSAGE: usize = 64 * 1024;

/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a connection ended.
#[derive(Debug)]
enum Exit {
    /// The client sent a close frame.
    ClientClosed,
    /// The TCP connection ended or failed.
    ClientGone,
    /// The client broke the WebSocket protocol (oversized message, bad framing).
    ProtocolError(tungstenite::Error),
    /// A write did not complete within the write timeout.
    WriteTimeout,
    /// The server is shutting down.
    Shutdown,
    /// Closed from outside through the outbox.
    Killed(Kill),
    /// No reply to the server's ping.
    PongTimeout,
    /// A reload removed the app.
    AppRemoved,
    /// The app requires authorized connections and this one neither signed in nor joined a
    /// private or presence channel in time.
    Unauthorized,
}

impl Exit {
    /// The `reason` label of `herald_connections_closed_total`.
    fn reason(&self) -> &'static str {
        match self {
            Self::ClientClosed | Self::ClientGone => "client",
            Self::ProtocolError(_) => "protocol_error",
            Self::WriteTimeout => "write_timeout",
            Self::Shutdown => "shutdown",
            Self::Killed(Kill::SlowConsumer) => "slow_consumer",
            Self::Killed(Kill::Terminated) => "terminated",
            Self::PongTimeout => "pong_timeout",
            Self::AppRemoved => "app_removed",
            Self::Unauthorized => "unauthorized",
        }
    }

    /// The `pusher:error` and close frame to send, if the socket is still usable.
    fn close_frame(&self) -> Option<(Option<ErrorCode>, CloseCode, &'static str)> {
        let pusher = |code: ErrorCode, reason| {
            debug_assert!(code.is_close_code(), "{code:?} is a pusher:error code only");
            Some((Some(code), CloseCode::Library(code.code()), reason))
        };
        match self {
            Self::ClientClosed | Self::ClientGone | Self::WriteTimeout => None,
            Self::ProtocolError(tungstenite::Error::Capacity(_)) => Some((None, CloseCode::Size, "Message too big")),
            Self::ProtocolError(tungstenite::Error::Utf8(_)) => {
                Some((None, CloseCode::Invalid, "Text frame is not UTF-8"))
            }
            Self::ProtocolError(_) => Some((None, CloseCode::Protocol, "WebSocket protocol error")),
            Self::Shutdown => pusher(ErrorCode::Reconnect, "Server shutting down, please reconnect"),
            Self::Killed(Kill::SlowConsumer) => pusher(ErrorCode::OverCapacity, "Client too slow: outbound queue full"),
            Self::Killed(Kill::Terminated) => pusher(ErrorCode::Unauthorized, "Connection terminated by the app"),
            Self::PongTimeout => pusher(ErrorCode::PongNotReceived, ErrorCode::PongNotReceived.description()),
            Self::AppRemoved => pusher(ErrorCode::AppDisabled, ErrorCode::AppDisabled.description()),
            Self::Unauthorized => pusher(ErrorCode::Unauthorized, "Connection not authorized within timeout"),
        }
    }
}

/// Serve an accepted connection of `app` until it ends; `slot` (its place in the connection counts)
/// is given back then.
pub(crate) async fn serve(upgraded: Upgraded, max_message: usize, app: Arc<App>, node: Arc<Node>, slot: Slot) {
    let mut socket = websocket(upgraded, max_message).await;
    let id = node.next_conn_id();
    let outbox = Arc::new(Outbox::new(id, node.config.outbox));
    let mut session = Session::new(node.socket_id(id), outbox, app, node.subscriptions.clone(), Instant::now());
    tracing::debug!(socket_id = %session.socket_id, app = %session.app.id, "connected");
    let socket_id = session.socket_id.as_str();
    node.console.emit(&session.app.id, || Activity::Connected { socket_id });
    let exit = drive(&mut socket, &mut session, &node).await;
    session.leave_all(Instant::now());
    tracing::debug!(socket_id = %session.socket_id, ?exit, "disconnected");
    node.console.emit(&session.app.id, || Activity::Disconnected {
        socket_id: session.socket_id.as_str(),
        reason: exit.reason(),
        code: exit.close_frame().map(|(_, code, _)| u16::from(code)),
    });
    node.metrics.connections_closed.get_or_create(&[("reason", exit.reason())]).inc();
    if matches!(exit, Exit::Shutdown) {
        // Spread reconnections over the shutdown window instead of sending every client back at once.
        tokio::time::sleep(node.shutdown_jitter()).await;
    }
    match exit.close_frame() {
        Some((code, close, reason)) => close_with(&mut socket, code, close, reason).await,
        // tungstenite queued the reply to the client's close frame; send it to complete the
        // closing handshake (browsers report 1006 otherwise).
        None if matches!(exit, Exit::ClientClosed) => {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.flush()).await;
        }
        None => {}
    }
    drop(slot);
}

/// The WebSocket over an upgraded connection.
async fn websocket(upgraded: Upgraded, max_message: usize) -> Socket {
    let config = crate::upgrade::websocket_config(max_message);
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await
}

/// Refuse a connection before it is established: `pusher:error` first (so pusher-js learns the
/// reason during its handshake), then the close frame with the same code.
pub(crate) async fn refuse(upgraded: Upgraded, code: ErrorCode, message: &str) {
    let mut socket = websocket(upgraded, REFUSED_MAX_MESSAGE).await;
    let frame = server::error(Some(code), message);
    let sent = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(Message::text(frame))).await;
    if matches!(sent, Ok(Ok(()))) {
        close_with(&mut socket, None, CloseCode::Library(code.code()), code.description()).await;
    }
}

// Every write below is boxed. A task is as large as its largest state, and a write's state (its
// timeout's timer, the wait for the kill switch, tungstenite's sink) is about 460 bytes that an
// idle connection, waiting in the select, never uses: boxed, it costs one short-lived allocation per
// batch written instead of being part of every connection's task for its whole life.
async fn drive(socket: &mut Socket, session: &mut Session, node: &Node) -> Exit {
    let config = &node.config;
    let established = server::connection_established(&session.socket_id, config.activity_timeout.as_secs());
    if let Err(exit) = Box::pin(write(socket, [Frame::from(established)], config.outbox.write_timeout)).await {
        return exit;
    }
    let outbox = session.outbox.clone();
    let mut heartbeat = Heartbeat::new(Instant::now(), config.activity_timeout, config.pong_timeout);
    if session.app.config().authorized_connections {
        heartbeat.require_authorization(Instant::now() + config.authorization_timeout);
    }
    let timer = tokio::time::sleep_until(heartbeat.deadline().into());
    let shutdown = node.shutdown.cancelled();
    let app_removed = session.app.removed.clone();
    let removed = app_removed.cancelled();
    tokio::pin!(timer, shutdown, removed);
    let mut replies = Vec::new();
    loop {
        // Not `biased`: polling the outbox first would let a busy broadcast starve the client's own
        // frames (its pings), and polling the socket first the other way round. Shutdown is seen
        // within an iteration either way.
        tokio::select! {
            () = &mut shutdown => return Exit::Shutdown,
            () = &mut removed => return Exit::AppRemoved,
            batch = outbox.next_batch() => match batch {
                Batch::Frames(frames) => {
                    if let Err(exit) = Box::pin(write_unless_killed(socket, &outbox, frames, config.outbox.write_timeout)).await {
                        return exit;
                    }
                }
                Batch::Kill(reason) => return Exit::Killed(reason),
            },
            message = socket.next() => {
                let now = Instant::now();
                heartbeat.heard(now);
                // What was queued before this message goes out before its replies: after an
                // unsubscribe and a new subscribe, the old subscription's frames must not follow
                // the new `subscription_succeeded`.
                let mut out = outbox.take_queued();
                match message {
                    Some(Ok(Message::Text(text))) => session.handle(text.as_str(), now, &mut replies, node),
                    // Protocol 7 is text only, but decoding UTF-8 binary frames costs nothing.
                    Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                        Ok(text) => session.handle(text, now, &mut replies, node),
                        Err(_) => replies.push(server::error(None, "binary frames must be UTF-8 JSON").into()),
                    },
                    Some(Ok(Message::Close(_))) => return Exit::ClientClosed,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Err(tungstenite::Error::Capacity(e))) => {
                        return Exit::ProtocolError(tungstenite::Error::Capacity(e));
                    }
                    // A TCP reset without a close frame is a client going away, not a broken protocol.
                    Some(Err(tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                        return Exit::ClientGone;
                    }
                    Some(Err(tungstenite::Error::Protocol(e))) => {
                        return Exit::ProtocolError(tungstenite::Error::Protocol(e));
                    }
                    // A text frame that is not UTF-8 breaks RFC 6455 (close 1007), not the TCP link.
                    Some(Err(tungstenite::Error::Utf8(e))) => return Exit::ProtocolError(tungstenite::Error::Utf8(e)),
                    Some(Err(_)) | None => return Exit::ClientGone,
                }
                if heartbeat.awaiting_authorization() && session.is_authorized() {
                    heartbeat.authorized();
                }
                out.extend(replies.drain(..));
                if !out.is_empty()
                    && let Err(exit) = Box::pin(write_unless_killed(socket, &outbox, out, config.outbox.write_timeout)).await
                {
                    return exit;
                }
            },
            () = &mut timer => {
                match heartbeat.beat(Instant::now()) {
                    Beat::Wait => {}
                    Beat::Ping => {
                        let ping = Message::Ping(Default::default());
                        if let Err(exit) = Box::pin(write_message(socket, ping, config.outbox.write_timeout)).await {
                            return exit;
                        }
                    }
                    Beat::Close => return Exit::PongTimeout,
                    Beat::Unauthorized => return Exit::Unauthorized,
                }
                timer.as_mut().reset(heartbeat.deadline().into());
            },
        }
    }
}

/// [`write`], ended at once if the outbox's kill switch is set meanwhile: a client that stopped
/// reading blocks the write, its outbox overflows, and it is dropped then rather than after the
/// write timeout.
async fn write_unless_killed(
    socket: &mut Socket,
    outbox: &Outbox,
    frames: impl IntoIterator<Item = Frame>,
    timeout: Duration,
) -> Result<(), Exit> {
    tokio::select! {
        biased;
        reason = outbox.killed() => Err(Exit::Killed(reason)),
        written = write(socket, frames, timeout) => written,
    }
}

/// Write frames with one flush at the end (tungstenite buffers them and writes in large chunks).
async fn write(socket: &mut Socket, frames: impl IntoIterator<Item = Frame>, timeout: Duration) -> Result<(), Exit> {
    let write = async {
        for frame in frames {
            socket.feed(Message::Text(frame)).await?;
        }
        socket.flush().await
    };
    settle(tokio::time::timeout(timeout, write).await)
}

async fn write_message(socket: &mut Socket, message: Message, timeout: Duration) -> Result<(), Exit> {
    settle(tokio::time::timeout(timeout, socket.send(message)).await)
}

fn settle(result: Result<Result<(), tungstenite::Error>, tokio::time::error::Elapsed>) -> Result<(), Exit> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Exit::ClientGone),
        Err(_) => Err(Exit::WriteTimeout),
    }
}

async fn close_with(socket: &mut Socket, error: Option<ErrorCode>, code: CloseCode, reason: &'static str) {
    let close = async {
        if let Some(error) = error {
            socket.feed(Message::text(server::error(Some(error), reason))).await?;
        }
        socket.close(Some(CloseFrame { code, reason: reason.into() })).await
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
}
