//! Host matching for `domains:` constraints.
//!
//! The host is taken from `args.url` (parsed as a WHATWG URL, as browsers and HTTP clients do)
//! or from `args.host`. Comparing strings would be fooled by `api.github.com.evil.com`,
//! `api.github.com@evil.com`, `evil.com/?next=api.github.com`, case, a trailing dot or a port;
//! comparing parsed, normalised hosts is not.

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
        let parsed = match Url::parse(url) {
            Ok(u) => u,
            Err(e) => return Target::Invalid(format!("`args.url` is not a valid URL: {e}")),
        };
        if !SCHEMES.contains(&parsed.scheme()) {
            return Target::Invalid(format!(
                "`args.url` has scheme `{}`; only http, https, ws and wss name a host",
                parsed.scheme()
            ));
        }
        return match parsed.host_str() {
            Some(h) if !h.is_empty() => Target::Host {
                host: normalise(h),
                port: parsed.port_or_known_default(),
            },
            _ => Target::Invalid("`args.url` has no host".into()),
        };
    }
    if let Some(host) = action.args.get("host") {
        let Value::String(host) = host else {
            return Target::Invalid("`args.host` is not a string".into());
        };
        if host.is_empty() || host.contains(['/', '@', '?', '#', '\\', ' ']) {
            return Target::Invalid(format!("`args.host` ({host:?}) is not a host name"));
        }
        return match Url::parse(&format!("http://{host}/")) {
            Ok(u) => match u.host() {
                Some(Host::Domain(_) | Host::Ipv4(_) | Host::Ipv6(_)) => Target::Host {
                    host: normalise(u.host_str().unwrap_or_default()),
                    port: u.port(),
                },
                None => Target::Invalid(format!("`args.host` ({host:?}) is not a host name")),
            },
            Err(e) => Target::Invalid(format!("`args.host` ({host:?}) is not a host name: {e}")),
        };
    }
    Target::Missing
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
            (gh, "https://user:pw@evil.com:443@api.github.com/", true),
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
            (&["127.0.0.1"], "http://0x7f.1/", true),
            (&["[::1]"], "http://[0:0::1]:8080/", true),
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

    #[test]
    fn pattern_errors() {
        assert!(DomainPattern::parse("https://api.github.com").is_err());
        assert!(DomainPattern::parse("a.*.com").is_err());
        assert!(DomainPattern::parse("").is_err());
        assert!(DomainPattern::parse("exa mple.com").is_err());
    }
}
