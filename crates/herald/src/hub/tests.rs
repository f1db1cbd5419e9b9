//! The hub's behaviour: fan-out with exclusions, joins and leaves, presence rosters and their
//! limit, cached events, counts and their throttling, the observer, and remote nodes' state.

use super::*;
use crate::config::OutboxLimits;
use crate::connection::outbox::Batch;

fn outbox(id: u64) -> Arc<Outbox> {
    Arc::new(Outbox::new(ConnId(id), OutboxLimits::default()))
}

fn channel(name: &str) -> ChannelName {
    ChannelName::parse(name).unwrap()
}

fn hub(send_counts: bool) -> Hub {
    Hub::new(send_counts, Arc::new(Ignore))
}

/// Writes down every transition, as `kind channel [detail]`.
#[derive(Debug, Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
    forwards: bool,
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

impl Observer for Recorder {
    fn observe(&self, transition: Transition<'_>) {
        let line = match transition {
            Transition::Occupied { channel } => format!("occupied {channel}"),
            Transition::Vacated { channel } => format!("vacated {channel}"),
            Transition::Counted { channel, subscribers } => format!("counted {channel} {subscribers}"),
            Transition::CountSent { channel, count } => format!("count_sent {channel} {count}"),
            Transition::MemberAdded { channel, member } => format!("member_added {channel} {}", member.user_id),
            Transition::MemberRemoved { channel, user_id } => format!("member_removed {channel} {user_id}"),
            Transition::Published { channel, except, .. } => format!("published {channel} {except:?}"),
            Transition::ClientEvent(relayed) => format!("client_event {} {}", relayed.channel, relayed.event),
            Transition::CacheMiss { channel } => format!("cache_miss {channel}"),
            Transition::SignedIn { user_id } => format!("signed_in {user_id}"),
            Transition::SignedOut { user_id } => format!("signed_out {user_id}"),
            Transition::UserEvent { user_id, .. } => format!("user_event {user_id}"),
            Transition::Terminated { user_id } => format!("terminated {user_id}"),
        };
        self.seen.lock().unwrap().push(line);
    }

    fn forwards_events(&self) -> bool {
        self.forwards
    }
}

fn recorded(send_counts: bool, forwards: bool) -> (Hub, Arc<Recorder>) {
    let recorder = Arc::new(Recorder { forwards, ..Recorder::default() });
    (Hub::new(send_counts, recorder.clone()), recorder)
}

/// The frames queued so far, as event names (and `user_id` for member events).
fn drain(outbox: &Outbox) -> Vec<String> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(outbox.next_batch());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Batch::Frames(frames)) => frames
            .iter()
            .map(|f| {
                let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
                v["event"].as_str().unwrap().to_owned()
            })
            .collect(),
        std::task::Poll::Ready(Batch::Kill(k)) => panic!("killed {k:?}"),
        std::task::Poll::Pending => Vec::new(),
    }
}

/// The frames queued so far, as text.
fn drain_frames(outbox: &Outbox) -> Vec<String> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(outbox.next_batch());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Batch::Frames(frames)) => frames.iter().map(|f| f.as_str().to_owned()).collect(),
        std::task::Poll::Ready(Batch::Kill(k)) => panic!("killed {k:?}"),
        std::task::Poll::Pending => Vec::new(),
    }
}

