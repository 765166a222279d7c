//! Wire ↔ domain conversions, and the checks a worker applies to everything it receives.
//! Prost types stop here: the rest of the crate sees `Workload` and `Task`.

use martelli_workload::{Access, Kind, Replay, SizeDistribution, Task, Workload};

use crate::wire;

/// Bounds a worker enforces on what a coordinator asks of it (a worker trusts no one).
const MAX_TASKS: u64 = 1_000_000_000_000;
const MAX_ITERATIONS: u64 = 1_000_000_000_000;
const MAX_WAIT_NS: u64 = 3_600_000_000_000;
const MAX_PAYLOAD: u64 = 1 << 30;
const MAX_WORKING_SET: u64 = 16 << 30;
/// Most sizes a cycle may list, and the largest factor of one (as `martelli-config` allows).
const MAX_CYCLE: usize = 1024;
const MAX_FACTOR: f64 = 1e6;

/// The workload as sent to workers.
pub(crate) fn workload_to_wire(w: &Workload) -> wire::Workload {
    let (distribution, spread, factors) = match &w.distribution {
        SizeDistribution::Fixed => (wire::Distribution::Fixed, 0.0, Vec::new()),
        SizeDistribution::Uniform { spread } => (wire::Distribution::Uniform, *spread, Vec::new()),
        SizeDistribution::LogNormal { sigma } => (wire::Distribution::Lognormal, *sigma, Vec::new()),
        SizeDistribution::Cycle { factors } => (wire::Distribution::Cycle, 0.0, factors.clone()),
        SizeDistribution::Replay(_) => (wire::Distribution::Replay, 0.0, Vec::new()),
    };
    let (replay_hash, replay_records) = match &w.distribution {
        SizeDistribution::Replay(r) => (r.hash.clone(), r.records),
        _ => (String::new(), 0),
    };
    let kind = match w.kind {
        Kind::Cpu => wire::Kind::Cpu,
        Kind::Memory => wire::Kind::Memory,
        Kind::Io => wire::Kind::Io,
        Kind::Mixed => wire::Kind::Mixed,
        Kind::Replay => wire::Kind::Replay,
    };
    wire::Workload {
        name: w.name.clone(),
        seed: w.seed,
        tasks: w.tasks,
        kind: kind as i32,
        iterations: w.iterations,
        io_wait_ns: w.io_wait_ns,
        distribution: distribution as i32,
        spread,
        serial_fraction: w.serial_fraction,
        serial_basis_tasks: w.serial_basis_tasks,
        payload_bytes: w.payload_bytes,
        working_set: w.working_set,
        factors,
        replay_hash,
        replay_records,
        access: match w.access {
            Access::Random => wire::Access::Random,
            Access::Stream => wire::Access::Stream,
        } as i32,
    }
}

/// The workload a coordinator sent, checked against the worker's limits.
pub(crate) fn workload_from_wire(w: &wire::Workload) -> Result<Workload, String> {
    let kind = match wire::Kind::try_from(w.kind) {
        Ok(wire::Kind::Cpu) => Kind::Cpu,
        Ok(wire::Kind::Memory) => Kind::Memory,
        Ok(wire::Kind::Io) => Kind::Io,
        Ok(wire::Kind::Mixed) => Kind::Mixed,
        Ok(wire::Kind::Replay) => Kind::Replay,
        _ => return Err(format!("unknown workload kind {}", w.kind)),
    };
    let distribution = match wire::Distribution::try_from(w.distribution) {
        Ok(wire::Distribution::Fixed) => SizeDistribution::Fixed,
        Ok(wire::Distribution::Uniform) if (0.0..=1.0).contains(&w.spread) => {
            SizeDistribution::Uniform { spread: w.spread }
        }
        Ok(wire::Distribution::Lognormal) if w.spread > 0.0 && w.spread <= 3.0 => {
            SizeDistribution::LogNormal { sigma: w.spread }
        }
        Ok(wire::Distribution::Cycle)
            if (1..=MAX_CYCLE).contains(&w.factors.len())
                && w.factors.iter().all(|f| *f > 0.0 && *f <= MAX_FACTOR) =>
        {
            SizeDistribution::Cycle {
                factors: w.factors.clone(),
            }
        }
        Ok(wire::Distribution::Replay)
            if w.replay_hash.len() == 16
                && w.replay_hash.bytes().all(|b| b.is_ascii_hexdigit())
                && (1..=MAX_TASKS).contains(&w.replay_records) =>
        {
            // The description alone: each task's size comes with the task.
            SizeDistribution::Replay(Replay {
                hash: w.replay_hash.clone(),
                records: w.replay_records,
                ..Replay::default()
            })
        }
        _ => {
            return Err(format!(
                "invalid size distribution {} with spread {}",
                w.distribution, w.spread
            ));
        }
    };
    let check = |name: &str, value: u64, max: u64| {
        if value > max {
            Err(format!("{name} {value} is above the limit {max}"))
        } else {
            Ok(())
        }
    };
    check("tasks", w.tasks, MAX_TASKS)?;
    check("serial_basis_tasks", w.serial_basis_tasks, MAX_TASKS)?;
    check("iterations", w.iterations, MAX_ITERATIONS)?;
    check("io_wait_ns", w.io_wait_ns, MAX_WAIT_NS)?;
    check("payload_bytes", w.payload_bytes, MAX_PAYLOAD)?;
    check("working_set", w.working_set, MAX_WORKING_SET)?;
    if !(0.0..1.0).contains(&w.serial_fraction) {
        return Err(format!("serial_fraction {} is outside [0, 1)", w.serial_fraction));
    }
    if w.tasks == 0 {
        return Err("tasks is 0".into());
    }
    Ok(Workload {
        name: w.name.chars().take(200).collect(),
        seed: w.seed,
        tasks: w.tasks,
        kind,
        iterations: w.iterations,
        io_wait_ns: w.io_wait_ns,
        distribution,
        serial_fraction: w.serial_fraction,
        serial_basis_tasks: w.serial_basis_tasks,
        payload_bytes: w.payload_bytes,
        working_set: w.working_set,
        access: match wire::Access::try_from(w.access) {
            Ok(wire::Access::Random) => Access::Random,
            Ok(wire::Access::Stream) => Access::Stream,
            Err(_) => return Err(format!("unknown memory access {}", w.access)),
        },
    })
}

