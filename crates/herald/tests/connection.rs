//! The connection lifecycle: handshake, refusals in-band, ping/pong, heartbeat, bad input, limits,
//! slow consumers, shutdown, and the authorized-connections timeout.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{KEY, TestServer, WsClient};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn connection_established_carries_a_socket_id_and_activity_timeout() {
    let server = TestServer::start().await;
    let mut client = server.raw(&format!("/app/{KEY}?protocol=7&client=js&version=8.4.0&flash=false")).await;
    let frame = client.expect("pusher:connection_established").await;
    // `data` is a JSON-encoded string (the double-encoding rule), not an object.
    let data: Value = serde_json::from_str(frame["data"].as_str().expect("data is a string")).unwrap();
    assert_eq!(data["activity_timeout"], 120);
    let socket_id = data["socket_id"].as_str().unwrap();
    let (a, b) = socket_id.split_once('.').expect("two numbers joined by a dot");
    assert!(a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok(), "{socket_id}");
    let other = server.connect().await;
    assert_ne!(other.socket_id, socket_id, "socket ids are unique");
}

#[tokio::test]
async fn a_ws_path_prefix_is_accepted() {
    let server = TestServer::start().await;
    let mut client = server.raw(&format!("/some/prefix/app/{KEY}?protocol=7")).await;
    client.expect("pusher:connection_established").await;
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client.send(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(client.recv().await, json!({"event": "pusher:pong", "data": {}}));
}

#[tokio::test]
async fn unknown_key_is_refused_in_band_with_4001() {
    let server = TestServer::start().await;
    let mut client = server.raw("/app/nope?protocol=7&client=js&version=8.4.0").await;
    let (code, frames) = client.expect_close().await;
    assert_eq!(code, 4001);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["event"], "pusher:error");
    assert_eq!(frames[0]["data"]["code"], 4001);
    assert!(frames[0]["data"]["message"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn unsupported_protocols_are_refused_with_4007() {
    let server = TestServer::start().await;
    for protocol in ["8", "4", "seven"] {
        let mut client = server.raw(&format!("/app/{KEY}?protocol={protocol}")).await;
        let (code, frames) = client.expect_close().await;
        assert_eq!(code, 4007, "protocol={protocol}");
        assert_eq!(frames[0]["data"]["code"], 4007);
    }
    // No protocol at all is taken as 7.
    let mut client = server.raw(&format!("/app/{KEY}")).await;
    client.expect("pusher:connection_established").await;
}

#[tokio::test]
async fn a_plain_get_on_the_websocket_path_is_an_http_error_not_a_hang() {
    let server = TestServer::start().await;
    let reply = server.rest().send("GET", &format!("/app/{KEY}"), String::new()).await;
    assert_eq!(reply.status, 426);
    assert!(reply.body["error"].is_string());
    let reply =
        server.rest().send("GET", &format!("/pusher/app/{KEY}/123/abcdefgh/xhr_streaming"), String::new()).await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn malformed_frames_get_pusher_error_and_the_connection_stays_usable() {
    let server = TestServer::start().await;
    let mut bad = server.connect().await;
    let mut good = server.connect().await;
    bad.subscribe("shared").await;
    good.subscribe("shared").await;
    let garbage = [
        "not json",
        "[1,2,3]",
        "{}",
        r#"{"event":42}"#,
        r#"{"event":"pusher:subscribe"}"#,
        r#"{"event":"pusher:subscribe","data":"not an object"}"#,
        r#"{"event":"pusher:subscribe","data":{"channel":7}}"#,
        r#"{"event":"pusher:signin","data":{}}"#,
        r#"{"event":"client-x","data":{}}"#,
        "\u{0}\u{1}\u{2}",
    ];
    for text in garbage {
        bad.send_text(text).await;
        let reply = bad.expect("pusher:error").await;
        assert!(reply["data"]["code"].is_null(), "{text}: {reply}");
        assert!(reply["data"]["message"].is_string(), "{text}: {reply}");
    }
    let huge_name = "x".repeat(60_000);
    bad.send(json!({"event": "pusher:subscribe", "data": {"channel": huge_name}})).await;
    let refused = bad.expect("pusher:subscription_error").await;
    assert_eq!(refused["data"]["status"], 400);
    // The whole name, so that pusher-js finds the channel object to report to; the message only
    // quotes the start of it.
    assert_eq!(refused["channel"], huge_name);
    assert!(refused["data"]["error"].as_str().unwrap().len() < 300);
    bad.expect("pusher:error").await;
    // An invalid name in other frames is a plain pusher:error.
    bad.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "a b"}})).await;
    bad.expect("pusher:error").await;
    bad.send(json!({"event": "pusher:subscribe", "data": {"channel": "a b"}})).await;
    assert_eq!(bad.expect("pusher:subscription_error").await["channel"], "a b");
    bad.expect("pusher:error").await;
    // Unknown events are ignored, as Pusher reserves the pusher: prefix.
    bad.send(json!({"event": "pusher:unknown", "data": {}})).await;
    bad.send(json!({"event": "pusher:ping", "data": {}})).await;
    bad.expect("pusher:pong").await;

    server.rest().trigger(&["shared"], "still-here", "1").await;
    bad.expect("still-here").await;
    good.expect("still-here").await;
}

