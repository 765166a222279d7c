//! A multi-host test bed in network namespaces (root only; skipped with a message otherwise).
//!
//! Each host is a namespace with its own address on a private /24, wired by a veth link to a
//! bridge that lives in a "switch" namespace of its own; the coordinator is a host too. Nothing
//! is added to the machine's own namespace, so its routes and addresses are never touched.
//! Faults are real: a switch port set down is a silent partition (no RST reaches either side),
//! a `tbf` qdisc on a switch port caps what reaches that host. Everything the bed made is
//! removed when it is dropped, even when the test fails.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::distributed::split;
use crate::{Process, read_json, text, write};

/// The coordinator's port inside its namespace (each bed has its own namespaces).
const PORT: u16 = 7000;

/// K hosts and a coordinator host on one switch.
struct Bed {
    /// Prefix of every name this bed makes (`mt{id}`), unique per test.
    prefix: String,
    /// Third byte of the bed's 10.79.x.0/24.
    id: u8,
    hosts: usize,
    /// Worker processes in the hosts' namespaces, killed with the bed.
    workers: Vec<Process>,
}

/// Tasks `worker` ran in its next run, from its "run finished" line (or "run ended early": a
/// run can end while a slow host still has tasks on their way, done elsewhere).
fn tasks_of_finished_run(worker: &Process) -> u64 {
    let line = worker.wait_for_log_of(&["run finished", "run ended early"]);
    let at = line
        .find("tasks=")
        .map(|i| i + "tasks=".len())
        .unwrap_or_else(|| panic!("{line}"));
    let digits: String = line[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("{line}"))
}

/// Runs `ip` (or `tc`) with `args`; panics with its stderr when it fails.
fn sh(program: &str, args: &[&str]) {
    let o = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        o.status.success(),
        "{program} {}: {}",
        args.join(" "),
        text(&o.stderr)
    );
}

impl Bed {
    /// A bed of `hosts` worker hosts, or `None` (saying why) where namespaces cannot be made.
    fn new(id: u8, hosts: usize) -> Option<Bed> {
        // SAFETY: geteuid only reads the process's credentials.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("netns test bed: skipped: making network namespaces needs root");
            return None;
        }
        if Command::new("ip").arg("-V").output().is_err() {
            eprintln!("netns test bed: skipped: the `ip` command (iproute2) is missing");
            return None;
        }
        let bed = Bed {
            prefix: format!("mt{id}"),
            id,
            hosts,
            workers: Vec::new(),
        };
        bed.remove(); // what a killed earlier run may have left
        let switch = bed.ns("sw");
        sh("ip", &["netns", "add", &switch]);
        sh(
            "ip",
            &["-n", &switch, "link", "add", "name", "br0", "type", "bridge"],
        );
        sh("ip", &["-n", &switch, "link", "set", "br0", "up"]);
        for host in std::iter::once("c".to_string()).chain((0..hosts).map(|i| i.to_string())) {
            let ns = bed.ns(&host);
            let (port, end) = (format!("{}p{host}", bed.prefix), format!("{}e{host}", bed.prefix));
            sh("ip", &["netns", "add", &ns]);
            sh(
                "ip",
                &["link", "add", &port, "type", "veth", "peer", "name", &end],
            );
            sh("ip", &["link", "set", &port, "netns", &switch]);
            sh("ip", &["link", "set", &end, "netns", &ns]);
            sh(
                "ip",
                &["-n", &switch, "link", "set", &port, "master", "br0", "up"],
            );
            let address = format!("{}/24", bed.address(&host));
            sh("ip", &["-n", &ns, "addr", "add", &address, "dev", &end]);
            sh("ip", &["-n", &ns, "link", "set", &end, "up"]);
            sh("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        }
        Some(bed)
    }

    fn ns(&self, host: &str) -> String {
        format!("{}{host}", self.prefix)
    }

    /// The address of host `host` ("c" is the coordinator's).
    fn address(&self, host: &str) -> String {
        let last = match host {
            "c" => 1,
            i => 10 + i.parse::<u8>().expect("a host number"),
        };
        format!("10.79.{}.{last}", self.id)
    }

    /// Starts a worker on host `i` that joins this bed's coordinator.
    fn start_worker(&mut self, i: usize, threads: u32) {
        let coordinator = format!("{}:{PORT}", self.address("c"));
        let worker = Process::spawn(
            Command::new("ip")
                .args(["netns", "exec", &self.ns(&i.to_string())])
                .arg(env!("CARGO_BIN_EXE_martelli"))
                .args(["worker", "--listen", "0.0.0.0:0", "--join", &coordinator])
                .args(["--threads", &threads.to_string()])
                .stdout(Stdio::null()),
        );
        self.workers.push(worker);
    }

    /// `martelli run` in the coordinator's namespace, started now.
    fn coordinator(&self, config: &Path, out: &Path) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.ns("c")])
            .arg(env!("CARGO_BIN_EXE_martelli"))
            .args(["run", config.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the coordinator starts in its namespace")
    }

    /// Sets host `i`'s switch port down (a silent partition) or up again.
    fn link(&self, i: usize, up: bool) {
        let port = format!("{}p{i}", self.prefix);
        sh(
            "ip",
            &[
                "-n",
                &self.ns("sw"),
                "link",
                "set",
                &port,
                if up { "up" } else { "down" },
            ],
        );
    }

    /// Caps what reaches host `i` (the coordinator's tasks and payloads) at `rate`.
    fn cap(&self, i: usize, rate: &str) {
        let port = format!("{}p{i}", self.prefix);
        sh(
            "tc",
            &[
                "-n",
                &self.ns("sw"),
                "qdisc",
                "add",
                "dev",
                &port,
                "root",
                "tbf",
                "rate",
                rate,
                "burst",
                "16kb",
                "latency",
                "400ms",
            ],
        );
    }

    /// Deletes every namespace of this bed (their links go with them).
    fn remove(&self) {
        let names = std::iter::once("sw".to_string())
            .chain(std::iter::once("c".to_string()))
            .chain((0..self.hosts).map(|i| i.to_string()));
        for host in names {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(&host)])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.workers.clear();
        self.remove();
    }
}

