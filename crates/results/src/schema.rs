//! The results schema: what `results.json` holds. A public interface, documented in the
//! README: later versions add fields, never rename or remove them.

use crate::tier::{CurveTier, Tier};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use martelli_model::{
    CurvePoint, GustafsonFit, Observation, UslFit, fit_amdahl, fit_gustafson, fit_usl, series_curves, verdict,
};
use martelli_workload::Workload;

use crate::breakdown::{Breakdown, Useful};
use crate::machine::Machine;
use crate::stats::Summary;

/// Version of the layout of `results.json`, raised when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one `martelli run` measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    /// [`SCHEMA_VERSION`] at the time of writing.
    pub schema_version: u32,
    /// Version of the martelli that measured.
    pub martelli_version: String,
    /// UTC start time of the run, RFC 3339.
    pub started_at: String,
    /// The config file, as given on the command line.
    pub config_file: String,
    /// The config as run (file plus command-line overrides), as JSON.
    pub config: serde_json::Value,
    /// The machine that measured.
    pub machine: Machine,
    /// `"strong"` or `"weak"`.
    pub scaling: String,
    /// Each series with its workload as run (calibrated iteration count included).
    pub series: Vec<SeriesInfo>,
    /// One entry per (series, tier, core count).
    pub points: Vec<Point>,
    /// Things the reader should know: wide spreads, outliers, oversubscription.
    pub warnings: Vec<String>,
    /// Scaling laws fitted to each curve (a series on one tier, with its 1-core baseline).
    #[serde(default)]
    pub fits: Vec<CurveFit>,
    /// Which Martelli tier the workload needs, in plain words (or why the data cannot say).
    #[serde(default)]
    pub verdict: String,
    /// Each tier's minimum effective task granularity, when the series differ in task size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metg: Vec<crate::Metg>,
    /// The cluster the `(predicted)` series were simulated on, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated_cluster: Option<crate::SimulatedCluster>,
    /// The calibration at hand for predictions (its machine and date), when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<String>,
}

/// The laws fitted to one curve: a series measured on one tier, plus its 1-core point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurveFit {
    /// Series label.
    pub series: String,
    /// The tier of the curve's points beyond one core, or `simulated`.
    pub tier: CurveTier,
    /// Distinct core counts on the curve.
    pub core_counts: usize,
    /// The Universal Scalability Law, when at least 3 core counts were measured.
    pub usl: Option<UslFit>,
    /// Amdahl's law (the USL with kappa = 0), when at least 2 were.
    pub amdahl: Option<UslFit>,
    /// Gustafson's law, for weak-scaling runs.
    pub gustafson: Option<GustafsonFit>,
    /// Where the USL's throughput peaks, `sqrt((1 - sigma) / kappa)` (absent when kappa = 0).
    pub peak_cores: Option<f64>,
    /// The USL's speed-up at its peak, or Amdahl's limit `1 / sigma` when kappa = 0.
    pub max_speedup: Option<f64>,
    /// Amdahl's limit `1 / sigma` from the Amdahl fit.
    pub amdahl_limit: Option<f64>,
    /// Core counts on the curve left out of the fits: oversubscribed points of work that needs
    /// a core per task (past the machine's logical cores they measure the machine, not the
    /// workload).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_cores: Vec<usize>,
    /// The verdict this curve supports.
    pub verdict: String,
}

/// A series and the exact workload it ran, so that the run can be repeated exactly.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeriesInfo {
    /// The series label (the varied value, or the workload name).
    pub label: String,
    /// The per-task cost asked for in seconds, when the config gave a duration.
    pub task_cost_s: Option<f64>,
    /// The workload as run, with `iterations` resolved.
    pub workload: Workload,
    /// Whether its tasks ran under the emulated interpreter lock (`[executor] gil`): a point
    /// whose threads wait for the lock is slow by design, not on a busy machine.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gil: bool,
}

