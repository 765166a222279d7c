//! The discrete-event engine: an event queue in simulated time (nanoseconds, `f64`), no threads
//! and no sleeps. Ties are broken by the order events were scheduled, so a run is a pure
//! function of its inputs: the same workload (seed) and cluster give the same prediction.
//!
//! Tasks are generated lazily from their ids, as the real tiers do; the queue holds at most a
//! few events per core, so memory does not grow with the task count.

use std::cmp::Ordering;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use hdrhistogram::Histogram;
use martelli_results::WireStats;
use martelli_workload::{Access, Kind, Task, Workload};

use martelli_calibration::Calibration;

/// What one simulated run came to, in simulated nanoseconds.
#[derive(Debug)]
pub struct Run {
    /// The whole run, serial phase included.
    pub wall_ns: f64,
    /// From the start to the first result the measuring side saw.
    pub first_result_ns: f64,
    /// Core time spent on tasks.
    pub busy_ns: f64,
    /// Per-task latency (on the core that ran it), nanoseconds.
    pub latency_ns: Histogram<u64>,
    /// Tasks completed, serial phase included.
    pub tasks: u64,
    /// Traffic, for the distributed tier.
    pub wire: Option<WireStats>,
    /// Events processed (the simulator's own work).
    pub events: u64,
    /// Time inside the parallel phase's tasks per lane (a pool's or a node's thread), ns.
    pub lanes_ns: Vec<f64>,
    /// Time inside the serial phase's task, ns.
    pub serial_ns: f64,
}

/// What one task costs on this machine, from the calibration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Costs {
    per_iteration_ns: f64,
    fixed_ns: f64,
    pub(crate) record_ns: f64,
    payload_local_ns: f64,
    payload_remote_ns: f64,
    io_overshoot_ns: f64,
    memory: bool,
    /// `stream` tasks with a calibrated bandwidth curve: busy threads share it (else the
    /// linear contention factor applies, as to random access).
    stream: bool,
}

impl Costs {
    pub(crate) fn new(workload: &Workload, calibration: &Calibration) -> Costs {
        let k = &calibration.kernels;
        let bytes = workload.mean_payload_bytes();
        let stream = workload.kind == Kind::Memory
            && workload.access == Access::Stream
            && !calibration.multi.memory_bandwidth.is_empty();
        Costs {
            per_iteration_ns: match workload.kind {
                Kind::Cpu | Kind::Mixed | Kind::Replay => k.cpu_ns_per_iteration,
                Kind::Memory if stream => calibration
                    .multi
                    .stream_ns_per_iteration()
                    .unwrap_or_else(|| k.memory_ns_per_iteration(workload.working_set)),
                Kind::Memory => k.memory_ns_per_iteration(workload.working_set),
                Kind::Io => 0.0,
            },
            fixed_ns: k.task_fixed_ns,
            record_ns: k.record_ns,
            payload_local_ns: bytes * (k.payload_generate_ns_per_byte + k.payload_read_ns_per_byte),
            payload_remote_ns: bytes * k.payload_read_ns_per_byte,
            io_overshoot_ns: k.io_overshoot_ns,
            memory: workload.kind == Kind::Memory,
            stream,
        }
    }

    /// Iterations for which a task costs `target_ns` of compute here, as `martelli run`'s
    /// calibration finds them (payload and fixed cost included, measuring not).
    pub(crate) fn iterations_for(&self, target_ns: f64) -> u64 {
        if self.per_iteration_ns <= 0.0 {
            return 0;
        }
        ((target_ns - self.fixed_ns - self.payload_local_ns) / self.per_iteration_ns)
            .round()
            .max(1.0) as u64
    }

    /// The compute part of `task` on one core (payload generated locally or shipped in).
    pub(crate) fn compute_ns(&self, task: &Task, local: bool) -> f64 {
        let payload = if task.payload_bytes == 0 {
            0.0
        } else if local {
            self.payload_local_ns
        } else {
            self.payload_remote_ns
        };
        self.fixed_ns + payload + task.iterations as f64 * self.per_iteration_ns
    }

    /// The simulated I/O wait of `task`, as a sleep lasts.
    pub(crate) fn wait_ns(&self, task: &Task) -> f64 {
        if task.io_wait_ns == 0 {
            0.0
        } else {
            task.io_wait_ns as f64 + self.io_overshoot_ns
        }
    }

    /// Slow-down of a task's compute when `busy` cores of its node compute at once: `stream`
    /// tasks share the node's calibrated bandwidth; other `memory` tasks slow by `factor` per
    /// other busy core.
    pub(crate) fn contention(&self, calibration: &Calibration, busy: usize, factor: f64) -> f64 {
        if self.stream {
            calibration.multi.stream_slowdown(busy).unwrap_or(1.0)
        } else if self.memory {
            1.0 + factor * busy.saturating_sub(1) as f64
        } else {
            1.0
        }
    }
}

