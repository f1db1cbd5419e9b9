//! `POST /apps/{id}/events` and `POST /apps/{id}/batch_events`: validate, publish to the hub, and
//! answer `{}` (or the requested counts). A trigger returns once the event is queued for every current
//! subscriber; it never waits for a socket.

use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use pusher_wire::frame::server;
use pusher_wire::rest::types::{BatchEvent, Info, Trigger};
use pusher_wire::{ChannelName, SocketId};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::apps::App;
use crate::connection::outbox::Frame;
use crate::console::Activity;
use crate::hub::Except;
use crate::node::Node;

/// Trigger one event on one or more channels; `source` names who asked ("rest", "console") in the
/// console's activity stream.
pub(crate) fn trigger(app: &App, node: &Node, body: &[u8], source: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let trigger = Trigger::parse(body, &app.config().trigger_limits())?;
    within_event_limit(app, node, trigger.channels.len())?;
    let except = trigger.socket_id.as_ref().map(|socket_id| except(node, socket_id));
    let now = Instant::now();
    for channel in &trigger.channels {
        publish(app, node, channel, &trigger.name, &trigger.data, except, now, source);
    }
    if trigger.info.is_empty() {
        return super::ok("{}".into());
    }
    let channels: Map<String, Value> = trigger
        .channels
        .iter()
        .map(|channel| (channel.as_str().to_owned(), counts(app, channel, trigger.info, now)))
        .collect();
    super::ok(serde_json::json!({ "channels": channels }).to_string())
}

/// Trigger up to ten events, each on its own channel.
pub(crate) fn batch(app: &App, node: &Node, body: &[u8]) -> Result<Response<Full<Bytes>>, ApiError> {
    let events = BatchEvent::parse_batch(body, &app.config().trigger_limits())?;
    within_event_limit(app, node, events.len())?;
    let now = Instant::now();
    for event in &events {
        let except = event.socket_id.as_ref().map(|socket_id| except(node, socket_id));
        publish(app, node, &event.channel, &event.name, &event.data, except, now, "batch");
    }
    if events.iter().all(|event| event.info.is_empty()) {
        return super::ok("{}".into());
    }
    let batch: Vec<Value> = events.iter().map(|event| counts(app, &event.channel, event.info, now)).collect();
    super::ok(serde_json::json!({ "batch": batch }).to_string())
}

/// Refuse the whole request when its `events` (one per channel) would pass the app's
/// `max_rest_events_per_second`.
fn within_event_limit(app: &App, node: &Node, events: usize) -> Result<(), ApiError> {
    if app.allow_rest_events(u32::try_from(events).unwrap_or(u32::MAX), Instant::now()) {
        return Ok(());
    }
    node.metrics.limited.get_or_create(&[("limit", "rest_events")]).inc();
    let limit = app.config().max_rest_events_per_second.unwrap_or_default();
    Err(ApiError::TooManyRequests { what: "REST event", limit })
}

/// The socket a publisher excludes: its id (carried to the other nodes of a cluster) and, when it
/// is connected here, its connection.
fn except<'a>(node: &Node, socket_id: &'a SocketId) -> Except<'a> {
    Except { socket_id, local: node.conn_id_of(socket_id) }
}

#[allow(clippy::too_many_arguments)] // one call site per endpoint; a struct would only rename them
fn publish(
    app: &App,
    node: &Node,
    channel: &ChannelName,
    name: &str,
    data: &str,
    except: Option<Except<'_>>,
    now: Instant,
    source: &str,
) {
    let delivered = match channel.server_to_user_id() {
        // `sendToUser`: every connection signed in as the user, whether or not pusher-js has
        // confirmed its subscription to the channel yet.
        Some(user_id) => {
            let frame = Frame::from(server::channel_event(name, channel.as_str(), data));
            app.hub.users.publish(user_id, &frame, except)
        }
        None => app.hub.publish(channel, name, data, except, now),
    };
    node.metrics.events_published.inc();
    node.metrics.deliveries.inc_by(delivered as u64);
    node.console.emit(&app.id, || Activity::Triggered {
        source,
        channel: channel.as_str(),
        event: name,
        data,
        excluded: except.map(|except| except.socket_id.as_str()),
        delivered,
    });
}

/// The counts a trigger's `info` asks for: `user_count` on presence channels only, and
/// `subscription_count` (connections) on any channel.
fn counts(app: &App, channel: &ChannelName, info: Info, now: Instant) -> Value {
    let current = app.hub.channel_info(channel.as_str(), now);
    let mut counts = Map::new();
    if info.user_count && channel.kind().is_presence() {
        counts.insert("user_count".into(), current.user_count.into());
    }
    if info.subscription_count {
        counts.insert("subscription_count".into(), current.subscription_count.into());
    }
    Value::Object(counts)
}
