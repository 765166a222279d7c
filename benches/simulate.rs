//! How fast the simulator simulates: simulated tasks per second of real time, and whether its
//! memory stays flat as the task count grows.
//!
//! `cargo bench --bench simulate`. Targets (issue 5): >= 5 million simulated tasks per second;
//! 1 million tasks on 1,024 simulated cores in under 1 s; memory flat in the task count.

use std::time::{Duration, Instant};

mod common;

use common::{cpu_workload, iterations_for, median};
use martelli_config::Tier;
use martelli_sim::{CALIBRATION_VERSION, Calibration, Cluster, MultiCosts, NetworkCosts, predict};
use martelli_workload::SizeDistribution;

/// Peak resident memory of this process so far, in KiB (Linux), else 0.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// This machine's kernels and nominal pool and network costs: what the cases run on.
fn bench_calibration() -> Calibration {
    // This machine's kernels and pool; a nominal 10 GbE network (the speed of the simulator
    // does not depend on the values).
    let kernels = martelli_runner::measure_kernels(|_| {}).expect("the kernel probes run");
    // The pool's costs do not change how fast the simulator runs: nominal ones, so the
    // benchmark does not start pools of hundreds of threads before it measures memory.
    let multi = MultiCosts {
        dispatch_ns: 50.0,
        run_overhead_ns: 20_000.0,
        memory_contention: 0.0,
        wait_cpu: Vec::new(),
        compute_dilation: Vec::new(),
        memory_bandwidth: Vec::new(),
    };
    Calibration {
        version: CALIBRATION_VERSION,
        martelli_version: env!("CARGO_PKG_VERSION").into(),
        measured_at: String::new(),
        machine: "bench".into(),
        kernels,
        multi,
        distributed: NetworkCosts {
            latency_us: 50.0,
            bandwidth_mb_per_s: 1250.0,
            dispatch_ns: 500.0,
            result_ns: 500.0,
            worker_ns: 800.0,
            serialize_ns_per_byte: 0.5,
            coordinator_message_ns: 10_000.0,
            worker_message_ns: 10_000.0,
            run_overhead_us: 100.0,
            worker_wait_cpu: Vec::new(),
        },
        spread: Default::default(),
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let calibration = bench_calibration();
    println!("martelli simulator benchmark (median of 3 per case)\n");
    let one_ms = iterations_for(Duration::from_millis(1));
    let lognormal = SizeDistribution::LogNormal { sigma: 0.5 };
    let fixed = SizeDistribution::Fixed;
    let cases = [
        (
            "1 M tasks, distributed, 1,024 cores",
            1_000_000,
            Tier::Distributed,
            1024,
            lognormal.clone(),
        ),
        (
            "1 M tasks, distributed, 1,024 cores",
            1_000_000,
            Tier::Distributed,
            1024,
            fixed.clone(),
        ),
        (
            "10 M tasks, distributed, 64 cores",
            10_000_000,
            Tier::Distributed,
            64,
            lognormal.clone(),
        ),
        (
            "10 M tasks, distributed, 64 cores",
            10_000_000,
            Tier::Distributed,
            64,
            fixed.clone(),
        ),
        (
            "10 M tasks, multi, 8 cores",
            10_000_000,
            Tier::Multi,
            8,
            lognormal.clone(),
        ),
        (
            "10 M tasks, single",
            10_000_000,
            Tier::Single,
            1,
            lognormal.clone(),
        ),
        (
            "1 M tasks, distributed, 64 cores",
            1_000_000,
            Tier::Distributed,
            64,
            lognormal.clone(),
        ),
    ];
    for (name, tasks, tier, cores, distribution) in cases {
        // 1 ms tasks; lognormal sizes vary, so the schedule is not trivial.
        let mut w = cpu_workload(tasks, one_ms, 0);
        let sizes = if distribution == fixed {
            "fixed"
        } else {
            "lognormal"
        };
        w.distribution = distribution;
        // Reset the peak-RSS mark (Linux), so each case reports its own peak.
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let cluster = Cluster::resolve(None, &calibration, cores);
        let mut times = Vec::new();
        let mut events = 0;
        for _ in 0..3 {
            let start = Instant::now();
            let run = predict(&w, tier, cores, &cluster, &calibration).expect("fits");
            times.push(start.elapsed().as_secs_f64());
            events = run.events;
        }
        let best = median(times);
        println!(
            "{name:<36} {sizes:<9} {:>7.3} s real  {:>6.2} M simulated tasks/s  {:>6.2} M events/s  peak RSS {} KiB",
            best,
            tasks as f64 / best / 1e6,
            events as f64 / best / 1e6,
            peak_rss_kib()
        );
    }
}
