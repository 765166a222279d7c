//! Entry points for fuzzing what the worker and the coordinator decode from the network: the
//! bytes of one message, decoded as the peer's gRPC stack would, then checked as the receiving
//! side checks it. None may panic, whatever the bytes (`fuzz/` and the corpus test call these).

use prost::Message;

use crate::convert::{task_from_wire, workload_from_wire};
use crate::join::offer_address;
use crate::wire::{self, coordinator_message, worker_message};
use martelli_schedule::{Feed, TaskQueue};
use martelli_workload::{Kind, Workload};

/// The workload tasks are checked against when the bytes bring none.
fn fixed_workload() -> Workload {
    Workload {
        payload_bytes: 16,
        ..Workload::fixed("fuzz", 7, Kind::Cpu, 1000, 100)
    }
}

/// What a worker receives: a coordinator's message on a run stream (Start: the workload is
/// checked; Tasks: each task against it), a handshake or a status request.
pub fn worker_receives(data: &[u8]) {
    if let Ok(message) = wire::CoordinatorMessage::decode(data) {
        match message.body {
            Some(coordinator_message::Body::Start(start)) => {
                if let Some(w) = start.workload.as_ref() {
                    let _ = workload_from_wire(w);
                }
            }
            Some(coordinator_message::Body::Tasks(batch)) => {
                let workload = fixed_workload();
                for t in &batch.tasks {
                    let _ = task_from_wire(t, &workload);
                }
            }
            None => {}
        }
    }
    let _ = wire::HandshakeRequest::decode(data);
    let _ = wire::StatusRequest::decode(data);
}

/// What a coordinator receives: a worker's message on a run stream (results are taken in as
/// the coordinator's policy takes them: ids out of range, duplicates), a handshake or status
/// reply, a joining worker's offer.
pub fn coordinator_receives(data: &[u8]) {
    if let Ok(message) = wire::WorkerMessage::decode(data)
        && let Some(worker_message::Body::Results(batch)) = message.body
    {
        for policy in martelli_schedule::Policy::ALL {
            let mut queue = TaskQueue::new(1000, 4);
            let mut feed = Feed::new(policy, 4, None, 64);
            let mut sent = Vec::new();
            feed.refill(&mut queue, &mut sent);
            for r in &batch.results {
                let _ = feed.result(&mut queue, r.id, r.latency_ns);
            }
            let mut more = Vec::new();
            feed.refill(&mut queue, &mut more);
        }
    }
    let _ = wire::HandshakeReply::decode(data);
    let _ = wire::StatusReply::decode(data);
    if let Ok(offer) = wire::JoinRequest::decode(data) {
        let _ = offer_address(&offer, None);
        let _ = offer_address(&offer, Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9))));
    }
}

/// Well-formed messages of each kind, encoded (`(target, name, bytes)`): the seeds the fuzz
/// corpus started from (`scripts/fuzz.sh --seed` writes them).
pub fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use crate::convert::{task_to_wire, workload_to_wire};
    let workload = fixed_workload();
    let start = wire::CoordinatorMessage {
        body: Some(coordinator_message::Body::Start(wire::Start {
            workload: Some(workload_to_wire(&workload)),
            threads: 2,
            heartbeat_interval_ms: 100,
            result_wait_ns: None,
        })),
    };
    let tasks = wire::CoordinatorMessage {
        body: Some(coordinator_message::Body::Tasks(wire::TaskBatch {
            tasks: (0..3)
                .map(|id| task_to_wire(&workload.task(id), 0, vec![1; 16]))
                .collect(),
        })),
    };
    let results = wire::WorkerMessage {
        body: Some(worker_message::Body::Results(wire::ResultBatch {
            results: (0..3)
                .map(|id| wire::TaskResult {
                    id,
                    attempt: 0,
                    digest: 42 + id,
                    latency_ns: 1000,
                    started_ns: 10,
                    thread: 1,
                })
                .collect(),
            starved: 2,
        })),
    };
    let beat = wire::WorkerMessage {
        body: Some(worker_message::Body::Heartbeat(wire::Heartbeat {
            sequence: 3,
            in_flight: 2,
        })),
    };
    let offer = wire::JoinRequest {
        protocol_version: crate::PROTOCOL_VERSION,
        host: "10.0.0.2".into(),
        port: 7070,
        threads: 8,
        worker_id: "node@10.0.0.2:7070".into(),
        martelli_version: "0.1.0".into(),
    };
    vec![
        ("worker_receives", "start", start.encode_to_vec()),
        ("worker_receives", "tasks", tasks.encode_to_vec()),
        ("coordinator_receives", "results", results.encode_to_vec()),
        ("coordinator_receives", "heartbeat", beat.encode_to_vec()),
        ("coordinator_receives", "join", offer.encode_to_vec()),
    ]
}
