//! Webhooks end to end: a real HTTP receiver on 127.0.0.1 gets signed `application/json` POSTs for
//! occupancy, presence, client events and cache misses; removals wait for the delay and vanish when
//! the client comes back; failed deliveries are retried.

// The receiver's helpers run outside #[test] functions; a failed unwrap there is a test failure.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use herald::WebhookTarget;
use pusher_wire::webhook::WebhookKind;
use serde_json::{Value, json};
use support::webhooks::Receiver;
use support::{KEY, SECRET, TestServer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A server whose app posts webhooks to `receiver`, removals delayed by 300 ms.
async fn server(
    receiver: &Receiver,
    events: Option<Vec<WebhookKind>>,
    tweak: impl FnOnce(&mut herald::Config),
) -> TestServer {
    let mut config = support::config();
    config.webhook_delay = Duration::from_millis(300);
    config.apps[0].webhooks.push(WebhookTarget { url: receiver.url.clone(), events });
    tweak(&mut config);
    TestServer::start_with(config).await
}

fn pair(name: &str, channel: &str) -> (String, String) {
    (name.to_owned(), channel.to_owned())
}

#[tokio::test]
async fn requests_are_signed_json_with_the_app_key() {
    let mut receiver = Receiver::start(0).await;
    let server = server(&receiver, None, |_| {}).await;
    let mut client = server.connect().await;
    client.subscribe("news").await;
    let hook = receiver.next().await;
    assert_eq!(hook.content_type, "application/json");
    assert_eq!(hook.key, KEY);
    assert!(
        pusher_wire::webhook::verify(SECRET, hook.body.as_bytes(), &hook.signature),
        "bad signature: {}",
        hook.signature
    );
    let body = hook.json();
    assert_eq!(body["events"], json!([{"name": "channel_occupied", "channel": "news"}]));
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let time_ms = body["time_ms"].as_i64().expect("time_ms is a number");
    assert!((now_ms - time_ms).abs() < 10_000, "time_ms {time_ms} is not now ({now_ms})");
}

#[tokio::test]
async fn vacated_is_sent_after_the_delay_and_not_at_all_when_the_client_returns() {
    let mut receiver = Receiver::start(0).await;
    let server = server(&receiver, None, |_| {}).await;
    let mut first = server.connect().await;
    first.subscribe("room").await;
    assert_eq!(receiver.next().await.names(), [pair("channel_occupied", "room")]);
    first.close().await;
    // A page reload: back within the delay, so neither channel_vacated nor channel_occupied.
    let mut second = server.connect().await;
    second.subscribe("room").await;
    receiver.expect_none(Duration::from_millis(700)).await;
    second.close().await;
    assert_eq!(receiver.next().await.names(), [pair("channel_vacated", "room")]);
}

#[tokio::test]
async fn presence_members_are_reported_once_per_user() {
    let mut receiver = Receiver::start(0).await;
    let server = server(&receiver, Some(vec![WebhookKind::MemberAdded, WebhookKind::MemberRemoved]), |_| {}).await;
    let mut tab1 = server.connect().await;
    let mut tab2 = server.connect().await;
    let data = r#"{"user_id":"7","user_info":{"name":"Ann"}}"#;
    tab1.subscribe_signed("presence-room", Some(data)).await;
    tab2.subscribe_signed("presence-room", Some(data)).await;
    let added = receiver.next().await.json();
    assert_eq!(added["events"], json!([{"name": "member_added", "channel": "presence-room", "user_id": "7"}]));
    receiver.expect_none(Duration::from_millis(300)).await;
    tab1.close().await;
    receiver.expect_none(Duration::from_millis(600)).await;
    tab2.close().await;
    let removed = receiver.next().await.json();
    assert_eq!(removed["events"], json!([{"name": "member_removed", "channel": "presence-room", "user_id": "7"}]));
}

#[tokio::test]
async fn client_events_carry_data_as_a_string_the_socket_id_and_the_user_id() {
    let mut receiver = Receiver::start(0).await;
    let server = server(&receiver, Some(vec![WebhookKind::ClientEvent]), |_| {}).await;
    let mut sender = server.connect().await;
    let mut other = server.connect().await;
    let data = r#"{"user_id":"7"}"#;
    sender.subscribe_signed("presence-chat", Some(data)).await;
    other.subscribe_signed("presence-chat", Some(r#"{"user_id":"8"}"#)).await;
    sender.send(json!({"event": "client-typing", "channel": "presence-chat", "data": {"typing": true}})).await;
    sender.send(json!({"event": "client-note", "channel": "presence-chat", "data": "plain text"})).await;
    let typing = receiver.next().await.json();
    assert_eq!(
        typing["events"],
        json!([{"name": "client_event", "channel": "presence-chat", "event": "client-typing",
                "data": "{\"typing\":true}", "socket_id": sender.socket_id, "user_id": "7"}])
    );
    let note = receiver.next().await.json();
    assert_eq!(note["events"][0]["data"], "plain text");
}

#[tokio::test]
async fn cache_misses_are_deduplicated() {
    let mut receiver = Receiver::start(0).await;
    let server = server(&receiver, Some(vec![WebhookKind::CacheMiss]), |_| {}).await;
    for _ in 0..3 {
        let mut client = server.connect().await;
        client.subscribe("cache-empty").await;
        client.expect("pusher:cache_miss").await;
    }
    assert_eq!(receiver.next().await.names(), [pair("cache_miss", "cache-empty")]);
    receiver.expect_none(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn subscription_counts_are_reported_when_enabled() {
    let mut receiver = Receiver::start(0).await;
    let server = server(&receiver, Some(vec![WebhookKind::SubscriptionCount]), |config| {
        config.apps[0].subscription_count = true;
    })
    .await;
    let mut a = server.connect().await;
    a.subscribe("counted").await;
    let mut b = server.connect().await;
    b.subscribe("counted").await;
    let counts: Vec<Value> = [receiver.next().await, receiver.next().await]
        .iter()
        .map(|h| h.json()["events"][0]["subscription_count"].clone())
        .collect();
    assert_eq!(counts, [json!(1), json!(2)]);
}

#[tokio::test]
async fn a_failing_endpoint_gets_the_event_again() {
    let mut receiver = Receiver::start(2).await;
    let server = server(&receiver, Some(vec![WebhookKind::ChannelOccupied]), |_| {}).await;
    let mut client = server.connect().await;
    client.subscribe("retried").await;
    // Two 500s, then delivered after backoffs of 1 s and 2 s.
    assert_eq!(receiver.next().await.names(), [pair("channel_occupied", "retried")]);
    receiver.expect_none(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn batching_puts_ready_events_in_one_request() {
    let mut receiver = Receiver::start(0).await;
    let server = server(&receiver, Some(vec![WebhookKind::ChannelOccupied]), |config| {
        config.apps[0].batch_webhooks = true;
    })
    .await;
    let mut client = server.connect().await;
    for channel in ["a", "b", "c"] {
        client.subscribe(channel).await;
    }
    let mut names = receiver.next().await.names();
    while names.len() < 3 {
        names.extend(receiver.next().await.names());
    }
    assert_eq!(names, [pair("channel_occupied", "a"), pair("channel_occupied", "b"), pair("channel_occupied", "c")]);
}

/// A CA and a `localhost` certificate it signed; returns the CA's PEM and an acceptor serving the
/// certificate.
fn private_ca() -> (String, TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let certificate = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (ca_pem, TlsAcceptor::from(Arc::new(config)))
}

#[tokio::test]
async fn https_endpoints_are_verified_against_the_configured_ca() {
    let (ca_pem, acceptor) = private_ca();
    let ca_file = std::env::temp_dir().join(format!("herald-webhook-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca_pem).unwrap();

    let mut trusted = Receiver::start_with(0, Some(acceptor.clone())).await;
    let trusting = server(&trusted, Some(vec![WebhookKind::ChannelOccupied]), |config| {
        config.webhook_ca_file = Some(ca_file.clone());
    })
    .await;
    let mut client = trusting.connect().await;
    client.subscribe("secure").await;
    let hook = trusted.next().await;
    assert_eq!(hook.names(), [pair("channel_occupied", "secure")]);
    assert!(pusher_wire::webhook::verify(SECRET, hook.body.as_bytes(), &hook.signature));

    // Without the CA the endpoint's certificate is refused: nothing arrives, attempts are retried.
    let mut untrusted = Receiver::start_with(0, Some(acceptor)).await;
    let refusing = server(&untrusted, Some(vec![WebhookKind::ChannelOccupied]), |_| {}).await;
    let mut client = refusing.connect().await;
    client.subscribe("refused").await;
    untrusted.expect_none(Duration::from_millis(1500)).await;
    let metrics = refusing.rest().send("GET", "/metrics", String::new()).await.text;
    assert!(
        metrics.lines().any(|l| l.starts_with("herald_webhooks_retried_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    let _ = std::fs::remove_file(&ca_file);
}

#[tokio::test]
async fn a_shutdown_still_reports_what_its_closing_connections_vacate() {
    let mut receiver = Receiver::start(0).await;
    let server = server(&receiver, Some(vec![WebhookKind::ChannelVacated, WebhookKind::MemberRemoved]), |config| {
        // Long enough that only the shutdown, not the delay, can release them in time.
        config.webhook_delay = Duration::from_secs(60);
    })
    .await;
    let mut public = server.connect().await;
    public.subscribe("lobby").await;
    let mut member = server.connect().await;
    member.subscribe_signed("presence-room", Some(r#"{"user_id":"7"}"#)).await;
    server.stop().await;
    let mut names = Vec::new();
    while names.len() < 3 {
        names.extend(receiver.next().await.names());
    }
    names.sort();
    assert_eq!(
        names,
        [
            pair("channel_vacated", "lobby"),
            pair("channel_vacated", "presence-room"),
            pair("member_removed", "presence-room")
        ]
    );
}

#[tokio::test]
async fn header_names_are_sent_as_pusher_spells_them() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A raw receiver: hyper's server would lower-case the names before anyone could see them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    let mut config = support::config();
    config.apps[0].webhooks.push(WebhookTarget { url, events: None });
    let server = TestServer::start_with(config).await;
    let mut client = server.connect().await;
    client.subscribe("news").await;
    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await.unwrap().unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&raw).contains("\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "the request ended early");
        raw.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    for name in ["\r\nX-Pusher-Key: ", "\r\nX-Pusher-Signature: ", "\r\nContent-Type: application/json"] {
        assert!(head.contains(name), "{name:?} missing from:\n{head}");
    }
}

#[tokio::test]
async fn an_https_endpoint_never_rides_a_plain_connection_to_the_same_host_and_port() {
    // A plain receiver; one endpoint names it with http://, the other with https://. Only the
    // http:// one may reach it: the https:// one must make its own (failing) TLS connection, never
    // reuse the pooled plain one, which would send a signed webhook in the clear.
    let mut receiver = Receiver::start(0).await;
    let port = receiver.url.split(':').nth(2).unwrap().split('/').next().unwrap().to_owned();
    let mut config = support::config();
    config.webhook_delay = Duration::from_millis(300);
    config.apps[0].webhooks.push(WebhookTarget { url: format!("http://localhost:{port}/h"), events: None });
    config.apps[0].webhooks.push(WebhookTarget { url: format!("https://localhost:{port}/h"), events: None });
    let server = TestServer::start_with(config).await;
    let mut client = server.connect().await;
    client.subscribe("first").await;
    assert_eq!(receiver.next().await.names(), [("channel_occupied".to_owned(), "first".to_owned())]);
    // The plain connection is idle in the pool now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.subscribe("second").await;
    assert_eq!(receiver.next().await.names(), [("channel_occupied".to_owned(), "second".to_owned())]);
    receiver.expect_none(Duration::from_secs(2)).await;
}
