//! The calibration file: what this machine's kernels, thread pool and loopback network cost,
//! as measured by `martelli calibrate`. Plain TOML with units in the key names, so a person can
//! edit it to ask "what if the network were ten times slower?".
//!
//! Plain data and its checks: the runner measures these costs, the simulator reads them, and
//! neither depends on the other. This crate reads the calibration file and nothing else.
//!
//! Every figure has its unit in its name and its doc. How each part is measured (the probes
//! stay with the code they time; `src/cmd/calibrate.rs` runs them in rounds and keeps each
//! figure's median and spread):
//!
//! | part | probe |
//! | --- | --- |
//! | [`KernelCosts`] | `martelli_runner::measure_kernels` (`runner/src/costs.rs`): the real kernels on one core |
//! | [`MultiCosts`] | `martelli_runner::measure_pool`: the real pool, its waits and the stream bandwidth per thread count |
//! | [`NetworkCosts`] | `martelli_distributed::measure_network`: spawned workers over loopback, two runs solved for per-message and per-task CPU |
//! | wait costs, compute between waits | fitted by `martelli_sim::fit_*` to their probes' wall times (they need the model itself) |
//!
//! How the model reads them: in nanoseconds and bytes, through the readers here where a
//! figure is kept in another unit or as a curve ([`NetworkCosts::latency_ns`],
//! [`NetworkCosts::bytes_per_ns`], [`NetworkCosts::run_overhead_ns`],
//! [`MultiCosts::bandwidth_at`], [`MultiCosts::stream_slowdown`],
//! [`MultiCosts::wait_cpu_ns`], [`KernelCosts::memory_ns_per_iteration`] and their kin). The
//! simulator's cluster holds the [`NetworkCosts`] themselves, a config's `[cluster]`
//! overrides applied in their units.
#![deny(missing_docs)]

use std::path::Path;

use martelli_config::{ConfigError, field_error, read_toml};
use serde::{Deserialize, Serialize};

/// Layout version of the calibration file; a file of another version is refused.
pub const CALIBRATION_VERSION: u32 = 2;

/// Everything the simulator needs to know about the machine it models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// [`CALIBRATION_VERSION`] when written.
    pub version: u32,
    /// martelli version that measured.
    pub martelli_version: String,
    /// UTC time of the measurement, RFC 3339.
    pub measured_at: String,
    /// The machine measured: CPU model and logical cores.
    pub machine: String,
    /// Costs of one task's work on one core.
    pub kernels: KernelCosts,
    /// Costs of the multi tier's thread pool.
    pub multi: MultiCosts,
    /// Costs of the distributed tier: network and coordinator.
    pub distributed: NetworkCosts,
    /// How far each figure moved across the rounds `calibrate` measured (half the range over
    /// the median, e.g. 0.05 for ±5%), by its path in this file; figures that did not move
    /// are left out. Absent in a file written by hand or from one round.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub spread: std::collections::BTreeMap<String, f64>,
}

/// Costs of a task's work on one core of this machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelCosts {
    /// One iteration of the `cpu` kernel (also the CPU part of `mixed`), nanoseconds.
    pub cpu_ns_per_iteration: f64,
    /// A task with no iterations and no payload (hashing the id, the digest), nanoseconds.
    pub task_fixed_ns: f64,
    /// The measuring of one task (a clock read, a histogram entry), nanoseconds.
    pub record_ns: f64,
    /// Generating one payload byte, nanoseconds.
    pub payload_generate_ns_per_byte: f64,
    /// Reading one payload byte in the kernel, nanoseconds.
    pub payload_read_ns_per_byte: f64,
    /// How much longer than asked a simulated I/O wait (a sleep) lasts, nanoseconds.
    pub io_overshoot_ns: f64,
    /// One iteration of the `memory` kernel at several working-set sizes, ascending
    /// (interpolated in log size between them).
    pub memory: Vec<MemoryCost>,
}

