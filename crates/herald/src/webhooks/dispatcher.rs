//! The dispatcher: one task that decides when each webhook event is sent.
//!
//! [`DelayTable`] holds `channel_vacated` and `member_removed` for the configured delay (3 s, as
//! Pusher): if the channel is occupied again, or the user re-added, before the delay ends, neither
//! the removal nor the re-add is sent, so a page reload does not look like a user leaving and
//! coming back. `cache_miss` is sent once per channel per [`CACHE_MISS_WINDOW`] however many clients
//! hit the empty cache. With `batch_webhooks`, the events ready within one tick go out together.
//! Time is passed in, so the table is tested without sleeping.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pusher_wire::webhook::WebhookEvent;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::delivery::{Delivery, Endpoint, Request};
use super::{Job, Timing};
use crate::config::AppConfig;

/// `cache_miss` is sent at most once per channel within this window.
pub(crate) const CACHE_MISS_WINDOW: Duration = Duration::from_secs(10);
/// How often delayed events and batches are checked.
const TICK: Duration = Duration::from_millis(100);
/// Most events in one batched request.
const MAX_BATCH: usize = 100;

/// What a held removal is about: (app, channel, user for `member_removed`).
type HeldKey = (Arc<str>, String, Option<String>);

/// Where a held removal sits in the queue: when it is due, then the order it arrived in.
type Slot = (Instant, u64);

/// Removals held back, and the cache misses recently sent. Both are kept in time order, so that
/// each tick looks only at what is due (a reconnect storm holding thousands of removals costs
/// per change, not per tick).
#[derive(Debug, Default)]
pub(crate) struct DelayTable {
    delay: Duration,
    /// The held events, and their place in `queue`.
    pending: HashMap<HeldKey, (WebhookEvent, Slot)>,
    /// Held keys by due time.
    queue: BTreeMap<Slot, HeldKey>,
    /// When the last `cache_miss` of each channel was sent...
    misses: HashMap<(Arc<str>, String), Instant>,
    /// ...and the same in time order, for forgetting them.
    miss_queue: VecDeque<(Instant, (Arc<str>, String))>,
    next: u64,
}

impl DelayTable {
    /// A table holding removals for `delay`.
    pub(crate) fn new(delay: Duration) -> Self {
        Self { delay, ..Self::default() }
    }

    /// Take in an event that happened at `at`; returns it if it is to be sent now.
    pub(crate) fn accept(&mut self, app: &Arc<str>, event: WebhookEvent, at: Instant) -> Option<WebhookEvent> {
        let channel = event.channel().to_owned();
        match &event {
            WebhookEvent::ChannelVacated { .. } => {
                self.hold((app.clone(), channel, None), event, at + self.delay);
                None
            }
            WebhookEvent::MemberRemoved { user_id, .. } => {
                let user = Some(user_id.clone());
                self.hold((app.clone(), channel, user), event, at + self.delay);
                None
            }
            // Back within the delay: drop the held removal and this re-add.
            WebhookEvent::ChannelOccupied { .. } => (!self.release(&(app.clone(), channel, None))).then_some(event),
            WebhookEvent::MemberAdded { user_id, .. } => {
                let key = (app.clone(), channel, Some(user_id.clone()));
                (!self.release(&key)).then_some(event)
            }
            WebhookEvent::CacheMiss { .. } => {
                let key = (app.clone(), channel);
                match self.misses.get(&key) {
                    Some(sent) if at < *sent + CACHE_MISS_WINDOW => None,
                    _ => {
                        self.misses.insert(key.clone(), at);
                        self.miss_queue.push_back((at, key));
                        Some(event)
                    }
                }
            }
            WebhookEvent::ClientEvent { .. } | WebhookEvent::SubscriptionCount { .. } => Some(event),
        }
    }

    /// Hold `event` under `key` until `due`, replacing what the key held.
    fn hold(&mut self, key: HeldKey, event: WebhookEvent, due: Instant) {
        self.release(&key);
        let slot = (due, self.next);
        self.next += 1;
        self.queue.insert(slot, key.clone());
        self.pending.insert(key, (event, slot));
    }

    /// Forget what `key` held; whether it held something.
    fn release(&mut self, key: &HeldKey) -> bool {
        match self.pending.remove(key) {
            Some((_, slot)) => {
                self.queue.remove(&slot);
                true
            }
            None => false,
        }
    }

    /// The held events due at `now` (all of them when `now` is `None`), oldest first.
    pub(crate) fn due(&mut self, now: Option<Instant>) -> Vec<(Arc<str>, WebhookEvent)> {
        let mut due = Vec::new();
        while let Some(entry) = self.queue.first_entry() {
            if now.is_some_and(|now| entry.key().0 > now) {
                break;
            }
            let key = entry.remove();
            if let Some((event, _)) = self.pending.remove(&key) {
                due.push((key.0, event));
            }
        }
        if let Some(now) = now {
            while self.miss_queue.front().is_some_and(|(sent, _)| now >= *sent + CACHE_MISS_WINDOW) {
                let Some((sent, key)) = self.miss_queue.pop_front() else { break };
                if self.misses.get(&key) == Some(&sent) {
                    self.misses.remove(&key);
                }
            }
        }
        due
    }
}

