//! Verifying a chain: every link, every check, the cheap ones first.
//!
//! Pass one (cheap, no signatures) walks the whole chain: issuer keys hash to the issuer's
//! DID, the root is trusted, each link is issued by its parent's subject and names its
//! parent's hash, capabilities only narrow, ceilings only fall, expiries only come sooner,
//! the audience never widens, nothing is expired, too long-lived or revoked. Pass two checks
//! every link's signature — every one, whether or not the verifier has seen the issuer
//! before. So a forged chain costs an attacker's victim at most one hash per link unless its
//! structure is already right.
//!
//! The result, [`Verified`], holds what the chain finally grants: the subject, the
//! capabilities of the last link, and the **effective ceiling — the minimum along the chain**.

use std::collections::HashSet;
use std::sync::Arc;

use crate::capability::Capabilities;
use crate::chain::{Chain, LINK_DOMAIN};
use crate::did::{Did, DidKind};
use crate::error::{ChainError, Failure};

/// Which roots a verifier accepts.
#[derive(Debug, Clone)]
pub enum Roots {
    /// Only chains whose first link is issued by one of these. An empty set accepts nothing.
    Only(HashSet<Did>),
    /// Any root: for *inspecting* a chain (`warden verify-chain` without `--root`), never for
    /// deciding — the result says the root was not pinned.
    Unpinned,
}

/// How a chain is verified.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Trusted roots.
    pub roots: Roots,
    /// The names this verifier answers to; a chain with an audience must name one of them.
    pub audiences: Vec<String>,
    /// Accept classical-only (`did:key`) identities. Off by default.
    pub allow_classical: bool,
    /// Most links. Default 8.
    pub max_depth: usize,
    /// Longest lifetime (expires_at − issued_at) of any link, seconds. Default 86 400 (a day).
    pub max_lifetime: u64,
    /// How far in the future `issued_at` may be (clocks differ), seconds. Default 60.
    pub clock_skew: u64,
}

impl VerifyOptions {
    /// Only chains rooted at `roots`, with the defaults above.
    pub fn trusting(roots: impl IntoIterator<Item = Did>) -> Self {
        VerifyOptions {
            roots: Roots::Only(roots.into_iter().collect()),
            audiences: Vec::new(),
            allow_classical: false,
            max_depth: 8,
            max_lifetime: 86_400,
            clock_skew: 60,
        }
    }

    /// Any root (inspection only), with the defaults above.
    pub fn unpinned() -> Self {
        VerifyOptions {
            roots: Roots::Unpinned,
            ..VerifyOptions::trusting([])
        }
    }
}

/// A revocation on record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The credential id or DID.
    pub target: String,
    /// The operator's reason.
    pub reason: Option<String>,
    /// Unix seconds.
    pub at: u64,
}

/// Where revocations are looked up.
pub trait RevocationCheck {
    /// The revocation of a credential id or DID, if there is one. An `Err` means the list
    /// could not be read, and the chain is refused.
    fn revoked(&self, target: &str) -> Result<Option<Revocation>, String>;
}

/// No revocations at all (a chain checked without a database).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocations;

impl RevocationCheck for NoRevocations {
    fn revoked(&self, _: &str) -> Result<Option<Revocation>, String> {
        Ok(None)
    }
}

/// What a verified chain grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Who the chain grants to.
    pub subject: Did,
    /// Who issued the first link.
    pub root: Did,
    /// Whether the root was checked against trusted roots.
    pub root_pinned: bool,
    /// The last link's capabilities (inside every earlier link's).
    pub capabilities: Capabilities,
    /// The minimum ceiling along the chain.
    pub ceiling: u16,
    /// The earliest expiry along the chain (unix seconds).
    pub expires_at: u64,
    /// The chain's audience, if it has one.
    pub audience: Option<String>,
    /// Every link's id, root first (what revocation names).
    pub link_ids: Arc<[String]>,
    /// Every identity in the chain, root first, then each subject.
    pub identities: Arc<[Did]>,
    /// The last link's hash (hex): names this exact chain.
    pub hash: String,
    /// [`Verified::summary`], built on first use.
    summary: Summary,
}

