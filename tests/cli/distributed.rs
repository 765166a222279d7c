//! The distributed tier end to end: real `martelli worker` processes on 127.0.0.1 ephemeral
//! ports, a real coordinator (`martelli run`), real faults (SIGKILL, SIGSTOP), real refusals.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{Process, checksums, martelli, read_json, run_fails, run_ok, text, write};

/// A local worker process on an ephemeral 127.0.0.1 port, killed when the test ends
/// (whatever happens): a [`Process`] with its address.
pub(crate) struct Worker {
    process: Process,
    pub(crate) address: String,
}

impl Worker {
    pub(crate) fn start(extra: &[&str]) -> Worker {
        Worker::spawn(Command::new(env!("CARGO_BIN_EXE_martelli")), extra)
    }

    /// A worker whose address space is limited to `kib` KiB (`ulimit -v`).
    pub(crate) fn start_limited(kib: u64, extra: &[&str]) -> Worker {
        Worker::in_shell(&format!("ulimit -v {kib}"), extra)
    }

    /// A worker started inside the control group whose `cgroup.procs` is `procs`.
    pub(crate) fn start_in_group(procs: &std::path::Path, extra: &[&str]) -> Worker {
        Worker::in_shell(&format!("echo $$ > {}", procs.display()), extra)
    }

    /// A worker that a shell execs after running `first`.
    fn in_shell(first: &str, extra: &[&str]) -> Worker {
        let mut shell = Command::new("sh");
        shell.args([
            "-c",
            &format!("{first} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_martelli"),
        ]);
        Worker::spawn(shell, extra)
    }

    fn spawn(mut command: Command, extra: &[&str]) -> Worker {
        command
            .args(["worker", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped());
        let mut process = Process::spawn(&mut command);
        let line = process.first_stdout_line();
        let address = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the worker prints `listening on ADDR`, not {line:?}"))
            .to_string();
        Worker { process, address }
    }

    /// Waits until the worker logs that a run started on it.
    pub(crate) fn wait_for_run(&self) {
        self.wait_for_log("run started");
    }

    /// Waits until a run on the worker has sent its first results: tasks run there, and more
    /// are in flight.
    pub(crate) fn wait_for_results(&self) {
        self.wait_for_log("first results sent");
    }
}

impl std::ops::Deref for Worker {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}

impl std::ops::DerefMut for Worker {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// A config on the distributed tier over `workers`: `workload` is the `[workload]` table's
/// lines, `cores` the sweep's list, one run a point, `extra` more `[distributed]` lines.
pub(crate) fn on_workers(
    dir: &Path,
    workload: &str,
    cores: &str,
    workers: &[&Worker],
    extra: &str,
) -> std::path::PathBuf {
    let config = format!(
        "tier = \"distributed\"\n[workload]\n{workload}\n[sweep]\ncores = [{cores}]\nrepeats = 1\n\
         warmup = 0\n[distributed]\nworkers = {}\n{extra}",
        workers_list(workers)
    );
    write(dir, "distributed.toml", &config)
}

fn workers_list(workers: &[&Worker]) -> String {
    let quoted: Vec<String> = workers.iter().map(|w| format!("\"{}\"", w.address)).collect();
    format!("[{}]", quoted.join(", "))
}

/// The single tier's checksum and the distributed points of a results file.
pub(crate) fn split(results: &Value) -> (String, Vec<Value>) {
    let points = results["points"].as_array().unwrap();
    let single = points.iter().find(|p| p["tier"] == "single").unwrap()["checksum"]
        .as_str()
        .unwrap()
        .to_string();
    let distributed = points
        .iter()
        .filter(|p| p["tier"] == "distributed")
        .cloned()
        .collect();
    (single, distributed)
}

const KINDS: [(&str, &str); 5] = [
    (
        "cpu",
        "iterations = 20000\nsize_distribution = \"lognormal\"\nspread = 1.0\npayload_bytes = 100",
    ),
    ("memory", "iterations = 2000\nworking_set = \"2MiB\""),
    (
        "memory",
        "iterations = 20000\nworking_set = \"3MiB\"\naccess = \"stream\"",
    ),
    ("io", "io_wait = \"300us\""),
    (
        "mixed",
        "iterations = 5000\nio_wait = \"100us\"\nserial_fraction = 0.2\npayload_bytes = \"1KiB\"",
    ),
];

#[test]
fn spawned_workers_compute_the_single_tier_checksum_for_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, extra) in KINDS {
        let config = write(
            dir.path(),
            &format!("{kind}.toml"),
            &format!(
                "tier = \"auto\"\n[workload]\ntasks = 150\nkind = \"{kind}\"\n{extra}\n\
                 [sweep]\ncores = [1, 2, 3, 4]\nrepeats = 1\nwarmup = 0\n\
                 [distributed]\nspawn_local = 2\nthreads_per_worker = 2\n"
            ),
        );
        let (results, stdout, _) = run_ok(&config, &[]);
        let sums = checksums(&results);
        assert_eq!(
            sums.len(),
            7,
            "{kind}: single + 3 multi + 3 distributed\n{stdout}"
        );
        assert!(sums.iter().all(|c| *c == sums[0]), "{kind}: {sums:?}");
        let (_, distributed) = split(&results);
        assert_eq!(
            distributed[2]["workers"], 2,
            "{kind}: 4 cores = 2 workers x 2 threads"
        );
        assert!(distributed[2]["bytes_sent"].as_u64().unwrap() > 0);
        assert_eq!(distributed[2]["lost_workers"], 0);
    }
}

