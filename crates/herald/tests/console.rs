//! The debug console: off unless enabled, every API request signed for one app, the activity stream
//! of that app only, and the event creator publishing as a REST trigger would.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use pusher_wire::sign::hmac_sha256_hex;
use serde_json::{Value, json};
use support::{KEY, SECRET, TestServer, WAIT};
use tokio::net::TcpStream;

const TOKEN: &str = "console-token-for-the-tests";

fn console_config() -> herald::Config {
    let mut config = support::config();
    config.console = true;
    config.apps[0].console_token = Some(TOKEN.into());
    config.apps.push(herald::AppConfig::new("2", "other-key", "other-secret"));
    config
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

/// The query string of a console session for `key`, signed with `credential`, expiring at `expires`.
fn session(key: &str, credential: &str, expires: u64) -> String {
    let signature = hmac_sha256_hex(credential.as_bytes(), format!("herald-console\n{key}\n{expires}").as_bytes());
    format!("key={key}&expires={expires}&signature={signature}")
}

fn signed() -> String {
    session(KEY, SECRET, unix_now() + 3_600)
}

/// Send a request and return the response with its body still to be read.
async fn request(server: &TestServer, method: &str, path: &str, body: &str) -> hyper::Response<Incoming> {
    let stream = TcpStream::connect(server.addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", server.addr.to_string())
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("request");
    tokio::time::timeout(WAIT, sender.send_request(request)).await.expect("response in time").expect("response")
}

/// Status, headers and JSON (or text) body.
async fn call(server: &TestServer, method: &str, path: &str, body: &str) -> (u16, hyper::HeaderMap, Value, String) {
    let response = request(server, method, path, body).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (parts.status.as_u16(), parts.headers, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

/// The console's activity stream, read as Server-Sent Events.
struct Stream {
    body: Incoming,
    buffer: String,
}

impl Stream {
    async fn open(server: &TestServer, query: &str) -> Self {
        let response = request(server, "GET", &format!("/console/api/stream?{query}"), "").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { body: response.into_body(), buffer: String::new() }
    }

    /// The next `data:` line, as JSON.
    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                if let Some(data) = event.strip_prefix("data: ") {
                    return serde_json::from_str(data.trim_end()).expect("a JSON line");
                }
                continue;
            }
            let frame = tokio::time::timeout(WAIT, self.body.frame())
                .await
                .expect("timed out waiting for a console line")
                .expect("the stream ended")
                .expect("stream error");
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&data).expect("UTF-8"));
            }
        }
    }

    /// Lines until one of `kind` on `channel` (or any channel when `None`).
    async fn until(&mut self, kind: &str, channel: Option<&str>) -> Value {
        loop {
            let line = self.next().await;
            if line["kind"] == kind && channel.is_none_or(|c| line["channel"] == c) {
                return line;
            }
        }
    }
}

