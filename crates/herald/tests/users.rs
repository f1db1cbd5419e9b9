//! User sign-in (`pusher:signin`): success and refusals, server-to-user channels and events,
//! presence identity from the signed-in user, watchlist events, and `terminate_connections` (with
//! and without the `/apps/{id}` prefix the Python SDK leaves out).

mod support;

use std::time::Duration;

use pusher_wire::auth::{sign_channel, sign_user};
use pusher_wire::rest::auth::signed_query;
use serde_json::{Value, json};
use support::{KEY, Reply, RestClient, SECRET, TestServer, WsClient, now};

const QUIET: Duration = Duration::from_millis(200);

/// `user_data` for user `id`.
fn user(id: &str) -> String {
    json!({"id": id}).to_string()
}

/// Send `pusher:signin` for `user_data`, signed with the test secret; returns the next frame.
async fn sign_in(client: &mut WsClient, user_data: &str) -> Value {
    let auth = sign_user(KEY, SECRET, &client.socket_id, user_data);
    client.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
    client.recv().await
}

/// Sign in and check `signin_success`.
async fn signed_in(client: &mut WsClient, user_data: &str) {
    let frame = sign_in(client, user_data).await;
    assert_eq!(frame, json!({"event": "pusher:signin_success", "data": {"user_data": user_data}}));
}

/// A new connection signed in as `id`.
async fn connect_as(server: &TestServer, id: &str) -> WsClient {
    let mut client = server.connect().await;
    signed_in(&mut client, &user(id)).await;
    client
}

fn assert_error_code(frame: &Value, code: u16) {
    assert_eq!(frame["event"], "pusher:error", "{frame}");
    assert_eq!(frame["data"]["code"], code, "{frame}");
    assert!(frame["data"]["message"].is_string(), "{frame}");
}

/// The `watchlist_events` frame, with the ids of each group sorted (their order is not specified).
fn watchlist(frame: &Value) -> Value {
    assert_eq!(frame["event"], "pusher_internal:watchlist_events", "{frame}");
    assert!(frame.get("channel").is_none(), "{frame}");
    let mut frame = frame.clone();
    for group in frame["data"]["events"].as_array_mut().unwrap_or_else(|| panic!("events")) {
        group["user_ids"].as_array_mut().expect("user_ids").sort_by_key(Value::to_string);
    }
    frame["data"].clone()
}

fn status(groups: &[(&str, &[&str])]) -> Value {
    let events: Vec<Value> = groups.iter().map(|(name, ids)| json!({"name": name, "user_ids": ids})).collect();
    json!({"events": events})
}

/// POST `body` to `path` exactly as given (no `/apps/{id}` prefix added), signed over that path.
async fn post_path(rest: &RestClient, path: &str, body: &str) -> Reply {
    let query = signed_query(KEY, SECRET, "POST", path, &[], body.as_bytes(), now());
    rest.send("POST", &format!("{path}?{query}"), body.to_owned()).await
}

#[tokio::test]
async fn signin_success_echoes_user_data() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    let user_data = r#"{"id":"42","user_info":{"name":"Ann"}}"#;
    let frame = sign_in(&mut client, user_data).await;
    assert_eq!(frame, json!({"event": "pusher:signin_success", "data": {"user_data": user_data}}));
    // No watchlist, no watchlist events.
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn a_bad_signature_is_refused_with_4009_and_the_connection_stays_open() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    let user_data = user("42");
    let wrong_secret = sign_user(KEY, "not-the-secret", &client.socket_id, &user_data);
    client.send(json!({"event": "pusher:signin", "data": {"auth": wrong_secret, "user_data": user_data}})).await;
    assert_error_code(&client.recv().await, 4009);
    // A token for another connection is refused too.
    let other = server.connect().await;
    let stolen = sign_user(KEY, SECRET, &other.socket_id, &user_data);
    client.send(json!({"event": "pusher:signin", "data": {"auth": stolen, "user_data": user_data}})).await;
    assert_error_code(&client.recv().await, 4009);
    // The connection is open, not signed in, and can still sign in.
    assert_eq!(client.roundtrip().await, Vec::<Value>::new());
    server.rest().trigger(&["#server-to-user-42"], "note", "x").await;
    client.expect_silence(QUIET).await;
    signed_in(&mut client, &user_data).await;
}

