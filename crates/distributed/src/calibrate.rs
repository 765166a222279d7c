//! `martelli calibrate`'s network half: what the distributed tier costs over loopback, measured
//! with a spawned `martelli worker` (one thread) and the real coordinator.

use std::path::Path;
use std::time::{Duration, Instant};

use martelli_calibration::{KernelCosts, NetworkCosts, WaitCpu};
use martelli_runner::{
    Job, Runner, WAIT_POOLS, median_run, probe_workload, wait_cpu_per_task, wait_workload,
};
use martelli_workload::{Executor, Kind, Workload, fill_payload};
use prost::Message;

use crate::convert::task_to_wire;
use crate::{
    ClientOptions, DEFAULT_MAX_MESSAGE_BYTES, DistributedError, DistributedRunner, LocalWorkers, wire,
};

/// Payload size the per-byte cost is measured with.
const PAYLOAD: u64 = 64 << 10;
/// Fastest a loopback link is taken to be, bytes per nanosecond (a floor on noise).
const MAX_BYTES_PER_NS: f64 = 20.0;

/// What one side of the tier spends: CPU per message and per task beyond the task's work.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SideCosts {
    /// CPU per message sent or received, ns.
    pub per_message_ns: f64,
    /// CPU per task (sending it and taking its result in, or running it), ns.
    pub per_task_ns: f64,
}

/// One run's counts and CPU, as [`measure_sides`] needs them.
#[derive(Clone, Copy, Debug)]
struct RunCpu {
    tasks: f64,
    messages: f64,
    coordinator_ns: f64,
    worker_ns: f64,
}

/// Solves `cpu = messages x per_message + tasks x per_task` from two runs, each given as
/// `(messages, tasks, cpu ns)`, whose messages per task differ (tiny tasks travel hundreds a
/// message, 300 us ones one each). Both figures are kept non-negative.
fn solve(a: (f64, f64, f64), b: (f64, f64, f64)) -> SideCosts {
    // Per task: cpu/tasks = (messages/tasks) x per_message + per_task.
    let (ma, ca) = (a.0 / a.1, a.2 / a.1);
    let (mb, cb) = (b.0 / b.1, b.2 / b.1);
    let per_message = if (ma - mb).abs() < 1e-12 {
        0.0
    } else {
        ((ca - cb) / (ma - mb)).max(0.0)
    };
    SideCosts {
        per_message_ns: per_message,
        per_task_ns: (ca - ma * per_message).max(0.0),
    }
}

/// The coordinator's and a worker's costs per message and per task, from two runs on one
/// worker thread: one of tiny tasks (the coordinator saturated, many tasks a message) and one
/// of ~300 us tasks (a message a task). The coordinator's CPU is this process's; the worker's
/// is read from its process (`worker_pid`). What `martelli calibrate` records, and what the
/// model's coordinator saturates on.
pub fn measure_sides(
    runner: &DistributedRunner,
    worker_pid: u32,
    kernels: &KernelCosts,
) -> Result<(SideCosts, SideCosts), DistributedError> {
    let tiny = probe_workload(Kind::Cpu, 50_000, 1);
    let iterations = ((300_000.0 - kernels.task_fixed_ns) / kernels.cpu_ns_per_iteration).max(1.0) as u64;
    // Long enough (~0.6 s) for the worker's CPU time, counted in 10 ms ticks, to resolve.
    let coarse = probe_workload(Kind::Cpu, 2000, iterations);
    let mut runs = Vec::new();
    for workload in [&tiny, &coarse] {
        let work = kernels.task_fixed_ns + workload.iterations as f64 * kernels.cpu_ns_per_iteration;
        let mut samples = Vec::new();
        for _ in 0..3 {
            let (sample, worker_cpu) = run_measuring_worker(runner, 1, workload, worker_pid)?;
            let tasks = workload.tasks as f64;
            samples.push(RunCpu {
                tasks,
                messages: sample.distributed.map_or(0, |w| w.rpc_batches).max(1) as f64,
                coordinator_ns: sample.cpu.as_nanos() as f64,
                worker_ns: worker_cpu - tasks * work,
            });
        }
        samples.sort_by(|a, b| a.coordinator_ns.total_cmp(&b.coordinator_ns));
        runs.push(samples[samples.len() / 2]);
    }
    let side = |cpu: fn(&RunCpu) -> f64| {
        let (a, b) = (runs[0], runs[1]);
        solve((a.messages, a.tasks, cpu(&a)), (b.messages, b.tasks, cpu(&b)))
    };
    Ok((side(|r| r.coordinator_ns), side(|r| r.worker_ns)))
}

