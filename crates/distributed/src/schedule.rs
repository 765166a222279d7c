//! One run of the distributed tier: pull-based scheduling over every worker's stream, with
//! heartbeats, loss detection and re-queueing.
//!
//! Each worker has a driver that keeps a bounded number of tasks in flight on it: about two per
//! thread, and for tasks much shorter than a millisecond enough to keep a millisecond of work
//! per thread queued, so round trips are amortised. Tasks go out in batches as credit frees up,
//! so fast workers take more and skewed task sizes still balance. A result is keyed by task id;
//! the first one wins. A worker whose stream breaks, or that is silent past the timeout, is lost:
//! its in-flight tasks go back to the queue for the others, up to [`MAX_ATTEMPTS`] each.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use martelli_results::WireStats;
use martelli_runner::{Recorder, WorkerThread};
use martelli_schedule::{Feed, MAX_ATTEMPTS, Policy, TaskQueue, batch_cap};
use martelli_workload::{Workload, fill_payload};
use prost::Message;
use tokio::sync::{Notify, mpsc};
use tonic::Streaming;

use crate::DistributedError;
use crate::connect::{ClientOptions, Connection};
use crate::convert::{task_to_wire, workload_to_wire};
use crate::wire::{self, coordinator_message, worker_message};

/// The queue and completion state every driver of one run shares.
struct Shared {
    /// The run's tasks as the policy hands them out (`martelli_schedule::TaskQueue`). The
    /// drivers run on one runtime thread, so the lock is taken once per message, uncontended.
    tasks: Mutex<TaskQueue>,
    /// Wakes drivers waiting for work when tasks are re-queued or the run ends.
    changed: Notify,
    /// Set when the run must stop (a task out of attempts, a worker refusing the run).
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    /// Workers not lost yet and why each lost one was; when none is left with tasks to do, the
    /// run fails at once.
    live: Mutex<(u64, Vec<String>)>,
}

impl Shared {
    fn new(total: u64, threads: &[usize]) -> Shared {
        Shared {
            tasks: Mutex::new(TaskQueue::new(total, threads.iter().sum())),
            changed: Notify::new(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            live: Mutex::new((threads.len() as u64, Vec::new())),
        }
    }

    fn tasks(&self) -> MutexGuard<'_, TaskQueue> {
        self.tasks.lock().expect("task queue lock")
    }

    fn all_done(&self) -> bool {
        self.tasks().all_done()
    }

    /// Records a lost worker; fails the run when it was the last one and work remains.
    fn lose(&self, reason: String) {
        let mut live = self.live.lock().expect("live lock");
        live.0 -= 1;
        live.1.push(reason);
        if live.0 == 0 && !self.all_done() {
            let tasks = self.tasks();
            let message = format!(
                "all {} workers were lost with {} of {} tasks done: {}",
                live.1.len(),
                tasks.completed(),
                tasks.total(),
                live.1.join("; ")
            );
            drop(tasks);
            drop(live);
            self.fail(message);
        }
    }

    fn fail(&self, reason: String) {
        self.failure.lock().expect("failure lock").get_or_insert(reason);
        self.failed.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }
}

/// One worker's side of the run's decisions: its [`Feed`] (the policy's flow control) and the
/// tasks in flight on it, by id with their attempt numbers. Pure state, no I/O: the driver
/// sends what [`Driver::next_batch`] gives and feeds back what the worker answers.
pub(crate) struct Driver {
    feed: Feed,
    in_flight: HashMap<u64, u32>,
    batch: Vec<(u64, u32)>,
}

impl Driver {
    /// A worker of `threads` threads fed by `policy`, `cap` tasks a message at most.
    pub(crate) fn new(policy: Policy, threads: usize, cap: usize) -> Driver {
        Driver {
            feed: Feed::new(policy, threads, None, cap),
            in_flight: HashMap::new(),
            batch: Vec::new(),
        }
    }

