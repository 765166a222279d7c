//! The sweep: for each series and each planned (tier, cores) point, warm up, repeat, check
//! the checksums, summarise. The same driver serves every tier; progress goes to an
//! [`Observer`] so that this crate never touches the terminal.

use martelli_config::{Config, Scaling, Series, Tier};
use martelli_results::{
    Machine, Point, Results, RunTrace, SCHEMA_VERSION, Sample, SeriesInfo, stats::Summary, utc_now,
};
use martelli_workload::{Executor, Kind, Workload};

use crate::task_cost::{Calibration, calibrate_on};
use crate::{Job, RunError, Runner};

/// Relative spread of the repeats (max - min over median) above which a point gets a warning.
const WIDE_SPREAD: f64 = 0.10;

/// One point the sweep will measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedPoint {
    /// The tier that runs it.
    pub tier: Tier,
    /// Its core count.
    pub cores: usize,
}

/// The points a config asks for, and what the user should know about the choice.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Points in the order they run: the 1-core baseline first.
    pub points: Vec<PlannedPoint>,
    /// Notes about points dropped or risky (e.g. more threads than cores).
    pub notes: Vec<String>,
}

/// Hears about the sweep's progress (the CLI draws a progress bar from it).
pub trait Observer {
    /// A series' `task_cost` was calibrated into iterations.
    fn calibrated(&mut self, _series: &str, _calibration: &Calibration) {}
    /// A `memory` series' working set is being filled: `filled` of `total` bytes.
    fn filling(&mut self, _series: &str, _filled: u64, _total: u64) {}
    /// A point is about to run `runs` times (warm-ups included).
    fn point_started(&mut self, _series: &str, _tier: Tier, _cores: usize, _runs: u32) {}
    /// One run of the current point finished.
    fn run_finished(&mut self) {}
    /// A point finished and was summarised.
    fn point_finished(&mut self, _point: &Point) {}
    /// Whether the first measured run of each point should record its task spans.
    fn wants_trace(&self) -> bool {
        false
    }
    /// The task spans of a point's first measured run (when [`Observer::wants_trace`]).
    fn traced(&mut self, _series: &str, _tier: Tier, _cores: usize, _trace: RunTrace) {}
}

/// A tier that can run here, and the most cores it offers (`None`: no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Available {
    /// The tier.
    pub tier: Tier,
    /// Its core limit, if it has one (the distributed tier's workers' threads).
    pub max_cores: Option<usize>,
    /// Whether its cores are this machine's (false: unknown or elsewhere).
    pub on_this_machine: bool,
}

impl Available {
    /// What `runner` offers.
    pub fn of(runner: &dyn Runner) -> Available {
        Available {
            tier: runner.tier(),
            max_cores: runner.max_cores(),
            on_this_machine: runner.on_this_machine(),
        }
    }
}

/// Decides which (tier, cores) points a config runs, given the tiers available. The 1-core
/// point always runs on the single tier: a plain loop is the fair baseline of speed-up, not a
/// 1-thread pool. Points beyond a tier's cores are refused here, before anything runs.
pub fn plan(config: &Config, logical_cores: usize, available: &[Available]) -> Result<Plan, RunError> {
    let mut notes = Vec::new();
    let many: Vec<usize> = config.sweep.cores.iter().copied().filter(|&c| c > 1).collect();
    let mut points = vec![PlannedPoint {
        tier: Tier::Single,
        cores: 1,
    }];
    let distributed = available.iter().find(|a| a.tier == Tier::Distributed);
    let tiers: &[Tier] = match config.tier {
        Some(Tier::Single) => {
            if !many.is_empty() {
                notes.push(format!(
                    "tier \"single\" measures only the 1-core point; cores {many:?} were not run"
                ));
            }
            &[]
        }
        Some(Tier::Multi) => &[Tier::Multi],
        Some(Tier::Distributed) => {
            if distributed.is_none() {
                return Err(RunError::Unsupported(
                    "tier \"distributed\" needs a [distributed] section in the config \
                     (workers = [\"host:port\", ...] or spawn_local = N)"
                        .into(),
                ));
            }
            &[Tier::Distributed]
        }
        None if distributed.is_some() => &[Tier::Multi, Tier::Distributed],
        None => {
            if !many.is_empty() {
                notes.push(
                    "tier \"auto\" ran single and multi; add a [distributed] section to run the distributed tier too"
                        .into(),
                );
            }
            &[Tier::Multi]
        }
    };
    for &tier in tiers {
        let limit = available
            .iter()
            .find(|a| a.tier == tier)
            .and_then(|a| a.max_cores);
        if let Some(limit) = limit
            && let Some(&over) = many.iter().find(|&&c| c > limit)
        {
            return Err(RunError::Unsupported(format!(
                "the {tier} tier offers {limit} cores (the workers' threads added up), so the sweep point of \
                 {over} cores cannot run; start more workers or threads, or lower sweep.cores"
            )));
        }
        points.extend(many.iter().map(|&cores| PlannedPoint { tier, cores }));
    }
    for &tier in tiers {
        let local = available.iter().any(|a| a.tier == tier && a.on_this_machine);
        if local && let Some(&over) = many.iter().find(|&&c| c > logical_cores) {
            notes.push(format!(
                "from {over} cores on, the {tier} tier runs more threads than this machine's {logical_cores} \
                 logical cores (oversubscribed): computing cannot speed up past {logical_cores}, only waiting \
                 can overlap"
            ));
        }
    }
    Ok(Plan { points, notes })
}

