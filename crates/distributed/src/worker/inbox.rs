//! The tasks of one run waiting for its threads, and the tree of wake-ups that hands them out.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};

use crate::limits::Limits;

/// A task as it waits for a thread: the task, its attempt, its payload.
pub(super) type Queued = (martelli_workload::Task, u32, Vec<u8>);

/// The tasks of one run waiting for the run's threads, in arrival order. Each thread takes
/// one task at a time, as the policy's model assumes (not rayon's splitting and stealing: a
/// thread blocked in a task's wait would leave the owners of its stolen halves spinning, on
/// cores the woken waits need).
#[derive(Default)]
pub(super) struct Inbox {
    state: Mutex<InboxState>,
    /// Signalled for tasks queued while threads wait (no more than wait), and when the run
    /// closes.
    ready: Condvar,
}

#[derive(Default)]
struct InboxState {
    tasks: VecDeque<Queued>,
    /// Payload bytes of the queued tasks.
    bytes: u64,
    /// Set when the run is over: queued tasks are dropped, threads end.
    closed: bool,
    /// Threads waiting for a task: no more than these are woken (waking costs a system call
    /// each, whether or not a thread waits).
    waiting: usize,
    /// Waiting threads signalled that have not yet woken: they will take queued tasks, so
    /// nobody signals more threads for those.
    signalled: usize,
}

/// Most waiting threads one thread wakes when it queues or takes a task: the I/O thread wakes
/// one, which wakes two more as it takes its task, and so on. A batch arriving for 128
/// waiting threads thus costs the I/O thread one system call, not 128, and the wake-ups
/// spread over the threads that are about to run anyway, in a tree a few levels deep. On a
/// saturated 2-core VM, waking the threads one by one took a quarter of the I/O thread's
/// time (`perf record -t`), time in which results were not forwarded.
const WAKE_FANOUT: usize = 2;

impl InboxState {
    /// How many waiting threads to signal now for the tasks queued, at most `fanout`; counted
    /// as signalled.
    fn signal(&mut self, fanout: usize) -> usize {
        let unclaimed = self.tasks.len().saturating_sub(self.signalled);
        let asleep = self.waiting.saturating_sub(self.signalled);
        let wake = unclaimed.min(asleep).min(fanout);
        self.signalled += wake;
        wake
    }
}

/// What a thread finds when it looks for its next task.
pub(super) enum Next {
    Task(Queued),
    /// Nothing queued now (the thread hands over its results before it waits).
    Empty,
    Closed,
}

impl Inbox {
    /// Queues a batch; refuses it (queuing none of it) past the limits on queued tasks.
    pub(super) fn push(&self, batch: Vec<Queued>, limits: &Limits) -> Result<(), String> {
        let n = batch.len();
        let bytes: u64 = batch.iter().map(|(_, _, payload)| payload.len() as u64).sum();
        let wake = {
            let Ok(mut state) = self.state.lock() else {
                return Ok(());
            };
            if state.tasks.len() + n > limits.queued_tasks {
                return Err(format!(
                    "{} tasks would be queued, more than the {} a run may queue here (--max-queued-tasks)",
                    state.tasks.len() + n,
                    limits.queued_tasks
                ));
            }
            if state.bytes + bytes > limits.queued_bytes {
                return Err(format!(
                    "{} payload bytes would be queued, more than the {} a run may queue here \
                     (--max-queued-bytes)",
                    state.bytes + bytes,
                    limits.queued_bytes
                ));
            }
            state.bytes += bytes;
            state.tasks.extend(batch);
            state.signal(1)
        };
        self.wake(wake);
        Ok(())
    }

    /// Takes the next queued task, if any.
    fn pop(state: &mut InboxState) -> Option<Queued> {
        let task = state.tasks.pop_front()?;
        state.bytes -= task.2.len() as u64;
        Some(task)
    }

