//! [`Heartbeat`]: when to ping a quiet client and when to give up on it.
//!
//! A listening pusher-js client may stay silent for a long time, so silence alone never closes a
//! connection: after `activity_timeout` with nothing received the server sends a WebSocket ping
//! (browsers answer it on their own), and only if nothing at all arrives within `pong_timeout`
//! after that is the connection closed with 4201.
//!
//! Receiving a message only records the time; the deadline is recomputed when the timer fires. That
//! keeps the per-message cost at one clock read instead of a timer reset. Time is passed in, so the
//! machine is tested without sleeping.
//!
//! The same timer carries the authorized-connections deadline (an app setting): a connection that
//! has neither signed in nor joined a private or presence channel by then is closed with 4009. One
//! timer per connection instead of two keeps an idle connection's task small.

use std::time::{Duration, Instant};

/// The heartbeat state of one connection.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    activity_timeout: Duration,
    pong_timeout: Duration,
    last_seen: Instant,
    /// When the unanswered ping was sent, if one is outstanding.
    pinged_at: Option<Instant>,
    /// When the connection must have signed in or joined a private or presence channel, for an
    /// app with authorized connections, until it has.
    authorize_by: Option<Instant>,
}

/// What to do when the heartbeat's deadline passes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Beat {
    /// The client was heard from in the meantime: sleep until the new deadline.
    Wait,
    /// The client has been quiet for `activity_timeout`: ping it.
    Ping,
    /// The ping went unanswered: close with 4201.
    Close,
    /// The connection did not authorize itself in time: close with 4009.
    Unauthorized,
}

impl Heartbeat {
    /// A heartbeat for a connection that was just heard from at `now`.
    pub(crate) fn new(now: Instant, activity_timeout: Duration, pong_timeout: Duration) -> Self {
        Self { activity_timeout, pong_timeout, last_seen: now, pinged_at: None, authorize_by: None }
    }

    /// The connection must sign in or join a private or presence channel by `by`.
    pub(crate) fn require_authorization(&mut self, by: Instant) {
        self.authorize_by = Some(by);
    }

    /// Whether the connection still has to authorize itself.
    pub(crate) fn awaiting_authorization(&self) -> bool {
        self.authorize_by.is_some()
    }

    /// The connection signed in or joined a private or presence channel.
    pub(crate) fn authorized(&mut self) {
        self.authorize_by = None;
    }

    /// Anything arrived from the client.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.last_seen = now;
    }

    /// When to call [`Self::beat`] next.
    pub(crate) fn deadline(&self) -> Instant {
        let heartbeat = match self.pinged_at {
            Some(pinged_at) if self.last_seen <= pinged_at => pinged_at + self.pong_timeout,
            _ => self.last_seen + self.activity_timeout,
        };
        self.authorize_by.map_or(heartbeat, |by| by.min(heartbeat))
    }

    /// The deadline passed (or the timer fired early): decide what to do.
    pub(crate) fn beat(&mut self, now: Instant) -> Beat {
        if self.authorize_by.is_some_and(|by| now >= by) {
            return Beat::Unauthorized;
        }
        if let Some(pinged_at) = self.pinged_at {
            if self.last_seen > pinged_at {
                self.pinged_at = None;
            } else if now >= pinged_at + self.pong_timeout {
                return Beat::Close;
            } else {
                return Beat::Wait;
            }
        }
        if now >= self.last_seen + self.activity_timeout {
            self.pinged_at = Some(now);
            Beat::Ping
        } else {
            Beat::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACTIVITY: Duration = Duration::from_secs(120);
    const PONG: Duration = Duration::from_secs(30);

    #[test]
    fn a_quiet_client_is_pinged_then_closed() {
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(start, ACTIVITY, PONG);
        assert_eq!(heartbeat.deadline(), start + ACTIVITY);
        assert_eq!(heartbeat.beat(start + ACTIVITY - Duration::from_secs(1)), Beat::Wait);
        assert_eq!(heartbeat.beat(start + ACTIVITY), Beat::Ping);
        assert_eq!(heartbeat.deadline(), start + ACTIVITY + PONG);
        assert_eq!(heartbeat.beat(start + ACTIVITY + PONG - Duration::from_secs(1)), Beat::Wait);
        assert_eq!(heartbeat.beat(start + ACTIVITY + PONG), Beat::Close);
    }

    #[test]
    fn any_reply_to_the_ping_keeps_the_connection() {
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(start, ACTIVITY, PONG);
        assert_eq!(heartbeat.beat(start + ACTIVITY), Beat::Ping);
        heartbeat.heard(start + ACTIVITY + Duration::from_secs(1));
        assert_eq!(heartbeat.deadline(), start + ACTIVITY + Duration::from_secs(1) + ACTIVITY);
        assert_eq!(heartbeat.beat(start + ACTIVITY + PONG), Beat::Wait);
        assert_eq!(heartbeat.beat(start + 2 * ACTIVITY + Duration::from_secs(1)), Beat::Ping);
    }

    #[test]
    fn traffic_pushes_the_deadline_back() {
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(start, ACTIVITY, PONG);
        heartbeat.heard(start + Duration::from_secs(100));
        assert_eq!(heartbeat.beat(start + ACTIVITY), Beat::Wait);
        assert_eq!(heartbeat.deadline(), start + Duration::from_secs(100) + ACTIVITY);
    }

    #[test]
    fn a_connection_that_never_authorizes_is_closed_at_its_deadline() {
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(start, ACTIVITY, PONG);
        heartbeat.require_authorization(start + Duration::from_secs(30));
        assert_eq!(heartbeat.deadline(), start + Duration::from_secs(30), "before the activity timeout");
        heartbeat.heard(start + Duration::from_secs(20));
        assert_eq!(heartbeat.beat(start + Duration::from_secs(29)), Beat::Wait, "early timer");
        assert_eq!(heartbeat.beat(start + Duration::from_secs(30)), Beat::Unauthorized, "being heard is not enough");
    }

    #[test]
    fn an_authorized_connection_goes_back_to_the_plain_heartbeat() {
        let start = Instant::now();
        let mut heartbeat = Heartbeat::new(start, ACTIVITY, PONG);
        heartbeat.require_authorization(start + Duration::from_secs(30));
        assert!(heartbeat.awaiting_authorization());
        heartbeat.authorized();
        assert!(!heartbeat.awaiting_authorization());
        assert_eq!(heartbeat.beat(start + Duration::from_secs(30)), Beat::Wait);
        assert_eq!(heartbeat.deadline(), start + ACTIVITY);
    }
}
