//! Presence channels: the roster in `subscription_succeeded`, `member_added` / `member_removed` once
//! per user however many tabs it has, the member limits, the REST user and count queries, and a
//! thousand connections joining and leaving at once.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use pusher_wire::auth::sign_channel;
use serde_json::{Value, json};
use support::{KEY, SECRET, TestServer, WsClient};
use tokio::task::JoinSet;

const QUIET: Duration = Duration::from_millis(200);

/// `channel_data` for a member.
fn member(user_id: Value, user_info: Option<Value>) -> String {
    match user_info {
        Some(info) => json!({"user_id": user_id, "user_info": info}).to_string(),
        None => json!({"user_id": user_id}).to_string(),
    }
}

/// The JSON held in a frame's string `data`.
fn data_of(frame: &Value) -> Value {
    let text = frame["data"].as_str().unwrap_or_else(|| panic!("data is a JSON string: {frame}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("data is JSON ({e}): {frame}"))
}

/// Join `channel` as `channel_data` and return the presence roster, checking the frame's shape.
async fn join(client: &mut WsClient, channel: &str, channel_data: &str) -> Value {
    let frame = client.subscribe_signed(channel, Some(channel_data)).await;
    assert_eq!(frame["event"], "pusher_internal:subscription_succeeded", "{frame}");
    assert_eq!(frame["channel"], channel);
    let mut data = data_of(&frame);
    // Ids are unique but in no particular order.
    let ids = data["presence"]["ids"].as_array_mut().unwrap_or_else(|| panic!("ids: {frame}"));
    ids.sort_by_key(Value::to_string);
    data
}

/// A roster as `subscription_succeeded` should carry it, ids in sorted order.
fn roster(members: &[(&str, Value)]) -> Value {
    let mut ids: Vec<&str> = members.iter().map(|(id, _)| *id).collect();
    ids.sort_by_key(|id| json!(id).to_string());
    let hash: serde_json::Map<String, Value> =
        members.iter().map(|(id, info)| ((*id).to_owned(), info.clone())).collect();
    json!({"presence": {"ids": ids, "hash": hash, "count": members.len()}})
}

/// Send `pusher:unsubscribe` and wait until the server has handled it.
async fn unsubscribe(client: &mut WsClient, channel: &str) {
    client.send(json!({"event": "pusher:unsubscribe", "data": {"channel": channel}})).await;
    client.roundtrip().await;
}

#[tokio::test]
async fn subscription_succeeded_lists_every_member_including_the_subscriber() {
    let server = TestServer::start().await;
    let mut ann = server.connect().await;
    let roster_1 = join(&mut ann, "presence-room", &member(json!("1"), Some(json!({"name": "Ann"})))).await;
    assert_eq!(roster_1, roster(&[("1", json!({"name": "Ann"}))]));

    let mut bob = server.connect().await;
    let roster_2 = join(&mut bob, "presence-room", &member(json!("2"), Some(json!({"name": "Bob"})))).await;
    assert_eq!(roster_2, roster(&[("1", json!({"name": "Ann"})), ("2", json!({"name": "Bob"}))]));
    let added = ann.expect("pusher_internal:member_added").await;
    assert_eq!(added["channel"], "presence-room");
    assert_eq!(data_of(&added), json!({"user_id": "2", "user_info": {"name": "Bob"}}));
    bob.expect_silence(QUIET).await;

    // A member without user_info is listed with null.
    let mut cid = server.connect().await;
    let roster_3 = join(&mut cid, "presence-room", &member(json!("3"), None)).await;
    assert_eq!(roster_3, roster(&[("1", json!({"name": "Ann"})), ("2", json!({"name": "Bob"})), ("3", Value::Null)]));
    for other in [&mut ann, &mut bob] {
        assert_eq!(data_of(&other.expect("pusher_internal:member_added").await)["user_id"], "3");
    }
}

#[tokio::test]
async fn integer_user_ids_become_strings() {
    let server = TestServer::start().await;
    let mut observer = server.connect().await;
    join(&mut observer, "presence-room", &member(json!("observer"), None)).await;
    let mut laravel = server.connect().await;
    let channel_data = r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#;
    let data = join(&mut laravel, "presence-room", channel_data).await;
    assert_eq!(data, roster(&[("10", json!({"name": "Mr. Channels"})), ("observer", Value::Null)]));
    let added = observer.expect("pusher_internal:member_added").await;
    assert_eq!(data_of(&added), json!({"user_id": "10", "user_info": {"name": "Mr. Channels"}}));
    // The integer and the string are the same member.
    let mut second_tab = server.connect().await;
    let data = join(&mut second_tab, "presence-room", &member(json!("10"), None)).await;
    assert_eq!(data["presence"]["count"], 2);
    observer.expect_silence(QUIET).await;
    let users = server.rest().get("/channels/presence-room/users", &[]).await;
    assert_eq!(users.body["users"].as_array().unwrap().iter().filter(|u| u["id"] == "10").count(), 1);
}

#[tokio::test]
async fn a_second_tab_is_not_a_new_member_and_only_the_last_one_leaving_removes_it() {
    let server = TestServer::start().await;
    let info = json!({"name": "Ann"});
    let mut observer = server.connect().await;
    join(&mut observer, "presence-room", &member(json!("observer"), None)).await;

    let mut tab1 = server.connect().await;
    join(&mut tab1, "presence-room", &member(json!("ann"), Some(info.clone()))).await;
    assert_eq!(data_of(&observer.expect("pusher_internal:member_added").await)["user_id"], "ann");

    let mut tab2 = server.connect().await;
    let data = join(&mut tab2, "presence-room", &member(json!("ann"), Some(info.clone()))).await;
    assert_eq!(data, roster(&[("ann", info.clone()), ("observer", Value::Null)]), "the full roster");
    observer.expect_silence(QUIET).await;
    tab1.expect_silence(QUIET).await;

    let mut tab3 = server.connect().await;
    join(&mut tab3, "presence-room", &member(json!("ann"), Some(info.clone()))).await;

    // Leaving while other tabs remain: nothing is sent.
    unsubscribe(&mut tab1, "presence-room").await;
    tab2.close().await;
    observer.expect_silence(QUIET).await;
    let count = server.rest().get("/channels/presence-room", &[("info", "user_count")]).await;
    assert_eq!(count.body, json!({"occupied": true, "user_count": 2}));

    // The last tab leaves.
    unsubscribe(&mut tab3, "presence-room").await;
    let removed = observer.expect("pusher_internal:member_removed").await;
    assert_eq!(
        removed,
        json!({"event": "pusher_internal:member_removed", "channel": "presence-room", "data": "{\"user_id\":\"ann\"}"})
    );
    observer.expect_silence(QUIET).await;
}

#[tokio::test]
async fn member_removed_is_sent_when_the_last_connection_disconnects() {
    let server = TestServer::start().await;
    let mut observer = server.connect().await;
    join(&mut observer, "presence-room", &member(json!("observer"), None)).await;
    let mut bob = server.connect().await;
    join(&mut bob, "presence-room", &member(json!("bob"), None)).await;
    observer.expect("pusher_internal:member_added").await;
    bob.close().await;
    let removed = observer.expect("pusher_internal:member_removed").await;
    assert_eq!(data_of(&removed), json!({"user_id": "bob"}));
    // Rejoining later is a new member again.
    let mut bob = server.connect().await;
    join(&mut bob, "presence-room", &member(json!("bob"), None)).await;
    assert_eq!(data_of(&observer.expect("pusher_internal:member_added").await)["user_id"], "bob");
}

#[tokio::test]
async fn the_101st_user_is_refused_but_another_tab_of_a_member_is_accepted() {
    let server = TestServer::start().await;
    let mut members = Vec::new();
    for i in 0..100 {
        let mut client = server.connect().await;
        let data = join(&mut client, "presence-full", &member(json!(format!("user-{i}")), None)).await;
        assert_eq!(data["presence"]["count"], i + 1);
        members.push(client);
    }
    let mut extra = server.connect().await;
    let refusal = extra.subscribe_signed("presence-full", Some(&member(json!("user-100"), None))).await;
    assert_eq!(refusal["event"], "pusher:subscription_error", "{refusal}");
    assert_eq!(refusal["channel"], "presence-full");
    assert_eq!(refusal["data"]["type"], "LimitReached", "{refusal}");
    assert_eq!(refusal["data"]["status"], 4100, "{refusal}");
    assert!(refusal["data"]["error"].is_string(), "{refusal}");
    assert_eq!(extra.roundtrip().await, Vec::<Value>::new(), "the connection stays open");

    let mut tab = server.connect().await;
    let data = join(&mut tab, "presence-full", &member(json!("user-7"), None)).await;
    assert_eq!(data["presence"]["count"], 100);
    let users = server.rest().get("/channels/presence-full", &[("info", "user_count,subscription_count")]).await;
    assert_eq!(users.body, json!({"occupied": true, "user_count": 100, "subscription_count": 101}));

    // Once someone leaves there is room again.
    unsubscribe(&mut members[0], "presence-full").await;
    let data = join(&mut extra, "presence-full", &member(json!("user-100"), None)).await;
    assert_eq!(data["presence"]["count"], 100);
}

#[tokio::test]
async fn oversized_user_info_and_user_ids_are_refused_with_400() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    let expect_400 = |frame: Value| {
        assert_eq!(frame["event"], "pusher:subscription_error", "{frame}");
        assert_eq!(frame["channel"], "presence-room", "{frame}");
        assert_eq!(frame["data"]["status"], 400, "{frame}");
        assert!(frame["data"]["type"].is_string() && frame["data"]["error"].is_string(), "{frame}");
    };
    // user_info of 1025 bytes of JSON text.
    let big = member(json!("1"), Some(json!("i".repeat(1023))));
    expect_400(client.subscribe_signed("presence-room", Some(&big)).await);
    let long_id = member(json!("u".repeat(129)), None);
    expect_400(client.subscribe_signed("presence-room", Some(&long_id)).await);
    assert_eq!(client.roundtrip().await, Vec::<Value>::new());

    // Exactly at the limits is fine.
    let mut at_limit = server.connect().await;
    let info = json!("i".repeat(1022));
    let data = join(&mut at_limit, "presence-room", &member(json!("u".repeat(128)), Some(info.clone()))).await;
    assert_eq!(data["presence"]["hash"]["u".repeat(128)], info);
}

#[tokio::test]
async fn presence_without_channel_data_needs_a_signed_in_user() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    // A token over `socket_id:channel` alone, as an auth endpoint returns for signed-in users.
    let auth = sign_channel(KEY, SECRET, &client.socket_id, "presence-room", None);
    client.send(json!({"event": "pusher:subscribe", "data": {"channel": "presence-room", "auth": auth}})).await;
    let refusal = client.expect("pusher:subscription_error").await;
    assert_eq!(refusal["channel"], "presence-room");
    assert!(refusal["data"]["status"].is_u64() && refusal["data"]["error"].is_string(), "{refusal}");
    // channel_data that is not what was signed is refused as a bad signature.
    let signed = member(json!("1"), None);
    let auth = sign_channel(KEY, SECRET, &client.socket_id, "presence-room", Some(&signed));
    let forged = member(json!("2"), None);
    let data = json!({"channel": "presence-room", "auth": auth, "channel_data": forged});
    client.send(json!({"event": "pusher:subscribe", "data": data})).await;
    let refusal = client.expect("pusher:subscription_error").await;
    assert_eq!(refusal["data"]["status"], 401, "{refusal}");
    client.expect("pusher:error").await;
    assert_eq!(server.rest().get("/channels/presence-room/users", &[]).await.body, json!({"users": []}));
}

