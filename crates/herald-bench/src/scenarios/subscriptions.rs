//! `subscriptions`: what holding subscriptions costs the server. C clients each subscribe to S
//! channels of their own (the most a connection may hold is 1,000), so every subscription is also a
//! channel; RSS and CPU per subscription, what `GET /channels` listing all of them costs, then RSS
//! once they all unsubscribed.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::json;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use super::{cpu_between, cpu_row};
use crate::client::{self, Rest, next_json};
use crate::server::{Kind, Target};
use crate::stats::{Report, round};

/// Run the scenario with `clients` connections of `per_client` subscriptions each.
pub async fn run(target: &Target, clients: usize, per_client: usize) -> anyhow::Result<Report> {
    let mut report = Report::new("subscriptions");
    report.param("clients", clients);
    report.param("subscriptions_per_client", per_client);
    let mut connected = Vec::with_capacity(clients);
    for _ in 0..clients {
        connected.push(client::connect(target.addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = target.stats();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (i, mut client) in connected.into_iter().enumerate() {
        tasks.spawn(async move {
            for j in 0..per_client {
                let frame = json!({"event": "pusher:subscribe", "data": {"channel": format!("s-{i}-{j}")}});
                client.ws.feed(Message::text(frame.to_string())).await?;
            }
            client.ws.flush().await?;
            let mut confirmed = 0;
            while confirmed < per_client {
                let frame = next_json(&mut client.ws).await?;
                match frame["event"].as_str() {
                    Some("pusher_internal:subscription_succeeded") => confirmed += 1,
                    Some("pusher_internal:subscription_count") => {}
                    _ => anyhow::bail!("subscribing: got {frame}"),
                }
            }
            anyhow::Ok((i, client))
        });
    }
    let mut subscribed = Vec::with_capacity(clients);
    while let Some(joined) = tasks.join_next().await {
        subscribed.push(joined??);
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = target.stats();
    let total = (clients * per_client) as u64;
    report.row("subscriptions", total, "subscriptions");
    report.row("subscribe rate", round(total as f64 / elapsed.as_secs_f64(), 0), "subscriptions/s");
    if let (Some(before), Some(after)) = (before, after) {
        let per = after.rss_kib.saturating_sub(before.rss_kib) as f64 * 1024.0 / total as f64;
        report.row("server RSS with every subscription", after.rss_kib, "KiB");
        report.row("server RSS per subscription", round(per, 0), "bytes");
    }
    cpu_row(&mut report, "server CPU per subscription", cpu_between(before, after), total);
    match target.kind {
        Kind::Herald => list_channels(target, &mut report, total).await?,
        Kind::Floor => report.param("channel_list", "skipped: the floor server has no REST reads"),
        Kind::Soketi | Kind::Sockudo => {
            if let Err(error) = list_channels(target, &mut report, total).await {
                report.param("channel_list", format!("failed: {error:#}"));
            }
        }
    }
    for (i, mut client) in subscribed {
        for j in 0..per_client {
            let frame = json!({"event": "pusher:unsubscribe", "data": {"channel": format!("s-{i}-{j}")}});
            client.ws.feed(Message::text(frame.to_string())).await?;
        }
        client.ws.flush().await?;
        client.ws.send(Message::Close(None)).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some(released) = target.stats() {
        report.row("server RSS after all unsubscribed", released.rss_kib, "KiB");
    }
    Ok(report)
}

/// `GET /apps/{id}/channels?info=subscription_count` while every channel is occupied: its size, how
/// long the whole answer took, and how far it raised the server's peak RSS (VmHWM; zero when the
/// listing stayed below the peak the subscriptions had already reached).
async fn list_channels(target: &Target, report: &mut Report, channels: u64) -> anyhow::Result<()> {
    let mut rest = Rest::connect(target.addr).await?;
    let before = target.stats();
    let started = Instant::now();
    let (status, body) = rest.get_signed("channels", &[("info", "subscription_count")]).await?;
    let elapsed = started.elapsed();
    let after = target.stats();
    anyhow::ensure!(status == 200, "GET /channels answered {status}");
    let listed = serde_json::from_slice::<serde_json::Value>(&body)?["channels"].as_object().map_or(0, |c| c.len());
    anyhow::ensure!(listed as u64 == channels, "GET /channels listed {listed} of {channels} channels");
    report.row("GET /channels: channels listed", listed as u64, "channels");
    report.row("GET /channels: body", body.len() as u64 / 1024, "KiB");
    report.row("GET /channels: time to the whole body", round(elapsed.as_secs_f64() * 1e3, 1), "ms");
    if let (Some(before), Some(after)) = (before, after) {
        let raised = after.peak_rss_kib.saturating_sub(before.peak_rss_kib.max(before.rss_kib));
        report.row("GET /channels: server peak RSS raised by", raised, "KiB");
    }
    Ok(())
}
