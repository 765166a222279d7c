//! `martelli worker`: serve the distributed tier until SIGINT or SIGTERM.

use std::io::Write;

use anyhow::Context;
use martelli_distributed::{
    JoinTarget, LISTENING, Limits, WorkerOptions, default_working_set, keep_joining, shared_token,
    worker_name,
};

use crate::cli::WorkerArgs;
use crate::exit::UsageError;

/// Binds, announces the address on stdout, and serves until a shutdown signal.
pub fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let token = shared_token(args.token_file.as_deref()).map_err(UsageError)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| UsageError(format!("cannot read {}: {e}", p.display())))
            };
            Some((read(cert)?, read(key)?))
        }
        _ => None,
    };
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );
    let options = WorkerOptions {
        threads,
        token,
        max_message_bytes: args.max_message as usize,
        tls,
        limits: Limits {
            runs: args.max_runs as usize,
            working_set_bytes: args.max_working_set.unwrap_or_else(default_working_set),
            queued_tasks: usize::try_from(args.max_queued_tasks).unwrap_or(usize::MAX),
            queued_bytes: args.max_queued_bytes,
            unread_results: args.max_unread_results,
            handshake_timeout: args.handshake_timeout,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("martelli-worker-io")
        .enable_all()
        .build()
        .context("cannot start the worker's runtime")?;
    let listen = args
        .listen
        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let tls_ca = args
        .tls_ca
        .as_ref()
        .map(|p| std::fs::read(p).map_err(|e| UsageError(format!("cannot read {}: {e}", p.display()))))
        .transpose()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| UsageError(format!("cannot listen on {listen}: {e}")))?;
        let local = listener.local_addr()?;
        // The coordinator's spawn_local reads this line to learn the port.
        println!("{LISTENING}{local}");
        std::io::stdout().flush()?;
        tracing::info!(%local, threads, auth = options.token.is_some(), tls = options.tls.is_some(), "worker listening");
        if let Some(warning) = open_port_warning(local, options.token.is_some()) {
            tracing::warn!("{warning}");
        }
        if let Some(coordinator) = args.join {
            let target = JoinTarget {
                coordinator,
                advertise: args.advertise,
                port: local.port(),
                threads,
                worker_id: worker_name(local),
                token: options.token.clone(),
                tls_ca,
                tls_domain: args.tls_domain,
            };
            // Offers go on beside serving, and end with it.
            tokio::spawn(keep_joining(target));
        }
        martelli_distributed::serve(listener, options, shutdown_signal()).await?;
        tracing::info!("worker stopped");
        Ok(())
    })
}

/// What to say of a worker listening at `local`: one without a token that listens where more
/// than this machine can reach it serves anyone who does.
fn open_port_warning(local: std::net::SocketAddr, token: bool) -> Option<String> {
    (!token && !local.ip().is_loopback()).then(|| {
        format!(
            "{local} takes calls from anyone who can reach it: no token is set. Listen only where \
             nobody but the coordinator can reach this port, or set --token-file or \
             MARTELLI_TOKEN (the same on the coordinator)"
        )
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use super::open_port_warning;

    #[test]
    fn a_worker_without_a_token_on_a_reachable_address_is_warned_about() {
        let anywhere = "0.0.0.0:7070".parse().unwrap();
        let warning = open_port_warning(anywhere, false).unwrap();
        assert!(warning.contains("no token is set"), "{warning}");
        assert!(open_port_warning(anywhere, true).is_none());
        assert!(open_port_warning("127.0.0.1:7070".parse().unwrap(), false).is_none());
    }
}
