//! `martelli calibrate`: measure this machine's costs for the simulator, write them as TOML.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use martelli_results::{Machine, utc_now, write_atomic};
use martelli_sim::{CALIBRATION_VERSION, Calibration};

use crate::cli::CalibrateArgs;

/// Measures, writes the file, prints what was found.
pub fn calibrate(args: CalibrateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let calibration = measure()?;
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

/// Measures this machine: kernels, thread pool, loopback network (with a spawned worker). A
/// spinner names each step when stdout is a terminal.
pub fn measure() -> anyhow::Result<Calibration> {
    let machine = Machine::current();
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
        tracing::info!(step = what, "calibrating");
        bar.set_message(what.to_string());
    };
    let kernels = martelli_runner::measure_kernels(step).context("calibration failed")?;
    let multi =
        martelli_runner::measure_pool(&kernels, machine.logical_cores, step).context("calibration failed")?;
    let exe = std::env::current_exe().context("cannot find the martelli binary to spawn a worker")?;
    let distributed = martelli_distributed::measure_network(&exe, &kernels, step);
    bar.finish_and_clear();
    let mut calibration = Calibration {
        version: CALIBRATION_VERSION,
        martelli_version: env!("CARGO_PKG_VERSION").into(),
        measured_at: utc_now(),
        machine: format!("{}, {} logical cores", machine.cpu_model, machine.logical_cores),
        kernels,
        multi,
        distributed: distributed?,
    };
    fit_wait_costs(&mut calibration, machine.logical_cores);
    Ok(calibration)
}

/// What a wait takes from the cores, as the model uses it. The CPU a process is charged per
/// wait is largest when its cores idle (each wake-up then also wakes a core; seen here: 17 us
/// a wait with 4 threads) and smaller when they are busy, which is when it matters: so the
/// figure used for every pool, of the multi tier and of the workers alike, is the one that
/// reproduces the wall time of the largest pool's probe (the one that fills this machine's
/// cores; with 256 threads on 2 cores, 10-15 us), never less than the CPU charged there.
/// Smaller pools' probes leave the cores idle, and a fit to their wall time is ill-posed.
fn fit_wait_costs(calibration: &mut Calibration, cores: usize) {
    let Some(largest) = calibration
        .multi
        .wait_cpu
        .iter()
        .max_by_key(|e| e.threads)
        .copied()
    else {
        return;
    };
    let probe = martelli_runner::wait_workload(largest.threads);
    let busy = martelli_sim::fit_wait_cost(&largest, &probe, calibration, cores);
    for entry in calibration
        .multi
        .wait_cpu
        .iter_mut()
        .chain(calibration.distributed.worker_wait_cpu.iter_mut())
    {
        entry.ns_per_wait = busy;
    }
}

/// What a calibration says, in a few lines.
pub fn summary(c: &Calibration) -> String {
    let k = &c.kernels;
    let m = &c.multi;
    let d = &c.distributed;
    let memory: Vec<String> = k
        .memory
        .iter()
        .map(|e| format!("{:.1} ns at {}", e.ns_per_iteration, size(e.working_set_bytes)))
        .collect();
    format!(
        "machine           {}\n\
         cpu kernel        {:.3} ns/iteration; {:.0} ns fixed and {:.0} ns of measuring per task\n\
         memory kernel     {}\n\
         payload           {:.3} ns/byte to generate, {:.3} ns/byte to read\n\
         I/O wait          a sleep lasts {:.0} us longer than asked and takes {:.1} us of a busy core\n\
         multi tier        {:.0} ns hand-off per task, {:.1} us per run, memory contention {:.1}% per busy core\n\
         distributed tier  {:.1} us latency one way, {:.0} MB/s, {:.0} + {:.0} ns per task at the coordinator, \
         {:.0} ns at the worker, {:.3} ns/byte to encode\n",
        c.machine,
        k.cpu_ns_per_iteration,
        k.task_fixed_ns,
        k.record_ns,
        memory.join(", "),
        k.payload_generate_ns_per_byte,
        k.payload_read_ns_per_byte,
        k.io_overshoot_ns / 1e3,
        m.wait_cpu_ns(1024) / 1e3,
        m.dispatch_ns,
        m.run_overhead_ns / 1e3,
        m.memory_contention * 100.0,
        d.latency_us,
        d.bandwidth_mb_per_s,
        d.dispatch_ns,
        d.result_ns,
        d.worker_ns,
        d.serialize_ns_per_byte,
    )
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}
