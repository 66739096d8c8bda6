//! The five trust tiers and the score ranges that make them.
//!
//! Tiers are what policies and the rest of the decision path read: a YAML rule's
//! `tiers: [trusted, verified_partner]`, CEL's `context.tier`, and ring demotion (a `Tier`
//! compares by trust: `Tier::Untrusted < Tier::Probationary < … < Tier::VerifiedPartner`).
//! Warden writes `context.tier` itself after verifying the agent; whatever a caller put
//! there is overwritten, so [`Tier::from_context`] is safe to read after step 2.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A band of trust scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// 0–299.
    Untrusted,
    /// 300–499.
    Probationary,
    /// 500–699.
    Standard,
    /// 700–899.
    Trusted,
    /// 900–1000.
    VerifiedPartner,
}

impl Tier {
    /// Every tier, least trusted first.
    pub const ALL: [Tier; 5] = [
        Tier::Untrusted,
        Tier::Probationary,
        Tier::Standard,
        Tier::Trusted,
        Tier::VerifiedPartner,
    ];

    /// The tier of a score (scores above 1000 count as 1000).
    pub fn of(score: u16) -> Tier {
        match score {
            0..=299 => Tier::Untrusted,
            300..=499 => Tier::Probationary,
            500..=699 => Tier::Standard,
            700..=899 => Tier::Trusted,
            _ => Tier::VerifiedPartner,
        }
    }

    /// The lowest and highest score of the tier.
    pub fn range(self) -> (u16, u16) {
        match self {
            Tier::Untrusted => (0, 299),
            Tier::Probationary => (300, 499),
            Tier::Standard => (500, 699),
            Tier::Trusted => (700, 899),
            Tier::VerifiedPartner => (900, 1000),
        }
    }

    /// The name used in policies, JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Untrusted => "untrusted",
            Tier::Probationary => "probationary",
            Tier::Standard => "standard",
            Tier::Trusted => "trusted",
            Tier::VerifiedPartner => "verified_partner",
        }
    }

    /// The tier Warden wrote into an action's context (`context.tier`), if any.
    pub fn from_context(context: &serde_json::Value) -> Option<Tier> {
        context.get("tier")?.as_str()?.parse().ok()
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown tier `{}` (expected untrusted, probationary, standard, trusted or verified_partner)",
                    s.escape_debug()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        for (score, tier) in [
            (0, Tier::Untrusted),
            (299, Tier::Untrusted),
            (300, Tier::Probationary),
            (499, Tier::Probationary),
            (500, Tier::Standard),
            (699, Tier::Standard),
            (700, Tier::Trusted),
            (899, Tier::Trusted),
            (900, Tier::VerifiedPartner),
            (1000, Tier::VerifiedPartner),
        ] {
            assert_eq!(Tier::of(score), tier, "{score}");
            let (lo, hi) = tier.range();
            assert!(lo <= score && score <= hi);
        }
        for t in Tier::ALL {
            assert_eq!(t.as_str().parse::<Tier>(), Ok(t));
        }
        assert!(Tier::Untrusted < Tier::VerifiedPartner);
        assert!("partner".parse::<Tier>().is_err());
    }
}
