//! Delivery: signed POSTs to webhook endpoints (http, or https verified against the public roots and
//! an optional private CA), retried with exponential backoff for up to five
//! minutes after the event, over hyper-util's pool of keep-alive connections (keyed by scheme and
//! authority, so an http and an https endpoint on one host and port never share a connection;
//! idle connections closed after [`IDLE_TIMEOUT`]).
//!
//! Bounded everywhere, and per endpoint: at most [`MAX_OUTSTANDING`] requests wait or retry at once
//! ([`MAX_OUTSTANDING_PER_ENDPOINT`] for one endpoint; more are dropped and counted), at most
//! [`MAX_CONCURRENT`] are on the wire ([`MAX_CONCURRENT_PER_ENDPOINT`] for one endpoint), and each
//! endpoint keeps at most [`MAX_IDLE_PER_ENDPOINT`] idle connections. A failing or hanging endpoint
//! therefore cannot grow memory without bound, nor take the slots other endpoints need.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use prometheus_client::metrics::counter::Counter;
use pusher_wire::webhook::{self, WebhookEvent};
use tokio::sync::Semaphore;
use tokio_rustls::rustls::ClientConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::console::{Activity, Console};

/// Requests waiting, on the wire or between retries, across every endpoint.
pub(crate) const MAX_OUTSTANDING: usize = 10_000;
/// Requests waiting, on the wire or between retries, for one endpoint.
pub(crate) const MAX_OUTSTANDING_PER_ENDPOINT: usize = 2_000;
/// Requests on the wire at once.
pub(crate) const MAX_CONCURRENT: usize = 64;
/// Requests on the wire at once to one endpoint.
pub(crate) const MAX_CONCURRENT_PER_ENDPOINT: usize = 8;
/// Idle keep-alive connections kept per endpoint.
pub(crate) const MAX_IDLE_PER_ENDPOINT: usize = 8;
/// A failing webhook is retried until this long after its event (as Pusher does).
pub(crate) const RETRY_WINDOW: Duration = Duration::from_secs(pusher_wire::limits::WEBHOOK_RETRY_WINDOW_SECS);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// An idle keep-alive connection is closed after this long.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A webhook URL, checked once at start, with its own share of the delivery slots.
#[derive(Debug)]
pub(crate) struct Endpoint {
    authority: String,
    /// The whole URL, as requests are sent to it.
    uri: String,
    /// The URL without its query, which may carry a token: what the debug console shows.
    shown: String,
    outstanding: Arc<Semaphore>,
    wire: Semaphore,
}

impl Endpoint {
    /// Parse `http://host[:port][/path]` or `https://…`.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err("the URL must start with http:// or https://".into());
        }
        let authority = uri.authority().ok_or("the URL has no host")?;
        // `user:password@` would end up in the Host header and the logs.
        if authority.as_str().contains('@') {
            return Err(
                "credentials in the URL are not supported; authenticate with the X-Pusher-Signature header".into()
            );
        }
        Ok(Self {
            authority: authority.as_str().to_owned(),
            shown: format!("{}://{}{}", uri.scheme_str().unwrap_or("http"), authority.as_str(), uri.path()),
            uri: uri.to_string(),
            outstanding: Arc::new(Semaphore::new(MAX_OUTSTANDING_PER_ENDPOINT)),
            wire: Semaphore::new(MAX_CONCURRENT_PER_ENDPOINT),
        })
    }
}

/// One webhook request: some events of one app for one endpoint.
#[derive(Debug)]
pub(crate) struct Request {
    /// The app whose events these are.
    pub(crate) app_id: Arc<str>,
    /// Where to.
    pub(crate) endpoint: Arc<Endpoint>,
    /// The app key (`X-Pusher-Key`).
    pub(crate) key: Arc<str>,
    /// The app secret that signs the body.
    pub(crate) secret: Arc<str>,
    /// The events.
    pub(crate) events: Vec<WebhookEvent>,
    /// When it was handed over; retries stop [`RETRY_WINDOW`] after it.
    pub(crate) created: Instant,
}

/// The delivery service: cheap to clone, shared by the dispatcher.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    outstanding: Arc<Semaphore>,
    wire: Semaphore,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    counters: Counters,
    console: Arc<Console>,
}

/// What delivery counts, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    /// Events delivered (2xx).
    pub(crate) delivered: Counter,
    /// Events given up on after retrying, or dropped because too many were outstanding.
    pub(crate) failed: Counter,
    /// Attempts that failed and were retried.
    pub(crate) retried: Counter,
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    #[error("answered {0}")]
    Status(u16),
}