#[tokio::test]
async fn user_data_without_a_string_id_is_refused() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    for user_data in [r#"{"id":42}"#, r#"{"user_info":{"name":"Ann"}}"#, r#"{"id":""}"#, "[]"] {
        assert_error_code(&sign_in(&mut client, user_data).await, 4009);
    }
    assert_eq!(client.roundtrip().await, Vec::<Value>::new());
}

#[tokio::test]
async fn signing_in_again_as_another_user_is_refused() {
    let server = TestServer::start().await;
    let mut client = connect_as(&server, "42").await;
    assert_error_code(&sign_in(&mut client, &user("43")).await, 4009);
    // Still user 42, and only 42.
    let rest = server.rest();
    rest.trigger(&["#server-to-user-43"], "note", "for 43").await;
    rest.trigger(&["#server-to-user-42"], "note", "for 42").await;
    assert_eq!(client.recv().await["data"], "for 42");
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn the_server_to_user_channel_needs_the_matching_sign_in() {
    let server = TestServer::start().await;
    let subscribe = json!({"event": "pusher:subscribe", "data": {"auth": "", "channel": "#server-to-user-42"}});
    let mut anonymous = server.connect().await;
    anonymous.send(subscribe.clone()).await;
    let refusal = anonymous.expect("pusher:subscription_error").await;
    assert_eq!(refusal["channel"], "#server-to-user-42");
    let mut other = connect_as(&server, "43").await;
    other.send(subscribe.clone()).await;
    assert_eq!(other.expect("pusher:subscription_error").await["channel"], "#server-to-user-42");

    let mut owner = connect_as(&server, "42").await;
    owner.send(subscribe).await;
    assert_eq!(
        owner.recv().await,
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "#server-to-user-42", "data": "{}"})
    );
    // Server-to-user channels are never listed.
    let channels = server.rest().get("/channels", &[]).await;
    assert_eq!(channels.body, json!({"channels": {}}));
}

