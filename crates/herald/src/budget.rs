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

/// The memory this process may use: its cgroup's limit when there is one (a container's, or a
/// systemd unit's `MemoryMax=`), the machine's otherwise.
pub(crate) fn available_memory() -> u64 {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let cgroup = read("/proc/self/cgroup").and_then(|membership| cgroup_memory_limit(&membership, read));
    let total = read("/proc/meminfo").and_then(|text| {
        let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
    });
    match (cgroup, total) {
        (Some(cgroup), Some(total)) => cgroup.min(total),
        (limit, total) => limit.or(total).unwrap_or(4 << 30),
    }
}

/// The tightest memory limit on the cgroup named in `membership` (the text of `/proc/self/cgroup`)
/// and on its ancestors, whose limits apply too; `read` reads a file under `/sys/fs/cgroup`. v1's
/// memory controller (`N:memory:/path`, `memory.limit_in_bytes`) where it is mounted (a hybrid host
/// keeps it there), cgroup v2 (`0::/path`, `memory.max`) otherwise. In a container with its own
/// cgroup namespace the path is `/`.
fn cgroup_memory_limit(membership: &str, read: impl Fn(&str) -> Option<String>) -> Option<u64> {
    let v2 = membership.lines().find_map(|line| line.strip_prefix("0::"));
    let v1 = membership.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        controllers.split(',').any(|controller| controller == "memory").then_some(path)
    });
    let (root, file, path) = match (v2, v1) {
        (_, Some(path)) if read("/sys/fs/cgroup/memory/memory.limit_in_bytes").is_some() => {
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes", path)
        }
        (Some(path), _) => ("/sys/fs/cgroup", "memory.max", path),
        _ => return None,
    };
    let mut limit: Option<u64> = None;
    let mut dir = path.trim_end_matches('/');
    loop {
        // "max" (v2) does not parse; v1 writes "no limit" as a number near 2^63.
        if let Some(bytes) = read(&format!("{root}{dir}/{file}")).and_then(|text| text.trim().parse::<u64>().ok())
            && bytes < 1 << 62
        {
            limit = Some(limit.map_or(bytes, |tighter| tighter.min(bytes)));
        }
        match dir.rfind('/') {
            Some(parent) if !dir.is_empty() => dir = &dir[..parent],
            _ => break,
        }
    }
    limit
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

    fn files(entries: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let entries: Vec<(String, String)> = entries.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |path| entries.iter().find(|(k, _)| k == path).map(|(_, v)| v.clone())
    }

    #[test]
    fn a_systemd_units_memory_max_and_its_slices_count_the_tightest_wins() {
        let read = files(&[
            ("/sys/fs/cgroup/memory.max", "max\n"),
            ("/sys/fs/cgroup/system.slice/memory.max", "8589934592\n"),
            ("/sys/fs/cgroup/system.slice/herald.service/memory.max", "2147483648\n"),
        ]);
        assert_eq!(cgroup_memory_limit("0::/system.slice/herald.service\n", &read), Some(2 << 30));
        let read = files(&[
            ("/sys/fs/cgroup/system.slice/memory.max", "1073741824\n"),
            ("/sys/fs/cgroup/system.slice/herald.service/memory.max", "max\n"),
        ]);
        assert_eq!(cgroup_memory_limit("0::/system.slice/herald.service\n", &read), Some(1 << 30), "a slice's limit");
    }

    #[test]
    fn a_container_with_its_own_namespace_reads_the_root_and_no_limit_is_none() {
        let read = files(&[("/sys/fs/cgroup/memory.max", "536870912\n")]);
        assert_eq!(cgroup_memory_limit("0::/\n", &read), Some(512 << 20));
        let read = files(&[("/sys/fs/cgroup/memory.max", "max\n")]);
        assert_eq!(cgroup_memory_limit("0::/\n", &read), None);
        assert_eq!(cgroup_memory_limit("", &read), None);
    }

    #[test]
    fn cgroup_v1_reads_the_memory_controllers_limit() {
        let membership = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n";
        let read = files(&[
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("/sys/fs/cgroup/memory/docker/memory.limit_in_bytes", "9223372036854771712\n"),
            ("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "268435456\n"),
        ]);
        assert_eq!(cgroup_memory_limit(membership, &read), Some(256 << 20));
    }

    #[test]
    fn the_default_is_half_the_memory_at_a_kibibyte_each() {
        assert_eq!(default_subscriptions(24 << 30), 12_582_912);
        assert_eq!(default_subscriptions(1 << 20), 10_000, "never absurdly small");
        assert!(available_memory() > 0);
    }
}
