//! `martelli calibrate`'s local half: what one task's work, the measuring and the thread pool
//! cost on this machine, measured with the real kernels and the real single and multi tiers.

use std::time::{Duration, Instant};

use martelli_calibration::{Bandwidth, Dilation, KernelCosts, MemoryCost, MultiCosts, WaitCpu};
use martelli_results::Sample;
use martelli_workload::{Access, Executor, Kind, Workload, fill_payload};

use crate::task_cost::calibrate;
use crate::{Job, MultiRunner, RunError, Runner, SingleRunner};

/// Payload size the per-byte costs are measured with.
const PAYLOAD: u64 = 64 << 10;
/// Working sets the memory kernel is measured at (interpolated in between).
const WORKING_SETS: [u64; 4] = [32 << 10, 1 << 20, 16 << 20, 256 << 20];
/// Working set the contention between cores is measured at (the default one).
const CONTENTION_SET: u64 = 64 << 20;
/// Pool sizes the CPU of a wait is measured at (interpolated in between).
pub const WAIT_POOLS: [u32; 4] = [4, 16, 64, 256];
/// The wait those measurements use.
pub const PROBE_WAIT_NS: u64 = 1_000_000;

/// A workload of `tasks` fixed-size tasks of `kind` with `iterations` each.
pub fn probe_workload(kind: Kind, tasks: u64, iterations: u64) -> Workload {
    Workload::fixed("calibrate", 1, kind, tasks, iterations)
}

/// Median wall time of `runs` runs of `workload` on `runner` at `cores` cores: the same
/// statistic the sweep reports for a point, so that costs and measurements compare alike. A
/// probe that cannot run fails with its cause, never a zero that a calibration would keep.
pub fn median_run(
    runner: &dyn Runner,
    cores: usize,
    workload: &Workload,
    runs: usize,
) -> Result<Duration, RunError> {
    let mut walls: Vec<Duration> = samples(runner, cores, workload, runs)?
        .iter()
        .map(|s| s.wall)
        .collect();
    walls.sort();
    Ok(walls[walls.len() / 2])
}

/// `runs` (at least one) runs of `workload` on `runner` at `cores`; the first failure fails.
pub fn samples(
    runner: &dyn Runner,
    cores: usize,
    workload: &Workload,
    runs: usize,
) -> Result<Vec<Sample>, RunError> {
    let executor = Executor::new(workload);
    let job = Job {
        workload,
        executor: &executor,
    };
    let mut point = runner.prepare(cores)?;
    (0..runs.max(1)).map(|_| point.run(&job)).collect()
}

/// Measures the kernels, the measuring and the I/O wait of this machine (a few seconds).
pub fn measure_kernels(mut step: impl FnMut(&str)) -> Result<KernelCosts, RunError> {
    step("cpu kernel");
    let cpu = calibrate(&probe_workload(Kind::Cpu, 1, 1), Duration::from_millis(1));
    step("payload generation and reading");
    let mut with_payload = probe_workload(Kind::Cpu, 1, 1);
    with_payload.payload_bytes = PAYLOAD;
    let payload = calibrate(&with_payload, Duration::from_millis(1));
    let payload_total = ((payload.fixed_ns - cpu.fixed_ns) / PAYLOAD as f64).max(0.0);
    let read = read_ns_per_byte(&with_payload, cpu.fixed_ns).min(payload_total);

    step("measuring overhead");
    // A single-tier run of one-iteration tasks, less what the tasks cost: the measuring.
    let tasks = 200_000;
    let wall = median_run(&SingleRunner, 1, &probe_workload(Kind::Cpu, tasks, 1), 5)?;
    let record_ns = (wall.as_nanos() as f64 / tasks as f64 - cpu.fixed_ns - cpu.ns_per_iteration).max(0.0);

    step("I/O wait overshoot");
    let mut overshoots: Vec<f64> = (0..40)
        .map(|_| {
            let start = Instant::now();
            std::thread::sleep(Duration::from_millis(1));
            start.elapsed().as_nanos() as f64 - 1e6
        })
        .collect();
    overshoots.sort_by(f64::total_cmp);

    let mut memory = Vec::new();
    for ws in WORKING_SETS {
        step(&format!("memory kernel, {} KiB working set", ws >> 10));
        let mut w = probe_workload(Kind::Memory, 1, 1);
        w.working_set = ws;
        memory.push(MemoryCost {
            working_set_bytes: ws,
            ns_per_iteration: calibrate(&w, Duration::from_millis(1)).ns_per_iteration,
        });
    }
    Ok(KernelCosts {
        cpu_ns_per_iteration: cpu.ns_per_iteration,
        task_fixed_ns: cpu.fixed_ns,
        record_ns,
        payload_generate_ns_per_byte: payload_total - read,
        payload_read_ns_per_byte: read,
        io_overshoot_ns: overshoots[overshoots.len() / 2].max(0.0),
        memory,
    })
}

