//! Delivery: signed POSTs to webhook endpoints (http, or https verified against the public roots and
//! an optional private CA), retried with exponential backoff for up to five
//! minutes after the event, over a small pool of keep-alive connections.
//!
//! Bounded everywhere, and per endpoint: at most [`MAX_OUTSTANDING`] requests wait or retry at once
//! ([`MAX_OUTSTANDING_PER_ENDPOINT`] for one endpoint; more are dropped and counted), at most
//! [`MAX_CONCURRENT`] are on the wire ([`MAX_CONCURRENT_PER_ENDPOINT`] for one endpoint), and each
//! endpoint keeps at most [`MAX_IDLE_PER_ENDPOINT`] idle connections. A failing or hanging endpoint
//! therefore cannot grow memory without bound, nor take the slots other endpoints need.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use pusher_wire::webhook::{self, WebhookEvent};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Requests waiting, on the wire or between retries, across every endpoint.
pub const MAX_OUTSTANDING: usize = 10_000;
/// Requests waiting, on the wire or between retries, for one endpoint.
pub const MAX_OUTSTANDING_PER_ENDPOINT: usize = 2_000;
/// Requests on the wire at once.
pub const MAX_CONCURRENT: usize = 64;
/// Requests on the wire at once to one endpoint.
pub const MAX_CONCURRENT_PER_ENDPOINT: usize = 8;
/// Idle keep-alive connections kept per endpoint.
pub const MAX_IDLE_PER_ENDPOINT: usize = 8;
/// A failing webhook is retried until this long after its event (as Pusher does).
pub const RETRY_WINDOW: Duration = Duration::from_secs(pusher_wire::limits::WEBHOOK_RETRY_WINDOW_SECS);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A webhook URL, checked once at start, with its own share of the delivery slots.
#[derive(Debug)]
pub struct Endpoint {
    tls: bool,
    host: String,
    port: u16,
    authority: String,
    path: String,
    outstanding: Arc<Semaphore>,
    wire: Semaphore,
}

impl Endpoint {
    /// Parse `http://host[:port][/path]` or `https://…`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("not a URL ({e})"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err("the URL must start with http:// or https://".into()),
        };
        let authority = uri.authority().ok_or("the URL has no host")?;
        // `user:password@` would end up in the Host header and the logs.
        if authority.as_str().contains('@') {
            return Err(
                "credentials in the URL are not supported; authenticate with the X-Pusher-Signature header".into()
            );
        }
        Ok(Self {
            tls,
            host: authority.host().trim_start_matches('[').trim_end_matches(']').to_owned(),
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            authority: authority.as_str().to_owned(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
            outstanding: Arc::new(Semaphore::new(MAX_OUTSTANDING_PER_ENDPOINT)),
            wire: Semaphore::new(MAX_CONCURRENT_PER_ENDPOINT),
        })
    }
}

