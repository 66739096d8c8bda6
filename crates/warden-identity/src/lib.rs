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

/// Parse a duration written as a number and a unit: `90s`, `10m`, `2h`, `1d` (a bare number
/// is seconds). The form every identity and trust setting uses (`--ttl 10m`, `after: 1h`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        format!(
            "`{}` is not a duration (write e.g. 90s, 10m, 2h, 1d)",
            text.escape_debug()
        )
    })?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{}`: unknown unit `{}` (use s, m, h or d)",
                text.escape_debug(),
                unit.escape_debug()
            ));
        }
    };
    n.checked_mul(scale)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("`{}` is too long", text.escape_debug()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("10m").unwrap().as_secs(), 600);
        assert_eq!(super::parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(super::parse_duration("1d").unwrap().as_secs(), 86_400);
        for bad in ["", "m", "10 m", "1.5h", "10w", "-1s"] {
            assert!(super::parse_duration(bad).is_err(), "{bad}");
        }
    }
}
