//! A compiled rule and how it judges one action.
//!
//! A rule *applies* when every condition it states holds: action name, tool, agent, host,
//! method and `when`. When a condition cannot be evaluated (a malformed URL, a CEL error), the
//! rule fails closed: a rule that could only restrict (deny, require approval) reports an
//! error, which denies; an allow rule simply does not allow.
//!
//! `commands:`, `paths:`, `sql:` and `intents:` judge the action as parsed (see
//! [`crate::understand`]). Their semantics differ by verdict on purpose: an allow rule is a
//! promise that *everything* the action does is fine (every command listed, every path
//! inside, every SQL statement of a listed kind), a restricting rule catches an action if
//! *anything* it does is named (any command, any path, any statement kind, any label). Either way, what cannot be read is not "no match": it fails as above.

use std::sync::Arc;

use warden_core::{Action, Match, Verdict};

use crate::condition::Condition;
use crate::domain::{self, DomainPattern, Target};
use crate::pattern::Pattern;
use crate::understand::Facts;

/// A rule ready to evaluate.
#[derive(Debug)]
pub(crate) struct Rule {
    /// Position in its document (0-based), the tie-breaker between rules of equal strength.
    pub index: usize,
    pub actions: Vec<Pattern>,
    pub tools: Option<Vec<Pattern>>,
    pub agents: Option<Vec<Pattern>>,
    /// Trust tier names; the rule applies only to an agent whose `context.tier` (written by
    /// Warden after verifying it) is one of them.
    pub tiers: Option<Vec<Box<str>>>,
    pub domains: Option<Vec<DomainPattern>>,
    /// Upper-case method names.
    pub methods: Option<Vec<Box<str>>>,
    pub when: Option<Condition>,
    /// Program names (`commands:`).
    pub commands: Option<Vec<Box<str>>>,
    /// Path globs (`paths:`).
    pub paths: Option<PathGlobs>,
    /// SQL statement kinds (`sql:`), each one of [`crate::understand::sql::KINDS`].
    pub sql: Option<Vec<&'static str>>,
    /// Intent labels (`intents:`), each one of [`crate::understand::intent::LABELS`].
    pub intents: Option<Vec<&'static str>>,
    /// Verifiers to ask before this (allow) rule's allow stands (`verify:`).
    pub verify: Option<Arc<crate::verify::Verify>>,
    /// What the rule produces when it applies; its verdict, ids and reason never change.
    pub outcome: Match,
}

/// Why a rule did not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    Action,
    Tool,
    Agent,
    /// No verified tier, or one outside `tiers`.
    Tier,
    /// No `args.url`/`args.host`, or a host outside the list.
    Domain,
    /// The target was given but could not be parsed (an allow rule then does not apply).
    DomainInvalid,
    Method,
    When,
    /// The condition failed to run (an allow rule then does not apply).
    WhenError,
    /// No command, or (allow) a command not listed / (restricting) none listed.
    Commands,
    /// No path, or (allow) a path outside / (restricting) none inside.
    Paths,
    /// No SQL, or (allow) a statement of a kind not listed / (restricting) none listed.
    Sql,
    /// None of the labels.
    Intents,
    /// The command or a path could not be read (an allow rule then does not apply).
    Unreadable,
}

/// The globs of a `paths:` list, compiled into one set.
#[derive(Debug)]
pub(crate) struct PathGlobs {
    pub set: globset::GlobSet,
    pub texts: Vec<Box<str>>,
}

impl PathGlobs {
    fn matches(&self, p: &std::path::Path) -> bool {
        self.set.is_match(p)
    }
}

/// The result of checking one rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    Applies,
    Miss(Miss),
    /// The rule could not tell, and it is a restricting rule: the caller must deny.
    Error(String),
}

impl Rule {
    pub fn verdict(&self) -> Verdict {
        self.outcome.verdict
    }

    pub fn id(&self) -> &Arc<str> {
        &self.outcome.rule
    }

