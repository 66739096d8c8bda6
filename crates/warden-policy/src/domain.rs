//! Host matching for `domains:` constraints.
//!
//! The host is taken from `args.url` (parsed as a WHATWG URL, as browsers and HTTP clients do)
//! or from `args.host`. Comparing strings would be fooled by `api.github.com.evil.com`,
//! `api.github.com@evil.com`, `evil.com/?next=api.github.com`, case, a trailing dot or a port;
//! comparing parsed, normalised hosts is not.
//!
//! Parsing is not enough either: the client that makes the request parses the URL again, and
//! parsers disagree. WHATWG reads `https://api.github.com\@evil.com/` as host `api.github.com`
//! (a backslash is a slash to it) while curl connects to `evil.com`. So a URL is only read
//! when its text means the same to every parser we know of; anything else is invalid (which
//! an allow rule does not accept and a restricting rule turns into a deny): backslashes,
//! whitespace and control characters anywhere, userinfo (`user@`), percent-encoding or
//! non-ASCII in the authority, a missing `//`, empty labels, and a host whose text is not
//! already the canonical form of the parsed host (`0x7f.1`, which some read as 127.0.0.1).
//! The fuzz target `url_host_differential` holds us to the `http` crate's reading.

use std::net::Ipv6Addr;

use serde_json::Value;
use url::{Host, Url};

use warden_core::Action;

/// One entry of a `domains:` list: `api.github.com`, `*.example.com`, optionally `:port`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DomainPattern {
    host: Box<str>,
    /// `*.example.com`: any subdomain of `host`, not `host` itself.
    subdomains: bool,
    port: Option<u16>,
}

/// The host an action targets, as far as it can be told.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    Host {
        host: String,
        port: Option<u16>,
    },
    /// Neither `args.url` nor `args.host` is present.
    Missing,
    /// Present but unusable; the string says why.
    Invalid(String),
}

const SCHEMES: &[&str] = &["http", "https", "ws", "wss"];

impl DomainPattern {
    pub fn parse(text: &str) -> Result<DomainPattern, String> {
        if text.contains("://") || text.contains('/') {
            return Err(format!(
                "`{text}` is not a host name; write only the host, e.g. `api.github.com`"
            ));
        }
        let (subdomains, rest) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if rest.contains('*') {
            return Err(format!(
                "`{text}`: a `*` is only allowed as the first label, as in `*.example.com`"
            ));
        }
        let parsed = Url::parse(&format!("http://{rest}/"))
            .map_err(|e| format!("`{text}` is not a valid host: {e}"))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!("`{text}` is not a valid host"));
        }
        let host = normalise(parsed.host_str().unwrap_or_default());
        if host.is_empty() {
            return Err(format!("`{text}` is not a valid host"));
        }
        let port = parsed.port();
        Ok(DomainPattern {
            host: host.into(),
            subdomains,
            port,
        })
    }

    pub fn matches(&self, host: &str, port: Option<u16>) -> bool {
        if let Some(want) = self.port
            && port != Some(want)
        {
            return false;
        }
        if self.subdomains {
            host.len() > self.host.len() + 1
                && host.ends_with(&*self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == &*self.host
        }
    }
}

