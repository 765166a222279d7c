//! `martelli worker`: a gRPC server that runs the tasks coordinators send it on threads of its
//! own (as many as each run asks for), run after run, until it is told to shut down.
//!
//! Heartbeats come from a tokio task, never from the task threads, so a worker whose threads
//! are all busy with long tasks still answers on time and is never mistaken for a dead one.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use martelli_schedule::{MAX_RESULTS_PER_MESSAGE, ResultGroup};
use martelli_workload::Executor;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::PROTOCOL_VERSION;
use crate::auth::CheckToken;
use crate::convert::{task_from_wire, workload_from_wire};
use crate::limits::{Admission, Limits};
use crate::wire::{self, coordinator_message, worker_message, worker_server};

/// How a worker serves.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Threads tasks run on (default: every logical core).
    pub threads: usize,
    /// Shared token every call must carry, if any.
    pub token: Option<String>,
    /// Largest message accepted or sent, in bytes.
    pub max_message_bytes: usize,
    /// PEM certificate and key, to serve over TLS.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// What peers may ask of this worker.
    pub limits: Limits,
}

/// Why a worker could not serve.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// TLS could not be set up from the given certificate and key.
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    /// The server failed.
    #[error("the worker's server failed: {0}")]
    Serve(String),
}

/// What the worker keeps across runs. Each counter is read by `Status` calls.
struct Shared {
    worker_id: String,
    threads: usize,
    max_message_bytes: usize,
    /// Whether calls must carry a token (said in the handshake).
    requires_token: bool,
    /// Runs started since the worker started.
    runs_served: AtomicU64,
    /// Tasks executed since the worker started.
    tasks_executed: AtomicU64,
    /// Runs in progress now.
    active_runs: AtomicU32,
    limits: Limits,
    /// The runs served now and the working sets they hold, within `limits`.
    admission: Arc<Admission>,
}

struct WorkerService {
    shared: Arc<Shared>,
}

/// Serves on an already-bound listener until `shutdown` completes; in-progress runs are
/// abandoned then (their coordinators see the stream end and re-queue the tasks).
pub async fn serve(
    listener: tokio::net::TcpListener,
    options: WorkerOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), WorkerError> {
    let local = listener
        .local_addr()
        .map_err(|e| WorkerError::Serve(e.to_string()))?;
    let shared = Arc::new(Shared {
        worker_id: worker_name(local),
        threads: options.threads.max(1),
        max_message_bytes: options.max_message_bytes,
        requires_token: options.token.is_some(),
        runs_served: AtomicU64::new(0),
        tasks_executed: AtomicU64::new(0),
        active_runs: AtomicU32::new(0),
        limits: options.limits,
        admission: Arc::new(Admission::default()),
    });
    let service = worker_server::WorkerServer::new(WorkerService { shared })
        .max_decoding_message_size(options.max_message_bytes)
        .max_encoding_message_size(options.max_message_bytes);
    let service = tonic::service::interceptor::InterceptedService::new(
        service,
        CheckToken::new(options.token.as_deref()),
    );
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(1)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)))
        .tcp_nodelay(true);
    if let Some((cert, key)) = &options.tls {
        let identity = tonic::transport::Identity::from_pem(cert, key);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| WorkerError::Tls(e.to_string()))?;
    }
    builder
        .add_service(service)
        .serve_with_incoming_shutdown(
            handshaking(listener, options.limits.handshake_timeout, options.tls.is_some()),
            shutdown,
        )
        .await
        .map_err(|e| WorkerError::Serve(e.to_string()))
}

/// How a worker serving at `local` names itself: `host@address`.
pub fn worker_name(local: std::net::SocketAddr) -> String {
    format!("{}@{local}", hostname())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "worker".into(), |h| h.trim().to_string())
}

type Outbound = mpsc::Sender<Result<wire::WorkerMessage, Status>>;

#[tonic::async_trait]
impl worker_server::Worker for WorkerService {
    async fn handshake(
        &self,
        request: Request<wire::HandshakeRequest>,
    ) -> Result<Response<wire::HandshakeReply>, Status> {
        let peer = peer(&request);
        let req = request.into_inner();
        tracing::info!(%peer, version = req.martelli_version, "handshake");
        Ok(Response::new(wire::HandshakeReply {
            protocol_version: PROTOCOL_VERSION,
            worker_id: self.shared.worker_id.clone(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()) as u32,
            threads: self.shared.threads as u32,
            martelli_version: env!("CARGO_PKG_VERSION").into(),
            max_message_bytes: self.shared.max_message_bytes as u64,
            requires_token: self.shared.requires_token,
        }))
    }

