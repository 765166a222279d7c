//! A calibrated discrete-event model of martelli's three tiers, for the core counts a machine
//! cannot measure.
//!
//! The model runs the same workload definition the real tiers run: task count, task sizes
//! (iterations times the calibrated cost of one iteration of the kernel), serial fraction,
//! payload bytes and I/O waits. The single tier is a loop on one core, the multi tier a greedy
//! schedule over a pool with the pool's hand-off cost, the distributed tier a coordinator, links
//! and workers in an event queue (see [`engine`]). What it predicts is a point of the results
//! schema marked `predicted: true`, so charts draw it beside measured points.
#![deny(missing_docs)]

mod cluster;
pub mod distributed;
pub mod engine;
#[cfg(test)]
mod tests;

use std::time::Duration;

use martelli_config::{Config, Scaling, Series, Tier};
use martelli_results::{Point, Sample, SeriesInfo, SimulatedCluster};
use martelli_workload::{SizeDistribution, Workload};

pub use cluster::{Cluster, DEFAULT_CORES_PER_NODE};
pub use distributed::Coordinator;
use engine::{Costs, Run};
pub use martelli_calibration::{
    CALIBRATION_VERSION, Calibration, Dilation, KernelCosts, MemoryCost, MultiCosts, NetworkCosts, WaitCpu,
    example as example_calibration,
};

/// Why a prediction cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The sweep asks for more cores than the cluster has.
    #[error(
        "{cores} cores do not fit the simulated cluster of {nodes} node(s) x {cores_per_node} cores; \
         raise cluster.nodes or cluster.cores_per_node, or lower --cores"
    )]
    TooManyCores {
        /// Cores asked for.
        cores: usize,
        /// Nodes in the cluster.
        nodes: u32,
        /// Cores per node.
        cores_per_node: u32,
    },
}

/// The size of the default cluster's 9+ band: 32 nodes of [`DEFAULT_CORES_PER_NODE`] cores.
pub const DEFAULT_BAND_CORES: usize = 256;

/// The core counts `simulate` predicts when not told: the sweep's, plus every power of two
/// past them up to the cluster's total cores (`nodes x cores_per_node` of the config's
/// `[cluster]`, or [`DEFAULT_BAND_CORES`] when it does not fix the node count), so the 9+
/// band is always in the prediction.
pub fn band_cores(config: &Config) -> Vec<usize> {
    let spec = config.cluster.as_ref();
    let per_node = spec
        .and_then(|s| s.cores_per_node)
        .unwrap_or(DEFAULT_CORES_PER_NODE) as usize;
    let total = match spec.and_then(|s| s.nodes) {
        Some(nodes) => nodes as usize * per_node,
        None => DEFAULT_BAND_CORES.max(per_node),
    };
    let powers = std::iter::successors(Some(1usize), |&n| n.checked_mul(2)).take_while(|&n| n <= total);
    let mut cores: Vec<usize> = config.sweep.cores.iter().copied().chain(powers).collect();
    // A cluster whose total is no power of two is predicted at its full size too.
    cores.push(total);
    martelli_config::normalise_cores(cores.into_iter())
}

/// Checks that a cluster of `spec` can hold `max_cores` (only the node count and cores per
/// node matter, so this needs no calibration and can run before anything is measured).
pub fn check_fits(spec: Option<&martelli_config::ClusterSpec>, max_cores: usize) -> Result<(), SimError> {
    let cores_per_node = spec
        .and_then(|s| s.cores_per_node)
        .unwrap_or(DEFAULT_CORES_PER_NODE);
    match spec.and_then(|s| s.nodes) {
        Some(nodes) if max_cores as u64 > u64::from(nodes) * u64::from(cores_per_node) => {
            Err(SimError::TooManyCores {
                cores: max_cores,
                nodes,
                cores_per_node,
            })
        }
        _ => Ok(()),
    }
}

/// The tier a point of `cores` cores runs on in the simulated cluster: one core is the single
/// tier, a node's worth the multi tier, more the distributed tier (every point past one core,
/// when the config itself asks for the distributed tier).
pub fn tier_for(cores: usize, config_tier: Option<Tier>, cluster: &Cluster) -> Tier {
    if cores <= 1 {
        Tier::Single
    } else if config_tier == Some(Tier::Distributed) || cores > cluster.cores_per_node as usize {
        Tier::Distributed
    } else {
        Tier::Multi
    }
}

