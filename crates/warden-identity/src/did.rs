//! Decentralized identifiers (DIDs) for agents, and the W3C DID documents that describe them.
//!
//! **`did:warden`** (hybrid, the default): `did:warden:` + multibase base58btc of a BLAKE3
//! multihash over the *key bundle* — the multicodec-prefixed Ed25519 public key followed by
//! the multicodec-prefixed ML-DSA-65 public key:
//!
//! ```text
//! bundle = varint(0xed) ‖ ed25519_pub[32] ‖ varint(0x1211) ‖ mldsa65_pub[1952]
//! did    = "did:warden:" ‖ "z" ‖ base58btc( varint(0x1e) ‖ varint(32) ‖ BLAKE3(bundle) )
//! ```
//!
//! The identifier names *both* keys. One naming only the Ed25519 key would let whoever forges
//! a classical signature (a future quantum computer) also swap in a post-quantum key of their
//! own; with both hashed in, neither key can be replaced without changing the DID. The keys
//! themselves travel beside the DID (inside every credential link, and in the DID document),
//! and anyone checks the binding by hashing them again — no registry, no network.
//!
//! **`did:key`** (classical only): the W3C `did:key` method with an Ed25519 key
//! (`did:key:z6Mk…`), for identities from other systems. Accepted only where the verifier's
//! configuration allows classical-only identities.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::encoding::{
    MULTICODEC_ED25519_PUB, MULTICODEC_MLDSA65_PUB, MULTIHASH_BLAKE3, from_multibase58,
    multibase58, put_varint, take_varint,
};
use crate::error::IdentityError;

/// The prefix of hybrid identities.
pub const WARDEN_METHOD: &str = "did:warden:";
/// The prefix of classical `did:key` identities.
pub const KEY_METHOD: &str = "did:key:";
/// Longest DID text accepted (a `did:warden` is 58 characters, a `did:key` 56).
const MAX_DID: usize = 100;

/// An agent's identifier.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did(Arc<str>);

/// What kind of identity a DID names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DidKind {
    /// `did:warden`: Ed25519 and ML-DSA-65, both signatures required.
    Hybrid,
    /// `did:key` with an Ed25519 key: classical only.
    Classical,
}

impl Did {
    /// The hybrid DID of these two public keys.
    pub fn hybrid(ed25519: &[u8; 32], ml_dsa_65: &[u8]) -> Did {
        let digest = blake3::hash(&key_bundle(ed25519, ml_dsa_65));
        let mut mh = Vec::with_capacity(34);
        put_varint(MULTIHASH_BLAKE3, &mut mh);
        put_varint(32, &mut mh);
        mh.extend_from_slice(digest.as_bytes());
        Did(Arc::from(format!("{WARDEN_METHOD}{}", multibase58(&mh))))
    }

    /// The classical `did:key` of an Ed25519 public key.
    pub fn classical(ed25519: &[u8; 32]) -> Did {
        Did(Arc::from(format!(
            "{KEY_METHOD}{}",
            ed25519_multikey(ed25519)
        )))
    }

    /// Parse and check a DID's syntax (not its keys: see [`crate::PublicKeys::check_did`]).
    pub fn parse(text: &str) -> Result<Did, IdentityError> {
        if text.len() > MAX_DID {
            return Err(IdentityError::did(
                text,
                format!("longer than {MAX_DID} characters"),
            ));
        }
        if let Some(rest) = text.strip_prefix(WARDEN_METHOD) {
            let mh = from_multibase58(rest).map_err(|e| IdentityError::did(text, e))?;
            let (code, n) =
                take_varint(&mh).ok_or_else(|| IdentityError::did(text, "bad multihash"))?;
            let (len, m) =
                take_varint(&mh[n..]).ok_or_else(|| IdentityError::did(text, "bad multihash"))?;
            if code != MULTIHASH_BLAKE3 || len != 32 || mh.len() != n + m + 32 {
                return Err(IdentityError::did(
                    text,
                    "a did:warden identifier is a 32-byte BLAKE3 multihash",
                ));
            }
            // One spelling only: what we would print for these bytes.
            if multibase58(&mh) != rest {
                return Err(IdentityError::did(text, "not in canonical form"));
            }
            return Ok(Did(Arc::from(text)));
        }
        if let Some(rest) = text.strip_prefix(KEY_METHOD) {
            parse_ed25519_multikey(rest).map_err(|e| IdentityError::did(text, e))?;
            return Ok(Did(Arc::from(text)));
        }
        Err(IdentityError::did(
            text,
            "expected did:warden:… (hybrid) or did:key:z6Mk… (Ed25519)",
        ))
    }

    /// The DID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Hybrid or classical.
    pub fn kind(&self) -> DidKind {
        if self.0.starts_with(WARDEN_METHOD) {
            DidKind::Hybrid
        } else {
            DidKind::Classical
        }
    }

