//! `client-events`: pairs of connections on private channels, each sending a client event ten times
//! a second to its partner; the latency from send to the partner's receipt.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::{connect_many, cpu_between, cpu_row};
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
    let mut sent = 0u64;
    while let Some(joined) = tasks.join_next().await {
        let (samples, count) = joined??;
        latencies.extend(samples);
        sent += count;
    }
    let after = target.stats();
    let received = latencies.len() as u64;
    report.row("client events sent", sent, "events");
    report.row("client events received", received, "events");
    report.row("events/s", round(received as f64 / duration.as_secs_f64(), 0), "events/s");
    report.latencies("client-event latency", &mut latencies);
    cpu_row(&mut report, "server CPU per relayed event", cpu_between(before, after), received);
    Ok(report)
}

/// Send at a fixed pace on the client's channel while recording what the partner sends.
async fn exchange(
    client: client::Client,
    started: Instant,
    duration: Duration,
    period: Duration,
    phase: Duration,
) -> anyhow::Result<(Latencies, u64)> {
    let channel = client.channel;
    let (mut sink, mut stream) = client.ws.split();
    let mut latencies = Latencies::default();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::from_std(started + phase), period);
    let deadline = tokio::time::sleep_until(tokio::time::Instant::from_std(started + duration));
    tokio::pin!(deadline);
    let mut sent = 0u64;
    loop {
        tokio::select! {
            () = &mut deadline => break,
            _ = ticker.tick() => {
                let frame = format!(r#"{{"event":"client-ping","channel":"{channel}","data":{{"t":{}}}}}"#, client::now_us());
                sink.send(Message::text(frame)).await?;
                sent += 1;
            }
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if text.as_str().starts_with(r#"{"event":"client-ping""#)
                        && let Some(t) = client::timestamp_of(text.as_str())
                    {
                        latencies.push(client::now_us().saturating_sub(t));
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
    Ok((latencies, sent))
}
