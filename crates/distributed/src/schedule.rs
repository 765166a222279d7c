//! One run of the distributed tier: pull-based scheduling over every worker's stream, with
//! heartbeats, loss detection and re-queueing.
//!
//! Each worker has a driver that keeps a bounded number of tasks in flight on it: about two per
//! thread, and for tasks much shorter than a millisecond enough to keep a millisecond of work
//! per thread queued, so round trips are amortised. Tasks go out in batches as credit frees up,
//! so fast workers take more and skewed task sizes still balance. A result is keyed by task id;
//! the first one wins. A worker whose stream breaks, or that is silent past the timeout, is lost:
//! its in-flight tasks go back to the queue for the others, up to [`MAX_ATTEMPTS`] each.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use martelli_results::WireStats;
use martelli_runner::Recorder;
use martelli_workload::{Workload, fill_payload};
use prost::Message;
use tokio::sync::{Notify, mpsc};
use tonic::Streaming;

use crate::DistributedError;
use crate::connect::Connection;
use crate::convert::{task_to_wire, workload_to_wire};
use crate::wire::{self, coordinator_message, worker_message};

/// Attempts a task gets before the run fails naming it.
pub(crate) const MAX_ATTEMPTS: u32 = 4;

/// The queue and completion state every driver of one run shares.
struct Shared {
    total: u64,
    queue: Mutex<Queue>,
    /// One bit per task: set when its first result arrived. Memory is tasks / 8 bytes.
    done: Vec<AtomicU64>,
    completed: AtomicU64,
    retried: AtomicU64,
    /// Wakes drivers waiting for work when tasks are re-queued or the run ends.
    changed: Notify,
    /// Set when the run must stop (a task out of attempts, a worker refusing the run).
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    /// Workers not lost yet; when it reaches 0 with tasks left, the run fails at once.
    live: AtomicU64,
    /// Why each lost worker was declared lost.
    losses: Mutex<Vec<String>>,
}

/// Tasks not yet sent (`next..total`) and tasks to send again, with their attempt numbers.
struct Queue {
    next: u64,
    retry: VecDeque<(u64, u32)>,
}

