//! Execution rings: which ring an agent is in, what each ring may do, and the gate.
//!
//! An agent's ring comes from the policy's `rings:` section (exact name first, else the least
//! privileged of the globs that match, else the default, `untrusted` unless written), then:
//! an operator's elevation (temporary, audited) may raise it; a demotion — by an operator, by
//! the anomaly detector, or by falling trust — lowers it, and a demotion always wins over an
//! elevation. Nothing the caller sends (a `ring`, `tier` or `trust` in the context, an
//! attestation string) takes part: the ring is computed, and then written into the action's
//! context for the policy to see.
//!
//! Each action has classes (built in for Warden's own action names, overridable in YAML);
//! an action whose classes are not all allowed by the ring's profile is denied, whatever the
//! policy says. An action Warden does not know and no document classifies counts as
//! `irreversible`: only `kernel` and `supervisor` may request it.

use crate::hash::ConfigMap;

use warden_policy::runtime::{
    ActionClass, ClassSet, Demotion, NamePattern, Rate, Ring, RingsSection, RuntimeSections,
};

/// A trust tier, as the trust step reports it. The identity and trust work provides the real
/// tiers; the ring gate only asks how one compares with the tier a demotion names.
pub trait TrustTier {
    /// The tier's name (shown in reasons).
    fn name(&self) -> &str;
    /// Whether this tier is below the tier called `tier`. A name this tier does not know
    /// must answer `true`: an unknown bar is one the agent has not cleared (fail closed).
    fn is_below(&self, tier: &str) -> bool;
}

/// Tier names in order, lowest first, used until the trust step supplies its own.
pub const DEFAULT_TIERS: &[&str] = warden_policy::TIERS;

/// A tier by name within an ordered list of tier names (lowest first).
#[derive(Debug, Clone, Copy)]
pub struct OrderedTier<'a> {
    name: &'a str,
    order: &'a [&'a str],
}

impl<'a> OrderedTier<'a> {
    /// The tier `name` among [`DEFAULT_TIERS`].
    pub fn new(name: &'a str) -> Self {
        OrderedTier {
            name,
            order: DEFAULT_TIERS,
        }
    }

    /// The tier `name` among `order` (lowest first).
    pub fn within(name: &'a str, order: &'a [&'a str]) -> Self {
        OrderedTier { name, order }
    }
}

impl TrustTier for OrderedTier<'_> {
    fn name(&self) -> &str {
        self.name
    }

    fn is_below(&self, tier: &str) -> bool {
        let rank = |n: &str| self.order.iter().position(|t| *t == n);
        match (rank(self.name), rank(tier)) {
            (Some(mine), Some(bar)) => mine < bar,
            _ => true,
        }
    }
}

/// What a ring may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The action classes it may request.
    pub allow: ClassSet,
    /// The most tool calls an agent in the ring may have running at once.
    pub max_concurrent: u32,
    /// A limit over all of an agent's actions (`None`: none), burst = the rate's count.
    pub rate: Option<Rate>,
}

impl Profile {
    /// The built-in profile of `ring` (see docs/runtime.md for the table).
    pub fn builtin(ring: Ring) -> Profile {
        use ActionClass::*;
        let minute = std::time::Duration::from_secs(60);
        match ring {
            Ring::Kernel => Profile {
                allow: ClassSet::all(),
                max_concurrent: 64,
                rate: None,
            },
            Ring::Supervisor => Profile {
                allow: ClassSet::of(&[Irreversible, Network, Subprocess, Write, Read]),
                max_concurrent: 32,
                rate: None,
            },
            Ring::User => Profile {
                allow: ClassSet::of(&[Network, Write, Read]),
                max_concurrent: 8,
                rate: Some(Rate {
                    count: 600,
                    period: minute,
                }),
            },
            Ring::Untrusted => Profile {
                allow: ClassSet::of(&[Read]),
                max_concurrent: 2,
                rate: Some(Rate {
                    count: 60,
                    period: minute,
                }),
            },
        }
    }
}

/// The classes of Warden's own action names (and the doors' names for actions).
pub fn builtin_classes(action: &str) -> Option<ClassSet> {
    use ActionClass::*;
    let set = match action {
        "execute_code" | "shell.exec" | "code.exec" | "exec" | "process.spawn" => {
            ClassSet::of(&[Subprocess])
        }
        "http_request"
        | "web.fetch"
        | "web.search"
        | "mcp.tools/call"
        | "mcp.sampling/createMessage" => ClassSet::of(&[Network]),
        "email.send" | "message.send" => ClassSet::of(&[Network, Irreversible]),
        "file.write" | "file.create" | "file.edit" | "file.move" | "db.write" => {
            ClassSet::of(&[Write])
        }
        "file.delete" | "db.delete" | "db.drop" => ClassSet::of(&[Write, Irreversible]),
        "file.read"
        | "file.list"
        | "file.search"
        | "db.read"
        | "mcp.resources/read"
        | "mcp.prompts/get"
        | "mcp.tools/list"
        | "mcp.tools/result"
        | "mcp.resources/result"
        | "mcp.prompts/result"
        | "mcp.completion/result"
        | "mcp.error" => ClassSet::of(&[Read]),
        a if a.starts_with("warden.") || a.starts_with("policy.") || a.starts_with("agent.") => {
            ClassSet::of(&[Admin])
        }
        _ => return None,
    };
    Some(set)
}

