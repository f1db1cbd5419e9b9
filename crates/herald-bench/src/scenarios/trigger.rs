//! `trigger`: REST triggers per second with no subscribers (keep-alive connections, several requests
//! in flight), and server CPU per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::{Meter, cpu_between, cpu_row};
use crate::client::Rest;
use crate::server::Target;
use crate::stats::{Report, round};

/// Run with `connections` keep-alive connections for `duration`.
pub async fn run(target: &Target, connections: usize, duration: Duration) -> anyhow::Result<Report> {
    let mut report = Report::new("trigger");
    report.param("connections", connections);
    report.param("secs", duration.as_secs_f64());
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let before = target.stats();
    let meter = Meter::start(target);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..connections {
        let (addr, sent, failed) = (target.addr, sent.clone(), failed.clone());
        tasks.spawn(async move {
            let mut rest = Rest::connect(addr).await?;
            while started.elapsed() < duration {
                let status = rest.trigger("nobody-listens", "e", "{\"hello\":\"world\"}").await?;
                let counter = if status == 200 { &sent } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let elapsed = started.elapsed();
    let after = target.stats();
    let usage = meter.stop(target);
    let requests = sent.load(Ordering::Relaxed);
    report.row("triggers/s", round(requests as f64 / elapsed.as_secs_f64(), 0), "req/s");
    report.row("non-200 answers", failed.load(Ordering::Relaxed), "requests");
    cpu_row(&mut report, "server CPU per trigger", cpu_between(before, after), requests);
    usage.record(&mut report, "");
    Ok(report)
}
