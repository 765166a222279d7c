//! `model = "async"`: a tokio runtime of N worker threads on the multi tier, or on the single
//! tier an event loop on the calling thread alone (the lecture's "maximize the usage of a
//! single thread"). A task's compute part runs on a runtime thread (holding it, as CPU work
//! holds an event loop); its I/O wait is awaited, so the thread serves other tasks meanwhile
//! and up to `concurrency` tasks are in flight at once, far more than the threads. Results
//! reach the caller as they complete. Tokio's timer has a resolution of 1 ms: waits round up
//! to it.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use martelli_config::Tier;
use martelli_results::Sample;
use martelli_workload::Scratch;
use tokio::task::JoinSet;

use crate::record::{Recorder, timed_run};
use crate::{Job, PreparedPoint, RunError};

thread_local! {
    /// Each runtime thread's payload buffer, so that a task allocates nothing.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A runtime of N worker threads, reused by every repeat of one point.
pub(crate) struct AsyncPoint {
    runtime: tokio::runtime::Runtime,
    concurrency: usize,
}

impl AsyncPoint {
    /// A runtime of `threads` worker threads (the multi tier).
    pub(crate) fn new(threads: usize, concurrency: u32) -> Result<AsyncPoint, RunError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("martelli-async")
            .enable_time()
            .build()
            .map_err(|e| RunError::Setup {
                tier: Tier::Multi,
                cores: threads,
                reason: format!("cannot start the async runtime: {e}"),
            })?;
        Ok(AsyncPoint {
            runtime,
            concurrency: concurrency.max(1) as usize,
        })
    }

    /// An event loop that runs every task on the thread that drives the run (the single tier).
    pub(crate) fn one_thread(concurrency: u32) -> Result<AsyncPoint, RunError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| RunError::Setup {
                tier: Tier::Single,
                cores: 1,
                reason: format!("cannot start the event loop: {e}"),
            })?;
        Ok(AsyncPoint {
            runtime,
            concurrency: concurrency.max(1) as usize,
        })
    }
}

impl PreparedPoint for AsyncPoint {
    fn run(&mut self, job: &Job<'_>) -> Result<Sample, RunError> {
        let concurrency = self.concurrency;
        let runtime = &self.runtime;
        timed_run(job, |start| {
            // Spawned tasks outlive no run, but tokio needs owned values: the executor's
            // buffers are shared (Arc inside), so these clones are cheap.
            let executor = Arc::new(job.executor.clone());
            let workload = Arc::new(job.workload.clone());
            runtime.block_on(async move {
                let mut recorder = Recorder::new(start);
                let mut in_flight = JoinSet::new();
                let mut next = 0u64;
                // The in-flight slots free now: each task runs in one, and a slot runs one task
                // at a time (the lanes of the breakdown).
                let mut free: Vec<u32> = (0..concurrency as u32).rev().collect();
                loop {
                    while in_flight.len() < concurrency && next < workload.tasks {
                        let task = workload.task(next);
                        next += 1;
                        let executor = executor.clone();
                        let slot = free.pop().unwrap_or(0);
                        in_flight.spawn(async move {
                            let started = Instant::now();
                            let digest = SCRATCH.with(|s| executor.compute(&task, &mut s.borrow_mut()));
                            if task.io_wait_ns > 0 {
                                tokio::time::sleep(task.io_wait()).await;
                            }
                            (slot, digest, started.elapsed().as_nanos() as u64)
                        });
                    }
                    match in_flight.join_next().await {
                        Some(Ok((slot, digest, latency))) => {
                            free.push(slot);
                            recorder.record_remote(slot, digest, latency);
                        }
                        Some(Err(e)) => {
                            return Err(RunError::Setup {
                                tier: Tier::Multi,
                                cores: 0,
                                reason: format!("an async task failed: {e}"),
                            });
                        }
                        None => break,
                    }
                }
                Ok(recorder)
            })
        })
    }
}
