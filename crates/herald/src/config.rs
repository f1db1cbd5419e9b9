//! Server configuration: what `herald serve` flags and a TOML file turn into.
//!
//! [`Config`] is plain data with defaults that match hosted Pusher; [`Config::validate`] refuses
//! values that would break a client later (empty secrets, keys that cannot sit in a URL, duplicate
//! apps) so the server fails loudly at start instead.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pusher_wire::limits::{ACTIVITY_TIMEOUT_SECS, PONG_TIMEOUT_SECS, WEBHOOK_REMOVAL_DELAY_SECS};
use pusher_wire::rest::types::TriggerLimits;
use pusher_wire::webhook::WebhookKind;
use serde::Deserialize;
use thiserror::Error;

/// Everything the server needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    pub host: IpAddr,
    /// Port to listen on; 0 picks a free one.
    pub port: u16,
    /// The apps this server hosts.
    pub apps: Vec<AppConfig>,
    /// `activity_timeout` announced to clients; also how long a client may stay silent before the
    /// server pings it.
    pub activity_timeout: Duration,
    /// How long the server waits for any reply to its ping before closing with 4201.
    pub pong_timeout: Duration,
    /// Most connections this process accepts; more are closed with 4100.
    pub max_connections: usize,
    /// Most subscriptions this process holds (every app together); more are refused with 4100.
    /// Default: half the memory available to the process, at 1 KiB each.
    pub max_subscriptions: usize,
    /// Bounds of each connection's outbound queue; a client that falls this far behind is closed
    /// with 4100.
    pub outbox: OutboxLimits,
    /// On shutdown, connections are closed with 4200 spread over this long, so that clients do not
    /// all reconnect at the same instant.
    pub shutdown_spread: Duration,
    /// How long a connection of an app with `authorized_connections` has to sign in or subscribe
    /// to a private or presence channel.
    pub authorization_timeout: Duration,
    /// How long `channel_vacated` and `member_removed` webhooks wait, so that a client that comes
    /// straight back causes neither them nor the matching re-add.
    pub webhook_delay: Duration,
    /// PEM file of extra CA certificates trusted for https webhook endpoints.
    pub webhook_ca_file: Option<PathBuf>,
    /// `redis://HOST:PORT[/DB]` (or `rediss://` for TLS): run as one node of a cluster sharing
    /// state through this Redis (or Valkey). Every node started with the same URL and the same apps
    /// is one cluster. `None`: a single node, everything in memory.
    pub redis_url: Option<String>,
    /// PEM file of extra CA certificates trusted for a `rediss://` Redis (one with a private CA).
    pub redis_ca_file: Option<PathBuf>,
    /// Serve `wss://` and `https://` only, with this certificate and key (re-read on SIGHUP).
    pub tls: Option<crate::tls::TlsFiles>,
    /// How long a client has to complete the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// How long a new TCP connection may stay silent before it is closed.
    pub first_byte_timeout: Duration,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// Most connections from one address that have not yet sent a complete request; more are
    /// closed at once, so a flood of silent connections cannot take every HTTP slot.
    pub max_pending_per_address: usize,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// A separate address for `GET /metrics` (then not served on the public port).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Serve the debug console at `/console` (every request to it signed with an app's secret or
    /// console token).
    pub console: bool,
    /// Where the apps came from, for re-reading them on SIGHUP (`None`: flags only, nothing to re-read).
    pub source: Option<ConfigSource>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// What a reload reads the apps from: the file, plus the app given by flags, which stays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSource {
    /// The TOML file.
    pub file: PathBuf,
    /// Apps given outside the file (flags), kept across reloads.
    pub extra_apps: Vec<AppConfig>,
}

/// How far a connection may fall behind before it is closed as a slow consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Most frames waiting to be written.
    pub max_frames: usize,
    /// Most bytes waiting to be written (frames shared with other connections count in full).
    pub max_bytes: usize,
    /// Longest a single write to the socket may block.
    pub write_timeout: Duration,
}

impl Default for OutboxLimits {
    fn default() -> Self {
        Self { max_frames: 1024, max_bytes: 4 << 20, write_timeout: Duration::from_secs(10) }
    }
}

