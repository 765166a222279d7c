//! Closed forms the model must reproduce, and its determinism.

use martelli_config::Tier;
use martelli_workload::{Kind, SizeDistribution, Workload};

use crate::{Calibration, Cluster, predict};
use martelli_calibration::example;

/// A machine where only the kernel costs anything: 1 ns per iteration, no overheads, an
/// instant network.
fn ideal() -> Calibration {
    let mut c = example();
    c.kernels.task_fixed_ns = 0.0;
    c.kernels.record_ns = 0.0;
    c.kernels.payload_generate_ns_per_byte = 0.0;
    c.kernels.payload_read_ns_per_byte = 0.0;
    c.kernels.io_overshoot_ns = 0.0;
    c.multi.dispatch_ns = 0.0;
    c.multi.run_overhead_ns = 0.0;
    c.multi.memory_contention = 0.0;
    let d = &mut c.distributed;
    d.latency_us = 0.0;
    d.bandwidth_mb_per_s = 1e15;
    d.dispatch_ns = 0.0;
    d.result_ns = 0.0;
    d.worker_ns = 0.0;
    d.serialize_ns_per_byte = 0.0;
    d.coordinator_message_ns = 0.0;
    d.worker_message_ns = 0.0;
    d.run_overhead_us = 0.0;
    c
}

fn workload(tasks: u64, iterations: u64, serial_fraction: f64) -> Workload {
    Workload {
        serial_fraction,
        ..Workload::fixed("closed-form", 7, Kind::Cpu, tasks, iterations)
    }
}

fn wall(w: &Workload, tier: Tier, cores: usize, cluster: &Cluster, c: &Calibration) -> f64 {
    predict(w, tier, cores, cluster, c).expect("fits").wall_ns
}

#[test]
fn without_overheads_the_makespan_is_ceil_tasks_over_cores_times_the_task_time() {
    let c = ideal();
    // The engine's arithmetic, under the policy that sends every result at once.
    let cluster = Cluster {
        policy: martelli_schedule::Policy::Credit,
        ..Cluster::resolve(None, &c, 64)
    };
    for tasks in [1, 7, 100, 1000, 1001] {
        let w = workload(tasks, 1000, 0.0);
        assert_eq!(wall(&w, Tier::Single, 1, &cluster, &c), tasks as f64 * 1000.0);
        for cores in [2, 3, 5, 8] {
            let expected = tasks.div_ceil(cores as u64) as f64 * 1000.0;
            assert_eq!(
                wall(&w, Tier::Multi, cores, &cluster, &c),
                expected,
                "multi {tasks} tasks {cores} cores"
            );
        }
    }
    // The distributed tier over nodes of 8 with an instant network: the same closed form.
    // Millisecond tasks, so that the runner's rule keeps two tasks per thread in flight (for
    // tiny tasks it queues a millisecond of work per thread, by design unevenly), and at least
    // two tasks per core (the runner hands out two per thread at first, as the model does).
    for (tasks, cores) in [(960, 16), (960, 32), (960, 64), (1000, 8), (128, 64), (999, 9)] {
        let w = workload(tasks, 1_000_000, 0.0);
        let expected = tasks.div_ceil(cores as u64) as f64 * 1e6;
        // Within float rounding of the (near-zero) transfer times.
        let got = wall(&w, Tier::Distributed, cores, &cluster, &c);
        assert!(
            (got - expected).abs() < 1e-6 * expected,
            "distributed {tasks} tasks {cores} cores: {got} vs {expected}"
        );
    }
}

#[test]
fn a_serial_fraction_gives_amdahls_speedup_exactly() {
    let c = ideal();
    // Results at once (credit): Amdahl's law has no message grouping.
    let cluster = Cluster {
        policy: martelli_schedule::Policy::Credit,
        ..Cluster::resolve(None, &c, 64)
    };
    for f in [0.2, 0.5, 0.05] {
        let w = workload(960, 1_000_000, f);
        let t1 = wall(&w, Tier::Single, 1, &cluster, &c);
        // The serial phase is f of the one-core time.
        assert!((t1 - 960e6 / (1.0 - f)).abs() < 1.0, "f {f}: t1 {t1}");
        for (tier, cores) in [
            (Tier::Multi, 2),
            (Tier::Multi, 8),
            (Tier::Distributed, 16),
            (Tier::Distributed, 64),
        ] {
            let speedup = t1 / wall(&w, tier, cores, &cluster, &c);
            let amdahl = 1.0 / (f + (1.0 - f) / cores as f64);
            assert!(
                (speedup - amdahl).abs() / amdahl < 1e-6,
                "f {f}, {tier} on {cores}: {speedup} vs Amdahl {amdahl}"
            );
        }
    }
}