/// Runs the whole sweep of `config` and returns the results (not yet written anywhere).
pub fn run_sweep(
    config: &Config,
    runners: &[&dyn Runner],
    observer: &mut dyn Observer,
) -> Result<Results, RunError> {
    let machine = Machine::current();
    let available: Vec<Available> = runners.iter().map(|r| Available::of(*r)).collect();
    let plan = plan(config, machine.logical_cores, &available)?;
    let mut results = empty_results(config, machine);
    results.warnings = plan.notes.clone();
    results.warnings.extend(cache_notes(config, &results.machine));
    // Series that differ only in executor options run the same workload: calibrate it once,
    // so that they run identical tasks and must agree on the checksum.
    let mut calibrated: Vec<(Workload, std::time::Duration, Calibration)> = Vec::new();
    for series in &config.series {
        let mut workload = series.workload.clone();
        let built = Executor::try_new_with(&workload, &mut |filled, total| {
            observer.filling(&series.label, filled, total);
        })
        .map_err(|reason| RunError::Setup {
            tier: Tier::Single,
            cores: 1,
            reason,
        })?;
        if let Some(target) = series.task_cost {
            let known = calibrated
                .iter()
                .find(|(w, t, _)| *w == workload && *t == target)
                .map(|c| c.2);
            let calibration = known.unwrap_or_else(|| calibrate_on(&built, &workload, target));
            calibrated.push((workload.clone(), target, calibration));
            tracing::info!(series = %series.label, ?calibration, "calibrated task_cost");
            workload.iterations = calibration.iterations;
            if calibration.fixed_ns >= target.as_nanos() as f64 {
                results.warnings.push(format!(
                    "{}: task_cost {:?} is below the fixed cost of one task here ({:.2?}: payload \
                     generation and reading), so tasks run 1 kernel iteration and cost more than asked",
                    series.label,
                    target,
                    std::time::Duration::from_nanos(calibration.fixed_ns as u64)
                ));
            }
            observer.calibrated(&series.label, &calibration);
        }
        let executor = built.for_workload(&workload);
        let mut reference: Option<(String, String)> = None;
        for planned in &plan.points {
            let point_workload = match config.sweep.scaling {
                Scaling::Strong => workload.clone(),
                Scaling::Weak => workload.with_tasks(workload.tasks * planned.cores as u64),
            };
            let runner = runners.iter().find(|r| r.tier() == planned.tier).ok_or_else(|| {
                RunError::Unsupported(format!("the {} tier is not available here", planned.tier))
            })?;
            let samples = run_point(
                config,
                series,
                *runner,
                *planned,
                &point_workload,
                &executor,
                observer,
            )?;
            let mut point = Point::from_samples(
                &series.label,
                planned.tier,
                planned.cores,
                &point_workload,
                &samples,
            );
            point.oversubscribed = runner.on_this_machine() && planned.cores > results.machine.logical_cores;
            // Under strong scaling every point of a series does the same work: one checksum.
            if config.sweep.scaling == Scaling::Strong {
                match &reference {
                    None => {
                        reference = Some((
                            point.checksum.clone(),
                            format!("{} on {} cores", point.tier, point.cores),
                        ))
                    }
                    Some((expected, from)) if *expected != point.checksum => {
                        return Err(RunError::ChecksumMismatch {
                            series: series.label.clone(),
                            tier: planned.tier,
                            cores: planned.cores,
                            got: point.checksum,
                            expected: expected.clone(),
                            reference: from.clone(),
                        });
                    }
                    Some(_) => {}
                }
            }
            if let Some(warning) = spread_warning(&point) {
                results.warnings.push(warning);
            }
            // Only where the CPU time measured is all the point's work: this process's
            // threads, on compute that never waits, with no lock that serialises it on purpose.
            let local = matches!(planned.tier, Tier::Single | Tier::Multi)
                && series.executor.model == martelli_config::Model::Threads
                && series.executor.gil.is_none()
                && point_workload.io_wait_ns == 0;
            if let Some(warning) = local.then(|| busy_warning(&point)).flatten() {
                results.warnings.push(warning);
            }
            observer.point_finished(&point);
            results.points.push(point);
        }
        results.series.push(SeriesInfo {
            label: series.label.clone(),
            task_cost_s: series.task_cost.map(|d| d.as_secs_f64()),
            workload,
            gil: series.executor.gil.is_some(),
        });
    }
    results.fill_speedups(config.sweep.scaling == Scaling::Weak);
    results.fill_fits(config.sweep.scaling == Scaling::Weak);
    results.fill_metg();
    Ok(results)
}

