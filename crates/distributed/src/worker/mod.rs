//! `martelli worker`: a gRPC server that runs the tasks coordinators send it on threads of its
//! own (as many as each run asks for), run after run, until it is told to shut down.
//!
//! Heartbeats come from a tokio task, never from the task threads, so a worker whose threads
//! are all busy with long tasks still answers on time and is never mistaken for a dead one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use martelli_schedule::MAX_RESULTS_PER_MESSAGE;
use martelli_workload::Executor;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::PROTOCOL_VERSION;
use crate::auth::CheckToken;
use crate::convert::{task_from_wire, workload_from_wire};
use crate::limits::{Admission, Limits};
use crate::wire::{self, coordinator_message, worker_message, worker_server};

mod inbox;
mod threads;

use inbox::Inbox;
use threads::{MAX_RESULT_WAIT_NS, ResultSink, RunCounters, run_tasks};

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
    let mut first = true;
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
        if first {
            // Once a run: what operators (and the fault tests) wait on to know tasks run here.
            tracing::info!("first results sent");
            first = false;
        }
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
