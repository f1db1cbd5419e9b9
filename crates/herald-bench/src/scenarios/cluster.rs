//! `cluster`: two nodes and one `redis-server` on this machine, all pinned to the server CPU.
//!
//! 1. Cross-node fan-out: S subscribers on node B, triggers on node A as fast as node B delivers them
//!    (at most a few events in flight), so every delivery crosses Redis. Deliveries/s, each node's CPU per delivery, Redis CPU per event; then
//!    the same S subscribers and triggers on one node without Redis, for the ratio.
//! 0. Forwarding: triggers back to back on node A to a channel nobody subscribes to; node A's,
//!    Redis's and node B's CPU per event.
//! 2. Cross-node latency: N subscribers, each on a channel of its own, half on each node; R triggers
//!    per second in all, each sent to the node its subscriber is not on. Send time to receipt, p50
//!    and p99 over every delivery.
//!
//! Every count is of messages received by the clients; CPU is read from `/proc` for each process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::{connect_many, cpu_between, cpu_row, wait_until};
use crate::client::{self, Rest};
use crate::server::{ProcStats, Redis, Target};
use crate::stats::{Latencies, Report, round};

/// Sizes of one cluster run.
#[derive(Clone, Copy, Debug)]
pub struct ClusterRun {
    /// Subscribers of the fan-out phase (all on node B).
    pub subscribers: usize,
    /// Length of the back-to-back fan-out phase.
    pub burst: Duration,
    /// Subscribers of the latency phase, one channel each, spread over both nodes.
    pub latency_subscribers: usize,
    /// Triggers per second of the latency phase, in all.
    pub rate: u32,
    /// Length of the latency phase.
    pub steady: Duration,
}

/// Two nodes sharing one Redis, started fresh.
struct Cluster {
    redis: Redis,
    nodes: Vec<Target>,
}

impl Cluster {
    async fn start(binary: &std::path::Path, cpu: usize) -> anyhow::Result<Self> {
        let redis = Redis::start(Some(cpu)).await?;
        let flags = vec!["--redis-url".to_owned(), redis.url()];
        let mut nodes = Vec::new();
        for _ in 0..2 {
            nodes.push(Target::start_with(binary, Some(cpu), &flags).await?);
        }
        for node in &nodes {
            wait_for_peers(node, 1).await?;
        }
        Ok(Self { redis, nodes })
    }

    async fn stop(self) {
        for node in self.nodes {
            node.stop().await;
        }
        self.redis.stop().await;
    }
}