    /// The next message of tasks for this worker, `(id, attempt)` each; empty when none now.
    pub(crate) fn next_batch(&mut self, tasks: &mut TaskQueue) -> &[(u64, u32)] {
        self.feed.refill(tasks, &mut self.batch);
        self.in_flight.extend(self.batch.iter().copied());
        &self.batch
    }

    /// A result from this worker: `Some(true)` when it is its task's first (it counts),
    /// `Some(false)` for a duplicate, `None` for a task this worker was not running.
    pub(crate) fn result(&mut self, tasks: &mut TaskQueue, id: u64, latency_ns: u64) -> Option<bool> {
        self.in_flight.remove(&id)?;
        Some(self.feed.result(tasks, id, latency_ns))
    }

    /// The worker was lost: its tasks in flight go back to the queue, in id order. Fails
    /// naming a task that has had all its attempts.
    pub(crate) fn lost(&mut self, tasks: &mut TaskQueue) -> Result<(), martelli_schedule::Lost> {
        self.feed.lost();
        let mut items: Vec<(u64, u32)> = self.in_flight.drain().collect();
        items.sort_unstable();
        tasks.requeue(items)
    }
}

/// A worker's stream for one run, opened (Start sent, Ready received) before the clock starts.
pub(crate) struct Opened {
    address: String,
    threads: usize,
    max_message_bytes: usize,
    policy: Policy,
    out: mpsc::Sender<wire::CoordinatorMessage>,
    inbound: Streaming<wire::WorkerMessage>,
}

/// Why a run could not be opened on a worker.
pub(crate) enum OpenError {
    /// The worker is gone (no connection, a broken stream, no answer): the sweep goes on without it.
    Gone(DistributedError),
    /// The worker answered that this run cannot work there: the sweep fails.
    Refused(DistributedError),
}

/// Opens a run on `connection` with `threads` threads, fed by `options.policy`, and waits until
/// the worker is ready.
pub(crate) async fn open(
    connection: &Connection,
    threads: usize,
    workload: &Workload,
    options: &ClientOptions,
) -> Result<Opened, OpenError> {
    let (heartbeat, timeout, policy) = (options.heartbeat, options.timeout, options.policy);
    let fail = |reason: String| DistributedError::Worker {
        address: connection.address.clone(),
        reason,
    };
    // One task (its payload and a little framing) must fit one message, or nothing can run.
    let smallest = workload.payload_bytes as usize + 64;
    if smallest > connection.max_message_bytes {
        return Err(OpenError::Refused(fail(format!(
            "one task of {} payload bytes does not fit its message limit of {} bytes \
             (raise --max-message on the worker and max_message in [distributed])",
            workload.payload_bytes, connection.max_message_bytes
        ))));
    }
    let (out, rx) = mpsc::channel(64);
    let start = wire::CoordinatorMessage {
        body: Some(coordinator_message::Body::Start(wire::Start {
            workload: Some(workload_to_wire(workload)),
            threads: threads as u32,
            heartbeat_interval_ms: heartbeat.as_millis() as u64,
            result_wait_ns: Some(policy.result_wait_ns()),
        })),
    };
    out.send(start)
        .await
        .map_err(|_| OpenError::Gone(fail("stream closed before Start".into())))?;
    // A status that says the run can never work there is a refusal; anything else (no
    // connection, a broken stream) means the worker is gone.
    let status = |s: tonic::Status| {
        if is_fatal(s.code()) {
            OpenError::Refused(fail(format!("refused the run: {} ({:?})", s.message(), s.code())))
        } else {
            OpenError::Gone(fail(format!("is gone: {} ({:?})", s.message(), s.code())))
        }
    };
    let opening = async {
        let mut inbound = connection
            .client
            .clone()
            .run(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .map_err(status)?
            .into_inner();
        loop {
            match inbound.message().await {
                Ok(Some(wire::WorkerMessage {
                    body: Some(worker_message::Body::Ready(_)),
                })) => return Ok(inbound),
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(OpenError::Gone(fail(
                        "closed the stream before it was ready".into(),
                    )));
                }
                Err(s) => return Err(status(s)),
            }
        }
    };
    // Building a large memory buffer takes a while: allow for it on top of the timeout.
    let inbound = tokio::time::timeout(timeout + Duration::from_secs(30), opening)
        .await
        .map_err(|_| OpenError::Gone(fail("did not get ready in time".into())))??;
    Ok(Opened {
        address: connection.address.clone(),
        threads,
        max_message_bytes: connection.max_message_bytes,
        policy,
        out,
        inbound,
    })
}

