//! The glob rules of one YAML document compiled into one matcher.
//!
//! Exact action names are found with one hash lookup; rules whose `action` holds a glob used
//! to be tried one by one for every action (~8 ns each: 2,000 glob rules cost 17 µs a
//! decision). Here the glob patterns of all such rules go into two `globset::GlobSet`s — exact
//! names and `prefix*` (hash lookup and Aho–Corasick), and every other glob (suffixes by
//! Aho–Corasick, the rest as one regex set) — so one pass over the action name per set yields
//! the rules that can apply. They come back as ranks in
//! the priority-sorted list of glob rules, so the engine evaluates them in exactly the order
//! the one-by-one scan did, and decisions and `explain` cannot change.
//!
//! The set only narrows: each candidate is still checked in full (its own patterns included)
//! by the engine, so a false positive costs one check and nothing else. A rule with a `*`
//! pattern is a candidate for every name. If the set cannot be built (globset refuses, e.g. a
//! regex set over its size limit), every glob rule is a candidate: the old scan, slower but
//! the same answers.

use globset::{GlobSet, GlobSetBuilder};

use crate::rule::Rule;

/// Candidate glob rules for an action name.
#[derive(Debug, Default)]
pub(crate) struct GlobIndex {
    /// Indexes (into the document's rules) of the rules with a glob in `action`, strongest
    /// first. A *rank* is a position in this list.
    rules: Vec<u32>,
    /// Ranks of the rules that apply to every name (a `*` pattern, or every rule when a set
    /// could not be built), ascending.
    always: Vec<u32>,
    /// Exact names and `prefix*` patterns: searched with Aho–Corasick, at a cost that
    /// follows the matches, not the number of patterns.
    literal: Part,
    /// Every other glob (`*.x`, `a?b`, `[…]`, `{a,b}`, …), as one regex set of the globs'
    /// own regexes. Not a `GlobSet`: its path strategies read `*.x` as "has extension x",
    /// and a name like `..` has no extension, so `*.` would miss a name its glob matches (a
    /// skipped deny). Matching every pattern walks one bit per pattern whatever it finds (60%
    /// of a decision at 500 such patterns, by callgrind), so these sit apart, behind an
    /// `is_match` that stops at the first hit: a name matched by a prefix (the common glob)
    /// never pays for them.
    other: RegexPart,
}

/// The regex-shaped globs: each glob's own regex (the one `GlobMatcher` runs), in one set.
#[derive(Debug, Default)]
struct RegexPart {
    set: Option<regex::bytes::RegexSet>,
    owner: Vec<u32>,
}

impl RegexPart {
    fn build(globs: Vec<(globset::Glob, u32)>) -> Option<RegexPart> {
        if globs.is_empty() {
            return Some(RegexPart::default());
        }
        let (patterns, owner): (Vec<String>, Vec<u32>) = globs
            .into_iter()
            .map(|(g, rank)| (g.regex().to_string(), rank))
            .unzip();
        let set = regex::bytes::RegexSet::new(&patterns).ok()?;
        Some(RegexPart {
            set: Some(set),
            owner,
        })
    }

    /// Add the ranks of the rules with a pattern matching `name`, after an `is_match`.
    fn ranks_into(&self, name: &str, ranks: &mut Vec<u32>) {
        let Some(set) = &self.set else {
            return;
        };
        if !set.is_match(name.as_bytes()) {
            return;
        }
        ranks.extend(
            set.matches(name.as_bytes())
                .into_iter()
                .map(|p| self.owner[p]),
        );
    }
}

/// One `GlobSet` and the rank of the rule each of its patterns belongs to.
#[derive(Debug, Default)]
struct Part {
    set: GlobSet,
    owner: Vec<u32>,
}

impl Part {
    fn build(globs: Vec<(globset::Glob, u32)>) -> Option<Part> {
        let mut builder = GlobSetBuilder::new();
        let mut owner = Vec::with_capacity(globs.len());
        for (glob, rank) in globs {
            builder.add(glob);
            owner.push(rank);
        }
        Some(Part {
            set: builder.build().ok()?,
            owner,
        })
    }

    /// Add the ranks of the rules with a pattern matching `name` to `ranks`.
    fn ranks_into(&self, name: &str, ranks: &mut Vec<u32>) {
        if self.owner.is_empty() {
            return;
        }
        let mut hits = Vec::new();
        self.set.matches_into(name, &mut hits);
        ranks.extend(hits.iter().map(|&p| self.owner[p]));
    }
}

