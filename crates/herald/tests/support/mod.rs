//! Shared helpers for the integration tests: a [`TestServer`] running in-process on a free port, a raw
//! WebSocket client ([`WsClient`]) and a signed REST client ([`RestClient`]).
//!
//! Every wait has a timeout, and a timeout panics with what was being waited for.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

pub mod certs;
pub mod cluster;
pub mod process;
pub mod webhooks;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use herald::{AppConfig, Config};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const APP_ID: &str = "1";
pub const KEY: &str = "test-key";
pub const SECRET: &str = "test-secret";
/// How long any single expected message may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// The default test configuration: one app, on 127.0.0.1, port 0. Subscription counts are off so
/// that tests see only the frames they are about; `tests/subscription_count.rs` turns them on.
pub fn config() -> Config {
    let app = AppConfig { subscription_count: false, ..AppConfig::new(APP_ID, KEY, SECRET) };
    let mut config = Config::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, vec![app]);
    config.shutdown_spread = Duration::from_millis(50);
    config
}

/// The test configuration with the test app requiring authorized connections. The deadline is
/// 300 ms instead of Pusher's 30 s so tests do not wait; what they check is who gets closed.
pub fn authorized_connections_config() -> Config {
    let mut config = config();
    config.apps[0].authorized_connections = true;
    config.authorization_timeout = Duration::from_millis(300);
    config
}

/// A Herald server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(config()).await
    }

    pub async fn start_with(config: Config) -> Self {
        let listener = TcpListener::bind((config.host, config.port)).await.expect("bind a free port");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(herald::run(listener, config, async {
            let _ = stopped.await;
        }));
        Self { addr, stop: Some(stop), task: Some(task) }
    }

    /// Connect with the default key and read `connection_established`.
    pub async fn connect(&self) -> WsClient {
        WsClient::connect(self.addr, KEY).await
    }

    /// Open a WebSocket to `path` without reading anything.
    pub async fn raw(&self, path: &str) -> WsClient {
        WsClient::open(self.addr, path).await
    }

    pub fn rest(&self) -> RestClient {
        RestClient { addr: self.addr, key: KEY.into(), secret: SECRET.into(), app_id: APP_ID.into() }
    }

    /// Ask the server to shut down and wait until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task).await.expect("server stops").expect("server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A raw WebSocket client speaking Pusher frames.
pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub socket_id: String,
}