#[test]
fn the_same_inputs_give_the_same_prediction() {
    let c = example();
    let cluster = Cluster::resolve(None, &c, 64);
    let mut w = workload(5000, 20_000, 0.01);
    w.distribution = SizeDistribution::LogNormal { sigma: 1.0 };
    w.payload_bytes = 4096;
    let a = predict(&w, Tier::Distributed, 48, &cluster, &c).unwrap();
    let b = predict(&w, Tier::Distributed, 48, &cluster, &c).unwrap();
    assert_eq!(a.wall_ns, b.wall_ns);
    assert_eq!(a.events, b.events);
    assert_eq!(a.wire, b.wire);
    // Another seed draws other task sizes, hence another schedule.
    w.seed += 1;
    let other = predict(&w, Tier::Distributed, 48, &cluster, &c).unwrap();
    assert_ne!(a.wall_ns, other.wall_ns);
}

#[test]
fn the_network_costs_what_its_knobs_say() {
    let c = example();
    let mut w = workload(2000, 10_000, 0.0);
    let base = Cluster::resolve(None, &c, 32);
    let t = wall(&w, Tier::Distributed, 32, &base, &c);
    let mut slow = base.clone();
    slow.network.latency_us *= 100.0;
    assert!(
        wall(&w, Tier::Distributed, 32, &slow, &c) > t,
        "more latency, longer run"
    );
    // 1 KB payloads over a 1 MB/s coordinator link: the link alone needs ~1 ms per task.
    w.payload_bytes = 1000;
    let mut thin = base.clone();
    thin.network.bandwidth_mb_per_s = 1.0;
    let thin_wall = wall(&w, Tier::Distributed, 32, &thin, &c);
    assert!(thin_wall >= 2000.0 * 1.0e6, "bandwidth-bound: {thin_wall} ns");
    // Every task went out and came back once.
    let run = predict(&w, Tier::Distributed, 32, &base, &c).unwrap();
    let wire = run.wire.unwrap();
    assert_eq!(run.tasks, 2000);
    assert_eq!(wire.workers, 4);
    assert!(wire.bytes_sent >= 2000 * 1048, "{wire:?}");
}

#[test]
fn memory_tasks_slow_down_with_busy_cores_on_their_node() {
    let c = example();
    let cluster = Cluster::resolve(None, &c, 8);
    let mut w = workload(800, 1000, 0.0);
    w.kind = Kind::Memory;
    w.working_set = 1 << 28;
    let t1 = wall(&w, Tier::Single, 1, &cluster, &c);
    let t8 = wall(&w, Tier::Multi, 8, &cluster, &c);
    let speedup = t1 / t8;
    // 5% per other busy core: 8 / 1.35 = 5.9.
    assert!(speedup < 6.2 && speedup > 5.5, "{speedup}");
}

#[test]
fn stream_tasks_share_the_calibrated_bandwidth_and_the_speed_up_flattens_where_it_runs_out() {
    // The example machine: 10, 15, 20, 22 GB/s at 1, 2, 4, 8 threads, flat beyond.
    let c = example();
    let cluster = Cluster::resolve(None, &c, 64);
    let mut w = workload(1024, 100_000, 0.0);
    w.kind = Kind::Memory;
    w.access = martelli_workload::Access::Stream;
    w.working_set = 1 << 30;
    let t1 = wall(&w, Tier::Single, 1, &cluster, &c);
    // One thread moves 24 bytes an iteration at 10 GB/s.
    let per_task = t1 / 1024.0;
    assert!(
        (per_task / (100_000.0 * 2.4) - 1.0).abs() < 0.05,
        "{per_task} ns a task"
    );
    let speedup = |cores| t1 / wall(&w, Tier::Multi, cores, &cluster, &c);
    for (cores, expected) in [(2, 1.5), (4, 2.0), (8, 2.2), (16, 2.2), (64, 2.2)] {
        let s = speedup(cores);
        assert!(
            (s / expected - 1.0).abs() < 0.05,
            "{cores} cores: {s}x, not {expected}x"
        );
    }
    // Random access is not bandwidth-bound: it keeps the linear contention factor.
    w.access = martelli_workload::Access::Random;
    let t1 = wall(&w, Tier::Single, 1, &cluster, &c);
    assert!(t1 / wall(&w, Tier::Multi, 8, &cluster, &c) > 5.0);
}

