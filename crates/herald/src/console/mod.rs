//! The debug console at `/console`: a page compiled into the binary (`assets/`), and the API it
//! calls under `/console/api/…`, each request signed for one app ([`auth`]). Off unless the node is
//! started with `--console`; then every API request needs a valid session signature, and the page
//! itself holds nothing secret.
//!
//! API (every call takes `key`, `expires` and `signature` in the query string):
//! - `GET session`: the app the signature opens.
//! - `GET overview[?filter_by_prefix=…]`: connections and occupied channels (at most
//!   [`MAX_CHANNELS_SHOWN`] of them, and how many there are).
//! - `GET members?channel=…`: a presence channel's members.
//! - `GET stream`: Server-Sent Events, one JSON line per [`Activity`] of the app ([`tap`]).
//! - `POST events`: a REST trigger body, published as the REST API would.

pub(crate) mod auth;
pub(crate) mod tap;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use pusher_wire::ChannelName;
use pusher_wire::rest::auth::QueryParams;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::tap::Watch;
pub(crate) use self::tap::{Activity, Console};
use crate::apps::App;
use crate::http::Body;
use crate::node::Node;
use crate::rest::error::ApiError;

/// Channels listed by `overview`; a prefix narrows a longer list.
pub(crate) const MAX_CHANNELS_SHOWN: usize = 500;

/// Presence members listed by `members`.
const MAX_MEMBERS_SHOWN: usize = 1_000;

/// A comment line sent on an idle stream, so that proxies and the browser keep it open.
const KEEPALIVE: Duration = Duration::from_secs(15);

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// Answer a request under `/console`.
pub(crate) async fn handle(request: Request<Incoming>, node: &Arc<Node>) -> Response<Body> {
    if !node.config.console {
        return whole(ApiError::NotFound("the console is off: start Herald with --console".into()).into_response());
    }
    let path = request.uri().path();
    let get = request.method() == Method::GET || request.method() == Method::HEAD;
    match path {
        "/console" | "/console/" if get => asset(INDEX, "text/html; charset=utf-8"),
        "/console/console.js" if get => asset(SCRIPT, "text/javascript; charset=utf-8"),
        "/console/console.css" if get => asset(STYLE, "text/css; charset=utf-8"),
        _ if path.starts_with("/console/api/") => match api(request, node).await {
            Ok(response) => no_store(response),
            Err(error) => no_store(whole(error.into_response())),
        },
        _ => whole(ApiError::NotFound("no such console page".into()).into_response()),
    }
}

async fn api(request: Request<Incoming>, node: &Arc<Node>) -> Result<Response<Body>, ApiError> {
    let (parts, body) = request.into_parts();
    let params = QueryParams::parse(parts.uri.query().unwrap_or(""));
    let app = session(node, &params)?;
    let endpoint = parts.uri.path().trim_start_matches("/console/api/");
    let method = parts.method;
    match endpoint {
        "session" | "overview" | "members" | "stream" if method != Method::GET => {
            Err(ApiError::MethodNotAllowed("GET"))
        }
        "session" => {
            ok(json!({ "app_id": &*app.id, "key": app.config().key, "cluster": node.config.redis_url.is_some() }))
        }
        "overview" => ok(overview(&app, params.get("filter_by_prefix").unwrap_or(""))),
        "members" => {
            let channel = params.get("channel").unwrap_or("");
            let channel = ChannelName::parse(channel).map_err(|e| ApiError::BadRequest(format!("channel: {e}")))?;
            if !channel.kind().is_presence() {
                return Err(ApiError::BadRequest("members are only kept on presence channels".into()));
            }
            let members: Vec<_> = app
                .hub
                .members(channel.as_str(), MAX_MEMBERS_SHOWN)
                .into_iter()
                .map(|(id, info)| json!({ "id": id, "info": serde_json::from_str::<serde_json::Value>(&info).ok() }))
                .collect();
            ok(json!({ "channel": channel.as_str(), "members": members }))
        }
        "stream" => Ok(stream(node.console.watch(app.id.clone()), node.shutdown.clone())),
        "events" if method != Method::POST => Err(ApiError::MethodNotAllowed("POST")),
        "events" => {
            let max = 2 * app.config().max_event_bytes + 4096;
            let body = match Limited::new(body, max).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                    return Err(ApiError::BodyTooLarge { max });
                }
                Err(_) => return Err(ApiError::BodyRead),
            };
            Ok(crate::rest::events::trigger(&app, node, &body, "console")?.map(Either::Left))
        }
        _ => Err(ApiError::NotFound(format!("no console endpoint {endpoint}"))),
    }
}

