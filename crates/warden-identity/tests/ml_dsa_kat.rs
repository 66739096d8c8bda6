//! ML-DSA-65 against the standard's own answers, and against an independent implementation.
//!
//! 1. NIST ACVP known-answer vectors (FIPS 204 keyGen, sigGen and sigVer, internal
//!    projection), as shipped in the PyPI source package of `dilithium-py` 1.5.1 and put in
//!    `tests/peers/acvp` (pinned by hash) by `bash scripts/test-peers.sh`: the `ml-dsa` crate
//!    Warden signs with must reproduce every ML-DSA-65 answer.
//! 2. OpenSSL's ML-DSA-65 through Python's `cryptography` package (installed by the same
//!    script): it must accept Warden's hybrid signatures' ML-DSA half (with Warden's context
//!    string over Warden's signed bytes), and Warden must accept its signatures.

#![allow(deprecated)] // ExpandedSigningKey::from_expanded: the ACVP files give expanded keys.

use std::path::{Path, PathBuf};
use std::process::Command;

use ml_dsa::{B32, ExpandedSigningKey, MlDsa65, Signature, SigningKey, VerifyingKey};
use serde_json::Value;
use warden_identity::{KeyPair, ML_DSA_CONTEXT, PublicKeys, signed_bytes};

fn acvp(kind: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/peers/acvp")
        .join(format!("ML-DSA-{kind}-FIPS204/internalProjection.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nthe NIST ACVP vectors are installed by `bash scripts/test-peers.sh`",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn groups_65(doc: &Value) -> Vec<&Value> {
    let groups: Vec<&Value> = doc["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["parameterSet"] == "ML-DSA-65")
        .collect();
    assert!(!groups.is_empty(), "no ML-DSA-65 group");
    groups
}

#[test]
fn acvp_key_generation() {
    let doc = acvp("keyGen");
    let mut n = 0;
    for g in groups_65(&doc) {
        for t in g["tests"].as_array().unwrap() {
            let seed = B32::try_from(unhex(t["seed"].as_str().unwrap()).as_slice()).unwrap();
            let sk = SigningKey::<MlDsa65>::from_seed(&seed);
            let vk = ml_dsa::signature::Keypair::verifying_key(&sk);
            assert_eq!(
                vk.encode().as_slice(),
                unhex(t["pk"].as_str().unwrap()),
                "keyGen tcId {}: public key",
                t["tcId"]
            );
            assert_eq!(
                sk.expanded_key().to_expanded().as_slice(),
                unhex(t["sk"].as_str().unwrap()),
                "keyGen tcId {}: secret key",
                t["tcId"]
            );
            n += 1;
        }
    }
    assert_eq!(n, 25);
}

#[test]
fn acvp_signature_generation() {
    let doc = acvp("sigGen");
    let mut n = 0;
    for g in groups_65(&doc) {
        let deterministic = g["deterministic"].as_bool().unwrap();
        for t in g["tests"].as_array().unwrap() {
            let sk_bytes = unhex(t["sk"].as_str().unwrap());
            let sk = ExpandedSigningKey::<MlDsa65>::from_expanded(
                &sk_bytes.as_slice().try_into().unwrap(),
            );
            let rnd = if deterministic {
                B32::default()
            } else {
                B32::try_from(unhex(t["rnd"].as_str().unwrap()).as_slice()).unwrap()
            };
            let msg = unhex(t["message"].as_str().unwrap());
            let sig = sk.sign_internal(&[&msg], &rnd);
            assert_eq!(
                sig.encode().as_slice(),
                unhex(t["signature"].as_str().unwrap()),
                "sigGen tcId {}",
                t["tcId"]
            );
            n += 1;
        }
    }
    assert_eq!(n, 20);
}

#[test]
fn acvp_signature_verification() {
    let doc = acvp("sigVer");
    let (mut accepted, mut rejected) = (0, 0);
    for g in groups_65(&doc) {
        let pk = unhex(g["pk"].as_str().unwrap());
        let vk = VerifyingKey::<MlDsa65>::decode(&pk.as_slice().try_into().unwrap());
        for t in g["tests"].as_array().unwrap() {
            let msg = unhex(t["message"].as_str().unwrap());
            let sig = unhex(t["signature"].as_str().unwrap());
            let ok = Signature::<MlDsa65>::try_from(sig.as_slice())
                .is_ok_and(|s| vk.verify_internal(&msg, &s));
            assert_eq!(
                ok,
                t["testPassed"].as_bool().unwrap(),
                "sigVer tcId {} ({})",
                t["tcId"],
                t["reason"]
            );
            if ok {
                accepted += 1;
            } else {
                rejected += 1;
            }
        }
    }
    assert!(accepted > 0 && rejected > 0, "{accepted} / {rejected}");
}

/// Run Python with `cryptography`'s ML-DSA; the script prints one line.
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed (install with `bash scripts/test-peers.sh`):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

const PY_VERIFY: &str = r#"
import sys
from cryptography.hazmat.primitives.asymmetric import mldsa
pk, msg, sig, ctx = (open(p, 'rb').read() for p in sys.argv[1:5])
key = mldsa.MLDSA65PublicKey.from_public_bytes(pk)
try:
    key.verify(sig, msg, ctx)
    print('valid')
except Exception as e:
    print('invalid', type(e).__name__)
"#;

const PY_SIGN: &str = r#"
import sys
from cryptography.hazmat.primitives.asymmetric import mldsa
seed, msg, ctx = (open(p, 'rb').read() for p in sys.argv[1:4])
key = mldsa.MLDSA65PrivateKey.from_seed_bytes(seed)
open(sys.argv[4], 'wb').write(key.sign(msg, ctx))
open(sys.argv[5], 'wb').write(key.public_key().public_bytes_raw())
print('signed')
"#;

#[test]
fn openssl_accepts_wardens_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let message = br#"{"capabilities":["http_request"],"ceiling":600}"#;
    let sig = key.sign("warden/link/v1", message).unwrap();
    let m = signed_bytes("warden/link/v1", message);
    let pk = write(dir.path(), "pk", key.public().ml_dsa_65().unwrap());
    let msg = write(dir.path(), "msg", &m);
    let ctx = write(dir.path(), "ctx", ML_DSA_CONTEXT);
    let good = write(dir.path(), "sig", sig.ml_dsa_65().unwrap());
    let p = |s: &Path| s.to_str().unwrap().to_string();
    assert_eq!(
        python(PY_VERIFY, &[&p(&pk), &p(&msg), &p(&good), &p(&ctx)]),
        "valid"
    );
    // And it is a real check: one flipped bit, or another message, is refused.
    let mut bad = sig.ml_dsa_65().unwrap().to_vec();
    bad[40] ^= 0x01;
    let bad = write(dir.path(), "bad", &bad);
    assert!(python(PY_VERIFY, &[&p(&pk), &p(&msg), &p(&bad), &p(&ctx)]).starts_with("invalid"));
    let other = write(dir.path(), "other", &signed_bytes("warden/link/v1", b"{}"));
    assert!(python(PY_VERIFY, &[&p(&pk), &p(&other), &p(&good), &p(&ctx)]).starts_with("invalid"));
}

#[test]
fn warden_accepts_openssls_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let seed = [0x5au8; 32];
    let m = signed_bytes("warden/handshake/v1", b"both nonces and both DIDs");
    let p = |s: &Path| s.to_str().unwrap().to_string();
    let seed_f = write(dir.path(), "seed", &seed);
    let msg = write(dir.path(), "msg", &m);
    let ctx = write(dir.path(), "ctx", ML_DSA_CONTEXT);
    let (sig_f, pk_f) = (dir.path().join("sig"), dir.path().join("pk"));
    assert_eq!(
        python(
            PY_SIGN,
            &[&p(&seed_f), &p(&msg), &p(&ctx), &p(&sig_f), &p(&pk_f)]
        ),
        "signed"
    );
    let py_sig = std::fs::read(&sig_f).unwrap();
    let py_pk = std::fs::read(&pk_f).unwrap();
    // The same seed gives the same key in both implementations.
    let ours = KeyPair::from_seeds(&[1u8; 32], Some(&seed));
    assert_eq!(ours.public().ml_dsa_65().unwrap(), py_pk.as_slice());
    // Warden verifies OpenSSL's ML-DSA half (paired with its own Ed25519 half, as a hybrid
    // signature needs both).
    let ed_only = ours
        .sign("warden/handshake/v1", b"both nonces and both DIDs")
        .unwrap();
    let hybrid = warden_identity::Signature::from_parts(*ed_only.ed25519(), Some(py_sig.clone()));
    let public = PublicKeys::from_bytes(&ours.public().ed25519(), Some(&py_pk)).unwrap();
    public
        .verify("warden/handshake/v1", b"both nonces and both DIDs", &hybrid)
        .unwrap();
    assert!(
        public
            .verify("warden/handshake/v1", b"another message", &hybrid)
            .is_err()
    );
}
