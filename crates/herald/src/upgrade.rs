//! The WebSocket handshake on `…/app/{key}`: check the upgrade request, decide admission, answer
//! 101, and hand the upgraded socket to a connection task.
//!
//! Refusals (unknown key, unsupported protocol, quotas) are never HTTP errors: the upgrade is always
//! accepted and the reason is sent in-band as `pusher:error` plus a close frame with the same code.
//! An HTTP refusal looks like a network failure to pusher-js, which would then retry forever.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    CONNECTION, HeaderMap, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Request, Response, StatusCode};
use pusher_wire::ErrorCode;
use pusher_wire::error::excerpt;
use pusher_wire::limits::PROTOCOL_VERSION;
use pusher_wire::rest::auth::QueryParams;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::apps::App;
use crate::connection;
use crate::console::Activity;
use crate::node::Node;
use crate::rest::error::ApiError;

/// Read buffer per connection. tungstenite allocates it eagerly (its default is 128 KiB) and reads
/// at most this much per syscall. Client frames are small (a subscribe with auth is about 200 bytes);
/// a larger one grows the buffer on demand and takes one more read. RSS per idle subscribed
/// connection, measured with `scripts/bench connect`: 2 KiB gave 5.6 KiB, 1 KiB 4.6 KiB, 512 bytes
/// 3.9-4.1 KiB; with pushbench (10,000 connections in 100 channels), 512 bytes 3.90 KiB and 256
/// bytes 3.65 KiB.
const READ_BUFFER_BYTES: usize = 256;
/// Frames are written to the socket once this much is buffered, and at every flush.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// The WebSocket settings of every connection; messages larger than `max_message` close the
/// connection with 1009.
pub(crate) fn websocket_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// Whether a connection may proceed once upgraded.
enum Admission {
    Accept(Arc<App>, Slot),
    Refuse(ErrorCode, String),
}

/// A counted connection: released from the app's and the node's counts when dropped.
pub(crate) struct Slot {
    node: Arc<Node>,
    app: Arc<App>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.app.disconnect();
        self.node.release();
        self.node.metrics.connections.dec();
    }
}

/// Answer an upgrade request for app `key`.
pub(crate) fn upgrade(mut request: Request<Incoming>, key: &str, node: &Arc<Node>) -> Response<Full<Bytes>> {
    let Some(accept) = accept_key(request.headers()) else {
        return ApiError::UpgradeRequired.into_response();
    };
    let origin = request.headers().get(hyper::header::ORIGIN).and_then(|origin| origin.to_str().ok());
    let admission = admit(node, key, request.uri().query(), origin);
    let on_upgrade = hyper::upgrade::on(&mut request);
    let node = node.clone();
    // Spawned before the 101 is returned: the upgrade completes only once hyper has sent it. The
    // task lives as long as the connection, so it holds as little as it can: the WebSocket is made
    // inside `serve`, not here, which would keep a second copy of its room in the task.
    node.connections.clone().spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "upgrade failed");
                return;
            }
        };
        match admission {
            Admission::Accept(app, slot) => {
                let max_message = crate::config::max_client_message_bytes(app.config().max_event_bytes);
                connection::serve(upgraded, max_message, app, node, slot).await;
            }
            Admission::Refuse(code, message) => {
                tracing::debug!(code = code.code(), message, "connection refused");
                node.metrics.connections_refused.get_or_create(&[("code", code.code())]).inc();
                connection::refuse(upgraded, code, &message).await;
            }
        }
    });
    let mut response = Response::new(Full::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// The `Sec-WebSocket-Accept` value, if this is a valid WebSocket upgrade request.
fn accept_key(headers: &HeaderMap) -> Option<String> {
    let has_token = |name, token: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|value| value.to_str().is_ok_and(|v| v.split(',').any(|part| part.trim().eq_ignore_ascii_case(token))))
    };
    let version_13 = headers.get(SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13");
    if !(has_token(UPGRADE, "websocket") && has_token(CONNECTION, "upgrade") && version_13) {
        return None;
    }
    headers.get(SEC_WEBSOCKET_KEY).map(|key| derive_accept_key(key.as_bytes()))
}

