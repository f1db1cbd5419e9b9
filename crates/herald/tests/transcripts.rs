//! Golden transcripts: every `fixtures/transcripts/*.json` is a conversation (client frames, REST
//! calls, and the exact frames the server must answer with) replayed against a fresh server. A
//! change in behaviour fails here until someone updates the transcript on purpose.
//!
//! Steps (one key names the step, the others are its arguments):
//! - `{"connect": "a"}`: client `a` connects with the app key and reads `connection_established`;
//! - `{"open": "x", "path": "/app/…"}`: client `x` opens a WebSocket and reads nothing;
//! - `{"send": "a", "frame": {…}}`: `a` sends a frame;
//! - `{"expect": "a", "frame": {…}}`: the next frame `a` receives is exactly this one;
//! - `{"silence": "a", "ms": 200}`: `a` receives nothing for that long;
//! - `{"closed": "x", "code": 4001}`: the server closes `x`'s connection with this code;
//! - `{"close": "a"}`: `a` closes its connection and waits until the server has let go of it;
//! - `{"rest": "POST /events", "body": {…}, "status": 200, "response": {…}}`: a signed REST call.
//!
//! Values are compared as JSON; a `data` that is a JSON string is compared as the JSON inside it,
//! and the presence `ids` lists as sets. Placeholders: `"{{a}}"` inside a string is `a`'s socket id;
//! `{"$auth": {"client": "a", "channel": "…", "channel_data": "…"}}` is the channel token for `a`;
//! `{"$user_auth": {"client": "a", "user_data": "…"}}` is the sign-in token.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use herald::Config;
use serde_json::{Value, json};
use support::{KEY, SECRET, TestServer, WsClient};

#[tokio::test]
async fn every_transcript_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/transcripts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/transcripts exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable transcript");
        let transcript: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        replay(&file, &transcript).await;
    }
}

async fn replay(file: &Path, transcript: &Value) {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?");
    let server = TestServer::start_with(config(&transcript["config"])).await;
    let mut clients: HashMap<String, WsClient> = HashMap::new();
    let steps = transcript["steps"].as_array().unwrap_or_else(|| panic!("{name}: no steps"));
    for (i, step) in steps.iter().enumerate() {
        let at = format!("{name}, step {}: {step}", i + 1);
        let client_name = |key: &str| step[key].as_str().map(str::to_owned);
        if let Some(client) = client_name("connect") {
            clients.insert(client, server.connect().await);
        } else if let Some(client) = client_name("open") {
            let path = step["path"].as_str().unwrap_or_else(|| panic!("{at}: open needs a path"));
            clients.insert(client, server.raw(path).await);
        } else if let Some(client) = client_name("send") {
            let frame = resolve(&step["frame"], &clients);
            clients.get_mut(&client).unwrap_or_else(|| panic!("{at}: no client")).send(frame).await;
        } else if let Some(client) = client_name("expect") {
            let expected = resolve(&step["frame"], &clients);
            let got = clients.get_mut(&client).unwrap_or_else(|| panic!("{at}: no client")).recv().await;
            assert_eq!(normalize(&got), normalize(&expected), "{at}\n  got:      {got}\n  expected: {expected}");
        } else if let Some(client) = client_name("silence") {
            let ms = step["ms"].as_u64().unwrap_or(200);
            clients
                .get_mut(&client)
                .unwrap_or_else(|| panic!("{at}: no client"))
                .expect_silence(Duration::from_millis(ms))
                .await;
        } else if let Some(client) = client_name("closed") {
            let (code, frames) =
                clients.get_mut(&client).unwrap_or_else(|| panic!("{at}: no client")).expect_close().await;
            assert!(frames.is_empty(), "{at}: frames before the close were not expected: {frames:?}");
            assert_eq!(Some(u64::from(code)), step["code"].as_u64(), "{at}");
        } else if let Some(client) = client_name("close") {
            clients.remove(&client).unwrap_or_else(|| panic!("{at}: no client")).close().await;
        } else if let Some(call) = step["rest"].as_str() {
            let (method, path) = call.split_once(' ').unwrap_or_else(|| panic!("{at}: rest is \"METHOD /path\""));
            let rest = server.rest();
            let reply = match method {
                "POST" => rest.post(path, &resolve(&step["body"], &clients)).await,
                _ => {
                    let (path, query) = path.split_once('?').unwrap_or((path, ""));
                    let params: Vec<(&str, &str)> = query.split('&').filter_map(|kv| kv.split_once('=')).collect();
                    rest.get(path, &params).await
                }
            };
            assert_eq!(Some(u64::from(reply.status)), step["status"].as_u64(), "{at}: {}", reply.text);
            if !step["response"].is_null() {
                assert_eq!(normalize(&reply.body), normalize(&step["response"]), "{at}");
            }
        } else {
            panic!("{at}: unknown step");
        }
    }
    server.stop().await;
}

fn config(settings: &Value) -> Config {
    let mut config = support::config();
    let app = &mut config.apps[0];
    if let Some(on) = settings["subscription_count"].as_bool() {
        app.subscription_count = on;
    }
    if let Some(on) = settings["client_events"].as_bool() {
        app.client_events = on;
    }
    config
}

/// Replace placeholders with values known only at run time.
fn resolve(value: &Value, clients: &HashMap<String, WsClient>) -> Value {
    let socket =
        |name: &str| clients.get(name).map(|c| c.socket_id.clone()).unwrap_or_else(|| panic!("no client {name}"));
    match value {
        Value::String(text) => {
            let mut text = text.clone();
            for (name, client) in clients {
                text = text.replace(&format!("{{{{{name}}}}}"), &client.socket_id);
            }
            Value::String(text)
        }
        Value::Object(map) if map.contains_key("$auth") => {
            let spec = &map["$auth"];
            let client = spec["client"].as_str().expect("$auth.client");
            let channel = spec["channel"].as_str().expect("$auth.channel");
            json!(pusher_wire::auth::sign_channel(KEY, SECRET, &socket(client), channel, spec["channel_data"].as_str()))
        }
        Value::Object(map) if map.contains_key("$user_auth") => {
            let spec = &map["$user_auth"];
            let client = spec["client"].as_str().expect("$user_auth.client");
            let user_data = spec["user_data"].as_str().expect("$user_auth.user_data");
            json!(pusher_wire::auth::sign_user(KEY, SECRET, &socket(client), user_data))
        }
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), resolve(v, clients))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, clients)).collect()),
        other => other.clone(),
    }
}

/// Decode string `data` holding JSON, and sort the lists whose order the protocol leaves open.
fn normalize(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("data", Value::String(text)) => serde_json::from_str(text).unwrap_or_else(|_| v.clone()),
                        _ => v.clone(),
                    };
                    let mut v = normalize(&v);
                    if let ("ids" | "user_ids" | "users", Value::Array(items)) = (k.as_str(), &mut v) {
                        items.sort_by_key(|item| item.to_string());
                    }
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}
