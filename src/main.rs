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
    // Behave like other command-line tools when the reader of our output goes away
    // (`martelli fit x.csv | head`): end quietly instead of panicking on a broken pipe. Sockets
    // are unaffected (Rust sends with MSG_NOSIGNAL), so the coordinator and workers are safe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A worker is a server: by default it logs who connects and each run; the other commands
    // keep the terminal for their own output.
    let default_filter = if matches!(cli.command, cli::Command::Worker(_)) {
        "info"
    } else {
        "warn"
    };
    init_logging(default_filter);
    match cmd::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit::code(&error)
        }
    }
}

/// Logs go to stderr through `tracing`, filtered by `RUST_LOG` (else `default_filter`).
fn init_logging(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
