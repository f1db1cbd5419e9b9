//! A webhook endpoint on a free loopback port that records every request (and can fail the
//! first ones, or speak https).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// What the receiver saw of one request.
#[derive(Debug)]
pub struct Hook {
    pub content_type: String,
    pub key: String,
    pub signature: String,
    pub body: String,
}

impl Hook {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("webhook body is JSON")
    }

    /// The events, as (name, channel) pairs.
    pub fn names(&self) -> Vec<(String, String)> {
        self.json()["events"]
            .as_array()
            .expect("events is an array")
            .iter()
            .map(|e| (e["name"].as_str().unwrap().to_owned(), e["channel"].as_str().unwrap().to_owned()))
            .collect()
    }
}

/// A webhook endpoint on a free port; answers 500 to the first `failures` requests.
pub struct Receiver {
    pub url: String,
    hooks: mpsc::UnboundedReceiver<Hook>,
}

impl Receiver {
    pub async fn start(failures: usize) -> Self {
        Self::start_with(failures, None).await
    }

    /// With `tls`, the receiver speaks https as `localhost`.
    pub async fn start_with(failures: usize, tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = match tls {
            Some(_) => format!("https://localhost:{port}/pusher/webhooks"),
            None => format!("http://127.0.0.1:{port}/pusher/webhooks"),
        };
        let (sender, hooks) = mpsc::unbounded_channel();
        let failures = Arc::new(AtomicUsize::new(failures));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (sender, failures, tls) = (sender.clone(), failures.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let (sender, failures) = (sender.clone(), failures.clone());
                        async move {
                            let header = |name: &str| {
                                request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
                            };
                            let (content_type, key, signature) =
                                (header("content-type"), header("x-pusher-key"), header("x-pusher-signature"));
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let body = String::from_utf8(body.to_vec()).unwrap();
                            let fail =
                                failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
                            if !fail {
                                let _ = sender.send(Hook { content_type, key, signature, body });
                            }
                            let mut response = Response::new(Full::new(Bytes::new()));
                            *response.status_mut() =
                                if fail { 500.try_into().unwrap() } else { 200.try_into().unwrap() };
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Self { url, hooks }
    }

    pub async fn next(&mut self) -> Hook {
        tokio::time::timeout(Duration::from_secs(10), self.hooks.recv())
            .await
            .expect("timed out waiting for a webhook")
            .expect("receiver stopped")
    }

    pub async fn expect_none(&mut self, wait: Duration) {
        if let Ok(Some(hook)) = tokio::time::timeout(wait, self.hooks.recv()).await {
            panic!("unexpected webhook: {}", hook.body);
        }
    }
}
