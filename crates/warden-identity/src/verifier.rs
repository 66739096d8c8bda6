//! [`Verifier`]: chain verification with a cache, for the decision path.
//!
//! Verifying a chain costs about 0.2 ms per link (mostly ML-DSA-65); an agent presents the
//! same credential with every action. So a verified chain is kept, keyed by its last link's
//! Ed25519 signature, together with the exact JSON that was presented: a later presentation
//! hits only if it is *identical* (deep equality — an edited field anywhere is a miss and is
//! verified from scratch, and fails). A hit still re-checks what can change after
//! verification: expiry against the clock, and revocations whenever the revocation list
//! changed (a cached result never survives a revocation).
//!
//! The cache is sharded (16 shards, each behind its own lock) and bounded
//! ([`Verifier::with_capacity`], default 4096 chains); a full shard is emptied.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

// foldhash, not std's SipHash: a cache hit hashed a ~90-byte key twice per decision with
// SipHash (~500 instructions, callgrind). Keys are inserted only after their chain verified
// against a trusted root, so no one can fill a shard with chosen colliding keys; the seed is
// still random per process.
use foldhash::quality::RandomState;

use serde_json::Value;

use crate::chain::Chain;
use crate::error::{ChainError, Failure};
use crate::revocation::Revocations;
use crate::verify::{NoRevocations, RevocationCheck, Verified, VerifyOptions, verify_chain};

const SHARDS: usize = 16;

struct Entry {
    presented: Arc<Value>,
    verified: Arc<Verified>,
    epoch: u64,
}

type Shard = RwLock<HashMap<Box<str>, Entry, RandomState>>;

/// Verifies presented chains, remembering the ones that verified.
pub struct Verifier {
    options: VerifyOptions,
    revocations: Option<Arc<Revocations>>,
    shards: Box<[Shard]>,
    hasher: RandomState,
    per_shard: usize,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("options", &self.options)
            .field("revocations", &self.revocations)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier with these options and (optionally) the database's revocation list.
    pub fn new(options: VerifyOptions, revocations: Option<Arc<Revocations>>) -> Self {
        Verifier {
            options,
            revocations,
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
            hasher: RandomState::default(),
            per_shard: 4096 / SHARDS,
        }
    }

    /// Keep at most about `n` verified chains.
    pub fn with_capacity(mut self, n: usize) -> Self {
        self.per_shard = n.div_ceil(SHARDS).max(1);
        self
    }

    /// The options.
    pub fn options(&self) -> &VerifyOptions {
        &self.options
    }

    /// The revocation list, when there is one.
    pub fn revocations(&self) -> Option<&Arc<Revocations>> {
        self.revocations.as_ref()
    }

    fn check(&self) -> &dyn RevocationCheck {
        match &self.revocations {
            Some(r) => r.as_ref(),
            None => &NoRevocations,
        }
    }

    fn epoch(&self) -> Result<u64, String> {
        self.revocations.as_ref().map_or(Ok(0), |r| r.epoch())
    }

    /// Verify a parsed chain without the cache.
    pub fn verify(&self, chain: &Chain, now: u64) -> Result<Verified, ChainError> {
        verify_chain(chain, &self.options, now, self.check())
    }

    /// Verify a chain as presented (its JSON value), using the cache.
    pub fn verify_presented(
        &self,
        presented: &Value,
        now: u64,
    ) -> Result<Arc<Verified>, ChainError> {
        let key = cache_key(presented);
        if let Some(key) = key {
            let shard = &self.shards[self.shard(key)];
            let hit = {
                let map = shard
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                map.get(key)
                    .filter(|e| same_json(&e.presented, presented))
                    .map(|e| (e.verified.clone(), e.epoch))
            };
            if let Some((verified, epoch)) = hit {
                return self.recheck(verified, epoch, now);
            }
        }
        let epoch = self
            .epoch()
            .map_err(|e| ChainError::new(None, Failure::RevocationsUnavailable(e)))?;
        let chain = Chain::from_value(presented)?;
        let verified = Arc::new(self.verify(&chain, now)?);
        if let Some(key) = key {
            let mut map = self.shards[self.shard(key)]
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if map.len() >= self.per_shard {
                map.clear();
            }
            map.insert(
                key.into(),
                Entry {
                    presented: Arc::new(presented.clone()),
                    verified: verified.clone(),
                    epoch,
                },
            );
        }
        Ok(verified)
    }

