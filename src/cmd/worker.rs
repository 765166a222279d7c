//! `martelli worker`: serve the distributed tier until SIGINT or SIGTERM.

use std::io::Write;

use anyhow::Context;
use martelli_distributed::{JoinTarget, LISTENING, WorkerOptions, keep_joining, shared_token, worker_name};

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
