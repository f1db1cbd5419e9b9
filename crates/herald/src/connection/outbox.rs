//! The outbox: the only way into a connection from the rest of the server.
//!
//! Publishers (a REST trigger fanning out, another connection's client event, a presence change)
//! push pre-serialized frames with [`Outbox::try_send`], which never waits. The connection's own task
//! takes everything queued at once with [`Outbox::next_batch`] and writes it with a single flush.
//!
//! The queue is bounded in frames and bytes. A connection that falls that far behind is a slow
//! consumer: the push that overflows sets the kill switch instead of growing memory, and the
//! connection's task closes it with 4100. The same kill switch carries the other reasons a
//! connection is closed from outside (terminated by the app).
//!
//! A std mutex guards the queue: it is held only to push or swap a `VecDeque`, never across an
//! `.await`, and it is almost never contended (one publisher at a time per channel, one reader).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard};
use std::task::{Poll, Waker};

use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::config::OutboxLimits;

/// An encoded frame. Cloning it shares the bytes: one broadcast is serialized once for every
/// recipient.
pub(crate) type Frame = Utf8Bytes;

/// Identifies a connection within this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConnId(pub(crate) u64);

/// Why a connection is being closed from outside its own task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kill {
    /// Its outbox overflowed: close with 4100.
    SlowConsumer,
    /// The app terminated the user's connections: close with 4009.
    Terminated,
}

/// What the connection's task gets from [`Outbox::next_batch`].
#[derive(Debug)]
pub(crate) enum Batch {
    /// Frames to write, oldest first.
    Frames(VecDeque<Frame>),
    /// Stop: close the connection for this reason.
    Kill(Kill),
}

/// A bounded queue of frames for one connection, plus a kill switch.
#[derive(Debug)]
pub(crate) struct Outbox {
    id: ConnId,
    max_frames: usize,
    max_bytes: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Frame>,
    bytes: usize,
    kill: Option<Kill>,
    /// The connection task's waker, while it waits for frames.
    waker: Option<Waker>,
}

/// The frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The queue was full: the connection is now being closed as a slow consumer.
    Full,
    /// The connection is already being closed.
    Closing,
}

impl Outbox {
    /// An empty outbox. Nothing is allocated until the first frame arrives.
    pub(crate) fn new(id: ConnId, limits: OutboxLimits) -> Self {
        Self { id, max_frames: limits.max_frames, max_bytes: limits.max_bytes, state: Mutex::new(State::default()) }
    }

    /// The connection this outbox feeds.
    pub(crate) fn id(&self) -> ConnId {
        self.id
    }

    /// Queue a frame without waiting. On overflow the connection is killed as a slow consumer rather
    /// than allowed to grow.
    pub(crate) fn try_send(&self, frame: Frame) -> Result<(), SendError> {
        let mut state = self.lock();
        if state.kill.is_some() {
            return Err(SendError::Closing);
        }
        let len = frame.len();
        if state.frames.len() >= self.max_frames || state.bytes + len > self.max_bytes {
            state.kill = Some(Kill::SlowConsumer);
            state.frames = VecDeque::new();
            state.bytes = 0;
            wake(state);
            return Err(SendError::Full);
        }
        let was_empty = state.frames.is_empty();
        state.frames.push_back(frame);
        state.bytes += len;
        // Only the first frame of a batch wakes the task; later ones ride along with it.
        if was_empty {
            wake(state);
        }
        Ok(())
    }

    /// Close the connection for `reason`; frames still queued are dropped.
    pub(crate) fn kill(&self, reason: Kill) {
        let mut state = self.lock();
        if state.kill.is_none() {
            state.kill = Some(reason);
            state.frames = VecDeque::new();
            state.bytes = 0;
        }
        wake(state);
    }

