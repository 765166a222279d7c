//! The worker against a raw client on 127.0.0.1: what it refuses, and that it keeps its
//! heartbeats going while every thread is busy.

use std::time::{Duration, Instant};

use martelli_workload::{Kind, Workload, fill_payload};
use tokio_stream::wrappers::ReceiverStream;

use crate::convert::{task_to_wire, workload_to_wire};
use crate::wire::{self, coordinator_message, worker_client::WorkerClient, worker_message};
use crate::{Limits, PROTOCOL_VERSION, WorkerOptions, serve};

fn workload(payload_bytes: u64, iterations: u64) -> Workload {
    Workload {
        payload_bytes,
        ..Workload::fixed("raw", 5, Kind::Cpu, 10, iterations)
    }
}

/// Starts a worker with one thread and a 64 KiB message limit; returns its address.
async fn start_worker() -> (String, tokio::sync::oneshot::Sender<()>) {
    start_worker_with(Limits::default()).await
}

/// Starts a worker with one thread, a 64 KiB message limit and `limits`; returns its address.
async fn start_worker_with(limits: Limits) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = WorkerOptions {
        threads: 1,
        token: None,
        max_message_bytes: 64 << 10,
        tls: None,
        limits,
    };
    tokio::spawn(serve(listener, options, async {
        let _ = stopped.await;
    }));
    (address, stop)
}

fn start(w: &Workload, threads: u32) -> wire::CoordinatorMessage {
    wire::CoordinatorMessage {
        body: Some(coordinator_message::Body::Start(wire::Start {
            workload: Some(workload_to_wire(w)),
            threads,
            heartbeat_interval_ms: 50,
            result_wait_ns: None,
        })),
    }
}

fn batch(w: &Workload, ids: &[u64], payload_len: Option<usize>) -> wire::CoordinatorMessage {
    let tasks = ids
        .iter()
        .map(|&id| {
            let task = w.task(id);
            let mut payload = Vec::new();
            fill_payload(w.seed, &task, &mut payload);
            if let Some(len) = payload_len {
                payload.resize(len, 0);
            }
            task_to_wire(&task, 0, payload)
        })
        .collect();
    wire::CoordinatorMessage {
        body: Some(coordinator_message::Body::Tasks(wire::TaskBatch { tasks })),
    }
}

/// Sends `messages` on a fresh run stream and returns the first error status the worker
/// answers with (or `None` if the stream yields results instead).
async fn first_error(address: &str, messages: Vec<wire::CoordinatorMessage>) -> Option<tonic::Status> {
    let mut client = WorkerClient::connect(format!("http://{address}")).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    for m in messages {
        tx.send(m).await.unwrap();
    }
    let mut inbound = match client.run(ReceiverStream::new(rx)).await {
        Ok(response) => response.into_inner(),
        Err(status) => return Some(status),
    };
    loop {
        match inbound.message().await {
            Ok(Some(wire::WorkerMessage {
                body: Some(worker_message::Body::Results(_)),
            })) => return None,
            Ok(Some(_)) => continue,
            Ok(None) => return None,
            Err(status) => return Some(status),
        }
    }
}

#[tokio::test]
async fn the_worker_refuses_what_it_cannot_trust_and_keeps_serving() {
    let (address, _stop) = start_worker().await;
    let w = workload(16, 10);
    let too_many_threads = first_error(&address, vec![start(&w, 2)]).await.unwrap();
    assert_eq!(
        too_many_threads.code(),
        tonic::Code::InvalidArgument,
        "{too_many_threads:?}"
    );
    let short_payload = first_error(&address, vec![start(&w, 1), batch(&w, &[1], Some(3))])
        .await
        .unwrap();
    assert_eq!(short_payload.code(), tonic::Code::InvalidArgument);
    assert!(short_payload.message().contains("payload"), "{short_payload:?}");
    let good = first_error(&address, vec![start(&w, 1), batch(&w, &[1], None)]).await;
    assert!(good.is_none(), "a good task runs");
    let bad_id = first_error(
        &address,
        vec![start(&w, 1), batch(&w.with_tasks(99), &[50], Some(16))],
    )
    .await
    .unwrap();
    assert!(bad_id.message().contains("out of range"), "{bad_id:?}");
    let big = workload(100 << 10, 10);
    let oversized = first_error(&address, vec![start(&big, 1), batch(&big, &[0], None)])
        .await
        .unwrap();
    assert!(
        matches!(
            oversized.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "{oversized:?}"
    );
    // Still serving after all that.
    let mut client = WorkerClient::connect(format!("http://{address}")).await.unwrap();
    let status = client.status(wire::StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.threads, 1);
    assert!(status.runs_served >= 4);
}

#[tokio::test]
async fn heartbeats_keep_coming_while_every_thread_is_busy() {
    let (address, _stop) = start_worker().await;
    // One task of about half a second on the worker's only thread.
    let w = workload(0, 300_000_000);
    let mut client = WorkerClient::connect(format!("http://{address}")).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(start(&w, 1)).await.unwrap();
    tx.send(batch(&w, &[0], None)).await.unwrap();
    let mut inbound = client.run(ReceiverStream::new(rx)).await.unwrap().into_inner();
    let began = Instant::now();
    let mut beats_before_result = 0;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), inbound.message())
            .await
            .unwrap()
            .unwrap();
        match message.and_then(|m| m.body) {
            Some(worker_message::Body::Heartbeat(h)) => {
                beats_before_result += 1;
                assert!(h.in_flight <= 1);
            }
            Some(worker_message::Body::Results(r)) => {
                assert_eq!(r.results[0].id, 0);
                break;
            }
            Some(worker_message::Body::Ready(_)) => {}
            None => panic!("stream ended"),
        }
    }
    let busy = began.elapsed();
    // Heartbeats every 50 ms: a busy thread must not silence them.
    assert!(
        beats_before_result as f64 >= busy.as_secs_f64() / 0.05 / 2.0,
        "{beats_before_result} heartbeats in {busy:?} of work"
    );
    drop(tx);
}

