//! The checksum invariant across tiers: the same workload gives the same checksum on the
//! single tier and on the multi tier at every thread count, for every kind, distribution,
//! payload and serial fraction (the model is ripgrep's "every configuration, same output").

use std::time::Duration;

use martelli_config::{Dispatch, ExecutorOptions, Model};
use martelli_workload::{Executor, Kind, SizeDistribution, Workload};

use crate::{Job, MultiRunner, Runner, SingleRunner};

fn workload(
    kind: Kind,
    distribution: SizeDistribution,
    payload_bytes: u64,
    serial_fraction: f64,
) -> Workload {
    let iterations = if kind.computes() { 300 } else { 0 };
    Workload {
        io_wait_ns: if kind.waits() { 20_000 } else { 0 },
        distribution,
        serial_fraction,
        payload_bytes,
        working_set: if kind == Kind::Memory { 1 << 20 } else { 0 },
        ..Workload::fixed("det", 0xfeed, kind, 97, iterations)
    }
}

/// Every executor option of the multi tier: futures or queue, with or without a GIL.
fn executors() -> Vec<ExecutorOptions> {
    let mut all = Vec::new();
    for dispatch in [Dispatch::Futures, Dispatch::Queue] {
        for gil in [None, Some(Duration::from_micros(200))] {
            all.push(ExecutorOptions {
                dispatch,
                gil,
                ..ExecutorOptions::default()
            });
        }
    }
    for concurrency in [5, 1000] {
        all.push(ExecutorOptions {
            model: Model::Async,
            concurrency,
            ..ExecutorOptions::default()
        });
    }
    all
}

fn checksum(runner: &dyn Runner, cores: usize, workload: &Workload) -> (u64, u64) {
    checksum_with(runner, cores, workload, &ExecutorOptions::default())
}

fn checksum_with(
    runner: &dyn Runner,
    cores: usize,
    workload: &Workload,
    options: &ExecutorOptions,
) -> (u64, u64) {
    let executor = Executor::new(workload);
    let mut point = runner.prepare_with(cores, options).unwrap();
    let sample = point
        .run(&Job {
            workload,
            executor: &executor,
        })
        .unwrap();
    (sample.checksum, sample.tasks_completed)
}

