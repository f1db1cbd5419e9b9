//! [`Console`]: what happens in each app, told to whoever watches it in the debug console.
//!
//! Connections, REST handlers and webhook delivery report each [`Activity`] through
//! [`Console::emit`]. While nobody watches, that is one relaxed atomic load and the activity is never
//! built. While someone watches, it is encoded once as a JSON line and queued for each viewer of its
//! app. A viewer's queue is bounded: one that reads too slowly loses its oldest lines and is told how
//! many, and nobody else, least of all the fan-out, waits for it.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use pusher_wire::frame::push_json_string;
use tokio::sync::Notify;

use crate::rest::error::ApiError;

/// Lines one viewer may have waiting; older ones are dropped beyond it.
pub(crate) const VIEWER_BACKLOG: usize = 1_000;

/// Viewers of one app at once: each costs every activity of the app a queue push, and holds an
/// HTTP connection for as long as it watches.
pub(crate) const MAX_VIEWERS_PER_APP: usize = 8;

/// Viewers of every app together on one node.
pub(crate) const MAX_VIEWERS: usize = 32;

/// Most bytes of event data shown in a line; the rest is cut (the line says how long it was).
const DATA_PREVIEW_BYTES: usize = 2_048;

/// The registry of viewers, one per node.
#[derive(Debug, Default)]
pub(crate) struct Console {
    /// Viewers of every app; checked before anything else, so that nobody watching costs nothing.
    watching: AtomicUsize,
    viewers: Mutex<Vec<Weak<Viewer>>>,
}

