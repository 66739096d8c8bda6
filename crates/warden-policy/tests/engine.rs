//! The YAML engine through its public API: the brief's policy, the full form, combining,
//! fail-closed behaviour, and load errors with positions.

use warden_core::{Action, Verdict};
use warden_policy::{LoadError, PolicySet, Status};

const BRIEF: &str = r#"rules:
  - action: "execute_code"
    allow: false
  - action: "http_request"
    allow: true
    domains: ["api.github.com"]
    methods: ["GET"]
"#;

fn set(text: &str) -> PolicySet {
    PolicySet::from_yaml("test.yaml", text).unwrap_or_else(|e| panic!("{e}"))
}

fn problems(text: &str) -> Vec<String> {
    let e: LoadError = PolicySet::from_yaml("bad.yaml", text).unwrap_err();
    e.problems()
        .iter()
        .map(warden_policy::Problem::one_line)
        .collect()
}

fn http(url: &str, method: &str) -> Action {
    Action::new("http_request")
        .with_arg("url", url)
        .with_arg("method", method)
}

#[test]
fn the_brief_policy_behaves_as_written() {
    let s = set(BRIEF);
    assert_eq!(
        s.decide(&Action::new("execute_code")).verdict,
        Verdict::Deny
    );
    assert_eq!(
        s.decide(&http("https://api.github.com/x", "GET")).verdict,
        Verdict::Allow
    );
    assert_eq!(
        s.decide(&http("https://api.github.com/x", "get")).verdict,
        Verdict::Allow
    );
    assert_eq!(
        s.decide(&http("https://api.github.com/x", "POST")).verdict,
        Verdict::Deny
    );
    assert_eq!(
        s.decide(&http("https://example.com/", "GET")).verdict,
        Verdict::Deny
    );
    assert_eq!(
        s.decide(&Action::new("http_request")).verdict,
        Verdict::Deny
    );
    assert_eq!(s.decide(&Action::new("send_email")).verdict, Verdict::Deny);
    let d = s.decide(&Action::new("execute_code"));
    assert_eq!(d.rule.as_deref(), Some("rules[0]"));
    assert_eq!(d.policy.as_deref(), Some("test"));
}

#[test]
fn deny_overrides_approval_overrides_allow_in_any_order() {
    let rules = [
        "  - {id: a, effect: allow, action: pay}\n",
        "  - {id: r, effect: require_approval, action: pay, when: 'args.amount > 10'}\n",
        "  - {id: d, effect: deny, action: 'pa*', when: 'args.amount > 1000'}\n",
    ];
    for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [1, 2, 0]] {
        let text = format!("rules:\n{}", order.map(|i| rules[i]).concat());
        let s = set(&text);
        let pay = |n: i64| s.decide(&Action::new("pay").with_arg("amount", n));
        assert_eq!(pay(5).verdict, Verdict::Allow, "{text}");
        assert_eq!(pay(50).verdict, Verdict::RequireApproval, "{text}");
        assert_eq!(pay(5000).verdict, Verdict::Deny, "{text}");
        assert_eq!(pay(5000).rule.as_deref(), Some("d"));
    }
}

