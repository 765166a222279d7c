//! Side-by-side benchmarks of the tiers, printed as ratios measured in one run.
//!
//! `cargo bench --bench tiers`. Each comparison alternates its contenders round by round and
//! keeps each one's median, so a noisy neighbour slows both sides alike. The figures answer:
//! - does the multi tier reach ~2x on 2 cores with 1 ms CPU-bound tasks?
//! - how much does the single tier's measuring add to a bare loop over the same kernel?
//! - what does the multi tier's dispatch cost per task on ~1 us tasks?

use std::time::{Duration, Instant};

mod common;

use common::{cpu_workload, iterations_for, median};
use martelli_config::{Dispatch, ExecutorOptions, Model};
use martelli_runner::{Job, MultiRunner, PreparedPoint, Runner, SingleRunner};
use martelli_workload::{Executor, Scratch, Workload};

const ROUNDS: usize = 7;

/// The multi tier; its process pools start the martelli binary this bench was built with.
static MULTI: std::sync::LazyLock<MultiRunner> =
    std::sync::LazyLock::new(|| MultiRunner::with_program(env!("CARGO_BIN_EXE_martelli")));

/// The bare loop: the same kernel over the same tasks, with no measuring at all.
fn bare_loop(workload: &Workload, executor: &Executor) -> Duration {
    let mut scratch = Scratch::default();
    let start = Instant::now();
    let mut sink = 0u64;
    for task in workload.tasks() {
        sink = sink.wrapping_add(executor.compute(&task, &mut scratch));
    }
    std::hint::black_box(sink);
    start.elapsed()
}

fn tier_run(point: &mut dyn PreparedPoint, workload: &Workload, executor: &Executor) -> Duration {
    point.run(&Job { workload, executor }).expect("bench run").wall
}

/// Runs each contender once per round, alternating, and returns each one's median seconds.
fn side_by_side(contenders: &mut [&mut dyn FnMut() -> Duration]) -> Vec<f64> {
    let mut times = vec![Vec::with_capacity(ROUNDS); contenders.len()];
    for round in 0..ROUNDS + 1 {
        for (i, run) in contenders.iter_mut().enumerate() {
            let t = run().as_secs_f64();
            if round > 0 {
                times[i].push(t); // round 0 is a warm-up
            }
        }
    }
    times.into_iter().map(median).collect()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run only for real.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("martelli tier benchmarks ({ROUNDS} alternating rounds, medians)\n");
    multi_against_single();
    single_against_a_bare_loop();
    multi_dispatch();
    executor_options();
}

/// The multi tier on 2 threads against the single tier, 1 ms CPU-bound tasks.
fn multi_against_single() {
    let w = cpu_workload(400, iterations_for(Duration::from_millis(1)), 0);
    let e = Executor::new(&w);
    let mut single = SingleRunner.prepare(1).unwrap();
    let mut multi = MULTI.prepare(2).unwrap();
    let t = side_by_side(&mut [&mut || tier_run(single.as_mut(), &w, &e), &mut || {
        tier_run(multi.as_mut(), &w, &e)
    }]);
    let speedup = t[0] / t[1];
    println!(
        "multi(2) vs single, 400 x 1ms cpu tasks: single {:.3}s, multi {:.3}s",
        t[0], t[1]
    );
    println!("  speed-up {speedup:.3}x, efficiency {:.3}\n", speedup / 2.0);
}

/// The single tier against a bare loop over the same kernel, at four task sizes.
fn single_against_a_bare_loop() {
    for (label, cost, tasks) in [
        ("1ms", Duration::from_millis(1), 400),
        ("100us", Duration::from_micros(100), 4_000),
        ("10us", Duration::from_micros(10), 40_000),
        ("1us", Duration::from_micros(1), 400_000),
    ] {
        let w = cpu_workload(tasks, iterations_for(cost), 0);
        let e = Executor::new(&w);
        let mut single = SingleRunner.prepare(1).unwrap();
        let t = side_by_side(&mut [&mut || bare_loop(&w, &e), &mut || {
            tier_run(single.as_mut(), &w, &e)
        }]);
        println!(
            "single vs bare loop, {tasks} x {label} tasks: bare {:.4}s, single {:.4}s: overhead {:+.2}% ({:+.1} ns/task)",
            t[0],
            t[1],
            (t[1] / t[0] - 1.0) * 100.0,
            (t[1] - t[0]) / tasks as f64 * 1e9
        );
    }
    println!();
}

