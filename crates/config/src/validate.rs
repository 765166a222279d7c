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
const VARIABLE: [&str; 12] = [
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
];

fn invalid(path: &str, message: impl Into<String>) -> Invalid {
    (FieldPath::parse(path), message.into())
}

pub(crate) fn validate(path: &Path, raw: RawConfig, document: toml::Table) -> Result<Config, Invalid> {
    let stem = path
        .file_stem()
        .map_or_else(|| "workload".to_string(), |s| s.to_string_lossy().into_owned());
    let tier = raw.tier.unwrap_or(Tier::Auto);
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
            let (workload, task_cost) = workload(raw_workload, &stem, "workload")?;
            let executor = executor(raw.executor, tier, "executor")?;
            vec![Series {
                label: workload.name.clone(),
                workload,
                task_cost,
                executor,
            }]
        }
        Some(vary) => varied_series(&table("workload"), &table("executor"), tier, &vary, &stem)?,
    };

    let output_dir = raw
        .output
        .and_then(|o| o.dir)
        .unwrap_or_else(|| PathBuf::from("output").join(&stem));

    let distributed = raw.distributed.map(distributed).transpose()?;
    if tier == Tier::Distributed && distributed.is_none() {
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
    tier: Tier,
    vary: &toml::Table,
    stem: &str,
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
        let (workload, task_cost) = workload(raw, stem, "workload").map_err(relocate("workload"))?;
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

/// Validates one `[workload]` table into a workload and its per-task cost, if given as a time.
fn workload(raw: RawWorkload, stem: &str, at: &str) -> Result<(Workload, Option<Duration>), Invalid> {
    let field = |name: &str| format!("{at}.{name}");
    let kind = raw.kind.ok_or_else(|| {
        invalid(
            &field("kind"),
            "missing: expected one of \"cpu\", \"memory\", \"io\", \"mixed\"",
        )
    })?;
    let tasks = raw.tasks.ok_or_else(|| {
        invalid(
            &field("tasks"),
            "missing: how many tasks to run, e.g. tasks = 1000",
        )
    })?;
    if tasks == 0 || tasks > MAX_TASKS {
        return Err(invalid(
            &field("tasks"),
            format!("must be between 1 and {MAX_TASKS} (got {tasks})"),
        ));
    }

    let (iterations, task_cost) = compute_cost(kind, raw.iterations, raw.task_cost, at)?;
    let (io_wait, cycle) = io_waits(kind, raw.io_wait, at)?;
    let distribution = size_distribution(raw.size_distribution, raw.spread, cycle, at)?;

    let serial_fraction = raw.serial_fraction.unwrap_or(0.0);
    if !(0.0..1.0).contains(&serial_fraction) {
        return Err(invalid(
            &field("serial_fraction"),
            format!("must be at least 0 and below 1 (got {serial_fraction})"),
        ));
    }
    let payload_bytes = raw.payload_bytes.map_or(0, |s| s.0);
    if payload_bytes > MAX_PAYLOAD {
        return Err(invalid(
            &field("payload_bytes"),
            format!("must be at most 1GiB (got {payload_bytes} bytes)"),
        ));
    }
    let working_set = working_set(kind, raw.working_set, at)?;
    let access = match (kind, raw.access) {
        (Kind::Memory, access) => access.unwrap_or_default(),
        (_, None) => martelli_workload::Access::default(),
        (_, Some(_)) => {
            return Err(invalid(&field("access"), "only meaningful for kind = \"memory\""));
        }
    };

    let workload = Workload {
        name: raw.name.unwrap_or_else(|| stem.to_string()),
        seed: raw.seed.unwrap_or(0),
        tasks,
        kind,
        iterations,
        io_wait_ns: io_wait.as_nanos() as u64,
        distribution,
        serial_fraction,
        serial_basis_tasks: tasks,
        payload_bytes,
        working_set,
        access,
    };
    Ok((workload, task_cost))
}

/// A computing workload's cost: exactly one of `iterations` and `task_cost` (none for io).
fn compute_cost(
    kind: Kind,
    iterations: Option<u64>,
    task_cost: Option<HumanDuration>,
    at: &str,
) -> Result<(u64, Option<Duration>), Invalid> {
    let field = |name: &str| format!("{at}.{name}");
    let cost = match (kind.computes(), iterations, task_cost) {
        (true, Some(_), Some(_)) => {
            return Err(invalid(
                &field("task_cost"),
                "give either `iterations` or `task_cost`, not both",
            ));
        }
        (true, None, None) => {
            return Err(invalid(
                &field("iterations"),
                format!(
                    "missing: a `{}` workload needs `iterations = N` or `task_cost = \"2ms\"`",
                    kind.name()
                ),
            ));
        }
        (true, Some(n), None) => {
            if n == 0 || n > MAX_ITERATIONS {
                return Err(invalid(
                    &field("iterations"),
                    format!("must be between 1 and {MAX_ITERATIONS} (got {n})"),
                ));
            }
            (n, None)
        }
        (true, None, Some(cost)) => {
            if cost.0.is_zero() || cost.0 > MAX_WAIT {
                return Err(invalid(
                    &field("task_cost"),
                    format!("must be above 0 and at most 1h (got {})", format_duration(cost.0)),
                ));
            }
            (0, Some(cost.0))
        }
        (false, Some(_), _) => {
            return Err(invalid(
                &field("iterations"),
                "an `io` workload computes nothing: remove it, or use kind = \"mixed\"",
            ));
        }
        (false, _, Some(_)) => {
            return Err(invalid(
                &field("task_cost"),
                "an `io` workload computes nothing: use `io_wait`, or kind = \"mixed\"",
            ));
        }
        (false, None, None) => (0, None),
    };
    Ok(cost)
}

/// A waiting workload's wait: one, or a list that gives each task its own in turn (then its
/// mean, and the cycle of sizes); none for work that does not wait.
fn io_waits(
    kind: Kind,
    io_wait: Option<Durations>,
    at: &str,
) -> Result<(Duration, Option<SizeDistribution>), Invalid> {
    let field = |name: &str| format!("{at}.{name}");
    let (io_wait, cycle) = match (kind.waits(), io_wait) {
        (true, Some(Durations::One(w))) => (w, None),
        (true, Some(Durations::Each(list))) => {
            if list.is_empty() || list.len() > MAX_CYCLE {
                return Err(invalid(
                    &field("io_wait"),
                    format!(
                        "a list of waits needs 1 to {MAX_CYCLE} entries (got {})",
                        list.len()
                    ),
                ));
            }
            if let Some(i) = list.iter().position(|w| w.is_zero() || *w > MAX_WAIT) {
                return Err(invalid(
                    &format!("{}[{i}]", field("io_wait")),
                    format!(
                        "must be above 0 and at most 1h (got {})",
                        format_duration(list[i])
                    ),
                ));
            }
            let ns: Vec<u64> = list.iter().map(|w| w.as_nanos() as u64).collect();
            let Some((mean, cycle)) = SizeDistribution::cycle(&ns) else {
                return Err(invalid(&field("io_wait"), "the waits add up to nothing"));
            };
            (Duration::from_nanos(mean), Some(cycle))
        }
        (true, None) => {
            return Err(invalid(
                &field("io_wait"),
                format!(
                    "missing: a `{}` workload needs e.g. io_wait = \"5ms\"",
                    kind.name()
                ),
            ));
        }
        (false, Some(_)) => {
            return Err(invalid(
                &field("io_wait"),
                format!(
                    "a `{}` workload does not wait: remove it, or use kind = \"mixed\"",
                    kind.name()
                ),
            ));
        }
        (false, None) => (Duration::ZERO, None),
    };
    if (io_wait.is_zero() && kind.waits()) || io_wait > MAX_WAIT {
        return Err(invalid(
            &field("io_wait"),
            format!(
                "must be above 0 and at most 1h (got {})",
                format_duration(io_wait)
            ),
        ));
    }
    Ok((io_wait, cycle))
}

/// The task sizes: fixed, uniform or log-normal with its spread, or a list of waits' cycle.
fn size_distribution(
    name: Option<DistributionName>,
    spread: Option<f64>,
    cycle: Option<SizeDistribution>,
    at: &str,
) -> Result<SizeDistribution, Invalid> {
    let field = |name: &str| format!("{at}.{name}");
    let distribution = match (name.unwrap_or(DistributionName::Fixed), spread) {
        (_, _) if cycle.is_some() && (name.is_some() || spread.is_some()) => {
            return Err(invalid(
                &field("size_distribution"),
                "a list of waits already sets each task's size; drop size_distribution and spread",
            ));
        }
        (DistributionName::Fixed, None) => cycle.unwrap_or(SizeDistribution::Fixed),
        (DistributionName::Fixed, Some(_)) => {
            return Err(invalid(
                &field("spread"),
                "only meaningful with size_distribution = \"uniform\" or \"lognormal\"",
            ));
        }
        (DistributionName::Uniform, spread) => {
            let spread = spread.unwrap_or(0.5);
            if !(0.0..=1.0).contains(&spread) {
                return Err(invalid(
                    &field("spread"),
                    format!("a uniform spread must be between 0 and 1 (got {spread})"),
                ));
            }
            SizeDistribution::Uniform { spread }
        }
        (DistributionName::Lognormal, sigma) => {
            let sigma = sigma.unwrap_or(0.5);
            if !(sigma > 0.0 && sigma <= 3.0) {
                return Err(invalid(
                    &field("spread"),
                    format!("a log-normal spread (sigma) must be above 0 and at most 3 (got {sigma})"),
                ));
            }
            SizeDistribution::LogNormal { sigma }
        }
    };
    Ok(distribution)
}

/// A memory workload's working set (a default when not given); none for other kinds.
fn working_set(kind: Kind, working_set: Option<HumanSize>, at: &str) -> Result<u64, Invalid> {
    let field = |name: &str| format!("{at}.{name}");
    let working_set = match (kind, working_set) {
        (Kind::Memory, Some(s)) if s.0 < 8 || s.0 > MAX_WORKING_SET => {
            return Err(invalid(
                &field("working_set"),
                format!("must be between 8 bytes and 16GiB (got {} bytes)", s.0),
            ));
        }
        (Kind::Memory, Some(s)) => s.0,
        (Kind::Memory, None) => default_working_set(crate::host::last_level_cache().map(|c| c.bytes)),
        (_, Some(_)) => {
            return Err(invalid(
                &field("working_set"),
                "only meaningful for kind = \"memory\"",
            ));
        }
        (_, None) => 0,
    };
    if let Some(available) = crate::host::available_memory_bytes()
        && working_set > available
    {
        return Err(invalid(
            &field("working_set"),
            format!(
                "{} is more than the {} of memory available here (MemAvailable, or what the \
                 control group's limit leaves); every tier fills it here before measuring (give a \
                 smaller working_set)",
                crate::host::human_bytes(working_set),
                crate::host::human_bytes(available)
            ),
        ));
    }
    Ok(working_set)
}

/// The working set of a `memory` workload that gives none: [`WORKING_SET_PER_LLC`] times the
/// last-level cache (in whole MiB), at least [`DEFAULT_WORKING_SET`], at most the largest a
/// config may ask for.
pub fn default_working_set(llc_bytes: Option<u64>) -> u64 {
    llc_bytes
        .map_or(DEFAULT_WORKING_SET, |llc| {
            (llc.saturating_mul(WORKING_SET_PER_LLC)).next_multiple_of(1 << 20)
        })
        .clamp(DEFAULT_WORKING_SET, MAX_WORKING_SET)
}

/// Validates the `[distributed]` section.
fn distributed(raw: RawDistributed) -> Result<Distributed, Invalid> {
    let join = join(&raw)?;
    let workers = match (raw.workers, raw.spawn_local) {
        _ if join.is_some() && raw.threads_per_worker.is_some() => {
            return Err(invalid(
                "distributed.threads_per_worker",
                "only meaningful with spawn_local: joining workers say their own thread count (--threads)",
            ));
        }
        (None, None) if join.is_some() => join.expect("checked just above"),
        (Some(_), _) | (_, Some(_)) if join.is_some() => {
            return Err(invalid(
                "distributed.listen",
                "give one source of workers: `listen` (workers join), `workers` or `spawn_local`",
            ));
        }
        (Some(_), Some(_)) => {
            return Err(invalid(
                "distributed.spawn_local",
                "give either `workers` or `spawn_local`, not both",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "distributed",
                "needs `workers = [\"host:port\", ...]`, `spawn_local = N` (local worker processes) \
                 or `listen = \"0.0.0.0:7000\"` with `expect_workers = N` (workers that join)",
            ));
        }
        (Some(list), None) => {
            if list.is_empty() {
                return Err(invalid(
                    "distributed.workers",
                    "must list at least one \"host:port\"",
                ));
            }
            for (i, address) in list.iter().enumerate() {
                let port = address
                    .rsplit_once(':')
                    .map(|(host, port)| (host, port.parse::<u16>()));
                if !matches!(port, Some((host, Ok(p))) if !host.is_empty() && p > 0) {
                    return Err(invalid(
                        &format!("distributed.workers[{i}]"),
                        format!(
                            "\"{address}\" is not a worker address: expected \"host:port\", e.g. \"10.0.0.5:7070\""
                        ),
                    ));
                }
            }
            if raw.threads_per_worker.is_some() {
                return Err(invalid(
                    "distributed.threads_per_worker",
                    "only meaningful with spawn_local: listed workers say their own thread count (--threads)",
                ));
            }
            WorkerSource::Listed(list)
        }
        (None, Some(n)) => {
            if !(1..=64).contains(&n) {
                return Err(invalid(
                    "distributed.spawn_local",
                    format!("must be between 1 and 64 (got {n})"),
                ));
            }
            if let Some(t) = raw.threads_per_worker
                && !(1..=256).contains(&t)
            {
                return Err(invalid(
                    "distributed.threads_per_worker",
                    format!("must be between 1 and 256 (got {t})"),
                ));
            }
            WorkerSource::Spawn {
                workers: n,
                threads: raw.threads_per_worker,
            }
        }
    };
    let heartbeat = raw.heartbeat.map_or(DEFAULT_HEARTBEAT, |d| d.0);
    let timeout = raw.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0);
    if heartbeat < Duration::from_millis(10) || heartbeat > Duration::from_secs(60) {
        return Err(invalid("distributed.heartbeat", "must be between 10ms and 60s"));
    }
    if timeout <= heartbeat {
        return Err(invalid(
            "distributed.timeout",
            format!(
                "must be longer than the heartbeat interval ({}), or every worker would be declared lost",
                format_duration(heartbeat)
            ),
        ));
    }
    let max_message_bytes = raw
        .max_message
        .map_or(martelli_schedule::DEFAULT_MAX_MESSAGE_BYTES as u64, |s| s.0);
    if !(4096..=(1 << 30)).contains(&max_message_bytes) {
        return Err(invalid(
            "distributed.max_message",
            "must be between 4KiB and 1GiB",
        ));
    }
    if raw.tls_domain.is_some() && raw.tls_ca.is_none() {
        return Err(invalid("distributed.tls_domain", "only meaningful with tls_ca"));
    }
    let policy = match raw.policy.as_deref() {
        None => martelli_schedule::Policy::default(),
        Some(name) => martelli_schedule::Policy::from_name(name).ok_or_else(|| {
            let names: Vec<String> = martelli_schedule::Policy::ALL
                .iter()
                .map(|p| format!("\"{}\"", p.name()))
                .collect();
            invalid(
                "distributed.policy",
                format!("\"{name}\" is not a policy: expected one of {}", names.join(", ")),
            )
        })?,
    };
    Ok(Distributed {
        workers,
        heartbeat,
        timeout,
        token_file: raw.token_file,
        tls_ca: raw.tls_ca,
        tls_domain: raw.tls_domain,
        max_message_bytes,
        tls_identity: raw.tls_cert.zip(raw.tls_key),
        policy,
    })
}

