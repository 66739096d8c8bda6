//! Turning a YAML tree into a compiled [`YamlPolicy`], collecting every problem on the way.

use std::collections::HashMap;
use std::sync::Arc;

use warden_core::{Match, Verdict};

use super::{Node, Value};
use crate::condition::Condition;
use crate::diagnostic::{Position, Problem, did_you_mean};
use crate::domain::DomainPattern;
use crate::engine::YamlPolicy;
use crate::limits::Limits;
use crate::pattern::Pattern;
use crate::rule::Rule;
use crate::source::{Source, Watched};

mod runtime;
mod verify;

const DOC_FIELDS: &[&str] = &[
    "name",
    "description",
    "default",
    "rules",
    "rings",
    "rate_limits",
    "breakers",
    "anomaly",
    "verifiers",
];
const RULE_FIELDS: &[&str] = &[
    "id",
    "description",
    "effect",
    "allow",
    "action",
    "tool",
    "agents",
    "tiers",
    "domains",
    "methods",
    "when",
    "commands",
    "paths",
    "sql",
    "intents",
    "reason",
    "obligations",
    "verify",
];
const EFFECTS: &[&str] = &["allow", "deny", "require_approval"];
/// Obligations Warden's callers understand; custom ones start with `x-`.
pub(crate) const OBLIGATIONS: &[&str] = &["redact", "log_args"];

/// A mapping's known entries: (field name, key node, value node).
type Fields<'n> = Vec<(&'n str, &'n Node, &'n Node)>;

/// Compiles one document, pushing problems into `problems`.
struct Compiler<'a> {
    source: &'a Source,
    limits: &'a Limits,
    problems: Vec<Problem>,
    /// The document's `verifiers:`, for the rules' `verify:`.
    endpoints: verify::Endpoints,
}

/// Compile YAML text into a policy. `Err` holds every problem found.
pub(crate) fn compile(source: &Source, limits: &Limits) -> Result<YamlPolicy, Vec<Problem>> {
    let root = match super::parse(source, limits) {
        Ok(Some(root)) => root,
        Ok(None) => {
            return Err(vec![
                Problem::new(source, source.position_of(0, 0), "the policy file is empty")
                    .with_hint("a policy needs at least `rules:`"),
            ]);
        }
        Err(p) => return Err(vec![p]),
    };
    let mut c = Compiler {
        source,
        limits,
        problems: Vec::new(),
        endpoints: verify::Endpoints::new(),
    };
    let policy = c.document(&root);
    match policy {
        Some(p) if c.problems.is_empty() => Ok(p),
        _ => {
            // Report in reading order, whatever order the checks ran in.
            c.problems.sort_by_key(|p| p.position().offset);
            Err(c.problems)
        }
    }
}

