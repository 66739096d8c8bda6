//! Credentials and delegation chains: what they hold, their JSON form, and issuing them.
//!
//! A **link** is one signed grant: an issuer gives a subject some capabilities, a trust
//! ceiling and a lifetime, optionally for one audience. A **chain** is a list of links where
//! each link after the first is issued by the previous link's subject and names the previous
//! link's hash. A **credential** is simply a chain of one link, issued by a root.
//!
//! What is signed is the canonical JSON of the `claims` object *exactly as received*: every
//! field in it (including any the reader does not know, which then fails the strict parse)
//! is covered, so editing an expiry, a capability or an audience breaks the signature. The
//! issuer's public keys are inside the claims, and their hash must be the issuer's DID, so a
//! verifier needs no registry and never skips a link because it "does not know" the parent.
//!
//! ```json
//! {"format": "warden-chain/1",
//!  "links": [{"claims": {"type": "warden/link/v1", "id": "…32 hex…",
//!                        "issuer": "did:warden:z…", "issuer_keys": {"ed25519": "…", "ml_dsa_65": "…"},
//!                        "subject": "did:warden:z…", "audience": "…" (optional),
//!                        "capabilities": ["http_request"], "ceiling": 600,
//!                        "issued_at": 1764400000, "expires_at": 1764400900,
//!                        "parent": "…64 hex…" (all but the first link)},
//!             "proof": {"ed25519": "…", "ml_dsa_65": "…"}}]}
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::capability::Capabilities;
use crate::did::Did;
use crate::encoding::{b64, canonical, from_b64, hex};
use crate::error::{ChainError, Failure, IdentityError};
use crate::hybrid::{Signature, SignatureJson};
use crate::keys::{KeyPair, PublicKeys};

/// The `format` of a chain file.
pub const CHAIN_FORMAT: &str = "warden-chain/1";
/// The `type` of a link's claims.
pub const LINK_TYPE: &str = "warden/link/v1";
/// The signature domain of links.
pub const LINK_DOMAIN: &str = "warden/link/v1";
/// Largest chain accepted, in bytes of JSON.
pub const MAX_CHAIN_BYTES: usize = 256 * 1024;
/// Most links a chain file may hold (verifiers usually allow fewer; see `VerifyOptions`).
pub const MAX_LINKS: usize = 32;
/// The highest trust ceiling.
pub const MAX_CEILING: u16 = 1000;
/// Default lifetime of a credential or link: 15 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// Longest audience text.
const MAX_AUDIENCE: usize = 200;

/// The issuer's public keys as they appear in a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerKeys {
    /// Ed25519 public key, base64url.
    pub ed25519: String,
    /// ML-DSA-65 public key, base64url (absent for a classical `did:key` issuer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_dsa_65: Option<String>,
}

/// What a link says. Every field is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Always [`LINK_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// A random id (32 hex digits): what `warden identity revoke` names.
    pub id: String,
    /// Who grants.
    pub issuer: String,
    /// The issuer's public keys; they must hash to `issuer`.
    pub issuer_keys: IssuerKeys,
    /// Who receives.
    pub subject: String,
    /// The one verifier this is for (a Warden's name or DID); absent: any that trusts the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Action patterns the subject may ask for.
    pub capabilities: Vec<String>,
    /// The highest trust score the subject can have under this link (0–1000).
    pub ceiling: u16,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds; the link is invalid from this second on.
    pub expires_at: u64,
    /// Hex BLAKE3 hash of the parent link's signed bytes (every link but the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// One signed link, parsed and checked for shape (not yet verified).
#[derive(Debug, Clone)]
pub struct Link {
    claims: Claims,
    /// The canonical JSON of the claims as received: the signed message.
    signed: String,
    proof: Signature,
    hash: [u8; 32],
    // Parsed forms of the claims.
    issuer: Did,
    subject: Did,
    capabilities: Capabilities,
}