/// A note for each `memory` series whose working set fits in the machine's last-level cache
/// (its reads come from the cache, not from memory), or when the machine does not say how
/// large that cache is.
fn cache_notes(config: &Config, machine: &Machine) -> Vec<String> {
    let human = martelli_config::host::human_bytes;
    let mut notes = Vec::new();
    for series in config.series.iter().filter(|s| s.workload.kind == Kind::Memory) {
        let ws = series.workload.working_set;
        match (machine.llc_bytes, machine.llc_level) {
            (Some(llc), level) if ws <= llc => notes.push(format!(
                "{}: its working set ({}) fits in the {} L{}: cache-bound, not memory-bound \
                 (leave working_set out for {} times the cache)",
                series.label,
                human(ws),
                human(llc),
                level.unwrap_or(0),
                martelli_config::WORKING_SET_PER_LLC
            )),
            (Some(_), _) => {}
            (None, _) => notes.push(format!(
                "{}: this machine does not say how large its last-level cache is, so its working \
                 set ({}) may fit in it and measure the cache, not memory",
                series.label,
                human(ws)
            )),
        }
    }
    notes
}

/// The config as results.json records it: the file's document, with the working set a
/// `memory` workload actually used when the file left it to the default.
fn recorded_config(config: &Config) -> serde_json::Value {
    let mut value = serde_json::to_value(&config.document).unwrap_or(serde_json::Value::Null);
    if let (Some(series), Some(workload)) = (
        config.series.first(),
        value.get_mut("workload").and_then(|w| w.as_object_mut()),
    ) && series.workload.kind == Kind::Memory
        && !workload.contains_key("working_set")
    {
        workload.insert("working_set".into(), series.workload.working_set.into());
    }
    value
}

/// Results of `config` on `machine` with nothing measured yet: the header every run (measured
/// or simulated) starts from.
pub fn empty_results(config: &Config, machine: Machine) -> Results {
    Results {
        schema_version: SCHEMA_VERSION,
        martelli_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: utc_now(),
        config_file: config.path.display().to_string(),
        config: recorded_config(config),
        machine,
        scaling: match config.sweep.scaling {
            Scaling::Strong => "strong".into(),
            Scaling::Weak => "weak".into(),
        },
        series: Vec::new(),
        points: Vec::new(),
        warnings: Vec::new(),
        fits: Vec::new(),
        verdict: String::new(),
        metg: Vec::new(),
        simulated_cluster: None,
        calibration: None,
    }
}

