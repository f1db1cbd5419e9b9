//! `fanout`: S subscribers on one channel. Phase 1 triggers back to back from a few keep-alive REST
//! connections and measures deliveries per second (messages received by the clients) and server
//! CPU per delivery; with a window, publishers wait while more than that many triggers' worth of
//! deliveries are still on their way, so that a server slower than its REST API does not queue
//! without bound. Phase 2 triggers at a fixed rate and measures end-to-end latency (the send time
//! travels in the payload). Lost messages are counted in both and must be zero.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::{Meter, connect_many, cpu_between, cpu_row, wait_until};
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
    /// Triggers per second in the fixed-rate phase (0: no fixed-rate phase).
    pub rate: u32,
    /// Length of the fixed-rate phase.
    pub steady: Duration,
    /// At most this many triggers' worth of deliveries not yet received during the burst (none:
    /// no limit, publishers go as fast as the REST API answers).
    pub window: Option<u64>,
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
    if let Some(window) = sizes.window {
        report.param("window_triggers", window);
    }
    let (clients, _) = connect_many(target, sizes.subscribers, 256, |_| "fanout".to_owned()).await?;
    let readers = spawn_readers(clients);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let subscribers = sizes.subscribers as u64;

    // Phase 1: back to back.
    let before = target.stats();
    let meter = Meter::start(target);
    let started = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let stalls = Arc::new(AtomicU64::new(0));
    let window = sizes.window.map(|w| w.saturating_mul(subscribers));
    let mut publishers = JoinSet::new();
    for _ in 0..sizes.publishers {
        let (addr, sent, burst) = (target.addr, sent.clone(), sizes.burst);
        let (received, stalls) = (readers.received.clone(), stalls.clone());
        publishers.spawn(async move {
            let mut rest = Rest::connect(addr).await?;
            while started.elapsed() < burst {
                if let Some(window) = window {
                    let outstanding = || {
                        (sent.load(Ordering::Relaxed) * subscribers).saturating_sub(received.load(Ordering::Relaxed))
                    };
                    if !wait_for_window(outstanding, window, started + burst, &stalls).await {
                        break;
                    }
                }
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
    let last_delivery = drain(&readers.received, expected).await;
    let elapsed = last_delivery - started;
    let after = target.stats();
    let usage = meter.stop(target);
    let delivered = readers.received.load(Ordering::Relaxed);
    report.row("burst: triggers", triggers, "requests");
    report.row("burst: deliveries", delivered, "messages");
    report.row("burst: lost", expected.saturating_sub(delivered), "messages");
    report.row("burst: deliveries/s", round(delivered as f64 / elapsed.as_secs_f64(), 0), "msg/s");
    cpu_row(&mut report, "burst: server CPU per delivery", cpu_between(before, after), delivered);
    usage.record(&mut report, "burst: ");
    if sizes.window.is_some() {
        report.row(
            "burst: publishers stopped by a stall (no delivery for 5 s)",
            stalls.load(Ordering::Relaxed),
            "publishers",
        );
    }

    // Phase 2: a fixed rate, for latency.
    readers.received.store(0, Ordering::Relaxed);
    let base = Instant::now();
    let mut rest = Rest::connect(target.addr).await?;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(sizes.rate.max(1))));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut steady_sent = 0u64;
    while sizes.rate > 0 && base.elapsed() < sizes.steady {
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
    if sizes.rate > 0 {
        report.row("steady: triggers", steady_sent, "requests");
        report.row("steady: lost", expected.saturating_sub(delivered), "messages");
        report.latencies("steady: end-to-end latency", &mut latencies);
    }
    Ok(report)
}

/// Wait until `expected` deliveries arrived, for at most 30 s and at most 3 s without any; returns
/// when the last one was seen (so that lost messages do not count the wait as delivery time).
async fn drain(received: &AtomicU64, expected: u64) -> Instant {
    let (deadline, mut last, mut seen) =
        (Instant::now() + Duration::from_secs(30), received.load(Ordering::Relaxed), Instant::now());
    while last < expected && Instant::now() < deadline && seen.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = received.load(Ordering::Relaxed);
        if now != last {
            (last, seen) = (now, Instant::now());
        }
    }
    seen
}

/// Wait while more than `window` deliveries are outstanding. False when the burst is over or no
/// delivery arrived for 5 s (a stall, counted; what is missing is counted as lost).
async fn wait_for_window(outstanding: impl Fn() -> u64, window: u64, end: Instant, stalls: &AtomicU64) -> bool {
    let mut last = outstanding();
    let mut progress = Instant::now();
    while last > window {
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        let now = outstanding();
        if now < last {
            progress = Instant::now();
        } else if progress.elapsed() > Duration::from_secs(5) {
            stalls.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        last = now;
    }
    true
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
                if client::event_is(text, "e") {
                    received.fetch_add(1, Ordering::Relaxed);
                } else if client::event_is(text, "s") {
                    received.fetch_add(1, Ordering::Relaxed);
                    if let Some(sent) = client::timestamp_of(text) {
                        latencies.push(client::now_us().saturating_sub(sent));
                    }
                } else if client::event_is(text, "z") {
                    break;
                }
            }
            latencies
        });
    }
    Readers { received, tasks }
}
