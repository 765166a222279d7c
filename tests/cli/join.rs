//! Workers that join (`martelli worker --join`, `[distributed] listen`) end to end on
//! 127.0.0.1: the coordinator never hears a worker's address from the user.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::distributed::{Worker, split};
use crate::{martelli, read_json, text, write};

/// A free port on 127.0.0.1 for a coordinator to listen on (free when this returns).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A worker that offers itself to the coordinator at `port`.
fn joining(port: u16, extra: &[&str]) -> Worker {
    let coordinator = format!("127.0.0.1:{port}");
    let mut args = vec!["--threads", "1", "--join", coordinator.as_str()];
    args.extend_from_slice(extra);
    Worker::start(&args)
}

/// A small distributed config whose workers join at `port`, within `timeout`.
fn join_config(dir: &Path, port: u16, expect: u32, timeout: &str, extra: &str) -> PathBuf {
    write(
        dir,
        "join.toml",
        &format!(
            "tier = \"distributed\"\n[workload]\ntasks = 200\nkind = \"cpu\"\niterations = 5000\npayload_bytes = 64\n\
             [sweep]\ncores = [1, {expect}]\nrepeats = 1\nwarmup = 0\n\
             [distributed]\nlisten = \"127.0.0.1:{port}\"\nexpect_workers = {expect}\njoin_timeout = \"{timeout}\"\n{extra}"
        ),
    )
}

/// `martelli run CONFIG --out OUT` in the background, logging its warnings.
fn coordinator(config: &Path, out: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_martelli"))
        .args(["run", config.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .env("MARTELLI_CALIBRATION", "")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run(config: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", config.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    martelli(&args)
}

#[test]
fn joined_workers_compute_the_single_checksum_extra_ones_wait_and_all_join_the_next_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let workers: Vec<Worker> = (0..3).map(|_| joining(port, &[])).collect();
    let config = join_config(dir.path(), port, 2, "30s", "");
    for round in ["first", "second"] {
        let out = dir.path().join(round);
        let o = run(&config, &out, &[]);
        assert!(o.status.success(), "{round}: {}", text(&o.stderr));
        let results = read_json(&out.join("results.json"));
        let (single, distributed) = split(&results);
        assert_eq!(distributed.len(), 1, "{results}");
        let p = &distributed[0];
        assert_eq!(p["checksum"], single.as_str(), "{round}: {p}");
        assert_eq!(p["workers"], 2, "the third worker never changes the point: {p}");
    }
    // One worker was turned away by each coordinator, and said so.
    let declined = workers
        .iter()
        .filter(|w| w.saw_log("already has its 2 workers"))
        .count();
    assert!(
        declined >= 1,
        "an extra worker is told to wait for the next coordinator"
    );
}

#[test]
fn too_few_workers_fail_after_the_join_timeout_saying_who_came() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let worker = joining(port, &[]);
    let config = join_config(dir.path(), port, 2, "3s", "");
    let out = dir.path().join("out");
    let o = run(&config, &out, &[]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 of 2 workers joined"), "{stderr}");
    assert!(stderr.contains("within 3s"), "{stderr}");
    assert!(
        stderr.contains(&worker.address),
        "names where the worker came from: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "nothing written");
}

#[test]
fn a_worker_with_the_wrong_token_is_refused_and_both_sides_log_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", "right-token\n");
    let wrong = write(dir.path(), "wrong", "wrong-token\n");
    let port = free_port();
    let intruder = joining(port, &["--token-file", wrong.to_str().unwrap()]);
    let good: Vec<Worker> = (0..2)
        .map(|_| joining(port, &["--token-file", token.to_str().unwrap()]))
        .collect();
    let config = join_config(
        dir.path(),
        port,
        2,
        "30s",
        &format!("token_file = \"{}\"\n", token.display()),
    );
    let out = dir.path().join("out");
    let mut coordinator = coordinator(&config, &out);
    let refused = intruder.wait_for_log("the coordinator refused this worker");
    assert!(refused.contains("wrong token"), "{refused}");
    for w in &good {
        w.wait_for_log("joined as");
    }
    let status = coordinator.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut coordinator.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("refused a call: wrong token"),
        "the coordinator logs it: {stderr}"
    );
    let (single, distributed) = split(&read_json(&out.join("results.json")));
    assert_eq!(distributed[0]["checksum"], single.as_str());
}

#[test]
fn a_worker_that_joins_and_vanishes_before_the_run_is_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = join_config(dir.path(), port, 2, "30s", "");
    let out = dir.path().join("out");
    let coordinator = coordinator(&config, &out);
    let early = joining(port, &[]);
    early.wait_for_log("joined as");
    early.signal("-KILL");
    let late: Vec<Worker> = (0..2).map(|_| joining(port, &[])).collect();
    let o = coordinator.wait_with_output().unwrap();
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("no longer answers"), "{stderr}");
    let (single, distributed) = split(&read_json(&out.join("results.json")));
    assert_eq!(distributed[0]["checksum"], single.as_str());
    assert_eq!(distributed[0]["workers"], 2);
    assert_eq!(
        distributed[0]["lost_workers"], 0,
        "the vanished worker was never part of the run"
    );
    drop(late);
}

