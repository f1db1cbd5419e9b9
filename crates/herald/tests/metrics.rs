//! `GET /metrics`: OpenMetrics text with the counters an operator needs.

mod support;

use serde_json::json;
use support::TestServer;

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn counters_follow_connections_events_and_requests() {
    let server = TestServer::start().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.subscribe("m").await;
    b.subscribe("m").await;
    server.rest().trigger(&["m"], "e", "1").await;
    a.expect("e").await;
    b.expect("e").await;
    let mut refused = server.raw("/app/unknown?protocol=7").await;
    refused.expect_close().await;
    a.send(json!({"event": "pusher:ping"})).await;
    a.expect("pusher:pong").await;

    let reply = server.rest().send("GET", "/metrics", String::new()).await;
    assert_eq!(reply.status, 200);
    let text = reply.text;
    assert_eq!(value(&text, "herald_connections"), Some(2.0), "{text}");
    assert_eq!(value(&text, "herald_connections_opened_total"), Some(2.0), "{text}");
    assert_eq!(value(&text, r#"herald_connections_refused_total{code="4001"}"#), Some(1.0), "{text}");
    assert_eq!(value(&text, "herald_events_published_total"), Some(1.0), "{text}");
    assert_eq!(value(&text, "herald_deliveries_total"), Some(2.0), "{text}");
    assert_eq!(value(&text, r#"herald_rest_requests_total{status="200"}"#), Some(1.0), "{text}");
    assert_eq!(value(&text, "herald_channels"), Some(1.0), "{text}");
    assert!(text.ends_with("# EOF\n"));
}
