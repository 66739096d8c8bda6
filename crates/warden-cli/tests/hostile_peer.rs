//! The inter-agent trust handshake between real `warden serve` processes on loopback, and
//! what a hostile peer can send one: a replayed proof, an expired challenge, a wrong key, an
//! edited capability list, a revoked credential, a relayed grant, an Ed25519-valid but
//! ML-DSA-invalid signature, and thousands of unauthenticated challenges. Each is refused
//! with a reason that says which.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use warden_identity::{Chain, KeyPair, Verifier, VerifyOptions, b64, from_b64, unix_now};
use warden_trust::handshake::Initiator;

use crate::util::*;

/// A root, and agents `a` and `b` holding credentials from it (`agent.*`; ceilings 800, 900).
struct Org {
    dir: tempfile::TempDir,
    root: String,
}

impl Org {
    fn new() -> Org {
        let dir = tempfile::tempdir().unwrap();
        let org = Org {
            root: String::new(),
            dir,
        };
        let root = org.identity("root");
        for (name, ceiling) in [("a", "800"), ("b", "900")] {
            let did = org.identity(name);
            let out = org.run(&[
                "delegate",
                "--from",
                &org.path("root.key"),
                "--to",
                &did,
                "--capability",
                "agent.*",
                "--ceiling",
                ceiling,
                "--ttl",
                "1h",
                "--out",
                &org.path(&format!("{name}-chain.json")),
            ]);
            assert_eq!(out.code, 0, "{out:?}");
        }
        Org { root, ..org }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn run(&self, args: &[&str]) -> Out {
        warden_in(Some(self.dir.path()), args, None, &[])
    }

    fn identity(&self, name: &str) -> String {
        let out = self.run(&[
            "identity",
            "new",
            "--out",
            &self.path(&format!("{name}.key")),
        ]);
        assert_eq!(out.code, 0, "{out:?}");
        out.stdout.trim().to_string()
    }

    fn key(&self, name: &str) -> KeyPair {
        KeyPair::load(Path::new(&self.path(&format!("{name}.key")))).unwrap()
    }

    fn chain(&self, name: &str) -> Chain {
        Chain::from_json(&std::fs::read(self.path(&format!("{name}-chain.json"))).unwrap()).unwrap()
    }

    /// `warden serve` as `name`, trusting the root, with its own database.
    fn serve(&self, name: &str, extra: &[&str]) -> Server {
        let policy = self.path("policy.yaml");
        std::fs::write(
            &policy,
            "rules:\n  - action: agent.query\n    allow: true\n",
        )
        .unwrap();
        let mut args = vec![
            "--policy".to_string(),
            policy,
            "--db".into(),
            self.path(&format!("{name}.db")),
            "--identity".into(),
            self.path(&format!("{name}.key")),
            "--identity-credential".into(),
            self.path(&format!("{name}-chain.json")),
            "--trust-root".into(),
            self.root.clone(),
        ];
        args.extend(extra.iter().map(ToString::to_string));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Server::start(&args)
    }
}

/// `a`'s side of a handshake, driven step by step.
struct Side {
    key: KeyPair,
    chain: Chain,
    verifier: Verifier,
}

impl Side {
    fn of(org: &Org, name: &str) -> Side {
        let root = warden_identity::Did::parse(&org.root).unwrap();
        Side {
            key: org.key(name),
            chain: org.chain(name),
            verifier: Verifier::new(VerifyOptions::trusting([root]), None),
        }
    }

    fn initiator(&self) -> Initiator<'_> {
        Initiator {
            key: &self.key,
            chain: &self.chain,
            verifier: &self.verifier,
            trust: None,
            token: None,
            timeout: Duration::from_secs(10),
            expect: None,
        }
    }
}

fn caps() -> Vec<String> {
    vec!["agent.query".to_string()]
}

/// Steps 1–3 against `server`: the proof body, ready to send.
fn prove(side: &Side, server: &Server) -> (Value, warden_trust::handshake::Pending) {
    let init = side.initiator();
    let (hello, mut pending) = init.hello(&caps()).unwrap();
    let reply = server.post("/v1/handshake/challenge", &hello.to_string());
    assert_eq!(reply.status, 200, "{reply:?}");
    let proof = init.prove(&mut pending, &reply.json(), unix_now()).unwrap();
    (proof, pending)
}

/// Re-sign an edited proof with `key`, as an attacker holding that key would.
fn resign(proof: &mut Value, key: &KeyPair) {
    let bytes = warden_identity::canonical(&proof["challenge"]);
    let sig = key
        .sign("warden/handshake/initiator/v1", bytes.as_bytes())
        .unwrap();
    proof["signature"] = serde_json::to_value(sig.to_json()).unwrap();
}

