//! The runtime sections of a YAML policy document — `rings:`, `rate_limits:`, `breakers:`
//! and `anomaly:` — as plain, already validated data.
//!
//! Why here: a mistake in these sections must be reported like any other policy mistake, at
//! file:line:col and before anything is decided, so they are read by the same compiler as
//! the rules. What they *mean* (ring profiles and their defaults, token buckets, breakers)
//! lives in `warden-runtime`, which reads these values from the [`PolicySet`](crate::PolicySet)
//! and keeps the state. This module holds only the vocabulary both sides need.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::pattern::Pattern;

/// A privilege ring, modelled on hardware isolation: the lower the number, the more an
/// agent in it may do. The order of the variants is the order of privilege (`Kernel` is the
/// least number and the most privilege).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ring {
    /// Ring 0: everything, including administering Warden's own subjects.
    Kernel = 0,
    /// Ring 1: irreversible actions, subprocesses, network, writes, reads.
    Supervisor = 1,
    /// Ring 2: network, writes and reads.
    User = 2,
    /// Ring 3: reads only.
    Untrusted = 3,
}

impl Ring {
    /// Every ring, most privileged first.
    pub const ALL: [Ring; 4] = [Ring::Kernel, Ring::Supervisor, Ring::User, Ring::Untrusted];

    /// The ring's name as written in policies and shown in reasons.
    pub fn as_str(self) -> &'static str {
        match self {
            Ring::Kernel => "kernel",
            Ring::Supervisor => "supervisor",
            Ring::User => "user",
            Ring::Untrusted => "untrusted",
        }
    }

    /// The ring's number (0 for `kernel` … 3 for `untrusted`).
    pub fn number(self) -> u8 {
        self as u8
    }

    /// Whether this ring has at least the privilege of `other`.
    pub fn at_least(self, other: Ring) -> bool {
        self <= other
    }

    /// The less privileged of two rings (what two documents that disagree get).
    pub fn least_privileged(self, other: Ring) -> Ring {
        self.max(other)
    }
}

impl fmt::Display for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Ring {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "kernel" | "0" => Ok(Ring::Kernel),
            "supervisor" | "1" => Ok(Ring::Supervisor),
            "user" | "2" => Ok(Ring::User),
            "untrusted" | "3" => Ok(Ring::Untrusted),
            other => Err(format!(
                "unknown ring `{other}` (rings are kernel, supervisor, user, untrusted)"
            )),
        }
    }
}

/// What kind of thing an action does, as far as rings are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionClass {
    /// Administering agents, policies, keys or Warden itself.
    Admin,
    /// Writes that cannot be undone: deletes, payments, deploys, sending mail.
    Irreversible,
    /// Reaching other hosts.
    Network,
    /// Running programs or code.
    Subprocess,
    /// Changing files or other stored state.
    Write,
    /// Reading.
    Read,
}

impl ActionClass {
    /// Every class, most dangerous first.
    pub const ALL: [ActionClass; 6] = [
        ActionClass::Admin,
        ActionClass::Irreversible,
        ActionClass::Network,
        ActionClass::Subprocess,
        ActionClass::Write,
        ActionClass::Read,
    ];

    /// The class's name in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionClass::Admin => "admin",
            ActionClass::Irreversible => "irreversible",
            ActionClass::Network => "network",
            ActionClass::Subprocess => "subprocess",
            ActionClass::Write => "write",
            ActionClass::Read => "read",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl FromStr for ActionClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown action class `{s}` (classes are admin, irreversible, network, subprocess, write, read)"
                )
            })
    }
}

/// A set of [`ActionClass`]es (a bit set: copying and comparing cost nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ClassSet(u8);

impl ClassSet {
    /// No class.
    pub const EMPTY: ClassSet = ClassSet(0);

    /// The set of one class.
    pub const fn one(class: ActionClass) -> ClassSet {
        ClassSet(1 << (class as u8))
    }

    /// A set of these classes.
    pub fn of(classes: &[ActionClass]) -> ClassSet {
        ClassSet(classes.iter().fold(0, |bits, c| bits | c.bit()))
    }

    /// Every class.
    pub fn all() -> ClassSet {
        ClassSet::of(&ActionClass::ALL)
    }

    /// Whether `class` is in the set.
    pub fn contains(self, class: ActionClass) -> bool {
        self.0 & class.bit() != 0
    }

    /// Whether every class of `other` is in this set.
    pub fn covers(self, other: ClassSet) -> bool {
        other.0 & !self.0 == 0
    }

    /// Both sets together.
    pub fn union(self, other: ClassSet) -> ClassSet {
        ClassSet(self.0 | other.0)
    }

    /// The classes in both sets.
    pub fn intersection(self, other: ClassSet) -> ClassSet {
        ClassSet(self.0 & other.0)
    }