impl WsClient {
    pub async fn open(addr: SocketAddr, path: &str) -> Self {
        let url = format!("ws://{addr}{path}");
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url.as_str()))
            .await
            .unwrap_or_else(|_| panic!("timed out connecting to {url}"))
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        Self { stream, socket_id: String::new() }
    }

    pub async fn connect(addr: SocketAddr, key: &str) -> Self {
        let mut client = Self::open(addr, &format!("/app/{key}?protocol=7&client=js&version=8.4.0&flash=false")).await;
        let established = client.recv().await;
        assert_eq!(established["event"], "pusher:connection_established", "{established}");
        let data: Value = serde_json::from_str(established["data"].as_str().expect("data is a string")).unwrap();
        assert_eq!(data["activity_timeout"], 120);
        client.socket_id = data["socket_id"].as_str().expect("socket_id").to_owned();
        client
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.expect("send");
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// The next text frame, as JSON.
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("connection ended while waiting for a frame")
                .expect("websocket error while waiting for a frame");
            match message {
                Message::Text(text) => return serde_json::from_str(text.as_str()).expect("frame is JSON"),
                Message::Close(close) => panic!("connection closed while waiting for a frame: {close:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame, which must be `event`.
    pub async fn expect(&mut self, event: &str) -> Value {
        let frame = self.recv().await;
        assert_eq!(frame["event"], event, "expected {event}, got {frame}");
        frame
    }

    /// The `data` of the next frame, parsed when it is a JSON string.
    pub async fn expect_data(&mut self, event: &str) -> Value {
        let frame = self.expect(event).await;
        match &frame["data"] {
            Value::String(text) => serde_json::from_str(text).unwrap_or(Value::String(text.clone())),
            other => other.clone(),
        }
    }

    /// No frame arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        match tokio::time::timeout(wait, self.stream.next()).await {
            Err(_) => {}
            Ok(Some(Ok(Message::Text(text)))) => panic!("expected silence, got {text}"),
            Ok(other) => panic!("expected silence, got {other:?}"),
        }
    }

    /// Subscribe to a public channel and wait for the confirmation.
    pub async fn subscribe(&mut self, channel: &str) {
        self.send(json!({"event": "pusher:subscribe", "data": {"channel": channel}})).await;
        let frame = self.expect("pusher_internal:subscription_succeeded").await;
        assert_eq!(frame["channel"], channel);
    }

    /// Subscribe with an auth token (and channel data) computed with the test secret.
    pub async fn subscribe_signed(&mut self, channel: &str, channel_data: Option<&str>) -> Value {
        let auth = pusher_wire::auth::sign_channel(KEY, SECRET, &self.socket_id, channel, channel_data);
        let mut data = json!({"channel": channel, "auth": auth});
        if let Some(channel_data) = channel_data {
            data["channel_data"] = channel_data.into();
        }
        self.send(json!({"event": "pusher:subscribe", "data": data})).await;
        self.recv().await
    }

    /// The next text frame, or `None` if none arrives within `wait` (for waits longer than [`WAIT`],
    /// such as a throttled update).
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()?;
            match message.expect("connection ended while waiting for a frame").expect("websocket error") {
                Message::Text(text) => return Some(serde_json::from_str(text.as_str()).expect("frame is JSON")),
                Message::Close(close) => panic!("connection closed while waiting for a frame: {close:?}"),
                _ => continue,
            }
        }
    }

    /// The first `event` frame within `wait` (longer than [`WAIT`]), skipping any other.
    pub async fn expect_within(&mut self, event: &str, wait: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.recv_within(left).await.unwrap_or_else(|| panic!("no {event} within {wait:?}"));
            if frame["event"] == event {
                return frame;
            }
        }
    }

    /// Every frame up to and including the first `event` frame. With a REST-triggered `event` as a
    /// marker this reads everything queued for the connection before the trigger.
    pub async fn recv_until(&mut self, event: &str) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.recv().await;
            let done = frame["event"] == event;
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }

    /// Send `pusher:ping` and wait for the pong; returns the frames received before it. The server
    /// acts on a connection's messages in order, so everything sent earlier has been handled (frames
    /// other connections caused may still be on their way).
    pub async fn roundtrip(&mut self) -> Vec<Value> {
        self.send(json!({"event": "pusher:ping", "data": {}})).await;
        let mut frames = self.recv_until("pusher:pong").await;
        frames.pop();
        frames
    }

    /// Close from the client side and wait until the server has dropped the connection, which it
    /// does only after leaving every channel and signing the user out.
    pub async fn close(mut self) {
        let _ = self.stream.send(Message::Close(None)).await;
        loop {
            match tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("timed out waiting for the server to close")
            {
                None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    }

    /// The server closes the connection; returns the close code (after any frames before it).
    pub async fn expect_close(&mut self) -> (u16, Vec<Value>) {
        let mut frames = Vec::new();
        loop {
            let message = tokio::time::timeout(WAIT, self.stream.next()).await.expect("timed out waiting for close");
            match message {
                Some(Ok(Message::Text(text))) => frames.push(serde_json::from_str(text.as_str()).unwrap()),
                Some(Ok(Message::Close(Some(frame)))) => return (u16::from(frame.code), frames),
                Some(Ok(Message::Close(None))) => return (u16::from(CloseCode::Status), frames),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("connection failed instead of closing cleanly: {e}"),
                None => panic!("connection ended without a close frame"),
            }
        }
    }
}

/// A minimal HTTP/1.1 client signing requests like the SDKs do.
#[derive(Clone)]
pub struct RestClient {
    pub addr: SocketAddr,
    pub key: String,
    pub secret: String,
    pub app_id: String,
}

/// A response: status and parsed JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

impl RestClient {
    /// POST `body` to `/apps/{id}{path}`, signed.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        let path = format!("/apps/{}{path}", self.app_id);
        let body = body.to_string();
        let query =
            pusher_wire::rest::auth::signed_query(&self.key, &self.secret, "POST", &path, &[], body.as_bytes(), now());
        self.send("POST", &format!("{path}?{query}"), body).await
    }

    /// GET `/apps/{id}{path}` with extra query parameters, signed.
    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> Reply {
        let path = format!("/apps/{}{path}", self.app_id);
        let query = pusher_wire::rest::auth::signed_query(&self.key, &self.secret, "GET", &path, params, b"", now());
        self.send("GET", &format!("{path}?{query}"), String::new()).await
    }

    /// Trigger `event` on `channels` with `data`.
    pub async fn trigger(&self, channels: &[&str], event: &str, data: &str) -> Reply {
        self.post("/events", &json!({"name": event, "channels": channels, "data": data})).await
    }

    /// Send a request exactly as given (path with query), for malformed-request tests.
    pub async fn send(&self, method: &str, path_and_query: &str, body: String) -> Reply {
        let stream = TcpStream::connect(self.addr).await.expect("connect for REST");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("http handshake");
        tokio::spawn(connection);
        let request = hyper::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let response = tokio::time::timeout(WAIT, sender.send_request(request))
            .await
            .expect("timed out waiting for a REST response")
            .expect("REST request failed");
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.expect("read body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, body, text }
    }
}