/// The multi tier's dispatch overhead on ~1 us tasks.
fn multi_dispatch() {
    let tasks = 1_000_000u64;
    let w = cpu_workload(tasks, iterations_for(Duration::from_micros(1)), 0);
    let e = Executor::new(&w);
    let mut single = SingleRunner.prepare(1).unwrap();
    let mut pool1 = MULTI.prepare(1).unwrap();
    let mut pool2 = MULTI.prepare(2).unwrap();
    let t = side_by_side(&mut [
        &mut || bare_loop(&w, &e),
        &mut || tier_run(single.as_mut(), &w, &e),
        &mut || tier_run(pool1.as_mut(), &w, &e),
        &mut || tier_run(pool2.as_mut(), &w, &e),
    ]);
    let per_task = |s: f64| s / tasks as f64 * 1e9;
    println!(
        "1M x ~1us tasks: bare {:.1} ns/task, single {:.1}, multi(1 thread) {:.1}, multi(2 threads) {:.1} (wall per task)",
        per_task(t[0]),
        per_task(t[1]),
        per_task(t[2]),
        per_task(t[3])
    );
    println!(
        "  multi dispatch overhead vs single: {:+.1} ns/task on 1 thread, {:+.1} ns/task of core time on 2 threads",
        per_task(t[2] - t[1]),
        per_task(2.0 * t[3] - t[1])
    );
}

/// Each executor option on ~1 us tasks, 2 threads: core time per task over the single tier's
/// (the lecture's models side by side).
fn executor_options() {
    let tasks = 200_000u64;
    let w = cpu_workload(tasks, iterations_for(Duration::from_micros(1)), 0);
    let e = Executor::new(&w);
    let options = [
        ("futures", ExecutorOptions::default()),
        (
            "queue",
            ExecutorOptions {
                dispatch: Dispatch::Queue,
                ..ExecutorOptions::default()
            },
        ),
        (
            "futures + gil",
            ExecutorOptions {
                gil: Some(Duration::from_millis(5)),
                ..ExecutorOptions::default()
            },
        ),
        (
            "queue + gil",
            ExecutorOptions {
                dispatch: Dispatch::Queue,
                gil: Some(Duration::from_millis(5)),
                ..ExecutorOptions::default()
            },
        ),
        (
            "async (1000 in flight)",
            ExecutorOptions {
                model: Model::Async,
                concurrency: 1000,
                ..ExecutorOptions::default()
            },
        ),
        (
            "processes (pipes)",
            ExecutorOptions {
                model: Model::Processes,
                ..ExecutorOptions::default()
            },
        ),
        (
            "processes + gil",
            ExecutorOptions {
                model: Model::Processes,
                gil: Some(Duration::from_millis(5)),
                ..ExecutorOptions::default()
            },
        ),
    ];
    let mut single = SingleRunner.prepare(1).unwrap();
    let mut points: Vec<_> = options
        .iter()
        .map(|(_, o)| MULTI.prepare_with(2, o).unwrap())
        .collect();
    let mut contenders: Vec<Box<dyn FnMut() -> Duration + '_>> =
        vec![Box::new(|| tier_run(single.as_mut(), &w, &e))];
    for point in points.iter_mut() {
        contenders.push(Box::new(|| tier_run(point.as_mut(), &w, &e)));
    }
    let mut refs: Vec<&mut dyn FnMut() -> Duration> = contenders
        .iter_mut()
        .map(|c| c.as_mut() as &mut dyn FnMut() -> Duration)
        .collect();
    let t = side_by_side(&mut refs);
    let per_task = |s: f64| s / tasks as f64 * 1e9;
    println!("\n200k x ~1us tasks on 2 threads: core time per task over the single tier's");
    for (i, (name, _)) in options.iter().enumerate() {
        println!(
            "  {name:<24} {:+8.1} ns/task  (wall {:.1} ns/task; single {:.1})",
            per_task(2.0 * t[i + 1] - t[0]),
            per_task(t[i + 1]),
            per_task(t[0])
        );
    }
}
