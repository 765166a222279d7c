//! The `[executor]` section: the lecture's concurrency models as options of the multi tier.

use super::*;

/// CPython's default switch interval.
const DEFAULT_SWITCH_INTERVAL: Duration = Duration::from_millis(5);

/// Validates the `[executor]` section (`at`): options of the multi tier.
pub(super) fn executor(
    raw: Option<RawExecutor>,
    tier: Option<Tier>,
    at: &str,
) -> Result<ExecutorOptions, Invalid> {
    let Some(raw) = raw else {
        return Ok(ExecutorOptions::default());
    };
    let at_key = |key: &str| format!("{at}.{key}");
    if tier == Some(Tier::Distributed) {
        return Err(invalid(
            at,
            "[executor] sets how the multi tier runs its tasks, and tier \"distributed\" does not run it: \
             use tier = \"multi\" or \"auto\"",
        ));
    }
    let model = raw.model.unwrap_or_default();
    if tier == Some(Tier::Single) {
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
    let takes_concurrency = model == Model::Async || (tier == Some(Tier::Single) && model == Model::Threads);
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
