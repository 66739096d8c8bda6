//! What a hostile agent can present as a credential or delegation chain, and the exact reason
//! each is refused. The first cases reproduce the reference toolkit's failures (its 5.0.0
//! release): a self-made child of a registered parent, a chain granting `admin:*` with an
//! empty parent signature, an edited expiry whose signature stayed valid, cached results that
//! survived revocation.

mod forge;

use std::sync::Arc;
use std::time::Duration;

use forge::{chain, claims, grant, keys, parent_hash, sign};
use serde_json::{Value, json};
use warden_identity::{
    Chain, ChainError, Failure, Half, KeyPair, NoRevocations, Revocations, Verifier, VerifyOptions,
    b64, unix_now, verify_chain,
};

fn trusting(root: &KeyPair) -> VerifyOptions {
    VerifyOptions::trusting([root.did().clone()])
}

fn check(value: &Value, options: &VerifyOptions) -> Result<warden_identity::Verified, ChainError> {
    let chain = Chain::from_value(value)?;
    verify_chain(&chain, options, unix_now(), &NoRevocations)
}

/// root → parent (http_request, mcp.*; 800).
fn root_and_parent() -> (Value, &'static KeyPair, &'static KeyPair) {
    let k = keys();
    let (root, parent) = (&k[0], &k[1]);
    let c = Chain::issue(
        root,
        &grant(parent, &["http_request", "mcp.*"], 800, 3600),
        unix_now(),
    )
    .unwrap();
    (c.to_value(), root, parent)
}

fn links(v: &Value) -> Vec<Value> {
    v["links"].as_array().unwrap().clone()
}

#[test]
fn an_honest_chain_verifies_with_the_minimum_ceiling() {
    let (v, root, parent) = root_and_parent();
    let child = &keys()[2];
    let c = Chain::from_value(&v)
        .unwrap()
        .delegate(
            parent,
            &grant(child, &["mcp.tools/call"], 600, 600),
            unix_now(),
        )
        .unwrap();
    let ok = verify_chain(&c, &trusting(root), unix_now(), &NoRevocations).unwrap();
    assert_eq!(&ok.subject, child.did());
    assert_eq!(ok.ceiling, 600);
    assert_eq!(ok.capabilities.to_strings(), ["mcp.tools/call"]);
    assert!(ok.allows("mcp.tools/call") && !ok.allows("http_request"));
    assert_eq!(ok.depth(), 2);
}

