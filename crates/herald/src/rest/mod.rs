//! The REST API under `/apps/{app_id}/…`: route, read the body within its limit, authenticate, and
//! dispatch to [`events`], [`channels`] or the user endpoint. Every failure is an [`ApiError`] with a
//! 4xx status and a JSON body; every success is 200 with a JSON body (the PHP SDK accepts nothing
//! else).

pub(crate) mod auth;
pub(crate) mod channels;
pub(crate) mod error;
pub(crate) mod events;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use pusher_wire::rest::auth::QueryParams;

use self::error::ApiError;
use crate::apps::App;
use crate::http::Body;
use crate::node::Node;

/// The endpoints of the REST API.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Events,
    BatchEvents,
    Channels,
    Channel(String),
    ChannelUsers(String),
    TerminateUser(String),
}

impl Route {
    fn method(&self) -> Method {
        match self {
            Self::Events | Self::BatchEvents | Self::TerminateUser(_) => Method::POST,
            Self::Channels | Self::Channel(_) | Self::ChannelUsers(_) => Method::GET,
        }
    }
}

fn method_name(method: &Method) -> &'static str {
    if method == Method::POST { "POST" } else { "GET" }
}

/// Split a REST path into the app id (absent on the Python SDK's `/users/{id}/terminate_connections`)
/// and the route. Channel names and user ids are percent-decoded.
fn parse_path(path: &str) -> Option<(Option<&str>, Route)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let (app_id, rest) = match segments.as_slice() {
        ["apps", app_id, rest @ ..] => (Some(*app_id), rest),
        ["users", ..] => (None, &segments[..]),
        _ => return None,
    };
    let route = match rest {
        ["events"] => Route::Events,
        ["batch_events"] => Route::BatchEvents,
        ["channels"] => Route::Channels,
        ["channels", name] => Route::Channel(decode(name)),
        ["channels", name, "users"] => Route::ChannelUsers(decode(name)),
        ["users", user_id, "terminate_connections"] => Route::TerminateUser(decode(user_id)),
        _ => return None,
    };
    Some((app_id, route))
}

/// Largest body accepted: a full batch (10 events) of the largest events, with room for JSON
/// escaping, and never more than [`MAX_BODY_BYTES`].
pub(crate) fn max_body_bytes(event_limit: usize) -> usize {
    (1 << 20).max(event_limit.saturating_mul(10 * 2)).min(MAX_BODY_BYTES)
}

/// The most any REST request body may be, whatever the apps' event limits: 20 MiB (ten events of
/// the largest allowed size, 1 MiB, each doubled by escaping).
pub(crate) const MAX_BODY_BYTES: usize = 20 << 20;

/// A request body must arrive within this long, so a client trickling one in cannot hold a task
/// and its buffer forever.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Show a refused request in the debug console of the app its path names: "why did my trigger not
/// arrive" is what a developer opens it for.
fn tell_console(node: &Node, parts: &hyper::http::request::Parts, error: &ApiError) {
    if !node.console.watched() {
        return;
    }
    let Some(app_id) = parse_path(parts.uri.path()).and_then(|(app, _)| app) else { return };
    let message = format!("{} {}: {error}", parts.method, parts.uri.path());
    node.console.emit(app_id, || crate::console::Activity::Refused {
        socket_id: None,
        channel: None,
        code: Some(error.status().as_u16()),
        message: &message,
    });
}

/// The whole body, at most `max` bytes, within [`BODY_TIMEOUT`].
pub(crate) async fn read_body(body: &mut Incoming, max: usize) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err(ApiError::BodyTooLarge { max }),
        Ok(Err(_)) | Err(_) => Err(ApiError::BodyRead),
    }
}

/// The most of a refused body read and dropped so that its client can read the 413; past it (or
/// [`BODY_TIMEOUT`]) the connection is closed under the client.
const DISCARD_BYTES: u64 = 64 << 20;

