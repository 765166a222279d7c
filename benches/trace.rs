//! What `--trace` costs: the same runs with task spans recorded and without, side by side in
//! one process, alternating so that the machine's drift hits both alike.
//!
//! `cargo bench --bench trace`. Tiny tasks (about 1 us of compute) are the worst case: the span
//! is a larger share of each task. Prints each case's median wall time and the ratio.

use martelli_runner::{MultiRunner, Runner, SingleRunner, probe_workload, samples, set_tracing};
use martelli_workload::Kind;

const ROUNDS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    println!("martelli trace overhead (median of {ROUNDS} alternating runs per case)");
    // About 0.4 s of work a run on one core: ~1.5 us tasks and ~27 us tasks.
    for (tasks, iterations) in [(300_000u64, 1_000u64), (15_000, 20_000)] {
        let workload = probe_workload(Kind::Cpu, tasks, iterations);
        let cases: [(&str, &dyn Runner, usize); 2] = [
            ("single", &SingleRunner, 1),
            ("multi", &MultiRunner::default(), 2),
        ];
        for (name, runner, cores) in cases {
            let (mut off, mut on) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                set_tracing(false);
                off.extend(
                    samples(runner, cores, &workload, 1)
                        .expect("the probe runs")
                        .iter()
                        .map(|s| s.wall.as_secs_f64()),
                );
                set_tracing(true);
                on.extend(
                    samples(runner, cores, &workload, 1)
                        .expect("the probe runs")
                        .iter()
                        .map(|s| s.wall.as_secs_f64()),
                );
                set_tracing(false);
            }
            let (off, on) = (median(off), median(on));
            println!(
                "{name:<7} {cores} core(s), {:>7} tasks of {iterations:>6} iterations: off {:.4} s, on {:.4} s, traced/untraced {:.3}",
                workload.tasks,
                off,
                on,
                on / off
            );
        }
    }
}
