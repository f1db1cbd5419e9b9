//! `--compare`: the same scenarios, at the same sizes, against several Pusher-protocol servers
//! (Herald, soketi, sockudo and the floor server, the physical-limit reference), each started fresh
//! for every scenario and pinned to the same CPU, repetitions interleaved (for each repetition,
//! each scenario runs against every server before the next scenario starts). One markdown table
//! and one JSON file hold every measure per server with Herald's ratios to the others.
//!
//! `--tool pushbench` measures with pushbench (an independent load generator) instead, and
//! `--cross-check` runs the other tool as well against some servers, so that the figures of both
//! tools can be set side by side.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde_json::{Value, json};

use crate::scenarios::{self, fanout::Fanout};
use crate::server::{self, Kind, Launcher, Target};
use crate::stats::Report;

mod report;

use report::thousands;

/// Which load generator measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Tool {
    /// This tool.
    HeraldBench,
    /// pushbench (`--pushbench`), run as a child process pinned like this one.
    Pushbench,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Self::HeraldBench => "herald-bench",
            Self::Pushbench => "pushbench",
        }
    }

    fn other(self) -> Self {
        match self {
            Self::HeraldBench => Self::Pushbench,
            Self::Pushbench => Self::HeraldBench,
        }
    }
}

/// Sizes of the comparison (at `full`, those of docs/performance.md's side-by-side table).
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Connections of the connect scenario.
    pub connections: usize,
    /// Channels they are spread over.
    pub channels: usize,
    /// Subscriber counts of the two fan-out runs (large first).
    pub subscribers: [usize; 2],
    /// Length of fan-out bursts, trigger runs and client-event runs.
    pub secs: Duration,
    /// REST connections of the trigger run.
    pub trigger_connections: usize,
    /// Client-event pairs.
    pub pairs: usize,
    /// Length of the churn run.
    pub churn: Duration,
}

/// Everything a comparison needs.
pub struct Plan {
    /// Servers measured, in this order within each repetition.
    pub servers: Vec<Kind>,
    /// Servers measured by the other tool as well.
    pub cross_check: Vec<Kind>,
    /// The tool behind the main table.
    pub tool: Tool,
    /// Repetitions.
    pub reps: usize,
    /// Sizes.
    pub sizes: Sizes,
    /// How to start each server.
    pub launchers: Vec<Launcher>,
    /// The pushbench binary.
    pub pushbench: PathBuf,
    /// The CPU pushbench is pinned to (`--cpu`); this process should be pinned to it too.
    pub bench_cpu: Option<usize>,
    /// Where the table, the JSON and every run's raw results go.
    pub out: PathBuf,
    /// The steps to run (all by default).
    pub steps: Vec<Step>,
    /// Publisher connections of pushbench's fan-out runs (its default is 1; herald-bench uses 4).
    pub pushbench_publishers: usize,
}

/// One scenario run against a fresh server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Step {
    /// Connections spread over channels: connect rate, CPU and RSS per connection.
    Connect,
    /// Fan-out to the larger subscriber count.
    FanoutLarge,
    /// Fan-out to the smaller subscriber count.
    FanoutSmall,
    /// REST triggers without subscribers.
    Trigger,
    /// Client-event pairs.
    ClientEvents,
    /// Connect, subscribe, close in a loop.
    Churn,
}

/// Every step, in the order a repetition runs them.
pub const STEPS: [Step; 6] =
    [Step::Connect, Step::FanoutLarge, Step::FanoutSmall, Step::Trigger, Step::ClientEvents, Step::Churn];

impl Step {
    fn name(self, sizes: &Sizes) -> String {
        match self {
            Self::Connect => "connect".into(),
            Self::FanoutLarge => format!("fanout-{}", sizes.subscribers[0]),
            Self::FanoutSmall => format!("fanout-{}", sizes.subscribers[1]),
            Self::Trigger => "trigger".into(),
            Self::ClientEvents => "client-events".into(),
            Self::Churn => "churn".into(),
        }
    }
}

/// CPU use (% of one core) from which a side counts as the limit.
const LIMIT: f64 = 90.0;

/// CPU use of the rest of the machine (% of one core) above which a figure may have been
/// disturbed by other work.
const DISTURBED: f64 = 15.0;

/// Runs of one step against one server, at most, when the machine was busy with other work.
const ATTEMPTS: usize = 3;

