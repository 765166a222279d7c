//! METG, the minimum effective task granularity (Task Bench, SC20): for each tier, the
//! smallest task at which it still reaches 50% efficiency at the sweep's largest core count.
//! Efficiency here is useful work over what the cores could have done in the wall time:
//! tasks x task size / (wall x cores), the task size being the series' `task_cost` (or, without
//! one, the single tier's time per task). Needs a sweep whose series differ in task size.

use crate::tier::Tier;
use serde::{Deserialize, Serialize};

use crate::{Point, Results, human_seconds};

/// The efficiency the METG is defined at.
pub const METG_EFFICIENCY: f64 = 0.5;

/// One series' point on a tier's efficiency curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetgPoint {
    /// The series.
    pub series: String,
    /// Its task size, seconds.
    pub task_s: f64,
    /// tasks x task size / (wall x cores).
    pub efficiency: f64,
}

/// A tier's efficiency against task size at one core count, and where it crosses 50%.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metg {
    /// The tier.
    pub tier: Tier,
    /// The core count (the largest this tier ran every series at).
    pub cores: usize,
    /// One point per series, smallest task first.
    pub curve: Vec<MetgPoint>,
    /// The smallest task size with 50% efficiency, seconds, interpolated in log size between
    /// the series around the crossing; `None` when no size reached it.
    pub metg_s: Option<f64>,
    /// Already the smallest size measured reached 50%: the METG is at most `metg_s`.
    pub below_range: bool,
}

impl Results {
    /// Computes each tier's METG when the measured series differ in task size (else leaves
    /// `metg` empty).
    pub fn fill_metg(&mut self) {
        self.metg = metg(self);
    }
}

/// The task size of `series`: its `task_cost`, else the single tier's time per task. `None`
/// for a replay: its series differ in their files, not in a size (a replay's tasks are many
/// sizes).
fn task_size(r: &Results, series: &str, measured: &[&Point]) -> Option<f64> {
    let info = r.series.iter().find(|s| s.label == series)?;
    if matches!(
        info.workload.distribution,
        martelli_workload::SizeDistribution::Replay(_)
    ) {
        return None;
    }
    info.task_cost_s.or_else(|| {
        measured
            .iter()
            .find(|p| p.series == series && p.tier == Tier::Single && p.cores == 1 && p.tasks > 0)
            .map(|p| p.wall_s / p.tasks as f64)
    })
}

fn metg(r: &Results) -> Vec<Metg> {
    let measured: Vec<&Point> = r.points.iter().filter(|p| !p.predicted).collect();
    let sizes: Vec<(String, f64)> = r
        .series
        .iter()
        .filter_map(|s| Some((s.label.clone(), task_size(r, &s.label, &measured)?)))
        .filter(|(_, size)| *size > 0.0)
        .collect();
    let distinct = {
        let mut all: Vec<f64> = sizes.iter().map(|(_, s)| *s).collect();
        all.sort_by(f64::total_cmp);
        all.dedup();
        all.len()
    };
    if distinct < 2 {
        return Vec::new();
    }
    let mut tiers: Vec<Tier> = measured.iter().map(|p| p.tier).collect();
    tiers.dedup();
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for tier in tiers {
        if seen.contains(&tier) {
            continue;
        }
        seen.push(tier);
        // The largest core count at which this tier ran every sized series.
        let at = |cores: usize| -> Vec<&Point> {
            sizes
                .iter()
                .filter_map(|(label, _)| {
                    measured
                        .iter()
                        .find(|p| p.tier == tier && p.cores == cores && &p.series == label)
                        .copied()
                })
                .collect()
        };
        let mut cores: Vec<usize> = measured
            .iter()
            .filter(|p| p.tier == tier)
            .map(|p| p.cores)
            .collect();
        cores.sort_unstable();
        cores.dedup();
        let Some(&cores) = cores.iter().rev().find(|&&c| at(c).len() == sizes.len()) else {
            continue;
        };
        let mut curve: Vec<MetgPoint> = at(cores)
            .into_iter()
            .filter_map(|p| {
                let (_, size) = sizes.iter().find(|(label, _)| *label == p.series)?;
                let capacity = p.wall_s * cores as f64;
                (capacity > 0.0).then(|| MetgPoint {
                    series: p.series.clone(),
                    task_s: *size,
                    efficiency: p.tasks as f64 * size / capacity,
                })
            })
            .collect();
        curve.sort_by(|a, b| a.task_s.total_cmp(&b.task_s));
        let (metg_s, below_range) = crossing(&curve);
        out.push(Metg {
            tier,
            cores,
            curve,
            metg_s,
            below_range,
        });
    }
    out
}

/// Where a curve (smallest task first) first reaches 50%: interpolated in log size.
fn crossing(curve: &[MetgPoint]) -> (Option<f64>, bool) {
    let first = curve.iter().position(|p| p.efficiency >= METG_EFFICIENCY);
    match first {
        None => (None, false),
        Some(0) => (Some(curve[0].task_s), true),
        Some(i) => {
            let (a, b) = (&curve[i - 1], &curve[i]);
            let t = (METG_EFFICIENCY - a.efficiency) / (b.efficiency - a.efficiency);
            let log = a.task_s.ln() + t * (b.task_s.ln() - a.task_s.ln());
            (Some(log.exp()), false)
        }
    }
}

/// The METG line printed under the verdict.
pub fn metg_line(metg: &[Metg]) -> Option<String> {
    if metg.is_empty() {
        return None;
    }
    let parts: Vec<String> = metg
        .iter()
        .map(|m| {
            let at = format!(
                "{} at {} core{}",
                m.tier,
                m.cores,
                if m.cores == 1 { "" } else { "s" }
            );
            match (m.metg_s, m.below_range) {
                (Some(s), false) => format!("{at} {}", human_seconds(s)),
                (Some(s), true) => format!("{at} at most {} (the smallest task measured)", human_seconds(s)),
                (None, _) => format!(
                    "{at} above {} (never 50% efficient)",
                    human_seconds(m.curve.last().map_or(0.0, |p| p.task_s))
                ),
            }
        })
        .collect();
    Some(format!(
        "METG (the smallest task that keeps 50% efficiency): {}",
        parts.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(task_s: f64, efficiency: f64) -> MetgPoint {
        MetgPoint {
            series: String::new(),
            task_s,
            efficiency,
        }
    }

    #[test]
    fn the_crossing_is_interpolated_in_log_size_and_edges_are_said() {
        let curve = [point(1e-6, 0.1), point(1e-4, 0.9)];
        let (metg, below) = crossing(&curve);
        // Halfway in efficiency: halfway in log size between 1us and 100us.
        assert!((metg.unwrap() - 1e-5).abs() < 1e-9, "{metg:?}");
        assert!(!below);
        assert_eq!(
            crossing(&[point(1e-6, 0.6), point(1e-5, 0.9)]),
            (Some(1e-6), true)
        );
        assert_eq!(crossing(&[point(1e-6, 0.1), point(1e-5, 0.2)]), (None, false));
    }
}