/// How a driver ended.
enum Outcome {
    Finished,
    Lost(String),
    Stopped,
}

struct DriverEnd {
    /// The worker's index in the run's streams.
    worker: usize,
    recorder: Recorder,
    stats: WireStats,
    outcome: Outcome,
}

/// What a run measured, and the workers (by their index in the streams given) it lost.
pub(crate) struct RunEnd {
    pub(crate) recorder: Recorder,
    pub(crate) stats: WireStats,
    pub(crate) lost: Vec<usize>,
}

/// Runs every task of `workload` over the opened streams; returns the merged measurements.
pub(crate) async fn run(
    streams: Vec<Opened>,
    workload: &Workload,
    start: Instant,
    timeout: Duration,
) -> Result<RunEnd, DistributedError> {
    let threads: Vec<usize> = streams.iter().map(|s| s.threads).collect();
    let shared = Arc::new(Shared::new(workload.tasks, &threads));
    let workload = Arc::new(workload.clone());
    let workers = streams.len() as u64;
    let mut drivers = tokio::task::JoinSet::new();
    for (worker, stream) in streams.into_iter().enumerate() {
        let origin = Origin {
            worker: worker as u32,
            sent: HashMap::new(),
        };
        drivers.spawn(drive(
            stream,
            origin,
            shared.clone(),
            workload.clone(),
            start,
            timeout,
        ));
    }
    let mut recorder = Recorder::new(start);
    let mut stats = WireStats {
        workers,
        ..WireStats::default()
    };
    let (mut losses, mut lost) = (Vec::new(), Vec::new());
    while let Some(end) = drivers.join_next().await {
        let end = end.map_err(|e| DistributedError::Run(format!("a worker driver failed: {e}")))?;
        recorder = recorder.merge(end.recorder);
        stats.add(&end.stats);
        if let Outcome::Lost(reason) = end.outcome {
            stats.lost_workers += 1;
            losses.push(reason);
            lost.push(end.worker);
        }
    }
    lost.sort_unstable();
    stats.workers = workers;
    stats.retried_tasks = shared.tasks().retried();
    stats.reissued_tasks = shared.tasks().reissued();
    if let Some(reason) = shared.failure.lock().expect("failure lock").take() {
        return Err(DistributedError::Run(reason));
    }
    let tasks = shared.tasks();
    if !tasks.all_done() {
        return Err(DistributedError::Run(format!(
            "the run ended with {} of {} tasks done: {}",
            tasks.completed(),
            tasks.total(),
            losses.join("; ")
        )));
    }
    drop(tasks);
    Ok(RunEnd {
        recorder,
        stats,
        lost,
    })
}

/// Which worker a driver feeds, and (in a traced run) when it sent each task in flight.
struct Origin {
    worker: u32,
    sent: HashMap<u64, Instant>,
}

impl Origin {
    /// Notes that `items` leave now (in a traced run only).
    fn sent_now(&mut self, items: &[(u64, u32)], tracing: bool) {
        if tracing {
            let now = Instant::now();
            self.sent.extend(items.iter().map(|&(id, _)| (id, now)));
        }
    }
}

/// The message that carries `items` (`(id, attempt)`) with their payloads, generated into
/// `payload` (reused between messages).
fn tasks_message(
    workload: &Workload,
    items: &[(u64, u32)],
    payload: &mut Vec<u8>,
) -> wire::CoordinatorMessage {
    let tasks = items
        .iter()
        .map(|&(id, attempt)| {
            let task = workload.task(id);
            fill_payload(workload.seed, &task, payload);
            task_to_wire(&task, attempt, payload.clone())
        })
        .collect();
    wire::CoordinatorMessage {
        body: Some(coordinator_message::Body::Tasks(wire::TaskBatch { tasks })),
    }
}

