//! The distributed tier's model: a coordinator feeding nodes over links, as a state machine
//! that takes one event at a time ([`Event`]) and answers it with the next events.
//!
//! What to send, when, and to whom is decided by the runner's own policy
//! (`martelli-schedule`: [`Feed`], [`TaskQueue`], [`ResultGroup`], [`place`]): [`Coordinator`]
//! holds exactly the state the real coordinator holds, so the model schedules as the runner
//! does. Around it this file adds time: the coordinator's CPU and network card, each node's
//! cores, sender thread and link. CPU is a resource ([`Cpus`]): a task's compute, a node's
//! message handling and (when every process shares one machine) the coordinator's work hold a
//! core; waits hold none.

use std::collections::VecDeque;

use hdrhistogram::Histogram;
use martelli_calibration::Calibration;
use martelli_results::WireStats;
use martelli_schedule::{
    Feed, Lost, MAX_RESULTS_PER_MESSAGE, Policy, ResultGroup, TaskQueue, batch_cap, results_message_bytes,
    tasks_message_bytes,
};
use martelli_workload::Workload;

use crate::cluster::Cluster;
use crate::engine::{
    Costs, Cpus, Parallel, Queue, Run, TaskStream, dilation, histogram, parts, record, with_serial_phase,
    with_tasks,
};

/// The coordinator's decisions in one run: which tasks go to which node, and which results
/// count. The same policy objects the real coordinator's drivers hold, one [`Feed`] per node.
pub struct Coordinator {
    queue: TaskQueue,
    feeds: Vec<Feed>,
    batch: Vec<(u64, u32)>,
}

impl Coordinator {
    /// A run of `total` tasks over nodes of `threads` threads each fed by `policy`, `cap`
    /// tasks a message at most, `fixed` tasks in flight per thread (or the policy's rule).
    pub fn new(policy: Policy, total: u64, threads: &[usize], fixed: Option<u32>, cap: usize) -> Coordinator {
        Coordinator {
            queue: TaskQueue::new(total, threads.iter().sum()),
            feeds: threads
                .iter()
                .map(|&t| Feed::new(policy, t, fixed, cap))
                .collect(),
            batch: Vec::new(),
        }
    }

    /// The next message of tasks for `node`, `(id, attempt)` each; empty when it gets none now.
    pub fn next_batch(&mut self, node: usize) -> &[(u64, u32)] {
        self.feeds[node].refill(&mut self.queue, &mut self.batch);
        &self.batch
    }

    /// The result of task `id` from `node`, after `latency_ns` of running: true when it counts.
    pub fn result(&mut self, node: usize, id: u64, latency_ns: u64) -> bool {
        self.feeds[node].result(&mut self.queue, id, latency_ns)
    }

    /// `node` was lost with `in_flight` tasks: they go back to the queue (in id order).
    pub fn lost(&mut self, node: usize, mut in_flight: Vec<(u64, u32)>) -> Result<(), Lost> {
        self.feeds[node].lost();
        in_flight.sort_unstable();
        self.queue.requeue(in_flight)
    }

    /// True when every task has a result.
    pub fn all_done(&self) -> bool {
        self.queue.all_done()
    }
}

/// Events of the distributed tier, in simulated time.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// A message of `count` tasks reaches `node`'s card: its I/O thread reads it.
    Arrive { node: u32, count: u32 },
    /// The I/O thread of `node` has read a message of `count` tasks: threads can take them.
    Ready { node: u32, count: u32 },
    /// A thread of `node` finished task `id` (its start is the node's `started[thread]`).
    Done { node: u32, thread: u32, id: u64 },
    /// The sender thread of `node` finished handing a message over; more results may wait.
    SenderFree { node: u32 },
    /// A message of `count` results from `node` reaches the coordinator.
    Results { node: u32, count: u32 },
}

/// One worker machine.
struct Node {
    /// Tasks arrived or on their way, not started: (id, compute ns, wait ns); the first
    /// `arrived` of them have reached the node (messages arrive in the order they were sent).
    queue: VecDeque<(u64, f64, f64)>,
    arrived: usize,
    /// Threads with nothing to run.
    idle: Vec<u32>,
    /// When each thread started its task, ns.
    started: Vec<f64>,
    /// Each thread's results not yet handed to the sender (the worker's per-thread group).
    groups: Vec<ResultGroup>,
    /// Results grouped per thread: (id, latency ns), handed to the sender at once in the model.
    grouped: Vec<Vec<(u64, u64)>>,
    /// Results handed to the sender and not yet sent.
    pending: Vec<(u64, u64)>,
    /// When the sender thread is next free, and whether a `SenderFree` event is due.
    sender_free: f64,
    sender_due: bool,
    /// Results on the wire to the coordinator, in order.
    transit: VecDeque<(u64, u64)>,
    /// Which core pool the node's threads use (its own, or the one machine all share).
    pool: usize,
    /// When the node's link is next free to send.
    link_free: f64,
    /// Compute slow-down on this node: memory contention, and compute between waits on threads
    /// past their cores (`dilation`).
    slow: f64,
    /// CPU of the node's tasks.
    busy_ns: f64,
    /// Time inside tasks per thread, ns.
    useful: Vec<f64>,
}