    /// Check everything but the action name (the engine's index already matched it).
    pub fn check(&self, facts: &Facts) -> Check {
        let action = facts.action();
        if let Some(tools) = &self.tools {
            match &action.tool {
                Some(t) if tools.iter().any(|p| p.matches(t)) => {}
                _ => return Check::Miss(Miss::Tool),
            }
        }
        if let Some(agents) = &self.agents {
            match &action.agent {
                Some(a) if agents.iter().any(|p| p.matches(a)) => {}
                _ => return Check::Miss(Miss::Agent),
            }
        }
        if let Some(tiers) = &self.tiers
            && !tier_matches(tiers, action)
        {
            return Check::Miss(Miss::Tier);
        }
        if let Some(domains) = &self.domains {
            match domain::target(action) {
                Target::Host { host, port } => {
                    if !domains.iter().any(|d| d.matches(&host, port)) {
                        return Check::Miss(Miss::Domain);
                    }
                }
                Target::Missing => return Check::Miss(Miss::Domain),
                Target::Invalid(why) => return self.fail(Miss::DomainInvalid, why),
            }
        }
        if let Some(methods) = &self.methods {
            match action.arg_str("method") {
                Some(m) if methods.iter().any(|want| want.eq_ignore_ascii_case(m)) => {}
                _ => return Check::Miss(Miss::Method),
            }
        }
        if let Some(when) = &self.when {
            match when.eval(action) {
                Ok(true) => {}
                Ok(false) => return Check::Miss(Miss::When),
                Err(why) => return self.fail(Miss::WhenError, why),
            }
        }
        if let Some(check) = self.check_parsed(facts) {
            return check;
        }
        Check::Applies
    }

    /// `commands:`, `paths:` and `intents:`; `None` when they all hold (or are absent).
    fn check_parsed(&self, facts: &Facts) -> Option<Check> {
        let allow = self.verdict() == Verdict::Allow;
        if let Some(names) = &self.commands {
            let listed = |c: &crate::understand::Command| names.iter().any(|n| **n == *c.name);
            match facts.line() {
                None => return Some(Check::Miss(Miss::Commands)),
                Some(Err(why)) => return Some(self.fail(Miss::Unreadable, why.clone())),
                Some(Ok(line)) => {
                    let mut programs = line.commands.iter().filter(|c| !c.name.is_empty());
                    let holds = if allow {
                        let mut any = false;
                        programs.all(|c| {
                            any = true;
                            !c.unknown && listed(c)
                        }) && any
                    } else {
                        programs.any(|c| !c.unknown && listed(c))
                    };
                    if !holds {
                        // A program only known at run time could be any of the listed ones.
                        if !allow && let Some(c) = line.commands.iter().find(|c| c.unknown) {
                            return Some(Check::Error(format!(
                                "the program `{}` is only known when the command runs",
                                c.name
                            )));
                        }
                        return Some(Check::Miss(Miss::Commands));
                    }
                }
            }
        }
        if let Some(globs) = &self.paths {
            match facts.paths() {
                Err(why) => return Some(self.fail(Miss::Unreadable, why.clone())),
                Ok(list) if list.is_empty() => return Some(Check::Miss(Miss::Paths)),
                Ok(list) => {
                    let readings = |p: &crate::understand::PathArg| {
                        [Some(p.lexical.as_path()), p.resolved.as_deref()]
                            .into_iter()
                            .flatten()
                            .map(|r| globs.matches(r))
                            .collect::<Vec<bool>>()
                    };
                    // Allow: both readings of every path inside. Restrict: either reading of
                    // any path inside.
                    let holds = if allow {
                        list.iter().all(|p| readings(p).iter().all(|m| *m))
                    } else {
                        list.iter().any(|p| readings(p).iter().any(|m| *m))
                    };
                    if !holds {
                        return Some(Check::Miss(Miss::Paths));
                    }
                }
            }
        }
        if let Some(kinds) = &self.sql {
            match facts.sql() {
                None => return Some(Check::Miss(Miss::Sql)),
                Some(Err(why)) => return Some(self.fail(Miss::Unreadable, why.clone())),
                Some(Ok(sql)) => {
                    let mut found = sql.statements.iter().map(|s| s.kind);
                    let holds = if allow {
                        found.all(|k| kinds.contains(&k))
                    } else {
                        found.any(|k| kinds.contains(&k))
                    };
                    if !holds {
                        return Some(Check::Miss(Miss::Sql));
                    }
                }
            }
        }
        if let Some(labels) = &self.intents {
            match facts.intents() {
                Err(why) => return Some(self.fail(Miss::Unreadable, why.clone())),
                Ok(found) => {
                    if !found.iter().any(|i| labels.contains(&i.label)) {
                        return Some(Check::Miss(Miss::Intents));
                    }
                }
            }
        }
        None
    }

    /// Check the action name too (for rules outside the exact-name index, and for explain).
    pub fn check_all(&self, facts: &Facts) -> Check {
        if !self
            .actions
            .iter()
            .any(|p| p.matches(&facts.action().action))
        {
            return Check::Miss(Miss::Action);
        }
        self.check(facts)
    }

    fn fail(&self, miss: Miss, why: String) -> Check {
        // INVARIANT: only allow rules may turn an error into "does not apply"; skipping a
        // restricting rule would let a weaker verdict through.
        if self.verdict() == Verdict::Allow {
            Check::Miss(miss)
        } else {
            Check::Error(why)
        }
    }