    async fn status(
        &self,
        _request: Request<wire::StatusRequest>,
    ) -> Result<Response<wire::StatusReply>, Status> {
        let s = &self.shared;
        Ok(Response::new(wire::StatusReply {
            worker_id: s.worker_id.clone(),
            threads: s.threads as u32,
            runs_served: s.runs_served.load(Ordering::Relaxed),
            tasks_executed: s.tasks_executed.load(Ordering::Relaxed),
            active_runs: s.active_runs.load(Ordering::Relaxed),
        }))
    }

    type RunStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<wire::WorkerMessage, Status>> + Send>>;

    async fn run(
        &self,
        request: Request<Streaming<wire::CoordinatorMessage>>,
    ) -> Result<Response<Self::RunStream>, Status> {
        let peer = peer(&request);
        let mut inbound = request.into_inner();
        let start = match inbound.message().await? {
            Some(wire::CoordinatorMessage {
                body: Some(coordinator_message::Body::Start(start)),
            }) => start,
            _ => return Err(Status::invalid_argument("a run must begin with a Start message")),
        };
        let workload = start
            .workload
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("Start carries no workload"))
            .and_then(|w| workload_from_wire(w).map_err(Status::invalid_argument))?;
        let threads = start.threads as usize;
        if threads == 0 || threads > self.shared.threads {
            return Err(Status::invalid_argument(format!(
                "asked for {threads} threads; this worker has {}",
                self.shared.threads
            )));
        }
        let heartbeat = Duration::from_millis(start.heartbeat_interval_ms.clamp(10, 60_000));
        let working_set = if workload.kind == martelli_workload::Kind::Memory {
            workload.working_set
        } else {
            0
        };
        let admitted = self
            .shared
            .admission
            .admit(&self.shared.limits, working_set)
            .inspect_err(|refusal| tracing::warn!(%peer, reason = refusal.message(), "run refused"))?;
        tracing::info!(%peer, workload = workload.name, tasks = workload.tasks, threads, "run started");
        let (tx, rx) = mpsc::channel(256);
        // Results finished and not yet taken by the transport (which stops taking them when the
        // coordinator stops reading), and the alarm when there are too many.
        let counters = Arc::new(RunCounters {
            ran: AtomicU64::new(0),
            starved: AtomicU64::new(0),
            results: AtomicU64::new(0),
            limit: self.shared.limits.unread_results,
            over: tokio::sync::Notify::new(),
            result_wait_ns: start
                .result_wait_ns
                .unwrap_or(martelli_schedule::CREDIT_RESULT_WAIT_NS)
                .min(MAX_RESULT_WAIT_NS),
        });
        let taken = counters.clone();
        let outbound = tokio_stream::StreamExt::map(ReceiverStream::new(rx), move |message| {
            if let Ok(wire::WorkerMessage {
                body: Some(worker_message::Body::Results(batch)),
            }) = &message
            {
                taken
                    .results
                    .fetch_sub(batch.results.len() as u64, Ordering::Relaxed);
            }
            message
        });
        let shared = self.shared.clone();
        shared.runs_served.fetch_add(1, Ordering::Relaxed);
        shared.active_runs.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let outcome = run_session(
                &shared,
                workload,
                threads,
                heartbeat,
                inbound,
                tx,
                counters.clone(),
            )
            .await;
            drop(admitted);
            shared.active_runs.fetch_sub(1, Ordering::Relaxed);
            // Tasks this run's threads finished, whether or not the run ran to its end.
            let tasks = counters.ran.load(Ordering::Relaxed);
            let starved = counters.starved.load(Ordering::Relaxed);
            match outcome {
                Ok(()) => tracing::info!(%peer, tasks, starved, "run finished"),
                Err(reason) => tracing::warn!(%peer, %reason, tasks, starved, "run ended early"),
            }
        });
        Ok(Response::new(Box::pin(outbound)))
    }
}

fn peer<T>(request: &Request<T>) -> String {
    request
        .remote_addr()
        .map_or_else(|| "unknown".into(), |a: SocketAddr| a.to_string())
}