#[tokio::test]
async fn send_to_user_reaches_every_tab_of_the_user_and_nobody_else() {
    let server = TestServer::start().await;
    let mut tab1 = connect_as(&server, "42").await;
    tab1.send(json!({"event": "pusher:subscribe", "data": {"auth": "", "channel": "#server-to-user-42"}})).await;
    tab1.expect("pusher_internal:subscription_succeeded").await;
    // pusher-js routes user events whether or not the subscription was confirmed: no subscribe here.
    let mut tab2 = connect_as(&server, "42").await;
    let mut other_user = connect_as(&server, "43").await;
    let mut anonymous = server.connect().await;
    // Presence membership as 42 is not a sign-in.
    anonymous.subscribe_signed("presence-room", Some(r#"{"user_id":"42"}"#)).await;

    let reply = server.rest().trigger(&["#server-to-user-42"], "note", r#"{"text":"hello"}"#).await;
    assert_eq!((reply.status, reply.body), (200, json!({})));
    let expected = json!({"event": "note", "channel": "#server-to-user-42", "data": "{\"text\":\"hello\"}"});
    assert_eq!(tab1.recv().await, expected);
    assert_eq!(tab2.recv().await, expected);
    other_user.expect_silence(QUIET).await;
    anonymous.expect_silence(QUIET).await;
    tab1.expect_silence(QUIET).await;
}

#[tokio::test]
async fn presence_without_channel_data_uses_the_signed_in_identity() {
    let server = TestServer::start().await;
    let mut observer = server.connect().await;
    observer.subscribe_signed("presence-room", Some(r#"{"user_id":"observer"}"#)).await;

    let mut ann = server.connect().await;
    signed_in(&mut ann, r#"{"id":"42","user_info":{"name":"Ann"}}"#).await;
    let auth = sign_channel(KEY, SECRET, &ann.socket_id, "presence-room", None);
    ann.send(json!({"event": "pusher:subscribe", "data": {"channel": "presence-room", "auth": auth}})).await;
    let frame = ann.expect("pusher_internal:subscription_succeeded").await;
    let roster: Value = serde_json::from_str(frame["data"].as_str().unwrap()).unwrap();
    assert_eq!(roster["presence"]["count"], 2);
    assert_eq!(roster["presence"]["hash"], json!({"42": {"name": "Ann"}, "observer": null}));

    let added = observer.expect("pusher_internal:member_added").await;
    let added: Value = serde_json::from_str(added["data"].as_str().unwrap()).unwrap();
    assert_eq!(added, json!({"user_id": "42", "user_info": {"name": "Ann"}}));
}

#[tokio::test]
async fn a_watchlist_gets_the_current_status_at_sign_in() {
    let server = TestServer::start().await;
    let mut watcher = server.connect().await;
    signed_in(&mut watcher, r#"{"id":"A","watchlist":["B","C"]}"#).await;
    assert_eq!(watchlist(&watcher.recv().await), status(&[("offline", &["B", "C"])]));

    let _b = connect_as(&server, "B").await;
    assert_eq!(watchlist(&watcher.recv().await), status(&[("online", &["B"])]));
    let mut second = server.connect().await;
    signed_in(&mut second, r#"{"id":"A2","watchlist":["C","B"]}"#).await;
    assert_eq!(watchlist(&second.recv().await), status(&[("online", &["B"]), ("offline", &["C"])]));

    let _c = connect_as(&server, "C").await;
    let mut third = server.connect().await;
    signed_in(&mut third, r#"{"id":"A3","watchlist":["B","C"]}"#).await;
    // Empty groups are left out.
    assert_eq!(watchlist(&third.recv().await), status(&[("online", &["B", "C"])]));
}

#[tokio::test]
async fn watchers_hear_a_users_first_sign_in_and_last_sign_out_only() {
    let server = TestServer::start().await;
    let mut watcher = server.connect().await;
    signed_in(&mut watcher, r#"{"id":"A","watchlist":["B","C"]}"#).await;
    watcher.recv().await;

    let b1 = connect_as(&server, "B").await;
    let online = watcher.recv().await;
    assert_eq!(
        online,
        json!({"event": "pusher_internal:watchlist_events", "data": {"events": [{"name": "online", "user_ids": ["B"]}]}})
    );
    let b2 = connect_as(&server, "B").await;
    watcher.expect_silence(QUIET).await;
    // Presence membership alone does not make anyone online.
    let mut c_in_presence = server.connect().await;
    c_in_presence.subscribe_signed("presence-room", Some(r#"{"user_id":"C"}"#)).await;
    watcher.expect_silence(QUIET).await;

    b1.close().await;
    watcher.expect_silence(QUIET).await;
    b2.close().await;
    assert_eq!(
        watcher.recv().await,
        json!({"event": "pusher_internal:watchlist_events", "data": {"events": [{"name": "offline", "user_ids": ["B"]}]}})
    );
}

#[tokio::test]
async fn a_watchlist_over_100_ids_is_cut_with_error_4302() {
    let server = TestServer::start().await;
    let mut watcher = server.connect().await;
    let ids: Vec<String> = (0..150).map(|i| format!("w{i}")).collect();
    let user_data = json!({"id": "A", "watchlist": ids}).to_string();
    signed_in(&mut watcher, &user_data).await;
    let next = [watcher.recv().await, watcher.recv().await];
    let error = next.iter().find(|f| f["event"] == "pusher:error").unwrap_or_else(|| panic!("{next:?}"));
    assert_error_code(error, 4302);
    let events = next.iter().find(|f| f["event"] == "pusher_internal:watchlist_events").unwrap();
    let offline = &events["data"]["events"][0];
    assert_eq!(offline["name"], "offline");
    assert_eq!(offline["user_ids"].as_array().unwrap().len(), 100, "{events}");
    assert_eq!(offline["user_ids"], json!(ids[..100]), "the first 100 are kept");
    // The connection stays signed in.
    assert_eq!(watcher.roundtrip().await, Vec::<Value>::new());
}

/// Two tabs of 42, one of 43, and a presence member claiming 42 without signing in.
async fn terminate_scene(server: &TestServer) -> (WsClient, WsClient, WsClient, WsClient) {
    let mut tab1 = connect_as(server, "42").await;
    tab1.subscribe("news").await;
    let tab2 = connect_as(server, "42").await;
    let mut other = connect_as(server, "43").await;
    other.subscribe("news").await;
    let mut presence_only = server.connect().await;
    presence_only.subscribe_signed("presence-room", Some(r#"{"user_id":"42"}"#)).await;
    (tab1, tab2, other, presence_only)
}

async fn assert_terminated(client: &mut WsClient) {
    let (code, frames) = client.expect_close().await;
    assert_eq!(code, 4009, "{frames:?}");
    assert_eq!(frames.len(), 1, "only the pusher:error before the close: {frames:?}");
    assert_error_code(&frames[0], 4009);
}

async fn assert_unaffected(server: &TestServer, other: &mut WsClient, presence_only: &mut WsClient) {
    assert_eq!(other.roundtrip().await, Vec::<Value>::new());
    assert_eq!(presence_only.roundtrip().await, Vec::<Value>::new());
    server.rest().trigger(&["news"], "headline", "x").await;
    assert_eq!(other.recv().await["event"], "headline");
}

#[tokio::test]
async fn terminate_connections_closes_every_connection_of_the_user_with_4009() {
    let server = TestServer::start().await;
    let (mut tab1, mut tab2, mut other, mut presence_only) = terminate_scene(&server).await;
    let reply = server.rest().post("/users/42/terminate_connections", &json!({})).await;
    assert_eq!((reply.status, reply.body), (200, json!({})));
    assert_terminated(&mut tab1).await;
    assert_terminated(&mut tab2).await;
    assert_unaffected(&server, &mut other, &mut presence_only).await;
    // The user may come back.
    let mut again = connect_as(&server, "42").await;
    assert_eq!(again.roundtrip().await, Vec::<Value>::new());
    // Nobody signed in as that user: still 200.
    let reply = server.rest().post("/users/nobody/terminate_connections", &json!({})).await;
    assert_eq!((reply.status, reply.body), (200, json!({})));
}

#[tokio::test]
async fn the_python_sdk_path_without_the_app_prefix_terminates_too() {
    let server = TestServer::start().await;
    let (mut tab1, mut tab2, mut other, mut presence_only) = terminate_scene(&server).await;
    let rest = server.rest();
    // Signed over another path than the one sent: refused, nothing closed.
    let query = signed_query(KEY, SECRET, "POST", "/apps/1/users/42/terminate_connections", &[], b"{}", now());
    let reply = rest.send("POST", &format!("/users/42/terminate_connections?{query}"), "{}".into()).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(tab1.roundtrip().await, Vec::<Value>::new());

    let reply = post_path(&rest, "/users/42/terminate_connections", "{}").await;
    assert_eq!((reply.status, reply.body), (200, json!({})), "{}", reply.text);
    assert_terminated(&mut tab1).await;
    assert_terminated(&mut tab2).await;
    assert_unaffected(&server, &mut other, &mut presence_only).await;
}

#[tokio::test]
async fn signing_in_again_as_the_same_user_swaps_the_watchlist_without_going_offline() {
    let server = TestServer::start().await;
    let mut watcher = server.connect().await;
    signed_in(&mut watcher, r#"{"id":"A","watchlist":["B"]}"#).await;
    watcher.recv().await;
    let mut b = server.connect().await;
    signed_in(&mut b, r#"{"id":"B"}"#).await;
    watcher.recv().await;
    // B signs in again with a new watchlist: A hears no offline/online flicker.
    signed_in(&mut b, r#"{"id":"B","watchlist":["A"]}"#).await;
    assert_eq!(watchlist(&b.recv().await), status(&[("online", &["A"])]));
    watcher.expect_silence(QUIET).await;
}

#[tokio::test]
async fn signing_in_authorizes_a_connection_of_an_app_with_authorized_connections() {
    let server = TestServer::start_with(support::authorized_connections_config()).await;
    let mut signed = server.connect().await;
    signed_in(&mut signed, &user("A")).await;
    let mut anonymous = server.connect().await;
    let (code, _) = anonymous.expect_close().await;
    assert_eq!(code, 4009);
    // Past the same deadline, the signed-in connection is still served.
    assert!(signed.roundtrip().await.iter().all(|frame| frame["event"] != "pusher:error"));
}
