//! Which task goes out next: tasks not yet sent in id order, after the tasks of lost workers,
//! each at most [`MAX_ATTEMPTS`] times; one bit per task marks its first result. When nothing
//! is left to send, a worker with nothing to do gets a second copy of the tasks in flight
//! longest elsewhere (a straggler's, say; each task at most once), and the first result wins.

use std::collections::VecDeque;

use crate::MAX_ATTEMPTS;

/// The tasks of one run, as the coordinator hands them out.
#[derive(Clone, Debug)]
pub struct TaskQueue {
    total: u64,
    /// Threads the run spreads over, on every worker.
    threads: u64,
    /// The next task never sent.
    next: u64,
    /// Tasks of lost workers to send again, with their attempt numbers.
    retry: VecDeque<(u64, u32)>,
    /// One bit per task, set by its first result: tasks / 8 bytes.
    done: Vec<u64>,
    completed: u64,
    retried: u64,
    /// Tasks sent and maybe not done, in the order they were sent (done ones are skipped
    /// lazily), for the second copies at the end of a run.
    sent: VecDeque<(u64, u32)>,
    /// One bit per task, set when its second copy went out.
    copied: Vec<u64>,
    reissued: u64,
}

/// A task that was lost [`MAX_ATTEMPTS`] times: the run cannot complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost {
    /// The task.
    pub id: u64,
}

impl TaskQueue {
    /// The tasks `0..total`, none sent, for a run over `threads` threads in all.
    pub fn new(total: u64, threads: usize) -> TaskQueue {
        TaskQueue {
            total,
            threads: threads as u64,
            next: 0,
            retry: VecDeque::new(),
            done: vec![0; total.div_ceil(64) as usize],
            completed: 0,
            retried: 0,
            sent: VecDeque::new(),
            copied: vec![0; total.div_ceil(64) as usize],
            reissued: 0,
        }
    }

    /// Appends up to `n` tasks to send, `(id, attempt)`: re-queued ones first (skipping any a
    /// late result completed meanwhile), then new ones in id order. Returns how many.
    pub fn take(&mut self, n: usize, out: &mut Vec<(u64, u32)>) -> usize {
        let before = out.len();
        while out.len() - before < n {
            if let Some(item) = self.retry.pop_front() {
                if !self.is_done(item.0) {
                    out.push(item);
                }
            } else if self.next < self.total {
                out.push((self.next, 0));
                self.next += 1;
            } else {
                break;
            }
        }
        self.sent.extend(out[before..].iter().copied());
        // Tasks finish roughly in the order they were sent: the done ones at the front go, so
        // the list holds about what is in flight.
        while self.sent.front().is_some_and(|&(id, _)| self.is_done(id)) {
            self.sent.pop_front();
        }
        out.len() - before
    }

    /// Appends up to `n` second copies `(id, attempt + 1)` of the tasks in flight longest (or,
    /// with `newest`, of those sent last), for a worker with nothing to do once nothing is left
    /// to send: each task gets one copy at most, and none while tasks wait to be sent. Returns
    /// how many.
    pub fn reissue(&mut self, n: usize, newest: bool, out: &mut Vec<(u64, u32)>) -> usize {
        let before = out.len();
        if !self.drained() {
            return 0;
        }
        while out.len() - before < n {
            let next = if newest {
                self.sent.pop_back()
            } else {
                self.sent.pop_front()
            };
            let Some((id, attempt)) = next else {
                break;
            };
            let (word, bit) = ((id / 64) as usize, 1u64 << (id % 64));
            if self.is_done(id) || self.copied[word] & bit != 0 {
                continue;
            }
            self.copied[word] |= bit;
            out.push((id, attempt + 1));
        }
        self.reissued += (out.len() - before) as u64;
        out.len() - before
    }

    /// Puts a lost worker's tasks back, unless they completed meanwhile. Fails naming the
    /// first task that has had all its attempts.
    pub fn requeue(&mut self, items: impl IntoIterator<Item = (u64, u32)>) -> Result<(), Lost> {
        for (id, attempt) in items {
            if self.is_done(id) {
                continue;
            }
            if attempt + 1 >= MAX_ATTEMPTS {
                return Err(Lost { id });
            }
            self.retry.push_back((id, attempt + 1));
            self.retried += 1;
        }
        Ok(())
    }

    /// True once task `id` has a result (false for ids out of range).
    pub fn is_done(&self, id: u64) -> bool {
        id < self.total && self.done[(id / 64) as usize] & (1 << (id % 64)) != 0
    }

    /// Marks task `id` done: true for its first result only (false for ids out of range).
    pub fn finish(&mut self, id: u64) -> bool {
        if id >= self.total {
            return false;
        }
        let (word, bit) = ((id / 64) as usize, 1u64 << (id % 64));
        let first = self.done[word] & bit == 0;
        if first {
            self.done[word] |= bit;
            self.completed += 1;
        }
        first
    }

    /// Tasks with a result.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// Tasks in the run.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// True when every task has a result.
    pub fn all_done(&self) -> bool {
        self.completed == self.total
    }

    /// Tasks sent again after their worker was lost.
    pub fn retried(&self) -> u64 {
        self.retried
    }

    /// Second copies sent to idle workers at the end of the run.
    pub fn reissued(&self) -> u64 {
        self.reissued
    }

    /// Tasks left to send (never sent, or to send again) per thread of the run: policies
    /// queue shallower near the end, where deep queues on some workers would leave others idle.
    pub fn left_per_thread(&self) -> u64 {
        (self.total - self.next + self.retry.len() as u64) / self.threads.max(1)
    }

    /// True when nothing is left to send (tasks may still be in flight).
    pub fn drained(&self) -> bool {
        self.next == self.total && self.retry.is_empty()
    }
}