/// Feeds one worker and collects its results until the run is over or the worker is lost.
async fn drive(
    mut s: Opened,
    mut origin: Origin,
    shared: Arc<Shared>,
    workload: Arc<Workload>,
    start: Instant,
    timeout: Duration,
) -> DriverEnd {
    let mut recorder = Recorder::new(start);
    let mut stats = WireStats::default();
    let mut driver = Driver::new(
        s.policy,
        s.threads,
        batch_cap(s.max_message_bytes, workload.payload_bytes),
    );
    let mut payload = Vec::new();
    let mut last_seen = Instant::now();
    let mut silent = false;
    let outcome = loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if shared.failed.load(Ordering::Acquire) {
            break Outcome::Stopped;
        }
        if shared.all_done() {
            break Outcome::Finished;
        }
        // What to send, and when, is the policy's (martelli_schedule::Feed); the lock is
        // released before the message is built and sent.
        let items = driver.next_batch(&mut shared.tasks()).to_vec();
        if !items.is_empty() {
            origin.sent_now(&items, recorder.tracing());
            let message = tasks_message(&workload, &items, &mut payload);
            stats.bytes_sent += message.encoded_len() as u64;
            stats.rpc_batches += 1;
            if s.out.send(message).await.is_err() {
                break Outcome::Lost(format!("{}: the stream closed", s.address));
            }
            continue;
        }
        tokio::select! {
            biased;
            message = s.inbound.message() => match message {
                Ok(Some(message)) => {
                    last_seen = Instant::now();
                    absorb(message, &shared, &mut recorder, &mut stats, Some(&mut driver), &mut origin);
                }
                Ok(None) => break Outcome::Lost(format!("{}: the worker ended the stream", s.address)),
                Err(status) if is_fatal(status.code()) => {
                    shared.fail(format!("worker {} refused the run: {} ({:?})", s.address, status.message(), status.code()));
                    break Outcome::Stopped;
                }
                Err(status) => break Outcome::Lost(format!("{}: {} ({:?})", s.address, status.message(), status.code())),
            },
            _ = &mut changed => {}
            _ = tokio::time::sleep_until((last_seen + timeout).into()) => {
                silent = true;
                break Outcome::Lost(format!("{}: silent for {timeout:?}", s.address));
            }
        }
    };
    tracing::debug!(
        worker = s.address,
        results = recorder.tasks(),
        batches = stats.rpc_batches,
        elapsed_ms = start.elapsed().as_secs_f64() * 1e3,
        "driver finished"
    );
    if let Outcome::Lost(reason) = &outcome {
        tracing::warn!(
            worker = s.address,
            reason,
            in_flight = driver.in_flight.len(),
            "worker lost; re-queueing its tasks"
        );
        let requeued = driver.lost(&mut shared.tasks());
        if let Err(lost) = requeued {
            shared.fail(format!(
                "task {} was lost {MAX_ATTEMPTS} times (last on worker {}); giving up",
                lost.id, s.address
            ));
        }
        shared.changed.notify_waiters();
        shared.lose(reason.clone());
    }
    if silent {
        // A silent worker may only be stopped or slow. Keep listening, sending it nothing, until
        // the run ends or its connection breaks: a late result is counted as dropped (or wins,
        // if its task has not completed elsewhere yet: the first result wins).
        loop {
            let changed = shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if shared.all_done() || shared.failed.load(Ordering::Acquire) {
                break;
            }
            tokio::select! {
                biased;
                message = s.inbound.message() => match message {
                    Ok(Some(message)) => {
                        absorb(message, &shared, &mut recorder, &mut stats, None, &mut origin);
                    }
                    _ => break,
                },
                _ = &mut changed => {}
            }
        }
    }
    DriverEnd {
        worker: origin.worker as usize,
        recorder,
        stats,
        outcome,
    }
}