    /// The classes in this set and not in `other`.
    pub fn without(self, other: ClassSet) -> ClassSet {
        ClassSet(self.0 & !other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The classes, most dangerous first.
    pub fn iter(self) -> impl Iterator<Item = ActionClass> {
        ActionClass::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl fmt::Display for ClassSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for c in self.iter() {
            if !first {
                f.write_str(", ")?;
            }
            f.write_str(c.as_str())?;
            first = false;
        }
        if first {
            f.write_str("nothing")?;
        }
        Ok(())
    }
}

/// A name pattern as rules use them: an exact name, `prefix*`, `*`, or a glob.
#[derive(Debug, Clone)]
pub struct NamePattern {
    text: Arc<str>,
    pattern: Pattern,
}

impl NamePattern {
    /// Compile a pattern; the error says what is wrong with the glob.
    pub fn parse(text: &str) -> Result<NamePattern, String> {
        Ok(NamePattern {
            pattern: Pattern::parse(text)?,
            text: Arc::from(text),
        })
    }

    /// Whether `name` matches.
    #[inline]
    pub fn matches(&self, name: &str) -> bool {
        self.pattern.matches(name)
    }

    /// The name, when the pattern is an exact name (no glob characters).
    pub fn exact(&self) -> Option<&str> {
        self.pattern.exact()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A rate: `count` events per `period` (`100/minute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many.
    pub count: u64,
    /// Per how long.
    pub period: Duration,
}

/// The largest count a rate may have (one billion per period).
pub const MAX_RATE_COUNT: u64 = 1_000_000_000;

impl FromStr for Rate {
    type Err = String;
    /// `N/second|minute|hour|day` (also `s`, `sec`, `m`, `min`, `h`, `d`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "`{s}` is not a rate (write it as `100/minute`, `10/second`, `5000/hour` or `N/day`)"
            )
        };
        let (n, unit) = s.split_once('/').ok_or_else(bad)?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > MAX_RATE_COUNT {
            return Err(format!(
                "the count of a rate must be between 1 and {MAX_RATE_COUNT}, found {count}"
            ));
        }
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86_400,
            _ => return Err(bad()),
        };
        Ok(Rate {
            count,
            period: Duration::from_secs(secs),
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "second",
            60 => "minute",
            3600 => "hour",
            86_400 => "day",
            _ => return write!(f, "{}/{}s", self.count, self.period.as_secs_f64()),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// The longest duration a section accepts (30 days).
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// Read a duration: `500ms`, `30s`, `10m`, `2h`, `1d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("`{s}` is not a duration (write it as `500ms`, `30s`, `10m`, `2h` or `1d`)");
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        _ => return Err(bad()),
    };
    if d.is_zero() || d > MAX_DURATION {
        return Err(format!(
            "`{s}`: a duration must be above 0 and at most 30 days"
        ));
    }
    Ok(d)
}

/// A ring's profile as a document writes it; anything left out keeps the built-in default.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProfileSpec {
    /// The action classes the ring may request.
    pub allow: Option<ClassSet>,
    /// The most tool calls an agent in the ring may have running at once.
    pub max_concurrent: Option<u32>,
    /// A rate limit for each agent in the ring, over all its actions (`Some(None)`: `rate:
    /// none`, no limit).
    pub rate: Option<Option<Rate>>,
}

/// "Agents whose trust tier falls below `below` are placed in `to`."
#[derive(Debug, Clone, PartialEq)]
pub struct Demotion {
    /// The tier name (the trust step's vocabulary).
    pub below: Arc<str>,
    /// The ring such agents get (if it is less privileged than their own).
    pub to: Ring,
}

/// A document's `rings:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RingsSection {
    /// The ring of agents no entry of `agents` places (and of actions without an agent).
    pub default: Option<Ring>,
    /// Agent name patterns and their rings, in file order.
    pub agents: Vec<(NamePattern, Ring)>,
    /// Profiles written out, per ring.
    pub profiles: Vec<(Ring, ProfileSpec)>,
    /// Action name patterns and the classes they belong to (overriding the built-in ones).
    pub classes: Vec<(NamePattern, ClassSet)>,
    /// Demotions on falling trust.
    pub demote: Vec<Demotion>,
}

/// What a bucket is kept per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Per {
    /// One bucket per agent.
    pub agent: bool,
    /// One bucket per tool.
    pub tool: bool,
    /// One bucket per action name.
    pub action: bool,
}

