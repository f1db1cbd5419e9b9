//! WebSocket and REST clients for the scenarios: connect and subscribe like pusher-js, and trigger
//! over keep-alive connections signed like the SDKs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use pusher_wire::rest::auth::signed_query;
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::server::app;

/// A client WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long one connect, subscribe or request may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected client and its socket id.
pub struct Client {
    /// The socket.
    pub ws: Ws,
    /// The id from `connection_established`.
    pub socket_id: String,
    /// The channel it subscribed to last.
    pub channel: String,
}

/// Open a connection and read `connection_established`. Small buffers, so that thousands of clients
/// fit in the load generator.
pub async fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
    let url = format!("ws://{addr}/app/{}?protocol=7&client=herald-bench&version=0.1", app().key);
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0);
    let stream = tokio::time::timeout(STEP_TIMEOUT, tcp_connect(addr)).await.context("TCP connect timed out")??;
    let (mut ws, _) = tokio::time::timeout(
        STEP_TIMEOUT,
        tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(stream), Some(config)),
    )
    .await
    .context("WebSocket handshake timed out")??;
    let established = next_json(&mut ws).await?;
    if established["event"] != "pusher:connection_established" {
        bail!("expected connection_established, got {established}");
    }
    let data: Value = serde_json::from_str(established["data"].as_str().unwrap_or("{}"))?;
    let socket_id = data["socket_id"].as_str().context("no socket_id")?.to_owned();
    Ok(Client { ws, socket_id, channel: String::new() })
}

impl Client {
    /// Subscribe and wait for `subscription_succeeded`; private channels are signed with the
    /// bench app's secret. Other servers' informational frames are skipped; errors end it.
    pub async fn subscribe(&mut self, channel: &str) -> anyhow::Result<()> {
        let mut data = json!({ "channel": channel });
        if channel.starts_with("private-") {
            let app = app();
            data["auth"] =
                pusher_wire::auth::sign_channel(&app.key, &app.secret, &self.socket_id, channel, None).into();
        }
        self.ws.send(Message::text(json!({"event": "pusher:subscribe", "data": data}).to_string())).await?;
        loop {
            let frame = next_json(&mut self.ws).await?;
            match frame["event"].as_str() {
                Some("pusher_internal:subscription_succeeded") => {
                    self.channel = channel.to_owned();
                    return Ok(());
                }
                Some("pusher:error" | "pusher:subscription_error") | None => {
                    bail!("subscribing to {channel}: got {frame}")
                }
                Some(_) => continue,
            }
        }
    }
}

/// Loopback source addresses the clients are spread over.
const SOURCE_ADDRESSES: u8 = 8;

/// Connect a TCP socket. On loopback, clients are spread over 127.0.0.1-8: the kernel searches
/// for a free ephemeral port per source address, and with 16,000 connections on one address that
/// search made every connect slower (the load generator's core spent its time in `connect`, and
/// connect+subscribe fell from 15,000/s to 2,500/s). It also lifts the ~28,000-port ceiling.
async fn tcp_connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let stream = match addr.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {
            let source = Ipv4Addr::new(127, 0, 0, 1 + NEXT.fetch_add(1, Ordering::Relaxed) % SOURCE_ADDRESSES);
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
            socket.connect(addr).await?
        }
        _ => TcpStream::connect(addr).await?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The next text frame as JSON, within [`STEP_TIMEOUT`].
pub async fn next_json(ws: &mut Ws) -> anyhow::Result<Value> {
    loop {
        let message = tokio::time::timeout(STEP_TIMEOUT, ws.next()).await.context("no frame within the timeout")?;
        match message {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str())?),
            Some(Ok(Message::Close(close))) => bail!("closed: {close:?}"),
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Err(error.into()),
            None => bail!("connection ended"),
        }
    }
}

/// Whether a frame's event is `name`, without parsing the frame. Herald writes `event` first; other
/// servers may put it elsewhere, so the key is searched for when the frame does not start with it
/// (inside `data`, an encoded string, its quotes are escaped and cannot match).
pub fn event_is(frame: &str, name: &str) -> bool {
    const KEY: &str = r#""event":""#;
    let rest = match frame.strip_prefix('{').and_then(|f| f.strip_prefix(KEY)) {
        Some(rest) => rest,
        None => match frame.find(KEY) {
            Some(i) => &frame[i + KEY.len()..],
            None => return false,
        },
    };
    rest.strip_prefix(name).is_some_and(|r| r.starts_with('"'))
}

