//! The distributed tier's scheduling policy, in one copy: how many tasks a worker keeps in
//! flight and when it is refilled, how many tasks go in one message, how a worker groups its
//! results, how a point's cores are placed over workers, what a task and a result weigh on the
//! wire, and which task goes out next (re-queued ones first, each task at most
//! [`MAX_ATTEMPTS`] times, the first result winning).
//!
//! The real coordinator (`martelli-distributed`) and the simulator (`martelli-sim`) both call
//! this crate, so a change to the policy changes the runner and its model together. It is
//! pure: no clock (callers pass nanoseconds), no I/O, no threads, no wire types.
#![deny(missing_docs)]

mod feed;
mod place;
mod policy;
mod queue;

pub use feed::{Feed, ResultGroup};
pub use place::place;
pub use policy::{
    CREDIT_RESULT_WAIT_NS, DEEP_DEPTH_PER_THREAD, GUIDED_RESULT_WAIT_NS, GUIDED_WORK_PER_THREAD_NS, Policy,
};
pub use queue::{Lost, TaskQueue};

/// Default limit on one gRPC message, bytes: the worker's `--max-message` and the config's
/// `[distributed] max_message` default to it, and the model batches under it.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Attempts a task gets before the run fails naming it.
pub const MAX_ATTEMPTS: u32 = 4;

/// Most tasks in flight per worker thread, whatever their size.
pub const MAX_DEPTH_PER_THREAD: usize = 1024;

/// Results a worker thread gathers before handing them to its sender.
pub const RESULT_GROUP: usize = 64;

/// Most results in one message from a worker; more wait for the next.
pub const MAX_RESULTS_PER_MESSAGE: usize = 4096;

/// Protobuf bytes of one task besides its payload, at most: id, attempt, iterations and wait
/// (varints of up to 10 bytes, with their tags) and the payload's tag and length.
pub const TASK_OVERHEAD_BYTES: u64 = 48;

/// Protobuf bytes of one result, at most: id, attempt, digest, latency, framing.
pub const RESULT_BYTES: u64 = 28;

/// Bytes of a message around its tasks or results (gRPC frame header, oneof tag, length).
pub const MESSAGE_OVERHEAD_BYTES: u64 = 16;

/// Wire bytes of one task carrying `payload_bytes`, at most.
pub fn task_wire_bytes(payload_bytes: u64) -> u64 {
    payload_bytes + TASK_OVERHEAD_BYTES
}

/// Wire bytes of a message of `count` tasks of `payload_bytes` each.
pub fn tasks_message_bytes(count: u64, payload_bytes: u64) -> u64 {
    count * task_wire_bytes(payload_bytes) + MESSAGE_OVERHEAD_BYTES
}

/// Wire bytes of a message of `count` results.
pub fn results_message_bytes(count: u64) -> u64 {
    count * RESULT_BYTES + MESSAGE_OVERHEAD_BYTES
}

/// Most tasks of `payload_bytes` each in one message under a `max_message_bytes` limit: half
/// the limit, to leave room for framing.
pub fn batch_cap(max_message_bytes: usize, payload_bytes: u64) -> usize {
    ((max_message_bytes as u64 / 2) / task_wire_bytes(payload_bytes)).max(1) as usize
}

#[cfg(test)]
mod tests;