#[tokio::test]
async fn the_console_is_off_unless_enabled() {
    let server = TestServer::start().await;
    for path in ["/console", "/console/console.js", &format!("/console/api/session?{}", signed())] {
        let (status, _, body, _) = call(&server, "GET", path, "").await;
        assert_eq!(status, 404, "{path}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("--console")), "{body}");
    }
}

#[tokio::test]
async fn every_console_request_needs_a_session_signed_with_the_secret_or_console_token() {
    let server = TestServer::start_with(console_config()).await;
    let (status, headers, _, page) = call(&server, "GET", "/console", "").await;
    assert_eq!(status, 200);
    assert!(headers["content-security-policy"].to_str().is_ok_and(|csp| csp.contains("default-src 'self'")));
    assert!(page.contains("/console/console.js") && !page.contains(SECRET));
    let (status, headers, _, _) = call(&server, "GET", "/console/console.js", "").await;
    assert_eq!((status, headers["content-type"].to_str().ok()), (200, Some("text/javascript; charset=utf-8")));

    let now = unix_now();
    let (status, _, opened, _) = call(&server, "GET", &format!("/console/api/session?{}", signed()), "").await;
    assert_eq!((status, opened["app_id"].as_str()), (200, Some("1")));
    let by_token = session(KEY, TOKEN, now + 60);
    assert_eq!(call(&server, "GET", &format!("/console/api/session?{by_token}"), "").await.0, 200);

    let refused = [
        ("no session", String::new()),
        ("a wrong secret", session(KEY, "guess", now + 60)),
        ("another app's secret", session(KEY, "other-secret", now + 60)),
        ("an unknown key", session("nobody", SECRET, now + 60)),
        ("an expired session", session(KEY, SECRET, now - 10)),
        ("a session of a week", session(KEY, SECRET, now + 7 * 86_400)),
    ];
    for (what, query) in refused {
        for endpoint in ["session", "overview", "stream", "members?channel=presence-x"] {
            let separator = if endpoint.contains('?') { '&' } else { '?' };
            let (status, headers, body, text) =
                call(&server, "GET", &format!("/console/api/{endpoint}{separator}{query}"), "").await;
            assert_eq!(status, 401, "{what} on {endpoint}: {text}");
            assert!(body["error"].is_string(), "{what}: a JSON error, got {text}");
            assert_eq!(headers["cache-control"], "no-store");
        }
    }
    let (status, _, _, _) =
        call(&server, "POST", &format!("/console/api/events?{}", session(KEY, "x", now + 60)), "{}").await;
    assert_eq!(status, 401, "the event creator needs a session too");
}

#[tokio::test]
async fn the_stream_tells_what_happens_in_its_app_only() {
    let server = TestServer::start_with(console_config()).await;
    let mut stream = Stream::open(&server, &signed()).await;
    let mut other = Stream::open(&server, &session("other-key", "other-secret", unix_now() + 60)).await;

    let mut client = server.connect().await;
    let connected = stream.until("connected", None).await;
    let socket_id = client.socket_id.clone();
    assert_eq!(connected["socket_id"], socket_id);
    client.subscribe("news").await;
    let subscribed = stream.until("subscribed", Some("news")).await;
    assert_eq!(subscribed["socket_id"], socket_id);

    assert_eq!(server.rest().trigger(&["news"], "headline", r#"{"title":"hi"}"#).await.status, 200);
    let triggered = stream.until("triggered", Some("news")).await;
    assert_eq!(
        (&triggered["source"], &triggered["event"], &triggered["data"], &triggered["delivered"]),
        (&json!("rest"), &json!("headline"), &json!(r#"{"title":"hi"}"#), &json!(1))
    );

    client.send(json!({"event": "pusher:subscribe", "data": {"channel": "private-secret"}})).await;
    let refused = stream.until("refused", Some("private-secret")).await;
    assert_eq!((refused["code"].as_u64(), refused["socket_id"].as_str()), (Some(401), Some(socket_id.as_str())));
    client.send_text("this is not JSON").await;
    let malformed = stream.until("refused", None).await;
    assert!(malformed["message"].as_str().is_some_and(|m| m.to_lowercase().contains("json")), "{malformed}");

    client.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}})).await;
    stream.until("unsubscribed", Some("news")).await;
    client.close().await;
    let gone = stream.until("disconnected", None).await;
    assert_eq!((gone["socket_id"].as_str(), gone["reason"].as_str()), (Some(socket_id.as_str()), Some("client")));

    // The other app's viewer saw none of it: its first line is its own app's.
    let mut theirs = support::WsClient::connect(server.addr, "other-key").await;
    let first = other.next().await;
    assert_eq!(
        (first["kind"].as_str(), first["socket_id"].as_str()),
        (Some("connected"), Some(theirs.socket_id.as_str()))
    );
    theirs.subscribe("elsewhere").await;
    assert_eq!(other.next().await["channel"], "elsewhere");
    server.stop().await;
}

#[tokio::test]
async fn the_overview_members_and_event_creator_work_on_the_live_app() {
    let server = TestServer::start_with(console_config()).await;
    let mut listener = server.connect().await;
    listener.subscribe("chat").await;
    let mut member = server.connect().await;
    let data = r#"{"user_id":"ann","user_info":{"name":"Ann"}}"#;
    member.subscribe_signed("presence-room", Some(data)).await;

    let (status, _, overview, _) = call(&server, "GET", &format!("/console/api/overview?{}", signed()), "").await;
    assert_eq!(status, 200);
    assert_eq!((overview["connections"].as_u64(), overview["channel_count"].as_u64()), (Some(2), Some(2)));
    assert_eq!(
        overview["channels"],
        json!([
            {"name": "chat", "subscription_count": 1, "user_count": null},
            {"name": "presence-room", "subscription_count": 1, "user_count": 1},
        ])
    );
    let path = format!("/console/api/overview?filter_by_prefix=pres&{}", signed());
    assert_eq!(call(&server, "GET", &path, "").await.2["channel_count"], 1);

    let path = format!("/console/api/members?channel=presence-room&{}", signed());
    let (status, _, members, _) = call(&server, "GET", &path, "").await;
    assert_eq!((status, &members["members"]), (200, &json!([{"id": "ann", "info": {"name": "Ann"}}])));
    let path = format!("/console/api/members?channel=chat&{}", signed());
    assert_eq!(call(&server, "GET", &path, "").await.0, 400, "only presence channels have members");

    let path = format!("/console/api/events?{}", signed());
    let event = json!({"name": "from-console", "channel": "chat", "data": r#"{"n":1}"#}).to_string();
    let (status, _, answer, _) = call(&server, "POST", &path, &event).await;
    assert_eq!((status, answer), (200, json!({})));
    let received = listener.expect("from-console").await;
    assert_eq!((&received["channel"], &received["data"]), (&json!("chat"), &json!(r#"{"n":1}"#)));
    let (status, _, error, _) = call(&server, "POST", &path, r#"{"name":"x"}"#).await;
    assert_eq!(status, 400, "checked as a REST trigger is: {error}");
    assert!(error["error"].is_string());
    assert_eq!(call(&server, "GET", &path, "").await.0, 405);
}

#[tokio::test]
async fn an_open_stream_does_not_hold_up_shutdown() {
    let server = TestServer::start_with(console_config()).await;
    let _stream = Stream::open(&server, &signed()).await;
    // `stop` gives the server ten seconds: a stream kept open past shutdown would fail it.
    tokio::time::timeout(Duration::from_secs(20), server.stop()).await.expect("stopped with a viewer attached");
}