/// Wait until `node` hears from `peers` other nodes.
pub async fn wait_for_peers(node: &Target, peers: usize) -> anyhow::Result<()> {
    let wanted = format!("herald_cluster_peers {peers}\n");
    let mut rest = Rest::connect(node.addr).await?;
    for _ in 0..400 {
        if rest.get_text("/metrics").await?.contains(&wanted) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("node {} never heard from {peers} other node(s)", node.addr)
}

/// Run the scenario (then the same fan-out on one node without Redis, for the comparison).
pub async fn run(binary: &std::path::Path, cpu: usize, sizes: ClusterRun) -> anyhow::Result<Report> {
    let mut report = Report::new("cluster");
    report.param("nodes", 2);
    report.param("subscribers", sizes.subscribers);
    report.param("burst_secs", sizes.burst.as_secs_f64());
    report.param("latency_subscribers", sizes.latency_subscribers);
    report.param("latency_rate", sizes.rate);
    report.param("latency_secs", sizes.steady.as_secs_f64());

    let cluster = Cluster::start(binary, cpu).await?;
    let forwarding = forward(&cluster, sizes.burst).await;
    let cross = fan_out(&cluster.nodes[0], &cluster.nodes[1], Some(&cluster.redis), sizes).await;
    cluster.stop().await;
    let (forwarding, cross) = (forwarding?, cross?);
    report.row("forwarding: triggers/s (node A, no subscribers)", round(forwarding.rate, 0), "req/s");
    report.row("forwarding: events received by node B", forwarding.received, "events");
    report.row("forwarding: events lost", forwarding.sent.saturating_sub(forwarding.received), "events");
    cpu_row(&mut report, "forwarding: node A CPU per event", forwarding.cpu[0], forwarding.sent);
    cpu_row(&mut report, "forwarding: Redis CPU per event", forwarding.cpu[2], forwarding.sent);
    cpu_row(&mut report, "forwarding: node B CPU per event", forwarding.cpu[1], forwarding.sent);
    let single = Target::start(binary, Some(cpu)).await?;
    let local = fan_out(&single, &single, None, sizes).await;
    single.stop().await;
    let local = local?;

    report.row("cross-node: triggers (node A)", cross.triggers, "requests");
    report.row("cross-node: deliveries (node B)", cross.delivered, "messages");
    report.row("cross-node: lost", cross.lost, "messages");
    report.row("cross-node: deliveries/s", round(cross.delivered as f64 / cross.elapsed.as_secs_f64(), 0), "msg/s");
    cpu_row(&mut report, "cross-node: node A CPU per event", cross.publisher_cpu, cross.triggers);
    cpu_row(&mut report, "cross-node: node B CPU per delivery", cross.receiver_cpu, cross.delivered);
    cpu_row(&mut report, "cross-node: Redis CPU per event", cross.redis_cpu, cross.triggers);
    let all = [cross.publisher_cpu, cross.receiver_cpu, cross.redis_cpu].into_iter().sum::<Option<u64>>();
    cpu_row(&mut report, "cross-node: all processes' CPU per delivery", all, cross.delivered);
    report.row("one node: deliveries/s", round(local.delivered as f64 / local.elapsed.as_secs_f64(), 0), "msg/s");
    report.row("one node: lost", local.lost, "messages");
    cpu_row(&mut report, "one node: server CPU per delivery", local.receiver_cpu, local.delivered);
    if let (Some(cross_cpu), Some(local_cpu)) = (cross.receiver_cpu, local.receiver_cpu) {
        let per_cross = cross_cpu as f64 / cross.delivered.max(1) as f64;
        let per_local = local_cpu as f64 / local.delivered.max(1) as f64;
        report.row("receiving node CPU per delivery, cross-node / one node", round(per_cross / per_local, 2), "x");
    }
    if let (Some(all), Some(local_cpu)) = (all, local.receiver_cpu) {
        let per_all = all as f64 / cross.delivered.max(1) as f64;
        let per_local = local_cpu as f64 / local.delivered.max(1) as f64;
        report.row("all CPU per delivery, cluster / one node", round(per_all / per_local, 2), "x");
    }

    let cluster = Cluster::start(binary, cpu).await?;
    let latency = cross_latency(&cluster, sizes).await;
    cluster.stop().await;
    let (sent, lost, mut latencies) = latency?;
    report.row("latency: triggers", sent, "requests");
    report.row("latency: lost", lost, "messages");
    report.latencies("latency: cross-node send to receipt", &mut latencies);
    Ok(report)
}

/// What the forwarding phase measured.
struct Forwarding {
    sent: u64,
    received: u64,
    rate: f64,
    /// CPU of node A, node B and Redis.
    cpu: [Option<u64>; 3],
}

/// Triggers back to back on node A to a channel nobody subscribes to: what an event costs to cross
/// the cluster (node A's REST handling and forwarding, Redis, node B's receiving).
async fn forward(cluster: &Cluster, length: Duration) -> anyhow::Result<Forwarding> {
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    let before = [a.stats(), b.stats(), cluster.redis.stats()];
    let received_before = counter(b, "herald_cluster_events_received_total").await?;
    let started = Instant::now();
    let mut publishers = JoinSet::new();
    for _ in 0..4 {
        let addr = a.addr;
        publishers.spawn(async move {
            let mut rest = Rest::connect(addr).await?;
            let mut sent = 0u64;
            while started.elapsed() < length {
                rest.trigger("nobody", "e", "{}").await?;
                sent += 1;
            }
            anyhow::Ok(sent)
        });
    }
    let mut sent = 0;
    while let Some(joined) = publishers.join_next().await {
        sent += joined??;
    }
    let elapsed = started.elapsed();
    let mut received = 0;
    for _ in 0..100 {
        received = counter(b, "herald_cluster_events_received_total").await? - received_before;
        if received >= sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = [a.stats(), b.stats(), cluster.redis.stats()];
    let cpu = [0, 1, 2].map(|i| cpu_between(before[i], after[i]));
    Ok(Forwarding { sent, received, rate: sent as f64 / elapsed.as_secs_f64(), cpu })
}

/// A counter of `node`'s `/metrics`.
async fn counter(node: &Target, name: &str) -> anyhow::Result<u64> {
    let text = Rest::connect(node.addr).await?.get_text("/metrics").await?;
    let prefix = format!("{name} ");
    Ok(text.lines().find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok()).unwrap_or(0))
}

/// Events sent but not yet delivered to every subscriber, at most, in the fan-out phases.
const WINDOW: u64 = 8;

/// What one fan-out run measured.
struct FanOut {
    triggers: u64,
    delivered: u64,
    lost: u64,
    elapsed: Duration,
    publisher_cpu: Option<u64>,
    receiver_cpu: Option<u64>,
    redis_cpu: Option<u64>,
}

/// S subscribers on `receiver`, triggers back to back on `publisher` (the same server for the
/// one-node comparison).
async fn fan_out(
    publisher: &Target,
    receiver: &Target,
    redis: Option<&Redis>,
    sizes: ClusterRun,
) -> anyhow::Result<FanOut> {
    let (clients, _) = connect_many(receiver, sizes.subscribers, 256, |_| "fanout".to_owned()).await?;
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = JoinSet::new();
    for mut client in clients {
        let received = received.clone();
        readers.spawn(async move {
            while let Some(Ok(message)) = client.ws.next().await {
                if let Message::Text(text) = message
                    && text.as_str().starts_with(r#"{"event":"e""#)
                {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let same = std::ptr::eq(publisher, receiver);
    let sample = |redis: Option<&Redis>| -> (Option<ProcStats>, Option<ProcStats>, Option<ProcStats>) {
        (publisher.stats(), receiver.stats(), redis.and_then(Redis::stats))
    };
    let before = sample(redis);
    let started = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let mut publishers = JoinSet::new();
    let subscribers = sizes.subscribers as u64;
    for _ in 0..4 {
        let (addr, sent, received, burst) = (publisher.addr, sent.clone(), received.clone(), sizes.burst);
        publishers.spawn(async move {
            let mut rest = Rest::connect(addr).await?;
            while started.elapsed() < burst {
                // A trigger on a node without subscribers returns before any delivery: without a
                // window, node A would accept events far faster than node B can deliver them, and
                // this would measure overload (losses) instead of throughput. On one node the REST
                // call itself queues the fan-out, so the window never waits there.
                let in_flight =
                    sent.load(Ordering::Relaxed).saturating_sub(received.load(Ordering::Relaxed) / subscribers);
                if in_flight >= WINDOW {
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    continue;
                }
                rest.trigger("fanout", "e", "{}").await?;
                sent.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = publishers.join_next().await {
        joined??;
    }
    let triggers = sent.load(Ordering::Relaxed);
    let expected = triggers * subscribers;
    let counted = received.clone();
    wait_until(Duration::from_secs(60), || counted.load(Ordering::Relaxed) >= expected).await;
    let elapsed = started.elapsed();
    let after = sample(redis);
    readers.abort_all();
    let delivered = received.load(Ordering::Relaxed);
    Ok(FanOut {
        triggers,
        delivered,
        lost: expected.saturating_sub(delivered),
        elapsed,
        publisher_cpu: if same { None } else { cpu_between(before.0, after.0) },
        receiver_cpu: cpu_between(before.1, after.1),
        redis_cpu: cpu_between(before.2, after.2),
    })
}

/// N subscribers on channels of their own, half on each node; R triggers per second, each to the
/// other node. Returns (triggers sent, lost, latencies).
async fn cross_latency(cluster: &Cluster, sizes: ClusterRun) -> anyhow::Result<(u64, u64, Latencies)> {
    let n = sizes.latency_subscribers.max(2);
    let mut readers = JoinSet::new();
    let received = Arc::new(AtomicU64::new(0));
    for (side, node) in cluster.nodes.iter().enumerate() {
        let (clients, _) = connect_many(node, n / 2, 128, |i| format!("lat-{side}-{i}")).await?;
        for mut client in clients {
            let received = received.clone();
            readers.spawn(async move {
                let mut latencies = Latencies::default();
                while let Some(Ok(message)) = client.ws.next().await {
                    let Message::Text(text) = message else { continue };
                    let text = text.as_str();
                    if text.starts_with(r#"{"event":"s""#) {
                        received.fetch_add(1, Ordering::Relaxed);
                        if let Some(sent) = client::timestamp_of(text) {
                            latencies.push(client::now_us().saturating_sub(sent));
                        }
                    } else if text.starts_with(r#"{"event":"z""#) {
                        break;
                    }
                }
                latencies
            });
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // One REST connection per node; the subscribers of side 0 get their events through node 1 and
    // the other way round.
    let mut rests = [Rest::connect(cluster.nodes[1].addr).await?, Rest::connect(cluster.nodes[0].addr).await?];
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(sizes.rate.max(1))));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < sizes.steady {
        ticker.tick().await;
        let side = (sent % 2) as usize;
        let channel = format!("lat-{side}-{}", (sent / 2) as usize % (n / 2));
        rests[side].trigger(&channel, "s", &format!("{{\"t\":{}}}", client::now_us())).await?;
        sent += 1;
    }
    let counted = received.clone();
    wait_until(Duration::from_secs(30), || counted.load(Ordering::Relaxed) >= sent).await;
    let lost = sent.saturating_sub(received.load(Ordering::Relaxed));
    for (side, rest) in rests.iter_mut().enumerate() {
        for i in 0..n / 2 {
            rest.trigger(&format!("lat-{side}-{i}"), "z", "{}").await?;
        }
    }
    let mut latencies = Latencies::default();
    let collect = async {
        while let Some(joined) = readers.join_next().await {
            latencies.extend(joined?);
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), collect).await??;
    Ok((sent, lost, latencies))
}
