//! Client events (`client-*`): relayed exactly to the channel's other subscribers on private and
//! presence channels, refused elsewhere, rate limited to 10 per second per connection, size limited,
//! and switched off per app.

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use support::{TestServer, WsClient};
use tokio_tungstenite::tungstenite::Message;

const QUIET: Duration = Duration::from_millis(200);

fn client_event(channel: &str, data: Value) -> Value {
    json!({"event": "client-typing", "channel": channel, "data": data})
}

/// The next frame is a non-fatal `pusher:error` (code null); returns its message.
async fn expect_refusal(client: &mut WsClient) -> String {
    let error = client.expect("pusher:error").await;
    assert_eq!(error["data"]["code"], Value::Null, "{error}");
    error["data"]["message"].as_str().unwrap_or_else(|| panic!("a message: {error}")).to_owned()
}

/// Two connections subscribed to a private channel.
async fn private_pair(server: &TestServer, channel: &str) -> (WsClient, WsClient) {
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    for client in [&mut a, &mut b] {
        let frame = client.subscribe_signed(channel, None).await;
        assert_eq!(frame["event"], "pusher_internal:subscription_succeeded", "{frame}");
    }
    (a, b)
}

#[tokio::test]
async fn private_channel_events_reach_every_other_subscriber_exactly_and_never_the_sender() {
    let server = TestServer::start().await;
    let (mut sender, mut receiver) = private_pair(&server, "private-chat").await;
    let mut third = server.connect().await;
    third.subscribe_signed("private-chat", None).await;
    let mut elsewhere = server.connect().await;
    elsewhere.subscribe_signed("private-other", None).await;

    sender.send(client_event("private-chat", json!({"a": 1}))).await;
    let expected = json!({"event": "client-typing", "channel": "private-chat", "data": {"a": 1}});
    assert_eq!(receiver.recv().await, expected);
    assert_eq!(third.recv().await, expected);
    sender.expect_silence(QUIET).await;
    elsewhere.expect_silence(QUIET).await;

    // Data is relayed as sent, whatever its JSON type; a string stays a string.
    sender.send(client_event("private-chat", json!("{\"b\":2}"))).await;
    assert_eq!(receiver.recv().await["data"], json!("{\"b\":2}"));
    // Either side may send.
    receiver.send(client_event("private-chat", json!([1, 2]))).await;
    assert_eq!(sender.recv().await, json!({"event": "client-typing", "channel": "private-chat", "data": [1, 2]}));
}

