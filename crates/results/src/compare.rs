//! Comparing two runs of one workload, point by point, against the noise of their repeats:
//! what `martelli compare` prints and what a CI pipeline's exit code rests on. Pure: takes two
//! parsed results, returns the comparison or why the runs cannot be compared.

use crate::tier::Tier;
use serde::Serialize;

use crate::{Point, Results};

/// What a point's change amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The new run is faster, beyond the repeats' noise.
    Faster,
    /// The new run is slower, beyond the repeats' noise.
    Slower,
    /// Within the noise: the repeats of the two runs overlap, or the change is smaller than
    /// the spread of either.
    NoChange,
}

/// One (series, tier, cores) present in both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PointChange {
    /// The series' label.
    pub series: String,
    /// The tier.
    pub tier: Tier,
    /// Cores.
    pub cores: usize,
    /// The baseline's median wall time, seconds.
    pub baseline_wall_s: f64,
    /// The new run's median wall time, seconds.
    pub new_wall_s: f64,
    /// (new - baseline) / baseline wall time.
    pub wall_change: f64,
    /// (new - baseline) / baseline throughput (tasks per second).
    pub throughput_change: f64,
    /// The larger of the two points' relative spreads (half the repeats' range over their
    /// median), plus how far a `task_cost` series' two calibrations differ: a change smaller
    /// than this is not told apart from noise.
    pub noise: f64,
    /// Faster, slower or no change.
    pub change: Change,
    /// Slower by more than the threshold: what fails a pipeline.
    pub regression: bool,
}

/// Every point the two runs share, and what the comparison concludes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// The threshold a slower point must exceed to count as a regression, as a fraction.
    pub threshold: f64,
    /// Points in both runs, in the new run's order.
    pub points: Vec<PointChange>,
    /// Points of either run that the other lacks, as "series / tier / N cores".
    pub unmatched: Vec<String>,
    /// What the reader should know, e.g. a `task_cost` calibrated to other iteration counts.
    pub notes: Vec<String>,
}

impl Comparison {
    /// The points slower than the threshold.
    pub fn regressions(&self) -> impl Iterator<Item = &PointChange> {
        self.points.iter().filter(|p| p.regression)
    }
}

/// Why two runs cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The runs share no (series, tier, cores) point.
    #[error("the two runs share no (series, tier, cores) point: nothing to compare")]
    NothingShared,
    /// A shared point ran another workload.
    #[error("{point}: not the same workload ({what}); compare runs of one config")]
    OtherWorkload {
        /// The point, as "series / tier / N cores".
        point: String,
        /// What differs.
        what: String,
    },
}

/// Compares `new` against `baseline`: measured points only (predictions are not runs).
pub fn compare(baseline: &Results, new: &Results, threshold: f64) -> Result<Comparison, CompareError> {
    let measured =
        |r: &'_ Results| -> Vec<Point> { r.points.iter().filter(|p| !p.predicted).cloned().collect() };
    let (base, next) = (measured(baseline), measured(new));
    let key = |p: &Point| (p.series.clone(), p.tier, p.cores);
    let name = |p: &Point| format!("{} / {} / {} cores", p.series, p.tier, p.cores);
    let mut points = Vec::new();
    let mut unmatched = Vec::new();
    let mut notes = Vec::new();
    for n in &next {
        let Some(b) = base.iter().find(|b| key(b) == key(n)) else {
            unmatched.push(format!("{} (only in the new run)", name(n)));
            continue;
        };
        let task_cost = |r: &Results| {
            r.series
                .iter()
                .find(|s| s.label == n.series)
                .and_then(|s| s.task_cost_s)
        };
        let replayed = |r: &Results| {
            r.series
                .iter()
                .find(|s| s.label == n.series)
                .and_then(|s| match &s.workload.distribution {
                    martelli_workload::SizeDistribution::Replay(replay) => Some(replay.hash.clone()),
                    _ => None,
                })
        };
        if replayed(baseline) != replayed(new) {
            let show = |h: Option<String>| {
                h.map_or_else(|| "no replay file".to_string(), |h| format!("replay file {h}"))
            };
            return Err(CompareError::OtherWorkload {
                point: name(n),
                what: format!("{} against {}", show(replayed(baseline)), show(replayed(new))),
            });
        }
        let same = same_workload(b, n, task_cost(baseline), task_cost(new))
            .map_err(|what| CompareError::OtherWorkload { point: name(n), what })?;
        if let Some(note) = same {
            notes.push(format!("{}: {note}", name(n)));
        }
        points.push(change(b, n, threshold));
    }
    for b in &base {
        if !next.iter().any(|n| key(n) == key(b)) {
            unmatched.push(format!("{} (only in the baseline)", name(b)));
        }
    }
    if points.is_empty() {
        return Err(CompareError::NothingShared);
    }
    Ok(Comparison {
        threshold,
        points,
        unmatched,
        notes,
    })
}

