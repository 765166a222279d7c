//! What the benchmarks share: a plain CPU workload and calibration of its task size.

use std::time::Duration;

use martelli_runner::calibrate;
use martelli_workload::{Kind, Workload};

/// `tasks` CPU tasks of `iterations` iterations each, with `payload_bytes` of input.
pub fn cpu_workload(tasks: u64, iterations: u64, payload_bytes: u64) -> Workload {
    Workload {
        payload_bytes,
        ..Workload::fixed("bench", 7, Kind::Cpu, tasks, iterations)
    }
}

/// Iterations for one task of `cost` on this machine.
pub fn iterations_for(cost: Duration) -> u64 {
    calibrate(&cpu_workload(1, 1, 0), cost).iterations
}

/// Median of some timings.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
