//! Name comparison for typosquatting: Unicode confusable skeletons and edit distance.
//!
//! The skeleton follows UTS #39 in spirit: each character that is commonly mistaken for a
//! Latin letter or digit is mapped to it, then the text is case-folded, and the multi-letter
//! look-alikes `rn`→`m`, `vv`→`w` and the digit look-alikes `0`→`o`, `1`/`|`→`l` are applied.
//! Two different names with the same skeleton look the same to a person. The table is a
//! compact built-in subset of Unicode's `confusables.txt` (Cyrillic, Greek, Armenian,
//! fullwidth, Latin small capitals, a few other Latin letters) — the characters seen in real
//! homoglyph attacks — not the whole file.
//!
//! Thresholds (documented in docs/mcp.md): two names are "near" when their Levenshtein
//! distance is at most 1 for names of 5–11 characters and at most 2 from 12 characters on;
//! names under 5 characters are never near (too many innocent neighbours). Distance 2 on
//! mid-length names flagged real neighbours such as GitHub's `search_code` and Memory's
//! `search_nodes` in the benign corpus, hence the step at 12.

/// The ASCII look-alike of one character, when it has one: from the table, or the table's
/// entry for the character's other case (`Ɪ` is drawn like `I` as `ɪ` is like `i`; a
/// Cherokee small letter like its capital).
pub(crate) fn confusable(c: char) -> Option<char> {
    // (Other cases drawn unlike their pair's look-alike: Greek capital sigma, mu and zeta,
    // Armenian capital za and ho.)
    if c.is_ascii() || matches!(c, 'Σ' | 'μ' | 'ζ' | 'Զ' | 'Հ') {
        return confusable_as_listed(c);
    }
    confusable_as_listed(c)
        .or_else(|| {
            only(c.to_lowercase())
                .filter(|&l| l != c)
                .and_then(confusable_as_listed)
        })
        .or_else(|| {
            only(c.to_uppercase())
                .filter(|&u| u != c)
                .and_then(confusable_as_listed)
        })
}

/// The one character of a case mapping, if it is one.
fn only(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let first = chars.next()?;
    chars.next().is_none().then_some(first)
}

/// The table itself: one case of each look-alike.
fn confusable_as_listed(c: char) -> Option<char> {
    Some(match c {
        // Cyrillic lower case
        'а' => 'a',
        'в' => 'b',
        'е' => 'e',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'у' => 'y',
        'х' => 'x',
        'ѕ' => 's',
        'і' => 'i',
        'ј' => 'j',
        'ԁ' => 'd',
        'һ' => 'h',
        'ӏ' => 'l',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'к' => 'k',
        'т' => 't',
        'м' => 'm',
        'н' => 'h',
        'ь' => 'b',
        // Cyrillic upper case
        'А' => 'a',
        'В' => 'b',
        'Е' => 'e',
        'К' => 'k',
        'М' => 'm',
        'Н' => 'h',
        'О' => 'o',
        'Р' => 'p',
        'С' => 'c',
        'Т' => 't',
        'Х' => 'x',
        'Ѕ' => 's',
        'І' => 'i',
        'Ј' => 'j',
        // Greek
        'α' => 'a',
        'ο' => 'o',
        'ν' => 'v',
        'ρ' => 'p',
        'ι' => 'i',
        'κ' => 'k',
        'υ' => 'u',
        'Α' => 'a',
        'Β' => 'b',
        'Ε' => 'e',
        'Ζ' => 'z',
        'Η' => 'h',
        'Ι' => 'i',
        'Κ' => 'k',
        'Μ' => 'm',
        'Ν' => 'n',
        'Ο' => 'o',
        'Ρ' => 'p',
        'Τ' => 't',
        'Υ' => 'y',
        'Χ' => 'x',
        'η' => 'n',
        'τ' => 't',
        'ϲ' => 'c',
        'ς' => 's',
        'ϳ' => 'j',
        // Coptic, Cherokee and Lisu letters drawn like Latin ones
        'ⲟ' => 'o',
        'Ⲟ' => 'o',
        'Ꭵ' => 'i',
        'Ꭺ' => 'a',
        'Ꮯ' => 'c',
        'Ꭼ' => 'e',
        'Ꮋ' => 'h',
        'Ꮃ' => 'w',
        'Ꭲ' => 't',
        'ꓲ' => 'i',
        'ꓳ' => 'o',
        'ꓮ' => 'a',
        'ꓰ' => 'e',
        'ꓡ' => 'l',
        'ꓢ' => 's',
        'ꓔ' => 't',
        // Armenian
        'օ' => 'o',
        'ս' => 'u',
        'հ' => 'h',
        'ո' => 'n',
        'զ' => 'q',
        // Latin small capitals (IPA and phonetic blocks)
        'ᴀ' => 'a',
        'ʙ' => 'b',
        'ᴄ' => 'c',
        'ᴅ' => 'd',
        'ᴇ' => 'e',
        'ɢ' => 'g',
        'ʜ' => 'h',
        'ɪ' => 'i',
        'ᴊ' => 'j',
        'ᴋ' => 'k',
        'ʟ' => 'l',
        'ᴍ' => 'm',
        'ɴ' => 'n',
        'ᴏ' => 'o',
        'ᴘ' => 'p',
        'ᴛ' => 't',
        'ᴜ' => 'u',
        'ᴠ' => 'v',
        'ᴡ' => 'w',
        'ʏ' => 'y',
        'ᴢ' => 'z',
        // Latin look-alikes
        'ı' => 'i',
        'ɩ' => 'i',
        'ǀ' => 'l',
        'ℓ' => 'l',
        'ɡ' => 'g',
        'ɑ' => 'a',
        'ꞵ' => 'b',
        'ʀ' => 'r',
        'ꜱ' => 's',
        '‐' | '‑' | '‒' | '–' | '—' | '−' => '-',
        // Round zeros of other scripts (Devanagari to Malayalam, Thai, Lao, Myanmar), the
        // Arabic-Indic five and the ideographic zero, drawn like an `o`
        '\u{966}' | '\u{9E6}' | '\u{A66}' | '\u{AE6}' | '\u{B66}' | '\u{C66}' | '\u{CE6}'
        | '\u{D66}' | '\u{E50}' | '\u{ED0}' | '\u{1040}' | '\u{665}' | '\u{3007}' => 'o',
        // More round zeros and letters (Tamil, Khmer, Mongolian, N'Ko, New Tai Lue, Tibetan, Ol
        // Chiki, Saurashtra, Balinese, Myanmar wa, Malayalam ttha, the Persian five, a white
        // circle) and the round anusvara signs of Telugu and Sinhala
        '\u{BE6}' | '\u{17E0}' | '\u{1810}' | '\u{7C0}' | '\u{19D0}' | '\u{F20}' | '\u{1C50}'
        | '\u{A8D0}' | '\u{1B50}' | '\u{101D}' | '\u{D20}' | '\u{6F5}' | '\u{25CB}' | '\u{C02}'
        | '\u{D82}' => 'o',
        // Slashes
        '\u{2215}' | '\u{2044}' | '\u{29F8}' | '\u{2571}' => '/',
        // Fullwidth ASCII
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0)?,
        _ => return None,
    })
}