#[tokio::test]
async fn utf8_binary_frames_are_read_as_text() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client.stream.send(Message::binary(br#"{"event":"pusher:ping","data":{}}"#.to_vec())).await.unwrap();
    client.expect("pusher:pong").await;
    client.stream.send(Message::binary(vec![0xff, 0xfe])).await.unwrap();
    client.expect("pusher:error").await;
}

#[tokio::test]
async fn an_oversized_message_closes_only_that_connection() {
    let server = TestServer::start().await;
    let mut big = server.connect().await;
    let mut other = server.connect().await;
    other.subscribe("c").await;
    big.send_text(&"x".repeat(200 * 1024)).await;
    let (code, _) = big.expect_close().await;
    assert_eq!(code, 1009);
    server.rest().trigger(&["c"], "after", "1").await;
    other.expect("after").await;
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_closes_with_1007_and_counts_as_a_protocol_error() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let server = TestServer::start().await;
    let mut bad = server.connect().await;
    let mut other = server.connect().await;
    other.subscribe("c").await;
    let frame = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    bad.stream.send(Message::Frame(frame)).await.expect("send a raw frame");
    let (code, _) = bad.expect_close().await;
    assert_eq!(code, 1007);
    server.rest().trigger(&["c"], "after", "1").await;
    other.expect("after").await;
    let metrics = server.rest().send("GET", "/metrics", String::new()).await.text;
    assert!(metrics.contains(r#"herald_connections_closed_total{reason="protocol_error"} 1"#), "{metrics}");
}

#[tokio::test]
async fn a_quiet_client_is_pinged_and_kept_while_it_answers() {
    let mut config = support::config();
    config.activity_timeout = Duration::from_secs(1);
    config.pong_timeout = Duration::from_secs(1);
    let server = TestServer::start_with(config).await;
    let mut client = server.raw(&format!("/app/{KEY}?protocol=7")).await;
    client.expect("pusher:connection_established").await;
    // Reading keeps answering the server's WebSocket pings (tungstenite replies on its own).
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(3500);
    while let Ok(message) = tokio::time::timeout_at(deadline, client.stream.next()).await {
        match message {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Close(close))) => panic!("closed although the client answers pings: {close:?}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 2, "{pings} pings in 3.5 s with a 1 s activity timeout");
}

#[tokio::test]
async fn a_dead_client_is_closed_with_4201() {
    let mut config = support::config();
    config.activity_timeout = Duration::from_secs(1);
    config.pong_timeout = Duration::from_secs(1);
    let server = TestServer::start_with(config).await;
    let mut client = server.raw(&format!("/app/{KEY}?protocol=7")).await;
    client.expect("pusher:connection_established").await;
    // Not reading means not answering the ping.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let (code, frames) = client.expect_close().await;
    assert_eq!(code, 4201);
    assert_eq!(frames.last().unwrap()["data"]["code"], 4201);
}

#[tokio::test]
async fn app_quota_refuses_with_4004_and_server_capacity_with_4100() {
    let mut config = support::config();
    config.apps[0].max_connections = Some(2);
    let server = TestServer::start_with(config).await;
    let _a = server.connect().await;
    let mut b = server.connect().await;
    let mut refused = server.raw(&format!("/app/{KEY}?protocol=7")).await;
    assert_eq!(refused.expect_close().await.0, 4004);
    b.stream.close(None).await.unwrap();
    drop(b);
    // The slot is released once the server has seen the close.
    let mut reconnected = None;
    for _ in 0..50 {
        let mut client = server.raw(&format!("/app/{KEY}?protocol=7")).await;
        if client.recv().await["event"] == "pusher:connection_established" {
            reconnected = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reconnected.is_some(), "a freed slot is reusable");

    let mut config = support::config();
    config.max_connections = 1;
    let server = TestServer::start_with(config).await;
    let _only = server.connect().await;
    let mut refused = server.raw(&format!("/app/{KEY}?protocol=7")).await;
    assert_eq!(refused.expect_close().await.0, 4100);
}

#[tokio::test]
async fn a_stalled_reader_is_cut_off_and_costs_others_nothing() {
    let mut config = support::config();
    // Room for a few batches in flight, far less than the 9 MB the stalled client would need.
    config.outbox.max_frames = 64;
    config.outbox.max_bytes = 256 * 1024;
    config.outbox.write_timeout = Duration::from_secs(1);
    let server = TestServer::start_with(config).await;
    let mut stalled = server.connect().await;
    let mut healthy = server.connect().await;
    stalled.subscribe("firehose").await;
    healthy.subscribe("firehose").await;
    let data = "x".repeat(9000);
    let rest = server.rest();
    let reader = tokio::spawn(async move {
        for i in 0..1000 {
            let frame = healthy.expect("e").await;
            assert_eq!(frame["data"].as_str().unwrap().len(), 9000, "event {i}");
        }
    });
    for _ in 0..100 {
        let batch: Vec<Value> = (0..10).map(|_| json!({"channel": "firehose", "name": "e", "data": data})).collect();
        assert_eq!(rest.post("/batch_events", &json!({"batch": batch})).await.status, 200);
    }
    reader.await.expect("the healthy client got all 1000 events");
    // The stalled connection was dropped: reading what was buffered ends the stream, with fewer
    // than all events.
    let mut received = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stalled.stream.next()).await.expect("connection ends") {
            Some(Ok(Message::Text(_))) => received += 1,
            Some(Ok(Message::Close(frame))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(4100));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert!(received < 1000, "the stalled client was not cut off ({received} frames)");
}

#[tokio::test]
async fn shutdown_closes_connections_with_4200() {
    let server = TestServer::start().await;
    let mut clients: Vec<WsClient> = Vec::new();
    for _ in 0..3 {
        clients.push(server.connect().await);
    }
    let stopping = tokio::spawn(server.stop());
    for client in &mut clients {
        let (code, frames) = client.expect_close().await;
        assert_eq!(code, 4200);
        assert_eq!(frames.last().unwrap()["data"]["code"], 4200);
    }
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_close_frame() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client.stream.send(Message::Close(None)).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), client.stream.next()).await.expect("a reply in time");
    assert!(matches!(reply, Some(Ok(Message::Close(_)))), "got {reply:?} instead of the closing handshake");
}

#[tokio::test]
async fn one_connection_holds_at_most_a_thousand_subscriptions() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    for i in 0..1000 {
        client.send(json!({"event": "pusher:subscribe", "data": {"channel": format!("c{i}")}})).await;
    }
    for _ in 0..1000 {
        client.expect("pusher_internal:subscription_succeeded").await;
    }
    client.send(json!({"event": "pusher:subscribe", "data": {"channel": "one-too-many"}})).await;
    let refused = client.expect("pusher:subscription_error").await;
    assert_eq!(
        (refused["channel"].as_str(), refused["data"]["type"].as_str()),
        (Some("one-too-many"), Some("LimitReached"))
    );
    // Leaving one makes room again.
    client.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "c0"}})).await;
    client.subscribe("one-too-many").await;
}

