//! The debug console at `/console`: a page compiled into the binary (`assets/`), and the API it
//! calls under `/console/api/…`, each request signed for one app and that request ([`auth`]). Off
//! unless the node is started with `--console`; then every API request needs a valid session
//! signature, and the page itself holds nothing secret.
//!
//! API (every call carries `Authorization: HeraldConsole {key}:{expires}:{signature}`, or `key`,
//! `expires` and `signature` in the query string):
//! - `GET session`: the app the signature opens.
//! - `GET overview[?filter_by_prefix=…]`: connections and occupied channels (at most
//!   [`MAX_CHANNELS_SHOWN`] of them, and how many there are).
//! - `GET members?channel=…`: a presence channel's members.
//! - `GET stream`: Server-Sent Events, one JSON line per [`Activity`] of the app ([`tap`],
//!   [`stream`]).
//! - `POST events`: a REST trigger body, published as the REST API would.

pub(crate) mod auth;
mod stream;
pub(crate) mod tap;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use pusher_wire::ChannelName;
use pusher_wire::rest::auth::QueryParams;
use serde_json::json;

use self::auth::Credentials;
pub(crate) use self::tap::{Activity, Console};
use crate::apps::App;
use crate::http::Body;
use crate::node::Node;
use crate::rest::error::ApiError;

/// Channels listed by `overview`; a prefix narrows a longer list.
pub(crate) const MAX_CHANNELS_SHOWN: usize = 500;

/// Presence members listed by `members`.
const MAX_MEMBERS_SHOWN: usize = 1_000;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// Answer a request under `/console`, and log it as the REST API's requests are (target
/// `herald::access`; never the query, which may hold a session signature).
pub(crate) async fn handle(request: Request<Incoming>, node: &Arc<Node>) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = respond(request, node).await;
    let status = response.status().as_u16();
    let duration_us = started.elapsed().as_micros() as u64;
    tracing::info!(target: "herald::access", %method, path, status, duration_us, "console request");
    response
}

async fn respond(request: Request<Incoming>, node: &Arc<Node>) -> Response<Body> {
    if !node.config.console {
        return whole(ApiError::NotFound("the console is off: start Herald with --console".into()).into_response());
    }
    let path = request.uri().path();
    let get = request.method() == Method::GET || request.method() == Method::HEAD;
    match path {
        "/console" | "/console/" if get => asset(INDEX, "text/html; charset=utf-8"),
        "/console/console.js" if get => asset(SCRIPT, "text/javascript; charset=utf-8"),
        "/console/console.css" if get => asset(STYLE, "text/css; charset=utf-8"),
        _ if path.starts_with("/console/api/") => api_headers(match api(request, node).await {
            Ok(response) => response,
            Err(error) => whole(error.into_response()),
        }),
        _ => whole(ApiError::NotFound("no such console page".into()).into_response()),
    }
}

async fn api(request: Request<Incoming>, node: &Arc<Node>) -> Result<Response<Body>, ApiError> {
    let (parts, mut body) = request.into_parts();
    let endpoint = parts.uri.path().trim_start_matches("/console/api/");
    let method = match endpoint {
        "session" | "overview" | "members" | "stream" => Method::GET,
        "events" => Method::POST,
        _ => return Err(ApiError::NotFound(format!("no console endpoint {endpoint}"))),
    };
    if parts.method != method {
        return Err(ApiError::MethodNotAllowed(if method == Method::GET { "GET" } else { "POST" }));
    }
    let params = QueryParams::parse(parts.uri.query().unwrap_or(""));
    let authorization = parts.headers.get(AUTHORIZATION).and_then(|value| value.to_str().ok());
    let credentials = Credentials::from_request(authorization, &params)?;
    let request_signed = format!("{method} {endpoint}");
    let app = open(node, &credentials, &request_signed)?;
    match endpoint {
        "session" => {
            ok(json!({ "app_id": &*app.id, "key": app.config().key, "cluster": node.config.redis_url.is_some() }))
        }
        "overview" => ok(overview(&app, params.get("filter_by_prefix").unwrap_or(""))),
        "members" => members(&app, params.get("channel").unwrap_or("")),
        "stream" => stream::open(node, &app, credentials),
        _ => {
            let body =
                crate::rest::read_body(&mut body, crate::rest::max_body_bytes(app.config().max_event_bytes)).await?;
            Ok(crate::rest::events::trigger(&app, node, &body, "console")?.map(Either::Left))
        }
    }
}

/// The app whose session `credentials` are, if they open `request` now.
fn open(node: &Node, credentials: &Credentials, request: &str) -> Result<Arc<App>, ApiError> {
    let app = node.apps().by_key(&credentials.key).cloned().ok_or(auth::SessionError::UnknownKey)?;
    auth::verify(&app.config(), credentials, request, unix_now())?;
    Ok(app)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A presence channel's members (at most [`MAX_MEMBERS_SHOWN`]) and how many there are.
fn members(app: &App, channel: &str) -> Result<Response<Body>, ApiError> {
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

fn ok(value: serde_json::Value) -> Result<Response<Body>, ApiError> {
    Ok(whole(crate::rest::json(StatusCode::OK, value.to_string())))
}

fn whole(response: Response<Full<Bytes>>) -> Response<Body> {
    response.map(Either::Left)
}

/// Headers of every API answer: never cached, never sniffed as something else.
fn api_headers(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    response
}

/// A page file, with headers that keep it to itself: no inline script, nothing from elsewhere, no
/// form submitted by the browser (a form sent before the script is ready would put the secret in
/// the URL), not framed by another site.
fn asset(text: &'static str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from_static(text.as_bytes()))));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    headers.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer"));
    response
}
