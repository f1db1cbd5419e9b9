//! TLS on the listener: with `--tls-cert`/`--tls-key` the one port serves `wss://` and `https://`
//! only; plain HTTP, garbage and stalled handshakes fail within the handshake timeout and cost other
//! clients nothing; SIGHUP reads a renewed certificate without a restart, and keeps the running one
//! when the new files are bad.

// The helpers below run outside #[test] functions; a failed unwrap there is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use support::certs::{TestCerts, connector_trusting};
use support::process::HeraldProcess;
use support::{APP_ID, KEY, SECRET, TestServer, now};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

async fn tls_stream(addr: SocketAddr, connector: &TlsConnector) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

/// An https request, signed when `signed`; (status, body).
async fn https(addr: SocketAddr, connector: &TlsConnector, method: &str, path: &str, body: &str) -> (u16, String) {
    let stream = tls_stream(addr, connector).await.expect("TLS handshake");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Trigger `event` on `channel` over https, signed like the SDKs.
async fn trigger(addr: SocketAddr, connector: &TlsConnector, channel: &str, event: &str) -> u16 {
    let path = format!("/apps/{APP_ID}/events");
    let body = json!({"name": event, "channels": [channel], "data": "{}"}).to_string();
    let query = pusher_wire::rest::auth::signed_query(KEY, SECRET, "POST", &path, &[], body.as_bytes(), now());
    https(addr, connector, "POST", &format!("{path}?{query}"), &body).await.0
}

/// A wss client that has read `connection_established`.
async fn wss(addr: SocketAddr, connector: &TlsConnector) -> WebSocketStream<TlsStream<TcpStream>> {
    let stream = tls_stream(addr, connector).await.expect("TLS handshake");
    let url = format!("wss://localhost:{}/app/{KEY}?protocol=7&client=js&version=8.4.0", addr.port());
    let (mut socket, _) = tokio_tungstenite::client_async(url, stream).await.expect("WebSocket over TLS");
    assert_eq!(next(&mut socket).await["event"], "pusher:connection_established");
    socket
}

async fn next(socket: &mut WebSocketStream<TlsStream<TcpStream>>) -> Value {
    loop {
        let message =
            tokio::time::timeout(support::WAIT, socket.next()).await.expect("a frame in time").unwrap().unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

async fn subscribe(socket: &mut WebSocketStream<TlsStream<TcpStream>>, channel: &str) {
    socket
        .send(Message::text(json!({"event": "pusher:subscribe", "data": {"channel": channel}}).to_string()))
        .await
        .unwrap();
    assert_eq!(next(socket).await["event"], "pusher_internal:subscription_succeeded");
}

/// Whether the server closes a raw connection (after it sent `bytes`) within `wait`, without ever
/// answering in plain HTTP.
async fn closed_without_an_answer(addr: SocketAddr, bytes: &[u8], wait: Duration) -> bool {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    let read_all = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(wait, read_all).await.is_ok() && !seen.starts_with(b"HTTP/")
}

async fn server(certs: &TestCerts, handshake_timeout: Duration) -> TestServer {
    let mut config = support::config();
    config.tls = Some(certs.files());
    config.tls_handshake_timeout = handshake_timeout;
    TestServer::start_with(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_and_https_carry_the_whole_protocol() {
    let certs = TestCerts::new("wss");
    let server = server(&certs, Duration::from_secs(10)).await;
    let connector = certs.connector();
    let mut client = wss(server.addr, &connector).await;
    subscribe(&mut client, "news").await;
    assert_eq!(trigger(server.addr, &connector, "news", "headline").await, 200);
    assert_eq!(next(&mut client).await["event"], "headline");
    assert_eq!(https(server.addr, &connector, "GET", "/up", "").await, (200, r#"{"ok":true}"#.to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_garbage_and_stalled_handshakes_fail_in_time_and_cost_others_nothing() {
    let certs = TestCerts::new("refusals");
    let timeout = Duration::from_millis(500);
    let server = server(&certs, timeout).await;
    let connector = certs.connector();
    let mut client = wss(server.addr, &connector).await;
    subscribe(&mut client, "news").await;
    let wait = Duration::from_secs(5);
    let plain = b"GET /app/test-key?protocol=7 HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\r\n";
    assert!(closed_without_an_answer(server.addr, plain, wait).await, "plain ws:// is refused");
    assert!(closed_without_an_answer(server.addr, b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n", wait).await, "plain http://");
    assert!(closed_without_an_answer(server.addr, &[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3], wait).await, "garbage");
    // Silent clients, many at once: each is dropped after the handshake timeout.
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..50 {
        stalled.push(tokio::spawn(closed_without_an_answer(server.addr, b"", wait)));
    }
    // Meanwhile the established client is served as usual.
    assert_eq!(trigger(server.addr, &connector, "news", "during").await, 200);
    assert_eq!(next(&mut client).await["event"], "during");
    for stalled in stalled {
        assert!(stalled.await.unwrap(), "a silent client is dropped");
    }
    assert!(started.elapsed() >= timeout, "not before the timeout");
    let (_, metrics) = https(server.addr, &connector, "GET", "/metrics", "").await;
    assert!(metrics.contains(r#"herald_tls_handshakes_refused_total{reason="timeout"} 50"#), "{metrics}");
    assert!(metrics.contains(r#"herald_tls_handshakes_refused_total{reason="failed"} 3"#), "{metrics}");
}

#[test]
fn sighup_reads_a_renewed_certificate_and_keeps_the_running_one_when_the_new_is_bad() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let certs = TestCerts::new("reload");
    let cert = certs.cert.to_str().unwrap().to_owned();
    let key = certs.key.to_str().unwrap().to_owned();
    let server = HeraldProcess::start(&["--tls-cert", &cert, "--tls-key", &key]);
    let old_ca = certs.dir.join("old-ca.pem");
    std::fs::copy(&certs.ca, &old_ca).unwrap();
    let trusts_old = connector_trusting(&old_ca);
    runtime.block_on(async {
        assert!(tls_stream(server.addr, &trusts_old).await.is_ok());
    });
    certs.renew("renewed");
    server.signal("-HUP");
    server.wait_for_log("TLS certificate and key read again");
    let trusts_new = certs.connector();
    runtime.block_on(async {
        assert!(tls_stream(server.addr, &trusts_new).await.is_ok(), "the renewed certificate is served");
        assert!(tls_stream(server.addr, &trusts_old).await.is_err(), "the old one is not");
    });
    std::fs::write(&certs.cert, "not a certificate").unwrap();
    server.signal("-HUP");
    server.wait_for_log("keeping the running one");
    runtime.block_on(async {
        let mut client = wss(server.addr, &trusts_new).await;
        subscribe(&mut client, "news").await;
    });
}

#[test]
fn tls_settings_come_in_pairs_and_bad_files_stop_the_start() {
    let apps = "[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\n";
    let half = herald::Config::from_toml(&format!("tls_cert_file = \"/nonexistent.pem\"\n{apps}"));
    assert!(half.unwrap_err().to_string().contains("both tls_cert_file and tls_key_file"));
    let certs = TestCerts::new("config");
    let toml = format!("tls_cert_file = {:?}\ntls_key_file = {:?}\n{apps}", certs.cert, certs.key);
    let config = herald::Config::from_toml(&toml).unwrap();
    assert!(config.validate().is_ok());
    std::fs::write(&certs.key, "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n").unwrap();
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("TLS"), "{error}");
}
