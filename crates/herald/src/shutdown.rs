//! Stopping cleanly: wait for SIGINT or SIGTERM; then stop accepting, close every connection with 4200
//! (spread over `shutdown_spread`, so clients do not all reconnect at once) and wait for the tasks.

use std::time::Duration;

use crate::node::Node;

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// SIGHUPs, for reloading; `None` where there are none (not unix, or the handler cannot be set).
#[cfg(unix)]
pub fn hangups() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

/// Tell every task to stop and wait for them: first the connections (a little longer than the
/// spread), then the background tasks, which send the webhooks the closing connections caused.
pub(crate) async fn drain(node: &Node) {
    node.shutdown.cancel();
    node.connections.close();
    node.cluster_link.close();
    node.tracker.close();
    let grace = node.config.shutdown_spread + Duration::from_secs(5);
    if tokio::time::timeout(grace, node.connections.wait()).await.is_err() {
        tracing::warn!(remaining = node.connections.len(), "some connections did not close in time");
    }
    if tokio::time::timeout(BACKGROUND_GRACE, node.cluster_link.wait()).await.is_err() {
        tracing::warn!("the cluster link did not finish leaving in time");
    }
    if tokio::time::timeout(BACKGROUND_GRACE, node.tracker.wait()).await.is_err() {
        tracing::warn!(remaining = node.tracker.len(), "some webhooks were still being delivered");
    }
}

/// How long the last webhook deliveries may take after the connections are closed.
const BACKGROUND_GRACE: Duration = Duration::from_secs(5);