/// The confusable skeleton of a name: what a person would read.
pub fn skeleton(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = confusable(c).unwrap_or(c);
        out.extend(c.to_lowercase());
    }
    out.replace("rn", "m")
        .replace("vv", "w")
        .replace('0', "o")
        .replace(['1', '|'], "l")
}

/// The skeleton without separators: `read_file`, `read-file`, `ReadFile` and `rеad.file`
/// all fold to `readfile`. Two tools of different servers that fold alike are offered to
/// the model as the same function.
pub fn fold(name: &str) -> String {
    let mut s = skeleton(name);
    s.retain(|c| !matches!(c, '_' | '-' | '.' | ' ' | '/' | ':'));
    s
}

/// Whether a name contains a character from the confusable table.
pub fn has_confusables(name: &str) -> bool {
    name.chars()
        .any(|c| confusable(c).is_some() && !c.is_ascii())
}

/// Levenshtein distance in characters.
#[cfg(test)]
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// Whether two different names are near enough to be mistaken (thresholds in the module doc).
pub fn near(a: &str, b: &str) -> bool {
    let len = a.chars().count().min(b.chars().count());
    let limit = match len {
        0..=4 => return false,
        5..=11 => 1,
        _ => 2,
    };
    a != b && a.len().abs_diff(b.len()) <= limit && within(a, b, limit)
}

/// Whether the Levenshtein distance is at most `k`, computing only the diagonal band
/// `|i - j| <= k` and stopping as soon as a whole row exceeds `k` — the scanner asks this
/// for every pair of similar-length names, so it must not cost a full table each time.
fn within(a: &str, b: &str, k: usize) -> bool {
    if a.is_ascii() && b.is_ascii() {
        // Tool names are nearly always ASCII: compare bytes, no allocation for the text.
        return within_slices(a.as_bytes(), b.as_bytes(), k);
    }
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    within_slices(&a, &b, k)
}

