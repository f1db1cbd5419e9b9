//! REST request handling: authentication exactly as Pusher checks it, limits, and the rule that every
//! failure is a 4xx with a JSON `{"error": …}` body, never a 500.

mod support;

use pusher_wire::rest::auth::signed_query;
use serde_json::{Value, json};
use support::{APP_ID, KEY, Reply, RestClient, SECRET, TestServer, now};

const EVENTS: &str = "/apps/1/events";

fn body() -> String {
    json!({"name": "e", "channels": ["c"], "data": "{}"}).to_string()
}

/// POST `body` to the events endpoint with a query signed over `signed_body` at `timestamp`.
async fn post_signed(rest: &RestClient, body: String, signed_body: &str, timestamp: u64) -> Reply {
    let query = signed_query(KEY, SECRET, "POST", EVENTS, &[], signed_body.as_bytes(), timestamp);
    rest.send("POST", &format!("{EVENTS}?{query}"), body).await
}

fn assert_error(reply: &Reply, status: u16, needle: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    let message = reply.body["error"].as_str().unwrap_or_else(|| panic!("no JSON error body: {}", reply.text));
    assert!(message.to_lowercase().contains(needle), "{message:?} does not mention {needle:?}");
}

#[tokio::test]
async fn a_correctly_signed_request_succeeds_with_an_empty_json_object() {
    let server = TestServer::start().await;
    let reply = post_signed(&server.rest(), body(), &body(), now()).await;
    assert_eq!((reply.status, reply.body), (200, json!({})));
}

#[tokio::test]
async fn authentication_failures_are_401_with_the_reason() {
    let server = TestServer::start().await;
    let rest = server.rest();
    assert_error(&post_signed(&rest, body(), &body(), now() - 601).await, 401, "timestamp expired");
    assert_error(&post_signed(&rest, body(), &body(), now() + 601).await, 401, "timestamp expired");
    // The signature covers a body_md5 that does not match what arrives.
    assert_error(&post_signed(&rest, body().replace("\"e\"", "\"x\""), &body(), now()).await, 401, "body_md5");

    let query = signed_query(KEY, SECRET, "POST", EVENTS, &[], body().as_bytes(), now());
    let tampered = query.replace("auth_signature=", "auth_signature=0");
    assert_error(&rest.send("POST", &format!("{EVENTS}?{tampered}"), body()).await, 401, "invalid signature");
    let wrong_secret = signed_query(KEY, "not-the-secret", "POST", EVENTS, &[], body().as_bytes(), now());
    assert_error(&rest.send("POST", &format!("{EVENTS}?{wrong_secret}"), body()).await, 401, "invalid signature");
    let other_key = signed_query("other-key", SECRET, "POST", EVENTS, &[], body().as_bytes(), now());
    assert_error(&rest.send("POST", &format!("{EVENTS}?{other_key}"), body()).await, 401, "auth_key");
    assert_error(&rest.send("POST", EVENTS, body()).await, 401, "auth_key");
    let no_version = query.replace("auth_version=1.0&", "");
    assert_error(&rest.send("POST", &format!("{EVENTS}?{no_version}"), body()).await, 401, "auth_version");
    // A body without body_md5 in the signed query.
    let without_md5 = signed_query(KEY, SECRET, "POST", EVENTS, &[], b"", now());
    assert_error(&rest.send("POST", &format!("{EVENTS}?{without_md5}"), body()).await, 401, "body_md5");
}

#[tokio::test]
async fn unknown_apps_and_endpoints_are_404_and_wrong_methods_405() {
    let server = TestServer::start().await;
    let rest = RestClient { app_id: "999".into(), ..server.rest() };
    assert_error(&rest.post("/events", &json!({"name": "e", "channel": "c", "data": ""})).await, 404, "unknown app");
    // Refused before the body is read: an unknown app has no body limit to apply.
    let huge = "x".repeat(3 << 20);
    assert_error(&rest.send("POST", "/apps/999/events", huge).await, 404, "unknown app");
    assert_error(&server.rest().send("GET", "/apps/1/nothing-here", String::new()).await, 404, "no such endpoint");
    assert_error(&server.rest().send("GET", "/nothing", String::new()).await, 404, "no such endpoint");
    assert_error(&server.rest().send("GET", EVENTS, String::new()).await, 405, "post");
    assert_error(&server.rest().send("DELETE", "/apps/1/channels", String::new()).await, 405, "get");
}