#[test]
fn every_feeding_policy_computes_the_single_tier_checksum_on_skewed_tasks() {
    let dir = tempfile::tempdir().unwrap();
    for policy in ["guided", "credit", "pull"] {
        let config = write(
            dir.path(),
            &format!("{policy}.toml"),
            &format!(
                "tier = \"distributed\"\n[workload]\ntasks = 300\nkind = \"cpu\"\ntask_cost = \"20us\"\n\
                 size_distribution = \"lognormal\"\nspread = 1.0\n\
                 [sweep]\ncores = [1, 3]\nrepeats = 1\nwarmup = 0\n\
                 [distributed]\nspawn_local = 2\nthreads_per_worker = 2\npolicy = \"{policy}\"\n"
            ),
        );
        let (results, stdout, _) = run_ok(&config, &[]);
        let sums = checksums(&results);
        assert_eq!(sums.len(), 2, "{policy}: single + distributed\n{stdout}");
        assert_eq!(sums[0], sums[1], "{policy}: {stdout}");
        assert_eq!(results["points"][1]["tasks_completed"], 300, "{policy}: {stdout}");
    }
}

#[test]
fn manually_started_workers_compute_the_single_tier_checksum_for_every_kind() {
    let (a, b) = (
        Worker::start(&["--threads", "2"]),
        Worker::start(&["--threads", "1"]),
    );
    let dir = tempfile::tempdir().unwrap();
    for (kind, extra) in KINDS {
        let config = write(
            dir.path(),
            &format!("manual-{kind}.toml"),
            &format!(
                "tier = \"distributed\"\n[workload]\ntasks = 200\nkind = \"{kind}\"\n{extra}\n\
                 [sweep]\ncores = [1, 2, 3]\nrepeats = 2\nwarmup = 0\n[distributed]\nworkers = {}\n",
                workers_list(&[&a, &b])
            ),
        );
        let (results, _, _) = run_ok(&config, &[]);
        let (single, distributed) = split(&results);
        assert_eq!(distributed.len(), 2, "{kind}");
        for p in &distributed {
            assert_eq!(p["checksum"], single.as_str(), "{kind}: {p}");
            assert_eq!(p["retried_tasks"], 0, "{kind}");
        }
    }
    // More cores than the workers have threads: refused before anything runs.
    let config = dir.path().join("manual-cpu.toml");
    run_fails(
        &config,
        &dir.path().join("x"),
        &["--cores", "1,4"],
        2,
        &["offers 3 cores"],
    );
    assert!(!dir.path().join("x").exists());
}

/// A config for the fault tests: long enough that a fault lands mid-run, quick heartbeats.
fn fault_config(dir: &Path, workers: &[&Worker], tasks: u64) -> std::path::PathBuf {
    write(
        dir,
        "fault.toml",
        &format!(
            "tier = \"distributed\"\n[workload]\ntasks = {tasks}\nkind = \"cpu\"\niterations = 2000000\npayload_bytes = 256\n\
             [sweep]\ncores = [1, {}]\nrepeats = 1\nwarmup = 0\n\
             [distributed]\nworkers = {}\nheartbeat = \"100ms\"\ntimeout = \"1s\"\n",
            workers.len(),
            workers_list(workers)
        ),
    )
}

