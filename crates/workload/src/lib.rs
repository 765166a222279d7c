//! The one workload definition that every martelli tier runs.
//!
//! A [`Workload`] is a deterministic, lazily generated list of [`Task`]s: task `i` is a pure
//! function of the seed, `i` and the workload parameters, so any runner on any machine can
//! regenerate it from its id. [`Executor`] runs a task's compute part and returns its digest;
//! [`Checksum`] folds digests order-independently. This crate does no I/O and owns no threads:
//! waiting out a task's simulated I/O is the runner's business (a blocking sleep, an async
//! timer), because how a tier waits is exactly what the tiers differ in.
#![deny(missing_docs)]

mod checksum;
mod kernel;
mod mix;
mod replay;
mod spec;

pub use checksum::Checksum;
pub use kernel::{Executor, FILL_CHUNK_BYTES, Scratch, fill_payload};
pub use mix::{mix64, unit_f64};
pub use replay::{Fnv1a, Replay, ReplayTask};
pub use spec::{Access, Kind, SERIAL_TASK_ID, SizeDistribution, Task, Workload};
