//! `pusher_internal:subscription_count` (app setting on): sent to every subscriber after subscribes
//! and unsubscribes (changes within 100 ms coalesced, and within 5 s above 100 subscribers), never
//! on presence channels, and the REST `info=subscription_count` attribute.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{TestServer, WsClient};

const QUIET: Duration = Duration::from_millis(200);

async fn start() -> TestServer {
    let mut config = support::config();
    config.apps[0].subscription_count = true;
    TestServer::start_with(config).await
}

/// The count a `subscription_count` frame for `channel` carries; its data must be a JSON string.
fn count_of(frame: &Value, channel: &str) -> u64 {
    assert_eq!(frame["event"], "pusher_internal:subscription_count", "{frame}");
    assert_eq!(frame["channel"], channel, "{frame}");
    let text = frame["data"].as_str().unwrap_or_else(|| panic!("data is a JSON string: {frame}"));
    let data: Value = serde_json::from_str(text).expect("data is JSON");
    assert_eq!(data.as_object().map(serde_json::Map::len), Some(1), "{frame}");
    data["subscription_count"].as_u64().unwrap_or_else(|| panic!("a count: {frame}"))
}

async fn expect_count(client: &mut WsClient, channel: &str) -> u64 {
    count_of(&client.recv().await, channel)
}

/// Subscribe to a public channel: `subscription_succeeded`, then the new count.
async fn join(client: &mut WsClient, channel: &str) -> u64 {
    client.subscribe(channel).await;
    expect_count(client, channel).await
}

