//! The 2-8 core tier: N threads of this process, built fresh for each sweep point (never the
//! global pool, whose size is the machine's and whose threads other code shares). Two ways to
//! hand them tasks, the lecture's futures and queue (`[executor] dispatch`), each optionally
//! under an emulated global interpreter lock (`gil = true`); or an async runtime of N threads
//! (`model = "async"`, in `event_loop.rs`); or N worker processes (`model = "processes"`, in
//! `process.rs`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use martelli_config::{Dispatch, ExecutorOptions, Model, Tier};
use martelli_results::Sample;
use martelli_workload::{Scratch, Task};

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

/// N threads that take the next task ids from one shared counter, as a ThreadPoolExecutor's
/// threads take the next submitted future.
struct FuturesPoint {
    threads: Threads,
    gil: Option<Gil>,
}

/// The threads of a futures point.
enum Threads {
    /// No more threads than this machine has cores: a rayon pool of exactly N threads, reused
    /// by every repeat of the point; its idle threads spin briefly before they sleep, which
    /// costs nothing on cores of their own and picks work up fastest.
    Rayon(rayon::ThreadPool),
    /// More threads than cores (work that waits): N plain threads started for each run, which
    /// block when they have nothing to do. A rayon pool's idle threads spin, looking for work
    /// to steal in every other thread's deque: at 512 threads on 2 cores that spinning at the
    /// end of each run took more CPU than the tasks did (41 us per 1 ms wait against 11 us).
    Plain(usize),
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
                let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
                let threads = if cores > logical {
                    Threads::Plain(cores)
                } else {
                    Threads::Rayon(
                        rayon::ThreadPoolBuilder::new()
                            .num_threads(cores)
                            .thread_name(|i| format!("martelli-multi-{i}"))
                            .build()
                            .map_err(|e| RunError::Setup {
                                tier: Tier::Multi,
                                cores,
                                reason: e.to_string(),
                            })?,
                    )
                };
                Box::new(FuturesPoint { threads, gil })
            }
            Dispatch::Queue => Box::new(QueuePoint { threads: cores, gil }),
        })
    }
}

impl PreparedPoint for FuturesPoint {
    fn run(&mut self, job: &Job<'_>) -> Result<Sample, RunError> {
        let workload = job.workload;
        let gil = self.gil.as_ref();
        // Every thread takes the next ids from one shared counter until none are left; each
        // regenerates its tasks from their ids, so no task list is ever materialised. Not
        // rayon's splitting and stealing: a thread blocked in a task's wait would leave its
        // stolen halves' owners spinning on their latches, and on a machine with fewer cores
        // than threads that spinning takes the cores the woken waits need (at 256 threads
        // of 1 ms waits on 2 cores a run took 3x as long, and varied by a third).
        let next = AtomicU64::new(0);
        let work = |threads: usize, start: Instant| {
            let mut recorder = Recorder::new(start);
            while let Some(ids) = take_chunk(&next, workload.tasks, threads) {
                for id in ids {
                    recorder.run_task(job.executor, &workload.task(id), gil);
                }
            }
            recorder
        };
        // Futures hand their results to the caller when gathered, all at once: the caller's
        // first result is the last task's (the notes' latency problem).
        let gathered = |recorders: Vec<Recorder>, start: Instant| {
            let mut merged = recorders
                .into_iter()
                .reduce(Recorder::merge)
                .unwrap_or_else(|| Recorder::new(start));
            merged.gathered();
            merged
        };
        match &self.threads {
            Threads::Rayon(pool) => timed_run(job, |start| {
                let threads = pool.current_num_threads();
                Ok(gathered(pool.broadcast(|_| work(threads, start)), start))
            }),
            Threads::Plain(threads) => {
                let threads = *threads;
                let gate = Gate::new(threads);
                let each = |start| work(threads, start);
                std::thread::scope(|scope| {
                    let handles = gate.spawn(scope, "martelli-multi", &each)?;
                    let sample = timed_run(job, |start| {
                        let recorders = gate.run(start, &handles);
                        Ok(gathered(recorders, start))
                    });
                    // The threads end after the clock has stopped, as a pool's would not end.
                    join_all(handles);
                    sample
                })
            }
        }
    }
}

/// Plain threads started before a run's clock starts and joined after it stops, as a pool's
/// threads exist before work is handed to it: the run measures the work on N threads, not
/// their creation and exit. (At 256 threads on 2 cores, starting them took 20 ms and their
/// exit 13-17 ms of a 60 ms run, and how long moved from run to run by a third.) They wait
/// parked until [`Gate::run`] opens the gate, then each is woken in turn.
struct Gate<R> {
    /// The run's start (`Some`), or `None` when the run is called off before it began.
    start: std::sync::OnceLock<Option<Instant>>,
    /// Threads that have not finished yet.
    left: std::sync::atomic::AtomicUsize,
    /// What each thread returned.
    done: Mutex<Vec<R>>,
    /// The thread that opened the gate and waits for the others.
    caller: std::thread::Thread,
}

