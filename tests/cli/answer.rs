//! The answer a user acts on: the efficiency breakdown on every point past one core (measured
//! and predicted), a verdict whose claims stay within what was measured or simulated, the 9+
//! band predicted by default. (The busy-machine warning's test needs the cores to itself: it
//! lives in `tests/alone`.)

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::{breakdowns_multiply_to_efficiency, martelli, read_json, text, write};

/// The hand-written calibration of `simulate.rs`'s tests.
fn calibration(dir: &Path) -> std::path::PathBuf {
    write(dir, "calibration.toml", crate::simulate::CALIBRATION)
}

fn largest_cores(results: &Value) -> usize {
    results["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["cores"].as_u64().unwrap() as usize)
        .max()
        .unwrap()
}

#[test]
fn simulate_predicts_the_9_plus_band_by_default_with_a_breakdown_and_bounded_claims() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = martelli(&[
        "simulate",
        "configs/cluster.toml",
        "--predict-only",
        "--breakdown",
        "--calibration",
        calibration(dir.path()).to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let results = read_json(&out.join("results.json"));
    let cores: Vec<u64> = results["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["cores"].as_u64().unwrap())
        .collect();
    // No --cores: the sweep's counts and every power of two up to the [cluster]'s 256 cores.
    assert_eq!(cores, [1, 2, 4, 8, 16, 32, 64, 128, 256]);
    assert_eq!(breakdowns_multiply_to_efficiency(&results), 8);
    // The distributed points split communication into serialisation x transfer.
    for p in results["points"].as_array().unwrap() {
        if p["tier"] == "distributed" {
            assert!(p["breakdown"]["transfer"].as_f64().is_some(), "{p}");
        }
    }
    let verdict = results["verdict"].as_str().unwrap();
    assert!(verdict.contains("the simulator predicts"), "{verdict}");
    assert!(verdict.contains("32 nodes x 8 cores"), "{verdict}");
    assert!(verdict.contains("what limits it at 256"), "{verdict}");
    martelli_model::claims_are_bounded(verdict, 256).unwrap();
    assert_eq!(
        results["simulated_cluster"]["cores"], 256,
        "{}",
        results["simulated_cluster"]
    );
    let stdout = text(&o.stdout);
    assert!(stdout.contains("where the efficiency goes"), "{stdout}");
    assert!(out.join("breakdown.png").exists());
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("id=\"heatmap\"") && report.contains("id=\"breakdown\""));
}

/// `martelli run` with `MARTELLI_CALIBRATION` set to `calibration` ("" for none).
fn run_with_calibration(config: &Path, out: &Path, calibration: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_martelli"))
        .args(["run", config.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env("MARTELLI_CALIBRATION", calibration)
        .output()
        .unwrap()
}

#[test]
fn run_predicts_the_band_with_a_calibration_and_says_how_to_get_one_without() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "small.toml",
        "tier = \"multi\"\n[workload]\nname = \"small\"\ntasks = 200\nkind = \"cpu\"\n\
         iterations = 2000\nsize_distribution = \"lognormal\"\nspread = 0.5\n\
         [sweep]\ncores = [1, 2]\nrepeats = 1\nwarmup = 0\n",
    );
    let without = dir.path().join("without");
    let o = run_with_calibration(&config, &without, "");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let results = read_json(&without.join("results.json"));
    let verdict = results["verdict"].as_str().unwrap();
    assert!(verdict.contains("martelli calibrate"), "{verdict}");
    assert!(verdict.contains("measured up to 2 cores"), "{verdict}");
    assert_eq!(breakdowns_multiply_to_efficiency(&results), 1);
    martelli_model::claims_are_bounded(verdict, 2).unwrap();

    let with = dir.path().join("with");
    let cal = calibration(dir.path());
    let o = run_with_calibration(&config, &with, cal.to_str().unwrap());
    assert!(o.status.success(), "{}", text(&o.stderr));
    let results = read_json(&with.join("results.json"));
    let verdict = results["verdict"].as_str().unwrap();
    assert!(verdict.contains("the simulator predicts"), "{verdict}");
    assert!(!verdict.contains("martelli calibrate"), "{verdict}");
    let predicted = results["points"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["predicted"] == true)
        .count();
    assert_eq!(predicted, 9, "1 to 256 cores on the default cluster");
    assert_eq!(breakdowns_multiply_to_efficiency(&results), 9);
    martelli_model::claims_are_bounded(verdict, largest_cores(&results)).unwrap();

    // A calibration that is named and cannot be read is a usage error.
    let o = run_with_calibration(&config, &with, "/nonexistent/calibration.toml");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("MARTELLI_CALIBRATION"),
        "{}",
        text(&o.stderr)
    );
}
