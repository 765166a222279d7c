//! What a verdict stands on, gathered from the results: a curve's points with the factor that
//! limits each (in words, from its breakdown), the fits, and the simulator's 9+ band for the
//! same series when it was predicted. The sentence itself is `martelli-model`'s.

use martelli_model::{Band, Basis, Evidence, MACHINE_CORES, Reached, UslFit};
use martelli_workload::{Kind, SizeDistribution, Workload};
use serde::{Deserialize, Serialize};

use crate::schema::{Point, Results, SeriesInfo};
use crate::tier::{CurveTier, PointTier};

/// The cluster the simulator predicted on, as the verdict names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulatedCluster {
    /// In words: "32 nodes x 8 cores".
    pub description: String,
    /// Total cores.
    pub cores: u64,
    /// Bandwidth of the coordinator's link, bytes per second.
    pub link_bytes_per_s: f64,
}

/// The words of the band hint: how to get the 9+ band predicted when no calibration was at
/// hand.
pub const BAND_HINT: &str = "for the 9+ band, run `martelli calibrate` once (it writes output/calibration.toml, \
                             which `run` then uses to predict it) or `martelli simulate CONFIG`";

/// The label of a series' predicted curve.
pub fn predicted_label(series: &str) -> String {
    format!("{series} (predicted)")
}

/// Below this share of its tasks a worker thread found no task queued, starving is not named.
const STARVED: f64 = 0.02;

impl Results {
    /// The evidence for the verdict of one curve of `series`: `fitted` are its points the fits
    /// used (1-core baseline included).
    pub(crate) fn evidence(
        &self,
        series: &SeriesInfo,
        tier: CurveTier,
        fitted: &[&Point],
        fits: (Option<UslFit>, Option<UslFit>),
        left_out: bool,
    ) -> Evidence {
        let workload = &series.workload;
        let mut past: Vec<&Point> = fitted.iter().copied().filter(|p| p.cores > 1).collect();
        past.sort_by_key(|p| p.cores);
        let reached = |p: &Point| Reached {
            cores: p.cores,
            speedup: p.speedup,
            efficiency: p.efficiency,
            throughput: p.tasks_per_s,
            limit: self.loss_words(p, workload),
        };
        let simulated = tier == CurveTier::Simulated;
        // The band: this curve's own points from 8 cores on when it is a prediction, else the
        // same series' prediction, when there is one.
        let band_points: Vec<&Point> = if simulated {
            past.clone()
        } else {
            let label = predicted_label(&series.label);
            let mut points: Vec<&Point> = self
                .points
                .iter()
                .filter(|p| p.predicted && p.series == label)
                .collect();
            points.sort_by_key(|p| p.cores);
            points
        };
        let band_points: Vec<Reached> = band_points
            .into_iter()
            .filter(|p| p.cores >= MACHINE_CORES)
            .map(reached)
            .collect();
        let band = band_points
            .iter()
            .any(|p| p.cores > MACHINE_CORES)
            .then(|| Band {
                cluster: self
                    .simulated_cluster
                    .as_ref()
                    .map_or_else(|| "the simulated cluster".into(), |c| c.description.clone()),
                points: band_points,
            });
        let waits = self.mostly_waits(series);
        Evidence {
            basis: if simulated {
                Basis::Simulated
            } else {
                Basis::Measured
            },
            points: past.into_iter().map(reached).collect(),
            usl: fits.0,
            amdahl: fits.1,
            band_hint: (band.is_none() && !simulated).then(|| BAND_HINT.to_string()),
            band,
            waits,
            machine_cores: (left_out && workload.kind.computes()).then_some(self.machine.logical_cores),
        }
    }