/// The `memory` kernel's cost at one working-set size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryCost {
    /// Bytes of the buffer read at random.
    pub working_set_bytes: u64,
    /// One iteration (four dependent reads), nanoseconds.
    pub ns_per_iteration: f64,
}

/// Costs of the multi tier's rayon pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiCosts {
    /// Handing one task to a pool thread, nanoseconds.
    pub dispatch_ns: f64,
    /// Starting and joining one run on the pool, nanoseconds.
    pub run_overhead_ns: f64,
    /// Slow-down of a `memory` task per other core reading memory at the same time.
    pub memory_contention: f64,
    /// CPU one I/O wait costs a pool thread (going to sleep, being woken, looking for the next
    /// task), at several pool sizes, ascending (interpolated in log threads between them). A
    /// pool of many more threads than cores spends it on every wait, so it, not the wait,
    /// bounds how many waits a few cores can overlap. Absent: waits cost no CPU.
    #[serde(default)]
    pub wait_cpu: Vec<WaitCpu>,
    /// How much slower tasks that compute and wait compute when their threads outnumber the
    /// cores, at the pool sizes whose probe fills them, ascending (interpolated in log threads
    /// between them, flat beyond). Absent: not at all.
    #[serde(default)]
    pub compute_dilation: Vec<Dilation>,
    /// Memory bandwidth that `threads` threads running the `stream` kernel at once draw, at
    /// 1, 2, 4, ... threads up to the machine's cores, ascending (interpolated in between, flat
    /// beyond: the machine has no more). Absent: stream tasks are modelled as random ones.
    #[serde(default)]
    pub memory_bandwidth: Vec<Bandwidth>,
}

/// The memory bandwidth some threads draw together.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bandwidth {
    /// Threads reading and writing at once.
    pub threads: u32,
    /// Bytes they move per second, all together.
    pub bytes_per_s: f64,
}

/// Bytes one `stream` iteration moves: two words read, one written.
pub const STREAM_BYTES_PER_ITERATION: f64 = 24.0;

/// How much slower compute between waits runs in a pool of `threads` threads past the cores:
/// each task resumes after its wait on a core other threads used meanwhile (caches and TLB
/// cold) and is cut into by their wake-ups.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dilation {
    /// Threads of the pool.
    pub threads: u32,
    /// The slow-down, as a fraction of the compute (0.25: a quarter slower): what the model
    /// needs to run the probe (compute before each wait) in the time it took, as fitted by
    /// the simulator.
    pub factor: f64,
    /// The probe's median wall time, nanoseconds.
    pub probe_wall_ns: f64,
}

/// The CPU of one wait in a pool of `threads` threads.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitCpu {
    /// Threads of the pool.
    pub threads: u32,
    /// What one wait takes from the cores, beyond its task's work, nanoseconds: the CPU the
    /// process was charged for it, or more where the probe's wall time shows the machine lost
    /// more than that (wake-ups the process is not charged for), as fitted by the simulator.
    pub ns_per_wait: f64,
    /// The probe's median wall time, nanoseconds (0: not recorded), the figure a fit of
    /// `ns_per_wait` reproduces.
    #[serde(default)]
    pub probe_wall_ns: f64,
}

