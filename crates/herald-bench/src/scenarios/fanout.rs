//! `fanout`: S subscribers on one channel. Phase 1 triggers back to back from a few keep-alive REST
//! connections and measures deliveries per second and server CPU per delivery; phase 2 triggers at
//! a fixed rate and measures end-to-end latency (the send time travels in the payload). Lost
//! messages are counted in both and must be zero.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::{connect_many, cpu_between, cpu_row, wait_until};
use crate::client::{self, Rest};
use crate::server::Target;
use crate::stats::{Latencies, Report, round};

/// Sizes of one fan-out run.
#[derive(Clone, Copy, Debug)]
pub struct Fanout {
    /// Subscribers on the channel.
    pub subscribers: usize,
    /// Length of the back-to-back phase.
    pub burst: Duration,
    /// Concurrent REST connections in the back-to-back phase.
    pub publishers: usize,
    /// Triggers per second in the fixed-rate phase.
    pub rate: u32,
    /// Length of the fixed-rate phase.
    pub steady: Duration,
}

struct Readers {
    received: Arc<AtomicU64>,
    tasks: JoinSet<Latencies>,
}

/// Run the scenario.
pub async fn run(target: &Target, sizes: Fanout) -> anyhow::Result<Report> {
    let mut report = Report::new(&format!("fanout-{}", sizes.subscribers));
    report.param("subscribers", sizes.subscribers);
    report.param("burst_secs", sizes.burst.as_secs_f64());
    report.param("publishers", sizes.publishers);
    report.param("steady_rate", sizes.rate);
    report.param("steady_secs", sizes.steady.as_secs_f64());
    let (clients, _) = connect_many(target, sizes.subscribers, 256, |_| "fanout".to_owned()).await?;
    let readers = spawn_readers(clients);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subscribers = sizes.subscribers as u64;

    // Phase 1: back to back.
    let before = target.stats();
    let started = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let mut publishers = JoinSet::new();
    for _ in 0..sizes.publishers {
        let (addr, sent, burst) = (target.addr, sent.clone(), sizes.burst);
        publishers.spawn(async move {
            let mut rest = Rest::connect(addr).await?;
            while started.elapsed() < burst {
                rest.trigger("fanout", "e", &format!("{{\"t\":{}}}", client::now_us())).await?;
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
    let received = readers.received.clone();
    wait_until(Duration::from_secs(30), || received.load(Ordering::Relaxed) >= expected).await;
    let elapsed = started.elapsed();
    let after = target.stats();
    let delivered = readers.received.load(Ordering::Relaxed);
    report.row("burst: triggers", triggers, "requests");
    report.row("burst: deliveries", delivered, "messages");
    report.row("burst: lost", expected.saturating_sub(delivered), "messages");
    report.row("burst: deliveries/s", round(delivered as f64 / elapsed.as_secs_f64(), 0), "msg/s");
    cpu_row(&mut report, "burst: server CPU per delivery", cpu_between(before, after), delivered);
    if let (Some(before), Some(after)) = (before, after) {
        let cpu_share = (after.cpu_us - before.cpu_us) as f64 / elapsed.as_micros() as f64;
        report.row("burst: server CPU use", round(cpu_share * 100.0, 1), "% of one core");
    }

    // Phase 2: a fixed rate, for latency.
    readers.received.store(0, Ordering::Relaxed);
    let base = Instant::now();
    let mut rest = Rest::connect(target.addr).await?;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(sizes.rate.max(1))));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut steady_sent = 0u64;
    while base.elapsed() < sizes.steady {
        ticker.tick().await;
        rest.trigger("fanout", "s", &format!("{{\"t\":{}}}", client::now_us())).await?;
        steady_sent += 1;
    }
    let expected = steady_sent * subscribers;
    let received = readers.received.clone();
    wait_until(Duration::from_secs(30), || received.load(Ordering::Relaxed) >= expected).await;
    let delivered = readers.received.load(Ordering::Relaxed);
    // One last event tells every reader to stop (cheaper than a timer per message).
    rest.trigger("fanout", "z", "{}").await?;
    let mut latencies = Latencies::default();
    let mut tasks = readers.tasks;
    let collect = async {
        while let Some(joined) = tasks.join_next().await {
            latencies.extend(joined?);
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), collect).await??;
    report.row("steady: triggers", steady_sent, "requests");
    report.row("steady: lost", expected.saturating_sub(delivered), "messages");
    report.latencies("steady: end-to-end latency", &mut latencies);
    Ok(report)
}

/// One reader task per client: counts every event, records the latency of fixed-rate ("s") events
/// only (so the back-to-back phase does not skew the latency figures), and stops at "z".
fn spawn_readers(clients: Vec<client::Client>) -> Readers {
    let received = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for mut client in clients {
        let received = received.clone();
        tasks.spawn(async move {
            let mut latencies = Latencies::default();
            while let Some(message) = client.ws.next().await {
                let Ok(Message::Text(text)) = message else {
                    if message.is_ok() {
                        continue;
                    }
                    break;
                };
                let text = text.as_str();
                if text.starts_with(r#"{"event":"e""#) {
                    received.fetch_add(1, Ordering::Relaxed);
                } else if text.starts_with(r#"{"event":"s""#) {
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
    Readers { received, tasks }
}
