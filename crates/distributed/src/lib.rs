//! The distributed tier (9+ cores): `martelli worker` processes on one or many machines, and a
//! coordinator that spreads one workload over them through gRPC (tonic + prost).
//!
//! Prost types never leave this crate: `convert.rs` turns them into `Workload` and `Task`.
#![deny(missing_docs)]

mod auth;
mod calibrate;
mod connect;
mod convert;
mod coordinator;
#[doc(hidden)]
pub mod fuzzing;
mod join;
mod limits;
mod local;
mod offer;
mod schedule;
mod worker;

pub use auth::shared_token;
pub use calibrate::measure_network;
pub use connect::ClientOptions;
pub use coordinator::DistributedRunner;
pub use join::JoinOptions;
pub use limits::{Limits, default_working_set};
pub use local::{LISTENING, LocalWorkers};
pub use offer::{JoinTarget, keep_joining};
pub use worker::{WorkerError, WorkerOptions, serve, worker_name};

/// Why the distributed tier could not run.
#[derive(Debug, thiserror::Error)]
pub enum DistributedError {
    /// A worker could not be reached, refused us, or speaks another protocol version.
    #[error("worker {address}: {reason}")]
    Worker {
        /// The worker's address, as configured.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// Workers did not join: too few within the time, or the coordinator cannot listen.
    #[error("joining workers: {0}")]
    Join(String),
    /// Local workers could not be started.
    #[error("spawn_local: {0}")]
    Spawn(String),
    /// A run failed: every worker lost, a task out of attempts, a worker refusing the run.
    #[error("distributed run failed: {0}")]
    Run(String),
}

/// Version of the wire protocol; a coordinator and a worker must agree on it.
pub const PROTOCOL_VERSION: u32 = 1;

/// Default limit on one gRPC message, in bytes (the scheduling policy's).
pub use martelli_schedule::DEFAULT_MAX_MESSAGE_BYTES;

/// Generated wire types; only this crate uses them.
#[allow(missing_docs, clippy::all, unreachable_pub)]
mod wire {
    tonic::include_proto!("martelli.v1");
}

#[cfg(test)]
mod tests;