#[test]
fn two_warden_servers_handshake_over_loopback() {
    let org = Org::new();
    let b = org.serve("b", &[]);
    let a = org.serve("a", &[]);
    // Server A, as itself, with server B.
    let reply = a.post(
        "/v1/handshake/initiate",
        &json!({"peer": format!("http://{}", b.addr), "capabilities": ["agent.query", "agent.admin"]}).to_string(),
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let session = reply.json();
    let b_did = org.key("b").did().to_string();
    assert_eq!(session["peer"], b_did.as_str());
    assert_eq!(
        session["capabilities"],
        json!(["agent.admin", "agent.query"])
    );
    assert_eq!(
        session["ceiling"], 800,
        "the lower of the two chains' ceilings"
    );
    assert_eq!(
        session["peer_trust"]["value"], 500,
        "B's trust in A's own records"
    );

    // And the CLI, as A, with server B: exit 0 and the peer's DID and grant.
    let out = org.run(&[
        "handshake",
        "--key",
        &org.path("a.key"),
        "--credential",
        &org.path("a-chain.json"),
        "--peer",
        &format!("http://{}", b.addr),
        "--capability",
        "agent.query",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(&format!("handshake with {b_did}")),
        "{out:?}"
    );
    assert!(out.stdout.contains("granted:   agent.query"), "{out:?}");

    // B recorded both handshakes, by A's DID.
    drop(b);
    let records = warden_audit::query(org.path("b.db"), &warden_audit::Filter::default()).unwrap();
    let a_did = org.key("a").did().to_string();
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(
            (r.action.as_str(), r.agent.as_deref()),
            ("warden.handshake", Some(a_did.as_str()))
        );
        assert_eq!(r.verdict, warden::Verdict::Allow);
    }
}

#[test]
fn a_replayed_proof_is_refused() {
    let org = Org::new();
    let b = org.serve("b", &[]);
    let side = Side::of(&org, "a");
    let (proof, _) = prove(&side, &b);
    assert_eq!(
        b.post("/v1/handshake/complete", &proof.to_string()).status,
        200
    );
    b.post("/v1/handshake/complete", &proof.to_string())
        .assert_rejected(403, "replayed: this challenge was already answered");
}

#[test]
fn an_expired_challenge_is_refused() {
    let org = Org::new();
    let b = org.serve("b", &["--handshake-ttl", "1"]);
    let side = Side::of(&org, "a");
    let (proof, _) = prove(&side, &b);
    let expires = proof["challenge"]["expires_at"].as_u64().unwrap();
    eventually("the challenge expires", || unix_now() > expires);
    b.post("/v1/handshake/complete", &proof.to_string())
        .assert_rejected(403, "the challenge expired at");
}

#[test]
fn a_wrong_key_is_refused() {
    let org = Org::new();
    let b = org.serve("b", &[]);
    let side = Side::of(&org, "a");
    let stranger = KeyPair::generate().unwrap();
    // A's keys and chain, a stranger's signature.
    let (mut proof, _) = prove(&side, &b);
    resign(&mut proof, &stranger);
    b.post("/v1/handshake/complete", &proof.to_string())
        .assert_rejected(
            403,
            "the initiator's signature does not verify: the Ed25519 signature",
        );
    // The stranger's keys and signature, claiming to be A.
    let (mut proof, _) = prove(&side, &b);
    proof["keys"] = json!({
        "ed25519": b64(&stranger.public().ed25519()),
        "ml_dsa_65": b64(stranger.public().ml_dsa_65().unwrap()),
    });
    resign(&mut proof, &stranger);
    b.post("/v1/handshake/complete", &proof.to_string())
        .assert_rejected(403, "the keys presented are not those of");
}

#[test]
fn a_tampered_capability_list_is_refused() {
    let org = Org::new();
    let b = org.serve("b", &[]);
    let side = Side::of(&org, "a");
    let (mut proof, _) = prove(&side, &b);
    proof["challenge"]["capabilities"] = json!(["agent.query", "agent.admin"]);
    resign(&mut proof, &side.key);
    b.post("/v1/handshake/complete", &proof.to_string())
        .assert_rejected(403, "was edited (its cookie does not match)");
}

#[test]
fn an_ed25519_valid_ml_dsa_invalid_signature_is_refused() {
    let org = Org::new();
    let b = org.serve("b", &[]);
    let side = Side::of(&org, "a");
    let (mut proof, _) = prove(&side, &b);
    let mut ml = from_b64(proof["signature"]["ml_dsa_65"].as_str().unwrap()).unwrap();
    ml[1234] ^= 0x04;
    proof["signature"]["ml_dsa_65"] = Value::String(b64(&ml));
    b.post("/v1/handshake/complete", &proof.to_string())
        .assert_rejected(403, "the ML-DSA-65 signature of did:warden:");
}

#[test]
fn a_revoked_credential_is_refused() {
    let org = Org::new();
    let b = org.serve("b", &[]);
    let id = org.chain("a").last().claims().id.clone();
    let out = org.run(&[
        "identity",
        "revoke",
        &id,
        "--db",
        &org.path("b.db"),
        "--reason",
        "laptop stolen",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(&format!("revoked credential {id}")),
        "{out:?}"
    );
    let side = Side::of(&org, "a");
    let mut last = None;
    eventually("the revocation reaches the server", || {
        let (proof, _) = prove(&side, &b);
        let reply = b.post("/v1/handshake/complete", &proof.to_string());
        let refused = reply.status == 403;
        last = Some(reply);
        refused
    });
    last.unwrap()
        .assert_rejected(403, "was revoked (laptop stolen)");
}

/// Red team: a killed agent could still complete a handshake and get a grant. The
/// responder now asks its kill switch about the initiator and everyone behind its chain.
#[test]
fn a_killed_initiator_is_refused() {
    let org = Org::new();
    let b = org.serve("b", &[]);
    let a_did = org.chain("a").last().subject().to_string();
    let out = org.run(&[
        "kill",
        "--db",
        &org.path("b.db"),
        "--agent",
        &a_did,
        "--reason",
        "compromised",
        "--by",
        "alice",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let side = Side::of(&org, "a");
    let mut last = None;
    eventually("the kill reaches the server", || {
        let (proof, _) = prove(&side, &b);
        let reply = b.post("/v1/handshake/complete", &proof.to_string());
        let refused = reply.status == 403;
        last = Some(reply);
        refused
    });
    last.unwrap().assert_rejected(403, "kill switch");
}

#[test]
fn a_relayed_grant_is_refused() {
    let org = Org::new();
    let b = org.serve("b", &[]);
    let side = Side::of(&org, "a");
    let init = side.initiator();
    let (proof, pending) = prove(&side, &b);
    let grant = b.post("/v1/handshake/complete", &proof.to_string()).json();
    init.finish(&pending, &grant, unix_now()).unwrap();
    // The same (genuine, signed) grant offered as the answer to another handshake.
    let (_, other) = prove(&side, &b);
    let e = init.finish(&other, &grant, unix_now()).unwrap_err();
    assert!(e.contains("replayed or relayed"), "{e}");
    // Or with its nonces rewritten to fit: B's signature no longer covers it.
    let mut edited = grant.clone();
    let (proof2, pending2) = prove(&side, &b);
    edited["grant"]["initiator_nonce"] = proof2["challenge"]["initiator_nonce"].clone();
    edited["grant"]["responder_nonce"] = proof2["challenge"]["responder_nonce"].clone();
    let e = init.finish(&pending2, &edited, unix_now()).unwrap_err();
    assert!(
        e.contains("the responder's signature does not verify"),
        "{e}"
    );
}

#[test]
fn unauthenticated_challenges_store_nothing() {
    let org = Org::new();
    let b = org.serve("b", &[]);
    let side = Side::of(&org, "a");
    for _ in 0..3000 {
        let (hello, _) = side.initiator().hello(&caps()).unwrap();
        assert_eq!(
            b.post("/v1/handshake/challenge", &hello.to_string()).status,
            200
        );
    }
    let count = || -> i64 {
        let db = rusqlite::Connection::open(PathBuf::from(org.path("b.db"))).unwrap();
        db.query_row("SELECT count(*) FROM handshake_nonces", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(), 0, "a challenge nobody answered was stored");
    // One authenticated answer is.
    let (proof, _) = prove(&side, &b);
    assert_eq!(
        b.post("/v1/handshake/complete", &proof.to_string()).status,
        200
    );
    assert_eq!(count(), 1);
}

#[test]
fn a_server_without_an_identity_says_so() {
    let org = Org::new();
    let policy = org.path("p.yaml");
    std::fs::write(&policy, "rules:\n  - action: x\n    allow: true\n").unwrap();
    let s = Server::start(&["--policy", &policy]);
    s.post("/v1/handshake/challenge", "{}")
        .assert_rejected(404, "this server has no identity");
    let out = org.run(&[
        "handshake",
        "--key",
        &org.path("a.key"),
        "--credential",
        &org.path("a-chain.json"),
        "--peer",
        &format!("http://{}", s.addr),
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("handshake failed: the peer refused (HTTP 404)"),
        "{out:?}"
    );
}
