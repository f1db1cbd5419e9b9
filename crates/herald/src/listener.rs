//! The accept loop: one hyper HTTP/1 connection per TCP connection, with upgrades enabled so the same
//! port serves WebSockets and the REST API.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use tokio_rustls::server::TlsStream;

use crate::http;
use crate::node::Node;
use crate::tls::Tls;

/// Pending connections the kernel queues before `accept`. The default (128) overflows when a few
/// hundred clients reconnect at once, and each overflow costs a client a one-second SYN retry.
const BACKLOG: u32 = 4096;

/// Listen on `address` with a backlog fit for reconnection storms.
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// Most TCP connections served as HTTP at once (WebSocket connections leave this count once
/// upgraded). Past it, new connections wait in the kernel's backlog until a slot frees, so a flood
/// of slow or idle HTTP clients cannot grow the task count without bound.
const MAX_HTTP_CONNECTIONS: usize = 4096;

/// Accept connections until shutdown.
pub(crate) async fn accept(listener: TcpListener, node: Arc<Node>) {
    let slots = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    let pending = Arc::new(Pending::default());
    let mut failures = FailureEpisode::default();
    loop {
        let accepted = tokio::select! {
            () = node.shutdown.cancelled() => return,
            accepted = accept_with_slot(&listener, &slots) => accepted,
        };
        match accepted {
            Ok((stream, peer, slot)) => {
                if let Some((count, lasted)) = failures.succeeded(Instant::now()) {
                    tracing::info!(failed_accepts = count, ?lasted, "accepting connections again");
                }
                let Some(waiting) = pending.admit(peer.ip(), node.config.max_pending_per_address) else {
                    node.metrics.http_refused.get_or_create(&[("reason", "too_many_pending")]).inc();
                    continue;
                };
                // Frames are small and latency matters more than packet count; batching happens in
                // the outbox instead.
                let _ = stream.set_nodelay(true);
                let node = node.clone();
                node.connections.clone().spawn(crate::repoll::Repoll::new(async move {
                    match &node.tls {
                        None => {
                            if first_byte(&stream, &node).await {
                                serve_http(stream, node.clone(), waiting).await;
                            }
                        }
                        Some(tls) => {
                            if let Some(stream) = handshake(tls, stream, &node).await {
                                serve_http(stream, node.clone(), waiting).await;
                            }
                        }
                    }
                    drop(slot);
                }));
            }
            Err(error) => {
                // Usually the open-file limit: back off instead of spinning, keep serving the others,
                // and say so once per episode rather than ten times a second.
                if failures.failed(Instant::now()) {
                    tracing::warn!(%error, "accept failed; retrying every 100 ms (logged again when it recovers)");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A run of failed accepts, reported when it starts and when it ends.
#[derive(Debug, Default)]
struct FailureEpisode {
    count: u64,
    since: Option<Instant>,
}

impl FailureEpisode {
    /// An accept failed; whether this starts an episode.
    fn failed(&mut self, now: Instant) -> bool {
        self.count += 1;
        let starts = self.since.is_none();
        self.since.get_or_insert(now);
        starts
    }

    /// An accept succeeded; how many failed and for how long, if an episode just ended.
    fn succeeded(&mut self, now: Instant) -> Option<(u64, Duration)> {
        let since = self.since.take()?;
        Some((std::mem::take(&mut self.count), now.saturating_duration_since(since)))
    }
}

async fn accept_with_slot(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> std::io::Result<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    // The semaphore is never closed, so acquiring fails only if it were; treat that as no limit.
    let slot = slots.clone().acquire_owned().await.map_err(std::io::Error::other)?;
    let (stream, peer) = listener.accept().await?;
    Ok((stream, peer, slot))
}

/// Wait for a plain connection's first byte, within the node's first-byte timeout; whether it came.
async fn first_byte(stream: &TcpStream, node: &Node) -> bool {
    // `peek` rather than `readable`: readiness can be reported before any byte is there.
    let mut byte = [0u8; 1];
    if tokio::time::timeout(node.config.first_byte_timeout, stream.peek(&mut byte)).await.is_ok() {
        return true;
    }
    node.metrics.http_refused.get_or_create(&[("reason", "silent")]).inc();
    false
}

/// Connections that have not yet sent a complete request, per source address.
#[derive(Debug, Default)]
struct Pending {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl Pending {
    /// Count a new connection from `ip`, unless `max` are already waiting.
    fn admit(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Waiting> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(ip).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Waiting { pending: self.clone(), ip, done: AtomicBool::new(false) })
    }

    fn release(&self, ip: IpAddr) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&ip);
            }
        }
    }
}

/// One connection counted in [`Pending`] until its first request arrives (or it ends).
#[derive(Debug)]
struct Waiting {
    pending: Arc<Pending>,
    ip: IpAddr,
    done: AtomicBool,
}

impl Waiting {
    fn request_arrived(&self) {
        if !self.done.swap(true, Ordering::Relaxed) {
            self.pending.release(self.ip);
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.request_arrived();
    }
}

/// Serve `GET /metrics` alone on its own listener (`metrics_addr`), until shutdown.
pub(crate) async fn serve_metrics(listener: TcpListener, node: Arc<Node>) {
    if let Ok(address) = listener.local_addr() {
        tracing::info!("metrics on http://{address}/metrics");
    }
    loop {
        let stream = tokio::select! {
            () = node.shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let node = node.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let response = if request.uri().path() == "/metrics" {
                    http::metrics(&node)
                } else {
                    crate::rest::error::ApiError::NotFound("only /metrics here".into()).into_response()
                };
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(60), connection).await;
        });
    }
}

/// The TLS handshake, within the node's handshake timeout. A plain-HTTP request, garbage or a
/// client that stalls ends here, counted, having cost its own task only.
async fn handshake(tls: &Tls, stream: TcpStream, node: &Node) -> Option<TlsStream<TcpStream>> {
    let outcome = tokio::time::timeout(node.config.tls_handshake_timeout, tls.acceptor().accept(stream)).await;
    let reason = match outcome {
        Ok(Ok(stream)) => return Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            "failed"
        }
        Err(_) => "timeout",
    };
    node.metrics.tls_handshakes_refused.get_or_create(&[("reason", reason)]).inc();
    None
}

async fn serve_http<S>(stream: S, node: Arc<Node>, waiting: Waiting)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service_node = node.clone();
    let waiting = Arc::new(waiting);
    let service = service_fn(move |request| {
        waiting.request_arrived();
        http::route(request, service_node.clone())
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(node.config.header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = node.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "http connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_accepts_are_reported_once_per_episode() {
        let start = Instant::now();
        let mut episode = FailureEpisode::default();
        assert_eq!(episode.succeeded(start), None, "nothing to report");
        assert!(episode.failed(start));
        for i in 1..50 {
            assert!(!episode.failed(start + Duration::from_millis(100 * i)));
        }
        assert_eq!(episode.succeeded(start + Duration::from_secs(5)), Some((50, Duration::from_secs(5))));
        assert_eq!(episode.succeeded(start + Duration::from_secs(6)), None);
        assert!(episode.failed(start + Duration::from_secs(7)), "a new episode");
    }
}