/// The classes of an action nothing classifies: `irreversible`, so only `kernel` and
/// `supervisor` may request what nobody described.
pub const UNKNOWN_ACTION_CLASSES: ClassSet = ClassSet::one(ActionClass::Irreversible);

/// Why an agent is in its ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The `rings.default`.
    Default,
    /// An entry of `rings.agents` (the pattern as written).
    Configured(String),
    /// An operator's elevation, until the given time.
    Elevated {
        /// Who granted it.
        by: String,
    },
    /// A demotion by an operator or the anomaly detector.
    Demoted {
        /// By whom.
        by: String,
        /// Why.
        reason: String,
    },
    /// Falling trust: the tier is below the demotion's bar.
    Trust {
        /// The agent's tier.
        tier: String,
        /// The bar it fell below.
        below: String,
    },
}

impl Placement {
    /// In words, for reasons.
    pub fn describe(&self) -> String {
        match self {
            Placement::Default => "the default ring of `rings:`".into(),
            Placement::Configured(p) => format!("placed by `rings.agents` entry `{p}`"),
            Placement::Elevated { by } => format!("elevated by {by}"),
            Placement::Demoted { by, reason } => format!("demoted by {by}: {reason}"),
            Placement::Trust { tier, below } => {
                format!("demoted: trust tier `{tier}` is below `{below}`")
            }
        }
    }
}

/// The rings of a policy set: every document's `rings:` merged (an agent two documents
/// place differently gets the less privileged ring; class lists are united; profiles are
/// intersected).
#[derive(Debug, Clone)]
pub struct RingPlan {
    default: Ring,
    exact_agents: ConfigMap<Box<str>, Ring>,
    glob_agents: Vec<(NamePattern, Ring)>,
    profiles: [Profile; 4],
    exact_classes: ConfigMap<Box<str>, ClassSet>,
    glob_classes: Vec<(NamePattern, ClassSet)>,
    demote: Vec<Demotion>,
}

