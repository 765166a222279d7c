//! Replaying recorded tasks (`kind = "replay"`): a CSV and a `--trace` file run on the tiers
//! with one checksum, the simulator predicts them, and bad files exit 2 naming the file, the
//! position and the field.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::simulate::CALIBRATION;
use crate::{checksums, martelli, read_json, run_fails, run_ok, text, write};

/// 1,500 tasks: log-normal compute around 200 us (a heavy tail), a wait of 1 ms on every
/// tenth, small payloads on some; deterministic. Returns the CSV and its total compute and
/// wait, in seconds.
fn tasks_csv() -> (String, f64, f64) {
    let mut csv = String::from("task,compute_us,wait_us,payload_bytes\n");
    let (mut compute, mut wait) = (0.0, 0.0);
    for i in 0..1500u64 {
        // A deterministic standard normal from two hashed uniforms (Box-Muller).
        let u = |salt: u64| {
            let x = (i * 2 + salt + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11;
            (x as f64 + 0.5) / (1u64 << 53) as f64
        };
        let z = (-2.0 * u(0).ln()).sqrt() * (std::f64::consts::TAU * u(1)).cos();
        let c = 200.0 * (0.8 * z - 0.32).exp();
        let w = if i % 10 == 0 { 1000.0 } else { 0.0 };
        let p = [0, 0, 64, 512][(i % 4) as usize];
        writeln!(csv, "{i},{c:.2},{w},{p}").unwrap();
        compute += c / 1e6;
        wait += w / 1e6;
    }
    (csv, compute, wait)
}

fn replay_config(dir: &Path, from: &str, cores: &str) -> std::path::PathBuf {
    write(
        dir,
        "replay.toml",
        &format!(
            "tier = \"multi\"\n[workload]\nkind = \"replay\"\nfrom = \"{from}\"\n\
             [sweep]\ncores = [{cores}]\nrepeats = 1\nwarmup = 0\n"
        ),
    )
}

fn point<'a>(results: &'a Value, tier: &str, cores: u64) -> &'a Value {
    results["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["tier"] == tier && p["cores"] == cores)
        .unwrap_or_else(|| panic!("no {tier} point at {cores}"))
}

