//! Cache channels: a new subscriber gets the last REST event (or `pusher:cache_miss`) right after
//! `subscription_succeeded`, on the public, private, encrypted and presence variants, and the REST
//! `info=cache` attribute reports it.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{TestServer, WsClient};

const QUIET: Duration = Duration::from_millis(200);

fn succeeded(channel: &str) -> Value {
    json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"})
}

fn assert_cache_miss(frame: &Value, channel: &str) {
    assert_eq!(frame["event"], "pusher:cache_miss", "{frame}");
    assert_eq!(frame["channel"], channel, "{frame}");
}

/// Subscribe to a public cache channel; returns the frame after `subscription_succeeded`.
async fn subscribe_public(client: &mut WsClient, channel: &str) -> Value {
    client.send(json!({"event": "pusher:subscribe", "data": {"channel": channel}})).await;
    assert_eq!(client.recv().await, succeeded(channel));
    client.recv().await
}

#[tokio::test]
async fn a_cache_miss_follows_subscription_succeeded_when_nothing_is_cached() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    let next = subscribe_public(&mut client, "cache-x").await;
    assert_cache_miss(&next, "cache-x");
    client.expect_silence(QUIET).await;
    // Ordinary channels get no cache frames at all.
    client.subscribe("plain").await;
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn new_subscribers_get_the_last_event_and_a_new_trigger_replaces_it() {
    let server = TestServer::start().await;
    let rest = server.rest();
    // Published while nobody is subscribed: still cached.
    let reply = rest.trigger(&["cache-x"], "price", r#"{"eur": 1.5}"#).await;
    assert_eq!((reply.status, reply.body), (200, json!({})));
    let mut first = server.connect().await;
    let replay = subscribe_public(&mut first, "cache-x").await;
    assert_eq!(replay, json!({"event": "price", "channel": "cache-x", "data": "{\"eur\": 1.5}"}));
    first.expect_silence(QUIET).await;

    rest.trigger(&["cache-x"], "price-update", "not even JSON").await;
    assert_eq!(first.recv().await, json!({"event": "price-update", "channel": "cache-x", "data": "not even JSON"}));
    let mut second = server.connect().await;
    let replay = subscribe_public(&mut second, "cache-x").await;
    assert_eq!(replay, json!({"event": "price-update", "channel": "cache-x", "data": "not even JSON"}));
    second.expect_silence(QUIET).await;

    // The cache outlives its subscribers.
    second.close().await;
    first.close().await;
    let mut third = server.connect().await;
    assert_eq!(subscribe_public(&mut third, "cache-x").await["event"], "price-update");
}

#[tokio::test]
async fn private_and_encrypted_cache_channels_replay_only_after_authorization() {
    let server = TestServer::start().await;
    for channel in ["private-cache-x", "private-encrypted-cache-x"] {
        let mut client = server.connect().await;
        assert_eq!(client.subscribe_signed(channel, None).await, succeeded(channel));
        assert_cache_miss(&client.recv().await, channel);

        let data = r#"{"nonce":"bm9uY2U=","ciphertext":"Y2lwaGVy"}"#;
        server.rest().trigger(&[channel], "sealed", data).await;
        assert_eq!(client.recv().await, json!({"event": "sealed", "channel": channel, "data": data}));

        let mut late = server.connect().await;
        assert_eq!(late.subscribe_signed(channel, None).await, succeeded(channel));
        assert_eq!(late.recv().await, json!({"event": "sealed", "channel": channel, "data": data}));

        // Without a valid token: refused, and nothing cached leaks.
        let mut intruder = server.connect().await;
        intruder.send(json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": "test-key:00"}})).await;
        intruder.expect("pusher:subscription_error").await;
        intruder.expect("pusher:error").await;
        intruder.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn presence_cache_channels_replay_after_the_roster() {
    let server = TestServer::start().await;
    let channel = "presence-cache-room";
    let mut ann = server.connect().await;
    let frame = ann.subscribe_signed(channel, Some(r#"{"user_id":"ann"}"#)).await;
    assert_eq!(frame["event"], "pusher_internal:subscription_succeeded", "{frame}");
    assert_cache_miss(&ann.recv().await, channel);

    server.rest().trigger(&[channel], "topic", "\"weather\"").await;
    assert_eq!(ann.recv().await["event"], "topic");

    let mut bob = server.connect().await;
    let frame = bob.subscribe_signed(channel, Some(r#"{"user_id":"bob"}"#)).await;
    assert_eq!(frame["event"], "pusher_internal:subscription_succeeded", "{frame}");
    let roster: Value = serde_json::from_str(frame["data"].as_str().unwrap()).unwrap();
    assert_eq!(roster["presence"]["count"], 2);
    assert_eq!(bob.recv().await, json!({"event": "topic", "channel": channel, "data": "\"weather\""}));
}

#[tokio::test]
async fn client_events_are_not_cached() {
    let server = TestServer::start().await;
    let channel = "private-cache-chat";
    let mut sender = server.connect().await;
    sender.subscribe_signed(channel, None).await;
    sender.expect("pusher:cache_miss").await;
    sender.send(json!({"event": "client-typing", "channel": channel, "data": {"a": 1}})).await;
    assert_eq!(sender.roundtrip().await, Vec::<Value>::new(), "the client event was accepted");
    let mut late = server.connect().await;
    late.subscribe_signed(channel, None).await;
    assert_cache_miss(&late.recv().await, channel);
}

#[tokio::test]
async fn rest_info_cache_reports_the_cached_event_and_its_ttl() {
    let server = TestServer::start().await;
    let rest = server.rest();
    let empty = rest.get("/channels/cache-x", &[("info", "cache")]).await;
    assert_eq!((empty.status, empty.body), (200, json!({"occupied": false, "cache": null})));

    rest.trigger(&["cache-x"], "price", r#"{"eur":1.5}"#).await;
    let cached = rest.get("/channels/cache-x", &[("info", "cache")]).await;
    assert_eq!(cached.status, 200, "{}", cached.text);
    assert_eq!(cached.body["occupied"], false);
    assert_eq!(cached.body["cache"]["data"], r#"{"eur":1.5}"#);
    let ttl = cached.body["cache"]["ttl"].as_u64().unwrap_or_else(|| panic!("ttl in seconds: {}", cached.text));
    assert!(ttl > 0 && ttl <= 1800, "ttl {ttl}");
    assert_eq!(cached.body["cache"].as_object().unwrap().len(), 2, "{}", cached.text);

    let mut client = server.connect().await;
    subscribe_public(&mut client, "cache-x").await;
    let occupied = rest.get("/channels/cache-x", &[("info", "cache,subscription_count")]).await;
    assert_eq!(occupied.body["occupied"], true);
    assert_eq!(occupied.body["subscription_count"], 1);
    assert_eq!(occupied.body["cache"]["data"], r#"{"eur":1.5}"#);

    // A cache channel someone is subscribed to but nothing was published on.
    let mut other = server.connect().await;
    subscribe_public(&mut other, "cache-y").await;
    let nothing = rest.get("/channels/cache-y", &[("info", "cache")]).await;
    assert_eq!(nothing.body, json!({"occupied": true, "cache": null}));
}