impl Compiler<'_> {
    fn problem(&mut self, pos: Position, message: impl Into<String>) -> &mut Problem {
        self.problems.push(Problem::new(self.source, pos, message));
        self.problems.last_mut().expect("just pushed")
    }

    /// Check a mapping's keys against `known`, reporting unknown ones with a suggestion.
    /// Also returns the fields suggested for typos, so a "missing field" error is not added
    /// on top of the "did you mean" one.
    fn fields<'n, 'k>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &[&'k str],
    ) -> Option<(Fields<'n>, Vec<&'k str>)> {
        let Value::Map(entries) = &node.value else {
            self.problem(
                node.pos,
                format!("{what} must be a mapping, found {}", node.kind()),
            );
            return None;
        };
        let mut out = Vec::with_capacity(entries.len());
        let mut suggested = Vec::new();
        for (k, v) in entries {
            let Some(name) = k.as_str() else {
                self.problem(
                    k.pos,
                    format!("{what} keys must be names, found {}", k.kind()),
                );
                continue;
            };
            if known.contains(&name) {
                out.push((name, k, v));
            } else {
                let guess = did_you_mean(name, known);
                suggested.extend(guess);
                let hint = guess.map_or_else(
                    || format!("{what} fields are: {}", known.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
                self.problem(k.pos, format!("unknown field `{name}` in {what}"))
                    .set_hint(hint);
            }
        }
        Some((out, suggested))
    }

    fn string<'n>(&mut self, node: &'n Node, field: &str) -> Option<&'n str> {
        match &node.value {
            Value::Str(s) => Some(s),
            _ => {
                self.problem(
                    node.pos,
                    format!("`{field}` must be a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// A string or a list of strings, each with its node for positions.
    fn strings<'n>(&mut self, node: &'n Node, field: &str) -> Option<Vec<(&'n str, &'n Node)>> {
        match &node.value {
            Value::Str(s) => Some(vec![(s.as_str(), node)]),
            Value::Seq(items) if !items.is_empty() => {
                let mut out = Vec::new();
                for item in items {
                    match &item.value {
                        Value::Str(s) => out.push((s.as_str(), item)),
                        _ => {
                            self.problem(
                                item.pos,
                                format!("`{field}` entries must be strings, found {}", item.kind()),
                            );
                        }
                    }
                }
                (out.len() == items.len()).then_some(out)
            }
            Value::Seq(_) => {
                self.problem(node.pos, format!("`{field}` must not be an empty list"));
                None
            }
            _ => {
                self.problem(
                    node.pos,
                    format!(
                        "`{field}` must be a string or a list of strings, found {}",
                        node.kind()
                    ),
                );
                None
            }
        }
    }

    fn patterns(&mut self, node: &Node, field: &str) -> Option<Vec<Pattern>> {
        self.parsed(node, field, Pattern::parse)
    }

    /// A string or list of strings, each parsed by `parse`; every failure is a problem.
    fn parsed<T>(
        &mut self,
        node: &Node,
        field: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let items = self.strings(node, field)?;
        let mut out = Vec::new();
        for (text, n) in items {
            match parse(text) {
                Ok(p) => out.push(p),
                Err(e) => {
                    self.problem(n.pos, format!("`{field}`: {e}"));
                }
            }
        }
        Some(out)
    }

    fn verdict(&mut self, node: &Node, field: &str) -> Option<Verdict> {
        let text = self.string(node, field)?;
        match text.parse::<Verdict>() {
            Ok(v) => Some(v),
            Err(_) => {
                let message =
                    format!("`{field}` must be allow, deny or require_approval, found \"{text}\"");
                let p = self.problem(node.pos, message);
                if let Some(s) = did_you_mean(text, EFFECTS) {
                    p.set_hint(format!("did you mean `{s}`?"));
                }
                None
            }
        }
    }

    fn document(&mut self, root: &Node) -> Option<YamlPolicy> {
        let (fields, suggested) = self.fields(root, "the policy", DOC_FIELDS)?;
        let mut name: Option<String> = None;
        let mut default = Verdict::Deny;
        let mut rules_node = None;
        let mut runtime_nodes = Vec::new();
        for (key, _, v) in &fields {
            match *key {
                "name" => name = self.string(v, "name").map(str::to_string),
                "description" => {
                    self.string(v, "description");
                }
                "default" => default = self.verdict(v, "default").unwrap_or(Verdict::Deny),
                "rules" => rules_node = Some(*v),
                "rings" | "rate_limits" | "breakers" | "anomaly" => runtime_nodes.push((*key, *v)),
                "verifiers" => self.endpoints = self.verifiers_section(v),
                _ => unreachable!("fields() filters unknown keys"),
            }
        }
        let name: Arc<str> = Arc::from(name.unwrap_or_else(|| {
            self.source
                .path()
                .file_stem()
                .map_or_else(|| "policy".into(), |s| s.to_string_lossy().into_owned())
        }));
        let runtime = self.runtime_sections(&runtime_nodes, &name);
        let Some(rules_node) = rules_node else {
            if suggested.contains(&"rules") {
                return None;
            }
            self.problem(root.pos, "the policy has no `rules:` list")
                .set_hint("add `rules:` with at least one rule");
            return None;
        };
        let Value::Seq(items) = &rules_node.value else {
            self.problem(
                rules_node.pos,
                format!("`rules` must be a list, found {}", rules_node.kind()),
            );
            return None;
        };
        if items.len() > self.limits.max_rules_per_document {
            self.problem(
                rules_node.pos,
                format!(
                    "the policy has {} rules; the limit is {}",
                    items.len(),
                    self.limits.max_rules_per_document
                ),
            )
            .set_hint("split it into several files");
            return None;
        }
        let mut rules = Vec::with_capacity(items.len());
        let mut ids: HashMap<Arc<str>, Position> = HashMap::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            if let Some(rule) = self.rule(item, index, &name) {
                if let Some(first) = ids.get(rule.id()) {
                    let line = first.line;
                    self.problem(
                        item.pos,
                        format!(
                            "rule id `{}` is used twice (first on line {line})",
                            rule.id()
                        ),
                    );
                } else {
                    ids.insert(rule.id().clone(), item.pos);
                }
                rules.push(rule);
            }
        }
        Some(
            YamlPolicy::new(
                name,
                default,
                rules,
                Watched::File(self.source.path.to_path_buf()),
            )
            .with_runtime(runtime),
        )
    }

    /// The runtime sections (see `compile/runtime.rs`), each in its own function there.
    fn runtime_sections(
        &mut self,
        nodes: &[(&str, &Node)],
        policy: &str,
    ) -> crate::runtime::RuntimeSections {
        let mut out = crate::runtime::RuntimeSections::default();
        for (key, node) in nodes {
            match *key {
                "rings" => out.rings = self.rings_section(node),
                "rate_limits" => out.rate_limits = self.rate_limits_section(node, policy),
                "breakers" => out.breakers = self.breakers_section(node, policy),
                _ => out.anomaly = self.anomaly_section(node),
            }
        }
        out
    }

    fn rule(&mut self, node: &Node, index: usize, policy: &Arc<str>) -> Option<Rule> {
        let before = self.problems.len();
        let (fields, suggested) = self.fields(node, "a rule", RULE_FIELDS)?;
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _, _)| *k == name)
                .map(|(_, k, v)| (*k, *v))
        };

        let id = match get("id") {
            Some((_, v)) => self.string(v, "id").map(str::to_string),
            None => None,
        }
        .unwrap_or_else(|| format!("rules[{index}]"));

        let verdict = match (get("effect"), get("allow")) {
            (Some((k, _)), Some(_)) => {
                self.problem(k.pos, "a rule has both `effect` and `allow`")
                    .set_hint("keep `effect`; `allow: true|false` is its short form");
                None
            }
            (Some((_, v)), None) => self.verdict(v, "effect"),
            (None, Some((_, v))) => match v.value {
                Value::Bool(true) => Some(Verdict::Allow),
                Value::Bool(false) => Some(Verdict::Deny),
                _ => {
                    let hint = match v.as_str() {
                        Some(s) if EFFECTS.contains(&s) => format!("write `effect: {s}`"),
                        _ => "write `allow: true` or `allow: false`".into(),
                    };
                    self.problem(
                        v.pos,
                        format!("`allow` must be true or false, found {}", v.kind()),
                    )
                    .set_hint(hint);
                    None
                }
            },
            (None, None) if suggested.contains(&"effect") || suggested.contains(&"allow") => None,
            (None, None) => {
                self.problem(
                    node.pos,
                    "a rule needs an `effect` (allow, deny or require_approval)",
                )
                .set_hint("or the short form `allow: true` / `allow: false`");
                None
            }
        };

        let actions = match get("action") {
            Some((_, v)) => self.patterns(v, "action"),
            None if suggested.contains(&"action") => None,
            None => {
                self.problem(
                    node.pos,
                    "a rule needs an `action` (a name or a glob such as `mcp.*`)",
                );
                None
            }
        };
        let tools = get("tool").and_then(|(_, v)| self.patterns(v, "tool"));
        let agents = get("agents").and_then(|(_, v)| self.patterns(v, "agents"));
        let tiers = get("tiers").and_then(|(_, v)| self.tiers(v));
        let domains =
            get("domains").and_then(|(_, v)| self.parsed(v, "domains", DomainPattern::parse));
        let methods = get("methods").and_then(|(_, v)| {
            let items = self.strings(v, "methods")?;
            let mut out = Vec::new();
            for (text, n) in items {
                if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
                    self.problem(n.pos, format!("`methods`: `{text}` is not an HTTP method"));
                } else {
                    out.push(Box::from(text.to_ascii_uppercase()));
                }
            }
            Some(out)
        });
        let when = get("when").and_then(|(_, v)| {
            let text = self.string(v, "when")?;
            let max = self.limits.max_expression_operators;
            if crate::source::too_many_operators(text, None, None, max).is_some() {
                self.problem(
                    v.pos,
                    format!("`when`: an expression with more than {max} operators"),
                )
                .set_hint("split the condition into several rules");
                return None;
            }
            match Condition::compile(text) {
                Ok(c) => Some(c),
                Err(e) => {
                    let mut pos = v.pos;
                    // Point inside the expression when it sits on one line of the file.
                    if let Some(col) = e.column
                        && !text.contains('\n')
                    {
                        let quoted = usize::from(matches!(
                            self.source.text.as_bytes().get(v.pos.offset),
                            Some(b'"' | b'\'')
                        ));
                        let byte = text.char_indices().nth(col).map_or(text.len(), |(b, _)| b);
                        pos = self.source.position_of(v.pos.offset + quoted + byte, 1);
                    }
                    let p = Problem::new(self.source, pos, format!("`when`: {}", e.message))
                        .with_hint_opt(e.hint);
                    self.problems.push(p);
                    None
                }
            }
        });
        let commands = get("commands").and_then(|(_, v)| self.commands(v));
        let paths = get("paths").and_then(|(_, v)| self.path_globs(v));
        let sql = get("sql").and_then(|(_, v)| {
            self.names_from(
                v,
                "sql",
                crate::understand::sql::KINDS,
                "SQL statement kind",
            )
        });
        let intents = get("intents").and_then(|(_, v)| self.intents(v));
        let verify = get("verify").and_then(|(_, v)| {
            let endpoints = std::mem::take(&mut self.endpoints);
            let out = self.verify(v, &endpoints);
            self.endpoints = endpoints;
            let out = out?;
            if verdict.is_some_and(|v| v != Verdict::Allow) {
                self.problem(v.pos, "`verify` is for allow rules").set_hint(
                    "verification decides whether an allow stands; a deny needs no second opinion",
                );
                return None;
            }
            Some(std::sync::Arc::new(out))
        });
        let reason = get("reason").and_then(|(_, v)| self.string(v, "reason").map(str::to_string));
        get("description").map(|(_, v)| self.string(v, "description"));
        let obligations = get("obligations").and_then(|(_, v)| {
            let items = self.strings(v, "obligations")?;
            let mut out: Vec<Arc<str>> = Vec::new();
            for (text, n) in items {
                if OBLIGATIONS.contains(&text) || text.starts_with("x-") {
                    out.push(Arc::from(text));
                } else {
                    let hint = did_you_mean(text, OBLIGATIONS).map_or_else(
                        || {
                            format!(
                                "known obligations are {}; custom ones start with `x-`",
                                OBLIGATIONS.join(", ")
                            )
                        },
                        |s| format!("did you mean `{s}`?"),
                    );
                    self.problem(n.pos, format!("unknown obligation `{text}`"))
                        .set_hint(hint);
                }
            }
            Some(out)
        });

        if self.problems.len() > before {
            return None;
        }
        let (Some(verdict), Some(actions)) = (verdict, actions) else {
            return None;
        };
        let id: Arc<str> = Arc::from(id);
        let reason = reason.unwrap_or_else(|| default_reason(verdict, &id, policy));
        Some(Rule {
            index,
            actions,
            tools,
            agents,
            tiers,
            domains,
            methods,
            when,
            commands,
            paths,
            sql,
            intents,
            verify,
            outcome: Match {
                verdict,
                policy: policy.clone(),
                rule: id,
                reason: Arc::from(reason),
                obligations: obligations.unwrap_or_default().into(),
            },
        })
    }
}

