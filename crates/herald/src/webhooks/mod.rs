//! Webhooks: the events an app asks to hear about (`channel_occupied`, `member_added`,
//! `client_event`, ...), POSTed to its endpoints and signed with its secret.
//!
//! Side work never blocks the hot path: connections and the REST API emit through [`Webhooks`],
//! which checks a bit mask and `try_send`s into a bounded queue; one [`dispatcher::Dispatcher`] task
//! owns the 3-second delay of removals, batching, and hands requests to [`delivery`], which retries
//! with backoff for up to five minutes.

pub(crate) mod delivery;
pub(crate) mod dispatcher;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Instant;

use prometheus_client::metrics::counter::Counter;
use pusher_wire::webhook::{self, WebhookEvent, WebhookKind};
use tokio::sync::mpsc;

use crate::config::AppConfig;
use crate::hub::{Observer, Transition};
use crate::node::Node;

/// How many events may wait for the dispatcher before new ones are dropped (and counted).
pub(crate) const QUEUE: usize = 64 * 1024;

/// One event on its way to the dispatcher.
#[derive(Debug)]
pub(crate) struct Job {
    /// The app it belongs to.
    pub(crate) app_id: Arc<str>,
    /// The event.
    pub(crate) event: WebhookEvent,
    /// When it happened.
    pub(crate) at: Instant,
    /// Whether the dispatcher still decides when it goes out.
    pub(crate) timing: Timing,
}

/// Who decides when a webhook event is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timing {
    /// The dispatcher: removals wait out the delay, and a return within it cancels both.
    Delayable,
    /// Decided already (by the cluster, which served the delay itself): send it as it is.
    Decided,
}

/// An app's way to emit webhook events. Cheap when the app has no endpoint for an event kind: the
/// event is not even built. Clones share one state, which a reload of the app's settings changes.
#[derive(Debug, Clone)]
pub(crate) struct Webhooks {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    app_id: Arc<str>,
    /// Bit `kind as u8` is set when some endpoint wants that kind.
    wanted: AtomicU8,
    sender: Option<mpsc::Sender<Job>>,
    dropped: Counter,
    /// Events are being dropped (the queue is full), so the warning is not repeated.
    overflowing: AtomicBool,
}

impl Webhooks {
    /// The handle of an app, sending into the dispatcher's queue.
    pub(crate) fn new(app: &AppConfig, sender: mpsc::Sender<Job>, dropped: Counter) -> Self {
        let inner = Inner {
            app_id: app.id.as_str().into(),
            wanted: AtomicU8::new(wanted(app)),
            sender: Some(sender),
            dropped,
            overflowing: AtomicBool::new(false),
        };
        Self { inner: Arc::new(inner) }
    }

