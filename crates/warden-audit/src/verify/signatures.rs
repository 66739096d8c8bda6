//! Checkpoint signatures, each on its own: the scheme is known, the public key decodes (and,
//! when a key is pinned, is that key), the signature verifies over the checkpoint message.
//! Whether a checkpoint agrees with the chain is the chain walk's job.

use ed25519_dalek::VerifyingKey;

use crate::keys::{SCHEME_ED25519, key_id};
use crate::record::Checkpoint;

use super::report::{TamperKind, Tampering};

/// Check each checkpoint's signature on its own; return the verified ones (seq, head hash)
/// and the first signature finding.
pub(super) fn check_signatures(
    checkpoints: &[Checkpoint],
    pinned: Option<&VerifyingKey>,
    keys: &mut Vec<String>,
) -> (Vec<(u64, [u8; 32])>, Option<Tampering>) {
    let mut good = Vec::with_capacity(checkpoints.len());
    // Decoding a public key costs more than a signature check; logs rarely change keys.
    let mut cached: Option<(Vec<u8>, VerifyingKey)> = None;
    for cp in checkpoints {
        let bad = |kind, detail: String| Tampering {
            seq: cp.seq,
            kind,
            detail,
        };
        if cp.scheme != SCHEME_ED25519 {
            return (
                good,
                Some(bad(
                    TamperKind::BadSignature,
                    format!(
                        "checkpoint {} uses unknown signature scheme `{}`",
                        cp.seq, cp.scheme
                    ),
                )),
            );
        }
        let key = match &cached {
            Some((bytes, key)) if *bytes == cp.public_key => *key,
            _ => {
                let Some(key) = cp.stored_key() else {
                    return (
                        good,
                        Some(bad(
                            TamperKind::BadSignature,
                            format!("checkpoint {} has a malformed public key", cp.seq),
                        )),
                    );
                };
                cached = Some((cp.public_key.clone(), key));
                key
            }
        };
        if let Some(pinned) = pinned
            && *pinned != key
        {
            return (
                good,
                Some(bad(
                    TamperKind::UntrustedKey,
                    format!(
                        "checkpoint {} is signed by key {}, not by the pinned key {}",
                        cp.seq,
                        key_id(&key),
                        key_id(pinned)
                    ),
                )),
            );
        }
        let Some(head) = cp.signed_head(&key) else {
            return (
                good,
                Some(bad(
                    TamperKind::BadSignature,
                    format!("the signature of checkpoint {} does not verify", cp.seq),
                )),
            );
        };
        let id = key_id(&key);
        if !keys.contains(&id) {
            keys.push(id);
        }
        good.push((cp.seq, head));
    }
    (good, None)
}
