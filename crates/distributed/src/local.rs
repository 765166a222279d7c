//! `spawn_local`: local `martelli worker` processes on 127.0.0.1 ephemeral ports, started for
//! one run of the coordinator and stopped (SIGTERM, then SIGKILL) when it ends.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::DistributedError;

/// The line a worker prints on stdout once it listens: `listening on ADDR`.
pub const LISTENING: &str = "listening on ";

/// Worker processes owned by this coordinator.
pub struct LocalWorkers {
    children: Vec<Child>,
    /// Their addresses, `127.0.0.1:PORT`.
    pub addresses: Vec<String>,
}

impl LocalWorkers {
    /// Starts `count` workers of `exe` (the martelli binary), each with `threads` threads, and
    /// waits until each says where it listens. The token, if any, reaches them through the
    /// environment, never the command line.
    pub fn spawn(
        exe: &Path,
        count: usize,
        threads: Option<usize>,
        token: Option<&str>,
        max_message_bytes: usize,
    ) -> Result<LocalWorkers, DistributedError> {
        let mut workers = LocalWorkers {
            children: Vec::new(),
            addresses: Vec::new(),
        };
        for _ in 0..count {
            let mut command = Command::new(exe);
            command
                .args(["worker", "--listen", "127.0.0.1:0", "--max-message"])
                .arg(max_message_bytes.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped());
            if let Some(threads) = threads {
                command.arg("--threads").arg(threads.to_string());
            }
            if let Some(token) = token {
                command.env("MARTELLI_TOKEN", token);
            }
            // Worker logs would interleave with the coordinator's output; show them on request.
            if std::env::var_os("RUST_LOG").is_none() {
                command.stderr(Stdio::null());
            }
            let mut child = command.spawn().map_err(|e| {
                DistributedError::Spawn(format!("cannot start {} worker: {e}", exe.display()))
            })?;
            let stdout = child.stdout.take().expect("stdout is piped");
            workers.children.push(child);
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                let first = lines.next();
                let _ = tx.send(first);
                // Keep draining so the worker never blocks on a full pipe.
                for _ in lines {}
            });
            let line = match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(Some(Ok(line))) => line,
                _ => {
                    return Err(DistributedError::Spawn(
                        "a local worker did not start listening within 20 s".into(),
                    ));
                }
            };
            let address = line.strip_prefix(LISTENING).ok_or_else(|| {
                DistributedError::Spawn(format!("unexpected first line from a local worker: {line:?}"))
            })?;
            workers.addresses.push(address.trim().to_string());
        }
        Ok(workers)
    }
}

impl LocalWorkers {
    /// The workers' process ids, in address order.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }
}

impl Drop for LocalWorkers {
    fn drop(&mut self) {
        for child in &mut self.children {
            // SAFETY: kill only sends a signal to a process id we own.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        }
        for child in &mut self.children {
            for _ in 0..40 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
