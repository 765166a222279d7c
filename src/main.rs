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
    // `martelli fit x.csv | head` should end quietly when `head` goes away, not panic on a
    // broken pipe: for the commands that only print, restore the default SIGPIPE. Never for
    // `run` and `worker`: their sockets write with writev, where SIGPIPE would kill the process
    // when a peer hangs up (seen in tests).
    if matches!(cli.command, cli::Command::Fit(_) | cli::Command::Validate(_)) {
        #[cfg(unix)]
        // SAFETY: restoring the default disposition of one signal, before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
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
    // Colours only for a person: a log file or a batch system's output gets plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
