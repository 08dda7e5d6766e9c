//! A size-bounded cache of recent metadata lookups (object locations,
//! buckets, credentials), served only while the database is unreachable and
//! only for `ttl` after the lookup was last answered by the database.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use strata_core::{BucketInfo, Credential, ObjectRecord};

/// One cached answer.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    Credential(Credential),
    Bucket(BucketInfo),
    Object(Box<ObjectRecord>),
}

/// FIFO-evicted map with a time to live.
#[derive(Debug)]
pub(crate) struct Cache {
    ttl: Duration,
    capacity: usize,
    entries: HashMap<String, (u64, Instant, Entry)>,
    /// Insertion order, with the generation each key had when inserted (a
    /// stale generation means the key was refreshed or removed since).
    order: VecDeque<(String, u64)>,
    generation: u64,
}

impl Cache {
    pub fn new(ttl: Duration, capacity: usize) -> Cache {
        Cache {
            ttl,
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
            generation: 0,
        }
    }

    pub fn object_key(bucket: &str, key: &str) -> String {
        format!("o\0{bucket}\0{key}")
    }
    pub fn bucket_key(bucket: &str) -> String {
        format!("b\0{bucket}")
    }
    pub fn credential_key(id: &str) -> String {
        format!("c\0{id}")
    }
    pub fn reference_key(id: &str) -> String {
        format!("r\0{id}")
    }

    /// Stores the database's latest answer for `key`.
    pub fn put(&mut self, key: String, entry: Entry, now: Instant) {
        if self.capacity == 0 || self.ttl.is_zero() {
            return;
        }
        self.generation += 1;
        self.entries.insert(key.clone(), (self.generation, now, entry));
        self.order.push_back((key, self.generation));
        while self.entries.len() > self.capacity {
            let Some((k, g)) = self.order.pop_front() else { break };
            if self.entries.get(&k).is_some_and(|(eg, _, _)| *eg == g) {
                self.entries.remove(&k);
            }
        }
        // Refreshed keys leave stale markers behind; keep the queue bounded.
        if self.order.len() > self.capacity.saturating_mul(2) + 16 {
            let entries = &self.entries;
            self.order
                .retain(|(k, g)| entries.get(k).is_some_and(|(eg, _, _)| eg == g));
        }
    }

    /// The answer for `key` if the database gave it within `ttl`.
    pub fn get(&self, key: &str, now: Instant) -> Option<Entry> {
        let (_, at, e) = self.entries.get(key)?;
        (now.saturating_duration_since(*at) <= self.ttl).then(|| e.clone())
    }

    /// Forgets `key` (it was written, deleted or found missing).
    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(name: &str) -> Entry {
        Entry::Bucket(BucketInfo {
            name: name.into(),
            created_unix_ms: 0,
        })
    }

    #[test]
    fn entries_expire_and_the_oldest_are_evicted() {
        let t0 = Instant::now();
        let mut c = Cache::new(Duration::from_secs(10), 2);
        c.put(Cache::bucket_key("a"), bucket("a"), t0);
        c.put(Cache::bucket_key("b"), bucket("b"), t0);
        c.put(Cache::bucket_key("a"), bucket("a"), t0); // refresh: a is now newest
        c.put(Cache::bucket_key("c"), bucket("c"), t0);
        assert_eq!(c.len(), 2);
        assert!(c.get(&Cache::bucket_key("b"), t0).is_none(), "b was the oldest");
        assert!(c.get(&Cache::bucket_key("a"), t0).is_some());
        assert!(c.get(&Cache::bucket_key("c"), t0 + Duration::from_secs(10)).is_some());
        assert!(
            c.get(&Cache::bucket_key("c"), t0 + Duration::from_secs(11)).is_none(),
            "past the ttl"
        );
        c.remove(&Cache::bucket_key("a"));
        assert!(c.get(&Cache::bucket_key("a"), t0).is_none());
        for i in 0..1000 {
            c.put(Cache::object_key("x", &i.to_string()), bucket("x"), t0);
        }
        assert!(c.len() <= 2 && c.order.len() <= 2 * 2 + 17, "memory stays bounded");
        let mut off = Cache::new(Duration::ZERO, 10);
        off.put(Cache::bucket_key("a"), bucket("a"), t0);
        assert_eq!(off.len(), 0, "a zero ttl turns the cache off");
    }
}
