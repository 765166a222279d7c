//! `martelli calibrate`'s network half: what the distributed tier costs over loopback, measured
//! with a spawned `martelli worker` (one thread) and the real coordinator.

use std::path::Path;
use std::time::{Duration, Instant};

use martelli_runner::{median_run, probe_workload};
use martelli_sim::{KernelCosts, NetworkCosts};
use martelli_workload::{Kind, fill_payload};
use prost::Message;

use crate::convert::task_to_wire;
use crate::{
    ClientOptions, DEFAULT_MAX_MESSAGE_BYTES, DistributedError, DistributedRunner, LocalWorkers, wire,
};

/// Payload size the per-byte cost is measured with.
const PAYLOAD: u64 = 64 << 10;
/// Fastest a loopback link is taken to be, bytes per nanosecond (a floor on noise).
const MAX_BYTES_PER_NS: f64 = 20.0;

/// Measures the distributed tier on this machine: `exe` is the martelli binary to spawn as the
/// worker; `kernels` are this machine's task costs (subtracted to leave the tier's own).
pub fn measure_network(
    exe: &Path,
    kernels: &KernelCosts,
    mut step: impl FnMut(&str),
) -> Result<NetworkCosts, DistributedError> {
    step("starting a local worker");
    let local = LocalWorkers::spawn(exe, 1, Some(1), None, DEFAULT_MAX_MESSAGE_BYTES)?;
    let addresses = local.addresses.clone();
    let worker_pid = local.pids()[0];
    let options = ClientOptions {
        token: None,
        tls_ca: None,
        tls_domain: None,
        max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        timeout: Duration::from_secs(5),
        heartbeat: Duration::from_secs(1),
    };
    let runner = DistributedRunner::connect(&addresses, options, Some(local))?;

    step("round trip");
    let round_trip = runner.status_round_trip(300)?;
    let latency_ns = round_trip.as_nanos() as f64 / 2.0;

    step("per-task cost of the tier");
    let tasks = 50_000;
    let trivial = probe_workload(Kind::Cpu, tasks, 1);
    let wall = median_run(&runner, 1, &trivial, 5).as_nanos() as f64;
    let task_ns = kernels.task_fixed_ns + kernels.cpu_ns_per_iteration + kernels.record_ns;
    // The coordinator and the worker work as a pipeline: the slower stage sets the pace. The
    // measured time per task is split evenly between the coordinator's sending and receiving,
    // and the worker is charged the same, less the task itself.
    let per_task = (wall / tasks as f64).max(task_ns);

    step("run start and end");
    let one = median_run(&runner, 1, &probe_workload(Kind::Cpu, 1, 1), 51).as_nanos() as f64;
    let run_overhead_ns = (one - 2.0 * latency_ns - per_task).max(0.0);

    step("payload shipping");
    let mut heavy = probe_workload(Kind::Cpu, 2000, 1);
    heavy.payload_bytes = PAYLOAD;
    let heavy_wall = median_run(&runner, 1, &heavy, 5).as_nanos() as f64;
    let per_byte = ((heavy_wall / 2000.0 - per_task) / PAYLOAD as f64).max(0.0);
    let serialize_ns_per_byte = serialize_ns_per_byte();
    let transfer =
        (per_byte - serialize_ns_per_byte - kernels.payload_read_ns_per_byte).max(1.0 / MAX_BYTES_PER_NS);
    step("per-message CPU");
    // Tasks of ~300 us: each result travels alone, so the CPU both sides spend beyond the
    // tasks' own work is per message (system calls, HTTP/2 frames, wake-ups).
    let iterations = ((300_000.0 - kernels.task_fixed_ns) / kernels.cpu_ns_per_iteration).max(1.0) as u64;
    // Long enough (~0.6 s) for the worker's CPU time, counted in 10 ms ticks, to resolve.
    let messages = probe_workload(Kind::Cpu, 2000, iterations);
    let executor = martelli_workload::Executor::new(&messages);
    let job = martelli_runner::Job {
        workload: &messages,
        executor: &executor,
    };
    let mut point =
        martelli_runner::Runner::prepare(&runner, 1).map_err(|e| DistributedError::Run(e.to_string()))?;
    let (mut coordinator, mut worker) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let before = process_cpu_ns(worker_pid);
        let sample = point
            .run(&job)
            .map_err(|e| DistributedError::Run(e.to_string()))?;
        let worker_cpu = process_cpu_ns(worker_pid) - before;
        let count = sample.distributed.map_or(0, |w| w.rpc_batches).max(1) as f64;
        let tasks = messages.tasks as f64;
        let coordinator_cpu = sample.cpu.as_nanos() as f64 - tasks * per_task;
        let work = tasks * (kernels.task_fixed_ns + iterations as f64 * kernels.cpu_ns_per_iteration);
        coordinator.push(coordinator_cpu / count);
        worker.push((worker_cpu - work - tasks * (per_task - task_ns)) / count);
    }
    drop(point);
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (coordinator_message_ns, worker_message_ns) = (median(coordinator), median(worker));

    Ok(NetworkCosts {
        coordinator_message_ns: coordinator_message_ns.max(0.0),
        worker_message_ns: worker_message_ns.max(0.0),
        latency_us: latency_ns / 1e3,
        bandwidth_mb_per_s: 1e3 / transfer,
        dispatch_ns: per_task / 2.0,
        result_ns: per_task / 2.0,
        worker_ns: (per_task - task_ns).max(0.0),
        serialize_ns_per_byte,
        run_overhead_us: run_overhead_ns / 1e3,
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
