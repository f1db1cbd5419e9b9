//! Per-app limits an operator sets in the configuration: presence members per channel, client
//! events per second per connection, REST events and reads per second. Each is refused the way
//! Pusher refuses it and counted in `/metrics`. The buckets refill with real time, so every bound
//! allows for the refills the measured time permits (the buckets themselves are tested on a fake
//! clock in `rate_limit.rs`).

mod support;

use std::time::Instant;

use serde_json::json;
use support::TestServer;

fn config() -> herald::Config {
    let mut config = support::config();
    let app = &mut config.apps[0];
    app.max_presence_members = 2;
    app.max_client_events_per_second = 3;
    app.max_rest_events_per_second = Some(5);
    app.max_rest_reads_per_second = Some(2);
    config
}

/// The most a bucket of `per_second` may have let through in `elapsed`, burst included.
fn bound(per_second: u32, started: Instant) -> u32 {
    per_second + (started.elapsed().as_secs_f64() * f64::from(per_second)).ceil() as u32
}

#[tokio::test]
async fn presence_channels_hold_the_apps_number_of_members() {
    let server = TestServer::start_with(config()).await;
    let mut members = Vec::new();
    for user in ["1", "2"] {
        let mut client = server.connect().await;
        let frame = client.subscribe_signed("presence-room", Some(&json!({"user_id": user}).to_string())).await;
        assert_eq!(frame["event"], "pusher_internal:subscription_succeeded");
        members.push(client);
    }
    let mut third = server.connect().await;
    let refused = third.subscribe_signed("presence-room", Some(r#"{"user_id":"3"}"#)).await;
    assert_eq!(refused["event"], "pusher:subscription_error", "{refused}");
    assert_eq!(refused["data"]["status"], 4100);
    let metrics = server.rest().send("GET", "/metrics", String::new()).await.text;
    assert!(metrics.contains(r#"herald_limited_total{limit="presence_members"} 1"#), "{metrics}");
}

#[tokio::test]
async fn client_events_follow_the_apps_rate() {
    let server = TestServer::start_with(config()).await;
    let mut sender = server.connect().await;
    sender.subscribe_signed("private-room", None).await;
    let started = Instant::now();
    for n in 0..10 {
        sender.send(json!({"event": "client-x", "channel": "private-room", "data": {"n": n}})).await;
    }
    let frames = sender.roundtrip().await;
    let limited = frames.iter().filter(|f| f["event"] == "pusher:error" && f["data"]["code"] == 4301).count() as u32;
    let relayed = 10 - limited;
    assert!(relayed >= 3, "the burst allows 3: {frames:?}");
    assert!(relayed <= bound(3, started), "{relayed} relayed");
    let metrics = server.rest().send("GET", "/metrics", String::new()).await.text;
    assert!(metrics.contains(&format!(r#"herald_limited_total{{limit="client_events"}} {limited}"#)), "{metrics}");
}

#[tokio::test]
async fn rest_events_and_reads_beyond_the_apps_rate_get_429() {
    let server = TestServer::start_with(config()).await;
    let rest = server.rest();
    let started = Instant::now();
    let mut accepted = 0;
    let mut refused = None;
    for _ in 0..20 {
        let reply = rest.trigger(&["news"], "e", "{}").await;
        match reply.status {
            200 => accepted += 1,
            429 => refused = Some(reply),
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert!(accepted >= 5 && accepted <= bound(5, started), "{accepted} accepted");
    let refused = refused.expect("some triggers were refused");
    assert!(refused.body["error"].as_str().unwrap_or_default().contains("rate limit"), "{}", refused.text);
    // A trigger to more channels than a second's budget is refused whole.
    let wide = rest.trigger(&["a", "b", "c", "d", "e", "f"], "e", "{}").await;
    assert_eq!(wide.status, 429);

    let started = Instant::now();
    let mut reads = 0;
    for _ in 0..10 {
        if rest.get("/channels", &[]).await.status == 200 {
            reads += 1;
        }
    }
    assert!(reads >= 2 && reads <= bound(2, started), "{reads} reads answered");
    let metrics = rest.send("GET", "/metrics", String::new()).await.text;
    assert!(metrics.contains(r#"herald_limited_total{limit="rest_events"}"#), "{metrics}");
    assert!(metrics.contains(r#"herald_limited_total{limit="rest_reads"}"#), "{metrics}");
    assert!(metrics.contains(r#"herald_rest_requests_total{status="429"}"#), "{metrics}");
}

#[test]
fn limits_come_from_toml_with_pushers_defaults() {
    let config = herald::Config::from_toml("[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\n").unwrap();
    let app = &config.apps[0];
    assert_eq!((app.max_presence_members, app.max_client_events_per_second), (100, 10));
    assert_eq!((app.max_rest_events_per_second, app.max_rest_reads_per_second), (None, None));
    let toml = "[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\nmax_presence_members = 0\n";
    let error = herald::Config::from_toml(toml).unwrap().validate().unwrap_err().to_string();
    assert!(error.contains("max_presence_members"), "{error}");
}

#[tokio::test]
async fn subscriptions_stop_at_the_node_and_app_budgets_and_come_back_when_released() {
    let mut config = config();
    config.max_subscriptions = 5;
    config.apps[0].max_subscriptions = Some(3);
    config
        .apps
        .push(herald::AppConfig { subscription_count: false, ..herald::AppConfig::new("2", "key-2", "secret-2") });
    let server = TestServer::start_with(config).await;
    let mut a = server.connect().await;
    for i in 0..3 {
        a.subscribe(&format!("a{i}")).await;
    }
    a.send(json!({"event": "pusher:subscribe", "data": {"channel": "a3"}})).await;
    let refused = a.roundtrip().await;
    assert_eq!(refused[0]["event"], "pusher:subscription_error", "the app's budget: {refused:?}");
    assert_eq!(refused[0]["data"]["status"], 4100);
    assert_eq!(refused[1]["event"], "pusher:error");
    assert_eq!(refused[1]["data"]["code"], 4100);
    let mut b = support::WsClient::connect(server.addr, "key-2").await;
    b.subscribe("b0").await;
    b.subscribe("b1").await;
    b.send(json!({"event": "pusher:subscribe", "data": {"channel": "b2"}})).await;
    assert_eq!(b.roundtrip().await[0]["event"], "pusher:subscription_error", "the node's budget");
    a.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "a0"}})).await;
    a.roundtrip().await;
    b.subscribe("b2").await;
    a.close().await;
    for i in 3..5 {
        b.subscribe(&format!("b{i}")).await;
    }
    let metrics = server.rest().send("GET", "/metrics", String::new()).await.text;
    assert!(metrics.contains(r#"herald_limited_total{limit="subscriptions"} 2"#), "{metrics}");
    assert!(metrics.contains("herald_subscriptions 5\n"), "{metrics}");
}
