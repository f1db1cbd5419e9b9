//! Private and encrypted channels: token checks on subscribe, how refusals look (and that they leave
//! the connection usable), REST delivery to encrypted channels, and duplicate subscriptions.

mod support;

use std::time::Duration;

use pusher_wire::auth::sign_channel;
use serde_json::{Value, json};
use support::{KEY, SECRET, TestServer, WsClient};

const QUIET: Duration = Duration::from_millis(200);

/// Send `pusher:subscribe` with exactly this `data`.
async fn subscribe_raw(client: &mut WsClient, data: Value) {
    client.send(json!({"event": "pusher:subscribe", "data": data})).await;
}

/// The two frames of a refused subscription: `pusher:subscription_error` in the pusher-js 7 shape
/// with status 401, then hosted Pusher's `pusher:error` with a null code. Returns the error message.
async fn expect_auth_refusal(client: &mut WsClient, channel: &str) -> String {
    let refusal = client.expect("pusher:subscription_error").await;
    assert_eq!(refusal["channel"], channel, "{refusal}");
    let data = &refusal["data"];
    assert!(data.is_object(), "subscription_error data is an object: {refusal}");
    assert_eq!(data["type"], "AuthError", "{refusal}");
    assert_eq!(data["status"], 401, "{refusal}");
    assert!(data["error"].as_str().is_some_and(|e| !e.is_empty()), "{refusal}");
    assert_eq!(data.as_object().map(serde_json::Map::len), Some(3), "only type, error and status: {refusal}");
    let error = client.expect("pusher:error").await;
    assert_eq!(error["data"]["code"], Value::Null, "{error}");
    assert!(error.get("channel").is_none(), "Pusher's pusher:error has no channel: {error}");
    error["data"]["message"].as_str().expect("a message").to_owned()
}

/// The connection still answers pings and accepts a valid subscription.
async fn assert_still_usable(client: &mut WsClient, channel: &str) {
    assert_eq!(client.roundtrip().await, Vec::<Value>::new());
    let frame = client.subscribe_signed(channel, None).await;
    assert_eq!(frame["event"], "pusher_internal:subscription_succeeded", "{frame}");
    assert_eq!(frame["channel"], channel);
}

#[tokio::test]
async fn a_valid_token_subscribes() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    let frame = client.subscribe_signed("private-room", None).await;
    assert_eq!(
        frame,
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "private-room", "data": "{}"})
    );
    // Subscribed for real: REST events arrive.
    server.rest().trigger(&["private-room"], "said", "hi").await;
    assert_eq!(client.recv().await, json!({"event": "said", "channel": "private-room", "data": "hi"}));
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_the_connection_stays_usable() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    let auth = format!("{KEY}:{}", "0".repeat(64));
    subscribe_raw(&mut client, json!({"channel": "private-room", "auth": auth})).await;
    let message = expect_auth_refusal(&mut client, "private-room").await;
    let expected = format!("Invalid signature: Expected HMAC SHA256 hex digest of {}:private-room", client.socket_id);
    assert!(message.starts_with(&expected), "{message:?} does not start with {expected:?}");
    // Not subscribed: REST events to the channel do not arrive.
    server.rest().trigger(&["private-room"], "said", "hi").await;
    client.expect_silence(QUIET).await;
    assert_still_usable(&mut client, "private-room").await;
}

#[tokio::test]
async fn a_missing_or_empty_token_is_refused() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    subscribe_raw(&mut client, json!({"channel": "private-a"})).await;
    expect_auth_refusal(&mut client, "private-a").await;
    subscribe_raw(&mut client, json!({"channel": "private-a", "auth": ""})).await;
    expect_auth_refusal(&mut client, "private-a").await;
    assert_still_usable(&mut client, "private-a").await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    let auth = sign_channel("another-key", SECRET, &client.socket_id, "private-a", None);
    subscribe_raw(&mut client, json!({"channel": "private-a", "auth": auth})).await;
    expect_auth_refusal(&mut client, "private-a").await;
    // The right key with another app's secret is a bad signature.
    let auth = sign_channel(KEY, "another-secret", &client.socket_id, "private-a", None);
    subscribe_raw(&mut client, json!({"channel": "private-a", "auth": auth})).await;
    expect_auth_refusal(&mut client, "private-a").await;
    assert_still_usable(&mut client, "private-a").await;
}