/// One app: its credentials and switches.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The app id used in REST paths (`/apps/{id}/…`). Numeric ids work with every SDK.
    pub id: String,
    /// The public key clients connect with.
    pub key: String,
    /// The secret that signs everything.
    pub secret: String,
    /// Whether subscribers may send `client-*` events on private and presence channels.
    #[serde(default = "yes")]
    pub client_events: bool,
    /// Whether subscribers are told their channel's subscription count
    /// (`pusher_internal:subscription_count`). Off unless asked for, as on Pusher, where it is an
    /// app setting off by default: every subscribe and unsubscribe then costs a frame to each of the
    /// channel's subscribers, which would dominate the cost of connecting.
    #[serde(default)]
    pub subscription_count: bool,
    /// Pusher's "authorized connections": a connection that has neither signed in nor subscribed
    /// to a private or presence channel 30 s after connecting is closed with 4009.
    #[serde(default)]
    pub authorized_connections: bool,
    /// Most connections of this app; more are refused with 4004. `None`: no app limit.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Largest event `data`, in bytes.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
    /// Where to POST webhooks.
    #[serde(default)]
    pub webhooks: Vec<WebhookTarget>,
    /// Send the events that are ready together, several per request, instead of one per request.
    #[serde(default)]
    pub batch_webhooks: bool,
    /// Origins whose pages may connect (`https://app.example.com`, `https://*.example.com`); others
    /// get 4009. Empty: any origin.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Most subscriptions of this app's connections together; more are refused with 4100. `None`:
    /// only the node's budget.
    #[serde(default)]
    pub max_subscriptions: Option<usize>,
    /// Most members of one presence channel (Pusher: 100); more are refused with 4100.
    #[serde(default = "default_max_presence_members")]
    pub max_presence_members: usize,
    /// Client events one connection may send per second (Pusher: 10); more get 4301.
    #[serde(default = "default_client_events_per_second")]
    pub max_client_events_per_second: u32,
    /// REST events (one per channel of a trigger or batch entry) per second; more get 429. `None`:
    /// no limit.
    #[serde(default)]
    pub max_rest_events_per_second: Option<u32>,
    /// REST reads (`GET /channels…`) per second; more get 429. `None`: no limit.
    #[serde(default)]
    pub max_rest_reads_per_second: Option<u32>,
    /// A second credential for the debug console only, so that people who debug the app need not
    /// hold its secret. `None`: the console opens with the app's secret alone.
    #[serde(default)]
    pub console_token: Option<String>,
}

/// One webhook endpoint of an app.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    /// The endpoint, `http://host[:port]/path`.
    pub url: String,
    /// The event kinds it wants; all of them when absent.
    #[serde(default)]
    pub events: Option<Vec<WebhookKind>>,
}

impl WebhookTarget {
    /// Whether this endpoint wants events of `kind`.
    pub(crate) fn wants(&self, kind: WebhookKind) -> bool {
        self.events.as_ref().is_none_or(|events| events.contains(&kind))
    }
}

fn yes() -> bool {
    true
}

fn default_max_presence_members() -> usize {
    pusher_wire::limits::MAX_PRESENCE_MEMBERS
}

fn default_client_events_per_second() -> u32 {
    pusher_wire::limits::MAX_CLIENT_EVENTS_PER_SECOND
}

fn default_max_event_bytes() -> usize {
    TriggerLimits::default().max_data_bytes
}

impl AppConfig {
    /// An app with default settings.
    pub fn new(id: impl Into<String>, key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            key: key.into(),
            secret: secret.into(),
            client_events: true,
            subscription_count: false,
            authorized_connections: false,
            max_connections: None,
            max_event_bytes: default_max_event_bytes(),
            webhooks: Vec::new(),
            batch_webhooks: false,
            allowed_origins: Vec::new(),
            max_subscriptions: None,
            max_presence_members: default_max_presence_members(),
            max_client_events_per_second: default_client_events_per_second(),
            max_rest_events_per_second: None,
            max_rest_reads_per_second: None,
            console_token: None,
        }
    }

    /// The limits REST triggers of this app are checked against.
    pub(crate) fn trigger_limits(&self) -> TriggerLimits {
        TriggerLimits { max_data_bytes: self.max_event_bytes, ..TriggerLimits::default() }
    }
}

