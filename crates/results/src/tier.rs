//! A curve's tier: one measured tier's points after its series' 1-core baseline, or a series
//! of predictions across the tiers it crosses. Points carry the model's [`Tier`] itself.
//! Written as the lowercase names the files have always held (`"single"`, `"multi"`,
//! `"distributed"`, `"simulated"`).

pub use martelli_model::Tier;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a curve is: the points of one tier (`Measured(Tier::Single)` for a series measured on
/// the single tier only), or a simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CurveTier {
    /// One tier's measured (or, in a simulation's own series, predicted) points.
    Measured(Tier),
    /// A simulation, across the tiers its core counts cross.
    Simulated,
}

impl CurveTier {
    /// The name in files, tables and legends.
    pub fn name(self) -> &'static str {
        match self {
            CurveTier::Measured(tier) => tier.name(),
            CurveTier::Simulated => "simulated",
        }
    }

    /// The curve of points on `tier`.
    pub fn of(tier: Tier) -> CurveTier {
        CurveTier::Measured(tier)
    }

    /// The curve named `name` by the shared grouping, if it is one.
    pub fn from_name(name: &str) -> Option<CurveTier> {
        match name {
            "simulated" => Some(CurveTier::Simulated),
            _ => Tier::from_name(name).map(CurveTier::Measured),
        }
    }
}

impl Serialize for CurveTier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for CurveTier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CurveTier, D::Error> {
        let name = String::deserialize(deserializer)?;
        CurveTier::from_name(&name).ok_or_else(|| {
            serde::de::Error::unknown_variant(&name, &["single", "multi", "distributed", "simulated"])
        })
    }
}

impl std::fmt::Display for CurveTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl PartialEq<Tier> for CurveTier {
    fn eq(&self, other: &Tier) -> bool {
        *self == CurveTier::of(*other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_and_curves_are_written_as_the_names_files_have_always_held() {
        for tier in Tier::ALL {
            let json = serde_json::to_string(&tier).unwrap();
            assert_eq!(json, format!("\"{}\"", tier.name()));
            assert_eq!(serde_json::from_str::<Tier>(&json).unwrap(), tier);
            let curve = CurveTier::of(tier);
            assert_eq!(serde_json::to_string(&curve).unwrap(), json);
            assert_eq!(serde_json::from_str::<CurveTier>(&json).unwrap(), curve);
            assert_eq!(curve, tier);
        }
        assert_eq!(
            serde_json::to_string(&CurveTier::Simulated).unwrap(),
            "\"simulated\""
        );
        assert!(serde_json::from_str::<CurveTier>("\"auto\"").is_err());
    }
}
