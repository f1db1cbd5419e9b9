//! herald-bench: Herald's load generator.
//!
//! It starts the release `herald` (pinned to one CPU with `taskset`, or use `--url` for a running
//! server), runs the chosen scenarios against 127.0.0.1, prints a table per scenario and writes one
//! JSON file per run into `--out`. Server CPU time and RSS are read from `/proc`. Every scenario is
//! bounded in size and time and stops by itself. `scripts/bench` is the usual way to run it.

mod client;
mod scenarios;
mod server;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use scenarios::cluster::ClusterRun;
use scenarios::fanout::Fanout;
use scenarios::slow_consumer::SlowConsumer;
use serde_json::json;
use server::Target;

#[derive(Parser)]
#[command(name = "herald-bench", about = "Load scenarios against a Herald server")]
struct Cli {
    /// Scenarios to run.
    #[arg(value_enum, default_values_t = [Scenario::All])]
    scenarios: Vec<Scenario>,
    /// Size preset.
    #[arg(long, value_enum, default_value_t = Mode::Quick)]
    mode: Mode,
    /// The herald binary to start for each scenario.
    #[arg(long, default_value = "target/release/herald")]
    server: PathBuf,
    /// CPU to pin the started server to (`taskset -c`).
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// Use a running server at this address instead (app 1, key bench-key, secret bench-secret).
    #[arg(long)]
    url: Option<SocketAddr>,
    /// With --url: the server's pid, to measure its CPU and RSS.
    #[arg(long)]
    pid: Option<u32>,
    /// Where to write the JSON results.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// connect: number of connections (overrides the preset).
    #[arg(long)]
    connections: Option<usize>,
    /// fanout: subscriber counts, comma-separated (overrides the preset).
    #[arg(long, value_delimiter = ',')]
    subscribers: Option<Vec<usize>>,
    /// Length of the timed phases, in seconds (overrides the preset).
    #[arg(long)]
    secs: Option<u64>,
    /// client-events: number of pairs (overrides the preset).
    #[arg(long)]
    pairs: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    All,
    Connect,
    Fanout,
    Trigger,
    ClientEvents,
    Churn,
    SlowConsumer,
    /// Subscriptions to channels of their own: memory and CPU per subscription.
    Subscriptions,
    /// Two nodes and a redis-server; then one node with and without `--redis-url`.
    Cluster,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Tiny sizes, seconds in all: checks that the tool works.
    Smoke,
    /// Short runs with the target sizes: a few minutes in all.
    Quick,
    /// The full runs behind docs/performance.md.
    Full,
}

/// Sizes of every scenario for one mode.
struct Sizes {
    connections: usize,
    subscribers: Vec<usize>,
    burst: Duration,
    steady: Duration,
    trigger: Duration,
    pairs: usize,
    pair_duration: Duration,
    churn: Duration,
    slow: SlowConsumer,
    cluster: ClusterRun,
}

impl Sizes {
    fn for_mode(mode: Mode) -> Self {
        let secs = Duration::from_secs;
        match mode {
            Mode::Smoke => Self {
                connections: 200,
                subscribers: vec![100],
                burst: secs(1),
                steady: secs(1),
                trigger: secs(1),
                pairs: 20,
                pair_duration: secs(2),
                churn: secs(2),
                slow: SlowConsumer { healthy: 20, stalled: 2, rate: 50, payload: 1000, duration: secs(2) },
                cluster: ClusterRun {
                    subscribers: 100,
                    burst: secs(1),
                    latency_subscribers: 20,
                    rate: 50,
                    steady: secs(1),
                },
            },
            Mode::Quick => Self {
                connections: 10_000,
                subscribers: vec![1_000, 10_000],
                burst: secs(5),
                steady: secs(3),
                trigger: secs(5),
                pairs: 1_000,
                pair_duration: secs(10),
                churn: secs(10),
                slow: SlowConsumer { healthy: 100, stalled: 10, rate: 200, payload: 8_000, duration: secs(10) },
                cluster: ClusterRun {
                    subscribers: 10_000,
                    burst: secs(5),
                    latency_subscribers: 1_000,
                    rate: 1_000,
                    steady: secs(5),
                },
            },
            Mode::Full => Self {
                connections: 19_500,
                subscribers: vec![1_000, 10_000],
                burst: secs(15),
                steady: secs(10),
                trigger: secs(15),
                pairs: 1_000,
                pair_duration: secs(30),
                churn: secs(30),
                slow: SlowConsumer { healthy: 100, stalled: 10, rate: 200, payload: 8_000, duration: secs(30) },
                cluster: ClusterRun {
                    subscribers: 10_000,
                    burst: secs(15),
                    latency_subscribers: 1_000,
                    rate: 1_000,
                    steady: secs(15),
                },
            },
        }
    }

