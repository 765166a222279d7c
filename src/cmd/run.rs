//! `martelli run CONFIG`: run the sweep, print the table, write the results atomically.

use std::io::IsTerminal;

use martelli_config::{Config, Overrides};
use martelli_results::Results;

use crate::cli::RunArgs;
use crate::progress::Progress;

/// Loads the config, runs every planned point, prints the summary and writes the results.
/// Nothing is written unless the whole sweep succeeded, so earlier results are never replaced
/// by partial or untrustworthy ones.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        tier: args.tier.map(Into::into),
        cores: args.cores.map(|c| c.into_iter().map(|n| n as usize).collect()),
        repeats: args.repeats,
        out: args.out,
        listen: args.listen,
        expect_workers: args.expect_workers,
    };
    let config = martelli_config::load(&args.config, &overrides)?;
    let results = measure(&config)?;
    report(&config, &results, args.format.into())
}

/// Runs the sweep of `config` on the tiers it asks for, with a progress bar on a terminal.
pub fn measure(config: &Config) -> anyhow::Result<Results> {
    let logical_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Plan once before starting any worker, so that a bad sweep is refused at once; then again
    // with the workers' real capacity.
    martelli_runner::plan(config, logical_cores, &crate::tiers::declared(config))?;
    let tiers = crate::tiers::Tiers::start(config)?;
    let runners = tiers.runners();
    let available: Vec<_> = runners
        .iter()
        .map(|r| martelli_runner::Available::of(*r))
        .collect();
    let plan = martelli_runner::plan(config, logical_cores, &available)?;
    let runs =
        config.series.len() * plan.points.len() * (config.sweep.warmup + config.sweep.repeats) as usize;
    let mut progress = Progress::new(runs as u64, std::io::stdout().is_terminal());
    let results = martelli_runner::run_sweep(config, &runners, &mut progress);
    progress.finish();
    Ok(results?)
}

/// Prints the summary table, writes results.json, results.csv, the charts and report.html
/// into the config's output folder, and says what was written.
pub fn report(config: &Config, results: &Results, format: martelli_plot::Format) -> anyhow::Result<()> {
    say(&martelli_results::render_table(results))?;
    let written = martelli_results::write_results(&config.output_dir, results)?;
    let runs = std::slice::from_ref(results);
    let charts = martelli_plot::draw_all(runs, &config.output_dir, format)?;
    let page = martelli_plot::write_report(runs, &config.output_dir, None)?;
    let names: Vec<String> = written
        .iter()
        .chain(&charts)
        .chain([&page])
        .map(|p| p.display().to_string())
        .collect();
    say(&format!("wrote {}\n", names.join(", ")))
}

/// Prints to stdout. A reader that went away (`martelli run ... | head`) is not an error: the
/// results are still written; any other failure to print is.
pub fn say(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
