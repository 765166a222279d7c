//! The config file as written: serde structs that mirror the TOML, before any validation.
//!
//! Every field is optional here so that type errors and unknown keys are reported by the TOML
//! parser (with line and column), while missing or contradictory fields are reported by
//! validation (with the field's path). Nothing outside this crate sees these types.

use std::path::PathBuf;

use serde::Deserialize;

use crate::units::{Durations, HumanDuration, HumanSize};
use crate::{Scaling, Tier};
use martelli_workload::Kind;
use serde::Deserializer;

/// `tier = "..."`: one of the three tiers, or `auto` (`None`: every tier that can run).
#[derive(Debug)]
pub(crate) struct RawTier(pub Option<Tier>);

impl<'de> Deserialize<'de> for RawTier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawTier, D::Error> {
        let name = String::deserialize(deserializer)?;
        if name == "auto" {
            return Ok(RawTier(None));
        }
        Tier::from_name(&name).map(|t| RawTier(Some(t))).ok_or_else(|| {
            serde::de::Error::unknown_variant(&name, &["single", "multi", "distributed", "auto"])
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub tier: Option<RawTier>,
    pub workload: Option<RawWorkload>,
    pub sweep: Option<RawSweep>,
    pub output: Option<RawOutput>,
    pub distributed: Option<RawDistributed>,
    pub cluster: Option<RawCluster>,
    pub executor: Option<RawExecutor>,
}

/// `[executor]`: how the multi tier runs its tasks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExecutor {
    pub dispatch: Option<crate::Dispatch>,
    pub model: Option<crate::Model>,
    pub gil: Option<bool>,
    pub switch_interval: Option<String>,
    pub concurrency: Option<i64>,
}

/// `[cluster]`: the simulated cluster. Durations and rates stay strings here so that
/// validation can name the field of a bad value, not just its position.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub nodes: Option<i64>,
    pub cores_per_node: Option<i64>,
    pub latency: Option<String>,
    pub bandwidth: Option<String>,
    pub dispatch_overhead: Option<String>,
    pub result_overhead: Option<String>,
    pub worker_overhead: Option<String>,
    pub serialization: Option<String>,
    pub batch_size: Option<i64>,
    pub in_flight: Option<i64>,
    pub memory_contention: Option<f64>,
    pub colocated_cores: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDistributed {
    pub workers: Option<Vec<String>>,
    pub spawn_local: Option<u32>,
    pub threads_per_worker: Option<u32>,
    pub heartbeat: Option<HumanDuration>,
    pub timeout: Option<HumanDuration>,
    pub token_file: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
    pub tls_domain: Option<String>,
    pub max_message: Option<HumanSize>,
    pub listen: Option<String>,
    pub expect_workers: Option<i64>,
    pub join_timeout: Option<HumanDuration>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub policy: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkload {
    pub name: Option<String>,
    pub seed: Option<u64>,
    pub tasks: Option<u64>,
    pub kind: Option<Kind>,
    pub iterations: Option<u64>,
    pub task_cost: Option<HumanDuration>,
    pub io_wait: Option<Durations>,
    pub size_distribution: Option<DistributionName>,
    pub spread: Option<f64>,
    pub serial_fraction: Option<f64>,
    pub payload_bytes: Option<HumanSize>,
    pub working_set: Option<HumanSize>,
    pub access: Option<martelli_workload::Access>,
    pub from: Option<String>,
    pub pid: Option<u64>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DistributionName {
    Fixed,
    Uniform,
    Lognormal,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSweep {
    pub cores: Option<Vec<u64>>,
    pub repeats: Option<u32>,
    pub warmup: Option<u32>,
    pub scaling: Option<Scaling>,
    pub vary: Option<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutput {
    pub dir: Option<PathBuf>,
}