impl Link {
    /// The claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The signed bytes (canonical JSON of the claims).
    pub fn signed_bytes(&self) -> &[u8] {
        self.signed.as_bytes()
    }

    /// The signature.
    pub fn proof(&self) -> &Signature {
        &self.proof
    }

    /// BLAKE3 of the signed bytes, as the next link's `parent` names it.
    pub fn hash_hex(&self) -> String {
        hex(&self.hash)
    }

    /// The issuer.
    pub fn issuer(&self) -> &Did {
        &self.issuer
    }

    /// The subject.
    pub fn subject(&self) -> &Did {
        &self.subject
    }

    /// The capabilities granted.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The issuer's public keys, decoded (their DID is *not* checked here).
    pub fn issuer_keys(&self) -> Result<PublicKeys, String> {
        let ed = from_b64(&self.claims.issuer_keys.ed25519)
            .map_err(|e| format!("issuer_keys.ed25519: {e}"))?;
        let ml = match &self.claims.issuer_keys.ml_dsa_65 {
            None => None,
            Some(t) => Some(from_b64(t).map_err(|e| format!("issuer_keys.ml_dsa_65: {e}"))?),
        };
        PublicKeys::from_bytes(&ed, ml.as_deref())
    }

    fn to_value(&self) -> Value {
        let mut link = Map::new();
        // INVARIANT: `signed` is canonical JSON we produced or parsed; it parses back.
        link.insert(
            "claims".into(),
            serde_json::from_str(&self.signed).unwrap_or(Value::Null),
        );
        link.insert(
            "proof".into(),
            serde_json::to_value(self.proof.to_json()).unwrap_or(Value::Null),
        );
        Value::Object(link)
    }

    /// Parse one link from its JSON value (shape only; signatures are checked by
    /// [`crate::verify_chain`]).
    fn from_value(index: usize, value: &Value) -> Result<Link, ChainError> {
        let bad = |m: String| ChainError::at(index, Failure::Malformed(m));
        let obj = value
            .as_object()
            .ok_or_else(|| bad("a link must be a JSON object".into()))?;
        if let Some(k) = obj.keys().find(|k| *k != "claims" && *k != "proof") {
            return Err(bad(format!(
                "unknown field `{}` (a link has `claims` and `proof`)",
                crate::error::shorten(k)
            )));
        }
        let claims_value = obj
            .get("claims")
            .filter(|v| v.is_object())
            .ok_or_else(|| bad("`claims` must be an object".into()))?;
        let proof_value = obj
            .get("proof")
            .ok_or_else(|| bad("the link has no `proof`".into()))?;
        let claims: Claims = serde_json::from_value(claims_value.clone())
            .map_err(|e| bad(format!("claims: {e}")))?;
        let proof_json: SignatureJson =
            serde_json::from_value(proof_value.clone()).map_err(|e| bad(format!("proof: {e}")))?;
        let proof = Signature::from_json(&proof_json).map_err(bad)?;
        let signed = canonical(claims_value);
        Link::checked(index, claims, signed, proof)
    }