    /// The Ed25519 key a `did:key` names (a hybrid DID names a hash, not a key).
    pub fn classical_key(&self) -> Option<[u8; 32]> {
        self.0
            .strip_prefix(KEY_METHOD)
            .and_then(|rest| parse_ed25519_multikey(rest).ok())
    }
}

impl fmt::Display for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Did {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Did({})", self.0)
    }
}

impl FromStr for Did {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Did::parse(s)
    }
}

impl serde::Serialize for Did {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Did {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Did::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl AsRef<str> for Did {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The bytes a `did:warden` hashes.
pub(crate) fn key_bundle(ed25519: &[u8; 32], ml_dsa_65: &[u8]) -> Vec<u8> {
    let mut bundle = Vec::with_capacity(4 + 32 + ml_dsa_65.len());
    put_varint(MULTICODEC_ED25519_PUB, &mut bundle);
    bundle.extend_from_slice(ed25519);
    put_varint(MULTICODEC_MLDSA65_PUB, &mut bundle);
    bundle.extend_from_slice(ml_dsa_65);
    bundle
}

/// An Ed25519 public key as a Multikey (`z6Mk…`).
pub fn ed25519_multikey(key: &[u8; 32]) -> String {
    let mut bytes = Vec::with_capacity(34);
    put_varint(MULTICODEC_ED25519_PUB, &mut bytes);
    bytes.extend_from_slice(key);
    multibase58(&bytes)
}

/// An ML-DSA-65 public key as a Multikey (multicodec `mldsa-65-pub`, base58btc).
pub fn ml_dsa_65_multikey(key: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(2 + key.len());
    put_varint(MULTICODEC_MLDSA65_PUB, &mut bytes);
    bytes.extend_from_slice(key);
    multibase58(&bytes)
}

fn parse_ed25519_multikey(text: &str) -> Result<[u8; 32], String> {
    let bytes = from_multibase58(text)?;
    match take_varint(&bytes) {
        Some((MULTICODEC_ED25519_PUB, n)) if bytes.len() == n + 32 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(&bytes[n..]);
            if ed25519_multikey(&key) != text {
                return Err("not in canonical form".into());
            }
            Ok(key)
        }
        _ => Err("not an Ed25519 multikey (multicodec 0xed + 32 bytes)".into()),
    }
}

/// The W3C DID document of an identity with these keys: one Multikey verification method
/// per key, both listed for authentication, assertion and capability delegation (a hybrid
/// identity needs both signatures for each).
pub fn did_document(did: &Did, ed25519: &[u8; 32], ml_dsa_65: Option<&[u8]>) -> Value {
    let method = |fragment: &str, key: String| {
        json!({
            "id": format!("{did}#{fragment}"),
            "type": "Multikey",
            "controller": did.as_str(),
            "publicKeyMultibase": key,
        })
    };
    let mut methods = vec![method("ed25519", ed25519_multikey(ed25519))];
    if let Some(ml) = ml_dsa_65 {
        methods.push(method("ml-dsa-65", ml_dsa_65_multikey(ml)));
    }
    let ids: Vec<Value> = methods.iter().map(|m| m["id"].clone()).collect();
    json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did.as_str(),
        "verificationMethod": methods,
        "authentication": ids,
        "assertionMethod": ids,
        "capabilityDelegation": ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_dids_bind_both_keys() {
        let ed = [7u8; 32];
        let ml = vec![9u8; 1952];
        let did = Did::hybrid(&ed, &ml);
        assert!(did.as_str().starts_with("did:warden:z"), "{did}");
        assert_eq!(Did::parse(did.as_str()).unwrap(), did);
        let mut other_ml = ml.clone();
        other_ml[1000] ^= 1;
        assert_ne!(Did::hybrid(&ed, &other_ml), did);
        assert_ne!(Did::hybrid(&[8u8; 32], &ml), did);
        assert_eq!(did.kind(), DidKind::Hybrid);
    }

    #[test]
    fn did_key_is_the_w3c_ed25519_form() {
        let did = Did::classical(&[1u8; 32]);
        assert!(did.as_str().starts_with("did:key:z6Mk"), "{did}");
        assert_eq!(did.classical_key(), Some([1u8; 32]));
        assert_eq!(Did::parse(did.as_str()).unwrap().kind(), DidKind::Classical);
    }

    #[test]
    fn bad_dids_say_why() {
        for (text, why) in [
            ("did:web:example.com", "expected did:warden"),
            ("did:warden:f00", "base58btc"),
            ("did:warden:z111", "32-byte BLAKE3"),
            ("did:key:z6Mk", "Ed25519 multikey"),
        ] {
            let e = Did::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
        assert!(Did::parse(&"did:warden:z".repeat(20)).is_err());
    }
}
