//! [`ShardedMap`]: a map split into independently locked shards, so that work on one channel does not
//! wait for work on another.
//!
//! Locks are `std::sync::Mutex` and every method is synchronous: a shard is never locked across an
//! `.await`, and closures passed in run with the shard locked, so they must stay short.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};

/// Enough shards that two cores rarely contend, few enough that walking all of them is cheap.
const SHARDS: usize = 32;

type Shard<V> = Mutex<HashMap<Box<str>, V>>;

/// A string-keyed map in [`SHARDS`] separately locked parts.
#[derive(Debug)]
pub(crate) struct ShardedMap<V> {
    shards: Box<[Shard<V>]>,
    hasher: RandomState,
}

impl<V> Default for ShardedMap<V> {
    fn default() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(), hasher: RandomState::new() }
    }
}

impl<V> ShardedMap<V> {
    /// Run `f` on the shard that holds `key`, with that shard locked.
    pub(crate) fn with_shard<R>(&self, key: &str, f: impl FnOnce(&mut HashMap<Box<str>, V>) -> R) -> R {
        f(&mut lock(&self.shards[self.shard_of(key)]))
    }

    /// The index of the shard that holds `key`.
    pub(crate) fn shard_of(&self, key: &str) -> usize {
        self.hasher.hash_one(key) as usize % self.shards.len()
    }

    /// A clone of the value at `key`.
    pub(crate) fn get(&self, key: &str) -> Option<V>
    where
        V: Clone,
    {
        self.with_shard(key, |shard| shard.get(key).cloned())
    }

    /// Clones of every entry, taken shard by shard (so not one atomic snapshot of the whole map).
    pub(crate) fn entries(&self) -> Vec<(Box<str>, V)>
    where
        V: Clone,
    {
        let mut entries = Vec::new();
        for shard in self.shards.iter() {
            entries.extend(lock(shard).iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        entries
    }

    /// The keys of the entries `keep` accepts, taken shard by shard.
    pub(crate) fn keys_where(&self, keep: impl Fn(&V) -> bool) -> Vec<Box<str>> {
        let mut keys = Vec::new();
        for shard in self.shards.iter() {
            keys.extend(lock(shard).iter().filter(|(_, v)| keep(v)).map(|(k, _)| k.clone()));
        }
        keys
    }

    /// How many shards there are, for walking the map one shard at a time with
    /// [`for_each_in_shard`](Self::for_each_in_shard).
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Run `f` on every entry of shard `index` (no-op past the last), with that shard locked.
    pub(crate) fn for_each_in_shard(&self, index: usize, mut f: impl FnMut(&str, &V)) {
        if let Some(shard) = self.shards.get(index) {
            lock(shard).iter().for_each(|(k, v)| f(k, v));
        }
    }

    /// Number of entries (counted shard by shard).
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).len()).sum()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Shard mutations are single map operations, consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_land_in_one_shard_each() {
        let map = ShardedMap::<u32>::default();
        for i in 0..1000 {
            map.with_shard(&format!("k{i}"), |shard| shard.insert(format!("k{i}").into(), i));
        }
        assert_eq!(map.len(), 1000);
        assert_eq!(map.get("k7"), Some(7));
        assert_eq!(map.get("nope"), None);
        let mut values: Vec<u32> = map.entries().into_iter().map(|(_, v)| v).collect();
        values.sort_unstable();
        assert_eq!(values, (0..1000).collect::<Vec<_>>());
    }
}