/// One run: executes task batches as they arrive, streams results and heartbeats back, and
/// stops (dropping queued tasks) when the coordinator ends or breaks the stream.
async fn run_session(
    shared: &Arc<Shared>,
    workload: martelli_workload::Workload,
    threads: usize,
    heartbeat: Duration,
    mut inbound: Streaming<wire::CoordinatorMessage>,
    tx: Outbound,
    counters: Arc<RunCounters>,
) -> Result<(), String> {
    let executor = {
        let w = workload.clone();
        let built = tokio::task::spawn_blocking(move || Executor::try_new(&w))
            .await
            .map_err(|e| e.to_string())?;
        match built {
            Ok(executor) => Arc::new(executor),
            Err(reason) => {
                let _ = tx.send(Err(Status::resource_exhausted(reason.clone()))).await;
                return Err(reason);
            }
        }
    };
    // Tasks still to run are dropped once the run is over.
    let inbox = Arc::new(Inbox::default());
    // The run's clock on this worker: task start times are sent relative to it.
    let epoch = Instant::now();
    let in_flight = Arc::new(AtomicU32::new(0));
    let (results_tx, results_rx) = mpsc::unbounded_channel::<Vec<wire::TaskResult>>();
    for i in 0..threads {
        let (inbox, executor, in_flight) = (inbox.clone(), executor.clone(), in_flight.clone());
        let sink = ResultSink::new(results_tx.clone(), shared.clone(), counters.clone());
        std::thread::Builder::new()
            .name(format!("martelli-worker-{i}"))
            .spawn(move || run_tasks(&inbox, &executor, sink, &in_flight, epoch, i as u32))
            .map_err(|e| format!("cannot start a worker thread: {e}"))?;
    }
    let ready = wire::WorkerMessage {
        body: Some(worker_message::Body::Ready(wire::Ready {
            threads: threads as u32,
        })),
    };
    tx.send(Ok(ready)).await.map_err(|_| "coordinator went away")?;

    let heartbeats = tokio::spawn(send_heartbeats(tx.clone(), heartbeat, in_flight.clone()));
    let forwarder = tokio::spawn(forward_results(tx.clone(), results_rx, counters.clone()));

    let outcome = loop {
        let message = tokio::select! {
            message = inbound.message() => message,
            () = counters.over.notified() => {
                let reason = format!(
                    "the coordinator left more than {} results unread (--max-unread-results)",
                    counters.limit
                );
                let _ = tx.try_send(Err(Status::resource_exhausted(reason.clone())));
                break Err(reason);
            }
        };
        match message {
            Ok(Some(wire::CoordinatorMessage {
                body: Some(coordinator_message::Body::Tasks(batch)),
            })) => {
                // One bad task ends the run: nothing of a batch that lies about itself runs.
                let checked: Result<Vec<_>, String> = batch
                    .tasks
                    .into_iter()
                    .map(|t| task_from_wire(&t, &workload).map(|task| (task, t.attempt, t.payload)))
                    .collect();
                let tasks = match checked {
                    Ok(tasks) => tasks,
                    Err(reason) => {
                        let _ = tx.send(Err(Status::invalid_argument(reason.clone()))).await;
                        break Err(reason);
                    }
                };
                tracing::trace!(
                    tasks = tasks.len(),
                    first = tasks.first().map(|t| t.0.id),
                    "task batch"
                );
                let count = tasks.len();
                if let Err(reason) = inbox.push(tasks, &shared.limits) {
                    let _ = tx.send(Err(Status::resource_exhausted(reason.clone()))).await;
                    break Err(reason);
                }
                in_flight.fetch_add(count as u32, Ordering::Relaxed);
            }
            Ok(Some(_)) => {
                let _ = tx
                    .send(Err(Status::invalid_argument(
                        "only task batches may follow Start",
                    )))
                    .await;
                break Err("protocol violation".to_string());
            }
            Ok(None) => break Ok(()),
            Err(status) => {
                // Tell the coordinator why, when it can still hear (e.g. a message over the limit).
                let reason = status.message().to_string();
                let _ = tx.send(Err(status)).await;
                break Err(reason);
            }
        }
    };
    inbox.close();
    heartbeats.abort();
    drop(results_tx);
    // Tasks already running finish on their threads, which then end; the forwarder goes now.
    forwarder.abort();
    outcome
}

/// Sends a heartbeat every `interval` until the stream closes.
async fn send_heartbeats(tx: Outbound, interval: Duration, in_flight: Arc<AtomicU32>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for sequence in 0u64.. {
        ticker.tick().await;
        let beat = wire::WorkerMessage {
            body: Some(worker_message::Body::Heartbeat(wire::Heartbeat {
                sequence,
                in_flight: in_flight.load(Ordering::Relaxed),
            })),
        };
        if tx.send(Ok(beat)).await.is_err() {
            return;
        }
    }
}

