//! [`Budget`]: how many subscriptions the node (and each app) may hold, so that anonymous clients
//! cannot make it hold more than the memory it was given. Each subscription is taken from the node's
//! budget and, when the app has one, from the app's; both are given back when it ends.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Memory one subscription costs the node, for the default budget (`herald-bench subscriptions`
/// measures about 520 bytes for a subscription to a channel of its own; rounded up, with room for
/// the allocator's and the kernel's share).
pub(crate) const BYTES_PER_SUBSCRIPTION: u64 = 1024;

/// A count that may not pass its maximum.
#[derive(Debug)]
pub(crate) struct Budget {
    max: AtomicUsize,
    used: AtomicUsize,
}

impl Budget {
    /// A budget of `max`.
    pub(crate) fn new(max: usize) -> Self {
        Self { max: AtomicUsize::new(max), used: AtomicUsize::new(0) }
    }

    /// Take one unless the budget is spent.
    pub(crate) fn try_take(&self) -> bool {
        let max = self.max.load(Ordering::Relaxed);
        self.used.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |used| (used < max).then_some(used + 1)).is_ok()
    }

    /// Give back `n` taken earlier.
    pub(crate) fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// How many are taken.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Change the maximum (a reload); what is taken stays taken.
    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }
}

/// The default node-wide budget: subscriptions worth half of `memory` bytes.
pub(crate) fn default_subscriptions(memory: u64) -> usize {
    usize::try_from(memory / 2 / BYTES_PER_SUBSCRIPTION).unwrap_or(usize::MAX).max(10_000)
}

/// The memory this process may use: the cgroup's limit when there is one, the machine's otherwise.
pub(crate) fn available_memory() -> u64 {
    let cgroup =
        std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|text| text.trim().parse::<u64>().ok());
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
    });
    match (cgroup, total) {
        (Some(cgroup), Some(total)) => cgroup.min(total),
        (limit, total) => limit.or(total).unwrap_or(4 << 30),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_stops_at_its_maximum_and_takes_back() {
        let budget = Budget::new(2);
        assert!(budget.try_take() && budget.try_take());
        assert!(!budget.try_take());
        budget.give_back(1);
        assert!(budget.try_take());
        budget.set_max(5);
        assert!(budget.try_take());
        assert_eq!(budget.used(), 3);
    }

    #[test]
    fn the_default_is_half_the_memory_at_a_kibibyte_each() {
        assert_eq!(default_subscriptions(24 << 30), 12_582_912);
        assert_eq!(default_subscriptions(1 << 20), 10_000, "never absurdly small");
        assert!(available_memory() > 0);
    }
}
