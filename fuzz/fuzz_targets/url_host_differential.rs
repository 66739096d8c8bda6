//! URL host extraction, differentially: whenever Warden accepts a URL for `domains:`, the
//! `http` crate's parser (an independent reading, close to what HTTP clients do) must find
//! the same host in it. A disagreement is a URL an allow-list could be bypassed with.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;

fn same_host(ours: &str, theirs: &str) -> bool {
    let theirs = theirs.to_ascii_lowercase();
    let theirs = theirs.strip_suffix('.').unwrap_or(&theirs);
    let v6 = |h: &str| {
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .and_then(|h| h.parse::<Ipv6Addr>().ok())
    };
    match (v6(ours), v6(theirs)) {
        (Some(a), Some(b)) => a == b,
        _ => ours == theirs,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else {
        return;
    };
    // The shortcut for plain host names must agree with the full parser.
    warden_policy::fuzzing::check_domain_shortcut(url);
    let Some((host, _port)) = warden_policy::fuzzing::domain_host(url) else {
        return;
    };
    // The http crate is stricter than WHATWG about the path and query characters, which do
    // not bear on the host; when it refuses the whole URL, ask it about `scheme://authority/`
    // alone (the authority ends at the first `/`, `?` or `#`, as RFC 3986 says; backslashes,
    // which WHATWG also ends it at, are refused by Warden).
    let other: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(_) => {
            let (scheme, rest) = url.split_once("://").expect("accepted URLs have `://`");
            let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            match format!("{scheme}://{authority}/").parse() {
                Ok(u) => u,
                Err(e) => panic!(
                    "Warden read host {host:?} from {url:?}; http rejects its authority: {e}"
                ),
            }
        }
    };
    let theirs = other.host().unwrap_or_default();
    assert!(
        same_host(&host, theirs),
        "Warden read host {host:?} from {url:?}; http reads {theirs:?}"
    );
});