#[test]
fn every_kind_gives_one_checksum_on_every_tier_and_core_count() {
    let distributions = [
        SizeDistribution::Fixed,
        SizeDistribution::Uniform { spread: 0.9 },
        SizeDistribution::LogNormal { sigma: 1.5 },
        SizeDistribution::cycle(&[3, 1, 1, 7]).unwrap().1,
    ];
    for kind in [Kind::Cpu, Kind::Memory, Kind::Io, Kind::Mixed] {
        for distribution in &distributions {
            for (payload, serial) in [(0, 0.0), (333, 0.25)] {
                let w = workload(kind, distribution.clone(), payload, serial);
                let reference = checksum(&SingleRunner, 1, &w);
                assert_eq!(
                    reference.1,
                    97 + u64::from(serial > 0.0),
                    "{kind:?}: every task counted"
                );
                // One core holding many waits: an event loop, a thread per task in flight.
                for (model, concurrency) in [(Model::Async, 1), (Model::Async, 50), (Model::Threads, 20)] {
                    let options = ExecutorOptions {
                        model,
                        concurrency,
                        ..ExecutorOptions::default()
                    };
                    assert_eq!(
                        checksum_with(&SingleRunner, 1, &w, &options),
                        reference,
                        "{kind:?} {distribution:?} payload {payload} serial {serial}: single, {options:?}"
                    );
                }
                // More threads than this machine has cores run as plain threads, fewer on rayon.
                let oversubscribed = std::thread::available_parallelism().map_or(1, |n| n.get()) + 3;
                for cores in [2, 3, 4, 8, oversubscribed] {
                    for options in executors() {
                        assert_eq!(
                            checksum_with(&MultiRunner::default(), cores, &w, &options),
                            reference,
                            "{kind:?} {distribution:?} payload {payload} serial {serial}: multi on {cores} cores, \
                             {options:?}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_checksum_sees_a_different_workload() {
    let w = workload(Kind::Cpu, SizeDistribution::Fixed, 0, 0.0);
    let base = checksum(&SingleRunner, 1, &w);
    let fewer = checksum(&SingleRunner, 1, &w.with_tasks(96));
    let other_seed = checksum(&SingleRunner, 1, &Workload { seed: 1, ..w.clone() });
    assert_ne!(base.0, fewer.0);
    assert_ne!(base.0, other_seed.0);
}

#[test]
fn weak_scaling_points_match_the_single_tier_on_the_same_task_count() {
    let w = workload(Kind::Mixed, SizeDistribution::Uniform { spread: 0.5 }, 64, 0.1);
    for cores in [2, 4] {
        let grown = w.with_tasks(w.tasks * cores as u64);
        assert_eq!(
            checksum(&MultiRunner::default(), cores, &grown),
            checksum(&SingleRunner, 1, &grown)
        );
    }
}

#[test]
fn the_single_tier_refuses_more_than_one_core() {
    assert!(SingleRunner.prepare(2).is_err());
}

#[test]
fn latency_and_first_result_are_measured_per_task() {
    // A sleep lasts at least as long as asked, so these bounds hold on any machine.
    let w = Workload {
        io_wait_ns: 300_000,
        ..workload(Kind::Io, SizeDistribution::Fixed, 0, 0.0)
    };
    let executor = Executor::new(&w);
    // Two threads, and more threads than this machine has cores (threads started before the
    // clock, behind a gate).
    let past = std::thread::available_parallelism().map_or(1, |n| n.get()) + 3;
    let multi = MultiRunner::default();
    for (runner, cores) in [(&SingleRunner as &dyn Runner, 1), (&multi, 2), (&multi, past)] {
        let sample = runner
            .prepare(cores)
            .unwrap()
            .run(&Job {
                workload: &w,
                executor: &executor,
            })
            .unwrap();
        let p50 = sample.latency_ns.value_at_quantile(0.5);
        assert!(
            p50 >= 300_000,
            "{:?}: p50 {p50} ns below the 300 us wait",
            runner.tier()
        );
        assert!(sample.first_result.as_nanos() >= 300_000, "{:?}", runner.tier());
        assert!(sample.first_result < sample.wall, "{:?}", runner.tier());
        assert_eq!(
            sample.latency_ns.len(),
            w.tasks,
            "{:?}: one latency per task",
            runner.tier()
        );
    }
}

#[test]
fn a_compute_point_that_did_not_have_its_cores_is_said_to_be_on_a_busy_machine() {
    let point = |cores: usize, cpu_s: f64, wall_s: f64, oversubscribed: bool| -> martelli_results::Point {
        serde_json::from_value(serde_json::json!({
            "series": "s", "tier": "multi", "cores": cores, "tasks": 10, "iterations": 1, "repeats": 1,
            "wall_s": wall_s, "wall_s_min": wall_s, "wall_s_max": wall_s, "wall_s_repeats": [wall_s],
            "tasks_per_s": 1.0, "speedup": 1.0, "efficiency": 1.0,
            "latency_us": {"p50": 1.0, "p95": 1.0, "p99": 1.0}, "mean_task_us": 1.0,
            "first_result_s": 0.1, "cpu_s": cpu_s, "tasks_completed": 10, "checksum": "1",
            "oversubscribed": oversubscribed
        }))
        .unwrap()
    };
    // Two threads, one core's worth of CPU: the machine was busy.
    let w = crate::sweep::busy_warning(&point(2, 0.5, 0.5, false)).expect("a warning");
    assert!(
        w.contains("kept 1.00 cores busy") && w.contains("its 2 cores"),
        "{w}"
    );
    // Both cores used: nothing to say; past the machine's cores, or too short a run: not judged.
    assert!(crate::sweep::busy_warning(&point(2, 0.98, 0.5, false)).is_none());
    assert!(crate::sweep::busy_warning(&point(4, 0.5, 0.5, true)).is_none());
    assert!(crate::sweep::busy_warning(&point(2, 0.01, 0.01, false)).is_none());
    // Half serial on 2 cores: 1.33 cores busy on average, but that is the workload's serial
    // phase: its threads were inside tasks for as long as they used the CPU.
    let half_serial = martelli_results::Point {
        useful: Some(martelli_results::Useful::of(
            &[250_000_000, 250_000_000],
            500_000_000,
        )),
        ..point(2, 1.0, 0.75, false)
    };
    assert!(crate::sweep::busy_warning(&half_serial).is_none());
    // The same time inside tasks with half of it on a core: another process had the cores.
    let hogged = martelli_results::Point {
        cpu_s: 0.5,
        ..half_serial
    };
    let w = crate::sweep::busy_warning(&hogged).expect("a warning");
    assert!(
        w.contains("inside tasks for 1.0000s, on a core for 0.5000s"),
        "{w}"
    );
}

#[test]
fn a_calibration_probe_that_cannot_run_fails_with_its_cause_never_a_zero() {
    // The single tier refuses two cores: the probe's error comes back, not Duration::ZERO.
    let w = crate::probe_workload(Kind::Cpu, 10, 10);
    let e = crate::median_run(&SingleRunner, 2, &w, 3).expect_err("the probe cannot run");
    assert!(!e.to_string().is_empty());
    assert!(crate::samples(&SingleRunner, 2, &w, 3).is_err());
    assert_eq!(crate::samples(&SingleRunner, 1, &w, 3).unwrap().len(), 3);
}
