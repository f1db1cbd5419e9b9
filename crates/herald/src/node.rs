//! [`Node`]: the one `Arc` every task holds: configuration, apps (each with its hub), the shutdown
//! signal, the task trackers, metrics, and the two counters that belong to the whole process (socket
//! ids and the connection cap).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use pusher_wire::SocketId;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tokio::sync::{mpsc, watch};

use crate::apps::{App, AppMaker, AppStore};
use crate::config::{AppConfig, Config};
use crate::connection::outbox::ConnId;
use crate::hub::{NodeId, Observer};
use crate::metrics::Metrics;
use crate::webhooks::{Job, Webhooks};

/// Apps of a single node: the webhook handle is the hub's only observer.
struct WebhooksOnly {
    sender: mpsc::Sender<Job>,
    dropped: prometheus_client::metrics::counter::Counter,
}

impl AppMaker for WebhooksOnly {
    fn make(&self, config: &AppConfig) -> (Webhooks, Arc<dyn Observer>) {
        let hooks = Webhooks::new(config, self.sender.clone(), self.dropped.clone());
        (hooks.clone(), Arc::new(hooks))
    }
}

/// Shared state of the server process.
pub(crate) struct Node {
    /// The configuration it was started with (the apps in it may have changed since: see
    /// [`Node::apps`]).
    pub(crate) config: Config,
    /// Hosted apps and their hubs, replaced whole by a reload.
    apps: RwLock<Arc<AppStore>>,
    /// Makes the webhook handle and hub observer of an app a reload adds.
    maker: Box<dyn AppMaker>,
    /// The apps' current settings, for the webhook dispatcher.
    pub(crate) app_configs: watch::Sender<Vec<AppConfig>>,
    /// Cancelled when the server starts shutting down.
    pub(crate) shutdown: CancellationToken,
    /// Every client connection's task (HTTP and WebSocket), so shutdown can wait for them.
    pub(crate) connections: TaskTracker,
    /// The cluster link's outbound task, which outlives the connections to send Redis what their
    /// closing changed and to leave the cluster; the webhook dispatcher waits for it too, since
    /// leaving can decide the last removals.
    pub(crate) cluster_link: TaskTracker,
    /// Background tasks (ticker, webhook dispatch and delivery), which outlive the connections
    /// during shutdown so that the connections' last webhook events are still sent.
    pub(crate) tracker: TaskTracker,
    /// Counters and gauges for `GET /metrics`.
    pub(crate) metrics: Metrics,
    /// Subscriptions held by every app together, within `max_subscriptions`.
    pub(crate) subscriptions: Arc<crate::budget::Budget>,
    /// The listener's certificate, when it serves TLS.
    pub(crate) tls: Option<crate::tls::Tls>,
    /// This node: the first half of every socket id it hands out (random per process, and claimed
    /// in Redis in a cluster), so ids from two runs or two nodes do not collide while the second half
    /// is a plain counter.
    pub(crate) id: NodeId,
    next_conn: AtomicU64,
    /// Open WebSocket connections, for the process-wide cap.
    open_websockets: AtomicUsize,
    /// Whoever watches the apps in the debug console.
    pub(crate) console: Arc<crate::console::Console>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("id", &self.id).field("apps", &self.apps()).finish_non_exhaustive()
    }
}

impl Node {
    /// A node for this configuration, with the webhooks of its apps as their hubs' only observers.
    pub(crate) fn new(config: Config, webhooks: mpsc::Sender<Job>, id: NodeId) -> Self {
        let metrics = Metrics::default();
        let maker = WebhooksOnly { sender: webhooks, dropped: metrics.webhooks_dropped.clone() };
        Self::observed(config, id, metrics, Box::new(maker))
    }

    /// A node whose apps get their webhook handle and hub observer from `maker` (in a cluster, the
    /// link to Redis).
    pub(crate) fn observed(config: Config, id: NodeId, metrics: Metrics, maker: Box<dyn AppMaker>) -> Self {
        let apps = AppStore::new(&config.apps, maker.as_ref());
        let subscriptions = config.max_subscriptions;
        Self {
            app_configs: watch::Sender::new(config.apps.clone()),
            apps: RwLock::new(Arc::new(apps)),
            maker,
            config,
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
            cluster_link: TaskTracker::new(),
            tracker: TaskTracker::new(),
            metrics,
            tls: None,
            subscriptions: Arc::new(crate::budget::Budget::new(subscriptions)),
            id,
            next_conn: AtomicU64::new(1),
            open_websockets: AtomicUsize::new(0),
            console: Arc::default(),
        }
    }

    /// The hosted apps now.
    pub(crate) fn apps(&self) -> Arc<AppStore> {
        self.apps.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Host exactly `configs` from now on; returns the apps removed (already marked, so that their
    /// connections close with 4003).
    pub(crate) fn replace_apps(&self, configs: &[AppConfig]) -> Vec<Arc<App>> {
        let mut apps = self.apps.write().unwrap_or_else(|p| p.into_inner());
        let (store, removed) = apps.reloaded(configs, self.maker.as_ref());
        *apps = Arc::new(store);
        self.app_configs.send_replace(configs.to_vec());
        removed
    }

    /// Serve TLS with `tls` (loaded before the node, so that a bad certificate stops the start).
    pub(crate) fn with_tls(mut self, tls: Option<crate::tls::Tls>) -> Self {
        self.tls = tls;
        self
    }

    /// A fresh connection id.
    pub(crate) fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// The socket id of a connection: `{tag}.{connection id}`.
    pub(crate) fn socket_id(&self, id: ConnId) -> SocketId {
        SocketId::new(u64::from(self.id.0), id.0)
    }

    /// The local connection a socket id names, if it was issued by this process.
    pub(crate) fn conn_id_of(&self, socket_id: &SocketId) -> Option<ConnId> {
        match socket_id.parts() {
            Some((tag, id)) if tag == u64::from(self.id.0) => Some(ConnId(id)),
            _ => None,
        }
    }

    /// Count a new WebSocket connection unless the process is at its cap.
    pub(crate) fn try_admit(&self) -> bool {
        let previous = self.open_websockets.fetch_add(1, Ordering::Relaxed);
        if previous >= self.config.max_connections {
            self.open_websockets.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Forget a connection counted by [`Self::try_admit`].
    pub(crate) fn release(&self) {
        self.open_websockets.fetch_sub(1, Ordering::Relaxed);
    }

    /// Open WebSocket connections.
    pub(crate) fn connection_count(&self) -> usize {
        self.open_websockets.load(Ordering::Relaxed)
    }

    /// A random delay within the shutdown spread.
    pub(crate) fn shutdown_jitter(&self) -> Duration {
        let spread = self.config.shutdown_spread.as_millis() as u64;
        Duration::from_millis(if spread == 0 { 0 } else { rand::random::<u64>() % spread })
    }
}
