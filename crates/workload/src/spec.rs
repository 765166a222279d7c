//! What a workload is: its parameters and the lazy, deterministic task list they generate.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::mix::{hash2, hash3, unit_f64};
use crate::replay::Replay;

/// The id of the serial phase's one task. It never collides with a parallel task, whose ids
/// run from 0 to `tasks - 1`.
pub const SERIAL_TASK_ID: u64 = u64::MAX;

/// What bounds a task's speed: the resource it spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An integer mixing chain: pure computation, scales with cores.
    Cpu,
    /// Dependent random reads over a shared buffer: bound by memory latency and bandwidth.
    Memory,
    /// A simulated I/O wait: the thread waits and burns no CPU.
    Io,
    /// A CPU part followed by an I/O wait.
    Mixed,
    /// Tasks replayed from a file: each computes on the CPU kernel for its recorded time,
    /// then waits for its recorded wait (sizes from [`SizeDistribution::Replay`]).
    Replay,
}

impl Kind {
    /// Whether tasks of this kind run a compute kernel whose cost is counted in iterations.
    pub fn computes(self) -> bool {
        !matches!(self, Kind::Io)
    }

    /// Whether tasks of this kind wait for simulated I/O.
    pub fn waits(self) -> bool {
        matches!(self, Kind::Io | Kind::Mixed | Kind::Replay)
    }

    /// The lower-case name used in configs and results.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cpu => "cpu",
            Kind::Memory => "memory",
            Kind::Io => "io",
            Kind::Mixed => "mixed",
            Kind::Replay => "replay",
        }
    }
}

/// How a `memory` task walks its working set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Dependent random reads (a pointer chase over several chains): bound by memory latency.
    #[default]
    Random,
    /// Sequential reads of two arrays and writes of a third, STREAM's triad
    /// (`a[i] = b[i] + s * c[i]`): bound by memory bandwidth, which every core shares.
    Stream,
}

impl Access {
    /// The lower-case name used in configs and results.
    pub fn name(self) -> &'static str {
        match self {
            Access::Random => "random",
            Access::Stream => "stream",
        }
    }
}

/// How task sizes vary around the mean. Every distribution has mean 1 (as a size factor), so
/// changing the distribution changes the imbalance, not the total work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "distribution", rename_all = "lowercase")]
pub enum SizeDistribution {
    /// Every task has the mean size.
    Fixed,
    /// Sizes uniform in `[1 - spread, 1 + spread]` times the mean, `0 <= spread <= 1`.
    Uniform {
        /// Half-width of the interval, relative to the mean.
        spread: f64,
    },
    /// Log-normal sizes with shape `sigma`, rescaled to mean 1: a few tasks are many times the
    /// mean, as in real work where some inputs are much larger than others.
    LogNormal {
        /// Standard deviation of the underlying normal distribution.
        sigma: f64,
    },
    /// Sizes given one by one: task `id` has factor `factors[id % len]` (a config's list,
    /// e.g. `io_wait = ["3s", "1s", "1s"]`, divided by its mean, so the mean is 1 over each
    /// whole turn of the list).
    Cycle {
        /// The size factors in turn; not empty.
        factors: Vec<f64>,
    },
    /// Each task's compute, wait and payload as a file recorded them (`kind = "replay"`):
    /// task `id` is the file's record `id` (wrapping past the end).
    Replay(Replay),
}

impl SizeDistribution {
    /// The size factor of one task, drawn from the hash `h` of its identity.
    fn factor(&self, seed: u64, id: u64) -> f64 {
        match *self {
            SizeDistribution::Fixed => 1.0,
            SizeDistribution::Uniform { spread } => {
                let u = unit_f64(hash3(seed, id, 0x5f17_e000));
                1.0 + spread * (2.0 * u - 1.0)
            }
            SizeDistribution::LogNormal { sigma } => {
                // Box-Muller from two independent uniforms; exp(sigma z - sigma^2 / 2) has
                // mean exactly 1.
                let u1 = unit_f64(hash3(seed, id, 0x5f17_e001));
                let u2 = unit_f64(hash3(seed, id, 0x5f17_e002));
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (sigma * z - sigma * sigma / 2.0).exp()
            }
            SizeDistribution::Cycle { ref factors } => {
                if factors.is_empty() {
                    1.0
                } else {
                    factors[(id % factors.len() as u64) as usize]
                }
            }
            SizeDistribution::Replay(ref replay) => {
                replay.task(id).compute_ns as f64 / replay.mean_compute_ns.max(f64::MIN_POSITIVE)
            }
        }
    }