impl fmt::Display for Per {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [
            (self.agent, "agent"),
            (self.tool, "tool"),
            (self.action, "action"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect();
        f.write_str(&parts.join("+"))
    }
}

/// One entry of `rate_limits:`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitSpec {
    /// `id`, or `<document>/rate_limits[i]`.
    pub id: Arc<str>,
    /// Which actions it counts.
    pub action: NamePattern,
    /// Which tools it counts (any when absent).
    pub tool: Option<NamePattern>,
    /// What a bucket is kept per.
    pub per: Per,
    /// The sustained rate.
    pub limit: Rate,
    /// How many may come at once (the bucket's size; default: the limit's count).
    pub burst: u32,
}

/// What a circuit breaker is kept per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerKey {
    /// One breaker per tool (actions without a tool: per action name).
    Tool,
    /// One breaker per agent.
    Agent,
}

/// One entry of `breakers:`.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSpec {
    /// `id`, or `<document>/breakers[i]`.
    pub id: Arc<str>,
    /// Which actions it watches.
    pub action: NamePattern,
    /// What a breaker is kept per.
    pub per: BreakerKey,
    /// How many recent outcomes are counted.
    pub window: u32,
    /// The fewest outcomes in the window before the ratio counts.
    pub min_calls: u32,
    /// Failures per thousand outcomes at or above which the breaker opens.
    pub failure_permille: u16,
    /// How long an open breaker denies before letting probes through.
    pub cooldown: Duration,
    /// Successful probes that close a half-open breaker.
    pub probes: u32,
}

/// What happens to an agent flagged as anomalous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyResponse {
    /// Only record it (and lower its trust, once trust exists).
    Flag,
    /// Demote it to `untrusted` until an operator restores it.
    Demote,
    /// Set the kill switch for it.
    Kill,
}

impl AnomalyResponse {
    /// The name in policies.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyResponse::Flag => "flag",
            AnomalyResponse::Demote => "demote",
            AnomalyResponse::Kill => "kill",
        }
    }
}

/// A document's `anomaly:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalySpec {
    /// How many times its own baseline rate an agent must act at to be flagged.
    pub factor: u32,
    /// The short window the current rate is measured over.
    pub window: Duration,
    /// The fewest actions in a window before an agent can be flagged.
    pub min_actions: u32,
    /// What happens then.
    pub response: AnomalyResponse,
}

/// Everything a document says about the runtime, beside its rules.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuntimeSections {
    /// `rings:`.
    pub rings: Option<RingsSection>,
    /// `rate_limits:`.
    pub rate_limits: Vec<RateLimitSpec>,
    /// `breakers:`.
    pub breakers: Vec<BreakerSpec>,
    /// `anomaly:`.
    pub anomaly: Option<AnomalySpec>,
}

impl RuntimeSections {
    /// Whether the document said nothing about the runtime.
    pub fn is_empty(&self) -> bool {
        self.rings.is_none()
            && self.rate_limits.is_empty()
            && self.breakers.is_empty()
            && self.anomaly.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations_read_and_refuse() {
        assert_eq!(
            "100/minute".parse::<Rate>(),
            Ok(Rate {
                count: 100,
                period: Duration::from_secs(60)
            })
        );
        assert_eq!(
            "5/s".parse::<Rate>().unwrap().period,
            Duration::from_secs(1)
        );
        for bad in ["100", "0/minute", "x/minute", "10/fortnight", "-1/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        for bad in ["", "10", "0s", "31d", "1.5s", "s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rings_order_by_privilege() {
        assert!(Ring::Kernel.at_least(Ring::User));
        assert!(!Ring::Untrusted.at_least(Ring::User));
        assert_eq!(Ring::User.least_privileged(Ring::Supervisor), Ring::User);
        for r in Ring::ALL {
            assert_eq!(r.as_str().parse::<Ring>(), Ok(r));
        }
    }

    #[test]
    fn class_sets_cover() {
        let user = ClassSet::of(&[ActionClass::Read, ActionClass::Write]);
        assert!(user.covers(ClassSet::of(&[ActionClass::Read])));
        assert!(!user.covers(ClassSet::of(&[ActionClass::Read, ActionClass::Network])));
        assert!(user.covers(ClassSet::EMPTY));
        assert_eq!(user.to_string(), "write, read");
    }

    #[test]
    fn a_demotion_names_a_real_trust_tier() {
        let policy = |below: &str| {
            format!(
                "rules: []\nrings:\n  default: user\n  demote: {{below: {below}, to: untrusted}}\n"
            )
        };
        assert!(crate::PolicySet::from_yaml("p.yaml", &policy("standard")).is_ok());
        // A typo would demote every agent (an unknown bar is never cleared): a load error.
        let Err(err) = crate::PolicySet::from_yaml("p.yaml", &policy("standrad")) else {
            panic!("an unknown tier is refused");
        };
        let err = err.to_string();
        assert!(err.contains("unknown trust tier `standrad`"), "{err}");
        assert!(err.contains("p.yaml:4:"), "{err}");
    }
}