/// Gathers finished tasks into result batches: whatever has finished by the time the previous
/// batch is sent goes into the next one, so batches grow under load and stay small when idle.
async fn forward_results(
    tx: Outbound,
    mut results: mpsc::UnboundedReceiver<Vec<wire::TaskResult>>,
    counters: Arc<RunCounters>,
) {
    while let Some(mut batch) = results.recv().await {
        while batch.len() < MAX_RESULTS_PER_MESSAGE {
            match results.try_recv() {
                Ok(more) => batch.extend(more),
                Err(_) => break,
            }
        }
        tracing::trace!(results = batch.len(), first = batch[0].id, "result batch");
        let message = wire::WorkerMessage {
            body: Some(worker_message::Body::Results(wire::ResultBatch {
                results: batch,
                starved: counters.starved.load(Ordering::Relaxed),
            })),
        };
        if tx.send(Ok(message)).await.is_err() {
            return;
        }
    }
}

/// A task as it waits for a thread: the task, its attempt, its payload.
type Queued = (martelli_workload::Task, u32, Vec<u8>);

/// The tasks of one run waiting for the run's threads, in arrival order. Each thread takes
/// one task at a time, as the policy's model assumes (not rayon's splitting and stealing: a
/// thread blocked in a task's wait would leave the owners of its stolen halves spinning, on
/// cores the woken waits need).
#[derive(Default)]
struct Inbox {
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
enum Next {
    Task(Queued),
    /// Nothing queued now (the thread hands over its results before it waits).
    Empty,
    Closed,
}

impl Inbox {
    /// Queues a batch; refuses it (queuing none of it) past the limits on queued tasks.
    fn push(&self, batch: Vec<Queued>, limits: &Limits) -> Result<(), String> {
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

    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
            state.tasks.clear();
            state.bytes = 0;
        }
        self.ready.notify_all();
    }

    /// Takes the next queued task without waiting, and wakes waiting threads for the tasks
    /// left behind it.
    fn try_next(&self) -> Next {
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
    fn next(&self) -> Option<Queued> {
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

/// One thread of a run: takes tasks until the run closes; hands its results over in groups,
/// and whenever it finds nothing more to run.
fn run_tasks(
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
struct ResultSink {
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
struct RunCounters {
    /// The run's count of finished tasks.
    ran: AtomicU64,
    /// Times a thread found no task queued and had to wait for the coordinator's next batch.
    starved: AtomicU64,
    results: AtomicU64,
    /// How many may be.
    limit: u64,
    /// Told when there are more.
    over: tokio::sync::Notify,
    /// Longest a thread's finished result waits to share a message, ns (the coordinator's
    /// policy, at most [`MAX_RESULT_WAIT_NS`]).
    result_wait_ns: u64,
}

/// Longest a coordinator may ask results to wait, ns: a second (its heartbeats and timeouts
/// are measured in seconds).
const MAX_RESULT_WAIT_NS: u64 = 1_000_000_000;

impl ResultSink {
    fn new(
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

/// The connections `listener` accepts that send their first bytes (the HTTP/2 preface, or a
/// TLS hello) within `timeout`; the others are closed, so that connections that never speak
/// cannot hold the worker's file descriptors. Each waits on a task of its own: a silent one
/// holds up no other.
fn handshaking(
    listener: tokio::net::TcpListener,
    timeout: Duration,
    tls: bool,
) -> ReceiverStream<std::io::Result<tokio::net::TcpStream>> {
    // The HTTP/2 client preface is 24 bytes; a TLS record header 5.
    let needed = if tls { 5 } else { 24 };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                // The server is gone.
                () = tx.closed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                // Without TCP_NODELAY, small result messages wait ~40 ms for delayed ACKs.
                let _ = stream.set_nodelay(true);
                let mut buffer = [0u8; 24];
                let spoke = tokio::time::timeout(timeout, async {
                    loop {
                        match stream.peek(&mut buffer).await {
                            Ok(0) | Err(_) => return false,
                            Ok(n) if n >= needed => return true,
                            Ok(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                        }
                    }
                })
                .await;
                match spoke {
                    Ok(true) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(false) => {}
                    Err(_) => tracing::info!(%peer, "closed a connection that sent nothing in {timeout:?}"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}

#[cfg(test)]
mod inbox_tests {
    use super::*;
    use std::sync::Barrier;

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
