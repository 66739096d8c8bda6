//! What a hostile policy file, policy directory or request can do to the policy engine — each
//! test is a reproduction from the "Fail closed under attack" issue, and fails without its fix.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use warden_core::{Action, Verdict};
use warden_policy::{Limits, LoadError, PolicySet, Source, Watched};

fn compile(path: &str, text: &str) -> Result<PolicySet, LoadError> {
    PolicySet::compile(&[Source::new(path, text)])
}

fn set(path: &str, text: &str) -> PolicySet {
    compile(path, text).unwrap_or_else(|e| panic!("{e}"))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// Run `f` on its own thread and fail (rather than hang) if it takes more than a minute.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("did not finish: the evaluation is not bounded")
}

// ---- 4. Cedar must not drop values it cannot represent -----------------------------------

#[test]
fn cedar_has_guard_sees_null_floats_and_huge_integers() {
    let s = set(
        "/nonexistent/payments.cedar",
        r#"permit(principal, action == Action::"pay", resource);
           @id("big") forbid(principal, action == Action::"pay", resource)
           when { context.args has amount && context.args.amount > 1000 };"#,
    );
    let pay = |amount: Value| s.decide(&Action::new("pay").with_arg("amount", amount));
    assert_eq!(pay(json!(500)).verdict, Verdict::Allow);
    assert_eq!(pay(json!(5000)).verdict, Verdict::Deny);
    let huge: Value = serde_json::from_str("1e19").unwrap();
    for amount in [json!(1e6), json!(5000.5), huge, Value::Null] {
        let d = pay(amount.clone());
        assert_eq!(d.verdict, Verdict::Deny, "amount {amount}: {}", d.reason);
        assert_eq!(
            d.rule.as_deref(),
            Some("big"),
            "amount {amount}: {}",
            d.reason
        );
    }
    // A value no policy reads does not get in the way.
    let d = s.decide(&Action::new("pay").with_arg("temperature", 0.7));
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
}

// ---- 5. URLs that parsers read differently ------------------------------------------------

#[test]
fn urls_parsers_disagree_on_are_never_allowed_and_deny_in_deny_rules() {
    let allow = set(
        "allow.yaml",
        "rules:\n  - {action: http_request, allow: true, domains: [api.github.com]}\n",
    );
    let deny = set(
        "deny.yaml",
        "rules:\n  - {id: no-evil, action: http_request, allow: false, domains: [evil.com]}\n  - {action: http_request, allow: true}\n",
    );
    for url in [
        "https://api.github.com\\@evil.com/",
        "https://evil.com\\@api.github.com/",
        "https://api.github.com\t@evil.com/",
        "https://api.github.com\r\n.evil.com/",
        "https://user@api.github.com/",
        "https://api.github.com%2f@evil.com/",
        "https://%65vil.com/",
        "https://api%2egithub%2ecom/",
        "https://[fe80::1%25eth0]/",
        "https://api.github.com../",
        "https://ｅvil.com/",
        "https:evil.com/",
        "https:///evil.com/",
        "http://0x7f.1/",
        // Found by the `url_host_differential` fuzz target:
        "https://`s://api.github.com/",
        "https:/evil.com//x://api.github.com/",
    ] {
        let a = Action::new("http_request").with_arg("url", url);
        let d = allow.decide(&a);
        assert_eq!(
            d.verdict,
            Verdict::Deny,
            "{url:?} was allowed: {}",
            d.reason
        );
        let d = deny.decide(&a);
        assert_eq!(
            d.verdict,
            Verdict::Deny,
            "{url:?} got past the deny rule: {}",
            d.reason
        );
        assert!(d.reason.contains("`args.url`"), "{url:?}: {}", d.reason);
    }
    let ok = Action::new("http_request").with_arg("url", "https://API.github.com.:443/x");
    assert_eq!(allow.decide(&ok).verdict, Verdict::Allow);
    for host in [
        "api.github.com\\evil.com",
        "api.github.com%2e",
        "user@api.github.com",
        "0x7f.1",
    ] {
        let a = Action::new("http_request").with_arg("host", host);
        assert_eq!(allow.decide(&a).verdict, Verdict::Deny, "{host:?}");
    }
}

// ---- 6. Policy directories never shrink silently -----------------------------------------

