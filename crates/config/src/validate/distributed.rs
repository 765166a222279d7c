//! The `[distributed]` section: where the workers come from, how they are fed and checked.

use super::*;

/// Validates the `[distributed]` section.
pub(super) fn distributed(raw: RawDistributed) -> Result<Distributed, Invalid> {
    let join = join(&raw)?;
    let workers = worker_source(&raw, join)?;
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
    let policy = policy(raw.policy.as_deref())?;
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

/// Where the workers come from: the joining ones (`join`), a list, or spawned ones; one source.
fn worker_source(raw: &RawDistributed, join: Option<WorkerSource>) -> Result<WorkerSource, Invalid> {
    let workers = match (raw.workers.clone(), raw.spawn_local) {
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
    Ok(workers)
}

/// The feeding policy a config names (`policy`), or the default one.
fn policy(name: Option<&str>) -> Result<martelli_schedule::Policy, Invalid> {
    Ok(match name {
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
    })
}
