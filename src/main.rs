//! The `martelli` command: parse the arguments, run one subcommand, map its error to an exit
//! code (0 ok, 1 the run failed, 2 bad config or usage). All work lives in the subcommands.

mod cli;
mod cmd;
mod exit;
mod progress;
mod tiers;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_logging();
    match cmd::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit::code(&error)
        }
    }
}

/// Logs go to stderr through `tracing`, filtered by `RUST_LOG` (warnings only by default).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