/// Task latency percentiles, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// One sweep point: a tier at a core count, summarised over its repeats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Series label.
    pub series: String,
    /// The tier that ran it (or would, for a prediction).
    pub tier: Tier,
    /// Cores used.
    pub cores: usize,
    /// Parallel tasks per run (grows with cores under weak scaling).
    pub tasks: u64,
    /// Mean kernel iterations per task.
    pub iterations: u64,
    /// Measured repeats.
    pub repeats: usize,
    /// Median wall time, seconds.
    pub wall_s: f64,
    /// Fastest repeat, seconds.
    pub wall_s_min: f64,
    /// Slowest repeat, seconds.
    pub wall_s_max: f64,
    /// Every repeat's wall time, seconds, in run order.
    pub wall_s_repeats: Vec<f64>,
    /// Tasks per second at the median wall time.
    pub tasks_per_s: f64,
    /// Speed-up over the 1-core point of the same series (scaled speed-up under weak scaling).
    pub speedup: f64,
    /// Speed-up divided by cores (T1 / TN under weak scaling).
    pub efficiency: f64,
    /// Per-task latency (start to finish of one task), over all repeats.
    pub latency_us: Latency,
    /// Mean task latency, microseconds: the task size next to the speed-up.
    pub mean_task_us: f64,
    /// Median time from the start of a run to its first task result, seconds.
    pub first_result_s: f64,
    /// Median CPU time (user + system) of a run, seconds.
    pub cpu_s: f64,
    /// Tasks completed per run, the serial phase included.
    pub tasks_completed: u64,
    /// Checksum of the task digests, 16 hex digits. Equal on every tier for the same work.
    pub checksum: String,
    /// `false` for a measured point (a simulator marks its points `true`).
    #[serde(default)]
    pub predicted: bool,
    /// True when the point ran more threads than the machine that ran them has logical cores:
    /// computing cannot speed up past them there (waits can still overlap).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oversubscribed: bool,
    /// What crossed the network, for points of the distributed tier (absent otherwise).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub distributed: Option<WireStats>,
    /// Peak resident memory of martelli's own process during a run, MiB, the highest of the
    /// repeats (absent where the OS cannot measure it per run, and for predictions). Worker
    /// processes are not included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_mib: Option<f64>,
    /// Time inside tasks in the repeat at the median wall time, over the lanes that ran them
    /// (absent where a tier cannot tell them apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub useful: Option<Useful>,
    /// Where the efficiency went: load balance x communication x computation (their product
    /// is the point's efficiency), on every point past one core with a time inside tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
}

/// Network and fault figures of the distributed tier. Counts are totals over the point's
/// measured repeats; `workers` is the number of workers a run used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireStats {
    /// Workers the run was spread over.
    pub workers: u64,
    /// Protobuf message bytes sent to workers (task batches, payloads included).
    pub bytes_sent: u64,
    /// Protobuf message bytes received from workers (results, heartbeats).
    pub bytes_received: u64,
    /// Task batches sent plus result batches received.
    pub rpc_batches: u64,
    /// Tasks sent again after their worker was lost.
    pub retried_tasks: u64,
    /// Workers declared lost (stream broken or silent past the timeout).
    pub lost_workers: u64,
    /// Late or duplicate results dropped (the first result of a task wins).
    pub dropped_results: u64,
    /// Second copies of tasks in flight, sent to idle workers at the end of a run (a
    /// straggler's tasks, say); the first result of each task wins.
    #[serde(default)]
    pub reissued_tasks: u64,
    /// Times a worker thread found no task queued and slept until the next batch (the
    /// workers' counts, summed; predicted by the simulator's model of the same queues).
    #[serde(default)]
    pub starved_takes: u64,
}

impl WireStats {
    /// Adds another run's counts (`workers` is kept, not summed).
    pub fn add(&mut self, other: &WireStats) {
        self.workers = self.workers.max(other.workers);
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.rpc_batches += other.rpc_batches;
        self.retried_tasks += other.retried_tasks;
        self.lost_workers += other.lost_workers;
        self.dropped_results += other.dropped_results;
        self.reissued_tasks += other.reissued_tasks;
        self.starved_takes += other.starved_takes;
    }
}