/// Unix time in microseconds, the timestamp carried in event payloads.
pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The timestamp of a payload that starts `{"t":123…` without parsing the whole frame: the load
/// generator must stay cheaper per message than the server. REST events carry the payload as an
/// encoded string (`"data":"{\"t\":…`), client events as an object (`"data":{"t":…`).
pub fn timestamp_of(frame: &str) -> Option<u64> {
    const ENCODED: &str = r#""data":"{\"t\":"#;
    const OBJECT: &str = r#""data":{"t":"#;
    let start = match frame.find(ENCODED) {
        Some(i) => i + ENCODED.len(),
        None => frame.find(OBJECT)? + OBJECT.len(),
    };
    let digits = &frame[start..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// A keep-alive REST connection that signs every request. When the server closes it (soketi
/// answers every request with `Connection: close`), the next request opens a new one.
pub struct Rest {
    sender: SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    /// The last signed request: its second, body and URI. A body sent again within the same
    /// second reuses the signature, so that the load generator's cost per request stays low.
    signed: Option<(u64, String, String)>,
}

impl Rest {
    /// Open a connection to the server.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self { sender: Self::open(addr).await?, addr, signed: None })
    }

    async fn open(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(sender)
    }

    /// Send on the connection, or on a new one if the server closed it.
    async fn send(&mut self, request: hyper::Request<Full<Bytes>>) -> anyhow::Result<hyper::Response<Incoming>> {
        if self.sender.ready().await.is_err() {
            self.sender = Self::open(self.addr).await?;
            self.sender.ready().await?;
        }
        Ok(tokio::time::timeout(STEP_TIMEOUT, self.sender.send_request(request))
            .await
            .context("request timed out")??)
    }

    /// `POST /apps/{id}/events` for one channel; returns the status.
    pub async fn trigger(&mut self, channel: &str, event: &str, data: &str) -> anyhow::Result<u16> {
        self.trigger_many(&[channel], event, data).await
    }

    /// `POST /apps/{id}/events` for up to 100 channels at once; returns the status. A 200 whose
    /// body is an error (soketi answers some refusals that way) counts as 400.
    pub async fn trigger_many(&mut self, channels: &[&str], event: &str, data: &str) -> anyhow::Result<u16> {
        let body = json!({"name": event, "channels": channels, "data": data}).to_string();
        self.post("events", body).await
    }

    /// `GET` an unsigned path (such as `/metrics`) and return the body.
    pub async fn get_text(&mut self, path: &str) -> anyhow::Result<String> {
        let request = hyper::Request::get(path).header("host", self.addr.to_string()).body(Full::new(Bytes::new()))?;
        let response = self.send(request).await?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// A signed `GET /apps/{id}/{endpoint}` with `params`; returns the status and the body.
    pub async fn get_signed(&mut self, endpoint: &str, params: &[(&str, &str)]) -> anyhow::Result<(u16, Bytes)> {
        let app = app();
        let path = format!("/apps/{}/{endpoint}", app.id);
        let query = signed_query(&app.key, &app.secret, "GET", &path, params, b"", now_us() / 1_000_000);
        let request = hyper::Request::get(format!("{path}?{query}"))
            .header("host", self.addr.to_string())
            .body(Full::default())?;
        let response = self.send(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    async fn post(&mut self, endpoint: &str, body: String) -> anyhow::Result<u16> {
        let second = now_us() / 1_000_000;
        let uri = match &self.signed {
            Some((at, last, uri)) if *at == second && *last == body => uri.clone(),
            _ => {
                let app = app();
                let path = format!("/apps/{}/{endpoint}", app.id);
                let query = signed_query(&app.key, &app.secret, "POST", &path, &[], body.as_bytes(), second);
                let uri = format!("{path}?{query}");
                self.signed = Some((second, body.clone(), uri.clone()));
                uri
            }
        };
        let request = hyper::Request::post(uri)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        let response = self.send(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        if status == 200 && body.starts_with(b"{\"error\"") {
            return Ok(400);
        }
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_found_in_encoded_payloads() {
        assert_eq!(timestamp_of(r#"{"event":"e","channel":"c","data":"{\"t\":1234,\"n\":5}"}"#), Some(1234));
        assert_eq!(timestamp_of(r#"{"event":"client-x","channel":"c","data":{"t":99}}"#), Some(99));
        assert_eq!(timestamp_of(r#"{"event":"e"}"#), None);
        let count =
            r#"{"event":"pusher_internal:subscription_count","channel":"c","data":"{\"subscription_count\":2}"}"#;
        assert_eq!(timestamp_of(count), None);
    }

    #[test]
    fn event_names_are_found_wherever_the_key_is() {
        assert!(event_is(r#"{"event":"e","channel":"c","data":"{}"}"#, "e"));
        assert!(!event_is(r#"{"event":"e2","channel":"c","data":"{}"}"#, "e"));
        assert!(event_is(r#"{"channel":"c","event":"s","data":"{\"t\":1}"}"#, "s"));
        assert!(!event_is(r#"{"channel":"c","data":"{\"event\":\"s\"}","event":"x"}"#, "s"));
        assert!(!event_is(r#"{"channel":"c"}"#, "s"));
    }
}
