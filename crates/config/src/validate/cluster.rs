//! The `[cluster]` section: the cluster `martelli simulate` models.

use super::*;

/// Validates the `[cluster]` section: every value possible for a real cluster.
pub(super) fn cluster(raw: RawCluster) -> Result<ClusterSpec, Invalid> {
    let count = |value: Option<i64>, field: &str, max: i64| -> Result<Option<u32>, Invalid> {
        match value {
            None => Ok(None),
            Some(v) if (1..=max).contains(&v) => Ok(Some(v as u32)),
            Some(v) => Err(invalid(
                &format!("cluster.{field}"),
                format!("must be between 1 and {max} (got {v})"),
            )),
        }
    };
    let duration = |value: Option<String>, field: &str| -> Result<Option<Duration>, Invalid> {
        value
            .map(|text| {
                let d = parse_duration(&text).map_err(|m| invalid(&format!("cluster.{field}"), m))?;
                if d > Duration::from_secs(60) {
                    return Err(invalid(&format!("cluster.{field}"), "must be at most 60s"));
                }
                Ok(d)
            })
            .transpose()
    };
    let rate = |value: Option<String>, field: &str| -> Result<Option<f64>, Invalid> {
        value
            .map(|text| parse_rate(&text).map_err(|m| invalid(&format!("cluster.{field}"), m)))
            .transpose()
    };
    let memory_contention = match raw.memory_contention {
        Some(c) if !(c.is_finite() && (0.0..=10.0).contains(&c)) => {
            return Err(invalid(
                "cluster.memory_contention",
                format!("must be between 0 (no contention) and 10 (got {c})"),
            ));
        }
        c => c,
    };
    Ok(ClusterSpec {
        nodes: count(raw.nodes, "nodes", 1 << 20)?,
        cores_per_node: count(raw.cores_per_node, "cores_per_node", 4096)?,
        latency: duration(raw.latency, "latency")?,
        bandwidth: rate(raw.bandwidth, "bandwidth")?,
        dispatch_overhead: duration(raw.dispatch_overhead, "dispatch_overhead")?,
        result_overhead: duration(raw.result_overhead, "result_overhead")?,
        worker_overhead: duration(raw.worker_overhead, "worker_overhead")?,
        serialization: rate(raw.serialization, "serialization")?,
        batch_size: count(raw.batch_size, "batch_size", 1 << 20)?,
        in_flight: count(raw.in_flight, "in_flight", 1 << 16)?,
        memory_contention,
        colocated_cores: count(raw.colocated_cores, "colocated_cores", 4096)?,
    })
}