/// The joining-workers source of a `[distributed]` section, if it asks for one: `listen`,
/// `expect_workers`, `join_timeout`, and the TLS identity the coordinator serves them with.
fn join(raw: &RawDistributed) -> Result<Option<WorkerSource>, Invalid> {
    let Some(listen) = &raw.listen else {
        for (given, field) in [
            (raw.expect_workers.is_some(), "expect_workers"),
            (raw.join_timeout.is_some(), "join_timeout"),
            (raw.tls_cert.is_some(), "tls_cert"),
            (raw.tls_key.is_some(), "tls_key"),
        ] {
            if given {
                return Err(invalid(
                    &format!("distributed.{field}"),
                    "only meaningful with `listen` (workers that join)",
                ));
            }
        }
        return Ok(None);
    };
    let listen: std::net::SocketAddr = listen.parse().map_err(|_| {
        invalid(
            "distributed.listen",
            format!(
                "\"{listen}\" is not an address to listen on: expected \"ip:port\", e.g. \"0.0.0.0:7000\""
            ),
        )
    })?;
    let expect = match raw.expect_workers {
        None => {
            return Err(invalid(
                "distributed.expect_workers",
                "needed with `listen`: how many joining workers the run waits for",
            ));
        }
        Some(n) if (1..=4096).contains(&n) => n as u32,
        Some(n) => {
            return Err(invalid(
                "distributed.expect_workers",
                format!("must be between 1 and 4096 (got {n})"),
            ));
        }
    };
    let timeout = raw.join_timeout.map_or(DEFAULT_JOIN_TIMEOUT, |d| d.0);
    if timeout < Duration::from_millis(100) {
        return Err(invalid("distributed.join_timeout", "must be at least 100ms"));
    }
    if raw.tls_cert.is_some() != raw.tls_key.is_some() {
        let missing = if raw.tls_cert.is_some() {
            "tls_key"
        } else {
            "tls_cert"
        };
        return Err(invalid(
            &format!("distributed.{missing}"),
            "tls_cert and tls_key go together: the coordinator serves joining workers over TLS with both",
        ));
    }
    Ok(Some(WorkerSource::Join {
        listen,
        expect,
        timeout,
    }))
}

