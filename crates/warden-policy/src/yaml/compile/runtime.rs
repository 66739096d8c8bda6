//! The runtime sections of a document (`rings:`, `rate_limits:`, `breakers:`, `anomaly:`),
//! checked with the same care as rules: every problem at its line and column, nothing
//! compiled from a section with a problem. Their meaning lives in `warden-runtime`.

use std::sync::Arc;
use std::time::Duration;

use super::super::{Node, Value};
use super::Compiler;
use crate::diagnostic::did_you_mean;
use crate::runtime::{
    ActionClass, AnomalyResponse, AnomalySpec, BreakerKey, BreakerSpec, ClassSet, Demotion,
    NamePattern, Per, ProfileSpec, Rate, RateLimitSpec, Ring, RingsSection, parse_duration,
};

const RINGS_FIELDS: &[&str] = &["default", "agents", "profiles", "classes", "demote"];
const PROFILE_FIELDS: &[&str] = &["allow", "max_concurrent", "rate"];
const DEMOTE_FIELDS: &[&str] = &["below", "to"];
const RATE_FIELDS: &[&str] = &["id", "action", "tool", "per", "limit", "burst"];
const BREAKER_FIELDS: &[&str] = &[
    "id",
    "action",
    "per",
    "window",
    "min_calls",
    "failure_ratio",
    "cooldown",
    "probes",
];
const ANOMALY_FIELDS: &[&str] = &["factor", "window", "min_actions", "response"];
const RING_NAMES: &[&str] = &["kernel", "supervisor", "user", "untrusted"];
const CLASS_NAMES: &[&str] = &[
    "admin",
    "irreversible",
    "network",
    "subprocess",
    "write",
    "read",
];

/// The most entries a list section (`rate_limits`, `breakers`, `agents`, `classes`) may have.
pub(crate) const MAX_SECTION_ENTRIES: usize = 10_000;