/// A server that speaks another protocol version, to check the coordinator's handshake.
struct FutureWorker;

#[tonic::async_trait]
impl crate::wire::worker_server::Worker for FutureWorker {
    async fn handshake(
        &self,
        _request: tonic::Request<wire::HandshakeRequest>,
    ) -> Result<tonic::Response<wire::HandshakeReply>, tonic::Status> {
        Ok(tonic::Response::new(wire::HandshakeReply {
            protocol_version: 99,
            worker_id: "future".into(),
            cores: 1,
            threads: 1,
            martelli_version: "9.9.9".into(),
            max_message_bytes: 1 << 20,
            requires_token: false,
        }))
    }

    async fn status(
        &self,
        _request: tonic::Request<wire::StatusRequest>,
    ) -> Result<tonic::Response<wire::StatusReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("not needed"))
    }

    type RunStream = ReceiverStream<Result<wire::WorkerMessage, tonic::Status>>;

    async fn run(
        &self,
        _request: tonic::Request<tonic::Streaming<wire::CoordinatorMessage>>,
    ) -> Result<tonic::Response<Self::RunStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("not needed"))
    }
}

#[tokio::test]
async fn a_protocol_version_mismatch_is_refused_naming_the_address() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(crate::wire::worker_server::WorkerServer::new(FutureWorker))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let options = crate::ClientOptions {
        token: None,
        tls_ca: None,
        tls_domain: None,
        max_message_bytes: 1 << 20,
        timeout: Duration::from_secs(5),
        heartbeat: Duration::from_secs(1),
        policy: martelli_schedule::Policy::default(),
    };
    let error = crate::connect::connect(&address, &options)
        .await
        .err()
        .expect("a mismatch is an error");
    let message = error.to_string();
    assert!(
        message.contains(&address) && message.contains("protocol version 99"),
        "{message}"
    );
}

/// A coordinator waiting for `expect` joining workers on 127.0.0.1; returns its address and
/// the task that ends with the joined workers (or the error).
async fn start_join_server(
    expect: usize,
) -> (
    String,
    tokio::task::JoinHandle<Result<usize, crate::DistributedError>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let join = crate::JoinOptions {
        expect,
        timeout: Duration::from_secs(20),
        tls: None,
    };
    let client = crate::ClientOptions {
        token: None,
        tls_ca: None,
        tls_domain: None,
        max_message_bytes: 64 << 10,
        timeout: Duration::from_secs(5),
        heartbeat: Duration::from_secs(1),
        policy: martelli_schedule::Policy::default(),
    };
    let gathering = tokio::spawn(async move {
        let (server, joined) = crate::join::JoinServer::gather(listener, &join, &client, |_, _| {}).await?;
        // Keep serving a moment so that late offers get their answer.
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(server);
        Ok(joined.len())
    });
    (address, gathering)
}

fn offer(port: u16, protocol_version: u32) -> wire::JoinRequest {
    wire::JoinRequest {
        protocol_version,
        martelli_version: "test".into(),
        worker_id: "raw".into(),
        threads: 1,
        host: String::new(),
        port: u32::from(port),
    }
}

#[tokio::test]
async fn joining_checks_the_protocol_version_dials_back_and_never_takes_more_than_expected() {
    use crate::wire::coordinator_client::CoordinatorClient;
    let (coordinator, gathering) = start_join_server(1).await;
    let mut client = CoordinatorClient::connect(format!("http://{coordinator}"))
        .await
        .unwrap();
    // Another protocol version is refused before anything else.
    let refused = client.join(offer(1, PROTOCOL_VERSION + 1)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("protocol version"), "{refused:?}");
    // A worker that is not there cannot be dialed back: not taken, and said why.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = nobody.local_addr().unwrap().port();
    drop(nobody);
    let reply = client
        .join(offer(gone, PROTOCOL_VERSION))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !reply.accepted && reply.reason.contains("cannot reach"),
        "{reply:?}"
    );
    // A real worker joins; offering again is harmless; a second worker is turned away.
    let (first, _stop_first) = start_worker().await;
    let (second, _stop_second) = start_worker().await;
    let port = |a: &str| a.rsplit_once(':').unwrap().1.parse::<u16>().unwrap();
    let reply = client
        .join(offer(port(&first), PROTOCOL_VERSION))
        .await
        .unwrap()
        .into_inner();
    assert!(reply.accepted, "{reply:?}");
    assert_eq!((reply.joined, reply.expected), (1, 1));
    let again = client
        .join(offer(port(&first), PROTOCOL_VERSION))
        .await
        .unwrap()
        .into_inner();
    assert!(again.accepted, "{again:?}");
    let extra = client
        .join(offer(port(&second), PROTOCOL_VERSION))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !extra.accepted && extra.reason.contains("already has its 1 workers"),
        "{extra:?}"
    );
    assert_eq!(gathering.await.unwrap().unwrap(), 1);
}

