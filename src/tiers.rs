//! The tiers this run can use: the one place where the binary picks runner implementations.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use martelli_config::{Config, Tier, WorkerSource};
use martelli_distributed::{ClientOptions, DistributedRunner, JoinOptions, LocalWorkers, shared_token};
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
        Ok(Tiers {
            single: SingleRunner,
            multi: MultiRunner::default(),
            distributed: distributed(config)?,
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

/// The distributed tier, when the config uses it: local workers started, listed ones
/// connected, or joining ones waited for.
fn distributed(config: &Config) -> anyhow::Result<Option<DistributedRunner>> {
    Ok(match &config.distributed {
        Some(d) if matches!(config.tier, Some(Tier::Distributed) | None) => {
            let token = shared_token(d.token_file.as_deref()).map_err(UsageError)?;
            let tls_ca = d.tls_ca.as_deref().map(read).transpose()?;
            let options = ClientOptions {
                token: token.clone(),
                tls_ca,
                tls_domain: d.tls_domain.clone(),
                max_message_bytes: d.max_message_bytes as usize,
                timeout: d.timeout,
                heartbeat: d.heartbeat,
                policy: d.policy,
            };
            let (addresses, local) = match &d.workers {
                WorkerSource::Join {
                    listen,
                    expect,
                    timeout,
                } => {
                    let tls = d
                        .tls_identity
                        .as_ref()
                        .map(|(cert, key)| Ok::<_, UsageError>((read(cert)?, read(key)?)))
                        .transpose()?;
                    let join = JoinOptions {
                        expect: *expect as usize,
                        timeout: *timeout,
                        tls,
                    };
                    let waiting = joining_display();
                    let runner = DistributedRunner::join(*listen, &join, options, |joined, expected| {
                        waiting.set_message(format!("{joined}/{expected} workers joined {listen}"));
                    });
                    waiting.finish_and_clear();
                    return Ok(Some(runner?));
                }
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
    })
}

/// Reads a file the config names (a certificate, a key).
fn read(path: &Path) -> Result<Vec<u8>, UsageError> {
    std::fs::read(path).map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))
}

/// A spinner that says how many workers have joined, on a terminal only.
fn joining_display() -> ProgressBar {
    let target = if std::io::stdout().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(ProgressStyle::with_template("{spinner} waiting: {msg}").expect("the template is valid"));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
