//! What one worker lets its peers ask of it: runs at once, the working sets they hold, tasks
//! queued and results left unread. A peer that asks for more is refused with
//! RESOURCE_EXHAUSTED, never served by exhausting the machine (a worker without a token
//! serves anyone who reaches its port).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::Status;

/// A worker's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Runs served at once (each holds its threads and its working set).
    pub runs: usize,
    /// Bytes of working set (the buffer `memory` tasks read) all runs together may hold.
    pub working_set_bytes: u64,
    /// Tasks one run may have queued, received but not started.
    pub queued_tasks: usize,
    /// Payload bytes one run may have queued.
    pub queued_bytes: u64,
    /// Results one run may have finished that the coordinator has not taken yet.
    pub unread_results: u64,
    /// How long a new connection may take to send its first bytes (the HTTP/2 preface or a TLS
    /// hello) before it is closed.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            runs: 4,
            working_set_bytes: default_working_set(),
            queued_tasks: 1_000_000,
            queued_bytes: 1 << 30,
            unread_results: 1_000_000,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Half of this machine's memory (4 GiB where it cannot be read).
pub fn default_working_set() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024 / 2)
        })
        .unwrap_or(4 << 30)
}

/// The runs a worker serves now and the working sets they hold.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    held: Mutex<(usize, u64)>,
}

/// A run let in: its share is given back when this is dropped.
pub(crate) struct Admitted {
    admission: Arc<Admission>,
    working_set: u64,
}

impl Admission {
    /// Lets a run holding `working_set` bytes in, or says which limit it would pass.
    pub(crate) fn admit(self: &Arc<Self>, limits: &Limits, working_set: u64) -> Result<Admitted, Status> {
        let mut held = self.held.lock().map_err(|_| Status::internal("admission lock"))?;
        let (runs, bytes) = *held;
        if runs >= limits.runs {
            return Err(Status::resource_exhausted(format!(
                "this worker serves at most {} runs at once (--max-runs) and is serving {runs}",
                limits.runs
            )));
        }
        if bytes.saturating_add(working_set) > limits.working_set_bytes {
            return Err(Status::resource_exhausted(format!(
                "a working set of {working_set} bytes does not fit: runs here may hold {} bytes \
                 in all (--max-working-set) and hold {bytes}",
                limits.working_set_bytes
            )));
        }
        if working_set > 0
            && let Some(available) = martelli_config::host::available_memory_bytes()
            && working_set > available
        {
            let human = martelli_config::host::human_bytes;
            return Err(Status::resource_exhausted(format!(
                "a working set of {} is more than the {} of memory available here (MemAvailable, \
                 or what the control group's limit leaves)",
                human(working_set),
                human(available)
            )));
        }
        *held = (runs + 1, bytes + working_set);
        Ok(Admitted {
            admission: self.clone(),
            working_set,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut held) = self.admission.held.lock() {
            held.0 -= 1;
            held.1 -= self.working_set;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_working_sets_are_admitted_within_the_limits_and_given_back() {
        let limits = Limits {
            runs: 2,
            working_set_bytes: 100,
            ..Limits::default()
        };
        let admission = Arc::new(Admission::default());
        let a = admission.admit(&limits, 60).unwrap();
        let too_big = admission.admit(&limits, 41).err().unwrap();
        assert_eq!(too_big.code(), tonic::Code::ResourceExhausted);
        assert!(too_big.message().contains("--max-working-set"), "{too_big:?}");
        let b = admission.admit(&limits, 40).unwrap();
        let third = admission.admit(&limits, 0).err().unwrap();
        assert!(third.message().contains("at most 2 runs"), "{third:?}");
        drop(a);
        let c = admission.admit(&limits, 60).unwrap();
        drop((b, c));
        assert_eq!(*admission.held.lock().unwrap(), (0, 0));
        assert!(default_working_set() > 0);
    }
}