/// The workload of `series` as this calibration would run it: a `task_cost` becomes the
/// iteration count the calibrated kernel needs for it.
pub fn resolve_workload(series: &Series, calibration: &Calibration) -> Workload {
    let mut workload = series.workload.clone();
    if let Some(target) = series.task_cost {
        // A replay's recorded compute is the kernel's alone: its payload comes on top.
        let probe = match workload.distribution {
            SizeDistribution::Replay(_) => Workload {
                payload_bytes: 0,
                distribution: SizeDistribution::Fixed,
                ..workload.clone()
            },
            _ => workload.clone(),
        };
        workload.iterations = Costs::new(&probe, calibration).iterations_for(target.as_nanos() as f64);
    }
    workload
}

/// Predicts one run of `workload` on `tier` at `cores` cores.
pub fn predict(
    workload: &Workload,
    tier: Tier,
    cores: usize,
    cluster: &Cluster,
    calibration: &Calibration,
) -> Result<Run, SimError> {
    let costs = Costs::new(workload, calibration);
    Ok(match tier {
        Tier::Single if cores <= 1 => engine::single(workload, &costs),
        Tier::Distributed => {
            let spread = cluster.spread(cores).ok_or(SimError::TooManyCores {
                cores,
                nodes: cluster.nodes,
                cores_per_node: cluster.cores_per_node,
            })?;
            distributed::distributed(workload, &costs, calibration, cluster, &spread)
        }
        _ => {
            // The node's cores, or the one machine's when the config says all share it.
            let node_cores = cluster.colocated_cores.unwrap_or(cluster.cores_per_node) as usize;
            engine::multi(
                workload,
                &costs,
                calibration,
                cores,
                node_cores,
                cluster.memory_contention,
            )
        }
    })
}

/// What one wait must take from the cores for the model to run `probe` (tasks that only wait)
/// on a pool of `entry.threads` threads sharing `cores` cores in the wall time the real probe
/// took (`entry.probe_wall_ns`). The process's own CPU (`entry.ns_per_wait`) is the floor: on a
/// machine with more threads than cores a woken thread also waits for the kernel's and the
/// hypervisor's work that no process is charged for, and that only the wall time shows. The
/// floor is returned where no wall time was recorded or the model is already as slow.
pub fn fit_wait_cost(entry: &WaitCpu, probe: &Workload, calibration: &Calibration, cores: usize) -> f64 {
    fit_to_wall(entry, probe.tasks, cores, |ns_per_wait| {
        let mut c = calibration.clone();
        c.multi.wait_cpu = vec![WaitCpu {
            ns_per_wait,
            ..*entry
        }];
        let costs = Costs::new(probe, &c);
        engine::multi(probe, &costs, &c, entry.threads as usize, cores, 0.0).wall_ns
    })
}

/// What one wait must take from the cores of a worker for the model to run `probe` on one
/// worker of `entry.threads` threads, spawned on this machine's `cores` with the coordinator
/// (as `martelli calibrate` runs it), in the wall time the real probe took. As
/// [`fit_wait_cost`], for the worker's pool: besides the wake-ups no process is charged for,
/// a saturated worker's threads also sleep and wake when their queue runs dry while the
/// refills' messages wait for a core, which only the wall time shows.
pub fn fit_worker_wait_cost(
    entry: &WaitCpu,
    probe: &Workload,
    calibration: &Calibration,
    cores: usize,
) -> f64 {
    let threads = entry.threads as usize;
    let spec = martelli_config::ClusterSpec {
        nodes: Some(1),
        cores_per_node: Some(entry.threads),
        colocated_cores: Some(cores as u32),
        ..Default::default()
    };
    fit_to_wall(entry, probe.tasks, cores, |ns_per_wait| {
        let mut c = calibration.clone();
        c.distributed.worker_wait_cpu = vec![WaitCpu {
            ns_per_wait,
            ..*entry
        }];
        let cluster = Cluster::resolve(Some(&spec), &c, threads);
        let costs = Costs::new(probe, &c);
        distributed::distributed(probe, &costs, &c, &cluster, &[threads]).wall_ns
    })
}