#[test]
fn cores_are_a_resource_compute_waits_for_one_and_a_shared_thread_runs_at_its_share() {
    use crate::engine::Cpus;
    // Unlimited: every burst starts at once.
    let mut free = Cpus::new(None);
    assert_eq!(free.run(5.0, 10.0), 15.0);
    assert_eq!(free.share(5.0, 10.0), 15.0);
    // Two cores: a third burst waits for the first core to free (first come, first served).
    let mut two = Cpus::new(Some(2));
    assert_eq!(two.run(0.0, 10.0), 10.0);
    assert_eq!(two.run(0.0, 10.0), 10.0);
    assert_eq!(two.run(0.0, 10.0), 20.0);
    // CPU taken without waiting delays the next burst on that core.
    two.steal(0.0, 5.0);
    assert_eq!(two.run(0.0, 1.0), 16.0);
    // A time-shared burst starts at once but, with work queued, runs slower than alone.
    let shared = two.share(0.0, 4.0);
    assert!(shared > 4.0, "{shared}");
    let mut idle = Cpus::new(Some(2));
    assert_eq!(idle.share(0.0, 4.0), 4.0, "nothing queued: its own speed");
}

#[test]
fn woken_waits_queue_for_the_cores_and_a_fitted_wait_cost_reproduces_its_probe() {
    use crate::{WaitCpu, fit_wait_cost};
    let mut c = ideal();
    let mut waits = workload(4096, 0, 0.0);
    waits.kind = Kind::Io;
    waits.io_wait_ns = 1_000_000;
    let multi_wall = |c: &Calibration| {
        let cluster = Cluster {
            colocated_cores: Some(2),
            ..Cluster::resolve(None, c, 256)
        };
        wall(&waits, Tier::Multi, 256, &cluster, c)
    };
    // Free waits: 16 rounds of 1 ms.
    c.multi.wait_cpu = vec![];
    assert!((multi_wall(&c) - 16e6).abs() < 1.0, "{}", multi_wall(&c));
    // 20 us a wake-up on 2 cores: 256 threads need 2.56 ms of cores a round, so the cores
    // are the limit: 4096 x 20 us / 2 = 41 ms.
    c.multi.wait_cpu = vec![WaitCpu {
        threads: 256,
        ns_per_wait: 20_000.0,
        probe_wall_ns: 0.0,
    }];
    let slow = multi_wall(&c);
    assert!((40.96e6..43e6).contains(&slow), "{slow}");
    // The fit finds the cost that takes the probe's wall time, never less than the CPU seen.
    let probe = WaitCpu {
        threads: 256,
        ns_per_wait: 5_000.0,
        probe_wall_ns: slow,
    };
    let fitted = fit_wait_cost(&probe, &waits, &c, 2);
    assert!((fitted - 20_000.0).abs() < 50.0, "{fitted}");
    let quick = WaitCpu {
        probe_wall_ns: 16e6,
        ..probe
    };
    assert_eq!(fit_wait_cost(&quick, &waits, &c, 2), 5_000.0);
    let unmeasured = WaitCpu {
        probe_wall_ns: 0.0,
        ..probe
    };
    assert_eq!(fit_wait_cost(&unmeasured, &waits, &c, 2), 5_000.0);
}

