//! Properties that must hold for every policy, not just the ones we thought of.

use proptest::prelude::*;
use warden_core::{Action, Verdict};
use warden_policy::PolicySet;

const ACTIONS: &[&str] = &[
    "read",
    "write",
    "http_request",
    "execute_code",
    "mcp.tools/call",
];
const AGENTS: &[&str] = &["alice", "bob", "coder-1"];
const EFFECTS: &[&str] = &["allow", "deny", "require_approval"];

#[derive(Debug, Clone)]
struct RuleSpec {
    effect: usize,
    action: String,
    agent: Option<usize>,
    when: Option<i64>,
    domain: bool,
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    let action = prop_oneof![
        4 => prop::sample::select(ACTIONS).prop_map(str::to_string),
        1 => Just("*".to_string()),
        1 => Just("mcp.*".to_string()),
        1 => Just("{read,write}".to_string()),
    ];
    (
        0..EFFECTS.len(),
        action,
        prop::option::of(0..AGENTS.len()),
        prop::option::of(0i64..10),
        any::<bool>(),
    )
        .prop_map(|(effect, action, agent, when, domain)| RuleSpec {
            effect,
            action,
            agent,
            when,
            domain,
        })
}

fn render(rules: &[RuleSpec]) -> String {
    let mut s = String::from("rules:\n");
    for (i, r) in rules.iter().enumerate() {
        s.push_str(&format!(
            "  - id: r{i}\n    effect: {}\n    action: \"{}\"\n",
            EFFECTS[r.effect], r.action
        ));
        if let Some(a) = r.agent {
            s.push_str(&format!("    agents: [\"{}\"]\n", AGENTS[a]));
        }
        if let Some(n) = r.when {
            s.push_str(&format!("    when: \"has(args.n) && args.n > {n}\"\n"));
        }
        if r.domain {
            s.push_str("    domains: [\"api.github.com\", \"*.example.com\"]\n");
        }
    }
    s
}

fn action() -> impl Strategy<Value = Action> {
    (
        prop::sample::select(ACTIONS),
        prop::option::of(prop::sample::select(AGENTS)),
        prop::option::of(0i64..12),
        prop::option::of(prop::sample::select(
            &[
                "https://api.github.com/x",
                "https://a.example.com/",
                "https://evil.com/",
                "not a url",
            ][..],
        )),
    )
        .prop_map(|(name, agent, n, url)| {
            let mut a = Action::new(name);
            if let Some(agent) = agent {
                a = a.with_agent(agent);
            }
            if let Some(n) = n {
                a = a.with_arg("n", n);
            }
            if let Some(url) = url {
                a = a.with_arg("url", url);
            }
            a
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Deny-overrides combining does not depend on where a rule is written.
    #[test]
    fn reordering_rules_never_changes_a_verdict(
        (rules, perm) in prop::collection::vec(rule_spec(), 1..12)
            .prop_flat_map(|rules| {
                let n = rules.len();
                (Just(rules), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
            }),
        actions in prop::collection::vec(action(), 1..8),
    ) {
        let original = PolicySet::from_yaml("a.yaml", &render(&rules)).unwrap();
        let shuffled: Vec<RuleSpec> = perm.iter().map(|&i| rules[i].clone()).collect();
        let reordered = PolicySet::from_yaml("a.yaml", &render(&shuffled)).unwrap();
        for a in &actions {
            prop_assert_eq!(original.decide(a).verdict, reordered.decide(a).verdict, "{:?}", a);
        }
    }

    /// An action no rule names falls to the default, which is deny unless written.
    #[test]
    fn unnamed_actions_are_denied_by_default(
        rules in prop::collection::vec(rule_spec(), 0..12),
        name in "[a-z_]{1,12}",
    ) {
        let exact: Vec<RuleSpec> = rules
            .into_iter()
            .filter(|r| ACTIONS.contains(&r.action.as_str()))
            .collect();
        prop_assume!(!ACTIONS.contains(&name.as_str()));
        let text = if exact.is_empty() { "rules: []\n".to_string() } else { render(&exact) };
        let set = PolicySet::from_yaml("a.yaml", &text).unwrap();
        let d = set.decide(&Action::new(name).with_arg("n", 100));
        prop_assert_eq!(d.verdict, Verdict::Deny);
        prop_assert!(d.rule.is_none());
    }

    /// Arbitrary bytes never load as a policy and never panic the loader.
    #[test]
    fn random_bytes_never_load(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = std::env::temp_dir().join(format!("warden-prop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("random.yaml");
        std::fs::write(&file, &bytes).unwrap();
        prop_assert!(PolicySet::load(&[&file]).is_err());
    }

    /// YAML-shaped noise (keys, values and indentation from the policy vocabulary) never
    /// panics the compiler; whatever loads still decides without panicking.
    #[test]
    fn yaml_shaped_noise_never_panics(
        lines in prop::collection::vec(
            (0usize..3, prop::sample::select(&[
                "rules:", "- action: x", "action: \"*\"", "allow: true", "allow: false",
                "effect: deny", "when: \"args.n > 1\"", "when: \"(\"", "domains: [a.com]",
                "methods: [GET]", "agents: [\"[\"]", "default: allow", "- ", "id: a", "&a x", "*a",
                "tool: [\"t*\"]", "obligations: [redact]", "name: n", "{", "]", "'", "\t",
            ][..])),
            0..20,
        ),
    ) {
        let text: String = lines
            .iter()
            .map(|(indent, l)| format!("{}{l}\n", "  ".repeat(*indent)))
            .collect();
        if let Ok(set) = PolicySet::from_yaml("noise.yaml", &text) {
            let _ = set.decide(&Action::new("x").with_arg("n", 2));
        }
    }
}
