//! The `[workload]` table (and each varied series' copy of it).

use super::*;

/// Validates one `[workload]` table into a workload and its per-task cost, if given as a time.
pub(super) fn workload(
    raw: RawWorkload,
    stem: &str,
    at: &str,
    dir: &Path,
) -> Result<(Workload, Option<Duration>), Invalid> {
    let field = |name: &str| format!("{at}.{name}");
    let kind = raw.kind.ok_or_else(|| {
        invalid(
            &field("kind"),
            "missing: expected one of \"cpu\", \"memory\", \"io\", \"mixed\", \"replay\"",
        )
    })?;
    if kind == Kind::Replay {
        return replay_workload(raw, stem, dir, field);
    }
    for (name, set) in [("from", raw.from.is_some()), ("pid", raw.pid.is_some())] {
        if set {
            return Err(invalid(
                &field(name),
                "only for kind = \"replay\" (tasks replayed from a file)",
            ));
        }
    }
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

/// A `kind = "replay"` table: the tasks come from the file `from` names (relative to the
/// config's folder), so `tasks`, the cost and the sizes are refused beside it.
fn replay_workload(
    raw: RawWorkload,
    stem: &str,
    dir: &Path,
    field: impl Fn(&str) -> String,
) -> Result<(Workload, Option<Duration>), Invalid> {
    let given = [
        ("tasks", raw.tasks.is_some()),
        ("iterations", raw.iterations.is_some()),
        ("task_cost", raw.task_cost.is_some()),
        ("io_wait", raw.io_wait.is_some()),
        ("size_distribution", raw.size_distribution.is_some()),
        ("spread", raw.spread.is_some()),
        ("payload_bytes", raw.payload_bytes.is_some()),
        ("serial_fraction", raw.serial_fraction.is_some()),
        ("working_set", raw.working_set.is_some()),
        ("access", raw.access.is_some()),
    ];
    if let Some((name, _)) = given.iter().find(|(_, set)| *set) {
        return Err(invalid(
            &field(name),
            format!(
                "not with kind = \"replay\": the file `from` names gives every task's compute, \
                 wait and payload (remove `{name}`)"
            ),
        ));
    }
    let from = raw.from.ok_or_else(|| {
        invalid(
            &field("from"),
            "missing: a replay needs `from = \"tasks.csv\"` (a CSV with a compute_us column, or a \
             Chrome trace-event JSON), relative to the config's folder",
        )
    })?;
    let replay =
        crate::replay::read(&dir.join(&from), &from, raw.pid).map_err(|why| invalid(&field("from"), why))?;
    let mean_compute = replay.mean_compute_ns;
    let workload = Workload {
        name: raw.name.unwrap_or_else(|| stem.to_string()),
        seed: raw.seed.unwrap_or(0),
        tasks: replay.records,
        kind: Kind::Replay,
        iterations: 0,
        io_wait_ns: replay.mean_wait_ns().round() as u64,
        payload_bytes: replay.max_payload_bytes(),
        distribution: SizeDistribution::Replay(replay),
        serial_fraction: 0.0,
        serial_basis_tasks: 0,
        working_set: 0,
        access: martelli_workload::Access::default(),
    };
    // The mean compute is calibrated into iterations as a `task_cost` is; each task is that
    // many iterations scaled by its own compute over the mean.
    let task_cost = (mean_compute >= 1.0).then(|| Duration::from_nanos(mean_compute.round() as u64));
    Ok((workload, task_cost))
}
