//! The scenarios, one file each. Every scenario takes the server's address (and its pid for CPU and
//! RSS), runs for a bounded time against 127.0.0.1 only, and returns a [`Report`].

pub mod churn;
pub mod client_events;
pub mod cluster;
pub mod connect;
pub mod fanout;
pub mod slow_consumer;
pub mod subscriptions;
pub mod trigger;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{self, Client};
use crate::server::{ProcStats, Target, machine_busy_us, proc_stats};
use crate::stats::{Latencies, Report, round};

/// Connect `n` clients subscribed to `channel(i)`, at most `concurrency` handshakes in flight.
/// Returns the clients and each one's connect+subscribe latency.
pub async fn connect_many(
    target: &Target,
    n: usize,
    concurrency: usize,
    channel: impl Fn(usize) -> String,
) -> anyhow::Result<(Vec<Client>, Latencies)> {
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let addr = target.addr;
    for i in 0..n {
        let permit = limit.clone().acquire_owned().await?;
        let channel = channel(i);
        tasks.spawn(async move {
            let started = Instant::now();
            let mut client = client::connect(addr).await?;
            client.subscribe(&channel).await?;
            drop(permit);
            anyhow::Ok((client, started.elapsed()))
        });
    }
    let mut clients = Vec::with_capacity(n);
    let mut latencies = Latencies::default();
    while let Some(joined) = tasks.join_next().await {
        let (client, elapsed) = joined??;
        latencies.push(elapsed.as_micros() as u64);
        clients.push(client);
    }
    Ok((clients, latencies))
}

/// Server CPU spent between two samples, in microseconds.
pub fn cpu_between(before: Option<ProcStats>, after: Option<ProcStats>) -> Option<u64> {
    Some(after?.cpu_us.saturating_sub(before?.cpu_us))
}

/// Record the server's CPU per unit of work, if the server's pid is known.
pub fn cpu_row(report: &mut Report, name: &str, cpu_us: Option<u64>, units: u64) {
    if let Some(cpu) = cpu_us.filter(|_| units > 0) {
        report.row(name, crate::stats::round(cpu as f64 / units as f64, 3), "µs");
    }
}

/// The CPU the server and this load generator use during one phase, so that every figure says
/// which side was saturated; and what the rest of the machine used, so that a figure disturbed by
/// other work shows it.
pub struct Meter {
    started: Instant,
    server: Option<ProcStats>,
    bench: Option<ProcStats>,
    machine: Option<u64>,
}

/// What a [`Meter`] measured: CPU use in % of one core.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    server: Option<f64>,
    bench: Option<f64>,
    other: Option<f64>,
}

impl Meter {
    /// Start measuring.
    pub fn start(target: &Target) -> Self {
        Self {
            started: Instant::now(),
            server: target.stats(),
            bench: proc_stats(std::process::id()),
            machine: machine_busy_us(),
        }
    }

    /// The CPU used since the start.
    pub fn stop(&self, target: &Target) -> Usage {
        let micros = self.started.elapsed().as_micros().max(1) as f64;
        let percent = |cpu: u64| round(cpu as f64 * 100.0 / micros, 1);
        let server = cpu_between(self.server, target.stats());
        let bench = cpu_between(self.bench, proc_stats(std::process::id()));
        let machine = machine_busy_us().zip(self.machine).map(|(now, then)| now.saturating_sub(then));
        let other = machine.map(|m| m.saturating_sub(server.unwrap_or(0) + bench.unwrap_or(0)));
        Usage { server: server.map(percent), bench: bench.map(percent), other: other.map(percent) }
    }
}

impl Usage {
    /// Record `{phase}server CPU use`, `{phase}load generator CPU use` and `{phase}rest of the
    /// machine's CPU use`, in % of one core. With the server pinned to one core, 100 % means the
    /// server was the limit; with the load generator pinned to one core, 100 % means it was. The
    /// rest (other processes, kernel threads, interrupts) should stay small.
    pub fn record(self, report: &mut Report, phase: &str) {
        if let Some(server) = self.server {
            report.row(&format!("{phase}server CPU use"), server, "% of one core");
        }
        if let Some(bench) = self.bench {
            report.row(&format!("{phase}load generator CPU use"), bench, "% of one core");
        }
        if let Some(other) = self.other {
            report.row(&format!("{phase}rest of the machine's CPU use"), other, "% of one core");
        }
    }
}

/// Wait until `done()` or `limit` passes; returns whether `done()` became true.
pub async fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}