    /// Wait for frames (all of them are taken at once) or for the kill switch. Cancel-safe: nothing
    /// is taken until the future completes.
    pub(crate) async fn next_batch(&self) -> Batch {
        poll_fn(|cx| {
            let mut state = self.lock();
            if let Some(reason) = state.kill {
                return Poll::Ready(Batch::Kill(reason));
            }
            if !state.frames.is_empty() {
                state.bytes = 0;
                return Poll::Ready(Batch::Frames(std::mem::take(&mut state.frames)));
            }
            match &mut state.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// Take whatever is queued now, without waiting (nothing once killed).
    pub(crate) fn take_queued(&self) -> VecDeque<Frame> {
        let mut state = self.lock();
        if state.kill.is_some() {
            return VecDeque::new();
        }
        state.bytes = 0;
        std::mem::take(&mut state.frames)
    }

    /// Wait for the kill switch only (frames stay queued). Used while a write is in progress, so a
    /// connection stuck writing to a client that stopped reading is dropped as soon as it is killed.
    pub(crate) async fn killed(&self) -> Kill {
        poll_fn(|cx| {
            let mut state = self.lock();
            if let Some(reason) = state.kill {
                return Poll::Ready(reason);
            }
            match &mut state.waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves the queue itself consistent (every mutation is a
        // single push or swap), so a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Wake the connection task after releasing the lock, so it does not wake up into a held mutex.
fn wake(mut state: MutexGuard<'_, State>) {
    let waker = state.waker.take();
    drop(state);
    if let Some(waker) = waker {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn outbox(max_frames: usize, max_bytes: usize) -> Outbox {
        Outbox::new(ConnId(1), OutboxLimits { max_frames, max_bytes, write_timeout: Duration::from_secs(1) })
    }

    fn frames(batch: Batch) -> Vec<String> {
        match batch {
            Batch::Frames(frames) => frames.iter().map(|f| f.as_str().to_owned()).collect(),
            Batch::Kill(reason) => panic!("killed: {reason:?}"),
        }
    }

    #[tokio::test]
    async fn batches_take_everything_queued_in_order() {
        let outbox = outbox(10, 1000);
        outbox.try_send("a".into()).unwrap();
        outbox.try_send("b".into()).unwrap();
        assert_eq!(frames(outbox.next_batch().await), ["a", "b"]);
        outbox.try_send("c".into()).unwrap();
        assert_eq!(frames(outbox.next_batch().await), ["c"]);
    }

    #[tokio::test]
    async fn overflow_kills_instead_of_growing() {
        let outbox = outbox(2, 1000);
        outbox.try_send("a".into()).unwrap();
        outbox.try_send("b".into()).unwrap();
        assert_eq!(outbox.try_send("c".into()), Err(SendError::Full));
        assert_eq!(outbox.try_send("d".into()), Err(SendError::Closing));
        assert!(matches!(outbox.next_batch().await, Batch::Kill(Kill::SlowConsumer)));

        let by_bytes = self::outbox(100, 5);
        by_bytes.try_send("abc".into()).unwrap();
        assert_eq!(by_bytes.try_send("def".into()), Err(SendError::Full));
    }

    #[tokio::test]
    async fn bytes_are_released_when_a_batch_is_taken() {
        let outbox = outbox(100, 5);
        for _ in 0..10 {
            outbox.try_send("abcd".into()).unwrap();
            assert_eq!(frames(outbox.next_batch().await), ["abcd"]);
        }
    }

    #[tokio::test]
    async fn a_waiting_task_is_woken_by_a_push_or_a_kill() {
        let outbox = std::sync::Arc::new(outbox(10, 1000));
        let reader = tokio::spawn({
            let outbox = outbox.clone();
            async move { (frames(outbox.next_batch().await), outbox.next_batch().await) }
        });
        tokio::task::yield_now().await;
        outbox.try_send("x".into()).unwrap();
        tokio::task::yield_now().await;
        outbox.kill(Kill::Terminated);
        let (first, second) = reader.await.unwrap();
        assert_eq!(first, ["x"]);
        assert!(matches!(second, Batch::Kill(Kill::Terminated)));
    }
}