/// A value computed once from the other fields (so it plays no part in equality).
#[derive(Debug, Clone, Default)]
struct Summary(std::sync::OnceLock<serde_json::Value>);

impl PartialEq for Summary {
    fn eq(&self, _: &Summary) -> bool {
        true
    }
}

impl Eq for Summary {}

impl Verified {
    /// Who this chain makes the agent, as a JSON object: `ceiling`, `chain` (the last
    /// link's hash), `depth`, `did` (the subject), `expires_at` and `root`, keys in that (sorted)
    /// order. Warden writes it into every decision as `context.identity`; a cached chain
    /// builds it once, and each decision clones it (no key hashed again).
    pub fn summary(&self) -> &serde_json::Value {
        self.summary.0.get_or_init(|| {
            let mut m = serde_json::Map::with_capacity(6);
            m.insert("ceiling".into(), self.ceiling.into());
            m.insert("chain".into(), self.hash.as_str().into());
            m.insert("depth".into(), self.depth().into());
            m.insert("did".into(), self.subject.as_str().into());
            m.insert("expires_at".into(), self.expires_at.into());
            m.insert("root".into(), self.root.as_str().into());
            serde_json::Value::Object(m)
        })
    }

    /// Links in the chain.
    pub fn depth(&self) -> usize {
        self.link_ids.len()
    }

    /// Whether the chain lets its subject ask for `action`.
    pub fn allows(&self, action: &str) -> bool {
        self.capabilities.allows(action)
    }

