//! One file per subcommand; this module only dispatches.

mod calibrate;
mod compare;
mod fit;
mod plot;
mod run;
mod simulate;
mod validate;
mod worker;

use crate::cli::{Cli, Command};

/// Runs the subcommand the user asked for.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Fit(args) => fit::fit(args),
        Command::Plot(args) => plot::plot(args),
        Command::Compare(args) => compare::compare(args),
        Command::Validate(args) => validate::validate(args),
        Command::Worker(args) => worker::worker(args),
        Command::Calibrate(args) => calibrate::calibrate(args),
        Command::Simulate(args) => simulate::simulate(args),
        Command::PoolWorker => {
            martelli_runner::serve_pool_worker(std::io::stdin().lock(), std::io::stdout().lock())?;
            Ok(())
        }
    }
}
