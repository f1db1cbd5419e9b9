//! [`RateLimiter`]: the token buckets that bound what one connection may ask of the server.
//!
//! Two per connection: client events (Pusher's 10 per second, error 4301) and commands that change
//! shared state (subscribe and sign-in). A bucket allows a burst of its capacity (a reconnecting
//! pusher-js resubscribes to all its channels at once) and refills continuously. Time is passed in.

use std::time::Instant;

use pusher_wire::limits::MAX_SUBSCRIPTIONS_PER_CONNECTION;

/// Subscribes and sign-ins one connection may send per second once its burst is spent.
pub const COMMANDS_PER_SECOND: u32 = 50;

/// A token bucket.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    tokens: f64,
    capacity: f64,
    per_second: f64,
    updated: Instant,
}

impl RateLimiter {
    /// A full bucket of `capacity` tokens refilled at `per_second`.
    pub(crate) fn new(capacity: u32, per_second: u32, now: Instant) -> Self {
        let capacity = f64::from(capacity);
        Self { tokens: capacity, capacity, per_second: f64::from(per_second), updated: now }
    }

    /// `n` per second, in bursts of at most `n`.
    pub(crate) fn per_second(n: u32, now: Instant) -> Self {
        Self::new(n, n, now)
    }

    /// Subscribes and sign-ins: a burst of one subscription per allowed channel, then
    /// [`COMMANDS_PER_SECOND`], so that a client subscribing and unsubscribing in a loop cannot keep
    /// the server and the channel's other subscribers busy.
    pub(crate) fn for_commands(now: Instant) -> Self {
        Self::new(MAX_SUBSCRIPTIONS_PER_CONNECTION as u32, COMMANDS_PER_SECOND, now)
    }

    /// Take a token if one is left.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        self.allow_n(1, now)
    }

    /// Take `n` tokens if that many are left (all or none).
    pub(crate) fn allow_n(&mut self, n: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.updated = now;
        let n = f64::from(n);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use pusher_wire::limits::MAX_CLIENT_EVENTS_PER_SECOND;

    const REFILL: Duration = Duration::from_millis(100);

    #[test]
    fn ten_client_events_per_second_with_bursts() {
        let start = Instant::now();
        let mut limiter = RateLimiter::per_second(MAX_CLIENT_EVENTS_PER_SECOND, start);
        assert!((0..10).all(|_| limiter.allow(start)));
        assert!(!limiter.allow(start));
        assert!(!limiter.allow(start + REFILL / 2));
        assert!(limiter.allow(start + REFILL));
        assert!(!limiter.allow(start + REFILL));
        // A quiet second refills the bucket, but never beyond ten.
        let later = start + Duration::from_secs(5);
        assert_eq!((0..20).filter(|_| limiter.allow(later)).count(), 10);
    }

    #[test]
    fn commands_allow_a_full_resubscribe_then_a_steady_rate() {
        let start = Instant::now();
        let mut limiter = RateLimiter::for_commands(start);
        assert_eq!((0..2000).filter(|_| limiter.allow(start)).count(), 1000);
        let second = start + Duration::from_secs(1);
        assert_eq!((0..2000).filter(|_| limiter.allow(second)).count(), 50);
    }
}
