//! [`Metrics`]: counters and gauges for operators, served as OpenMetrics text on `GET /metrics`.
//!
//! Every update is one relaxed atomic add; the hot path counts a whole broadcast with a single
//! increment, never one per recipient.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labeled<V> = Family<[(&'static str, V); 1], Counter>;

/// The server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub(crate) connections: Gauge,
    /// WebSocket connections accepted since start.
    pub(crate) connections_opened: Counter,
    /// Connections refused during the handshake, by Pusher error code.
    pub(crate) connections_refused: Labeled<u16>,
    /// Connections closed, by reason (`client`, `slow_consumer`, `pong_timeout`, ...).
    pub(crate) connections_closed: Labeled<&'static str>,
    /// TCP connections closed before any request: `too_many_pending` from one address, `silent`.
    pub(crate) http_refused: Labeled<&'static str>,
    /// TLS handshakes that failed (`failed`: not TLS, bad TLS) or did not finish in time (`timeout`).
    pub(crate) tls_handshakes_refused: Labeled<&'static str>,
    /// Events published through the REST API, counted once per channel.
    pub(crate) events_published: Counter,
    /// Frames queued for connections by REST publishes (one event to N subscribers counts N).
    pub(crate) deliveries: Counter,
    /// Client events relayed.
    pub(crate) client_events: Counter,
    /// Requests refused by an app's limits, by limit (`client_events`, `presence_members`,
    /// `rest_events`, `rest_reads`).
    pub(crate) limited: Labeled<&'static str>,
    /// REST requests answered, by HTTP status.
    pub(crate) rest_requests: Labeled<u16>,
    /// Channels held (set when scraped).
    pub(crate) channels: Gauge,
    /// Subscriptions held, every app together (set when scraped).
    pub(crate) subscriptions: Gauge,
    /// Webhook events delivered, given up on, and attempts retried.
    pub(crate) webhooks: crate::webhooks::delivery::Counters,
    /// Webhook events dropped because the dispatcher's queue was full.
    pub(crate) webhooks_dropped: Counter,
    /// The link to the other nodes of a cluster (all zero on a single node).
    pub(crate) cluster: Cluster,
}

/// What the cluster link counts.
#[derive(Debug, Default, Clone)]
pub(crate) struct Cluster {
    /// 1 while Redis answers, 0 during an outage (and on a single node).
    pub(crate) redis_up: Gauge,
    /// Outages of Redis, each counted once however long it lasts.
    pub(crate) redis_outages: Counter,
    /// Events sent to the other nodes through Redis.
    pub(crate) events_forwarded: Counter,
    /// Events from other nodes delivered here.
    pub(crate) events_received: Counter,
    /// Events that could not cross Redis (an outage, a full queue, a lagging subscriber).
    pub(crate) events_lost: Counter,
    /// Transitions dropped because the queue to the Redis task was full.
    pub(crate) queue_overflows: Counter,
    /// Full re-announcements of this node's share and re-reads of the others'.
    pub(crate) resyncs: Counter,
    /// Other nodes this node currently hears from.
    pub(crate) peers: Gauge,
    /// Nodes found dead (no heartbeat) and removed by this node.
    pub(crate) nodes_reaped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("herald");
        let metrics = Self {
            connections: Gauge::default(),
            connections_opened: Counter::default(),
            connections_refused: Family::default(),
            connections_closed: Family::default(),
            tls_handshakes_refused: Family::default(),
            http_refused: Family::default(),
            events_published: Counter::default(),
            deliveries: Counter::default(),
            client_events: Counter::default(),
            limited: Family::default(),
            rest_requests: Family::default(),
            channels: Gauge::default(),
            subscriptions: Gauge::default(),
            webhooks: crate::webhooks::delivery::Counters::default(),
            webhooks_dropped: Counter::default(),
            cluster: Cluster::default(),
            registry: Registry::default(),
        };
        registry.register("connections", "Open WebSocket connections", metrics.connections.clone());
        registry.register("connections_opened", "WebSocket connections accepted", metrics.connections_opened.clone());
        registry.register(
            "connections_refused",
            "Connections refused during the handshake, by Pusher error code",
            metrics.connections_refused.clone(),
        );
        registry.register("connections_closed", "Connections closed, by reason", metrics.connections_closed.clone());
        registry.register(
            "http_refused",
            "TCP connections closed before any request (too many pending from one address, silent)",
            metrics.http_refused.clone(),
        );
        registry.register(
            "tls_handshakes_refused",
            "TLS handshakes that failed or timed out, by reason",
            metrics.tls_handshakes_refused.clone(),
        );
        registry.register(
            "events_published",
            "REST events published, once per channel",
            metrics.events_published.clone(),
        );
        registry.register("deliveries", "Frames queued for subscribers by REST publishes", metrics.deliveries.clone());
        registry.register("client_events", "Client events relayed", metrics.client_events.clone());
        registry.register("limited", "Requests refused by an app's limits, by limit", metrics.limited.clone());
        registry.register("rest_requests", "REST requests answered, by HTTP status", metrics.rest_requests.clone());
        registry.register("channels", "Channels held (occupied or caching an event)", metrics.channels.clone());
        registry.register("subscriptions", "Subscriptions held, every app together", metrics.subscriptions.clone());
        registry.register("webhooks_delivered", "Webhook events delivered", metrics.webhooks.delivered.clone());
        registry.register("webhooks_failed", "Webhook events given up on or dropped", metrics.webhooks.failed.clone());
        registry.register(
            "webhooks_retried",
            "Webhook attempts that failed and were retried",
            metrics.webhooks.retried.clone(),
        );
        registry.register(
            "webhooks_dropped",
            "Webhook events dropped: dispatcher queue full",
            metrics.webhooks_dropped.clone(),
        );
        let cluster = &metrics.cluster;
        registry.register("cluster_redis_up", "1 while the cluster's Redis answers", cluster.redis_up.clone());
        registry.register("cluster_redis_outages", "Redis outages seen by this node", cluster.redis_outages.clone());
        registry.register(
            "cluster_events_forwarded",
            "Events sent to the other nodes through Redis",
            cluster.events_forwarded.clone(),
        );
        registry.register(
            "cluster_events_received",
            "Events from other nodes delivered here",
            cluster.events_received.clone(),
        );
        registry.register(
            "cluster_events_lost",
            "Events that could not cross Redis (outage, full queue, lagging subscriber)",
            cluster.events_lost.clone(),
        );
        registry.register(
            "cluster_queue_overflows",
            "Transitions dropped: the queue to the Redis task was full",
            cluster.queue_overflows.clone(),
        );
        registry.register("cluster_resyncs", "Full re-announcements and re-reads of shares", cluster.resyncs.clone());
        registry.register("cluster_peers", "Other nodes this node hears from", cluster.peers.clone());
        registry.register("cluster_nodes_reaped", "Dead nodes removed by this node", cluster.nodes_reaped.clone());
        Self { registry, ..metrics }
    }
}

impl Metrics {
    /// The OpenMetrics text of every metric.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_every_metric_with_its_labels() {
        let metrics = Metrics::default();
        metrics.connections.inc();
        metrics.connections_closed.get_or_create(&[("reason", "slow_consumer")]).inc();
        metrics.rest_requests.get_or_create(&[("status", 200)]).inc_by(3);
        let text = metrics.encode();
        assert!(text.contains("herald_connections 1"), "{text}");
        assert!(text.contains(r#"herald_connections_closed_total{reason="slow_consumer"} 1"#), "{text}");
        assert!(text.contains(r#"herald_rest_requests_total{status="200"} 3"#), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
