//! The three tiers of Martelli's model: the one tier type that configs, the command line
//! (`--tier`, with the `clap` feature), results, charts and the simulator all use. A config's
//! `auto` (every tier that can run) is no tier of its own: it is the absence of one.

use serde::{Deserialize, Serialize};

/// The tier that runs (or, for a prediction, would run) a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// One thread, one process: a plain loop (1 core).
    Single,
    /// A thread pool of N threads on one machine (2-8 cores).
    Multi,
    /// Worker processes on one or many machines, driven by a coordinator (9+ cores).
    Distributed,
}

impl Tier {
    /// The three, in band order.
    pub const ALL: [Tier; 3] = [Tier::Single, Tier::Multi, Tier::Distributed];

    /// The lower-case name in configs, files, tables and legends.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Single => "single",
            Tier::Multi => "multi",
            Tier::Distributed => "distributed",
        }
    }

    /// The tier named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_written_as_the_names_files_have_always_held() {
        for tier in Tier::ALL {
            assert_eq!(Tier::from_name(tier.name()), Some(tier));
        }
        assert_eq!(Tier::from_name("auto"), None);
        assert_eq!(format!("{:<8}|", Tier::Multi), "multi   |", "a table pads it");
    }
}