    /// The first revoked id or identity in the chain.
    pub fn first_revoked(
        &self,
        revocations: &dyn RevocationCheck,
    ) -> Result<Option<Revocation>, String> {
        for target in self
            .link_ids
            .iter()
            .map(String::as_str)
            .chain(self.identities.iter().map(Did::as_str))
        {
            if let Some(r) = revocations.revoked(target)? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }
}

/// Verify `chain` at time `now` (unix seconds).
pub fn verify_chain(
    chain: &Chain,
    options: &VerifyOptions,
    now: u64,
    revocations: &dyn RevocationCheck,
) -> Result<Verified, ChainError> {
    let links = chain.links();
    if links.len() > options.max_depth {
        return Err(ChainError::new(
            None,
            Failure::TooDeep {
                depth: links.len(),
                max: options.max_depth,
            },
        ));
    }
    let mut keys = Vec::with_capacity(links.len());
    let mut ceiling = u16::MAX;
    let mut expires_at = u64::MAX;
    // Pass one: structure, authority, time, revocation.
    for (i, link) in links.iter().enumerate() {
        let at = |f: Failure| ChainError::at(i, f);
        let c = link.claims();
        for did in [link.issuer(), link.subject()] {
            if did.kind() == DidKind::Classical && !options.allow_classical {
                return Err(at(Failure::ClassicalNotAllowed {
                    did: did.to_string(),
                }));
            }
        }
        let pk = link.issuer_keys().map_err(|e| at(Failure::Malformed(e)))?;
        if !pk.is_of(link.issuer()) {
            return Err(at(Failure::KeysNotTheIssuers {
                did: link.issuer().to_string(),
            }));
        }
        keys.push(pk);
        if i == 0 {
            if c.parent.is_some() {
                return Err(at(Failure::Malformed(
                    "the first link names a parent: it is not the root of this chain".into(),
                )));
            }
            match &options.roots {
                Roots::Unpinned => {}
                Roots::Only(set) if set.is_empty() => {
                    return Err(ChainError::new(None, Failure::NoRoots));
                }
                Roots::Only(set) => {
                    if !set.contains(link.issuer()) {
                        return Err(at(Failure::UntrustedRoot {
                            did: link.issuer().to_string(),
                        }));
                    }
                }
            }
        } else {
            let parent = &links[i - 1];
            if link.issuer() != parent.subject() {
                return Err(at(Failure::NotTheParent {
                    issuer: link.issuer().to_string(),
                    parent_subject: parent.subject().to_string(),
                }));
            }
            let expected = parent.hash_hex();
            if c.parent.as_deref() != Some(expected.as_str()) {
                return Err(at(Failure::WrongParentHash {
                    found: c.parent.clone().unwrap_or_else(|| "none".into()),
                    expected,
                }));
            }
            if let Some(w) = parent.capabilities().first_uncovered(link.capabilities()) {
                return Err(at(Failure::Widened {
                    capability: w.to_string(),
                    parent: parent.capabilities().to_string(),
                }));
            }
            let pc = parent.claims();
            if c.ceiling > pc.ceiling {
                return Err(at(Failure::CeilingRaised {
                    ceiling: c.ceiling,
                    parent: pc.ceiling,
                }));
            }
            if c.expires_at > pc.expires_at {
                return Err(at(Failure::OutlivesParent {
                    expires: c.expires_at,
                    parent: pc.expires_at,
                }));
            }
            if let Some(pa) = &pc.audience
                && c.audience.as_ref() != Some(pa)
            {
                return Err(at(Failure::AudienceWidened {
                    found: c.audience.clone().unwrap_or_else(|| "(any)".into()),
                    parent: pa.clone(),
                }));
            }
        }
        if c.issued_at > now.saturating_add(options.clock_skew) {
            return Err(at(Failure::NotYetValid {
                issued: c.issued_at,
                now,
            }));
        }
        if now >= c.expires_at {
            return Err(at(Failure::Expired {
                expires: c.expires_at,
                now,
            }));
        }
        let lifetime = c.expires_at - c.issued_at;
        if lifetime > options.max_lifetime {
            return Err(at(Failure::TooLong {
                lifetime,
                max: options.max_lifetime,
            }));
        }
        for target in [c.id.as_str(), c.issuer.as_str(), c.subject.as_str()] {
            match revocations.revoked(target) {
                Ok(None) => {}
                Ok(Some(r)) => {
                    return Err(at(Failure::Revoked {
                        what: r.target,
                        reason: r.reason,
                    }));
                }
                Err(e) => return Err(at(Failure::RevocationsUnavailable(e))),
            }
        }
        ceiling = ceiling.min(c.ceiling);
        expires_at = expires_at.min(c.expires_at);
    }
    let first = &links[0];
    // The chain's audience: the first one set along it. Issuing copies it into every later
    // link, so a link that drops or changes it was not made by `delegate`; and a child that
    // adds one binds the rest of the chain to it (checked here, not only on the first link).
    let mut audience: Option<&String> = None;
    for (i, link) in links.iter().enumerate() {
        match (audience, &link.claims().audience) {
            (None, Some(a)) => audience = Some(a),
            (Some(p), Some(a)) if p == a => {}
            (Some(p), found) => {
                return Err(ChainError::at(
                    i,
                    Failure::Malformed(format!(
                        "the link's audience ({}) differs from the chain's `{p}`",
                        found.as_deref().map_or("none".into(), |a| format!("`{a}`"))
                    )),
                ));
            }
            (None, None) => {}
        }
    }
    if let Some(aud) = audience
        && !options.audiences.iter().any(|a| a == aud)
    {
        return Err(ChainError::new(
            None,
            Failure::WrongAudience {
                found: aud.clone(),
                expected: if options.audiences.is_empty() {
                    "no audience configured".into()
                } else {
                    options.audiences.join(", ")
                },
            },
        ));
    }
    // Pass two: every signature.
    for (i, (link, pk)) in links.iter().zip(&keys).enumerate() {
        pk.verify(LINK_DOMAIN, link.signed_bytes(), link.proof())
            .map_err(|f| ChainError::at(i, f))?;
    }
    let last = chain.last();
    let mut identities: Vec<Did> = vec![first.issuer().clone()];
    identities.extend(links.iter().map(|l| l.subject().clone()));
    Ok(Verified {
        subject: last.subject().clone(),
        root: first.issuer().clone(),
        root_pinned: matches!(options.roots, Roots::Only(_)),
        capabilities: last.capabilities().clone(),
        ceiling,
        expires_at,
        audience: audience.cloned(),
        link_ids: links.iter().map(|l| l.claims().id.clone()).collect(),
        identities: identities.into(),
        hash: last.hash_hex(),
        summary: Summary::default(),
    })
}