/// Fixed costs of the run, resolved once.
struct Knobs {
    /// Coordinator CPU per task sent: dispatch and payload encoding.
    send_task_ns: f64,
    payload_bytes: u64,
    /// Worker CPU per task besides its work.
    worker_ns: f64,
    /// Worker pool CPU per wait, at this node size.
    wait_cpu: Vec<f64>,
    /// Whether the coordinator shares the nodes' cores (one machine).
    colocated: bool,
}

/// The whole simulated run: the coordinator's decisions plus everything that takes time.
struct Sim<'a> {
    cluster: &'a Cluster,
    knobs: Knobs,
    coordinator: Coordinator,
    nodes: Vec<Node>,
    /// Core pools: one per node, or one shared by every node and the coordinator.
    cpus: Vec<Cpus>,
    events: Queue<Event>,
    h: Histogram<u64>,
    wire: WireStats,
    /// When the coordinator's thread is next free, and its card's two directions.
    cpu_free: f64,
    nic_out: f64,
    nic_in: f64,
    first: f64,
    end: f64,
    processed: u64,
    /// Times a thread found no task arrived and went idle until the next batch.
    starved: u64,
}

/// The distributed tier on `spread` (threads per node): the coordinator keeps each node's
/// queue filled by the runner's policy, the serial phase runs on it after the last result.
pub(crate) fn distributed(
    workload: &Workload,
    costs: &Costs,
    calibration: &Calibration,
    cluster: &Cluster,
    spread: &[usize],
) -> Run {
    with_tasks(workload, costs, false, |tasks| {
        let mut sim = Sim::new(workload, costs, calibration, cluster, spread);
        let parallel = sim.run(workload, costs, tasks);
        with_serial_phase(workload, costs, sim.h, parallel)
    })
}