/// Costs of the distributed tier, measured over loopback with spawned workers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkCosts {
    /// One-way latency between the coordinator and a worker, microseconds.
    pub latency_us: f64,
    /// Bandwidth of each link, megabytes (10^6 bytes) per second.
    pub bandwidth_mb_per_s: f64,
    /// Coordinator CPU per task sent, nanoseconds.
    pub dispatch_ns: f64,
    /// Coordinator CPU per result received, nanoseconds.
    pub result_ns: f64,
    /// Worker time per task beyond its work (decoding, handing it over, the result), ns.
    pub worker_ns: f64,
    /// Coordinator CPU to generate and encode one payload byte, nanoseconds.
    pub serialize_ns_per_byte: f64,
    /// Coordinator CPU per message sent or received (system calls, HTTP/2 framing, wake-ups),
    /// nanoseconds.
    pub coordinator_message_ns: f64,
    /// Worker CPU per message received or sent, on its I/O thread, nanoseconds.
    pub worker_message_ns: f64,
    /// Fixed cost of one run (starting the streams' traffic, the last result), microseconds.
    pub run_overhead_us: f64,
    /// CPU one I/O wait costs a worker's pool thread, at several pool sizes (as
    /// [`MultiCosts::wait_cpu`], for the worker's pool). Absent: waits cost no CPU.
    #[serde(default)]
    pub worker_wait_cpu: Vec<WaitCpu>,
}

impl Calibration {
    /// Reads and checks a calibration file. A file of another version, with missing or unknown
    /// keys, or with impossible values is refused with the file, the field and why.
    pub fn load(path: &Path) -> Result<Calibration, ConfigError> {
        let (table, source) = read_toml::<toml::Table>(path)?;
        match table.get("version") {
            Some(toml::Value::Integer(v)) if *v == i64::from(CALIBRATION_VERSION) => {}
            Some(toml::Value::Integer(v)) => {
                return Err(field_error(
                    path,
                    &source,
                    "version",
                    format!(
                        "this file is calibration version {v}, and this martelli reads version \
                         {CALIBRATION_VERSION}: run `martelli calibrate` again"
                    ),
                ));
            }
            _ => {
                return Err(field_error(
                    path,
                    &source,
                    "version",
                    format!(
                        "missing or not an integer: a calibration file starts with `version = \
                         {CALIBRATION_VERSION}` (write one with `martelli calibrate`)"
                    ),
                ));
            }
        }
        let (calibration, source) = read_toml::<Calibration>(path)?;
        calibration
            .check()
            .map_err(|(field, message)| field_error(path, &source, &field, message))?;
        Ok(calibration)
    }