fn run_in_background(config: &Path, out: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_martelli"))
        .args(["run", config.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .env("MARTELLI_CALIBRATION", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a fault test's coordinator and checks what surviving one lost worker means: the
/// run succeeds with the single tier's checksum, every task done once, the loss and the
/// re-sent tasks counted. Returns the distributed point.
fn survived_one_loss(coordinator: Child, dir: &Path, tasks: u64) -> Value {
    let o = coordinator.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let results = read_json(&dir.join("out/results.json"));
    let (single, distributed) = split(&results);
    let p = distributed[0].clone();
    assert_eq!(p["checksum"], single.as_str(), "{p}");
    assert_eq!(p["lost_workers"], 1, "{p}");
    assert!(p["retried_tasks"].as_u64().unwrap() > 0, "{p}");
    assert_eq!(p["tasks_completed"], tasks, "{p}");
    p
}

#[test]
fn killing_one_of_three_workers_mid_run_loses_no_work() {
    let workers: Vec<Worker> = (0..3).map(|_| Worker::start(&["--threads", "1"])).collect();
    let refs: Vec<&Worker> = workers.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let config = fault_config(dir.path(), &refs, 600);
    let coordinator = run_in_background(&config, &dir.path().join("out"));
    workers[0].wait_for_results();
    workers[0].signal("-KILL");
    survived_one_loss(coordinator, dir.path(), 600);
}

#[test]
fn a_stopped_worker_is_declared_lost_and_its_late_results_do_not_count() {
    let mut workers: Vec<Worker> = (0..3).map(|_| Worker::start(&["--threads", "1"])).collect();
    let refs: Vec<&Worker> = workers.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    // Long enough that the run is still going when the stopped worker resumes.
    let config = fault_config(dir.path(), &refs, 1300);
    let coordinator = run_in_background(&config, &dir.path().join("out"));
    workers[0].wait_for_results();
    workers[0].signal("-STOP");
    // Past the 1 s heartbeat timeout (declared lost, its tasks re-queued), but within the 2 s
    // keepalive: it resumes on a live connection and sends its stale results.
    std::thread::sleep(Duration::from_millis(1500));
    workers[0].signal("-CONT");
    let p = survived_one_loss(coordinator, dir.path(), 1300);
    assert!(
        p["dropped_results"].as_u64().unwrap() > 0,
        "late results are dropped and counted: {p}"
    );
    assert!(workers[0].is_running(), "the stopped worker keeps serving");
}

/// A sweep over three one-thread workers, quick heartbeats, a warm-up and two repeats: long
/// enough that a worker killed in the warm-up of the first point misses its later runs.
fn sweep_config(dir: &Path, workers: &[&Worker], cores: &str) -> std::path::PathBuf {
    write(
        dir,
        "sweep.toml",
        &format!(
            "tier = \"distributed\"\n[workload]\ntasks = 300\nkind = \"cpu\"\niterations = 2000000\n\
             [sweep]\ncores = {cores}\nrepeats = 2\nwarmup = 1\n\
             [distributed]\nworkers = {}\nheartbeat = \"100ms\"\ntimeout = \"1s\"\n",
            workers_list(workers)
        ),
    )
}

/// A sweep of `cores` over three one-thread workers in which worker `victim` is killed during
/// its first run; the workers, the folder and what the coordinator said.
fn sweep_losing_a_worker(
    cores: &str,
    victim: usize,
) -> (Vec<Worker>, tempfile::TempDir, std::process::Output) {
    let workers: Vec<Worker> = (0..3).map(|_| Worker::start(&["--threads", "1"])).collect();
    let refs: Vec<&Worker> = workers.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let config = sweep_config(dir.path(), &refs, cores);
    let coordinator = run_in_background(&config, &dir.path().join("out"));
    workers[victim].wait_for_results();
    workers[victim].signal("-KILL");
    let o = coordinator.wait_with_output().unwrap();
    (workers, dir, o)
}

#[test]
fn a_worker_lost_in_a_warm_up_is_dropped_and_the_sweep_goes_on_without_it() {
    // Two cores: the first two workers; the third takes over when one of them is gone.
    let (workers, dir, o) = sweep_losing_a_worker("[2]", 0);
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "worker {} is dropped for the rest of the sweep",
            workers[0].address
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("refused"),
        "a worker that is gone refused nothing: {stderr}"
    );
    let results = read_json(&dir.path().join("out/results.json"));
    let (single, distributed) = split(&results);
    let p = &distributed[0];
    assert_eq!(p["checksum"], single.as_str(), "{p}");
    assert_eq!(p["tasks_completed"], 300, "{p}");
    assert_eq!(p["workers"], 2, "the repeats ran on the two workers left: {p}");
    assert!(workers[2].saw_log("run started"), "the third worker took over");
}

#[test]
fn a_sweep_that_loses_the_threads_a_point_needs_fails_naming_the_point() {
    let (workers, dir, o) = sweep_losing_a_worker("[3]", 1);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("on 3 cores")
            && stderr.contains("the point needs 3 threads and the workers left have 2")
            && stderr.contains(&workers[1].address),
        "{stderr}"
    );
    assert!(!dir.path().join("out/results.json").exists(), "nothing written");
}

#[test]
fn a_working_set_the_worker_cannot_allocate_is_refused_and_the_worker_serves_on() {
    // 1 GiB of address space; a peer asks for 1.5 GiB, within --max-working-set. (The point at
    // 1 core is the single tier's, run by the coordinator: the worker serves the 2-core one.)
    let mut worker = Worker::start_limited(1 << 20, &["--threads", "2", "--max-working-set", "8GiB"]);
    let dir = tempfile::tempdir().unwrap();
    // A 1.5 GiB working set asked of `on`; exit code and stderr.
    let greedy_run = |on: &Worker| {
        let config = write(
            dir.path(),
            "greedy.toml",
            &format!(
                "tier = \"distributed\"\n[workload]\ntasks = 4\nkind = \"memory\"\niterations = 10\n\
                 working_set = \"1536MiB\"\n[sweep]\ncores = [2]\nrepeats = 1\nwarmup = 0\n\
                 [distributed]\nworkers = {}\n",
                workers_list(&[on])
            ),
        );
        let o = martelli(&[
            "run",
            config.to_str().unwrap(),
            "--tier",
            "distributed",
            "--out",
            dir.path().join("out").to_str().unwrap(),
        ]);
        (o.status.code(), text(&o.stderr))
    };
    let (code, stderr) = greedy_run(&worker);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot allocate a working set"), "{stderr}");
    assert!(worker.is_running(), "the worker did not abort");
    // Past the limit it is refused before anything is allocated.
    let limited = Worker::start(&["--threads", "2", "--max-working-set", "1GiB"]);
    let (code, stderr) = greedy_run(&limited);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--max-working-set"), "{stderr}");
}

#[test]
fn a_stalled_but_live_worker_does_not_hold_up_the_end_of_a_run() {
    let workers: Vec<Worker> = (0..2).map(|_| Worker::start(&["--threads", "1"])).collect();
    let refs: Vec<&Worker> = workers.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    // A minute's timeout: the stalled worker is never declared lost within the test.
    let config = on_workers(
        dir.path(),
        "tasks = 600\nkind = \"cpu\"\niterations = 2000000",
        "2",
        &refs,
        "heartbeat = \"100ms\"\ntimeout = \"60s\"",
    );
    let mut coordinator = run_in_background(&config, &dir.path().join("out"));
    workers[1].wait_for_results();
    // The second worker stalls with tasks in flight, alive (its connection open) but silent.
    workers[1].signal("-STOP");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while coordinator.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run waits for the stalled worker's tasks"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    workers[1].signal("-CONT");
    let o = coordinator.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let results = read_json(&dir.path().join("out/results.json"));
    let (single, distributed) = split(&results);
    let p = &distributed[0];
    assert_eq!(p["checksum"], single.as_str(), "{p}");
    assert_eq!(p["lost_workers"], 0, "{p}");
    assert!(p["reissued_tasks"].as_u64().unwrap() > 0, "{p}");
    assert!(
        text(&o.stdout).contains("tasks re-issued to idle workers at the end"),
        "the count is shown: {}",
        text(&o.stdout)
    );
}

#[test]
fn losing_every_worker_fails_the_run_clearly() {
    let worker = Worker::start(&["--threads", "1"]);
    let second = Worker::start(&["--threads", "1"]);
    let dir = tempfile::tempdir().unwrap();
    let config = fault_config(dir.path(), &[&worker, &second], 2000);
    let coordinator = run_in_background(&config, &dir.path().join("out"));
    worker.wait_for_results();
    second.wait_for_results();
    worker.signal("-KILL");
    second.signal("-KILL");
    let o = coordinator.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("workers were lost") || stderr.contains("lost"),
        "{stderr}"
    );
    assert!(!dir.path().join("out/results.json").exists(), "nothing written");
}

#[test]
fn tokens_are_required_and_checked_and_the_worker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", "s3cret-token\n");
    let wrong = write(dir.path(), "wrong", "guess\n");
    let worker = Worker::start(&["--threads", "2", "--token-file", token.to_str().unwrap()]);
    let body = format!(
        "tier = \"distributed\"\n[workload]\ntasks = 20\nkind = \"cpu\"\niterations = 1000\n[sweep]\ncores = [1, 1]\n\
         repeats = 1\nwarmup = 0\n[distributed]\nworkers = [\"{}\"]\n",
        worker.address
    );
    let cases = [
        ("none.toml", String::new(), "requires a token"),
        (
            "wrong.toml",
            format!("token_file = \"{}\"\n", wrong.display()),
            "wrong token",
        ),
    ];
    for (name, extra, expected) in cases {
        let config = write(dir.path(), name, &format!("{body}{extra}"));
        let (out, extra) = (dir.path().join("o"), ["--tier", "distributed", "--cores", "1,2"]);
        run_fails(&config, &out, &extra, 1, &[&worker.address, expected]);
    }
    assert!(!dir.path().join("o").exists(), "nothing ran, nothing written");
    // Same worker, right token: it still serves.
    let config = write(
        dir.path(),
        "right.toml",
        &format!("{body}token_file = \"{}\"\n", token.display()),
    );
    let (results, _, _) = run_ok(&config, &["--cores", "1,2", "--tier", "distributed"]);
    let (single, distributed) = split(&results);
    assert_eq!(distributed[0]["checksum"], single.as_str());
}