#[test]
fn compute_between_waits_slows_past_the_cores_and_a_fitted_dilation_reproduces_its_probe() {
    use crate::{Dilation, WaitCpu, fit_compute_dilation};
    let mut c = ideal();
    c.multi.wait_cpu = vec![WaitCpu {
        threads: 256,
        ns_per_wait: 5_000.0,
        probe_wall_ns: 0.0,
    }];
    // 4096 tasks of 50 us of compute, then a 1 ms wait, on 256 threads sharing 2 cores.
    let mut probe = workload(4096, 50_000, 0.0);
    probe.kind = Kind::Mixed;
    probe.io_wait_ns = 1_000_000;
    let on = |w: &Workload, threads: usize, c: &Calibration| {
        let cluster = Cluster {
            colocated_cores: Some(2),
            ..Cluster::resolve(None, c, threads)
        };
        (
            wall(w, Tier::Multi, threads, &cluster, c),
            wall(w, Tier::Distributed, threads, &cluster, c),
        )
    };
    // The cores are the limit: 4096 x (50 + 5) us / 2 = 112.6 ms; a fifth slower compute:
    // 4096 x (60 + 5) us / 2 = 133.1 ms. The workers' threads slow down alike.
    let (plain, plain_workers) = on(&probe, 256, &c);
    assert!((112.6e6..115e6).contains(&plain), "{plain}");
    let fifth = |probe_wall_ns: f64| Dilation {
        threads: 256,
        factor: 0.2,
        probe_wall_ns,
    };
    c.multi.compute_dilation = vec![fifth(0.0)];
    let (dilated, dilated_workers) = on(&probe, 256, &c);
    assert!((133.1e6..136e6).contains(&dilated), "{dilated}");
    assert!(
        dilated_workers > plain_workers * 1.1,
        "{plain_workers} -> {dilated_workers}"
    );
    // The fit finds the dilation that takes the probe's wall time.
    c.multi.compute_dilation = vec![];
    let fitted = fit_compute_dilation(&fifth(dilated), &probe, &c, 2);
    assert!((fitted - 0.2).abs() < 1e-3, "{fitted}");
    assert!(fit_compute_dilation(&fifth(plain), &probe, &c, 2) < 1e-3);
    assert_eq!(
        fit_compute_dilation(&fifth(0.0), &probe, &c, 2),
        0.0,
        "no probe, no dilation"
    );
    // 16 threads of 50 us + 1 ms ask for less than a core: their wall time says nothing of
    // the compute's speed.
    let few = Dilation {
        threads: 16,
        ..fifth(dilated)
    };
    assert_eq!(fit_compute_dilation(&few, &probe, &c, 2), 0.0);
    // Tasks that only wait, tasks that only compute, and threads the cores hold: as before.
    let mut waits = probe.clone();
    waits.kind = Kind::Io;
    waits.iterations = 0;
    let mut compute = probe.clone();
    compute.kind = Kind::Cpu;
    compute.io_wait_ns = 0;
    for (w, threads) in [(&waits, 256), (&compute, 256), (&probe, 2)] {
        let mut undilated = c.clone();
        undilated.multi.compute_dilation = vec![];
        c.multi.compute_dilation = vec![fifth(0.0)];
        assert_eq!(
            on(w, threads, &c),
            on(w, threads, &undilated),
            "{:?} on {threads}",
            w.kind
        );
    }
}

#[test]
fn a_workers_wait_cost_is_fitted_to_its_own_probe_on_the_distributed_model() {
    use crate::{WaitCpu, fit_worker_wait_cost};
    let mut c = ideal();
    let mut waits = workload(4096, 0, 0.0);
    waits.kind = Kind::Io;
    waits.io_wait_ns = 1_000_000;
    // One worker of 256 threads spawned on this machine's 2 cores, as `calibrate` runs it.
    let worker_wall = |c: &Calibration| {
        let spec = martelli_config::ClusterSpec {
            nodes: Some(1),
            cores_per_node: Some(256),
            colocated_cores: Some(2),
            ..Default::default()
        };
        let cluster = Cluster::resolve(Some(&spec), c, 256);
        wall(&waits, Tier::Distributed, 256, &cluster, c)
    };
    c.distributed.worker_wait_cpu = vec![WaitCpu {
        threads: 256,
        ns_per_wait: 20_000.0,
        probe_wall_ns: 0.0,
    }];
    let slow = worker_wall(&c);
    // The cores are the limit: 4096 x 20 us / 2 = 41 ms at least.
    assert!(slow >= 40.96e6, "{slow}");
    // The multi tier's cost does not enter the worker's fit, and the worker's own CPU per
    // wait is its floor.
    c.multi.wait_cpu = vec![WaitCpu {
        threads: 256,
        ns_per_wait: 1_000.0,
        probe_wall_ns: 0.0,
    }];
    let probe = WaitCpu {
        threads: 256,
        ns_per_wait: 5_000.0,
        probe_wall_ns: slow,
    };
    let fitted = fit_worker_wait_cost(&probe, &waits, &c, 2);
    assert!((fitted - 20_000.0).abs() < 100.0, "{fitted}");
    let quick = WaitCpu {
        probe_wall_ns: 16e6,
        ..probe
    };
    assert_eq!(fit_worker_wait_cost(&quick, &waits, &c, 2), 5_000.0);
}