    /// The file's text: a header comment, then the values.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!(
            "# martelli calibration: what one task, the thread pool and the loopback network cost on\n\
             # {}. Written by `martelli calibrate`; read by `martelli simulate --calibration`.\n\
             # Edit any value to ask \"what if\" (e.g. latency_us x 10 for a slower network);\n\
             # a config's [cluster] section overrides the distributed values per run.\n\n{body}",
            self.machine
        )
    }

    /// Checks every value is one a machine could have: `(field, message)` otherwise.
    pub fn check(&self) -> Result<(), (String, String)> {
        let k = &self.kernels;
        let m = &self.multi;
        let d = &self.distributed;
        let non_negative = [
            ("kernels.task_fixed_ns", k.task_fixed_ns),
            ("kernels.record_ns", k.record_ns),
            (
                "kernels.payload_generate_ns_per_byte",
                k.payload_generate_ns_per_byte,
            ),
            ("kernels.payload_read_ns_per_byte", k.payload_read_ns_per_byte),
            ("kernels.io_overshoot_ns", k.io_overshoot_ns),
            ("multi.dispatch_ns", m.dispatch_ns),
            ("multi.run_overhead_ns", m.run_overhead_ns),
            ("multi.memory_contention", m.memory_contention),
            ("distributed.latency_us", d.latency_us),
            ("distributed.dispatch_ns", d.dispatch_ns),
            ("distributed.result_ns", d.result_ns),
            ("distributed.worker_ns", d.worker_ns),
            ("distributed.serialize_ns_per_byte", d.serialize_ns_per_byte),
            ("distributed.coordinator_message_ns", d.coordinator_message_ns),
            ("distributed.worker_message_ns", d.worker_message_ns),
            ("distributed.run_overhead_us", d.run_overhead_us),
        ];
        for (field, value) in non_negative {
            if !(value.is_finite() && value >= 0.0) {
                return Err((
                    field.into(),
                    format!("must be a finite number >= 0 (got {value})"),
                ));
            }
        }
        let positive = [
            ("kernels.cpu_ns_per_iteration", k.cpu_ns_per_iteration),
            ("distributed.bandwidth_mb_per_s", d.bandwidth_mb_per_s),
        ];
        for (field, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err((field.into(), format!("must be a finite number > 0 (got {value})")));
            }
        }
        let wait = |t: &[WaitCpu]| t.iter().map(|e| (e.threads, e.ns_per_wait)).collect::<Vec<_>>();
        check_by_threads("multi.wait_cpu", "ns_per_wait", &wait(&m.wait_cpu), false)?;
        check_by_threads(
            "distributed.worker_wait_cpu",
            "ns_per_wait",
            &wait(&d.worker_wait_cpu),
            false,
        )?;
        let bandwidth: Vec<_> = m
            .memory_bandwidth
            .iter()
            .map(|e| (e.threads, e.bytes_per_s))
            .collect();
        check_by_threads("multi.memory_bandwidth", "bytes_per_s", &bandwidth, true)?;
        let dilation: Vec<_> = m.compute_dilation.iter().map(|e| (e.threads, e.factor)).collect();
        check_by_threads("multi.compute_dilation", "factor", &dilation, false)?;
        for (figure, spread) in &self.spread {
            if !(spread.is_finite() && *spread >= 0.0) {
                return Err((
                    format!("spread.{figure}"),
                    format!("must be a finite number >= 0 (got {spread})"),
                ));
            }
        }
        if k.memory.is_empty() {
            return Err((
                "kernels.memory".into(),
                "needs at least one [[kernels.memory]] entry".into(),
            ));
        }
        for (i, entry) in k.memory.iter().enumerate() {
            if !(entry.ns_per_iteration.is_finite() && entry.ns_per_iteration > 0.0) {
                return Err((
                    format!("kernels.memory[{i}].ns_per_iteration"),
                    format!("must be a finite number > 0 (got {})", entry.ns_per_iteration),
                ));
            }
            if i > 0 && entry.working_set_bytes <= k.memory[i - 1].working_set_bytes {
                return Err((
                    format!("kernels.memory[{i}].working_set_bytes"),
                    "working sets must be in ascending order".into(),
                ));
            }
        }
        Ok(())
    }
}

impl MultiCosts {
    /// The bandwidth `threads` threads of `stream` tasks draw together, bytes per second:
    /// interpolated linearly in threads between the measured counts, flat beyond the last.
    pub fn bandwidth_at(&self, threads: usize) -> Option<f64> {
        let table: Vec<(f64, f64)> = self
            .memory_bandwidth
            .iter()
            .map(|b| (f64::from(b.threads), b.bytes_per_s))
            .collect();
        interpolate(&table, threads.max(1) as f64)
    }

    /// One `stream` iteration on one thread alone, nanoseconds (from the 1-thread bandwidth).
    pub fn stream_ns_per_iteration(&self) -> Option<f64> {
        Some(STREAM_BYTES_PER_ITERATION * 1e9 / self.bandwidth_at(1)?)
    }

    /// How much slower each of `busy` threads running `stream` tasks at once goes than one
    /// alone: they share the bandwidth, `busy x B(1) / B(busy)`, at least 1.
    pub fn stream_slowdown(&self, busy: usize) -> Option<f64> {
        let (one, all) = (self.bandwidth_at(1)?, self.bandwidth_at(busy)?);
        Some((busy.max(1) as f64 * one / all).max(1.0))
    }

    /// CPU one wait costs a thread of the multi tier's pool of `threads`.
    pub fn wait_cpu_ns(&self, threads: usize) -> f64 {
        wait_cpu_ns(&self.wait_cpu, threads)
    }

