//! `martelli validate CONFIG...`: check configs without running anything.

use anyhow::Context;
use martelli_config::Overrides;
use martelli_results::Machine;

use crate::cli::ValidateArgs;

/// Validates each config and prints what it would run; fails on the first bad one.
pub fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    let logical_cores = Machine::current().logical_cores;
    for path in &args.configs {
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
        println!(
            "ok: {} (tier {}, series [{}], points [{}], {} repeats)",
            path.display(),
            config.tier,
            series.join(", "),
            points.join(", "),
            config.sweep.repeats
        );
    }
    Ok(())
}