    pub(super) fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
            state.tasks.clear();
            state.bytes = 0;
        }
        self.ready.notify_all();
    }

    /// Takes the next queued task without waiting, and wakes waiting threads for the tasks
    /// left behind it.
    pub(super) fn try_next(&self) -> Next {
        let (next, wake) = match self.state.lock() {
            Ok(mut state) if !state.closed => {
                let next = Inbox::pop(&mut state).map_or(Next::Empty, Next::Task);
                (next, state.signal(WAKE_FANOUT))
            }
            _ => return Next::Closed,
        };
        self.wake(wake);
        next
    }

    /// Waits for a task; `None` once the run is closed. A woken thread wakes others for the
    /// tasks left behind the one it takes.
    pub(super) fn next(&self) -> Option<Queued> {
        let mut state = self.state.lock().ok()?;
        loop {
            if state.closed {
                return None;
            }
            if let Some(task) = Inbox::pop(&mut state) {
                let wake = state.signal(WAKE_FANOUT);
                drop(state);
                self.wake(wake);
                return Some(task);
            }
            state.waiting += 1;
            state = self.ready.wait(state).ok()?;
            state.waiting -= 1;
            // Taken as this thread's signal (a spurious wake-up, rare, takes one that another
            // thread then answers: the next task taken wakes again).
            state.signalled = state.signalled.saturating_sub(1);
        }
    }

    fn wake(&self, count: usize) {
        for _ in 0..count {
            self.ready.notify_one();
        }
    }
}

#[cfg(test)]
mod inbox_tests {
    use super::*;
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    fn tasks(n: u64) -> Vec<Queued> {
        (0..n)
            .map(|id| {
                let task = martelli_workload::Task {
                    id,
                    iterations: 0,
                    io_wait_ns: 0,
                    payload_bytes: 0,
                };
                (task, 0, Vec::new())
            })
            .collect()
    }

    #[test]
    fn the_queuer_signals_one_waiting_thread_and_each_taker_two_more_while_tasks_are_unclaimed() {
        let mut state = InboxState {
            waiting: 8,
            ..InboxState::default()
        };
        state.tasks.extend(tasks(5));
        assert_eq!(state.signal(1), 1, "the I/O thread makes one system call");
        assert_eq!(state.signal(WAKE_FANOUT), 2);
        assert_eq!(state.signal(WAKE_FANOUT), 2);
        assert_eq!(state.signal(WAKE_FANOUT), 0, "five tasks, five threads signalled");
        state.tasks.clear();
        state.signalled = 0;
        state.tasks.extend(tasks(100));
        state.waiting = 3;
        assert_eq!(state.signal(WAKE_FANOUT), 2);
        assert_eq!(state.signal(WAKE_FANOUT), 1, "no more than wait");
        assert_eq!(state.signal(WAKE_FANOUT), 0);
    }

    /// Every waiting thread gets a task of one batch, though only one was woken by its
    /// arrival: each thread holds its task until all have one, which never happens if a
    /// wake-up is lost on the way.
    #[test]
    fn a_batch_for_many_waiting_threads_reaches_every_one_of_them() {
        const THREADS: usize = 16;
        let inbox = Arc::new(Inbox::default());
        let all_have_one = Arc::new(Barrier::new(THREADS + 1));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (inbox, all_have_one) = (inbox.clone(), all_have_one.clone());
                std::thread::spawn(move || {
                    let task = inbox.next().map(|(task, _, _)| task.id);
                    all_have_one.wait();
                    task
                })
            })
            .collect();
        // Every thread waits before the batch arrives.
        let deadline = Instant::now() + Duration::from_secs(10);
        while inbox.state.lock().unwrap().waiting < THREADS {
            assert!(Instant::now() < deadline, "the threads never waited");
            std::thread::sleep(Duration::from_millis(1));
        }
        inbox.push(tasks(THREADS as u64), &Limits::default()).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let waiter = all_have_one.clone();
        std::thread::spawn(move || {
            waiter.wait();
            let _ = done_tx.send(());
        });
        assert!(
            done_rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "a waiting thread was never woken for the batch"
        );
        let mut ids: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect();
        ids.sort_unstable();
        assert_eq!(ids, (0..THREADS as u64).collect::<Vec<_>>());
        let state = inbox.state.lock().unwrap();
        assert_eq!((state.waiting, state.signalled), (0, 0));
    }
}