impl Config {
    /// A configuration with Pusher's defaults, listening on `host:port`, hosting `apps`.
    pub fn new(host: IpAddr, port: u16, apps: Vec<AppConfig>) -> Self {
        Self {
            host,
            port,
            apps,
            activity_timeout: Duration::from_secs(ACTIVITY_TIMEOUT_SECS),
            pong_timeout: Duration::from_secs(PONG_TIMEOUT_SECS),
            max_connections: 100_000,
            max_subscriptions: crate::budget::default_subscriptions(crate::budget::available_memory()),
            outbox: OutboxLimits::default(),
            shutdown_spread: Duration::from_secs(2),
            authorization_timeout: Duration::from_secs(30),
            webhook_delay: Duration::from_secs(WEBHOOK_REMOVAL_DELAY_SECS),
            webhook_ca_file: None,
            redis_url: None,
            redis_ca_file: None,
            tls: None,
            tls_handshake_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            max_pending_per_address: 256,
            log_format: LogFormat::Text,
            metrics_addr: None,
            console: false,
            source: None,
        }
    }

    /// Read a TOML configuration file. Values it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        let mut config = Self::from_toml(&text).map_err(|error| match error {
            ConfigError::Toml(message) => ConfigError::Toml(format!("{}: {message}", path.display())),
            other => other,
        })?;
        config.source = Some(ConfigSource { file: path.to_owned(), extra_apps: Vec::new() });
        Ok(config)
    }

    /// Parse a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        let defaults = Self::new(IpAddr::from([0, 0, 0, 0]), 6001, Vec::new());
        Ok(Self {
            host: file.host.unwrap_or(defaults.host),
            port: file.port.unwrap_or(defaults.port),
            apps: file.apps,
            activity_timeout: file.activity_timeout_secs.map_or(defaults.activity_timeout, Duration::from_secs),
            pong_timeout: file.pong_timeout_secs.map_or(defaults.pong_timeout, Duration::from_secs),
            max_connections: file.max_connections.unwrap_or(defaults.max_connections),
            max_subscriptions: file.max_subscriptions.unwrap_or(defaults.max_subscriptions),
            outbox: defaults.outbox,
            shutdown_spread: defaults.shutdown_spread,
            authorization_timeout: defaults.authorization_timeout,
            webhook_delay: defaults.webhook_delay,
            webhook_ca_file: file.webhook_ca_file,
            redis_url: file.redis_url,
            redis_ca_file: file.redis_ca_file,
            tls: match (file.tls_cert_file, file.tls_key_file) {
                (Some(cert), Some(key)) => Some(crate::tls::TlsFiles { cert, key }),
                (None, None) => None,
                _ => return Err(ConfigError::Invalid("give both tls_cert_file and tls_key_file, or neither".into())),
            },
            tls_handshake_timeout: defaults.tls_handshake_timeout,
            first_byte_timeout: defaults.first_byte_timeout,
            header_timeout: defaults.header_timeout,
            max_pending_per_address: file
                .max_pending_connections_per_address
                .unwrap_or(defaults.max_pending_per_address),
            log_format: file.log_format.unwrap_or(defaults.log_format),
            metrics_addr: file.metrics_addr,
            console: file.console.unwrap_or(defaults.console),
            source: None,
        })
    }

    /// Read the apps again from where they came from (SIGHUP), validated as at start. Only the apps
    /// change while running; other settings wait for a restart. `Ok(None)` when there is no file.
    pub(crate) fn reread_apps(&self) -> Result<Option<Vec<AppConfig>>, ConfigError> {
        let Some(source) = &self.source else { return Ok(None) };
        let mut fresh = Self::from_file(&source.file)?;
        fresh.apps.extend(source.extra_apps.iter().cloned());
        fresh.validate()?;
        Ok(Some(fresh.apps))
    }

    /// Refuse configurations that would break clients later.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.apps.is_empty() {
            return Err(ConfigError::NoApps);
        }
        // pusher-js refuses a handshake whose activity_timeout is 0; a day is already far beyond
        // what keeps a connection through NATs and proxies.
        check_range("activity timeout (seconds)", self.activity_timeout.as_secs(), 1, 86_400)?;
        check_range("pong timeout (seconds)", self.pong_timeout.as_secs(), 1, 3_600)?;
        for app in &self.apps {
            // 1 MiB at most: a batch of ten such events is the REST body limit (20 MiB with escaping).
            check_range("max_event_bytes", app.max_event_bytes as u64, 1, 1 << 20)?;
            check_range("max_presence_members", app.max_presence_members as u64, 1, 100_000)?;
            check_range("max_client_events_per_second", u64::from(app.max_client_events_per_second), 1, 100_000)?;
            for limit in [app.max_rest_events_per_second, app.max_rest_reads_per_second].into_iter().flatten() {
                check_range("REST requests per second", u64::from(limit), 1, 10_000_000)?;
            }
        }
        if let Some(files) = &self.tls {
            crate::tls::server_config(files).map_err(|why| ConfigError::Invalid(format!("TLS: {why}")))?;
        }
        if let Some(url) = &self.redis_url {
            crate::cluster::check_url(url).map_err(|why| ConfigError::Invalid(format!("redis url {url:?}: {why}")))?;
        }
        if let Some(path) = &self.redis_ca_file {
            if !self.redis_url.as_deref().is_some_and(crate::cluster::uses_tls) {
                return Err(ConfigError::Invalid("redis_ca_file is for a rediss:// redis url".into()));
            }
            crate::tls::client_config(Some(path))
                .map_err(|why| ConfigError::Invalid(format!("redis_ca_file: {why}")))?;
        }
        if let Some(path) = &self.webhook_ca_file {
            crate::tls::client_config(Some(path))
                .map_err(|why| ConfigError::Invalid(format!("webhook_ca_file: {why}")))?;
        }
        for (i, app) in self.apps.iter().enumerate() {
            check_credential("app id", &app.id)?;
            check_credential("key", &app.key)?;
            check_credential("secret", &app.secret)?;
            for target in &app.webhooks {
                crate::webhooks::delivery::Endpoint::parse(&target.url).map_err(|why| {
                    ConfigError::Invalid(format!("app {}: webhook url {:?}: {why}", app.id, target.url))
                })?;
            }
            if let Some(token) = &app.console_token {
                check_credential("console_token", token)?;
                if token.len() < 16 {
                    return Err(ConfigError::Invalid(format!(
                        "app {}: console_token is {} characters; give it at least 16",
                        app.id,
                        token.len()
                    )));
                }
            }
            if let Some(other) = self.apps[..i].iter().find(|o| o.id == app.id || o.key == app.key) {
                let what = if other.id == app.id { "id" } else { "key" };
                return Err(ConfigError::Invalid(format!("two apps share the {what} {:?}", app.id)));
            }
        }
        Ok(())
    }
}

