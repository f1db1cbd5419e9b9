//! The cluster: several Herald nodes behaving as one Pusher server, through Redis (or Valkey).
//!
//! The hub stays the local, synchronous fan-out engine; this module plugs into its two seams and is
//! never on the path of a local delivery:
//!
//! - Out: [`Link`] is each app's hub observer. It turns local transitions into forwards and
//!   `try_send`s them into one bounded queue, which the [`outbound`] task drains into Redis: events
//!   as envelopes carrying the already-encoded frame on pub/sub lanes (`SPUBLISH`), share changes
//!   through `apply.lua`, which updates this node's share, decides the cluster-wide webhooks and
//!   publishes the change on the app's state channel.
//! - In: the [`inbound`] task hears the lanes and the state channels and applies what other nodes
//!   did with [`Hub::apply`](crate::hub::Hub::apply).
//!
//! Reads never leave the node: each hub keeps every other node's share (counts, members, users).
//! Redis holds each node's share, so a node joining or catching up reads the whole picture; the
//! cluster-wide holder counts that decide `channel_occupied`/`channel_vacated` and
//! `member_added`/`member_removed`; the removals waiting out their delay; and a heartbeat per node,
//! from which dead nodes are found and subtracted. `docs/scaling.md` has the design, the failure
//! modes and the sizing.

mod envelope;
mod inbound;
mod link;
mod outbound;
mod redis;
mod scripts;
mod state;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub(crate) use self::link::Link;
use self::link::{Outbound, Overflow};
pub use self::outbound::NODE_TIMEOUT;
use self::redis::Redis;
pub(crate) use self::redis::{check_url, uses_tls};
use crate::apps::AppMaker;
use crate::config::{AppConfig, Config};
use crate::hub::{NodeId, Observer};
use crate::node::Node;
use crate::webhooks::{Job, Webhooks};

/// How long a starting node waits for Redis before it starts serving without it.
const STARTUP_WAIT: Duration = Duration::from_secs(5);

/// A node's cluster link, built with the node and started once it exists.
#[derive(Debug)]
pub(crate) struct Pending {
    redis: Redis,
    queue: mpsc::Receiver<Outbound>,
    overflow: Arc<Overflow>,
}

/// Build a node that joins the cluster of every node using `config.redis_url`: connect (waiting
/// up to [`STARTUP_WAIT`]), reserve a node id, and observe every app's hub with a [`Link`]. An
/// unreachable Redis does not stop the node: it serves its own clients and joins when Redis answers.
pub(crate) async fn node(config: Config, webhooks: mpsc::Sender<Job>, url: &str) -> (Node, Pending) {
    // `Config::validate` has parsed the URL with the same parser, so building the client cannot fail.
    let mut redis = Redis::connect(url, config.redis_ca_file.as_deref())
        .unwrap_or_else(|error| unreachable!("validated redis url and CA file: {error}"));
    let id = if redis.wait(STARTUP_WAIT).await {
        redis.detect_sharded_pubsub().await;
        redis.claim_node_id().await.unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot reserve a node id in Redis; using a random one");
            random_id()
        })
    } else {
        tracing::warn!("Redis unreachable at start: serving this node's clients only until it answers");
        random_id()
    };
    tracing::info!(node = id.0, sharded_pubsub = redis.sharded(), "joining the cluster");
    let (sender, queue) = mpsc::channel(link::QUEUE);
    let overflow = Arc::new(Overflow::default());
    let metrics = crate::metrics::Metrics::default();
    let maker = LinkedApps {
        webhooks,
        dropped: metrics.webhooks_dropped.clone(),
        queue: sender,
        overflow: overflow.clone(),
        counters: metrics.cluster.clone(),
    };
    let node = Node::observed(config, id, metrics, Box::new(maker));
    (node, Pending { redis, queue, overflow })
}

/// Apps of a cluster node: the cluster link observes the hub, and forwards to the webhook handle
/// what the node decides alone.
struct LinkedApps {
    webhooks: mpsc::Sender<Job>,
    dropped: prometheus_client::metrics::counter::Counter,
    queue: mpsc::Sender<Outbound>,
    overflow: Arc<Overflow>,
    counters: crate::metrics::Cluster,
}

impl AppMaker for LinkedApps {
    fn make(&self, config: &AppConfig) -> (Webhooks, Arc<dyn Observer>) {
        let hooks = Webhooks::new(config, self.webhooks.clone(), self.dropped.clone());
        let link =
            Link::new(&config.id, self.queue.clone(), hooks.clone(), self.overflow.clone(), self.counters.clone());
        (hooks, Arc::new(link))
    }
}

/// Start the outbound task (on the node's cluster-link tracker, which shutdown waits for before the
/// webhooks stop) and the inbound task (a background task).
pub(crate) fn start(node: &Arc<Node>, pending: Pending) {
    let Pending { redis, queue, overflow } = pending;
    let sender = outbound::Sender::new(node.clone(), redis.clone(), overflow);
    node.cluster_link.spawn(sender.run(queue));
    node.tracker.spawn(inbound::Receiver::new(node.clone(), redis).run());
}

/// A random node id, for a single node or a cluster whose Redis cannot be reached.
pub(crate) fn random_id() -> NodeId {
    NodeId(rand::random::<u32>().max(1))
}
