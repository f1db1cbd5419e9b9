//! Presence and counts across a cluster of three nodes: one roster per channel, a user on two nodes
//! is one member, `member_added`/`member_removed` on the first/last connection anywhere, the
//! 100-member limit counts every node; subscription counts, `user_count`, `occupied` and the
//! channel list are cluster totals on every node; and the roster stays exact while a thousand
//! connections of ten users join and leave on random nodes.

// The helpers below run outside #[test] functions; a failed unwrap there is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};
use support::cluster::{RedisServer, barrier, eventually, member, nodes, nodes_with};
use support::{TestServer, WsClient};
use tokio::task::JoinSet;

/// Join `presence-room` as `id`; returns the client and the roster's ids.
async fn join(server: &TestServer, id: &str) -> (WsClient, BTreeSet<String>) {
    let mut client = server.connect().await;
    let frame = client.subscribe_signed("presence-room", Some(&member(id))).await;
    assert_eq!(frame["event"], "pusher_internal:subscription_succeeded", "{frame}");
    let data: Value = serde_json::from_str(frame["data"].as_str().unwrap()).unwrap();
    let ids = data["presence"]["ids"].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_owned()).collect();
    (client, ids)
}

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|id| (*id).to_owned()).collect()
}

/// The user ids `GET /channels/presence-room/users` lists on `server`.
async fn users_on(server: &TestServer) -> BTreeSet<String> {
    let reply = server.rest().get("/channels/presence-room/users", &[]).await;
    reply.body["users"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_on_two_nodes_is_one_member_added_and_removed_once() {
    let redis = RedisServer::start();
    let cluster = nodes(&redis, 3).await;
    let (mut watcher, _) = join(&cluster[2], "w").await;
    watcher.subscribe("probe").await;
    let (tab_a, _) = join(&cluster[0], "u").await;
    let added = watcher.expect("pusher_internal:member_added").await;
    assert_eq!(added["data"], json!({"user_id": "u", "user_info": {"name": "user u"}}).to_string());
    eventually("node B has heard of w and u", || async {
        (users_on(&cluster[1]).await == ids(&["w", "u"])).then_some(())
    })
    .await;
    let (tab_b, roster) = join(&cluster[1], "u").await;
    barrier(&cluster[1], &mut watcher, "probe").await;
    assert!(watcher.roundtrip().await.is_empty(), "a second node's tab is not a new member");
    // A new subscriber on node B gets every member of every node.
    assert_eq!(roster, ids(&["w", "u"]));
    for node in &cluster {
        let node_users = eventually("every node lists w and u", || async {
            let users = users_on(node).await;
            (users == ids(&["w", "u"])).then_some(users)
        })
        .await;
        assert_eq!(node_users.len(), 2);
    }
    tab_a.close().await;
    barrier(&cluster[0], &mut watcher, "probe").await;
    assert!(watcher.roundtrip().await.is_empty(), "u is still on node B");
    tab_b.close().await;
    let removed = watcher.expect("pusher_internal:member_removed").await;
    assert_eq!(removed["data"], json!({"user_id": "u"}).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hundred_member_limit_counts_every_node() {
    let redis = RedisServer::start();
    let cluster = nodes(&redis, 3).await;
    let mut members = Vec::new();
    for i in 0..100 {
        let (client, _) = join(&cluster[i % 3], &i.to_string()).await;
        members.push(client);
    }
    // Node A must have heard of every member before it can refuse the 101st.
    let mut probe = cluster[0].connect().await;
    probe.subscribe("probe").await;
    for node in &cluster {
        barrier(node, &mut probe, "probe").await;
    }
    let mut extra = cluster[0].connect().await;
    let refused = extra.subscribe_signed("presence-room", Some(&member("new"))).await;
    assert_eq!(refused["event"], "pusher:subscription_error", "{refused}");
    assert_eq!(refused["data"]["status"], 4100, "{refused}");
    let (_, roster) = join(&cluster[0], "7").await;
    assert_eq!(roster.len(), 100, "another tab of a member (on another node) is accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_occupancy_and_the_channel_list_are_cluster_totals_on_every_node() {
    let redis = RedisServer::start();
    let cluster = nodes_with(&redis, 3, |config| config.apps[0].subscription_count = true).await;
    let mut on_a = Vec::new();
    for _ in 0..2 {
        let mut client = cluster[0].connect().await;
        client.subscribe("news").await;
        on_a.push(client);
    }
    let mut on_b = Vec::new();
    for _ in 0..3 {
        let mut client = cluster[1].connect().await;
        client.subscribe("news").await;
        on_b.push(client);
    }
    let (_m1, _) = join(&cluster[0], "1").await;
    let (_m2, _) = join(&cluster[2], "2").await;
    let (_m2_again, _) = join(&cluster[1], "2").await;
    for node in &cluster {
        let rest = node.rest();
        eventually("news has 5 subscribers everywhere", || async {
            let reply = rest.get("/channels/news", &[("info", "subscription_count")]).await;
            (reply.body == json!({"occupied": true, "subscription_count": 5})).then_some(())
        })
        .await;
        eventually("presence-room has 2 users and 3 connections everywhere", || async {
            let reply = rest
                .get("/channels", &[("filter_by_prefix", "presence-"), ("info", "user_count,subscription_count")])
                .await;
            let wanted = json!({"channels": {"presence-room": {"user_count": 2, "subscription_count": 3}}});
            (reply.body == wanted).then_some(())
        })
        .await;
        let all = rest.get("/channels", &[]).await;
        assert_eq!(all.body, json!({"channels": {"news": {}, "presence-room": {}}}), "{}", all.text);
        let trigger = rest
            .post(
                "/events",
                &json!({"name": "e", "channels": ["news", "presence-room"], "data": "{}", "info": "subscription_count,user_count"}),
            )
            .await;
        assert_eq!(
            trigger.body,
            json!({"channels": {"news": {"subscription_count": 5}, "presence-room": {"user_count": 2, "subscription_count": 3}}})
        );
    }
    // Every subscriber is told the cluster-wide count.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let frame = on_a[0].recv_within(std::time::Duration::from_secs(20)).await.expect("a count update");
        if frame["event"] == "pusher_internal:subscription_count"
            && frame["data"].as_str() == Some(r#"{"subscription_count":5}"#)
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never told 5");
    }
    for client in on_b {
        client.close().await;
    }
    for client in on_a {
        client.close().await;
    }
    for node in &cluster {
        let rest = node.rest();
        eventually("news is vacated everywhere", || async {
            let reply = rest.get("/channels/news", &[("info", "subscription_count")]).await;
            (reply.body == json!({"occupied": false, "subscription_count": 0})).then_some(())
        })
        .await;
    }
}

/// What a watcher saw of the roster: its initial ids plus every member event, checking that each
/// event changes something (an added member was absent, a removed one present).
struct Tracked {
    members: BTreeSet<String>,
}

impl Tracked {
    fn apply(&mut self, frame: &Value) {
        let data: Value = serde_json::from_str(frame["data"].as_str().unwrap_or("{}")).unwrap_or_default();
        let user = data["user_id"].as_str().unwrap_or_default().to_owned();
        match frame["event"].as_str() {
            Some("pusher_internal:member_added") => assert!(self.members.insert(user.clone()), "{user} added twice"),
            Some("pusher_internal:member_removed") => {
                assert!(self.members.remove(&user), "{user} removed while absent")
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_stays_exact_while_a_thousand_connections_churn_on_random_nodes() {
    let redis = RedisServer::start();
    let cluster: std::sync::Arc<Vec<TestServer>> = std::sync::Arc::new(nodes(&redis, 3).await);
    let mut watchers = Vec::new();
    for (i, node) in cluster.iter().enumerate() {
        // "probe" first: once in the presence channel, member events may come before any reply.
        let mut client = node.connect().await;
        client.subscribe("probe").await;
        let frame = client.subscribe_signed("presence-room", Some(&member(&format!("watcher-{i}")))).await;
        assert_eq!(frame["event"], "pusher_internal:subscription_succeeded", "{frame}");
        let data: Value = serde_json::from_str(frame["data"].as_str().unwrap()).unwrap();
        let roster =
            data["presence"]["ids"].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_owned()).collect();
        watchers.push((client, Tracked { members: roster }));
    }
    // Ten users, a hundred connections each, on random nodes; each user closes a random half of
    // its connections as it goes, and user 9 closes all of them.
    let mut tasks = JoinSet::new();
    for user in 0..10u64 {
        let cluster = cluster.clone();
        tasks.spawn(async move {
            let mut seed = user * 7919 + 1;
            let mut next = move || {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                seed >> 33
            };
            let mut open = Vec::new();
            for _ in 0..100 {
                let node = &cluster[(next() % 3) as usize];
                let (client, _) = join(node, &format!("u{user}")).await;
                open.push(client);
                if next() % 2 == 0 && !open.is_empty() {
                    let victim = (next() as usize) % open.len();
                    open.swap_remove(victim).close().await;
                }
            }
            if user == 9 {
                for client in open.drain(..) {
                    client.close().await;
                }
            }
            (format!("u{user}"), open)
        });
    }
    let mut kept: HashMap<String, Vec<WsClient>> = HashMap::new();
    while let Some(result) = tasks.join_next().await {
        let (user, open) = result.unwrap();
        kept.insert(user, open);
    }
    let mut truth: BTreeSet<String> =
        kept.iter().filter(|(_, open)| !open.is_empty()).map(|(user, _)| user.clone()).collect();
    truth.extend((0..3).map(|i| format!("watcher-{i}")));
    assert!(!truth.contains("u9"));
    for node in cluster.iter() {
        let listed = eventually("every node lists exactly the users still connected", || async {
            let users = users_on(node).await;
            (users == truth).then_some(users)
        })
        .await;
        assert_eq!(listed.len(), truth.len());
        let count = node.rest().get("/channels/presence-room", &[("info", "user_count")]).await;
        assert_eq!(count.body["user_count"], truth.len());
    }
    // Each watcher, having seen every member event in order, holds exactly the same roster.
    for (client, tracked) in &mut watchers {
        for node in cluster.iter() {
            node.rest().trigger(&["probe"], "herald-test-barrier", "{}").await;
            for frame in client.recv_until("herald-test-barrier").await {
                tracked.apply(&frame);
            }
        }
        assert_eq!(tracked.members, truth);
    }
}
