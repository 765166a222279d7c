//! The lecture's claims, each reproduced by its config in `configs/lessons/`, run small: what
//! holds on any machine however busy (counts, orderings, lower bounds set by the waits, CPU
//! time that one lock caps), and one checksum across the executor options of a config. How
//! fast each one is on a quiet machine is the lesson configs' own output, not a test's.

use std::path::Path;

use serde_json::Value;

use crate::{checksums, run_ok, write};

/// The lesson config at a smaller size: `from` replaced by `to` in its text.
fn small(dir: &Path, lesson: &str, replacements: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = std::fs::read_to_string(format!("configs/lessons/{lesson}.toml")).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "{lesson} has no {from:?}");
        text = text.replace(from, to);
    }
    write(dir, &format!("{lesson}.toml"), &text)
}

fn point<'a>(results: &'a Value, series: &str, cores: u64) -> &'a Value {
    results["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["series"] == series && p["cores"] == cores)
        .unwrap_or_else(|| panic!("no point {series} on {cores} cores"))
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap()
}

fn one_checksum(results: &Value) {
    let sums = checksums(results);
    assert!(
        sums.iter().all(|c| *c == sums[0]),
        "one checksum across options: {sums:?}"
    );
}

#[test]
fn lesson_1_cpu_bound_threads_under_a_gil_are_no_faster_than_one_core() {
    let dir = tempfile::tempdir().unwrap();
    let config = small(dir.path(), "1-gil-cpu", &[("tasks = 400", "tasks = 60")]);
    let (results, _, _out) = run_ok(&config, &["--cores", "1,2", "--repeats", "1"]);
    one_checksum(&results);
    // One lock lets one thread compute at a time: the run's CPU time cannot pass its wall
    // time by much, however many cores are free (a busy machine only lowers it).
    let gil = point(&results, "gil=true", 2);
    let (cpu, wall) = (f(gil, "cpu_s"), f(gil, "wall_s"));
    assert!(
        cpu <= 1.25 * wall,
        "with a GIL, 2 threads used {cpu}s of CPU in {wall}s"
    );
    assert_eq!(gil["tasks_completed"], 60);
}

#[test]
fn lesson_2_io_bound_threads_under_a_gil_still_overlap_their_waits() {
    let dir = tempfile::tempdir().unwrap();
    let config = small(dir.path(), "2-gil-io", &[("tasks = 400", "tasks = 40")]);
    let (results, _, _out) = run_ok(&config, &["--cores", "1,4", "--repeats", "1"]);
    one_checksum(&results);
    let speedup = f(point(&results, "gil=true", 4), "speedup");
    assert!(
        speedup >= 2.0,
        "waits overlap under a GIL: 4 threads gave {speedup}x"
    );
}

#[test]
fn lesson_3_processes_escape_the_gil_and_a_large_payload_eats_the_gain() {
    let dir = tempfile::tempdir().unwrap();
    let config = small(dir.path(), "3-processes-vs-gil", &[("tasks = 200", "tasks = 40")]);
    let (results, _, _out) = run_ok(&config, &["--cores", "1,2", "--repeats", "1"]);
    let threads = point(&results, "model=threads, payload_bytes=0", 2);
    let processes = point(&results, "model=processes, payload_bytes=0", 2);
    let shipped = point(&results, "model=processes, payload_bytes=4MiB", 2);
    // The same tasks through a pipe to other processes: the same checksum as threads.
    assert_eq!(threads["checksum"], processes["checksum"]);
    assert_eq!(processes["tasks_completed"], 40);
    assert_eq!(shipped["tasks_completed"], 40);
    // Threads share one lock: their CPU time stays within their wall time.
    let (cpu, wall) = (f(threads, "cpu_s"), f(threads, "wall_s"));
    assert!(
        cpu <= 1.25 * wall,
        "threads under a GIL used {cpu}s of CPU in {wall}s"
    );
    // Shipping 4 MiB a task is what eats the gain: the pool's owner generates and writes
    // every byte into the pipes, CPU the payload-free pool does not spend.
    let (with, without) = (f(shipped, "cpu_s"), f(processes, "cpu_s"));
    assert!(
        with > without,
        "the owner of a pool shipping 4 MiB a task used {with}s of CPU, without payloads {without}s"
    );
}

