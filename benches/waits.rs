//! Memory and time per concurrent wait: a thread per wait vs async tasks on one thread (the
//! lecture's claim that async holds many waits cheaply where threads cost far more).
//!
//! `cargo bench --bench waits`. Each case resets the peak-RSS mark (Linux) and reports the
//! peak over the baseline divided by the waits, and the wall time of all waits (1 s each).

use std::time::{Duration, Instant};

/// Resident memory now and the peak since the last reset, in KiB (Linux), else zeros.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn report(name: &str, waits: usize, base: u64, wall: Duration) {
    let (_, peak) = rss_kib();
    let per_wait = (peak.saturating_sub(base) * 1024) as f64 / waits as f64;
    println!(
        "{name:<34} {waits:>7} waits of 1 s: wall {:>6.3} s, peak RSS +{:>7} KiB, {:>8.0} bytes per wait",
        wall.as_secs_f64(),
        peak.saturating_sub(base),
        per_wait
    );
}

fn threads(waits: usize) {
    reset_peak();
    let (base, _) = rss_kib();
    let start = Instant::now();
    let handles: Vec<_> = (0..waits)
        .map(|_| {
            std::thread::Builder::new()
                .stack_size(64 << 10)
                .spawn(|| std::thread::sleep(Duration::from_secs(1)))
                .expect("spawn a thread")
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    report("a thread per wait (64 KiB stacks)", waits, base, start.elapsed());
}

fn event_loop(waits: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    reset_peak();
    let (base, _) = rss_kib();
    let start = Instant::now();
    runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..waits {
            set.spawn(tokio::time::sleep(Duration::from_secs(1)));
        }
        while set.join_next().await.is_some() {}
    });
    report("async tasks on one thread", waits, base, start.elapsed());
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("martelli waits benchmark: memory and time per concurrent wait\n");
    // Smallest first: an allocator reuses what a bigger case freed, which would hide growth.
    event_loop(10_000);
    event_loop(100_000);
    threads(10_000);
}