fn within_slices<T: PartialEq>(a: &[T], b: &[T], k: usize) -> bool {
    if a.len().abs_diff(b.len()) > k {
        return false;
    }
    let big = k + 1;
    let mut prev: Vec<usize> = (0..=b.len()).map(|j| j.min(big)).collect();
    let mut cur = vec![big; b.len() + 1];
    for i in 1..=a.len() {
        let lo = i.saturating_sub(k).max(1);
        let hi = (i + k).min(b.len());
        cur.iter_mut().for_each(|c| *c = big);
        cur[0] = i.min(big);
        let mut row_min = cur[0];
        for j in lo..=hi {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let v = (prev[j - 1] + cost)
                .min(prev[j] + 1)
                .min(cur[j - 1] + 1)
                .min(big);
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > k {
            return false;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()] <= k
}

/// A server name as people say it: lower case, without the usual package prefixes/suffixes.
pub fn server_key(name: &str) -> String {
    let mut s = name.to_lowercase();
    if let Some(i) = s.rfind('/') {
        s = s[i + 1..].to_string();
    }
    for prefix in ["mcp-server-", "server-", "mcp-", "mcp_"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.to_string();
        }
    }
    for suffix in ["-mcp-server", "-mcp", "_mcp", "-server"] {
        if let Some(rest) = s.strip_suffix(suffix) {
            s = rest.to_string();
        }
    }
    s
}

/// Well-known MCP servers, by [`server_key`]. A server whose name imitates one of these is
/// reported.
pub const KNOWN_SERVERS: &[&str] = &[
    "filesystem",
    "github",
    "gitlab",
    "slack",
    "postgres",
    "sqlite",
    "git",
    "fetch",
    "memory",
    "everything",
    "sequential-thinking",
    "puppeteer",
    "playwright",
    "brave-search",
    "google-maps",
    "gdrive",
    "sentry",
    "redis",
    "time",
    "notion",
    "linear",
    "jira",
    "stripe",
    "supabase",
    "cloudflare",
    "docker",
    "kubernetes",
    "figma",
    "whatsapp",
    "gmail",
    "discord",
    "context7",
    "firecrawl",
    "tavily",
    "browserbase",
    "atlassian",
    "everart",
    "aws-kb-retrieval",
];

/// Tool names of well-known servers. A tool whose skeleton equals one of these while the
/// name differs is a homoglyph imitation.
pub const KNOWN_TOOLS: &[&str] = &[
    "read_file",
    "read_text_file",
    "read_multiple_files",
    "write_file",
    "edit_file",
    "create_directory",
    "list_directory",
    "directory_tree",
    "move_file",
    "search_files",
    "get_file_info",
    "list_allowed_directories",
    "create_or_update_file",
    "search_repositories",
    "create_repository",
    "get_file_contents",
    "push_files",
    "create_issue",
    "create_pull_request",
    "fork_repository",
    "create_branch",
    "list_commits",
    "list_issues",
    "update_issue",
    "add_issue_comment",
    "search_code",
    "search_issues",
    "search_users",
    "get_issue",
    "merge_pull_request",
    "slack_list_channels",
    "slack_post_message",
    "slack_reply_to_thread",
    "slack_add_reaction",
    "slack_get_channel_history",
    "slack_get_thread_replies",
    "slack_get_users",
    "slack_get_user_profile",
    "query",
    "git_status",
    "git_diff",
    "git_commit",
    "git_add",
    "git_log",
    "git_checkout",
    "fetch",
    "send_message",
    "list_chats",
    "send_email",
    "execute_command",
    "run_command",
    "create_entities",
    "read_graph",
    "search_nodes",
    "sequentialthinking",
    "brave_web_search",
    "puppeteer_navigate",
    "get_current_time",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeletons_unmask_homoglyphs() {
        assert_eq!(skeleton("rеad_filе"), "read_file"); // Cyrillic е
        assert_eq!(skeleton("ｒｅａｄ_file"), "read_file");
        assert_eq!(
            skeleton("github"),
            skeleton("githuЬ".replace('Ь', "b").as_str())
        );
        assert_eq!(skeleton("gmai1"), "gmail");
        assert!(has_confusables("rеad_file") && !has_confusables("read_file"));
        for n in [
            "read_file",
            "read-file",
            "ReadFile",
            "READ_FILE",
            "rеad.file",
        ] {
            assert_eq!(fold(n), "readfile", "{n}");
        }
        assert_ne!(fold("read_files"), fold("read_file"));
    }

    #[test]
    fn edit_distance_thresholds() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert!(near("github", "githuh"));
        assert!(!near("git", "gif"), "short names are never near");
        assert!(near("filesystem", "filesytem") && !near("search_code", "search_nodes"));
        assert!(near("sequential-thinking", "sequentiel-thinkng"));
        assert!(!near("github", "gitlab"));
    }

    #[test]
    fn banded_distance_agrees_with_the_full_one() {
        let words = [
            "read_file",
            "read_files",
            "rread_file",
            "raed_file",
            "write_file",
            "",
            "a",
            "ab",
            "ba",
            "search_code",
            "search_nodes",
        ];
        for a in words {
            for b in words {
                for k in 0..4 {
                    assert_eq!(within(a, b, k), distance(a, b) <= k, "{a} {b} {k}");
                }
            }
        }
    }

    #[test]
    fn server_keys_drop_packaging() {
        assert_eq!(
            server_key("@modelcontextprotocol/server-filesystem"),
            "filesystem"
        );
        assert_eq!(server_key("mcp-server-git"), "git");
        assert_eq!(server_key("GitHub-MCP"), "github");
    }
}