/// What the dispatcher needs to know about one app.
#[derive(Debug)]
struct AppHooks {
    id: Arc<str>,
    key: Arc<str>,
    secret: Arc<str>,
    targets: Vec<(Arc<Endpoint>, crate::config::WebhookTarget)>,
    batch: bool,
    /// Events waiting for the next batch.
    buffered: Vec<WebhookEvent>,
}

/// The dispatcher task's state.
#[derive(Debug)]
pub(crate) struct Dispatcher {
    apps: HashMap<Arc<str>, AppHooks>,
    table: DelayTable,
    delivery: Delivery,
}

impl Dispatcher {
    /// A dispatcher for `apps`, holding removals for `delay`, delivering through `delivery`.
    pub(crate) fn new(apps: &[AppConfig], delay: Duration, delivery: Delivery) -> Self {
        let mut dispatcher = Self { apps: HashMap::new(), table: DelayTable::new(delay), delivery };
        dispatcher.configure(apps);
        dispatcher
    }

    /// Follow the apps' settings (at start, and after each reload). Events an app has waiting for
    /// its batch stay with it.
    pub(crate) fn configure(&mut self, apps: &[AppConfig]) {
        let mut old = std::mem::take(&mut self.apps);
        for app in apps.iter().filter(|app| !app.webhooks.is_empty()) {
            let id: Arc<str> = app.id.as_str().into();
            let targets = app
                .webhooks
                .iter()
                .filter_map(|target| Some((Arc::new(Endpoint::parse(&target.url).ok()?), target.clone())))
                .collect();
            let buffered = old.remove(&id).map(|hooks| hooks.buffered).unwrap_or_default();
            let hooks = AppHooks {
                id: id.clone(),
                key: app.key.as_str().into(),
                secret: app.secret.as_str().into(),
                targets,
                batch: app.batch_webhooks,
                buffered,
            };
            self.apps.insert(id, hooks);
        }
    }

    /// Run until `shutdown` and until every task in `producers` has ended (the connections, whose
    /// leaving emits the last removals, then the cluster link); then send what is held, without
    /// waiting for the delay, and stop.
    pub(crate) async fn run(
        mut self,
        mut jobs: mpsc::Receiver<Job>,
        mut configs: watch::Receiver<Vec<AppConfig>>,
        shutdown: CancellationToken,
        producers: [TaskTracker; 2],
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let producers_done = async {
            shutdown.cancelled().await;
            for tasks in &producers {
                tasks.wait().await;
            }
        };
        tokio::pin!(producers_done);
        loop {
            tokio::select! {
                () = &mut producers_done => break,
                changed = configs.changed() => {
                    if changed.is_ok() {
                        let apps = configs.borrow_and_update().clone();
                        self.configure(&apps);
                    }
                }
                job = jobs.recv() => match job {
                    Some(job) => self.take(job),
                    None => break,
                },
                _ = tick.tick() => {
                    for (app, event) in self.table.due(Some(Instant::now())) {
                        self.ready(&app, event);
                    }
                    self.flush_batches();
                }
            }
        }
        while let Ok(job) = jobs.try_recv() {
            self.take(job);
        }
        for (app, event) in self.table.due(None) {
            self.ready(&app, event);
        }
        self.flush_batches();
    }

    fn take(&mut self, job: Job) {
        match job.timing {
            Timing::Delayable => {
                if let Some(event) = self.table.accept(&job.app_id, job.event, job.at) {
                    self.ready(&job.app_id, event);
                }
            }
            Timing::Decided => self.ready(&job.app_id, job.event),
        }
    }

    /// An event is to be sent: now, or with the app's next batch.
    fn ready(&mut self, app_id: &Arc<str>, event: WebhookEvent) {
        let Some(app) = self.apps.get_mut(app_id) else { return };
        if app.batch {
            app.buffered.push(event);
            if app.buffered.len() >= MAX_BATCH {
                let events = std::mem::take(&mut app.buffered);
                send(&self.delivery, app, events);
            }
        } else {
            send(&self.delivery, app, vec![event]);
        }
    }

    fn flush_batches(&mut self) {
        for app in self.apps.values_mut().filter(|app| !app.buffered.is_empty()) {
            let events = std::mem::take(&mut app.buffered);
            send(&self.delivery, app, events);
        }
    }
}