#[test]
fn join_settings_are_checked_with_their_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("listen = \"nowhere\"\nexpect_workers = 2\n", "distributed.listen"),
        ("listen = \"0.0.0.0:7000\"\n", "distributed.expect_workers"),
        (
            "listen = \"0.0.0.0:7000\"\nexpect_workers = 0\n",
            "distributed.expect_workers",
        ),
        (
            "spawn_local = 2\nexpect_workers = 2\n",
            "distributed.expect_workers",
        ),
        (
            "listen = \"0.0.0.0:7000\"\nexpect_workers = 2\nspawn_local = 2\n",
            "distributed.listen",
        ),
        (
            "listen = \"0.0.0.0:7000\"\nexpect_workers = 2\ntls_cert = \"c.pem\"\n",
            "distributed.tls_key",
        ),
    ];
    for (section, field) in cases {
        let config = write(
            dir.path(),
            "bad.toml",
            &format!("[workload]\ntasks = 10\nkind = \"cpu\"\niterations = 10\n[distributed]\n{section}"),
        );
        let o = martelli(&["validate", config.to_str().unwrap()]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{section}: {stderr}");
        assert!(stderr.contains(field), "{section}: {stderr}");
    }
    let o = martelli(&["worker", "--join", "no-port"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("HOST:PORT"), "{}", text(&o.stderr));
}

#[test]
fn workers_join_over_tls_and_a_plain_worker_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::distributed::certificates(dir.path());
    let (ca, cert, key) = (
        ca.to_str().unwrap(),
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
    );
    let tls = [
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--tls-ca",
        ca,
        "--tls-domain",
        "localhost",
    ];
    let port = free_port();
    let workers: Vec<Worker> = (0..2).map(|_| joining(port, &tls)).collect();
    let config = join_config(
        dir.path(),
        port,
        2,
        "30s",
        &format!(
            "tls_cert = \"{cert}\"\ntls_key = \"{key}\"\ntls_ca = \"{ca}\"\ntls_domain = \"localhost\"\n"
        ),
    );
    let out = dir.path().join("out");
    let o = run(&config, &out, &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (single, distributed) = split(&read_json(&out.join("results.json")));
    assert_eq!(distributed[0]["checksum"], single.as_str());
    drop(workers);
    // A worker that speaks plain HTTP/2 never gets in.
    let plain = joining(port, &[]);
    let config = join_config(
        dir.path(),
        port,
        1,
        "3s",
        &format!(
            "tls_cert = \"{cert}\"\ntls_key = \"{key}\"\ntls_ca = \"{ca}\"\ntls_domain = \"localhost\"\n"
        ),
    );
    let o = run(&config, &dir.path().join("plain"), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("0 of 1 workers joined"),
        "{}",
        text(&o.stderr)
    );
    drop(plain);
}
