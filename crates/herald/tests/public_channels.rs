//! Public channels end to end: subscribe, receive REST events, unsubscribe, exclusion, batches.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::TestServer;

#[tokio::test]
async fn the_demo_flow() {
    let server = TestServer::start().await;
    let mut page = server.connect().await;
    page.subscribe("test_chat_channel").await;
    let reply = server.rest().trigger(&["test_chat_channel"], "new_message", r#"{"name":"Ann","message":"hi"}"#).await;
    assert_eq!((reply.status, reply.body), (200, json!({})));
    let event = page.expect("new_message").await;
    assert_eq!(
        event,
        json!({"event":"new_message","channel":"test_chat_channel","data":"{\"name\":\"Ann\",\"message\":\"hi\"}"})
    );
    server.stop().await;
}

#[tokio::test]
async fn every_subscriber_gets_the_event_and_only_subscribers() {
    let server = TestServer::start().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    let mut other = server.connect().await;
    a.subscribe("news").await;
    b.subscribe("news").await;
    other.subscribe("sport").await;
    server.rest().trigger(&["news"], "headline", "\"extra\"").await;
    assert_eq!(a.expect("headline").await["data"], "\"extra\"");
    assert_eq!(b.expect("headline").await["data"], "\"extra\"");
    other.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn socket_id_excludes_the_sender() {
    let server = TestServer::start().await;
    let mut sender = server.connect().await;
    let mut receiver = server.connect().await;
    sender.subscribe("room").await;
    receiver.subscribe("room").await;
    let body = json!({"name": "said", "channels": ["room"], "data": "{}", "socket_id": sender.socket_id});
    assert_eq!(server.rest().post("/events", &body).await.status, 200);
    receiver.expect("said").await;
    sender.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn multi_channel_triggers_reach_each_channel_once() {
    let server = TestServer::start().await;
    let mut both = server.connect().await;
    both.subscribe("a").await;
    both.subscribe("b").await;
    server.rest().trigger(&["a", "b", "a"], "e", "1").await;
    let mut channels = vec![both.expect("e").await["channel"].clone(), both.expect("e").await["channel"].clone()];
    channels.sort_by_key(|c| c.to_string());
    assert_eq!(channels, [json!("a"), json!("b")]);
    both.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn the_single_channel_form_php_sends() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client.subscribe("orders").await;
    let reply = server
        .rest()
        .post("/events", &json!({"name": "App\\Events\\OrderShipped", "data": "{}", "channel": "orders"}))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(client.expect("App\\Events\\OrderShipped").await["channel"], "orders");
}

#[tokio::test]
async fn batches_deliver_each_event_to_its_channel() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client.subscribe("one").await;
    client.subscribe("two").await;
    let batch = json!({"batch": [
        {"channel": "one", "name": "first", "data": "1"},
        {"channel": "two", "name": "second", "data": "2"},
        {"channel": "nobody", "name": "third", "data": "3"},
    ]});
    let reply = server.rest().post("/batch_events", &batch).await;
    assert_eq!((reply.status, reply.body), (200, json!({})));
    assert_eq!(client.expect("first").await["channel"], "one");
    assert_eq!(client.expect("second").await["channel"], "two");
}

#[tokio::test]
async fn unsubscribed_clients_stop_receiving() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client.subscribe("c").await;
    client.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "c"}})).await;
    // Unsubscribing from a channel never joined is accepted silently.
    client.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "never-joined"}})).await;
    client.send(json!({"event": "pusher:ping", "data": {}})).await;
    client.expect("pusher:pong").await;
    server.rest().trigger(&["c"], "e", "x").await;
    client.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn events_keep_their_order() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client.subscribe("seq").await;
    let rest = server.rest();
    for i in 0..50 {
        rest.trigger(&["seq"], "n", &i.to_string()).await;
    }
    for i in 0..50 {
        assert_eq!(client.expect("n").await["data"], Value::String(i.to_string()));
    }
}

#[tokio::test]
async fn trigger_info_returns_counts() {
    let server = TestServer::start().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.subscribe("counted").await;
    b.subscribe("counted").await;
    let body = json!({"name": "e", "channels": ["counted", "empty"], "data": "", "info": "subscription_count"});
    let reply = server.rest().post("/events", &body).await;
    assert_eq!(
        reply.body,
        json!({"channels": {"counted": {"subscription_count": 2}, "empty": {"subscription_count": 0}}})
    );
}
