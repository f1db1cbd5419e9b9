//! `GET /console/api/stream`: an app's activity as Server-Sent Events, for as long as the viewer
//! stays, its session stays valid and the server runs.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};

use super::auth::Credentials;
use super::tap::Watch;
use crate::apps::App;
use crate::http::Body;
use crate::node::Node;
use crate::rest::error::ApiError;

/// How often an idle stream gets a comment line (so that proxies and the browser keep it open), and
/// how often the session is checked again.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The request whose signature opens a stream.
const STREAM: &str = "GET stream";

/// Start streaming `app`'s activity; refused when as many viewers watch as may.
pub(super) fn open(node: &Arc<Node>, app: &App, credentials: Credentials) -> Result<Response<Body>, ApiError> {
    let watch = node.console.watch(app.id.clone())?;
    let state = Stream { watch, node: node.clone(), credentials, first: true };
    let frames = futures_util::stream::unfold(state, |mut stream| async move {
        let chunk = stream.next_chunk().await?;
        let frame: Result<Frame<Bytes>, Infallible> = Ok(Frame::data(Bytes::from(chunk)));
        Some((frame, stream))
    });
    let mut response = Response::new(Either::Right(StreamBody::new(frames).boxed_unsync()));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    // Reverse proxies that buffer responses would hold the stream back.
    response.headers_mut().insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    Ok(response)
}

struct Stream {
    watch: Watch,
    node: Arc<Node>,
    credentials: Credentials,
    first: bool,
}

impl Stream {
    /// The next bytes to send, or `None` to end the stream: the server is shutting down, or the
    /// session no longer opens the stream (expired, the secret or token changed, the app removed).
    async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        // A first comment line, so that the browser reports the stream open at once.
        let mut chunk = if std::mem::take(&mut self.first) { b": herald console\n\n".to_vec() } else { Vec::new() };
        let mut checked = tokio::time::Instant::now();
        loop {
            if checked.elapsed() >= KEEPALIVE {
                if !self.still_open() {
                    return None;
                }
                checked = tokio::time::Instant::now();
            }
            let taken = self.watch.viewer.take();
            if taken.lost > 0 {
                chunk.extend(format!("data: {{\"kind\":\"lost\",\"count\":{}}}\n\n", taken.lost).into_bytes());
            }
            for line in &taken.lines {
                chunk.extend_from_slice(b"data: ");
                chunk.extend_from_slice(line);
                chunk.extend_from_slice(b"\n\n");
            }
            if !chunk.is_empty() {
                return Some(chunk);
            }
            tokio::select! {
                () = self.node.shutdown.cancelled() => return None,
                () = self.watch.viewer.ready.notified() => {}
                () = tokio::time::sleep_until(checked + KEEPALIVE) => {
                    if !self.still_open() {
                        return None;
                    }
                    checked = tokio::time::Instant::now();
                    chunk.extend_from_slice(b": keep-alive\n\n");
                }
            }
        }
    }

    fn still_open(&self) -> bool {
        super::open(&self.node, &self.credentials, STREAM).is_ok_and(|app| app.id == self.watch.viewer.app_id)
    }
}