fn normalise(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The host `action` targets: from `args.url`, else `args.host`.
pub(crate) fn target(action: &Action) -> Target {
    if let Some(url) = action.args.get("url") {
        let Value::String(url) = url else {
            return Target::Invalid("`args.url` is not a string".into());
        };
        return url_target(url).unwrap_or_else(|why| Target::Invalid(format!("`args.url` {why}")));
    }
    if let Some(host) = action.args.get("host") {
        let Value::String(host) = host else {
            return Target::Invalid("`args.host` is not a string".into());
        };
        return host_target(host)
            .unwrap_or_else(|why| Target::Invalid(format!("`args.host` ({host:?}) {why}")));
    }
    Target::Missing
}

/// Refuse text that URL parsers read differently (see the module doc).
fn unambiguous(text: &str) -> Result<(), String> {
    // ASCII text (the usual case) in one pass over its bytes: its control characters and
    // whitespace are exactly the bytes up to space, and DEL.
    let (backslash, odd) = if text.is_ascii() {
        text.bytes().fold((false, false), |(backslash, odd), b| {
            (backslash || b == b'\\', odd || b <= b' ' || b == 0x7f)
        })
    } else {
        (
            text.contains('\\'),
            text.chars().any(|c| c.is_control() || c.is_whitespace()),
        )
    };
    if backslash {
        return Err(
            "contains a backslash, which some URL parsers read as `/` and others do not".into(),
        );
    }
    if odd {
        return Err("contains whitespace or a control character, which URL parsers drop or keep differently".into());
    }
    Ok(())
}

/// Refuse an authority (`host[:port]`) that parsers read differently.
fn plain_authority(authority: &str) -> Result<(), String> {
    if authority.is_empty() {
        return Err("has no host".into());
    }
    let has = |byte: u8| authority.as_bytes().contains(&byte);
    if has(b'@') {
        return Err(
            "has userinfo (`…@`); parsers disagree on where its host starts, so it is refused"
                .into(),
        );
    }
    if has(b'%') {
        return Err(
            "has percent-encoding in its host, which some parsers decode and others do not".into(),
        );
    }
    if !authority.is_ascii() {
        return Err("has a non-ASCII host; write it in punycode (`xn--…`)".into());
    }
    Ok(())
}

fn url_target(url: &str) -> Result<Target, String> {
    unambiguous(url)?;
    // The scheme is everything before the first `:`, and `//` must follow it at once
    // (`https:/host` and `https:host` are hosts to WHATWG, paths to others).
    // (Byte scans: the ASCII bytes looked for never occur inside a multi-byte character.)
    let rest = url.bytes().position(|b| b == b':').and_then(|colon| {
        let (scheme, rest) = (&url[..colon], &url[colon + 1..]);
        let valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        rest.strip_prefix("//").filter(|_| valid)
    });
    let Some(rest) = rest else {
        return Err("is not an absolute URL (`scheme://host/…`)".into());
    };
    let end = rest
        .bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    plain_authority(authority)?;
    let scheme = &url[..url.len() - rest.len() - 3];
    if let Some(target) = plain_target(scheme, authority) {
        return Ok(target);
    }
    parsed_target(url, authority)
}

/// The host and port of a URL whose scheme is one of [`SCHEMES`] and whose authority is a
/// plain host name (letters, digits, `-`, dots, optionally one trailing dot) with an optional
/// decimal port: read straight from the text, without the full parser, when the parser could
/// only agree. Everything else — an IPv4 or IPv6 address, a last label that may be read as a
/// number, `xn--` labels (punycode), `_`, `--`, empty labels, an odd port — is `None`, and
/// the full parser decides ([`parsed_target`]). A differential test holds the two to the
/// same answer.
///
/// Why: the full WHATWG parse (serialising the whole URL, path included) was most of the
/// cost of a decision on a `domains:` rule.
fn plain_target(scheme: &str, authority: &str) -> Option<Target> {
    let default_port = match scheme.len() {
        2 if scheme.eq_ignore_ascii_case("ws") => 80,
        3 if scheme.eq_ignore_ascii_case("wss") => 443,
        4 if scheme.eq_ignore_ascii_case("http") => 80,
        5 if scheme.eq_ignore_ascii_case("https") => 443,
        _ => return None,
    };
    let (host, port) = match authority.bytes().position(|b| b == b':') {
        None => (authority, default_port),
        Some(colon) => {
            let port = &authority[colon + 1..];
            if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (&authority[..colon], port.parse::<u16>().ok()?)
        }
    };
    let bare = host.strip_suffix('.').unwrap_or(host);
    // One pass: letters, digits, `-` (never two in a row) and `.` (never an empty label:
    // not first, not two in a row, not last).
    let mut previous = b'.';
    let mut last_label = 0;
    for (i, b) in bare.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => {}
            b'-' if previous != b'-' => {}
            b'.' if previous != b'.' => last_label = i + 1,
            _ => return None,
        }
        previous = b;
    }
    // Also refuses an empty host, and a last label that starts with a digit: it may be
    // read as (part of) an IPv4 address.
    if previous == b'.' || bare.as_bytes()[last_label].is_ascii_digit() {
        return None;
    }
    Some(Target::Host {
        host: bare.to_ascii_lowercase(),
        port: Some(port),
    })
}

