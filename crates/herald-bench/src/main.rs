//! herald-bench: Herald's load generator.
//!
//! It starts the release `herald` (pinned to one CPU with `taskset`, or use `--url` for a running
//! server), runs the chosen scenarios against 127.0.0.1, prints a table per scenario and writes one
//! JSON file per run into `--out`. Server CPU time and RSS are read from `/proc`. Every scenario is
//! bounded in size and time and stops by itself. `scripts/bench` is the usual way to run it.
//!
//! `--server-kind` starts another Pusher-protocol server instead (soketi, sockudo, or pushbench's
//! floor server), and `--compare` runs the same scenarios against several of them in one run and
//! writes one table (`scripts/compare`).

mod client;
mod compare;
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
use server::{App, Kind, Launcher, Target};

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
    /// Which server to start for each scenario. Scenarios that need Herald's own features (the
    /// cluster, the slow-consumer count on /metrics) are skipped or reduced for the others.
    #[arg(long, value_enum, default_value_t = Kind::Herald)]
    server_kind: Kind,
    /// Where soketi was installed (`../shared/peers/soketi/setup.sh DIR`).
    #[arg(long, default_value = "target/peers/soketi")]
    soketi_dir: PathBuf,
    /// Where sockudo was installed (`../shared/peers/sockudo/setup.sh DIR SRC`).
    #[arg(long, default_value = "target/peers/sockudo-run")]
    sockudo_dir: PathBuf,
    /// pushbench's floor-server binary (built by `cargo build --release` in pushbench's directory).
    #[arg(long, default_value = "target/peers/pushbench/target/release/floor-server")]
    floor_server: PathBuf,
    /// CPU to pin the started server to (`taskset -c`).
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// Use a running server at this address instead (app 1, key bench-key, secret bench-secret
    /// unless --app-id, --key and --secret say otherwise).
    #[arg(long)]
    url: Option<SocketAddr>,
    /// App id [default: 1 for Herald and the floor server, app-1 for soketi and sockudo].
    #[arg(long)]
    app_id: Option<String>,
    /// App key [default: bench-key, or app-key for soketi and sockudo].
    #[arg(long)]
    key: Option<String>,
    /// App secret [default: bench-secret, or app-secret for soketi and sockudo].
    #[arg(long)]
    secret: Option<String>,
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
    /// connect: spread the connections over this many channels (client i on channel i % N).
    #[arg(long, default_value_t = 1)]
    connect_channels: usize,
    /// trigger: keep-alive REST connections.
    #[arg(long, default_value_t = 32)]
    trigger_connections: usize,
    /// fanout: during the burst, wait while more than this many triggers' deliveries have not
    /// arrived (default: no limit).
    #[arg(long)]
    fanout_window: Option<u64>,
    /// fanout: triggers per second of the fixed-rate latency phase (0: no such phase).
    #[arg(long, default_value_t = 20)]
    fanout_rate: u32,
    /// Compare these servers (comma-separated: floor,herald,soketi,sockudo) instead of running
    /// scenarios: connect, two fan-outs, trigger, client events and churn against each, every one
    /// started fresh; writes compare.md and compare.json into --out. Sizes: --mode (quick or full
    /// are the side-by-side table's sizes: 10,000 connections in 100 channels, 10,000 and 1,000 subscribers,
    /// 8 REST connections, 1,000 client-event pairs, 50 churning clients).
    #[arg(long, value_enum, value_delimiter = ',')]
    compare: Option<Vec<Kind>>,
    /// With --compare: repetitions, interleaved.
    #[arg(long, default_value_t = 1)]
    reps: usize,
    /// With --compare: the load generator behind the main table.
    #[arg(long, value_enum, default_value_t = compare::Tool::HeraldBench)]
    tool: compare::Tool,
    /// With --compare: also measure these servers with the other tool, for a table of both tools'
    /// figures side by side.
    #[arg(long, value_enum, value_delimiter = ',')]
    cross_check: Option<Vec<Kind>>,
    /// With --compare: only these scenarios (comma-separated; all by default).
    #[arg(long, value_enum, value_delimiter = ',')]
    steps: Option<Vec<compare::Step>>,
    /// With --compare: publisher connections of pushbench's fan-out runs (pushbench's default
    /// is 1; herald-bench's fan-out uses 4).
    #[arg(long, default_value_t = 1)]
    pushbench_publishers: usize,
    /// The pushbench binary (built by `cargo build --release` in pushbench's directory).
    #[arg(long, default_value = "target/peers/pushbench/target/release/pushbench")]
    pushbench: PathBuf,
    /// CPU pushbench is pinned to (`pushbench --cpu`); pin this tool to the same one.
    #[arg(long)]
    bench_cpu: Option<usize>,
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
    // On SIGINT or SIGTERM the run is dropped, which stops the servers it started (children are
    // killed on drop, peers are stopped through their stop.sh).
    let interrupted = async {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = run(cli) => result,
            () = interrupted => Err(anyhow::anyhow!("interrupted; the servers this run started are stopped")),
        }
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let defaults = cli.server_kind.default_app();
    let app = App {
        id: cli.app_id.clone().unwrap_or(defaults.id),
        key: cli.key.clone().unwrap_or(defaults.key),
        secret: cli.secret.clone().unwrap_or(defaults.secret),
    };
    if cli.compare.is_some() {
        if cli.app_id.is_some() || cli.key.is_some() || cli.secret.is_some() {
            anyhow::bail!("--compare starts every server with its own app; --app-id, --key and --secret do not apply");
        }
        return compare(&cli).await;
    }
    server::set_app(app);
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
    if cli.server_kind != Kind::Herald && cli.url.is_none() {
        println!("herald-bench: server {}", cli.server_kind.name());
    }
    let all = cli.scenarios.contains(&Scenario::All);
    let wanted = |s: Scenario| all || cli.scenarios.contains(&s);
    if wanted(Scenario::Connect) {
        let target = target(&cli).await?;
        let report = scenarios::connect::run(&target, sizes.connections, cli.connect_channels, 200).await;
        finish(target, report, &cli, &machine).await?;
    }
    if wanted(Scenario::Fanout) {
        for &subscribers in &sizes.subscribers {
            let target = target(&cli).await?;
            let fanout = Fanout {
                subscribers,
                burst: sizes.burst,
                publishers: 4,
                rate: cli.fanout_rate,
                steady: sizes.steady,
                window: cli.fanout_window,
            };
            let report = scenarios::fanout::run(&target, fanout).await;
            finish(target, report, &cli, &machine).await?;
        }
    }
    if wanted(Scenario::Trigger) {
        let target = target(&cli).await?;
        let report = scenarios::trigger::run(&target, cli.trigger_connections, sizes.trigger).await;
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
    if wanted(Scenario::Cluster) && cli.server_kind != Kind::Herald {
        println!("\n== cluster: skipped, Herald's own (two herald nodes joined through Redis)");
    }
    if wanted(Scenario::Cluster) && cli.url.is_none() && cli.server_kind == Kind::Herald {
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
        let report = scenarios::connect::run(&target, sizes.connections, cli.connect_channels, 200)
            .await
            .map(|r| r.renamed("connect-with-redis"));
        finish(target, report, &cli, &machine).await?;
        let subscribers = sizes.cluster.subscribers;
        let target = joined().await?;
        let fanout = Fanout {
            subscribers,
            burst: sizes.burst,
            publishers: 4,
            rate: cli.fanout_rate,
            steady: sizes.steady,
            window: cli.fanout_window,
        };
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
        Some(addr) => Ok(Target::existing(addr, cli.pid, cli.server_kind)),
        None => launcher(cli, cli.server_kind).start().await,
    }
}

