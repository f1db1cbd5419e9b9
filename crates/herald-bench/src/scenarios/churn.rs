//! `churn`: clients connect, subscribe and disconnect in a loop; cycles per second and how much the
//! server's RSS grows (leaks show here): after warm-up, and from before the first cycle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::Meter;
use crate::client;
use crate::server::Target;
use crate::stats::{Report, round};

/// Run `workers` loops for `duration`; RSS is compared between the end of the first fifth (once
/// allocator pools have warmed up) and two seconds after the end.
pub async fn run(target: &Target, workers: usize, duration: Duration) -> anyhow::Result<Report> {
    let mut report = Report::new("churn");
    report.param("workers", workers);
    report.param("secs", duration.as_secs_f64());
    let cycles = Arc::new(AtomicU64::new(0));
    let start = target.stats();
    let meter = Meter::start(target);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for worker in 0..workers {
        let (addr, cycles) = (target.addr, cycles.clone());
        tasks.spawn(async move {
            let channel = format!("churn-{}", worker % 100);
            while started.elapsed() < duration {
                let mut client = client::connect(addr).await?;
                client.subscribe(&channel).await?;
                client.ws.send(Message::Close(None)).await?;
                // Wait for the server's close reply so the cycle is complete on both sides.
                while let Ok(Some(Ok(message))) = tokio::time::timeout(Duration::from_secs(5), client.ws.next()).await {
                    if message.is_close() {
                        break;
                    }
                }
                cycles.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    tokio::time::sleep(duration / 5).await;
    let warm = target.stats();
    let warm_cycles = cycles.load(Ordering::Relaxed);
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let elapsed = started.elapsed();
    let usage = meter.stop(target);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let end = target.stats();
    let total = cycles.load(Ordering::Relaxed);
    report.row("cycles", total, "connections");
    report.row("cycles/s", round(total as f64 / elapsed.as_secs_f64(), 0), "conn/s");
    if let (Some(warm), Some(end)) = (warm, end) {
        report.row("server RSS after warm-up", warm.rss_kib, "KiB");
        report.row("server RSS at the end", end.rss_kib, "KiB");
        report.row("RSS growth", end.rss_kib as i64 - warm.rss_kib as i64, "KiB");
        report.row("cycles after warm-up", total - warm_cycles, "connections");
    }
    if let (Some(start), Some(end)) = (start, end) {
        report.row("server RSS before the first cycle", start.rss_kib, "KiB");
        report.row("RSS growth from the start", end.rss_kib as i64 - start.rss_kib as i64, "KiB");
    }
    usage.record(&mut report, "");
    Ok(report)
}