/// Reading a shipped payload (no generation), per byte, best of a few batches.
fn read_ns_per_byte(workload: &Workload, fixed_ns: f64) -> f64 {
    let executor = Executor::new(workload);
    let mut task = workload.task(0);
    task.iterations = 0;
    let mut payload = Vec::new();
    fill_payload(workload.seed, &task, &mut payload);
    let per_task = (0..5)
        .map(|_| {
            let start = Instant::now();
            let mut sink = 0;
            for id in 0..2000 {
                task.id = id;
                sink ^= executor.compute_on(&task, &payload);
            }
            std::hint::black_box(sink);
            start.elapsed().as_nanos() as f64 / 2000.0
        })
        .fold(f64::INFINITY, f64::min);
    ((per_task - fixed_ns) / workload.payload_bytes as f64).max(0.0)
}

/// Measures the multi tier's pool: hand-off per task, start and join per run, and how much
/// memory-bound tasks slow each other down (a few seconds).
pub fn measure_pool(
    kernels: &KernelCosts,
    logical_cores: usize,
    mut step: impl FnMut(&str),
) -> Result<MultiCosts, RunError> {
    step("thread pool hand-off");
    let tasks = 200_000;
    let tiny = probe_workload(Kind::Cpu, tasks, 1);
    let single = median_run(&SingleRunner, 1, &tiny, 5)?;
    let pooled = median_run(&MultiRunner::default(), 1, &tiny, 5)?;
    let dispatch_ns = (pooled.as_nanos() as f64 - single.as_nanos() as f64).max(0.0) / tasks as f64;

    step("thread pool start and join");
    let cores = logical_cores.clamp(1, 2);
    let run_overhead = median_run(
        &MultiRunner::default(),
        cores,
        &probe_workload(Kind::Cpu, cores as u64, 1),
        200,
    )?
    .as_nanos() as f64;
    let run_overhead_ns = (run_overhead - kernels.record_ns - kernels.task_fixed_ns).max(0.0);

    let memory_contention = if logical_cores >= 2 {
        step("memory contention between two cores");
        let mut w = probe_workload(Kind::Memory, 1, 1);
        w.working_set = CONTENTION_SET;
        let per_task = calibrate(&w, Duration::from_millis(1));
        let mut w = probe_workload(Kind::Memory, 300, per_task.iterations);
        w.working_set = CONTENTION_SET;
        let one = median_run(&SingleRunner, 1, &w, 5)?.as_secs_f64();
        let two = median_run(&MultiRunner::default(), 2, &w, 5)?.as_secs_f64();
        if one > 0.0 {
            (2.0 * two / one - 1.0).max(0.0)
        } else {
            0.0
        }
    } else {
        0.0
    };
    let memory_bandwidth = memory_bandwidth(logical_cores, &mut step)?;
    let mut wait_cpu = Vec::new();
    for threads in WAIT_POOLS {
        step(&format!("CPU of a wait, pool of {threads} threads"));
        let waits = wait_workload(threads);
        let per_task = kernels.task_fixed_ns + kernels.record_ns + dispatch_ns;
        let tasks = waits.tasks as f64;
        // The first run warms the pool up (its threads' first sleeps and wake-ups) and is left out.
        let runs = samples(&MultiRunner::default(), threads as usize, &waits, 6)?;
        let runs = runs.get(1..).unwrap_or_default();
        let mut per_wait: Vec<f64> = runs
            .iter()
            .map(|s| {
                let (cpu, wall) = (s.cpu.as_nanos() as f64, s.wall.as_nanos() as f64);
                wait_cpu_per_task(cpu, wall, tasks, logical_cores, per_task)
            })
            .collect();
        let mut walls: Vec<f64> = runs.iter().map(|s| s.wall.as_nanos() as f64).collect();
        wait_cpu.push(WaitCpu {
            threads,
            ns_per_wait: median(&mut per_wait),
            probe_wall_ns: median(&mut walls),
        });
    }
    let mut compute_dilation = Vec::new();
    for threads in DILATION_POOLS {
        step(&format!("compute between waits, pool of {threads} threads"));
        let probe = dilation_workload();
        let runs = samples(&MultiRunner::default(), threads as usize, &probe, 6)?;
        let mut walls: Vec<f64> = runs
            .get(1..)
            .unwrap_or_default()
            .iter()
            .map(|s| s.wall.as_nanos() as f64)
            .collect();
        compute_dilation.push(Dilation {
            threads,
            // Fitted once the rounds are combined (`martelli_sim::fit_compute_dilation`).
            factor: 0.0,
            probe_wall_ns: median(&mut walls),
        });
    }
    Ok(MultiCosts {
        dispatch_ns,
        run_overhead_ns,
        memory_contention,
        wait_cpu,
        compute_dilation,
        memory_bandwidth,
    })
}