/// The request's `Content-Length`, if it has a valid one.
fn declared_length(headers: &hyper::HeaderMap) -> Option<u64> {
    headers.get(hyper::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn expects_continue(headers: &hyper::HeaderMap) -> bool {
    headers.get(hyper::header::EXPECT).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Read and drop the rest of a refused request's body while its answer is written. Closing the
/// connection with the body unread would reset it under a client still sending, and the client
/// would report a broken pipe instead of the 413.
/// Not tracked for shutdown: it ends when its connection does.
fn discard(mut body: Incoming) {
    tokio::spawn(async move {
        let mut read = 0u64;
        let _ = tokio::time::timeout(BODY_TIMEOUT, async {
            while let Some(Ok(frame)) = body.frame().await {
                read += frame.data_ref().map_or(0, |data| data.len() as u64);
                if read > DISCARD_BYTES {
                    break;
                }
            }
        })
        .await;
    });
}

/// Answer a REST request, and log one line for it (target `herald::access`: method, path without
/// the query string, status, duration, app id; never a key, secret or signature).
pub(crate) async fn handle(request: Request<Incoming>, node: &Arc<Node>) -> Response<Body> {
    let started = std::time::Instant::now();
    let (parts, mut body) = request.into_parts();
    let mut body_read = false;
    let response = match respond(&parts, &mut body, &mut body_read, node).await {
        Ok(response) => response,
        Err(error) => {
            tell_console(node, &parts, &error);
            error.into_response().map(Either::Left)
        }
    };
    let status = response.status();
    // A refused request's body is read to its end while the answer is written: closing the
    // connection with it unread would reset it under a client still sending, which then reports a
    // broken pipe instead of the answer. Except where the client waits for `100 Continue` before
    // sending it (hyper sends that on the first read): there it is never read, so never sent.
    if status.is_client_error() && !body.is_end_stream() && (body_read || !expects_continue(&parts.headers)) {
        discard(body);
    }
    node.metrics.rest_requests.get_or_create(&[("status", status.as_u16())]).inc();
    let path = parts.uri.path();
    let app = parse_path(path).and_then(|(app, _)| app).unwrap_or("-");
    let duration_us = started.elapsed().as_micros() as u64;
    tracing::info!(target: "herald::access", method = %parts.method, path, status = status.as_u16(), duration_us, app, "rest request");
    response
}

async fn respond(
    parts: &hyper::http::request::Parts,
    body: &mut Incoming,
    body_read: &mut bool,
    node: &Arc<Node>,
) -> Result<Response<Body>, ApiError> {
    let path = parts.uri.path();
    let (app_id, route) = parse_path(path).ok_or_else(|| ApiError::NotFound(format!("no such endpoint: {path}")))?;
    let method = route.method();
    if parts.method != method {
        return Err(ApiError::MethodNotAllowed(method_name(&method)));
    }
    let params = QueryParams::parse(parts.uri.query().unwrap_or(""));
    // Authenticated before the body is read: a forged request costs no body buffering.
    let app: Arc<App> = auth::authenticate(&node.apps(), app_id, method.as_str(), path, &params)?;
    let max = max_body_bytes(app.config().max_event_bytes);
    // Refused from its Content-Length alone when it declares too much, before `100 Continue`.
    if declared_length(&parts.headers).is_some_and(|length| length > max as u64) {
        return Err(ApiError::BodyTooLarge { max });
    }
    *body_read = true;
    let body = read_body(body, max).await?;
    auth::check_body(&params, &body)?;
    if matches!(route, Route::Channels | Route::Channel(_) | Route::ChannelUsers(_))
        && !app.allow_rest_read(std::time::Instant::now())
    {
        node.metrics.limited.get_or_create(&[("limit", "rest_reads")]).inc();
        let limit = app.config().max_rest_reads_per_second.unwrap_or_default();
        return Err(ApiError::TooManyRequests { what: "REST read", limit });
    }
    let whole = match route {
        Route::Channels => return channels::list(&app, &params),
        Route::Events => events::trigger(&app, node, &body, "rest"),
        Route::BatchEvents => events::batch(&app, node, &body),
        Route::Channel(name) => channels::show(&app, &name, &params),
        Route::ChannelUsers(name) => channels::users(&app, &name),
        Route::TerminateUser(user_id) => {
            let closed = app.hub.users.terminate(&user_id);
            tracing::debug!(user_id, closed, "terminated user connections");
            ok("{}".into())
        }
    };
    whole.map(|response| response.map(Either::Left))
}

/// A 200 response with a JSON body.
pub(crate) fn ok(body: String) -> Result<Response<Full<Bytes>>, ApiError> {
    Ok(json(StatusCode::OK, body))
}

/// A response with a JSON body.
pub(crate) fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = with_json_type(Response::new(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response
}

/// `response`, labelled as JSON.
pub(crate) fn with_json_type<B>(mut response: Response<B>) -> Response<B> {
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_limits_follow_the_event_limit_within_fixed_bounds() {
        assert_eq!(max_body_bytes(10 * 1024), 1 << 20, "Pusher's 10 KB events: 1 MiB");
        assert_eq!(max_body_bytes(100 * 1024), 2_048_000);
        assert_eq!(max_body_bytes(1 << 20), MAX_BODY_BYTES);
        assert_eq!(max_body_bytes(usize::MAX), MAX_BODY_BYTES);
    }

    #[test]
    fn paths() {
        let check =
            |path: &str, expected: Option<(Option<&str>, Route)>| assert_eq!(parse_path(path), expected, "{path}");
        check("/apps/3/events", Some((Some("3"), Route::Events)));
        check("/apps/3/batch_events", Some((Some("3"), Route::BatchEvents)));
        check("/apps/3/channels", Some((Some("3"), Route::Channels)));
        check("/apps/3/channels/presence-foobar", Some((Some("3"), Route::Channel("presence-foobar".into()))));
        check("/apps/3/channels/a%40b/users", Some((Some("3"), Route::ChannelUsers("a@b".into()))));
        check("/apps/3/users/12345/terminate_connections", Some((Some("3"), Route::TerminateUser("12345".into()))));
        check("/users/12345/terminate_connections", Some((None, Route::TerminateUser("12345".into()))));
        check("/apps/3", None);
        check("/apps/3/nope", None);
        check("/apps/3/channels/a/b/c", None);
    }
}
