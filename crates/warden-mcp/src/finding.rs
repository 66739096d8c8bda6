//! What a scan reports: one [`Finding`] per problem, each saying where it is and why it matters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How bad a finding is. The order is the severity order, so `>=` compares with `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing (a risky capability), not a problem by itself.
    Info,
    /// Unusual, probably harmless.
    Low,
    /// Suspicious; a person should look.
    Medium,
    /// Very likely an attack; the proxy hides the tool.
    High,
    /// An attack with no innocent reading (invisible instructions, for example).
    Critical,
}

impl Severity {
    /// Every severity, weakest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lower-case name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("unknown severity `{s}` (expected info, low, medium, high or critical)")
            })
    }
}

/// The family a finding belongs to; the corpus measures precision and recall per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Instructions aimed at the model inside tool metadata (or a tool result).
    Poisoning,
    /// Text a person cannot see but the model reads.
    Hidden,
    /// A name that imitates another one, or two servers offering the same tool.
    Typosquat,
    /// A tool that changed since it was pinned.
    Drift,
    /// A credential in text.
    Secret,
    /// A capability worth knowing about (shell, file writes, network).
    Capability,
    /// Something the model would read that the scan could not (a prompt or resource that
    /// failed to load, or was past the scan's limits).
    Incomplete,
}

impl Category {
    /// The lower-case name used in JSON and in finding ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Poisoning => "poisoning",
            Category::Hidden => "hidden",
            Category::Typosquat => "typosquat",
            Category::Drift => "drift",
            Category::Secret => "secret",
            Category::Capability => "capability",
            Category::Incomplete => "incomplete",
        }
    }
}

/// One problem found by a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id, `category.rule` (e.g. `poisoning.secrecy`).
    pub id: String,
    /// The rule's family.
    pub category: Category,
    /// How bad it is.
    pub severity: Severity,
    /// The server the tool came from (a file name, a config key, or `text` for `scan text`).
    pub server: String,
    /// The tool, when the finding is about one; a prompt is named `prompt:<name>` and a
    /// resource `resource:<uri>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Where in the tool: `description`, `inputSchema.properties.path.description`, `name`…
    pub field: String,
    /// Byte range of the offending text inside that field (start, end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<(usize, usize)>,
    /// The offending text, with invisible characters made visible (`\u{200b}`).
    pub excerpt: String,
    /// Why this is a problem, in words a person can act on.
    pub why: String,
}

impl Finding {
    /// The highest severity in `findings`, if any.
    pub fn max_severity(findings: &[Finding]) -> Option<Severity> {
        findings.iter().map(|f| f.severity).max()
    }
}

/// Make invisible and control characters visible, and cut long text, for excerpts.
pub fn visible(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n >= max_chars {
            out.push('…');
            break;
        }
        let code = c as u32;
        let invisible = c.is_control() && c != ' '
            || matches!(code, 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x2069
                | 0xFEFF | 0x180E | 0x061C | 0xFE00..=0xFE0F | 0xE0000..=0xE007F | 0xE0100..=0xE01EF);
        if invisible {
            out.push_str(&format!("\\u{{{code:x}}}"));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High && Severity::Medium > Severity::Low);
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), s);
        }
        assert!("severe".parse::<Severity>().is_err());
    }

    #[test]
    fn excerpts_show_invisible_characters() {
        assert_eq!(visible("a\u{200b}b\x1b[0m", 10), "a\\u{200b}b\\u{1b}[0m");
        assert_eq!(visible("abcdef", 3), "abc…");
    }
}