/// One run of `workload` on `threads` of the first worker: its sample and the worker
/// process's CPU during it, ns.
fn run_measuring_worker(
    runner: &DistributedRunner,
    threads: usize,
    workload: &Workload,
    worker_pid: u32,
) -> Result<(martelli_results::Sample, f64), DistributedError> {
    let executor = Executor::new(workload);
    let job = Job {
        workload,
        executor: &executor,
    };
    let mut point = runner
        .prepare(threads)
        .map_err(|e| DistributedError::Run(e.to_string()))?;
    let before = process_cpu_ns(worker_pid);
    let sample = point
        .run(&job)
        .map_err(|e| DistributedError::Run(e.to_string()))?;
    Ok((sample, process_cpu_ns(worker_pid) - before))
}

/// Measures the distributed tier on this machine: `exe` is the martelli binary to spawn as the
/// worker; `kernels` are this machine's task costs (subtracted to leave the tier's own).
pub fn measure_network(
    exe: &Path,
    kernels: &KernelCosts,
    mut step: impl FnMut(&str),
) -> Result<NetworkCosts, DistributedError> {
    step("starting a local worker");
    let most = *WAIT_POOLS.last().unwrap_or(&1) as usize;
    let local = LocalWorkers::spawn(exe, 1, Some(most), None, DEFAULT_MAX_MESSAGE_BYTES)?;
    let addresses = local.addresses.clone();
    let worker_pid = local.pids()[0];
    let options = ClientOptions {
        token: None,
        tls_ca: None,
        tls_domain: None,
        max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        timeout: Duration::from_secs(5),
        heartbeat: Duration::from_secs(1),
        policy: martelli_schedule::Policy::default(),
    };
    let runner = DistributedRunner::connect(&addresses, options, Some(local))?;

    step("round trip");
    let round_trip = runner.status_round_trip(300)?;
    let latency_ns = round_trip.as_nanos() as f64 / 2.0;

    step("coordinator and worker CPU per message and per task");
    let (coordinator, worker) = measure_sides(&runner, worker_pid, kernels)?;
    let task_ns = kernels.task_fixed_ns + kernels.cpu_ns_per_iteration + kernels.record_ns;

    step("run start and end");
    let probe =
        |e: martelli_runner::RunError| DistributedError::Run(format!("a calibration probe failed: {e}"));
    let one = median_run(&runner, 1, &probe_workload(Kind::Cpu, 1, 1), 51)
        .map_err(probe)?
        .as_nanos() as f64;
    let per_task = coordinator.per_task_ns + worker.per_task_ns + task_ns;
    let messages = 2.0 * (coordinator.per_message_ns + worker.per_message_ns);
    let run_overhead_ns = (one - 2.0 * latency_ns - per_task - messages).max(0.0);

    step("payload shipping");
    let mut heavy = probe_workload(Kind::Cpu, 2000, 1);
    heavy.payload_bytes = PAYLOAD;
    let heavy_wall = median_run(&runner, 1, &heavy, 5).map_err(probe)?.as_nanos() as f64;
    let light_wall = median_run(&runner, 1, &probe_workload(Kind::Cpu, 2000, 1), 5)
        .map_err(probe)?
        .as_nanos() as f64;
    let per_byte = ((heavy_wall - light_wall) / 2000.0 / PAYLOAD as f64).max(0.0);
    let serialize_ns_per_byte = serialize_ns_per_byte();
    let transfer =
        (per_byte - serialize_ns_per_byte - kernels.payload_read_ns_per_byte).max(1.0 / MAX_BYTES_PER_NS);

    let mut worker_wait_cpu = Vec::new();
    for threads in WAIT_POOLS {
        step(&format!("CPU of a wait on a worker, {threads} threads"));
        // The largest pool fills this machine's cores: its probe runs as long as the multi
        // tier's, since its wall time is what the worker's cost of a wait is fitted to
        // (`martelli_sim::fit_worker_wait_cost`). Smaller pools only need enough waits for
        // the worker's CPU ticks to resolve.
        let waits = if Some(&threads) == WAIT_POOLS.last() {
            wait_workload(threads)
        } else {
            wait_workload(threads).with_tasks((16 * u64::from(threads)).max(1000))
        };
        let mut per_wait = Vec::new();
        let mut walls = Vec::new();
        for _ in 0..3 {
            let (sample, cpu) = run_measuring_worker(&runner, threads as usize, &waits, worker_pid)?;
            let tasks = waits.tasks as f64;
            let messages = sample.distributed.map_or(0, |w| w.rpc_batches) as f64;
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let other = messages * worker.per_message_ns / tasks + worker.per_task_ns + kernels.task_fixed_ns;
            let wall = sample.wall.as_nanos() as f64;
            per_wait.push(wait_cpu_per_task(cpu, wall, tasks, cores, other));
            walls.push(wall);
        }
        per_wait.sort_by(f64::total_cmp);
        walls.sort_by(f64::total_cmp);
        worker_wait_cpu.push(WaitCpu {
            threads,
            ns_per_wait: per_wait[per_wait.len() / 2].max(0.0),
            probe_wall_ns: walls[walls.len() / 2],
        });
    }

    Ok(NetworkCosts {
        coordinator_message_ns: coordinator.per_message_ns,
        worker_message_ns: worker.per_message_ns,
        latency_us: latency_ns / 1e3,
        bandwidth_mb_per_s: 1e3 / transfer,
        dispatch_ns: coordinator.per_task_ns / 2.0,
        result_ns: coordinator.per_task_ns / 2.0,
        worker_ns: worker.per_task_ns,
        serialize_ns_per_byte,
        run_overhead_us: run_overhead_ns / 1e3,
        worker_wait_cpu,
    })
}