const GUARD: &str = "name: guard\nrules:\n  - {action: execute_code, allow: false}\n";
const OPEN: &str = "name: open\ndefault: allow\nrules:\n  - {action: read, allow: true}\n";

#[test]
fn upper_case_extensions_are_policies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("open.yaml"), OPEN).unwrap();
    std::fs::write(dir.path().join("Guard.YAML"), GUARD).unwrap();
    let s = PolicySet::load(&[dir.path()]).unwrap();
    assert_eq!(s.documents().len(), 2);
    assert_eq!(
        s.decide(&Action::new("execute_code")).verdict,
        Verdict::Deny
    );
    // A test file stays a test file whatever its case.
    std::fs::write(dir.path().join("cases.TEST.yaml"), "cases: []\n").unwrap();
    assert_eq!(PolicySet::load(&[dir.path()]).unwrap().documents().len(), 2);
}

#[cfg(unix)]
#[test]
fn a_dangling_policy_link_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("open.yaml"), OPEN).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.yaml"), dir.path().join("guard.yaml"))
        .unwrap();
    let e = PolicySet::load(&[dir.path()]).unwrap_err();
    let p = &e.problems()[0];
    assert!(p.file().ends_with("guard.yaml"), "{p}");
    assert!(p.message().contains("no such file or directory"), "{p}");
}

#[test]
fn a_subdirectory_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("open.yaml"), OPEN).unwrap();
    std::fs::create_dir(dir.path().join("guards")).unwrap();
    std::fs::write(dir.path().join("guards/guard.yaml"), GUARD).unwrap();
    let e = PolicySet::load(&[dir.path()]).unwrap_err();
    assert!(e.problems()[0].file().ends_with("guards"), "{e}");
    // Hidden entries (editor files, `.git`) are not policies.
    std::fs::remove_dir_all(dir.path().join("guards")).unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    std::fs::write(dir.path().join(".#open.yaml"), "junk: [").unwrap();
    assert!(PolicySet::load(&[dir.path()]).is_ok());
}

