//! A fast hasher for maps whose *contents* only operators and policy authors choose (ring
//! placements, action classes, kills by agent). Lookups use agent-chosen keys, but an agent
//! cannot insert colliding entries, so SipHash's protection against flooding buys nothing
//! there and costs tens of nanoseconds per decision. Maps an agent can fill (rate buckets,
//! anomaly baselines) keep the standard, randomly keyed hasher.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a, 64 bits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by operator- or author-chosen names.
pub(crate) type ConfigMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;