    fn apply(&mut self, cli: &Cli) {
        if let Some(n) = cli.connections {
            self.connections = n;
        }
        if let Some(list) = &cli.subscribers {
            self.subscribers.clone_from(list);
        }
        if let Some(pairs) = cli.pairs {
            self.pairs = pairs;
        }
        if let Some(secs) = cli.secs.map(Duration::from_secs) {
            (self.burst, self.trigger, self.pair_duration, self.churn, self.slow.duration) =
                (secs, secs, secs, secs, secs);
            (self.cluster.burst, self.cluster.steady) = (secs, secs);
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut sizes = Sizes::for_mode(cli.mode);
    sizes.apply(&cli);
    let limit = server::open_file_limit();
    println!(
        "herald-bench: mode {:?}, open-file limit {}",
        cli.mode,
        limit.map_or("unknown".into(), |l| l.to_string())
    );
    if let Some(limit) = limit {
        let needed = sizes.connections as u64 + 100;
        if needed > limit {
            anyhow::bail!(
                "{} connections need an open-file limit of at least {needed}; raise it with `ulimit -n`",
                sizes.connections
            );
        }
    }
    let machine = machine();
    let all = cli.scenarios.contains(&Scenario::All);
    let wanted = |s: Scenario| all || cli.scenarios.contains(&s);
    if wanted(Scenario::Connect) {
        let target = target(&cli).await?;
        let report = scenarios::connect::run(&target, sizes.connections, 200).await;
        finish(target, report, &cli, &machine).await?;
    }
    if wanted(Scenario::Fanout) {
        for &subscribers in &sizes.subscribers {
            let target = target(&cli).await?;
            let fanout = Fanout { subscribers, burst: sizes.burst, publishers: 4, rate: 20, steady: sizes.steady };
            let report = scenarios::fanout::run(&target, fanout).await;
            finish(target, report, &cli, &machine).await?;
        }
    }
    if wanted(Scenario::Trigger) {
        let target = target(&cli).await?;
        let report = scenarios::trigger::run(&target, 32, sizes.trigger).await;
        finish(target, report, &cli, &machine).await?;
    }
    if wanted(Scenario::ClientEvents) {
        let target = target(&cli).await?;
        let report = scenarios::client_events::run(&target, sizes.pairs, sizes.pair_duration, 10).await;
        finish(target, report, &cli, &machine).await?;
    }
    if wanted(Scenario::Churn) {
        let target = target(&cli).await?;
        let report = scenarios::churn::run(&target, 50, sizes.churn).await;
        finish(target, report, &cli, &machine).await?;
    }
    if wanted(Scenario::SlowConsumer) {
        let target = target(&cli).await?;
        let report = scenarios::slow_consumer::run(&target, sizes.slow).await;
        finish(target, report, &cli, &machine).await?;
    }
    if wanted(Scenario::Subscriptions) {
        let target = target(&cli).await?;
        let (clients, per_client) = match cli.mode {
            Mode::Smoke => (2, 100),
            Mode::Quick | Mode::Full => (100, 1_000),
        };
        let report = scenarios::subscriptions::run(&target, clients, per_client).await;
        finish(target, report, &cli, &machine).await?;
    }
    if wanted(Scenario::Cluster) && cli.url.is_none() {
        let report = scenarios::cluster::run(&cli.server, cli.server_cpu, sizes.cluster).await;
        save(report, &cli, &machine)?;
        // One node joined to a Redis (alone in its cluster): what --redis-url costs a node.
        let redis = server::Redis::start(Some(cli.server_cpu)).await?;
        let joined = || async {
            let flags = vec!["--redis-url".to_owned(), redis.url()];
            let target = Target::start_with(&cli.server, Some(cli.server_cpu), &flags).await?;
            scenarios::cluster::wait_for_peers(&target, 0).await?;
            anyhow::Ok(target)
        };
        let target = joined().await?;
        let report =
            scenarios::connect::run(&target, sizes.connections, 200).await.map(|r| r.renamed("connect-with-redis"));
        finish(target, report, &cli, &machine).await?;
        let subscribers = sizes.cluster.subscribers;
        let target = joined().await?;
        let fanout = Fanout { subscribers, burst: sizes.burst, publishers: 4, rate: 20, steady: sizes.steady };
        let report = scenarios::fanout::run(&target, fanout)
            .await
            .map(|r| r.renamed(&format!("fanout-{subscribers}-with-redis")));
        finish(target, report, &cli, &machine).await?;
        redis.stop().await;
    }
    Ok(())
}

/// A fresh server per scenario, so that memory figures do not carry over.
async fn target(cli: &Cli) -> anyhow::Result<Target> {
    match cli.url {
        Some(addr) => Ok(Target::existing(addr, cli.pid)),
        None => Target::start(&cli.server, Some(cli.server_cpu)).await,
    }
}

async fn finish(
    target: Target,
    report: anyhow::Result<stats::Report>,
    cli: &Cli,
    machine: &serde_json::Value,
) -> anyhow::Result<()> {
    target.stop().await;
    save(report, cli, machine)
}

fn save(report: anyhow::Result<stats::Report>, cli: &Cli, machine: &serde_json::Value) -> anyhow::Result<()> {
    let report = report?;
    report.print();
    let path = report.save(&cli.out, machine).context("cannot write the results")?;
    println!("  (saved to {})", path.display());
    Ok(())
}

/// What the numbers were measured on.
fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|info| {
        info.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
    });
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    json!({"cpu": cpu, "cores_for_load_generator": cores})
}