#[test]
fn full_form_fields_narrow_rules() {
    let s = set(r#"
name: full
default: deny
rules:
  - id: coder-python
    effect: allow
    action: execute_code
    agents: ["coder-*"]
    when: "args.language == 'python'"
    reason: python is fine for coders
  - id: read-tools
    effect: allow
    action: "mcp.*"
    tool: [read_file, "list_*"]
    obligations: [redact]
"#);
    let code = |agent: &str, lang: &str| {
        s.decide(
            &Action::new("execute_code")
                .with_agent(agent)
                .with_arg("language", lang),
        )
    };
    let d = code("coder-1", "python");
    assert_eq!(
        (d.verdict, &*d.reason),
        (Verdict::Allow, "python is fine for coders")
    );
    assert_eq!(code("coder-1", "bash").verdict, Verdict::Deny);
    assert_eq!(code("writer", "python").verdict, Verdict::Deny);
    assert_eq!(
        s.decide(&Action::new("execute_code")).verdict,
        Verdict::Deny
    );

    let mcp = |tool: &str| s.decide(&Action::new("mcp.tools/call").with_tool(tool));
    let d = mcp("list_dir");
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(
        d.obligations.iter().map(|o| &**o).collect::<Vec<_>>(),
        ["redact"]
    );
    assert_eq!(mcp("write_file").verdict, Verdict::Deny);
    assert_eq!(
        s.decide(&Action::new("mcp.tools/call")).verdict,
        Verdict::Deny
    );
}

#[test]
fn document_default_applies_only_when_nothing_matches() {
    let s = set("default: allow\nrules:\n  - {action: rm, allow: false}\n");
    assert_eq!(s.decide(&Action::new("ls")).verdict, Verdict::Allow);
    assert_eq!(s.decide(&Action::new("rm")).verdict, Verdict::Deny);
    let s = set("default: require_approval\nrules:\n  - {action: ls, allow: true}\n");
    assert_eq!(
        s.decide(&Action::new("cat")).verdict,
        Verdict::RequireApproval
    );
}

#[test]
fn condition_errors_fail_closed() {
    // A deny rule whose condition cannot be evaluated denies, naming the error.
    let s = set(
        "rules:\n  - {id: big, effect: deny, action: q, when: 'args.rows > 100'}\n  - {action: q, allow: true}\n",
    );
    let d = s.decide(&Action::new("q"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.reason.contains("could not decide"), "{}", d.reason);
    assert_eq!(d.rule.as_deref(), Some("big"));
    assert_eq!(
        s.decide(&Action::new("q").with_arg("rows", 5)).verdict,
        Verdict::Allow
    );

    // An approval rule that errors denies too (skipping it would let the allow through).
    let s = set(
        "rules:\n  - {effect: require_approval, action: q, when: 'args.rows > 100'}\n  - {action: q, allow: true}\n",
    );
    assert_eq!(s.decide(&Action::new("q")).verdict, Verdict::Deny);

    // An allow rule that errors just does not allow.
    let s = set("rules:\n  - {action: q, allow: true, when: 'args.rows < 100'}\n");
    assert_eq!(s.decide(&Action::new("q")).verdict, Verdict::Deny);
    // A non-boolean condition is an error, not a truthy value.
    let s = set("rules:\n  - {action: q, allow: true, when: 'args.rows'}\n");
    assert_eq!(
        s.decide(&Action::new("q").with_arg("rows", 1)).verdict,
        Verdict::Deny
    );
}

#[test]
fn deny_rule_with_unreadable_url_denies() {
    let s = set(
        "rules:\n  - {id: no-evil, action: fetch, allow: false, domains: [evil.com]}\n  - {action: fetch, allow: true}\n",
    );
    assert_eq!(
        s.decide(&Action::new("fetch").with_arg("url", "https://ok.com/"))
            .verdict,
        Verdict::Allow
    );
    assert_eq!(
        s.decide(&Action::new("fetch").with_arg("url", "https://evil.com/"))
            .verdict,
        Verdict::Deny
    );
    let d = s.decide(&Action::new("fetch").with_arg("url", "::not a url::"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.reason.contains("`args.url`"), "{}", d.reason);
}

#[test]
fn explain_reports_every_rule_and_the_decider() {
    let s = set(BRIEF);
    let e = s.explain(&http("https://api.github.com/", "POST"));
    assert_eq!(e.decision.verdict, Verdict::Deny);
    assert_eq!(e.rules.len(), 2);
    assert_eq!(e.rules[0].status, Status::NotMatched);
    assert!(e.rules[0].detail.contains("not one this rule names"));
    assert_eq!(e.rules[1].status, Status::NotMatched);
    assert!(
        e.rules[1]
            .detail
            .contains("method `POST` is not in `methods`"),
        "{}",
        e.rules[1].detail
    );
    assert!(e.rules.iter().all(|r| !r.decided));

    let e = s.explain(&Action::new("execute_code"));
    assert!(e.rules[0].decided);
    assert_eq!(e.rules[0].status, Status::Matched);
}

#[test]
fn load_errors_name_file_line_column_and_hint() {
    let p = problems("rules:\n  - action: x\n    efect: deny\n");
    assert_eq!(
        p,
        ["bad.yaml:3:5: unknown field `efect` in a rule (hint: did you mean `effect`?)"]
    );

    let p = problems("rules:\n  - action: x\n    effect: alow\n");
    assert_eq!(
        p,
        [
            "bad.yaml:3:13: `effect` must be allow, deny or require_approval, found \"alow\" (hint: did you mean `allow`?)"
        ]
    );

    let p = problems("rules:\n  - action: \"[abc\"\n    allow: true\n");
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with("bad.yaml:2:13: `action`: invalid glob `[abc`"),
        "{p:?}"
    );

    let p = problems("rules:\n  - action: x\n    allow: true\n    when: \"args.n >\"\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("bad.yaml:4:"), "{p:?}");
    assert!(p[0].contains("invalid CEL expression"), "{p:?}");

    let p = problems("rules:\n  - action: x\n    allow: yes\n");
    assert!(
        p[0].contains("`allow` must be true or false, found the string \"yes\""),
        "{p:?}"
    );

    let p = problems(
        "rules:\n  - action: x\n    allow: true\n    domains: [\"https://api.github.com/\"]\n",
    );
    assert!(p[0].contains("write only the host"), "{p:?}");

    // Every problem is reported, not only the first.
    let p = problems("nmae: x\nrules:\n  - action: x\n  - allow: true\n    when: \"arg.x\"\n");
    assert_eq!(p.len(), 4, "{p:#?}");
    assert!(p[0].starts_with(
        "bad.yaml:1:1: unknown field `nmae` in the policy (hint: did you mean `name`?)"
    ));
    assert!(p[1].contains("3:5: a rule needs an `effect`"), "{p:?}");
    assert!(p[2].contains("4:5: a rule needs an `action`"), "{p:?}");
    assert!(
        p[3].contains("unknown variable `arg`") && p[3].contains("did you mean `args`?"),
        "{p:?}"
    );
}

#[test]
fn structural_mistakes_are_errors() {
    for (text, needle) in [
        ("", "empty"),
        ("rules: {}\n", "`rules` must be a list"),
        ("- a\n- b\n", "must be a mapping"),
        ("name: x\n", "no `rules:` list"),
        (
            "rules:\n  - {action: x, allow: true, effect: deny}\n",
            "both `effect` and `allow`",
        ),
        (
            "rules:\n  - {id: a, action: x, allow: true}\n  - {id: a, action: y, allow: true}\n",
            "used twice",
        ),
        (
            "rules:\n  - {action: x, allow: true, obligations: [redcat]}\n",
            "did you mean `redact`?",
        ),
        (
            "rules:\n  - {action: x, allow: true, methods: [\"G E T\"]}\n",
            "not an HTTP method",
        ),
        (
            "rules:\n  - {action: [], allow: true}\n",
            "must not be an empty list",
        ),
        (
            "rules:\n  - {action: 5, allow: true}\n",
            "must be a string or a list of strings",
        ),
        (
            "default: maybe\nrules: []\n",
            "`default` must be allow, deny or require_approval",
        ),
    ] {
        let p = problems(text).join("\n");
        assert!(p.contains(needle), "{text:?} → {p}");
    }
}

#[test]
fn a_set_loads_directories_and_rejects_other_files() {
    let dir = std::env::temp_dir().join(format!("warden-policy-set-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.yaml"), BRIEF).unwrap();
    std::fs::write(
        dir.join("b.yml"),
        "name: extra\nrules:\n  - {action: send_email, allow: true}\n",
    )
    .unwrap();
    std::fs::write(dir.join("cases.test.yaml"), "cases: []\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "not a policy").unwrap();
    let s = PolicySet::load(&[&dir]).unwrap();
    assert_eq!(s.documents().len(), 2);
    assert_eq!(s.decide(&Action::new("send_email")).verdict, Verdict::Allow);
    assert_eq!(
        s.decide(&Action::new("execute_code")).verdict,
        Verdict::Deny
    );

    let e = PolicySet::load(&[dir.join("notes.txt")]).unwrap_err();
    assert!(e.to_string().contains("not a policy file"), "{e}");
    let e = PolicySet::load(&[dir.join("missing.yaml")]).unwrap_err();
    assert!(e.to_string().contains("cannot read policy"), "{e}");
    std::fs::write(
        dir.join("dup.yaml"),
        "name: extra\nrules:\n  - {action: x, allow: true}\n",
    )
    .unwrap();
    let e = PolicySet::load(&[&dir]).unwrap_err();
    assert!(
        e.to_string().contains("two policies are named `extra`"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