impl GlobIndex {
    /// Compile the patterns of `ranked` (rule indexes, strongest first).
    pub fn new(rules: &[Rule], ranked: Vec<u32>) -> GlobIndex {
        let mut always = Vec::new();
        let (mut literal, mut other) = (Vec::new(), Vec::new());
        for (rank, &i) in ranked.iter().enumerate() {
            let rank = u32::try_from(rank).expect("fewer than 4 billion rules");
            let mut matches_all = false;
            for pattern in &rules[i as usize].actions {
                match pattern.to_glob() {
                    Some(glob) if pattern.is_literal_prefix() => literal.push((glob, rank)),
                    Some(glob) => other.push((glob, rank)),
                    None => matches_all = true,
                }
            }
            if matches_all {
                always.push(rank);
            }
        }
        let (literal, other) = match (Part::build(literal), RegexPart::build(other)) {
            (Some(l), Some(o)) => (l, o),
            _ => {
                // Fall back to the scan: every glob rule is a candidate.
                always =
                    (0..u32::try_from(ranked.len()).expect("fewer than 4 billion rules")).collect();
                (Part::default(), RegexPart::default())
            }
        };
        GlobIndex {
            rules: ranked,
            always,
            literal,
            other,
        }
    }

    /// Whether there are no glob rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules (indexes into the document's rules) whose patterns may match `name`,
    /// strongest first. Every rule whose pattern matches is among them; a few that do not
    /// may be too.
    pub fn candidates(&self, name: &str) -> Vec<u32> {
        let mut ranks = Vec::new();
        self.literal.ranks_into(name, &mut ranks);
        self.other.ranks_into(name, &mut ranks);
        if ranks.is_empty() {
            return self
                .always
                .iter()
                .map(|&r| self.rules[r as usize])
                .collect();
        }
        ranks.extend_from_slice(&self.always);
        ranks.sort_unstable();
        ranks.dedup();
        for r in &mut ranks {
            *r = self.rules[*r as usize];
        }
        ranks
    }