/// How much slower compute between waits must run on a pool of `entry.threads` for the model
/// to run `probe` (tasks that compute, then wait) on this machine's `cores` in the wall time
/// the real probe took (`entry.probe_wall_ns`), with the pool's cost of a wait as fitted. At
/// least 0; 0 where no wall time was recorded, where the probe's compute does not fill the
/// cores (its wall time is its waits', whatever the compute costs), or where the model is
/// already as slow.
pub fn fit_compute_dilation(
    entry: &Dilation,
    probe: &Workload,
    calibration: &Calibration,
    cores: usize,
) -> f64 {
    let costs = Costs::new(probe, calibration);
    let task = probe.task(0);
    let compute = costs.compute_ns(&task, true).max(1.0);
    let busy = entry.threads as f64 * compute / (compute + costs.wait_ns(&task));
    if entry.probe_wall_ns <= 0.0 || busy <= cores as f64 {
        return 0.0;
    }
    // No task can take more than all the cores for the whole probe.
    let most = entry.probe_wall_ns * cores as f64 / probe.tasks.max(1) as f64 / compute;
    bisect(0.0, most, 1e-4, entry.probe_wall_ns, |factor| {
        let mut c = calibration.clone();
        c.multi.compute_dilation = vec![Dilation { factor, ..*entry }];
        engine::multi(probe, &costs, &c, entry.threads as usize, cores, 0.0).wall_ns
    })
}

/// The cost of a wait, at least `entry.ns_per_wait`, at which `wall_at` reaches the probe's
/// measured wall time (`tasks` tasks).
fn fit_to_wall(entry: &WaitCpu, tasks: u64, cores: usize, wall_at: impl Fn(f64) -> f64) -> f64 {
    let floor = entry.ns_per_wait.max(0.0);
    if entry.probe_wall_ns <= 0.0 || entry.threads as usize <= cores {
        return floor;
    }
    // No wait can cost more than all the cores for the whole probe.
    let most = entry.probe_wall_ns * cores as f64 / tasks.max(1) as f64;
    bisect(floor, most, 1.0, entry.probe_wall_ns, wall_at)
}

