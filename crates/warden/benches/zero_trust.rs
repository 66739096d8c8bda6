//! What identity and trust add to a decision (`Warden::decide`, the brief's allow path):
//!
//! - `plain` — no identity configured, no audit log;
//! - `verified` — the action carries a credential that verified before (the cached path:
//!   find, compare, re-check expiry and revocation epoch, rewrite the action as the DID);
//! - `plain_audited` / `verified_trusted` — both with a buffered audit log, the second also
//!   reading and moving the agent's trust score (in memory, committed by the writer thread).
//!
//! And the issue's other two floors, so one run gives every number: `hybrid_sign` /
//! `hybrid_verify` (Ed25519 + ML-DSA-65 over a short message, keys decoded), and
//! `handshake_loopback` — a whole handshake (`Initiator::run`: two HTTP round trips, four
//! hybrid signatures made or checked, both credentials verified, the nonce and the session
//! stored, the audit record written) against a real `warden_server::DecisionServer` on
//! 127.0.0.1, one handshake per sample so the median is the p50.
//!
//! Run: `cargo bench -p warden --bench zero_trust`

use std::sync::Arc;
use std::time::Duration;

use divan::{Bencher, black_box};
use warden::{Action, AuditConfig, PolicySet, Warden};
use warden_identity::{Chain, Grant, KeyPair, Verifier, VerifyOptions, unix_now};
use warden_trust::handshake::{Initiator, NonceStore, Responder};

fn main() {
    divan::main();
}

const BRIEF: &str = r#"rules:
  - action: "execute_code"
    allow: false
  - action: "http_request"
    allow: true
    domains: ["api.github.com"]
    methods: ["GET"]
"#;

fn get() -> Action {
    Action::new("http_request")
        .with_agent("agent-1")
        .with_arg("url", "https://api.github.com/repos/x/y")
        .with_arg("method", "GET")
}

struct Fixture {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    root: KeyPair,
    credential: serde_json::Value,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let root = KeyPair::generate().unwrap();
    let agent = KeyPair::generate().unwrap();
    let credential = Chain::issue(
        &root,
        &Grant {
            subject: agent.did().clone(),
            capabilities: vec!["http_request".into()],
            ceiling: 900,
            ttl: Duration::from_secs(3600),
            audience: None,
        },
        unix_now(),
    )
    .unwrap()
    .to_value();
    Fixture {
        _dir: dir,
        db,
        root,
        credential,
    }
}

fn build(f: &Fixture, identity: bool, audit: bool) -> Warden {
    let mut b = Warden::builder().policy_set(PolicySet::from_yaml("brief.yaml", BRIEF).unwrap());
    if audit {
        let mut c = AuditConfig::default();
        c.mode = warden_audit::Mode::Buffered;
        b = b.audit_log(&f.db, c);
    }
    if identity {
        let mut z = warden_trust::Config::default();
        z.identity.roots = vec![f.root.did().clone()];
        z.trust.max_gain = 1000;
        b = b.zero_trust(z);
    }
    b.build().unwrap()
}

#[divan::bench]
fn plain(bencher: Bencher) {
    let f = fixture();
    let w = build(&f, false, false);
    let a = get();
    bencher.bench(|| black_box(w.decide(black_box(&a))));
}

#[divan::bench]
fn verified(bencher: Bencher) {
    let f = fixture();
    let w = build(&f, true, false);
    let a = get().with_context("credential", f.credential.clone());
    assert_eq!(w.decide(&a).verdict, warden::Verdict::Allow);
    bencher.bench(|| black_box(w.decide(black_box(&a))));
}

#[divan::bench]
fn plain_audited(bencher: Bencher) {
    let f = fixture();
    let w = build(&f, false, true);
    let a = get();
    bencher.bench(|| black_box(w.decide(black_box(&a))));
}

#[divan::bench]
fn verified_trusted(bencher: Bencher) {
    let f = fixture();
    let w = build(&f, true, true);
    let a = get().with_context("credential", f.credential.clone());
    assert_eq!(w.decide(&a).verdict, warden::Verdict::Allow);
    bencher.bench(|| black_box(w.decide(black_box(&a))));
}

const MESSAGE: &[u8] =
    br#"{"capabilities":["http_request"],"ceiling":600,"expires_at":1764400900}"#;

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

fn credential(root: &KeyPair, to: &KeyPair) -> Chain {
    Chain::issue(
        root,
        &Grant {
            subject: to.did().clone(),
            capabilities: vec!["http_request".into(), "mcp.*".into()],
            ceiling: 800,
            ttl: Duration::from_secs(3600),
            audience: None,
        },
        unix_now(),
    )
    .unwrap()
}

#[divan::bench(sample_count = 300, sample_size = 1)]
fn handshake_loopback(bencher: Bencher) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let root = KeyPair::generate().unwrap();
    let a = KeyPair::generate().unwrap();
    let b = KeyPair::generate().unwrap();
    let a_chain = credential(&root, &a);
    let b_chain = credential(&root, &b);

    // Server B: what `warden serve --identity b.key --identity-credential b.json
    // --trust-root ROOT --db b.db` builds.
    let mut z = warden_trust::Config::default();
    z.identity.roots = vec![root.did().clone()];
    let mut audit = AuditConfig::default();
    audit.mode = warden_audit::Mode::Buffered;
    let warden = Warden::builder()
        .policy_set(PolicySet::from_yaml("brief.yaml", BRIEF).unwrap())
        .audit_log(&db, audit)
        .zero_trust(z)
        .build()
        .unwrap();
    let mut config = warden_server::ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.handshake = Some(Arc::new(
        Responder::new(b, b_chain, NonceStore::open(&db).unwrap()).unwrap(),
    ));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let s = warden_server::DecisionServer::bind(config, Arc::new(warden))
                .await
                .unwrap();
            addr_tx.send(s.local_addr().unwrap()).unwrap();
            s.run(async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
        });
    });
    let peer = format!("http://{}", addr_rx.recv().unwrap());

    let verifier = Verifier::new(VerifyOptions::trusting([root.did().clone()]), None);
    let initiator = Initiator {
        key: &a,
        chain: &a_chain,
        verifier: &verifier,
        trust: None,
        token: None,
        timeout: Duration::from_secs(10),
        expect: None,
    };
    let asked = vec!["http_request".to_string()];
    let first = initiator.run(&peer, &asked).unwrap();
    assert_eq!(first.capabilities, asked);
    bencher.bench_local(|| black_box(initiator.run(&peer, &asked).unwrap()));

    let _ = stop_tx.send(());
    server.join().unwrap();
}