/// The app a request's session signature opens.
fn session(node: &Node, params: &QueryParams) -> Result<Arc<App>, ApiError> {
    let key = params.get("key").ok_or(auth::SessionError::Missing)?;
    let expires = params.get("expires").and_then(|e| e.parse().ok()).ok_or(auth::SessionError::Missing)?;
    let signature = params.get("signature").ok_or(auth::SessionError::Missing)?;
    let app = node.apps().by_key(key).cloned().ok_or(auth::SessionError::UnknownKey)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    auth::verify(&app.config(), expires, signature, now)?;
    Ok(app)
}

/// Connections and occupied channels of `app`, the channels whose name starts with `prefix`.
fn overview(app: &App, prefix: &str) -> serde_json::Value {
    let mut count = 0;
    let mut shown = Vec::new();
    for part in 0..app.hub.parts() {
        app.hub.occupied_in_part(part, prefix, |channel| {
            count += 1;
            if shown.len() < MAX_CHANNELS_SHOWN {
                shown.push((channel.name.to_owned(), channel.subscription_count, channel.user_count));
            }
        });
    }
    shown.sort_unstable();
    let channels: Vec<_> = shown
        .into_iter()
        .map(|(name, subscription_count, user_count)| {
            let presence = name.starts_with("presence-");
            json!({
                "name": name,
                "subscription_count": subscription_count,
                "user_count": presence.then_some(user_count),
            })
        })
        .collect();
    json!({
        "app_id": &*app.id,
        "connections": app.connection_count(),
        "channel_count": count,
        "channels": channels,
    })
}

/// The app's activity as Server-Sent Events until the viewer leaves or the server shuts down.
fn stream(watch: Watch, shutdown: CancellationToken) -> Response<Body> {
    let frames = futures_util::stream::unfold((watch, shutdown, true), |(watch, shutdown, first)| async move {
        // A first comment line, so that the browser reports the stream open at once.
        let mut chunk = if first { b": herald console\n\n".to_vec() } else { Vec::new() };
        loop {
            let taken = watch.viewer.take();
            if taken.lost > 0 {
                chunk.extend(format!("data: {{\"kind\":\"lost\",\"count\":{}}}\n\n", taken.lost).into_bytes());
            }
            for line in &taken.lines {
                chunk.extend_from_slice(b"data: ");
                chunk.extend_from_slice(line);
                chunk.extend_from_slice(b"\n\n");
            }
            if !chunk.is_empty() {
                let frame: Result<Frame<Bytes>, Infallible> = Ok(Frame::data(Bytes::from(chunk)));
                return Some((frame, (watch, shutdown, false)));
            }
            tokio::select! {
                () = shutdown.cancelled() => return None,
                () = watch.viewer.ready.notified() => {}
                () = tokio::time::sleep(KEEPALIVE) => chunk.extend_from_slice(b": keep-alive\n\n"),
            }
        }
    });
    let mut response = Response::new(Either::Right(StreamBody::new(frames).boxed_unsync()));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    // Reverse proxies that buffer responses would hold the stream back.
    response.headers_mut().insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    response
}

fn ok(value: serde_json::Value) -> Result<Response<Body>, ApiError> {
    Ok(whole(crate::rest::json(StatusCode::OK, value.to_string())))
}

fn whole(response: Response<Full<Bytes>>) -> Response<Body> {
    response.map(Either::Left)
}

fn no_store(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page file, with headers that keep it to itself: no inline script, nothing from elsewhere, not
/// framed by another site.
fn asset(text: &'static str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from_static(text.as_bytes()))));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"),
    );
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    headers.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer"));
    response
}