/// What one run of one point measured. Produced by every tier through the same recorder.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Wall time of the whole run, serial phase included.
    pub wall: Duration,
    /// CPU time (user + system) the process spent during the run.
    pub cpu: Duration,
    /// From the start of the run to the first task result.
    pub first_result: Duration,
    /// Per-task latency in nanoseconds.
    pub latency_ns: Histogram<u64>,
    /// Tasks completed, serial phase included.
    pub tasks_completed: u64,
    /// The run checksum's value.
    pub checksum: u64,
    /// Network and fault figures, for the distributed tier.
    pub distributed: Option<WireStats>,
    /// Peak resident memory of this process during the run, bytes (`None` where the OS
    /// cannot reset the peak before a run, or for a prediction).
    pub peak_rss_bytes: Option<u64>,
    /// The run's task timeline, when it was traced (`--trace`): spans since `start`, and
    /// how many the cap left out.
    pub trace: Option<RunTrace>,
    /// Time inside the parallel phase's tasks per lane (a thread, a worker's thread, a pool
    /// process, an async in-flight slot), ns; empty where the tier cannot tell.
    pub lanes_ns: Vec<u64>,
    /// Time inside the serial phase's task, ns (0 without one).
    pub serial_ns: u64,
}

/// The task timeline of one traced run.
#[derive(Clone, Debug)]
pub struct RunTrace {
    /// When the run started.
    pub start: std::time::Instant,
    /// One span per task recorded.
    pub spans: Vec<crate::trace::TraceSpan>,
    /// Spans left out by the cap.
    pub dropped: u64,
}

impl Point {
    /// How far the repeats moved: half their range over the median (0 without a wall time).
    pub fn spread(&self) -> f64 {
        if self.wall_s > 0.0 {
            (self.wall_s_max - self.wall_s_min) / self.wall_s / 2.0
        } else {
            0.0
        }
    }

    /// Summarises the repeats of one point. Speed-up and efficiency are filled in by
    /// [`Results::fill_speedups`] once the baseline is known. `samples` must not be empty and
    /// must agree on the checksum (the caller checks it and fails the run otherwise).
    pub fn from_samples(
        series: &str,
        tier: Tier,
        cores: usize,
        workload: &Workload,
        samples: &[Sample],
    ) -> Point {
        let walls: Vec<f64> = samples.iter().map(|s| s.wall.as_secs_f64()).collect();
        let wall = Summary::of(&walls).expect("at least one finite wall time");
        let median = |f: fn(&Sample) -> Duration| {
            let values: Vec<f64> = samples.iter().map(|s| f(s).as_secs_f64()).collect();
            Summary::of(&values).map_or(0.0, |s| s.median)
        };
        let mut latency = samples[0].latency_ns.clone();
        for s in &samples[1..] {
            // Histograms built by the same recorder share bounds; an add can only fail on a
            // value outside them, which auto-resizing histograms do not have.
            let _ = latency.add(&s.latency_ns);
        }
        let us = |q: f64| latency.value_at_quantile(q) as f64 / 1e3;
        // The repeat whose wall time is the median's (the lower middle one of an even count):
        // its lanes are the point's.
        let middle = {
            let mut order: Vec<usize> = (0..samples.len()).collect();
            order.sort_by(|&a, &b| walls[a].total_cmp(&walls[b]));
            &samples[order[(order.len() - 1) / 2]]
        };
        let useful = (!middle.lanes_ns.is_empty()).then(|| Useful::of(&middle.lanes_ns, middle.serial_ns));
        Point {
            series: series.to_string(),
            tier,
            cores,
            tasks: workload.tasks,
            iterations: workload.iterations,
            repeats: samples.len(),
            wall_s: wall.median,
            wall_s_min: wall.min,
            wall_s_max: wall.max,
            wall_s_repeats: walls,
            tasks_per_s: if wall.median > 0.0 {
                workload.tasks as f64 / wall.median
            } else {
                0.0
            },
            speedup: 0.0,
            efficiency: 0.0,
            latency_us: Latency {
                p50: us(0.50),
                p95: us(0.95),
                p99: us(0.99),
            },
            mean_task_us: latency.mean() / 1e3,
            first_result_s: median(|s| s.first_result),
            cpu_s: median(|s| s.cpu),
            tasks_completed: samples[0].tasks_completed,
            checksum: format!("{:016x}", samples[0].checksum),
            predicted: false,
            oversubscribed: false,
            peak_rss_mib: samples
                .iter()
                .filter_map(|s| s.peak_rss_bytes)
                .max()
                .map(|b| b as f64 / (1 << 20) as f64),
            distributed: samples
                .iter()
                .filter_map(|s| s.distributed.as_ref())
                .fold(None, |acc, w| {
                    let mut total = acc.unwrap_or_default();
                    total.add(w);
                    Some(total)
                }),
            useful,
            breakdown: None,
        }
    }
}