#[tokio::test]
async fn a_token_for_another_socket_or_channel_is_refused() {
    let server = TestServer::start().await;
    let mut owner = server.connect().await;
    let mut thief = server.connect().await;
    let stolen = sign_channel(KEY, SECRET, &owner.socket_id, "private-a", None);
    subscribe_raw(&mut thief, json!({"channel": "private-a", "auth": stolen})).await;
    expect_auth_refusal(&mut thief, "private-a").await;
    // Nor does a token for one channel open another.
    let other_channel = sign_channel(KEY, SECRET, &thief.socket_id, "private-b", None);
    subscribe_raw(&mut thief, json!({"channel": "private-a", "auth": other_channel})).await;
    expect_auth_refusal(&mut thief, "private-a").await;
    // The owner can still use it.
    subscribe_raw(&mut owner, json!({"channel": "private-a", "auth": stolen})).await;
    owner.expect("pusher_internal:subscription_succeeded").await;
}

#[tokio::test]
async fn encrypted_channels_authorize_like_private_ones_and_relay_data_byte_for_byte() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    subscribe_raw(&mut client, json!({"channel": "private-encrypted-vault"})).await;
    expect_auth_refusal(&mut client, "private-encrypted-vault").await;
    let frame = client.subscribe_signed("private-encrypted-vault", None).await;
    assert_eq!(
        frame,
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "private-encrypted-vault", "data": "{}"})
    );
    // What an SDK sends for an encrypted channel: nonce and ciphertext, spacing and key order its own.
    let ciphertext = r#"{"nonce" : "4ZGKz5zCj3ILmXjRsBm6T8pMvmEO7r1W",  "ciphertext":"r3Xl/+8Nz2w\u002bZg=="}"#;
    let reply = server.rest().trigger(&["private-encrypted-vault"], "secret", ciphertext).await;
    assert_eq!((reply.status, reply.body), (200, json!({})));
    let event = client.expect("secret").await;
    assert_eq!(event, json!({"event": "secret", "channel": "private-encrypted-vault", "data": ciphertext}));
}

#[tokio::test]
async fn a_trigger_to_several_channels_including_an_encrypted_one_is_refused() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client.subscribe("plain").await;
    client.subscribe_signed("private-encrypted-vault", None).await;
    let reply = server.rest().trigger(&["plain", "private-encrypted-vault"], "e", "{}").await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.body["error"].is_string(), "{}", reply.text);
    let reply = server.rest().trigger(&["private-encrypted-a", "private-encrypted-vault"], "e", "{}").await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    // Nothing was delivered on any of the channels.
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn a_duplicate_subscription_is_an_error_and_changes_nothing() {
    let server = TestServer::start().await;
    let mut client = server.connect().await;
    client.subscribe_signed("private-room", None).await;
    let again = client.subscribe_signed("private-room", None).await;
    assert_eq!(
        again,
        json!({"event": "pusher:error", "data": {"code": null, "message": "Existing subscription to channel private-room"}})
    );
    client.subscribe("lobby").await;
    client.send(json!({"event": "pusher:subscribe", "data": {"channel": "lobby"}})).await;
    assert_eq!(
        client.recv().await,
        json!({"event": "pusher:error", "data": {"code": null, "message": "Existing subscription to channel lobby"}})
    );
    // Still subscribed exactly once to each: one copy of each event.
    server.rest().trigger(&["private-room", "lobby"], "e", "x").await;
    let mut channels: Vec<String> =
        [client.expect("e").await, client.expect("e").await].iter().map(|f| f["channel"].to_string()).collect();
    channels.sort();
    assert_eq!(channels, ["\"lobby\"", "\"private-room\""]);
    client.expect_silence(QUIET).await;
}
