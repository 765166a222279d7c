//! The runners: one [`Runner`] interface, one implementation per tier, and the sweep that
//! drives them. Every tier measures through the same [`Recorder`] and [`timed_run`], so the
//! tiers differ only in how they spread tasks over cores, never in what they measure.
#![deny(missing_docs)]

mod costs;
mod event_loop;
mod gil;
mod multi;
mod process;
mod record;
mod single;
mod sweep;
mod task_cost;

use martelli_config::{ExecutorOptions, Tier};
use martelli_results::Sample;
use martelli_workload::{Executor, Workload};

pub use costs::{
    DILATION_POOLS, DILATION_PROBE_ITERATIONS, PROBE_WAIT_NS, WAIT_POOLS, dilation_workload, measure_kernels,
    measure_pool, median_run, probe_workload, samples, wait_cpu_per_task, wait_workload,
};
pub use gil::Gil;
pub use multi::MultiRunner;
pub use process::serve_pool_worker;
pub use record::{
    MAX_TRACE_SPANS, Recorder, WorkerThread, cpu_time, execute, peak_rss, set_tracing, timed_run,
};
pub use single::SingleRunner;
pub use sweep::{Available, Observer, Plan, PlannedPoint, empty_results, plan, run_sweep};
pub use task_cost::{Calibration, calibrate, calibrate_on};

/// What a runner runs: the workload and its prepared executor.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    /// The workload, with its task count for this point.
    pub workload: &'a Workload,
    /// The executor built for it (shared read-only state such as the memory buffer).
    pub executor: &'a Executor,
}

/// One tier of the Martelli model.
pub trait Runner {
    /// Which tier this is.
    fn tier(&self) -> Tier;

    /// Sets up one sweep point on `cores` cores (a thread pool, worker connections) that every
    /// warm-up and repeat of the point reuses, so set-up cost is not measured as run time.
    fn prepare(&self, cores: usize) -> Result<Box<dyn PreparedPoint + '_>, RunError>;

    /// [`Runner::prepare`] for a series with these executor options (`[executor]`, or a
    /// varied one). The multi tier has every option, the single tier the two that hold many
    /// waits on one core (async, a thread per task); the distributed tier ignores them.
    fn prepare_with(
        &self,
        cores: usize,
        options: &ExecutorOptions,
    ) -> Result<Box<dyn PreparedPoint + '_>, RunError> {
        let _ = options;
        self.prepare(cores)
    }

    /// The most cores this runner can offer (`None`: as many as asked, oversubscribing).
    fn max_cores(&self) -> Option<usize> {
        None
    }

    /// Whether every core this runner uses is on this machine (so that points above this
    /// machine's logical cores are oversubscribed).
    fn on_this_machine(&self) -> bool {
        true
    }
}

/// A runner set up for one core count.
pub trait PreparedPoint {
    /// Runs every task of the job once (plus the serial phase, on one core) and returns what
    /// was measured.
    fn run(&mut self, job: &Job<'_>) -> Result<Sample, RunError>;
}

/// Why a run could not produce trustworthy results.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config asks for something this build cannot do (a usage error, not a failure).
    #[error("{0}")]
    Unsupported(String),
    /// A thread pool or other resource could not be set up.
    #[error("cannot set up the {tier} tier on {cores} cores: {reason}")]
    Setup {
        /// The tier.
        tier: Tier,
        /// The core count.
        cores: usize,
        /// What failed.
        reason: String,
    },
    /// Two runs of the same work disagree: work was lost, repeated or computed wrongly.
    #[error(
        "checksum mismatch in series {series:?}: {tier} on {cores} cores gave {got}, expected {expected} \
         (from {reference}); results were not written"
    )]
    ChecksumMismatch {
        /// Series label.
        series: String,
        /// Tier that disagreed.
        tier: Tier,
        /// Its core count.
        cores: usize,
        /// The checksum it reported.
        got: String,
        /// The checksum expected.
        expected: String,
        /// Where the expected value came from.
        reference: String,
    },
    /// A run of the distributed tier failed (workers lost, refused, unreachable).
    #[error("{0}")]
    Distributed(String),
    /// A worker process of `model = "processes"` failed or stopped answering.
    #[error("process pool: {0}")]
    Process(String),
    /// A run completed a different number of tasks than it was given.
    #[error("{tier} on {cores} cores completed {completed} of {expected} tasks; results were not written")]
    LostWork {
        /// Tier.
        tier: Tier,
        /// Core count.
        cores: usize,
        /// Tasks reported.
        completed: u64,
        /// Tasks given.
        expected: u64,
    },
}

#[cfg(test)]
mod tests;