#[tokio::test]
async fn the_rest_api_reports_members_and_counts() {
    let server = TestServer::start().await;
    let rest = server.rest();
    let mut clients = Vec::new();
    for (channel, user) in [("presence-x", "1"), ("presence-x", "2"), ("presence-x", "2"), ("presence-y", "3")] {
        let mut client = server.connect().await;
        join(&mut client, channel, &member(json!(user), Some(json!({"secret": "not listed"})))).await;
        clients.push(client);
    }
    let mut public = server.connect().await;
    public.subscribe("public-z").await;

    let users = rest.get("/channels/presence-x/users", &[]).await;
    assert_eq!(users.status, 200, "{}", users.text);
    let mut listed = users.body["users"].as_array().unwrap().clone();
    listed.sort_by_key(Value::to_string);
    assert_eq!(listed, [json!({"id": "1"}), json!({"id": "2"})]);

    let info = rest.get("/channels/presence-x", &[("info", "user_count")]).await;
    assert_eq!((info.status, info.body), (200, json!({"occupied": true, "user_count": 2})));
    let empty = rest.get("/channels/presence-empty", &[("info", "user_count")]).await;
    assert_eq!(empty.body, json!({"occupied": false, "user_count": 0}));
    assert_eq!(rest.get("/channels/presence-empty/users", &[]).await.body, json!({"users": []}));

    let list = rest.get("/channels", &[("filter_by_prefix", "presence-"), ("info", "user_count")]).await;
    assert_eq!(
        (list.status, list.body),
        (200, json!({"channels": {"presence-x": {"user_count": 2}, "presence-y": {"user_count": 1}}}))
    );

    for (path, params) in [
        ("/channels/public-z", vec![("info", "user_count")]),
        ("/channels", vec![("info", "user_count")]),
        ("/channels", vec![("filter_by_prefix", "public-"), ("info", "user_count")]),
        ("/channels/public-z/users", vec![]),
    ] {
        let reply = rest.get(path, &params).await;
        assert_eq!(reply.status, 400, "{path} {params:?}: {}", reply.text);
        assert!(reply.body["error"].is_string(), "{path}: {}", reply.text);
    }
}