    /// A handle that emits nothing.
    #[cfg(test)]
    pub(crate) fn disabled() -> Self {
        let inner = Inner {
            app_id: "".into(),
            wanted: AtomicU8::new(0),
            sender: None,
            dropped: Counter::default(),
            overflowing: AtomicBool::new(false),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Follow the app's new settings (its endpoints may want other kinds now).
    pub(crate) fn configure(&self, app: &AppConfig) {
        self.inner.wanted.store(wanted(app), Ordering::Relaxed);
    }

    /// Whether any endpoint wants events of `kind`.
    pub(crate) fn wants(&self, kind: WebhookKind) -> bool {
        self.inner.wanted.load(Ordering::Relaxed) & bit(kind) != 0
    }

    /// Emit an event of `kind`, built by `event` only if some endpoint wants it. Never waits: when
    /// the queue is full the event is dropped and counted.
    pub(crate) fn emit(&self, kind: WebhookKind, event: impl FnOnce() -> WebhookEvent) {
        self.send(kind, event, Timing::Delayable);
    }

    /// Emit an event whose timing is already decided (cluster-wide transitions): no delay, no
    /// cancellation.
    pub(crate) fn emit_decided(&self, event: WebhookEvent) {
        self.send(event.kind(), || event, Timing::Decided);
    }

    /// The webhooks a node decides alone, even in a cluster: `subscription_count` (its own
    /// changes), `client_event` (its own senders) and `cache_miss`.
    pub(crate) fn observe_node_local(&self, transition: Transition<'_>) {
        match transition {
            Transition::CountSent { channel, count } => {
                self.emit(WebhookKind::SubscriptionCount, || WebhookEvent::SubscriptionCount {
                    channel: channel.into(),
                    subscription_count: count,
                });
            }
            Transition::ClientEvent(relayed) => self.emit(WebhookKind::ClientEvent, || WebhookEvent::ClientEvent {
                channel: relayed.channel.into(),
                event: relayed.event.into(),
                data: webhook::client_event_data(relayed.data),
                socket_id: relayed.socket_id.as_str().into(),
                user_id: relayed.user_id.map(str::to_owned),
            }),
            Transition::CacheMiss { channel } => {
                self.emit(WebhookKind::CacheMiss, || WebhookEvent::CacheMiss { channel: channel.into() });
            }
            _ => {}
        }
    }

    fn send(&self, kind: WebhookKind, event: impl FnOnce() -> WebhookEvent, timing: Timing) {
        let inner = &*self.inner;
        let Some(sender) = inner.sender.as_ref().filter(|_| self.wants(kind)) else { return };
        let job = Job { app_id: inner.app_id.clone(), event: event(), at: Instant::now(), timing };
        match sender.try_send(job) {
            Ok(()) => {
                if inner.overflowing.swap(false, Ordering::Relaxed) {
                    tracing::info!(app = %inner.app_id, "webhook queue has room again");
                }
            }
            Err(_) => {
                inner.dropped.inc();
                // Once per episode: this runs with hub locks held, possibly for every event.
                if !inner.overflowing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(app = %inner.app_id, "webhook queue full: events dropped (counted in herald_webhooks_dropped_total)");
                }
            }
        }
    }
}

/// On a single node, every webhook follows from a local transition.
impl Observer for Webhooks {
    fn observe(&self, transition: Transition<'_>) {
        match transition {
            Transition::Occupied { channel } => {
                self.emit(WebhookKind::ChannelOccupied, || WebhookEvent::ChannelOccupied { channel: channel.into() });
            }
            Transition::Vacated { channel } => {
                self.emit(WebhookKind::ChannelVacated, || WebhookEvent::ChannelVacated { channel: channel.into() });
            }
            Transition::MemberAdded { channel, member } => {
                self.emit(WebhookKind::MemberAdded, || WebhookEvent::MemberAdded {
                    channel: channel.into(),
                    user_id: member.user_id.clone(),
                });
            }
            Transition::MemberRemoved { channel, user_id } => {
                self.emit(WebhookKind::MemberRemoved, || WebhookEvent::MemberRemoved {
                    channel: channel.into(),
                    user_id: user_id.into(),
                });
            }
            other => self.observe_node_local(other),
        }
    }
}

/// Start the dispatcher (and its delivery service) on the node's background tracker; it drains
/// `jobs` until the node's connections are gone after shutdown.
pub(crate) fn start(node: &Node, jobs: mpsc::Receiver<Job>) {
    let tls = crate::tls::client_config(node.config.webhook_ca_file.as_deref()).unwrap_or_else(|why| {
        // Config::validate has read this file already; only a file changed since lands here.
        tracing::warn!(%why, "webhook_ca_file unusable; https webhooks trust the public roots only");
        crate::tls::client_config(None).unwrap_or_else(|_| unreachable!("the built-in roots are valid"))
    });
    let delivery = delivery::Delivery::new(
        node.tracker.clone(),
        node.shutdown.clone(),
        node.metrics.webhooks.clone(),
        tls,
        node.console.clone(),
    );
    let configs = node.app_configs.subscribe();
    let dispatcher = dispatcher::Dispatcher::new(&configs.borrow(), node.config.webhook_delay, delivery);
    let producers = [node.connections.clone(), node.cluster_link.clone()];
    node.tracker.spawn(dispatcher.run(jobs, configs, node.shutdown.clone(), producers));
}

/// The kinds some endpoint of `app` wants, as a bit mask.
fn wanted(app: &AppConfig) -> u8 {
    WebhookKind::ALL
        .iter()
        .filter(|kind| app.webhooks.iter().any(|target| target.wants(**kind)))
        .fold(0u8, |mask, kind| mask | bit(*kind))
}

fn bit(kind: WebhookKind) -> u8 {
    1 << match kind {
        WebhookKind::ChannelOccupied => 0,
        WebhookKind::ChannelVacated => 1,
        WebhookKind::MemberAdded => 2,
        WebhookKind::MemberRemoved => 3,
        WebhookKind::ClientEvent => 4,
        WebhookKind::CacheMiss => 5,
        WebhookKind::SubscriptionCount => 6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WebhookTarget;

    #[test]
    fn only_wanted_kinds_are_built_and_sent() {
        let mut app = AppConfig::new("1", "k", "s");
        app.webhooks.push(WebhookTarget {
            url: "http://127.0.0.1:1/h".into(),
            events: Some(vec![WebhookKind::ChannelOccupied]),
        });
        let (sender, mut receiver) = mpsc::channel(4);
        let hooks = Webhooks::new(&app, sender, Counter::default());
        assert!(hooks.wants(WebhookKind::ChannelOccupied) && !hooks.wants(WebhookKind::ClientEvent));
        hooks.emit(WebhookKind::ClientEvent, || unreachable!("not wanted, not built"));
        hooks.emit(WebhookKind::ChannelOccupied, || WebhookEvent::ChannelOccupied { channel: "c".into() });
        assert_eq!(receiver.try_recv().map(|job| job.event.kind()).ok(), Some(WebhookKind::ChannelOccupied));
        assert!(receiver.try_recv().is_err());
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_warns_once_per_episode() {
        let mut app = AppConfig::new("1", "k", "s");
        app.webhooks.push(WebhookTarget { url: "http://127.0.0.1:1/h".into(), events: None });
        let (sender, mut receiver) = mpsc::channel(1);
        let dropped = Counter::default();
        let hooks = Webhooks::new(&app, sender, dropped.clone());
        let occupied = || WebhookEvent::ChannelOccupied { channel: "c".into() };
        for _ in 0..3 {
            hooks.emit(WebhookKind::ChannelOccupied, occupied);
        }
        assert_eq!(dropped.get(), 2);
        assert!(hooks.inner.overflowing.load(Ordering::Relaxed), "one episode, warned once");
        receiver.try_recv().unwrap();
        hooks.emit(WebhookKind::ChannelOccupied, occupied);
        assert!(!hooks.inner.overflowing.load(Ordering::Relaxed), "the episode is over");
    }

    #[test]
    fn apps_without_endpoints_send_nothing() {
        let (sender, mut receiver) = mpsc::channel(4);
        let hooks = Webhooks::new(&AppConfig::new("1", "k", "s"), sender, Counter::default());
        hooks.emit(WebhookKind::ChannelOccupied, || unreachable!());
        assert!(receiver.try_recv().is_err());
    }
}