/// Tasks generated in a chunk, and chunks a helper thread may run ahead.
const CHUNK: usize = 8192;
const AHEAD: usize = 4;
/// Below this many tasks, generating them on the engine's own thread is cheaper than a helper.
const HELPER_FROM: u64 = 1 << 16;

/// The compute (before contention) and wait of each task, in id order. Drawing a task's size
/// (a log-normal needs a logarithm, a cosine and an exponential) costs as much as simulating
/// it, so for big workloads a helper thread draws them ahead, a few chunks at a time: the
/// engine stays one sequential event loop, and memory stays a few chunks whatever the count.
pub(crate) struct TaskStream<'a> {
    workload: &'a Workload,
    costs: &'a Costs,
    local: bool,
    helper: Option<std::sync::mpsc::Receiver<Vec<(f64, f64)>>>,
    next_id: u64,
    buf: Vec<(f64, f64)>,
    pos: usize,
}

impl TaskStream<'_> {
    /// The next task's (compute ns, wait ns). Called at most `tasks` times.
    pub(crate) fn next(&mut self) -> (f64, f64) {
        if self.pos == self.buf.len() {
            self.pos = 0;
            match &self.helper {
                Some(rx) => self.buf = rx.recv().unwrap_or_default(),
                None => {
                    let end = (self.next_id + CHUNK as u64).min(self.workload.tasks);
                    self.buf.clear();
                    self.buf.extend(
                        (self.next_id..end).map(|id| parts(self.workload, self.costs, id, self.local)),
                    );
                    self.next_id = end;
                }
            }
        }
        let part = self.buf.get(self.pos).copied().unwrap_or((0.0, 0.0));
        self.pos += 1;
        part
    }
}

pub(crate) fn parts(workload: &Workload, costs: &Costs, id: u64, local: bool) -> (f64, f64) {
    let task = workload.task(id);
    (costs.compute_ns(&task, local), costs.wait_ns(&task))
}

/// Runs `f` with the tasks of `workload` streamed in id order (drawn by a helper thread for
/// big workloads).
pub(crate) fn with_tasks<R>(
    workload: &Workload,
    costs: &Costs,
    local: bool,
    f: impl FnOnce(&mut TaskStream<'_>) -> R,
) -> R {
    let mut stream = TaskStream {
        workload,
        costs,
        local,
        helper: None,
        next_id: 0,
        buf: Vec::new(),
        pos: 0,
    };
    if workload.tasks < HELPER_FROM {
        return f(&mut stream);
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(AHEAD);
        scope.spawn(move || {
            let mut id = 0;
            while id < workload.tasks {
                let end = (id + CHUNK as u64).min(workload.tasks);
                let chunk: Vec<(f64, f64)> = (id..end).map(|i| parts(workload, costs, i, local)).collect();
                if tx.send(chunk).is_err() {
                    return;
                }
                id = end;
            }
        });
        stream.helper = Some(rx);
        let result = f(&mut stream);
        // Dropping the receiver stops a helper that is still ahead.
        drop(stream);
        result
    })
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is a valid precision")
}

pub(crate) fn record(h: &mut Histogram<u64>, ns: f64) {
    // Auto-resizing: recording cannot fail.
    let _ = h.record((ns as u64).max(1));
}

/// How a parallel phase ended, before the serial phase.
pub(crate) struct Parallel {
    /// When the last result was in.
    pub(crate) end: f64,
    /// When the first result reached the caller (`None`: no task ran).
    pub(crate) first: Option<f64>,
    /// Core time spent on tasks.
    pub(crate) busy: f64,
    /// Tasks completed.
    pub(crate) tasks: u64,
    /// Traffic, for the distributed tier.
    pub(crate) wire: Option<WireStats>,
    /// Events processed.
    pub(crate) events: u64,
    /// Time inside tasks per lane, ns.
    pub(crate) lanes: Vec<f64>,
}

/// Every tier's run ends the same way: the serial phase on one core after the parallel phase.
pub(crate) fn with_serial_phase(
    workload: &Workload,
    costs: &Costs,
    mut h: Histogram<u64>,
    p: Parallel,
) -> Run {
    let serial = workload.serial_task().map(|task| {
        let d = costs.compute_ns(&task, true) + costs.wait_ns(&task) + costs.record_ns;
        record(&mut h, d);
        d
    });
    let wall = p.end + serial.unwrap_or(0.0);
    Run {
        wall_ns: wall,
        first_result_ns: p.first.unwrap_or(wall),
        busy_ns: p.busy + serial.unwrap_or(0.0),
        latency_ns: h,
        tasks: p.tasks + u64::from(serial.is_some()),
        wire: p.wire,
        events: p.events,
        lanes_ns: p.lanes,
        serial_ns: serial.unwrap_or(0.0),
    }
}