    /// What can change after a chain verified: the clock and the revocation list.
    fn recheck(
        &self,
        verified: Arc<Verified>,
        epoch: u64,
        now: u64,
    ) -> Result<Arc<Verified>, ChainError> {
        if now >= verified.expires_at {
            return Err(ChainError::new(
                None,
                Failure::Expired {
                    expires: verified.expires_at,
                    now,
                },
            ));
        }
        let current = self
            .epoch()
            .map_err(|e| ChainError::new(None, Failure::RevocationsUnavailable(e)))?;
        if current != epoch {
            match verified.first_revoked(self.check()) {
                Ok(None) => {}
                Ok(Some(r)) => {
                    return Err(ChainError::new(
                        None,
                        Failure::Revoked {
                            what: r.target,
                            reason: r.reason,
                        },
                    ));
                }
                Err(e) => {
                    return Err(ChainError::new(None, Failure::RevocationsUnavailable(e)));
                }
            }
        }
        Ok(verified)
    }

    /// The shard for a cache key (a signature's text): chosen by its last 16 bytes only,
    /// since the shard's map hashes the whole key again; a crafted key can only crowd one
    /// shard, whose size is bounded anyway.
    fn shard(&self, key: &str) -> usize {
        let tail = &key.as_bytes()[key.len().saturating_sub(16)..];
        (self.hasher.hash_one(tail) as usize) % SHARDS
    }
}

/// The last link's Ed25519 signature text, if the value has that shape.
/// `a == b`, comparing objects entry by entry in order first. A credential presented again is
/// the same JSON text parsed again, so its keys come in the same order; serde_json's own
/// comparison looks every key up in the other map (a SipHash each: a quarter of a cached
/// decision's instructions for a 7.8 KB hybrid chain, by callgrind). Objects whose keys
/// differ in order fall back to `==`, so the answer is always `==`'s.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return false;
            }
            for ((ka, va), (kb, vb)) in x.iter().zip(y.iter()) {
                if ka != kb {
                    // Another order (or other keys): let the unordered comparison decide.
                    return x == y;
                }
                // INVARIANT: keys are unique within an object, so the same key with
                // different values makes the objects unequal in any order.
                if !same_json(va, vb) {
                    return false;
                }
            }
            true
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b))
        }
        _ => a == b,
    }
}

fn cache_key(presented: &Value) -> Option<&str> {
    presented
        .get("links")?
        .as_array()?
        .last()?
        .get("proof")?
        .get("ed25519")?
        .as_str()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::same_json;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..3).prop_map(Value::from),
            (0u64..3).prop_map(Value::from),
            prop::sample::select(vec![0.0, 1.0, 1.5]).prop_map(Value::from),
            prop::sample::select(vec!["", "a", "b"]).prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (prop::sample::select(vec!["a", "b", "c", "d"]), inner),
                    0..4
                )
                .prop_map(|kv| Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    /// The same value with every object's keys in reverse order.
    fn reversed(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), reversed(v)))
                    .collect::<Map<_, _>>(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(reversed).collect()),
            other => other.clone(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The cache's comparison answers exactly as serde_json's `==`: on unrelated values,
        /// on a value and itself reordered, and on a value and a reordered other one.
        #[test]
        fn same_json_is_equality(a in json(), b in json()) {
            prop_assert_eq!(same_json(&a, &b), a == b);
            let r = reversed(&a);
            prop_assert!(same_json(&a, &r));
            prop_assert_eq!(same_json(&r, &b), r == b);
            prop_assert_eq!(same_json(&b, &reversed(&b)), true);
        }
    }

    #[test]
    fn a_changed_value_under_the_same_keys_is_not_the_same() {
        let a = serde_json::json!({"links": [{"proof": {"ed25519": "x"}, "n": 1}]});
        let b = serde_json::json!({"links": [{"proof": {"ed25519": "x"}, "n": 2}]});
        let c = serde_json::json!({"links": [{"n": 1, "proof": {"ed25519": "x"}}]});
        assert!(!same_json(&a, &b));
        assert!(same_json(&a, &c));
        assert!(!same_json(&b, &c));
    }
}