/// For the fuzz target: `Err` when [`plain_target`] answers for `url` and the full parser
/// gives another answer.
pub(crate) fn shortcut_agrees(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(());
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if unambiguous(url).is_err() || plain_authority(authority).is_err() {
        return Ok(());
    }
    let Some(fast) = plain_target(scheme, authority) else {
        return Ok(());
    };
    match parsed_target(url, authority) {
        Ok(slow) if slow == fast => Ok(()),
        other => Err(format!("{url:?}: shortcut {fast:?}, full parser {other:?}")),
    }
}

/// [`url_target`] by the full WHATWG parser, for the authorities [`plain_target`] leaves.
fn parsed_target(url: &str, authority: &str) -> Result<Target, String> {
    let parsed = Url::parse(url).map_err(|e| format!("is not a valid URL: {e}"))?;
    if !SCHEMES.contains(&parsed.scheme()) {
        return Err(format!(
            "has scheme `{}`; only http, https, ws and wss name a host",
            parsed.scheme()
        ));
    }
    let host = canonical(authority, &parsed)?;
    Ok(Target::Host {
        host,
        port: parsed.port_or_known_default(),
    })
}

fn host_target(host: &str) -> Result<Target, String> {
    unambiguous(host)?;
    if host.contains(['/', '?', '#']) {
        return Err("is not a host name".into());
    }
    plain_authority(host)?;
    let parsed =
        Url::parse(&format!("http://{host}/")).map_err(|e| format!("is not a host name: {e}"))?;
    if !matches!(
        parsed.host(),
        Some(Host::Domain(_) | Host::Ipv4(_) | Host::Ipv6(_))
    ) {
        return Err("is not a host name".into());
    }
    Ok(Target::Host {
        host: canonical(host, &parsed)?,
        port: parsed.port(),
    })
}

/// The parsed host, normalised, provided the text as written already said exactly that
/// (up to case and one trailing dot; IPv6 in any of its equivalent spellings).
fn canonical(authority: &str, parsed: &Url) -> Result<String, String> {
    let parsed_host = parsed.host_str().unwrap_or_default();
    let written = if authority.starts_with('[') {
        authority
            .find(']')
            .map_or(authority, |end| &authority[..=end])
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    if let (Some(a), Some(b)) = (ipv6(written), ipv6(parsed_host)) {
        return if a == b {
            Ok(normalise(parsed_host))
        } else {
            Err(format!(
                "has host `{written}`, which is not the address it parses to"
            ))
        };
    }
    // A host name is letters, digits, `-`, `_` and dots; anything else (`` ` ``, `!`, `*`,
    // `$`…) is allowed by some parsers and refused by others.
    if let Some(c) = written
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "has host `{written}` with `{c}`, which is not allowed in a host name"
        ));
    }
    let bare = written.strip_suffix('.').unwrap_or(written);
    if bare.is_empty() || bare.split('.').any(str::is_empty) {
        return Err(format!("has host `{written}` with an empty label"));
    }
    if normalise(written) != normalise(parsed_host) {
        return Err(format!(
            "has host `{written}`, which URL parsers read as `{parsed_host}`; write that instead"
        ));
    }
    Ok(normalise(parsed_host))
}

