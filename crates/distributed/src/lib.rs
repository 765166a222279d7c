//! The distributed tier (9+ cores): `martelli worker` processes on one or many machines, and a
//! coordinator that spreads one workload over them through gRPC (tonic + prost).
//!
//! Prost types never leave this crate: `convert.rs` turns them into `Workload` and `Task`.
#![deny(missing_docs)]

mod auth;
mod convert;
mod worker;

pub use auth::read_token_file;
pub use worker::{WorkerError, WorkerOptions, serve};

/// Version of the wire protocol; a coordinator and a worker must agree on it.
pub const PROTOCOL_VERSION: u32 = 1;

/// Default limit on one gRPC message, in bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Generated wire types; only this crate uses them.
#[allow(missing_docs, clippy::all, unreachable_pub)]
mod wire {
    tonic::include_proto!("martelli.v1");
}