    /// A cycle of the given sizes (in whole units, e.g. ns): their mean, rounded to a whole
    /// unit, and the factors of that mean that give each size back exactly. `None` when the
    /// list is empty or sums to 0.
    pub fn cycle(sizes: &[u64]) -> Option<(u64, SizeDistribution)> {
        let sum: f64 = sizes.iter().map(|&s| s as f64).sum();
        let mean = (sum / sizes.len() as f64).round() as u64;
        (!sizes.is_empty() && mean > 0).then(|| {
            let factors = sizes.iter().map(|&s| s as f64 / mean as f64).collect();
            (mean, SizeDistribution::Cycle { factors })
        })
    }
}

/// One unit of work, small enough to regenerate or ship anywhere: its payload bytes are not
/// stored but derived from the seed and the id when the task runs (see [`crate::Executor`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Task {
    /// Position in the workload, `0..tasks`, or [`SERIAL_TASK_ID`] for the serial phase.
    pub id: u64,
    /// Kernel iterations (0 for I/O-only tasks).
    pub iterations: u64,
    /// Simulated I/O wait in nanoseconds (0 for compute-only tasks).
    pub io_wait_ns: u64,
    /// Input bytes the kernel must read.
    pub payload_bytes: u64,
}

impl Task {
    /// The simulated I/O wait as a duration.
    pub fn io_wait(&self) -> Duration {
        Duration::from_nanos(self.io_wait_ns)
    }
}

/// A fully resolved workload: every parameter a runner needs, with the per-task cost already
/// expressed in iterations (a `task_cost` duration is calibrated into iterations once per run,
/// before any tier runs, so that every tier runs identical tasks).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Human name, used in titles and as the default series label.
    pub name: String,
    /// Seed of every derived quantity.
    pub seed: u64,
    /// Number of parallel tasks.
    pub tasks: u64,
    /// What the tasks spend.
    pub kind: Kind,
    /// Mean kernel iterations per task (0 for `io`).
    pub iterations: u64,
    /// Mean simulated I/O wait per task, in nanoseconds (0 for `cpu` and `memory`).
    pub io_wait_ns: u64,
    /// How task sizes vary around the mean.
    #[serde(flatten)]
    pub distribution: SizeDistribution,
    /// Share of the total work done in a serial phase on one core, `0 <= f < 1`.
    pub serial_fraction: f64,
    /// Task count the serial phase is sized against. Under strong scaling it equals `tasks`;
    /// under weak scaling `tasks` grows with the core count while the serial phase stays the
    /// size it had on one core (Gustafson's view).
    pub serial_basis_tasks: u64,
    /// Input bytes per task, derived from the seed, that the kernel must read (for a replay,
    /// the largest; each task carries its own).
    pub payload_bytes: u64,
    /// Bytes of the buffer that `memory` tasks read at random (0 for other kinds).
    pub working_set: u64,
    /// How `memory` tasks walk the buffer (random for other kinds).
    #[serde(default)]
    pub access: Access,
}

impl Workload {
    /// `tasks` fixed-size tasks of `kind`, `iterations` each, with no waits, payload, serial
    /// phase or working set: the plain workload that probes, benches and tests start from
    /// (with struct update syntax for the rest).
    pub fn fixed(name: &str, seed: u64, kind: Kind, tasks: u64, iterations: u64) -> Workload {
        Workload {
            name: name.into(),
            seed,
            tasks,
            kind,
            iterations,
            io_wait_ns: 0,
            distribution: SizeDistribution::Fixed,
            serial_fraction: 0.0,
            serial_basis_tasks: tasks,
            payload_bytes: 0,
            working_set: 0,
            access: Access::Random,
        }
    }

    /// Task `id` of this workload (`0 <= id < tasks`). A pure function of the seed, the id and
    /// the parameters.
    pub fn task(&self, id: u64) -> Task {
        if let SizeDistribution::Replay(replay) = &self.distribution {
            let recorded = replay.task(id);
            let factor = self.distribution.factor(self.seed, id);
            return Task {
                id,
                iterations: if recorded.compute_ns == 0 {
                    0
                } else {
                    scale(self.iterations, factor)
                },
                io_wait_ns: recorded.wait_ns,
                payload_bytes: u64::from(recorded.payload_bytes),
            };
        }
        let factor = self.distribution.factor(self.seed, id);
        Task {
            id,
            iterations: scale(self.iterations, factor),
            io_wait_ns: scale(self.io_wait_ns, factor),
            payload_bytes: self.payload_bytes,
        }
    }

