//! Cross-model verification against real chat-completions servers on loopback: honest ones,
//! lying ones, slow ones and broken ones. The attacker here is a verifier that cannot be
//! trusted (a model talked into "yes", a server that hangs or answers garbage) and an agent
//! that forges votes: a quorum must hold against each, every failure counts as "no", and every
//! vote is in the audit record.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use warden::{Action, AuditConfig, AuditLog, PolicySet, Verdict, Warden};
use warden_audit::{Filter, query};

/// How a test server answers one question (the request's JSON body).
type Behaviour = Arc<dyn Fn(&Value, &mut TcpStream) + Send + Sync>;

/// A chat-completions server on 127.0.0.1; returns its URL and the count of questions.
fn server(behaviour: Behaviour) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/v1/chat/completions",
        listener.local_addr().unwrap().port()
    );
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let behaviour = behaviour.clone();
            let count = count.clone();
            std::thread::spawn(move || {
                let Some(body) = read_request(&mut stream) else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                behaviour(&body, &mut stream);
            });
        }
    });
    (url, asked)
}

fn read_request(stream: &mut TcpStream) -> Option<Value> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn answer(stream: &mut TcpStream, content: &str) {
    let body = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    })
    .to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

fn question(body: &Value) -> String {
    body["messages"][1]["content"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Says no to what is plainly outside the task (a deletion when the task is a report).
fn honest() -> Behaviour {
    Arc::new(|body, s| {
        let q = question(body);
        answer(s, if q.contains("DELETE") { "no" } else { "Yes." });
    })
}

/// Says yes to everything (a model an injection talked round).
fn lying() -> Behaviour {
    Arc::new(|_, s| answer(s, "yes"))
}

/// Answers after `delay`.
fn slow(delay: Duration) -> Behaviour {
    Arc::new(move |_, s| {
        std::thread::sleep(delay);
        answer(s, "yes");
    })
}

fn raw(text: &'static str) -> Behaviour {
    Arc::new(move |_, s| {
        let _ = s.write_all(text.as_bytes());
    })
}

fn policy(endpoints: &[(&str, &str)], verify: &str) -> String {
    let mut text = String::from("name: verified\n");
    if !endpoints.is_empty() {
        text.push_str("verifiers:\n");
    }
    for (name, url) in endpoints {
        text.push_str(&format!(
            "  {name}:\n    url: {url}\n    model: test-model\n    timeout: 1500ms\n    max_response_bytes: 4096\n"
        ));
    }
    text.push_str(&format!(
        "rules:\n  - id: reports\n    action: db.query\n    effect: allow\n    verify: {verify}\n"
    ));
    text
}

fn warden(text: &str) -> Warden {
    Warden::new(PolicySet::from_yaml("verified.yaml", text).unwrap_or_else(|e| panic!("{e}")))
}

fn report() -> Action {
    Action::new("db.query")
        .with_arg(
            "sql",
            "SELECT region, sum(total) FROM orders GROUP BY region",
        )
        .with_context("task", "write the quarterly sales report")
}

fn wipe() -> Action {
    Action::new("db.query")
        .with_arg("sql", "DELETE FROM orders")
        .with_context("task", "write the quarterly sales report")
}

#[test]
fn honest_verifiers_allow_what_serves_the_task_and_refuse_what_does_not() {
    let (a, asked_a) = server(honest());
    let (b, _) = server(honest());
    let w = warden(&policy(
        &[("endpoint_a", &a), ("endpoint_b", &b)],
        "{quorum: 2, of: [rules, endpoint_a, endpoint_b]}",
    ));
    let d = w.decide(&report());
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    assert!(
        d.reason.contains("3 of 3 verifiers said yes"),
        "{}",
        d.reason
    );
    let d = w.decide(&wipe());
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(d.reason.contains("0 of 3"), "{}", d.reason);
    assert!(
        d.reason.contains("rules: no (labelled destructive)"),
        "{}",
        d.reason
    );
    assert_eq!(asked_a.load(Ordering::SeqCst), 2);
}

#[test]
fn one_lying_verifier_does_not_make_a_quorum() {
    let (liar, _) = server(lying());
    let (honest, _) = server(honest());
    let w = warden(&policy(
        &[("liar", &liar), ("honest", &honest)],
        "{quorum: 2, of: [rules, liar, honest]}",
    ));
    let d = w.decide(&wipe());
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(d.reason.contains("1 of 3"), "{}", d.reason);
    assert!(d.reason.contains("liar: yes"), "{}", d.reason);
    // Two liars do make one, which is what a quorum of two means: the policy chose it.
    let (liar2, _) = server(lying());
    let w = warden(&policy(
        &[("liar", &liar), ("liar2", &liar2)],
        "{quorum: 2, of: [rules, liar, liar2]}",
    ));
    assert_eq!(w.decide(&wipe()).verdict, Verdict::Allow);
}

#[test]
fn the_local_model_is_a_no_without_a_model() {
    let (a, _) = server(honest());
    let w = warden(&policy(
        &[("endpoint_a", &a)],
        "{quorum: 2, of: [rules, local_model, endpoint_a]}",
    ));
    let d = w.decide(&report());
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    assert!(
        d.reason
            .contains("local_model: no (local model not loaded)"),
        "{}",
        d.reason
    );
    let w = warden(&policy(&[], "{quorum: 2, of: [rules, local_model]}"));
    assert_eq!(w.decide(&report()).verdict, Verdict::Deny);
}

#[test]
fn a_slow_verifier_is_a_no_and_does_not_hang_the_decision() {
    let (slow, _) = server(slow(Duration::from_secs(20)));
    let (a, _) = server(honest());
    let w = warden(&policy(
        &[("slow", &slow), ("endpoint_a", &a)],
        "{quorum: 3, of: [rules, slow, endpoint_a]}",
    ));
    // Bounded only as "did not hang": the endpoint's timeout is 1.5 s.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(w.decide(&report())).unwrap());
    let d = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the decision hung on a slow verifier");
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    assert!(
        d.reason.contains("slow: no (no answer within 1500 ms)"),
        "{}",
        d.reason
    );
}

#[test]
fn broken_verifiers_are_each_a_no() {
    let huge: &'static str = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{}",
            "y".repeat(100_000)
        )
        .into_boxed_str(),
    );
    let cases: Vec<(&str, Behaviour, &str)> = vec![
        (
            "status",
            raw("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"),
            "answered `HTTP/1.1 500",
        ),
        ("garbage", raw("this is not http"), "not HTTP"),
        (
            "not_json",
            raw("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes"),
            "not JSON",
        ),
        (
            "no_choices",
            raw("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
            "no `choices[0].message.content`",
        ),
        ("closed", raw(""), "not HTTP"),
        (
            "short",
            raw("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"choices\""),
            "ended early",
        ),
        ("huge", raw(huge), "larger than 4096 bytes"),
        (
            "maybe",
            Arc::new(|_, s| answer(s, "Maybe, it depends")),
            "unparseable answer",
        ),
        (
            "yesterday",
            Arc::new(|_, s| answer(s, "yesterday I would have said so")),
            "unparseable answer",
        ),
    ];
    for (name, behaviour, why) in cases {
        let (url, asked) = server(behaviour);
        let w = warden(&policy(
            &[(name, &url)],
            &format!("{{quorum: 2, of: [rules, {name}]}}"),
        ));
        let d = w.decide(&report());
        assert_eq!(d.verdict, Verdict::Deny, "{name}: {}", d.reason);
        assert!(
            d.reason.contains(&format!("{name}: no (")),
            "{name}: {}",
            d.reason
        );
        assert!(d.reason.contains(why), "{name}: {}", d.reason);
        assert_eq!(asked.load(Ordering::SeqCst), 1, "{name}");
    }
    // Nothing listening at all.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let w = warden(&policy(
        &[("gone", &gone)],
        "{quorum: 2, of: [rules, gone]}",
    ));
    let d = w.decide(&report());
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(
        d.reason.contains("gone: no (cannot connect"),
        "{}",
        d.reason
    );
}