#[tokio::test]
async fn a_subscribe_flood_is_refused_beyond_the_burst() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    // A burst as large as the subscription limit is allowed (a reconnect resubscribes everything);
    // subscribing and unsubscribing in a loop beyond it is refused with 4301. The bucket refills
    // 50 per second, so on a busy machine a few more get through: the bound allows for the time the
    // server actually took (the limiter itself is tested on a fake clock in rate_limit.rs).
    let started = std::time::Instant::now();
    for i in 0..1100 {
        client.send(json!({"event": "pusher:subscribe", "data": {"channel": format!("churn-{}", i % 2)}})).await;
        client.send(json!({"event": "pusher:unsubscribe", "data": {"channel": format!("churn-{}", i % 2)}})).await;
    }
    let mut succeeded: u32 = 0;
    let mut refused: u32 = 0;
    while succeeded + refused < 1100 {
        let frame = client.recv().await;
        match frame["event"].as_str() {
            Some("pusher_internal:subscription_succeeded") => succeeded += 1,
            Some("pusher:subscription_error") => {
                assert_eq!(frame["data"]["status"], 4301, "{frame}");
                refused += 1;
            }
            _ => panic!("unexpected {frame}"),
        }
    }
    let refills = (started.elapsed().as_secs_f64() * f64::from(herald::COMMANDS_PER_SECOND)).ceil();
    assert!(succeeded >= 1000, "{succeeded} succeeded: the burst must allow 1,000");
    assert!(f64::from(succeeded) <= 1000.0 + refills, "{succeeded} succeeded with at most {refills} refills");
    assert_eq!(succeeded + refused, 1100);
    // The connection is still usable.
    client.send(json!({"event": "pusher:ping"})).await;
    client.expect("pusher:pong").await;
}