    /// Every parallel task, generated lazily: ten million tasks cost no memory.
    pub fn tasks(&self) -> impl ExactSizeIterator<Item = Task> + '_ {
        (0..self.tasks as usize).map(move |id| self.task(id as u64))
    }

    /// The serial phase as one task, or `None` when the serial fraction is 0.
    ///
    /// Its work is `f / (1 - f)` times the mean parallel work of `serial_basis_tasks` tasks,
    /// so that on one core it is exactly the fraction `f` of the total (Amdahl's law).
    pub fn serial_task(&self) -> Option<Task> {
        if self.serial_fraction <= 0.0 {
            return None;
        }
        let ratio = self.serial_fraction / (1.0 - self.serial_fraction);
        let basis = self.serial_basis_tasks as f64;
        Some(Task {
            id: SERIAL_TASK_ID,
            iterations: scale(self.iterations, ratio * basis),
            io_wait_ns: scale(self.io_wait_ns, ratio * basis),
            payload_bytes: 0,
        })
    }

    /// Whether a task may carry `bytes` of payload: exactly the workload's, or for a replay
    /// at most its largest (`payload_bytes` holds the largest there).
    pub fn payload_fits(&self, bytes: u64) -> bool {
        match self.distribution {
            SizeDistribution::Replay(_) => bytes <= self.payload_bytes,
            _ => bytes == self.payload_bytes,
        }
    }

    /// The mean payload of a task, bytes (a replay's tasks differ; others all carry the same).
    pub fn mean_payload_bytes(&self) -> f64 {
        match &self.distribution {
            SizeDistribution::Replay(replay) if !replay.tasks.is_empty() => replay.mean_payload_bytes(),
            _ => self.payload_bytes as f64,
        }
    }

    /// The same workload with `tasks` tasks and an unchanged serial phase (weak scaling).
    pub fn with_tasks(&self, tasks: u64) -> Workload {
        Workload {
            tasks,
            ..self.clone()
        }
    }

    /// A fingerprint of the parameters that shape the digests, mixed into every digest so that
    /// two workloads with different parameters never share a checksum by accident.
    pub(crate) fn fingerprint(&self) -> u64 {
        let dist = match &self.distribution {
            SizeDistribution::Fixed => 0,
            SizeDistribution::Uniform { spread } => hash2(1, spread.to_bits()),
            SizeDistribution::LogNormal { sigma } => hash2(2, sigma.to_bits()),
            SizeDistribution::Cycle { factors } => factors.iter().map(|f| f.to_bits()).fold(3, hash2),
            SizeDistribution::Replay(replay) => hash2(hash2(4, replay.hash_value()), replay.records),
        };
        let kind = self.kind as u64;
        let base = [
            kind,
            self.iterations,
            self.io_wait_ns,
            dist,
            self.serial_fraction.to_bits(),
            self.serial_basis_tasks,
            self.payload_bytes,
            self.working_set,
        ]
        .into_iter()
        .fold(self.seed, hash2);
        // Random access keeps the digests it had before `access` existed.
        match self.access {
            Access::Random => base,
            Access::Stream => hash2(base, 1),
        }
    }
}