    fn checked(
        index: usize,
        claims: Claims,
        signed: String,
        proof: Signature,
    ) -> Result<Link, ChainError> {
        let bad = |m: String| ChainError::at(index, Failure::Malformed(m));
        if claims.kind != LINK_TYPE {
            return Err(bad(format!(
                "type `{}` is not `{LINK_TYPE}`",
                crate::error::shorten(&claims.kind)
            )));
        }
        if !is_hex(&claims.id, 32) {
            return Err(bad("`id` must be 32 lowercase hex digits".into()));
        }
        let issuer = Did::parse(&claims.issuer).map_err(|e| bad(format!("issuer: {e}")))?;
        let subject = Did::parse(&claims.subject).map_err(|e| bad(format!("subject: {e}")))?;
        let capabilities = Capabilities::parse(&claims.capabilities)
            .map_err(|e| bad(format!("capabilities: {e}")))?;
        if claims.ceiling > MAX_CEILING {
            return Err(bad(format!(
                "ceiling {} is above {MAX_CEILING}",
                claims.ceiling
            )));
        }
        if claims.expires_at <= claims.issued_at {
            return Err(bad("`expires_at` is not after `issued_at`".into()));
        }
        if let Some(a) = &claims.audience
            && (a.is_empty() || a.len() > MAX_AUDIENCE || a.chars().any(char::is_control))
        {
            return Err(bad(format!(
                "`audience` must be 1–{MAX_AUDIENCE} printable characters"
            )));
        }
        if let Some(p) = &claims.parent
            && !is_hex(p, 64)
        {
            return Err(bad("`parent` must be 64 lowercase hex digits".into()));
        }
        let hash = *blake3::hash(signed.as_bytes()).as_bytes();
        Ok(Link {
            claims,
            signed,
            proof,
            hash,
            issuer,
            subject,
            capabilities,
        })
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A delegation chain (a credential is a chain of one link).
#[derive(Debug, Clone)]
pub struct Chain {
    links: Vec<Link>,
}

/// What an issuer grants in a new link.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Who receives it.
    pub subject: Did,
    /// Action patterns (see [`crate::Capability`]).
    pub capabilities: Vec<String>,
    /// Trust ceiling, 0–1000.
    pub ceiling: u16,
    /// Lifetime from now (default 15 minutes).
    pub ttl: Duration,
    /// The one verifier it is for; `None` inherits the parent's (or: any verifier).
    pub audience: Option<String>,
}

impl Chain {
    /// The links, root first.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// The last link (every chain has one).
    pub fn last(&self) -> &Link {
        // INVARIANT: constructors refuse empty chains.
        &self.links[self.links.len() - 1]
    }

    /// Who the chain finally grants to.
    pub fn subject(&self) -> &Did {
        self.last().subject()
    }

    /// The chain's JSON form.
    pub fn to_value(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("format".into(), Value::String(CHAIN_FORMAT.into()));
        obj.insert(
            "links".into(),
            Value::Array(self.links.iter().map(Link::to_value).collect()),
        );
        Value::Object(obj)
    }

    /// The chain's JSON text, pretty-printed for files.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.to_value()).unwrap_or_default()
    }

