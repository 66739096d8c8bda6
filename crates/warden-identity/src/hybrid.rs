//! Hybrid signatures: an Ed25519 signature and an ML-DSA-65 signature over the *same* bytes,
//! valid only when both verify.
//!
//! Why both: Ed25519 is what every system checks today and what a quantum computer will one
//! day forge; ML-DSA-65 (FIPS 204) is designed to survive that, but is young. Requiring both
//! keeps a signature safe as long as either scheme holds.
//!
//! The signed bytes are `domain ‖ 0x00 ‖ message`, where the domain names what is being
//! signed (`warden/link/v1`, `warden/handshake/…`), so a signature made for one purpose is
//! never valid for another. ML-DSA-65 signs them with the FIPS 204 context string
//! [`ML_DSA_CONTEXT`] and hedged randomness from the operating system (FIPS 204's default
//! "hedged" variant: fresh randomness per signature, still safe if the randomness is poor).
//! Ed25519 verification is strict (RFC 8032 §5.1.7 plus rejection of small-order keys and
//! non-canonical encodings), so a signature has one valid form.

use ml_dsa::MlDsa65;
use serde::{Deserialize, Serialize};

use crate::encoding::{b64, from_b64};
use crate::error::{Failure, Half};

/// The FIPS 204 context string of every ML-DSA-65 signature Warden makes.
pub const ML_DSA_CONTEXT: &[u8] = b"warden/hybrid/v1";
/// Bytes of an encoded ML-DSA-65 signature.
pub const ML_DSA_65_SIGNATURE_LEN: usize = 3309;
/// Bytes of an encoded ML-DSA-65 public key.
pub const ML_DSA_65_PUBLIC_KEY_LEN: usize = 1952;

/// The bytes both halves sign: `domain ‖ 0x00 ‖ message`.
pub fn signed_bytes(domain: &str, message: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain.len() + 1 + message.len());
    m.extend_from_slice(domain.as_bytes());
    m.push(0);
    m.extend_from_slice(message);
    m
}

/// A signature by an identity: always an Ed25519 part, and an ML-DSA-65 part for hybrid
/// identities. Which parts are *required* is decided by the signer's DID, never by what the
/// signature carries (so stripping the post-quantum part cannot downgrade a hybrid signer).
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    pub(crate) ed25519: [u8; 64],
    pub(crate) ml_dsa_65: Option<Box<[u8]>>,
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Signature {{ ed25519: {}…, ml_dsa_65: {} }}",
            &b64(&self.ed25519)[..8],
            if self.ml_dsa_65.is_some() {
                "present"
            } else {
                "absent"
            }
        )
    }
}

/// The JSON form of a [`Signature`]: `{"ed25519": b64url, "ml_dsa_65": b64url}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureJson {
    /// The Ed25519 signature (64 bytes).
    pub ed25519: String,
    /// The ML-DSA-65 signature (3309 bytes); absent for classical identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ml_dsa_65: Option<String>,
}

impl Signature {
    /// The Ed25519 part.
    pub fn ed25519(&self) -> &[u8; 64] {
        &self.ed25519
    }

    /// The ML-DSA-65 part, when present.
    pub fn ml_dsa_65(&self) -> Option<&[u8]> {
        self.ml_dsa_65.as_deref()
    }

    /// A signature from its parts (for tests that tamper with one half).
    pub fn from_parts(ed25519: [u8; 64], ml_dsa_65: Option<Vec<u8>>) -> Self {
        Signature {
            ed25519,
            ml_dsa_65: ml_dsa_65.map(Vec::into_boxed_slice),
        }
    }

    /// The JSON form.
    pub fn to_json(&self) -> SignatureJson {
        SignatureJson {
            ed25519: b64(&self.ed25519),
            ml_dsa_65: self.ml_dsa_65.as_deref().map(b64),
        }
    }

    /// From the JSON form, checking lengths (not validity).
    pub fn from_json(json: &SignatureJson) -> Result<Self, String> {
        let ed = from_b64(&json.ed25519).map_err(|e| format!("proof.ed25519: {e}"))?;
        let ed25519: [u8; 64] = ed
            .try_into()
            .map_err(|v: Vec<u8>| format!("proof.ed25519: {} bytes, expected 64", v.len()))?;
        let ml_dsa_65 = match &json.ml_dsa_65 {
            None => None,
            Some(text) => {
                let bytes = from_b64(text).map_err(|e| format!("proof.ml_dsa_65: {e}"))?;
                if bytes.len() != ML_DSA_65_SIGNATURE_LEN {
                    return Err(format!(
                        "proof.ml_dsa_65: {} bytes, expected {ML_DSA_65_SIGNATURE_LEN}",
                        bytes.len()
                    ));
                }
                Some(bytes.into_boxed_slice())
            }
        };
        Ok(Signature { ed25519, ml_dsa_65 })
    }
}

/// Check an Ed25519 signature strictly.
pub(crate) fn verify_ed25519(key: &ed25519_dalek::VerifyingKey, m: &[u8], sig: &[u8; 64]) -> bool {
    let sig = ed25519_dalek::Signature::from_bytes(sig);
    key.verify_strict(m, &sig).is_ok()
}

/// Check an ML-DSA-65 signature under Warden's context string.
pub(crate) fn verify_ml_dsa(key: &ml_dsa::VerifyingKey<MlDsa65>, m: &[u8], sig: &[u8]) -> bool {
    match ml_dsa::Signature::<MlDsa65>::try_from(sig) {
        Ok(sig) => key.verify_with_context(m, ML_DSA_CONTEXT, &sig),
        Err(_) => false,
    }
}

/// The failure for a half that did not verify.
pub(crate) fn bad(half: Half, did: &str) -> Failure {
    Failure::BadSignature {
        half,
        did: did.to_string(),
    }
}
