//! Events across a cluster of three nodes sharing one real `redis-server`: a REST trigger or batch
//! on any node reaches every subscriber on every node exactly once, in order; `socket_id` exclusion
//! works for a socket on another node; client events reach the other nodes, never the sender.
//! Nodes reach a Redis that speaks TLS only (`rediss://`) and check its certificate.

// The helpers below run outside #[test] functions; a failed unwrap there is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::TestServer;
use support::certs::TestCerts;
use support::cluster::{RedisServer, eventually, member, metrics, node_config, nodes, nodes_with, wait_for_peers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_on_one_node_reaches_every_subscriber_once_in_order() {
    let redis = RedisServer::start();
    let cluster = nodes(&redis, 3).await;
    let mut clients = Vec::new();
    for node in &cluster {
        for _ in 0..2 {
            let mut client = node.connect().await;
            client.subscribe("news").await;
            clients.push(client);
        }
    }
    let rest = cluster[1].rest();
    for i in 0..50 {
        let reply = rest.trigger(&["news"], "headline", &format!("{{\"n\":{i}}}")).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let reply = rest
        .post(
            "/batch_events",
            &json!({"batch": [{"channel": "news", "name": "headline", "data": "{\"n\":50}"},
                              {"channel": "news", "name": "headline", "data": "{\"n\":51}"}]}),
        )
        .await;
    assert_eq!(reply.status, 200);
    let mut texts = Vec::new();
    for client in &mut clients {
        let mut seen = Vec::new();
        for _ in 0..52 {
            let frame = client.expect("headline").await;
            let data: serde_json::Value = serde_json::from_str(frame["data"].as_str().unwrap()).unwrap();
            seen.push(data["n"].as_u64().unwrap());
            texts.push(frame.to_string());
        }
        assert_eq!(seen, (0..52).collect::<Vec<_>>(), "every event once, in the order sent");
        assert!(client.roundtrip().await.is_empty(), "nothing more");
    }
    let published = metrics(cluster[1].addr).await;
    assert!(published.contains("herald_cluster_events_forwarded_total 52\n"), "one message per event:\n{published}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_id_exclusion_works_for_a_socket_on_another_node() {
    let redis = RedisServer::start();
    let cluster = nodes(&redis, 3).await;
    let mut excluded = cluster[0].connect().await;
    let mut other = cluster[2].connect().await;
    excluded.subscribe("news").await;
    other.subscribe("news").await;
    let rest = cluster[1].rest();
    let body = json!({"name": "e", "channels": ["news"], "data": "1", "socket_id": excluded.socket_id});
    assert_eq!(rest.post("/events", &body).await.status, 200);
    rest.trigger(&["news"], "marker", "2").await;
    other.expect("e").await;
    other.expect("marker").await;
    let frames = excluded.recv_until("marker").await;
    assert_eq!(frames.len(), 1, "the excluded socket got only the marker: {frames:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_events_reach_the_other_nodes_never_the_sender() {
    let redis = RedisServer::start();
    let cluster = nodes(&redis, 3).await;
    let mut members = Vec::new();
    for (i, node) in cluster.iter().enumerate() {
        let mut client = node.connect().await;
        let reply = client.subscribe_signed("presence-room", Some(&member(&i.to_string()))).await;
        assert_eq!(reply["event"], "pusher_internal:subscription_succeeded", "{reply}");
        members.push(client);
    }
    let mut private = Vec::new();
    for node in &cluster {
        let mut client = node.connect().await;
        client.subscribe_signed("private-room", None).await;
        private.push(client);
    }
    members[0].send(json!({"event": "client-typing", "channel": "presence-room", "data": {"who": "0"}})).await;
    private[0].send(json!({"event": "client-typing", "channel": "private-room", "data": {"who": "p0"}})).await;
    for client in &mut members[1..] {
        let frame = client.recv_until("client-typing").await.pop().unwrap();
        assert_eq!(frame["user_id"], "0", "user_id on presence channels: {frame}");
        assert_eq!(frame["data"], json!({"who": "0"}));
    }
    for client in &mut private[1..] {
        let frame = client.expect("client-typing").await;
        assert!(frame.get("user_id").is_none(), "{frame}");
    }
    let rest = cluster[2].rest();
    rest.trigger(&["presence-room", "private-room"], "marker", "{}").await;
    let sender = members[0].recv_until("marker").await;
    assert!(sender.iter().all(|f| f["event"] != "client-typing"), "never back to the sender: {sender:?}");
    let sender = private[0].recv_until("marker").await;
    assert_eq!(sender.len(), 1, "{sender:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_channels_replay_the_last_event_on_every_node_and_on_a_later_one() {
    let redis = RedisServer::start();
    let mut cluster = nodes(&redis, 2).await;
    let rest = cluster[0].rest();
    rest.trigger(&["cache-news"], "headline", "\"one\"").await;
    rest.trigger(&["cache-news"], "headline", "\"two\"").await;
    // Node B may still be on the first event: wait for the last one.
    let replay = eventually("node B has the last cached event", || {
        let addr = cluster[1].addr;
        async move {
            let mut client = support::WsClient::connect(addr, support::KEY).await;
            client.send(json!({"event": "pusher:subscribe", "data": {"channel": "cache-news"}})).await;
            client.expect("pusher_internal:subscription_succeeded").await;
            let frame = client.recv().await;
            (frame["event"] == "headline" && frame["data"] == "\"two\"").then_some(frame)
        }
    })
    .await;
    assert_eq!(replay["data"], "\"two\"");
    let info = cluster[1].rest().get("/channels/cache-news", &[("info", "cache")]).await;
    assert_eq!(info.body["cache"]["data"], "\"two\"", "{}", info.text);
    // A node that starts after the event reads it from Redis.
    let mut config = support::cluster::node_config(&redis);
    config.shutdown_spread = std::time::Duration::from_millis(10);
    cluster.push(support::TestServer::start_with(config).await);
    support::cluster::wait_for_peers(cluster[2].addr, 2).await;
    let mut third = cluster[2].connect().await;
    third.send(json!({"event": "pusher:subscribe", "data": {"channel": "cache-news"}})).await;
    third.expect("pusher_internal:subscription_succeeded").await;
    assert_eq!(third.expect("headline").await["data"], "\"two\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_ids_are_unique_across_the_cluster() {
    let redis = RedisServer::start();
    let cluster = nodes(&redis, 3).await;
    let mut ids = std::collections::HashSet::new();
    let mut prefixes = std::collections::HashSet::new();
    for node in &cluster {
        for _ in 0..20 {
            let client = node.connect().await;
            prefixes.insert(client.socket_id.split('.').next().unwrap().to_owned());
            assert!(ids.insert(client.socket_id.clone()), "duplicate socket id {}", client.socket_id);
        }
    }
    assert_eq!(prefixes.len(), 3, "each node its own reserved id: {prefixes:?}");
    let claims = redis.cli(&["--raw", "KEYS", "herald:node-id:*"]);
    assert_eq!(claims.lines().count(), 3, "{claims}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_a_redis_over_tls_and_a_node_that_cannot_verify_it_stays_out() {
    let certs = TestCerts::new("redis");
    let redis = RedisServer::start_tls(&certs);
    assert!(redis.url().starts_with("rediss://"));
    let trusting = |config: &mut herald::Config| config.redis_ca_file = Some(certs.ca.clone());
    let cluster = nodes_with(&redis, 2, trusting).await;
    let mut listener = cluster[1].connect().await;
    listener.subscribe("news").await;
    let reply = cluster[0].rest().trigger(&["news"], "headline", "{\"n\":1}").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(listener.expect("headline").await["data"], "{\"n\":1}");

    // Without the private CA the server's certificate does not verify: that node serves its own
    // clients and never joins, while a trusting node started after it does.
    let stranger = TestServer::start_with(node_config(&redis)).await;
    let mut late = node_config(&redis);
    trusting(&mut late);
    let late = TestServer::start_with(late).await;
    wait_for_peers(late.addr, 2).await;
    wait_for_peers(cluster[0].addr, 2).await;
    let text = metrics(stranger.addr).await;
    assert!(text.contains("herald_cluster_redis_up 0\n") && text.contains("herald_cluster_peers 0\n"), "{text}");
    let mut own = stranger.connect().await;
    own.subscribe("news").await;
    let reply = stranger.rest().trigger(&["news"], "local", "{}").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    own.expect("local").await;
}