    /// A sentence saying why the rule did not apply to `action`, for `explain`.
    pub fn explain_miss(&self, miss: Miss, facts: &Facts) -> String {
        let action = facts.action();
        let quote = |o: Option<&str>| o.map_or_else(|| "none".to_string(), |s| format!("`{s}`"));
        match miss {
            Miss::Action => format!("action `{}` is not one this rule names", action.action),
            Miss::Tool => format!(
                "tool {} is not one this rule names",
                quote(action.tool.as_deref())
            ),
            Miss::Agent => format!(
                "agent {} is not one this rule names",
                quote(action.agent.as_deref())
            ),
            Miss::Domain => match domain::target(action) {
                Target::Host { host, .. } => format!("host `{host}` is not in `domains`"),
                _ => "no `args.url` or `args.host` to check against `domains`".to_string(),
            },
            Miss::DomainInvalid => match domain::target(action) {
                Target::Invalid(why) => format!("{why}, so `domains` cannot be satisfied"),
                _ => "the target host could not be read".to_string(),
            },
            Miss::Tier => format!(
                "tier {} is not in `tiers`",
                quote(
                    action
                        .context
                        .get("tier")
                        .and_then(serde_json::Value::as_str)
                )
            ),
            Miss::Method => format!(
                "method {} is not in `methods`",
                quote(action.arg_str("method"))
            ),
            Miss::When => "`when` is false".to_string(),
            Miss::WhenError => match self.when.as_ref().map(|w| w.eval(action)) {
                Some(Err(why)) => format!("{why}, so this allow rule does not apply"),
                _ => "`when` could not be evaluated".to_string(),
            },
            Miss::Commands => match facts.line() {
                None => "no `args.command` to check against `commands`".to_string(),
                Some(Ok(line)) => {
                    let names: Vec<&str> = line
                        .commands
                        .iter()
                        .filter(|c| !c.name.is_empty())
                        .map(|c| &*c.name)
                        .collect();
                    if self.verdict() == Verdict::Allow {
                        format!(
                            "the command runs {}; every one must be in `commands`",
                            quote_list(&names)
                        )
                    } else {
                        format!(
                            "the command runs {}, none in `commands`",
                            quote_list(&names)
                        )
                    }
                }
                Some(Err(why)) => why.clone(),
            },
            Miss::Paths => match facts.paths() {
                Ok(list) if list.is_empty() => "no path argument to check against `paths`".into(),
                Ok(list) => {
                    let shown: Vec<String> = list
                        .iter()
                        .map(|p| p.lexical.display().to_string())
                        .collect();
                    let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
                    let globs: Vec<&str> = self
                        .paths
                        .as_ref()
                        .map(|g| g.texts.iter().map(|t| &**t).collect())
                        .unwrap_or_default();
                    let (shown, globs) = (quote_list(&shown), quote_list(&globs));
                    if self.verdict() == Verdict::Allow {
                        format!("paths {shown} are not all inside {globs}")
                    } else {
                        format!("paths {shown} are all outside {globs}")
                    }
                }
                Err(why) => why.clone(),
            },
            Miss::Sql => match facts.sql() {
                None => "no `args.sql` (or database `args.query`) to check against `sql`".into(),
                Some(Ok(sql)) => {
                    let kinds = sql.kinds();
                    if self.verdict() == Verdict::Allow {
                        format!(
                            "the SQL runs {}; every kind must be in `sql`",
                            quote_list(&kinds)
                        )
                    } else {
                        format!("the SQL runs {}, none in `sql`", quote_list(&kinds))
                    }
                }
                Some(Err(why)) => why.clone(),
            },
            Miss::Intents => match facts.intents() {
                Ok(found) if found.is_empty() => "the action has no intent label".into(),
                Ok(found) => {
                    let names: Vec<&str> = found.iter().map(|i| i.label).collect();
                    format!("its labels {} are not in `intents`", quote_list(&names))
                }
                Err(why) => why.clone(),
            },
            Miss::Unreadable => {
                let why = match (facts.line(), facts.paths(), facts.sql()) {
                    (Some(Err(e)), _, _) | (_, Err(e), _) | (_, _, Some(Err(e))) => e.clone(),
                    _ => "the action could not be read".into(),
                };
                format!("{why}, so this allow rule does not apply")
            }
        }
    }
}

/// The trust tiers a rule's `tiers:` may name, least trusted first (the names of
/// `warden_trust::Tier`; a test in `warden` holds the two lists equal).
pub const TIERS: &[&str] = &[
    "untrusted",
    "probationary",
    "standard",
    "trusted",
    "verified_partner",
];

fn tier_matches(tiers: &[Box<str>], action: &Action) -> bool {
    action
        .context
        .get("tier")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|t| tiers.iter().any(|want| &**want == t))
}

fn quote_list(items: &[&str]) -> String {
    if items.is_empty() {
        return "nothing".into();
    }
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