#[test]
fn unreachable_workers_and_oversized_messages_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused.
    let config = write(
        dir.path(),
        "unreachable.toml",
        "tier = \"distributed\"\n[workload]\ntasks = 10\nkind = \"cpu\"\niterations = 10\n[sweep]\ncores = [1, 2]\n\
         [distributed]\nworkers = [\"127.0.0.1:1\"]\ntimeout = \"2s\"\n",
    );
    let out = dir.path().join("unreachable");
    run_fails(&config, &out, &[], 1, &["worker 127.0.0.1:1: cannot connect"]);

    let worker = Worker::start(&["--threads", "2", "--max-message", "64KiB"]);
    let body = |payload: &str| {
        format!(
            "tier = \"distributed\"\n[workload]\ntasks = 10\nkind = \"cpu\"\niterations = 10\npayload_bytes = \"{payload}\"\n\
             [sweep]\ncores = [1, 1]\nrepeats = 1\nwarmup = 0\n[distributed]\nworkers = [\"{}\"]\n",
            worker.address
        )
    };
    let config = write(dir.path(), "big.toml", &body("128KiB"));
    let out = dir.path().join("big");
    run_fails(
        &config,
        &out,
        &["--cores", "1,2"],
        1,
        &[&worker.address, "message limit"],
    );
    let config = write(dir.path(), "small.toml", &body("1KiB"));
    // The worker still serves.
    let (results, _, _) = run_ok(&config, &["--cores", "1,2"]);
    let (single, distributed) = split(&results);
    assert_eq!(distributed[0]["checksum"], single.as_str());
}