#[test]
fn a_missing_path_is_one_problem_naming_it() {
    let e = PolicySet::load(&["/nonexistent/policy.yaml"]).unwrap_err();
    assert_eq!(e.problems().len(), 1, "{:?}", e.problems());
    assert_eq!(
        e.problems()[0].to_string(),
        "/nonexistent/policy.yaml: cannot read policy: no such file or directory"
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_named_like_a_policy_does_not_hang_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("guard.yaml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        return; // no mkfifo here: nothing to test
    }
    let e = bounded(move || PolicySet::load(&[fifo]).unwrap_err().to_string());
    assert!(e.contains("not a regular file"), "{e}");
}

// ---- 7. The README's Rego example checks types -------------------------------------------

#[test]
fn the_rego_example_does_not_allow_non_numbers() {
    let s = PolicySet::load(&[repo("examples/mixed/payments.rego")]).unwrap();
    let pay = |amount: Value| {
        s.decide(&Action::new("payments.transfer").with_arg("amount", amount))
            .verdict
    };
    assert_eq!(pay(json!(50.5)), Verdict::Allow);
    assert_eq!(pay(json!(500)), Verdict::RequireApproval);
    for amount in [
        Value::Null,
        json!(true),
        json!("50.5"),
        json!([1]),
        json!({}),
    ] {
        assert_eq!(pay(amount.clone()), Verdict::Deny, "amount {amount}");
    }
    assert_eq!(
        s.decide(&Action::new("payments.transfer")).verdict,
        Verdict::Deny
    );
}

// ---- 8. CEL equality on mismatched types is an error -------------------------------------

#[test]
fn cel_equality_on_other_types_denies_in_restricting_rules() {
    // The first `when` runs natively (fast.rs), the second in the CEL interpreter.
    for when in [
        "context.env == 'prod'",
        "context.env == 'prod' && size(action) > 0",
    ] {
        for (effect, other) in [("deny", "allow"), ("require_approval", "allow")] {
            let s = set(
                "t.yaml",
                &format!(
                    "rules:\n  - {{id: guard, action: deploy, effect: {effect}, when: \"{when}\"}}\n  - {{action: deploy, effect: {other}}}\n"
                ),
            );
            let deploy = |env: Value| s.decide(&Action::new("deploy").with_context("env", env));
            assert_eq!(deploy(json!("dev")).verdict, Verdict::Allow, "{when}");
            for env in [
                Value::Null,
                json!(["prod"]),
                json!(5),
                json!({"name": "prod"}),
            ] {
                let d = deploy(env.clone());
                assert_eq!(
                    d.verdict,
                    Verdict::Deny,
                    "{when} with env {env}: {}",
                    d.reason
                );
                assert_eq!(d.rule.as_deref(), Some("guard"), "{when}");
            }
        }
    }
    // `!=` and `in` too; comparing with the literal `null` is how absence is tested.
    let s = set(
        "t.yaml",
        "rules:\n  - {id: ne, action: a, allow: false, when: \"context.env != 'dev'\"}\n  - {id: in, action: b, allow: false, when: \"context.env in ['prod', 'staging']\"}\n  - {id: null-ok, action: c, allow: true, when: \"context.env == null\"}\n  - {action: '*', effect: allow}\n",
    );
    for action in ["a", "b"] {
        let d = s.decide(&Action::new(action).with_context("env", Value::Null));
        assert_eq!(d.verdict, Verdict::Deny, "{action}: {}", d.reason);
    }
    let d = s.decide(&Action::new("c").with_context("env", "prod"));
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
}

// ---- 13. YAML aliases and nesting are bounded --------------------------------------------

#[test]
fn a_billion_laughs_is_refused_before_it_expands() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text.push_str("rules: *a9\n");
    assert!(text.len() < 600, "{}", text.len());
    let e = bounded(move || compile("laughs.yaml", &text).unwrap_err());
    let p = &e.problems()[0];
    assert!(p.message().contains("more than"), "{p}");
    assert!(p.message().contains("YAML nodes"), "{p}");
    assert!(p.is_located() && p.position().line > 1, "{p}");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for (path, text) in [
        ("deep.yaml", format!("rules: {}", "[".repeat(100_000))),
        ("deep2.yaml", format!("rules:\n{}", "- ".repeat(50_000))),
        (
            "deep.rego",
            format!("package warden\nallow if {}", "[".repeat(100_000)),
        ),
        (
            "/nonexistent/deep.cedar",
            format!(
                "permit(principal, action, resource) when {{ {} }};",
                "(".repeat(100_000)
            ),
        ),
    ] {
        let e = bounded(move || compile(path, &text).unwrap_err());
        // Ours, or the YAML parser's own limit, which it reaches first on flow collections.
        let e = e.to_string();
        assert!(
            e.contains("deeper than 64") || e.contains("recursion limit exceeded"),
            "{path}: {e}"
        );
    }
}

// ---- 14. Rego evaluation is bounded -------------------------------------------------------

#[test]
fn recursive_rego_is_refused_at_load() {
    for text in [
        "package warden\nf(x) := f(x)\nallow if f(1)\n",
        "package warden\nf(x) := g(x)\ng(x) := f(x)\nallow if f(1)\n",
        "package warden\nf(x) := y if { y := data.warden.f(x) }\nallow if f(1)\n",
        "package warden\nh(x) := x\nf(x) := y if { y := h(x) with h as f }\nallow if f(1)\n",
    ] {
        let e = compile("r.rego", text).unwrap_err();
        assert!(e.to_string().contains("recursive"), "{text}: {e}");
    }
    // Calling other functions is fine.
    set(
        "ok.rego",
        "package warden\nf(x) := x + 1\ng(x) := f(x)\nallow if g(1) == 2\n",
    );
}

#[test]
fn long_rego_rule_chains_are_refused_and_short_ones_run_on_small_stacks() {
    let chain = |n: usize, call: bool| {
        let mut t = String::from("package warden\nallow if r0(1)\n");
        for i in 0..n {
            let next = if call {
                format!("r{}(x)", i + 1)
            } else {
                format!("r{}", i + 1)
            };
            t.push_str(&format!("r{i}(x) := {next}\n"));
        }
        t.push_str(&format!("r{n}(x) := true\n"));
        if !call {
            t = t.replace("(x)", "").replace("r0(1)", "r0");
        }
        t
    };
    for call in [false, true] {
        let e = compile("chain.rego", &chain(1000, call)).unwrap_err();
        assert!(e.to_string().contains("chain of more than 64 rules"), "{e}");
        assert_eq!(e.problems().len(), 1, "{e}");
        // At the limit, deciding fits the 2 MiB stack of a spawned thread (debug build).
        let s = set("chain.rego", &chain(62, call));
        let d = bounded(move || s.decide(&Action::new("x")));
        assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    }
}

