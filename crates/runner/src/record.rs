//! The measuring code every tier shares: the per-thread [`Recorder`] and [`timed_run`].
//!
//! A recorder reads the clock once per task (the end of one task is the start of the next), so
//! measuring adds one clock read and one histogram increment per task, whatever the tier.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use martelli_results::trace::{Lane, TraceSpan};
use martelli_results::{RunTrace, Sample};
use martelli_workload::{Checksum, Executor, Scratch, Task};

use crate::gil::{CHECK_EVERY, Gil};
use crate::{Job, RunError};

/// Significant figures kept by latency histograms: 0.1% resolution at any magnitude.
const LATENCY_SIGFIGS: u8 = 3;

/// Per-thread measurements of the tasks one thread ran. Merged across threads at the end.
#[derive(Debug)]
pub struct Recorder {
    /// Start of the whole run, shared by every thread's recorder, for the first-result time.
    run_start: Instant,
    /// End of this thread's previous task (or when it began): the start of its next task.
    last: Instant,
    /// Earliest task completion seen, relative to `run_start`.
    first_result: Option<Duration>,
    latency_ns: Latencies,
    checksum: Checksum,
    scratch: Scratch,
    /// This recorder's spans in a traced run (`None`: not traced, the usual case, which
    /// costs one branch per task).
    trace: Option<Box<Spans>>,
    /// Time inside tasks on this recorder's own thread, ns (the sum of its latencies).
    own_ns: u64,
    /// Time inside tasks on each lane this recorder hears of by number (a pool's queue
    /// threads or processes, an async slot, a worker's threads), ns.
    remote_ns: Vec<u64>,
    /// The lanes of the recorders merged into this one, ns.
    merged_ns: Vec<u64>,
}

/// A traced recorder's spans: its own thread's, kept small on the hot path, and the others'.
#[derive(Debug)]
struct Spans {
    /// This recorder's thread, numbered in the run.
    lane: u32,
    /// Tasks run on this thread: (id, start, end), ns since the run started.
    local: Vec<[u64; 3]>,
    /// Tasks that ran elsewhere, and other recorders' spans merged in.
    other: Vec<TraceSpan>,
    /// The end of this thread's previous task (or when it began), ns since the run started.
    last_ns: u64,
    /// Spans the cap left out.
    dropped: u64,
}

impl Spans {
    fn full(&self) -> bool {
        self.local.len() + self.other.len() >= MAX_TRACE_SPANS
    }

    /// Every span, this thread's in the general form.
    fn into_spans(self) -> Vec<TraceSpan> {
        let lane = Lane::Thread(self.lane);
        let mut all = self.other;
        all.extend(self.local.into_iter().map(|[id, start_ns, end_ns]| TraceSpan {
            id: Some(id),
            lane,
            start_ns,
            end_ns,
            sent_ns: None,
            arrived_ns: None,
        }));
        all
    }
}

/// One thread's task latencies, ns: kept as they come while they are few, in a histogram once
/// there are more than [`RAW_LATENCIES`]. A thread of a big pool runs a few dozen tasks, and
/// merging the full histograms of 256 threads (~110 KiB each) took 10 ms of a 75 ms run on 2
/// cores; merging a few dozen values each takes microseconds.
#[derive(Debug, Default)]
struct Latencies {
    raw: Vec<u64>,
    histogram: Option<Histogram<u64>>,
}

/// Latencies a recorder keeps raw before it moves them into a histogram.
const RAW_LATENCIES: usize = 1024;

fn latency_histogram() -> Histogram<u64> {
    Histogram::new(LATENCY_SIGFIGS).expect("3 significant figures is a valid precision")
}

impl Latencies {
    #[inline]
    fn record(&mut self, ns: u64) {
        if self.raw.len() == RAW_LATENCIES {
            self.spill();
        }
        self.raw.push(ns.max(1));
    }

    /// Moves the raw values into the histogram.
    fn spill(&mut self) {
        let histogram = self.histogram.get_or_insert_with(latency_histogram);
        for ns in self.raw.drain(..) {
            // An auto-resizing histogram grows to fit any value (`saturating_record` would
            // clamp to its current, tiny, bound instead), so `record` cannot fail here.
            let _ = histogram.record(ns);
        }
    }

    fn merge(&mut self, other: Latencies) {
        if let Some(theirs) = other.histogram {
            match &mut self.histogram {
                // Both histograms auto-resize, so adding cannot go out of bounds.
                Some(mine) => {
                    let _ = mine.add(&theirs);
                }
                None => self.histogram = Some(theirs),
            }
        }
        for ns in other.raw {
            self.record(ns);
        }
    }

