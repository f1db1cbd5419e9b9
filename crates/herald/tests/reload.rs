//! SIGHUP re-reads the configuration file: apps added, removed or changed take effect without a
//! restart and without dropping the connections of the apps that stay; a removed app's connections
//! close with 4003 and its REST requests get 404; a changed secret applies to the next signature
//! check; a bad file is refused and the running configuration kept.

// The helpers below run outside #[test] functions; a failed unwrap there is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::process::HeraldProcess;
use support::{RestClient, WsClient};

fn app(id: &str, secret: &str) -> String {
    format!("[[apps]]\nid = \"{id}\"\nkey = \"key-{id}\"\nsecret = \"{secret}\"\nsubscription_count = false\n")
}

fn write(path: &Path, apps: &[(&str, &str)]) {
    let text: String = apps.iter().map(|(id, secret)| app(id, secret)).collect();
    std::fs::write(path, text).unwrap();
}

fn rest(server: &HeraldProcess, id: &str, secret: &str) -> RestClient {
    RestClient { addr: server.addr, key: format!("key-{id}"), secret: secret.into(), app_id: id.into() }
}

/// Subscribe to a private channel with a token signed by `secret`; the first frame in reply.
async fn subscribe_private(client: &mut WsClient, id: &str, secret: &str, channel: &str) -> Value {
    let auth = pusher_wire::auth::sign_channel(&format!("key-{id}"), secret, &client.socket_id, channel, None);
    client.send(json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth}})).await;
    client.recv().await
}

#[test]
fn sighup_adds_removes_and_changes_apps_and_refuses_a_bad_file() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = std::env::temp_dir().join(format!("herald-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("herald.toml");
    write(&file, &[("10", "s10"), ("20", "s20")]);
    let server = HeraldProcess::start_with(&["--config", file.to_str().unwrap()]);
    runtime.block_on(async {
        let mut stays = WsClient::connect(server.addr, "key-10").await;
        stays.subscribe("news").await;
        let mut goes = WsClient::connect(server.addr, "key-20").await;
        goes.subscribe("news").await;

        write(&file, &[("10", "s10-renewed"), ("30", "s30")]);
        server.signal("-HUP");
        server.wait_for_log("SIGHUP: apps read again");

        let (code, _) = goes.expect_close().await;
        assert_eq!(code, 4003, "a removed app's connections close with 4003");
        assert_eq!(rest(&server, "20", "s20").trigger(&["news"], "e", "{}").await.status, 404);

        // App 10 stayed: its connection too, and its new secret applies from the next check on.
        assert!(stays.roundtrip().await.is_empty());
        let refused = subscribe_private(&mut stays, "10", "s10", "private-a").await;
        assert_eq!(refused["event"], "pusher:subscription_error", "the old secret no longer signs: {refused}");
        stays.roundtrip().await;
        let accepted = subscribe_private(&mut stays, "10", "s10-renewed", "private-b").await;
        assert_eq!(accepted["event"], "pusher_internal:subscription_succeeded", "{accepted}");
        assert_eq!(rest(&server, "10", "s10").trigger(&["news"], "e", "{}").await.status, 401);
        assert_eq!(rest(&server, "10", "s10-renewed").trigger(&["news"], "after", "{}").await.status, 200);
        assert_eq!(stays.recv_until("after").await.last().unwrap()["event"], "after");

        let mut added = WsClient::connect(server.addr, "key-30").await;
        added.subscribe("news").await;

        std::fs::write(&file, "[[apps]]\nid = \"40\"\nthis is not TOML").unwrap();
        server.signal("-HUP");
        server.wait_for_log("SIGHUP: configuration refused; keeping the running one");
        assert!(added.roundtrip().await.is_empty(), "the running configuration stays");
        assert_eq!(rest(&server, "30", "s30").trigger(&["news"], "still", "{}").await.status, 200);
        added.expect("still").await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_app_added_by_a_reload_spans_the_cluster() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let redis = support::cluster::RedisServer::start();
    let dir = std::env::temp_dir().join(format!("herald-reload-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("herald.toml");
    write(&file, &[("10", "s10")]);
    let args = ["--config", file.to_str().unwrap(), "--redis-url", &redis.url()];
    let (a, b) = (HeraldProcess::start_with(&args), HeraldProcess::start_with(&args));
    for node in [&a, &b] {
        node.wait_for_log("joining the cluster");
    }
    write(&file, &[("10", "s10"), ("30", "s30")]);
    for node in [&a, &b] {
        node.signal("-HUP");
        node.wait_for_log("SIGHUP: apps read again");
    }
    runtime.block_on(async {
        let mut on_a = WsClient::connect(a.addr, "key-30").await;
        on_a.subscribe("news").await;
        // Node B learns of the new app's state within a heartbeat or so; events cross at once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            assert_eq!(rest(&b, "30", "s30").trigger(&["news"], "crossed", "{}").await.status, 200);
            if let Some(frame) = on_a.recv_within(std::time::Duration::from_millis(200)).await
                && frame["event"] == "crossed"
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "app 30's events never crossed");
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let reply = rest(&b, "30", "s30").get("/channels/news", &[("info", "subscription_count")]).await;
            if reply.body["subscription_count"] == 1 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "node B never counted node A's subscriber: {}", reply.text);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
