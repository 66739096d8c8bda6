//! The zero-trust settings file (`--trust-config FILE`): which identities Warden accepts, and
//! how trust scores move.
//!
//! ```yaml
//! identity:
//!   required: true              # every action must carry a verified credential
//!   roots: ["did:warden:z…"]    # whose credentials are accepted
//!   audiences: ["billing"]      # names this Warden answers to (a chain's audience must be one)
//!   allow_classical: false      # accept did:key (Ed25519-only) identities
//!   max_chain_depth: 8
//!   max_lifetime: 1d            # longest-lived link accepted
//! trust:
//!   initial: 500                # a new agent's score
//!   floor: 300                  # idle decay stops here
//!   gains: {allowed: 1, completed: 2}
//!   penalties: {denied: 10, violation: 25, anomaly: 50}
//!   max_gain: {points: 20, per: 1h}
//!   decay: {after: 1h, per_hour: 5}
//! ```
//!
//! Every field is optional (defaults as above, with no roots and `required: false`); unknown
//! fields are errors. Penalties must each be larger than every gain — violations weigh more
//! than successes — and no weight can be negative, so no event can move a score the wrong way.

use std::path::Path;
use std::time::Duration;

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde::Deserialize;
use serde_json::{Map, Value};
use warden_identity::{Did, parse_duration};

use crate::error::TrustError;

/// Largest settings file read.
const MAX_FILE: u64 = 64 * 1024;
/// Most YAML nodes in it.
const MAX_NODES: usize = 2000;
/// Deepest nesting.
const MAX_DEPTH: usize = 8;

/// How trust scores move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustConfig {
    /// A new agent's score. Default 500.
    pub initial: u16,
    /// Where idle decay stops. Default 300.
    pub floor: u16,
    /// Points for an allowed action. Default 1.
    pub gain_allowed: u16,
    /// Points for an action Warden saw complete. Default 2.
    pub gain_completed: u16,
    /// Points lost for a deny that no rule made (default, failed step). Default 10.
    pub penalty_denied: u16,
    /// Points lost for a deny by a rule, or an action outside the agent's credential. Default 25.
    pub penalty_violation: u16,
    /// Points lost for an anomaly (an attempt on Warden's own files, poisoned content). Default 50.
    pub penalty_anomaly: u16,
    /// Most points gained per window. Default 20.
    pub max_gain: u16,
    /// The gain window. Default one hour.
    pub gain_window: Duration,
    /// Idle time before decay starts. Default one hour.
    pub decay_after: Duration,
    /// Points lost per idle hour after that. Default 5.
    pub decay_per_hour: u16,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig {
            initial: 500,
            floor: 300,
            gain_allowed: 1,
            gain_completed: 2,
            penalty_denied: 10,
            penalty_violation: 25,
            penalty_anomaly: 50,
            max_gain: 20,
            gain_window: Duration::from_secs(3600),
            decay_after: Duration::from_secs(3600),
            decay_per_hour: 5,
        }
    }
}

impl TrustConfig {
    /// Check the invariants the scoring relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.initial > 1000 || self.floor > 1000 {
            return Err("`initial` and `floor` must be 0–1000".into());
        }
        if self.floor > self.initial {
            return Err(format!(
                "`floor` ({}) must not be above `initial` ({})",
                self.floor, self.initial
            ));
        }
        let gain = self.gain_allowed.max(self.gain_completed);
        let penalty = self
            .penalty_denied
            .min(self.penalty_violation)
            .min(self.penalty_anomaly);
        if penalty <= gain {
            return Err(format!(
                "every penalty must be larger than every gain (violations weigh more than \
                 successes); the smallest penalty is {penalty}, the largest gain {gain}"
            ));
        }
        if self
            .penalty_denied
            .max(self.penalty_violation)
            .max(self.penalty_anomaly)
            > 1000
        {
            return Err("penalties are at most 1000".into());
        }
        if self.gain_window.as_secs() == 0 {
            return Err("`max_gain.per` must be at least 1s".into());
        }
        Ok(())
    }
}