impl Results {
    /// Fills speed-up and efficiency of every point against the 1-core point of its series.
    /// Under weak scaling the work grows with the cores, so speed-up is the scaled speed-up
    /// `N * T1 / TN` and efficiency is `T1 / TN` (`weak` says which).
    pub fn fill_speedups(&mut self, weak: bool) {
        // A series' baseline is its measured 1-core point; a series of predictions (no
        // measured point) is against its own predicted 1-core point.
        let mut baselines: Vec<(String, f64)> = self
            .points
            .iter()
            .filter(|p| p.cores == 1 && !p.predicted)
            .map(|p| (p.series.clone(), p.wall_s))
            .collect();
        for p in self.points.iter().filter(|p| p.cores == 1 && p.predicted) {
            if !baselines.iter().any(|(s, _)| *s == p.series) {
                baselines.push((p.series.clone(), p.wall_s));
            }
        }
        for p in &mut self.points {
            let Some(t1) = baselines.iter().find(|(s, _)| *s == p.series).map(|b| b.1) else {
                continue;
            };
            if p.wall_s <= 0.0 {
                continue;
            }
            let ratio = t1 / p.wall_s;
            let cores = p.cores as f64;
            (p.speedup, p.efficiency) = if weak {
                (ratio * cores, ratio)
            } else {
                (ratio, ratio / cores)
            };
            // Under weak scaling a point of N cores does N times the 1-core work: its
            // reference is N times the 1-core wall time, so the factors still multiply to
            // its efficiency.
            let reference = if weak { t1 * cores } else { t1 };
            p.breakdown = (p.cores > 1)
                .then_some(p.useful.as_ref())
                .flatten()
                .and_then(|u| Breakdown::of(u, p.cores, p.wall_s, reference));
        }
    }
}

