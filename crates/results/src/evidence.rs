//! What a verdict stands on, gathered from the results: a curve's points with the factor that
//! limits each (in words, from its breakdown), the fits, and the simulator's 9+ band for the
//! same series when it was predicted. The sentence itself is `martelli-model`'s.

use martelli_model::{Band, Basis, Evidence, MACHINE_CORES, Reached, UslFit};
use martelli_workload::{Kind, SizeDistribution, Workload};
use serde::{Deserialize, Serialize};

use crate::schema::{Point, Results, SeriesInfo};
use crate::tier::{CurveTier, Tier};

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

/// The words of the band hint for a series the simulator does not model.
pub const UNMODELLED: &str = "no 9+ band for this series: the simulator models the default executor \
                              (threads, futures, no GIL), not its [executor] options";

/// The label of a series' predicted curve.
pub fn predicted_label(series: &str) -> String {
    format!("{series} (predicted)")
}

/// Below this share of its threads' time inside tasks spent on a core, a compute-bound point
/// did not have its cores (the busy-machine warning's rule, and the verdict's).
pub const BUSY_SHARE: f64 = 0.75;

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
            limit: self.loss_words(p, series),
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
        let band = band_points.iter().any(|p| p.cores > MACHINE_CORES).then(|| Band {
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
            // How to get the band where it is missing: a calibration, or (with one) an
            // executor the simulator models.
            band_hint: (band.is_none() && !simulated).then(|| match &self.calibration {
                None => BAND_HINT.to_string(),
                Some(_) => UNMODELLED.to_string(),
            }),
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
    pub fn loss_words(&self, p: &Point, series: &SeriesInfo) -> Option<String> {
        let workload = &series.workload;
        let b = p.breakdown?;
        let (factor, value) = b.limiting();
        let runs = (p.tasks * p.repeats.max(1) as u64).max(1) as f64;
        let starved = p.distributed.map_or(0.0, |w| w.starved_takes as f64 / runs);
        let starving = p.tier == Tier::Distributed && starved > STARVED;
        let refills = format!(
            "the workers' threads waiting for refills (no task queued for {:.0}% of tasks)",
            starved * 100.0
        );
        // A serial phase that loses as much as the rest of communication is named as such,
        // whichever part of communication is smallest.
        let serial = p.useful.map_or(0.0, |u| u.serial_s);
        let serial_phase = serial > 0.0 && serial / p.wall_s >= (1.0 - b.communication) / 2.0;
        let words = match factor {
            "communication" | "serialisation" | "transfer" if serial_phase => {
                return Some(format!("the serial phase (communication {:.2})", b.communication));
            }
            "load_balance" if workload.tasks < 4 * p.cores as u64 => format!(
                "too few tasks for the threads ({} tasks on {} cores: the last ones run alone)",
                workload.tasks, p.cores
            ),
            "load_balance" if starving => refills,
            "load_balance" if workload.distribution != SizeDistribution::Fixed => "uneven task sizes".into(),
            "load_balance" => "uneven work across threads".into(),
            "communication" => {
                if starving {
                    refills
                } else if p.tier == Tier::Distributed {
                    "the coordinator's dispatch and the results' way back".into()
                } else if workload.payload_bytes > 0 {
                    "handing out tasks and their payloads, and the run's start and end".into()
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
            _ if series.gil => "tasks got slower: they waited for the interpreter lock (GIL)".into(),
            _ if self.lacked_cores(p, workload) => {
                "tasks got slower: another process had the cores (the machine is busy)".into()
            }
            _ if workload.kind == Kind::Memory => "tasks got slower: memory".into(),
            _ => "tasks got slower: contention (a lock, memory, caches) or clock".into(),
        };
        Some(format!(
            "{words} ({} {value:.2})",
            crate::breakdown::factor_title(factor)
        ))
    }

    /// Whether a measured point of compute on this machine ran on a core for under 75% of
    /// the time its threads were inside tasks (the busy-machine warning's rule).
    fn lacked_cores(&self, p: &Point, workload: &Workload) -> bool {
        let local = matches!(p.tier, Tier::Single | Tier::Multi);
        let total = p.useful.map_or(0.0, |u| u.total_s());
        local && !p.predicted && workload.io_wait_ns == 0 && total > 0.0 && p.cpu_s < BUSY_SHARE * total
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Results of one series of `kind` (`io_wait_ns` per task) measured on a machine of
    /// `logical` cores at `points` (cores, speed-up), the 1-core point first, fitted.
    fn measured(kind: &str, io_wait_ns: u64, logical: usize, points: &[(usize, f64)]) -> Results {
        let wall1 = 8.0;
        let points: Vec<serde_json::Value> = points
            .iter()
            .map(|&(cores, speedup)| {
                let wall = wall1 / speedup;
                json!({
                    "series": "s", "tier": if cores == 1 { "single" } else { "multi" }, "cores": cores,
                    "tasks": 8000, "iterations": 1, "repeats": 1, "wall_s": wall, "wall_s_min": wall,
                    "wall_s_max": wall, "wall_s_repeats": [wall], "tasks_per_s": 8000.0 / wall,
                    "speedup": 0.0, "efficiency": 0.0,
                    "latency_us": {"p50": 1000.0, "p95": 1000.0, "p99": 1000.0},
                    "mean_task_us": 1000.0 + io_wait_ns as f64 / 1e3, "first_result_s": 0.1,
                    "cpu_s": wall, "tasks_completed": 8000, "checksum": "1",
                    "oversubscribed": cores > logical,
                    "useful": {"tasks_s": wall1 * 1.02, "max_lane_s": wall1 * 1.02 / cores as f64 * 1.01,
                               "lanes": cores, "serial_s": 0.0}
                })
            })
            .collect();
        let mut results: Results = serde_json::from_value(json!({
            "schema_version": 1, "martelli_version": "0", "started_at": "now", "config_file": "c.toml",
            "config": {}, "scaling": "strong", "warnings": [],
            "machine": {"hostname": "h", "logical_cores": logical, "cpu_model": "x", "os": "o",
                        "kernel": "k", "arch": "a"},
            "series": [{"label": "s", "task_cost_s": null, "workload": {
                "name": "s", "seed": 1, "tasks": 8000, "kind": kind, "iterations": 1,
                "io_wait_ns": io_wait_ns, "distribution": "fixed", "serial_fraction": 0.0,
                "serial_basis_tasks": 8000, "payload_bytes": 0, "working_set": 0}}],
            "points": points,
        }))
        .unwrap();
        results.fill_speedups(false);
        results.fill_fits(false);
        results
    }

    #[test]
    fn the_verdicts_of_the_16_core_figures_claim_nothing_past_twice_the_cores_seen() {
        // The multi tier's sweep on a 16-core Xeon: 15.73x at 16 cores.
        let cpu = measured(
            "cpu",
            0,
            16,
            &[
                (1, 1.0),
                (2, 1.99),
                (4, 3.96),
                (8, 7.39),
                (12, 10.94),
                (16, 15.73),
            ],
        );
        assert!(
            cpu.verdict.contains("measured up to 16 cores: 15.73x"),
            "{}",
            cpu.verdict
        );
        assert!(!cpu.verdict.contains("approaches"), "{}", cpu.verdict);
        martelli_model::claims_are_bounded(&cpu.verdict, 16).unwrap();
        // The quickstart on the same machine: 1.93x and 3.82x on 2 and 4 cores.
        let quick = measured("cpu", 0, 16, &[(1, 1.0), (2, 1.93), (4, 3.82)]);
        martelli_model::claims_are_bounded(&quick.verdict, 4).unwrap();
        assert!(quick.verdict.contains("martelli calibrate"), "{}", quick.verdict);
        // I/O-bound, 5 ms waits, threads past the cores: waits need concurrency.
        let io = measured(
            "io",
            5_000_000,
            16,
            &[(1, 1.0), (8, 7.9), (16, 15.6), (64, 60.0), (256, 220.0)],
        );
        assert!(
            io.verdict.contains("waits need concurrency, not cores"),
            "{}",
            io.verdict
        );
        martelli_model::claims_are_bounded(&io.verdict, 256).unwrap();
        // Lesson 1 with the GIL: no speed-up at all; never "-0%".
        let gil = measured("cpu", 0, 16, &[(1, 1.0), (2, 0.998), (4, 0.997), (8, 0.996)]);
        assert!(gil.verdict.contains("one core is enough"), "{}", gil.verdict);
        // Threads that wait for the interpreter lock use less CPU than their time inside
        // tasks: that is the lock, not a busy machine.
        let mut locked = gil.clone();
        locked.series[0].gil = true;
        for p in &mut locked.points {
            p.cpu_s = p.wall_s;
            p.useful = Some(crate::Useful::of(&vec![(p.wall_s * 1e9) as u64; p.cores], 0));
        }
        locked.fill_speedups(false);
        locked.fill_fits(false);
        assert!(locked.verdict.contains("interpreter lock"), "{}", locked.verdict);
        locked.series[0].gil = false;
        locked.fill_fits(false);
        assert!(
            locked.verdict.contains("the machine is busy"),
            "{}",
            locked.verdict
        );
        martelli_model::claims_are_bounded(&gil.verdict, 8).unwrap();
    }
}
