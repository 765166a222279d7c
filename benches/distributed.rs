//! The distributed tier's benchmarks, on this machine, loopback only.
//!
//! `cargo bench --bench distributed`. Starts real `martelli worker` processes (2 workers x 1
//! thread, as the issue asks) and prints:
//! - end-to-end throughput on trivial (~1 us) tasks;
//! - coarse (5 ms) CPU tasks: distributed vs multi tier on 2 threads, alternating rounds;
//! - 64 KiB payloads: MB/s shipped and the per-task cost of shipping;
//! - skewed tasks (log-normal 500 us, sigma 0.5): distributed / multi speed at 2 cores under
//!   each feeding policy (`[distributed] policy`), alternating rounds.

use std::time::{Duration, Instant};

use martelli_distributed::{ClientOptions, DistributedRunner, LocalWorkers};
mod common;

use common::{cpu_workload as workload, iterations_for, median};
use martelli_runner::{Job, MultiRunner, Runner};
use martelli_schedule::Policy;
use martelli_workload::{Executor, Workload};

const ROUNDS: usize = 5;

/// Median wall seconds of `rounds` runs of `w` on `runner` at `cores`, and the last sample.
fn time(runner: &dyn Runner, cores: usize, w: &Workload, rounds: usize) -> (f64, martelli_results::Sample) {
    let executor = Executor::new(w);
    let mut point = runner.prepare(cores).expect("prepare");
    let job = Job {
        workload: w,
        executor: &executor,
    };
    point.run(&job).expect("warm-up");
    let mut walls = Vec::new();
    let mut last = None;
    for _ in 0..rounds {
        let s = point.run(&job).expect("run");
        walls.push(s.wall.as_secs_f64());
        last = Some(s);
    }
    (median(walls), last.expect("at least one round"))
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_martelli"));
    let local = LocalWorkers::spawn(exe, 2, Some(1), None, 64 << 20).expect("local workers");
    let addresses = local.addresses.clone();
    let distributed =
        DistributedRunner::connect(&addresses, options(Policy::default()), Some(local)).expect("connect");
    println!(
        "martelli distributed benchmarks: 2 local workers x 1 thread, loopback ({ROUNDS} rounds, medians)\n"
    );

    // 1. Trivial tasks, end to end.
    let tiny = workload(200_000, iterations_for(Duration::from_micros(1)), 0);
    let (wall, sample) = time(&distributed, 2, &tiny, ROUNDS);
    let wire = sample.distributed.unwrap_or_default();
    println!(
        "trivial tasks (~1 us, 200k): {:.0} tasks/s end to end ({:.3}s per run, {} batches, {:.1} tasks per batch)",
        tiny.tasks as f64 / wall,
        wall,
        wire.rpc_batches,
        2.0 * tiny.tasks as f64 / wire.rpc_batches.max(1) as f64
    );

    // 2. Coarse tasks: distributed vs multi, alternating.
    let coarse = workload(400, iterations_for(Duration::from_millis(5)), 0);
    let mut multi_walls = Vec::new();
    let mut dist_walls = Vec::new();
    for _ in 0..ROUNDS {
        multi_walls.push(time(&MultiRunner::default(), 2, &coarse, 1).0);
        dist_walls.push(time(&distributed, 2, &coarse, 1).0);
    }
    let (m, d) = (median(multi_walls), median(dist_walls));
    println!(
        "coarse tasks (5 ms, 400): multi(2) {:.3}s, distributed(2 x 1) {:.3}s: distributed throughput = {:.3}x multi",
        m,
        d,
        m / d
    );

    // 3. 64 KiB payloads: what shipping costs.
    let started = Instant::now();
    let light = workload(4000, iterations_for(Duration::from_micros(10)), 0);
    let heavy = workload(4000, light.iterations, 64 << 10);
    let (wall_light, _) = time(&distributed, 2, &light, ROUNDS);
    let (wall_heavy, sample) = time(&distributed, 2, &heavy, ROUNDS);
    let wire = sample.distributed.unwrap_or_default();
    println!(
        "64 KiB payloads (4000 x 10 us tasks): {:.0} MB/s shipped ({:.1} MB per run in {:.3}s); \
         shipping costs {:.1} us per task ({:.3}s without payloads)",
        wire.bytes_sent as f64 / 1e6 / wall_heavy,
        wire.bytes_sent as f64 / 1e6,
        wall_heavy,
        (wall_heavy - wall_light) / heavy.tasks as f64 * 1e6,
        wall_light
    );
    drop(distributed);
    skewed();
    println!("\n(bench took {:.1}s)", started.elapsed().as_secs_f64());
}

/// Skewed tasks on 2 workers x 1 thread against the multi tier's 2 threads, once per feeding
/// policy, rounds alternating so that both see the same machine.
fn skewed() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_martelli"));
    let skewed = Workload {
        distribution: martelli_workload::SizeDistribution::LogNormal { sigma: 0.5 },
        ..workload(4000, iterations_for(Duration::from_micros(500)), 0)
    };
    for policy in Policy::ALL {
        let local = LocalWorkers::spawn(exe, 2, Some(1), None, 64 << 20).expect("local workers");
        let addresses = local.addresses.clone();
        let runner = DistributedRunner::connect(&addresses, options(policy), Some(local)).expect("connect");
        let (mut multi_walls, mut dist_walls) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            multi_walls.push(time(&MultiRunner::default(), 2, &skewed, 1).0);
            dist_walls.push(time(&runner, 2, &skewed, 1).0);
        }
        let (m, d) = (median(multi_walls), median(dist_walls));
        println!(
            "skewed tasks (log-normal 500 us, sigma 0.5, 4000), policy {}: multi(2) {m:.3}s, \
             distributed(2 x 1) {d:.3}s: distributed / multi = {:.3}",
            policy.name(),
            m / d
        );
    }
}

fn options(policy: Policy) -> ClientOptions {
    ClientOptions {
        token: None,
        tls_ca: None,
        tls_domain: None,
        max_message_bytes: 64 << 20,
        timeout: Duration::from_secs(5),
        heartbeat: Duration::from_secs(1),
        policy,
    }
}