/// Whether `origin` (`scheme://host[:port]`) is in `allowed`; an empty list allows every origin. A
/// pattern's `*.` stands for one or more labels: `https://*.example.com` allows
/// `https://app.example.com` and `https://a.b.example.com`, not `https://example.com`.
pub(crate) fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|pattern| match pattern.split_once("*.") {
            Some((scheme, domain)) => origin
                .strip_prefix(scheme)
                .and_then(|host| host.strip_suffix(domain))
                .is_some_and(|labels| labels.len() > 1 && labels.ends_with('.') && !labels.contains('/')),
            None => pattern.eq_ignore_ascii_case(origin),
        })
}

/// Admission checks in Pusher's order: app key, protocol version, app quota, server capacity. A
/// refusal for a known app is also told to the debug console.
fn admit(node: &Arc<Node>, key: &str, query: Option<&str>, origin: Option<&str>) -> Admission {
    let apps = node.apps();
    let Some(app) = apps.by_key(key) else {
        return Admission::Refuse(ErrorCode::AppNotFound, format!("App key {} does not exist", excerpt(key, 64)));
    };
    let admission = admit_to(node, app, query, origin);
    if let Admission::Refuse(code, message) = &admission {
        let code = Some(code.code());
        node.console.emit(&app.id, || Activity::Refused { socket_id: None, channel: None, code, message });
    }
    admission
}

fn admit_to(node: &Arc<Node>, app: &Arc<App>, query: Option<&str>, origin: Option<&str>) -> Admission {
    // Browsers always say where a page comes from; other clients may leave it out, and could claim
    // anything, so an absent Origin passes (the list keeps other websites out, not other programs).
    if let Some(origin) = origin
        && !origin_allowed(&app.config().allowed_origins, origin)
    {
        return Admission::Refuse(ErrorCode::Unauthorized, format!("Origin {} not allowed", excerpt(origin, 128)));
    }
    let params = QueryParams::parse(query.unwrap_or(""));
    // pusher-js always sends protocol=7; a client that sends none is assumed to speak 7.
    if let Some(protocol) = params.get("protocol")
        && !protocol.parse::<u32>().is_ok_and(|p| (5..=PROTOCOL_VERSION).contains(&p))
    {
        let message = format!("Protocol version {} not supported", excerpt(protocol, 16));
        return Admission::Refuse(ErrorCode::UnsupportedProtocol, message);
    }
    if !app.try_connect() {
        return Admission::Refuse(ErrorCode::AppOverQuota, "App connection quota exceeded".into());
    }
    if !node.try_admit() {
        app.disconnect();
        return Admission::Refuse(ErrorCode::OverCapacity, "Server at capacity, retry later".into());
    }
    node.metrics.connections.inc();
    node.metrics.connections_opened.inc();
    Admission::Accept(app.clone(), Slot { node: node.clone(), app: app.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly_or_by_subdomain_wildcard() {
        let allowed = vec!["https://app.example.com".to_owned(), "https://*.example.org".to_owned()];
        let check = |origin: &str, expected: bool| assert_eq!(origin_allowed(&allowed, origin), expected, "{origin}");
        check("https://app.example.com", true);
        check("HTTPS://APP.EXAMPLE.COM", true);
        check("http://app.example.com", false);
        check("https://app.example.com:8443", false);
        check("https://evil.com", false);
        check("https://a.example.org", true);
        check("https://a.b.example.org", true);
        check("https://example.org", false);
        check("https://.example.org", false);
        check("https://evilexample.org", false);
        check("https://a.example.org.evil.com", false);
        check("http://a.example.org", false);
        assert!(origin_allowed(&[], "https://anything"), "no list: any origin");
    }
}