#[tokio::test]
async fn malformed_bodies_are_400_and_oversized_data_413() {
    let server = TestServer::start().await;
    let rest = server.rest();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!("just a string"), 400, "malformed"),
        (json!([1, 2]), 400, "malformed"),
        (json!({"channels": ["c"], "data": ""}), 400, "name"),
        (json!({"name": "e", "channels": ["c"]}), 400, "data"),
        (json!({"name": "e", "channels": ["c"], "data": {"not": "a string"}}), 400, "string"),
        (json!({"name": "e", "data": ""}), 400, "channels"),
        (json!({"name": "e", "channels": [], "data": ""}), 400, "channels"),
        (json!({"name": "e", "channels": ["bad channel"], "data": ""}), 400, "invalid channel"),
        (json!({"name": "e", "channels": ["x".repeat(201)], "data": ""}), 400, "200"),
        (json!({"name": "", "channels": ["c"], "data": ""}), 400, "event name"),
        (json!({"name": "e".repeat(201), "channels": ["c"], "data": ""}), 400, "event name"),
        (json!({"name": "e", "channels": ["c"], "data": "", "socket_id": "nope"}), 400, "socket id"),
        (json!({"name": "e", "channels": ["c"], "data": "", "info": "everything"}), 400, "info"),
        (
            json!({"name": "e", "channels": (0..101).map(|i| format!("c{i}")).collect::<Vec<_>>(), "data": ""}),
            400,
            "100",
        ),
        (json!({"name": "e", "channels": ["c"], "data": "x".repeat(10 * 1024 + 1)}), 413, "10240"),
    ];
    for (body, status, needle) in cases {
        assert_error(&rest.post("/events", &body).await, status, needle);
    }
    let not_json = "{\"name\":".to_owned();
    assert_error(&post_signed(&rest, not_json.clone(), &not_json, now()).await, 400, "malformed");
    let eleven: Vec<Value> = (0..11).map(|i| json!({"channel": format!("c{i}"), "name": "e", "data": ""})).collect();
    assert_error(&rest.post("/batch_events", &json!({"batch": eleven})).await, 400, "10");
    let big = json!({"batch": [{"channel": "c", "name": "e", "data": "x".repeat(10 * 1024 + 1)}]});
    assert_error(&rest.post("/batch_events", &big).await, 413, "10240");
    // A forged request is refused from its query alone, before its body is read.
    let forged = signed_query(KEY, "not-the-secret", "POST", EVENTS, &[], b"", now());
    assert_error(
        &rest.send("POST", &format!("{EVENTS}?{forged}"), "x".repeat(3 << 20)).await,
        401,
        "invalid signature",
    );
    // Far larger than any valid request: refused before it is parsed.
    let huge = "x".repeat(3 << 20);
    assert_error(&post_signed(&rest, huge.clone(), &huge, now()).await, 413, "larger than");
}

#[tokio::test]
async fn exactly_the_limits_are_accepted() {
    let server = TestServer::start().await;
    let rest = server.rest();
    let hundred: Vec<String> = (0..100).map(|i| format!("c{i}")).collect();
    assert_eq!(rest.post("/events", &json!({"name": "e", "channels": hundred, "data": ""})).await.status, 200);
    let max_data = "x".repeat(10 * 1024);
    assert_eq!(rest.post("/events", &json!({"name": "e", "channel": "c", "data": max_data})).await.status, 200);
    let ten: Vec<Value> = (0..10).map(|i| json!({"channel": format!("c{i}"), "name": "e", "data": ""})).collect();
    assert_eq!(rest.post("/batch_events", &json!({"batch": ten})).await.status, 200);
    let name = "c".repeat(200);
    assert_eq!(rest.post("/events", &json!({"name": "e".repeat(200), "channel": name, "data": ""})).await.status, 200);
}

#[tokio::test]
async fn queries_are_verified_whatever_their_encoding() {
    let server = TestServer::start().await;
    let rest = server.rest();
    let path = "/apps/1/channels";
    // Guzzle percent-encodes values; Node and Python send them raw. Both sign the decoded value.
    let encoded = signed_query(
        KEY,
        SECRET,
        "GET",
        path,
        &[("info", "subscription_count"), ("filter_by_prefix", "a,b")],
        b"",
        now(),
    );
    assert!(encoded.contains("a%2Cb"));
    assert_eq!(rest.send("GET", &format!("{path}?{encoded}"), String::new()).await.status, 200);
    let raw = encoded.replace("a%2Cb", "a,b");
    assert_eq!(rest.send("GET", &format!("{path}?{raw}"), String::new()).await.status, 200);
    // Python adds body_md5 of the empty body to GETs.
    let python =
        signed_query(KEY, SECRET, "GET", path, &[("body_md5", "d41d8cd98f00b204e9800998ecf8427e")], b"", now());
    assert_eq!(rest.send("GET", &format!("{path}?{python}"), String::new()).await.status, 200);
    // Upper-case parameter names are lower-cased before signing.
    let upper = encoded.replace("auth_key", "AUTH_KEY");
    assert_eq!(rest.send("GET", &format!("{path}?{upper}"), String::new()).await.status, 200);
}

