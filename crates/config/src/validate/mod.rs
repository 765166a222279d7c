//! Validation: from the raw file to a typed [`Config`], rejecting anything that cannot run.
//!
//! Errors are `(field path, message)` pairs; the caller locates the path in the source.

use std::path::{Path, PathBuf};
use std::time::Duration;

use martelli_workload::{Kind, SizeDistribution, Workload};

use crate::locate::FieldPath;
use crate::raw::{DistributionName, RawCluster, RawConfig, RawDistributed, RawExecutor, RawWorkload};
use crate::units::{Durations, HumanDuration, HumanSize, format_duration, parse_duration, parse_rate};
use crate::{
    ClusterSpec, Config, DEFAULT_CONCURRENCY, DEFAULT_HEARTBEAT, DEFAULT_JOIN_TIMEOUT, DEFAULT_TIMEOUT,
    Dispatch, Distributed, ExecutorOptions, Model, Scaling, Series, Sweep, Tier, WorkerSource,
};

mod cluster;
mod distributed;
mod executor;
mod workload;

use cluster::cluster;
use distributed::distributed;
use executor::executor;
pub use workload::default_working_set;
use workload::workload;

type Invalid = (FieldPath, String);

/// Upper bounds that keep a typo from asking for a year of work or all the memory there is.
const MAX_TASKS: u64 = 1_000_000_000_000;
const MAX_ITERATIONS: u64 = 1_000_000_000_000;
const MAX_WAIT: Duration = Duration::from_secs(3600);
const MAX_PAYLOAD: u64 = 1 << 30;
const MAX_WORKING_SET: u64 = 16 << 30;
/// Most waits a list may give (one per task, in turn); a worker accepts as many.
const MAX_CYCLE: usize = 1024;
const MAX_CORES: u64 = 4096;
/// A `memory` workload's working set when the config gives none and the machine does not say
/// how large its last-level cache is; otherwise four times that cache, at least this.
const DEFAULT_WORKING_SET: u64 = 64 << 20;
/// How many times the last-level cache a default working set spans, so that its reads come
/// from memory (DRAM), not from the cache.
pub const WORKING_SET_PER_LLC: u64 = 4;
const DEFAULT_CORES: [usize; 4] = [1, 2, 4, 8];

/// `[executor]` keys that `sweep.vary` may vary.
const EXECUTOR_VARIABLE: [&str; 5] = ["dispatch", "model", "gil", "switch_interval", "concurrency"];

/// Workload keys that `sweep.vary` may vary (everything but the name).
const VARIABLE: [&str; 13] = [
    "seed",
    "tasks",
    "kind",
    "iterations",
    "task_cost",
    "io_wait",
    "size_distribution",
    "spread",
    "serial_fraction",
    "payload_bytes",
    "working_set",
    "access",
    "from",
];

fn invalid(path: &str, message: impl Into<String>) -> Invalid {
    (FieldPath::parse(path), message.into())
}

pub(crate) fn validate(path: &Path, raw: RawConfig, document: toml::Table) -> Result<Config, Invalid> {
    let stem = path
        .file_stem()
        .map_or_else(|| "workload".to_string(), |s| s.to_string_lossy().into_owned());
    let tier = raw.tier.and_then(|t| t.0);
    // A replay's `from` is relative to the config's own folder.
    let dir = path.parent().unwrap_or(Path::new("."));
    let Some(raw_workload) = raw.workload else {
        return Err(invalid(
            "workload",
            "missing the [workload] section: it needs at least `kind` and `tasks`",
        ));
    };
    let sweep_raw = raw.sweep.unwrap_or_default();

    let cores = match sweep_raw.cores {
        None => DEFAULT_CORES.to_vec(),
        Some(list) if list.is_empty() => {
            return Err(invalid(
                "sweep.cores",
                "must list at least one core count, e.g. [1, 2, 4]",
            ));
        }
        Some(list) => {
            for (i, &c) in list.iter().enumerate() {
                if c == 0 || c > MAX_CORES {
                    return Err(invalid(
                        &format!("sweep.cores[{i}]"),
                        format!("a core count must be between 1 and {MAX_CORES} (got {c})"),
                    ));
                }
            }
            normalise_cores(list.iter().map(|&c| c as usize))
        }
    };
    let repeats = sweep_raw.repeats.unwrap_or(3);
    if !(1..=10_000).contains(&repeats) {
        return Err(invalid(
            "sweep.repeats",
            format!("must be between 1 and 10000 (got {repeats})"),
        ));
    }
    let warmup = sweep_raw.warmup.unwrap_or(1);
    if warmup > 1000 {
        return Err(invalid(
            "sweep.warmup",
            format!("must be at most 1000 (got {warmup})"),
        ));
    }
    let sweep = Sweep {
        cores,
        repeats,
        warmup,
        scaling: sweep_raw.scaling.unwrap_or(Scaling::Strong),
    };

    let table = |name: &str| match document.get(name) {
        Some(toml::Value::Table(t)) => t.clone(),
        _ => toml::Table::new(),
    };
    let series = match sweep_raw.vary {
        None => {
            let (workload, task_cost) = workload(raw_workload, &stem, "workload", dir)?;
            let executor = executor(raw.executor, tier, "executor")?;
            vec![Series {
                label: workload.name.clone(),
                workload,
                task_cost,
                executor,
            }]
        }
        Some(vary) => varied_series(&table("workload"), &table("executor"), tier, &vary, &stem, dir)?,
    };

    let output_dir = raw
        .output
        .and_then(|o| o.dir)
        .unwrap_or_else(|| PathBuf::from("output").join(&stem));

    let distributed = raw.distributed.map(distributed).transpose()?;
    if tier == Some(Tier::Distributed) && distributed.is_none() {
        return Err(invalid(
            "tier",
            "tier \"distributed\" needs a [distributed] section with `workers = [\"host:port\", ...]` \
             or `spawn_local = N`",
        ));
    }

    let cluster = raw.cluster.map(cluster).transpose()?;

    Ok(Config {
        path: path.to_path_buf(),
        distributed,
        cluster,
        tier,
        sweep,
        series,
        output_dir,
        document,
    })
}