#[test]
fn lesson_4_async_runs_waits_of_3_1_and_1_seconds_in_a_bit_over_3() {
    let dir = tempfile::tempdir().unwrap();
    // The notes' own example, at full size: 8 s of waiting in all.
    let config = small(dir.path(), "4-async-three-waits", &[]);
    let (results, _, _out) = run_ok(&config, &[]);
    one_checksum(&results);
    let (threads, event_loop) = (
        point(&results, "model=threads", 1),
        point(&results, "model=async", 1),
    );
    // Lower bounds the waits set, and orderings no busy machine can turn round: one wait
    // after the other takes at least 3 + 1 + 1 s; awaited together, at least the longest,
    // and less than in turn; the event loop's first result is a 1 s wait's, in turn the 3 s.
    let (sequential, awaited) = (f(threads, "wall_s"), f(event_loop, "wall_s"));
    assert!(sequential >= 5.0, "one wait after the other: {sequential}s");
    assert!(
        awaited >= 3.0 && awaited < sequential,
        "async on one thread: {awaited}s"
    );
    let (first_async, first_turn) = (f(event_loop, "first_result_s"), f(threads, "first_result_s"));
    assert!(
        (1.0..3.0).contains(&first_async),
        "async's first result: {first_async}s"
    );
    assert!(
        first_turn >= 3.0,
        "in turn, the 3 s wait comes first: {first_turn}s"
    );
    // One core only: no scaling law to fit, and no verdict line saying so.
    assert_eq!(results["verdict"], "", "{}", results["verdict"]);
}

#[test]
fn lesson_5_async_holds_many_waits_in_less_memory_than_a_thread_per_wait() {
    let dir = tempfile::tempdir().unwrap();
    let config = small(
        dir.path(),
        "5-async-100k-waits",
        &[
            ("tasks = 100000", "tasks = 2000"),
            ("concurrency = 100000", "concurrency = 2000"),
            ("io_wait = \"1s\"", "io_wait = \"200ms\""),
        ],
    );
    let (results, _, _out) = run_ok(&config, &[]);
    one_checksum(&results);
    let event_loop = point(&results, "model=async", 1);
    let threads = point(&results, "model=threads", 1);
    for p in [event_loop, threads] {
        assert_eq!(p["tasks_completed"], 2000);
    }
    let (a, t) = (f(event_loop, "peak_rss_mib"), f(threads, "peak_rss_mib"));
    assert!(a < t, "async peak {a} MiB vs a thread per wait {t} MiB");
}

#[test]
fn lesson_6_a_queue_gives_the_first_result_long_before_gathered_futures() {
    let dir = tempfile::tempdir().unwrap();
    let config = small(
        dir.path(),
        "6-queue-vs-futures",
        &[("tasks = 1000", "tasks = 200")],
    );
    let (results, _, _out) = run_ok(&config, &["--cores", "1,2", "--repeats", "1"]);
    one_checksum(&results);
    let futures = point(&results, "dispatch=futures", 2);
    let queue = point(&results, "dispatch=queue", 2);
    // Gathered futures reach the caller at the end of the run; the queue's first result after
    // about one task.
    assert!(
        (f(futures, "first_result_s") - f(futures, "wall_s")).abs() <= 0.05 * f(futures, "wall_s"),
        "{futures}"
    );
    assert!(
        f(queue, "first_result_s") < f(futures, "first_result_s") / 2.0,
        "queue {} vs futures {}",
        queue["first_result_s"],
        futures["first_result_s"]
    );
}

#[test]
fn lesson_7_one_workload_runs_on_all_three_tiers_with_one_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let config = small(
        dir.path(),
        "7-martelli-tiers",
        &[
            ("tasks = 1000", "tasks = 64"),
            ("task_cost = \"2ms\"", "task_cost = \"500us\""),
        ],
    );
    let (results, _, _out) = run_ok(&config, &["--cores", "1,2,12", "--repeats", "1"]);
    one_checksum(&results);
    let tiers: Vec<(String, u64)> = results["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["tier"].as_str().unwrap().to_string(),
                p["cores"].as_u64().unwrap(),
            )
        })
        .collect();
    for (tier, cores) in [
        ("single", 1),
        ("multi", 2),
        ("multi", 12),
        ("distributed", 2),
        ("distributed", 12),
    ] {
        assert!(
            tiers.contains(&(tier.to_string(), cores)),
            "{tier} on {cores}: {tiers:?}"
        );
    }
}