    fn into_histogram(mut self) -> Histogram<u64> {
        self.spill();
        self.histogram.unwrap_or_else(latency_histogram)
    }
}

/// Where and when a distributed worker ran a task, as it reported it.
#[derive(Clone, Copy, Debug)]
pub struct WorkerThread {
    /// The worker's index in the run.
    pub worker: u32,
    /// The thread's index in the worker's run.
    pub thread: u32,
    /// When the task started, ns since the worker began the run (its clock).
    pub started_ns: u64,
}

/// Whether the runs starting now record task spans (set by the sweep for a traced run; one
/// run at a time per process).
static TRACING: AtomicBool = AtomicBool::new(false);
/// Numbers the recorders (threads) of a traced run.
static NEXT_LANE: AtomicU32 = AtomicU32::new(0);

/// Most lanes one recorder tells apart (a worker's threads, a pool's processes, async slots).
pub const MAX_LANES: usize = 1 << 16;

/// Spans a traced recorder has room for before it first grows.
const TRACE_CHUNK: usize = 16_384;

/// Most spans one recorder keeps: bounds a traced run's memory (~40 B a span).
pub const MAX_TRACE_SPANS: usize = 1_000_000;

/// Makes the recorders created from now on record task spans (or stop).
pub fn set_tracing(on: bool) {
    NEXT_LANE.store(0, Ordering::Relaxed);
    TRACING.store(on, Ordering::Relaxed);
}

impl Recorder {
    /// A recorder for a thread that starts taking tasks now.
    pub fn new(run_start: Instant) -> Recorder {
        Recorder {
            run_start,
            last: Instant::now(),
            first_result: None,
            latency_ns: Latencies::default(),
            checksum: Checksum::default(),
            scratch: Scratch::default(),
            trace: TRACING.load(Ordering::Relaxed).then(|| {
                Box::new(Spans {
                    lane: NEXT_LANE.fetch_add(1, Ordering::Relaxed),
                    local: Vec::with_capacity(TRACE_CHUNK),
                    other: Vec::new(),
                    last_ns: Instant::now().saturating_duration_since(run_start).as_nanos() as u64,
                    dropped: 0,
                })
            }),
            own_ns: 0,
            remote_ns: Vec::new(),
            merged_ns: Vec::new(),
        }
    }

    /// Adds `ns` inside a task to lane `lane` of those this recorder hears of. A lane number
    /// comes from a worker on the distributed tier, a peer: past [`MAX_LANES`] they share the
    /// last lane, so no peer makes this recorder allocate what it asks for.
    #[inline]
    fn on_lane(&mut self, lane: u32, ns: u64) {
        let lane = (lane as usize).min(MAX_LANES - 1);
        if lane >= self.remote_ns.len() {
            self.remote_ns.resize(lane + 1, 0);
        }
        // A peer's latency is a peer's word: it saturates rather than wraps.
        self.remote_ns[lane] = self.remote_ns[lane].saturating_add(ns);
    }

    /// Every lane's time inside tasks so far, ns (this thread's own last), and starts them
    /// all again from zero.
    pub fn take_lanes(&mut self) -> Vec<u64> {
        let mut lanes = std::mem::take(&mut self.merged_ns);
        lanes.append(&mut self.remote_ns);
        if self.own_ns > 0 {
            lanes.push(std::mem::take(&mut self.own_ns));
        }
        lanes
    }

    fn span(&mut self, span: TraceSpan) {
        if let Some(spans) = &mut self.trace {
            if spans.full() {
                spans.dropped += 1;
            } else {
                spans.other.push(span);
            }
        }
    }