type Handles<'scope> = Vec<std::thread::ScopedJoinHandle<'scope, ()>>;

impl<R: Send> Gate<R> {
    fn new(threads: usize) -> Gate<R> {
        Gate {
            start: std::sync::OnceLock::new(),
            left: std::sync::atomic::AtomicUsize::new(threads),
            done: Mutex::new(Vec::with_capacity(threads)),
            caller: std::thread::current(),
        }
    }

    /// Starts the gate's threads in `scope`, each running `work` from the run's start once the
    /// gate opens. A thread that cannot be started calls the run off (the others end unrun).
    fn spawn<'scope, 'env>(
        &'env self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        name: &str,
        work: &'env (dyn Fn(Instant) -> R + Sync),
    ) -> Result<Handles<'scope>, RunError>
    where
        R: 'env,
    {
        let threads = self.left.load(Ordering::Relaxed);
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn_scoped(scope, move || {
                    let _leaving = Leaving(self);
                    if let Some(start) = self.wait() {
                        let result = work(start);
                        self.done.lock().unwrap_or_else(|p| p.into_inner()).push(result);
                    }
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    self.open(None, &handles);
                    return Err(RunError::Setup {
                        tier: Tier::Multi,
                        cores: threads,
                        reason: format!("cannot start thread {i}: {e}"),
                    });
                }
            }
        }
        Ok(handles)
    }

    /// Parks until the gate opens; the run's start, or `None` when it was called off.
    fn wait(&self) -> Option<Instant> {
        loop {
            match self.start.get() {
                Some(start) => return *start,
                None => std::thread::park(),
            }
        }
    }

    fn open(&self, start: Option<Instant>, handles: &Handles<'_>) {
        let _ = self.start.set(start);
        for handle in handles {
            handle.thread().unpark();
        }
    }

    /// Opens the gate at `start` and waits until every thread has finished; what they returned.
    fn run(&self, start: Instant, handles: &Handles<'_>) -> Vec<R> {
        self.open(Some(start), handles);
        while self.left.load(Ordering::Acquire) != 0 {
            std::thread::park();
        }
        std::mem::take(&mut *self.done.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Counts a gate's thread out when it ends, even by a panic (which its join then raises), and
/// wakes the caller when it was the last.
struct Leaving<'a, R>(&'a Gate<R>);

impl<R> Drop for Leaving<'_, R> {
    fn drop(&mut self) {
        if self.0.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.caller.unpark();
        }
    }
}

/// Joins threads, raising a panic of theirs in the caller.
fn join_all(handles: Handles<'_>) {
    for handle in handles {
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Guided self-scheduling: the next run of task ids for a thread to take from `next`, a
/// share of what is left (1/4 of an even split), so early takes are long and cheap and the
/// last ones are single tasks that leave no thread with a long tail. `None` once all are taken.
fn take_chunk(next: &AtomicU64, tasks: u64, threads: usize) -> Option<std::ops::Range<u64>> {
    let mut first = next.load(Ordering::Relaxed);
    loop {
        if first >= tasks {
            return None;
        }
        let chunk = ((tasks - first) / (4 * threads as u64)).clamp(1, MAX_CHUNK);
        match next.compare_exchange_weak(first, first + chunk, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(first..first + chunk),
            Err(now) => first = now,
        }
    }
}

/// The longest run of ids one take hands out: bounds how far apart two threads' last tasks can
/// fall when task times vary, while keeping the shared counter cold for tiny tasks.
const MAX_CHUNK: u64 = 4096;

/// A finished task as a worker reports it: its thread, digest and latency.
type Done = (u32, u64, u64);

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
                                if done_tx.send((i as u32, digest, latency)).is_err() {
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
                for (lane, digest, latency) in done_rx {
                    recorder.record_remote(lane, digest, latency);
                }
                Ok::<(), RunError>(())
            })?;
            Ok(recorder)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guided_takes_hand_out_every_id_once_and_end_in_single_tasks() {
        for (tasks, threads) in [(0, 4), (1, 8), (6000, 256), (1_000_003, 3), (50, 64)] {
            let next = AtomicU64::new(0);
            let mut seen = 0;
            let mut last = None;
            while let Some(ids) = take_chunk(&next, tasks, threads) {
                assert_eq!(ids.start, seen, "ids are handed out in order, without gaps");
                assert!(ids.end - ids.start <= MAX_CHUNK);
                seen = ids.end;
                last = Some(ids);
            }
            assert_eq!(seen, tasks);
            if let Some(last) = last {
                assert_eq!(last.end - last.start, 1, "the last take is one task");
            }
        }
    }
}
