//! `client-events`: pairs of connections on private channels, each sending a client event ten times
//! a second to its partner; the latency from send to the partner's receipt.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::{Meter, connect_many, cpu_between, cpu_row};
use crate::client;
use crate::server::Target;
use crate::stats::{Latencies, Report, round};

/// Run with `pairs` pairs for `duration`, each client sending `per_second` events per second.
pub async fn run(target: &Target, pairs: usize, duration: Duration, per_second: u32) -> anyhow::Result<Report> {
    let mut report = Report::new("client-events");
    report.param("pairs", pairs);
    report.param("per_client_per_second", per_second);
    report.param("secs", duration.as_secs_f64());
    let (clients, _) = connect_many(target, pairs * 2, 256, |i| format!("private-pair-{}", i / 2)).await?;
    let before = target.stats();
    let meter = Meter::start(target);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let n = clients.len().max(1) as u32;
    for (i, client) in clients.into_iter().enumerate() {
        // Clients start their ticks spread over one period, as real users would, instead of all
        // sending in the same millisecond.
        let period = Duration::from_secs_f64(1.0 / f64::from(per_second.max(1)));
        let phase = period * i as u32 / n;
        tasks.spawn(exchange(client, started, duration, period, phase));
    }
    let mut latencies = Latencies::default();
    let (mut sent, mut errors, mut closed) = (0u64, 0u64, 0u64);
    while let Some(joined) = tasks.join_next().await {
        let exchanged = joined??;
        latencies.extend(exchanged.latencies);
        sent += exchanged.sent;
        errors += exchanged.errors;
        closed += u64::from(exchanged.closed);
    }
    let after = target.stats();
    let usage = meter.stop(target);
    let received = latencies.len() as u64;
    report.row("client events sent", sent, "events");
    report.row("client events received", received, "events");
    report.row("events/s", round(received as f64 / duration.as_secs_f64(), 0), "events/s");
    report.latencies("client-event latency", &mut latencies);
    cpu_row(&mut report, "server CPU per relayed event", cpu_between(before, after), received);
    usage.record(&mut report, "");
    if errors > 0 || closed > 0 {
        report.row("pusher:error frames received", errors, "frames");
        report.row("connections closed before the end", closed, "connections");
    }
    Ok(report)
}

/// What one client sent and received.
struct Exchanged {
    latencies: Latencies,
    sent: u64,
    /// `pusher:error` frames (a server refusing client events says so with one).
    errors: u64,
    /// Whether the connection ended before the run did.
    closed: bool,
}

/// Send at a fixed pace on the client's channel while recording what the partner sends.
async fn exchange(
    client: client::Client,
    started: Instant,
    duration: Duration,
    period: Duration,
    phase: Duration,
) -> anyhow::Result<Exchanged> {
    let channel = client.channel;
    let (mut sink, mut stream) = client.ws.split();
    let mut out = Exchanged { latencies: Latencies::default(), sent: 0, errors: 0, closed: false };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::from_std(started + phase), period);
    let deadline = tokio::time::sleep_until(tokio::time::Instant::from_std(started + duration));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            _ = ticker.tick() => {
                let frame = format!(r#"{{"event":"client-ping","channel":"{channel}","data":{{"t":{}}}}}"#, client::now_us());
                if sink.send(Message::text(frame)).await.is_err() {
                    out.closed = true;
                    break;
                }
                out.sent += 1;
            }
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let text = text.as_str();
                    if client::event_is(text, "client-ping") {
                        if let Some(t) = client::timestamp_of(text) {
                            out.latencies.push(client::now_us().saturating_sub(t));
                        }
                    } else if client::event_is(text, "pusher:error") {
                        out.errors += 1;
                    }
                }
                Some(Ok(_)) => {}
                _ => {
                    out.closed = true;
                    break;
                }
            },
        }
    }
    Ok(out)
}
