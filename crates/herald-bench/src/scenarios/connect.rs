//! `connect`: N clients connect and subscribe; connect+subscribe rate and latency, server RSS and CPU
//! per connection; then one broadcast that every client must receive exactly once; then RSS after
//! they all close.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::{connect_many, cpu_between, cpu_row};
use crate::client::Rest;
use crate::server::Target;
use crate::stats::{Report, round};

/// Run the scenario with `n` connections, `concurrency` handshakes in flight.
pub async fn run(target: &Target, n: usize, concurrency: usize) -> anyhow::Result<Report> {
    let mut report = Report::new("connect");
    report.param("connections", n);
    report.param("concurrency", concurrency);
    let before = target.stats();
    let started = Instant::now();
    let (clients, mut latencies) = connect_many(target, n, concurrency, |_| "connect-all".to_owned()).await?;
    let setup = started.elapsed();
    // Let throttled subscription counts and allocator caches settle before measuring memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = target.stats();
    report.row("connect+subscribe rate", round(n as f64 / setup.as_secs_f64(), 0), "conn/s");
    report.latencies("connect+subscribe latency", &mut latencies);
    if let (Some(before), Some(after)) = (before, after) {
        let per_connection = (after.rss_kib.saturating_sub(before.rss_kib)) as f64 / n as f64;
        report.row("server RSS before", before.rss_kib, "KiB");
        report.row("server RSS with all connected", after.rss_kib, "KiB");
        report.row("server RSS per connection", round(per_connection, 2), "KiB");
    }
    cpu_row(&mut report, "server CPU per connection", cpu_between(before, after), n as u64);

    // Every client receives one broadcast exactly once.
    let mut readers = JoinSet::new();
    for mut client in clients {
        readers.spawn(async move {
            let mut seen = 0;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let wait = if seen == 0 { deadline } else { tokio::time::Instant::now() + Duration::from_millis(500) };
                match tokio::time::timeout_at(wait, client.ws.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) if text.contains("\"check\"") => seen += 1,
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            (client, seen)
        });
    }
    let mut rest = Rest::connect(target.addr).await?;
    rest.trigger("connect-all", "check", "{}").await?;
    let mut exactly_once = 0;
    let mut clients = Vec::with_capacity(n);
    while let Some(joined) = readers.join_next().await {
        let (client, seen) = joined?;
        exactly_once += usize::from(seen == 1);
        clients.push(client);
    }
    report.row("received the broadcast exactly once", exactly_once, "clients");
    report.row("missed or duplicated", n - exactly_once, "clients");

    for mut client in clients {
        let _ = client.ws.send(Message::Close(None)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some(closed) = target.stats() {
        report.row("server RSS after all closed", closed.rss_kib, "KiB");
    }
    Ok(report)
}
