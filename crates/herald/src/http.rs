//! The router: every HTTP request on the one port lands here and is sent, by path, to the WebSocket
//! upgrade (`…/app/{key}`), the REST API (`/apps/{id}/…`), the debug console (`/console…`),
//! `/metrics` or the health check.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use crate::node::Node;
use crate::rest::error::ApiError;
use crate::{rest, upgrade};

/// A response body: whole, or streamed (the REST channel list, the console's activity).
pub(crate) type Body = Either<Full<Bytes>, UnsyncBoxBody<Bytes, Infallible>>;

/// Answer one request.
pub(crate) async fn route(request: Request<Incoming>, node: Arc<Node>) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path();
    if path.starts_with("/apps/") || path.starts_with("/users/") {
        return Ok(rest::handle(request, &node).await);
    }
    // Before the console: pusher-js may put any prefix before `/app/{key}`, `/console` too.
    if let Some(key) = websocket_app_key(path) {
        let key = key.to_owned();
        return Ok(upgrade::upgrade(request, &key, &node).map(Either::Left));
    }
    if path == "/console" || path.starts_with("/console/") {
        return Ok(crate::console::handle(request, &node).await);
    }
    Ok(match (request.method(), path) {
        // 503 once shutting down, so a load balancer stops sending clients here.
        (&Method::GET | &Method::HEAD, "/" | "/up") if node.shutdown.is_cancelled() => {
            rest::json(hyper::StatusCode::SERVICE_UNAVAILABLE, r#"{"ok":false,"shutting_down":true}"#.into())
        }
        (&Method::GET | &Method::HEAD, "/" | "/up") => rest::json(hyper::StatusCode::OK, r#"{"ok":true}"#.into()),
        (&Method::GET, "/metrics") if node.config.metrics_addr.is_none() => metrics(&node),
        _ => ApiError::NotFound("no such endpoint".into()).into_response(),
    }
    .map(Either::Left))
}

/// `GET /metrics`: OpenMetrics text, for Prometheus.
pub(crate) fn metrics(node: &Node) -> Response<Full<Bytes>> {
    let channels: usize = node.apps().iter().map(|app| app.hub.channel_count()).sum();
    node.metrics.channels.set(channels as i64);
    node.metrics.subscriptions.set(node.subscriptions.used() as i64);
    let mut response = Response::new(Full::new(Bytes::from(node.metrics.encode())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// The app key of a WebSocket path `{optional prefix}/app/{key}` (pusher-js 4.2.2+ may add a `wsPath`
/// prefix).
fn websocket_app_key(path: &str) -> Option<&str> {
    let (_, key) = path.rsplit_once("/app/")?;
    (!key.is_empty() && !key.contains('/')).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_paths() {
        assert_eq!(websocket_app_key("/app/abc"), Some("abc"));
        assert_eq!(websocket_app_key("/ws/app/abc"), Some("abc"));
        assert_eq!(websocket_app_key("/app/"), None);
        assert_eq!(websocket_app_key("/pusher/app/abc/123/xyz/xhr_streaming"), None);
        assert_eq!(websocket_app_key("/apps/1/events"), None);
    }
}