/// Sorts, de-duplicates and adds the 1-core baseline that every speed-up is measured against.
pub fn normalise_cores(cores: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut cores: Vec<usize> = std::iter::once(1).chain(cores).collect();
    cores.sort_unstable();
    cores.dedup();
    cores
}

/// One series per value of the varied parameter: a workload key, or an `[executor]` key
/// (then every series runs the same workload, and so must give the same checksum). Several
/// keys with lists of one length vary together: series `i` takes the `i`-th value of each.
fn varied_series(
    base: &toml::Table,
    base_executor: &toml::Table,
    tier: Option<Tier>,
    vary: &toml::Table,
    stem: &str,
    dir: &Path,
) -> Result<Vec<Series>, Invalid> {
    if vary.is_empty() {
        return Err(invalid(
            "sweep.vary",
            "must name a parameter, e.g. vary = { task_cost = [\"10us\", \"1ms\"] }",
        ));
    }
    let mut keys: Vec<(&String, &Vec<toml::Value>, bool)> = Vec::new();
    for (key, values) in vary {
        let here = format!("sweep.vary.{key}");
        let of_executor = EXECUTOR_VARIABLE.contains(&key.as_str());
        if !VARIABLE.contains(&key.as_str()) && !of_executor {
            return Err(invalid(
                &here,
                format!(
                    "`{key}` cannot be varied; expected one of: {}, {}",
                    VARIABLE.join(", "),
                    EXECUTOR_VARIABLE.join(", ")
                ),
            ));
        }
        let values = match values {
            toml::Value::Array(values) if !values.is_empty() => values,
            _ => return Err(invalid(&here, "expected a non-empty list of values")),
        };
        if let Some((first, first_values, _)) = keys.first()
            && first_values.len() != values.len()
        {
            return Err(invalid(
                &here,
                format!(
                    "lists {} values where `{first}` lists {}: keys varied together need lists of one \
                     length (series i takes the i-th value of each)",
                    values.len(),
                    first_values.len()
                ),
            ));
        }
        if ["task_cost", "iterations"].iter().all(|k| vary.contains_key(*k)) {
            return Err(invalid(
                &here,
                "vary `task_cost` or `iterations`, not both: they set the same cost",
            ));
        }
        keys.push((key, values, of_executor));
    }
    let count = keys[0].1.len();
    let mut series: Vec<Series> = Vec::with_capacity(count);
    for i in 0..count {
        let mut table = base.clone();
        let mut executor_table = base_executor.clone();
        let mut label = Vec::with_capacity(keys.len());
        for (key, values, of_executor) in &keys {
            let value = &values[i];
            if *of_executor {
                executor_table.insert((*key).clone(), value.clone());
            } else {
                // The per-task cost is given one way or the other; varying one replaces both.
                if *key == "task_cost" || *key == "iterations" {
                    table.remove("task_cost");
                    table.remove("iterations");
                }
                table.insert((*key).clone(), value.clone());
            }
            label.push(format!("{key}={}", display_value(value)));
        }
        let label = label.join(", ");
        // An error in a varied key belongs to its vary list, not to its section.
        let relocate = |section: &str| {
            let keys = &keys;
            let section = section.to_string();
            move |(field, message): Invalid| {
                let field_text = field.to_string();
                match keys
                    .iter()
                    .find(|(key, _, _)| field_text == format!("{section}.{key}"))
                {
                    Some((key, _, _)) => (FieldPath::parse(&format!("sweep.vary.{key}[{i}]")), message),
                    None => (field, message),
                }
            }
        };
        let at = format!("sweep.vary.{}[{i}]", keys[0].0);
        let raw: RawWorkload = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| invalid(&at, e.message().trim_end()))?;
        let raw_executor: Option<RawExecutor> = if executor_table.is_empty() {
            None
        } else {
            Some(
                toml::Value::Table(executor_table)
                    .try_into()
                    .map_err(|e: toml::de::Error| invalid(&at, e.message().trim_end()))?,
            )
        };
        if series.iter().any(|s| s.label == label) {
            return Err(invalid(&at, format!("the series {label} is listed twice")));
        }
        let (workload, task_cost) = workload(raw, stem, "workload", dir).map_err(relocate("workload"))?;
        let executor = executor(raw_executor, tier, "executor").map_err(relocate("executor"))?;
        series.push(Series {
            label,
            workload,
            task_cost,
            executor,
        });
    }
    Ok(series)
}

fn display_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