/// Takes in one message from a worker: each result is recorded if it is its task's first,
/// dropped and counted otherwise. `driver` is the worker's while it is live; a worker already
/// declared lost has none (its tasks were re-queued), yet its late result still wins if its
/// task has none yet.
fn absorb(
    message: wire::WorkerMessage,
    shared: &Shared,
    recorder: &mut Recorder,
    stats: &mut WireStats,
    mut driver: Option<&mut Driver>,
    origin: &mut Origin,
) {
    stats.bytes_received += message.encoded_len() as u64;
    let Some(worker_message::Body::Results(batch)) = message.body else {
        return;
    };
    stats.rpc_batches += 1;
    // The worker's count so far in this run.
    stats.starved_takes = stats.starved_takes.max(batch.starved);
    let mut tasks = shared.tasks();
    for r in batch.results {
        let first = match driver.as_deref_mut() {
            Some(driver) => driver.result(&mut tasks, r.id, r.latency_ns) == Some(true),
            None => tasks.finish(r.id),
        };
        if first {
            let sent = origin.sent.remove(&r.id);
            let on = WorkerThread {
                worker: origin.worker,
                thread: r.thread,
                started_ns: r.started_ns,
            };
            recorder.record_result(r.id, r.digest, r.latency_ns, on, sent);
        } else {
            stats.dropped_results += 1;
        }
    }
    let done = tasks.all_done();
    drop(tasks);
    if done {
        shared.changed.notify_waiters();
    }
}

/// Statuses that mean "this run can never work here", as opposed to a lost worker.
fn is_fatal(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unauthenticated
            | PermissionDenied
            | InvalidArgument
            | OutOfRange
            | ResourceExhausted
            | FailedPrecondition
            | Unimplemented
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losing_the_last_worker_fails_the_run_at_once() {
        let shared = Shared::new(5, &[1, 1]);
        shared.lose("a: silent".into());
        assert!(!shared.failed.load(Ordering::Relaxed));
        shared.lose("b: stream broke".into());
        let failure = shared.failure.lock().unwrap().clone().unwrap();
        assert!(
            failure.contains("all 2 workers were lost with 0 of 5 tasks done"),
            "{failure}"
        );
    }
}

/// The runner's decisions and the model's, driven by one sequence of events, must agree: both
/// are built of the one policy (`martelli_schedule`), and this trace checks it.
#[cfg(test)]
mod trace {
    use std::collections::BTreeSet;

    use martelli_schedule::{Policy, TaskQueue};
    use martelli_sim::Coordinator;

    use super::Driver;

    /// What happens in a run, as both sides see it.
    enum Step {
        /// Results from a worker: (task id, latency ns), in the order they arrive.
        Results(usize, Vec<(u64, u64)>),
        /// A worker is lost.
        Lost(usize),
    }

    /// A message of tasks to a worker.
    type Decision = (usize, Vec<(u64, u32)>);

    /// The runner's side: one driver per worker over one task queue.
    fn runner(policy: Policy, threads: &[usize], total: u64, cap: usize, steps: &[Step]) -> Vec<Decision> {
        let mut tasks = TaskQueue::new(total, threads.iter().sum());
        let mut drivers: Vec<Driver> = threads.iter().map(|&t| Driver::new(policy, t, cap)).collect();
        let mut live: BTreeSet<usize> = (0..threads.len()).collect();
        let mut log = Vec::new();
        let refill = |w: usize, drivers: &mut Vec<Driver>, tasks: &mut TaskQueue, log: &mut Vec<Decision>| loop {
            let batch = drivers[w].next_batch(tasks).to_vec();
            if batch.is_empty() {
                break;
            }
            log.push((w, batch));
        };
        for w in 0..threads.len() {
            refill(w, &mut drivers, &mut tasks, &mut log);
        }
        for step in steps {
            match step {
                Step::Results(w, results) => {
                    for &(id, latency) in results {
                        drivers[*w].result(&mut tasks, id, latency);
                    }
                    refill(*w, &mut drivers, &mut tasks, &mut log);
                }
                Step::Lost(w) => {
                    drivers[*w].lost(&mut tasks).expect("attempts left");
                    live.remove(w);
                    // Re-queued tasks wake the other drivers.
                    for &o in &live {
                        refill(o, &mut drivers, &mut tasks, &mut log);
                    }
                }
            }
        }
        log
    }