/// Validates the `[cluster]` section: every value possible for a real cluster.
fn cluster(raw: RawCluster) -> Result<ClusterSpec, Invalid> {
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

/// CPython's default switch interval.
const DEFAULT_SWITCH_INTERVAL: Duration = Duration::from_millis(5);

/// Validates the `[executor]` section (`at`): options of the multi tier.
fn executor(raw: Option<RawExecutor>, tier: Tier, at: &str) -> Result<ExecutorOptions, Invalid> {
    let Some(raw) = raw else {
        return Ok(ExecutorOptions::default());
    };
    let at_key = |key: &str| format!("{at}.{key}");
    if tier == Tier::Distributed {
        return Err(invalid(
            at,
            "[executor] sets how the multi tier runs its tasks, and tier \"distributed\" does not run it: \
             use tier = \"multi\" or \"auto\"",
        ));
    }
    let model = raw.model.unwrap_or_default();
    if tier == Tier::Single {
        // One core: a plain loop, or many waits held on it (an event loop, a thread per task).
        let refused = if raw.dispatch.is_some() {
            Some(("dispatch", "a queue or futures need threads to hand tasks to"))
        } else if raw.gil.is_some() || raw.switch_interval.is_some() {
            Some(("gil", "one thread never contends for an interpreter lock"))
        } else if model == Model::Processes {
            Some(("model", "a pool of processes needs more than one core"))
        } else {
            None
        };
        if let Some((key, why)) = refused {
            return Err(invalid(
                &at_key(key),
                format!(
                    "tier \"single\" is the executors' 1-core baseline and takes only `model` (\"threads\" or \
                     \"async\") and `concurrency`: {why}; use tier = \"multi\" or \"auto\""
                ),
            ));
        }
    }
    let gil = match (raw.gil.unwrap_or(false), raw.switch_interval) {
        (false, Some(_)) => {
            return Err(invalid(
                "executor.switch_interval",
                "only meaningful with gil = true (it is how often the emulated lock changes hands)",
            ));
        }
        (false, None) => None,
        (true, None) => Some(DEFAULT_SWITCH_INTERVAL),
        (true, Some(text)) => {
            let d = parse_duration(&text).map_err(|m| invalid("executor.switch_interval", m))?;
            if !(Duration::from_micros(50)..=Duration::from_secs(1)).contains(&d) {
                return Err(invalid(
                    "executor.switch_interval",
                    "must be between 50us and 1s (CPython's default is 5ms)",
                ));
            }
            Some(d)
        }
    };
    // Async keeps tasks in flight on its threads; on one core, so can a thread per task.
    let takes_concurrency = model == Model::Async || (tier == Tier::Single && model == Model::Threads);
    let concurrency = match (takes_concurrency, raw.concurrency) {
        (true, Some(c)) if (1..=10_000_000).contains(&c) => c as u32,
        (true, Some(c)) => {
            return Err(invalid(
                &at_key("concurrency"),
                format!("must be between 1 and 10000000 tasks in flight (got {c})"),
            ));
        }
        (false, Some(_)) => {
            return Err(invalid(
                &at_key("concurrency"),
                "only meaningful with model = \"async\", or on tier \"single\" (a thread per task in flight); \
                 on the multi tier, threads and processes run one task each at a time",
            ));
        }
        (_, None) if model == Model::Async => DEFAULT_CONCURRENCY,
        (_, None) => 1,
    };
    if model == Model::Async {
        if gil.is_some() {
            return Err(invalid(
                &at_key("gil"),
                "gil = true with model = \"async\" means nothing here: an event loop already runs one \
                 task at a time per thread; compare async with threads under a GIL in two series instead",
            ));
        }
        if raw.dispatch == Some(Dispatch::Queue) {
            return Err(invalid(
                &at_key("dispatch"),
                "model = \"async\" has its own dispatch (the event loop keeps `concurrency` tasks in flight); \
                 drop dispatch = \"queue\"",
            ));
        }
    }
    Ok(ExecutorOptions {
        dispatch: raw.dispatch.unwrap_or_default(),
        model,
        gil,
        concurrency,
    })
}