impl<'a> Sim<'a> {
    fn new(
        workload: &Workload,
        costs: &Costs,
        calibration: &Calibration,
        cluster: &'a Cluster,
        spread: &[usize],
    ) -> Sim<'a> {
        let cap = cluster.batch_size.map_or_else(
            || batch_cap(cluster.max_message_bytes, workload.payload_bytes),
            |b| b as usize,
        );
        let colocated = cluster.colocated_cores.is_some();
        let per_node = cluster.cores_per_node as usize;
        // A node's threads plus its sender need a core each to never wait for one.
        let cpus: Vec<Cpus> = match cluster.colocated_cores {
            Some(cores) => vec![Cpus::new(Some(cores as usize))],
            None => spread
                .iter()
                .map(|&threads| Cpus::new((threads >= per_node).then_some(per_node)))
                .collect(),
        };
        // The threads that share a node's cores, and those cores: every node's on the one
        // machine, or the node's own.
        let all_threads: usize = spread.iter().sum();
        let sharing = |threads: usize| match cluster.colocated_cores {
            Some(cores) => (all_threads, cores as usize),
            None => (threads, per_node),
        };
        let nodes = spread
            .iter()
            .enumerate()
            .map(|(i, &threads)| Node {
                queue: VecDeque::new(),
                arrived: 0,
                idle: (0..threads as u32).rev().collect(),
                started: vec![0.0; threads],
                groups: vec![ResultGroup::new(0, cluster.policy.result_wait_ns()); threads],
                grouped: vec![Vec::new(); threads],
                pending: Vec::new(),
                sender_free: 0.0,
                sender_due: false,
                transit: VecDeque::new(),
                pool: if colocated { 0 } else { i },
                link_free: 0.0,
                slow: {
                    // Nodes on one machine share its memory: all their threads are busy on it.
                    let (threads, cores) = sharing(threads);
                    costs.contention(calibration, threads.min(cores), cluster.memory_contention)
                        * dilation(workload, calibration, threads, cores)
                },
                busy_ns: 0.0,
                useful: vec![0.0; threads],
            })
            .collect();
        Sim {
            cluster,
            knobs: Knobs {
                send_task_ns: cluster.network.dispatch_ns
                    + workload.payload_bytes as f64 * cluster.network.serialize_ns_per_byte,
                payload_bytes: workload.payload_bytes,
                worker_ns: cluster.network.worker_ns,
                wait_cpu: spread
                    .iter()
                    .map(|&t| calibration.distributed.worker_wait_cpu_ns(t))
                    .collect(),
                colocated,
            },
            coordinator: Coordinator::new(cluster.policy, workload.tasks, spread, cluster.in_flight, cap),
            nodes,
            cpus,
            events: Queue::new(),
            h: histogram(),
            wire: WireStats {
                workers: spread.len() as u64,
                ..WireStats::default()
            },
            cpu_free: cluster.network.run_overhead_ns(),
            nic_out: 0.0,
            nic_in: 0.0,
            first: f64::INFINITY,
            end: cluster.network.run_overhead_ns(),
            processed: 0,
            starved: 0,
        }
    }

    /// Runs events until every task has its result.
    fn run(&mut self, workload: &Workload, costs: &Costs, tasks: &mut TaskStream<'_>) -> Parallel {
        for node in 0..self.nodes.len() {
            self.refill(node, workload, costs, tasks);
        }
        while !self.coordinator.all_done() {
            let Some((t, event)) = self.events.pop() else {
                break;
            };
            self.processed += 1;
            match event {
                Event::Arrive { node, count } => {
                    let pool = self.nodes[node as usize].pool;
                    let read = self.cpus[pool].share(t, self.cluster.network.worker_message_ns);
                    self.events.push(read, Event::Ready { node, count });
                }
                Event::Ready { node, count } => self.arrive(t, node as usize, count as usize),
                Event::Done { node, thread, id } => self.done(t, node as usize, thread, id),
                Event::SenderFree { node } => {
                    self.nodes[node as usize].sender_due = false;
                    self.send_results(t, node as usize);
                }
                Event::Results { node, count } => {
                    self.results(t, node as usize, count as usize);
                    self.refill(node as usize, workload, costs, tasks);
                }
            }
        }
        Parallel {
            end: self.end,
            first: self.first.is_finite().then_some(self.first),
            busy: self.nodes.iter().map(|n| n.busy_ns).sum(),
            tasks: self.coordinator.queue.completed(),
            wire: Some(WireStats {
                reissued_tasks: self.coordinator.queue.reissued(),
                starved_takes: self.starved,
                ..self.wire
            }),
            events: self.processed,
            lanes: self.nodes.iter().flat_map(|n| n.useful.iter().copied()).collect(),
        }
    }

    /// The coordinator's CPU for `ns` from `t` on (its one thread; a core of the shared
    /// machine when colocated); returns when it is done.
    fn coordinator_cpu(&mut self, t: f64, ns: f64) -> f64 {
        let start = self.cpu_free.max(t);
        if self.knobs.colocated {
            self.cpus[0].steal(start, ns);
        }
        self.cpu_free = start + ns;
        self.cpu_free
    }

    /// Sends `node` what the policy says, one message at a time, until it says stop.
    fn refill(&mut self, node: usize, workload: &Workload, costs: &Costs, tasks: &mut TaskStream<'_>) {
        loop {
            let count = self.coordinator.next_batch(node).len();
            if count == 0 {
                return;
            }
            let cost = self.cluster.network.coordinator_message_ns + count as f64 * self.knobs.send_task_ns;
            let encoded = self.coordinator_cpu(self.cpu_free, cost);
            let bytes = tasks_message_bytes(count as u64, self.knobs.payload_bytes);
            self.nic_out = encoded.max(self.nic_out) + bytes as f64 / self.cluster.network.bytes_per_ns();
            let n = &mut self.nodes[node];
            for &(id, attempt) in &self.coordinator.batch {
                // New tasks come in id order, as the stream draws them; a re-sent one is drawn
                // again from its id.
                let (compute, wait) = if attempt == 0 {
                    tasks.next()
                } else {
                    parts(workload, costs, id, false)
                };
                n.queue.push_back((id, compute, wait));
            }
            // Messages leave the coordinator's card in order, so arrivals come in time order.
            self.events.push_lane(
                0,
                self.nic_out + self.cluster.network.latency_ns(),
                Event::Arrive {
                    node: node as u32,
                    count: count as u32,
                },
            );
            self.wire.bytes_sent += bytes;
            self.wire.rpc_batches += 1;
        }
    }

    /// The I/O thread of `node` has read a message of `count` tasks (a thread the OS shares
    /// the cores with, as the sender is: on a busy machine it reads late): idle threads start.
    fn arrive(&mut self, t: f64, node: usize, count: usize) {
        self.nodes[node].arrived += count;
        while let Some(&thread) = self.nodes[node].idle.last() {
            if !self.start_task(t, node, thread) {
                break;
            }
            self.nodes[node].idle.pop();
        }
    }

    /// A thread of `node` takes its next arrived task at `t`, if there is one.
    fn start_task(&mut self, t: f64, node: usize, thread: u32) -> bool {
        let n = &mut self.nodes[node];
        if n.arrived == 0 {
            return false;
        }
        let Some((id, compute, wait)) = n.queue.pop_front() else {
            return false;
        };
        n.arrived -= 1;
        let burst = compute * n.slow + self.knobs.worker_ns;
        n.busy_ns += burst;
        let cpus = &mut self.cpus[n.pool];
        // A woken wait needs a core before its thread goes on, queued as compute is.
        let woken = if wait > 0.0 {
            self.knobs.wait_cpu[node]
        } else {
            0.0
        };
        let done = cpus.run(t, burst + woken) + wait;
        record(&mut self.h, done - t);
        n.useful[thread as usize] += done - t;
        n.started[thread as usize] = t;
        self.events.push(
            done,
            Event::Done {
                node: node as u32,
                thread,
                id,
            },
        );
        true
    }

    /// A thread of `node` finished task `id`: its result joins the thread's group, which goes
    /// to the sender when the policy says or when the thread has nothing more to run.
    fn done(&mut self, t: f64, node: usize, thread: u32, id: u64) {
        let now = t as u64;
        let n = &mut self.nodes[node];
        let th = thread as usize;
        n.grouped[th].push((id, (t - n.started[th]) as u64));
        let mut hand_over = n.groups[th].push(now);
        let started = self.start_task(t, node, thread);
        let n = &mut self.nodes[node];
        if !started {
            self.starved += 1;
            n.idle.push(thread);
            hand_over = true;
            n.groups[th].handed_over(now);
        }
        if hand_over {
            // Drained, not taken: each thread's buffer keeps its capacity.
            let Node { grouped, pending, .. } = n;
            pending.append(&mut grouped[th]);
            self.send_results(t, node);
        }
    }

    /// The sender of `node` sends what is pending, as one message, when it is free; else it
    /// comes back when it is (results that wait meanwhile travel together).
    fn send_results(&mut self, t: f64, node: usize) {
        let n = &mut self.nodes[node];
        if n.pending.is_empty() {
            return;
        }
        if n.sender_free > t {
            if !n.sender_due {
                n.sender_due = true;
                self.events
                    .push(n.sender_free, Event::SenderFree { node: node as u32 });
            }
            return;
        }
        let count = n.pending.len().min(MAX_RESULTS_PER_MESSAGE);
        n.transit.extend(n.pending.drain(..count));
        let bytes = results_message_bytes(count as u64);
        // The sender shares the cores with every other thread: on a busy machine it runs
        // late, and more results travel together in its next message.
        let handled = self.cpus[n.pool].share(t, self.cluster.network.worker_message_ns);
        n.sender_free = handled;
        let leave = handled.max(n.link_free);
        n.link_free = leave + bytes as f64 / self.cluster.network.bytes_per_ns();
        let reach = (n.link_free + self.cluster.network.latency_ns()).max(self.nic_in);
        self.nic_in = reach + bytes as f64 / self.cluster.network.bytes_per_ns();
        // Results enter the coordinator's card in order: their times only grow.
        self.events.push_lane(
            1,
            self.nic_in,
            Event::Results {
                node: node as u32,
                count: count as u32,
            },
        );
        self.wire.bytes_received += bytes;
        self.wire.rpc_batches += 1;
        if !n.pending.is_empty() && !n.sender_due {
            n.sender_due = true;
            self.events.push(handled, Event::SenderFree { node: node as u32 });
        }
    }

    /// A message of results from `node` reached the coordinator, which takes each in.
    fn results(&mut self, t: f64, node: usize, count: usize) {
        let cost =
            self.cluster.network.coordinator_message_ns + count as f64 * self.cluster.network.result_ns;
        let handled = self.coordinator_cpu(t, cost);
        self.first = self.first.min(handled);
        self.end = self.end.max(handled);
        for _ in 0..count {
            let Some((id, latency)) = self.nodes[node].transit.pop_front() else {
                break;
            };
            if !self.coordinator.result(node, id, latency) {
                self.wire.dropped_results += 1;
            }
        }
    }
}
