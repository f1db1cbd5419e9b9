//! The two connections a node keeps to Redis (or Valkey): one for scripts and publishing, one
//! subscribed to the event lanes and the apps' state channels. Both reconnect by themselves with
//! exponential backoff; a command never waits for a reconnection (it fails within
//! [`COMMAND_TIMEOUT`], and the caller treats that as an outage).

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::config::TlsConnector;
use fred::types::{ClusterHash, CustomCommand};

use super::scripts;
use crate::hub::NodeId;

/// Longest a command may take before Redis counts as unreachable.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// Messages the subscriber may hold for the inbound task. Beyond it the oldest are lost, which the
/// task is told (and answers by re-reading every share); each slot costs about 200 bytes.
const SUBSCRIBER_BUFFER: usize = 16 * 1024;
/// How long a node id stays reserved without a heartbeat renewing it.
pub(crate) const NODE_ID_TTL: Duration = Duration::from_secs(30);

/// Check a `redis://` or `rediss://` URL without connecting. One server only (Redis, or Valkey):
/// Redis Cluster and Sentinel URLs are refused rather than half supported.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    if !url.starts_with("redis://") && !uses_tls(url) {
        return Err("use redis://HOST:PORT[/DB], or rediss:// for TLS (one Redis or Valkey server)".into());
    }
    let config = parse(url).map_err(|error| error.details().to_string())?;
    if !matches!(config.server, ServerConfig::Centralized { .. }) {
        return Err("only a single server is supported (not a cluster or Sentinel URL)".into());
    }
    Ok(())
}

/// Whether the URL asks for TLS (`rediss://`).
pub(crate) fn uses_tls(url: &str) -> bool {
    url.starts_with("rediss://")
}

/// The client settings for `url`, without TLS: fred's own TLS default would read the system's
/// certificate store, which a slim container may not have; [`Redis::connect`] sets Herald's.
fn parse(url: &str) -> Result<Config, Error> {
    match url.strip_prefix("rediss://") {
        Some(rest) => Config::from_url(&format!("redis://{rest}")),
        None => Config::from_url(url),
    }
}

/// The connections to Redis and what the server supports.
#[derive(Clone)]
pub(crate) struct Redis {
    /// Scripts and publishing.
    pub(crate) commands: Client,
    /// The subscriber.
    pub(crate) subscriber: SubscriberClient,
    /// `SPUBLISH` where the server has sharded pub/sub (Redis 7+, Valkey), `PUBLISH` before.
    pub(crate) publish: &'static str,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("publish", &self.publish).finish_non_exhaustive()
    }
}

/// Say why Redis cannot be reached (refused, a certificate that does not verify, a wrong password)
/// once per distinct reason, not at every retry; a reconnection makes the next failure worth saying.
fn report_errors(client: &Client) {
    let last = Arc::new(Mutex::new(String::new()));
    let seen = last.clone();
    client.on_error(move |(error, _server)| {
        let why = error.to_string();
        let mut last = seen.lock().unwrap_or_else(PoisonError::into_inner);
        if *last != why {
            tracing::warn!(error = %why, "cannot reach Redis");
            *last = why;
        }
        std::future::ready(Ok(()))
    });
    client.on_reconnect(move |_| {
        last.lock().unwrap_or_else(PoisonError::into_inner).clear();
        std::future::ready(Ok(()))
    });
}