    /// How much slower compute between waits runs on `threads` threads past the cores, as a
    /// fraction (0 when not measured).
    pub fn compute_dilation_at(&self, threads: usize) -> f64 {
        let table: Vec<(f64, f64)> = self
            .compute_dilation
            .iter()
            .map(|d| (f64::from(d.threads).ln(), d.factor))
            .collect();
        interpolate(&table, (threads.max(1) as f64).ln()).unwrap_or(0.0)
    }
}

impl NetworkCosts {
    /// One-way latency, nanoseconds.
    pub fn latency_ns(&self) -> f64 {
        self.latency_us * 1e3
    }

    /// Bytes per nanosecond of each link.
    pub fn bytes_per_ns(&self) -> f64 {
        self.bandwidth_mb_per_s * 1e6 / 1e9
    }

    /// Fixed cost of one run, nanoseconds.
    pub fn run_overhead_ns(&self) -> f64 {
        self.run_overhead_us * 1e3
    }

    /// CPU one wait costs a thread of a worker's pool of `threads`.
    pub fn worker_wait_cpu_ns(&self, threads: usize) -> f64 {
        wait_cpu_ns(&self.worker_wait_cpu, threads)
    }
}

/// Checks a table of `(threads, value)` rows, `name[i].value` in errors: every value finite
/// and at least 0 (above 0 when `positive`), thread counts at least 1 and ascending.
fn check_by_threads(
    name: &str,
    value: &str,
    rows: &[(u32, f64)],
    positive: bool,
) -> Result<(), (String, String)> {
    for (i, &(threads, v)) in rows.iter().enumerate() {
        let ok = v.is_finite() && if positive { v > 0.0 } else { v >= 0.0 };
        if !ok {
            let bound = if positive { "> 0" } else { ">= 0" };
            return Err((
                format!("{name}[{i}].{value}"),
                format!("must be a finite number {bound} (got {v})"),
            ));
        }
        if threads == 0 || (i > 0 && threads <= rows[i - 1].0) {
            return Err((
                format!("{name}[{i}].threads"),
                "thread counts must be at least 1 and in ascending order".into(),
            ));
        }
    }
    Ok(())
}

/// A wait's CPU in a pool of `threads`, from `table`: interpolated in log threads between the
/// measured sizes, held flat beyond them (0 when nothing was measured).
fn wait_cpu_ns(table: &[WaitCpu], threads: usize) -> f64 {
    let table: Vec<(f64, f64)> = table
        .iter()
        .map(|w| (f64::from(w.threads).ln(), w.ns_per_wait))
        .collect();
    interpolate(&table, (threads.max(1) as f64).ln()).unwrap_or(0.0)
}

/// Piecewise-linear interpolation in a table of `(x, y)` ascending in x, flat beyond its ends.
fn interpolate(table: &[(f64, f64)], x: f64) -> Option<f64> {
    let (first, last) = (table.first()?, table.last()?);
    if x <= first.0 {
        return Some(first.1);
    }
    for pair in table.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        if x <= x1 {
            return Some(y0 + (y1 - y0) * (x - x0) / (x1 - x0));
        }
    }
    Some(last.1)
}

impl KernelCosts {
    /// One `memory` iteration at `working_set` bytes: interpolated in log size between the
    /// measured sizes, held flat beyond them.
    pub fn memory_ns_per_iteration(&self, working_set: u64) -> f64 {
        let table: Vec<(f64, f64)> = self
            .memory
            .iter()
            .map(|m| ((m.working_set_bytes.max(1) as f64).ln(), m.ns_per_iteration))
            .collect();
        interpolate(&table, (working_set.max(1) as f64).ln()).unwrap_or(self.cpu_ns_per_iteration)
    }
}