/// The TLS settings of https endpoints: the public web's root certificates, plus the certificates
/// in `extra_roots` (a PEM file) for endpoints behind a private CA.
pub fn tls_config(extra_roots: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_roots {
        let certificates =
            CertificateDer::pem_file_iter(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut added = 0;
        for certificate in certificates {
            let certificate = certificate.map_err(|e| format!("{}: {e}", path.display()))?;
            roots.add(certificate).map_err(|e| format!("{}: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One webhook request: some events of one app for one endpoint.
#[derive(Debug)]
pub struct Request {
    /// Where to.
    pub endpoint: Arc<Endpoint>,
    /// The app key (`X-Pusher-Key`).
    pub key: Arc<str>,
    /// The app secret that signs the body.
    pub secret: Arc<str>,
    /// The events.
    pub events: Vec<WebhookEvent>,
    /// When it was handed over; retries stop [`RETRY_WINDOW`] after it.
    pub created: Instant,
}

/// The delivery service: cheap to clone, shared by the dispatcher.
#[derive(Debug, Clone)]
pub struct Delivery {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tls: Arc<ClientConfig>,
    idle: Mutex<HashMap<String, Vec<SendRequest<Full<Bytes>>>>>,
    outstanding: Arc<Semaphore>,
    wire: Semaphore,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    counters: Counters,
}

/// What delivery counts, for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Events delivered (2xx).
    pub delivered: Counter,
    /// Events given up on after retrying, or dropped because too many were outstanding.
    pub failed: Counter,
    /// Attempts that failed and were retried.
    pub retried: Counter,
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("answered {0}")]
    Status(u16),
}

impl Delivery {
    /// A delivery service whose tasks run on `tracker` and stop retrying on `shutdown`; https
    /// endpoints are verified with `tls`.
    pub fn new(tracker: TaskTracker, shutdown: CancellationToken, counters: Counters, tls: Arc<ClientConfig>) -> Self {
        Self {
            inner: Arc::new(Inner {
                tls,
                idle: Mutex::default(),
                outstanding: Arc::new(Semaphore::new(MAX_OUTSTANDING)),
                wire: Semaphore::new(MAX_CONCURRENT),
                tracker,
                shutdown,
                counters,
            }),
        }
    }

    /// Deliver in the background; never waits.
    pub fn send(&self, request: Request) {
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
                    return;
                }
                Err(error) => error,
            };
            let give_up = request.created.elapsed() + backoff > RETRY_WINDOW || self.inner.shutdown.is_cancelled();
            tracing::debug!(endpoint = request.endpoint.authority, %error, give_up, "webhook attempt failed");
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

    async fn attempt(&self, request: &Request) -> Result<(), AttemptError> {
        // The endpoint's slot first, so an endpoint that hangs queues behind its own share only.
        // The semaphores are never closed, so acquiring cannot fail.
        let _endpoint_wire = request.endpoint.wire.acquire().await.map_err(|_| AttemptError::Timeout)?;
        let _wire = self.inner.wire.acquire().await.map_err(|_| AttemptError::Timeout)?;
        // Stamped and signed at each attempt: receivers reject a `time_ms` far from their clock.
        let body = webhook::encode(unix_ms(), &request.events);
        let signature = webhook::sign(&request.secret, body.as_bytes());
        let endpoint = &request.endpoint;
        let mut http = hyper::Request::post(endpoint.path.as_str())
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| AttemptError::Timeout)?;
        let headers = http.headers_mut();
        for (name, value) in [
            (HOST.as_str(), endpoint.authority.as_str()),
            (CONTENT_TYPE.as_str(), webhook::CONTENT_TYPE),
            (webhook::KEY_HEADER, &request.key),
            (webhook::SIGNATURE_HEADER, signature.as_str()),
        ] {
            if let (Ok(name), Ok(value)) = (hyper::header::HeaderName::try_from(name), HeaderValue::from_str(value)) {
                headers.insert(name, value);
            }
        }
        let mut sender = self.connection(endpoint).await?;
        let response = tokio::time::timeout(RESPONSE_TIMEOUT, sender.send_request(http))
            .await
            .map_err(|_| AttemptError::Timeout)??;
        let status = response.status().as_u16();
        // Read (a bounded part of) the body so the connection can be reused.
        let _ = tokio::time::timeout(RESPONSE_TIMEOUT, Limited::new(response.into_body(), 64 * 1024).collect()).await;
        self.give_back(endpoint, sender);
        if (200..300).contains(&status) { Ok(()) } else { Err(AttemptError::Status(status)) }
    }

    /// An idle connection to `endpoint`, or a new one.
    async fn connection(&self, endpoint: &Endpoint) -> Result<SendRequest<Full<Bytes>>, AttemptError> {
        loop {
            let idle = self.idle().get_mut(&endpoint.authority).and_then(Vec::pop);
            match idle {
                Some(mut sender) if !sender.is_closed() => {
                    if sender.ready().await.is_ok() {
                        return Ok(sender);
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
        let connect = TcpStream::connect((endpoint.host.as_str(), endpoint.port));
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| AttemptError::Timeout)?
            .map_err(AttemptError::Connect)?;
        let _ = stream.set_nodelay(true);
        if !endpoint.tls {
            return self.handshake(stream).await;
        }
        let name = ServerName::try_from(endpoint.host.clone())
            .map_err(|e| AttemptError::Tls(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        let connect = TlsConnector::from(self.inner.tls.clone()).connect(name, stream);
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| AttemptError::Timeout)?
            .map_err(AttemptError::Tls)?;
        self.handshake(stream).await
    }

    /// HTTP/1 over a connected stream; the connection is driven by its own task.
    async fn handshake<S>(&self, stream: S) -> Result<SendRequest<Full<Bytes>>, AttemptError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        // Header names as Pusher sends them (`X-Pusher-Key`, `X-Pusher-Signature`): PHP apps read
        // them case-sensitively (the PHP SDK looks up `$headers['X-Pusher-Key']`).
        let (sender, connection) =
            hyper::client::conn::http1::Builder::new().title_case_headers(true).handshake(TokioIo::new(stream)).await?;
        self.inner.tracker.spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    fn give_back(&self, endpoint: &Endpoint, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle();
        let pool = idle.entry(endpoint.authority.clone()).or_default();
        if pool.len() < MAX_IDLE_PER_ENDPOINT {
            pool.push(sender);
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<SendRequest<Full<Bytes>>>>> {
        // Only pushes and pops happen under this lock; a poisoned pool is still a valid pool.
        self.inner.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
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
        assert_eq!((endpoint.host.as_str(), endpoint.port), ("hooks.example", 8080));
        assert_eq!(
            (endpoint.authority.as_str(), endpoint.path.as_str()),
            ("hooks.example:8080", "/pusher/webhooks?x=1")
        );
        let default = Endpoint::parse("http://127.0.0.1").unwrap();
        assert_eq!((default.port, default.path.as_str()), (80, "/"));
        let secure = Endpoint::parse("https://secure.example/h").unwrap();
        assert!(secure.tls && secure.port == 443);
        assert!(Endpoint::parse("ftp://x/y").is_err());
        assert!(Endpoint::parse("not a url").is_err());
        assert!(Endpoint::parse("https://user:secret@hooks.example/h").unwrap_err().contains("credentials"));
        assert!(Endpoint::parse("/relative").is_err());
    }
}
