//! Exit codes: what a script calling martelli can rely on.

use std::process::ExitCode;

use martelli_config::ConfigError;
use martelli_runner::RunError;

/// Exit code of a run that could not finish or whose results cannot be trusted.
pub const FAILED: u8 = 1;
/// Exit code of a bad config file or bad command-line usage (clap uses 2 as well).
pub const USAGE: u8 = 2;

/// A usage error found by the binary itself (e.g. a bad flag combination).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Maps an error to its exit code: config and usage errors are 2, anything else 1.
pub fn code(error: &anyhow::Error) -> ExitCode {
    let usage = error.chain().any(|cause| {
        cause.is::<ConfigError>()
            || cause.is::<UsageError>()
            || cause.is::<martelli_sim::SimError>()
            || matches!(cause.downcast_ref::<RunError>(), Some(RunError::Unsupported(_)))
    });
    ExitCode::from(if usage { USAGE } else { FAILED })
}