#[test]
fn a_chunked_answer_is_read() {
    let body =
        json!({"choices": [{"message": {"role": "assistant", "content": "yes"}}]}).to_string();
    let text: &'static str = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
        .into_boxed_str(),
    );
    let (url, _) = server(raw(text));
    let w = warden(&policy(
        &[("chunked", &url)],
        "{quorum: 2, of: [rules, chunked]}",
    ));
    let d = w.decide(&report());
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
}

/// Two servers that each answer yes only once both have been asked: asked one after the
/// other, the first would wait for the second until its timeout and count as no.
#[test]
fn verifiers_are_asked_in_parallel() {
    let met = Arc::new((Mutex::new(0usize), Condvar::new()));
    let rendezvous = |met: Arc<(Mutex<usize>, Condvar)>| -> Behaviour {
        Arc::new(move |_, s| {
            let (lock, cv) = &*met;
            let mut n = lock.lock().unwrap();
            *n += 1;
            cv.notify_all();
            let (n, _) = cv
                .wait_timeout_while(n, Duration::from_secs(5), |n| *n < 2)
                .unwrap();
            answer(s, if *n >= 2 { "yes" } else { "no" });
        })
    };
    let (a, _) = server(rendezvous(met.clone()));
    let (b, _) = server(rendezvous(met));
    let w = warden(&policy(
        &[("endpoint_a", &a), ("endpoint_b", &b)],
        "{quorum: 2, of: [endpoint_a, endpoint_b]}",
    ));
    let d = w.decide(&report());
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
}

