//! A run's threads: each takes tasks from the inbox, runs them and hands the results over in
//! groups (the policy's `ResultGroup`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use martelli_schedule::ResultGroup;
use martelli_workload::Executor;
use tokio::sync::mpsc;

use super::Shared;
use super::inbox::{Inbox, Next};
use crate::wire;

/// One thread of a run: takes tasks until the run closes; hands its results over in groups,
/// and whenever it finds nothing more to run.
pub(super) fn run_tasks(
    inbox: &Inbox,
    executor: &Executor,
    mut sink: ResultSink,
    in_flight: &AtomicU32,
    epoch: Instant,
    thread: u32,
) {
    loop {
        let (task, attempt, payload) = match inbox.try_next() {
            Next::Task(queued) => queued,
            Next::Closed => break,
            Next::Empty => {
                sink.counters.starved.fetch_add(1, Ordering::Relaxed);
                sink.flush();
                match inbox.next() {
                    Some(queued) => queued,
                    None => break,
                }
            }
        };
        in_flight.fetch_sub(1, Ordering::Relaxed);
        let started = Instant::now();
        let digest = executor.compute_on(&task, &payload);
        if task.io_wait_ns > 0 {
            std::thread::sleep(task.io_wait());
        }
        sink.push(wire::TaskResult {
            id: task.id,
            attempt,
            digest,
            latency_ns: started.elapsed().as_nanos() as u64,
            started_ns: started.saturating_duration_since(epoch).as_nanos() as u64,
            thread,
        });
    }
}

/// Collects one pool thread's results and hands them to the forwarder in groups, as the
/// policy's [`ResultGroup`] says (the simulator groups them by the same rule).
pub(super) struct ResultSink {
    tx: mpsc::UnboundedSender<Vec<wire::TaskResult>>,
    shared: Arc<Shared>,
    buffer: Vec<wire::TaskResult>,
    group: ResultGroup,
    /// The group's clock starts here.
    epoch: Instant,
    /// The run's counters.
    counters: Arc<RunCounters>,
}

/// A run's counters: tasks finished, and results handed over and not yet taken by the
/// coordinator.
pub(super) struct RunCounters {
    /// The run's count of finished tasks.
    pub(super) ran: AtomicU64,
    /// Times a thread found no task queued and had to wait for the coordinator's next batch.
    pub(super) starved: AtomicU64,
    pub(super) results: AtomicU64,
    /// How many may be.
    pub(super) limit: u64,
    /// Told when there are more.
    pub(super) over: tokio::sync::Notify,
    /// Longest a thread's finished result waits to share a message, ns (the coordinator's
    /// policy, at most [`MAX_RESULT_WAIT_NS`]).
    pub(super) result_wait_ns: u64,
}

/// Longest a coordinator may ask results to wait, ns: a second (its heartbeats and timeouts
/// are measured in seconds).
pub(super) const MAX_RESULT_WAIT_NS: u64 = 1_000_000_000;

impl ResultSink {
    pub(super) fn new(
        tx: mpsc::UnboundedSender<Vec<wire::TaskResult>>,
        shared: Arc<Shared>,
        counters: Arc<RunCounters>,
    ) -> ResultSink {
        ResultSink {
            tx,
            shared,
            group: ResultGroup::new(0, counters.result_wait_ns),
            counters,
            buffer: Vec::new(),
            epoch: Instant::now(),
        }
    }

    fn push(&mut self, result: wire::TaskResult) {
        self.buffer.push(result);
        if self.group.push(self.epoch.elapsed().as_nanos() as u64) {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let n = self.buffer.len() as u64;
        self.shared.tasks_executed.fetch_add(n, Ordering::Relaxed);
        self.counters.ran.fetch_add(n, Ordering::Relaxed);
        if self.counters.results.fetch_add(n, Ordering::Relaxed) + n > self.counters.limit {
            self.counters.over.notify_one();
        }
        let _ = self.tx.send(std::mem::take(&mut self.buffer));
    }
}

impl Drop for ResultSink {
    fn drop(&mut self) {
        self.flush();
    }
}
