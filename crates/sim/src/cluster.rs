//! The simulated cluster: a config's `[cluster]` section with the gaps filled from the
//! calibration, in nanoseconds and bytes, plus the distributed runner's queueing rules (shared
//! with the real runner, so the model schedules as the runner does).

use martelli_config::ClusterSpec;

use crate::calibration::Calibration;

/// Cores per node when the config does not say: the top of the 2-8 core band, one machine.
pub const DEFAULT_CORES_PER_NODE: u32 = 8;
/// Work the distributed runner keeps queued per worker thread when tasks are tiny, ns.
pub const QUEUED_WORK_PER_THREAD_NS: f64 = 1e6;
/// Most tasks in flight per worker thread, whatever their size.
pub const MAX_DEPTH_PER_THREAD: usize = 1024;
/// Protobuf bytes of one task besides its payload (id, iterations, wait, attempt, framing).
pub const TASK_WIRE_BYTES: u64 = 48;
/// Protobuf bytes of one result (id, attempt, digest, latency, framing).
pub const RESULT_WIRE_BYTES: u64 = 28;
/// Results a worker thread groups into one message when tasks are short.
pub const RESULT_GROUP: u32 = 64;
/// Longest a finished result waits in a worker thread's group, ns.
pub const RESULT_GROUP_WAIT_NS: f64 = 200_000.0;

/// Tasks the distributed runner keeps in flight on a worker of `threads` threads, given the
/// mean task time seen so far: two per thread, or about a millisecond of work per thread for
/// tiny tasks; `fixed` (a cluster's `in_flight`) overrides the rule.
pub fn queue_depth(threads: usize, mean_task_ns: f64, fixed: Option<u32>) -> usize {
    if let Some(per_thread) = fixed {
        return threads * per_thread as usize;
    }
    let per_thread = if mean_task_ns > 0.0 {
        (2.0 * (QUEUED_WORK_PER_THREAD_NS / mean_task_ns).max(1.0)).min(MAX_DEPTH_PER_THREAD as f64) as usize
    } else {
        2
    };
    threads * per_thread
}

/// Most tasks of `payload_bytes` each in one message under a `max_message_bytes` limit: half
/// the limit, to leave room for framing.
pub fn batch_cap(max_message_bytes: usize, payload_bytes: u64) -> usize {
    ((max_message_bytes / 2) / (payload_bytes as usize + TASK_WIRE_BYTES as usize)).max(1)
}

/// A resolved cluster: every knob known, in nanoseconds and bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// Machines, one worker each.
    pub nodes: u32,
    /// Cores per machine.
    pub cores_per_node: u32,
    /// One-way latency node <-> coordinator, ns.
    pub latency_ns: f64,
    /// Bytes per nanosecond of each link and of the coordinator's own.
    pub bytes_per_ns: f64,
    /// Coordinator CPU per task sent, ns.
    pub dispatch_ns: f64,
    /// Coordinator CPU per result received, ns.
    pub result_ns: f64,
    /// Worker time per task beyond its work, ns.
    pub worker_ns: f64,
    /// Coordinator CPU per payload byte generated and encoded, ns.
    pub serialize_ns_per_byte: f64,
    /// Coordinator CPU per message sent or received, ns.
    pub coordinator_message_ns: f64,
    /// Worker CPU per message received or sent (its I/O thread), ns.
    pub worker_message_ns: f64,
    /// Fixed cost of one distributed run, ns.
    pub run_overhead_ns: f64,
    /// Cores of the one machine the nodes and the coordinator all share, if they do.
    pub colocated_cores: Option<u32>,
    /// Most tasks per message (`None`: the runner's rule, from the message limit).
    pub batch_size: Option<u32>,
    /// Tasks in flight per worker thread (`None`: the runner's adaptive rule).
    pub in_flight: Option<u32>,
    /// Slow-down of a `memory` task per other busy core of its node.
    pub memory_contention: f64,
    /// The message limit the runner batches under, bytes.
    pub max_message_bytes: usize,
}

impl Cluster {
    /// The cluster of `spec` (absent fields from `calibration`), with enough nodes for
    /// `max_cores` when the spec does not fix the count.
    pub fn resolve(spec: Option<&ClusterSpec>, calibration: &Calibration, max_cores: usize) -> Cluster {
        let default = ClusterSpec::default();
        let spec = spec.unwrap_or(&default);
        let d = &calibration.distributed;
        let cores_per_node = spec.cores_per_node.unwrap_or(DEFAULT_CORES_PER_NODE);
        let ns = |value: Option<std::time::Duration>, calibrated: f64| {
            value.map_or(calibrated, |v| v.as_nanos() as f64)
        };
        Cluster {
            nodes: spec
                .nodes
                .unwrap_or_else(|| (max_cores.div_ceil(cores_per_node as usize)).max(1) as u32),
            cores_per_node,
            latency_ns: ns(spec.latency, d.latency_us * 1e3),
            bytes_per_ns: spec.bandwidth.unwrap_or(d.bandwidth_mb_per_s * 1e6) / 1e9,
            dispatch_ns: ns(spec.dispatch_overhead, d.dispatch_ns),
            result_ns: ns(spec.result_overhead, d.result_ns),
            worker_ns: ns(spec.worker_overhead, d.worker_ns),
            serialize_ns_per_byte: spec
                .serialization
                .map_or(d.serialize_ns_per_byte, |rate| 1e9 / rate),
            coordinator_message_ns: d.coordinator_message_ns,
            worker_message_ns: d.worker_message_ns,
            run_overhead_ns: d.run_overhead_us * 1e3,
            colocated_cores: spec.colocated_cores,
            batch_size: spec.batch_size,
            in_flight: spec.in_flight,
            memory_contention: spec
                .memory_contention
                .unwrap_or(calibration.multi.memory_contention),
            max_message_bytes: 16 << 20,
        }
    }

    /// Total cores.
    pub fn cores(&self) -> u64 {
        u64::from(self.nodes) * u64::from(self.cores_per_node)
    }

    /// Worker threads per node for a run on `cores` cores: as few nodes as hold them, the
    /// cores spread evenly (as the distributed runner spreads them over its workers).
    pub fn spread(&self, cores: usize) -> Option<Vec<usize>> {
        let per_node = self.cores_per_node as usize;
        let used = cores.div_ceil(per_node).max(1);
        if used > self.nodes as usize || cores == 0 {
            return None;
        }
        Some(
            (0..used)
                .map(|i| cores / used + usize::from(i < cores % used))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_spread_over_as_few_nodes_as_hold_them() {
        let c = Cluster::resolve(None, &crate::calibration::example(), 64);
        assert_eq!(c.nodes, 8);
        assert_eq!(c.spread(16), Some(vec![8, 8]));
        assert_eq!(c.spread(12), Some(vec![6, 6]));
        assert_eq!(c.spread(9), Some(vec![5, 4]));
        assert_eq!(c.spread(65), None);
    }

    #[test]
    fn depth_follows_the_runners_rule() {
        assert_eq!(queue_depth(4, 0.0, None), 8);
        assert_eq!(queue_depth(4, 5e6, None), 8);
        assert_eq!(queue_depth(1, 1e3, None), 1024);
        assert_eq!(queue_depth(1, 1.0, None), MAX_DEPTH_PER_THREAD);
        assert_eq!(queue_depth(3, 1.0, Some(5)), 15);
        assert_eq!(batch_cap(1 << 20, 0), (1 << 19) / 48);
    }
}