fn rego_denies_quickly(policy: &'static str, n: i64) {
    let s = set("p.rego", policy);
    let d = bounded(move || {
        s.decide(
            &Action::new("x")
                .with_arg("n", n)
                .with_arg("s", "ab".repeat(50)),
        )
    });
    assert_eq!(d.verdict, Verdict::Deny, "{policy}: {}", d.reason);
    assert!(d.reason.contains("could not decide"), "{}", d.reason);
}

#[test]
fn input_controlled_ranges_and_strings_are_bounded() {
    rego_denies_quickly(
        "package warden\nallow if count(numbers.range(0, input.args.n)) > 0\n",
        1_000_000_000,
    );
    rego_denies_quickly(
        "package warden\nallow if count(numbers.range_step(0, input.args.n, 1)) > 0\n",
        1_000_000_000_000,
    );
    rego_denies_quickly(
        "package warden\nallow if { s := concat(\"\", [x | some i in numbers.range(1, input.args.n); x := input.args.s]); count(s) > 0 }\n",
        1_000_000_000,
    );
    rego_denies_quickly(
        "package warden\nallow if { s := replace(replace(replace(input.args.s, \"\", input.args.s), \"\", input.args.s), \"\", input.args.s); count(s) > 0 }\n",
        0,
    );
    rego_denies_quickly(
        "package warden\nallow if bits.lsh(1, input.args.n) > 0\n",
        4_000_000_000,
    );
    // Loops that allocate little but never end are stopped by the time limit.
    rego_denies_quickly(
        "package warden\nallow if { xs := numbers.range(1, 100000); count([1 | some a in xs; some b in xs; a == b + input.args.n]) > 0 }\n",
        -1,
    );
    // Small inputs still work, and the builtins keep their meaning.
    let s = set(
        "ok.rego",
        "package warden\nallow if { numbers.range(3, 1) == [3, 2, 1]; numbers.range_step(0, 10, 4) == [0, 4, 8]; replace(\"ab\", \"\", \"-\") == \"-a-b-\"; strings.replace_n({\"a\": \"1\", \"b\": \"2\"}, \"abc\") == \"12c\"; bits.lsh(1, 3) == 8 }\n",
    );
    assert_eq!(s.decide(&Action::new("x")).verdict, Verdict::Allow);
}

#[test]
fn numbers_with_huge_exponents_are_refused() {
    // Found by the `policy_rego` fuzz target: regorus computes `0e88888888` exactly.
    let e = bounded(|| {
        compile(
            "n.rego",
            "package warden\nf0(0e88888888) := 1\nallow if true\n",
        )
        .unwrap_err()
    });
    assert!(e.to_string().contains("exponent beyond"), "{e}");
    // The same from the agent, through the builtins that read numbers from strings.
    for policy in [
        "package warden\nallow if to_number(input.args.s) > 0\n",
        "package warden\nallow if json.unmarshal(input.args.s) > 0\n",
    ] {
        let s = set("n.rego", policy);
        let d = bounded(move || s.decide(&Action::new("x").with_arg("s", "1e99999999")));
        assert_eq!(d.verdict, Verdict::Deny, "{policy}: {}", d.reason);
        assert!(d.reason.contains("could not decide"), "{}", d.reason);
    }
    let s = set(
        "ok.rego",
        "package warden\nallow if { to_number(\"12.5\") == 12.5; json.unmarshal(\"[1, {\\\"a\\\": null}]\") == [1, {\"a\": null}]; json.is_valid(\"{}\"); not json.is_valid(\"{\") }\n",
    );
    assert_eq!(s.decide(&Action::new("x")).verdict, Verdict::Allow);
    let e = compile(
        "u.rego",
        "package warden\nallow if units.parse(input.args.s) > 0\n",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("unknown function `units.parse`"),
        "{e}"
    );
}

