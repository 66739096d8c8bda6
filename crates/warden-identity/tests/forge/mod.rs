//! Tools of the attacker: build links by hand, with any claims and any key, so a test can
//! present exactly the chain a hostile agent would.

#![allow(dead_code)]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use warden_identity::{Chain, Grant, KeyPair, LINK_DOMAIN, b64, canonical, unix_now};

/// A few identities made once per test binary (key generation is not what is tested).
pub fn keys() -> &'static [KeyPair] {
    static KEYS: OnceLock<Vec<KeyPair>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..6u8)
            .map(|i| KeyPair::from_seeds(&[i + 1; 32], Some(&[i + 101; 32])))
            .collect()
    })
}

pub fn grant(to: &KeyPair, caps: &[&str], ceiling: u16, ttl_secs: u64) -> Grant {
    Grant {
        subject: to.did().clone(),
        capabilities: caps.iter().map(ToString::to_string).collect(),
        ceiling,
        ttl: Duration::from_secs(ttl_secs),
        audience: None,
    }
}

/// Claims as a hostile issuer would write them: `signer` holds the keys put into the link.
pub fn claims(
    signer: &KeyPair,
    issuer_did: &str,
    subject: &KeyPair,
    caps: &[&str],
    ceiling: u16,
    parent: Option<String>,
) -> Value {
    // One clock reading per test binary: links made a second apart (signing is slow on a
    // busy machine) would otherwise outlive their parents by that second and fail for it.
    static NOW: OnceLock<u64> = OnceLock::new();
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let now = *NOW.get_or_init(unix_now);
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut c = json!({
        "type": "warden/link/v1",
        "id": format!("{:032x}", (u128::from(now) << 32) + (u128::from(n) << 16) + u128::from(ceiling)),
        "issuer": issuer_did,
        "issuer_keys": {
            "ed25519": b64(&signer.public().ed25519()),
            "ml_dsa_65": b64(signer.public().ml_dsa_65().unwrap()),
        },
        "subject": subject.did().as_str(),
        "capabilities": caps,
        "ceiling": ceiling,
        "issued_at": now - 5,
        "expires_at": now + 600,
    });
    if let Some(p) = parent {
        c["parent"] = Value::String(p);
    }
    c
}

/// A link: `claims` signed by `key`.
pub fn sign(claims: Value, key: &KeyPair) -> Value {
    let sig = key
        .sign(LINK_DOMAIN, canonical(&claims).as_bytes())
        .unwrap();
    json!({"claims": claims, "proof": serde_json::to_value(sig.to_json()).unwrap()})
}

/// A chain value from link values.
pub fn chain(links: Vec<Value>) -> Value {
    json!({"format": "warden-chain/1", "links": links})
}

/// The hash the next link must name as its parent.
pub fn parent_hash(link: &Value) -> String {
    let c = Chain::from_value(&chain(vec![link.clone()])).unwrap();
    c.last().hash_hex()
}