    /// The model's side: the simulator's coordinator, with the test keeping each node's tasks
    /// in flight (the engine keeps them in its queues and events).
    fn model(policy: Policy, threads: &[usize], total: u64, cap: usize, steps: &[Step]) -> Vec<Decision> {
        let mut coordinator = Coordinator::new(policy, total, threads, None, cap);
        let mut in_flight: Vec<Vec<(u64, u32)>> = vec![Vec::new(); threads.len()];
        let mut live: BTreeSet<usize> = (0..threads.len()).collect();
        let mut log = Vec::new();
        let refill = |n: usize,
                      c: &mut Coordinator,
                      in_flight: &mut Vec<Vec<(u64, u32)>>,
                      log: &mut Vec<Decision>| loop {
            let batch = c.next_batch(n).to_vec();
            if batch.is_empty() {
                break;
            }
            in_flight[n].extend(&batch);
            log.push((n, batch));
        };
        for n in 0..threads.len() {
            refill(n, &mut coordinator, &mut in_flight, &mut log);
        }
        for step in steps {
            match step {
                Step::Results(n, results) => {
                    for &(id, latency) in results {
                        // A node answers only the tasks it ran; the runner drops the others.
                        let before = in_flight[*n].len();
                        in_flight[*n].retain(|&(i, _)| i != id);
                        if in_flight[*n].len() < before {
                            coordinator.result(*n, id, latency);
                        }
                    }
                    refill(*n, &mut coordinator, &mut in_flight, &mut log);
                }
                Step::Lost(n) => {
                    let lost = std::mem::take(&mut in_flight[*n]);
                    coordinator.lost(*n, lost).expect("attempts left");
                    live.remove(n);
                    for &o in &live {
                        refill(o, &mut coordinator, &mut in_flight, &mut log);
                    }
                }
            }
        }
        log
    }

    #[test]
    fn the_runner_and_the_model_decide_alike_event_by_event_under_every_policy() {
        for policy in Policy::ALL {
            decide_alike(policy);
        }
    }

    fn decide_alike(policy: Policy) {
        let threads = [2, 3];
        let cap = 3;
        let steps = [
            // Worker 0 (sent 0..6) answers two 2 ms tasks, then worker 1 (sent 6..15) three
            // tiny ones (its depth grows).
            Step::Results(0, vec![(0, 2_000_000), (1, 2_000_000)]),
            Step::Results(1, vec![(6, 1_000), (7, 1_000), (8, 1_000)]),
            Step::Results(1, vec![(9, 1_000)]),
            // Worker 0 is lost with tasks in flight: they go to worker 1, retries first.
            Step::Lost(0),
            Step::Results(1, vec![(10, 1_000), (2, 1_000), (11, 1_000)]),
            // A duplicate of a finished task is taken in without changing the queue.
            Step::Results(1, vec![(12, 1_000), (6, 1_000)]),
        ];
        let (r, m) = (
            runner(policy, &threads, 40, cap, &steps),
            model(policy, &threads, 40, cap, &steps),
        );
        assert_eq!(r, m, "{policy:?}");
        // The trace exercised what it claims: a refill after results, re-sent tasks.
        assert!(r.len() > 4, "{policy:?}: {r:?}");
        assert!(
            r.iter().any(|(_, b)| b.iter().any(|&(_, attempt)| attempt == 1)),
            "{policy:?}: {r:?}"
        );
    }
}