/// Which identities are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentityConfig {
    /// Deny every action without a verified credential.
    pub required: bool,
    /// Trusted roots.
    pub roots: Vec<Did>,
    /// Names this Warden answers to.
    pub audiences: Vec<String>,
    /// Accept classical-only identities.
    pub allow_classical: bool,
    /// Most links in a chain (default 8).
    pub max_chain_depth: Option<usize>,
    /// Longest-lived link accepted (default a day).
    pub max_lifetime: Option<Duration>,
}

/// The whole settings file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// `identity:`
    pub identity: IdentityConfig,
    /// `trust:`
    pub trust: TrustConfig,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    identity: Option<IdentityDoc>,
    #[serde(default)]
    trust: Option<TrustDoc>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct IdentityDoc {
    required: Option<bool>,
    roots: Option<Vec<String>>,
    audiences: Option<Vec<String>>,
    allow_classical: Option<bool>,
    max_chain_depth: Option<usize>,
    max_lifetime: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TrustDoc {
    initial: Option<u16>,
    floor: Option<u16>,
    gains: Option<GainsDoc>,
    penalties: Option<PenaltiesDoc>,
    max_gain: Option<MaxGainDoc>,
    decay: Option<DecayDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GainsDoc {
    allowed: Option<u16>,
    completed: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PenaltiesDoc {
    denied: Option<u16>,
    violation: Option<u16>,
    anomaly: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaxGainDoc {
    points: Option<u16>,
    per: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecayDoc {
    after: Option<String>,
    per_hour: Option<u16>,
}

impl Config {
    /// Read and check a settings file.
    pub fn load(path: &Path) -> Result<Config, TrustError> {
        let err = |m: String| TrustError::Config(format!("{}: {m}", path.display()));
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if !meta.is_file() || meta.len() > MAX_FILE {
            return Err(err(format!(
                "not a regular file of at most {MAX_FILE} bytes"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Config::from_yaml(&text).map_err(err)
    }

    /// Parse and check settings from YAML text.
    pub fn from_yaml(text: &str) -> Result<Config, String> {
        let value = yaml_to_json(text)?;
        let doc: FileDoc = if value.is_null() {
            FileDoc::default()
        } else {
            serde_json::from_value(value).map_err(|e| e.to_string())?
        };
        let mut config = Config::default();
        if let Some(i) = doc.identity {
            let roots = i
                .roots
                .unwrap_or_default()
                .iter()
                .map(|r| Did::parse(r).map_err(|e| format!("identity.roots: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            config.identity = IdentityConfig {
                required: i.required.unwrap_or(false),
                roots,
                audiences: i.audiences.unwrap_or_default(),
                allow_classical: i.allow_classical.unwrap_or(false),
                max_chain_depth: i.max_chain_depth,
                max_lifetime: i
                    .max_lifetime
                    .map(|d| parse_duration(&d).map_err(|e| format!("identity.max_lifetime: {e}")))
                    .transpose()?,
            };
        }
        if let Some(t) = doc.trust {
            let c = &mut config.trust;
            c.initial = t.initial.unwrap_or(c.initial);
            c.floor = t.floor.unwrap_or(c.floor);
            if let Some(g) = t.gains {
                c.gain_allowed = g.allowed.unwrap_or(c.gain_allowed);
                c.gain_completed = g.completed.unwrap_or(c.gain_completed);
            }
            if let Some(p) = t.penalties {
                c.penalty_denied = p.denied.unwrap_or(c.penalty_denied);
                c.penalty_violation = p.violation.unwrap_or(c.penalty_violation);
                c.penalty_anomaly = p.anomaly.unwrap_or(c.penalty_anomaly);
            }
            if let Some(m) = t.max_gain {
                c.max_gain = m.points.unwrap_or(c.max_gain);
                if let Some(per) = m.per {
                    c.gain_window =
                        parse_duration(&per).map_err(|e| format!("trust.max_gain.per: {e}"))?;
                }
            }
            if let Some(d) = t.decay {
                if let Some(after) = d.after {
                    c.decay_after =
                        parse_duration(&after).map_err(|e| format!("trust.decay.after: {e}"))?;
                }
                c.decay_per_hour = d.per_hour.unwrap_or(c.decay_per_hour);
            }
            c.validate().map_err(|e| format!("trust: {e}"))?;
        }
        Ok(config)
    }
}

/// A small, strict YAML reader for settings: mappings, sequences and scalars (plain
/// integers, `true`/`false`, `null`, strings); no anchors or aliases, no duplicate keys,
/// bounded size and depth. Errors name line and column.
fn yaml_to_json(text: &str) -> Result<Value, String> {
    enum Frame {
        Seq(Vec<Value>),
        Map(Map<String, Value>, Option<String>),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Value> = None;
    let mut nodes = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            let m = e.marker();
            format!("{}:{}: invalid YAML: {}", m.line(), m.col() + 1, e.info())
        })?;
        let at = format!("{}:{}", span.start.line(), span.start.col() + 1);
        let value = match event {
            Event::Scalar(s, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return Err(format!("{at}: anchors and tags are not used in settings"));
                }
                Some(match style {
                    ScalarStyle::Plain => match s.as_ref() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        "null" | "~" | "" => Value::Null,
                        t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                            Value::Number(
                                t.parse::<u64>()
                                    .map_err(|_| format!("{at}: number too large"))?
                                    .into(),
                            )
                        }
                        t => Value::String(t.to_string()),
                    },
                    _ => Value::String(s.to_string()),
                })
            }
            Event::Alias(_) => return Err(format!("{at}: aliases are not used in settings")),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if anchor != 0 {
                    return Err(format!("{at}: anchors are not used in settings"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("{at}: nested deeper than {MAX_DEPTH} levels"));
                }
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(Vec::new())
                } else {
                    Frame::Map(Map::new(), None)
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(v)) => Some(Value::Array(v)),
                Some(Frame::Map(m, _)) => Some(Value::Object(m)),
                None => return Err(format!("{at}: unbalanced YAML")),
            },
            _ => None,
        };
        let Some(value) = value else { continue };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(format!("{at}: more than {MAX_NODES} values"));
        }
        match stack.last_mut() {
            None => root = Some(value),
            Some(Frame::Seq(v)) => v.push(value),
            Some(Frame::Map(m, key)) => match key.take() {
                None => match value {
                    Value::String(k) => {
                        if m.contains_key(&k) {
                            return Err(format!("{at}: `{k}` is given twice"));
                        }
                        *key = Some(k);
                    }
                    _ => return Err(format!("{at}: keys must be strings")),
                },
                Some(k) => {
                    m.insert(k, value);
                }
            },
        }
    }
    Ok(root.unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_yaml("").unwrap();
        assert_eq!(c, Config::default());
        let c = Config::from_yaml(
            "trust:\n  initial: 600\n  penalties: {violation: 40}\n  max_gain: {points: 10, per: 30m}\nidentity:\n  required: true\n",
        )
        .unwrap();
        assert_eq!(c.trust.initial, 600);
        assert_eq!(c.trust.penalty_violation, 40);
        assert_eq!(c.trust.max_gain, 10);
        assert_eq!(c.trust.gain_window.as_secs(), 1800);
        assert!(c.identity.required);
    }

    #[test]
    fn bad_settings_say_what_and_where() {
        for (text, want) in [
            ("trust:\n  penaltys: {}\n", "unknown field `penaltys`"),
            ("trust:\n  penalties: {denied: -5}\n", "invalid type"),
            (
                "trust:\n  gains: {allowed: 30}\n",
                "every penalty must be larger than every gain",
            ),
            ("trust:\n  floor: 700\n", "must not be above `initial`"),
            ("identity:\n  roots: [did:web:x]\n", "identity.roots"),
            (
                "trust:\n  initial: 1\n  initial: 2\n",
                "3:3: `initial` is given twice",
            ),
            ("a: &x 1\n", "anchors"),
            ("trust:\n  decay: {after: soon}\n", "trust.decay.after"),
        ] {
            let e = Config::from_yaml(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