impl Results {
    /// Fits the scaling laws to every curve and writes the verdicts, one per curve (named
    /// when there are several). Work that needs a core per task is fitted on the points that
    /// are not oversubscribed; when those are too few, the verdict names the machine as the
    /// limit instead of blaming the workload.
    pub fn fill_fits(&mut self, weak: bool) {
        let mut fits = Vec::new();
        for series in &self.series {
            let label = &series.label;
            // Waits overlap past the cores; compute does not.
            let needs_cores = series.workload.io_wait_ns == 0;
            for curve in self
                .curves(label)
                .into_iter()
                .filter(|c| c.tier != CurveTier::Measured(Tier::Single))
            {
                // Laws are fitted to what was measured; a curve of predictions only (a
                // simulation) is fitted to its predictions.
                let measured: Vec<&Point> = if curve.points.iter().all(|p| p.predicted) {
                    curve.points.clone()
                } else {
                    curve.points.iter().copied().filter(|p| !p.predicted).collect()
                };
                let (fitted, excluded): (Vec<&Point>, Vec<&Point>) =
                    measured.iter().partition(|p| !(needs_cores && p.oversubscribed));
                let mut excluded_cores: Vec<usize> = excluded.iter().map(|p| p.cores).collect();
                excluded_cores.dedup();
                let observations: Vec<Observation> = fitted
                    .iter()
                    .map(|p| Observation {
                        cores: p.cores as f64,
                        throughput: p.tasks_per_s,
                    })
                    .collect();
                let mut cores: Vec<usize> = fitted.iter().map(|p| p.cores).collect();
                cores.sort_unstable();
                cores.dedup();
                let usl = fit_usl(&observations).ok();
                let amdahl = fit_amdahl(&observations).ok();
                let evidence = self.evidence(
                    series,
                    curve.tier,
                    &fitted,
                    (usl, amdahl),
                    !excluded_cores.is_empty(),
                );
                let text = verdict(&evidence);
                fits.push(CurveFit {
                    series: label.clone(),
                    tier: curve.tier,
                    core_counts: cores.len(),
                    usl,
                    amdahl,
                    peak_cores: usl.and_then(|u| u.peak_cores()),
                    max_speedup: usl.and_then(|u| u.max_speedup()),
                    amdahl_limit: amdahl.and_then(|a| a.max_speedup()),
                    excluded_cores,
                    gustafson: if weak {
                        fit_gustafson(&observations).ok()
                    } else {
                        None
                    },
                    verdict: text,
                });
            }
        }
        // A series' prediction speaks through its measured curves' verdicts (as their 9+
        // band); alone (predicted only), it has its own.
        let measured: Vec<String> = fits
            .iter()
            .filter(|f| f.tier != CurveTier::Simulated)
            .map(|f| crate::predicted_label(&f.series))
            .collect();
        let shown: Vec<&CurveFit> = fits
            .iter()
            .filter(|f| !(f.tier == CurveTier::Simulated && measured.contains(&f.series)))
            .collect();
        // Each verdict names its curve when there are several (a series on a tier), unless
        // they all say the same: then it is said once.
        let same = shown.windows(2).all(|w| w[0].verdict == w[1].verdict);
        let named = shown.len() > 1 && !same;
        let shown = if same {
            &shown[..shown.len().min(1)]
        } else {
            &shown[..]
        };
        self.verdict = shown
            .iter()
            .map(|f| {
                if named {
                    format!("{} ({}): {}", f.series, f.tier, f.verdict)
                } else {
                    f.verdict.clone()
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        self.fits = fits;
    }

    /// The curves of one series: for each tier beyond one core, its points after the series'
    /// 1-core baseline; a series measured on the single tier only is one curve of its own, and
    /// so is a series of predictions (tier `"simulated"`, across the tiers it crosses).
    /// The one grouping that fits and charts share.
    pub fn curves(&self, series: &str) -> Vec<Curve<'_>> {
        let of_series: Vec<&Point> = self.points.iter().filter(|p| p.series == series).collect();
        let shape: Vec<CurvePoint<'_>> = of_series
            .iter()
            .map(|p| CurvePoint {
                tier: p.tier.name(),
                cores: p.cores as f64,
                predicted: p.predicted,
            })
            .collect();
        series_curves(&shape)
            .into_iter()
            .map(|(tier, indices)| Curve {
                tier: CurveTier::from_name(tier).expect("the grouping names tiers or a simulation"),
                points: indices.iter().map(|&i| of_series[i]).collect(),
            })
            .collect()
    }
}

/// One series on one tier, with its 1-core baseline first.
#[derive(Clone, Debug)]
pub struct Curve<'a> {
    /// The tier of the points beyond one core (`Single` for a baseline-only curve), or
    /// `Simulated`.
    pub tier: CurveTier,
    /// The points, in core order as measured.
    pub points: Vec<&'a Point>,
}

/// The current UTC time as RFC 3339 (`2026-11-25T10:00:00Z`).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
