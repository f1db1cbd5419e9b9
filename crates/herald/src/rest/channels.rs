//! The read API: `GET /apps/{id}/channels`, `…/channels/{name}` and `…/channels/{name}/users`.
//! Answers are computed from the hub at request time, never cached.

use std::fmt::Write;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use pusher_wire::ChannelName;
use pusher_wire::rest::auth::QueryParams;
use pusher_wire::rest::types::Info;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use crate::apps::App;

/// `GET /channels`: occupied channels, optionally filtered by prefix, with `user_count` on request
/// (presence prefixes only).
pub(crate) fn list(app: &App, params: &QueryParams) -> Result<Response<Full<Bytes>>, ApiError> {
    let prefix = params.get("filter_by_prefix").unwrap_or("");
    let info = info(params)?;
    if info.user_count && !prefix.starts_with("presence-") {
        return Err(ApiError::BadRequest(
            "user_count may only be requested for presence channels: give filter_by_prefix starting with presence-"
                .into(),
        ));
    }
    let channels = app.hub.occupied_channels(prefix);
    // Written straight into the answer: for many channels this is the only copy of the list.
    let mut body = String::with_capacity(16 + channels.len() * (32 + 24 * usize::from(info.user_count)));
    // Always an object, never `[]`: the PHP SDK reads it with get_object_vars.
    body.push_str(r#"{"channels":{"#);
    for (i, channel) in channels.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        pusher_wire::frame::push_json_string(&mut body, &channel.name);
        body.push_str(":{");
        // Writing into a String cannot fail.
        if info.user_count {
            let _ = write!(body, r#""user_count":{}"#, channel.user_count);
        }
        if info.subscription_count {
            let separator = if info.user_count { "," } else { "" };
            let _ = write!(body, r#"{separator}"subscription_count":{}"#, channel.subscription_count);
        }
        body.push('}');
    }
    body.push_str("}}");
    super::ok(body)
}

/// `GET /channels/{name}`: `occupied`, plus the requested counts and cache.
pub(crate) fn show(app: &App, name: &str, params: &QueryParams) -> Result<Response<Full<Bytes>>, ApiError> {
    let channel = channel_name(name)?;
    let info = info(params)?;
    if info.user_count && !channel.kind().is_presence() {
        return Err(ApiError::BadRequest("user_count is only available on presence channels".into()));
    }
    let current = app.hub.channel_info(channel.as_str(), Instant::now());
    let mut body = Map::new();
    body.insert("occupied".into(), (current.subscription_count > 0).into());
    if info.user_count {
        body.insert("user_count".into(), current.user_count.into());
    }
    if info.subscription_count {
        body.insert("subscription_count".into(), current.subscription_count.into());
    }
    if info.cache {
        let cache = current.cache.map_or(Value::Null, |(data, ttl)| json!({ "data": data, "ttl": ttl }));
        body.insert("cache".into(), cache);
    }
    super::ok(Value::Object(body).to_string())
}

/// `GET /channels/{name}/users`: the distinct user ids of a presence channel.
pub(crate) fn users(app: &App, name: &str) -> Result<Response<Full<Bytes>>, ApiError> {
    let channel = channel_name(name)?;
    if !channel.kind().is_presence() {
        return Err(ApiError::BadRequest("users are only available on presence channels".into()));
    }
    let users: Vec<Value> = app.hub.users(channel.as_str()).into_iter().map(|id| json!({ "id": id })).collect();
    super::ok(json!({ "users": users }).to_string())
}

fn channel_name(name: &str) -> Result<ChannelName, ApiError> {
    ChannelName::parse(name).map_err(|error| ApiError::BadRequest(format!("invalid channel name: {error}")))
}

fn info(params: &QueryParams) -> Result<Info, ApiError> {
    params.get("info").map_or(Ok(Info::default()), |list| Info::parse(list).map_err(ApiError::from))
}