/// Wait until the machine has been quiet (under [`DISTURBED`] % of a core busy in all) for 3 s,
/// at most 10 minutes: between runs nothing of the comparison's own runs, so whatever the machine
/// does is someone else's work, which would show in the next figures.
async fn wait_for_quiet() {
    let started = std::time::Instant::now();
    let mut quiet_for = 0;
    let mut told = false;
    while started.elapsed() < Duration::from_secs(600) {
        let before = server::machine_busy_us();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let busy = server::machine_busy_us().zip(before).map(|(after, before)| after.saturating_sub(before));
        if busy.is_some_and(|us| us as f64 / 10_000.0 < DISTURBED) {
            quiet_for += 1;
            if quiet_for >= 3 {
                return;
            }
        } else {
            quiet_for = 0;
            if !told {
                println!("compare: waiting for a quiet machine (other work keeps a CPU busy)");
                told = true;
            }
        }
    }
    println!("compare: the machine stayed busy for 10 minutes; going on");
}

/// Which way is better for a measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

/// One row of the table: what it counts and where each tool reports it.
struct Measure {
    key: &'static str,
    step: Step,
    unit: &'static str,
    better: Better,
    /// Values are divided by this before display and ratios (KiB -> MiB).
    scale: f64,
    /// Decimals shown.
    digits: usize,
}

const MEASURES: [Measure; 15] = [
    Measure {
        key: "fanout_large_rate",
        step: Step::FanoutLarge,
        unit: "msg/s",
        better: Better::Higher,
        scale: 1.0,
        digits: 0,
    },
    Measure {
        key: "fanout_large_cpu",
        step: Step::FanoutLarge,
        unit: "µs",
        better: Better::Lower,
        scale: 1.0,
        digits: 2,
    },
    Measure {
        key: "fanout_small_rate",
        step: Step::FanoutSmall,
        unit: "msg/s",
        better: Better::Higher,
        scale: 1.0,
        digits: 0,
    },
    Measure {
        key: "fanout_small_cpu",
        step: Step::FanoutSmall,
        unit: "µs",
        better: Better::Lower,
        scale: 1.0,
        digits: 2,
    },
    Measure { key: "connect_rate", step: Step::Connect, unit: "conn/s", better: Better::Higher, scale: 1.0, digits: 0 },
    Measure { key: "connect_cpu", step: Step::Connect, unit: "µs", better: Better::Lower, scale: 1.0, digits: 0 },
    Measure { key: "trigger_rate", step: Step::Trigger, unit: "req/s", better: Better::Higher, scale: 1.0, digits: 0 },
    Measure { key: "trigger_cpu", step: Step::Trigger, unit: "µs", better: Better::Lower, scale: 1.0, digits: 1 },
    Measure { key: "client_p50", step: Step::ClientEvents, unit: "ms", better: Better::Lower, scale: 1.0, digits: 2 },
    Measure { key: "client_p99", step: Step::ClientEvents, unit: "ms", better: Better::Lower, scale: 1.0, digits: 2 },
    Measure {
        key: "client_delivered",
        step: Step::ClientEvents,
        unit: "%",
        better: Better::Higher,
        scale: 1.0,
        digits: 1,
    },
    Measure {
        key: "rss_per_connection",
        step: Step::Connect,
        unit: "KiB",
        better: Better::Lower,
        scale: 1.0,
        digits: 2,
    },
    Measure { key: "churn_growth", step: Step::Churn, unit: "MiB", better: Better::Lower, scale: 1024.0, digits: 1 },
    Measure {
        key: "churn_growth_warm",
        step: Step::Churn,
        unit: "MiB",
        better: Better::Lower,
        scale: 1024.0,
        digits: 1,
    },
    Measure { key: "churn_rate", step: Step::Churn, unit: "cycles/s", better: Better::Higher, scale: 1.0, digits: 0 },
];

