//! Property: no sequence of delegations — honest or forged by holders of the right keys —
//! yields a verified chain whose capabilities or ceiling are wider than the root's.
//!
//! Each step is signed by the true holder of the previous link (so signatures and parent
//! hashes are right, and only attenuation can stop it), with capabilities drawn from a pool
//! that includes wider ones than anything granted, and a ceiling drawn from 0–1000.

mod forge;

use forge::{chain, claims, keys, parent_hash, sign};
use proptest::prelude::*;
use warden_identity::{Capabilities, Chain, NoRevocations, VerifyOptions, unix_now, verify_chain};

const POOL: &[&str] = &[
    "*",
    "http_request",
    "http*",
    "mcp.*",
    "mcp.tools/call",
    "mcp.tools*",
    "execute_code",
    "payments.read",
    "payments.*",
];

fn caps() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(POOL, 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_delegation_widens(
        root_caps in caps(),
        root_ceiling in 0u16..=1000,
        steps in proptest::collection::vec((caps(), 0u16..=1000), 1..4),
    ) {
        let k = keys();
        let root = &k[0];
        let mut links = vec![sign(claims(root, root.did().as_str(), &k[1], &root_caps, root_ceiling, None), root)];
        let mut widened = false;
        let mut prev_caps = Capabilities::parse(&root_caps).unwrap();
        let mut prev_ceiling = root_ceiling;
        for (i, (c, ceiling)) in steps.iter().enumerate() {
            let holder = &k[i + 1];
            let next = &k[i + 2];
            let mine = Capabilities::parse(c).unwrap();
            widened |= prev_caps.first_uncovered(&mine).is_some() || *ceiling > prev_ceiling;
            let parent = parent_hash(links.last().unwrap());
            links.push(sign(claims(holder, holder.did().as_str(), next, c, *ceiling, Some(parent)), holder));
            prev_caps = mine;
            prev_ceiling = *ceiling;
        }
        let value = chain(links);
        let parsed = Chain::from_value(&value).unwrap();
        let options = VerifyOptions::trusting([root.did().clone()]);
        match verify_chain(&parsed, &options, unix_now(), &NoRevocations) {
            Ok(v) => {
                prop_assert!(!widened, "a widening chain verified");
                let root_set = Capabilities::parse(&root_caps).unwrap();
                prop_assert!(root_set.first_uncovered(&v.capabilities).is_none());
                prop_assert!(v.ceiling <= root_ceiling);
                for (_, c) in &steps {
                    prop_assert!(v.ceiling <= *c);
                }
            }
            Err(e) => {
                prop_assert!(widened, "an attenuating chain failed: {}", e);
            }
        }
    }
}