    /// Every glob rule, strongest first: what the engine scanned before this index (kept for
    /// the differential tests).
    #[cfg(test)]
    pub fn all(&self) -> &[u32] {
        &self.rules
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use warden_core::{Action, Policy};

    use crate::engine::YamlPolicy;
    use crate::limits::Limits;
    use crate::source::Source;

    /// Pieces of glob: literals (case and separators included), every wildcard form, classes,
    /// alternatives and escapes.
    fn token() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a", "b", "A", ".", "/", "_", "-", "ab", "a.b", "*", "**", "?", "[ab]", "[!a]",
            "[a-b]", "[.]", "{a,b}", "{a.,/b}", "\\*", "\\?", "\\[", "\\\\", "*/", "/**/",
        ])
    }

    fn pattern() -> impl Strategy<Value = String> {
        prop::collection::vec(token(), 1..5).prop_map(|t| t.concat())
    }

    /// Names over the characters the patterns use, literal wildcard characters included.
    fn name() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                "a", "b", "A", "B", ".", "/", "_", "-", "*", "?", "[", "\\", "ab", "a.b",
            ]),
            0..7,
        )
        .prop_map(|t| t.concat())
    }

    /// A name without glob characters: an exact pattern.
    fn plain_name() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "A", ".", "/", "_"]),
            1..5,
        )
        .prop_map(|t| t.concat())
    }

    #[derive(Debug, Clone)]
    struct RuleSpec {
        effect: &'static str,
        actions: Vec<String>,
        tool: Option<&'static str>,
    }

    fn rule() -> impl Strategy<Value = RuleSpec> {
        (
            prop::sample::select(vec!["allow", "deny", "require_approval"]),
            prop::collection::vec(prop_oneof![3 => pattern(), 1 => plain_name()], 1..4),
            prop::option::weighted(0.3, prop::sample::select(vec!["t1", "t2"])),
        )
            .prop_map(|(effect, actions, tool)| RuleSpec {
                effect,
                actions: actions
                    .into_iter()
                    .map(|a| if a.is_empty() { "a".into() } else { a })
                    .collect(),
                tool,
            })
    }

    fn yaml(rules: &[RuleSpec]) -> String {
        let mut text = String::from("rules:\n");
        for (i, r) in rules.iter().enumerate() {
            let quoted: Vec<String> = r.actions.iter().map(|a| format!("'{a}'")).collect();
            text.push_str(&format!(
                "  - id: r{i}\n    effect: {}\n    action: [{}]\n",
                r.effect,
                quoted.join(", ")
            ));
            if let Some(t) = r.tool {
                text.push_str(&format!("    tool: {t}\n"));
            }
        }
        text
    }

    fn compile(rules: &[RuleSpec]) -> Result<YamlPolicy, String> {
        crate::yaml::compile(&Source::new("prop.yaml", &yaml(rules)), &Limits::default())
            .map_err(|problems| format!("{problems:?}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The index names every glob rule whose pattern matches, in the scan's order, and the
        /// decision is the scan's decision (errors and approvals included).
        #[test]
        fn index_agrees_with_the_scan(
            rules in prop::collection::vec(rule(), 1..12),
            names in prop::collection::vec(name(), 1..6),
            tool in prop::option::of(prop::sample::select(vec!["t1", "t2"])),
        ) {
            // Every generated glob is valid; a document that does not compile is a bug here.
            let policy = compile(&rules);
            prop_assert!(policy.is_ok(), "{:?}", policy.err());
            let policy = policy.unwrap();
            for name in names {
                let mut action = Action::new(name.clone());
                if let Some(t) = tool {
                    action = action.with_tool(t);
                }
                let candidates = policy.glob_candidates(&name);
                let all = policy.glob_rules();
                // Candidates keep the scan's order (a subsequence of it)…
                let mut rest = all.iter();
                for c in &candidates {
                    prop_assert!(rest.any(|a| a == c), "{candidates:?} out of order in {all:?}");
                }
                // …and miss no rule whose pattern matches.
                for &i in all {
                    if policy.rule_matches_name(i, &name) {
                        prop_assert!(candidates.contains(&i), "rule {i} matches `{name}` but is no candidate");
                    }
                }
                prop_assert_eq!(
                    format!("{:?}", policy.evaluate(&action)),
                    format!("{:?}", policy.evaluate_by_scan(&action)),
                    "name `{}`", name
                );
            }
        }
    }

    #[test]
    fn tricky_globs_match_as_each_pattern_does() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "mcp.*",
                &["mcp.", "mcp.tools/call"],
                &["mcp", "mcpx", "MCP.x"],
            ),
            ("*.op1", &["x.op1", "a/b.op1", ".op1"], &["x.op10", "op1"]),
            ("db.?et", &["db.get", "db.set"], &["db.gets", "db.et"]),
            (
                "file.{read,write}",
                &["file.read", "file.write"],
                &["file.delete"],
            ),
            ("[ab]x", &["ax", "bx"], &["cx", "Ax"]),
            ("[!a]x", &["bx", "/x"], &["ax"]),
            (
                "**/call",
                &["call", "a/call", "a/b/call"],
                &["acall", "call/"],
            ),
            ("a/**", &["a/", "a/b/c"], &["ab"]),
            ("lit\\*", &["lit*"], &["litx", "lit"]),
            ("q\\?", &["q?"], &["qx"]),
            ("Exec*", &["Exec", "Execute"], &["exec"]),
        ];
        for (pattern, yes, no) in cases {
            let text = format!("rules:\n  - action: '{pattern}'\n    allow: false\n");
            let policy =
                crate::yaml::compile(&Source::new("t.yaml", &text), &Limits::default()).unwrap();
            for name in *yes {
                assert_eq!(policy.glob_candidates(name), vec![0], "{pattern} vs {name}");
                assert!(policy.evaluate(&Action::new(*name)).unwrap().is_some());
            }
            for name in *no {
                assert!(
                    policy.evaluate(&Action::new(*name)).unwrap().is_none(),
                    "{pattern} vs {name}"
                );
            }
        }
    }

    #[test]
    fn a_star_rule_is_a_candidate_for_every_name_in_priority_order() {
        let text = "rules:\n  - action: 'x*'\n    allow: true\n  - action: '*'\n    allow: false\n  - action: ['y', 'x?']\n    effect: require_approval\n";
        let policy =
            crate::yaml::compile(&Source::new("t.yaml", text), &Limits::default()).unwrap();
        // Deny first, then approval, then allow (file order within each).
        assert_eq!(policy.glob_candidates("xy"), vec![1, 2, 0]);
        assert_eq!(policy.glob_candidates("zzz"), vec![1]);
        assert_eq!(policy.glob_candidates("y"), vec![1, 2]);
    }
}