/// The largest WebSocket message a client of an app may send: its largest client event plus room
/// for the envelope, and never under 64 KiB.
pub(crate) fn max_client_message_bytes(max_event_bytes: usize) -> usize {
    (64 * 1024).max(max_event_bytes.saturating_add(16 * 1024))
}

fn check_range(what: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!("{what} is {value}; it must be between {min} and {max}")))
    }
}

/// Credentials travel in URLs (`http://KEY:SECRET@host/apps/ID`), so only URL-safe characters.
fn check_credential(what: &str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::Invalid(format!("the {what} is empty")));
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))) {
        return Err(ConfigError::Invalid(format!(
            "the {what} contains {c:?}; use letters, digits, '-', '_', '.' or '~' so it can sit in a URL"
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    host: Option<IpAddr>,
    port: Option<u16>,
    activity_timeout_secs: Option<u64>,
    pong_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_subscriptions: Option<usize>,
    webhook_ca_file: Option<PathBuf>,
    redis_url: Option<String>,
    redis_ca_file: Option<PathBuf>,
    tls_cert_file: Option<PathBuf>,
    max_pending_connections_per_address: Option<usize>,
    log_format: Option<LogFormat>,
    metrics_addr: Option<std::net::SocketAddr>,
    tls_key_file: Option<PathBuf>,
    console: Option<bool>,
    #[serde(default)]
    apps: Vec<AppConfig>,
}

/// A configuration that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// No app is configured.
    #[error("no app is configured: give --app-id, --key and --secret, or --config FILE with [[apps]]")]
    NoApps,
    /// A value is unusable.
    #[error("{0}")]
    Invalid(String),
    /// The configuration file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML for a Herald configuration.
    #[error("invalid configuration: {0}")]
    Toml(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_several_apps() {
        let config = Config::from_toml(
            r#"
            port = 7000
            [[apps]]
            id = "1"
            key = "key-one"
            secret = "secret-one"
            [[apps]]
            id = "2"
            key = "key-two"
            secret = "secret-two"
            client_events = false
            max_connections = 10
            "#,
        )
        .unwrap();
        assert_eq!(config.port, 7000);
        assert_eq!(config.apps.len(), 2);
        assert!(config.apps[0].client_events);
        assert!(!config.apps[1].client_events);
        assert_eq!(config.apps[1].max_connections, Some(10));
        assert_eq!(config.redis_url, None, "a single node unless told otherwise");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn a_redis_url_makes_a_cluster_node_and_a_bad_one_is_refused() {
        let apps = "[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\n";
        let config = Config::from_toml(&format!("redis_url = \"redis://10.0.0.5:6379/2\"\n{apps}")).unwrap();
        assert_eq!(config.redis_url.as_deref(), Some("redis://10.0.0.5:6379/2"));
        assert!(config.validate().is_ok());
        let config = Config::from_toml(&format!("redis_url = \"http://nope\"\n{apps}")).unwrap();
        assert!(config.validate().unwrap_err().to_string().contains("redis url"));
        let config = Config::from_toml(&format!("redis_url = \"rediss://redis.example:6380\"\n{apps}")).unwrap();
        assert!(config.validate().is_ok(), "TLS to Redis");
    }

    #[test]
    fn a_redis_ca_file_goes_with_a_rediss_url_and_must_hold_a_certificate() {
        let apps = "[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\n";
        let plain = "redis_url = \"redis://127.0.0.1:6379\"\nredis_ca_file = \"/nonexistent/ca.pem\"\n";
        let error = Config::from_toml(&format!("{plain}{apps}")).unwrap().validate().unwrap_err().to_string();
        assert!(error.contains("rediss://"), "{error}");
        let missing = "redis_url = \"rediss://127.0.0.1:6379\"\nredis_ca_file = \"/nonexistent/ca.pem\"\n";
        let error = Config::from_toml(&format!("{missing}{apps}")).unwrap().validate().unwrap_err().to_string();
        assert!(error.contains("redis_ca_file") && error.contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn unusable_configurations_are_refused_in_plain_words() {
        let check = |apps: Vec<AppConfig>, message: &str| {
            let error = Config::new(IpAddr::from([127, 0, 0, 1]), 0, apps).validate().unwrap_err().to_string();
            assert!(error.contains(message), "{error}");
        };
        check(vec![], "no app is configured");
        check(vec![AppConfig::new("1", "k", "")], "the secret is empty");
        check(vec![AppConfig::new("1", "k@", "s")], "the key contains '@'");
        check(vec![AppConfig::new("1", "k", "s"), AppConfig::new("1", "k2", "s")], "share the id");
        check(vec![AppConfig::new("1", "k", "s"), AppConfig::new("2", "k", "s")], "share the key");
        assert!(Config::from_toml("apps = 3").unwrap_err().to_string().contains("invalid configuration"));
        let app = || vec![AppConfig::new("1", "k", "s")];
        let mut config = Config::new(IpAddr::from([127, 0, 0, 1]), 0, app());
        config.pong_timeout = std::time::Duration::ZERO;
        assert!(config.validate().unwrap_err().to_string().contains("pong timeout"));
        let mut config = Config::new(IpAddr::from([127, 0, 0, 1]), 0, app());
        config.activity_timeout = std::time::Duration::from_secs(u64::MAX);
        assert!(config.validate().unwrap_err().to_string().contains("activity timeout"));
        assert!(Config::from_toml("[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\ntypo = 1").is_err());
    }
}
