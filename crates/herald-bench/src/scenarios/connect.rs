//! `connect`: N clients connect and subscribe (to one channel, or spread over C channels);
//! connect+subscribe rate and latency, server RSS and CPU per connection; then one broadcast that
//! every client must receive exactly once; then RSS after they all close.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::{Meter, connect_many, cpu_between, cpu_row};
use crate::client::Rest;
use crate::server::Target;
use crate::stats::{Report, round};

/// The name of channel `i` of `channels`: one channel is `connect-all`, as it always was.
fn channel_name(i: usize, channels: usize) -> String {
    if channels <= 1 { "connect-all".to_owned() } else { format!("connect-{}", i % channels) }
}

/// Run the scenario with `n` connections spread over `channels` channels (client `i` on channel
/// `i % channels`), `concurrency` handshakes in flight. Each connection counts once it has
/// connected, subscribed and received `subscription_succeeded`.
pub async fn run(target: &Target, n: usize, channels: usize, concurrency: usize) -> anyhow::Result<Report> {
    let channels = channels.max(1);
    let mut report = Report::new("connect");
    report.param("connections", n);
    report.param("channels", channels);
    report.param("concurrency", concurrency);
    let before = target.stats();
    let meter = Meter::start(target);
    let started = Instant::now();
    let (clients, mut latencies) = connect_many(target, n, concurrency, |i| channel_name(i, channels)).await?;
    let setup = started.elapsed();
    let usage = meter.stop(target);
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
    usage.record(&mut report, "connect+subscribe: ");

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
    let names: Vec<String> = (0..channels).map(|i| channel_name(i, channels)).collect();
    for batch in names.chunks(100) {
        let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
        rest.trigger_many(&batch, "check", "{}").await?;
    }
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