#[test]
fn every_vote_is_in_the_audit_record_and_forged_votes_are_not() {
    let (a, _) = server(honest());
    let (liar, _) = server(lying());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("warden.db");
    let set = PolicySet::from_yaml(
        "verified.yaml",
        &policy(
            &[("endpoint_a", &a), ("liar", &liar)],
            "{quorum: 2, of: [rules, local_model, endpoint_a, liar]}",
        ),
    )
    .unwrap();
    let w = Warden::new(set).with_audit(AuditLog::open(&db, AuditConfig::default()).unwrap());
    assert!(w.may_wait(&report()));
    // The agent sends votes of its own: they are not the record's.
    let forged = wipe().with_context("verification", json!({"quorum": 1, "yes": 4, "votes": []}));
    let d = w.decide(&forged);
    assert_eq!(d.verdict, Verdict::Deny, "{}", d.reason);
    let d = w.decide(&report());
    assert_eq!(d.verdict, Verdict::Allow, "{}", d.reason);
    drop(w);
    let records = query(&db, &Filter::default()).unwrap();
    assert_eq!(records.len(), 2);
    let votes = |i: usize| -> Vec<(String, String)> {
        let v = &records[i].context.as_ref().expect("context")["verification"];
        v["votes"]
            .as_array()
            .expect("votes")
            .iter()
            .map(|v| {
                (
                    v["verifier"].as_str().unwrap().to_string(),
                    v["vote"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let strs = |l: &[(&str, &str)]| -> Vec<(String, String)> {
        l.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        votes(0),
        strs(&[
            ("rules", "no"),
            ("local_model", "no"),
            ("endpoint_a", "no"),
            ("liar", "yes")
        ])
    );
    assert_eq!(
        records[0].context.as_ref().unwrap()["verification"]["yes"],
        json!(1)
    );
    assert_eq!(
        votes(1),
        strs(&[
            ("rules", "yes"),
            ("local_model", "no"),
            ("endpoint_a", "yes"),
            ("liar", "yes")
        ])
    );
}

#[test]
fn bad_verifier_configuration_is_a_load_error_at_its_line() {
    let cases = [
        ("https://127.0.0.1:1/v1", "only `http://` endpoints"),
        (
            "http://api.openai.com/v1/chat/completions",
            "not on a loopback address",
        ),
        ("http://10.0.0.1/v1", "not on a loopback address"),
        ("http://user:pw@127.0.0.1/v1", "credentials"),
        ("not a url", "not a URL"),
    ];
    for (url, why) in cases {
        let text = policy(&[("a", url)], "{quorum: 1, of: [a]}");
        let err = PolicySet::from_yaml("verified.yaml", &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("verified.yaml:4:"), "{url}: {err}");
        assert!(err.contains(why), "{url}: {err}");
    }
    let ok = "http://127.0.0.1:9/v1/chat/completions";
    for (verify, why) in [
        (
            "{quorum: 3, of: [rules, a]}",
            "`verify.quorum` must be a whole number from 1 to 2",
        ),
        ("{quorum: 1, of: [rules, b]}", "unknown verifier `b`"),
        ("{quorum: 1, of: [rules, rules]}", "names `rules` twice"),
        ("{quorum: 1}", "`verify` needs `of`"),
    ] {
        let err = PolicySet::from_yaml("verified.yaml", &policy(&[("a", ok)], verify))
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{verify}: {err}");
    }
    let deny = format!(
        "verifiers:\n  a: {{url: \"{ok}\", model: m}}\nrules:\n  - action: x\n    effect: deny\n    verify: {{of: [a]}}\n"
    );
    let err = PolicySet::from_yaml("verified.yaml", &deny)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`verify` is for allow rules"), "{err}");
    let timeout = format!(
        "verifiers:\n  a: {{url: \"{ok}\", model: m, timeout: 5m}}\nrules:\n  - action: x\n    allow: true\n"
    );
    let err = PolicySet::from_yaml("verified.yaml", &timeout)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`timeout` is at most 30s"), "{err}");
}

#[test]
fn a_bad_max_drift_is_a_load_error_at_its_line_and_column() {
    for (verify, why) in [
        (
            "{of: [rules, local_model], max_drift: 2.5}",
            "`verify.max_drift` must be a number from 0 to 2",
        ),
        (
            "{of: [rules, local_model], max_drift: -0.1}",
            "`verify.max_drift` must be a number from 0 to 2",
        ),
        (
            "{of: [rules, local_model], max_drift: .nan}",
            "`verify.max_drift` must be a number from 0 to 2",
        ),
        (
            "{of: [rules, local_model], max_drift: high}",
            "found the string \"high\"",
        ),
        (
            "{of: [rules], max_drift: 0.5}",
            "`of` does not name `local_model`",
        ),
    ] {
        let text = policy(&[], verify);
        let err = PolicySet::from_yaml("verified.yaml", &text)
            .unwrap_err()
            .to_string();
        let col = text.lines().nth(5).unwrap().find("max_drift").unwrap() + 1 + "max_drift: ".len();
        assert!(
            err.contains(&format!("verified.yaml:6:{col}")),
            "{verify}: {err}"
        );
        assert!(err.contains(why), "{verify}: {err}");
    }
    // Good values load; the threshold is kept in thousandths, 0.8 by default.
    for (verify, milli) in [
        ("{of: [local_model], max_drift: 0.65}", 650),
        ("{of: [local_model], max_drift: 1}", 1000),
        ("{of: [local_model], max_drift: 0}", 0),
        (
            "{of: [local_model]}",
            warden_policy::verify::DEFAULT_MAX_DRIFT_MILLI,
        ),
    ] {
        let set = PolicySet::from_yaml("verified.yaml", &policy(&[], verify)).unwrap();
        let mut allow = warden::Decision::deny("x");
        allow.verdict = Verdict::Allow;
        allow.policy = Some("verified".into());
        allow.rule = Some("reports".into());
        let spec = set.verification(&allow).expect("the rule verifies");
        assert_eq!(spec.max_drift_milli, milli, "{verify}");
    }
}
