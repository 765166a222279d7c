//! The 1-core tier: one thread, a plain loop over the tasks, no pool. It is also the baseline
//! of every speed-up, so it must add nothing to the work but the shared measuring.
//!
//! Two executor options hold many waits on this one core instead: an event loop on this
//! thread (`model = "async"`, `event_loop.rs`) and a thread per task in flight
//! (`concurrency` under threads, as a thread-per-connection server does).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use martelli_config::{ExecutorOptions, Model, Tier};
use martelli_results::Sample;
use martelli_workload::Scratch;

use crate::event_loop::AsyncPoint;
use crate::record::{Recorder, execute, timed_run};
use crate::{Job, PreparedPoint, RunError, Runner};

/// Stack of a thread started for one task: small, to be fair to threads (a thread per wait
/// with the default 2 MiB, or 8 MiB in C, reserves far more).
const TASK_THREAD_STACK: usize = 64 << 10;

/// A thread per task in flight, at most `concurrency` alive at once.
struct ThreadPerTask {
    concurrency: usize,
}

/// Runs every task in order on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleRunner;

impl Runner for SingleRunner {
    fn tier(&self) -> Tier {
        Tier::Single
    }

    fn prepare(&self, cores: usize) -> Result<Box<dyn PreparedPoint + '_>, RunError> {
        if cores != 1 {
            return Err(RunError::Setup {
                tier: Tier::Single,
                cores,
                reason: "the single tier runs on exactly one core".into(),
            });
        }
        Ok(Box::new(SingleRunner))
    }

    fn prepare_with(
        &self,
        cores: usize,
        options: &ExecutorOptions,
    ) -> Result<Box<dyn PreparedPoint + '_>, RunError> {
        let plain = self.prepare(cores)?;
        Ok(match options.model {
            Model::Async => Box::new(AsyncPoint::one_thread(options.concurrency)?),
            Model::Threads if options.concurrency > 1 => Box::new(ThreadPerTask {
                concurrency: options.concurrency as usize,
            }),
            // Everything else has the plain loop as its 1-core baseline.
            _ => plain,
        })
    }
}

impl PreparedPoint for SingleRunner {
    fn run(&mut self, job: &Job<'_>) -> Result<Sample, RunError> {
        timed_run(job, |start| {
            let mut recorder = Recorder::new(start);
            for task in job.workload.tasks() {
                recorder.run_blocking(job.executor, &task);
            }
            Ok(recorder)
        })
    }
}

impl PreparedPoint for ThreadPerTask {
    fn run(&mut self, job: &Job<'_>) -> Result<Sample, RunError> {
        let asked = self.concurrency;
        // A thread whose memory maps run out aborts the process (it cannot even set up its
        // signal stack), so stay below what the OS allows rather than find out.
        let cap = thread_room().map_or(asked, |room| asked.min(room.max(1)));
        if cap < asked {
            tracing::warn!(
                "a thread per task: this machine allows about {cap} more threads in this process \
                 (vm.max_map_count), not the {asked} asked; the other tasks wait for a thread to end"
            );
        }
        timed_run(job, |start| {
            let mut recorder = Recorder::new(start);
            let (done_tx, done_rx) = mpsc::channel::<(u64, u64)>();
            let mut refused_at: Option<usize> = None;
            std::thread::scope(|scope| {
                let mut live = 0usize;
                let take_one = |recorder: &mut Recorder, live: &mut usize| {
                    // Every live thread holds a sender, so a result always comes.
                    if let Ok((digest, latency)) = done_rx.recv() {
                        // One core: which thread ran it does not matter to a 1-core point.
                        recorder.record_remote(0, digest, latency);
                        *live -= 1;
                    }
                };
                for task in job.workload.tasks() {
                    while live >= cap {
                        take_one(&mut recorder, &mut live);
                    }
                    let mut tries = 0;
                    loop {
                        let done_tx = done_tx.clone();
                        let spawned = std::thread::Builder::new()
                            .stack_size(TASK_THREAD_STACK)
                            .spawn_scoped(scope, move || {
                                let started = Instant::now();
                                let digest = execute(job.executor, &task, &mut Scratch::default(), None);
                                let _ = done_tx.send((digest, started.elapsed().as_nanos() as u64));
                            });
                        match spawned {
                            Ok(_) => {
                                live += 1;
                                break;
                            }
                            // The OS refused another thread (a limit on threads or memory
                            // maps): wait for one to end, as a server at its limit would.
                            Err(_) if live > 0 => {
                                refused_at.get_or_insert(live);
                                take_one(&mut recorder, &mut live);
                            }
                            Err(_) if tries < 1000 => {
                                // Threads that sent their result may not have exited yet.
                                tries += 1;
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            Err(e) => {
                                return Err(RunError::Setup {
                                    tier: Tier::Single,
                                    cores: 1,
                                    reason: format!("cannot start a thread for a task: {e}"),
                                });
                            }
                        }
                    }
                }
                while live > 0 {
                    take_one(&mut recorder, &mut live);
                }
                Ok(())
            })?;
            if let Some(most) = refused_at {
                tracing::warn!(
                    "a thread per task: the OS refused more than about {most} threads at once here \
                     (of the {asked} asked); the other tasks waited for a thread to end"
                );
            }
            Ok(recorder)
        })
    }
}

/// Memory maps a thread may need: its stack and guard page, its signal stack and guard page,
/// and one to spare.
const MAPS_PER_THREAD: usize = 5;

/// How many more threads this process can start before it runs out of memory maps (Linux:
/// `vm.max_map_count` less the maps it has), keeping a margin for everything else.
fn thread_room() -> Option<usize> {
    let max: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let used = std::fs::read_to_string("/proc/self/maps").ok()?.lines().count();
    Some(max.saturating_sub(used + 1024) / MAPS_PER_THREAD)
}
