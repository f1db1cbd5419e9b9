//! A cluster when things break, with a real `redis-server`: a node killed without a goodbye is
//! found within 10 s and subtracted (members removed, with webhooks; counts; channels vacated); with
//! Redis down every node keeps serving its own clients and the cluster converges once Redis is back,
//! empty or not; a frozen Redis never blocks local delivery.

// The helpers below run outside #[test] functions; a failed unwrap there is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use herald::WebhookTarget;
use serde_json::json;
use support::cluster::{
    RedisServer, eventually, member, metrics, nodes, nodes_with, until_events_cross, wait_for_metric,
};
use support::process::HeraldProcess;
use support::webhooks::Receiver;
use support::{KEY, TestServer, WsClient};

/// The user ids `GET /channels/presence-room/users` lists on `server`.
async fn users_on(server: &TestServer) -> Vec<String> {
    let reply = server.rest().get("/channels/presence-room/users", &[]).await;
    let mut users: Vec<String> =
        reply.body["users"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect();
    users.sort();
    users
}

/// The next webhook's (name, channel) pairs, skipping `subscription_count` (on by default on a node
/// started from the command line).
async fn next_names(receiver: &mut Receiver) -> Vec<(String, String)> {
    loop {
        let names: Vec<_> =
            receiver.next().await.names().into_iter().filter(|(name, _)| name != "subscription_count").collect();
        if !names.is_empty() {
            return names;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_is_found_within_ten_seconds_and_subtracted() {
    let redis = RedisServer::start();
    let mut receiver = Receiver::start(0).await;
    let delay = Duration::from_secs(1);
    let survivors = nodes_with(&redis, 2, |config| {
        config.webhook_delay = delay;
        config.apps[0].webhooks.push(WebhookTarget { url: receiver.url.clone(), events: None });
    })
    .await;
    let mut doomed = HeraldProcess::start(&["--redis-url", &redis.url(), "--webhook-url", &receiver.url]);
    support::cluster::wait_for_peers(survivors[0].addr, 2).await;
    let mut watcher = survivors[0].connect().await;
    watcher.subscribe_signed("presence-room", Some(&member("w"))).await;
    let mut first = [next_names(&mut receiver).await, next_names(&mut receiver).await].concat();
    first.sort();
    assert_eq!(
        first,
        [("channel_occupied".into(), "presence-room".into()), ("member_added".into(), "presence-room".into())]
    );
    let mut on_doomed = WsClient::connect(doomed.addr, KEY).await;
    on_doomed.subscribe_signed("presence-room", Some(&member("gone-soon"))).await;
    on_doomed.subscribe("news").await;
    watcher.expect("pusher_internal:member_added").await;
    for node in &survivors {
        eventually("news is occupied through the doomed node", || async {
            let reply = node.rest().get("/channels/news", &[("info", "subscription_count")]).await;
            (reply.body["subscription_count"] == 1).then_some(())
        })
        .await;
    }
    // The doomed node's member and channel were announced once.
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.extend(next_names(&mut receiver).await);
    }
    seen.sort();
    assert_eq!(seen, [("channel_occupied".into(), "news".into()), ("member_added".into(), "presence-room".into())]);

    let killed = Instant::now();
    doomed.kill();
    let removed = watcher.expect_within("pusher_internal:member_removed", Duration::from_secs(15)).await;
    let detected = killed.elapsed();
    assert_eq!(removed["data"], json!({"user_id": "gone-soon"}).to_string());
    println!("the killed node was found dead after {detected:?}");
    assert!(detected < Duration::from_secs(10), "found after {detected:?}");
    for node in &survivors {
        eventually("every survivor has subtracted the dead node", || async {
            let reply = node.rest().get("/channels/news", &[("info", "subscription_count")]).await;
            let gone = reply.body == json!({"occupied": false, "subscription_count": 0});
            (gone && users_on(node).await == ["w"]).then_some(())
        })
        .await;
    }
    let mut removals = Vec::new();
    for _ in 0..2 {
        removals.extend(next_names(&mut receiver).await);
    }
    removals.sort();
    assert_eq!(
        removals,
        [("channel_vacated".into(), "news".into()), ("member_removed".into(), "presence-room".into())]
    );
    receiver.expect_none(Duration::from_secs(2)).await;
    let text = metrics(survivors[0].addr).await + &metrics(survivors[1].addr).await;
    assert!(text.contains("herald_cluster_nodes_reaped_total 1"), "one survivor reaped it:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_and_back_is_removed_then_announces_itself_again() {
    let redis = RedisServer::start();
    let survivors = nodes(&redis, 2).await;
    let cut_off = HeraldProcess::start(&["--redis-url", &redis.url()]);
    support::cluster::wait_for_peers(survivors[0].addr, 2).await;
    let mut watcher = survivors[0].connect().await;
    watcher.subscribe_signed("presence-room", Some(&member("w"))).await;
    let mut far = WsClient::connect(cut_off.addr, KEY).await;
    far.subscribe_signed("presence-room", Some(&member("far"))).await;
    watcher.expect("pusher_internal:member_added").await;
    cut_off.pause();
    let removed = watcher.expect_within("pusher_internal:member_removed", Duration::from_secs(15)).await;
    assert_eq!(removed["data"], json!({"user_id": "far"}).to_string());
    cut_off.resume();
    // Its next heartbeat finds its share gone; it announces it again, and "far" (still connected
    // to it) is back.
    let added = watcher.expect_within("pusher_internal:member_added", Duration::from_secs(15)).await;
    assert_eq!(added["data"], json!({"user_id": "far", "user_info": {"name": "user far"}}).to_string());
    for node in &survivors {
        eventually("the survivors list far again", || async { (users_on(node).await == ["far", "w"]).then_some(()) })
            .await;
    }
    assert!(far.roundtrip().await.iter().all(|f| f["event"] != "pusher:error"), "far's connection went on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_each_node_serves_its_own_clients_and_the_cluster_converges_after() {
    let mut redis = RedisServer::start();
    let cluster = nodes(&redis, 3).await;
    let mut before = cluster[0].connect().await;
    before.subscribe_signed("presence-room", Some(&member("before"))).await;
    redis.kill();
    let mut during = Vec::new();
    for node in &cluster {
        wait_for_metric(node.addr, "herald_cluster_redis_up 0\n").await;
        // Local subscribes, presence, triggers and delivery go on.
        let mut client = node.connect().await;
        client.subscribe("news").await;
        let reply = node.rest().trigger(&["news"], "local", "{}").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        client.expect("local").await;
        let frame =
            client.subscribe_signed("presence-room", Some(&member(&format!("during-{}", node.addr.port())))).await;
        assert_eq!(frame["event"], "pusher_internal:subscription_succeeded");
        let text = metrics(node.addr).await;
        assert!(text.contains("herald_cluster_redis_outages_total 1\n"), "counted once:\n{text}");
        during.push(client);
    }
    // Redis comes back empty: every node re-announces its share and re-reads the others'.
    redis.restart();
    let back = Instant::now();
    let mut expected: Vec<String> = cluster.iter().map(|node| format!("during-{}", node.addr.port())).collect();
    expected.push("before".into());
    expected.sort();
    for node in &cluster {
        wait_for_metric(node.addr, "herald_cluster_redis_up 1\n").await;
        eventually("every node lists every member again", || async {
            (users_on(node).await == expected).then_some(())
        })
        .await;
    }
    let mut listener = cluster[2].connect().await;
    listener.subscribe("after").await;
    until_events_cross(&cluster[0], &mut listener, "after").await;
    assert!(back.elapsed() < Duration::from_secs(15), "converged after {:?}", back.elapsed());
    for node in &cluster {
        let reply = node.rest().get("/channels/presence-room", &[("info", "user_count,subscription_count")]).await;
        assert_eq!(reply.body["user_count"], 4, "{}", reply.text);
        assert_eq!(reply.body["subscription_count"], 4, "{}", reply.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_never_blocks_local_delivery_and_nobody_is_dropped_when_it_thaws() {
    let redis = RedisServer::start();
    let cluster = nodes(&redis, 2).await;
    let (mut a, mut b) = (cluster[0].connect().await, cluster[1].connect().await);
    a.subscribe_signed("presence-room", Some(&member("a"))).await;
    b.subscribe_signed("presence-room", Some(&member("b"))).await;
    a.expect("pusher_internal:member_added").await;
    a.subscribe("news").await;
    redis.pause();
    // Longer than a node's timeout: on thawing, nobody may take the others for dead.
    let frozen = Instant::now();
    while frozen.elapsed() < herald::NODE_TIMEOUT + Duration::from_secs(2) {
        let reply = cluster[0].rest().trigger(&["news"], "local", "{}").await;
        assert_eq!(reply.status, 200);
        a.expect("local").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    redis.resume();
    for node in &cluster {
        wait_for_metric(node.addr, "herald_cluster_redis_up 1\n").await;
    }
    let mut listener = cluster[1].connect().await;
    listener.subscribe("after").await;
    until_events_cross(&cluster[0], &mut listener, "after").await;
    let frames = a.roundtrip().await;
    assert!(frames.iter().all(|f| f["event"] != "pusher_internal:member_removed"), "b was never dropped: {frames:?}");
    for node in &cluster {
        assert_eq!(users_on(node).await, ["a", "b"]);
    }
}
