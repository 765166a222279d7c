//! One file per subcommand; this module only dispatches.

mod run;
mod validate;

use crate::cli::{Cli, Command};

/// Runs the subcommand the user asked for.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate(args) => validate::validate(args),
    }
}
