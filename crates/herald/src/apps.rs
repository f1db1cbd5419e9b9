//! The apps this server hosts, found by id (REST paths) or by key (WebSocket paths).

use std::collections::HashMap;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;

use crate::config::AppConfig;
use crate::hub::Hub;
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
}

/// Every hosted app, indexed by id and by key.
#[derive(Debug, Default)]
pub struct AppStore {
    by_id: HashMap<String, Arc<App>>,
    by_key: HashMap<String, Arc<App>>,
}

impl AppStore {
    /// Build the store; each app gets an empty hub and emits webhooks into `webhooks`.
    pub fn new(configs: &[AppConfig], webhooks: &mpsc::Sender<Job>, dropped: &Counter) -> Self {
        let mut store = Self::default();
        for config in configs {
            let app = Arc::new(App {
                hub: Hub::new(config.subscription_count),
                webhooks: Webhooks::new(config, webhooks.clone(), dropped.clone()),
                config: config.clone(),
            });
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
