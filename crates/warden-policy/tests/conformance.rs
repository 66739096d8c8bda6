//! Cedar and Rego beside YAML.
//!
//! `conformance_cases_agree_across_backends` runs every case of `tests/conformance/cases.jsonl`
//! (repo root) through the same policy written in YAML, Cedar and Rego, and lists every
//! disagreement. Adding a case is adding one line to that file. The other tests pin down
//! what the backends add: fail-closed errors, load problems with positions, mixed sets,
//! explain, and the sibling schema/entities files of a Cedar policy.

use std::path::{Path, PathBuf};

use serde_json::Value;
use warden_core::{Action, Verdict};
use warden_policy::{Document, PolicySet, Source, Status};

const BACKENDS: &[&str] = &["yaml", "cedar", "rego"];

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/conformance")
}

/// A fresh directory under the system temp dir for one test.
fn scratch(test: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warden-backends-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

fn compile(files: &[(&str, &str)]) -> PolicySet {
    let sources: Vec<Source> = files.iter().map(|(p, t)| Source::new(*p, t)).collect();
    PolicySet::compile(&sources).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn conformance_cases_agree_across_backends() {
    let dir = conformance_dir();
    let text = std::fs::read_to_string(dir.join("cases.jsonl")).unwrap();
    let mut sets = std::collections::HashMap::new();
    let mut failures = Vec::new();
    let mut count = 0;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with("//") {
            continue;
        }
        count += 1;
        let case: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("cases.jsonl:{}: {e}", n + 1));
        let policy = case["policy"].as_str().expect("`policy` is a string");
        // Not `Action::from_json`: cases may hold an empty action name on purpose.
        let action: Action = serde_json::from_value(case["action"].clone())
            .unwrap_or_else(|e| panic!("cases.jsonl:{}: bad action: {e}", n + 1));
        let expect: Verdict = case["expect"].as_str().expect("`expect`").parse().unwrap();
        for backend in BACKENDS {
            let set = sets
                .entry((policy.to_string(), *backend))
                .or_insert_with(|| {
                    let file = dir.join(format!("{policy}.{backend}"));
                    PolicySet::load(&[&file]).unwrap_or_else(|e| panic!("{e}"))
                });
            let d = set.decide(&action);
            if d.verdict != expect {
                failures.push(format!(
                    "cases.jsonl:{} [{policy}.{backend}] expected {expect}, got {} ({})",
                    n + 1,
                    d.verdict,
                    d.reason
                ));
            }
        }
    }
    assert!(count >= 60, "only {count} conformance cases");
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn erroring_cedar_forbid_denies() {
    // Cedar alone would allow: the forbid errors (no `args.n`) and is skipped.
    let set = compile(&[(
        "limits.cedar",
        r#"permit (principal, action, resource);
           @id("no-big-n") forbid (principal, action, resource) when { context.args.n > 5 };"#,
    )]);
    let d = set.decide(&Action::new("anything"));
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert_eq!(d.policy.as_deref(), Some("limits"));
    assert_eq!(d.rule.as_deref(), Some("no-big-n"));
    assert!(d.reason.contains("no-big-n"), "{}", d.reason);
    // A type error is an error too.
    let d = set.decide(&Action::new("anything").with_arg("n", "six"));
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert_eq!(
        set.decide(&Action::new("x").with_arg("n", 1)).verdict,
        Verdict::Allow
    );
}

#[test]
fn rego_runtime_error_denies() {
    let set = compile(&[(
        "numbers.rego",
        "package warden\nallow := true\ndeny if to_number(input.args.n) > 5\n",
    )]);
    let d = set.decide(&Action::new("x").with_arg("n", "not a number"));
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert_eq!(d.policy.as_deref(), Some("numbers"));
    assert_eq!(d.rule.as_deref(), Some("deny"));
    assert_eq!(
        set.decide(&Action::new("x").with_arg("n", "1")).verdict,
        Verdict::Allow
    );
    // Non-booleans where booleans are expected are errors, not allows.
    let set = compile(&[("strings.rego", "package warden\nallow := \"yes\"\n")]);
    let d = set.decide(&Action::new("x"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.reason.contains("must be a boolean"), "{}", d.reason);
}

#[test]
fn rego_undefined_is_not_an_allow() {
    let set = compile(&[("u.rego", "package warden\nallow if input.args.ok == true\n")]);
    let d = set.decide(&Action::new("x"));
    assert_eq!(d.verdict, Verdict::Deny);
    assert_eq!(d.rule, None, "the default decided: {}", d.reason);
}

#[test]
fn rego_decision_object_is_read_first() {
    let set = compile(&[(
        "d.rego",
        r#"package warden
decision := {"require_approval": true, "reason": "big"} if input.args.n > 10
decision := {"allow": true} if input.args.n <= 10
allow := false
"#,
    )]);
    let d = set.decide(&Action::new("x").with_arg("n", 11));
    assert_eq!((d.verdict, &*d.reason), (Verdict::RequireApproval, "big"));
    assert_eq!(
        set.decide(&Action::new("x").with_arg("n", 1)).verdict,
        Verdict::Allow
    );
}

#[test]
fn mixed_set_combines_deny_overrides_and_explains_every_language() {
    let set = compile(&[
        (
            "allow-all.yaml",
            "rules:\n  - action: \"*\"\n    allow: true\n",
        ),
        (
            "approvals.cedar",
            "@id(\"deploy-approval\") @effect(\"require_approval\") permit (principal, action == Action::\"deploy\", resource);",
        ),
        (
            "guard.rego",
            "package warden\ndeny if input.action == \"drop_table\"\nreason := \"never drop tables\"\n",
        ),
    ]);
    assert_eq!(set.documents().len(), 3);
    assert!(matches!(set.documents()[1], Document::Cedar(_)));
    assert!(matches!(set.documents()[2], Document::Rego(_)));
    assert_eq!(set.rule_count(), 3);

    let e = set.explain(&Action::new("drop_table"));
    assert_eq!(e.decision.verdict, Verdict::Deny);
    assert_eq!(&*e.decision.reason, "never drop tables");
    let decided: Vec<_> = e.rules.iter().filter(|t| t.decided).collect();
    assert_eq!(decided.len(), 1);
    assert_eq!((&*decided[0].policy, &*decided[0].rule), ("guard", "deny"));

    let e = set.explain(&Action::new("deploy"));
    assert_eq!(e.decision.verdict, Verdict::RequireApproval);
    let decided = e.rules.iter().find(|t| t.decided).unwrap();
    assert_eq!(
        (&*decided.policy, &*decided.rule),
        ("approvals", "deploy-approval")
    );
    assert_eq!(decided.status, Status::Matched);

    let e = set.explain(&Action::new("read"));
    assert_eq!(e.decision.verdict, Verdict::Allow);
    let decided = e.rules.iter().find(|t| t.decided).unwrap();
    assert_eq!(&*decided.policy, "allow-all");
    let cedar = e.rules.iter().find(|t| &*t.policy == "approvals").unwrap();
    assert_eq!(cedar.status, Status::NotMatched);
}

#[test]
fn explain_reports_cedar_errors() {
    let set = compile(&[(
        "c.cedar",
        "@id(\"f\") forbid (principal, action, resource) when { context.args.n > 5 };",
    )]);
    let e = set.explain(&Action::new("x"));
    assert_eq!(e.decision.verdict, Verdict::Deny);
    assert_eq!(e.rules.len(), 1);
    assert_eq!(e.rules[0].status, Status::Error);
    assert!(e.rules[0].decided);
}

#[test]
fn parse_errors_are_problems_with_positions() {
    let dir = scratch(
        "parse-errors",
        &[
            (
                "a.cedar",
                "permit (principal, action, resource);\n\nforbid (principal, action resource);\n",
            ),
            ("b.rego", "package warden\n\nallow if {\n  input.x ==\n}\n"),
            ("c.rego", "package other\nallow := true\n"),
            ("d.rego", "package warden\nallow if nope.fn(input.x)\n"),
            ("e.yaml", "rules:\n  - action: x\n    allow: true\n"),
        ],
    );
    let e = PolicySet::load(&[&dir]).unwrap_err();
    let problems = e.problems();
    let find = |file: &str| {
        problems
            .iter()
            .find(|p| p.file().ends_with(file))
            .unwrap_or_else(|| panic!("no problem for {file}: {e}"))
    };
    assert_eq!(find("a.cedar").position().line, 3, "{}", find("a.cedar"));
    assert_eq!(find("b.rego").position().line, 5, "{}", find("b.rego"));
    assert!(find("c.rego").message().contains("package other"));
    let d = find("d.rego");
    assert_eq!((d.position().line, d.position().column), (2, 10), "{d}");
    assert!(d.message().contains("nope.fn"), "{d}");
    assert!(problems.iter().all(|p| !p.file().ends_with("e.yaml")));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn directory_load_picks_up_every_language_but_not_tests_or_siblings() {
    let dir = scratch(
        "dir-load",
        &[
            ("a.yaml", "rules:\n  - action: read\n    allow: true\n"),
            (
                "b.cedar",
                "permit (principal, action == Action::\"write\", resource);",
            ),
            (
                "b.cedarschema",
                "entity Agent; entity Tool; entity Resource;\naction \"write\" appliesTo { principal: Agent, resource: [Tool, Resource], context: {} };\n",
            ),
            ("b.entities.json", "[]"),
            ("c.rego", "package warden\ndeny if input.action == \"rm\"\n"),
            ("d.test.yaml", "this is not a policy: ["),
        ],
    );
    let set = PolicySet::load(&[&dir]).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = set
        .documents()
        .iter()
        .map(|d| d.name().to_string())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(set.decide(&Action::new("write")).verdict, Verdict::Allow);
    assert_eq!(set.decide(&Action::new("rm")).verdict, Verdict::Deny);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cedar_schema_and_entities_next_to_the_policy_are_used() {
    let dir = scratch(
        "cedar-siblings",
        &[
            (
                "team.cedar",
                "permit (principal in Team::\"ops\", action == Action::\"deploy\", resource);",
            ),
            (
                "team.entities.json",
                r#"[{"uid": {"type": "Agent", "id": "ops-bot"}, "attrs": {}, "parents": [{"type": "Team", "id": "ops"}]},
                    {"uid": {"type": "Team", "id": "ops"}, "attrs": {}, "parents": []}]"#,
            ),
        ],
    );
    let set = PolicySet::load(&[dir.join("team.cedar")]).unwrap_or_else(|e| panic!("{e}"));
    let ops = Action::new("deploy").with_agent("ops-bot");
    assert_eq!(set.decide(&ops).verdict, Verdict::Allow);
    assert_eq!(
        set.decide(&Action::new("deploy").with_agent("eve")).verdict,
        Verdict::Deny
    );

    // A schema that the policy violates is a load problem in the policy file.
    std::fs::write(
        dir.join("team.cedarschema"),
        "entity Team; entity Agent in [Team]; entity Tool; entity Resource;\naction \"read\" appliesTo { principal: Agent, resource: [Tool, Resource], context: {} };\n",
    )
    .unwrap();
    let e = PolicySet::load(&[dir.join("team.cedar")]).unwrap_err();
    assert!(
        e.problems()
            .iter()
            .any(|p| p.file().ends_with("team.cedar") && p.message().contains("Cedar validation")),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cedar_and_rego_see_the_same_action_shape() {
    let action = Action::new("call")
        .with_agent("a")
        .with_tool("t")
        .with_arg("k", "v")
        .with_context("env", "prod");
    let cedar = compile(&[(
        "c.cedar",
        r#"permit (principal == Agent::"a", action == Action::"call", resource == Tool::"t")
           when { context.args.k == "v" && context.context.env == "prod" };"#,
    )]);
    assert_eq!(cedar.decide(&action).verdict, Verdict::Allow);
    let rego = compile(&[(
        "r.rego",
        r#"package warden
allow if {
  input.agent == "a"; input.action == "call"; input.tool == "t"
  input.args.k == "v"; input.context.env == "prod"
  not input.resource
}"#,
    )]);
    assert_eq!(rego.decide(&action).verdict, Verdict::Allow);
    // No agent: Cedar sees `Agent::"anonymous"`; resource falls back to `Resource::"…"`.
    let anon = compile(&[(
        "anon.cedar",
        r#"permit (principal == Agent::"anonymous", action, resource == Resource::"none");
           permit (principal, action, resource == Resource::"db");"#,
    )]);
    assert_eq!(anon.decide(&Action::new("x")).verdict, Verdict::Allow);
    assert_eq!(
        anon.decide(&Action::new("x").with_agent("z").with_resource("db"))
            .verdict,
        Verdict::Allow
    );
    assert_eq!(
        anon.decide(&Action::new("x").with_agent("z")).verdict,
        Verdict::Deny
    );
}

#[test]
fn rego_evaluates_on_many_threads_and_after_reload() {
    let text = "package warden\nallow if input.args.n < 100\ndeny if input.args.n == 13\n";
    for _ in 0..2 {
        // A fresh set each round, as a reload would make: per-thread engines must follow.
        let set = compile(&[("t.rego", text)]);
        std::thread::scope(|s| {
            for t in 0..4 {
                let set = &set;
                s.spawn(move || {
                    for n in 0..50 {
                        let v = set.decide(&Action::new("x").with_arg("n", n + t)).verdict;
                        let want = if n + t == 13 {
                            Verdict::Deny
                        } else {
                            Verdict::Allow
                        };
                        assert_eq!(v, want, "n = {}", n + t);
                    }
                });
            }
        });
    }
}
