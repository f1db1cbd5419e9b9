//! Webhooks from a cluster of three nodes, all posting to one receiver: each cluster-wide
//! transition is sent once, not once per node. `channel_occupied` when the first node gains the
//! channel, `channel_vacated` (after the delay) when the last loses it, nothing when a channel left
//! on one node is joined on another within the delay; `member_added`/`member_removed` on a user's
//! first/last connection anywhere; `client_event` once.

// The helpers below run outside #[test] functions; a failed unwrap there is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use herald::WebhookTarget;
use serde_json::json;
use support::TestServer;
use support::cluster::{RedisServer, barrier, member, nodes_with};
use support::webhooks::Receiver;

/// The removal delay in these tests (3 s on a real server; the e2e tests run with it).
const DELAY: Duration = Duration::from_secs(1);
/// Long enough for any webhook that should not come to have come.
const QUIET: Duration = Duration::from_millis(2_500);

async fn cluster(redis: &RedisServer, receiver: &Receiver) -> Vec<TestServer> {
    nodes_with(redis, 3, |config| {
        config.webhook_delay = DELAY;
        config.apps[0].webhooks.push(WebhookTarget { url: receiver.url.clone(), events: None });
    })
    .await
}

/// The next webhook's events as (name, channel, user_id) triples.
async fn next(receiver: &mut Receiver) -> Vec<(String, String, String)> {
    let hook = receiver.next().await;
    assert!(pusher_wire::webhook::verify(support::SECRET, hook.body.as_bytes(), &hook.signature), "signed");
    hook.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (text("name"), text("channel"), text("user_id"))
        })
        .collect()
}

fn event(name: &str, channel: &str, user: &str) -> Vec<(String, String, String)> {
    vec![(name.into(), channel.into(), user.into())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn occupancy_is_reported_once_for_the_whole_cluster() {
    let redis = RedisServer::start();
    let mut receiver = Receiver::start(0).await;
    let cluster = cluster(&redis, &receiver).await;
    let mut on_a = cluster[0].connect().await;
    on_a.subscribe("news").await;
    assert_eq!(next(&mut receiver).await, event("channel_occupied", "news", ""));
    let mut on_b = cluster[1].connect().await;
    on_b.subscribe("news").await;
    let mut on_c = cluster[2].connect().await;
    on_c.subscribe("news").await;
    on_a.close().await;
    on_b.close().await;
    receiver.expect_none(QUIET).await;
    let left = Instant::now();
    on_c.close().await;
    assert_eq!(next(&mut receiver).await, event("channel_vacated", "news", ""));
    assert!(left.elapsed() >= DELAY, "vacated only after the delay ({:?})", left.elapsed());
    receiver.expect_none(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_on_one_node_and_joining_on_another_within_the_delay_sends_nothing() {
    let redis = RedisServer::start();
    let mut receiver = Receiver::start(0).await;
    let cluster = cluster(&redis, &receiver).await;
    let mut on_a = cluster[0].connect().await;
    on_a.subscribe("news").await;
    assert_eq!(next(&mut receiver).await, event("channel_occupied", "news", ""));
    on_a.close().await;
    let mut on_b = cluster[1].connect().await;
    on_b.subscribe("news").await;
    receiver.expect_none(QUIET).await;
    // The same for a presence member reloading its page on another node.
    let mut ann = cluster[0].connect().await;
    ann.subscribe_signed("presence-room", Some(&member("ann"))).await;
    let mut hooks = vec![next(&mut receiver).await, next(&mut receiver).await];
    hooks.sort();
    assert_eq!(hooks, [event("channel_occupied", "presence-room", ""), event("member_added", "presence-room", "ann")]);
    ann.close().await;
    let mut ann_again = cluster[2].connect().await;
    ann_again.subscribe_signed("presence-room", Some(&member("ann"))).await;
    receiver.expect_none(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_and_client_events_are_reported_once() {
    let redis = RedisServer::start();
    let mut receiver = Receiver::start(0).await;
    let cluster = cluster(&redis, &receiver).await;
    let mut watcher = cluster[2].connect().await;
    watcher.subscribe_signed("presence-room", Some(&member("w"))).await;
    let mut hooks = vec![next(&mut receiver).await, next(&mut receiver).await];
    hooks.sort();
    assert_eq!(hooks, [event("channel_occupied", "presence-room", ""), event("member_added", "presence-room", "w")]);
    let mut tab_a = cluster[0].connect().await;
    tab_a.subscribe_signed("presence-room", Some(&member("u"))).await;
    let mut tab_b = cluster[1].connect().await;
    tab_b.subscribe_signed("presence-room", Some(&member("u"))).await;
    assert_eq!(next(&mut receiver).await, event("member_added", "presence-room", "u"));
    tab_a.send(json!({"event": "client-hi", "channel": "presence-room", "data": {"x": 1}})).await;
    let hook = receiver.next().await.json();
    assert_eq!(hook["events"][0]["name"], "client_event");
    assert_eq!(hook["events"][0]["event"], "client-hi");
    assert_eq!(hook["events"][0]["user_id"], "u");
    assert_eq!(hook["events"][0]["socket_id"], tab_a.socket_id.as_str());
    barrier(&cluster[0], &mut watcher, "presence-room").await;
    tab_a.close().await;
    receiver.expect_none(QUIET).await;
    let left = Instant::now();
    tab_b.close().await;
    assert_eq!(next(&mut receiver).await, event("member_removed", "presence-room", "u"));
    assert!(left.elapsed() >= DELAY);
    receiver.expect_none(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_node_to_leave_sends_the_removals_still_pending() {
    let redis = RedisServer::start();
    let mut receiver = Receiver::start(0).await;
    let mut nodes = nodes_with(&redis, 1, |config| {
        config.webhook_delay = Duration::from_secs(30);
        config.apps[0].webhooks.push(WebhookTarget { url: receiver.url.clone(), events: None });
    })
    .await;
    let mut client = nodes[0].connect().await;
    client.subscribe_signed("presence-room", Some(&member("u"))).await;
    let mut hooks = vec![next(&mut receiver).await, next(&mut receiver).await];
    hooks.sort();
    assert_eq!(hooks, [event("channel_occupied", "presence-room", ""), event("member_added", "presence-room", "u")]);
    client.close().await;
    // Well within the 30 s delay, the node stops: as a single node does, it sends what is held.
    nodes.pop().unwrap().stop().await;
    let mut hooks = vec![next(&mut receiver).await, next(&mut receiver).await];
    hooks.sort();
    assert_eq!(hooks, [event("channel_vacated", "presence-room", ""), event("member_removed", "presence-room", "u")]);
}