/// The single tier: a plain loop on one core.
pub(crate) fn single(workload: &Workload, costs: &Costs) -> Run {
    let mut h = histogram();
    let mut t = 0.0;
    let mut first = None;
    with_tasks(workload, costs, true, |tasks| {
        for _ in 0..workload.tasks {
            let (compute, wait) = tasks.next();
            let d = compute + wait + costs.record_ns;
            record(&mut h, d);
            t += d;
            first.get_or_insert(t);
        }
    });
    let parallel = Parallel {
        end: t,
        first,
        busy: t,
        tasks: workload.tasks,
        wire: None,
        events: workload.tasks,
        lanes: vec![t],
    };
    with_serial_phase(workload, costs, h, parallel)
}

/// An event at a point in simulated time, with a tie-breaking sequence number: `time` holds
/// the bits of a non-negative `f64` (which order as the values do), so the heap compares two
/// integers.
#[derive(Clone, Copy, Debug)]
struct At<T> {
    time: u64,
    seq: u64,
    what: T,
}

impl<T> At<T> {
    fn key(&self) -> (u64, u64) {
        (self.time, self.seq)
    }
}

impl<T> PartialEq for At<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl<T> Eq for At<T> {}
impl<T> PartialOrd for At<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for At<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and the earliest event must come out first.
        other.key().cmp(&self.key())
    }
}

/// The event queue: ordered by time, then by scheduling order. Events whose times only ever
/// grow (messages leaving one network card, in order) wait in first-in-first-out lanes; the
/// rest in a heap. Popping takes the earliest head of all, so the order is exactly a single
/// heap's, at a fraction of the cost.
pub(crate) struct Queue<T> {
    heap: BinaryHeap<At<T>>,
    lanes: [VecDeque<At<T>>; 2],
    seq: u64,
}

impl<T> Queue<T> {
    pub(crate) fn new() -> Queue<T> {
        Queue {
            heap: BinaryHeap::new(),
            lanes: [VecDeque::new(), VecDeque::new()],
            seq: 0,
        }
    }
    fn at(&mut self, t: f64, what: T) -> At<T> {
        self.seq += 1;
        At {
            time: t.max(0.0).to_bits(),
            seq: self.seq,
            what,
        }
    }
    /// Schedules an event at any time from now on.
    pub(crate) fn push(&mut self, t: f64, what: T) {
        let at = self.at(t, what);
        self.heap.push(at);
    }
    /// Schedules an event in `lane`, no earlier than the last one scheduled there.
    pub(crate) fn push_lane(&mut self, lane: usize, t: f64, what: T) {
        let at = self.at(t, what);
        debug_assert!(
            self.lanes[lane].back().is_none_or(|b| b.time <= at.time),
            "lane times only grow"
        );
        self.lanes[lane].push_back(at);
    }
    pub(crate) fn pop(&mut self) -> Option<(f64, T)> {
        // The earliest of the heap's top and the lanes' fronts (smallest key).
        let mut best: Option<((u64, u64), usize)> = self.heap.peek().map(|a| (a.key(), usize::MAX));
        for (i, lane) in self.lanes.iter().enumerate() {
            if let Some(front) = lane.front()
                && best.is_none_or(|(k, _)| front.key() < k)
            {
                best = Some((front.key(), i));
            }
        }
        let (_, source) = best?;
        let at = if source == usize::MAX {
            self.heap.pop()?
        } else {
            self.lanes[source].pop_front()?
        };
        Some((f64::from_bits(at.time), at.what))
    }
}

/// The cores of one machine as a resource the model schedules. A burst of a task's CPU waits
/// for the first core free (first come, first served); the work of a thread that the OS runs
/// ahead of busy ones (an I/O thread woken by a message, a pool thread looking for work after a
/// wait) does not wait, but takes its time from the core that frees first, so the tasks after
/// it wait longer. Waits hold no core. A machine with a core for every thread it runs is
/// `unlimited`, and costs nothing to model.
pub(crate) struct Cpus {
    /// When each core is next free, as the bits of a non-negative `f64` (which order as the
    /// values do); empty when unlimited.
    free_at: BinaryHeap<Reverse<u64>>,
    /// Moving average of the bursts given to the cores, ns: how much of the queued work one
    /// waiting thread stands for.
    mean_burst_ns: f64,
}

impl Cpus {
    /// `cores` cores, or as many as asked for (`None`).
    pub(crate) fn new(cores: Option<usize>) -> Cpus {
        Cpus {
            free_at: (0..cores.unwrap_or(0)).map(|_| Reverse(0f64.to_bits())).collect(),
            mean_burst_ns: 0.0,
        }
    }

