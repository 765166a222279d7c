//! Tasks replayed from a file (`kind = "replay"`): each task's recorded compute time, wait and
//! payload, in file order. The table itself is read by `martelli-config` and shared, never
//! copied; what crosses a process or the wire is its hash and length (the tasks themselves
//! travel one by one, as every tier's tasks do).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One recorded task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayTask {
    /// Compute time, nanoseconds.
    pub compute_ns: u64,
    /// Wait (I/O) after the compute, nanoseconds.
    pub wait_ns: u64,
    /// Input bytes the task carries.
    pub payload_bytes: u32,
}

/// The recorded tasks of one file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Replay {
    /// The file, as the config named it.
    pub from: String,
    /// FNV-1a (64 bits) of the file's bytes, 16 hex digits: a changed file is another
    /// workload.
    pub hash: String,
    /// How many tasks the file holds.
    pub records: u64,
    /// Their mean compute time, nanoseconds (what `task_cost` calibrates into iterations).
    pub mean_compute_ns: f64,
    /// The tasks, in file order; empty where only the description travelled (a worker gets
    /// each task's size with the task).
    #[serde(skip)]
    pub tasks: Arc<Vec<ReplayTask>>,
}

impl PartialEq for Replay {
    /// Two replays are the same workload when their files are: hash and length (the path
    /// may differ, and one side may hold only the description).
    fn eq(&self, other: &Replay) -> bool {
        self.hash == other.hash && self.records == other.records
    }
}

impl Replay {
    /// The replay of `tasks` read from `from`, whose bytes hashed to `hash`.
    pub fn new(from: String, hash: u64, tasks: Vec<ReplayTask>) -> Replay {
        let total: f64 = tasks.iter().map(|t| t.compute_ns as f64).sum();
        Replay {
            from,
            hash: format!("{hash:016x}"),
            records: tasks.len() as u64,
            mean_compute_ns: if tasks.is_empty() {
                0.0
            } else {
                total / tasks.len() as f64
            },
            tasks: Arc::new(tasks),
        }
    }

    /// Task `id` (wrapping past the end: a weak-scaling series replays the file again).
    pub(crate) fn task(&self, id: u64) -> ReplayTask {
        assert!(
            !self.tasks.is_empty(),
            "a replay's tasks are generated where its file was read"
        );
        self.tasks[(id % self.tasks.len() as u64) as usize]
    }

    /// The largest payload of any task, bytes.
    pub fn max_payload_bytes(&self) -> u64 {
        self.tasks
            .iter()
            .map(|t| u64::from(t.payload_bytes))
            .max()
            .unwrap_or(0)
    }

    /// The mean payload, bytes.
    pub fn mean_payload_bytes(&self) -> f64 {
        let total: f64 = self.tasks.iter().map(|t| f64::from(t.payload_bytes)).sum();
        if self.tasks.is_empty() {
            0.0
        } else {
            total / self.tasks.len() as f64
        }
    }

    /// The mean wait, nanoseconds.
    pub fn mean_wait_ns(&self) -> f64 {
        let total: f64 = self.tasks.iter().map(|t| t.wait_ns as f64).sum();
        if self.tasks.is_empty() {
            0.0
        } else {
            total / self.tasks.len() as f64
        }
    }

    /// The hash as a number (0 for a malformed one: it only ever comes from [`Replay::new`]).
    pub(crate) fn hash_value(&self) -> u64 {
        u64::from_str_radix(&self.hash, 16).unwrap_or(0)
    }
}

/// FNV-1a over bytes fed in pieces: how a replay's file is hashed as it streams past.
#[derive(Clone, Copy, Debug)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Fnv1a {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_its_reference_values_and_pieces_do_not_matter() {
        let mut h = Fnv1a::default();
        h.update(b"");
        assert_eq!(h.finish(), 0xcbf2_9ce4_8422_2325);
        h.update(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
        let mut whole = Fnv1a::default();
        whole.update(b"foobar");
        let mut parts = Fnv1a::default();
        parts.update(b"foo");
        parts.update(b"bar");
        assert_eq!(whole.finish(), parts.finish());
        assert_eq!(whole.finish(), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn a_replay_describes_its_tasks_and_wraps_past_the_end() {
        let tasks = vec![
            ReplayTask {
                compute_ns: 1000,
                wait_ns: 0,
                payload_bytes: 10,
            },
            ReplayTask {
                compute_ns: 3000,
                wait_ns: 500,
                payload_bytes: 30,
            },
        ];
        let r = Replay::new("t.csv".into(), 0xabc, tasks);
        assert_eq!(r.hash, "0000000000000abc");
        assert_eq!(r.hash_value(), 0xabc);
        assert_eq!(r.records, 2);
        assert_eq!(r.mean_compute_ns, 2000.0);
        assert_eq!(r.max_payload_bytes(), 30);
        assert_eq!(r.mean_payload_bytes(), 20.0);
        assert_eq!(r.mean_wait_ns(), 250.0);
        assert_eq!(r.task(3), r.task(1));
        let described = Replay {
            tasks: Arc::default(),
            ..r.clone()
        };
        assert_eq!(described, r, "the description is the same workload");
    }
}
