//! Name patterns used by rules for actions, tools and agents: exact, prefix or glob.
//!
//! Most rules name an action exactly, so exact names are kept as plain strings (and indexed
//! by the engine); `prefix*` and `*` get fast paths; only real globs go through `globset`.

use globset::{Glob, GlobBuilder, GlobMatcher};

/// A compiled name pattern.
#[derive(Debug, Clone)]
pub(crate) enum Pattern {
    /// `*`: any name.
    Any,
    /// A name without glob characters.
    Exact(Box<str>),
    /// `something*` with no other glob characters.
    Prefix(Box<str>),
    /// Anything else with `*`, `?`, `[…]` or `{a,b}`.
    Glob(GlobMatcher),
}

const GLOB_CHARS: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

impl Pattern {
    /// Compile a pattern; the error says what is wrong with the glob.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err("a name pattern must not be empty".into());
        }
        if text == "*" || text == "**" {
            return Ok(Pattern::Any);
        }
        if !text.contains(GLOB_CHARS) {
            return Ok(Pattern::Exact(text.into()));
        }
        if let Some(prefix) = text.strip_suffix('*')
            && !prefix.contains(GLOB_CHARS)
        {
            return Ok(Pattern::Prefix(prefix.into()));
        }
        glob(text)
            .map(|g| Pattern::Glob(g.compile_matcher()))
            .map_err(|e| format!("invalid glob `{text}`: {}", glob_error_kind(&e)))
    }

    /// The pattern as a glob with the options it matches by, for compiling many patterns
    /// into one `globset::GlobSet`; `None` for `*`, which matches every name.
    pub fn to_glob(&self) -> Option<Glob> {
        match self {
            Pattern::Any => None,
            // INVARIANT: exact names and prefixes hold no glob characters (see `parse`), so
            // they read back as the same literal.
            Pattern::Exact(s) => glob(s).ok(),
            Pattern::Prefix(p) => glob(&format!("{p}*")).ok(),
            Pattern::Glob(g) => Some(g.glob().clone()),
        }
    }

    /// Does `name` match?
    #[inline]
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(s) => **s == *name,
            Pattern::Prefix(p) => name.starts_with(&**p),
            Pattern::Glob(g) => g.is_match(name),
        }
    }

    /// Whether the pattern is an exact name or `prefix*`: literal text a multi-pattern
    /// string search finds without a regex.
    pub fn is_literal_prefix(&self) -> bool {
        matches!(self, Pattern::Exact(_) | Pattern::Prefix(_))
    }

    /// The name, when the pattern is an exact name.
    pub fn exact(&self) -> Option<&str> {
        match self {
            Pattern::Exact(s) => Some(s),
            _ => None,
        }
    }
}

/// The one way a pattern's text becomes a glob: `*` crosses `/`, `\\` escapes, case matters.
fn glob(text: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(text)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
}

fn glob_error_kind(e: &globset::Error) -> String {
    match e.kind() {
        globset::ErrorKind::UnclosedClass => "a `[` class is not closed".into(),
        globset::ErrorKind::UnopenedAlternates => "a `}` has no matching `{`".into(),
        globset::ErrorKind::UnclosedAlternates => "a `{` is not closed".into(),
        globset::ErrorKind::NestedAlternates => "`{…}` alternatives cannot be nested".into(),
        globset::ErrorKind::DanglingEscape => "it ends with a lone `\\`".into(),
        globset::ErrorKind::InvalidRange(a, b) => format!("the range `{a}-{b}` is invalid"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_matching() {
        let cases = [
            ("*", "anything/at all", true),
            ("execute_code", "execute_code", true),
            ("execute_code", "execute_code2", false),
            ("mcp.*", "mcp.tools/call", true),
            ("mcp.*", "mcpx", false),
            ("file.{read,write}", "file.write", true),
            ("file.{read,write}", "file.delete", false),
            ("db.?et", "db.get", true),
            ("*_code", "execute_code", true),
            ("[ab]x", "cx", false),
        ];
        for (pat, name, want) in cases {
            assert_eq!(
                Pattern::parse(pat).unwrap().matches(name),
                want,
                "{pat} vs {name}"
            );
        }
        assert!(matches!(Pattern::parse("a*").unwrap(), Pattern::Prefix(_)));
        assert_eq!(Pattern::parse("a.b").unwrap().exact(), Some("a.b"));
    }

    #[test]
    fn bad_globs_say_why() {
        assert!(
            Pattern::parse("[abc")
                .unwrap_err()
                .contains("`[` class is not closed")
        );
        assert!(
            Pattern::parse("{a,b")
                .unwrap_err()
                .contains("`{` is not closed")
        );
        assert!(Pattern::parse("").is_err());
    }
}
