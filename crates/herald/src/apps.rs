//! The apps this server hosts, found by id (REST paths) or by key (WebSocket paths).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use crate::config::AppConfig;
use crate::hub::{Hub, Observer};
use crate::webhooks::{Job, Webhooks};

/// One hosted app: its configuration and its channels.
#[derive(Debug)]
pub struct App {
    /// Credentials and switches.
    pub config: AppConfig,
    /// The app's channels and subscribers.
    pub hub: Hub,
    /// Where its webhook events go.
    pub webhooks: Webhooks,
    /// Open connections of this app, for its quota.
    connections: AtomicUsize,
}

impl App {
    /// An app with no channels and no connections; its hub tells `observer` what happens in it.
    pub fn new(config: AppConfig, webhooks: Webhooks, observer: Arc<dyn Observer>) -> Self {
        Self { hub: Hub::new(config.subscription_count, observer), webhooks, config, connections: AtomicUsize::new(0) }
    }

    /// Count a new connection unless the app is at its `max_connections`.
    pub fn try_connect(&self) -> bool {
        let previous = self.connections.fetch_add(1, Ordering::Relaxed);
        if self.config.max_connections.is_some_and(|max| previous >= max) {
            self.connections.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Forget a connection counted by [`Self::try_connect`].
    pub fn disconnect(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every hosted app, indexed by id and by key.
#[derive(Debug, Default)]
pub struct AppStore {
    by_id: HashMap<String, Arc<App>>,
    by_key: HashMap<String, Arc<App>>,
}

impl AppStore {
    /// Build the store; each app gets an empty hub, emits webhooks into `webhooks`, and has its hub
    /// observed by what `observer` makes of its config and webhook handle.
    pub fn new(
        configs: &[AppConfig],
        webhooks: &mpsc::Sender<Job>,
        dropped: &Counter,
        observer: impl Fn(&AppConfig, &Webhooks) -> Arc<dyn Observer>,
    ) -> Self {
        let mut store = Self::default();
        for config in configs {
            let hooks = Webhooks::new(config, webhooks.clone(), dropped.clone());
            let app = Arc::new(App::new(config.clone(), hooks.clone(), observer(config, &hooks)));
            store.by_id.insert(config.id.clone(), app.clone());
            store.by_key.insert(config.key.clone(), app);
        }
        store
    }

    /// The app with this id.
    pub fn by_id(&self, id: &str) -> Option<&Arc<App>> {
        self.by_id.get(id)
    }

    /// The app with this key.
    pub fn by_key(&self, key: &str) -> Option<&Arc<App>> {
        self.by_key.get(key)
    }

    /// Every app.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<App>> {
        self.by_id.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_quota() {
        let config = AppConfig { max_connections: Some(2), ..AppConfig::new("1", "k", "s") };
        let app = App::new(config, Webhooks::disabled(), Arc::new(crate::hub::Ignore));
        assert!(app.try_connect() && app.try_connect());
        assert!(!app.try_connect());
        app.disconnect();
        assert!(app.try_connect());
        let unlimited = App::new(AppConfig::new("2", "k2", "s"), Webhooks::disabled(), Arc::new(crate::hub::Ignore));
        assert!((0..1000).all(|_| unlimited.try_connect()));
    }
}