impl RingPlan {
    /// The plan of these sections, or `None` when no document has `rings:` (no ring gate).
    pub fn from_sections<'a>(
        sections: impl IntoIterator<Item = &'a RuntimeSections>,
    ) -> Option<RingPlan> {
        let rings: Vec<&RingsSection> = sections
            .into_iter()
            .filter_map(|s| s.rings.as_ref())
            .collect();
        if rings.is_empty() {
            return None;
        }
        let mut plan = RingPlan {
            default: Ring::Kernel,
            exact_agents: ConfigMap::default(),
            glob_agents: Vec::new(),
            profiles: Ring::ALL.map(Profile::builtin),
            exact_classes: ConfigMap::default(),
            glob_classes: Vec::new(),
            demote: Vec::new(),
        };
        let mut written = [false; 4];
        for r in rings {
            plan.default = plan
                .default
                .least_privileged(r.default.unwrap_or(Ring::Untrusted));
            for (pattern, ring) in &r.agents {
                match pattern.exact() {
                    Some(name) => {
                        let e = plan.exact_agents.entry(Box::from(name)).or_insert(*ring);
                        *e = e.least_privileged(*ring);
                    }
                    None => plan.glob_agents.push((pattern.clone(), *ring)),
                }
            }
            for (ring, spec) in &r.profiles {
                let i = *ring as usize;
                let builtin = Profile::builtin(*ring);
                let mut p = Profile {
                    allow: spec.allow.unwrap_or(builtin.allow),
                    max_concurrent: spec.max_concurrent.unwrap_or(builtin.max_concurrent),
                    rate: spec.rate.unwrap_or(builtin.rate),
                };
                if written[i] {
                    // Two documents wrote this profile: keep what both allow.
                    let prev = plan.profiles[i];
                    p.allow = p.allow.intersection(prev.allow);
                    p.max_concurrent = p.max_concurrent.min(prev.max_concurrent);
                    p.rate = match (p.rate, prev.rate) {
                        (Some(a), Some(b)) => Some(if rate_per_ns(a) <= rate_per_ns(b) {
                            a
                        } else {
                            b
                        }),
                        (a, b) => a.or(b),
                    };
                }
                written[i] = true;
                plan.profiles[i] = p;
            }
            for (pattern, classes) in &r.classes {
                match pattern.exact() {
                    Some(name) => {
                        let e = plan
                            .exact_classes
                            .entry(Box::from(name))
                            .or_insert(ClassSet::EMPTY);
                        *e = e.union(*classes);
                    }
                    None => plan.glob_classes.push((pattern.clone(), *classes)),
                }
            }
            plan.demote.extend(r.demote.iter().cloned());
        }
        Some(plan)
    }

    /// The ring of agents no entry places.
    pub fn default_ring(&self) -> Ring {
        self.default
    }

    /// A ring's profile.
    pub fn profile(&self, ring: Ring) -> &Profile {
        &self.profiles[ring as usize]
    }

    /// The ring the configuration gives `agent`, and why.
    pub fn configured(&self, agent: Option<&str>) -> (Ring, Placement) {
        let Some(agent) = agent else {
            return (self.default, Placement::Default);
        };
        if let Some(r) = self.exact_agents.get(agent) {
            return (*r, Placement::Configured(agent.to_string()));
        }
        let mut found: Option<(Ring, &NamePattern)> = None;
        for (p, r) in &self.glob_agents {
            if p.matches(agent) && found.is_none_or(|(f, _)| *r > f) {
                found = Some((*r, p));
            }
        }
        match found {
            Some((r, p)) => (r, Placement::Configured(p.as_str().to_string())),
            None => (self.default, Placement::Default),
        }
    }

    /// The demotion falling trust calls for: the least privileged ring of every demotion
    /// whose bar the tier is below.
    pub fn trust_demotion(&self, tier: &dyn TrustTier) -> Option<(Ring, &Demotion)> {
        let mut out: Option<(Ring, &Demotion)> = None;
        for d in &self.demote {
            if tier.is_below(&d.below) && out.is_none_or(|(r, _)| d.to > r) {
                out = Some((d.to, d));
            }
        }
        out
    }

    /// The classes of an action name.
    pub fn classes(&self, action: &str) -> ClassSet {
        if let Some(c) = self.exact_classes.get(action) {
            return *c;
        }
        let mut globbed = ClassSet::EMPTY;
        let mut any = false;
        for (p, c) in &self.glob_classes {
            if p.matches(action) {
                globbed = globbed.union(*c);
                any = true;
            }
        }
        if any {
            return globbed;
        }
        builtin_classes(action).unwrap_or(UNKNOWN_ACTION_CLASSES)
    }
}

fn rate_per_ns(r: Rate) -> f64 {
    r.count as f64 / r.period.as_nanos().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_policy::PolicySet;

    fn plan(yaml: &str) -> RingPlan {
        let set = PolicySet::from_yaml("p.yaml", yaml).unwrap();
        RingPlan::from_sections(set.runtime_sections().map(|(_, s)| s)).unwrap()
    }

    const ISSUE: &str = r#"
rules: [{action: "*", allow: true}]
rings: {default: user, agents: {"bot-*": untrusted, "ops-agent": supervisor}}
"#;

    #[test]
    fn placement_follows_the_issue_example() {
        let p = plan(ISSUE);
        assert_eq!(p.configured(Some("bot-7")).0, Ring::Untrusted);
        assert_eq!(p.configured(Some("ops-agent")).0, Ring::Supervisor);
        assert_eq!(p.configured(Some("someone")).0, Ring::User);
        assert_eq!(p.configured(None).0, Ring::User);
    }

    #[test]
    fn classes_built_in_overridden_and_unknown() {
        let p = plan(
            "rules: []\nrings:\n  classes: {\"payments.*\": [irreversible, network], file.read: write}\n",
        );
        assert_eq!(p.default_ring(), Ring::Untrusted);
        assert_eq!(
            p.classes("shell.exec"),
            ClassSet::of(&[ActionClass::Subprocess])
        );
        assert_eq!(p.classes("file.read"), ClassSet::of(&[ActionClass::Write]));
        assert_eq!(
            p.classes("payments.transfer"),
            ClassSet::of(&[ActionClass::Irreversible, ActionClass::Network])
        );
        assert_eq!(p.classes("frobnicate"), UNKNOWN_ACTION_CLASSES);
        assert!(!p.profile(Ring::User).allow.covers(UNKNOWN_ACTION_CLASSES));
        assert!(
            p.profile(Ring::Supervisor)
                .allow
                .covers(UNKNOWN_ACTION_CLASSES)
        );
    }

    #[test]
    fn tiers_compare_and_unknown_names_fail_closed() {
        assert!(OrderedTier::new("probationary").is_below("standard"));
        assert!(!OrderedTier::new("standard").is_below("standard"));
        assert!(!OrderedTier::new("verified_partner").is_below("standard"));
        assert!(OrderedTier::new("nonsense").is_below("standard"));
        assert!(OrderedTier::new("verified_partner").is_below("no-such-bar"));
    }
}