/// A config for the bed: `hosts` joined workers of one thread each.
fn bed_config(dir: &Path, hosts: usize, workload: &str) -> std::path::PathBuf {
    write(
        dir,
        "bed.toml",
        &format!(
            "tier = \"distributed\"\n[workload]\n{workload}\n[sweep]\ncores = [1, {hosts}]\nrepeats = 1\nwarmup = 0\n\
             [distributed]\nlisten = \"0.0.0.0:{PORT}\"\nexpect_workers = {hosts}\njoin_timeout = \"30s\"\n\
             heartbeat = \"100ms\"\ntimeout = \"1s\"\n"
        ),
    )
}

/// The distributed point of a finished coordinator, checked against the single tier.
fn finished(coordinator: Child, out: &Path) -> serde_json::Value {
    let o: Output = coordinator.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (single, distributed) = split(&read_json(&out.join("results.json")));
    let p = distributed[0].clone();
    assert_eq!(p["checksum"], single.as_str(), "{p}");
    p
}

#[test]
fn four_hosts_joined_across_a_network_compute_the_single_checksum() {
    let Some(mut bed) = Bed::new(1, 4) else { return };
    for i in 0..4 {
        bed.start_worker(i, 1);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = bed_config(
        dir.path(),
        4,
        "tasks = 400\nkind = \"cpu\"\niterations = 20000\npayload_bytes = 512",
    );
    let out = dir.path().join("out");
    let p = finished(bed.coordinator(&config, &out), &out);
    assert_eq!(p["workers"], 4, "{p}");
    assert_eq!(p["lost_workers"], 0, "{p}");
}

#[test]
fn a_silent_partition_is_detected_the_run_finishes_and_the_healed_host_serves_the_next_run() {
    let Some(mut bed) = Bed::new(2, 3) else { return };
    for i in 0..3 {
        bed.start_worker(i, 1);
    }
    let dir = tempfile::tempdir().unwrap();
    // About 3 s of work on one core: the partition lands mid-run.
    let config = bed_config(dir.path(), 3, "tasks = 300\nkind = \"io\"\nio_wait = \"10ms\"");
    let out = dir.path().join("out");
    let coordinator = bed.coordinator(&config, &out);
    bed.workers[0].wait_for_log("run started");
    std::thread::sleep(Duration::from_millis(300));
    bed.link(0, false);
    let p = finished(coordinator, &out);
    assert_eq!(p["lost_workers"], 1, "the partitioned host is declared lost: {p}");
    assert!(p["retried_tasks"].as_u64().unwrap() > 0, "{p}");
    assert_eq!(p["tasks_completed"], 300, "{p}");
    // Healed: the host offers itself again and serves the next coordinator's run.
    bed.link(0, true);
    let again = dir.path().join("again");
    let p = finished(bed.coordinator(&config, &again), &again);
    assert_eq!(p["workers"], 3, "{p}");
    assert_eq!(p["lost_workers"], 0, "{p}");
}

#[test]
fn a_capped_link_takes_fewer_tasks_and_the_run_still_balances() {
    let Some(mut bed) = Bed::new(3, 3) else { return };
    for i in 0..3 {
        bed.start_worker(i, 1);
    }
    bed.cap(0, "4mbit");
    let dir = tempfile::tempdir().unwrap();
    // 32 KiB of payload a task: 65 ms a task over the capped link, ~1 ms over the others.
    let config = bed_config(
        dir.path(),
        3,
        "tasks = 300\nkind = \"cpu\"\niterations = 200000\npayload_bytes = \"32KiB\"",
    );
    let out = dir.path().join("out");
    let p = finished(bed.coordinator(&config, &out), &out);
    assert_eq!(p["lost_workers"], 0, "{p}");
    let tasks: Vec<u64> = bed.workers.iter().map(tasks_of_finished_run).collect();
    eprintln!("tasks per host, the capped one first: {tasks:?}");
    // Every task ran once, and some twice: the copies of the capped host's last tasks that
    // idle hosts ran at the end (the first result won).
    let reissued = p["reissued_tasks"].as_u64().unwrap();
    let ran = tasks.iter().sum::<u64>();
    assert!(
        (300..=300 + reissued).contains(&ran),
        "{tasks:?}, {reissued} re-issued"
    );
    assert!(
        tasks[0] * 2 < tasks[1].min(tasks[2]),
        "the host behind the capped link takes far fewer tasks: {tasks:?}"
    );
}
