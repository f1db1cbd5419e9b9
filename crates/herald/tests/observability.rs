//! What operators watch: JSON log lines, one access line per REST request (never a secret or a
//! signature), `/metrics` on a listener of its own, and `/up` answering 503 while shutting down.
//! The soft open-file limit is raised to the hard one at start.

// The helpers below run outside #[test] functions; a failed unwrap there is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::process::HeraldProcess;
use support::{RestClient, SECRET, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rest_of(server: &HeraldProcess) -> RestClient {
    RestClient { addr: server.addr, key: support::KEY.into(), secret: SECRET.into(), app_id: support::APP_ID.into() }
}

#[test]
fn json_logs_carry_one_access_line_per_rest_request_without_secrets() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = HeraldProcess::start(&["--log-format", "json"]);
    runtime.block_on(async {
        assert_eq!(rest_of(&server).trigger(&["news"], "e", "{}").await.status, 200);
        assert_eq!(rest_of(&server).get("/channels/news", &[]).await.status, 200);
    });
    server.wait_for_log(r#""path":"/apps/1/channels/news""#);
    let log = server.log();
    let access: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("every line is JSON"))
        .filter(|line| line["target"] == "herald::access")
        .collect();
    assert_eq!(access.len(), 2, "{log}");
    let trigger = &access[0]["fields"];
    assert_eq!(trigger["method"], "POST");
    assert_eq!(trigger["path"], "/apps/1/events");
    assert_eq!(trigger["status"], 200);
    assert_eq!(trigger["app"], "1");
    assert!(trigger["duration_us"].is_u64());
    assert!(!log.contains("auth_signature") && !log.contains(SECRET), "no signature or secret in the logs");
}

#[test]
fn metrics_can_live_on_their_own_address() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = HeraldProcess::start(&["--metrics-addr", "127.0.0.1:0"]);
    server.wait_for_log("metrics on http://");
    let log = server.log();
    let address = log.split("metrics on http://").nth(1).unwrap().split('/').next().unwrap().to_owned();
    runtime.block_on(async {
        let metrics = RestClient { addr: address.parse().unwrap(), ..rest_of(&server) };
        let reply = metrics.send("GET", "/metrics", String::new()).await;
        assert_eq!(reply.status, 200);
        assert!(reply.text.contains("herald_connections"), "{}", reply.text);
        assert_eq!(metrics.send("GET", "/up", String::new()).await.status, 404, "only /metrics there");
        assert_eq!(rest_of(&server).send("GET", "/metrics", String::new()).await.status, 404, "not on the public port");
    });
}

#[tokio::test]
async fn up_answers_503_once_shutting_down() {
    let server = TestServer::start().await;
    let mut probe = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // A request under way when the shutdown starts is still answered, with 503.
    probe.write_all(b"GET /up HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    probe.write_all(b"\r\n").await.unwrap();
    let mut answer = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), probe.read_to_string(&mut answer)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#""shutting_down":true"#), "{answer}");
    stopping.await.unwrap();
}

/// The soft and hard "Max open files" of process `pid`.
fn open_file_limits(pid: &str) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|line| line.starts_with("Max open files")).unwrap();
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|word| word.parse().ok()).collect();
    (numbers[0], numbers[1])
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let (_, hard) = open_file_limits("self");
    assert!(hard > 256, "this test needs a hard open-file limit above 256 (it is {hard})");
    let server = HeraldProcess::start_with_soft_file_limit(256, &[]);
    let (soft, hard_there) = open_file_limits(&server.pid().to_string());
    assert_eq!(hard_there, hard, "the shell kept the hard limit");
    assert_eq!(soft, hard, "Herald raised its soft limit from 256 to the hard one");
}