impl Compiler<'_> {
    fn ring(&mut self, node: &Node, field: &str) -> Option<Ring> {
        let text = self.string(node, field)?;
        match text.parse::<Ring>() {
            Ok(r) => Some(r),
            Err(e) => {
                let p = self.problem(node.pos, format!("`{field}`: {e}"));
                if let Some(s) = did_you_mean(text, RING_NAMES) {
                    p.set_hint(format!("did you mean `{s}`?"));
                }
                None
            }
        }
    }

    fn classes(&mut self, node: &Node, field: &str) -> Option<ClassSet> {
        let items = self.strings(node, field)?;
        let mut set = ClassSet::EMPTY;
        let mut ok = true;
        for (text, n) in items {
            match text.parse::<ActionClass>() {
                Ok(c) => set = set.union(ClassSet::of(&[c])),
                Err(e) => {
                    ok = false;
                    let p = self.problem(n.pos, format!("`{field}`: {e}"));
                    if let Some(s) = did_you_mean(text, CLASS_NAMES) {
                        p.set_hint(format!("did you mean `{s}`?"));
                    }
                }
            }
        }
        ok.then_some(set)
    }

    fn pattern(&mut self, node: &Node, field: &str) -> Option<NamePattern> {
        let text = self.string(node, field)?;
        match NamePattern::parse(text) {
            Ok(p) => Some(p),
            Err(e) => {
                self.problem(node.pos, format!("`{field}`: {e}"));
                None
            }
        }
    }

    pub(super) fn count(&mut self, node: &Node, field: &str, min: i64, max: i64) -> Option<u32> {
        match node.value {
            Value::Int(n) if (min..=max).contains(&n) => u32::try_from(n).ok(),
            _ => {
                self.problem(
                    node.pos,
                    format!(
                        "`{field}` must be a whole number from {min} to {max}, found {}",
                        node.kind()
                    ),
                );
                None
            }
        }
    }

    fn rate(&mut self, node: &Node, field: &str) -> Option<Rate> {
        let text = self.string(node, field)?;
        match text.parse::<Rate>() {
            Ok(r) => Some(r),
            Err(e) => {
                self.problem(node.pos, format!("`{field}`: {e}"));
                None
            }
        }
    }

    pub(super) fn duration(&mut self, node: &Node, field: &str) -> Option<Duration> {
        let text = self.string(node, field)?;
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.problem(node.pos, format!("`{field}`: {e}"));
                None
            }
        }
    }

    /// A list section's items, bounded.
    fn section_list<'n>(&mut self, node: &'n Node, field: &str) -> Option<&'n [Node]> {
        let Value::Seq(items) = &node.value else {
            self.problem(
                node.pos,
                format!("`{field}` must be a list, found {}", node.kind()),
            );
            return None;
        };
        if items.len() > MAX_SECTION_ENTRIES {
            self.problem(
                node.pos,
                format!(
                    "`{field}` has {} entries; the limit is {MAX_SECTION_ENTRIES}",
                    items.len()
                ),
            );
            return None;
        }
        Some(items)
    }

    /// A mapping's entries as (key text, key node, value node), bounded.
    pub(super) fn section_map<'n>(
        &mut self,
        node: &'n Node,
        field: &str,
    ) -> Option<Vec<(&'n str, &'n Node, &'n Node)>> {
        let Value::Map(entries) = &node.value else {
            self.problem(
                node.pos,
                format!("`{field}` must be a mapping, found {}", node.kind()),
            );
            return None;
        };
        if entries.len() > MAX_SECTION_ENTRIES {
            self.problem(
                node.pos,
                format!(
                    "`{field}` has {} entries; the limit is {MAX_SECTION_ENTRIES}",
                    entries.len()
                ),
            );
            return None;
        }
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match k.as_str() {
                Some(s) => out.push((s, k, v)),
                None => {
                    self.problem(
                        k.pos,
                        format!("`{field}` keys must be names, found {}", k.kind()),
                    );
                }
            }
        }
        Some(out)
    }

    /// `rings: {default, agents, profiles, classes, demote}`.
    pub(super) fn rings_section(&mut self, node: &Node) -> Option<RingsSection> {
        let before = self.problems.len();
        let (fields, _) = self.fields(node, "`rings`", RINGS_FIELDS)?;
        let mut section = RingsSection::default();
        for (key, _, v) in fields {
            match key {
                "default" => section.default = self.ring(v, "rings.default"),
                "agents" => {
                    for (name, k, ring) in self.section_map(v, "rings.agents").unwrap_or_default() {
                        let pattern = match NamePattern::parse(name) {
                            Ok(p) => Some(p),
                            Err(e) => {
                                self.problem(k.pos, format!("`rings.agents`: {e}"));
                                None
                            }
                        };
                        if let (Some(p), Some(r)) = (pattern, self.ring(ring, "rings.agents")) {
                            section.agents.push((p, r));
                        }
                    }
                }
                "profiles" => {
                    for (name, k, p) in self.section_map(v, "rings.profiles").unwrap_or_default() {
                        let ring = match name.parse::<Ring>() {
                            Ok(r) => Some(r),
                            Err(e) => {
                                let pr = self.problem(k.pos, format!("`rings.profiles`: {e}"));
                                if let Some(s) = did_you_mean(name, RING_NAMES) {
                                    pr.set_hint(format!("did you mean `{s}`?"));
                                }
                                None
                            }
                        };
                        if let (Some(r), Some(spec)) = (ring, self.profile(p)) {
                            section.profiles.push((r, spec));
                        }
                    }
                }
                "classes" => {
                    for (name, k, c) in self.section_map(v, "rings.classes").unwrap_or_default() {
                        let pattern = match NamePattern::parse(name) {
                            Ok(p) => Some(p),
                            Err(e) => {
                                self.problem(k.pos, format!("`rings.classes`: {e}"));
                                None
                            }
                        };
                        if let (Some(p), Some(set)) = (pattern, self.classes(c, "rings.classes")) {
                            section.classes.push((p, set));
                        }
                    }
                }
                "demote" => {
                    let items: Vec<&Node> = match &v.value {
                        Value::Seq(items) => items.iter().collect(),
                        _ => vec![v],
                    };
                    for item in items {
                        if let Some(d) = self.demotion(item) {
                            section.demote.push(d);
                        }
                    }
                }
                _ => unreachable!("fields() filters unknown keys"),
            }
        }
        (self.problems.len() == before).then_some(section)
    }

    fn profile(&mut self, node: &Node) -> Option<ProfileSpec> {
        let (fields, _) = self.fields(node, "a ring profile", PROFILE_FIELDS)?;
        let mut spec = ProfileSpec::default();
        for (key, _, v) in fields {
            match key {
                "allow" => spec.allow = self.classes(v, "allow"),
                "max_concurrent" => {
                    spec.max_concurrent = self.count(v, "max_concurrent", 1, 100_000);
                }
                "rate" => {
                    spec.rate = if v.as_str() == Some("none") {
                        Some(None)
                    } else {
                        self.rate(v, "rate").map(Some)
                    };
                }
                _ => unreachable!("fields() filters unknown keys"),
            }
        }
        Some(spec)
    }

    fn demotion(&mut self, node: &Node) -> Option<Demotion> {
        let (fields, _) = self.fields(node, "a demotion", DEMOTE_FIELDS)?;
        let get = |name: &str| fields.iter().find(|(k, _, _)| *k == name).map(|f| f.2);
        let below = match get("below") {
            Some(v) => match self.string(v, "below") {
                Some(tier) if crate::rule::TIERS.contains(&tier) => Some(Arc::from(tier)),
                Some(tier) => {
                    self.problem(
                        v.pos,
                        format!(
                            "unknown trust tier `{tier}` in `below` (one of: {})",
                            crate::rule::TIERS.join(", ")
                        ),
                    );
                    None
                }
                None => None,
            },
            None => {
                self.problem(node.pos, "a demotion needs `below` (a trust tier)");
                None
            }
        };
        let to = match get("to") {
            Some(v) => self.ring(v, "to"),
            None => Some(Ring::Untrusted),
        };
        Some(Demotion {
            below: below?,
            to: to?,
        })
    }

    /// `rate_limits: [{id, action, tool, per, limit, burst}]`.
    pub(super) fn rate_limits_section(&mut self, node: &Node, policy: &str) -> Vec<RateLimitSpec> {
        let mut out = Vec::new();
        for (i, item) in self
            .section_list(node, "rate_limits")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let before = self.problems.len();
            let Some((fields, _)) = self.fields(item, "a rate limit", RATE_FIELDS) else {
                continue;
            };
            let get = |name: &str| fields.iter().find(|(k, _, _)| *k == name).map(|f| f.2);
            let id = get("id")
                .and_then(|v| self.string(v, "id"))
                .map_or_else(|| format!("{policy}/rate_limits[{i}]"), str::to_string);
            let action = match get("action") {
                Some(v) => self.pattern(v, "action"),
                None => NamePattern::parse("*").ok(),
            };
            let tool = get("tool").and_then(|v| self.pattern(v, "tool"));
            let per = match get("per") {
                Some(v) => self.per(v),
                None => Some(Per {
                    agent: true,
                    ..Per::default()
                }),
            };
            let limit = match get("limit") {
                Some(v) => self.rate(v, "limit"),
                None => {
                    self.problem(
                        item.pos,
                        "a rate limit needs `limit` (such as `100/minute`)",
                    );
                    None
                }
            };
            let burst = get("burst").and_then(|v| self.count(v, "burst", 1, 1_000_000_000));
            if self.problems.len() > before {
                continue;
            }
            let (Some(action), Some(per), Some(limit)) = (action, per, limit) else {
                continue;
            };
            let burst = burst.unwrap_or_else(|| u32::try_from(limit.count).unwrap_or(u32::MAX));
            out.push(RateLimitSpec {
                id: Arc::from(id),
                action,
                tool,
                per,
                limit,
                burst,
            });
        }
        out
    }

    fn per(&mut self, node: &Node) -> Option<Per> {
        let items = self.strings(node, "per")?;
        let mut per = Per::default();
        for (text, n) in items {
            match text {
                "agent" => per.agent = true,
                "tool" => per.tool = true,
                "action" => per.action = true,
                other => {
                    self.problem(
                        n.pos,
                        format!("`per`: `{other}` is not agent, tool or action"),
                    );
                    return None;
                }
            }
        }
        Some(per)
    }

    /// `breakers: [{id, action, per, window, min_calls, failure_ratio, cooldown, probes}]`.
    pub(super) fn breakers_section(&mut self, node: &Node, policy: &str) -> Vec<BreakerSpec> {
        let mut out = Vec::new();
        for (i, item) in self
            .section_list(node, "breakers")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let before = self.problems.len();
            let Some((fields, _)) = self.fields(item, "a breaker", BREAKER_FIELDS) else {
                continue;
            };
            let get = |name: &str| fields.iter().find(|(k, _, _)| *k == name).map(|f| f.2);
            let id = get("id")
                .and_then(|v| self.string(v, "id"))
                .map_or_else(|| format!("{policy}/breakers[{i}]"), str::to_string);
            let action = match get("action") {
                Some(v) => self.pattern(v, "action"),
                None => NamePattern::parse("*").ok(),
            };
            let per = match get("per").map(|v| (v, v.as_str())) {
                None | Some((_, Some("tool"))) => Some(BreakerKey::Tool),
                Some((_, Some("agent"))) => Some(BreakerKey::Agent),
                Some((v, _)) => {
                    self.problem(
                        v.pos,
                        format!("`per` must be tool or agent, found {}", v.kind()),
                    );
                    None
                }
            };
            let window = get("window").map_or(Some(20), |v| self.count(v, "window", 1, 10_000));
            let min_calls =
                get("min_calls").map_or(Some(10), |v| self.count(v, "min_calls", 1, 10_000));
            let failure_permille = match get("failure_ratio") {
                None => Some(500),
                Some(v) => match v.value {
                    Value::Float(f) if f > 0.0 && f <= 1.0 => Some((f * 1000.0).round() as u16),
                    Value::Int(1) => Some(1000),
                    _ => {
                        self.problem(
                            v.pos,
                            format!(
                                "`failure_ratio` must be a number above 0 and at most 1 (0.5 is half), found {}",
                                v.kind()
                            ),
                        );
                        None
                    }
                },
            };
            let cooldown = get("cooldown").map_or(Some(Duration::from_secs(30)), |v| {
                self.duration(v, "cooldown")
            });
            let probes = get("probes").map_or(Some(3), |v| self.count(v, "probes", 1, 1000));
            if let (Some(w), Some(m)) = (window, min_calls)
                && m > w
                && let Some(v) = get("min_calls")
            {
                self.problem(v.pos, format!("`min_calls` ({m}) is larger than `window` ({w}): the breaker could never open"));
            }
            if self.problems.len() > before {
                continue;
            }
            if let (
                Some(action),
                Some(per),
                Some(window),
                Some(min_calls),
                Some(fp),
                Some(cooldown),
                Some(probes),
            ) = (
                action,
                per,
                window,
                min_calls,
                failure_permille,
                cooldown,
                probes,
            ) {
                out.push(BreakerSpec {
                    id: Arc::from(id),
                    action,
                    per,
                    window,
                    min_calls,
                    failure_permille: fp.max(1),
                    cooldown,
                    probes,
                });
            }
        }
        out
    }

    /// `anomaly: {factor, window, min_actions, response}`.
    pub(super) fn anomaly_section(&mut self, node: &Node) -> Option<AnomalySpec> {
        let before = self.problems.len();
        let (fields, _) = self.fields(node, "`anomaly`", ANOMALY_FIELDS)?;
        let get = |name: &str| fields.iter().find(|(k, _, _)| *k == name).map(|f| f.2);
        let factor = get("factor").map_or(Some(10), |v| self.count(v, "factor", 2, 1_000_000));
        let window = get("window").map_or(Some(Duration::from_secs(10)), |v| {
            self.duration(v, "window")
        });
        let min_actions =
            get("min_actions").map_or(Some(20), |v| self.count(v, "min_actions", 1, 1_000_000_000));
        let response = match get("response") {
            None => Some(AnomalyResponse::Flag),
            Some(v) => match v.as_str() {
                Some("flag") => Some(AnomalyResponse::Flag),
                Some("demote") => Some(AnomalyResponse::Demote),
                Some("kill") => Some(AnomalyResponse::Kill),
                _ => {
                    self.problem(
                        v.pos,
                        format!(
                            "`response` must be flag, demote or kill, found {}",
                            v.kind()
                        ),
                    );
                    None
                }
            },
        };
        if self.problems.len() > before {
            return None;
        }
        Some(AnomalySpec {
            factor: factor?,
            window: window?,
            min_actions: min_actions?,
            response: response?,
        })
    }
}
