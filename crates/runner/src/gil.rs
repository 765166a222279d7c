//! An emulated global interpreter lock, as CPython's (3.2+) works: a thread must hold the one
//! lock to compute; a thread that has waited a whole switch interval asks the holder to drop
//! it, and the holder, at its next check, hands it over and waits until another thread has
//! taken it (forced switching), so the lock really changes hands. Blocking waits (I/O) are
//! done without it. With it, computing threads take turns on one core's worth of work, and
//! pay a hand-over each interval; waiting threads still overlap.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Kernel iterations between two checks for a drop request (~2 us of the cpu kernel).
pub const CHECK_EVERY: u64 = 1024;

/// The lock and its switch interval.
#[derive(Debug)]
pub struct Gil {
    state: Mutex<State>,
    changed: Condvar,
    /// Set by a waiter after a whole interval; cleared when the lock changes hands.
    drop_request: AtomicBool,
    interval: Duration,
}

#[derive(Debug, Default)]
struct State {
    held: bool,
    /// Threads waiting to take the lock.
    waiting: u32,
    /// Times the lock was taken, so a forced switch can wait for the next taker.
    takes: u64,
}

impl Gil {
    /// A free lock that changes hands every `interval` under contention.
    pub fn new(interval: Duration) -> Gil {
        Gil {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            drop_request: AtomicBool::new(false),
            interval,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this short-lived guard cannot leave `State` inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the lock, waiting as long as it takes; after each whole interval of waiting,
    /// asks the holder to drop it.
    pub fn acquire(&self) {
        let mut s = self.lock();
        s.waiting += 1;
        while s.held {
            let (guard, timeout) = self
                .changed
                .wait_timeout(s, self.interval)
                .unwrap_or_else(|e| e.into_inner());
            s = guard;
            if timeout.timed_out() && s.held {
                self.drop_request.store(true, Ordering::Release);
            }
        }
        s.waiting -= 1;
        s.held = true;
        s.takes += 1;
        self.drop_request.store(false, Ordering::Release);
    }

    /// Gives the lock up.
    pub fn release(&self) {
        let mut s = self.lock();
        s.held = false;
        drop(s);
        self.changed.notify_all();
    }

    /// Runs `work` holding `gil` when there is one (work too short to need switch checks).
    pub fn holding<T>(gil: Option<&Gil>, work: impl FnOnce() -> T) -> T {
        let Some(gil) = gil else { return work() };
        gil.acquire();
        let out = work();
        gil.release();
        out
    }

    /// Called by the holder between slices of work: when another thread asked, hands the lock
    /// over, waits until that thread has it, and takes it back in turn.
    #[inline]
    pub fn check(&self) {
        if !self.drop_request.load(Ordering::Acquire) {
            return;
        }
        let mut s = self.lock();
        s.held = false;
        let seen = s.takes;
        self.changed.notify_all();
        while s.takes == seen && s.waiting > 0 {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        drop(s);
        self.acquire();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;
    use std::time::Instant;

    #[test]
    fn one_holder_at_a_time_and_the_lock_changes_hands_under_contention() {
        let gil = Arc::new(Gil::new(Duration::from_millis(1)));
        let inside = Arc::new(AtomicU32::new(0));
        let turns: Vec<_> = (0..3)
            .map(|_| {
                let (gil, inside) = (gil.clone(), inside.clone());
                std::thread::spawn(move || {
                    gil.acquire();
                    let start = Instant::now();
                    let mut checks = 0u64;
                    while start.elapsed() < Duration::from_millis(30) {
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders at once");
                        inside.fetch_sub(1, Ordering::SeqCst);
                        gil.check();
                        checks += 1;
                    }
                    gil.release();
                    checks
                })
            })
            .collect();
        for t in turns {
            assert!(t.join().unwrap() > 0);
        }
        // Every thread got the lock, and it was handed over while others waited.
        assert!(gil.lock().takes >= 3 + 2, "takes: {}", gil.lock().takes);
    }
}