#[test]
fn a_replayed_csv_runs_on_single_and_multi_with_one_checksum_and_the_simulator_predicts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, compute, wait) = tasks_csv();
    write(dir.path(), "tasks.csv", &csv);
    let config = replay_config(dir.path(), "tasks.csv", "1, 2");

    let (results, _, _) = run_ok(&config, &[]);
    let sums = checksums(&results);
    assert_eq!(sums.len(), 2, "{sums:?}");
    assert!(sums.iter().all(|s| s == &sums[0]), "one checksum: {sums:?}");
    let workload = &results["series"][0]["workload"];
    assert_eq!(workload["kind"], "replay");
    assert_eq!(workload["tasks"], 1500);
    assert_eq!(workload["distribution"], "replay");
    assert_eq!(workload["from"], "tasks.csv");
    assert_eq!(workload["records"], 1500);
    assert_eq!(workload["hash"].as_str().unwrap().len(), 16);
    assert_eq!(
        workload["payload_bytes"], 512,
        "the largest payload bounds every task's"
    );
    // The single tier waits out every recorded wait, one after another.
    let single = point(&results, "single", 1);
    assert_eq!(single["tasks_completed"], 1500);
    assert!(single["wall_s"].as_f64().unwrap() >= wait, "{single}");

    // The same tasks in the simulator: on the hand-written calibration (1 ns an iteration, no
    // noise) the single tier's predicted wall is the file's compute and waits.
    let calibration = write(dir.path(), "calibration.toml", CALIBRATION);
    let out = dir.path().join("sim");
    let o = martelli(&[
        "simulate",
        config.to_str().unwrap(),
        "--predict-only",
        "--cores",
        "1,2,16",
        "--calibration",
        calibration.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let predicted = read_json(&out.join("results.json"));
    let points = predicted["points"].as_array().unwrap();
    let cores: Vec<u64> = points.iter().map(|p| p["cores"].as_u64().unwrap()).collect();
    assert_eq!(cores, [1, 2, 16], "{points:?}");
    let wall = points[0]["wall_s"].as_f64().unwrap();
    let total = compute + wait;
    assert!(
        (wall - total).abs() <= 0.10 * total,
        "predicted {wall} s, the file {total} s"
    );
    assert!(points[2]["wall_s"].as_f64().unwrap() < wall / 4.0, "{points:?}");
}

#[test]
fn a_trace_written_by_martelli_replays_to_its_tasks_and_a_changed_file_is_another_workload() {
    let dir = tempfile::tempdir().unwrap();
    let original = write(
        dir.path(),
        "original.toml",
        "tier = \"multi\"\n[workload]\nkind = \"cpu\"\ntasks = 200\niterations = 200000\n\
         size_distribution = \"lognormal\"\nspread = 0.8\n[sweep]\ncores = [1, 2]\nrepeats = 1\nwarmup = 0\n",
    );
    let trace = dir.path().join("trace.json");
    run_ok(&original, &["--trace", trace.to_str().unwrap()]);
    let events = read_json(&trace);
    // Two points traced: the 1-core run is process 1, the 2-core run process 2.
    let slices = |pid: u64| -> Vec<f64> {
        events["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] == "X" && e["cat"] == "task" && e["pid"] == pid)
            .map(|e| e["dur"].as_f64().unwrap())
            .collect()
    };
    let durs = slices(1);
    assert_eq!((durs.len(), slices(2).len()), (200, 200));

    // Every process's tasks, or one process's with `pid`.
    let all = replay_config(dir.path(), "trace.json", "1");
    let (everything, _, _) = run_ok(&all, &[]);
    assert_eq!(everything["series"][0]["workload"]["tasks"], 400);
    let config = write(
        dir.path(),
        "replay.toml",
        "tier = \"multi\"\n[workload]\nkind = \"replay\"\nfrom = \"trace.json\"\npid = 1\n\
         [sweep]\ncores = [1, 2]\nrepeats = 1\nwarmup = 0\n",
    );
    let (results, _, _) = run_ok(&config, &[]);
    let sums = checksums(&results);
    assert!(sums.iter().all(|s| s == &sums[0]), "{sums:?}");
    let workload = &results["series"][0]["workload"];
    assert_eq!(workload["tasks"], 200, "one task per traced slice");
    let mean = durs.iter().sum::<f64>() / durs.len() as f64 * 1e3;
    let recorded = workload["mean_compute_ns"].as_f64().unwrap();
    assert!(
        (recorded - mean).abs() < 1.0,
        "{recorded} ns against the trace's {mean} ns"
    );

    // The same config on another file: compare refuses to call it the same workload.
    let mut changed = std::fs::read_to_string(&trace).unwrap();
    changed.push('\n');
    std::fs::write(&trace, changed).unwrap();
    let (again, _, _) = run_ok(&config, &[]);
    assert_ne!(again["series"][0]["workload"]["hash"], workload["hash"]);
    let save = |name: &str, r: &Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, r.to_string()).unwrap();
        path
    };
    let (a, b) = (save("a.json", &results), save("b.json", &again));
    let o = martelli(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not the same workload (replay file"), "{stderr}");
}

#[test]
fn bad_replay_files_exit_2_naming_the_file_the_position_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = String::with_capacity(20_000_020);
    big.push_str("compute_us\n");
    for _ in 0..=martelli_config::MAX_REPLAY_RECORDS {
        big.push_str("1\n");
    }
    let cases: [(&str, Option<&str>, &str); 8] = [
        ("missing.csv", None, "missing.csv: cannot read it"),
        ("empty.csv", Some(""), "empty.csv: the file is empty"),
        (
            "negative.csv",
            Some("compute_us,wait_us\n10,0\n-4,0\n"),
            "negative.csv: line 3: compute_us: -4 is negative",
        ),
        (
            "word.csv",
            Some("compute_us,wait_us\n10,soon\n"),
            "word.csv: line 2: wait_us: \"soon\" is not a number",
        ),
        (
            "header.csv",
            Some("cpu_us,wait_us\n10,0\n"),
            "header.csv: line 1: no `compute_us` column",
        ),
        (
            "foreign.json",
            Some("{\"hello\": [1, 2]}"),
            "foreign.json: not a trace",
        ),
        (
            "event.json",
            Some("{\"traceEvents\": [{\"ph\": \"X\", \"dur\": 3}, {\"ph\": \"X\", \"dur\": \"x\"}]}"),
            "event.json: event 1: dur:",
        ),
        (
            "big.csv",
            Some(&big),
            "big.csv: line 10000002: more than 10000000 records",
        ),
    ];
    for (name, content, expected) in cases {
        if let Some(content) = content {
            write(dir.path(), name, content);
        }
        let config = replay_config(dir.path(), name, "1");
        let stderr = run_fails(
            &config,
            &dir.path().join("out"),
            &[],
            2,
            &["replay.toml:4:8", "workload.from"],
        );
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
    // What the file gives is refused beside it, naming the field.
    write(dir.path(), "ok.csv", "compute_us\n5\n");
    let config = write(
        dir.path(),
        "both.toml",
        "[workload]\nkind = \"replay\"\nfrom = \"ok.csv\"\ntasks = 10\n[sweep]\ncores = [1]\n",
    );
    run_fails(
        &config,
        &dir.path().join("out"),
        &[],
        2,
        &["workload.tasks", "not with kind = \"replay\""],
    );
    let config = write(
        dir.path(),
        "none.toml",
        "[workload]\nkind = \"replay\"\n[sweep]\ncores = [1]\n",
    );
    run_fails(
        &config,
        &dir.path().join("out"),
        &[],
        2,
        &["workload.from", "missing"],
    );
    assert!(!dir.path().join("out").exists(), "nothing written");
}