fn ipv6(bracketed: &str) -> Option<Ipv6Addr> {
    bracketed.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(patterns: &[&str], url: &str) -> bool {
        let patterns: Vec<_> = patterns
            .iter()
            .map(|p| DomainPattern::parse(p).unwrap())
            .collect();
        let action = Action::new("http_request").with_arg("url", url);
        match target(&action) {
            Target::Host { host, port } => patterns.iter().any(|p| p.matches(&host, port)),
            _ => false,
        }
    }

    /// The tricks a domain allow-list must not fall for, as a table.
    #[test]
    fn url_tricks() {
        let gh = &["api.github.com"];
        let table: &[(&[&str], &str, bool)] = &[
            (gh, "https://api.github.com/repos", true),
            (gh, "https://API.GitHub.COM/repos", true),
            (gh, "https://api.github.com./repos", true),
            (gh, "https://api.github.com:443/repos", true),
            (gh, "https://api.github.com:8443/repos", true),
            (gh, "http://api.github.com", true),
            (gh, "https://api.github.com.evil.com/", false),
            (gh, "https://api.github.com@evil.com/", false),
            (gh, "https://evil.com/?next=api.github.com", false),
            (gh, "https://evil.com/api.github.com", false),
            (gh, "https://evil.com#api.github.com", false),
            (gh, "https://user:pw@evil.com:443@api.github.com/", false),
            (gh, "https://api.github.com\\@evil.com/", false),
            (gh, "https://api.github.com\\evil.com/", false),
            (gh, "https://api.github.com\t/", false),
            (gh, "https://api.git\nhub.com/", false),
            (gh, " https://api.github.com/", false),
            (gh, "https://@api.github.com/", false),
            (gh, "https://api%2egithub.com/", false),
            (gh, "https://api.github.com%2f@evil.com/", false),
            (gh, "https:api.github.com/", false),
            (gh, "https:///api.github.com/", false),
            (gh, "https://api.github.com../", false),
            (gh, "https://api..github.com/", false),
            (gh, "https://api。github。com/", false),
            (gh, "HTTPS://api.github.com/", true),
            (gh, "https://`s://api.github.com/", false),
            (gh, "https:/api.github.com//x://evil.com/", false),
            (gh, "https:/evil.com//x://api.github.com/", false),
            (gh, "https://api.github.com!/", false),
            (gh, "https://evilapi.github.com/", false),
            (gh, "https://github.com/", false),
            (gh, "file:///etc/passwd", false),
            (gh, "ftp://api.github.com/", false),
            (gh, "api.github.com", false),
            (gh, "not a url", false),
            (gh, "", false),
            (gh, "https://xn--pi-7ba.github.com/", false),
            (&["*.example.com"], "https://a.example.com/", true),
            (&["*.example.com"], "https://a.b.example.com/", true),
            (&["*.example.com"], "https://example.com/", false),
            (&["*.example.com"], "https://badexample.com/", false),
            (&["api.github.com:443"], "https://api.github.com/", true),
            (&["api.github.com:443"], "http://api.github.com/", false),
            (&["127.0.0.1"], "http://127.0.0.1/", true),
            (&["127.0.0.1"], "http://0x7f.1/", false),
            (&["127.0.0.1"], "http://2130706433/", false),
            (&["[::1]"], "http://[0:0::1]:8080/", true),
            (&["[fe80::1]"], "http://[fe80::1%25eth0]/", false),
            (&["bücher.example"], "https://xn--bcher-kva.example/", true),
        ];
        for (patterns, url, want) in table {
            assert_eq!(allowed(patterns, url), *want, "{patterns:?} vs {url}");
        }
    }

    #[test]
    fn targets_from_url_or_host() {
        let t = |a: Action| target(&a);
        assert_eq!(t(Action::new("x")), Target::Missing);
        assert!(matches!(
            t(Action::new("x").with_arg("url", 5)),
            Target::Invalid(m) if m.contains("not a string")
        ));
        assert_eq!(
            t(Action::new("x").with_arg("host", "API.github.com.:8080")),
            Target::Host {
                host: "api.github.com".into(),
                port: Some(8080)
            }
        );
        assert!(matches!(
            t(Action::new("x").with_arg("host", "evil.com/api.github.com")),
            Target::Invalid(_)
        ));
    }

    /// The shortcut answers only where the full parser gives the same host and port.
    fn agrees(scheme: &str, authority: &str, path: &str) -> Result<(), String> {
        shortcut_agrees(&format!("{scheme}://{authority}{path}"))
    }

    #[test]
    fn shortcut_agrees_with_the_parser_on_tricky_hosts() {
        let hosts = [
            "api.github.com",
            "API.GitHub.COM",
            "api.github.com.",
            "api.github.com..",
            "api..github.com",
            ".api.github.com",
            "a",
            "localhost",
            "-a-.b-",
            "a--b.com",
            "xn--pi-7ba.github.com",
            "XN--bcher-kva.example",
            "a_b.com",
            "1.com",
            "com.1",
            "a.0x7f",
            "a.0X1",
            "0x7f.1",
            "127.0.0.1",
            "2130706433",
            "a.b1",
            "a.1b",
            "[::1]",
        ];
        let ports = [
            "", ":", ":0", ":80", ":443", ":0443", ":65535", ":65536", ":99999", ":123456", ":8x",
            ": 80", ":+80", ":-1",
        ];
        let schemes = [
            "http", "https", "HTTPS", "Ws", "wss", "ftp", "file", "httpx",
        ];
        let paths = ["", "/", "/repos/x?q=1#f", "?a", "#b", "/%zz/../.."];
        let mut checked = 0;
        for scheme in schemes {
            for host in hosts {
                for port in ports {
                    for path in paths {
                        let authority = format!("{host}{port}");
                        agrees(scheme, &authority, path).unwrap();
                        checked += usize::from(plain_target(scheme, &authority).is_some());
                    }
                }
            }
        }
        // The shortcut must actually be taken for the plain cases.
        assert!(checked > 100, "only {checked} shortcut answers");
        assert_eq!(
            plain_target("https", "api.github.com"),
            Some(Target::Host {
                host: "api.github.com".into(),
                port: Some(443)
            })
        );
        assert_eq!(plain_target("https", "1.2.3.4"), None);
        assert_eq!(plain_target("https", "xn--pi-7ba.github.com"), None);
        assert_eq!(plain_target("https", "api.github.com:65536"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        /// Hosts and ports built from the characters that matter to a host parser.
        #[test]
        fn shortcut_agrees_with_the_parser(
            scheme in "(https?|wss?|HTTP|hTtPs|ftp|x)",
            host in "[a-cxnA-CXN0-9._\\-]{0,12}",
            port in "(:[0-9]{0,6})?",
            path in "(/[a-z%.]{0,4})?(\\?[a-z]{0,3})?",
        ) {
            let authority = format!("{host}{port}");
            if let Err(e) = agrees(&scheme, &authority, &path) {
                return Err(proptest::test_runner::TestCaseError::fail(e));
            }
        }
    }

    #[test]
    fn control_and_whitespace_refused_ascii_or_not() {
        for url in [
            "https://api.github.com/\x7f",
            "https://api.github.com/\x01",
            "https://api.github.com/ x",
            "https://api.github.com/\u{85}",
            "https://api.github.com/\u{a0}",
            "https://api.github.com/\u{2028}",
            "https://api.github.com/é\u{9f}",
        ] {
            assert!(unambiguous(url).is_err(), "{url:?}");
        }
        assert!(unambiguous("https://api.github.com/~é").is_ok());
        for url in ["https://a.com\\@evil.com/", "https://é.com\\@evil.com/"] {
            assert!(
                unambiguous(url).unwrap_err().contains("backslash"),
                "{url:?}"
            );
        }
        // A backslash is named first, also when the text has whitespace too.
        assert!(
            unambiguous("https://a.com\\ x")
                .unwrap_err()
                .contains("backslash")
        );
    }

    #[test]
    fn pattern_errors() {
        assert!(DomainPattern::parse("https://api.github.com").is_err());
        assert!(DomainPattern::parse("a.*.com").is_err());
        assert!(DomainPattern::parse("").is_err());
        assert!(DomainPattern::parse("exa mple.com").is_err());
    }
}
