//! `slow-consumer`: some subscribers stop reading while others keep receiving. The healthy clients'
//! latency must stay flat (first half against second half of the run), the server's RSS bounded, no
//! healthy client may lose a message, and the stalled ones must be cut off.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::{connect_many, wait_until};
use crate::client::{self, Rest};
use crate::server::{Kind, Target};
use crate::stats::{Latencies, Report};

/// Sizes of one run.
#[derive(Clone, Copy, Debug)]
pub struct SlowConsumer {
    /// Subscribers that keep reading.
    pub healthy: usize,
    /// Subscribers that never read.
    pub stalled: usize,
    /// Triggers per second.
    pub rate: u32,
    /// Bytes of data per event.
    pub payload: usize,
    /// Length of the run.
    pub duration: Duration,
}

/// Run the scenario.
pub async fn run(target: &Target, sizes: SlowConsumer) -> anyhow::Result<Report> {
    let mut report = Report::new("slow-consumer");
    report.param("healthy", sizes.healthy);
    report.param("stalled", sizes.stalled);
    report.param("rate", sizes.rate);
    report.param("payload_bytes", sizes.payload);
    report.param("secs", sizes.duration.as_secs_f64());
    let (stalled, _) = connect_many(target, sizes.stalled, 64, |_| "slow".to_owned()).await?;
    let (healthy, _) = connect_many(target, sizes.healthy, 64, |_| "slow".to_owned()).await?;
    let baseline = target.stats();
    let started = Instant::now();
    let half = sizes.duration / 2;
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = JoinSet::new();
    for mut client in healthy {
        let received = received.clone();
        readers.spawn(async move {
            let (mut first, mut second) = (Latencies::default(), Latencies::default());
            while let Some(Ok(message)) = client.ws.next().await {
                let Message::Text(text) = message else { continue };
                if text.as_str().starts_with(r#"{"event":"z""#) {
                    break;
                }
                if let Some(sent) = client::timestamp_of(text.as_str()) {
                    received.fetch_add(1, Ordering::Relaxed);
                    let latency = client::now_us().saturating_sub(sent);
                    if started.elapsed() < half { first.push(latency) } else { second.push(latency) }
                }
            }
            (first, second)
        });
    }
    let padding = "x".repeat(sizes.payload);
    let mut rest = Rest::connect(target.addr).await?;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(sizes.rate.max(1))));
    let mut sent = 0u64;
    let mut max_rss = baseline.map_or(0, |s| s.rss_kib);
    while started.elapsed() < sizes.duration {
        ticker.tick().await;
        rest.trigger("slow", "e", &format!("{{\"t\":{},\"pad\":\"{padding}\"}}", client::now_us())).await?;
        sent += 1;
        if sent.is_multiple_of(10) {
            max_rss = max_rss.max(target.stats().map_or(0, |s| s.rss_kib));
        }
    }
    let expected = sent * sizes.healthy as u64;
    let counted = received.clone();
    wait_until(Duration::from_secs(30), || counted.load(Ordering::Relaxed) >= expected).await;
    rest.trigger("slow", "z", "{}").await?;
    let (mut first, mut second) = (Latencies::default(), Latencies::default());
    while let Some(joined) = readers.join_next().await {
        let (a, b) = joined?;
        first.extend(a);
        second.extend(b);
    }
    report.row("events sent", sent, "events");
    report.row("healthy: lost", expected.saturating_sub(received.load(Ordering::Relaxed)), "messages");
    report.latencies("healthy latency, first half", &mut first);
    report.latencies("healthy latency, second half", &mut second);
    if let Some(baseline) = baseline {
        report.row("server RSS before", baseline.rss_kib, "KiB");
        report.row("server RSS max during the run", max_rss, "KiB");
    }

    // Now read what the stalled clients were sent: each must have been cut off.
    let mut outcomes = JoinSet::new();
    for mut client in stalled {
        outcomes.spawn(async move {
            let mut frames = 0u64;
            loop {
                match tokio::time::timeout(Duration::from_secs(5), client.ws.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        frames += 1;
                        if text.as_str().contains("\"code\":4100") {
                            return (frames, "4100");
                        }
                    }
                    Ok(Some(Ok(Message::Close(Some(close))))) if u16::from(close.code) == 4100 => {
                        return (frames, "4100");
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(_)) | None) => return (frames, "dropped"),
                    Err(_) => return (frames, "still open"),
                }
            }
        });
    }
    let (mut closed_4100, mut dropped, mut open) = (0, 0, 0);
    while let Some(joined) = outcomes.join_next().await {
        match joined?.1 {
            "4100" => closed_4100 += 1,
            "dropped" => dropped += 1,
            _ => open += 1,
        }
    }
    // A client that stopped reading cannot receive the close frame either (its socket buffers are
    // full), so the server's own count says how many it closed as slow consumers.
    // Herald's own count; other servers have no such metric (the row is left out for them).
    let metrics = if target.kind == Kind::Herald {
        rest.get_text("/metrics").await.unwrap_or_default()
    } else {
        report.param("closed_by_server", "not measured: only Herald counts slow consumers on /metrics");
        String::new()
    };
    let closed_by_server = metrics
        .lines()
        .find_map(|line| line.strip_prefix(r#"herald_connections_closed_total{reason="slow_consumer"} "#))
        .and_then(|v| v.trim().parse::<f64>().ok());
    if let Some(closed) = closed_by_server {
        report.row("stalled: closed by the server as slow consumers (4100)", closed, "clients");
    }
    report.row("stalled: received the 4100 close frame", closed_4100, "clients");
    report.row("stalled: dropped without a close frame", dropped, "clients");
    report.row("stalled: still open", open, "clients");
    Ok(report)
}
