//! Events across a cluster of three nodes sharing one real `redis-server`: a REST trigger or batch
//! on any node reaches every subscriber on every node exactly once, in order; `socket_id` exclusion
//! works for a socket on another node; client events reach the other nodes, never the sender.

mod support;

use serde_json::json;
use support::cluster::{RedisServer, metrics, nodes};

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