fn member(id: &str) -> PresenceMember {
    PresenceMember::parse(&format!(r#"{{"user_id":"{id}"}}"#)).unwrap()
}

use std::future::Future;

#[test]
fn publish_reaches_every_subscriber_but_the_excluded_one() {
    let hub = hub(false);
    let now = Instant::now();
    let (a, b) = (outbox(1), outbox(2));
    hub.subscribe(&channel("chat"), &a, None, now).unwrap();
    hub.subscribe(&channel("chat"), &b, None, now).unwrap();
    let socket_id = SocketId::new(9, 2);
    let except = Except { socket_id: &socket_id, local: Some(ConnId(2)) };
    assert_eq!(hub.publish(&channel("chat"), "msg", "{}", Some(except), now), 1);
    assert_eq!(drain(&a), ["msg"]);
    assert!(drain(&b).is_empty());
    assert_eq!(hub.publish(&channel("empty"), "msg", "{}", None, now), 0);
    assert_eq!(hub.channel_count(), 1);
}

#[test]
fn last_unsubscribe_drops_the_channel() {
    let hub = hub(false);
    let now = Instant::now();
    let a = outbox(1);
    assert!(hub.subscribe(&channel("chat"), &a, None, now).unwrap().occupied);
    assert_eq!(hub.unsubscribe("chat", ConnId(9), now), None);
    assert_eq!(hub.unsubscribe("chat", ConnId(1), now), Some(Left { vacated: true, ..Left::default() }));
    assert_eq!(hub.channel_count(), 0);
}

/// Holds the first subscribe to channel `a` inside its fan-out (the observer runs with the
/// channel locked) until released.
#[derive(Debug)]
struct Gate {
    entered: Mutex<std::sync::mpsc::Sender<()>>,
    release: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Observer for Gate {
    fn observe(&self, transition: Transition<'_>) {
        if let Transition::Occupied { channel: "a" } = transition {
            let _ = self.entered.lock().unwrap().send(());
            let _ = self.release.lock().unwrap().recv();
        }
    }
}

#[test]
fn a_channel_in_the_middle_of_a_fan_out_does_not_hold_up_its_shard() {
    let (entered, in_fan_out) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel();
    let gate = Gate { entered: Mutex::new(entered), release: Mutex::new(released) };
    let hub = Arc::new(Hub::new(false, Arc::new(gate)));
    let now = Instant::now();
    let neighbour =
        (0..).map(|i| format!("b{i}")).find(|name| hub.channels.shard_of(name) == hub.channels.shard_of("a")).unwrap();
    let slow = std::thread::spawn({
        let hub = hub.clone();
        move || hub.subscribe(&channel("a"), &outbox(1), None, now).is_ok()
    });
    in_fan_out.recv().unwrap();
    // `a` is locked mid fan-out; its shard must stay free for `b…`, `a`'s lookups and reads.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn({
        let hub = hub.clone();
        move || {
            let joined = hub.subscribe(&channel(&neighbour), &outbox(2), None, now).is_ok();
            let left = hub.unsubscribe(&neighbour, ConnId(2), now).is_some();
            let _ = done.send(joined && left && hub.channel_count() == 1);
        }
    });
    // Not a speed bound: a shard held by `a` would block forever.
    let neighbour_served = finished.recv_timeout(Duration::from_secs(30));
    release.send(()).unwrap();
    assert!(slow.join().unwrap());
    assert_eq!(neighbour_served, Ok(true), "a subscribe in the same shard waited for another channel's fan-out");
}

#[test]
fn presence_members_are_announced_once_per_user() {
    let hub = hub(true);
    let now = Instant::now();
    let room = channel("presence-room");
    let (a1, b1, a2) = (outbox(1), outbox(2), outbox(3));
    let joined = hub.subscribe(&room, &a1, Some(&member("a")), now).unwrap();
    assert!(joined.member_added && joined.presence_snapshot.is_some());
    assert!(hub.subscribe(&room, &b1, Some(&member("b")), now).unwrap().member_added);
    assert_eq!(drain(&a1), ["pusher_internal:member_added"], "no subscription_count on presence");
    assert!(!hub.subscribe(&room, &a2, Some(&member("a")), now).unwrap().member_added);
    assert!(drain(&a1).is_empty() && drain(&b1).is_empty());
    assert_eq!(hub.channel_info("presence-room", now).user_count, 2);
    assert_eq!(hub.channel_info("presence-room", now).subscription_count, 3);
    assert_eq!(hub.unsubscribe("presence-room", ConnId(1), now), Some(Left::default()));
    assert!(drain(&b1).is_empty());
    let left = hub.unsubscribe("presence-room", ConnId(3), now).unwrap();
    assert_eq!(left.member_removed.as_deref(), Some("a"));
    assert_eq!(drain(&b1), ["pusher_internal:member_removed"]);
    assert_eq!(hub.users("presence-room"), ["b"]);
}

#[test]
fn presence_channels_refuse_the_101st_member_but_not_another_tab() {
    let hub = hub(false);
    let now = Instant::now();
    let room = channel("presence-big");
    for i in 0..100 {
        hub.subscribe(&room, &outbox(i), Some(&member(&i.to_string())), now).unwrap();
    }
    assert_eq!(
        hub.subscribe(&room, &outbox(500), Some(&member("new")), now).unwrap_err(),
        JoinError::PresenceFull { max: 100 }
    );
    assert!(hub.subscribe(&room, &outbox(501), Some(&member("7")), now).is_ok());
}

#[test]
fn cache_channels_replay_the_last_event_until_it_expires() {
    let hub = hub(false);
    let now = Instant::now();
    let cache = channel("cache-news");
    assert_eq!(hub.subscribe(&cache, &outbox(1), None, now).unwrap().cache, CacheReplay::Miss);
    hub.unsubscribe("cache-news", ConnId(1), now);
    hub.publish(&cache, "headline", "\"one\"", None, now);
    hub.publish(&cache, "headline", "\"two\"", None, now);
    let joined = hub.subscribe(&cache, &outbox(2), None, now).unwrap();
    let CacheReplay::Hit(frame) = joined.cache else { panic!("no cache hit") };
    assert!(frame.as_str().contains("two"));
    assert_eq!(hub.channel_info("cache-news", now).cache, Some(("\"two\"".into(), CACHE_TTL_SECS)));
    hub.unsubscribe("cache-news", ConnId(2), now);
    let later = now + Duration::from_secs(CACHE_TTL_SECS + 1);
    assert_eq!(hub.subscribe(&cache, &outbox(3), None, later).unwrap().cache, CacheReplay::Miss);
    hub.unsubscribe("cache-news", ConnId(3), later);
    hub.sweep(later);
    assert_eq!(hub.channel_count(), 0);
}

#[test]
fn subscription_counts_reach_every_subscriber() {
    let hub = hub(true);
    let start = Instant::now();
    let later = |n: u32| start + SMALL_CHANNEL_COUNT_INTERVAL * n;
    let (a, b) = (outbox(1), outbox(2));
    hub.subscribe(&channel("c"), &a, None, later(0)).unwrap();
    assert_eq!(drain(&a), ["pusher_internal:subscription_count"]);
    hub.subscribe(&channel("c"), &b, None, later(1)).unwrap();
    assert_eq!(drain(&a), ["pusher_internal:subscription_count"]);
    assert_eq!(drain(&b), ["pusher_internal:subscription_count"]);
    hub.unsubscribe("c", ConnId(2), later(2));
    assert_eq!(drain(&a), ["pusher_internal:subscription_count"]);
}

#[test]
fn a_subscribe_loop_costs_the_others_one_count_per_interval() {
    let hub = hub(true);
    let start = Instant::now();
    let watcher = outbox(1);
    hub.subscribe(&channel("c"), &watcher, None, start).unwrap();
    drain(&watcher);
    let churner = outbox(2);
    for _ in 0..1000 {
        hub.subscribe(&channel("c"), &churner, None, start).unwrap();
        hub.unsubscribe("c", ConnId(2), start);
    }
    assert!(drain(&watcher).is_empty(), "changes within the interval are deferred");
    let sent = hub.flush_deferred_counts(start + SMALL_CHANNEL_COUNT_INTERVAL);
    assert_eq!(sent, [("c".to_owned(), 1)]);
    assert_eq!(drain(&watcher), ["pusher_internal:subscription_count"]);
}

#[test]
fn counts_on_large_channels_are_throttled_and_flushed_later() {
    let hub = hub(true);
    let start = Instant::now();
    let subscribers: Vec<_> = (0..200).map(outbox).collect();
    for s in &subscribers {
        hub.subscribe(&channel("big"), s, None, start).unwrap();
    }
    // Joins 1-101 each sent a count (at most 101 frames to the first subscriber); the rest waited.
    let first = drain(&subscribers[0]).len();
    assert!(first <= 102, "{first} count frames: not throttled");
    hub.flush_deferred_counts(start + Duration::from_secs(1));
    assert!(drain(&subscribers[0]).is_empty());
    hub.flush_deferred_counts(start + Duration::from_secs(5));
    assert_eq!(drain(&subscribers[0]), ["pusher_internal:subscription_count"]);
    assert_eq!(drain(&subscribers[199]).len(), 1);
}

#[test]
fn local_transitions_reach_the_observer_in_order() {
    let (hub, seen) = recorded(true, false);
    let now = Instant::now();
    let room = channel("presence-room");
    hub.subscribe(&room, &outbox(1), Some(&member("a")), now).unwrap();
    hub.subscribe(&room, &outbox(2), Some(&member("a")), now).unwrap();
    assert_eq!(
        seen.take(),
        [
            "occupied presence-room",
            "member_added presence-room a",
            "counted presence-room 1",
            "counted presence-room 2"
        ]
    );
    hub.unsubscribe("presence-room", ConnId(1), now);
    hub.unsubscribe("presence-room", ConnId(2), now);
    assert_eq!(
        seen.take(),
        [
            "counted presence-room 1",
            "member_removed presence-room a",
            "counted presence-room 0",
            "vacated presence-room"
        ]
    );
    hub.subscribe(&channel("cache-x"), &outbox(3), None, now).unwrap();
    assert_eq!(seen.take(), ["occupied cache-x", "counted cache-x 1", "count_sent cache-x 1", "cache_miss cache-x"]);
}

#[test]
fn without_a_forwarding_observer_nothing_is_encoded_for_an_empty_channel() {
    let (hub, seen) = recorded(false, false);
    assert_eq!(hub.publish(&channel("nobody"), "e", "{}", None, Instant::now()), 0);
    assert!(seen.take().is_empty());
    let (hub, seen) = recorded(false, true);
    let socket_id = SocketId::new(4, 5);
    let except = Except { socket_id: &socket_id, local: None };
    assert_eq!(hub.publish(&channel("nobody"), "e", "{}", Some(except), Instant::now()), 0);
    assert_eq!(seen.take(), [r#"published nobody Some(SocketId("4.5"))"#]);
}

#[test]
fn remote_counts_add_to_local_ones_and_reach_local_subscribers() {
    let hub = hub(true);
    let start = Instant::now();
    let later = |n: u32| start + SMALL_CHANNEL_COUNT_INTERVAL * n;
    let c = channel("c");
    hub.apply(Remote::Count { node: NodeId(7), channel: &c, subscribers: 3 }, later(0));
    assert_eq!(hub.channel_info("c", later(0)).subscription_count, 3);
    let mut occupied = Vec::new();
    (0..hub.parts()).for_each(|part| hub.occupied_in_part(part, "", |c| occupied.push(c.name.to_owned())));
    assert_eq!(occupied, ["c"], "occupied through another node only");
    let a = outbox(1);
    hub.subscribe(&c, &a, None, later(1)).unwrap();
    let frames = drain_frames(&a);
    assert!(frames[0].contains(r#""subscription_count\":4"#), "{frames:?}");
    hub.apply(Remote::Count { node: NodeId(7), channel: &c, subscribers: 1 }, later(2));
    assert!(drain_frames(&a)[0].contains(r#""subscription_count\":2"#));
    hub.apply(Remote::NodeGone { node: NodeId(7) }, later(3));
    assert_eq!(hub.channel_info("c", later(3)).subscription_count, 1);
    hub.unsubscribe("c", ConnId(1), later(4));
    assert_eq!(hub.channel_count(), 0, "nothing left anywhere");
}

#[test]
fn remote_members_join_the_roster_once_and_leave_with_their_node() {
    let (hub, seen) = recorded(false, false);
    let now = Instant::now();
    let room = channel("presence-room");
    let info = pusher_wire::RawJson::parse(r#"{"name":"Ann"}"#).unwrap();
    let watcher = outbox(1);
    hub.subscribe(&room, &watcher, Some(&member("w")), now).unwrap();
    seen.take();
    hub.apply(Remote::MemberAdded { node: NodeId(7), channel: &room, user_id: "ann", user_info: Some(&info) }, now);
    hub.apply(Remote::MemberAdded { node: NodeId(8), channel: &room, user_id: "ann", user_info: None }, now);
    let frames = drain_frames(&watcher);
    assert_eq!(frames.len(), 1, "one member_added for a user on two nodes: {frames:?}");
    assert!(frames[0].contains("Ann"));
    // Ann's tab here is her first connection here but not anywhere: no member_added, and the
    // roster it gets lists every member.
    let tab = outbox(2);
    let joined = hub.subscribe(&room, &tab, Some(&member("ann")), now).unwrap();
    assert!(joined.member_added, "first connection on this node");
    assert!(drain_frames(&watcher).is_empty());
    assert!(joined.presence_snapshot.unwrap().contains(r#"\"count\":2"#));
    assert_eq!(seen.take(), ["member_added presence-room ann", "counted presence-room 2"]);
    hub.unsubscribe("presence-room", ConnId(2), now);
    hub.apply(Remote::MemberRemoved { node: NodeId(7), channel: &room, user_id: "ann" }, now);
    assert!(drain_frames(&watcher).is_empty(), "node 8 still has ann");
    hub.apply(Remote::NodeGone { node: NodeId(8) }, now);
    assert_eq!(drain(&watcher), ["pusher_internal:member_removed"]);
    assert_eq!(hub.users("presence-room"), ["w"]);
}

#[test]
fn the_presence_limit_counts_every_node() {
    let hub = hub(false);
    let now = Instant::now();
    let room = channel("presence-big");
    for i in 0..100 {
        let user = i.to_string();
        hub.apply(Remote::MemberAdded { node: NodeId(7), channel: &room, user_id: &user, user_info: None }, now);
    }
    assert_eq!(
        hub.subscribe(&room, &outbox(1), Some(&member("new")), now).unwrap_err(),
        JoinError::PresenceFull { max: 100 }
    );
    assert!(hub.subscribe(&room, &outbox(2), Some(&member("7")), now).is_ok(), "already a member elsewhere");
}

#[test]
fn remote_events_reach_local_subscribers_and_fill_the_cache() {
    let hub = hub(false);
    let now = Instant::now();
    let (a, b) = (outbox(1), outbox(2));
    let chat = channel("private-chat");
    hub.subscribe(&chat, &a, None, now).unwrap();
    hub.subscribe(&chat, &b, None, now).unwrap();
    let frame = Frame::from(server::channel_event("e", "private-chat", "{}"));
    let event = Remote::Event { channel: &chat, frame: &frame, data: "{}", except: Some(ConnId(2)) };
    assert_eq!(hub.apply(event, now), 1);
    assert_eq!(drain(&a), ["e"]);
    assert!(drain(&b).is_empty());
    let relayed = Frame::from(server::client_event("client-x", "private-chat", None, None));
    assert_eq!(hub.apply(Remote::ClientEvent { channel: "private-chat", frame: &relayed }, now), 2);
    let cache = channel("cache-news");
    let frame = Frame::from(server::channel_event("headline", "cache-news", "\"one\""));
    hub.apply(Remote::Event { channel: &cache, frame: &frame, data: "\"one\"", except: None }, now);
    assert_eq!(hub.channel_info("cache-news", now).cache, Some(("\"one\"".into(), CACHE_TTL_SECS)));
    let CacheReplay::Hit(replayed) = hub.subscribe(&cache, &outbox(3), None, now).unwrap().cache else {
        panic!("no cache hit")
    };
    assert_eq!(replayed, frame, "the same bytes");
}

#[test]
fn a_share_replaces_what_was_known_of_its_node() {
    let hub = hub(false);
    let now = Instant::now();
    let watcher = outbox(1);
    hub.subscribe(&channel("presence-room"), &watcher, Some(&member("w")), now).unwrap();
    let mut share = Share::default();
    share.counts.insert("presence-room".into(), 2);
    share.counts.insert("news".into(), 5);
    share.members.insert("presence-room".into(), [("a".to_owned(), None), ("b".to_owned(), None)].into());
    share.users.insert("a".into());
    hub.apply(Remote::Share { node: NodeId(7), share: &share }, now);
    assert_eq!(drain(&watcher), ["pusher_internal:member_added", "pusher_internal:member_added"]);
    assert_eq!(hub.channel_info("news", now).subscription_count, 5);
    assert!(hub.users.is_online("a"));
    let mut smaller = Share::default();
    smaller.counts.insert("presence-room".into(), 1);
    smaller.members.insert("presence-room".into(), [("b".to_owned(), None)].into());
    hub.apply(Remote::Share { node: NodeId(7), share: &smaller }, now);
    assert_eq!(drain(&watcher), ["pusher_internal:member_removed"]);
    assert_eq!(hub.channel_info("news", now), ChannelInfo::default());
    assert_eq!(hub.channel_info("presence-room", now).subscription_count, 2);
    assert!(!hub.users.is_online("a"));
    let local = hub.local_share();
    assert_eq!(local.counts, [("presence-room".to_owned(), 1)].into());
    assert_eq!(local.members["presence-room"].keys().collect::<Vec<_>>(), ["w"], "only this node's members");
}
