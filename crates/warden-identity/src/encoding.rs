//! The byte and text encodings identities use: unpadded base64url for keys and signatures in
//! JSON, multibase base58btc (`z…`) with unsigned-varint multicodec prefixes for DIDs, hex
//! for ids, and the canonical JSON every signature covers.
//!
//! Decoding is strict (no padding, no stray bits, no whitespace), so one byte string has
//! exactly one text form and an edited character never decodes to the same bytes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Multicodec code of an Ed25519 public key (`ed25519-pub`).
pub const MULTICODEC_ED25519_PUB: u64 = 0xed;
/// Multicodec code of an ML-DSA-65 public key (`mldsa-65-pub`).
pub const MULTICODEC_MLDSA65_PUB: u64 = 0x1211;
/// Multicodec (multihash) code of BLAKE3.
pub const MULTIHASH_BLAKE3: u64 = 0x1e;

/// Unpadded base64url.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decode unpadded base64url strictly.
pub fn from_b64(text: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| format!("not unpadded base64url: {e}"))
}

/// Append `n` as an unsigned varint (multiformats).
pub fn put_varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Read an unsigned varint from the front of `bytes`: (value, bytes used). Refuses
/// non-minimal encodings and more than 9 bytes, as the multiformats spec does.
pub fn take_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut n: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(9) {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // A trailing zero byte would be a second spelling of a shorter number.
            if i > 0 && b == 0 {
                return None;
            }
            return Some((n, i + 1));
        }
    }
    None
}

/// Multibase base58btc: `z` + base58 (Bitcoin alphabet).
pub fn multibase58(bytes: &[u8]) -> String {
    format!("z{}", bs58::encode(bytes).into_string())
}

/// Decode multibase base58btc (`z…`).
pub fn from_multibase58(text: &str) -> Result<Vec<u8>, String> {
    let rest = text
        .strip_prefix('z')
        .ok_or("not multibase base58btc (must start with `z`)")?;
    bs58::decode(rest)
        .into_vec()
        .map_err(|e| format!("not base58btc: {e}"))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    warden_audit::to_hex(bytes)
}

/// The canonical JSON of a value: keys sorted by their UTF-8 bytes, no whitespace, strings
/// escaped the one way serde_json escapes them. The same encoding the audit log hashes.
pub fn canonical(value: &serde_json::Value) -> String {
    warden_audit::canonical_json(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_refuse_second_spellings() {
        for n in [0u64, 1, 0x7f, 0x80, 0xed, 0x1211, u64::from(u32::MAX)] {
            let mut v = Vec::new();
            put_varint(n, &mut v);
            assert_eq!(take_varint(&v), Some((n, v.len())), "{n}");
        }
        let mut ed = Vec::new();
        put_varint(0xed, &mut ed);
        assert_eq!(ed, [0xed, 0x01]);
        assert_eq!(take_varint(&[0x81, 0x00]), None);
        assert_eq!(take_varint(&[0x80; 10]), None);
    }

    #[test]
    fn base64_is_strict() {
        assert_eq!(from_b64(&b64(b"abc")).unwrap(), b"abc");
        assert!(from_b64("YWJj=").is_err());
        assert!(from_b64("YW Jj").is_err());
        // "YR" carries bits the final byte cannot use: a second spelling of "a".
        assert!(from_b64("YR").is_err());
    }

    #[test]
    fn multibase_needs_its_prefix() {
        assert_eq!(
            from_multibase58(&multibase58(b"\x00\x01ab")).unwrap(),
            b"\x00\x01ab"
        );
        assert!(from_multibase58("f00").is_err());
        assert!(from_multibase58("z0OIl").is_err());
    }
}
