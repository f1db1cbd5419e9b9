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

/// Tell every task to stop and wait for them, at most a little longer than the spread.
pub async fn drain(node: &Node) {
    node.shutdown.cancel();
    node.tracker.close();
    let grace = node.config.shutdown_spread + Duration::from_secs(5);
    if tokio::time::timeout(grace, node.tracker.wait()).await.is_err() {
        tracing::warn!(remaining = node.tracker.len(), "some connections did not close in time");
    }
}