/// The least `x` in `lo..=hi` (to within `step`) at which `wall_at(x)` reaches `wall`, by
/// bisection (the wall time only grows with `x`): `lo` when it already does, `hi` when even
/// `hi` does not.
fn bisect(mut lo: f64, mut hi: f64, step: f64, wall: f64, wall_at: impl Fn(f64) -> f64) -> f64 {
    if wall_at(lo) >= wall {
        return lo;
    }
    if wall_at(hi) < wall {
        return hi;
    }
    while hi - lo > step {
        let mid = 0.5 * (lo + hi);
        if wall_at(mid) < wall {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// A simulated run as a [`Sample`], so that it is summarised like a measured one. A
/// prediction computes no digests: its checksum is 0.
pub fn sample(run: Run) -> Sample {
    let ns = |v: f64| Duration::from_nanos(v.max(0.0).round() as u64);
    Sample {
        wall: ns(run.wall_ns),
        cpu: ns(run.busy_ns),
        first_result: ns(run.first_result_ns),
        latency_ns: run.latency_ns,
        tasks_completed: run.tasks,
        checksum: 0,
        distributed: run.wire,
        peak_rss_bytes: None,
        trace: None,
        lanes_ns: run.lanes_ns.iter().map(|&v| v.max(0.0).round() as u64).collect(),
        serial_ns: run.serial_ns.max(0.0).round() as u64,
    }
}

pub use martelli_results::predicted_label;

/// A predicted point of the results schema: `predicted: true`, no checksum.
pub fn point(series: &str, tier: Tier, cores: usize, workload: &Workload, run: Run) -> Point {
    let mut point = Point::from_samples(series, tier, cores, workload, &[sample(run)]);
    point.predicted = true;
    point.checksum = String::new();
    point
}

/// What [`predict_config`] predicted.
pub struct Prediction {
    /// The series, labelled `"... (predicted)"`.
    pub series: Vec<SeriesInfo>,
    /// Their points.
    pub points: Vec<Point>,
    /// Events simulated (the simulator's own work).
    pub events: u64,
    /// The cluster predicted on, as results name it.
    pub cluster: SimulatedCluster,
}

/// The cluster of `config` in words, for the verdict.
fn describe(cluster: &Cluster, config: &Config) -> SimulatedCluster {
    let given = config.cluster.as_ref().and_then(|c| c.nodes).is_some();
    let mut description = format!("{} nodes x {} cores", cluster.nodes, cluster.cores_per_node);
    if !given {
        description = format!("the default cluster of {description}");
    }
    if let Some(cores) = cluster.colocated_cores {
        description.push_str(&format!(", all on one machine of {cores} cores"));
    }
    SimulatedCluster {
        description,
        cores: cluster.cores(),
        link_bytes_per_s: cluster.network.bandwidth_mb_per_s * 1e6,
    }
}

/// How much of a distributed run's wall time an ideal network (no latency, unlimited
/// bandwidth) would leave: its predicted wall time over `run`'s, as Dimemas replays an MPI
/// trace on an ideal network.
fn transfer(
    workload: &Workload,
    cores: usize,
    cluster: &Cluster,
    calibration: &Calibration,
    run: &Run,
) -> Option<f64> {
    let mut ideal = cluster.clone();
    ideal.network.latency_us = 0.0;
    ideal.network.bandwidth_mb_per_s = f64::INFINITY;
    let fast = predict(workload, Tier::Distributed, cores, &ideal, calibration).ok()?;
    (run.wall_ns > 0.0).then(|| (fast.wall_ns / run.wall_ns).min(1.0))
}

/// The transfer factor of a measured distributed point of `config`: the point modelled as it
/// ran (spawned workers: their threads on this machine's `logical` cores; listed or joined
/// workers: the config's `[cluster]` with as many nodes as workers), predicted once with the
/// calibrated network and once with an ideal one. `None` when the point cannot be modelled.
pub fn measured_transfer(
    config: &Config,
    workload: &Workload,
    point: &Point,
    calibration: &Calibration,
    logical: usize,
) -> Option<f64> {
    let workers = point.distributed.map_or(1, |w| w.workers.max(1)) as usize;
    let spec = match config.distributed.as_ref().map(|d| &d.workers) {
        Some(martelli_config::WorkerSource::Spawn { workers, threads }) => martelli_config::ClusterSpec {
            nodes: Some(*workers),
            cores_per_node: Some(threads.unwrap_or(logical as u32)),
            colocated_cores: Some(logical as u32),
            ..config.cluster.clone().unwrap_or_default()
        },
        _ => martelli_config::ClusterSpec {
            nodes: Some(workers as u32),
            cores_per_node: Some(point.cores.div_ceil(workers) as u32),
            ..config.cluster.clone().unwrap_or_default()
        },
    };
    let mut cluster = Cluster::resolve(Some(&spec), calibration, point.cores);
    if let Some(d) = &config.distributed {
        cluster.max_message_bytes = d.max_message_bytes as usize;
        cluster.policy = d.policy;
    }
    let workload = workload.with_tasks(point.tasks);
    let run = predict(&workload, Tier::Distributed, point.cores, &cluster, calibration).ok()?;
    transfer(&workload, point.cores, &cluster, calibration, &run)
}

/// Every series of `config` predicted at every core count of `cores`, on the config's
/// `[cluster]` (or the default one). Distributed points carry their transfer factor: the same
/// point predicted again on an ideal network.
pub fn predict_config(
    config: &Config,
    cores: &[usize],
    calibration: &Calibration,
) -> Result<Prediction, SimError> {
    let max = cores.iter().copied().max().unwrap_or(1);
    let cluster = config_cluster(config, calibration, max)?;
    let (mut infos, mut points, mut events) = (Vec::new(), Vec::new(), 0);
    for series in &config.series {
        let label = predicted_label(&series.label);
        let workload = resolve_workload(series, calibration);
        for &n in cores {
            let w = match config.sweep.scaling {
                Scaling::Strong => workload.clone(),
                Scaling::Weak => workload.with_tasks(workload.tasks * n as u64),
            };
            let tier = tier_for(n, config.tier, &cluster);
            let run = predict(&w, tier, n, &cluster, calibration)?;
            events += run.events;
            let ratio = (tier == Tier::Distributed)
                .then(|| transfer(&w, n, &cluster, calibration, &run))
                .flatten();
            let mut p = point(&label, tier, n, &w, run);
            if let Some(useful) = &mut p.useful {
                useful.transfer = ratio;
            }
            points.push(p);
        }
        infos.push(SeriesInfo {
            label,
            task_cost_s: series.task_cost.map(|d| d.as_secs_f64()),
            workload,
            // The model runs no interpreter lock.
            gil: false,
        });
    }
    Ok(Prediction {
        series: infos,
        points,
        events,
        cluster: describe(&cluster, config),
    })
}

/// The cluster `config` is predicted on, for `max` cores at most.
fn config_cluster(config: &Config, calibration: &Calibration, max: usize) -> Result<Cluster, SimError> {
    let mut cluster = Cluster::resolve(config.cluster.as_ref(), calibration, max);
    if let Some(d) = &config.distributed {
        cluster.max_message_bytes = d.max_message_bytes as usize;
        cluster.policy = d.policy;
    }
    if max as u64 > cluster.cores() {
        return Err(SimError::TooManyCores {
            cores: max,
            nodes: cluster.nodes,
            cores_per_node: cluster.cores_per_node,
        });
    }
    Ok(cluster)
}
