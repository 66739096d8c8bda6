#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod capability;
mod chain;
mod did;
mod encoding;
mod error;
mod hybrid;
mod keys;
mod revocation;
mod verifier;
mod verify;

pub use capability::{Capabilities, Capability, MAX_CAPABILITIES, MAX_CAPABILITY_LEN};
pub use chain::{
    CHAIN_FORMAT, Chain, Claims, DEFAULT_TTL, Grant, IssuerKeys, LINK_DOMAIN, LINK_TYPE, Link,
    MAX_CEILING, MAX_CHAIN_BYTES, MAX_LINKS,
};
pub use did::{
    Did, DidKind, KEY_METHOD, WARDEN_METHOD, did_document, ed25519_multikey, ml_dsa_65_multikey,
};
pub use encoding::{b64, canonical, from_b64};
pub use error::{ChainError, Failure, Half, IdentityError};
pub use hybrid::{
    ML_DSA_65_PUBLIC_KEY_LEN, ML_DSA_65_SIGNATURE_LEN, ML_DSA_CONTEXT, Signature, SignatureJson,
    signed_bytes,
};
pub use keys::{KEY_FILE_FORMAT, KeyPair, PublicKeys};
pub use revocation::Revocations;
pub use verifier::Verifier;
pub use verify::{
    NoRevocations, Revocation, RevocationCheck, Roots, Verified, VerifyOptions, verify_chain,
};

/// Seconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
