//! The discrete-event engine: an event queue in simulated time (nanoseconds, `f64`), no threads
//! and no sleeps. Ties are broken by the order events were scheduled, so a run is a pure
//! function of its inputs: the same workload (seed) and cluster give the same prediction.
//!
//! Tasks are generated lazily from their ids, as the real tiers do; the queue holds at most a
//! few events per core, so memory does not grow with the task count.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use hdrhistogram::Histogram;
use martelli_results::WireStats;
use martelli_workload::{Kind, Task, Workload};

use crate::calibration::Calibration;
use crate::cluster::{
    Cluster, RESULT_GROUP, RESULT_GROUP_WAIT_NS, RESULT_WIRE_BYTES, TASK_WIRE_BYTES, batch_cap, queue_depth,
};

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
}

/// What one task costs on this machine, from the calibration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Costs {
    per_iteration_ns: f64,
    fixed_ns: f64,
    record_ns: f64,
    payload_local_ns: f64,
    payload_remote_ns: f64,
    io_overshoot_ns: f64,
    memory: bool,
}

impl Costs {
    pub(crate) fn new(workload: &Workload, calibration: &Calibration) -> Costs {
        let k = &calibration.kernels;
        let bytes = workload.payload_bytes as f64;
        Costs {
            per_iteration_ns: match workload.kind {
                Kind::Cpu | Kind::Mixed => k.cpu_ns_per_iteration,
                Kind::Memory => k.memory_ns_per_iteration(workload.working_set),
                Kind::Io => 0.0,
            },
            fixed_ns: k.task_fixed_ns,
            record_ns: k.record_ns,
            payload_local_ns: bytes * (k.payload_generate_ns_per_byte + k.payload_read_ns_per_byte),
            payload_remote_ns: bytes * k.payload_read_ns_per_byte,
            io_overshoot_ns: k.io_overshoot_ns,
            memory: workload.kind == Kind::Memory,
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
    fn compute_ns(&self, task: &Task, local: bool) -> f64 {
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
    fn wait_ns(&self, task: &Task) -> f64 {
        if task.io_wait_ns == 0 {
            0.0
        } else {
            task.io_wait_ns as f64 + self.io_overshoot_ns
        }
    }

    /// Slow-down of a task's compute when `busy` cores of its node compute at once.
    fn contention(&self, busy: usize, factor: f64) -> f64 {
        if self.memory {
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
struct TaskStream<'a> {
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
    fn next(&mut self) -> (f64, f64) {
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

fn parts(workload: &Workload, costs: &Costs, id: u64, local: bool) -> (f64, f64) {
    let task = workload.task(id);
    (costs.compute_ns(&task, local), costs.wait_ns(&task))
}

/// Runs `f` with the tasks of `workload` streamed in id order (drawn by a helper thread for
/// big workloads).
fn with_tasks<R>(
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

fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant figures is a valid precision")
}

fn record(h: &mut Histogram<u64>, ns: f64) {
    // Auto-resizing: recording cannot fail.
    let _ = h.record((ns as u64).max(1));
}

/// How a parallel phase ended, before the serial phase.
struct Parallel {
    /// When the last result was in.
    end: f64,
    /// When the first result reached the caller (`None`: no task ran).
    first: Option<f64>,
    /// Core time spent on tasks.
    busy: f64,
    /// Tasks completed.
    tasks: u64,
    /// Traffic, for the distributed tier.
    wire: Option<WireStats>,
    /// Events processed.
    events: u64,
}

/// Every tier's run ends the same way: the serial phase on one core after the parallel phase.
fn with_serial_phase(workload: &Workload, costs: &Costs, mut h: Histogram<u64>, p: Parallel) -> Run {
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
    };
    with_serial_phase(workload, costs, h, parallel)
}

/// An event at a point in simulated time, with a tie-breaking sequence number, packed into
/// one integer key (`t` is never negative, and the bits of a non-negative `f64` order as the
/// value does), so the heap compares one `u128`.
#[derive(Clone, Copy, Debug)]
struct At<T> {
    key: u128,
    what: T,
}

impl<T> PartialEq for At<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
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
        other.key.cmp(&self.key)
    }
}

/// The event queue: ordered by time, then by scheduling order. Events whose times only ever
/// grow (messages leaving one network card, in order) wait in first-in-first-out lanes; the
/// rest in a heap. Popping takes the earliest head of all, so the order is exactly a single
/// heap's, at a fraction of the cost.
struct Queue<T> {
    heap: BinaryHeap<At<T>>,
    lanes: [VecDeque<At<T>>; 2],
    seq: u64,
}

impl<T> Queue<T> {
    fn new() -> Queue<T> {
        Queue {
            heap: BinaryHeap::new(),
            lanes: [VecDeque::new(), VecDeque::new()],
            seq: 0,
        }
    }
    fn at(&mut self, t: f64, what: T) -> At<T> {
        self.seq += 1;
        At {
            key: (u128::from(t.max(0.0).to_bits()) << 64) | u128::from(self.seq),
            what,
        }
    }
    /// Schedules an event at any time from now on.
    fn push(&mut self, t: f64, what: T) {
        let at = self.at(t, what);
        self.heap.push(at);
    }
    /// Schedules an event in `lane`, no earlier than the last one scheduled there.
    fn push_lane(&mut self, lane: usize, t: f64, what: T) {
        let at = self.at(t, what);
        debug_assert!(
            self.lanes[lane]
                .back()
                .is_none_or(|b| b.key >> 64 <= at.key >> 64),
            "lane times only grow"
        );
        self.lanes[lane].push_back(at);
    }
    fn pop(&mut self) -> Option<(f64, T)> {
        // The earliest of the heap's top and the lanes' fronts (smallest key).
        let mut best: Option<(u128, usize)> = self.heap.peek().map(|a| (a.key, usize::MAX));
        for (i, lane) in self.lanes.iter().enumerate() {
            if let Some(front) = lane.front()
                && best.is_none_or(|(k, _)| front.key < k)
            {
                best = Some((front.key, i));
            }
        }
        let (_, source) = best?;
        let at = if source == usize::MAX {
            self.heap.pop()?
        } else {
            self.lanes[source].pop_front()?
        };
        Some((f64::from_bits((at.key >> 64) as u64), at.what))
    }
}

/// The multi tier: `threads` pool threads on one node take the tasks in order as they free
/// up (rayon's stealing balances as a greedy list schedule does); each task pays the pool's
/// hand-off; the run pays the pool's start and join.
pub(crate) fn multi(
    workload: &Workload,
    costs: &Costs,
    calibration: &Calibration,
    threads: usize,
    contention: f64,
) -> Run {
    let mut h = histogram();
    let start = calibration.multi.run_overhead_ns;
    let dispatch = calibration.multi.dispatch_ns;
    let slow = costs.contention(threads.min(workload.tasks as usize), contention);
    let mut free: Queue<()> = Queue::new();
    for _ in 0..threads {
        free.push(start, ());
    }
    let (mut end, mut busy) = (start, 0.0);
    with_tasks(workload, costs, true, |tasks| {
        for _ in 0..workload.tasks {
            let (compute, wait) = tasks.next();
            let (t, ()) = free.pop().expect("the pool has threads");
            let d = compute * slow + dispatch + costs.record_ns + wait;
            record(&mut h, d);
            let done = t + d;
            busy += d;
            end = end.max(done);
            free.push(done, ());
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
    };
    with_serial_phase(workload, costs, h, parallel)
}

/// Events of the distributed tier.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// A batch of `count` tasks reaches a node (the next `count` of its queue can start).
    Arrive { node: u32, count: u32 },
    /// A thread of a node finished a task that took `d` ns.
    Done { node: u32, d: f64 },
    /// A result message of `count` results (their task times adding up to `d`) reaches the
    /// coordinator.
    Results { node: u32, count: u32, d: f64 },
}

/// One worker machine in the distributed model.
struct Node {
    threads: usize,
    /// Tasks sent and not yet answered, as the coordinator counts them.
    in_flight: usize,
    /// Sum and count of task times answered so far (the runner's depth adapts to the mean).
    answered_ns: f64,
    answered: u64,
    /// Tasks sent and not started, (compute ns, wait ns) each; the first `arrived` of them
    /// have reached the node (batches arrive in the order they were sent).
    queue: VecDeque<(f64, f64)>,
    arrived: usize,
    idle: usize,
    /// When the node's link is next free to send.
    link_free: f64,
    /// Results waiting in the node's group, their task time, and when the group was last sent.
    group: u32,
    group_ns: f64,
    last_flush: f64,
    /// Compute slow-down from memory contention on this node.
    slow: f64,
    /// Core time of the node's tasks, and of its I/O thread's message handling.
    busy_ns: f64,
    io_ns: f64,
}

/// The distributed tier: a coordinator feeding workers over links. The coordinator's CPU and
/// network card are each one queue (every node's traffic contends for them); each node's link
/// is another; a message waits for its link, crosses at the link's bandwidth, then pays the
/// latency. The coordinator keeps each node's queue filled by the runner's own rules (depth
/// per thread, refill at half depth, batches capped by the message limit), and the serial
/// phase runs on the coordinator after the last result.
pub(crate) fn distributed(workload: &Workload, costs: &Costs, cluster: &Cluster, spread: &[usize]) -> Run {
    with_tasks(workload, costs, false, |tasks| {
        distributed_loop(workload, costs, cluster, spread, tasks)
    })
}

fn distributed_loop(
    workload: &Workload,
    costs: &Costs,
    cluster: &Cluster,
    spread: &[usize],
    tasks: &mut TaskStream<'_>,
) -> Run {
    let total = workload.tasks;
    let mut h = histogram();
    let mut wire = WireStats {
        workers: spread.len() as u64,
        ..WireStats::default()
    };
    let mut nodes: Vec<Node> = spread
        .iter()
        .map(|&threads| Node {
            threads,
            in_flight: 0,
            answered_ns: 0.0,
            answered: 0,
            queue: VecDeque::new(),
            arrived: 0,
            idle: threads,
            link_free: 0.0,
            group: 0,
            group_ns: 0.0,
            last_flush: 0.0,
            slow: costs.contention(threads, cluster.memory_contention),
            busy_ns: 0.0,
            io_ns: 0.0,
        })
        .collect();
    let cap = cluster.batch_size.map_or_else(
        || batch_cap(cluster.max_message_bytes, workload.payload_bytes),
        |b| b as usize,
    );
    let send_task_ns = cluster.dispatch_ns + workload.payload_bytes as f64 * cluster.serialize_ns_per_byte;
    let task_bytes = workload.payload_bytes + TASK_WIRE_BYTES;

    let mut events: Queue<Event> = Queue::new();
    let mut next = 0u64;
    let mut cpu_free = cluster.run_overhead_ns;
    let mut nic_out = 0.0f64;
    let mut nic_in = 0.0f64;
    let mut completed = 0u64;
    let mut first = f64::INFINITY;
    let mut end = cpu_free;
    let mut coordinator_ns = 0.0;
    let mut processed = 0u64;

    // Tops up a node's queue as the runner's driver does; returns nothing, schedules arrivals.
    let mut refill = |node: usize,
                      nodes: &mut [Node],
                      next: &mut u64,
                      cpu_free: &mut f64,
                      nic_out: &mut f64,
                      events: &mut Queue<Event>,
                      wire: &mut WireStats,
                      sent_ns: &mut f64| {
        let n = &mut nodes[node];
        loop {
            let mean = if n.answered > 0 {
                n.answered_ns / n.answered as f64
            } else {
                0.0
            };
            let depth = queue_depth(n.threads, mean, cluster.in_flight);
            let free = depth.saturating_sub(n.in_flight);
            let want = if free >= depth.div_ceil(2) || n.in_flight == 0 {
                free.min(cap)
            } else {
                0
            };
            let count = (want as u64).min(total - *next);
            if count == 0 {
                return;
            }
            let bytes = count * task_bytes + 16;
            let cost = cluster.coordinator_message_ns + count as f64 * send_task_ns;
            *cpu_free += cost;
            *sent_ns += cost;
            let leave = cpu_free.max(*nic_out);
            *nic_out = leave + bytes as f64 / cluster.bytes_per_ns;
            n.queue.extend((0..count).map(|_| tasks.next()));
            // Batches leave the coordinator's card in order, so arrivals come in time order.
            events.push_lane(
                0,
                *nic_out + cluster.latency_ns,
                Event::Arrive {
                    node: node as u32,
                    count: count as u32,
                },
            );
            *next += count;
            n.in_flight += count as usize;
            wire.bytes_sent += bytes;
            wire.rpc_batches += 1;
        }
    };

    for node in 0..nodes.len() {
        refill(
            node,
            &mut nodes,
            &mut next,
            &mut cpu_free,
            &mut nic_out,
            &mut events,
            &mut wire,
            &mut coordinator_ns,
        );
    }
    // A thread of `node` starts a task at `t`; returns its duration.
    let start_task = |n: &Node,
                      node: u32,
                      t: f64,
                      (compute, wait): (f64, f64),
                      events: &mut Queue<Event>,
                      h: &mut Histogram<u64>| {
        let d = compute * n.slow + cluster.worker_ns + wait;
        record(h, d);
        events.push(t + d, Event::Done { node, d });
        d
    };
    while completed < total {
        let Some((t, event)) = events.pop() else { break };
        processed += 1;
        match event {
            Event::Arrive { node, count } => {
                let n = &mut nodes[node as usize];
                n.arrived += count as usize;
                n.io_ns += cluster.worker_message_ns;
                while n.idle > 0 {
                    let Some(task) = pop_task(n) else { break };
                    n.idle -= 1;
                    n.busy_ns += start_task(n, node, t, task, &mut events, &mut h);
                }
            }
            Event::Done { node, d } => {
                let n = &mut nodes[node as usize];
                n.group += 1;
                n.group_ns += d;
                let next_task = pop_task(n);
                // A worker thread sends a result at once when its task took a while, else in
                // groups (of its own results; the node's group stands for its threads').
                let flush = d >= RESULT_GROUP_WAIT_NS
                    || n.group >= RESULT_GROUP * n.threads as u32
                    || t - n.last_flush >= RESULT_GROUP_WAIT_NS
                    || next_task.is_none();
                if flush {
                    let bytes = u64::from(n.group) * RESULT_WIRE_BYTES + 16;
                    let leave = t.max(n.link_free);
                    n.link_free = leave + bytes as f64 / cluster.bytes_per_ns;
                    let reach = (n.link_free + cluster.latency_ns).max(nic_in);
                    nic_in = reach + bytes as f64 / cluster.bytes_per_ns;
                    // Results enter the coordinator's card in order: their times only grow.
                    events.push_lane(
                        1,
                        nic_in,
                        Event::Results {
                            node,
                            count: n.group,
                            d: n.group_ns,
                        },
                    );
                    wire.bytes_received += bytes;
                    wire.rpc_batches += 1;
                    n.io_ns += cluster.worker_message_ns;
                    n.group = 0;
                    n.group_ns = 0.0;
                    n.last_flush = t;
                }
                match next_task {
                    Some(task) => {
                        n.busy_ns += start_task(n, node, t, task, &mut events, &mut h);
                    }
                    None => n.idle += 1,
                }
            }
            Event::Results { node, count, d } => {
                cpu_free =
                    cpu_free.max(t) + cluster.coordinator_message_ns + f64::from(count) * cluster.result_ns;
                coordinator_ns += cluster.coordinator_message_ns + f64::from(count) * cluster.result_ns;
                first = first.min(cpu_free);
                end = end.max(cpu_free);
                completed += u64::from(count);
                let n = &mut nodes[node as usize];
                n.in_flight -= count as usize;
                n.answered += u64::from(count);
                n.answered_ns += d;
                refill(
                    node as usize,
                    &mut nodes,
                    &mut next,
                    &mut cpu_free,
                    &mut nic_out,
                    &mut events,
                    &mut wire,
                    &mut coordinator_ns,
                );
            }
        }
    }
    // The event queue gives each task a core to itself, but message handling needs CPU too:
    // a node's I/O thread shares the node's cores with its task threads, and when every
    // process runs on one machine (local workers) all of them share its cores. No run can be
    // shorter than its CPU demand spread over the cores it has.
    let busy: f64 = nodes.iter().map(|n| n.busy_ns).sum();
    for (n, &threads) in nodes.iter().zip(spread) {
        if threads >= cluster.cores_per_node as usize {
            end = end.max((n.busy_ns + n.io_ns) / cluster.cores_per_node as f64);
        }
    }
    if let Some(cores) = cluster.colocated_cores {
        let io: f64 = nodes.iter().map(|n| n.io_ns).sum();
        end = end.max((busy + io + coordinator_ns) / f64::from(cores));
    }
    let parallel = Parallel {
        end,
        first: first.is_finite().then_some(first),
        busy,
        tasks: completed,
        wire: Some(wire),
        events: processed,
    };
    with_serial_phase(workload, costs, h, parallel)
}

/// Takes the next arrived task from a node's queue.
fn pop_task(n: &mut Node) -> Option<(f64, f64)> {
    if n.arrived == 0 {
        return None;
    }
    n.arrived -= 1;
    n.queue.pop_front()
}
