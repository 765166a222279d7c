//! `martelli compare BASELINE.json NEW.json`: every point the two runs share, faster or slower
//! only beyond the noise of their repeats; exit 1 when a point is slower than the threshold
//! (for CI pipelines); runs of another workload are refused (exit 2).

use martelli_results::{compare as compare_runs, render_comparison};

use crate::cli::CompareArgs;
use crate::cmd::plot::load;
use crate::exit::UsageError;

/// Loads both runs, compares, prints; with --out writes the overlay charts and a report.html
/// with the comparison.
pub fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let baseline = load(&args.baseline)?;
    let new = load(&args.new)?;
    let comparison = compare_runs(&baseline, &new, args.threshold).map_err(|e| {
        UsageError(format!(
            "{} against {}: {e}",
            args.baseline.display(),
            args.new.display()
        ))
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&comparison)?);
    } else {
        print!("{}", render_comparison(&comparison));
    }
    if let Some(out) = &args.out {
        let runs = [baseline, new];
        let mut staged = martelli_results::Staged::new(out)?;
        martelli_plot::stage_charts(&runs, &mut staged, args.format.into())?;
        martelli_plot::stage_report(&runs, &mut staged, Some(&comparison), None)?;
        let names: Vec<String> = staged.commit()?.iter().map(|p| p.display().to_string()).collect();
        println!("wrote {}", names.join(", "));
    }
    let slower: Vec<String> = comparison
        .regressions()
        .map(|p| {
            format!(
                "{} / {} / {} cores ({:+.1}%)",
                p.series,
                p.tier,
                p.cores,
                p.wall_change * 100.0
            )
        })
        .collect();
    if !slower.is_empty() {
        anyhow::bail!(
            "slower than the {:.0}% threshold: {}",
            args.threshold * 100.0,
            slower.join(", ")
        );
    }
    Ok(())
}
