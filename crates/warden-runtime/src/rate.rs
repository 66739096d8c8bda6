//! Token buckets, exact to the nanosecond.
//!
//! A bucket is kept in its GCRA form (the "theoretical arrival time" of the next event),
//! which is one number per key and needs no refill timer. The arithmetic is done in integers
//! with time scaled by the rate's count, so `100/minute` refills one token every 600 ms
//! exactly and `7/minute` every 8 571 428 571 3⁄7 ns exactly — no float drifts across a
//! boundary. Tests stand on the boundary with a [`ManualClock`](crate::ManualClock).
//!
//! [`Buckets`] keeps buckets for many keys in the process, in shards, bounded: when a shard is
//! full, buckets that are full again (idle long enough) are dropped, which changes nothing;
//! if none is, the request is refused (fail closed) rather than forgetting a busy bucket.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

use foldhash::quality::RandomState;
use std::sync::{Arc, Mutex};

use warden_policy::runtime::Rate;

use crate::clock::nanos;

/// The most buckets [`Buckets`] keeps by default (over all limits and keys).
pub const DEFAULT_MAX_BUCKETS: usize = 1 << 20;

/// A rate limit's shape: `count` per `period`, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Events per period (N).
    count: u64,
    /// The period in nanoseconds (P). One token takes P/N ns to come back.
    period_ns: u64,
    /// The bucket's size (B).
    burst: u64,
}

/// The state of one bucket: the theoretical arrival time, scaled by `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tat {
    /// Nanoseconds × count.
    pub scaled: u128,
    /// The count the value is scaled by.
    pub count: u64,
}

/// A refusal: how long until one token is back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Nanoseconds until a request would be allowed.
    pub retry_after_ns: u64,
}

impl Bucket {
    /// `rate` with a bucket of `burst` (at least 1).
    pub fn new(rate: Rate, burst: u32) -> Self {
        Bucket {
            count: rate.count.max(1),
            period_ns: nanos(rate.period).max(1),
            burst: u64::from(burst.max(1)),
        }
    }

    /// The bucket's size.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    fn rescale(&self, tat: Tat) -> u128 {
        if tat.count == self.count || tat.count == 0 {
            tat.scaled
        } else {
            tat.scaled / u128::from(tat.count) * u128::from(self.count)
        }
    }

    /// Take one token at `now_ns`: the new state, or how long to wait. (No division on the
    /// way to a yes: 128-bit division costs more than the rest of the check.)
    pub fn take(&self, tat: Tat, now_ns: u64) -> Result<Tat, Limited> {
        let now = u128::from(now_ns) * u128::from(self.count);
        let step = u128::from(self.period_ns);
        let size = step * u128::from(self.burst);
        let new = self.rescale(tat).max(now) + step;
        let used = new - now;
        if used <= size {
            Ok(Tat {
                scaled: new,
                count: self.count,
            })
        } else {
            let wait = (used - size).div_ceil(u128::from(self.count));
            Err(Limited {
                retry_after_ns: u64::try_from(wait).unwrap_or(u64::MAX),
            })
        }
    }

    /// Tokens left at `now_ns`, without taking one.
    pub fn remaining(&self, tat: Tat, now_ns: u64) -> u64 {
        let now = u128::from(now_ns) * u128::from(self.count);
        let step = u128::from(self.period_ns);
        let size = step * u128::from(self.burst);
        let used = self.rescale(tat).max(now) - now;
        u64::try_from(size.saturating_sub(used) / step).unwrap_or(u64::MAX)
    }

    /// Whether the bucket is full again at `now_ns` (its state can be forgotten).
    pub fn is_full(&self, tat: Tat, now_ns: u64) -> bool {
        self.rescale(tat) <= u128::from(now_ns) * u128::from(self.count)
    }
}

/// Which bucket: the limit and the parts of the action it is kept per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyRef<'a> {
    /// The limit's id.
    pub limit: &'a str,
    /// The agent, when the limit is kept per agent (`""` for actions without one).
    pub agent: Option<&'a str>,
    /// The tool, when kept per tool.
    pub tool: Option<&'a str>,
    /// The action name, when kept per action.
    pub action: Option<&'a str>,
}

impl KeyRef<'_> {
    /// The key as one string (for the database and for people): a JSON array.
    pub fn encode(&self) -> String {
        serde_json::json!([self.agent, self.tool, self.action]).to_string()
    }
}

#[derive(Debug)]
struct Slot {
    limit: Arc<str>,
    agent: Option<Box<str>>,
    tool: Option<Box<str>>,
    action: Option<Box<str>>,
    tat: Tat,
    /// The bucket the state belongs to (to tell whether it is full again).
    bucket: Bucket,
}

impl Slot {
    fn is(&self, k: &KeyRef<'_>) -> bool {
        &*self.limit == k.limit
            && self.agent.as_deref() == k.agent
            && self.tool.as_deref() == k.tool
            && self.action.as_deref() == k.action
    }
}

/// The shard map's keys are already hashes (seeded per process): used as they are.
#[derive(Debug, Default, Clone, Copy)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else still hashes, slowly and correctly.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Debug, Default)]
struct Shard {
    /// Key hash → the buckets with that hash (a collision is compared by value).
    map: HashMap<u64, Vec<Slot>, BuildHasherDefault<Prehashed>>,
    len: usize,
}

const SHARDS: usize = 16;

/// Why a bucket could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeError {
    /// Over the limit.
    Limited(Limited),
    /// Too many buckets are busy to keep one more.
    Full,
}

/// Buckets for many keys, kept in this process.
#[derive(Debug)]
pub struct Buckets {
    shards: [Mutex<Shard>; SHARDS],
    hasher: RandomState,
    max_per_shard: usize,
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::new(DEFAULT_MAX_BUCKETS)
    }
}