/// Hand `events` to every endpoint of `app` that wants them.
fn send(delivery: &Delivery, app: &AppHooks, events: Vec<WebhookEvent>) {
    for (endpoint, target) in &app.targets {
        let wanted: Vec<WebhookEvent> = events.iter().filter(|e| target.wants(e.kind())).cloned().collect();
        if !wanted.is_empty() {
            delivery.send(Request {
                app_id: app.id.clone(),
                endpoint: endpoint.clone(),
                key: app.key.clone(),
                secret: app.secret.clone(),
                events: wanted,
                created: Instant::now(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use pusher_wire::webhook::WebhookKind;

    use super::*;

    const DELAY: Duration = Duration::from_secs(3);

    fn vacated(channel: &str) -> WebhookEvent {
        WebhookEvent::ChannelVacated { channel: channel.into() }
    }

    fn occupied(channel: &str) -> WebhookEvent {
        WebhookEvent::ChannelOccupied { channel: channel.into() }
    }

    fn kinds(due: Vec<(Arc<str>, WebhookEvent)>) -> Vec<WebhookKind> {
        due.into_iter().map(|(_, e)| e.kind()).collect()
    }

    #[test]
    fn removals_wait_for_the_delay() {
        let app: Arc<str> = "1".into();
        let start = Instant::now();
        let mut table = DelayTable::new(DELAY);
        assert_eq!(table.accept(&app, occupied("c"), start), Some(occupied("c")));
        assert_eq!(table.accept(&app, vacated("c"), start), None);
        assert!(table.due(Some(start + DELAY - Duration::from_millis(1))).is_empty());
        assert_eq!(kinds(table.due(Some(start + DELAY))), [WebhookKind::ChannelVacated]);
        assert!(table.due(None).is_empty());
    }

    #[test]
    fn coming_back_within_the_delay_sends_neither() {
        let app: Arc<str> = "1".into();
        let start = Instant::now();
        let mut table = DelayTable::new(DELAY);
        table.accept(&app, vacated("c"), start);
        assert_eq!(table.accept(&app, occupied("c"), start + Duration::from_secs(1)), None);
        let removed = WebhookEvent::MemberRemoved { channel: "presence-c".into(), user_id: "7".into() };
        let added = WebhookEvent::MemberAdded { channel: "presence-c".into(), user_id: "7".into() };
        let other = WebhookEvent::MemberAdded { channel: "presence-c".into(), user_id: "8".into() };
        table.accept(&app, removed, start);
        assert_eq!(table.accept(&app, other.clone(), start), Some(other), "another user is not a return");
        assert_eq!(table.accept(&app, added, start + Duration::from_secs(2)), None);
        assert!(table.due(None).is_empty());
        // Another app's channel of the same name is not the same channel.
        table.accept(&app, vacated("c"), start);
        assert!(table.accept(&"2".into(), occupied("c"), start).is_some());
    }

    #[test]
    fn cache_misses_are_deduplicated() {
        let app: Arc<str> = "1".into();
        let start = Instant::now();
        let mut table = DelayTable::new(DELAY);
        let miss = || WebhookEvent::CacheMiss { channel: "cache-c".into() };
        assert!(table.accept(&app, miss(), start).is_some());
        assert!(table.accept(&app, miss(), start + Duration::from_secs(1)).is_none());
        table.due(Some(start + CACHE_MISS_WINDOW));
        assert!(table.accept(&app, miss(), start + CACHE_MISS_WINDOW).is_some());
    }

    #[test]
    fn held_events_come_out_oldest_first() {
        let app: Arc<str> = "1".into();
        let start = Instant::now();
        let mut table = DelayTable::new(DELAY);
        table.accept(&app, vacated("b"), start + Duration::from_secs(1));
        table.accept(&app, vacated("a"), start);
        let channels: Vec<String> = table.due(None).into_iter().map(|(_, e)| e.channel().to_owned()).collect();
        assert_eq!(channels, ["a", "b"]);
    }

    #[test]
    fn a_storm_of_holds_comes_out_in_time_order_and_a_repeated_removal_waits_anew() {
        let app: Arc<str> = "1".into();
        let start = Instant::now();
        let mut table = DelayTable::new(DELAY);
        for i in 0..10_000u64 {
            table.accept(&app, vacated(&format!("c{i}")), start + Duration::from_millis(i));
        }
        // c0 left again later: it is due from then on, not before.
        table.accept(&app, occupied("c0"), start + Duration::from_millis(20));
        table.accept(&app, vacated("c0"), start + Duration::from_secs(20));
        let first = table.due(Some(start + DELAY + Duration::from_millis(99)));
        assert_eq!(first.len(), 99, "c1..c99");
        assert_eq!(first[0].1.channel(), "c1");
        assert_eq!(table.due(Some(start + DELAY + Duration::from_secs(10))).len(), 10_000 - 100);
        assert!(table.due(Some(start + DELAY + Duration::from_secs(16))).is_empty());
        assert_eq!(kinds(table.due(Some(start + DELAY + Duration::from_secs(20)))), [WebhookKind::ChannelVacated]);
    }
}