#[test]
fn a_self_made_child_of_a_registered_parent_is_refused() {
    // The child writes a link naming the parent as issuer, with its own keys and signature.
    let (v, root, parent) = root_and_parent();
    let child = &keys()[2];
    let forged = sign(
        claims(
            child,
            parent.did().as_str(),
            child,
            &["http_request"],
            800,
            Some(parent_hash(&links(&v)[0])),
        ),
        child,
    );
    let e = check(&chain(vec![links(&v)[0].clone(), forged]), &trusting(root)).unwrap_err();
    assert_eq!(e.link(), Some(1));
    assert!(
        matches!(e.failure(), Failure::KeysNotTheIssuers { .. }),
        "{e}"
    );

    // Or with the parent's public keys copied in, and its own signature.
    let forged = sign(
        claims(
            parent,
            parent.did().as_str(),
            child,
            &["http_request"],
            800,
            Some(parent_hash(&links(&v)[0])),
        ),
        child,
    );
    let e = check(&chain(vec![links(&v)[0].clone(), forged]), &trusting(root)).unwrap_err();
    assert!(
        matches!(
            e.failure(),
            Failure::BadSignature {
                half: Half::Ed25519,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("link 1: the Ed25519 signature of did:warden:"),
        "{e}"
    );
}

#[test]
fn a_chain_granting_everything_with_an_empty_parent_signature_is_refused() {
    let (v, root, parent) = root_and_parent();
    let child = &keys()[2];
    let mut link = sign(
        claims(
            parent,
            parent.did().as_str(),
            child,
            &["*"],
            1000,
            Some(parent_hash(&links(&v)[0])),
        ),
        parent,
    );
    link["proof"] = json!({"ed25519": "", "ml_dsa_65": ""});
    let e = check(
        &chain(vec![links(&v)[0].clone(), link.clone()]),
        &trusting(root),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("proof.ed25519: 0 bytes, expected 64"),
        "{e}"
    );
    link["proof"] = json!({"ed25519": b64(&[0u8; 64])});
    let e = check(&chain(vec![links(&v)[0].clone(), link]), &trusting(root)).unwrap_err();
    // Widening is caught before any signature is even looked at.
    assert!(matches!(e.failure(), Failure::Widened { .. }), "{e}");
}

#[test]
fn widened_capabilities_and_raised_ceilings_are_refused_even_when_properly_signed() {
    let (v, root, parent) = root_and_parent();
    let child = &keys()[2];
    let ph = parent_hash(&links(&v)[0]);
    for (caps, ceiling, want) in [
        (
            &["http_request", "execute_code"][..],
            700,
            "capability `execute_code` is wider",
        ),
        (&["*"][..], 700, "capability `*` is wider"),
        (&["mcp*"][..], 700, "capability `mcp*` is wider"),
        (
            &["http_request"][..],
            801,
            "trust ceiling 801 is above the parent link's 800",
        ),
    ] {
        let link = sign(
            claims(
                parent,
                parent.did().as_str(),
                child,
                caps,
                ceiling,
                Some(ph.clone()),
            ),
            parent,
        );
        let e = check(&chain(vec![links(&v)[0].clone(), link]), &trusting(root)).unwrap_err();
        assert_eq!(e.link(), Some(1));
        assert!(e.to_string().contains(want), "{caps:?}: {e}");
    }
    // The issuing side refuses the same things before signing.
    let c = Chain::from_value(&v).unwrap();
    let e = c
        .delegate(
            parent,
            &grant(child, &["execute_code"], 500, 60),
            unix_now(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("not inside the chain's"), "{e}");
    let e = c
        .delegate(
            parent,
            &grant(child, &["http_request"], 900, 60),
            unix_now(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("above the chain's 800"), "{e}");
    let e = c
        .delegate(
            parent,
            &grant(child, &["http_request"], 500, 7200),
            unix_now(),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("would end after the chain does"),
        "{e}"
    );
}

#[test]
fn a_link_signed_by_a_key_that_is_not_the_parents_is_refused() {
    let (v, root, _parent) = root_and_parent();
    let (stranger, child) = (&keys()[3], &keys()[2]);
    let link = sign(
        claims(
            stranger,
            stranger.did().as_str(),
            child,
            &["http_request"],
            500,
            Some(parent_hash(&links(&v)[0])),
        ),
        stranger,
    );
    let e = check(&chain(vec![links(&v)[0].clone(), link]), &trusting(root)).unwrap_err();
    assert!(matches!(e.failure(), Failure::NotTheParent { .. }), "{e}");
    assert!(
        e.to_string().contains("but the parent link was issued to"),
        "{e}"
    );
}

#[test]
fn ed25519_valid_but_ml_dsa_invalid_is_refused() {
    let (v, root, _) = root_and_parent();
    let mut link = links(&v)[0].clone();
    let mut ml = warden_identity::from_b64(link["proof"]["ml_dsa_65"].as_str().unwrap()).unwrap();
    ml[2000] ^= 0x10;
    link["proof"]["ml_dsa_65"] = Value::String(b64(&ml));
    let e = check(&chain(vec![link.clone()]), &trusting(root)).unwrap_err();
    assert!(
        matches!(
            e.failure(),
            Failure::BadSignature {
                half: Half::MlDsa65,
                ..
            }
        ),
        "{e}"
    );
    // Stripping the post-quantum half is no way around it: the DID says hybrid.
    link["proof"].as_object_mut().unwrap().remove("ml_dsa_65");
    let e = check(&chain(vec![link]), &trusting(root)).unwrap_err();
    assert!(
        matches!(e.failure(), Failure::MissingPostQuantum { .. }),
        "{e}"
    );
}

#[test]
fn every_field_is_signed() {
    let (v, root, _) = root_and_parent();
    let edits: Vec<(&str, Value)> = vec![
        ("expires_at", json!(unix_now() + 3000)),
        ("ceiling", json!(799)),
        ("capabilities", json!(["http_request"])),
        ("subject", json!(keys()[4].did().as_str())),
        ("issued_at", json!(unix_now() - 10)),
        ("audience", json!("somewhere")),
    ];
    for (field, value) in edits {
        let mut link = links(&v)[0].clone();
        link["claims"][field] = value;
        let mut o = trusting(root);
        o.audiences = vec!["somewhere".into()];
        let e = check(&chain(vec![link]), &o).unwrap_err();
        assert!(
            matches!(e.failure(), Failure::BadSignature { .. }),
            "{field}: {e}"
        );
    }
    // An extra field is not ignored: it is refused (and would be covered if it were read).
    let mut link = links(&v)[0].clone();
    link["claims"]["admin"] = json!(true);
    let e = check(&chain(vec![link]), &trusting(root)).unwrap_err();
    assert!(e.to_string().contains("unknown field `admin`"), "{e}");
}

#[test]
fn roots_time_audience_depth_and_parent_hash_are_checked() {
    let (v, root, parent) = root_and_parent();
    // Untrusted root, no roots.
    let e = check(&v, &trusting(&keys()[5])).unwrap_err();
    assert!(matches!(e.failure(), Failure::UntrustedRoot { .. }), "{e}");
    let e = check(&v, &VerifyOptions::trusting([])).unwrap_err();
    assert_eq!(e.failure(), &Failure::NoRoots);
    // Expired, and not yet valid.
    let c = Chain::from_value(&v).unwrap();
    let exp = c.last().claims().expires_at;
    let e = verify_chain(&c, &trusting(root), exp, &NoRevocations).unwrap_err();
    assert!(matches!(e.failure(), Failure::Expired { .. }), "{e}");
    let e = verify_chain(&c, &trusting(root), unix_now() - 1000, &NoRevocations).unwrap_err();
    assert!(matches!(e.failure(), Failure::NotYetValid { .. }), "{e}");
    // Audience: a chain for `billing` is refused by a verifier that is someone else.
    let aud = Chain::issue(
        root,
        &warden_identity::Grant {
            audience: Some("billing".into()),
            ..grant(parent, &["http_request"], 500, 60)
        },
        unix_now(),
    )
    .unwrap();
    let e = verify_chain(&aud, &trusting(root), unix_now(), &NoRevocations).unwrap_err();
    assert!(e.to_string().contains("for audience billing"), "{e}");
    let mut o = trusting(root);
    o.audiences = vec!["billing".into()];
    verify_chain(&aud, &o, unix_now(), &NoRevocations).unwrap();
    // An audience added by a later link binds the chain too: a verifier for `payments` (or
    // for no audience) refuses a chain whose second link is for `billing`.
    let later = Chain::issue(
        root,
        &grant(parent, &["http_request"], 800, 3600),
        unix_now(),
    )
    .unwrap()
    .delegate(
        parent,
        &warden_identity::Grant {
            audience: Some("billing".into()),
            ..grant(&keys()[2], &["http_request"], 500, 60)
        },
        unix_now(),
    )
    .unwrap();
    let mut payments = trusting(root);
    payments.audiences = vec!["payments".into()];
    for options in [&payments, &trusting(root)] {
        let e = verify_chain(&later, options, unix_now(), &NoRevocations).unwrap_err();
        assert!(e.to_string().contains("for audience billing"), "{e}");
    }
    let accepted = verify_chain(&later, &o, unix_now(), &NoRevocations).unwrap();
    assert_eq!(accepted.audience.as_deref(), Some("billing"));
    // A link re-attached under another parent.
    let other = Chain::issue(
        root,
        &grant(parent, &["http_request", "mcp.*"], 800, 3600),
        unix_now(),
    )
    .unwrap()
    .delegate(
        parent,
        &grant(&keys()[2], &["http_request"], 500, 60),
        unix_now(),
    )
    .unwrap();
    let spliced = chain(vec![
        links(&v)[0].clone(),
        links(&other.to_value())[1].clone(),
    ]);
    let e = check(&spliced, &trusting(root)).unwrap_err();
    assert!(
        matches!(e.failure(), Failure::WrongParentHash { .. }),
        "{e}"
    );
    // Depth.
    let mut o = trusting(root);
    o.max_depth = 1;
    let e = verify_chain(&other, &o, unix_now(), &NoRevocations).unwrap_err();
    assert!(
        e.to_string().contains("the chain has 2 links; at most 1"),
        "{e}"
    );
}

#[test]
fn classical_identities_only_where_allowed() {
    let root = KeyPair::generate_classical().unwrap();
    let agent = &keys()[1];
    let c = Chain::issue(&root, &grant(agent, &["http_request"], 500, 60), unix_now()).unwrap();
    assert!(c.to_value()["links"][0]["proof"].get("ml_dsa_65").is_none());
    let e = verify_chain(&c, &trusting(&root), unix_now(), &NoRevocations).unwrap_err();
    assert!(
        matches!(e.failure(), Failure::ClassicalNotAllowed { .. }),
        "{e}"
    );
    let mut o = trusting(&root);
    o.allow_classical = true;
    verify_chain(&c, &o, unix_now(), &NoRevocations).unwrap();
}

#[test]
fn revocation_reaches_cached_results() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let revocations = Arc::new(Revocations::open(&db).unwrap().refresh(Duration::ZERO));
    let (v, root, parent) = root_and_parent();
    let verifier = Verifier::new(trusting(root), Some(revocations.clone()));
    let now = unix_now();
    verifier.verify_presented(&v, now).unwrap();
    verifier.verify_presented(&v, now).unwrap(); // cached

    // Revoked by another process (its own connection to the same file).
    let other = Revocations::open(&db).unwrap();
    let id = links(&v)[0]["claims"]["id"].as_str().unwrap().to_string();
    other
        .revoke(&id, "credential", Some("key leaked"), now)
        .unwrap();
    let e = verifier.verify_presented(&v, now).unwrap_err();
    assert!(e.to_string().contains("was revoked (key leaked)"), "{e}");

    // Revoking the agent itself (its DID) refuses every chain naming it.
    other.restore(&id).unwrap();
    verifier.verify_presented(&v, now).unwrap();
    other
        .revoke(parent.did().as_str(), "did", None, now)
        .unwrap();
    let e = verifier.verify_presented(&v, now).unwrap_err();
    assert!(matches!(e.failure(), Failure::Revoked { .. }), "{e}");
}

/// Warden writes `Verified::summary` into every decision as `context.identity`: it must
/// say what the chain verified to (not what was cached first for another chain), in key
/// order, and building it must not change what the result compares equal to.
#[test]
fn the_summary_is_the_verified_chain_in_key_order() {
    let (v, root, parent) = root_and_parent();
    let verifier = Verifier::new(trusting(root), None);
    let now = unix_now();
    let first = verifier.verify_presented(&v, now).unwrap();
    let s = first.summary().as_object().unwrap();
    let keys: Vec<&str> = s.keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
    assert_eq!(
        keys,
        ["ceiling", "chain", "depth", "did", "expires_at", "root"]
    );
    assert_eq!(s["did"], json!(parent.did().as_str()));
    assert_eq!(s["root"], json!(root.did().as_str()));
    assert_eq!(s["chain"], json!(first.hash));
    assert_eq!(s["depth"], json!(first.depth()));
    assert_eq!(s["ceiling"], json!(first.ceiling));
    assert_eq!(s["expires_at"], json!(first.expires_at));
    // The cached result carries the same summary; a fresh verification equals it.
    let again = verifier.verify_presented(&v, now).unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    let fresh = verifier
        .verify(&Chain::from_value(&v).unwrap(), now)
        .unwrap();
    assert_eq!(fresh, *first);
}

#[test]
fn the_cache_never_accepts_an_edited_copy() {
    let (v, root, _) = root_and_parent();
    let verifier = Verifier::new(trusting(root), None);
    let now = unix_now();
    verifier.verify_presented(&v, now).unwrap();
    let mut edited = v.clone();
    edited["links"][0]["claims"]["capabilities"] = json!(["*"]);
    let e = verifier.verify_presented(&edited, now).unwrap_err();
    assert!(matches!(e.failure(), Failure::BadSignature { .. }), "{e}");
    let mut ml_bad = v.clone();
    let mut ml =
        warden_identity::from_b64(v["links"][0]["proof"]["ml_dsa_65"].as_str().unwrap()).unwrap();
    ml[5] ^= 1;
    ml_bad["links"][0]["proof"]["ml_dsa_65"] = Value::String(b64(&ml));
    let e = verifier.verify_presented(&ml_bad, now).unwrap_err();
    assert!(
        matches!(
            e.failure(),
            Failure::BadSignature {
                half: Half::MlDsa65,
                ..
            }
        ),
        "{e}"
    );
    // And an expired cached chain is refused at the next use.
    let exp = Chain::from_value(&v).unwrap().last().claims().expires_at;
    let e = verifier.verify_presented(&v, exp).unwrap_err();
    assert!(matches!(e.failure(), Failure::Expired { .. }), "{e}");
}

#[test]
fn malformed_input_is_bounded_and_named() {
    let e = Chain::from_json(b"not json").unwrap_err();
    assert!(e.to_string().contains("not JSON"), "{e}");
    let e = Chain::from_json(&vec![b' '; 300 * 1024]).unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
    let e = Chain::from_value(&json!({"format": "warden-chain/1", "links": []})).unwrap_err();
    assert_eq!(e.failure(), &Failure::Empty);
    let many: Vec<Value> = (0..40).map(|_| json!({})).collect();
    let e = Chain::from_value(&chain(many)).unwrap_err();
    assert!(e.to_string().contains("at most 32"), "{e}");
    let e = Chain::from_value(&json!({"format": "other", "links": []})).unwrap_err();
    assert!(e.to_string().contains("format"), "{e}");
}