#[tokio::test]
async fn channel_listing_is_an_object_even_when_empty() {
    let server = TestServer::start().await;
    let reply = server.rest().get("/channels", &[]).await;
    assert_eq!((reply.status, reply.text.as_str()), (200, r#"{"channels":{}}"#));
    let mut client = server.connect().await;
    client.subscribe("alpha").await;
    client.subscribe("beta").await;
    let reply = server.rest().get("/channels", &[("filter_by_prefix", "al"), ("info", "subscription_count")]).await;
    assert_eq!(reply.body, json!({"channels": {"alpha": {"subscription_count": 1}}}));
    let reply = server.rest().get("/channels/beta", &[("info", "subscription_count")]).await;
    assert_eq!(reply.body, json!({"occupied": true, "subscription_count": 1}));
    let reply = server.rest().get("/channels/nobody", &[]).await;
    assert_eq!(reply.body, json!({"occupied": false}));
    assert_error(&server.rest().get("/channels/bad%20name", &[]).await, 400, "invalid channel");
    assert_eq!(APP_ID, "1");
}

/// Split a raw HTTP/1.1 response into its head and the chunks of its chunked body.
fn chunks_of(response: &[u8]) -> (String, Vec<Vec<u8>>) {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("end of the response head");
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    let mut rest = &response[split + 4..];
    let mut chunks = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size = std::str::from_utf8(&rest[..line_end])
            .ok()
            .and_then(|hex| usize::from_str_radix(hex.trim(), 16).ok())
            .expect("chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return (head, chunks);
        }
        chunks.push(rest[..size].to_vec());
        rest = &rest[size + 2..];
    }
}

#[tokio::test]
async fn a_long_channel_listing_is_streamed_in_chunks_and_lists_every_channel_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start().await;
    // 2,100 channels with long names, over three connections (1,000 subscriptions each at most);
    // one channel is shared, so it must appear once with two subscribers.
    let name = |c: usize, i: usize| format!("listing-{c}-{i}-{}", "x".repeat(100));
    let mut clients = Vec::new();
    for c in 0..3 {
        let mut client = server.connect().await;
        for i in 0..700 {
            client.send(json!({"event": "pusher:subscribe", "data": {"channel": name(c, i)}})).await;
        }
        client.send(json!({"event": "pusher:subscribe", "data": {"channel": "shared"}})).await;
        let mut confirmed = 0;
        while confirmed < 701 {
            if client.recv().await["event"] == "pusher_internal:subscription_succeeded" {
                confirmed += 1;
            }
        }
        clients.push(client);
    }
    let path = "/apps/1/channels";
    let query = signed_query(KEY, SECRET, "GET", path, &[("info", "subscription_count")], b"", now());
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    let request = format!("GET {path}?{query} HTTP/1.1\r\nHost: herald\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send the request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read the response");
    let (head, chunks) = chunks_of(&response);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked") && head.contains("content-type: application/json"), "{head}");
    assert!(chunks.len() > 4, "a 250 KB answer in {} chunks: not streamed", chunks.len());
    let body: Value = serde_json::from_slice(&chunks.concat()).expect("the chunks make one JSON object");
    let listed = body["channels"].as_object().expect("channels is an object");
    assert_eq!(listed.len(), 2_101);
    assert_eq!(listed["shared"], json!({"subscription_count": 3}));
    assert_eq!(listed[&name(2, 699)], json!({"subscription_count": 1}));
    // A prefix that matches a few channels is still one well-formed object.
    let reply = server.rest().get("/channels", &[("filter_by_prefix", "listing-1-69")]).await;
    assert_eq!(reply.body["channels"].as_object().map(|c| c.len()), Some(11), "{}", reply.text);
}

/// Send `head` then, unless it waits for `100 Continue`, `body_bytes` of body on one connection,
/// and read what the server answers up to the end of the first response's JSON body.
async fn raw_exchange(stream: &mut tokio::net::TcpStream, head: &str, body_bytes: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut reader, mut writer) = stream.split();
    let send = async {
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 64 * 1024];
        let mut left = body_bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            writer.write_all(&chunk[..n]).await?;
            left -= n;
        }
        std::io::Result::Ok(())
    };
    let receive = async {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("}") {
            let n = reader.read(&mut buf).await.expect("read the answer");
            assert!(n > 0, "connection closed before a whole answer: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&answer).into_owned()
    };
    let (sent, answer) = tokio::join!(send, receive);
    sent.expect("the whole body is taken by the server, not reset under the client");
    answer
}

#[tokio::test]
async fn an_oversized_body_is_refused_so_that_the_client_reads_the_413() {
    let server = TestServer::start().await;
    let size = 3 << 20;
    let query = signed_query(KEY, SECRET, "POST", EVENTS, &[], b"", now());
    let head = |expect: &str| {
        format!(
            "POST {EVENTS}?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {size}\r\n{expect}\r\n"
        )
    };

    // Waiting for `100 Continue` (as curl, under Guzzle, does for large bodies): refused from the
    // Content-Length alone, so the body is never sent.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    let answer = raw_exchange(&mut stream, &head("Expect: 100-continue\r\n"), 0).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");

    // Sending it at once: the whole body is taken, the 413 read, and the connection still serves.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    let answer = raw_exchange(&mut stream, &head(""), size).await;
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("larger than"), "{answer}");
    let query = signed_query(KEY, SECRET, "POST", EVENTS, &[], body().as_bytes(), now());
    let next = format!(
        "POST {EVENTS}?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{}",
        body().len(),
        body()
    );
    let answer = raw_exchange(&mut stream, &next, 0).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "the connection is kept for the next request: {answer}");
    server.stop().await;
}
