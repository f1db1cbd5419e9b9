//! The apps this server hosts, found by id (REST paths) or by key (WebSocket paths).
//!
//! The set of apps can change while the server runs (SIGHUP re-reads the configuration file): the
//! store is replaced whole, an app that stays keeps its `App` (its channels, its connections) and
//! takes its new settings in place, an app that goes is marked removed so that its connections
//! close with 4003.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::budget::Budget;
use crate::config::AppConfig;
use crate::connection::rate_limit::RateLimiter;
use crate::hub::{Hub, Observer};
use crate::webhooks::Webhooks;

/// One hosted app: its configuration and its channels.
#[derive(Debug)]
pub(crate) struct App {
    /// The app id; an app with another id is another app.
    pub(crate) id: Arc<str>,
    /// Credentials and switches, replaced whole by a reload.
    config: RwLock<Arc<AppConfig>>,
    /// The app's channels and subscribers.
    pub(crate) hub: Hub,
    /// Where its webhook events go.
    pub(crate) webhooks: Webhooks,
    /// Open connections of this app, for its quota.
    connections: AtomicUsize,
    /// Cancelled when a reload removes the app: its connections close with 4003.
    pub(crate) removed: CancellationToken,
    /// The app's REST limits, when it has them.
    rest: Mutex<RestLimits>,
    /// Subscriptions of this app's connections, within its `max_subscriptions`.
    pub(crate) subscriptions: Budget,
}

/// An app's REST request limits, per second.
#[derive(Debug)]
struct RestLimits {
    events: Option<RateLimiter>,
    reads: Option<RateLimiter>,
}

impl RestLimits {
    fn of(config: &AppConfig) -> Self {
        let now = Instant::now();
        let bucket = |limit: Option<u32>| limit.map(|n| RateLimiter::per_second(n, now));
        Self { events: bucket(config.max_rest_events_per_second), reads: bucket(config.max_rest_reads_per_second) }
    }
}

impl App {
    /// An app with no channels and no connections; its hub tells `observer` what happens in it.
    pub(crate) fn new(config: AppConfig, webhooks: Webhooks, observer: Arc<dyn Observer>) -> Self {
        let hub = Hub::new(config.subscription_count, observer);
        hub.set_max_members(config.max_presence_members);
        Self {
            rest: Mutex::new(RestLimits::of(&config)),
            subscriptions: Budget::new(config.max_subscriptions.unwrap_or(usize::MAX)),
            id: config.id.as_str().into(),
            hub,
            webhooks,
            config: RwLock::new(Arc::new(config)),
            connections: AtomicUsize::new(0),
            removed: CancellationToken::new(),
        }
    }

