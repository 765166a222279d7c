//! `martelli calibrate`: measure this machine's costs for the simulator, write them as TOML.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use martelli_results::{Machine, utc_now, write_atomic};
use martelli_sim::{CALIBRATION_VERSION, Calibration, WaitCpu};

use crate::cli::CalibrateArgs;

/// Measures, writes the file, prints what was found.
pub fn calibrate(args: CalibrateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let calibration = measure(args.rounds as usize)?;
    write(&args.out, &calibration)?;
    crate::cmd::run::say(&format!(
        "{}calibrated in {:.1}s; wrote {}\n",
        summary(&calibration),
        started.elapsed().as_secs_f64(),
        args.out.display()
    ))
}

/// Writes a calibration file atomically.
pub fn write(path: &Path, calibration: &Calibration) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_atomic(path, calibration.to_toml().as_bytes())?;
    Ok(())
}

/// Measures this machine `rounds` times over (kernels, thread pool, loopback network with a
/// spawned worker) and keeps each figure's median across the rounds, with how far it moved
/// (`spread`). A spinner names each step when stdout is a terminal.
pub fn measure(rounds: usize) -> anyhow::Result<Calibration> {
    let machine = Machine::current();
    let rounds = rounds.max(1);
    let measured = (1..=rounds)
        .map(|round| measure_round(&machine, round, rounds))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut calibration = combine(&measured)?;
    fit_wait_costs(&mut calibration, machine.logical_cores);
    Ok(calibration)
}

/// The figures of several rounds, each the median across them; `spread` says how far each
/// figure that moved did (half its range over its median; 1 for one around a median of 0).
fn combine(rounds: &[Calibration]) -> anyhow::Result<Calibration> {
    let values = rounds
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<Vec<_>, _>>()?;
    let mut spread = std::collections::BTreeMap::new();
    let merged = merge(&values, "", &mut spread);
    let mut combined: Calibration = serde_json::from_value(merged)?;
    combined.spread = spread;
    Ok(combined)
}

/// The median of `values` (the same figure of each round) at `path`, recursively.
fn merge(
    values: &[serde_json::Value],
    path: &str,
    spread: &mut std::collections::BTreeMap<String, f64>,
) -> serde_json::Value {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match &values[0] {
        Value::Object(first) => Value::Object(
            first
                .keys()
                .map(|key| {
                    let each: Vec<Value> = values.iter().map(|v| v[key].clone()).collect();
                    (key.clone(), merge(&each, &join(key), spread))
                })
                .collect(),
        ),
        Value::Array(first) => Value::Array(
            (0..first.len())
                .map(|i| {
                    let each: Vec<Value> = values.iter().map(|v| v[i].clone()).collect();
                    merge(&each, &format!("{path}[{i}]"), spread)
                })
                .collect(),
        ),
        Value::Number(_) => {
            let mut xs: Vec<f64> = values.iter().filter_map(Value::as_f64).collect();
            if xs.len() != values.len() || xs.iter().all(|x| *x == xs[0]) {
                return values[0].clone();
            }
            xs.sort_by(f64::total_cmp);
            let median = xs[xs.len() / 2];
            let half_range = (xs[xs.len() - 1] - xs[0]) / 2.0;
            let moved = if median.abs() > 0.0 {
                half_range / median.abs()
            } else {
                1.0
            };
            spread.insert(path.to_string(), moved);
            serde_json::json!(median)
        }
        other => other.clone(),
    }
}