/// How to start a server of `kind` with this command line's paths.
fn launcher(cli: &Cli, kind: Kind) -> Launcher {
    let path = match kind {
        Kind::Herald => cli.server.clone(),
        Kind::Soketi => cli.soketi_dir.clone(),
        Kind::Sockudo => cli.sockudo_dir.clone(),
        Kind::Floor => cli.floor_server.clone(),
    };
    Launcher { kind, path, cpu: Some(cli.server_cpu) }
}

/// `--compare`: sizes from the mode, every server's launcher, then the comparison.
async fn compare(cli: &Cli) -> anyhow::Result<()> {
    let servers = cli.compare.clone().unwrap_or_default();
    anyhow::ensure!(cli.url.is_none(), "--compare starts its own servers; --url does not apply");
    anyhow::ensure!(!servers.is_empty(), "--compare needs at least one server");
    let secs = Duration::from_secs;
    let mut sizes = match cli.mode {
        Mode::Smoke => compare::Sizes {
            connections: 200,
            channels: 10,
            subscribers: [200, 50],
            secs: secs(1),
            trigger_connections: 8,
            pairs: 20,
            churn: secs(2),
        },
        Mode::Quick => compare::Sizes {
            connections: 10_000,
            channels: 100,
            subscribers: [10_000, 1_000],
            secs: secs(5),
            trigger_connections: 8,
            pairs: 1_000,
            churn: secs(10),
        },
        Mode::Full => compare::Sizes {
            connections: 10_000,
            channels: 100,
            subscribers: [10_000, 1_000],
            secs: secs(10),
            trigger_connections: 8,
            pairs: 1_000,
            churn: secs(30),
        },
    };
    if let Some(n) = cli.connections {
        sizes.connections = n;
    }
    if let Some(list) = &cli.subscribers {
        anyhow::ensure!(list.len() == 2, "--compare needs two subscriber counts (large,small)");
        sizes.subscribers = [list[0], list[1]];
    }
    if let Some(pairs) = cli.pairs {
        sizes.pairs = pairs;
    }
    if let Some(s) = cli.secs {
        (sizes.secs, sizes.churn) = (secs(s), secs(s));
    }
    if let Some(limit) = server::open_file_limit() {
        let needed = (sizes.connections.max(sizes.subscribers[0]).max(sizes.pairs * 2) + 100) as u64;
        anyhow::ensure!(
            limit >= needed,
            "the comparison needs an open-file limit of at least {needed}; raise it with `ulimit -n`"
        );
    }
    let cross_check = cli.cross_check.clone().unwrap_or_default();
    let launchers = [Kind::Herald, Kind::Soketi, Kind::Sockudo, Kind::Floor].map(|kind| launcher(cli, kind)).to_vec();
    println!(
        "herald-bench: comparing {} ({} repetition(s), mode {:?}, measured by {:?}{})",
        servers.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "),
        cli.reps,
        cli.mode,
        cli.tool,
        if cross_check.is_empty() { String::new() } else { format!(", cross-checked on {cross_check:?}") }
    );
    compare::run(compare::Plan {
        servers,
        cross_check,
        tool: cli.tool,
        reps: cli.reps.max(1),
        sizes,
        launchers,
        pushbench: cli.pushbench.clone(),
        bench_cpu: cli.bench_cpu,
        out: cli.out.clone(),
        steps: cli.steps.clone().unwrap_or_else(|| compare::STEPS.to_vec()),
        pushbench_publishers: cli.pushbench_publishers.max(1),
    })
    .await
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
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned());
    let cpus = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|k| k.trim().to_owned());
    let memory_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    });
    json!({
        "cpu": cpu,
        "cpus": cpus,
        "cores_for_load_generator": cores,
        "kernel": kernel,
        "memory_gib": memory_kib.map(|k| k / (1024 * 1024)),
        "open_file_limit": server::open_file_limit(),
    })
}