#[tokio::test]
async fn an_origin_outside_the_apps_list_is_refused_with_4009_before_anything_else() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut config = support::config();
    config.apps[0].allowed_origins = vec!["https://app.example.com".into(), "https://*.example.org".into()];
    let server = TestServer::start_with(config).await;
    let open = |origin: Option<&'static str>| {
        let url = format!("ws://{}/app/{KEY}?protocol=7", server.addr);
        async move {
            let mut request = url.into_client_request().unwrap();
            if let Some(origin) = origin {
                request.headers_mut().insert("origin", origin.parse().unwrap());
            }
            let (stream, _) = tokio_tungstenite::connect_async(request).await.expect("upgraded in any case");
            support::WsClient { stream, socket_id: String::new() }
        }
    };
    for allowed in [Some("https://app.example.com"), Some("https://chat.example.org"), None] {
        let mut client = open(allowed).await;
        client.expect("pusher:connection_established").await;
    }
    let mut refused = open(Some("https://evil.example.com")).await;
    let (code, frames) = refused.expect_close().await;
    assert_eq!(code, 4009);
    assert_eq!(frames.len(), 1, "only the pusher:error: {frames:?}");
    assert_eq!(frames[0]["event"], "pusher:error");
    assert_eq!(frames[0]["data"]["code"], 4009);
}

#[tokio::test]
async fn silent_connections_are_cut_off_and_capped_per_address_without_starving_anyone() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = support::config();
    config.first_byte_timeout = Duration::from_millis(300);
    config.max_pending_per_address = 3;
    let server = TestServer::start_with(config).await;
    let mut established = server.connect().await;
    established.subscribe("news").await;
    // Whether the server closes a silent connection within `wait`.
    async fn closed_within(stream: &mut tokio::net::TcpStream, wait: Duration) -> bool {
        let mut byte = [0u8; 1];
        matches!(tokio::time::timeout(wait, stream.read(&mut byte)).await, Ok(Ok(0) | Err(_)))
    }
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    }
    // The fourth from the same address is closed at once, well before the first-byte timeout.
    let mut over = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_within(&mut over, Duration::from_secs(5)).await, "over the per-address cap");
    // Another address is not held back by them, and neither is an established WebSocket.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = socket.connect(server.addr).await.unwrap();
    other.write_all(b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    other.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(established.roundtrip().await.is_empty());
    for stream in &mut silent {
        assert!(closed_within(stream, Duration::from_secs(5)).await, "a silent connection is cut off");
    }
    // The address is free again.
    server.rest().trigger(&["news"], "after", "{}").await;
    established.expect("after").await;
    let metrics = server.rest().send("GET", "/metrics", String::new()).await.text;
    assert!(metrics.contains(r#"herald_http_refused_total{reason="too_many_pending"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"herald_http_refused_total{reason="silent"} 3"#), "{metrics}");
}

#[tokio::test]
async fn an_app_with_authorized_connections_closes_those_that_never_authorize_with_4009() {
    let server = TestServer::start_with(support::authorized_connections_config()).await;
    let mut private = server.connect().await;
    let joined = private.subscribe_signed("private-room", None).await;
    assert_eq!(joined["event"], "pusher_internal:subscription_succeeded", "{joined}");
    let mut anonymous = server.connect().await;
    anonymous.subscribe("news").await;
    let (code, frames) = anonymous.expect_close().await;
    assert_eq!(code, 4009, "a public channel does not authorize a connection: {frames:?}");
    let error = frames.iter().find(|frame| frame["event"] == "pusher:error").expect("pusher:error before the close");
    assert_eq!(error["data"]["code"], 4009);
    assert_eq!(error["data"]["message"], "Connection not authorized within timeout");
    // The connection that joined a private channel outlived the same deadline and still answers.
    assert!(private.roundtrip().await.is_empty());
}

#[tokio::test]
async fn without_authorized_connections_an_anonymous_connection_stays() {
    let mut config = support::config();
    config.authorization_timeout = Duration::from_millis(100);
    let server = TestServer::start_with(config).await;
    let mut anonymous = server.connect().await;
    anonymous.subscribe("news").await;
    anonymous.expect_silence(Duration::from_millis(400)).await;
    assert!(anonymous.roundtrip().await.is_empty());
}
