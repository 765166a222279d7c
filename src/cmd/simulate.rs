//! `martelli simulate`: measured plus predicted scaling in one results file and one set of
//! charts, and `--validate`: predictions of what this machine can measure, set against it.

use std::path::Path;

use martelli_config::{
    ClusterSpec, Config, Distributed, ExecutorOptions, Overrides, Scaling, Tier, WorkerSource,
};
use martelli_results::{Machine, Point, Results};
use martelli_sim::{Calibration, predict_config, predicted_label};
use serde::Serialize;

use crate::cli::SimulateArgs;
use crate::cmd::{calibrate, run};
use crate::exit::UsageError;

/// Relative error of a prediction above which the validation table flags it.
const TOLERANCE: f64 = 0.10;

/// Measures (unless told not to), predicts, writes and draws both.
pub fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    if args.validate {
        return validate(&args);
    }
    let [path] = args.configs.as_slice() else {
        return Err(UsageError(format!(
            "simulate takes one config ({} given); several only with --validate",
            args.configs.len()
        ))
        .into());
    };
    let overrides = Overrides {
        repeats: args.sweep.repeats,
        out: args.sweep.out.clone(),
        ..Overrides::default()
    };
    let config = martelli_config::load(path, &overrides)?;
    let cores = match &args.cores {
        Some(list) => martelli_config::normalise_cores(list.iter().map(|&c| c as usize)),
        None => martelli_sim::band_cores(&config),
    };
    run::writable(&config.output_dir)?;
    // Refuse a cluster too small for the sweep before measuring anything.
    martelli_sim::check_fits(config.cluster.as_ref(), cores.iter().copied().max().unwrap_or(1))?;
    let calibration = calibration(args.calibration.as_deref())?;
    let (mut results, timeline) = if args.predict_only {
        (martelli_runner::empty_results(&config, Machine::current()), None)
    } else {
        run::measure(&config, args.trace.as_deref())?
    };
    predict_into(&mut results, &config, &cores, &calibration)?;
    run::report(
        &config,
        &results,
        args.sweep.format.into(),
        timeline.as_ref(),
        args.breakdown,
    )
}

/// Adds the predictions of `config` at `cores` to `results` (speed-ups, fits and verdicts
/// recomputed over both), with the warnings that say what they are.
pub fn predict_into(
    results: &mut Results,
    config: &Config,
    cores: &[usize],
    calibration: &Calibration,
) -> anyhow::Result<()> {
    results.calibration = Some(format!("{} ({})", calibration.machine, calibration.measured_at));
    add_predictions(results, config, cores, calibration)?;
    results.warnings.push(format!(
        "\"(predicted)\" series are the simulator's, not runs: calibrated on {} ({}); hollow points in the charts",
        calibration.machine, calibration.measured_at
    ));
    for series in config
        .series
        .iter()
        .filter(|s| s.executor != ExecutorOptions::default())
    {
        results.warnings.push(format!(
            "{}: the simulator models the multi tier's default executor (futures, threads, no GIL); this \
             series' [executor] options ({:?}) are measured, not modelled",
            series.label, series.executor
        ));
    }
    Ok(())
}

/// Loads the calibration file, or measures this machine now when none is given.
fn calibration(path: Option<&Path>) -> anyhow::Result<Calibration> {
    match path {
        Some(path) => Ok(Calibration::load(path)?),
        None => {
            eprintln!(
                "no --calibration given: calibrating this machine now (~10 s); \
                 `martelli calibrate` saves one to reuse"
            );
            calibrate::measure(1)
        }
    }
}

