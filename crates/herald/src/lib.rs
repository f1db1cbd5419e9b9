//! Herald: a self-hosted real-time messaging server that speaks the Pusher Channels protocol.
//!
//! The server is a library function, [`run`], fed a [`Config`] and a listener from [`bind`]; the
//! `herald` binary only parses flags, sets up logging and calls it. That, the configuration types,
//! and the signals ([`signal`], [`hangups`]) are the whole public API; the rest is private to the
//! crate. Map of the modules (see `docs/ARCHITECTURE.md` for how an event flows through them):
//!
//! - `config`: flags and TOML into a validated [`Config`].
//! - `apps`: hosted apps by id and key, each with its hub.
//! - `node`: the shared handles every task holds.
//! - `listener`, `http`, `upgrade`: accept, route, and upgrade to WebSocket.
//! - `connection`: one task per WebSocket: session, outbox, subscriptions, heartbeat.
//! - `hub`: channels, subscribers, presence rosters, cached events; where a broadcast fans out.
//! - `rest`: the REST API.
//! - `metrics`: counters and gauges for `GET /metrics`.
//! - `webhooks`: events POSTed to the apps' endpoints.
//! - `console`: the debug console at `/console` and the activity it streams.
//! - `cluster`: several nodes as one server, through Redis.
//! - `budget`: the node's subscription budget.
//! - `shutdown`: signals and draining.
//! - `tls`: the listener's certificate, reloadable.

#![warn(unreachable_pub)]

mod apps;
mod budget;
mod cluster;
mod config;
mod connection;
mod console;
mod http;
mod hub;
mod listener;
mod metrics;
mod node;
mod repoll;
mod rest;
mod shutdown;
mod tls;
mod upgrade;
mod webhooks;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

pub use cluster::NODE_TIMEOUT;
pub use config::{AppConfig, Config, ConfigError, ConfigSource, LogFormat, OutboxLimits, WebhookTarget};
pub use connection::rate_limit::COMMANDS_PER_SECOND;
pub use listener::bind;
use node::Node;
pub use shutdown::{hangups, signal};
pub use tls::TlsFiles;
use tokio::net::TcpListener;

/// Serve `config` on `listener` until `shutdown` resolves, then close every connection with 4200 and
/// return once they are closed.
pub async fn run(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) {
    #[cfg(unix)]
    let hangups = shutdown::hangups();
    let tls = match config.tls.clone().map(tls::Tls::load).transpose() {
        Ok(tls) => tls,
        Err(error) => {
            // Config::validate read these files already; only files changed since land here.
            tracing::error!(%error, "cannot serve TLS; not starting");
            return;
        }
    };
    let metrics_listener = match config.metrics_addr {
        None => None,
        Some(address) => match TcpListener::bind(address).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::error!(%error, %address, "cannot listen for metrics; not starting");
                return;
            }
        },
    };
    let (webhook_sender, webhook_jobs) = tokio::sync::mpsc::channel(webhooks::QUEUE);
    let (node, link) = match config.redis_url.clone() {
        None => (Node::new(config, webhook_sender, cluster::random_id()), None),
        Some(url) => {
            let (node, link) = cluster::node(config, webhook_sender, &url).await;
            (node, Some(link))
        }
    };
    let node = Arc::new(node.with_tls(tls));
    if let Some(link) = link {
        cluster::start(&node, link);
    }
    webhooks::start(&node, webhook_jobs);
    #[cfg(unix)]
    node.tracker.spawn(reload_on_hangup(node.clone(), hangups));
    node.tracker.spawn(tick(node.clone()));
    node.tracker.spawn(listener::accept(listener, node.clone()));
    if let Some(metrics_listener) = metrics_listener {
        node.tracker.spawn(listener::serve_metrics(metrics_listener, node.clone()));
    }
    shutdown.await;
    tracing::info!(connections = node.connection_count(), "shutting down");
    shutdown::drain(&node).await;
}

/// SIGHUP: read the TLS certificate and key, and the apps of the configuration file, again.
#[cfg(unix)]
async fn reload_on_hangup(node: Arc<Node>, hangups: Option<tokio::signal::unix::Signal>) {
    let Some(mut hangups) = hangups else { return };
    loop {
        tokio::select! {
            () = node.shutdown.cancelled() => return,
            received = hangups.recv() => if received.is_none() { return },
        }
        reload(&node);
    }
}

/// Apply what SIGHUP asks for. Whatever cannot be read is refused with the reason logged, and what
/// runs stays as it is.
#[cfg_attr(not(unix), allow(dead_code))]
fn reload(node: &Node) {
    if let Some(tls) = &node.tls {
        match tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate and key read again"),
            Err(error) => tracing::error!(%error, "SIGHUP: TLS certificate refused; keeping the running one"),
        }
    }
    match node.config.reread_apps() {
        Ok(None) => {}
        Ok(Some(apps)) => {
            let removed = node.replace_apps(&apps);
            let removed: Vec<&str> = removed.iter().map(|app| &*app.id).collect();
            tracing::info!(apps = apps.len(), ?removed, "SIGHUP: apps read again");
        }
        Err(error) => tracing::error!(%error, "SIGHUP: configuration refused; keeping the running one"),
    }
}

/// Periodic housekeeping: deferred subscription counts every tick, idle channels every minute.
async fn tick(node: Arc<Node>) {
    const TICKS_PER_SWEEP: u64 = 600;
    let mut interval = tokio::time::interval(hub::SMALL_CHANNEL_COUNT_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            () = node.shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let now = Instant::now();
        ticks += 1;
        for app in node.apps().iter() {
            app.hub.flush_deferred_counts(now);
            if ticks.is_multiple_of(TICKS_PER_SWEEP) {
                app.hub.sweep(now);
            }
        }
    }
}