impl Redis {
    /// Start connecting to `url` (in the background: an unreachable Redis is retried forever). A
    /// `rediss://` server's certificate is checked against the public web's roots and the CAs in
    /// `ca_file`, and its name against the URL's host.
    pub(crate) fn connect(url: &str, ca_file: Option<&Path>) -> Result<Self, Error> {
        let mut config = parse(url)?;
        if uses_tls(url) {
            let tls = crate::tls::client_config(ca_file).map_err(|why| Error::new(ErrorKind::Tls, why))?;
            config.tls = Some(TlsConnector::from((*tls).clone()).into());
        }
        // The first connection is retried like any other: a node may start before its Redis.
        config.fail_fast = false;
        let builder = |buffer: usize| {
            let mut builder = Builder::from_config(config.clone());
            builder
                .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
                .with_connection_config(|connection| {
                    connection.connection_timeout = Duration::from_secs(2);
                    connection.internal_command_timeout = Duration::from_secs(2);
                    // A command that failed is not replayed after a reconnection: the link
                    // re-announces instead, and a late event is worse than a lost one.
                    connection.max_command_attempts = 1;
                    connection.unresponsive.max_timeout = Some(COMMAND_TIMEOUT);
                    connection.unresponsive.interval = Duration::from_secs(1);
                })
                .with_performance_config(|performance| {
                    performance.default_command_timeout = COMMAND_TIMEOUT;
                    performance.broadcast_channel_capacity = buffer;
                });
            builder
        };
        let commands = builder(32).build()?;
        let subscriber = builder(SUBSCRIBER_BUFFER).build_subscriber_client()?;
        report_errors(&commands);
        commands.connect();
        subscriber.connect();
        Ok(Self { commands, subscriber, publish: "SPUBLISH" })
    }

    /// Wait up to `within` for the command connection; whether it is up.
    pub(crate) async fn wait(&self, within: Duration) -> bool {
        if self.commands.is_connected() {
            return true;
        }
        matches!(tokio::time::timeout(within, self.commands.wait_for_connect()).await, Ok(Ok(())))
    }

    /// Use plain pub/sub when the server has no sharded pub/sub (before Redis 7).
    pub(crate) async fn detect_sharded_pubsub(&mut self) {
        let probe = CustomCommand::new_static("SPUBLISH", ClusterHash::FirstKey, false);
        if self.commands.custom::<Value, _>(probe, vec!["herald:probe", ""]).await.is_err() {
            tracing::info!("this Redis has no sharded pub/sub (SPUBLISH): using PUBLISH and SUBSCRIBE");
            self.publish = "PUBLISH";
        }
    }

    /// Whether events travel on sharded pub/sub.
    pub(crate) fn sharded(&self) -> bool {
        self.publish == "SPUBLISH"
    }

    /// Reserve a fresh node id, so that no two live nodes hand out the same socket ids.
    pub(crate) async fn claim_node_id(&self) -> Result<NodeId, Error> {
        loop {
            let node = NodeId(rand::random::<u32>().max(1));
            let set = CustomCommand::new_static("SET", ClusterHash::FirstKey, false);
            let ttl = NODE_ID_TTL.as_millis().to_string();
            let args = vec![scripts::node_id_claim(node), "1".into(), "NX".into(), "PX".into(), ttl];
            let reply: Value = self.commands.custom(set, args).await?;
            if !reply.is_null() {
                return Ok(node);
            }
        }
    }

    /// Keep this node's id reserved.
    pub(crate) async fn renew_node_id(&self, node: NodeId) -> Result<(), Error> {
        let set = CustomCommand::new_static("SET", ClusterHash::FirstKey, false);
        let args = vec![scripts::node_id_claim(node), "1".into(), "PX".into(), NODE_ID_TTL.as_millis().to_string()];
        self.commands.custom::<Value, _>(set, args).await.map(|_| ())
    }

    /// Give this node's id back (it is leaving).
    pub(crate) async fn release_node_id(&self, node: NodeId) {
        let del = CustomCommand::new_static("DEL", ClusterHash::FirstKey, false);
        let _ = self.commands.custom::<Value, _>(del, vec![scripts::node_id_claim(node)]).await;
    }

    /// Run a script with `EVAL` (the rare ones: they are sent whole, so nothing depends on the
    /// server's script cache).
    pub(crate) async fn eval(&self, script: &str, keys: &[String], args: Vec<String>) -> Result<Value, Error> {
        self.commands.eval(script, keys.to_vec(), args).await
    }

    /// Close both connections.
    pub(crate) async fn quit(&self) {
        let _ = self.subscriber.quit().await;
        let _ = self.commands.quit().await;
    }
}