impl Compiler<'_> {
    /// `tiers:` — trust tier names (the agent's tier is Warden's to compute: see
    /// `crate::rule::TIERS`).
    fn tiers(&mut self, node: &Node) -> Option<Vec<Box<str>>> {
        let items = self.strings(node, "tiers")?;
        let mut out = Vec::new();
        for (text, n) in items {
            if crate::rule::TIERS.contains(&text) {
                out.push(Box::from(text));
            } else {
                let hint = did_you_mean(text, crate::rule::TIERS).map_or_else(
                    || format!("tiers are {}", crate::rule::TIERS.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
                self.problem(n.pos, format!("unknown tier `{text}`"))
                    .set_hint(hint);
            }
        }
        Some(out)
    }
}

impl Compiler<'_> {
    /// `commands:` — program names as a shell line runs them (`rm`, not `/bin/rm`).
    fn commands(&mut self, node: &Node) -> Option<Vec<Box<str>>> {
        let items = self.strings(node, "commands")?;
        let mut out = Vec::new();
        for (text, n) in items {
            if text.is_empty() || text.chars().any(char::is_whitespace) {
                self.problem(n.pos, format!("`commands`: `{text}` is not a program name"))
                    .set_hint("write one program per entry, without its arguments");
            } else if let Some(base) = text.rsplit('/').next().filter(|_| text.contains('/')) {
                self.problem(n.pos, format!("`commands`: `{text}` is a path"))
                    .set_hint(format!(
                        "write the program name `{base}`: commands are matched by name, whatever directory they run from"
                    ));
            } else {
                out.push(Box::from(text));
            }
        }
        Some(out)
    }

    /// `paths:` — globs over absolute, normalised paths (`~/` is the home directory).
    fn path_globs(&mut self, node: &Node) -> Option<crate::rule::PathGlobs> {
        let items = self.strings(node, "paths")?;
        let mut set = globset::GlobSetBuilder::new();
        let mut texts = Vec::new();
        let before = self.problems.len();
        for (text, n) in items {
            let expanded = crate::paths::expand_home(text);
            if !(expanded.starts_with('/') || expanded.starts_with("**/")) {
                self.problem(n.pos, format!("`paths`: `{text}` is not an absolute path"))
                    .set_hint("paths are compared after being made absolute: start with `/`, `~/` or `**/`");
                continue;
            }
            if expanded.split('/').any(|c| c == ".." || c == ".") {
                self.problem(
                    n.pos,
                    format!("`paths`: `{text}` has a `.` or `..` component"),
                )
                .set_hint("write the normalised path");
                continue;
            }
            match globset::GlobBuilder::new(&expanded)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
            {
                Ok(g) => {
                    set.add(g);
                    texts.push(Box::from(text));
                }
                Err(e) => {
                    self.problem(
                        n.pos,
                        format!("`paths`: invalid glob `{text}`: {}", e.kind()),
                    );
                }
            }
        }
        if self.problems.len() > before {
            return None;
        }
        match set.build() {
            Ok(set) => Some(crate::rule::PathGlobs { set, texts }),
            Err(e) => {
                self.problem(node.pos, format!("`paths`: {e}"));
                None
            }
        }
    }

    /// `intents:` — labels from [`crate::understand::intent::LABELS`].
    fn intents(&mut self, node: &Node) -> Option<Vec<&'static str>> {
        let labels = crate::understand::intent::LABELS;
        let items = self.strings(node, "intents")?;
        let mut out = Vec::new();
        for (text, n) in items {
            if let Some(l) = labels.iter().find(|l| **l == text) {
                out.push(*l);
            } else {
                let hint = did_you_mean(text, labels).map_or_else(
                    || format!("labels are {}", labels.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
                self.problem(n.pos, format!("unknown intent `{text}`"))
                    .set_hint(hint);
            }
        }
        Some(out)
    }

    /// A list of names from a closed set (`sql:` kinds), compared case-insensitively.
    fn names_from(
        &mut self,
        node: &Node,
        field: &str,
        known: &'static [&'static str],
        what: &str,
    ) -> Option<Vec<&'static str>> {
        let items = self.strings(node, field)?;
        let mut out = Vec::new();
        for (text, n) in items {
            let lower = text.to_ascii_lowercase();
            if let Some(k) = known.iter().find(|k| **k == lower) {
                out.push(*k);
            } else {
                let hint = did_you_mean(&lower, known).map_or_else(
                    || format!("known are {}", known.join(", ")),
                    |s| format!("did you mean `{s}`?"),
                );
                self.problem(n.pos, format!("`{field}`: unknown {what} `{text}`"))
                    .set_hint(hint);
            }
        }
        Some(out)
    }
}

fn default_reason(verdict: Verdict, id: &str, policy: &str) -> String {
    let what = match verdict {
        Verdict::Allow => "allowed",
        Verdict::Deny => "denied",
        Verdict::RequireApproval => "needs approval",
    };
    format!("{what} by rule `{id}` of policy `{policy}`")
}