/// CPU time (user + system) of process `pid` so far, its finished threads included,
/// nanoseconds (Linux `/proc/PID/stat`, in clock ticks; 0 where it cannot be read).
fn process_cpu_ns(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / per_second * 1e9
}

/// Generating and encoding payload bytes as the coordinator does, per byte (best of a few).
fn serialize_ns_per_byte() -> f64 {
    let mut w = probe_workload(Kind::Cpu, 64, 1);
    w.payload_bytes = PAYLOAD;
    let mut payload = Vec::new();
    let mut buffer = Vec::new();
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            let tasks = (0..w.tasks)
                .map(|id| {
                    let task = w.task(id);
                    fill_payload(w.seed, &task, &mut payload);
                    task_to_wire(&task, 0, payload.clone())
                })
                .collect();
            buffer.clear();
            let batch = wire::TaskBatch { tasks };
            let _ = batch.encode(&mut buffer);
            std::hint::black_box(&buffer);
            start.elapsed().as_nanos() as f64
        })
        .fold(f64::INFINITY, f64::min);
    best / (w.tasks * w.payload_bytes) as f64
}

impl DistributedRunner {
    /// Median time of `calls` Status calls to the first worker: one round trip, with gRPC's
    /// own handling of a small message at both ends.
    pub fn status_round_trip(&self, calls: usize) -> Result<Duration, DistributedError> {
        let Some(connection) = self.connections.first() else {
            return Err(DistributedError::Run("no worker connected".into()));
        };
        let mut times = self.runtime.block_on(async {
            let mut client = connection.client.clone();
            let mut times = Vec::with_capacity(calls);
            for _ in 0..calls {
                let start = Instant::now();
                client
                    .status(wire::StatusRequest {})
                    .await
                    .map_err(|s| DistributedError::Worker {
                        address: connection.address.clone(),
                        reason: format!("status refused: {}", s.message()),
                    })?;
                times.push(start.elapsed());
            }
            Ok::<_, DistributedError>(times)
        })?;
        times.sort();
        Ok(times[times.len() / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_runs_give_the_cost_per_message_and_per_task() {
        // 10 us a message, 2 us a task: 100 tasks in 2 messages, 100 tasks in 200 messages.
        let cpu = |messages: f64, tasks: f64| messages * 10_000.0 + tasks * 2_000.0;
        let costs = solve((2.0, 100.0, cpu(2.0, 100.0)), (200.0, 100.0, cpu(200.0, 100.0)));
        assert!((costs.per_message_ns - 10_000.0).abs() < 1e-6, "{costs:?}");
        assert!((costs.per_task_ns - 2_000.0).abs() < 1e-6, "{costs:?}");
        let flat = solve((5.0, 10.0, 1000.0), (5.0, 10.0, 1000.0));
        assert_eq!(flat.per_message_ns, 0.0, "runs alike cannot tell them apart");
    }
}