#[test]
fn threads_whose_refills_come_later_than_their_tasks_end_are_counted_as_starved() {
    // 400 tasks of 1 ms (cpu_ns_per_iteration = 1) on one node of 4 threads.
    let w = workload(400, 1_000_000, 0.0);
    let starved = |in_flight: u32, latency_us: f64| {
        let mut c = ideal();
        c.distributed.latency_us = latency_us;
        let spec = martelli_config::ClusterSpec {
            nodes: Some(1),
            cores_per_node: Some(4),
            in_flight: Some(in_flight),
            ..Default::default()
        };
        // A fixed depth under the credit policy (results at once): guided's grouped results
        // would starve 4 tasks per thread by design, which is why it queues 32 ms.
        let cluster = Cluster {
            policy: martelli_schedule::Policy::Credit,
            ..Cluster::resolve(Some(&spec), &c, 4)
        };
        let run = predict(&w, Tier::Distributed, 4, &cluster, &c).expect("fits");
        run.wire
            .expect("a distributed run has wire figures")
            .starved_takes
    };
    // One task per thread and a 2 ms round trip: every thread waits for every refill.
    assert!(starved(1, 1_000.0) >= 396, "{}", starved(1, 1_000.0));
    // Four per thread and no latency: a refill is always there in time; threads run out only
    // at the end, each once.
    assert_eq!(starved(4, 0.0), 4);
}

/// The predicted point of `w` on `tier` at `cores`, with its speed-up and breakdown filled
/// against the predicted 1-core run, as `predict_config` and `Results` do it.
fn breakdown_of(
    w: &Workload,
    tier: Tier,
    cores: usize,
    cluster: &Cluster,
    c: &Calibration,
) -> martelli_results::Breakdown {
    use martelli_results::{Breakdown, Tier};
    let one = predict(w, Tier::Single, 1, cluster, c).unwrap();
    let run = predict(w, tier, cores, cluster, c).unwrap();
    let point_tier = if tier == Tier::Distributed {
        Tier::Distributed
    } else {
        Tier::Multi
    };
    let p = crate::point("s", point_tier, cores, w, run);
    let b = Breakdown::of(&p.useful.unwrap(), cores, p.wall_s, one.wall_ns / 1e9).unwrap();
    let efficiency = one.wall_ns / 1e9 / (cores as f64 * p.wall_s);
    assert!(
        (b.product() - efficiency).abs() < 1e-9 * efficiency.max(1.0),
        "{b:?} vs {efficiency}"
    );
    b
}

#[test]
fn the_models_breakdown_names_each_loss_where_it_is() {
    let c = ideal();
    let cluster = Cluster::resolve(None, &c, 64);
    // Nothing lost: every factor 1.
    let b = breakdown_of(&workload(800, 1000, 0.0), Tier::Multi, 8, &cluster, &c);
    for v in [b.load_balance, b.communication, b.computation] {
        assert!((v - 1.0).abs() < 1e-9, "{b:?}");
    }
    // Nine equal tasks on eight threads: one thread runs two; load balance 9/16.
    let b = breakdown_of(&workload(9, 1000, 0.0), Tier::Multi, 8, &cluster, &c);
    assert!((b.load_balance - 9.0 / 16.0).abs() < 1e-9, "{b:?}");
    assert_eq!(b.limiting().0, "load_balance");
    // Half the work serial: communication, not load balance, loses it.
    let b = breakdown_of(&workload(800, 1000, 0.5), Tier::Multi, 8, &cluster, &c);
    assert!(
        (b.load_balance - 1.0).abs() < 1e-9 && b.communication < 0.3,
        "{b:?}"
    );
    // Big payloads over a slow link: the transfer factor, from the ideal-network replay.
    let mut slow = c.clone();
    slow.distributed.bandwidth_mb_per_s = 10.0;
    slow.distributed.latency_us = 100.0;
    let cluster = Cluster::resolve(None, &slow, 64);
    let mut w = workload(400, 100_000, 0.0);
    w.payload_bytes = 64 * 1024;
    let run = predict(&w, Tier::Distributed, 16, &cluster, &slow).unwrap();
    let transfer = crate::transfer(&w, 16, &cluster, &slow, &run).unwrap();
    assert!(
        transfer < 0.2,
        "64 KiB a task at 10 MB/s: the link holds the run ({transfer})"
    );
    let mut useful =
        martelli_results::Useful::of(&run.lanes_ns.iter().map(|&v| v as u64).collect::<Vec<_>>(), 0);
    useful.transfer = Some(transfer);
    let one = predict(&w, Tier::Single, 1, &cluster, &slow).unwrap();
    let b = martelli_results::Breakdown::of(&useful, 16, run.wall_ns / 1e9, one.wall_ns / 1e9).unwrap();
    assert_eq!(b.limiting().0, "transfer", "{b:?}");
}
