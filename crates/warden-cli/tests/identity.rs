//! `warden identity`, `delegate`, `verify-chain`, `check --credential` and `trust` as a user
//! runs them: real key files, real chains, a real database; every exit code.

use std::os::unix::fs::PermissionsExt;

use crate::util::*;

fn run(dir: &std::path::Path, args: &[&str]) -> Out {
    warden_in(Some(dir), args, None, &[])
}

fn new_identity(dir: &std::path::Path, name: &str) -> String {
    let out = run(dir, &["identity", "new", "--out", name]);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout.trim().to_string()
}

#[test]
fn keys_are_private_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let did = new_identity(dir.path(), "a.key");
    assert!(did.starts_with("did:warden:z"), "{did}");
    let mode = std::fs::metadata(dir.path().join("a.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = run(dir.path(), &["identity", "show", "a.key"]);
    assert!(
        out.stdout.contains(&did) && out.stdout.contains("ed25519:   z6Mk"),
        "{out:?}"
    );
    let doc = run(dir.path(), &["identity", "show", "a.key", "--did-document"]).json();
    assert_eq!(doc["id"], did.as_str());
    assert_eq!(doc["verificationMethod"].as_array().unwrap().len(), 2);
    // Never overwritten; never read when others can.
    assert_eq!(
        run(dir.path(), &["identity", "new", "--out", "a.key"]).code,
        2
    );
    std::fs::set_permissions(
        dir.path().join("a.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = run(dir.path(), &["identity", "show", "a.key"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("chmod 600"), "{out:?}");
}

#[test]
fn delegate_verify_decide_and_watch_trust() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = new_identity(d, "root.key");
    let agent = new_identity(d, "agent.key");
    let helper = new_identity(d, "helper.key");
    let out = run(
        d,
        &[
            "delegate",
            "--from",
            "root.key",
            "--to",
            &agent,
            "--capability",
            "http_request",
            "--capability",
            "mcp.*",
            "--ceiling",
            "600",
            "--ttl",
            "10m",
            "--out",
            "agent.json",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let out = run(
        d,
        &[
            "delegate",
            "--from",
            "agent.key",
            "--chain",
            "agent.json",
            "--to",
            &helper,
            "--capability",
            "mcp.tools/call",
            "--ceiling",
            "400",
            "--out",
            "helper.json",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("the chain has 2 links"), "{out:?}");

    let out = run(d, &["verify-chain", "helper.json", "--root", &root]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("ceiling:      400"), "{out:?}");
    let out = run(d, &["verify-chain", "helper.json", "--root", &helper]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("which is not a trusted root"),
        "{out:?}"
    );
    assert_eq!(run(d, &["verify-chain", "missing.json"]).code, 2);

    // Widening and raising are refused when issuing, and when verifying an edited file.
    let out = run(
        d,
        &[
            "delegate",
            "--from",
            "agent.key",
            "--chain",
            "agent.json",
            "--to",
            &helper,
            "--capability",
            "*",
            "--out",
            "x.json",
        ],
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("capability `*` is not inside"),
        "{out:?}"
    );
    let text = std::fs::read_to_string(d.join("agent.json")).unwrap();
    std::fs::write(
        d.join("edited.json"),
        text.replace("\"ceiling\": 600", "\"ceiling\": 1000"),
    )
    .unwrap();
    let out = run(d, &["verify-chain", "edited.json", "--json"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.json()["valid"], false);

    // Decide: required identity, with and without the credential.
    let p = example("brief.yaml");
    let get = [
        "-a",
        "http_request",
        "--arg",
        "url=https://api.github.com/",
        "--arg",
        "method=GET",
    ];
    let base = [
        "check",
        "-p",
        &p,
        "--require-identity",
        "--trust-root",
        &root,
        "--db",
        "w.db",
    ];
    let with = |extra: &[&str]| -> Out {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        run(d, &args)
    };
    let out = with(&get);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("requires a verified identity"),
        "{out:?}"
    );
    let mut cred = get.to_vec();
    cred.extend(["--credential", "agent.json"]);
    assert_eq!(with(&cred).code, 0);
    for _ in 0..3 {
        let out = with(&["-a", "execute_code", "--credential", "agent.json"]);
        assert_eq!(out.code, 1);
        assert!(
            out.stdout.contains("outside the credential's capabilities"),
            "{out:?}"
        );
    }
    let out = run(d, &["trust", "show", "--db", "w.db"]);
    assert!(
        out.stdout
            .contains(&format!("426    probationary      4       {agent}")),
        "{out:?}"
    );
    let out = run(d, &["trust", "events", &agent, "--db", "w.db", "--json"]);
    assert_eq!(out.json().as_array().unwrap().len(), 4);

    // Revoke the agent: its credential stops working, its trust reads 0; restore starts over.
    let out = run(
        d,
        &[
            "identity", "revoke", &agent, "--db", "w.db", "--reason", "test",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let out = with(&cred);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("was revoked (test)"), "{out:?}");
    let out = run(d, &["trust", "show", &agent, "--db", "w.db"]);
    assert!(out.stdout.contains("0      revoked"), "{out:?}");
    assert_eq!(
        run(d, &["identity", "restore", &agent, "--db", "w.db"]).code,
        0
    );
    assert_eq!(with(&cred).code, 0);
    let records = warden_audit::query(d.join("w.db"), &warden_audit::Filter::default()).unwrap();
    let actions: Vec<&str> = records.iter().map(|r| r.action.as_str()).collect();
    assert!(
        actions.contains(&"warden.identity.revoke") && actions.contains(&"warden.identity.restore"),
        "{actions:?}"
    );
}

/// `warden bench --steps` times the governed path a user runs: a credential verified once and
/// found in the cache after, a ring and a bucket; every step is reported in path order. A
/// credential from an untrusted root makes every decision stop at identity, and the steps
/// after it report nothing.
#[test]
fn bench_times_each_step_of_the_governed_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = new_identity(d, "root.key");
    let agent = new_identity(d, "agent.key");
    let _stranger = new_identity(d, "stranger.key");
    for (from, out) in [("root.key", "agent.json"), ("stranger.key", "forged.json")] {
        let made = run(
            d,
            &[
                "delegate",
                "--from",
                from,
                "--to",
                &agent,
                "--capability",
                "http_request",
                "--out",
                out,
            ],
        );
        assert_eq!(made.code, 0, "{made:?}");
    }
    write(
        d,
        "governed.yaml",
        "rules:\n  - action: http_request\n    allow: true\nrings:\n  default: user\n  profiles:\n    user: {rate: 1000000000/second}\nrate_limits:\n  - {action: http_request, per: agent, limit: 1000000000/second, burst: 1000000000}\n",
    );
    write(
        d,
        "get.json",
        r#"{"action":"http_request","agent":"bot-7"}"#,
    );
    let bench = |credential: &str| {
        run(
            d,
            &[
                "bench",
                "-p",
                "governed.yaml",
                "--input",
                "get.json",
                "--credential",
                credential,
                "--trust-root",
                &root,
                "-n",
                "2000",
                "--steps",
                "--json",
            ],
        )
    };
    let out = bench("agent.json");
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    let steps: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "validate", "kill", "identity", "ring", "limits", "policy", "trust", "audit", "total"
        ]
    );
    let step = |v: &serde_json::Value, name: &str| {
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == name)
            .unwrap()["p50_ns"]
            .as_u64()
            .unwrap()
    };
    // No audit log: that step never runs. (Nothing here compares times with a bound.)
    assert_eq!(step(&v, "audit"), 0);
    assert!(step(&v, "total") >= step(&v, "identity"));

    // The same bench with a chain from a root nobody trusts: denied at step 2, so the steps
    // after it are never reached and report 0.
    let out = bench("forged.json");
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    for later in ["ring", "limits", "policy", "trust"] {
        assert_eq!(step(&v, later), 0, "{later}: {v}");
    }
}
