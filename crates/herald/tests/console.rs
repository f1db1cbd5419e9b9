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

/// The query string of a console session for `key` and `request` ("GET stream"), signed with
/// `credential`, expiring at `expires`.
fn session(key: &str, credential: &str, expires: u64, request: &str) -> String {
    let text = format!("herald-console\n{key}\n{expires}\n{request}");
    let signature = hmac_sha256_hex(credential.as_bytes(), text.as_bytes());
    format!("key={key}&expires={expires}&signature={signature}")
}

/// A valid session's query for `request`.
fn signed(request: &str) -> String {
    session(KEY, SECRET, unix_now() + 3_600, request)
}

/// Send a request and return the response with its body still to be read.
async fn request(server: &TestServer, method: &str, path: &str, body: &str) -> hyper::Response<Incoming> {
    request_with(server, method, path, body, None).await
}

/// [`request`] with an `Authorization` header.
async fn request_with(
    server: &TestServer,
    method: &str,
    path: &str,
    body: &str,
    authorization: Option<&str>,
) -> hyper::Response<Incoming> {
    let stream = TcpStream::connect(server.addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let mut request = hyper::Request::builder().method(method).uri(path).header("host", server.addr.to_string());
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    let request = request.body(Full::new(Bytes::from(body.to_owned()))).expect("request");
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
    skipped: Vec<Value>,
}

impl Stream {
    async fn open(server: &TestServer, query: &str) -> Self {
        let response = request(server, "GET", &format!("/console/api/stream?{query}"), "").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { body: response.into_body(), buffer: String::new(), skipped: Vec::new() }
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

    /// The first line of `kind` on `channel` (or any channel when `None`): one skipped by an
    /// earlier call, or the next to arrive. Lines in between are kept for later calls, since
    /// activities of separate tasks (webhooks, connections) may arrive in any order.
    async fn until(&mut self, kind: &str, channel: Option<&str>) -> Value {
        let wanted = |line: &Value| line["kind"] == kind && channel.is_none_or(|c| line["channel"] == c);
        if let Some(at) = self.skipped.iter().position(wanted) {
            return self.skipped.remove(at);
        }
        loop {
            let line = self.next().await;
            if wanted(&line) {
                return line;
            }
            self.skipped.push(line);
        }
    }
}

#[tokio::test]
async fn the_console_is_off_unless_enabled() {
    let server = TestServer::start().await;
    for path in ["/console", "/console/console.js", &format!("/console/api/session?{}", signed("GET session"))] {
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
    let path = format!("/console/api/session?{}", signed("GET session"));
    let (status, _, opened, _) = call(&server, "GET", &path, "").await;
    assert_eq!((status, opened["app_id"].as_str()), (200, Some("1")));
    let by_token = session(KEY, TOKEN, now + 60, "GET session");
    assert_eq!(call(&server, "GET", &format!("/console/api/session?{by_token}"), "").await.0, 200);
    // What the page sends: the same three in the Authorization header.
    let expires = now + 60;
    let signature =
        hmac_sha256_hex(SECRET.as_bytes(), format!("herald-console\n{KEY}\n{expires}\nGET overview").as_bytes());
    let authorization = format!("HeraldConsole {KEY}:{expires}:{signature}");
    let response = request_with(&server, "GET", "/console/api/overview", "", Some(&authorization)).await;
    assert_eq!(response.status(), 200);

    let endpoints = ["session", "overview", "stream", "members?channel=presence-x"];
    for endpoint in endpoints {
        let request = format!("GET {}", endpoint.split('?').next().unwrap_or(endpoint));
        let refused = [
            ("no session", String::new()),
            ("a wrong secret", session(KEY, "guess", now + 60, &request)),
            ("another app's secret", session(KEY, "other-secret", now + 60, &request)),
            ("an unknown key", session("nobody", SECRET, now + 60, &request)),
            ("an expired session", session(KEY, SECRET, now - 10, &request)),
            ("a session of a week", session(KEY, SECRET, now + 7 * 86_400, &request)),
            ("another request's signature", session(KEY, SECRET, now + 60, "GET elsewhere")),
        ];
        for (what, query) in refused {
            let separator = if endpoint.contains('?') { '&' } else { '?' };
            let (status, headers, body, text) =
                call(&server, "GET", &format!("/console/api/{endpoint}{separator}{query}"), "").await;
            assert_eq!(status, 401, "{what} on {endpoint}: {text}");
            assert!(body["error"].is_string(), "{what}: a JSON error, got {text}");
            assert_eq!(
                (&headers["cache-control"], &headers["x-content-type-options"]),
                (
                    &"no-store".parse::<hyper::header::HeaderValue>().unwrap(),
                    &"nosniff".parse::<hyper::header::HeaderValue>().unwrap()
                )
            );
        }
    }
    // The stream's signature (the one that travels in a URL) cannot send events.
    let path = format!("/console/api/events?{}", signed("GET stream"));
    assert_eq!(call(&server, "POST", &path, "{}").await.0, 401, "the event creator needs its own signature");
}

#[tokio::test]
async fn the_stream_tells_what_happens_in_its_app_only() {
    let server = TestServer::start_with(console_config()).await;
    let mut stream = Stream::open(&server, &signed("GET stream")).await;
    let mut other = Stream::open(&server, &session("other-key", "other-secret", unix_now() + 60, "GET stream")).await;

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
async fn the_stream_shows_client_events_sign_ins_batches_rest_refusals_and_webhooks() {
    let receiver = support::webhooks::Receiver::start(1).await;
    let mut config = console_config();
    config.apps[0].webhooks.push(herald::WebhookTarget { url: format!("{}?token=hidden", receiver.url), events: None });
    let server = TestServer::start_with(config).await;
    let mut stream = Stream::open(&server, &signed("GET stream")).await;

    let mut sender = server.connect().await;
    let mut listener = server.connect().await;
    for client in [&mut sender, &mut listener] {
        let reply = client.subscribe_signed("private-room", None).await;
        assert_eq!(reply["event"], "pusher_internal:subscription_succeeded");
    }
    sender.send(json!({"event": "client-typing", "channel": "private-room", "data": {"who": "ann"}})).await;
    let relayed = stream.until("client_event", Some("private-room")).await;
    assert_eq!(
        (&relayed["event"], &relayed["data"], &relayed["socket_id"]),
        (&json!("client-typing"), &json!(r#"{"who":"ann"}"#), &json!(sender.socket_id))
    );

    let user_data = json!({"id": "ann"}).to_string();
    let auth = pusher_wire::auth::sign_user(KEY, SECRET, &sender.socket_id, &user_data);
    sender.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    let signed_in = stream.until("signed_in", None).await;
    assert_eq!((&signed_in["user_id"], &signed_in["socket_id"]), (&json!("ann"), &json!(sender.socket_id)));

    let batch = json!({"batch": [{"channel": "news", "name": "first", "data": "1"}, {"channel": "sport", "name": "second", "data": "2"}]});
    assert_eq!(server.rest().post("/batch_events", &batch).await.status, 200);
    let first = stream.until("triggered", Some("news")).await;
    let second = stream.until("triggered", Some("sport")).await;
    assert_eq!(
        (&first["event"], &second["event"], &second["source"]),
        (&json!("first"), &json!("second"), &json!("batch"))
    );

    let forged = pusher_wire::rest::auth::signed_query(
        KEY,
        "not-the-secret",
        "POST",
        "/apps/1/events",
        &[],
        b"{}",
        support::now(),
    );
    assert_eq!(server.rest().send("POST", &format!("/apps/1/events?{forged}"), "{}".into()).await.status, 401);
    let refused = stream.until("refused", None).await;
    assert_eq!(refused["code"], 401);
    assert!(refused["message"].as_str().is_some_and(|m| m.starts_with("POST /apps/1/events: ")), "{refused}");

    // The receiver fails the first request (channel_occupied) and takes the retry.
    let failed = stream.until("webhook_failed", None).await;
    assert_eq!((&failed["retrying"], &failed["url"]), (&json!(true), &json!(receiver.url)), "never the query");
    let sent = stream.until("webhook_sent", None).await;
    assert_eq!(sent["url"], json!(receiver.url));
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

    let (status, _, overview, _) =
        call(&server, "GET", &format!("/console/api/overview?{}", signed("GET overview")), "").await;
    assert_eq!(status, 200);
    assert_eq!((overview["connections"].as_u64(), overview["channel_count"].as_u64()), (Some(2), Some(2)));
    assert_eq!(
        overview["channels"],
        json!([
            {"name": "chat", "subscription_count": 1, "user_count": null},
            {"name": "presence-room", "subscription_count": 1, "user_count": 1},
        ])
    );
    let path = format!("/console/api/overview?filter_by_prefix=pres&{}", signed("GET overview"));
    assert_eq!(call(&server, "GET", &path, "").await.2["channel_count"], 1);

    let path = format!("/console/api/members?channel=presence-room&{}", signed("GET members"));
    let (status, _, members, _) = call(&server, "GET", &path, "").await;
    assert_eq!((status, &members["members"]), (200, &json!([{"id": "ann", "info": {"name": "Ann"}}])));
    let path = format!("/console/api/members?channel=chat&{}", signed("GET members"));
    assert_eq!(call(&server, "GET", &path, "").await.0, 400, "only presence channels have members");

    let path = format!("/console/api/events?{}", signed("POST events"));
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
    let _stream = Stream::open(&server, &signed("GET stream")).await;
    // `stop` gives the server ten seconds: a stream kept open past shutdown would fail it.
    tokio::time::timeout(Duration::from_secs(20), server.stop()).await.expect("stopped with a viewer attached");
}
