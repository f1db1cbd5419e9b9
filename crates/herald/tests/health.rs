//! `herald health`, the check container images and service managers run: exit 0 when `/up` answers
//! 200, otherwise 1 with the reason in plain words (nothing listening, another status, no answer).

// The helpers below run outside #[test] functions; a failed unwrap there is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::TestServer;
use support::certs::TestCerts;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run `herald health` with `args` and only the `HERALD_*` variables in `env`.
async fn health(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    command.arg("health").args(args);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("HERALD_")) {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let output = tokio::time::timeout(Duration::from_secs(20), command.output()).await.unwrap().unwrap();
    Outcome {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn a_serving_herald_is_healthy() {
    let server = TestServer::start().await;
    let url = format!("http://{}/up", server.addr);
    let outcome = health(&["--url", &url], &[]).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(outcome.stdout.trim(), format!("{url} answered 200 OK"));
    server.stop().await;
}

#[tokio::test]
async fn the_address_comes_from_the_same_environment_as_serve() {
    // As in the container image: HERALD_PORT and HERALD_TLS_CERT set for `serve` point `health`
    // at the same port over https (the certificate names localhost, not the address asked).
    let certs = TestCerts::new("health");
    let mut config = support::config();
    config.tls = Some(certs.files());
    let server = TestServer::start_with(config).await;
    let port = server.addr.port().to_string();
    let cert = certs.cert.to_str().unwrap();
    let env = [("HERALD_HOST", "127.0.0.1"), ("HERALD_PORT", port.as_str()), ("HERALD_TLS_CERT", cert)];
    let outcome = health(&[], &env).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(outcome.stdout.trim(), format!("https://127.0.0.1:{port}/up answered 200 OK"));
    server.stop().await;
}

#[tokio::test]
async fn asking_a_tls_port_over_http_suggests_https() {
    let certs = TestCerts::new("health-http");
    let mut config = support::config();
    config.tls = Some(certs.files());
    let server = TestServer::start_with(config).await;
    let outcome = health(&["--url", &format!("http://{}/up", server.addr)], &[]).await;
    assert_eq!(outcome.code, 1);
    let hint = format!("if this port serves TLS, ask https://{}/up", server.addr);
    assert!(outcome.stderr.contains(&hint), "{}", outcome.stderr);
    server.stop().await;
}

#[tokio::test]
async fn nothing_listening_is_unhealthy_in_plain_words() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let outcome = health(&["--url", &format!("http://127.0.0.1:{port}/up")], &[]).await;
    assert_eq!(outcome.code, 1);
    assert_eq!(
        outcome.stderr.trim(),
        format!("error: http://127.0.0.1:{port}/up did not answer: nothing is listening on 127.0.0.1 port {port}")
    );
    assert!(outcome.stdout.is_empty(), "{}", outcome.stdout);
}

#[tokio::test]
async fn a_server_shutting_down_is_unhealthy() {
    // What /up answers once Herald is stopping (tests/observability.rs), from a stand-in server.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/up", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0; 1024];
        let _ = socket.read(&mut request).await;
        let body = r#"{"ok":false,"shutting_down":true}"#;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(answer.as_bytes()).await.unwrap();
    });
    let outcome = health(&["--url", &url], &[]).await;
    assert_eq!(outcome.code, 1);
    assert_eq!(
        outcome.stderr.trim(),
        format!(r#"error: {url} answered 503 Service Unavailable: {{"ok":false,"shutting_down":true}}"#)
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_unhealthy_after_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/up", listener.local_addr().unwrap());
    // Accepted and held open, never answered.
    let held = tokio::spawn(async move { listener.accept().await.unwrap() });
    let started = Instant::now();
    let outcome = health(&["--url", &url, "--timeout", "1"], &[]).await;
    assert_eq!(outcome.code, 1);
    assert_eq!(outcome.stderr.trim(), format!("error: {url} did not answer within 1 s"));
    assert!(started.elapsed() >= Duration::from_secs(1));
    drop(held);
}