/// Thread counts the memory bandwidth is measured at: 1, 2, 4, ... and the machine's cores.
pub fn bandwidth_threads(logical_cores: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = std::iter::successors(Some(1usize), |n| n.checked_mul(2))
        .take_while(|&n| n < logical_cores.max(1))
        .collect();
    counts.push(logical_cores.max(1));
    counts
}

/// The bandwidth `stream` tasks draw at 1, 2, 4, ... threads up to the machine's cores, over
/// the working set a `memory` workload gets by default (four times the last-level cache): each
/// thread runs 16 tasks of an eighth of a pass over the arrays, the median of 5 runs after a
/// warm-up.
fn memory_bandwidth(logical_cores: usize, step: &mut impl FnMut(&str)) -> Result<Vec<Bandwidth>, RunError> {
    let working_set =
        martelli_config::default_working_set(martelli_config::host::last_level_cache().map(|c| c.bytes));
    let mut base = probe_workload(Kind::Memory, 1, 1);
    base.working_set = working_set;
    base.access = Access::Stream;
    // One array of the triad holds a third of the working set, in words.
    base.iterations = (working_set / 8 / 3 / 8).max(1);
    step(&format!("memory bandwidth: filling {} MiB", working_set >> 20));
    let executor = Executor::try_new(&base).map_err(|reason| RunError::Setup {
        tier: martelli_config::Tier::Single,
        cores: 1,
        reason,
    })?;
    let mut table = Vec::new();
    for threads in bandwidth_threads(logical_cores) {
        step(&format!("memory bandwidth, {threads} threads"));
        let tasks = 16 * threads as u64;
        let w = Workload {
            tasks,
            serial_basis_tasks: tasks,
            ..base.clone()
        };
        let job = Job {
            workload: &w,
            executor: &executor,
        };
        let multi = MultiRunner::default();
        let runner: &dyn Runner = if threads == 1 { &SingleRunner } else { &multi };
        let mut point = runner.prepare(threads)?;
        point.run(&job)?;
        let mut walls = (0..5)
            .map(|_| point.run(&job).map(|s| s.wall.as_secs_f64()))
            .collect::<Result<Vec<f64>, RunError>>()?;
        let wall = median(&mut walls);
        let bytes = (tasks * w.iterations) as f64 * martelli_calibration::STREAM_BYTES_PER_ITERATION;
        if wall > 0.0 {
            table.push(Bandwidth {
                threads: threads as u32,
                bytes_per_s: bytes / wall,
            });
        }
    }
    Ok(table)
}

/// The middle of `values` (0 when empty).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The CPU one wait costs, from a run of `tasks` waits that took `cpu_ns` of CPU and
/// `wall_ns`, less `per_task_ns` of other work per task. A pool that is not saturated spends
/// idle CPU looking for work, which a busy pool would not: no more is counted than the run's
/// cores could have spent in its wall time, the figure that limits a saturated pool.
pub fn wait_cpu_per_task(cpu_ns: f64, wall_ns: f64, tasks: f64, cores: usize, per_task_ns: f64) -> f64 {
    let spent = cpu_ns.min(wall_ns * cores.max(1) as f64);
    (spent / tasks.max(1.0) - per_task_ns).max(0.0)
}

/// Tasks that only wait ([`PROBE_WAIT_NS`] each), 64 per thread of a pool of `threads` (4000
/// at least, so that a pool's start-up is a small part and CPU counted in clock ticks resolves): what
/// the CPU of a wait is measured with.
pub fn wait_workload(threads: u32) -> Workload {
    let mut w = probe_workload(Kind::Io, (64 * u64::from(threads)).max(4000), 0);
    w.io_wait_ns = PROBE_WAIT_NS;
    w
}

/// Kernel iterations of the compute before each wait of [`dilation_workload`]: ~50 us on the
/// 2-core VM this was written on, more than twice the 20 us of `configs/validate/mixed.toml`,
/// so that the validation does not check the model on its own probe.
pub const DILATION_PROBE_ITERATIONS: u64 = 36_000;

/// Pool sizes whose slow-down of compute between waits is measured: those of [`WAIT_POOLS`]
/// whose probe fills a few cores (on 2 cores, 64 threads of ~50 us compute and 1 ms waits
/// ask for 3 cores).
pub const DILATION_POOLS: [u32; 2] = [64, 256];

/// 4096 tasks that compute ([`DILATION_PROBE_ITERATIONS`]) and then wait ([`PROBE_WAIT_NS`]):
/// on a pool of many more threads than cores, each task's compute resumes on a core other
/// threads used during its wait. What the slow-down of that compute is fitted to.
pub fn dilation_workload() -> Workload {
    let mut w = probe_workload(Kind::Mixed, 4096, DILATION_PROBE_ITERATIONS);
    w.io_wait_ns = PROBE_WAIT_NS;
    w
}
