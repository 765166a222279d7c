//! Flow control of one worker (what the coordinator sends it, and when) and the grouping of
//! one worker thread's results (when they leave for the coordinator).

use crate::{Policy, RESULT_GROUP, TaskQueue};

/// The coordinator's view of one worker in a run: its threads, the tasks in flight on it, and
/// the mean task time it has reported, which together decide when and how many tasks it gets.
#[derive(Clone, Debug, PartialEq)]
pub struct Feed {
    policy: Policy,
    threads: usize,
    /// A fixed depth per thread (a simulated cluster's `in_flight`), else the adaptive rule.
    fixed: Option<u32>,
    /// Most tasks in one message.
    cap: usize,
    in_flight: usize,
    /// Moving average of the task times reported, ns (0 until the first result).
    mean_task_ns: f64,
}

impl Feed {
    /// A worker of `threads` threads with nothing in flight, fed by `policy`; at most `cap`
    /// tasks a message.
    pub fn new(policy: Policy, threads: usize, fixed: Option<u32>, cap: usize) -> Feed {
        Feed {
            policy,
            threads,
            fixed,
            cap: cap.max(1),
            in_flight: 0,
            mean_task_ns: 0.0,
        }
    }

    /// Tasks to send now (0: wait for results): the policy's depth less what is in flight,
    /// when the policy says to refill ([`Policy::refill_now`]); never more than one message
    /// holds.
    pub fn want(&self, queue: &TaskQueue) -> usize {
        let depth = self.depth(queue);
        if self.policy.refill_now(depth, self.in_flight) {
            depth.saturating_sub(self.in_flight).min(self.cap)
        } else {
            0
        }
    }

    /// Tasks the policy keeps in flight on this worker now.
    pub fn depth(&self, queue: &TaskQueue) -> usize {
        self.policy.depth(
            self.threads,
            self.mean_task_ns,
            self.fixed,
            queue.left_per_thread(),
        )
    }

    /// Takes the tasks to send now from `queue` into `out` (cleared first) and counts them as
    /// sent; returns how many (0: nothing to send now). Callers send the batch and ask again
    /// until it returns 0. A worker with nothing in flight when nothing is left to send gets
    /// second copies of the tasks in flight longest elsewhere ([`TaskQueue::reissue`]).
    pub fn refill(&mut self, queue: &mut TaskQueue, out: &mut Vec<(u64, u32)>) -> usize {
        out.clear();
        let want = self.want(queue);
        if want == 0 {
            return 0;
        }
        let mut count = queue.take(want, out);
        if count == 0 && self.in_flight == 0 {
            // One copy per idle thread: a copy of a task still queued on its worker is work
            // done twice, and on workers that share cores it takes theirs.
            count = queue.reissue(want.min(self.threads), self.policy.copies_newest(), out);
        }
        self.sent(count);
        count
    }

    /// Takes in the result of task `id`, sent to this worker, that ran `latency_ns`: true when
    /// it is the task's first result (it counts), false for a duplicate (it is dropped).
    pub fn result(&mut self, queue: &mut TaskQueue, id: u64, latency_ns: u64) -> bool {
        self.answered(latency_ns);
        queue.finish(id)
    }

    /// The worker was lost: nothing is in flight on it any more.
    pub fn lost(&mut self) {
        self.in_flight = 0;
    }

    /// `count` tasks were sent.
    pub fn sent(&mut self, count: usize) {
        self.in_flight += count;
    }

    /// A task sent to this worker came back after running `latency_ns`.
    pub fn answered(&mut self, latency_ns: u64) {
        self.in_flight = self.in_flight.saturating_sub(1);
        // A moving average is enough to size the queue, and follows a workload that changes.
        let latency = latency_ns.max(1) as f64;
        self.mean_task_ns = if self.mean_task_ns == 0.0 {
            latency
        } else {
            0.9 * self.mean_task_ns + 0.1 * latency
        };
    }

    /// Tasks sent and not answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The worker's threads in this run.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The moving average of the task times reported so far, ns.
    pub fn mean_task_ns(&self) -> f64 {
        self.mean_task_ns
    }
}

/// One worker thread's finished results not yet handed to the worker's sender. A result of a
/// task that took a while goes at once; shorter tasks' results go every [`RESULT_GROUP`] or
/// when the first of them has waited the policy's [`Policy::result_wait_ns`], since waking the
/// sender (and the coordinator) once per short task takes the cores the tasks need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultGroup {
    len: usize,
    /// Longest a result waits, ns.
    wait_ns: u64,
    /// True until the first result was handed over: it goes at once.
    first: bool,
    /// When the group was last handed over, ns on the caller's clock.
    since_ns: u64,
}

impl ResultGroup {
    /// An empty group, started at `now_ns`, whose results wait `wait_ns` at most.
    pub fn new(now_ns: u64, wait_ns: u64) -> ResultGroup {
        ResultGroup {
            len: 0,
            wait_ns,
            first: true,
            since_ns: now_ns,
        }
    }

    /// A result joined the group at `now_ns`: true when the group must be handed over now
    /// (the group then starts anew). The first result ever goes at once.
    pub fn push(&mut self, now_ns: u64) -> bool {
        self.len += 1;
        if self.first || self.len >= RESULT_GROUP || now_ns.saturating_sub(self.since_ns) >= self.wait_ns {
            self.handed_over(now_ns);
            true
        } else {
            false
        }
    }

    /// The group was handed over at `now_ns` for another reason (its thread ran out of tasks).
    pub fn handed_over(&mut self, now_ns: u64) {
        self.first = false;
        self.len = 0;
        self.since_ns = now_ns;
    }

    /// Results waiting in the group.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no result waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