/// Scales a mean by a factor and rounds to the nearest whole unit, never below 1 when the mean
/// is non-zero (a task of size zero would silently drop work from the kernel).
fn scale(mean: u64, factor: f64) -> u64 {
    if mean == 0 {
        return 0;
    }
    let scaled = (mean as f64 * factor).round();
    if scaled >= u64::MAX as f64 {
        u64::MAX
    } else {
        (scaled as u64).max(1)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(kind: Kind) -> Workload {
        let iterations = if kind.computes() { 1000 } else { 0 };
        Workload {
            io_wait_ns: if kind.waits() { 10_000 } else { 0 },
            payload_bytes: 64,
            working_set: if kind == Kind::Memory { 1 << 16 } else { 0 },
            ..Workload::fixed("t", 42, kind, 1000, iterations)
        }
    }

    #[test]
    fn tasks_are_a_pure_function_of_their_id() {
        let w = Workload {
            distribution: SizeDistribution::LogNormal { sigma: 1.0 },
            ..sample(Kind::Mixed)
        };
        let forward: Vec<Task> = w.tasks().collect();
        for id in (0..w.tasks).rev() {
            assert_eq!(w.task(id), forward[id as usize]);
        }
    }

    #[test]
    fn every_distribution_keeps_the_mean() {
        for dist in [
            SizeDistribution::Fixed,
            SizeDistribution::Uniform { spread: 0.9 },
            SizeDistribution::LogNormal { sigma: 1.0 },
        ] {
            let w = Workload {
                tasks: 200_000,
                distribution: dist.clone(),
                ..sample(Kind::Cpu)
            };
            let mean = w.tasks().map(|t| t.iterations as f64).sum::<f64>() / w.tasks as f64;
            assert!((mean / 1000.0 - 1.0).abs() < 0.02, "{dist:?}: mean {mean}");
        }
    }

    #[test]
    fn skewed_distributions_are_skewed() {
        let w = Workload {
            distribution: SizeDistribution::LogNormal { sigma: 1.0 },
            ..sample(Kind::Cpu)
        };
        let max = w.tasks().map(|t| t.iterations).max().unwrap();
        let min = w.tasks().map(|t| t.iterations).min().unwrap();
        assert!(max > 5 * 1000, "max {max}");
        assert!(min < 1000 / 5, "min {min}");
    }

    #[test]
    fn a_cycle_gives_each_task_its_listed_size_and_keeps_the_mean() {
        let s = 1_000_000_000;
        let (mean, distribution) = SizeDistribution::cycle(&[3 * s, s, s]).unwrap();
        let w = Workload {
            tasks: 6,
            io_wait_ns: mean,
            distribution,
            ..sample(Kind::Io)
        };
        let waits: Vec<u64> = w.tasks().map(|t| t.io_wait_ns).collect();
        assert_eq!(waits, [3 * s, s, s, 3 * s, s, s]);
        assert_eq!(SizeDistribution::cycle(&[]), None);
        assert_eq!(SizeDistribution::cycle(&[0]), None);
        let other = Workload {
            distribution: SizeDistribution::cycle(&[s, s, 3 * s]).unwrap().1,
            ..w.clone()
        };
        assert_ne!(w.fingerprint(), other.fingerprint());
    }

    #[test]
    fn serial_phase_is_the_requested_share_of_the_total() {
        let w = Workload {
            serial_fraction: 0.1,
            ..sample(Kind::Mixed)
        };
        let serial = w.serial_task().unwrap();
        let parallel: u64 = w.tasks().map(|t| t.iterations).sum();
        let share = serial.iterations as f64 / (serial.iterations + parallel) as f64;
        assert!((share - 0.1).abs() < 1e-6, "share {share}");
        assert_eq!(sample(Kind::Cpu).serial_task(), None);
    }

    #[test]
    fn weak_scaling_keeps_the_serial_phase() {
        let w = Workload {
            serial_fraction: 0.2,
            ..sample(Kind::Cpu)
        };
        assert_eq!(w.with_tasks(4000).serial_task(), w.serial_task());
    }

    #[test]
    fn a_replayed_task_is_its_record_and_the_file_is_part_of_the_fingerprint() {
        use crate::{Replay, ReplayTask};
        let records = vec![
            ReplayTask {
                compute_ns: 1_000,
                wait_ns: 0,
                payload_bytes: 8,
            },
            ReplayTask {
                compute_ns: 3_000,
                wait_ns: 500,
                payload_bytes: 0,
            },
            ReplayTask {
                compute_ns: 0,
                wait_ns: 2_000,
                payload_bytes: 0,
            },
        ];
        let w = Workload {
            kind: Kind::Replay,
            tasks: 3,
            iterations: 200,
            payload_bytes: 8,
            distribution: SizeDistribution::Replay(Replay::new("f".into(), 1, records.clone())),
            ..sample(Kind::Cpu)
        };
        // The mean compute (4/3 us, the wait alone counted as none) is 200 iterations: each
        // task scales by its own compute.
        let tasks: Vec<Task> = w.tasks().collect();
        assert_eq!(
            (tasks[0].iterations, tasks[0].io_wait_ns, tasks[0].payload_bytes),
            (150, 0, 8)
        );
        assert_eq!(
            (tasks[1].iterations, tasks[1].io_wait_ns, tasks[1].payload_bytes),
            (450, 500, 0)
        );
        assert_eq!(
            (tasks[2].iterations, tasks[2].io_wait_ns),
            (0, 2_000),
            "a wait alone computes nothing"
        );
        assert!(w.payload_fits(0) && w.payload_fits(8) && !w.payload_fits(9));
        let other_file = Workload {
            distribution: SizeDistribution::Replay(Replay::new("f".into(), 2, records)),
            ..w.clone()
        };
        assert_ne!(w.fingerprint(), other_file.fingerprint());
    }
}