impl Delivery {
    /// A delivery service whose tasks run on `tracker` and stop retrying on `shutdown`; https
    /// endpoints are verified with `tls`; outcomes are told to the debug `console`.
    pub(crate) fn new(
        tracker: TaskTracker,
        shutdown: CancellationToken,
        counters: Counters,
        tls: Arc<ClientConfig>,
        console: Arc<Console>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client: client(tls),
                outstanding: Arc::new(Semaphore::new(MAX_OUTSTANDING)),
                wire: Semaphore::new(MAX_CONCURRENT),
                tracker,
                shutdown,
                counters,
                console,
            }),
        }
    }

    /// Deliver in the background; never waits.
    pub(crate) fn send(&self, request: Request) {
        let slots = request
            .endpoint
            .outstanding
            .clone()
            .try_acquire_owned()
            .ok()
            .zip(self.inner.outstanding.clone().try_acquire_owned().ok());
        let Some(slots) = slots else {
            self.inner.counters.failed.inc_by(request.events.len() as u64);
            tracing::warn!(endpoint = request.endpoint.authority, "too many webhooks outstanding: dropped");
            return;
        };
        let this = self.clone();
        self.inner.tracker.spawn(async move {
            this.deliver(request).await;
            drop(slots);
        });
    }

    async fn deliver(&self, request: Request) {
        let counters = &self.inner.counters;
        let events = request.events.len() as u64;
        let mut backoff = Duration::from_secs(1);
        loop {
            let error = match self.attempt(&request).await {
                Ok(()) => {
                    counters.delivered.inc_by(events);
                    self.tell(&request, None);
                    return;
                }
                Err(error) => error,
            };
            let give_up = request.created.elapsed() + backoff > RETRY_WINDOW || self.inner.shutdown.is_cancelled();
            tracing::debug!(endpoint = request.endpoint.authority, %error, give_up, "webhook attempt failed");
            self.tell(&request, Some((&error, !give_up)));
            if give_up {
                counters.failed.inc_by(events);
                tracing::warn!(endpoint = request.endpoint.authority, %error, "webhook given up");
                return;
            }
            counters.retried.inc();
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                // Shutting down: one last attempt now, then give up.
                () = self.inner.shutdown.cancelled() => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Tell the console's viewers of the request's app how an attempt went: sent, or failed with
    /// an error (and whether it is retried).
    fn tell(&self, request: &Request, failure: Option<(&AttemptError, bool)>) {
        let console = &self.inner.console;
        if !console.watched() {
            return;
        }
        let events: Vec<&str> = request.events.iter().map(|event| event.kind().name()).collect();
        let url = request.endpoint.shown.as_str();
        match failure {
            None => console.emit(&request.app_id, || Activity::WebhookSent { url, events: &events }),
            Some((error, retrying)) => {
                let error = error.to_string();
                console.emit(&request.app_id, || Activity::WebhookFailed {
                    url,
                    events: &events,
                    error: &error,
                    retrying,
                });
            }
        }
    }

    async fn attempt(&self, request: &Request) -> Result<(), AttemptError> {
        // The endpoint's slot first, so an endpoint that hangs queues behind its own share only.
        // The semaphores are never closed, so acquiring cannot fail.
        let _endpoint_wire = request.endpoint.wire.acquire().await.map_err(|_| AttemptError::Timeout)?;
        let _wire = self.inner.wire.acquire().await.map_err(|_| AttemptError::Timeout)?;
        // Stamped and signed at each attempt: receivers reject a `time_ms` far from their clock.
        let body = webhook::encode(unix_ms(), &request.events);
        let signature = webhook::sign(&request.secret, body.as_bytes());
        let endpoint = &request.endpoint;
        let mut http = hyper::Request::post(endpoint.uri.as_str())
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| AttemptError::Timeout)?;
        let headers = http.headers_mut();
        for (name, value) in [
            (CONTENT_TYPE.as_str(), webhook::CONTENT_TYPE),
            (webhook::KEY_HEADER, &request.key),
            (webhook::SIGNATURE_HEADER, signature.as_str()),
        ] {
            if let (Ok(name), Ok(value)) = (hyper::header::HeaderName::try_from(name), HeaderValue::from_str(value)) {
                headers.insert(name, value);
            }
        }
        let response = tokio::time::timeout(RESPONSE_TIMEOUT, self.inner.client.request(http))
            .await
            .map_err(|_| AttemptError::Timeout)??;
        let status = response.status().as_u16();
        // Read (a bounded part of) the body so the connection can be reused.
        let _ = tokio::time::timeout(RESPONSE_TIMEOUT, Limited::new(response.into_body(), 64 * 1024).collect()).await;
        if (200..300).contains(&status) { Ok(()) } else { Err(AttemptError::Status(status)) }
    }
}

/// hyper-util's pooled HTTP/1 client, https verified with `tls`. Header names are sent as Pusher
/// spells them (`X-Pusher-Key`): PHP apps read them case-sensitively.
fn client(tls: Arc<ClientConfig>) -> Client<HttpsConnector<HttpConnector>, Full<Bytes>> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE_PER_ENDPOINT)
        .pool_timer(TokioTimer::new())
        .http1_title_case_headers(true)
        .build(connector)
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let endpoint = Endpoint::parse("http://hooks.example:8080/pusher/webhooks?x=1").unwrap();
        assert_eq!(endpoint.authority, "hooks.example:8080");
        assert_eq!(endpoint.uri, "http://hooks.example:8080/pusher/webhooks?x=1");
        assert_eq!(endpoint.shown, "http://hooks.example:8080/pusher/webhooks", "the console never sees the query");
        let default = Endpoint::parse("http://127.0.0.1").unwrap();
        assert_eq!(default.uri, "http://127.0.0.1/");
        let secure = Endpoint::parse("https://secure.example/h").unwrap();
        assert_eq!(secure.uri, "https://secure.example/h");
        assert!(Endpoint::parse("ftp://x/y").is_err());
        assert!(Endpoint::parse("not a url").is_err());
        assert!(Endpoint::parse("https://user:secret@hooks.example/h").unwrap_err().contains("credentials"));
        assert!(Endpoint::parse("/relative").is_err());
    }
}