/// Connect `n` clients, at most 50 handshakes at a time (connecting is not what is tested).
async fn connect_many(server: &TestServer, n: usize) -> Vec<WsClient> {
    let addr = server.addr;
    let mut clients = Vec::with_capacity(n);
    let mut pending = JoinSet::new();
    for _ in 0..n {
        if pending.len() == 50 {
            clients.push(pending.join_next().await.expect("a pending connect").expect("connect task"));
        }
        pending.spawn(async move { WsClient::connect(addr, KEY).await });
    }
    while let Some(client) = pending.join_next().await {
        clients.push(client.expect("connect task"));
    }
    clients
}

/// A tab of the crowd test: its connection and user.
struct Tab {
    client: WsClient,
    user: String,
}

/// Subscribe every tab at once; each must be accepted with a roster that includes its user.
async fn join_all(tabs: Vec<Tab>, channel: &'static str) -> Vec<Tab> {
    let mut tasks = JoinSet::new();
    for mut tab in tabs {
        tasks.spawn(async move {
            let data = join(&mut tab.client, channel, &member(json!(tab.user), None)).await;
            assert!(data["presence"]["hash"].get(&tab.user).is_some(), "{} not in {data}", tab.user);
            tab
        });
    }
    let mut joined = Vec::new();
    while let Some(tab) = tasks.join_next().await {
        joined.push(tab.expect("join task"));
    }
    joined
}

