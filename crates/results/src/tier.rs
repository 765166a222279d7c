//! The tiers of the results schema, typed: a point's tier, and a curve's (a measured tier, or a
//! simulation across the tiers it crosses). Written as the lowercase names the files have
//! always held (`"single"`, `"multi"`, `"distributed"`, `"simulated"`).

use serde::{Deserialize, Serialize};

/// The tier that ran (or, for a prediction, would run) a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PointTier {
    /// One thread, one process.
    Single,
    /// Several threads or processes on one machine.
    Multi,
    /// Workers over gRPC.
    Distributed,
}

impl PointTier {
    /// The name in files and tables.
    pub fn name(self) -> &'static str {
        match self {
            PointTier::Single => "single",
            PointTier::Multi => "multi",
            PointTier::Distributed => "distributed",
        }
    }

    /// The tier named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<PointTier> {
        [PointTier::Single, PointTier::Multi, PointTier::Distributed]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

impl From<PointTier> for martelli_config::Tier {
    fn from(tier: PointTier) -> martelli_config::Tier {
        match tier {
            PointTier::Single => martelli_config::Tier::Single,
            PointTier::Multi => martelli_config::Tier::Multi,
            PointTier::Distributed => martelli_config::Tier::Distributed,
        }
    }
}

impl TryFrom<martelli_config::Tier> for PointTier {
    type Error = String;

    /// The tier of a config, once `auto` has been resolved to one of the three.
    fn try_from(tier: martelli_config::Tier) -> Result<PointTier, String> {
        match tier {
            martelli_config::Tier::Single => Ok(PointTier::Single),
            martelli_config::Tier::Multi => Ok(PointTier::Multi),
            martelli_config::Tier::Distributed => Ok(PointTier::Distributed),
            martelli_config::Tier::Auto => {
                Err("the auto tier is resolved to one of the three before a point runs".into())
            }
        }
    }
}

impl std::fmt::Display for PointTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// What a curve is: one tier's points after its series' 1-core baseline (`Single` for a series
/// measured on the single tier only), or a series of predictions across the tiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CurveTier {
    /// A baseline-only curve.
    Single,
    /// The multi tier's curve.
    Multi,
    /// The distributed tier's curve.
    Distributed,
    /// A simulation, across the tiers its core counts cross.
    Simulated,
}

impl CurveTier {
    /// The name in files, tables and legends.
    pub fn name(self) -> &'static str {
        match self {
            CurveTier::Single => "single",
            CurveTier::Multi => "multi",
            CurveTier::Distributed => "distributed",
            CurveTier::Simulated => "simulated",
        }
    }

    /// The curve of points on `tier`.
    pub fn of(tier: PointTier) -> CurveTier {
        match tier {
            PointTier::Single => CurveTier::Single,
            PointTier::Multi => CurveTier::Multi,
            PointTier::Distributed => CurveTier::Distributed,
        }
    }

    /// The curve named `name` by the shared grouping, if it is one.
    pub fn from_name(name: &str) -> Option<CurveTier> {
        [
            CurveTier::Single,
            CurveTier::Multi,
            CurveTier::Distributed,
            CurveTier::Simulated,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }
}

impl std::fmt::Display for CurveTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl PartialEq<PointTier> for CurveTier {
    fn eq(&self, other: &PointTier) -> bool {
        *self == CurveTier::of(*other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_written_as_the_names_files_have_always_held() {
        for tier in [PointTier::Single, PointTier::Multi, PointTier::Distributed] {
            let json = serde_json::to_string(&tier).unwrap();
            assert_eq!(json, format!("\"{}\"", tier.name()));
            assert_eq!(serde_json::from_str::<PointTier>(&json).unwrap(), tier);
            assert_eq!(PointTier::from_name(tier.name()), Some(tier));
            assert_eq!(PointTier::try_from(martelli_config::Tier::from(tier)), Ok(tier));
            assert_eq!(CurveTier::of(tier), tier);
        }
        assert!(PointTier::try_from(martelli_config::Tier::Auto).is_err());
        assert_eq!(
            serde_json::to_string(&CurveTier::Simulated).unwrap(),
            "\"simulated\""
        );
        assert_eq!(
            format!("{:<8}|", PointTier::Multi),
            "multi   |",
            "a table pads it"
        );
    }
}