    /// Parse a chain from JSON bytes (bounded by [`MAX_CHAIN_BYTES`]).
    pub fn from_json(bytes: &[u8]) -> Result<Chain, ChainError> {
        if bytes.len() > MAX_CHAIN_BYTES {
            return Err(ChainError::new(
                None,
                Failure::Malformed(format!("larger than {MAX_CHAIN_BYTES} bytes")),
            ));
        }
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ChainError::new(None, Failure::Malformed(format!("not JSON: {e}"))))?;
        Chain::from_value(&value)
    }

    /// Parse a chain from a JSON value: `{"format": "warden-chain/1", "links": […]}`.
    pub fn from_value(value: &Value) -> Result<Chain, ChainError> {
        let bad = |m: &str| ChainError::new(None, Failure::Malformed(m.to_string()));
        let obj = value
            .as_object()
            .ok_or_else(|| bad("a chain must be a JSON object"))?;
        if obj.get("format").and_then(Value::as_str) != Some(CHAIN_FORMAT) {
            return Err(bad("`format` must be \"warden-chain/1\""));
        }
        if obj.keys().any(|k| k != "format" && k != "links") {
            return Err(bad("a chain has only `format` and `links`"));
        }
        let items = obj
            .get("links")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("`links` must be an array"))?;
        if items.is_empty() {
            return Err(ChainError::new(None, Failure::Empty));
        }
        if items.len() > MAX_LINKS {
            return Err(ChainError::new(
                None,
                Failure::TooDeep {
                    depth: items.len(),
                    max: MAX_LINKS,
                },
            ));
        }
        let links = items
            .iter()
            .enumerate()
            .map(|(i, v)| Link::from_value(i, v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Chain { links })
    }

    /// A new credential: `issuer` (a root) grants `grant`, as a chain of one link.
    pub fn issue(issuer: &KeyPair, grant: &Grant, now: u64) -> Result<Chain, IdentityError> {
        let link = sign_link(issuer, grant, grant.audience.clone(), None, now)?;
        Ok(Chain { links: vec![link] })
    }

    /// This chain extended by one link, signed by its subject (`issuer`): the new link may
    /// only narrow — a subset of the capabilities, a ceiling no higher, an expiry no later,
    /// the same audience.
    pub fn delegate(
        &self,
        issuer: &KeyPair,
        grant: &Grant,
        now: u64,
    ) -> Result<Chain, IdentityError> {
        let parent = self.last();
        if issuer.did() != parent.subject() {
            return Err(IdentityError::Issue(format!(
                "the chain was issued to {}, but the key is {}: only the chain's subject can \
                 extend it",
                parent.subject(),
                issuer.did()
            )));
        }
        if self.links.len() >= MAX_LINKS {
            return Err(IdentityError::Issue(format!(
                "the chain already has {MAX_LINKS} links"
            )));
        }
        let child = Capabilities::parse(&grant.capabilities).map_err(IdentityError::Issue)?;
        if let Some(c) = parent.capabilities().first_uncovered(&child) {
            return Err(IdentityError::Issue(format!(
                "capability `{c}` is not inside the chain's ({})",
                parent.capabilities()
            )));
        }
        if grant.ceiling > parent.claims.ceiling {
            return Err(IdentityError::Issue(format!(
                "ceiling {} is above the chain's {}",
                grant.ceiling, parent.claims.ceiling
            )));
        }
        let expires = now.saturating_add(grant.ttl.as_secs());
        if expires > parent.claims.expires_at {
            return Err(IdentityError::Issue(format!(
                "a lifetime of {} s would end after the chain does (in {} s)",
                grant.ttl.as_secs(),
                parent.claims.expires_at.saturating_sub(now)
            )));
        }
        let audience = match (&parent.claims.audience, &grant.audience) {
            (Some(p), Some(g)) if p != g => {
                return Err(IdentityError::Issue(format!(
                    "audience `{g}` differs from the chain's `{p}`"
                )));
            }
            (Some(p), _) => Some(p.clone()),
            (None, g) => g.clone(),
        };
        let link = sign_link(issuer, grant, audience, Some(parent.hash_hex()), now)?;
        let mut links = self.links.clone();
        links.push(link);
        Ok(Chain { links })
    }
}

fn sign_link(
    issuer: &KeyPair,
    grant: &Grant,
    audience: Option<String>,
    parent: Option<String>,
    now: u64,
) -> Result<Link, IdentityError> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| IdentityError::Random(e.to_string()))?;
    let keys = issuer.public();
    let claims = Claims {
        kind: LINK_TYPE.into(),
        id: hex(&id),
        issuer: issuer.did().to_string(),
        issuer_keys: IssuerKeys {
            ed25519: b64(&keys.ed25519()),
            ml_dsa_65: keys.ml_dsa_65().map(b64),
        },
        subject: grant.subject.to_string(),
        audience,
        capabilities: grant.capabilities.clone(),
        ceiling: grant.ceiling,
        issued_at: now,
        expires_at: now.saturating_add(grant.ttl.as_secs().max(1)),
        parent,
    };
    let value = serde_json::to_value(&claims)
        .map_err(|e| IdentityError::Issue(format!("cannot encode the claims: {e}")))?;
    let signed = canonical(&value);
    let proof = issuer.sign(LINK_DOMAIN, signed.as_bytes())?;
    Link::checked(0, claims, signed, proof).map_err(|e| IdentityError::Issue(e.to_string()))
}