/// A plausible calibration of a 2-core machine, for tests.
pub fn example() -> Calibration {
    Calibration {
        version: CALIBRATION_VERSION,
        martelli_version: "test".into(),
        measured_at: "2026-11-25T00:00:00Z".into(),
        machine: "test machine, 2 logical cores".into(),
        kernels: KernelCosts {
            cpu_ns_per_iteration: 1.0,
            task_fixed_ns: 20.0,
            record_ns: 40.0,
            payload_generate_ns_per_byte: 0.3,
            payload_read_ns_per_byte: 0.1,
            io_overshoot_ns: 50_000.0,
            memory: vec![
                MemoryCost {
                    working_set_bytes: 1 << 16,
                    ns_per_iteration: 4.0,
                },
                MemoryCost {
                    working_set_bytes: 1 << 28,
                    ns_per_iteration: 40.0,
                },
            ],
        },
        multi: MultiCosts {
            dispatch_ns: 30.0,
            run_overhead_ns: 20_000.0,
            memory_contention: 0.05,
            wait_cpu: vec![
                WaitCpu {
                    threads: 4,
                    ns_per_wait: 5_000.0,
                    probe_wall_ns: 0.0,
                },
                WaitCpu {
                    threads: 256,
                    ns_per_wait: 50_000.0,
                    probe_wall_ns: 0.0,
                },
            ],
            compute_dilation: Vec::new(),
            // Half again with a second thread, then less and less: used up by 8.
            memory_bandwidth: [(1, 10e9), (2, 15e9), (4, 20e9), (8, 22e9)]
                .map(|(threads, bytes_per_s)| Bandwidth { threads, bytes_per_s })
                .to_vec(),
        },
        distributed: NetworkCosts {
            latency_us: 50.0,
            bandwidth_mb_per_s: 1000.0,
            dispatch_ns: 500.0,
            result_ns: 500.0,
            worker_ns: 500.0,
            serialize_ns_per_byte: 0.5,
            coordinator_message_ns: 10_000.0,
            worker_message_ns: 10_000.0,
            run_overhead_us: 100.0,
            worker_wait_cpu: vec![WaitCpu {
                threads: 4,
                ns_per_wait: 3_000.0,
                probe_wall_ns: 0.0,
            }],
        },
        spread: [("multi.memory_contention".to_string(), 0.02)].into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_files_round_trip_and_bad_ones_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calibration.toml");
        let c = example();
        std::fs::write(&path, c.to_toml()).unwrap();
        assert_eq!(Calibration::load(&path).unwrap(), c);

        let text = c.to_toml();
        let cases = [
            (text.replace("version = 2", "version = 1"), "version"),
            (text.replace("version = 2\n", ""), "version"),
            (
                text.replace("threads = 256", "threads = 2"),
                "multi.wait_cpu[1].threads",
            ),
            (
                text.replace("latency_us = 50.0", "latency_us = -50.0"),
                "distributed.latency_us",
            ),
            (text.replace("latency_us = 50.0\n", ""), "latency_us"),
            (
                text.replace("bandwidth_mb_per_s = 1000.0", "bandwidth_mb_per_s = 0.0"),
                "bandwidth_mb_per_s",
            ),
            (
                text.replace("record_ns = 40.0", "record_ns = 40.0\nextra = 1"),
                "extra",
            ),
        ];
        for (bad, field) in cases {
            assert_ne!(bad, text, "case {field} must change the file");
            std::fs::write(&path, &bad).unwrap();
            let message = Calibration::load(&path).unwrap_err().to_string();
            assert!(message.contains(field), "{field}: {message}");
            assert!(message.contains("calibration.toml"), "{message}");
        }
    }

    #[test]
    fn a_waits_cpu_is_interpolated_in_log_threads_and_flat_beyond() {
        let m = example().multi;
        assert_eq!(m.wait_cpu_ns(1), 5_000.0);
        assert_eq!(m.wait_cpu_ns(4), 5_000.0);
        assert!((m.wait_cpu_ns(32) - 27_500.0).abs() < 1e-6);
        assert_eq!(m.wait_cpu_ns(1024), 50_000.0);
        assert_eq!(example().distributed.worker_wait_cpu_ns(64), 3_000.0);
    }
}
