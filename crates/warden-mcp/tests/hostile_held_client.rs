//! A hostile client against requests held for a person's approval: it cancels a held call
//! and, its id being free again, sends another call under the same id — while the first
//! call's hold is past its look at the cancel flag and has not yet let the call through or
//! refused it. The old hold must then act on its own request only, never on the new one
//! that took its id.
//!
//! The window is real (a poll of the approval store and a second decision sit between the
//! look at the flag and the release); the test opens it deterministically by holding the
//! first call's progress callback — which runs right after the look at the flag — until
//! the client has cancelled and reused the id.

mod gateway;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::{Value, json};
use warden::{AuditConfig, Warden};
use warden_mcp::proxy::{Held, Inbound, Transport};
use warden_mcp::{Gateway, ProxyConfig};

/// A gateway that holds calls for approval (the gateway fixture: `get-env` needs a person).
fn holding() -> (Gateway, Arc<Warden>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gateway.yaml");
    let warden = Arc::new(
        Warden::builder()
            .policies([policy])
            .audit_log(dir.path().join("w.db"), AuditConfig::default())
            .build()
            .unwrap(),
    );
    let config = ProxyConfig {
        approval_wait: Duration::from_secs(60),
        ..ProxyConfig::default()
    };
    (
        Gateway::new(warden.clone(), Arc::new(config), Transport::Stdio),
        warden,
        dir,
    )
}

fn call(id: i64, args: Value, token: Option<&str>) -> Vec<u8> {
    let mut params = json!({"name": "get-env", "arguments": args});
    if let Some(t) = token {
        params["_meta"] = json!({"progressToken": t});
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
        .to_string()
        .into_bytes()
}

fn cancel(id: i64) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
           "params": {"requestId": id, "reason": "changed my mind"}})
    .to_string()
    .into_bytes()
}

fn held(inbound: Inbound) -> Box<Held> {
    match inbound {
        Inbound::Held(h) => h,
        other => panic!("not held: {other:?}"),
    }
}

/// The pending approval request for `get-env` with these arguments.
fn approval_for(warden: &Warden, args: &Value) -> String {
    let now = warden_audit::Timestamp::now().unix_nanos().max(0) as u64;
    let store = warden.approvals().expect("an approval store");
    store
        .list(Some(warden::ApprovalStatus::Pending), 100, now)
        .unwrap()
        .into_iter()
        .find(|a| &a.action["args"] == args)
        .unwrap_or_else(|| panic!("no pending approval for {args}"))
        .id
}

fn answer(warden: &Warden, id: &str, approve: bool) {
    let now = warden_audit::Timestamp::now().unix_nanos().max(0) as u64;
    warden
        .approvals()
        .unwrap()
        .answer(id, approve, "dana", "looked at it", now)
        .unwrap();
}