/// Opens a run and waits until the worker is ready; returns the sender of further messages and
/// the worker's stream (not read from again unless the caller does).
async fn open_run(
    address: &str,
    w: &Workload,
) -> Result<
    (
        tokio::sync::mpsc::Sender<wire::CoordinatorMessage>,
        tonic::Streaming<wire::WorkerMessage>,
    ),
    tonic::Status,
> {
    let mut client = WorkerClient::connect(format!("http://{address}")).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(start(w, 1)).await.unwrap();
    let mut inbound = client.run(ReceiverStream::new(rx)).await?.into_inner();
    loop {
        match inbound.message().await? {
            Some(wire::WorkerMessage {
                body: Some(worker_message::Body::Ready(_)),
            }) => return Ok((tx, inbound)),
            Some(_) => continue,
            None => return Err(tonic::Status::unknown("closed before ready")),
        }
    }
}

async fn worker_status(address: &str) -> wire::StatusReply {
    let mut client = WorkerClient::connect(format!("http://{address}")).await.unwrap();
    client.status(wire::StatusRequest {}).await.unwrap().into_inner()
}

/// Waits (20 s at most) until the worker serves at most `runs` runs; its status then.
async fn wait_for_active_runs(address: &str, runs: u32) -> wire::StatusReply {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = worker_status(address).await;
        if status.active_runs <= runs {
            return status;
        }
        assert!(Instant::now() < deadline, "runs are let go: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_peer_cannot_take_more_runs_memory_or_queue_than_the_worker_allows() {
    let limits = Limits {
        runs: 2,
        working_set_bytes: 64 << 20,
        queued_tasks: 100,
        ..Limits::default()
    };
    let (address, _stop) = start_worker_with(limits).await;
    // A working set past the limit: refused before anything is allocated.
    let mut greedy = workload(0, 10);
    greedy.kind = Kind::Memory;
    greedy.working_set = 16 << 30;
    let refused = open_run(&address, &greedy).await.err().unwrap();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("--max-working-set"), "{refused:?}");
    // Two runs at once, not three; the third is let in once one ends.
    let w = workload(0, 10).with_tasks(1000);
    let first = open_run(&address, &w).await.unwrap();
    let second = open_run(&address, &w).await.unwrap();
    let third = open_run(&address, &w).await.err().unwrap();
    assert_eq!(third.code(), tonic::Code::ResourceExhausted, "{third:?}");
    assert!(third.message().contains("at most 2 runs"), "{third:?}");
    drop(first);
    wait_for_active_runs(&address, 1).await;
    let (tx, mut inbound) = open_run(&address, &w).await.unwrap();
    // More tasks than a run may queue: the batch is refused and the run ends.
    let ids: Vec<u64> = (0..101).collect();
    tx.send(batch(&w, &ids, None)).await.unwrap();
    let queued = loop {
        match inbound.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the run ended without saying why"),
            Err(status) => break status,
        }
    };
    assert_eq!(queued.code(), tonic::Code::ResourceExhausted, "{queued:?}");
    assert!(queued.message().contains("--max-queued-tasks"), "{queued:?}");
    drop(second);
}

#[tokio::test]
async fn a_coordinator_that_never_reads_its_results_ends_its_run() {
    let limits = Limits {
        unread_results: 100,
        ..Limits::default()
    };
    let (address, _stop) = start_worker_with(limits).await;
    let w = workload(0, 1).with_tasks(200_000);
    let (tx, _never_read) = open_run(&address, &w).await.unwrap();
    for first in (0..200_000).step_by(2000) {
        let ids: Vec<u64> = (first..first + 2000).collect();
        if tx.send(batch(&w, &ids, None)).await.is_err() {
            break;
        }
        // Within the limit on queued tasks: as many as the thread keeps up with.
        tokio::time::sleep(Duration::from_millis(5)).await;
        if worker_status(&address).await.active_runs == 0 {
            break;
        }
    }
    let status = wait_for_active_runs(&address, 0).await;
    assert!(status.tasks_executed < 200_000, "the run ended early: {status:?}");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_handshake_timeout() {
    use tokio::io::AsyncReadExt;
    let limits = Limits {
        handshake_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let (address, _stop) = start_worker_with(limits).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    for mut connection in idle {
        let mut buffer = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), connection.read(&mut buffer)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the worker closed the silent connection: {read:?}"
        );
    }
    // A real client still gets in.
    assert_eq!(worker_status(&address).await.threads, 1);
}