/// Predicts every series of `config` at `cores` and adds the points to `results`, with
/// speed-ups and fits recomputed over both.
fn add_predictions(
    results: &mut Results,
    config: &Config,
    cores: &[usize],
    calibration: &Calibration,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let prediction = predict_config(config, cores, calibration)?;
    tracing::info!(
        events = prediction.events,
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "simulated"
    );
    // Measured distributed points: what an ideal network would win back, from the model of
    // each as it ran.
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workloads: Vec<(String, martelli_workload::Workload)> = results
        .series
        .iter()
        .map(|s| (s.label.clone(), s.workload.clone()))
        .collect();
    for p in results
        .points
        .iter_mut()
        .filter(|p| !p.predicted && p.tier == Tier::Distributed)
    {
        let Some((_, workload)) = workloads.iter().find(|(label, _)| *label == p.series) else {
            continue;
        };
        let transfer = martelli_sim::measured_transfer(config, workload, p, calibration, logical);
        if let Some(useful) = &mut p.useful {
            useful.transfer = transfer;
        }
    }
    results.series.extend(prediction.series);
    results.points.extend(prediction.points);
    results.simulated_cluster = Some(prediction.cluster);
    let weak = config.sweep.scaling == Scaling::Weak;
    results.fill_speedups(weak);
    results.fill_fits(weak);
    results.fill_metg();
    Ok(())
}

/// One measured point and its prediction.
#[derive(Debug, Serialize)]
struct Row {
    config: String,
    series: String,
    tier: Tier,
    cores: usize,
    measured_speedup: f64,
    predicted_speedup: f64,
    /// (predicted - measured) / measured speed-up.
    error: f64,
    /// Half the range of the measured repeats' wall times over their median: how far the
    /// measurement itself moved.
    spread: f64,
    measured_wall_s: f64,
    predicted_wall_s: f64,
    /// (predicted - measured) / measured wall time.
    wall_error: f64,
    /// Times a worker thread found no task queued, per task (distributed points): how often
    /// the refills came late, measured and in the model.
    #[serde(skip_serializing_if = "Option::is_none")]
    measured_starved_per_task: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    predicted_starved_per_task: Option<f64>,
}