/// Something that happened in an app.
#[derive(Debug)]
pub(crate) enum Activity<'a> {
    /// A WebSocket connected.
    Connected { socket_id: &'a str },
    /// A WebSocket ended; `code` is the close code Herald sent, if any.
    Disconnected { socket_id: &'a str, reason: &'a str, code: Option<u16> },
    /// A connection subscribed (`user_id` on presence channels).
    Subscribed { socket_id: &'a str, channel: &'a str, user_id: Option<&'a str> },
    /// A connection unsubscribed.
    Unsubscribed { socket_id: &'a str, channel: &'a str },
    /// A connection signed in.
    SignedIn { socket_id: &'a str, user_id: &'a str },
    /// A client event relayed to the channel's other subscribers.
    ClientEvent { socket_id: &'a str, channel: &'a str, event: &'a str, data: Option<&'a str> },
    /// Something refused, with the code the client got (a Pusher error code or an HTTP-like status).
    Refused { socket_id: Option<&'a str>, channel: Option<&'a str>, code: Option<u16>, message: &'a str },
    /// An event published by the REST API (`source`: "rest", "batch") or the console.
    Triggered {
        source: &'a str,
        channel: &'a str,
        event: &'a str,
        data: &'a str,
        excluded: Option<&'a str>,
        delivered: usize,
    },
    /// A webhook request answered with a success.
    WebhookSent { url: &'a str, events: &'a [&'a str] },
    /// A webhook attempt that failed (`retrying`: another attempt follows).
    WebhookFailed { url: &'a str, events: &'a [&'a str], error: &'a str, retrying: bool },
}

/// One console page's live stream: the lines waiting for it.
#[derive(Debug)]
pub(crate) struct Viewer {
    /// The app it watches.
    pub(crate) app_id: Arc<str>,
    queue: Mutex<Backlog>,
    /// Woken when a line is queued.
    pub(crate) ready: Notify,
}

#[derive(Debug, Default)]
struct Backlog {
    lines: VecDeque<Bytes>,
    /// Lines dropped since the viewer last read.
    lost: u64,
}

/// What a viewer reads at once.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Lines {
    /// Lines dropped before these because the viewer fell behind.
    pub(crate) lost: u64,
    /// The lines, oldest first.
    pub(crate) lines: Vec<Bytes>,
}

/// A viewer's registration; dropping it stops the lines.
#[derive(Debug)]
pub(crate) struct Watch {
    console: Arc<Console>,
    /// The viewer's stream.
    pub(crate) viewer: Arc<Viewer>,
}

impl Console {
    /// Start watching `app_id`, unless [`MAX_VIEWERS_PER_APP`] watch it or [`MAX_VIEWERS`] watch
    /// this node already.
    pub(crate) fn watch(self: &Arc<Self>, app_id: Arc<str>) -> Result<Watch, ApiError> {
        let mut viewers = lock(&self.viewers);
        viewers.retain(|v| v.strong_count() > 0);
        if viewers.len() >= MAX_VIEWERS {
            return Err(ApiError::TooManyViewers { scope: "on this node", watching: viewers.len() });
        }
        let of_app = viewers.iter().filter_map(Weak::upgrade).filter(|viewer| viewer.app_id == app_id).count();
        if of_app >= MAX_VIEWERS_PER_APP {
            return Err(ApiError::TooManyViewers { scope: "for this app", watching: of_app });
        }
        let viewer = Arc::new(Viewer { app_id, queue: Mutex::default(), ready: Notify::new() });
        viewers.push(Arc::downgrade(&viewer));
        self.watching.fetch_add(1, Ordering::Relaxed);
        Ok(Watch { console: self.clone(), viewer })
    }

    /// Whether anybody watches any app.
    pub(crate) fn watched(&self) -> bool {
        self.watching.load(Ordering::Relaxed) > 0
    }

    /// Tell the viewers of `app_id` what `activity` says happened; `activity` runs only if someone
    /// watches.
    #[inline]
    pub(crate) fn emit<'a>(&self, app_id: &str, activity: impl FnOnce() -> Activity<'a>) {
        if self.watched() {
            self.deliver(app_id, &activity());
        }
    }

    fn deliver(&self, app_id: &str, activity: &Activity<'_>) {
        let viewers: Vec<Arc<Viewer>> =
            lock(&self.viewers).iter().filter_map(Weak::upgrade).filter(|viewer| &*viewer.app_id == app_id).collect();
        if viewers.is_empty() {
            return;
        }
        let line = Bytes::from(encode(activity, unix_ms()));
        for viewer in viewers {
            viewer.push(line.clone());
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.console.watching.fetch_sub(1, Ordering::Relaxed);
        lock(&self.console.viewers).retain(|v| v.strong_count() > 0 && !std::ptr::eq(v.as_ptr(), &*self.viewer));
    }
}

impl Viewer {
    fn push(&self, line: Bytes) {
        let mut queue = lock(&self.queue);
        if queue.lines.len() >= VIEWER_BACKLOG {
            queue.lines.pop_front();
            queue.lost += 1;
        }
        queue.lines.push_back(line);
        drop(queue);
        self.ready.notify_one();
    }

    /// Everything waiting, and how many lines were lost before it.
    pub(crate) fn take(&self) -> Lines {
        let mut queue = lock(&self.queue);
        Lines { lost: std::mem::take(&mut queue.lost), lines: queue.lines.drain(..).collect() }
    }
}

/// The JSON line of `activity` at `at_ms` (Unix milliseconds).
fn encode(activity: &Activity<'_>, at_ms: u64) -> String {
    let mut line = Line(String::with_capacity(192));
    let _ = write!(line.0, r#"{{"at":{at_ms}"#);
    match *activity {
        Activity::Connected { socket_id } => {
            line.str("kind", "connected");
            line.str("socket_id", socket_id);
        }
        Activity::Disconnected { socket_id, reason, code } => {
            line.str("kind", "disconnected");
            line.str("socket_id", socket_id);
            line.str("reason", reason);
            line.num("code", code);
        }
        Activity::Subscribed { socket_id, channel, user_id } => {
            line.str("kind", "subscribed");
            line.str("socket_id", socket_id);
            line.str("channel", channel);
            line.opt("user_id", user_id);
        }
        Activity::Unsubscribed { socket_id, channel } => {
            line.str("kind", "unsubscribed");
            line.str("socket_id", socket_id);
            line.str("channel", channel);
        }
        Activity::SignedIn { socket_id, user_id } => {
            line.str("kind", "signed_in");
            line.str("socket_id", socket_id);
            line.str("user_id", user_id);
        }
        Activity::ClientEvent { socket_id, channel, event, data } => {
            line.str("kind", "client_event");
            line.str("socket_id", socket_id);
            line.str("channel", channel);
            line.str("event", event);
            line.data(data.unwrap_or(""));
        }
        Activity::Refused { socket_id, channel, code, message } => {
            line.str("kind", "refused");
            line.opt("socket_id", socket_id);
            line.opt("channel", channel);
            line.num("code", code);
            line.str("message", message);
        }
        Activity::Triggered { source, channel, event, data, excluded, delivered } => {
            line.str("kind", "triggered");
            line.str("source", source);
            line.str("channel", channel);
            line.str("event", event);
            line.data(data);
            line.opt("excluded", excluded);
            line.num("delivered", Some(delivered));
        }
        Activity::WebhookSent { url, events } => {
            line.str("kind", "webhook_sent");
            line.str("url", url);
            line.str("event", &events.join(","));
        }
        Activity::WebhookFailed { url, events, error, retrying } => {
            line.str("kind", "webhook_failed");
            line.str("url", url);
            line.str("event", &events.join(","));
            line.str("message", error);
            let _ = write!(line.0, r#","retrying":{retrying}"#);
        }
    }
    line.0.push('}');
    line.0
}

/// A JSON object being written, field by field.
struct Line(String);

impl Line {
    fn str(&mut self, name: &str, value: &str) {
        let _ = write!(self.0, r#","{name}":"#);
        push_json_string(&mut self.0, value);
    }

    fn opt(&mut self, name: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(name, value);
        }
    }

    fn num(&mut self, name: &str, value: Option<impl std::fmt::Display>) {
        if let Some(value) = value {
            let _ = write!(self.0, r#","{name}":{value}"#);
        }
    }

    /// Event data as text, cut to [`DATA_PREVIEW_BYTES`] with its full size alongside.
    fn data(&mut self, data: &str) {
        let mut end = data.len().min(DATA_PREVIEW_BYTES);
        while !data.is_char_boundary(end) {
            end -= 1;
        }
        self.str("data", &data[..end]);
        let _ = write!(self.0, r#","data_bytes":{},"data_cut":{}"#, data.len(), end < data.len());
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a push or a drain: consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribed(channel: &str) -> Activity<'_> {
        Activity::Subscribed { socket_id: "1.2", channel, user_id: None }
    }

    #[test]
    fn nothing_is_built_while_nobody_watches() {
        let console = Arc::new(Console::default());
        console.emit("1", || unreachable!("built without a viewer"));
        let watch = console.watch("1".into()).unwrap();
        drop(watch);
        console.emit("1", || unreachable!("built after the viewer left"));
        assert!(lock(&console.viewers).is_empty());
    }

    #[test]
    fn viewers_see_their_app_only() {
        let console = Arc::new(Console::default());
        let one = console.watch("1".into()).unwrap();
        let two = console.watch("2".into()).unwrap();
        console.emit("1", || subscribed("a"));
        console.emit("3", || subscribed("b"));
        let lines = one.viewer.take();
        assert_eq!(lines.lines.len(), 1);
        let line: serde_json::Value = serde_json::from_slice(&lines.lines[0]).unwrap();
        assert_eq!((line["kind"].as_str(), line["channel"].as_str()), (Some("subscribed"), Some("a")));
        assert_eq!(two.viewer.take(), Lines::default());
    }

    #[test]
    fn viewers_are_capped_per_app_and_per_node() {
        let console = Arc::new(Console::default());
        let of_one: Vec<Watch> = (0..MAX_VIEWERS_PER_APP).map(|_| console.watch("1".into()).unwrap()).collect();
        assert!(matches!(console.watch("1".into()), Err(ApiError::TooManyViewers { scope: "for this app", .. })));
        let others: Vec<Watch> = (MAX_VIEWERS_PER_APP..MAX_VIEWERS)
            .map(|i| console.watch(format!("app{}", i % 4).into()).unwrap())
            .collect();
        assert!(matches!(console.watch("2".into()), Err(ApiError::TooManyViewers { scope: "on this node", .. })));
        drop(of_one);
        assert!(console.watch("1".into()).is_ok(), "a viewer that left frees its place");
        drop(others);
    }

    #[test]
    fn a_slow_viewer_loses_its_oldest_lines_and_is_told_how_many() {
        let console = Arc::new(Console::default());
        let watch = console.watch("1".into()).unwrap();
        let names: Vec<String> = (0..VIEWER_BACKLOG + 250).map(|i| format!("c{i}")).collect();
        for name in &names {
            console.emit("1", || subscribed(name));
        }
        let taken = watch.viewer.take();
        assert_eq!(taken.lost, 250);
        assert_eq!(taken.lines.len(), VIEWER_BACKLOG);
        let first: serde_json::Value = serde_json::from_slice(&taken.lines[0]).unwrap();
        assert_eq!(first["channel"], "c250", "the oldest lines go first");
        assert_eq!(watch.viewer.take(), Lines::default(), "told once");
    }

    #[test]
    fn lines_are_json_with_data_cut_on_a_character_boundary() {
        let data = "é".repeat(DATA_PREVIEW_BYTES);
        let activity = Activity::Triggered {
            source: "rest",
            channel: "c",
            event: "e\"vent",
            data: &data,
            excluded: Some("1.2"),
            delivered: 3,
        };
        let line: serde_json::Value = serde_json::from_str(&encode(&activity, 5)).unwrap();
        assert_eq!(line["at"], 5);
        assert_eq!(line["event"], "e\"vent");
        assert_eq!(line["data"].as_str().unwrap().len(), DATA_PREVIEW_BYTES);
        assert_eq!(
            (&line["data_bytes"], &line["data_cut"]),
            (&serde_json::json!(2 * DATA_PREVIEW_BYTES), &serde_json::json!(true))
        );
        assert_eq!((line["excluded"].as_str(), line["delivered"].as_u64()), (Some("1.2"), Some(3)));
        let refused =
            Activity::Refused { socket_id: None, channel: Some("private-x"), code: Some(4009), message: "no" };
        let line: serde_json::Value = serde_json::from_str(&encode(&refused, 1)).unwrap();
        assert_eq!((line["code"].as_u64(), line.get("socket_id")), (Some(4009), None));
    }
}