/// One round of measurements, the wait costs not yet fitted.
fn measure_round(machine: &Machine, round: usize, rounds: usize) -> anyhow::Result<Calibration> {
    let target = if std::io::stdout().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template("{spinner} calibrating: {msg}").expect("the template is valid"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let step = |what: &str| {
        tracing::info!(round, step = what, "calibrating");
        bar.set_message(format!("round {round} of {rounds}: {what}"));
    };
    let kernels = martelli_runner::measure_kernels(step).context("calibration failed")?;
    let multi =
        martelli_runner::measure_pool(&kernels, machine.logical_cores, step).context("calibration failed")?;
    let exe = std::env::current_exe().context("cannot find the martelli binary to spawn a worker")?;
    let distributed = martelli_distributed::measure_network(&exe, &kernels, step);
    bar.finish_and_clear();
    Ok(Calibration {
        version: CALIBRATION_VERSION,
        martelli_version: env!("CARGO_PKG_VERSION").into(),
        measured_at: utc_now(),
        machine: format!("{}, {} logical cores", machine.cpu_model, machine.logical_cores),
        kernels,
        multi,
        distributed: distributed?,
        spread: Default::default(),
    })
}

/// What a wait takes from the cores, as the model uses it. The CPU a process is charged per
/// wait is largest when its cores idle (each wake-up then also wakes a core; seen here: 17 us
/// a wait with 4 threads) and smaller when they are busy, which is when it matters: so the
/// figure used for every pool size is the one that reproduces the wall time of the largest
/// pool's probe (the one that fills this machine's cores; with 256 threads on 2 cores,
/// 10-15 us), never less than the CPU charged there. Smaller pools' probes leave the cores
/// idle, and a fit to their wall time is ill-posed. The multi tier's pool and a worker's are
/// fitted each to its own probe: a saturated worker's threads also sleep and wake when their
/// queue runs dry, which the multi tier's shared counter never does; a worker's cost is never
/// less than the pool's. On this VM the worker's probe (one worker of 256 sleeping threads)
/// took 75-135 ms across calibrations while the pool's took 71-79 ms. Last, how much slower
/// compute between waits runs past the cores (`multi.compute_dilation`) is fitted to the
/// largest pool's probe of ~50 us of compute before each wait: what its wall time shows
/// beyond the compute and the wait, each measured alone (each thread resumes on a core other
/// threads used, caches cold, and is cut into by their wake-ups). On this VM, per task of a
/// pool of 256 threads, beyond the compute and a wait's 9 us: 2-6 us at 10 us of compute,
/// 6-8 us at 20, 10 us at 40, 23 us at 80: proportional to the compute more than fixed.
fn fit_wait_costs(calibration: &mut Calibration, cores: usize) {
    let largest = |table: &[WaitCpu]| table.iter().max_by_key(|e| e.threads).copied();
    let mut pool = 0.0;
    if let Some(entry) = largest(&calibration.multi.wait_cpu) {
        let probe = martelli_runner::wait_workload(entry.threads);
        pool = martelli_sim::fit_wait_cost(&entry, &probe, calibration, cores);
        for e in &mut calibration.multi.wait_cpu {
            e.ns_per_wait = pool;
        }
        // With the cost of a wait known, how much slower compute between waits runs.
        let probe = martelli_runner::dilation_workload();
        let fitted: Vec<f64> = calibration
            .multi
            .compute_dilation
            .iter()
            .map(|e| martelli_sim::fit_compute_dilation(e, &probe, calibration, cores))
            .collect();
        for (e, factor) in calibration.multi.compute_dilation.iter_mut().zip(fitted) {
            e.factor = factor;
        }
    }
    if let Some(entry) = largest(&calibration.distributed.worker_wait_cpu) {
        let probe = martelli_runner::wait_workload(entry.threads);
        // A worker's thread sleeps and wakes as a pool's does, and more: never less than the
        // pool's cost (a worker's probe that ran fast is as likely the machine of the moment).
        let busy = martelli_sim::fit_worker_wait_cost(&entry, &probe, calibration, cores).max(pool);
        for e in &mut calibration.distributed.worker_wait_cpu {
            e.ns_per_wait = busy;
        }
    }
}

/// What a calibration says, in a few lines.
pub fn summary(c: &Calibration) -> String {
    let k = &c.kernels;
    let m = &c.multi;
    let d = &c.distributed;
    let dilation = if m.compute_dilation.is_empty() {
        "not measured".to_string()
    } else {
        m.compute_dilation
            .iter()
            .map(|d| format!("{:.0}% at {} threads", d.factor * 100.0, d.threads))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let memory: Vec<String> = k
        .memory
        .iter()
        .map(|e| format!("{:.1} ns at {}", e.ns_per_iteration, size(e.working_set_bytes)))
        .collect();
    let bandwidth = if m.memory_bandwidth.is_empty() {
        "not measured".to_string()
    } else {
        m.memory_bandwidth
            .iter()
            .map(|b| format!("{:.1} GB/s on {}", b.bytes_per_s / 1e9, b.threads))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "machine           {}\n\
         cpu kernel        {:.3} ns/iteration; {:.0} ns fixed and {:.0} ns of measuring per task\n\
         memory kernel     {}; stream bandwidth {}\n\
         payload           {:.3} ns/byte to generate, {:.3} ns/byte to read\n\
         I/O wait          a sleep lasts {:.0} us longer than asked and takes {:.1} us of a busy core; \
         compute between waits runs slower past the cores: {}\n\
         multi tier        {:.0} ns hand-off per task, {:.1} us per run, memory contention {:.1}% per busy core\n\
         distributed tier  {:.1} us latency one way, {:.0} MB/s, {:.0} + {:.0} ns per task at the coordinator, \
         {:.0} ns at the worker, {:.3} ns/byte to encode\n",
        c.machine,
        k.cpu_ns_per_iteration,
        k.task_fixed_ns,
        k.record_ns,
        memory.join(", "),
        bandwidth,
        k.payload_generate_ns_per_byte,
        k.payload_read_ns_per_byte,
        k.io_overshoot_ns / 1e3,
        m.wait_cpu_ns(1024) / 1e3,
        dilation,
        m.dispatch_ns,
        m.run_overhead_ns / 1e3,
        m.memory_contention * 100.0,
        d.latency_us,
        d.bandwidth_mb_per_s,
        d.dispatch_ns,
        d.result_ns,
        d.worker_ns,
        d.serialize_ns_per_byte,
    ) + &spread_lines(c)
}

/// The widest spreads across the rounds, and a warning for each figure that moved more than
/// [`WIDE_SPREAD`].
fn spread_lines(c: &Calibration) -> String {
    if c.spread.is_empty() {
        return String::new();
    }
    let mut by_size: Vec<(&String, &f64)> = c.spread.iter().collect();
    by_size.sort_by(|a, b| b.1.total_cmp(a.1));
    let widest: Vec<String> = by_size
        .iter()
        .take(3)
        .map(|(figure, s)| format!("{figure} ±{:.1}%", **s * 100.0))
        .collect();
    let mut out = format!(
        "spread            {} figures moved between rounds; the widest: {}\n",
        c.spread.len(),
        widest.join(", ")
    );
    let wide: Vec<String> = by_size
        .iter()
        .filter(|(_, s)| **s > WIDE_SPREAD)
        .map(|(figure, s)| format!("{figure} ±{:.0}%", **s * 100.0))
        .collect();
    if !wide.is_empty() {
        out.push_str(&format!(
            "warning: {} moved more than ±{:.0}% between rounds: {}. The machine was busy or \
             these figures are noisy here, and predictions that rest on them are as uncertain \
             (calibrate again on a quiet machine, or with more --rounds)\n",
            if wide.len() == 1 {
                "1 figure".to_string()
            } else {
                format!("{} figures", wide.len())
            },
            WIDE_SPREAD * 100.0,
            wide.join(", ")
        ));
    }
    out
}

/// A figure that moves more than this between rounds (±10%) is warned about.
const WIDE_SPREAD: f64 = 0.10;

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_combine_into_medians_with_the_spread_of_each_figure_that_moved() {
        let base = martelli_sim::Calibration {
            spread: Default::default(),
            ..martelli_sim::example_calibration()
        };
        let mut rounds = vec![base.clone(), base.clone(), base.clone()];
        for (round, contention) in rounds.iter_mut().zip([0.02, 0.04, 0.10]) {
            round.multi.memory_contention = contention;
        }
        rounds[2].kernels.memory[1].ns_per_iteration *= 1.02;
        let combined = combine(&rounds).unwrap();
        assert_eq!(combined.multi.memory_contention, 0.04, "the median");
        assert!(
            (combined.spread["multi.memory_contention"] - 1.0).abs() < 1e-9,
            "±0.04 around 0.04"
        );
        assert!(combined.spread.contains_key("kernels.memory[1].ns_per_iteration"));
        assert_eq!(
            combined.spread.len(),
            2,
            "figures that did not move are left out: {:?}",
            combined.spread
        );
        assert_eq!(combined.kernels, base.kernels, "the median of 1, 1, 1.02 is 1");
        let text = spread_lines(&combined);
        assert!(
            text.contains(
                "warning: 1 figure moved more than ±10% between rounds: multi.memory_contention ±100%."
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "the widest: multi.memory_contention ±100.0%, kernels.memory[1].ns_per_iteration ±1.0%"
            ),
            "{text}"
        );
        assert!(combined.check().is_ok());
    }
}