    /// (wait, compute) per task in seconds, when the series' tasks wait ten times longer than
    /// they compute (the compute from its 1-core point's task time).
    fn mostly_waits(&self, series: &SeriesInfo) -> Option<(f64, f64)> {
        let workload = &series.workload;
        if workload.io_wait_ns == 0 {
            return None;
        }
        let wait = workload.io_wait_ns as f64 / 1e9;
        let compute = if workload.kind == Kind::Io {
            0.0
        } else {
            let one = self
                .points
                .iter()
                .find(|p| p.cores == 1 && p.series == series.label)?;
            (one.mean_task_us / 1e6 - wait).max(0.0)
        };
        (wait >= 10.0 * compute).then_some((wait, compute))
    }

    /// What loses the most of `p`'s efficiency, in words, from its breakdown.
    pub fn loss_words(&self, p: &Point, workload: &Workload) -> Option<String> {
        let b = p.breakdown?;
        let (factor, value) = b.limiting();
        let runs = (p.tasks * p.repeats.max(1) as u64).max(1) as f64;
        let starved = p
            .distributed
            .map_or(0.0, |w| w.starved_takes as f64 / runs);
        let starving = p.tier == PointTier::Distributed && starved > STARVED;
        let refills = format!(
            "the workers' threads waiting for refills (no task queued for {:.0}% of tasks)",
            starved * 100.0
        );
        let words = match factor {
            "load_balance" if workload.tasks < 4 * p.cores as u64 => format!(
                "too few tasks for the threads ({} tasks on {} cores: the last ones run alone)",
                workload.tasks, p.cores
            ),
            "load_balance" if starving => refills,
            "load_balance" if workload.distribution != SizeDistribution::Fixed => "uneven task sizes".into(),
            "load_balance" => "uneven work across threads".into(),
            "communication" => {
                let serial = p.useful.map_or(0.0, |u| u.serial_s);
                if serial > 0.0 && serial / p.wall_s >= (1.0 - b.communication) / 2.0 {
                    "the serial phase".into()
                } else if starving {
                    refills
                } else if p.tier == PointTier::Distributed {
                    "the coordinator's dispatch and the results' way back".into()
                } else {
                    "handing out tasks and the run's start and end".into()
                }
            }
            // Communication split: each part that loses much, the larger loss first.
            "serialisation" | "transfer" => {
                let mut parts = [
                    ("serialisation", b.serialisation.unwrap_or(1.0)),
                    ("transfer", b.transfer.unwrap_or(1.0)),
                ];
                parts.sort_by(|a, b| a.1.total_cmp(&b.1));
                let said: Vec<String> = parts
                    .iter()
                    .enumerate()
                    .filter(|(i, (_, v))| *i == 0 || *v < 0.8)
                    .map(|(_, (name, v))| {
                        let what = if *name == "transfer" {
                            self.network_words(p)
                        } else if starving {
                            format!("the coordinator's work per task and message, which left {refills}")
                        } else {
                            "the coordinator's work per task and message (dispatch, encoding payloads)".into()
                        };
                        format!("{what} ({name} {v:.2})")
                    })
                    .collect();
                return Some(said.join(", then "));
            }
            _ if p.oversubscribed && workload.kind.computes() => format!(
                "more threads than this machine's {} cores",
                self.machine.logical_cores
            ),
            _ if workload.kind == Kind::Memory => "tasks got slower: memory".into(),
            _ => "tasks got slower: contention, clock or caches".into(),
        };
        Some(format!("{words} ({} {value:.2})", crate::breakdown::factor_title(factor)))
    }

    /// What the network costs `p`, in words: a full link (from the bytes it sent and the
    /// simulated cluster's bandwidth), else its latency.
    fn network_words(&self, p: &Point) -> String {
        let per_run = p.distributed.map_or(0.0, |w| w.bytes_sent as f64) / p.repeats.max(1) as f64;
        let used = self
            .simulated_cluster
            .as_ref()
            .filter(|c| c.link_bytes_per_s > 0.0 && p.wall_s > 0.0)
            .map(|c| per_run / p.wall_s / c.link_bytes_per_s);
        match used {
            Some(u) if u >= 0.7 => format!(
                "the coordinator's link is full ({:.0}% of its bandwidth)",
                u.min(1.0) * 100.0
            ),
            _ => "the network's latency".into(),
        }
    }
}
