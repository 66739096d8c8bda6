//! Capabilities: which actions a credential lets its subject ask for.
//!
//! The pattern language is deliberately small so that "is this child's grant inside its
//! parent's?" has an exact answer: a capability is `*` (any action), an exact action name
//! (`http_request`), or a prefix ending in one `*` (`mcp.*`, `payments.read*`). No `?`, no
//! character classes, no `*` in the middle — with those, attenuation would need a language
//! inclusion check, and "close enough" is how a child ends up wider than its parent.
//!
//! Names use letters, digits and `._/:-` (what Warden's action names use), at most
//! [`MAX_CAPABILITY_LEN`] bytes.

use std::fmt;

/// Longest capability text.
pub const MAX_CAPABILITY_LEN: usize = 200;
/// Most capabilities in one link.
pub const MAX_CAPABILITIES: usize = 64;

/// One capability pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// `*`: every action.
    Any,
    /// One action name.
    Exact(String),
    /// Every action whose name starts with this (written with a trailing `*`).
    Prefix(String),
}

impl Capability {
    /// Parse one capability, saying what is wrong with a bad one.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("an empty capability".into());
        }
        if text.len() > MAX_CAPABILITY_LEN {
            return Err(format!(
                "a capability longer than {MAX_CAPABILITY_LEN} bytes"
            ));
        }
        let (body, prefix) = match text.strip_suffix('*') {
            Some(body) => (body, true),
            None => (text, false),
        };
        if let Some(bad) = body
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._/:-".contains(*c)))
        {
            let hint = if bad == '*' || bad == '?' || bad == '[' {
                " (only one `*`, at the end, is allowed)"
            } else {
                ""
            };
            return Err(format!(
                "capability `{}` contains `{}`{hint}",
                text.escape_debug(),
                bad.escape_debug()
            ));
        }
        Ok(match (body.is_empty(), prefix) {
            (true, _) => Capability::Any,
            (false, true) => Capability::Prefix(body.to_string()),
            (false, false) => Capability::Exact(body.to_string()),
        })
    }

    /// Whether an action with this name is allowed.
    pub fn allows(&self, action: &str) -> bool {
        match self {
            Capability::Any => true,
            Capability::Exact(name) => name == action,
            Capability::Prefix(p) => action.starts_with(p.as_str()),
        }
    }

    /// Whether every action `other` allows, this allows too.
    pub fn covers(&self, other: &Capability) -> bool {
        match (self, other) {
            (Capability::Any, _) => true,
            (_, Capability::Any) => false,
            (Capability::Exact(a), Capability::Exact(b)) => a == b,
            (Capability::Exact(_), Capability::Prefix(_)) => false,
            (Capability::Prefix(p), Capability::Exact(b)) => b.starts_with(p.as_str()),
            (Capability::Prefix(p), Capability::Prefix(q)) => q.starts_with(p.as_str()),
        }
    }

    /// The actions both allow, as a capability (`None` when they share none).
    pub fn intersect(&self, other: &Capability) -> Option<Capability> {
        if self.covers(other) {
            Some(other.clone())
        } else if other.covers(self) {
            Some(self.clone())
        } else {
            // Two prefixes neither of which extends the other, or an exact name outside a
            // prefix: nothing in common.
            None
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::Any => f.write_str("*"),
            Capability::Exact(n) => f.write_str(n),
            Capability::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

/// A set of capabilities (a link's grant).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities(Vec<Capability>);

impl Capabilities {
    /// Parse a list, refusing duplicates, bad patterns and more than [`MAX_CAPABILITIES`].
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        if items.len() > MAX_CAPABILITIES {
            return Err(format!("more than {MAX_CAPABILITIES} capabilities"));
        }
        let mut out: Vec<Capability> = Vec::with_capacity(items.len());
        for item in items {
            let c = Capability::parse(item.as_ref())?;
            if out.contains(&c) {
                return Err(format!("capability `{c}` is listed twice"));
            }
            out.push(c);
        }
        Ok(Capabilities(out))
    }

    /// The capabilities.
    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.0.iter()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an action with this name is allowed by any of them.
    pub fn allows(&self, action: &str) -> bool {
        self.0.iter().any(|c| c.allows(action))
    }

    /// Whether `c` is inside one of these.
    pub fn covers(&self, c: &Capability) -> bool {
        self.0.iter().any(|p| p.covers(c))
    }

    /// The first capability of `child` that none of these covers (the widening one).
    pub fn first_uncovered<'a>(&self, child: &'a Capabilities) -> Option<&'a Capability> {
        child.0.iter().find(|c| !self.covers(c))
    }

    /// The actions both sets allow, as a set; redundant members removed.
    pub fn intersect(&self, other: &Capabilities) -> Capabilities {
        let mut out: Vec<Capability> = Vec::new();
        for a in &self.0 {
            for b in &other.0 {
                if let Some(c) = a.intersect(b)
                    && !out.iter().any(|o| o.covers(&c))
                {
                    out.retain(|o| !c.covers(o));
                    out.push(c);
                }
            }
        }
        out.sort();
        Capabilities(out)
    }

    /// The capabilities as text.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(none)");
        }
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Capability {
        Capability::parse(s).unwrap()
    }

    #[test]
    fn parses_three_shapes_and_refuses_the_rest() {
        assert_eq!(c("*"), Capability::Any);
        assert_eq!(c("http_request"), Capability::Exact("http_request".into()));
        assert_eq!(c("mcp.*"), Capability::Prefix("mcp.".into()));
        for bad in ["", "a*b", "a?", "**", "a b", "[ab]", "mcp.**"] {
            assert!(Capability::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn covering_is_exact() {
        assert!(c("*").covers(&c("mcp.*")));
        assert!(c("mcp.*").covers(&c("mcp.tools/call")));
        assert!(c("mcp.*").covers(&c("mcp.tools*")));
        assert!(!c("mcp.tools*").covers(&c("mcp.*")));
        assert!(!c("http_request").covers(&c("http_request*")));
        assert!(!c("mcp.*").covers(&c("*")));
        assert!(!c("mcp.*").covers(&c("mcpx")));
    }

    #[test]
    fn intersection_keeps_only_shared_actions() {
        let a = Capabilities::parse(&["mcp.*", "http_request"]).unwrap();
        let b = Capabilities::parse(&["mcp.tools/call", "execute_code", "http*"]).unwrap();
        assert_eq!(
            a.intersect(&b).to_strings(),
            ["http_request", "mcp.tools/call"]
        );
        let any = Capabilities::parse(&["*"]).unwrap();
        assert_eq!(any.intersect(&a), {
            let mut v = a.clone();
            v.0.sort();
            v
        });
    }
}