impl Shared {
    fn new(total: u64, workers: u64) -> Shared {
        Shared {
            total,
            queue: Mutex::new(Queue {
                next: 0,
                retry: VecDeque::new(),
            }),
            done: (0..total.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            completed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            changed: Notify::new(),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            live: AtomicU64::new(workers),
            losses: Mutex::new(Vec::new()),
        }
    }

    fn take(&self, n: usize) -> Vec<(u64, u32)> {
        let mut q = self.queue.lock().expect("queue lock");
        let mut items = Vec::with_capacity(n);
        while items.len() < n {
            if let Some(item) = q.retry.pop_front() {
                // A lost worker's late result may have completed it since.
                if !self.is_done(item.0) {
                    items.push(item);
                }
            } else if q.next < self.total {
                items.push((q.next, 0));
                q.next += 1;
            } else {
                break;
            }
        }
        items
    }

    /// Puts a lost worker's tasks back, unless they completed meanwhile or ran out of attempts.
    fn requeue(&self, items: impl IntoIterator<Item = (u64, u32)>, address: &str) {
        let mut q = self.queue.lock().expect("queue lock");
        for (id, attempt) in items {
            if self.is_done(id) {
                continue;
            }
            if attempt + 1 >= MAX_ATTEMPTS {
                self.fail(format!(
                    "task {id} was lost {MAX_ATTEMPTS} times (last on worker {address}); giving up"
                ));
                return;
            }
            q.retry.push_back((id, attempt + 1));
            self.retried.fetch_add(1, Ordering::Relaxed);
        }
        drop(q);
        self.changed.notify_waiters();
    }

    fn is_done(&self, id: u64) -> bool {
        self.done[(id / 64) as usize].load(Ordering::Acquire) & (1 << (id % 64)) != 0
    }

    /// Marks task `id` done; true for its first result only.
    fn finish(&self, id: u64) -> bool {
        let bit = 1 << (id % 64);
        let first = self.done[(id / 64) as usize].fetch_or(bit, Ordering::AcqRel) & bit == 0;
        if first && self.completed.fetch_add(1, Ordering::AcqRel) + 1 == self.total {
            self.changed.notify_waiters();
        }
        first
    }

    fn all_done(&self) -> bool {
        self.completed.load(Ordering::Acquire) == self.total
    }

    /// Records a lost worker; fails the run when it was the last one and work remains.
    fn lose(&self, reason: String) {
        let mut losses = self.losses.lock().expect("losses lock");
        losses.push(reason);
        if self.live.fetch_sub(1, Ordering::AcqRel) == 1 && !self.all_done() {
            let message = format!(
                "all {} workers were lost with {} of {} tasks done: {}",
                losses.len(),
                self.completed.load(Ordering::Acquire),
                self.total,
                losses.join("; ")
            );
            drop(losses);
            self.fail(message);
        }
    }

    fn fail(&self, reason: String) {
        self.failure.lock().expect("failure lock").get_or_insert(reason);
        self.failed.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }
}

/// A worker's stream for one run, opened (Start sent, Ready received) before the clock starts.
pub(crate) struct Opened {
    address: String,
    threads: usize,
    max_message_bytes: usize,
    out: mpsc::Sender<wire::CoordinatorMessage>,
    inbound: Streaming<wire::WorkerMessage>,
}

/// Opens a run on `connection` with `threads` threads and waits until the worker is ready.
pub(crate) async fn open(
    connection: &Connection,
    threads: usize,
    workload: &Workload,
    heartbeat: Duration,
    timeout: Duration,
) -> Result<Opened, DistributedError> {
    let fail = |reason: String| DistributedError::Worker {
        address: connection.address.clone(),
        reason,
    };
    // One task (its payload and a little framing) must fit one message, or nothing can run.
    let smallest = workload.payload_bytes as usize + 64;
    if smallest > connection.max_message_bytes {
        return Err(fail(format!(
            "one task of {} payload bytes does not fit its message limit of {} bytes \
             (raise --max-message on the worker and max_message in [distributed])",
            workload.payload_bytes, connection.max_message_bytes
        )));
    }
    let (out, rx) = mpsc::channel(64);
    let start = wire::CoordinatorMessage {
        body: Some(coordinator_message::Body::Start(wire::Start {
            workload: Some(workload_to_wire(workload)),
            threads: threads as u32,
            heartbeat_interval_ms: heartbeat.as_millis() as u64,
        })),
    };
    out.send(start)
        .await
        .map_err(|_| fail("stream closed before Start".into()))?;
    let opening = async {
        let mut inbound = connection
            .client
            .clone()
            .run(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .map_err(|s| fail(format!("refused the run: {} ({:?})", s.message(), s.code())))?
            .into_inner();
        loop {
            match inbound.message().await {
                Ok(Some(wire::WorkerMessage {
                    body: Some(worker_message::Body::Ready(_)),
                })) => return Ok(inbound),
                Ok(Some(_)) => continue,
                Ok(None) => return Err(fail("closed the stream before it was ready".into())),
                Err(s) => return Err(fail(format!("refused the run: {} ({:?})", s.message(), s.code()))),
            }
        }
    };
    // Building a large memory buffer takes a while: allow for it on top of the timeout.
    let inbound = tokio::time::timeout(timeout + Duration::from_secs(30), opening)
        .await
        .map_err(|_| fail("did not get ready in time".into()))??;
    Ok(Opened {
        address: connection.address.clone(),
        threads,
        max_message_bytes: connection.max_message_bytes,
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
    recorder: Recorder,
    stats: WireStats,
    outcome: Outcome,
}

/// Runs every task of `workload` over the opened streams; returns the merged measurements.
pub(crate) async fn run(
    streams: Vec<Opened>,
    workload: &Workload,
    start: Instant,
    timeout: Duration,
) -> Result<(Recorder, WireStats), DistributedError> {
    let shared = Arc::new(Shared::new(workload.tasks, streams.len() as u64));
    let workload = Arc::new(workload.clone());
    let workers = streams.len() as u64;
    let mut drivers = tokio::task::JoinSet::new();
    for stream in streams {
        drivers.spawn(drive(stream, shared.clone(), workload.clone(), start, timeout));
    }
    let mut recorder = Recorder::new(start);
    let mut stats = WireStats {
        workers,
        ..WireStats::default()
    };
    let mut losses = Vec::new();
    while let Some(end) = drivers.join_next().await {
        let end = end.map_err(|e| DistributedError::Run(format!("a worker driver failed: {e}")))?;
        recorder = recorder.merge(end.recorder);
        stats.add(&end.stats);
        if let Outcome::Lost(reason) = end.outcome {
            stats.lost_workers += 1;
            losses.push(reason);
        }
    }
    stats.workers = workers;
    stats.retried_tasks = shared.retried.load(Ordering::Relaxed);
    if let Some(reason) = shared.failure.lock().expect("failure lock").take() {
        return Err(DistributedError::Run(reason));
    }
    if !shared.all_done() {
        return Err(DistributedError::Run(format!(
            "the run ended with {} of {} tasks done: {}",
            shared.completed.load(Ordering::Relaxed),
            shared.total,
            losses.join("; ")
        )));
    }
    Ok((recorder, stats))
}

/// Tasks to keep in flight on a worker of `threads` threads, given the mean task time so far:
/// the rule the simulator models too ([`martelli_sim::queue_depth`]).
fn depth(threads: usize, mean_task_ns: f64) -> usize {
    martelli_sim::queue_depth(threads, mean_task_ns, None)
}

/// Feeds one worker and collects its results until the run is over or the worker is lost.
async fn drive(
    mut s: Opened,
    shared: Arc<Shared>,
    workload: Arc<Workload>,
    start: Instant,
    timeout: Duration,
) -> DriverEnd {
    let mut recorder = Recorder::new(start);
    let mut stats = WireStats::default();
    let mut in_flight: HashMap<u64, u32> = HashMap::new();
    let mut mean_task_ns = 0.0f64;
    let mut payload = Vec::new();
    let mut last_seen = Instant::now();
    // A batch must fit a message: half the limit, to leave room for framing.
    let batch_cap = martelli_sim::batch_cap(s.max_message_bytes, workload.payload_bytes);
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
        // Refill in chunks of at least half the depth (tiny tasks would otherwise travel a few
        // per message), but at once when the worker has nothing left.
        let depth = depth(s.threads, mean_task_ns);
        let free = depth.saturating_sub(in_flight.len());
        let want = if free >= depth.div_ceil(2) || in_flight.is_empty() {
            free.min(batch_cap)
        } else {
            0
        };
        if want > 0 {
            let items = shared.take(want);
            if !items.is_empty() {
                let mut tasks = Vec::with_capacity(items.len());
                for (id, attempt) in items {
                    let task = workload.task(id);
                    fill_payload(workload.seed, &task, &mut payload);
                    tasks.push(task_to_wire(&task, attempt, payload.clone()));
                    in_flight.insert(id, attempt);
                }
                let message = wire::CoordinatorMessage {
                    body: Some(coordinator_message::Body::Tasks(wire::TaskBatch { tasks })),
                };
                stats.bytes_sent += message.encoded_len() as u64;
                stats.rpc_batches += 1;
                if s.out.send(message).await.is_err() {
                    break Outcome::Lost(format!("{}: the stream closed", s.address));
                }
                continue;
            }
        }
        tokio::select! {
            biased;
            message = s.inbound.message() => match message {
                Ok(Some(message)) => {
                    last_seen = Instant::now();
                    absorb(message, &shared, &mut recorder, &mut stats, &mut in_flight, &mut mean_task_ns);
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
            in_flight = in_flight.len(),
            "worker lost; re-queueing its tasks"
        );
        shared.requeue(in_flight.drain(), &s.address);
        shared.lose(reason.clone());
    }
    if silent {
        // A silent worker may only be stopped or slow. Keep listening, sending it nothing, until
        // the run ends or its connection breaks: a late result is counted as dropped (or wins,
        // if its task has not completed elsewhere yet: the first result wins).
        let mut ignored = 0.0;
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
                        absorb(message, &shared, &mut recorder, &mut stats, &mut in_flight, &mut ignored);
                    }
                    _ => break,
                },
                _ = &mut changed => {}
            }
        }
    }
    DriverEnd {
        recorder,
        stats,
        outcome,
    }
}

/// Takes in one message from a worker: each result is recorded if it is its task's first,
/// dropped and counted otherwise.
fn absorb(
    message: wire::WorkerMessage,
    shared: &Shared,
    recorder: &mut Recorder,
    stats: &mut WireStats,
    in_flight: &mut HashMap<u64, u32>,
    mean_task_ns: &mut f64,
) {
    stats.bytes_received += message.encoded_len() as u64;
    let Some(worker_message::Body::Results(batch)) = message.body else {
        return;
    };
    stats.rpc_batches += 1;
    for r in batch.results {
        in_flight.remove(&r.id);
        if r.id < shared.total && shared.finish(r.id) {
            recorder.record_remote(r.digest, r.latency_ns);
        } else {
            stats.dropped_results += 1;
        }
        // A moving average is enough to size the queue.
        let latency = r.latency_ns.max(1) as f64;
        *mean_task_ns = if *mean_task_ns == 0.0 {
            latency
        } else {
            0.9 * *mean_task_ns + 0.1 * latency
        };
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
    fn lost_tasks_come_back_once_each_and_give_up_after_four_attempts() {
        let shared = Shared::new(5, 2);
        assert_eq!(shared.take(3), vec![(0, 0), (1, 0), (2, 0)]);
        assert!(shared.finish(1));
        assert!(!shared.finish(1), "the first result wins");
        shared.requeue([(0, 0), (1, 0), (2, 0)], "w1");
        assert_eq!(
            shared.retried.load(Ordering::Relaxed),
            2,
            "a completed task is not re-sent"
        );
        assert!(shared.finish(2), "a late result may still win");
        assert_eq!(
            shared.take(5),
            vec![(0, 1), (3, 0), (4, 0)],
            "retries first, done ones skipped"
        );
        shared.requeue([(0, MAX_ATTEMPTS - 1)], "w2");
        let failure = shared.failure.lock().unwrap().clone().unwrap();
        assert!(
            failure.contains("task 0 was lost 4 times") && failure.contains("w2"),
            "{failure}"
        );
    }

    #[test]
    fn losing_the_last_worker_fails_the_run_at_once() {
        let shared = Shared::new(5, 2);
        shared.lose("a: silent".into());
        assert!(!shared.failed.load(Ordering::Relaxed));
        shared.lose("b: stream broke".into());
        let failure = shared.failure.lock().unwrap().clone().unwrap();
        assert!(
            failure.contains("all 2 workers were lost with 0 of 5 tasks done"),
            "{failure}"
        );
    }

    #[test]
    fn queue_depth_is_two_per_thread_for_coarse_tasks_and_more_for_tiny_ones() {
        assert_eq!(depth(4, 0.0), 8, "no estimate yet");
        assert_eq!(depth(4, 5e6), 8, "5 ms tasks");
        assert_eq!(depth(1, 1e3), 1024, "1 us tasks: capped");
        assert_eq!(depth(2, 1e5), 40, "100 us tasks: 1 ms of work queued per thread");
    }
}