    fn since_start(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.run_start).as_nanos() as u64
    }

    /// Runs `task` on this thread, its I/O wait as a blocking sleep, and records it.
    #[inline]
    pub fn run_blocking(&mut self, executor: &Executor, task: &Task) {
        let digest = execute(executor, task, &mut self.scratch, None);
        self.record(task.id, digest);
    }

    /// Runs `task` on this thread, under `gil` when there is one, and records it.
    #[inline]
    pub fn run_task(&mut self, executor: &Executor, task: &Task, gil: Option<&Gil>) {
        let digest = execute(executor, task, &mut self.scratch, gil);
        self.record(task.id, digest);
    }

    /// Records the completion, now, of task `id` that ran on this thread and yielded `digest`.
    #[inline]
    pub fn record(&mut self, id: u64, digest: u64) {
        let now = Instant::now();
        let latency = now.duration_since(self.last).as_nanos() as u64;
        if let Some(spans) = &mut self.trace {
            let end = spans.last_ns + latency;
            if spans.full() {
                spans.dropped += 1;
            } else {
                spans.local.push([id, spans.last_ns, end]);
            }
            spans.last_ns = end;
        }
        self.last = now;
        self.own_ns += latency;
        self.latency_ns.record(latency);
        self.first_result
            .get_or_insert_with(|| now.duration_since(self.run_start));
        self.checksum.add(digest);
    }

    /// Records a task that completed elsewhere, on lane `lane` (a queue thread, a pool
    /// process, an async slot), now, with the latency measured where it ran.
    pub fn record_remote(&mut self, lane: u32, digest: u64, latency_ns: u64) {
        self.on_lane(lane, latency_ns);
        if self.trace.is_some() {
            // Where it ran is unknown here: the export lays such spans on as few tracks as
            // keep them apart.
            let end_ns = self.since_start(Instant::now());
            self.span(TraceSpan {
                id: None,
                lane: Lane::Unknown,
                start_ns: end_ns.saturating_sub(latency_ns),
                end_ns,
                sent_ns: None,
                arrived_ns: None,
            });
        }
        self.arrived(digest, latency_ns);
    }

    /// Records the result, arriving now, of task `id` that ran on `thread` of distributed
    /// worker `worker` for `latency_ns` from `started_ns` on the worker's clock, and was sent
    /// to it at `sent` (when known).
    pub fn record_result(
        &mut self,
        id: u64,
        digest: u64,
        latency_ns: u64,
        on: WorkerThread,
        sent: Option<Instant>,
    ) {
        // One recorder hears of one worker's threads.
        self.on_lane(on.thread, latency_ns);
        if self.trace.is_some() {
            let now = self.since_start(Instant::now());
            self.span(TraceSpan {
                id: Some(id),
                lane: Lane::Worker {
                    worker: on.worker,
                    thread: on.thread,
                },
                start_ns: on.started_ns,
                end_ns: on.started_ns + latency_ns,
                sent_ns: sent.map(|t| self.since_start(t)),
                arrived_ns: Some(now),
            });
        }
        self.arrived(digest, latency_ns);
    }

    /// Counts a result that arrives now, with the latency measured where it ran.
    fn arrived(&mut self, digest: u64, latency_ns: u64) {
        let now = Instant::now();
        self.latency_ns.record(latency_ns);
        self.first_result
            .get_or_insert_with(|| now.duration_since(self.run_start));
        self.checksum.add(digest);
    }

    /// Marks that the results reach the caller only now, all at once (futures gathered at the
    /// end): the caller's first result is now, whenever the threads finished their tasks.
    pub fn gathered(&mut self) {
        if self.tasks() > 0 {
            self.first_result = Some(self.run_start.elapsed());
        }
    }

    /// Tasks recorded so far.
    pub fn tasks(&self) -> u64 {
        self.checksum.count()
    }

    /// Marks now as the start of this thread's next task (after a pause in taking tasks).
    pub fn restart_clock(&mut self) {
        self.last = Instant::now();
        let since = self.since_start(self.last);
        if let Some(spans) = &mut self.trace {
            spans.last_ns = since;
        }
    }

    /// Whether this recorder keeps task spans.
    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Combines two threads' measurements.
    pub fn merge(mut self, mut other: Recorder) -> Recorder {
        let mut lanes = other.take_lanes();
        self.merged_ns.append(&mut lanes);
        if let (Some(mine), Some(theirs)) = (&mut self.trace, other.trace) {
            mine.dropped += theirs.dropped;
            mine.other.extend(theirs.into_spans());
        }
        self.latency_ns.merge(other.latency_ns);
        self.checksum = self.checksum.merge(other.checksum);
        self.first_result = match (self.first_result, other.first_result) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self
    }
}

/// Runs one task on this thread: its compute part, then its I/O wait as a blocking sleep.
/// Under an interpreter lock the compute part holds the lock, yielding it between slices when
/// another thread asks, and the wait is done without it, as a blocking call releases it.
#[inline]
pub fn execute(executor: &Executor, task: &Task, scratch: &mut Scratch, gil: Option<&Gil>) -> u64 {
    let digest = match gil {
        None => executor.compute(task, scratch),
        Some(gil) => {
            gil.acquire();
            let digest = executor.compute_sliced(task, scratch, CHECK_EVERY, || gil.check());
            gil.release();
            digest
        }
    };
    if task.io_wait_ns > 0 {
        std::thread::sleep(task.io_wait());
    }
    digest
}