#[tokio::test]
async fn presence_channel_events_carry_the_senders_user_id() {
    let server = TestServer::start().await;
    let mut ann = server.connect().await;
    ann.subscribe_signed("presence-room", Some(r#"{"user_id":"ann"}"#)).await;
    let mut bob = server.connect().await;
    bob.subscribe_signed("presence-room", Some(r#"{"user_id":10,"user_info":{"name":"Bob"}}"#)).await;
    ann.expect("pusher_internal:member_added").await;

    bob.send(client_event("presence-room", json!({"t": 1}))).await;
    assert_eq!(
        ann.recv().await,
        json!({"event": "client-typing", "channel": "presence-room", "data": {"t": 1}, "user_id": "10"})
    );
    ann.send(client_event("presence-room", json!({"t": 2}))).await;
    assert_eq!(
        bob.recv().await,
        json!({"event": "client-typing", "channel": "presence-room", "data": {"t": 2}, "user_id": "ann"})
    );
    ann.expect_silence(QUIET).await;
}

#[tokio::test]
async fn public_and_encrypted_channels_refuse_client_events() {
    let server = TestServer::start().await;
    for channel in ["public-chat", "cache-chat"] {
        let mut sender = server.connect().await;
        let mut receiver = server.connect().await;
        for client in [&mut sender, &mut receiver] {
            client.send(json!({"event": "pusher:subscribe", "data": {"channel": channel}})).await;
            client.expect("pusher_internal:subscription_succeeded").await;
        }
        if channel.starts_with("cache-") {
            sender.expect("pusher:cache_miss").await;
            receiver.expect("pusher:cache_miss").await;
        }
        sender.send(client_event(channel, json!({"a": 1}))).await;
        expect_refusal(&mut sender).await;
        receiver.expect_silence(QUIET).await;
    }
    let (mut sender, mut receiver) = private_pair(&server, "private-encrypted-vault").await;
    sender.send(client_event("private-encrypted-vault", json!({"nonce": "x", "ciphertext": "y"}))).await;
    expect_refusal(&mut sender).await;
    receiver.expect_silence(QUIET).await;
    // The refusals are not fatal.
    assert_eq!(sender.roundtrip().await, Vec::<Value>::new());
}

#[tokio::test]
async fn a_sender_must_be_subscribed_to_the_channel() {
    let server = TestServer::start().await;
    let mut outsider = server.connect().await;
    let (mut a, mut b) = private_pair(&server, "private-chat").await;
    outsider.send(client_event("private-chat", json!({"a": 1}))).await;
    let message = expect_refusal(&mut outsider).await;
    assert_eq!(message, "Cannot broadcast client event (connection not subscribed to channel private-chat)");
    a.expect_silence(QUIET).await;
    b.expect_silence(QUIET).await;

    // Nor after leaving.
    a.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "private-chat"}})).await;
    a.send(client_event("private-chat", json!({"a": 1}))).await;
    expect_refusal(&mut a).await;
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn eleven_events_in_a_burst_relay_ten_and_refuse_the_eleventh_with_4301() {
    let server = TestServer::start().await;
    let (mut sender, mut receiver) = private_pair(&server, "private-chat").await;
    // All eleven in one write, so they arrive together.
    for n in 0..11 {
        let frame = client_event("private-chat", json!({"n": n}));
        sender.stream.feed(Message::text(frame.to_string())).await.unwrap();
    }
    sender.stream.flush().await.unwrap();

    for n in 0..10 {
        assert_eq!(receiver.recv().await["data"], json!({"n": n}));
    }
    receiver.expect_silence(QUIET).await;
    let error = sender.expect("pusher:error").await;
    assert_eq!(error["data"]["code"], 4301, "{error}");
    assert!(error["data"]["message"].is_string(), "{error}");

    // The connection is kept, and once the allowance has refilled (over a quiet second) events
    // flow again.
    sender.expect_silence(Duration::from_millis(1100)).await;
    sender.send(client_event("private-chat", json!({"n": "again"}))).await;
    assert_eq!(receiver.recv().await["data"], json!({"n": "again"}));
    sender.expect_silence(QUIET).await;
}

#[tokio::test]
async fn data_over_ten_kilobytes_is_refused() {
    let server = TestServer::start().await;
    let (mut sender, mut receiver) = private_pair(&server, "private-chat").await;
    // `{"x":"…"}` is 8 bytes of JSON around the string.
    let at_limit = json!({"x": "a".repeat(10 * 1024 - 8)});
    assert_eq!(at_limit.to_string().len(), 10 * 1024);
    sender.send(client_event("private-chat", at_limit.clone())).await;
    assert_eq!(receiver.recv().await["data"], at_limit);

    let over = json!({"x": "a".repeat(10 * 1024 - 7)});
    sender.send(client_event("private-chat", over)).await;
    expect_refusal(&mut sender).await;
    receiver.expect_silence(QUIET).await;
    assert_eq!(sender.roundtrip().await, Vec::<Value>::new(), "the connection is kept");
}

#[tokio::test]
async fn an_app_with_client_events_disabled_refuses_them() {
    let mut config = support::config();
    config.apps[0].client_events = false;
    let server = TestServer::start_with(config).await;
    let (mut sender, mut receiver) = private_pair(&server, "private-chat").await;
    sender.send(client_event("private-chat", json!({"a": 1}))).await;
    expect_refusal(&mut sender).await;
    receiver.expect_silence(QUIET).await;
    // REST events still work.
    server.rest().trigger(&["private-chat"], "server-event", "{}").await;
    assert_eq!(receiver.recv().await["event"], "server-event");
}