impl Measure {
    /// What the row counts, in words, for the sizes of this run.
    fn label(&self, sizes: &Sizes) -> String {
        let [large, small] = sizes.subscribers.map(thousands);
        let secs = sizes.secs.as_secs();
        match self.key {
            "fanout_large_rate" | "fanout_small_rate" => {
                let n = if self.key == "fanout_large_rate" { &large } else { &small };
                format!(
                    "Fan-out, {n} subscribers on one channel, triggers back to back for {secs} s (at most 16 triggers' \
                     deliveries outstanding): deliveries received by the clients per second"
                )
            }
            "fanout_large_cpu" | "fanout_small_cpu" => {
                let n = if self.key == "fanout_large_cpu" { &large } else { &small };
                format!(
                    "Server CPU per delivery, {n} subscribers (user+system CPU of the server during the burst and its \
                     drain ÷ deliveries received)"
                )
            }
            "connect_rate" => format!(
                "Connect+subscribe/s, {} connections in {} channels: each counted once connected, subscribed and \
                 its subscription_succeeded received",
                thousands(sizes.connections),
                sizes.channels
            ),
            "connect_cpu" => "Server CPU per connect+subscribe (handshake, connection_established, subscribe, \
                              subscription_succeeded)"
                .into(),
            "trigger_rate" => format!(
                "REST triggers/s, {} keep-alive connections, one request in flight on each, channel without \
                 subscribers, {secs} s: answers with status 200",
                sizes.trigger_connections
            ),
            "trigger_cpu" => "Server CPU per trigger (HTTP, signature check, publish)".into(),
            "client_p50" | "client_p99" => format!(
                "Client events, {} pairs on private channels, each client sending 10/s for {secs} s: latency from \
                 send to the partner's receipt, {}",
                thousands(sizes.pairs),
                if self.key == "client_p50" { "p50" } else { "p99" }
            ),
            "client_delivered" => "Client events received by the partner, % of those sent".into(),
            "rss_per_connection" => format!(
                "RSS per idle subscribed connection: (server RSS with all {} connected − RSS before) ÷ connections",
                thousands(sizes.connections)
            ),
            "churn_growth" => format!(
                "Churn, 50 clients connecting, subscribing (100 channels) and closing in a loop for {} s: server RSS \
                 growth, 2 s after the end − before the first cycle",
                sizes.churn.as_secs()
            ),
            "churn_growth_warm" => "Churn: server RSS growth after warm-up (2 s after the end − at one fifth of \
                                    the run)"
                .into(),
            "churn_rate" => "Churn: connect+subscribe+close cycles per second".into(),
            _ => self.key.into(),
        }
    }

    /// Where herald-bench reports it: scenario row, or a computed value.
    fn in_herald_bench(&self, report: &Report) -> Option<f64> {
        let row = match self.key {
            "fanout_large_rate" | "fanout_small_rate" => "burst: deliveries/s",
            "fanout_large_cpu" | "fanout_small_cpu" => "burst: server CPU per delivery",
            "connect_rate" => "connect+subscribe rate",
            "connect_cpu" => "server CPU per connection",
            "trigger_rate" => "triggers/s",
            "trigger_cpu" => "server CPU per trigger",
            "client_p50" => "client-event latency p50",
            "client_p99" => "client-event latency p99",
            "client_delivered" => {
                let sent = report.value("client events sent")?;
                return (sent > 0.0).then(|| report.value("client events received").unwrap_or(0.0) * 100.0 / sent);
            }
            "rss_per_connection" => "server RSS per connection",
            "churn_growth" => "RSS growth from the start",
            "churn_growth_warm" => "RSS growth",
            "churn_rate" => "cycles/s",
            _ => return None,
        };
        report.value(row)
    }

    /// Where pushbench reports it in its JSON.
    fn in_pushbench(&self, json: &Value) -> Option<f64> {
        let r = &json["results"];
        match self.key {
            "fanout_large_rate" | "fanout_small_rate" => r["delivered_per_s"].as_f64(),
            "fanout_large_cpu" | "fanout_small_cpu" => r["server_cpu_us_per_delivered"].as_f64(),
            "connect_rate" => r["conn_sub_per_s"].as_f64(),
            "connect_cpu" => r["server_cpu_us_per_setup"].as_f64(),
            "trigger_rate" => r["triggers_per_s"].as_f64(),
            "trigger_cpu" => r["server_cpu_us_per_trigger"].as_f64(),
            "client_p50" => r["latency"]["p50_ms"].as_f64(),
            "client_p99" => r["latency"]["p99_ms"].as_f64(),
            "client_delivered" => {
                let sent = r["sent"].as_f64()?;
                (sent > 0.0).then(|| r["delivered"].as_f64().unwrap_or(0.0) * 100.0 / sent)
            }
            "rss_per_connection" => r["server_rss_per_conn_kb"].as_f64(),
            "churn_growth" => r["server_rss_growth_kb"].as_f64(),
            "churn_rate" => r["cycles_per_s"].as_f64(),
            _ => None,
        }
    }
}

