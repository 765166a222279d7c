//! The simulated cluster: a config's `[cluster]` section with the gaps filled from the
//! calibration (whose `NetworkCosts` it holds as they are). Placement and queueing come from the runner's own
//! policy (`martelli-schedule`), not from here.

use martelli_calibration::{Calibration, NetworkCosts};
use martelli_config::ClusterSpec;
use martelli_schedule::{DEFAULT_MAX_MESSAGE_BYTES, Policy, place};

/// Cores per node when the config does not say: the top of the 2-8 core band, one machine.
pub const DEFAULT_CORES_PER_NODE: u32 = 8;

/// A resolved cluster: every knob known.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// Machines, one worker each.
    pub nodes: u32,
    /// Cores per machine.
    pub cores_per_node: u32,
    /// The distributed tier's costs, in the calibration's own units and types (the config's
    /// `[cluster]` overrides applied); `NetworkCosts::latency_ns` and its kin read them in the
    /// model's nanoseconds and bytes.
    pub network: NetworkCosts,
    /// Cores of the one machine the nodes and the coordinator all share, if they do.
    pub colocated_cores: Option<u32>,
    /// Most tasks per message (`None`: the runner's rule, from the message limit).
    pub batch_size: Option<u32>,
    /// Tasks in flight per worker thread (`None`: the policy's adaptive rule).
    pub in_flight: Option<u32>,
    /// How the coordinator feeds the nodes (the config's `[distributed] policy`, else the
    /// runner's default).
    pub policy: Policy,
    /// Slow-down of a `memory` task per other busy core of its node.
    pub memory_contention: f64,
    /// The message limit the runner batches under, bytes (the config's
    /// `[distributed] max_message`, else the runner's default).
    pub max_message_bytes: usize,
}

impl Cluster {
    /// The cluster of `spec` (absent fields from `calibration`), with enough nodes for
    /// `max_cores` when the spec does not fix the count.
    pub fn resolve(spec: Option<&ClusterSpec>, calibration: &Calibration, max_cores: usize) -> Cluster {
        let default = ClusterSpec::default();
        let spec = spec.unwrap_or(&default);
        let cores_per_node = spec.cores_per_node.unwrap_or(DEFAULT_CORES_PER_NODE);
        let mut network = calibration.distributed.clone();
        let us = |d: std::time::Duration| d.as_nanos() as f64 / 1e3;
        let ns = |d: std::time::Duration| d.as_nanos() as f64;
        if let Some(latency) = spec.latency {
            network.latency_us = us(latency);
        }
        if let Some(bytes_per_s) = spec.bandwidth {
            network.bandwidth_mb_per_s = bytes_per_s / 1e6;
        }
        if let Some(rate) = spec.serialization {
            network.serialize_ns_per_byte = 1e9 / rate;
        }
        network.dispatch_ns = spec.dispatch_overhead.map_or(network.dispatch_ns, ns);
        network.result_ns = spec.result_overhead.map_or(network.result_ns, ns);
        network.worker_ns = spec.worker_overhead.map_or(network.worker_ns, ns);
        Cluster {
            nodes: spec
                .nodes
                .unwrap_or_else(|| (max_cores.div_ceil(cores_per_node as usize)).max(1) as u32),
            cores_per_node,
            network,
            colocated_cores: spec.colocated_cores,
            batch_size: spec.batch_size,
            in_flight: spec.in_flight,
            policy: Policy::default(),
            memory_contention: spec
                .memory_contention
                .unwrap_or(calibration.multi.memory_contention),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// Total cores.
    pub fn cores(&self) -> u64 {
        u64::from(self.nodes) * u64::from(self.cores_per_node)
    }

    /// Worker threads per node for a run on `cores` cores, placed as the distributed runner
    /// places them over its workers (`martelli_schedule::place`); only the nodes used.
    pub fn spread(&self, cores: usize) -> Option<Vec<usize>> {
        let capacities = vec![self.cores_per_node as usize; self.nodes as usize];
        let placement = place(&capacities, cores)?;
        Some(placement.into_iter().filter(|&t| t > 0).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_are_placed_as_the_runner_places_them() {
        let c = Cluster::resolve(None, &martelli_calibration::example(), 64);
        assert_eq!(c.nodes, 8);
        assert_eq!(c.spread(16), Some(vec![8, 8]));
        assert_eq!(c.spread(12), Some(vec![6, 6]));
        assert_eq!(c.spread(9), Some(vec![5, 4]));
        assert_eq!(c.spread(65), None);
    }
}
