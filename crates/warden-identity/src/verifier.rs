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
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};

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

type Shard = RwLock<HashMap<Box<str>, Entry>>;

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
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
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
                    .filter(|e| *e.presented == *presented)
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

    fn shard(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }
}

/// The last link's Ed25519 signature text, if the value has that shape.
fn cache_key(presented: &Value) -> Option<&str> {
    presented
        .get("links")?
        .as_array()?
        .last()?
        .get("proof")?
        .get("ed25519")?
        .as_str()
}
