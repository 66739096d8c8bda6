//! The methods the gateway treats specially, and the one rule that keeps look-alikes of
//! them out.
//!
//! The gateway decides `tools/call` and filters the answer to `tools/list`; a message it
//! does not recognise passes unchanged. A lenient server that reads `Tools/Call` or
//! `"tools/call "` as `tools/call` turns that into a bypass: the variant passed undecided
//! and unaudited, and the server ran the denied `write_file`. So every method name is
//! **folded** (white space, control and invisible characters removed, then the confusable
//! skeleton of [`crate::names::skeleton`]: case-folded, look-alike letters mapped) and a
//! message whose folded method equals a special method's is accepted only when it names
//! that method exactly *and* has the shape the method needs (a request with an `id`, or a
//! notification). Everything else with that folded name is refused and recorded. The same
//! fold makes tool names exact: a call to `Write_File` when the server listed `write_file`
//! is refused rather than left to the server's idea of case.

use crate::detect::{is_invisible, read_char};
use crate::names::skeleton;

/// A method with its own treatment in the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// Its answer's `instructions` are scanned and `serverInfo.name` is learned.
    Initialize,
    /// Its answer is scanned and filtered.
    ToolsList,
    /// Decided (`mcp.tools/call`); its answer is scanned (`mcp.tools/result`).
    ToolsCall,
    /// Decided (`mcp.resources/read`); its answer is scanned (`mcp.resources/result`).
    ResourcesRead,
    /// Decided (`mcp.prompts/get`); its answer is scanned (`mcp.prompts/result`).
    PromptsGet,
    /// Its answer is scanned (`mcp.completion/result`).
    Complete,
    /// From the server: decided (`mcp.sampling/createMessage`) with its text scanned.
    CreateMessage,
    /// Ends a pending request on the side that sent it.
    Cancelled,
    /// Its answer's entries are scanned like tool metadata; poisoned ones are withheld.
    PromptsList,
    /// Its answer's entries are scanned like tool metadata; poisoned ones are withheld.
    ResourcesList,
    /// Its answer's entries are scanned like tool metadata; poisoned ones are withheld.
    ResourceTemplatesList,
}

impl Special {
    const ALL: [Special; 11] = [
        Special::Initialize,
        Special::ToolsList,
        Special::ToolsCall,
        Special::ResourcesRead,
        Special::PromptsGet,
        Special::Complete,
        Special::CreateMessage,
        Special::Cancelled,
        Special::PromptsList,
        Special::ResourcesList,
        Special::ResourceTemplatesList,
    ];

    /// The exact method name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Special::Initialize => "initialize",
            Special::ToolsList => "tools/list",
            Special::ToolsCall => "tools/call",
            Special::ResourcesRead => "resources/read",
            Special::PromptsGet => "prompts/get",
            Special::Complete => "completion/complete",
            Special::CreateMessage => "sampling/createMessage",
            Special::Cancelled => "notifications/cancelled",
            Special::PromptsList => "prompts/list",
            Special::ResourcesList => "resources/list",
            Special::ResourceTemplatesList => "resources/templates/list",
        }
    }

    /// Whether the method is a notification (else it is a request and needs an id).
    pub(crate) fn is_notification(self) -> bool {
        self == Special::Cancelled
    }

    /// The action a refusal of this method is recorded as.
    pub(crate) fn action(self) -> String {
        format!("mcp.{}", self.name())
    }
}

/// How a method name relates to the special methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Exactly a special method's name.
    Exact(Special),
    /// Not its name, but folds to it: refused.
    Variant(Special),
    /// Anything else: passed on.
    Other,
}

/// Classify a method name.
///
/// The special methods are ASCII. A method name with other characters is also compared
/// with only the ASCII of its fold: a server that strips format characters or marks it was
/// never told about (`tools/call\u{70F}`, `tools/ca\u{301}ll`) could read one as
/// `tools/call`, so such a name is refused rather than passed on.
pub(crate) fn classify(method: &str) -> Class {
    if let Some(s) = Special::ALL.into_iter().find(|s| s.name() == method) {
        return Class::Exact(s);
    }
    let folded = fold(method);
    let ascii: String = folded.chars().filter(char::is_ascii).collect();
    let found = Special::ALL.into_iter().find(|s| {
        let name = fold(s.name());
        name == folded || (!method.is_ascii() && name == ascii)
    });
    match found {
        Some(s) => Class::Variant(s),
        None => Class::Other,
    }
}

