//! Costs of identities: hybrid sign and verify (Ed25519 + ML-DSA-65, keys already decoded),
//! each half alone, verifying a credential and a three-link chain from scratch, and a
//! cached check of an already verified chain (what the decision path pays per action).
//!
//! Run: `cargo bench -p warden-identity --bench identity`

use std::time::Duration;

use divan::{Bencher, black_box};
use warden_identity::{
    Chain, Grant, KeyPair, NoRevocations, Verifier, VerifyOptions, unix_now, verify_chain,
};

fn main() {
    divan::main();
}

const MESSAGE: &[u8] =
    br#"{"capabilities":["http_request"],"ceiling":600,"expires_at":1764400900}"#;

fn grant(to: &KeyPair, ceiling: u16) -> Grant {
    Grant {
        subject: to.did().clone(),
        capabilities: vec!["http_request".into(), "mcp.*".into()],
        ceiling,
        ttl: Duration::from_secs(3600),
        audience: None,
    }
}

/// A chain of `links` links from a fresh root, and the options trusting that root.
fn chain(links: usize) -> (Chain, VerifyOptions) {
    let now = unix_now();
    let root = KeyPair::generate().unwrap();
    let mut holder = KeyPair::generate().unwrap();
    let mut chain = Chain::issue(&root, &grant(&holder, 900), now).unwrap();
    for i in 1..links {
        let next = KeyPair::generate().unwrap();
        let mut g = grant(&next, 800 - i as u16 * 100);
        g.ttl = Duration::from_secs(3000);
        chain = chain.delegate(&holder, &g, now).unwrap();
        holder = next;
    }
    (chain, VerifyOptions::trusting([root.did().clone()]))
}

#[divan::bench]
fn hybrid_sign(bencher: Bencher) {
    let key = KeyPair::generate().unwrap();
    bencher.bench(|| black_box(key.sign("bench", black_box(MESSAGE)).unwrap()));
}

#[divan::bench]
fn hybrid_verify(bencher: Bencher) {
    let key = KeyPair::generate().unwrap();
    let sig = key.sign("bench", MESSAGE).unwrap();
    let public = key.public().clone();
    bencher.bench(|| {
        public
            .verify("bench", black_box(MESSAGE), black_box(&sig))
            .unwrap()
    });
}

#[divan::bench]
fn ed25519_half_verify(bencher: Bencher) {
    let key = KeyPair::generate_classical().unwrap();
    let sig = key.sign("bench", MESSAGE).unwrap();
    let public = key.public().clone();
    bencher.bench(|| {
        public
            .verify("bench", black_box(MESSAGE), black_box(&sig))
            .unwrap()
    });
}

/// Verify a credential (one link) from scratch: parse keys (decoded keys are cached by the
/// library, as in a running process), check, verify the hybrid signature.
#[divan::bench(args = [1, 3])]
fn chain_verify_uncached(bencher: Bencher, links: usize) {
    let (chain, options) = chain(links);
    let now = unix_now();
    bencher.bench(|| black_box(verify_chain(&chain, &options, now, &NoRevocations).unwrap()));
}

/// The decision path's check for an agent whose chain verified before: find the entry,
/// compare the presented JSON with the verified one, check expiry and the revocation epoch.
#[divan::bench(args = [1, 3])]
fn chain_verify_cached(bencher: Bencher, links: usize) {
    let (chain, options) = chain(links);
    let presented = chain.to_value();
    let verifier = Verifier::new(options, None);
    let now = unix_now();
    verifier.verify_presented(&presented, now).unwrap();
    bencher.bench(|| {
        black_box(
            verifier
                .verify_presented(black_box(&presented), now)
                .unwrap(),
        )
    });
}
