//! The accept loop: one hyper HTTP/1 connection per TCP connection, with upgrades enabled so the same
//! port serves WebSockets and the REST API.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::http;
use crate::node::Node;

/// A client must send its request headers within this long (slow-header clients would otherwise
/// hold a task and buffers forever).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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

/// Accept connections until shutdown.
pub async fn accept(listener: TcpListener, node: Arc<Node>) {
    loop {
        let accepted = tokio::select! {
            () = node.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                // Frames are small and latency matters more than packet count; batching happens in
                // the outbox instead.
                let _ = stream.set_nodelay(true);
                node.tracker.spawn(serve_http(stream, node.clone()));
            }
            Err(error) => {
                // Usually the open-file limit: back off instead of spinning, keep serving the others.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_http(stream: TcpStream, node: Arc<Node>) {
    let service_node = node.clone();
    let service = service_fn(move |request| http::route(request, service_node.clone()));
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
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
