//! `martelli validate CONFIG...`: check configs without running anything.

use anyhow::Context;
use martelli_config::{Overrides, Tier};
use martelli_results::Machine;
use martelli_workload::SizeDistribution;

use crate::cli::ValidateArgs;

/// Validates every config and prints what each would run; reports every bad one (on
/// stderr, as `run` would) and fails if any was bad, with the first one's exit code.
pub fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let logical_cores = Machine::current().logical_cores;
    let mut first_error = None;
    let mut bad = 0;
    for path in &args.configs {
        match check(path, logical_cores) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                bad += 1;
                if first_error.is_none() {
                    first_error = Some(e);
                } else {
                    eprintln!("error: {e:#}");
                }
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) if bad > 1 => Err(e.context(format!(
            "{bad} of {} configs are bad; the first",
            args.configs.len()
        ))),
        Some(e) => Err(e),
    }
}

/// One config: what it would run, or why it cannot.
fn check(path: &std::path::Path, logical_cores: usize) -> anyhow::Result<String> {
    let config = martelli_config::load(path, &Overrides::default())?;
    let plan = martelli_runner::plan(&config, logical_cores, &crate::tiers::declared(&config))
        .with_context(|| format!("{}: tier", path.display()))?;
    let points: Vec<String> = plan
        .points
        .iter()
        .map(|p| format!("{} x{}", p.tier, p.cores))
        .collect();
    // Quoted: a label of keys varied together has commas of its own.
    let series: Vec<String> = config.series.iter().map(|s| format!("{:?}", s.label)).collect();
    let replays: Vec<String> = config
        .series
        .iter()
        .filter_map(|s| match &s.workload.distribution {
            SizeDistribution::Replay(r) => Some(format!(
                "; replays {} tasks of {} (mean compute {:.1} us, hash {})",
                r.records,
                r.from,
                r.mean_compute_ns / 1e3,
                r.hash
            )),
            _ => None,
        })
        .collect();
    Ok(format!(
        "ok: {} (tier {}, series [{}], points [{}], {} repeats{})",
        path.display(),
        config.tier.map_or("auto", Tier::name),
        series.join(", "),
        points.join(", "),
        config.sweep.repeats,
        replays.concat()
    ))
}