/// A task and its payload as sent to a worker.
pub(crate) fn task_to_wire(task: &Task, attempt: u32, payload: Vec<u8>) -> wire::TaskDescriptor {
    wire::TaskDescriptor {
        id: task.id,
        attempt,
        iterations: task.iterations,
        io_wait_ns: task.io_wait_ns,
        payload,
    }
}

/// A task a coordinator sent, checked against the run's workload: its id must be in range,
/// its size bounded, its payload exactly `payload_bytes` long.
pub(crate) fn task_from_wire(t: &wire::TaskDescriptor, workload: &Workload) -> Result<Task, String> {
    if t.id >= workload.tasks {
        return Err(format!(
            "task id {} is out of range (the workload has {} tasks)",
            t.id, workload.tasks
        ));
    }
    if t.iterations > MAX_ITERATIONS || t.io_wait_ns > MAX_WAIT_NS {
        return Err(format!(
            "task {} asks for {} iterations and {} ns of waiting: above the limits",
            t.id, t.iterations, t.io_wait_ns
        ));
    }
    if !workload.payload_fits(t.payload.len() as u64) {
        return Err(format!(
            "task {} carries {} payload bytes; the workload says {} (at most, for a replay)",
            t.id,
            t.payload.len(),
            workload.payload_bytes
        ));
    }
    Ok(Task {
        id: t.id,
        iterations: t.iterations,
        io_wait_ns: t.io_wait_ns,
        payload_bytes: t.payload.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Workload {
        Workload {
            name: "w".into(),
            seed: 3,
            tasks: 10,
            kind: Kind::Mixed,
            iterations: 100,
            io_wait_ns: 1000,
            distribution: SizeDistribution::LogNormal { sigma: 0.7 },
            serial_fraction: 0.1,
            serial_basis_tasks: 10,
            payload_bytes: 16,
            working_set: 0,
            access: martelli_workload::Access::Random,
        }
    }

    #[test]
    fn workloads_round_trip() {
        let w = sample();
        assert_eq!(workload_from_wire(&workload_to_wire(&w)), Ok(w));
        let cycle = Workload {
            distribution: SizeDistribution::cycle(&[3, 1, 1]).unwrap().1,
            ..sample()
        };
        assert_eq!(workload_from_wire(&workload_to_wire(&cycle)), Ok(cycle));
        // A replay crosses as its description; each task brings its own size and payload.
        let tasks = vec![
            martelli_workload::ReplayTask {
                compute_ns: 1_000,
                wait_ns: 0,
                payload_bytes: 4,
            },
            martelli_workload::ReplayTask {
                compute_ns: 3_000,
                wait_ns: 9,
                payload_bytes: 16,
            },
        ];
        let replay = Workload {
            kind: Kind::Replay,
            tasks: 2,
            payload_bytes: 16,
            distribution: SizeDistribution::Replay(Replay::new("t.csv".into(), 77, tasks)),
            ..sample()
        };
        let received = workload_from_wire(&workload_to_wire(&replay)).unwrap();
        assert_eq!(received, replay);
        let task = replay.task(0);
        let on_wire = task_to_wire(&task, 0, vec![0; 4]);
        assert_eq!(task_from_wire(&on_wire, &received), Ok(task));
        let too_big = task_to_wire(&task, 0, vec![0; 17]);
        assert!(task_from_wire(&too_big, &received).is_err());
    }

    #[test]
    fn untrusted_input_is_rejected() {
        let mut bad = workload_to_wire(&sample());
        bad.working_set = u64::MAX;
        assert!(workload_from_wire(&bad).unwrap_err().contains("working_set"));
        let mut bad = workload_to_wire(&sample());
        bad.kind = 99;
        assert!(workload_from_wire(&bad).is_err());
        for factors in [vec![], vec![1.0, -1.0], vec![f64::NAN], vec![1.0; 5000]] {
            let mut bad = workload_to_wire(&sample());
            bad.distribution = wire::Distribution::Cycle as i32;
            bad.factors = factors;
            assert!(
                workload_from_wire(&bad)
                    .unwrap_err()
                    .contains("size distribution")
            );
        }
        let w = sample();
        let good = task_to_wire(&w.task(3), 0, vec![0; 16]);
        assert!(task_from_wire(&good, &w).is_ok());
        let short = task_to_wire(&w.task(3), 0, vec![0; 15]);
        assert!(task_from_wire(&short, &w).unwrap_err().contains("payload"));
        let far = wire::TaskDescriptor {
            id: 10,
            ..good.clone()
        };
        assert!(task_from_wire(&far, &w).unwrap_err().contains("out of range"));
        let huge = wire::TaskDescriptor {
            iterations: u64::MAX,
            ..good
        };
        assert!(task_from_wire(&huge, &w).is_err());
    }
}