    /// The app's current settings. Each use takes them afresh, so a changed secret applies to the
    /// next signature check.
    pub(crate) fn config(&self) -> Arc<AppConfig> {
        self.config.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Take new settings (same id).
    fn reconfigure(&self, config: AppConfig) {
        self.hub.set_send_counts(config.subscription_count);
        self.hub.set_max_members(config.max_presence_members);
        *self.rest.lock().unwrap_or_else(|p| p.into_inner()) = RestLimits::of(&config);
        self.subscriptions.set_max(config.max_subscriptions.unwrap_or(usize::MAX));
        self.webhooks.configure(&config);
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    /// Whether `events` REST events may be published now (the app's `max_rest_events_per_second`).
    pub(crate) fn allow_rest_events(&self, events: u32, now: Instant) -> bool {
        let mut limits = self.rest.lock().unwrap_or_else(|p| p.into_inner());
        limits.events.as_mut().is_none_or(|bucket| bucket.allow_n(events, now))
    }

    /// Whether a REST read may be answered now (the app's `max_rest_reads_per_second`).
    pub(crate) fn allow_rest_read(&self, now: Instant) -> bool {
        let mut limits = self.rest.lock().unwrap_or_else(|p| p.into_inner());
        limits.reads.as_mut().is_none_or(|bucket| bucket.allow(now))
    }

    /// Count a new connection unless the app is at its `max_connections`.
    pub(crate) fn try_connect(&self) -> bool {
        let previous = self.connections.fetch_add(1, Ordering::Relaxed);
        if self.config().max_connections.is_some_and(|max| previous >= max) {
            self.connections.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Open connections of this app on this node.
    pub(crate) fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Forget a connection counted by [`Self::try_connect`].
    pub(crate) fn disconnect(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Makes a new app's webhook handle and hub observer (the node knows how: webhooks alone, or the
/// cluster link).
pub(crate) trait AppMaker: Send + Sync {
    /// The webhook handle and hub observer of an app with `config`.
    fn make(&self, config: &AppConfig) -> (Webhooks, Arc<dyn Observer>);
}

/// Every hosted app, indexed by id and by key.
#[derive(Debug, Default)]
pub(crate) struct AppStore {
    by_id: HashMap<String, Arc<App>>,
    by_key: HashMap<String, Arc<App>>,
}

impl AppStore {
    /// Build the store; each app gets an empty hub, its webhook handle and observer from `maker`.
    pub(crate) fn new(configs: &[AppConfig], maker: &dyn AppMaker) -> Self {
        Self::default().reloaded(configs, maker).0
    }

    /// The store for `configs`: an app whose id stays keeps its `App` and takes the new settings;
    /// an app with a new id is created. Returns the store and the apps no longer in it (marked
    /// removed).
    pub(crate) fn reloaded(&self, configs: &[AppConfig], maker: &dyn AppMaker) -> (Self, Vec<Arc<App>>) {
        let mut store = Self::default();
        for config in configs {
            let app = match self.by_id.get(&config.id) {
                Some(app) => {
                    if *app.config() != *config {
                        app.reconfigure(config.clone());
                    }
                    app.clone()
                }
                None => {
                    let (webhooks, observer) = maker.make(config);
                    Arc::new(App::new(config.clone(), webhooks, observer))
                }
            };
            store.by_id.insert(config.id.clone(), app.clone());
            store.by_key.insert(config.key.clone(), app);
        }
        let removed: Vec<Arc<App>> =
            self.by_id.iter().filter(|(id, _)| !store.by_id.contains_key(*id)).map(|(_, app)| app.clone()).collect();
        for app in &removed {
            app.removed.cancel();
        }
        (store, removed)
    }

    /// The app with this id.
    pub(crate) fn by_id(&self, id: &str) -> Option<&Arc<App>> {
        self.by_id.get(id)
    }

    /// The app with this key.
    pub(crate) fn by_key(&self, key: &str) -> Option<&Arc<App>> {
        self.by_key.get(key)
    }

    /// Every app.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<App>> {
        self.by_id.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Ignore;

    struct Plain;

    impl AppMaker for Plain {
        fn make(&self, _: &AppConfig) -> (Webhooks, Arc<dyn Observer>) {
            (Webhooks::disabled(), Arc::new(Ignore))
        }
    }

    #[test]
    fn connection_quota() {
        let config = AppConfig { max_connections: Some(2), ..AppConfig::new("1", "k", "s") };
        let app = App::new(config, Webhooks::disabled(), Arc::new(Ignore));
        assert!(app.try_connect() && app.try_connect());
        assert!(!app.try_connect());
        app.disconnect();
        assert!(app.try_connect());
        let unlimited = App::new(AppConfig::new("2", "k2", "s"), Webhooks::disabled(), Arc::new(Ignore));
        assert!((0..1000).all(|_| unlimited.try_connect()));
    }

    #[test]
    fn a_reload_keeps_changes_adds_and_removes_apps() {
        let store = AppStore::new(&[AppConfig::new("1", "k1", "s1"), AppConfig::new("2", "k2", "s2")], &Plain);
        let one = store.by_id("1").unwrap().clone();
        let two = store.by_id("2").unwrap().clone();
        let (store, removed) =
            store.reloaded(&[AppConfig::new("1", "k1", "new-secret"), AppConfig::new("3", "k3", "s3")], &Plain);
        assert!(Arc::ptr_eq(store.by_id("1").unwrap(), &one), "the same app, its connections kept");
        assert_eq!(one.config().secret, "new-secret");
        assert!(store.by_id("2").is_none() && store.by_key("k2").is_none());
        assert_eq!(removed.len(), 1);
        assert!(two.removed.is_cancelled() && !one.removed.is_cancelled());
        assert!(store.by_key("k3").is_some());
    }
}