/// Measures what this machine can, predicts the same points, prints both.
fn validate(args: &SimulateArgs) -> anyhow::Result<()> {
    if args.cores.is_some() || args.sweep.out.is_some() {
        return Err(UsageError(
            "--validate picks its own core counts and writes nothing: drop --cores and --out".into(),
        )
        .into());
    }
    let calibration = calibration(args.calibration.as_deref())?;
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let overrides = Overrides {
        repeats: args.sweep.repeats,
        ..Overrides::default()
    };
    let configs = args
        .configs
        .iter()
        .map(|path| Ok((path, martelli_config::load(path, &overrides)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Waits past the cores rest on the calibrated cost of a wait, and compute between them on
    // the calibrated slow-down of that compute: their probes, run again before and after the
    // measurements, say whether this machine still is the one calibrated.
    let overlap = configs.iter().any(|(_, c)| waits_overlap(c));
    let computes = configs
        .iter()
        .any(|(_, c)| waits_overlap(c) && c.series.iter().any(|s| s.workload.kind.computes()));
    let probes: Vec<DriftProbe> = DriftProbe::of(&calibration)
        .into_iter()
        .filter(|p| overlap && (p.kind == ProbeKind::Waits || computes))
        .collect();
    let before = probes
        .iter()
        .map(DriftProbe::run)
        .collect::<anyhow::Result<Vec<f64>>>()?;
    let mut rows = Vec::new();
    for (path, config) in configs {
        let name = path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
        for variant in [
            multi_variant(&config, logical),
            distributed_variant(&config, logical),
        ] {
            let skip_single = !rows.is_empty() && variant.tier == Some(Tier::Distributed);
            for row in compare(&variant, &name, &calibration)? {
                if !(skip_single && row.tier == Tier::Single) {
                    rows.push(row);
                }
            }
        }
    }
    let mut moved = false;
    let mut drift = String::new();
    for (p, before) in probes.iter().zip(before) {
        let (line, past) = p.drift(before, p.run()?);
        drift.push_str(&line);
        moved |= past;
    }
    if moved {
        drift.push_str(&format!(
            "this machine moved by more than ±{:.0}% since it was calibrated: predictions that rest on \
             what moved are off by about as much (calibrate again, or validate without --calibration)\n",
            TOLERANCE * 100.0
        ));
    }
    if args.json {
        eprint!("{drift}");
        run::say(&format!("{}\n", serde_json::to_string_pretty(&rows)?))
    } else {
        run::say(&format!("{}{drift}", table(&rows)))
    }
}

/// Which of the calibration's probes: the cost of a wait, or the slow-down of compute
/// between waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ProbeKind {
    Waits,
    Compute,
}

/// One of the calibration's probes on the multi tier's largest pool, and the wall time it
/// took when the calibration was measured.
struct DriftProbe {
    kind: ProbeKind,
    threads: u32,
    calibrated_ns: f64,
}

impl DriftProbe {
    /// The probes of `calibration` that recorded a wall time: the cost of a wait's (the
    /// largest pool of sleeping threads), and the slow-down of compute between waits' (the
    /// largest pool it was fitted at).
    fn of(calibration: &Calibration) -> Vec<DriftProbe> {
        let multi = &calibration.multi;
        // The largest pool of a table, as (threads, wall time).
        let largest = |pools: &mut dyn Iterator<Item = (u32, f64)>| pools.max_by_key(|&(threads, _)| threads);
        let probe = |kind, (threads, calibrated_ns)| DriftProbe {
            kind,
            threads,
            calibrated_ns,
        };
        let waits = largest(&mut multi.wait_cpu.iter().map(|e| (e.threads, e.probe_wall_ns)))
            .map(|p| probe(ProbeKind::Waits, p));
        let compute = largest(
            &mut multi
                .compute_dilation
                .iter()
                .map(|e| (e.threads, e.probe_wall_ns)),
        )
        .map(|p| probe(ProbeKind::Compute, p));
        [waits, compute]
            .into_iter()
            .flatten()
            .filter(|p| p.calibrated_ns > 0.0)
            .collect()
    }

    /// Runs the probe as `calibrate` does (a warm-up, then the median of five), ns.
    fn run(&self) -> anyhow::Result<f64> {
        let workload = match self.kind {
            ProbeKind::Waits => martelli_runner::wait_workload(self.threads),
            ProbeKind::Compute => martelli_runner::dilation_workload(),
        };
        let runs = martelli_runner::samples(
            &martelli_runner::MultiRunner::default(),
            self.threads as usize,
            &workload,
            6,
        )?;
        let mut walls: Vec<f64> = runs.iter().skip(1).map(|s| s.wall.as_nanos() as f64).collect();
        walls.sort_by(f64::total_cmp);
        Ok(walls.get(walls.len() / 2).copied().unwrap_or(0.0))
    }

    /// What the probe's wall times before and after the measurements say about the machine,
    /// and whether either moved past [`TOLERANCE`].
    fn drift(&self, before: f64, after: f64) -> (String, bool) {
        let change = |now: f64| (now - self.calibrated_ns) / self.calibrated_ns * 100.0;
        let what = match self.kind {
            ProbeKind::Waits => format!(
                "the probe of {} sleeping threads (the cost of a wait)",
                self.threads
            ),
            ProbeKind::Compute => format!(
                "the probe of {} threads computing between waits (how much slower compute runs past the cores)",
                self.threads
            ),
        };
        let line = format!(
            "{what}: {:.1} ms when calibrated, {:.1} ms before these measurements ({:+.1}%), {:.1} ms after \
             ({:+.1}%)\n",
            self.calibrated_ns / 1e6,
            before / 1e6,
            change(before),
            after / 1e6,
            change(after),
        );
        (
            line,
            change(before).abs().max(change(after).abs()) > TOLERANCE * 100.0,
        )
    }
}

/// Whether the workload's tasks wait, so that more of them than this machine has cores can
/// overlap for real: such a config is measured at every core count it asks for.
fn waits_overlap(config: &Config) -> bool {
    config.series.iter().all(|s| s.workload.io_wait_ns > 0)
}

/// The core counts of `config` this machine can measure: all of them when the tasks wait,
/// else those up to its logical cores (2 at least).
fn measurable_cores(config: &Config, logical: usize) -> Vec<usize> {
    let mut cores: Vec<usize> = config
        .sweep
        .cores
        .iter()
        .copied()
        .filter(|&c| c <= logical || waits_overlap(config))
        .collect();
    if cores.len() < 2 {
        cores = vec![1, 2];
    }
    cores
}

/// The config measured on the multi tier at the core counts this machine can measure, and the
/// model of just that: one node of that many threads on this machine's cores.
fn multi_variant(config: &Config, logical: usize) -> Config {
    let cores = measurable_cores(config, logical);
    let top = cores.iter().copied().max().unwrap_or(2);
    let mut variant = config.clone();
    variant.tier = Some(Tier::Multi);
    variant.sweep.cores = cores;
    variant.distributed = None;
    variant.cluster = Some(ClusterSpec {
        nodes: Some(1),
        cores_per_node: Some(top.max(8) as u32),
        colocated_cores: (top > logical).then_some(logical as u32),
        ..config.cluster.clone().unwrap_or_default()
    });
    variant
}

/// The config on the distributed tier as this machine can run it, and the model of just that.
/// With `spawn_local` workers: those workers (N nodes of their threads, all on this machine's
/// cores). With listed workers (e.g. in network namespaces behind a capped link): those, and
/// the config's own `[cluster]`. Without a `[distributed]` section: 2 spawned workers of one
/// thread (two one-core nodes sharing this machine).
fn distributed_variant(config: &Config, logical: usize) -> Config {
    let mut variant = config.clone();
    variant.tier = Some(Tier::Distributed);
    let spec = config.cluster.clone().unwrap_or_default();
    match config.distributed.as_ref().map(|d| &d.workers) {
        Some(WorkerSource::Spawn { workers, threads }) => {
            let threads = threads.unwrap_or(logical as u32);
            let capacity = (*workers as usize) * threads as usize;
            variant.sweep.cores = measurable_cores(config, logical)
                .into_iter()
                .filter(|&c| c <= capacity)
                .collect();
            variant.cluster = Some(ClusterSpec {
                nodes: Some(*workers),
                cores_per_node: Some(threads),
                colocated_cores: Some(logical as u32),
                ..spec
            });
        }
        Some(WorkerSource::Listed(_) | WorkerSource::Join { .. }) => {
            variant.sweep.cores = config.sweep.cores.clone();
        }
        None => {
            variant.sweep.cores = vec![1, 2];
            variant.distributed = Some(Distributed::with_workers(WorkerSource::Spawn {
                workers: 2,
                threads: Some(1),
            }));
            variant.cluster = Some(ClusterSpec {
                nodes: Some(2),
                cores_per_node: Some(1),
                colocated_cores: Some(logical as u32),
                ..spec
            });
        }
    }
    variant
}

/// Measures `config`, predicts its points, pairs them.
fn compare(config: &Config, name: &str, calibration: &Calibration) -> anyhow::Result<Vec<Row>> {
    let (mut results, _) = run::measure(config, None)?;
    add_predictions(&mut results, config, &config.sweep.cores, calibration)?;
    let predicted = |p: &Point| -> Option<&Point> {
        let label = predicted_label(&p.series);
        results
            .points
            .iter()
            .find(|q| q.predicted && q.series == label && q.cores == p.cores && q.tier == p.tier)
    };
    let starved = |p: &Point| {
        p.distributed
            .as_ref()
            .map(|w| w.starved_takes as f64 / (p.tasks * p.repeats.max(1) as u64).max(1) as f64)
    };
    let relative = |predicted: f64, measured: f64| {
        if measured > 0.0 {
            (predicted - measured) / measured
        } else {
            0.0
        }
    };
    Ok(results
        .points
        .iter()
        .filter(|p| !p.predicted)
        .filter_map(|p| {
            let q = predicted(p)?;
            Some(Row {
                config: name.to_string(),
                series: p.series.clone(),
                tier: p.tier,
                cores: p.cores,
                measured_speedup: p.speedup,
                predicted_speedup: q.speedup,
                error: relative(q.speedup, p.speedup),
                spread: p.spread(),
                measured_wall_s: p.wall_s,
                predicted_wall_s: q.wall_s,
                wall_error: relative(q.wall_s, p.wall_s),
                measured_starved_per_task: starved(p),
                predicted_starved_per_task: starved(q),
            })
        })
        .collect())
}

/// The validation table, a `!` beside each error over the tolerance.
fn table(rows: &[Row]) -> String {
    let cw = rows.iter().map(|r| r.config.len()).chain([6]).max().unwrap_or(6);
    let sw = rows.iter().map(|r| r.series.len()).chain([6]).max().unwrap_or(6);
    let mut out = format!(
        "{:<cw$} {:<sw$} {:<11} {:>5} {:>9} {:>7} {:>9} {:>8}  {:>10} {:>10} {:>8}\n",
        "config",
        "series",
        "tier",
        "cores",
        "measured",
        "spread",
        "predicted",
        "error",
        "wall meas",
        "wall pred",
        "error"
    );
    let flag = |e: f64| if e.abs() > TOLERANCE { "!" } else { " " };
    for r in rows {
        out.push_str(&format!(
            "{:<cw$} {:<sw$} {:<11} {:>5} {:>8.3}x {:>6.1}% {:>8.3}x {:>+7.1}%{} {:>9.4}s {:>9.4}s {:>+7.1}%{}\n",
            r.config,
            r.series,
            r.tier,
            r.cores,
            r.measured_speedup,
            r.spread * 100.0,
            r.predicted_speedup,
            r.error * 100.0,
            flag(r.error),
            r.measured_wall_s,
            r.predicted_wall_s,
            r.wall_error * 100.0,
            flag(r.wall_error),
        ));
    }
    let speedups: Vec<&Row> = rows.iter().filter(|r| r.cores > 1).collect();
    let mut errors: Vec<f64> = speedups.iter().map(|r| r.error.abs()).collect();
    errors.sort_by(f64::total_cmp);
    let worst = errors.last().copied().unwrap_or(0.0);
    let median = errors.get(errors.len() / 2).copied().unwrap_or(0.0);
    let within = errors.iter().filter(|e| **e <= TOLERANCE).count();
    out.push_str(&format!(
        "speed-up predictions within {:.0}%: {within} of {} (median error {:.1}%, worst {:.1}%)\n",
        TOLERANCE * 100.0,
        speedups.len(),
        median * 100.0,
        worst * 100.0
    ));
    // Where the workers' threads waited for their refills, measured and in the model.
    let starved: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let (m, p) = (r.measured_starved_per_task?, r.predicted_starved_per_task?);
            (m.max(p) >= 0.05).then(|| format!("{} {}: {:.2} / {:.2}", r.config, r.cores, m, p))
        })
        .collect();
    if !starved.is_empty() {
        out.push_str(&format!(
            "workers' threads that found no task queued, per task (measured / predicted): {}\n",
            starved.join(", ")
        ));
    }
    // A prediction cannot be checked more closely than the measurement holds still.
    let noisy = speedups.iter().filter(|r| r.spread > TOLERANCE).count();
    if noisy > 0 {
        out.push_str(&format!(
            "{noisy} of {} measured points moved by more than ±{:.0}% between their own repeats (spread): \
             their errors are as uncertain as that\n",
            speedups.len(),
            TOLERANCE * 100.0
        ));
    }
    out
}