#[tokio::test]
async fn every_subscriber_hears_the_count_after_each_subscribe_and_unsubscribe() {
    let server = start().await;
    let mut a = server.connect().await;
    a.send(json!({"event": "pusher:subscribe", "data": {"channel": "room"}})).await;
    a.expect("pusher_internal:subscription_succeeded").await;
    assert_eq!(
        a.recv().await,
        json!({"event": "pusher_internal:subscription_count", "channel": "room", "data": "{\"subscription_count\":1}"})
    );

    let mut b = server.connect().await;
    assert_eq!(join(&mut b, "room").await, 2);
    assert_eq!(expect_count(&mut a, "room").await, 2);

    // Private channels count too.
    let mut c = server.connect().await;
    assert_eq!(c.subscribe_signed("private-room", None).await["event"], "pusher_internal:subscription_succeeded");
    assert_eq!(expect_count(&mut c, "private-room").await, 1);
    assert_eq!(join(&mut c, "room").await, 3);
    assert_eq!(expect_count(&mut a, "room").await, 3);
    assert_eq!(expect_count(&mut b, "room").await, 3);

    // Unsubscribing: the others hear it, the leaver does not.
    b.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "room"}})).await;
    assert_eq!(expect_count(&mut a, "room").await, 2);
    assert_eq!(expect_count(&mut c, "room").await, 2);
    b.expect_silence(QUIET).await;

    // Disconnecting counts as leaving every channel.
    c.close().await;
    assert_eq!(expect_count(&mut a, "room").await, 1);
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn presence_channels_get_no_counts() {
    let server = start().await;
    for channel in ["presence-room", "presence-cache-room"] {
        let mut ann = server.connect().await;
        assert_eq!(ann.subscribe_signed(channel, Some(r#"{"user_id":"ann"}"#)).await["channel"], channel);
        let mut bob = server.connect().await;
        assert_eq!(bob.subscribe_signed(channel, Some(r#"{"user_id":"bob"}"#)).await["channel"], channel);
        if channel.contains("cache") {
            ann.expect("pusher:cache_miss").await;
            bob.expect("pusher:cache_miss").await;
        }
        ann.expect("pusher_internal:member_added").await;
        bob.close().await;
        ann.expect("pusher_internal:member_removed").await;
        ann.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn counts_on_a_channel_of_150_are_throttled_and_the_last_one_arrives() {
    const CHANNEL: &str = "crowd";
    let server = start().await;
    let mut first = server.connect().await;
    assert_eq!(join(&mut first, "marker-channel").await, 1);
    let mut counts = vec![join(&mut first, CHANNEL).await];
    assert_eq!(counts, [1]);
    let mut others = Vec::new();
    for _ in 1..150 {
        let mut client = server.connect().await;
        client.subscribe(CHANNEL).await;
        others.push(client);
    }
    let reply = server.rest().get(&format!("/channels/{CHANNEL}"), &[("info", "subscription_count")]).await;
    assert_eq!(reply.body, json!({"occupied": true, "subscription_count": 150}));

    // Everything queued for the first subscriber during the joins precedes the marker.
    server.rest().trigger(&["marker-channel"], "marker", "{}").await;
    for frame in first.recv_until("marker").await {
        if frame["event"] != "marker" {
            counts.push(count_of(&frame, CHANNEL));
        }
    }
    // Changes are coalesced: at most one update per 100 ms up to 100 subscribers, one per 5 s above.
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "counts only grow here: {counts:?}");

    // The held-back update is flushed by the ticker once the throttle allows (5 s after the last).
    while counts.last() != Some(&150) {
        let frame = first.recv_within(Duration::from_secs(15)).await.unwrap_or_else(|| {
            panic!("the final count never came; counts so far: {counts:?}");
        });
        counts.push(count_of(&frame, CHANNEL));
    }
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
    assert!(counts.len() <= 40, "{} count frames for 150 joins: not throttled: {counts:?}", counts.len());
    // The last to join got no count when it joined, and gets the flushed one.
    let last = others.last_mut().unwrap();
    assert_eq!(expect_count(last, CHANNEL).await, 150);
    // Flushed once, not again at the next tick.
    first.expect_silence(Duration::from_millis(1500)).await;
}

#[tokio::test]
async fn rest_subscription_count_is_exact() {
    let server = start().await;
    let rest = server.rest();
    let get = |channel: &'static str| {
        let rest = rest.clone();
        async move { rest.get(&format!("/channels/{channel}"), &[("info", "subscription_count")]).await.body }
    };
    assert_eq!(get("room").await, json!({"occupied": false, "subscription_count": 0}));
    let mut clients = Vec::new();
    for n in 1..=3 {
        let mut client = server.connect().await;
        assert_eq!(join(&mut client, "room").await, n);
        clients.push(client);
    }
    assert_eq!(get("room").await, json!({"occupied": true, "subscription_count": 3}));
    let mut leaver = clients.pop().unwrap();
    leaver.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "room"}})).await;
    leaver.roundtrip().await;
    assert_eq!(get("room").await, json!({"occupied": true, "subscription_count": 2}));
    for client in clients {
        client.close().await;
    }
    assert_eq!(get("room").await, json!({"occupied": false, "subscription_count": 0}));
    // Presence channels report connections, not users.
    let mut tab1 = server.connect().await;
    tab1.subscribe_signed("presence-room", Some(r#"{"user_id":"ann"}"#)).await;
    let mut tab2 = server.connect().await;
    tab2.subscribe_signed("presence-room", Some(r#"{"user_id":"ann"}"#)).await;
    let reply = rest.get("/channels/presence-room", &[("info", "subscription_count,user_count")]).await;
    assert_eq!(reply.body, json!({"occupied": true, "subscription_count": 2, "user_count": 1}));
}

#[tokio::test]
async fn off_unless_the_app_asks_for_it_as_on_pusher() {
    let app = herald::AppConfig::new(support::APP_ID, support::KEY, support::SECRET);
    assert!(!app.subscription_count, "a new app does not send counts");
    let config = herald::Config::new(std::net::Ipv4Addr::LOCALHOST.into(), 0, vec![app]);
    let server = TestServer::start_with(config).await;
    let mut first = server.connect().await;
    first.subscribe("quiet").await;
    let mut second = server.connect().await;
    second.subscribe("quiet").await;
    first.expect_silence(QUIET).await;
    second.expect_silence(QUIET).await;
    server.stop().await;
}