/// CPU time (user + system) this process has used so far, all threads included, plus that of
/// its children that have ended (a run's worker processes are waited for within the run).
pub fn cpu_time() -> Duration {
    let of = |who: libc::c_int| {
        // SAFETY: getrusage only writes the struct we pass, which is plain data.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            if libc::getrusage(who, &mut usage) != 0 {
                return Duration::ZERO;
            }
            usage
        };
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(usage.ru_utime) + tv(usage.ru_stime)
    };
    of(libc::RUSAGE_SELF) + of(libc::RUSAGE_CHILDREN)
}

/// One timed run, the same for every tier: starts the clocks, lets the tier run the parallel
/// tasks (`parallel` gets the run's start instant and returns the merged recorders), runs the
/// serial phase on the calling thread (one core, as Amdahl's law has it), stops the clocks.
pub fn timed_run(
    job: &Job<'_>,
    parallel: impl FnOnce(Instant) -> Result<Recorder, RunError>,
) -> Result<Sample, RunError> {
    let measures_memory = reset_peak_rss();
    let cpu_start = cpu_time();
    let start = Instant::now();
    let mut recorder = parallel(start)?;
    let lanes_ns = recorder.take_lanes();
    if let Some(serial) = job.workload.serial_task() {
        recorder.restart_clock();
        recorder.run_blocking(job.executor, &serial);
    }
    let serial_ns = recorder.take_lanes().iter().sum();
    let wall = start.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_start);
    Ok(Sample {
        wall,
        cpu,
        first_result: recorder.first_result.unwrap_or(wall),
        latency_ns: recorder.latency_ns.into_histogram(),
        tasks_completed: recorder.checksum.count(),
        checksum: recorder.checksum.value(),
        distributed: None,
        peak_rss_bytes: if measures_memory { peak_rss() } else { None },
        trace: recorder.trace.map(|spans| RunTrace {
            start,
            dropped: spans.dropped,
            spans: spans.into_spans(),
        }),
        lanes_ns,
        serial_ns,
    })
}

/// Resets this process's peak resident memory to its current one (Linux: `clear_refs` 5),
/// so that the peak read after a run is that run's. False where that is not possible.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// This process's peak resident memory since the last reset, bytes (Linux: `VmHWM`).
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_add_up_per_thread_and_a_peers_lane_number_cannot_grow_them_without_bound() {
        let start = Instant::now();
        let on = |thread| WorkerThread {
            worker: 0,
            thread,
            started_ns: 0,
        };
        let mut a = Recorder::new(start);
        a.record_result(1, 1, 300, on(0), None);
        a.record_result(2, 2, 200, on(2), None);
        a.record_result(3, 3, 100, on(0), None);
        assert_eq!(a.take_lanes(), vec![400, 0, 200]);
        // A lane number past the cap lands in the last lane instead of a 4-billion-entry vector.
        a.record_result(4, 4, 50, on(u32::MAX), None);
        let lanes = a.take_lanes();
        assert_eq!(lanes.len(), MAX_LANES);
        assert_eq!(lanes[MAX_LANES - 1], 50);
        // Merged recorders keep their lanes apart.
        let mut b = Recorder::new(start);
        b.record_remote(1, 5, 70);
        let mut c = Recorder::new(start).merge(b);
        assert_eq!(c.take_lanes(), vec![0, 70]);
    }

    #[test]
    fn latencies_kept_raw_or_in_a_histogram_merge_to_the_same_distribution() {
        // Threads with a few values (kept raw) and with more than fit raw (a histogram), merged
        // in both orders, give exactly the histogram of every value recorded in one place.
        let values = |seed: u64, n: u64| (0..n).map(move |i| 1 + (i * 7919 + seed * 104_729) % 5_000_000);
        let sizes = [3, RAW_LATENCIES as u64 + 17, 40, 3 * RAW_LATENCIES as u64, 1];
        let mut all = latency_histogram();
        let mut parts = Vec::new();
        for (seed, n) in sizes.iter().enumerate() {
            let mut part = Latencies::default();
            for v in values(seed as u64, *n) {
                part.record(v);
                all.record(v).unwrap();
            }
            parts.push(part);
        }
        let forward = parts
            .into_iter()
            .reduce(|mut a, b| {
                a.merge(b);
                a
            })
            .unwrap()
            .into_histogram();
        assert_eq!(forward.len(), all.len());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
            assert_eq!(
                forward.value_at_quantile(q),
                all.value_at_quantile(q),
                "quantile {q}"
            );
        }
        assert_eq!(forward.min(), all.min());
        assert_eq!(forward.max(), all.max());
        assert_eq!(Latencies::default().into_histogram().len(), 0);
    }
}