/// A CA and a worker certificate for `localhost` and 127.0.0.1, made for the test.
pub(crate) fn certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (
        write(dir, "ca.pem", &ca_cert.pem()),
        write(dir, "worker.pem", &cert.pem()),
        write(dir, "worker.key", &key.serialize_pem()),
    )
}

#[test]
fn workers_serve_over_tls_and_plain_clients_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let worker = Worker::start(&[
        "--threads",
        "2",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let port = worker.address.rsplit_once(':').unwrap().1;
    let body = |extra: &str| {
        format!(
            "tier = \"distributed\"\n[workload]\ntasks = 100\nkind = \"cpu\"\niterations = 5000\npayload_bytes = 64\n\
             [sweep]\ncores = [1, 2]\nrepeats = 1\nwarmup = 0\n[distributed]\nworkers = [\"localhost:{port}\"]\n{extra}"
        )
    };
    let config = write(
        dir.path(),
        "tls.toml",
        &body(&format!("tls_ca = \"{}\"\n", ca.display())),
    );
    let (results, _, _) = run_ok(&config, &[]);
    let (single, distributed) = split(&results);
    assert_eq!(distributed[0]["checksum"], single.as_str());
    let plain = write(dir.path(), "plain.toml", &body(""));
    let expected = format!("worker localhost:{port}");
    run_fails(&plain, &dir.path().join("plain"), &[], 1, &[&expected]);
}

#[test]
fn a_coordinator_that_dies_leaves_its_workers_serving() {
    let mut worker = Worker::start(&["--threads", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let config = fault_config(dir.path(), &[&worker], 400);
    let config_text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("cores = [1, 1]", "cores = [1, 2]");
    let config = write(dir.path(), "fault.toml", &config_text);
    let mut coordinator = run_in_background(&config, &dir.path().join("first"));
    worker.wait_for_run();
    coordinator.kill().unwrap();
    coordinator.wait().unwrap();
    assert!(worker.is_running());
    // The next coordinator gets the worker's full attention.
    let small = write(
        dir.path(),
        "small.toml",
        &config_text.replace("tasks = 400", "tasks = 50"),
    );
    let (results, _, _) = run_ok(&small, &[]);
    let (single, distributed) = split(&results);
    assert_eq!(distributed[0]["checksum"], single.as_str());
}

#[test]
fn a_traced_run_writes_one_slice_per_task_on_every_tier_in_chrome_trace_format() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "traced.toml",
        "tier = \"auto\"\n[workload]\ntasks = 120\nkind = \"mixed\"\niterations = 2000\nio_wait = \"200us\"\npayload_bytes = 64\n\
         [sweep]\ncores = [1, 2]\nrepeats = 2\nwarmup = 1\n[distributed]\nspawn_local = 2\nthreads_per_worker = 1\n",
    );
    let trace = dir.path().join("trace.json");
    let (_, _, out) = crate::run_ok(&config, &["--trace", trace.to_str().unwrap()]);
    let page = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(
        page.contains("one bar per task"),
        "the report shows one point's timeline"
    );
    let doc = read_json(&trace);
    assert_eq!(doc["metadata"]["capped"], false, "{}", doc["metadata"]);
    let events = doc["traceEvents"].as_array().unwrap();
    let process = |pid: &Value| -> String {
        events
            .iter()
            .find(|e| e["ph"] == "M" && e["name"] == "process_name" && &e["pid"] == pid)
            .map(|e| e["args"]["name"].as_str().unwrap().to_string())
            .expect("every slice's process is named")
    };
    let mut tasks: std::collections::BTreeMap<String, u64> = Default::default();
    let mut tracks: std::collections::BTreeMap<(u64, u64), Vec<(f64, f64)>> = Default::default();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
        assert!(ts >= 0.0 && dur >= 0.0, "{e}");
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        tracks.entry(key).or_default().push((ts, ts + dur));
        if e["cat"] == "task" {
            let name = process(&e["pid"]);
            let point: Vec<&str> = name.split(" / ").collect();
            *tasks.entry(format!("{} / {}", point[1], point[2])).or_default() += 1;
        }
    }
    // One slice per task at every point (no serial phase here), on each tier.
    for point in ["single / 1 core", "multi / 2 cores", "distributed / 2 cores"] {
        assert_eq!(tasks.get(point), Some(&120), "{point}: {tasks:?}");
    }
    // Each track's slices in time order, none overlapping the next.
    for (key, slices) in &tracks {
        for pair in slices.windows(2) {
            assert!(
                pair[0].0 <= pair[1].0 && pair[0].1 <= pair[1].0 + 1e-3,
                "{key:?}: {pair:?}"
            );
        }
    }
    let names: Vec<String> = events
        .iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap().to_string())
        .collect();
    for wanted in [
        "distributed / 2 cores / coordinator",
        "distributed / 2 cores / worker 0",
        "distributed / 2 cores / worker 1",
    ] {
        assert!(names.iter().any(|n| n.ends_with(wanted)), "{wanted} in {names:?}");
    }
}

#[test]
fn a_coordinator_with_a_token_warns_about_a_worker_that_takes_calls_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", "s3cret-token\n");
    let open = Worker::start(&["--threads", "1"]);
    let config = write(
        dir.path(),
        "open.toml",
        &format!(
            "tier = \"distributed\"\n[workload]\ntasks = 20\nkind = \"cpu\"\niterations = 1000\n[sweep]\ncores = [1, 1]\n\
             repeats = 1\nwarmup = 0\n[distributed]\nworkers = [\"{}\"]\ntoken_file = \"{}\"\n",
            open.address,
            token.display()
        ),
    );
    let out = dir.path().join("out");
    let o = crate::martelli(&["run", config.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("takes calls without a token"), "{stderr}");
    assert!(stderr.contains(&open.address), "{stderr}");
}