/// Make every tab leave at once, alternately by unsubscribing and by disconnecting, and wait until
/// the server has handled each.
async fn leave_all(tabs: Vec<Tab>, channel: &'static str) {
    let mut tasks = JoinSet::new();
    for (i, mut tab) in tabs.into_iter().enumerate() {
        tasks.spawn(async move {
            if i % 2 == 0 {
                unsubscribe(&mut tab.client, channel).await;
            } else {
                tab.client.close().await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("leave task");
    }
}

/// The member events the observer got since the last marker: (event, user id) counts.
async fn member_events(observer: &mut WsClient, server: &TestServer) -> BTreeMap<(String, String), usize> {
    // Everything the joins and leaves queued for the observer precedes this marker in its queue.
    server.rest().trigger(&["observer-marker"], "marker", "{}").await;
    let mut events = BTreeMap::new();
    for frame in observer.recv_until("marker").await {
        if frame["event"] == "marker" {
            continue;
        }
        let event = frame["event"].as_str().expect("event").trim_start_matches("pusher_internal:").to_owned();
        let user = data_of(&frame)["user_id"].as_str().expect("user_id").to_owned();
        *events.entry((event, user)).or_default() += 1;
    }
    events
}

fn expected_events(event: &str, users: &[String]) -> BTreeMap<(String, String), usize> {
    users.iter().map(|user| ((event.to_owned(), user.clone()), 1)).collect()
}

/// The REST view of the channel: (sorted user ids, user_count, subscription_count).
async fn rest_view(server: &TestServer, channel: &str) -> (Vec<String>, u64, u64) {
    let rest = server.rest();
    let users = rest.get(&format!("/channels/{channel}/users"), &[]).await;
    let mut ids: Vec<String> = users.body["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    let info = rest.get(&format!("/channels/{channel}"), &[("info", "user_count,subscription_count")]).await;
    (
        ids,
        info.body["user_count"].as_u64().expect("user_count"),
        info.body["subscription_count"].as_u64().expect("count"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tabs_of_ten_users_join_and_leave_concurrently() {
    const CHANNEL: &str = "presence-crowd";
    let server = TestServer::start().await;
    let user = |i: usize| format!("u{}", i % 10);
    let all_users: Vec<String> = (0..10).map(user).collect();

    let mut observer = server.connect().await;
    join(&mut observer, CHANNEL, &member(json!("observer"), None)).await;
    observer.subscribe("observer-marker").await;

    // 1,000 tabs, 100 per user, all joining at once.
    let clients = connect_many(&server, 1000).await;
    let tabs: Vec<Tab> = clients.into_iter().enumerate().map(|(i, client)| Tab { client, user: user(i) }).collect();
    let tabs = join_all(tabs, CHANNEL).await;
    assert_eq!(member_events(&mut observer, &server).await, expected_events("member_added", &all_users));
    let mut everyone: Vec<String> = all_users.iter().cloned().chain(["observer".to_owned()]).collect();
    everyone.sort();
    assert_eq!(rest_view(&server, CHANNEL).await, (everyone, 11, 1001));

    // Every tab of u0-u4 leaves, and half of the tabs of u5-u9: 750 leave at once.
    let (gone, staying): (Vec<String>, Vec<String>) = all_users.iter().cloned().partition(|u| u.as_str() < "u5");
    let mut seen_of_user = BTreeMap::<String, usize>::new();
    let (leaving, remaining): (Vec<Tab>, Vec<Tab>) = tabs.into_iter().partition(|tab| {
        let seen = seen_of_user.entry(tab.user.clone()).or_default();
        *seen += 1;
        gone.contains(&tab.user) || *seen <= 50
    });
    assert_eq!((leaving.len(), remaining.len()), (750, 250));
    leave_all(leaving, CHANNEL).await;
    assert_eq!(member_events(&mut observer, &server).await, expected_events("member_removed", &gone));
    let mut present: Vec<String> = staying.iter().cloned().chain(["observer".to_owned()]).collect();
    present.sort();
    assert_eq!(rest_view(&server, CHANNEL).await, (present, 6, 251));

    // At the same time: 100 new tabs of u0 join while the remaining 250 tabs of u5-u9 leave.
    let newcomers: Vec<Tab> =
        connect_many(&server, 100).await.into_iter().map(|client| Tab { client, user: "u0".into() }).collect();
    let (joined, ()) = tokio::join!(join_all(newcomers, CHANNEL), leave_all(remaining, CHANNEL));
    let mut expected = expected_events("member_removed", &staying);
    expected.insert(("member_added".into(), "u0".into()), 1);
    assert_eq!(member_events(&mut observer, &server).await, expected);
    assert_eq!(rest_view(&server, CHANNEL).await, (vec!["observer".to_owned(), "u0".to_owned()], 2, 101));

    // Finally everyone but the observer leaves.
    leave_all(joined, CHANNEL).await;
    assert_eq!(member_events(&mut observer, &server).await, expected_events("member_removed", &["u0".to_owned()]));
    assert_eq!(rest_view(&server, CHANNEL).await, (vec!["observer".to_owned()], 1, 1));
    observer.expect_silence(QUIET).await;
}