/// Warm-ups and repeats of one point, with every run's task count and checksum checked.
fn run_point(
    config: &Config,
    series: &Series,
    runner: &dyn Runner,
    planned: PlannedPoint,
    workload: &Workload,
    executor: &Executor,
    observer: &mut dyn Observer,
) -> Result<Vec<Sample>, RunError> {
    let mut prepared = runner.prepare_with(planned.cores, &series.executor)?;
    let series = series.label.as_str();
    let job = Job { workload, executor };
    let expected_tasks = workload.tasks + u64::from(workload.serial_task().is_some());
    let (warmup, repeats) = (config.sweep.warmup, config.sweep.repeats);
    observer.point_started(series, planned.tier, planned.cores, warmup + repeats);
    let _span = tracing::info_span!("point", series, tier = %planned.tier, cores = planned.cores).entered();
    let mut samples: Vec<Sample> = Vec::with_capacity(repeats as usize);
    let mut first_checksum = None;
    for run in 0..warmup + repeats {
        let traced = run == warmup && observer.wants_trace();
        crate::record::set_tracing(traced);
        let sample = prepared.run(&job);
        crate::record::set_tracing(false);
        let mut sample = sample?;
        if let Some(trace) = sample.trace.take() {
            observer.traced(series, planned.tier, planned.cores, trace);
        }
        observer.run_finished();
        tracing::debug!(
            run,
            wall_s = sample.wall.as_secs_f64(),
            checksum = format_args!("{:016x}", sample.checksum),
            "run finished"
        );
        if sample.tasks_completed != expected_tasks {
            return Err(RunError::LostWork {
                tier: planned.tier,
                cores: planned.cores,
                completed: sample.tasks_completed,
                expected: expected_tasks,
            });
        }
        match first_checksum {
            None => first_checksum = Some(sample.checksum),
            Some(c) if c != sample.checksum => {
                return Err(RunError::ChecksumMismatch {
                    series: series.to_string(),
                    tier: planned.tier,
                    cores: planned.cores,
                    got: format!("{:016x}", sample.checksum),
                    expected: format!("{c:016x}"),
                    reference: "its own first run".into(),
                });
            }
            Some(_) => {}
        }
        if run >= warmup {
            samples.push(sample);
        }
    }
    Ok(samples)
}

/// A warning when a compute-bound point's CPU time says it could not have had its cores (the
/// machine was busy with something else): its speed-up measures the machine, not the work.
/// What the workload itself leaves idle (its serial phase, the ends of the run when threads
/// run out of tasks) is not the machine's doing: the CPU time is set against the time its
/// threads spent inside tasks, which leaves those out, and only where that is unknown
/// against all its cores for the whole run.
pub(crate) fn busy_warning(point: &Point) -> Option<String> {
    // Runs shorter than this are mostly the pool's start: too short to judge.
    if point.oversubscribed || point.wall_s < 0.05 {
        return None;
    }
    let used = point.cpu_s / point.wall_s;
    let cores = if point.cores == 1 {
        "1 core".to_string()
    } else {
        format!("{} cores", point.cores)
    };
    let (expected, why) = match &point.useful {
        Some(useful) if useful.total_s() > 0.0 => (
            useful.total_s(),
            format!(
                "its threads were inside tasks for {:.4}s, on a core for {:.4}s of it",
                useful.total_s(),
                point.cpu_s
            ),
        ),
        _ => (
            point.cores as f64 * point.wall_s,
            format!("CPU {:.4}s in {:.4}s", point.cpu_s, point.wall_s),
        ),
    };
    (point.cpu_s < martelli_results::BUSY_SHARE * expected).then(|| {
        format!(
            "{} / {} / {cores}: the run kept {used:.2} cores busy on average ({why}): it did not have its \
             {cores}, the machine is busy; its speed-up says so, not the workload",
            point.series, point.tier
        )
    })
}

/// A warning when a point's repeats disagree enough to doubt its median.
fn spread_warning(point: &Point) -> Option<String> {
    let summary = Summary::of(&point.wall_s_repeats)?;
    let outliers = summary.outliers(&point.wall_s_repeats);
    let spread = summary.relative_spread();
    if outliers.is_empty() && spread <= WIDE_SPREAD {
        return None;
    }
    let what = if outliers.is_empty() {
        String::new()
    } else {
        format!(", {} outlier(s) by Tukey's fences", outliers.len())
    };
    Some(format!(
        "{} / {} / {} cores: repeats spread {:.0}% ({:.4}s to {:.4}s{what}); the machine may be busy, \
         consider more repeats",
        point.series,
        point.tier,
        point.cores,
        spread * 100.0,
        summary.min,
        summary.max,
    ))
}