/// A name as a lenient peer might read it: without white space, control or invisible
/// characters, each character read as the second readings of the scanner read it
/// ([`read_char`]: look-alike letters mapped to the letters they imitate, compatibility
/// forms such as `ﬁ`, `ⅽ`, `㎈`, `ſ` or mathematical letters decomposed, combining marks
/// left out), `ß` as `ss`, then the confusable skeleton (case-folded).
pub(crate) fn fold(name: &str) -> String {
    let mut plain = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_whitespace() || c.is_control() || is_invisible(c) {
            continue;
        }
        if matches!(c, '\u{DF}' | '\u{1E9E}') {
            plain.push_str("ss");
            continue;
        }
        read_char(c, |d| {
            if !d.is_whitespace() {
                plain.push(d);
            }
        });
    }
    skeleton(&plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_variants_and_the_rest() {
        assert_eq!(classify("tools/call"), Class::Exact(Special::ToolsCall));
        for variant in [
            "Tools/Call",
            "TOOLS/CALL",
            "tools/call ",
            " tools/call",
            "tools/ call",
            "tools/call\n",
            "tools/call\u{200b}",
            "tools/call\u{0}",
            "tools/call\u{180b}", // Mongolian free variation selector
            "tools/\u{17b4}call", // Khmer inherent vowel, which shows nothing
            "tools/call\u{e01f0}",
            // A second red team's forms: marks, format characters a lenient server could
            // strip, compatibility forms (long s, Roman numerals, a unit sign, an enclosed
            // letter, mathematical bold), a dotted capital I.
            "tools/ca\u{301}ll",
            "tools/call\u{70f}",
            "\u{600}tools/call",
            "tool\u{17f}/call",
            "tools/\u{217d}a\u{217c}\u{217c}",
            "tools/\u{3388}l",
            "tools/\u{24d2}all",
            "\u{1d42d}\u{1d428}\u{1d428}\u{1d425}\u{1d42c}/\u{1d41c}\u{1d41a}\u{1d425}\u{1d425}",
            "tools/call\u{6f3}",
            // A third: other cases of look-alikes, slash look-alikes.
            "t\u{555}\u{555}ls/call",
            "tools\u{2215}call",
            "tools\u{2044}call",
            "t\u{043e}\u{043e}ls/call", // Cyrillic о
            "ｔｏｏｌｓ/ｃａｌｌ",
        ] {
            assert_eq!(
                classify(variant),
                Class::Variant(Special::ToolsCall),
                "{variant:?}"
            );
        }
        for (variant, special) in [
            ("Sampling/CreateMessage", Special::CreateMessage),
            ("resources/Read", Special::ResourcesRead),
            ("sampling/createMe\u{df}age", Special::CreateMessage),
            ("\u{130}nitialize", Special::Initialize),
            ("\u{a7ae}nitialize", Special::Initialize),
            ("noti\u{fb01}cations/cancelled", Special::Cancelled),
            (
                "resources/templates/li\u{fb06}",
                Special::ResourceTemplatesList,
            ),
        ] {
            assert_eq!(classify(variant), Class::Variant(special), "{variant:?}");
        }
        // Other methods, ASCII or not, pass.
        assert_eq!(classify("tools/calls"), Class::Other);
        assert_eq!(classify("notifications/\u{8fdb}\u{5ea6}"), Class::Other);
        assert_eq!(classify("ping"), Class::Other);
        assert_eq!(classify("notifications/initialized"), Class::Other);
    }

    #[test]
    fn no_two_special_methods_fold_alike() {
        for a in Special::ALL {
            for b in Special::ALL {
                assert_eq!(a == b, fold(a.name()) == fold(b.name()), "{a:?} {b:?}");
            }
        }
    }
}