/// What one run of one step against one server gave.
#[derive(Default)]
struct Outcome {
    values: BTreeMap<&'static str, f64>,
    /// Server and load-generator CPU use during the measured phase.
    usage: Usage,
    /// Messages lost, pusher errors and such, worth a note in the cell.
    notes: Vec<String>,
    error: Option<String>,
}

/// Server, load-generator and rest-of-the-machine CPU use of one run, % of one core.
type Usage = (Option<f64>, Option<f64>, Option<f64>);

/// Everything measured, by tool, server and measure.
#[derive(Default)]
struct Results {
    values: BTreeMap<(Tool, Kind, &'static str), Vec<f64>>,
    usage: BTreeMap<(Tool, Kind, Step), Vec<Usage>>,
    notes: BTreeMap<(Tool, Kind, Step), Vec<String>>,
    errors: BTreeMap<(Tool, Kind, Step), Vec<String>>,
    runs: Vec<Value>,
}

/// Run the comparison and write `compare.md` and `compare.json` into the plan's directory.
pub async fn run(plan: Plan) -> anyhow::Result<()> {
    std::fs::create_dir_all(&plan.out)?;
    let mut missing = BTreeMap::new();
    for kind in plan.servers.iter().chain(&plan.cross_check) {
        if let Some(launcher) = plan.launchers.iter().find(|l| l.kind == *kind)
            && let Some(what) = launcher.missing()
        {
            missing.insert(*kind, what);
        }
    }
    for (kind, what) in &missing {
        println!("compare: skipping {}: {what}", kind.name());
    }
    let needs_pushbench = plan.tool == Tool::Pushbench || !plan.cross_check.is_empty();
    if needs_pushbench && !plan.pushbench.exists() {
        bail!(
            "{} does not exist; build pushbench with `cargo build --release` in its directory (scripts/compare does it)",
            plan.pushbench.display()
        );
    }
    let mut results = Results::default();
    let started = std::time::Instant::now();
    for rep in 1..=plan.reps {
        for step in STEPS.into_iter().filter(|step| plan.steps.contains(step)) {
            for &kind in &plan.servers {
                if missing.contains_key(&kind) {
                    continue;
                }
                let mut tools = vec![plan.tool];
                if plan.cross_check.contains(&kind) {
                    tools.push(plan.tool.other());
                }
                for tool in tools {
                    let label = format!(
                        "rep {rep}/{}, {}, {}, {}",
                        plan.reps,
                        step.name(&plan.sizes),
                        kind.name(),
                        tool.name()
                    );
                    let mut attempt = 1;
                    let outcome = loop {
                        wait_for_quiet().await;
                        println!("\ncompare: {label} ({} s so far)", started.elapsed().as_secs());
                        let outcome = run_step(&plan, rep, step, kind, tool).await;
                        if let Some(error) = &outcome.error {
                            println!("compare: {label} failed: {error}");
                        }
                        match outcome.usage.2.filter(|rest| *rest >= DISTURBED) {
                            Some(rest) if attempt < ATTEMPTS && outcome.error.is_none() => {
                                println!(
                                    "compare: {label}: the rest of the machine used {rest:.0} % of a core during \
                                     the run; running it again once the machine is quiet"
                                );
                                attempt += 1;
                                tokio::time::sleep(Duration::from_secs(2)).await;
                            }
                            _ => break outcome,
                        }
                    };
                    results.record(&plan, rep, step, kind, tool, outcome, attempt);
                    // Let the kernel finish closing the run's sockets before the next server starts.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }
    let table = results.markdown(&plan, &missing);
    let document = results.json(&plan, &missing);
    std::fs::write(plan.out.join("compare.md"), &table)?;
    std::fs::write(plan.out.join("compare.json"), serde_json::to_string_pretty(&document)?)?;
    println!("\n{table}");
    println!(
        "compare: {} s in all; written to {} and {}",
        started.elapsed().as_secs(),
        plan.out.join("compare.md").display(),
        plan.out.join("compare.json").display()
    );
    Ok(())
}

/// Start the server fresh, run one step with one tool, stop the server.
async fn run_step(plan: &Plan, rep: usize, step: Step, kind: Kind, tool: Tool) -> Outcome {
    let Some(launcher) = plan.launchers.iter().find(|l| l.kind == kind) else {
        return Outcome { error: Some("no launcher".into()), ..Outcome::default() };
    };
    server::set_app(kind.default_app());
    let target = match launcher.start().await {
        Ok(target) => target,
        Err(error) => return Outcome { error: Some(format!("cannot start: {error:#}")), ..Outcome::default() },
    };
    let raw = plan.out.join("raw").join(format!("rep{rep}")).join(kind.name()).join(tool.name());
    let limit = Duration::from_secs(900);
    let outcome = match tool {
        Tool::HeraldBench => match tokio::time::timeout(limit, herald_bench_step(&target, step, &plan.sizes)).await {
            Ok(Ok(report)) => {
                let _ = report.save(&raw, &json!({}));
                report.print();
                outcome_of_report(&report, step)
            }
            Ok(Err(error)) => Outcome { error: Some(format!("{error:#}")), ..Outcome::default() },
            Err(_) => {
                Outcome { error: Some(format!("did not finish within {} s", limit.as_secs())), ..Outcome::default() }
            }
        },
        Tool::Pushbench => match pushbench_step(plan, &target, step, &raw, limit).await {
            Ok(json) => outcome_of_pushbench(&json, step),
            Err(error) => Outcome { error: Some(format!("{error:#}")), ..Outcome::default() },
        },
    };
    target.stop().await;
    outcome
}

async fn herald_bench_step(target: &Target, step: Step, sizes: &Sizes) -> anyhow::Result<Report> {
    let fanout = |subscribers| Fanout {
        subscribers,
        burst: sizes.secs,
        publishers: 4,
        rate: 0,
        steady: Duration::ZERO,
        window: Some(16),
    };
    match step {
        Step::Connect => scenarios::connect::run(target, sizes.connections, sizes.channels, 200).await,
        Step::FanoutLarge => scenarios::fanout::run(target, fanout(sizes.subscribers[0])).await,
        Step::FanoutSmall => scenarios::fanout::run(target, fanout(sizes.subscribers[1])).await,
        Step::Trigger => scenarios::trigger::run(target, sizes.trigger_connections, sizes.secs).await,
        Step::ClientEvents => scenarios::client_events::run(target, sizes.pairs, sizes.secs, 10).await,
        Step::Churn => scenarios::churn::run(target, 50, sizes.churn).await,
    }
}

fn outcome_of_report(report: &Report, step: Step) -> Outcome {
    let mut outcome = Outcome::default();
    for measure in MEASURES.iter().filter(|m| m.step == step) {
        if let Some(value) = measure.in_herald_bench(report) {
            outcome.values.insert(measure.key, value);
        }
    }
    let phase = match step {
        Step::Connect => "connect+subscribe: ",
        Step::FanoutLarge | Step::FanoutSmall => "burst: ",
        Step::Trigger | Step::ClientEvents | Step::Churn => "",
    };
    outcome.usage = (
        report.value(&format!("{phase}server CPU use")),
        report.value(&format!("{phase}load generator CPU use")),
        report.value(&format!("{phase}rest of the machine's CPU use")),
    );
    let mut note = |row: &str, what: &str| {
        if let Some(n) = report.value(row).filter(|n| *n > 0.0) {
            outcome.notes.push(format!("{} {what}", thousands(n as usize)));
        }
    };
    note("burst: lost", "lost");
    note("missed or duplicated", "clients missed the broadcast");
    note("non-200 answers", "refused");
    note("pusher:error frames received", "pusher:error");
    note("connections closed before the end", "closed early");
    outcome
}

/// Run the pushbench scenario that matches `step` and read its JSON.
async fn pushbench_step(
    plan: &Plan,
    target: &Target,
    step: Step,
    raw: &Path,
    limit: Duration,
) -> anyhow::Result<Value> {
    std::fs::create_dir_all(raw)?;
    let sizes = &plan.sizes;
    let secs = sizes.secs.as_secs().to_string();
    let mut args: Vec<String> = Vec::new();
    if let Some(cpu) = plan.bench_cpu {
        args.extend(["--cpu".into(), cpu.to_string()]);
    }
    let scenario: Vec<String> = match step {
        Step::Connect => vec![
            "connect".into(),
            "-n".into(),
            sizes.connections.to_string(),
            "--channels".into(),
            sizes.channels.to_string(),
            "--hold".into(),
            "2".into(),
            "--settle".into(),
            "2".into(),
        ],
        Step::FanoutLarge | Step::FanoutSmall => {
            let subscribers = sizes.subscribers[usize::from(step == Step::FanoutSmall)];
            let publishers = plan.pushbench_publishers.to_string();
            ["fanout", "-s", &subscribers.to_string(), "--rate", "0", "-k", &publishers, "-d", &secs]
                .map(String::from)
                .to_vec()
        }
        Step::Trigger => {
            ["trigger", "-k", &sizes.trigger_connections.to_string(), "-d", &secs].map(String::from).to_vec()
        }
        Step::ClientEvents => {
            ["client-events", "-p", &sizes.pairs.to_string(), "--rate", "10", "-d", &secs].map(String::from).to_vec()
        }
        Step::Churn => {
            ["churn", "-k", "50", "-d", &sizes.churn.as_secs().to_string(), "--settle", "2"].map(String::from).to_vec()
        }
    };
    let file = raw.join(format!("{}.json", step.name(sizes)));
    let app = server::app();
    args.extend(scenario);
    args.extend([
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        target.addr.port().to_string(),
        "--app-id".into(),
        app.id.clone(),
        "--key".into(),
        app.key.clone(),
        "--secret".into(),
        app.secret.clone(),
        "--label".into(),
        target.kind.name().into(),
        "--json".into(),
        file.display().to_string(),
    ]);
    if let Some(pid) = target.pid {
        args.extend(["--server-pid".into(), pid.to_string()]);
    }
    println!("  pushbench {}", args.join(" "));
    let mut command = tokio::process::Command::new(&plan.pushbench);
    command.args(&args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let output = tokio::time::timeout(limit, command.output())
        .await
        .with_context(|| format!("pushbench did not finish within {} s", limit.as_secs()))??;
    let text = String::from_utf8_lossy(&output.stdout);
    std::fs::write(raw.join(format!("{}.txt", step.name(sizes))), text.as_bytes())?;
    print!("{text}");
    if !output.status.success() {
        bail!("pushbench exited with {}: {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    let json = std::fs::read_to_string(&file).with_context(|| format!("pushbench wrote no {}", file.display()))?;
    Ok(serde_json::from_str(&json)?)
}

fn outcome_of_pushbench(json: &Value, step: Step) -> Outcome {
    let mut outcome = Outcome::default();
    for measure in MEASURES.iter().filter(|m| m.step == step) {
        if let Some(value) = measure.in_pushbench(json) {
            outcome.values.insert(measure.key, value);
        }
    }
    let cpu = match step {
        Step::Connect => &json["cpu_setup"],
        Step::FanoutLarge | Step::FanoutSmall => &json["cpu_publish_drain"],
        Step::Trigger => &json["cpu_publish"],
        Step::ClientEvents | Step::Churn => &json["cpu"],
    };
    let percent = |v: &Value| v.as_f64().map(|cores| (cores * 1000.0).round() / 10.0);
    let (server, bench) = (percent(&cpu["server_cores"]), percent(&cpu["bench_cores"]));
    let other =
        percent(&cpu["machine_busy_cores"]).map(|m| (m - server.unwrap_or(0.0) - bench.unwrap_or(0.0)).max(0.0));
    outcome.usage = (server, bench, other);
    let r = &json["results"];
    for (key, what) in [
        ("lost", "lost"),
        ("failed", "failed"),
        ("triggers_failed", "refused"),
        ("pusher_errors", "pusher:error"),
        ("closed_early", "closed early"),
        ("dropped_during_hold", "dropped"),
    ] {
        if let Some(n) = r[key].as_u64().filter(|n| *n > 0) {
            outcome.notes.push(format!("{} {what}", thousands(n as usize)));
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushbench_json_is_read() {
        let json = json!({
            "results": {"delivered_per_s": 500000.0, "server_cpu_us_per_delivered": 1.5, "lost": 3},
            "cpu_publish_drain": {"server_cores": 0.987, "bench_cores": 0.5},
        });
        let outcome = outcome_of_pushbench(&json, Step::FanoutLarge);
        assert_eq!(outcome.values.get("fanout_large_rate"), Some(&500000.0));
        assert_eq!(outcome.values.get("fanout_large_cpu"), Some(&1.5));
        assert_eq!(outcome.usage, (Some(98.7), Some(50.0), None));
        assert_eq!(outcome.notes, vec!["3 lost".to_owned()]);
    }
}
