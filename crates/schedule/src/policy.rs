//! How a worker is fed: how many tasks it holds, when it is refilled, how long its results wait
//! to share a message, and which tasks an idle worker copies at the end. Three options people
//! use, measured side by side by `benches/distributed.rs` (`skewed`) and `scripts/policies.sh`;
//! the default is the one that won (docs/validation.md has the figures).

use crate::MAX_DEPTH_PER_THREAD;

/// A distributed run's feeding policy: `[distributed] policy` in a config.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// About [`GUIDED_WORK_PER_THREAD_NS`] of work queued per thread (at least 4 tasks), no more
    /// than half of each thread's share of what is left to send (guided self-scheduling: deep
    /// early, shallow at the end), refilled at half depth; results wait up to
    /// [`GUIDED_RESULT_WAIT_NS`] to share a message; an idle worker at the end copies the tasks
    /// sent last (the ones their worker reaches last), so the two meet in the middle.
    #[default]
    Guided,
    /// The policy before guided: 4 tasks per thread (2 ms of work for tiny tasks, 2 per thread
    /// once fewer than 4 per thread are left), refilled at half depth; results wait up to
    /// [`CREDIT_RESULT_WAIT_NS`]; an idle worker copies the tasks in flight longest.
    Credit,
    /// A request per free thread, as a process pool's workers pull (Python's
    /// `multiprocessing.Pool` with `chunksize=1`, HyperQueue's workers): 2 tasks per thread (one
    /// running, one ready), a refill with every result, each result sent at once; an idle
    /// worker copies the tasks in flight longest.
    Pull,
}

/// Work the guided policy queues per worker thread, ns: 32 ms. On a 2-core VM with 2 workers
/// of 1 thread and log-normal 500 us tasks, the credit policy's 2 ms of queued work left the
/// threads waiting for refills behind the I/O threads they share the cores with, and its
/// message per result took those cores: 85% of the multi tier's speed-up. Queued work of 16 ms
/// with results waiting 2 ms reached 93-95%, 32 ms with 8 ms 96-97% (docs/validation.md).
pub const GUIDED_WORK_PER_THREAD_NS: f64 = 32e6;

/// Longest a finished result waits to share a message under the guided policy, ns: 8 ms, a
/// quarter of [`GUIDED_WORK_PER_THREAD_NS`]. Each message costs both processes' I/O threads a
/// wake-up on the cores the tasks need; refilled at half depth, a worker still has 16 ms of
/// work queued, so results 8 ms late leave another 8 ms for the round trip. The first result
/// of each thread goes at once (the time to the first result is a measurement).
pub const GUIDED_RESULT_WAIT_NS: u64 = 8_000_000;

/// Longest a finished result waits to share a message under the credit policy, ns.
pub const CREDIT_RESULT_WAIT_NS: u64 = 200_000;

/// Work the credit policy queues per worker thread for tiny tasks, ns.
const CREDIT_WORK_PER_THREAD_NS: f64 = 2e6;

/// Tasks in flight per worker thread under the credit policy while plenty is left to send.
pub const DEEP_DEPTH_PER_THREAD: usize = 4;

impl Policy {
    /// Every policy, the default first.
    pub const ALL: [Policy; 3] = [Policy::Guided, Policy::Credit, Policy::Pull];

    /// The name a config gives it.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Guided => "guided",
            Policy::Credit => "credit",
            Policy::Pull => "pull",
        }
    }

    /// The policy a config names, if any.
    pub fn from_name(name: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Tasks to keep in flight on a worker of `threads` threads, given the mean task time seen
    /// so far (0 before the first result) and the tasks left to send per thread of the run;
    /// `fixed` (a simulated cluster's `in_flight`) overrides the rule.
    pub fn depth(self, threads: usize, mean_task_ns: f64, fixed: Option<u32>, left_per_thread: u64) -> usize {
        if let Some(per_thread) = fixed {
            return threads * per_thread as usize;
        }
        let for_work = |work_ns: f64, floor: usize| {
            if mean_task_ns > 0.0 {
                ((work_ns / mean_task_ns) as usize).clamp(floor, MAX_DEPTH_PER_THREAD)
            } else {
                floor
            }
        };
        let per_thread = match self {
            Policy::Guided => {
                let taper = usize::try_from(left_per_thread / 2).unwrap_or(usize::MAX).max(2);
                for_work(GUIDED_WORK_PER_THREAD_NS, 4).min(taper)
            }
            Policy::Credit => {
                let ample = left_per_thread >= DEEP_DEPTH_PER_THREAD as u64;
                for_work(
                    CREDIT_WORK_PER_THREAD_NS,
                    if ample { DEEP_DEPTH_PER_THREAD } else { 2 },
                )
            }
            Policy::Pull => 2,
        };
        threads * per_thread
    }

    /// True when a worker of `depth` with `in_flight` tasks should be refilled now: at half
    /// depth (tiny tasks would otherwise travel a few per message), at once when it has nothing
    /// left; under pull, whenever a thread's slot is free.
    pub fn refill_now(self, depth: usize, in_flight: usize) -> bool {
        let free = depth.saturating_sub(in_flight);
        match self {
            Policy::Pull => free >= 1,
            Policy::Guided | Policy::Credit => free >= depth.div_ceil(2) || in_flight == 0,
        }
    }

    /// Longest a worker thread's finished result waits to share a message, ns.
    pub fn result_wait_ns(self) -> u64 {
        match self {
            Policy::Guided => GUIDED_RESULT_WAIT_NS,
            Policy::Credit => CREDIT_RESULT_WAIT_NS,
            Policy::Pull => 0,
        }
    }

    /// True when an idle worker at the end of a run copies the tasks sent last rather than
    /// those in flight longest.
    pub fn copies_newest(self) -> bool {
        self == Policy::Guided
    }
}
