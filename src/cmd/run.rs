//! `martelli run CONFIG`: run the sweep, print the table, write the results atomically.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;

use martelli_config::{Config, Overrides};
use martelli_results::Results;
use martelli_results::trace::TracedRun;

use crate::cli::RunArgs;
use crate::exit::UsageError;
use crate::progress::{Progress, TraceLog};

/// Loads the config, runs every planned point, prints the summary and writes the results.
/// Nothing is written unless the whole sweep succeeded, so earlier results are never replaced
/// by partial or untrustworthy ones.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        tier: args.tier,
        cores: args.cores.map(|c| c.into_iter().map(|n| n as usize).collect()),
        repeats: args.sweep.repeats,
        out: args.sweep.out,
        listen: args.listen,
        expect_workers: args.expect_workers,
    };
    let config = martelli_config::load(&args.config, &overrides)?;
    writable(&config.output_dir)?;
    if let Some(trace) = args
        .trace
        .as_deref()
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
    {
        writable(trace)?;
    }
    let calibration = band_calibration()?;
    let (mut results, timeline) = measure(&config, args.trace.as_deref())?;
    // The 9+ band this machine cannot measure, predicted from its calibration, for the series
    // the simulator models (the default executor: no GIL, threads, futures) of a config that
    // asks for more than one core; a sweep that does not fit the config's [cluster] keeps its
    // measurements and says why.
    let mut modelled = config.clone();
    modelled
        .series
        .retain(|s| s.executor == martelli_config::ExecutorOptions::default());
    if let Some((_, calibration)) = &calibration {
        results.calibration = Some(format!("{} ({})", calibration.machine, calibration.measured_at));
        // The verdicts say what a calibration at hand means for each series.
        results.fill_fits(config.sweep.scaling == martelli_config::Scaling::Weak);
    }
    if let Some((path, calibration)) = calibration
        && config.tier != Some(martelli_config::Tier::Single)
        && !modelled.series.is_empty()
    {
        let cores = martelli_sim::band_cores(&modelled);
        match martelli_sim::check_fits(
            modelled.cluster.as_ref(),
            cores.iter().copied().max().unwrap_or(1),
        ) {
            Ok(()) => {
                tracing::info!(calibration = %path.display(), "predicting the 9+ band");
                crate::cmd::simulate::predict_into(&mut results, &modelled, &cores, &calibration)?;
            }
            Err(e) => results
                .warnings
                .push(format!("the 9+ band was not predicted: {e}")),
        }
    }
    report(
        &config,
        &results,
        args.sweep.format.into(),
        timeline.as_ref(),
        args.breakdown,
    )
}

/// Where `run` looks for a calibration when `MARTELLI_CALIBRATION` does not say.
const DEFAULT_CALIBRATION: &str = "output/calibration.toml";

/// The calibration `run` predicts the 9+ band with: the file `MARTELLI_CALIBRATION` names
/// (set and empty: none), else `output/calibration.toml` when it exists (what `martelli
/// calibrate` writes). A named file that cannot be read is a usage error; the default one is
/// only used when it exists.
fn band_calibration() -> anyhow::Result<Option<(std::path::PathBuf, martelli_sim::Calibration)>> {
    let path = match std::env::var_os("MARTELLI_CALIBRATION") {
        Some(p) if p.is_empty() => return Ok(None),
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let p = std::path::PathBuf::from(DEFAULT_CALIBRATION);
            if !p.exists() {
                return Ok(None);
            }
            p
        }
    };
    let calibration = martelli_sim::Calibration::load(&path)
        .map_err(|e| UsageError(format!("MARTELLI_CALIBRATION or {DEFAULT_CALIBRATION}: {e}")))?;
    Ok(Some((path, calibration)))
}

/// Runs the sweep of `config` on the tiers it asks for, with a progress bar on a terminal;
/// with `trace`, writes the task timeline of each point's first measured run there, and
/// returns the last point's for the report.
pub fn measure(config: &Config, trace: Option<&Path>) -> anyhow::Result<(Results, Option<TracedRun>)> {
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
    if trace.is_some() {
        progress.trace = Some(TraceLog::new());
    }
    let results = martelli_runner::run_sweep(config, &runners, &mut progress);
    progress.finish();
    let results = results?;
    let mut timeline = None;
    if let (Some(path), Some(mut log)) = (trace, progress.trace) {
        write_trace(path, &log, &results)?;
        timeline = log.runs.pop();
    }
    Ok((results, timeline))
}

/// Checks, before anything is measured, that results can be written into `dir` (creating
/// it), so that a sweep is never run only to be lost: exit code 2 when they cannot.
/// Nothing is created: the folder (or its nearest existing parent, where it will be made)
/// must be a folder this process can write in.
pub fn writable(dir: &Path) -> Result<(), UsageError> {
    let fail = |why: String| UsageError(format!("cannot write results to {}: {why}", dir.display()));
    let mut existing = dir;
    while !existing.as_os_str().is_empty() && !existing.exists() {
        existing = existing.parent().unwrap_or(Path::new(""));
    }
    let existing = if existing.as_os_str().is_empty() {
        Path::new(".")
    } else {
        existing
    };
    if !existing.is_dir() {
        return Err(fail(format!("{} is not a folder", existing.display())));
    }
    let probe = existing.join(format!(".martelli-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| fail(e.to_string()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes the Chrome trace-event file of a sweep's traced runs (atomically).
fn write_trace(path: &Path, log: &TraceLog, results: &Results) -> anyhow::Result<()> {
    let spans: usize = log.runs.iter().map(|r| r.spans.len()).sum();
    let dropped: u64 = log.runs.iter().map(|r| r.dropped).sum();
    let metadata = serde_json::json!({
        "martelli_version": env!("CARGO_PKG_VERSION"),
        "config_file": results.config_file,
        "started_at": results.started_at,
        "what": "each point's first measured run, one slice per task; on the distributed tier \
                 a task spans from when the coordinator sent it to when its result arrived, \
                 split where the worker's own run time (as it reported it) begins",
        "spans": spans,
        "capped": dropped > 0,
        "dropped_spans": dropped,
        "cap": crate::progress::TRACE_BUDGET,
    });
    let document = martelli_results::trace::chrome_trace(&log.runs, metadata);
    let text = serde_json::to_string(&document)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    martelli_results::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Prints the summary table (and the breakdown's, when asked), writes results.json, results.csv, the charts and report.html
/// into the config's output folder, and says what was written.
pub fn report(
    config: &Config,
    results: &Results,
    format: martelli_plot::Format,
    timeline: Option<&TracedRun>,
    breakdown: bool,
) -> anyhow::Result<()> {
    say(&martelli_results::render_table(results))?;
    if breakdown {
        say(&martelli_results::render_breakdown(results))?;
    }
    // Every file is written under a temporary name first and put in place only when all are:
    // a chart that cannot be drawn (a full disk) leaves the previous run's files as they were.
    let mut staged = martelli_results::Staged::new(&config.output_dir)?;
    martelli_results::stage_results(&mut staged, results)?;
    let runs = std::slice::from_ref(results);
    martelli_plot::stage_charts(runs, &mut staged, format)?;
    martelli_plot::stage_report(runs, &mut staged, None, timeline)?;
    let names: Vec<String> = staged.commit()?.iter().map(|p| p.display().to_string()).collect();
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