#[test]
fn a_panic_inside_regorus_denies_and_the_next_decision_still_works() {
    // Found by the `policy_rego` fuzz target: regorus panics formatting an error about a number
    // too large to print (`4444… * 8888… & …`).
    let text = include_str!("../../../fuzz/corpus/policy_rego/seed-found-panic");
    let d = bounded(move || match compile("panic.rego", text) {
        Ok(s) => s.decide(&Action::new("x")).reason.to_string(),
        Err(e) => e.to_string(),
    });
    assert!(d.contains("regorus panicked"), "{d}");
    let s = set(
        "p.rego",
        "package warden\nallow if input.args.n * 2 == 4\ndeny if { x := 44444444444444444444444444 * 88888888888888888888888888888888 * input.args.n * 888888888888888888888888888888888888888888888888888888888888888; y := x & {1} }\n",
    );
    let d = bounded(move || {
        let first = s.decide(&Action::new("x").with_arg("n", 2));
        let second = s.decide(&Action::new("x").with_arg("n", 2));
        (first, second)
    });
    for d in [d.0, d.1] {
        assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    }
}

#[test]
fn input_controlled_sprintf_formats_are_refused() {
    let e = compile(
        "f.rego",
        "package warden\nallow if sprintf(input.args.f, [1]) == \"1\"\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("sprintf"), "{e}");
    let e = compile(
        "i.rego",
        "package warden\nimport data.warden\nallow if true\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("cannot import `data`"), "{e}");
}

// ---- 15. Size limits --------------------------------------------------------------------

#[test]
fn size_limits_are_load_errors() {
    let mut limits = Limits::default();
    limits.max_rules_per_document = 3;
    limits.max_documents = 1;
    limits.max_file_bytes = 200;
    let rules = "rules:\n".to_string() + &"  - {action: x, allow: true}\n".repeat(4);
    let e = PolicySet::compile_with(&[Source::new("many.yaml", &rules)], &limits).unwrap_err();
    assert!(e.to_string().contains("the limit is 3"), "{e}");
    let two = [Source::new("a.yaml", GUARD), Source::new("b.yaml", OPEN)];
    let e = PolicySet::compile_with(&two, &limits).unwrap_err();
    assert!(
        e.to_string().contains("more than 1 policy documents"),
        "{e}"
    );
    let big = format!("{GUARD}# {}\n", "x".repeat(300));
    let e = PolicySet::compile_with(&[Source::new("big.yaml", &big)], &limits).unwrap_err();
    assert!(
        e.to_string().contains("larger than the limit of 200 bytes"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.yaml"), &big).unwrap();
    let e = PolicySet::load_with(&[dir.path()], &limits).unwrap_err();
    assert!(e.to_string().contains("larger than the limit"), "{e}");
}

#[test]
fn twenty_thousand_rules_load_and_duplicates_are_still_found() {
    let mut text = String::from("rules:\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "  - {{id: r{i}, action: act, effect: deny, when: \"args.n > {i}\"}}\n"
        ));
    }
    let s = bounded({
        let text = text.clone();
        move || set("big.yaml", &text)
    });
    assert_eq!(s.rule_count(), 20_000);
    text.push_str("  - {id: r17, action: act, effect: deny}\n");
    let e = compile("big.yaml", &text).unwrap_err();
    assert!(
        e.to_string()
            .contains("rule id `r17` is used twice (first on line 19)"),
        "{e}"
    );
    assert_eq!(e.problems()[0].position().line, 20_002);
}

// ---- 18. A set names every file it read ---------------------------------------------------

#[test]
fn sources_include_cedar_entities_and_schema_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let cedar = dir.path().join("teams.cedar");
    std::fs::write(
        &cedar,
        r#"permit(principal in Team::"ops", action == Action::"deploy", resource);"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("teams.entities.json"),
        r#"[{"uid": {"type": "Agent", "id": "bot"}, "attrs": {}, "parents": [{"type": "Team", "id": "ops"}]}]"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("guard.yaml"), GUARD).unwrap();
    let s = PolicySet::load(&[dir.path()]).unwrap();
    let sources: Vec<&Path> = s.sources().collect();
    assert!(sources.contains(&cedar.as_path()), "{sources:?}");
    assert!(
        sources.contains(&dir.path().join("teams.entities.json").as_path()),
        "{sources:?}"
    );
    assert!(
        sources.contains(&dir.path().join("guard.yaml").as_path()),
        "{sources:?}"
    );
    let watched: Vec<&Watched> = s.watched().collect();
    assert!(
        watched.contains(&&Watched::Directory(dir.path().to_path_buf())),
        "{watched:?}"
    );
    assert!(
        watched.contains(&&Watched::Absent(dir.path().join("teams.cedarschema"))),
        "{watched:?}"
    );
    assert!(warden_policy::is_policy_file(Path::new("new.Rego")));
}

// ---- One error convention -----------------------------------------------------------------

#[test]
fn a_load_error_renders_every_problem_with_snippets_and_no_code() {
    let e = compile(
        "bad.yaml",
        "rules:\n  - action: x\n    efect: deny\n  - action: y\n    effect: alow\n",
    )
    .unwrap_err();
    assert_eq!(e.problems().len(), 2, "{e}");
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, &e)
        .unwrap();
    assert!(out.contains("bad.yaml:3:5: unknown field `efect`"), "{out}");
    assert!(out.contains("did you mean `effect`?"), "{out}");
    assert!(out.contains("bad.yaml:5:13"), "{out}");
    assert!(out.contains("effect: alow"), "snippet missing: {out}");
    assert!(!out.contains("warden::policy"), "{out}");
    assert!(!out.contains("--policy"), "{out}");
}

#[test]
fn nested_rego_literals_do_not_take_exponential_time() {
    // Found by the `policy_rego` fuzz target: 33 unclosed `[` kept regorus' parser busy for
    // longer than anyone would wait (each level doubles its time, balanced or not).
    for text in [
        format!(
            "package warden\nallow if {{\n\tinput.x{} y\n}}\n",
            "[".repeat(33)
        ),
        format!(
            "package warden\nallow if {{\n\tx := {}1{}\n}}\n",
            "[".repeat(30),
            "]".repeat(30)
        ),
        format!(
            "package warden\nallow if {{\n\tx := {}1{}\n}}\n",
            "{\"a\": ".repeat(30),
            "}".repeat(30)
        ),
    ] {
        let e = bounded(move || compile("p.rego", &text).unwrap_err());
        assert!(e.to_string().contains("nest deeper than 10 levels"), "{e}");
    }
}

#[test]
fn long_operator_chains_do_not_exhaust_the_stack() {
    for (path, text) in [
        (
            "/nonexistent/chain.cedar",
            format!(
                "permit(principal, action, resource) when {{ {}true }};",
                "!".repeat(20_000)
            ),
        ),
        (
            "/nonexistent/sum.cedar",
            format!(
                "permit(principal, action, resource) when {{ 1{} == 2 }};",
                " + 1".repeat(20_000)
            ),
        ),
        (
            "/nonexistent/or.cedar",
            format!(
                "permit(principal, action, resource) when {{ false{} }};",
                " || false".repeat(20_000)
            ),
        ),
        (
            "sum.rego",
            format!("package warden\nallow if 1{} > 0\n", " + 1".repeat(20_000)),
        ),
        (
            "minus.rego",
            format!(
                "package warden\nallow if {{ x := {}1 }}\n",
                "-".repeat(20_000)
            ),
        ),
        (
            "chain.yaml",
            format!(
                "rules:\n  - {{action: x, allow: false, when: \"{}true\"}}\n",
                "!".repeat(20_000)
            ),
        ),
        (
            "sum.yaml",
            format!(
                "rules:\n  - {{action: x, allow: false, when: \"args.n{} > 0\"}}\n",
                " + 1".repeat(20_000)
            ),
        ),
        (
            "/nonexistent/dots.cedar",
            format!(
                "permit(principal, action, resource) when {{ context{} == 1 }};",
                ".a".repeat(20_000)
            ),
        ),
        (
            "dots.rego",
            format!(
                "package warden\nallow if input{} == 1\n",
                ".a".repeat(20_000)
            ),
        ),
        (
            "dots.yaml",
            format!(
                "rules:\n  - {{action: x, allow: false, when: \"args{} == 1\"}}\n",
                ".a".repeat(20_000)
            ),
        ),
    ] {
        // Loading may succeed or fail, and so may deciding; neither may take the process down.
        let _ = bounded(move || {
            compile(path, &text).map(|s| s.decide(&Action::new("x").with_arg("n", 1)).verdict)
        });
    }
}
