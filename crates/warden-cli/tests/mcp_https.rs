//! End-to-end over TLS (127.0.0.1 only): a scripted Streamable HTTP upstream behind rustls,
//! with a CA and a `localhost`/`127.0.0.1` certificate made at test time (rcgen). `warden mcp
//! scan https://…` and `warden mcp proxy --upstream https://…` trust it through `--ca-cert`
//! and refuse it without.

mod mcp_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_common::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

/// A throwaway CA (written as `ca.pem` in `dir`) and a server config whose certificate it
/// signed for `localhost` and `127.0.0.1`.
fn pki(dir: &Path) -> (PathBuf, Arc<rustls::ServerConfig>) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "warden test CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, ca.pem()).unwrap();

    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (ca_pem, Arc::new(config))
}

/// The scripted upstream behind TLS: its `https://127.0.0.1:PORT/mcp` URL, the requests it
/// got (after a successful handshake), and one message per failed handshake. The server
/// notices a refused handshake on its own thread, possibly after the client has exited:
/// wait on the channel, never read a counter.
fn tls_upstream(config: Arc<rustls::ServerConfig>) -> (String, Seen, Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/mcp", listener.local_addr().unwrap());
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let (bad, refused) = mpsc::channel();
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { break };
            tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let (config, log, bad) = (config.clone(), log.clone(), bad.clone());
            std::thread::spawn(move || {
                let mut tls =
                    rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp);
                // Finish the handshake first, so a client that refuses the certificate is
                // counted, and never reaches the scripted server.
                while tls.conn.is_handshaking() {
                    if tls.conn.complete_io(&mut tls.sock).is_err() {
                        let _ = bad.send(());
                        return;
                    }
                }
                serve_scripted(tls, &log);
            });
        }
    });
    (url, seen, refused)
}

/// One plain HTTP/1.0 POST to the proxy: (status, session id, body).
fn post(addr: SocketAddr, session: Option<&str>, body: &str) -> (u16, Option<String>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "POST /mcp HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(id) = session {
        req.push_str(&format!("Mcp-Session-Id: {id}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {raw}"));
    let session = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("mcp-session-id"))
        .map(|(_, v)| v.trim().to_string());
    (status, session, body.to_string())
}

fn rpc(id: i64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

/// The JSON-RPC message in a body: JSON, or the first `data:` of an SSE stream.
fn message(body: &str) -> Value {
    let text = body
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or(body);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn scan_reaches_an_https_server_with_the_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, config) = pki(dir.path());
    let (url, seen, _) = tls_upstream(config);
    let ca = ca.to_str().unwrap();
    let (code, out, err) = run(&[
        "mcp",
        "scan",
        &url,
        "--ca-cert",
        ca,
        "--format",
        "json",
        "--timeout",
        "20",
    ]);
    // The poisoned tool is found (exit 1: a finding at or above the default --fail-on).
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("poisoned_add"), "{out}");
    assert!(out.contains("scripted"), "{out}");
    let methods: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| m["method"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(
        methods,
        ["initialize", "notifications/initialized", "tools/list"]
    );
    // By host name too: the certificate names `localhost`.
    let by_name = url.replace("127.0.0.1", "localhost");
    let (code, out, err) = run(&["mcp", "scan", &by_name, "--ca-cert", ca]);
    assert_eq!(code, 1, "{out}\n{err}");
}

#[test]
fn scan_without_the_ca_is_a_certificate_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_ca, config) = pki(dir.path());
    let (url, seen, refused) = tls_upstream(config);
    let (code, out, err) = run(&["mcp", "scan", &url, "--timeout", "20"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("certificate") && err.contains(&url),
        "no clear certificate error: {err}"
    );
    refused
        .recv_timeout(Duration::from_secs(30))
        .expect("the upstream saw the refused handshake");
    assert!(seen.lock().unwrap().is_empty());
    // Never "0 findings" alone: every format says the scan failed.
    let (code, out, _) = run(&["mcp", "scan", &url, "--timeout", "20"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("scan incomplete") && out.contains("certificate"),
        "{out}"
    );
    let (code, out, _) = run(&["mcp", "scan", &url, "--json"]);
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["complete"], false);
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("certificate"),
        "{v}"
    );
    let (code, out, _) = run(&["mcp", "scan", &url, "--format", "sarif"]);
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["runs"][0]["invocations"][0]["executionSuccessful"], false,
        "{v}"
    );
    // A CA file that is not one is refused before connecting.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "junk").unwrap();
    let (code, _, err) = run(&["mcp", "scan", &url, "--ca-cert", junk.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("CA certificate"), "{err}");
}

#[test]
fn proxy_forwards_allowed_calls_to_an_https_upstream_and_refuses_denied_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, config) = pki(dir.path());
    let (upstream, seen, _) = tls_upstream(config);
    let (_proxy, addr, _log) = http_proxy(&upstream, &["--ca-cert", ca.to_str().unwrap()]);

    let init = rpc(
        0,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "warden-test", "version": "0"}}),
    );
    let (status, session, body) = post(addr, None, &init);
    assert_eq!(status, 200, "{body}");
    assert_eq!(message(&body)["result"]["serverInfo"]["name"], "scripted");
    let session = session.expect("the upstream's session id is passed back");
    let (status, _, _) = post(
        addr,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(status, 202);
    let (_, _, body) = post(addr, Some(&session), &rpc(1, "tools/list", json!({})));
    assert!(
        !body.contains("poisoned_add") && body.contains("write_file"),
        "{body}"
    );

    // Allowed: reaches the upstream over TLS and its answer comes back.
    let (_, _, body) = post(
        addr,
        Some(&session),
        &rpc(
            2,
            "tools/call",
            json!({"name": "add", "arguments": {"a": 1, "b": 2}}),
        ),
    );
    let r = message(&body);
    assert_eq!(r["result"]["content"][0]["text"], "called \"add\"", "{r}");
    // Denied by policy: answered by the proxy, never sent upstream.
    let (_, _, body) = post(
        addr,
        Some(&session),
        &rpc(
            3,
            "tools/call",
            json!({"name": "write_file", "arguments": {"path": "/tmp/x"}}),
        ),
    );
    let r = message(&body);
    assert_eq!(r["error"]["code"], -32001, "{r}");
    assert_eq!(r["error"]["data"]["rule"], "no-writes");

    let methods: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, m)| {
            format!(
                "{} {}",
                m["method"].as_str().unwrap_or("?"),
                m["params"]["name"].as_str().unwrap_or("")
            )
            .trim()
            .to_string()
        })
        .collect();
    assert_eq!(
        methods,
        [
            "initialize",
            "notifications/initialized",
            "tools/list",
            "tools/call add"
        ],
        "the upstream saw a refused request"
    );
}

#[test]
fn proxy_without_the_ca_answers_502_with_the_certificate_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_ca, config) = pki(dir.path());
    let (upstream, seen, _) = tls_upstream(config);
    let (_proxy, addr, log) = http_proxy(&upstream, &[]);
    let init = rpc(
        0,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "warden-test", "version": "0"}}),
    );
    let (status, _, body) = post(addr, None, &init);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("certificate"), "{body}");
    assert!(seen.lock().unwrap().is_empty());
    log.wait_for("certificate");
}
