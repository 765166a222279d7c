//! The tiers this run can use: the one place where the binary picks runner implementations.

use martelli_config::{Config, Tier};
use martelli_runner::{Available, MultiRunner, Runner, SingleRunner};

/// The tiers a config could use, without starting anything (for `validate` and early checks).
pub fn declared(config: &Config) -> Vec<Available> {
    let mut tiers = vec![
        Available {
            tier: Tier::Single,
            max_cores: None,
        },
        Available {
            tier: Tier::Multi,
            max_cores: None,
        },
    ];
    if config.distributed.is_some() {
        tiers.push(Available {
            tier: Tier::Distributed,
            max_cores: None,
        });
    }
    tiers
}

/// The runners of one `martelli run`, alive for the whole sweep.
pub struct Tiers {
    single: SingleRunner,
    multi: MultiRunner,
}

impl Tiers {
    /// Sets up every tier the config uses.
    pub fn start(_config: &Config) -> anyhow::Result<Tiers> {
        Ok(Tiers {
            single: SingleRunner,
            multi: MultiRunner,
        })
    }

    /// The runners, for the sweep to pick from by tier.
    pub fn runners(&self) -> Vec<&dyn Runner> {
        vec![&self.single, &self.multi]
    }
}