    fn seen(&mut self, ns: f64) {
        self.mean_burst_ns = 0.99 * self.mean_burst_ns + 0.01 * ns;
    }

    /// A burst of `ns` at `t` by a thread the OS shares the cores with, as a time-sharing
    /// scheduler does (an I/O thread woken by a message): it starts at once but, when threads
    /// wait for the cores, runs at the share one of them would get; returns when it ends. Its
    /// CPU is taken from the core that frees first.
    pub(crate) fn share(&mut self, t: f64, ns: f64) -> f64 {
        let cores = self.free_at.len();
        if cores == 0 {
            return t + ns;
        }
        // Threads waiting: the work queued on the cores, in bursts of the usual size.
        let queued: f64 = self
            .free_at
            .iter()
            .map(|c| (f64::from_bits(c.0) - t).max(0.0))
            .sum();
        let waiting = if self.mean_burst_ns > 0.0 {
            queued / self.mean_burst_ns
        } else {
            0.0
        };
        self.steal(t, ns);
        t + ns * ((waiting + cores as f64) / cores as f64)
    }

    /// A burst of `ns` ready at `t`; returns when it ends.
    pub(crate) fn run(&mut self, t: f64, ns: f64) -> f64 {
        if !self.free_at.is_empty() {
            self.seen(ns);
        }
        match self.free_at.peek_mut() {
            None => t + ns,
            Some(mut first) => {
                let end = t.max(f64::from_bits(first.0)) + ns;
                first.0 = end.to_bits();
                end
            }
        }
    }

    /// `ns` of CPU at `t` that does not wait for a core, taken from the one that frees first.
    pub(crate) fn steal(&mut self, t: f64, ns: f64) {
        if !self.free_at.is_empty() {
            self.seen(ns);
        }
        if let Some(mut first) = self.free_at.peek_mut() {
            first.0 = (t.max(f64::from_bits(first.0)) + ns).to_bits();
        }
    }
}

/// How much slower a task of `workload` computes on `threads` threads sharing `cores` cores,
/// as a factor: past the cores, `1 +` the calibrated dilation at that many threads for tasks
/// that compute and wait (each resumes after its wait on a core other threads used, caches
/// cold, and is cut into by their wake-ups); 1 otherwise.
pub(crate) fn dilation(workload: &Workload, calibration: &Calibration, threads: usize, cores: usize) -> f64 {
    if threads > cores && workload.kind.computes() && workload.kind.waits() {
        1.0 + calibration.multi.compute_dilation_at(threads)
    } else {
        1.0
    }
}

/// The multi tier: `threads` pool threads on one node take the tasks in order as they free
/// up (the real pool's threads take the next ids from one shared counter: a greedy list
/// schedule); each task pays the pool's hand-off; the run pays the pool's start and join. With
/// more threads than the node has cores (`cores`), compute waits for a core, and so does each
/// woken wait, for its calibrated cost.
pub(crate) fn multi(
    workload: &Workload,
    costs: &Costs,
    calibration: &Calibration,
    threads: usize,
    cores: usize,
    contention: f64,
) -> Run {
    let mut h = histogram();
    let start = calibration.multi.run_overhead_ns;
    let dispatch = calibration.multi.dispatch_ns;
    let slow = costs.contention(
        calibration,
        threads.min(workload.tasks as usize).min(cores),
        contention,
    ) * dilation(workload, calibration, threads, cores);
    let mut cpus = Cpus::new((threads > cores).then_some(cores));
    let wait_cpu = calibration.multi.wait_cpu_ns(threads);
    let mut free: Queue<usize> = Queue::new();
    for thread in 0..threads {
        free.push(start, thread);
    }
    let mut lanes = vec![0.0; threads];
    let (mut end, mut busy) = (start, 0.0);
    with_tasks(workload, costs, true, |tasks| {
        for _ in 0..workload.tasks {
            let (compute, wait) = tasks.next();
            let (t, thread) = free.pop().expect("the pool has threads");
            // A woken wait needs a core before its thread goes on (the kernel's wake-up, the
            // thread's return from its sleep): on the thread's path, queued as compute is.
            let woken = if wait > 0.0 { wait_cpu } else { 0.0 };
            let burst = compute * slow + dispatch + costs.record_ns;
            let done = cpus.run(t, burst + woken) + wait;
            record(&mut h, done - t);
            lanes[thread] += done - t;
            busy += burst;
            end = end.max(done);
            free.push(done, thread);
        }
    });
    let parallel = Parallel {
        end,
        // The multi tier's futures hand their results over when gathered, at the end.
        first: Some(end),
        busy,
        tasks: workload.tasks,
        wire: None,
        events: workload.tasks,
        lanes,
    };
    with_serial_phase(workload, costs, h, parallel)
}