/// The same tasks: count, kernel iterations and checksum (when both have one). A series sized
/// by `task_cost` is calibrated afresh by every run, so the same `task_cost` is the same
/// workload even where the iterations (and so the checksum) differ: said in the returned note.
fn same_workload(
    b: &Point,
    n: &Point,
    b_cost: Option<f64>,
    n_cost: Option<f64>,
) -> Result<Option<String>, String> {
    if b.tasks != n.tasks {
        return Err(format!("{} tasks against {}", b.tasks, n.tasks));
    }
    if b_cost != n_cost {
        let show = |c: Option<f64>| c.map_or_else(|| "none".to_string(), |s| format!("{:.0}us", s * 1e6));
        return Err(format!("task_cost {} against {}", show(b_cost), show(n_cost)));
    }
    if b.iterations != n.iterations {
        return match b_cost {
            Some(cost) => Ok(Some(format!(
                "task_cost {:.0}us calibrated to {} and {} iterations a task: compared as one workload",
                cost * 1e6,
                b.iterations,
                n.iterations
            ))),
            None => Err(format!(
                "{} iterations a task against {}",
                b.iterations, n.iterations
            )),
        };
    }
    if !b.checksum.is_empty() && !n.checksum.is_empty() && b.checksum != n.checksum {
        return Err(format!("checksum {} against {}", b.checksum, n.checksum));
    }
    Ok(None)
}

fn change(b: &Point, n: &Point, threshold: f64) -> PointChange {
    let relative = |new: f64, old: f64| if old > 0.0 { (new - old) / old } else { 0.0 };
    let wall_change = relative(n.wall_s, b.wall_s);
    // A series calibrated afresh (task_cost) ran tasks that differ by its calibration's
    // error: that is noise too.
    let calibration = if b.iterations > 0 && n.iterations != b.iterations {
        (n.iterations as f64 / b.iterations as f64 - 1.0).abs()
    } else {
        0.0
    };
    let noise = b.spread().max(n.spread()) + calibration;
    // Outside the noise: the two runs' repeats do not overlap, and the medians differ by more
    // than either run's own spread.
    let apart = n.wall_s_min > b.wall_s_max || n.wall_s_max < b.wall_s_min;
    let change = if !apart || wall_change.abs() <= noise {
        Change::NoChange
    } else if wall_change > 0.0 {
        Change::Slower
    } else {
        Change::Faster
    };
    PointChange {
        series: n.series.clone(),
        tier: n.tier,
        cores: n.cores,
        baseline_wall_s: b.wall_s,
        new_wall_s: n.wall_s,
        wall_change,
        throughput_change: relative(n.tasks_per_s, b.tasks_per_s),
        noise,
        change,
        regression: change == Change::Slower && wall_change > threshold,
    }
}

/// The comparison as a table, a line per point, and a summary line.
pub fn render_comparison(c: &Comparison) -> String {
    let sw = c
        .points
        .iter()
        .map(|p| p.series.len())
        .chain([6])
        .max()
        .unwrap_or(6);
    let mut out = format!(
        "{:<sw$} {:<11} {:>5} {:>10} {:>10} {:>8} {:>11} {:>7}  {}\n",
        "series", "tier", "cores", "baseline", "new", "wall", "throughput", "noise", "verdict"
    );
    for p in &c.points {
        let verdict = match (p.change, p.regression) {
            (Change::Slower, true) => format!("SLOWER (beyond the {:.0}% threshold)", c.threshold * 100.0),
            (Change::Slower, false) => format!("slower (within the {:.0}% threshold)", c.threshold * 100.0),
            (Change::Faster, _) => "faster".into(),
            (Change::NoChange, _) => "no change".into(),
        };
        out.push_str(&format!(
            "{:<sw$} {:<11} {:>5} {:>9.4}s {:>9.4}s {:>+7.1}% {:>+10.1}% {:>6.1}%  {verdict}\n",
            p.series,
            p.tier,
            p.cores,
            p.baseline_wall_s,
            p.new_wall_s,
            p.wall_change * 100.0,
            p.throughput_change * 100.0,
            p.noise * 100.0,
        ));
    }
    let count = |change: Change| c.points.iter().filter(|p| p.change == change).count();
    out.push_str(&format!(
        "{} slower, {} faster, {} no change",
        count(Change::Slower),
        count(Change::Faster),
        count(Change::NoChange)
    ));
    let regressions = c.regressions().count();
    if regressions > 0 {
        out.push_str(&format!(
            "; {regressions} slower than the {:.0}% threshold",
            c.threshold * 100.0
        ));
    }
    out.push('\n');
    for u in &c.unmatched {
        out.push_str(&format!("not compared: {u}\n"));
    }
    // One note per distinct text after the point's name is enough for a reader.
    let mut seen = std::collections::BTreeSet::new();
    for note in &c.notes {
        let text = note.split_once(": ").map_or(note.as_str(), |(_, t)| t);
        if seen.insert(text.to_string()) {
            out.push_str(&format!("note: {note}\n"));
        }
    }
    out
}
