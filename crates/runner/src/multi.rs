//! The 2-8 core tier: N threads of this process, built fresh for each sweep point (never the
//! global pool, whose size is the machine's and whose threads other code shares). Two ways to
//! hand them tasks, the lecture's futures and queue (`[executor] dispatch`), each optionally
//! under an emulated global interpreter lock (`gil = true`); or an async runtime of N threads
//! (`model = "async"`, in `event_loop.rs`); or N worker processes (`model = "processes"`, in
//! `process.rs`).

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use martelli_config::{Dispatch, ExecutorOptions, Model, Tier};
use martelli_results::Sample;
use martelli_workload::{Scratch, Task};
use rayon::prelude::*;

use crate::event_loop::AsyncPoint;
use crate::gil::Gil;
use crate::process::ProcessPoint;
use crate::record::{Recorder, execute, timed_run};
use crate::{Job, PreparedPoint, RunError, Runner};

/// Spreads tasks over N threads (or processes), as each series' [`ExecutorOptions`] say.
#[derive(Clone, Debug, Default)]
pub struct MultiRunner {
    /// The martelli binary that `model = "processes"` starts as pool workers (`None`: this
    /// process's own executable).
    program: Option<PathBuf>,
}

impl MultiRunner {
    /// A runner whose process pools start `program` (a martelli binary) as their workers.
    pub fn with_program(program: impl Into<PathBuf>) -> MultiRunner {
        MultiRunner {
            program: Some(program.into()),
        }
    }
}

/// A pool of exactly N threads, reused by every repeat of one point.
struct FuturesPoint {
    pool: rayon::ThreadPool,
    gil: Option<Gil>,
}

/// N daemon worker threads started for each run, fed through one bounded queue.
struct QueuePoint {
    threads: usize,
    gil: Option<Gil>,
}

impl Runner for MultiRunner {
    fn tier(&self) -> Tier {
        Tier::Multi
    }

    fn prepare(&self, cores: usize) -> Result<Box<dyn PreparedPoint + '_>, RunError> {
        self.prepare_with(cores, &ExecutorOptions::default())
    }

    fn prepare_with(
        &self,
        cores: usize,
        options: &ExecutorOptions,
    ) -> Result<Box<dyn PreparedPoint + '_>, RunError> {
        match options.model {
            Model::Async => return Ok(Box::new(AsyncPoint::new(cores, options.concurrency)?)),
            Model::Processes => {
                let program = match &self.program {
                    Some(program) => program.clone(),
                    None => std::env::current_exe().map_err(|e| RunError::Setup {
                        tier: Tier::Multi,
                        cores,
                        reason: format!("cannot find the martelli binary to start worker processes: {e}"),
                    })?,
                };
                return Ok(Box::new(ProcessPoint {
                    program,
                    processes: cores,
                    gil: options.gil,
                    dispatch: options.dispatch,
                }));
            }
            Model::Threads => {}
        }
        let gil = options.gil.map(Gil::new);
        Ok(match options.dispatch {
            Dispatch::Futures => {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(cores)
                    .thread_name(|i| format!("martelli-multi-{i}"))
                    .build()
                    .map_err(|e| RunError::Setup {
                        tier: Tier::Multi,
                        cores,
                        reason: e.to_string(),
                    })?;
                Box::new(FuturesPoint { pool, gil })
            }
            Dispatch::Queue => Box::new(QueuePoint { threads: cores, gil }),
        })
    }
}

impl PreparedPoint for FuturesPoint {
    fn run(&mut self, job: &Job<'_>) -> Result<Sample, RunError> {
        let workload = job.workload;
        let gil = self.gil.as_ref();
        timed_run(job, |start| {
            // Task ids are split across threads; each thread regenerates its tasks from their
            // ids, so no task list is ever materialised.
            let merged = self.pool.install(|| {
                (0..workload.tasks)
                    .into_par_iter()
                    .fold(
                        || Recorder::new(start),
                        |mut recorder, id| {
                            recorder.run_task(job.executor, &workload.task(id), gil);
                            recorder
                        },
                    )
                    .reduce_with(Recorder::merge)
            });
            // Futures hand their results to the caller when gathered, all at once: the
            // caller's first result is the last task's (the notes' latency problem).
            let mut merged = merged.unwrap_or_else(|| Recorder::new(start));
            merged.gathered();
            Ok(merged)
        })
    }
}

/// A finished task as a worker reports it: digest and latency.
type Done = (u64, u64);

impl PreparedPoint for QueuePoint {
    fn run(&mut self, job: &Job<'_>) -> Result<Sample, RunError> {
        let workload = job.workload;
        let gil = self.gil.as_ref();
        let threads = self.threads;
        timed_run(job, |start| {
            let mut recorder = Recorder::new(start);
            std::thread::scope(|scope| {
                // The shared task queue holds two tasks per worker: a producer that runs ahead
                // blocks, as a bounded queue.Queue does.
                let (task_tx, task_rx) = mpsc::sync_channel::<Task>(2 * threads);
                let task_rx = Arc::new(Mutex::new(task_rx));
                let (done_tx, done_rx) = mpsc::channel::<Done>();
                for i in 0..threads {
                    let (task_rx, done_tx) = (task_rx.clone(), done_tx.clone());
                    std::thread::Builder::new()
                        .name(format!("martelli-queue-{i}"))
                        .spawn_scoped(scope, move || {
                            let mut scratch = Scratch::default();
                            loop {
                                // The lock is held only to take one task.
                                let next = task_rx.lock().map(|rx| rx.recv());
                                let Ok(Ok(task)) = next else { break };
                                let started = Instant::now();
                                let digest = execute(job.executor, &task, &mut scratch, gil);
                                let latency = started.elapsed().as_nanos() as u64;
                                if done_tx.send((digest, latency)).is_err() {
                                    break;
                                }
                            }
                        })
                        .map_err(|e| RunError::Setup {
                            tier: Tier::Multi,
                            cores: threads,
                            reason: format!("cannot start a queue worker: {e}"),
                        })?;
                }
                drop(done_tx);
                scope.spawn(move || {
                    for task in workload.tasks() {
                        if task_tx.send(task).is_err() {
                            break;
                        }
                    }
                });
                // The main thread joins on the result queue: the run is over when every
                // worker has gone (the queue is closed and empty).
                for (digest, latency) in done_rx {
                    recorder.record_remote(digest, latency);
                }
                Ok::<(), RunError>(())
            })?;
            Ok(recorder)
        })
    }
}
