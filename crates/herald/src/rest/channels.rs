//! The read API: `GET /apps/{id}/channels`, `…/channels/{name}` and `…/channels/{name}/users`.
//! Answers are computed from the hub at request time, never cached.

use std::convert::Infallible;
use std::fmt::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::Response;
use hyper::body::{Body, Frame};
use pusher_wire::ChannelName;
use pusher_wire::rest::auth::QueryParams;
use pusher_wire::rest::types::Info;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use crate::apps::App;

/// `GET /channels`: occupied channels, optionally filtered by prefix, with `user_count` on request
/// (presence prefixes only). The answer is streamed, see [`ChannelList`].
pub(crate) fn list(app: &Arc<App>, params: &QueryParams) -> Result<Response<crate::http::Body>, ApiError> {
    let prefix = params.get("filter_by_prefix").unwrap_or("");
    let info = info(params)?;
    if info.user_count && !prefix.starts_with("presence-") {
        return Err(ApiError::BadRequest(
            "user_count may only be requested for presence channels: give filter_by_prefix starting with presence-"
                .into(),
        ));
    }
    let list = ChannelList { app: app.clone(), prefix: prefix.into(), info, next_part: 0, listed: 0, done: false };
    Ok(super::with_json_type(Response::new(Either::Right(list.boxed_unsync()))))
}

/// The body of `GET /channels`, written one part of the hub at a time as the client reads it: a
/// node with 100,000 channels holds about 1/32 of the answer at once instead of all of it, and the
/// client's reading pace, not the list's size, decides how long the request lives.
pub(crate) struct ChannelList {
    app: Arc<App>,
    prefix: Box<str>,
    info: Info,
    /// The next part of the hub to list.
    next_part: usize,
    /// Channels written so far, to place the commas.
    listed: usize,
    done: bool,
}

impl ChannelList {
    /// Parts are listed into one chunk until it is about this large, so that a sparse hub (or a
    /// prefix matching little) makes few small frames.
    const CHUNK_BYTES: usize = 16 * 1024;

    fn next_chunk(&mut self) -> String {
        let mut chunk = String::new();
        if self.next_part == 0 {
            // Always an object, never `[]`: the PHP SDK reads it with get_object_vars.
            chunk.push_str(r#"{"channels":{"#);
        }
        let parts = self.app.hub.parts();
        while self.next_part < parts && chunk.len() < Self::CHUNK_BYTES {
            let (info, listed) = (self.info, &mut self.listed);
            self.app.hub.occupied_in_part(self.next_part, &self.prefix, |channel| {
                write_channel(&mut chunk, &channel, info, *listed > 0);
                *listed += 1;
            });
            self.next_part += 1;
        }
        if self.next_part >= parts {
            chunk.push_str("}}");
            self.done = true;
        }
        chunk
    }
}

fn write_channel(out: &mut String, channel: &crate::hub::Occupied<'_>, info: Info, comma: bool) {
    if comma {
        out.push(',');
    }
    pusher_wire::frame::push_json_string(out, channel.name);
    out.push_str(":{");
    // Writing into a String cannot fail.
    if info.user_count {
        let _ = write!(out, r#""user_count":{}"#, channel.user_count);
    }
    if info.subscription_count {
        let separator = if info.user_count { "," } else { "" };
        let _ = write!(out, r#"{separator}"subscription_count":{}"#, channel.subscription_count);
    }
    out.push('}');
}

impl Body for ChannelList {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(this.next_chunk())))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
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
