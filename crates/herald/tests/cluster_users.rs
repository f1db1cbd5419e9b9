//! Signed-in users across a cluster: server-to-user events, watchlist online/offline and
//! `terminate_connections` (both REST paths) reach the user's connections on every node.

// The helpers below run outside #[test] functions; a failed unwrap there is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use pusher_wire::auth::sign_user;
use pusher_wire::rest::auth::signed_query;
use serde_json::{Value, json};
use support::cluster::{RedisServer, barrier, nodes};
use support::{KEY, SECRET, TestServer, WsClient, now};

/// A new connection on `server` signed in as `id`, watching `watchlist`; returns it and the frames
/// that followed `signin_success` (the watchlist status).
async fn connect_as(server: &TestServer, id: &str, watchlist: &[&str]) -> (WsClient, Vec<Value>) {
    let mut client = server.connect().await;
    let user_data = json!({"id": id, "watchlist": watchlist}).to_string();
    let auth = sign_user(KEY, SECRET, &client.socket_id, &user_data);
    client.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    assert_eq!(client.recv().await["event"], "pusher:signin_success");
    let after = client.roundtrip().await;
    (client, after)
}

/// The watchlist events in `frame`, as (name, ids).
fn watchlist(frame: &Value) -> Vec<(String, Vec<String>)> {
    assert_eq!(frame["event"], "pusher_internal:watchlist_events", "{frame}");
    frame["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| {
            let ids = group["user_ids"].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_owned()).collect();
            (group["name"].as_str().unwrap().to_owned(), ids)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_to_user_events_reach_the_users_connections_on_every_node() {
    let redis = RedisServer::start();
    let cluster = nodes(&redis, 3).await;
    let (mut on_a, _) = connect_as(&cluster[0], "42", &[]).await;
    let (mut on_c, _) = connect_as(&cluster[2], "42", &[]).await;
    let (mut someone_else, _) = connect_as(&cluster[2], "43", &[]).await;
    let body = json!({"name": "notice", "channels": ["#server-to-user-42"], "data": "{\"hi\":1}"});
    assert_eq!(cluster[1].rest().post("/events", &body).await.status, 200);
    for client in [&mut on_a, &mut on_c] {
        let frame = client.expect("notice").await;
        assert_eq!(frame["channel"], "#server-to-user-42");
    }
    // Excluding one of the user's sockets by id, from a third node.
    let body = json!({"name": "notice", "channels": ["#server-to-user-42"], "data": "2", "socket_id": on_a.socket_id});
    cluster[1].rest().post("/events", &body).await;
    on_c.expect("notice").await;
    assert!(on_a.roundtrip().await.is_empty(), "excluded");
    assert!(someone_else.roundtrip().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_see_a_user_online_once_wherever_they_connect() {
    let redis = RedisServer::start();
    let cluster = nodes(&redis, 3).await;
    let (mut watcher, status) = connect_as(&cluster[2], "w", &["42"]).await;
    assert_eq!(watchlist(&status[0]), [("offline".to_owned(), vec!["42".to_owned()])]);
    let mut probe_on_a = cluster[0].connect().await;
    probe_on_a.subscribe("probe").await;
    let (tab_a, _) = connect_as(&cluster[0], "42", &[]).await;
    assert_eq!(watchlist(&watcher.recv().await), [("online".to_owned(), vec!["42".to_owned()])]);
    let (tab_b, _) = connect_as(&cluster[1], "42", &[]).await;
    barrier(&cluster[1], &mut watcher, "#server-to-user-w").await;
    barrier(&cluster[1], &mut probe_on_a, "probe").await;
    tab_a.close().await;
    barrier(&cluster[0], &mut watcher, "#server-to-user-w").await;
    // Still signed in on node B: no offline (the barrier is all that arrived).
    assert!(watcher.roundtrip().await.is_empty());
    // A watcher signing in on node A, where 42 is no longer connected, finds them online on B.
    let (_, status) = connect_as(&cluster[0], "w2", &["42"]).await;
    assert_eq!(watchlist(&status[0]), [("online".to_owned(), vec!["42".to_owned()])]);
    tab_b.close().await;
    assert_eq!(watchlist(&watcher.recv().await), [("offline".to_owned(), vec!["42".to_owned()])]);
}

/// POST `path` (no `/apps/{id}` prefix: the Python SDK's form) signed over that path.
async fn post_without_app_prefix(server: &TestServer, path: &str) -> support::Reply {
    let query = signed_query(KEY, SECRET, "POST", path, &[], b"{}", now());
    server.rest().send("POST", &format!("{path}?{query}"), "{}".into()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_connections_closes_the_users_connections_on_every_node() {
    let redis = RedisServer::start();
    let cluster = nodes(&redis, 3).await;
    for path in ["app", "no app"] {
        let (mut on_a, _) = connect_as(&cluster[0], "42", &[]).await;
        let (mut on_c, _) = connect_as(&cluster[2], "42", &[]).await;
        let (mut other, _) = connect_as(&cluster[2], "43", &[]).await;
        let reply = match path {
            "app" => cluster[1].rest().post("/users/42/terminate_connections", &json!({})).await,
            _ => post_without_app_prefix(&cluster[1], "/users/42/terminate_connections").await,
        };
        assert_eq!(reply.status, 200, "{}", reply.text);
        for client in [&mut on_a, &mut on_c] {
            let (code, _) = client.expect_close().await;
            assert_eq!(code, 4009, "{path}");
        }
        assert!(other.roundtrip().await.is_empty(), "{path}: another user is untouched");
    }
}
