//! The tiers this run can use: the one place where the binary picks runner implementations.

use anyhow::Context;
use martelli_config::{Config, Tier, WorkerSource};
use martelli_distributed::{ClientOptions, DistributedRunner, LocalWorkers, shared_token};
use martelli_runner::{Available, MultiRunner, Runner, SingleRunner};

use crate::exit::UsageError;

/// The tiers a config could use, without starting anything (for `validate` and early checks).
pub fn declared(config: &Config) -> Vec<Available> {
    let mut tiers = vec![
        Available {
            tier: Tier::Single,
            max_cores: None,
            on_this_machine: true,
        },
        Available {
            tier: Tier::Multi,
            max_cores: None,
            on_this_machine: true,
        },
    ];
    if config.distributed.is_some() {
        tiers.push(Available {
            tier: Tier::Distributed,
            max_cores: None,
            on_this_machine: true,
        });
    }
    tiers
}

/// The runners of one `martelli run`, alive for the whole sweep (local workers included).
pub struct Tiers {
    single: SingleRunner,
    multi: MultiRunner,
    distributed: Option<DistributedRunner>,
}

impl Tiers {
    /// Sets up every tier the config uses: for the distributed tier, starts local workers or
    /// connects to the listed ones, before anything is measured.
    pub fn start(config: &Config) -> anyhow::Result<Tiers> {
        let distributed = match &config.distributed {
            Some(d) if matches!(config.tier, Tier::Distributed | Tier::Auto) => {
                let token = shared_token(d.token_file.as_deref()).map_err(UsageError)?;
                let tls_ca = d
                    .tls_ca
                    .as_ref()
                    .map(|p| {
                        std::fs::read(p).map_err(|e| UsageError(format!("cannot read {}: {e}", p.display())))
                    })
                    .transpose()?;
                let options = ClientOptions {
                    token: token.clone(),
                    tls_ca,
                    tls_domain: d.tls_domain.clone(),
                    max_message_bytes: d.max_message_bytes as usize,
                    timeout: d.timeout,
                    heartbeat: d.heartbeat,
                };
                let (addresses, local) = match &d.workers {
                    WorkerSource::Listed(addresses) => (addresses.clone(), None),
                    WorkerSource::Spawn { workers, threads } => {
                        let exe = std::env::current_exe()
                            .context("cannot find the martelli binary to spawn workers")?;
                        let local = LocalWorkers::spawn(
                            &exe,
                            *workers as usize,
                            threads.map(|t| t as usize),
                            token.as_deref(),
                            d.max_message_bytes as usize,
                        )?;
                        (local.addresses.clone(), Some(local))
                    }
                };
                Some(DistributedRunner::connect(&addresses, options, local)?)
            }
            _ => None,
        };
        Ok(Tiers {
            single: SingleRunner,
            multi: MultiRunner::default(),
            distributed,
        })
    }

    /// The runners, for the sweep to pick from by tier.
    pub fn runners(&self) -> Vec<&dyn Runner> {
        let mut runners: Vec<&dyn Runner> = vec![&self.single, &self.multi];
        if let Some(d) = &self.distributed {
            runners.push(d);
        }
        runners
    }
}
