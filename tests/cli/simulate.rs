//! `martelli calibrate` and `martelli simulate`: a real calibration of this machine, then
//! predictions with it, measured and predicted points in one results file, validation, and
//! refusals of impossible clusters and foreign calibration files.

use std::path::Path;

use serde_json::Value;

use crate::{martelli, read_json, text, write};

/// A small CPU-bound config: 300 tasks of 200 us.
const SMALL: &str = "tier = \"multi\"\n[workload]\nname = \"small\"\ntasks = 300\nkind = \"cpu\"\n\
                     task_cost = \"200us\"\n[sweep]\ncores = [1, 2]\nrepeats = 1\n";

/// `martelli simulate --validate --json` of `config` with `calibration`: the rows, and stderr.
/// `simulate --validate [--json]` of `config` against `calibration`, which must succeed.
fn validate(calibration: &Path, config: &Path, json: bool) -> std::process::Output {
    let mut args = vec!["simulate", "--validate"];
    if json {
        args.push("--json");
    }
    args.extend([
        "--calibration",
        calibration.to_str().unwrap(),
        config.to_str().unwrap(),
    ]);
    let o = martelli(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    o
}

fn validate_json(calibration: &Path, config: &Path) -> (Vec<Value>, String) {
    let o = validate(calibration, config, true);
    let rows: Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    let rows = rows.as_array().expect("--json prints a list").clone();
    (rows, text(&o.stderr))
}

/// `simulate --validate` of `config` against `calibration`, as text: its stdout.
fn validate_text(calibration: &Path, config: &Path) -> String {
    text(&validate(calibration, config, false).stdout)
}

fn points(results: &Value) -> Vec<&Value> {
    results["points"].as_array().unwrap().iter().collect()
}

fn calibrate(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("calibration.toml");
    let o = martelli(&["calibrate", "--rounds", "2", "--out", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("cpu kernel"), "{}", text(&o.stdout));
    // Two rounds: what moved between them is said, figure by figure.
    assert!(
        text(&o.stdout).contains("figures moved between rounds"),
        "{}",
        text(&o.stdout)
    );
    let file = std::fs::read_to_string(&path).unwrap();
    assert!(file.contains("[spread]"), "{file}");
    path
}

/// A hand-written calibration file of every required field.
pub(crate) const CALIBRATION: &str = "version = 2\nmartelli_version = \"0.1.0\"\nmeasured_at = \"now\"\nmachine = \"m\"\n\
                          [kernels]\ncpu_ns_per_iteration = 1.0\ntask_fixed_ns = 30.0\nrecord_ns = 50.0\n\
                          payload_generate_ns_per_byte = 0.3\npayload_read_ns_per_byte = 0.2\nio_overshoot_ns = 60000.0\n\
                          [[kernels.memory]]\nworking_set_bytes = 65536\nns_per_iteration = 5.0\n\
                          [multi]\ndispatch_ns = 30.0\nrun_overhead_ns = 10000.0\nmemory_contention = 0.05\n\
                          [distributed]\nlatency_us = 50.0\nbandwidth_mb_per_s = 1000.0\ndispatch_ns = 400.0\n\
                          result_ns = 400.0\nworker_ns = 700.0\nserialize_ns_per_byte = 0.4\n\
                          coordinator_message_ns = 20000.0\nworker_message_ns = 40000.0\nrun_overhead_us = 0.0\n";

#[test]
fn calibrate_then_simulate_measured_and_predicted_across_the_three_bands() {
    let dir = tempfile::tempdir().unwrap();
    let calibration = calibrate(dir.path());
    let file = std::fs::read_to_string(&calibration).unwrap();
    for key in [
        "version = 2",
        "[[multi.wait_cpu]]",
        "[[distributed.worker_wait_cpu]]",
        "cpu_ns_per_iteration",
        "latency_us",
        "bandwidth_mb_per_s",
        "[[kernels.memory]]",
    ] {
        assert!(file.contains(key), "{key} missing from\n{file}");
    }
    let config = write(dir.path(), "small.toml", SMALL);
    // `simulate` of the config into `out` across the three bands, with `extra` flags.
    let simulate = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "simulate",
            config.to_str().unwrap(),
            "--calibration",
            calibration.to_str().unwrap(),
            "--cores",
            "1,2,4,8,16,32,64",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = martelli(&args);
        assert!(o.status.success(), "{}", text(&o.stderr));
        o
    };
    let out = dir.path().join("out");
    let o = simulate(&out, &[]);
    let stdout = text(&o.stdout);
    assert!(stdout.contains("predicted"), "{stdout}");
    let results = read_json(&out.join("results.json"));
    let all = points(&results);
    let measured: Vec<_> = all.iter().filter(|p| p["predicted"] == false).collect();
    let predicted: Vec<_> = all.iter().filter(|p| p["predicted"] == true).collect();
    assert_eq!(measured.len(), 2, "the config's own sweep is measured");
    assert_eq!(predicted.len(), 7);
    // Each band on its tier: 1 single, 2-8 multi (one node of 8), 16+ distributed.
    let tier_of = |cores: u64| {
        predicted
            .iter()
            .find(|p| p["cores"] == cores)
            .map(|p| p["tier"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(tier_of(1), "single");
    assert_eq!(tier_of(8), "multi");
    assert_eq!(tier_of(16), "distributed");
    assert_eq!(tier_of(64), "distributed");
    for p in &predicted {
        assert_eq!(p["series"], "small (predicted)");
        assert_eq!(p["tasks_completed"], 300);
    }
    // 300 tasks of 200 us: more cores keep helping up to 8, at least.
    let speedup = |cores: u64| {
        predicted.iter().find(|p| p["cores"] == cores).unwrap()["speedup"]
            .as_f64()
            .unwrap()
    };
    assert!((speedup(1) - 1.0).abs() < 1e-9);
    assert!(
        speedup(2) > 1.5 && speedup(8) > speedup(4) && speedup(4) > speedup(2),
        "{predicted:?}"
    );
    assert!(
        results["fits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["tier"] == "simulated")
    );
    for chart in ["speedup.png", "efficiency.png", "throughput.png", "latency.png"] {
        assert!(out.join(chart).exists(), "{chart}");
    }

    // The same prediction, twice: the simulator is deterministic.
    let again = dir.path().join("again");
    simulate(&again, &["--predict-only"]);
    let second = read_json(&again.join("results.json"));
    let walls = |r: &Value| -> Vec<f64> {
        points(r)
            .iter()
            .filter(|p| p["predicted"] == true)
            .map(|p| p["wall_s"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(walls(&results), walls(&second));
    assert!(
        points(&second).iter().all(|p| p["predicted"] == true),
        "--predict-only measures nothing"
    );

    // Validation: measured and predicted side by side, as JSON.
    let (rows, _) = validate_json(&calibration, &config);
    let tiers: Vec<&str> = rows.iter().map(|r| r["tier"].as_str().unwrap()).collect();
    assert!(
        tiers.contains(&"single") && tiers.contains(&"multi") && tiers.contains(&"distributed"),
        "{tiers:?}"
    );
    for row in rows {
        for key in ["tier", "cores", "measured_speedup", "predicted_speedup", "error"] {
            assert!(!row[key].is_null(), "{key} missing in {row}");
        }
        let (m, p, e) = (
            row["measured_speedup"].as_f64().unwrap(),
            row["predicted_speedup"].as_f64().unwrap(),
            row["error"].as_f64().unwrap(),
        );
        assert!(m > 0.0 && p > 0.0);
        assert!((e - (p - m) / m).abs() < 1e-9, "{row}");
    }
}

#[test]
fn impossible_clusters_and_foreign_calibration_files_exit_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "small.toml",
        &format!("{SMALL}[cluster]\nnodes = 2\ncores_per_node = 4\n"),
    );
    let o = martelli(&[
        "simulate",
        config.to_str().unwrap(),
        "--cores",
        "1,16",
        "--predict-only",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("16 cores do not fit the simulated cluster of 2 node(s) x 4 cores"));

    let good = CALIBRATION;
    let small = write(dir.path(), "plain.toml", SMALL);
    let ok = write(dir.path(), "ok.toml", good);
    let o = martelli(&[
        "simulate",
        small.to_str().unwrap(),
        "--calibration",
        ok.to_str().unwrap(),
        "--predict-only",
        "--out",
        dir.path().join("ok").to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "a hand-written calibration file works: {}",
        text(&o.stderr)
    );

    let cases = [
        (
            good.replace("version = 2", "version = 1"),
            "version: this file is calibration version 1",
        ),
        (
            good.replace("latency_us = 50.0\n", ""),
            "missing field `latency_us`",
        ),
        (
            good.replace("latency_us = 50.0", "latency_us = -5.0"),
            "distributed.latency_us: must be",
        ),
        (
            good.replace("bandwidth_mb_per_s = 1000.0", "bandwidth_mb_per_s = 0.0"),
            "distributed.bandwidth_mb_per_s",
        ),
        ("not toml at all [".to_string(), "cal.toml:1:"),
    ];
    for (content, words) in cases {
        let file = write(dir.path(), "cal.toml", &content);
        let o = martelli(&[
            "simulate",
            small.to_str().unwrap(),
            "--calibration",
            file.to_str().unwrap(),
            "--predict-only",
        ]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{words}: {stderr}");
        assert!(stderr.contains(words), "{stderr:?} lacks {words:?}");
        assert!(stderr.contains("cal.toml"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let missing = martelli(&[
        "simulate",
        small.to_str().unwrap(),
        "--calibration",
        "/nonexistent/c.toml",
        "--predict-only",
    ]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn validating_waits_reruns_the_calibrations_wait_probe_and_says_when_the_machine_moved() {
    let dir = tempfile::tempdir().unwrap();
    // A hand-written calibration whose probes of 64 threads took 1 ms: no machine runs 4,096
    // waits of 1 ms on 64 threads that fast, so the probes say the machine moved.
    let calibration = CALIBRATION.replace(
        "[distributed]",
        "[[multi.wait_cpu]]\nthreads = 64\nns_per_wait = 5000.0\nprobe_wall_ns = 1000000.0\n\
         [[multi.compute_dilation]]\nthreads = 64\nfactor = 0.2\nprobe_wall_ns = 1000000.0\n[distributed]",
    );
    let calibration = write(dir.path(), "cal.toml", &calibration);
    let waits = write(
        dir.path(),
        "waits.toml",
        "tier = \"auto\"\n[workload]\nname = \"waits\"\ntasks = 200\nkind = \"io\"\nio_wait = \"1ms\"\n\
         [sweep]\ncores = [1, 8]\nrepeats = 1\nwarmup = 0\n[distributed]\nspawn_local = 2\nthreads_per_worker = 4\n",
    );
    let stdout = validate_text(&calibration, &waits);
    assert!(
        stdout.contains("the probe of 64 sleeping threads (the cost of a wait): 1.0 ms when calibrated"),
        "{stdout}"
    );
    assert!(
        stdout.contains("this machine moved by more than ±10% since it was calibrated"),
        "{stdout}"
    );
    // Waits alone do not rest on the slow-down of compute between waits: its probe stays idle.
    let computing = "the probe of 64 threads computing between waits";
    assert!(!stdout.contains(computing), "{stdout}");
    // Tasks that compute and wait do: both probes run, both say the machine moved.
    let mixed = write(
        dir.path(),
        "mixed.toml",
        "tier = \"multi\"\n[workload]\nname = \"mixed\"\ntasks = 200\nkind = \"mixed\"\niterations = 1000\n\
         io_wait = \"1ms\"\n[sweep]\ncores = [1, 8]\nrepeats = 1\nwarmup = 0\n",
    );
    let stdout = validate_text(&calibration, &mixed);
    assert!(
        stdout.contains(&format!(
            "{computing} (how much slower compute runs past the cores): 1.0 ms when calibrated"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("sleeping threads (the cost of a wait)"),
        "{stdout}"
    );
    // The same with --json: the rows stay a JSON list, the probe's words go to stderr.
    let (rows, stderr) = validate_json(&calibration, &waits);
    assert!(!rows.is_empty(), "{rows:?}");
    assert!(stderr.contains("this machine moved"), "{stderr}");
    // The workers' threads that found no task queued, measured and predicted: a thread
    // starves at most once per task it takes, plus once at the end (8 threads, 200 tasks); a
    // worker's count is cumulative, so the coordinator keeps its latest, not the sum.
    let distributed: Vec<&Value> = rows.iter().filter(|r| r["tier"] == "distributed").collect();
    assert!(!distributed.is_empty(), "{rows:?}");
    for row in distributed {
        for key in ["measured_starved_per_task", "predicted_starved_per_task"] {
            let per_task = row[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{key} missing in {row}"));
            assert!((0.0..=1.0 + 8.0 / 200.0).contains(&per_task), "{key}: {row}");
        }
    }
}