impl Buckets {
    /// Room for at most `max` buckets (spread over shards).
    pub fn new(max: usize) -> Self {
        Buckets {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            hasher: RandomState::default(),
            max_per_shard: max.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard> {
        // INVARIANT: SHARDS is a power of two and the shard index stays below it.
        self.shards[(hash >> 60) as usize & (SHARDS - 1)]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Take one token from the bucket `key` (created full if new).
    pub fn take(&self, key: KeyRef<'_>, bucket: &Bucket, now_ns: u64) -> Result<(), TakeError> {
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash);
        if let Some(slot) = shard
            .map
            .get_mut(&hash)
            .and_then(|v| v.iter_mut().find(|s| s.is(&key)))
        {
            slot.tat = bucket.take(slot.tat, now_ns).map_err(TakeError::Limited)?;
            slot.bucket = *bucket;
            return Ok(());
        }
        let tat = bucket
            .take(Tat::default(), now_ns)
            .map_err(TakeError::Limited)?;
        if shard.len >= self.max_per_shard {
            forget_full(&mut shard, now_ns);
            if shard.len >= self.max_per_shard {
                return Err(TakeError::Full);
            }
        }
        shard.map.entry(hash).or_default().push(Slot {
            limit: Arc::from(key.limit),
            agent: key.agent.map(Box::from),
            tool: key.tool.map(Box::from),
            action: key.action.map(Box::from),
            tat,
            bucket: *bucket,
        });
        shard.len += 1;
        Ok(())
    }

    /// Tokens left in the bucket `key` (full when it was never used).
    pub fn remaining(&self, key: KeyRef<'_>, bucket: &Bucket, now_ns: u64) -> u64 {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash);
        let tat = shard
            .map
            .get(&hash)
            .and_then(|v| v.iter().find(|s| s.is(&key)))
            .map_or_else(Tat::default, |s| s.tat);
        bucket.remaining(tat, now_ns)
    }

    /// How many buckets are kept now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len))
            .sum()
    }

    /// Whether no bucket is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn forget_full(shard: &mut Shard, now_ns: u64) {
    let mut removed = 0;
    shard.map.retain(|_, slots| {
        let before = slots.len();
        slots.retain(|s| !s.bucket.is_full(s.tat, now_ns));
        removed += before - slots.len();
        !slots.is_empty()
    });
    shard.len -= removed;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rate(count: u64, secs: u64) -> Rate {
        Rate {
            count,
            period: Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_burst_then_one_token_per_interval_exactly() {
        // 100/minute, burst 10: ten at once, then one every 600 ms exactly.
        let b = Bucket::new(rate(100, 60), 10);
        let t0 = 1_000_000_000_000;
        let mut tat = Tat::default();
        for i in 0..10 {
            tat = b.take(tat, t0).unwrap();
            assert_eq!(b.remaining(tat, t0), 9 - i);
        }
        assert_eq!(
            b.take(tat, t0),
            Err(Limited {
                retry_after_ns: 600_000_000
            })
        );
        assert_eq!(
            b.take(tat, t0 + 599_999_999),
            Err(Limited { retry_after_ns: 1 })
        );
        let tat = b.take(tat, t0 + 600_000_000).unwrap();
        assert_eq!(b.remaining(tat, t0 + 600_000_000), 0);
        assert!(b.take(tat, t0 + 600_000_000).is_err());
        assert_eq!(b.remaining(tat, t0 + 6_600_000_000), 10);
    }

    #[test]
    fn uneven_intervals_are_exact_to_the_nanosecond() {
        // 7/minute, burst 7, emptied at t0: a token every 8 571 428 571 3/7 ns, so token k
        // comes back at exactly ceil(k × 60e9 / 7) ns after t0 — never a nanosecond
        // earlier, and the seventh at exactly one minute (no drift).
        let b = Bucket::new(rate(7, 60), 7);
        let t0 = 5_000_000_000;
        let mut tat = Tat::default();
        for _ in 0..7 {
            tat = b.take(tat, t0).unwrap();
        }
        for k in 1..=7u64 {
            let at = t0 + (k * 60_000_000_000).div_ceil(7);
            assert_eq!(
                b.take(tat, at - 1),
                Err(Limited { retry_after_ns: 1 }),
                "token {k}"
            );
            tat = b.take(tat, at).unwrap();
        }
    }

    #[test]
    fn keyed_buckets_are_separate_and_bounded() {
        let b = Bucket::new(rate(1, 60), 1);
        let store = Buckets::new(SHARDS); // one per shard
        fn key(agent: &str) -> KeyRef<'_> {
            KeyRef {
                limit: "l",
                agent: Some(agent),
                tool: None,
                action: None,
            }
        }
        assert_eq!(store.take(key("a"), &b, 10), Ok(()));
        assert!(matches!(
            store.take(key("a"), &b, 10),
            Err(TakeError::Limited(_))
        ));
        // Fill every shard with busy buckets; sooner or later one is refused as full.
        let mut full = false;
        for i in 0..1000 {
            let name = format!("x{i}");
            if store.take(key(&name), &b, 10) == Err(TakeError::Full) {
                full = true;
                break;
            }
        }
        assert!(full);
        // A minute later every bucket is full again and may be forgotten to make room.
        assert_eq!(store.take(key("late"), &b, 60_000_000_010), Ok(()));
        // "a" may share a shard with "late" (the shard is picked by a randomly seeded hash),
        // whose bucket was just emptied and is not yet forgettable: so "a" comes another
        // minute later, when both are. (Taken at the same instant, this failed one run in
        // SHARDS.)
        assert_eq!(store.take(key("a"), &b, 120_000_000_010), Ok(()));
    }
}