/// Call A (id 1) is held; its hold has looked at its cancel flag. The client cancels A and
/// sends call B under id 1 (held too, for its own approval). Then A's approval is answered
/// (`approve_a`) and A's hold goes on. What A's hold returned, and B.
fn race(approve_a: bool) -> (Inbound, Box<Held>, Gateway, Arc<Warden>, tempfile::TempDir) {
    let (g, warden, dir) = holding();
    let a = held(g.from_client(&call(1, json!({"which": "a"}), Some("a"))));
    let (reached_tx, reached_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (reached_tx, go_rx) = (Mutex::new(reached_tx), Mutex::new(go_rx));
    let (a_out, b) = std::thread::scope(|s| {
        let hold_a = s.spawn(|| {
            let first = AtomicBool::new(true);
            g.settle(*a, &|_progress| {
                if first.swap(false, Ordering::SeqCst) {
                    reached_tx.lock().unwrap().send(()).unwrap();
                    go_rx
                        .lock()
                        .unwrap()
                        .recv_timeout(Duration::from_secs(30))
                        .unwrap();
                }
            })
        });
        reached_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("A's hold started");
        // The client cancels A: its id is free again, and it uses it for B.
        assert!(matches!(g.from_client(&cancel(1)), Inbound::Forward(_)));
        let b = held(g.from_client(&call(1, json!({"which": "b"}), None)));
        answer(
            &warden,
            &approval_for(&warden, &json!({"which": "a"})),
            approve_a,
        );
        go_tx.send(()).unwrap();
        (hold_a.join().unwrap(), b)
    });
    (a_out, b, g, warden, dir)
}

#[test]
fn a_cancelled_held_call_approved_late_is_not_let_through_on_the_back_of_a_new_call_with_its_id() {
    let (a_out, b, g, warden, _dir) = race(true);
    // A was cancelled before anything was let through: nothing of it may reach the server.
    let a_forwarded = matches!(&a_out, Inbound::Forward(_));
    // B was never cancelled: approved, it must go through.
    answer(
        &warden,
        &approval_for(&warden, &json!({"which": "b"})),
        true,
    );
    let b_out = g.settle(*b, &|_| {});
    assert!(
        !a_forwarded,
        "the cancelled call A was forwarded by releasing B's place (same id): {a_out:?}; B then became {b_out:?}"
    );
    assert!(
        matches!(&b_out, Inbound::Forward(m) if m["params"]["arguments"]["which"] == "b"),
        "B, approved and never cancelled, was not let through: {b_out:?}"
    );
}

#[test]
fn a_cancelled_held_call_denied_late_neither_answers_nor_frees_the_id_of_a_new_call() {
    let (a_out, b, g, warden, _dir) = race(false);
    // B still holds id 1: another request with it is a duplicate, refused.
    let again = g.from_client(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "x"}}})
        .to_string()
        .into_bytes(),
    );
    assert!(
        matches!(&again, Inbound::Answer(v) if v["error"]["code"] == -32600),
        "A's refusal freed id 1 while B still holds it: {again:?} (A's hold returned {a_out:?})"
    );
    // A was cancelled: the client gets no answer to it (an answer with id 1 would read as B's).
    assert!(
        matches!(&a_out, Inbound::Dropped(_)),
        "the cancelled call A was answered, under the id B now has: {a_out:?}"
    );
    answer(
        &warden,
        &approval_for(&warden, &json!({"which": "b"})),
        true,
    );
    let b_out = g.settle(*b, &|_| {});
    assert!(
        matches!(&b_out, Inbound::Forward(m) if m["params"]["arguments"]["which"] == "b"),
        "B, approved and never cancelled, was not let through: {b_out:?}"
    );
}

/// Probes that held: a hostile server's guesses at a held call's id (any spelling) are
/// dropped before approval and after a cancel; a cancel of another JSON type does not end
/// the hold, one of another spelling of the same number does.
#[test]
fn guessed_answers_and_cancels_of_another_type_do_not_touch_a_held_call() {
    let (g, warden, _dir) = holding();
    let a = held(g.from_client(&call(1, json!({}), None)));
    for guess in ["1", "1.0", "\"1\""] {
        let forged = format!(
            r#"{{"jsonrpc":"2.0","id":{guess},"result":{{"content":[{{"type":"text","text":"forged"}}]}}}}"#
        );
        assert_eq!(
            g.from_server(forged.as_bytes()),
            warden_mcp::proxy::Outbound::Drop,
            "{guess}"
        );
    }
    // `"1"` is not 1: the hold goes on, and the approved call goes through.
    let other_type = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": "1"}})
    .to_string();
    assert!(matches!(
        g.from_client(other_type.as_bytes()),
        Inbound::Forward(_)
    ));
    answer(&warden, &approval_for(&warden, &json!({})), true);
    assert!(matches!(g.settle(*a, &|_| {}), Inbound::Forward(_)));

    // 2.0 is 2: it ends the hold; a late answer to 2 is dropped.
    let b = held(g.from_client(&call(2, json!({"b": 1}), None)));
    let same_number =
        br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2.0}}"#;
    assert!(matches!(g.from_client(same_number), Inbound::Forward(_)));
    assert!(matches!(g.settle(*b, &|_| {}), Inbound::Dropped(_)));
    let late = br#"{"jsonrpc":"2.0","id":2,"result":{}}"#;
    assert_eq!(g.from_server(late), warden_mcp::proxy::Outbound::Drop);
}

/// Progress tokens of other types than a string or an integer get no progress; a large
/// string token is echoed as sent.
#[test]
fn odd_progress_tokens() {
    let (g, _warden, _dir) = holding();
    for (i, token) in [json!({"a": 1}), json!(1.5), json!(null), json!([1])]
        .into_iter()
        .enumerate()
    {
        let msg = json!({"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
            "params": {"name": "get-env", "arguments": {"t": i}, "_meta": {"progressToken": token}}});
        let h = held(g.from_client(msg.to_string().as_bytes()));
        assert!(!h.wants_progress(), "{token}");
    }
    let big = "p".repeat(512 * 1024);
    let msg = json!({"jsonrpc": "2.0", "id": 20, "method": "tools/call",
        "params": {"name": "get-env", "arguments": {"big": true}, "_meta": {"progressToken": big}}});
    let h = held(g.from_client(msg.to_string().as_bytes()));
    assert!(h.wants_progress());
}
