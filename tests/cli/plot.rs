//! `martelli plot` and `martelli compare`: saved runs redrawn and overlaid, slower points
//! flagged, and charts that cannot be written leaving the previous ones whole.

use serde_json::Value;

use std::path::Path;

use crate::{martelli, run_fails, run_ok, text, write};

#[test]
fn plot_redraws_and_overlays_saved_runs_and_refuses_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "small.toml",
        "tier = \"multi\"\n[workload]\ntasks = 60\nkind = \"io\"\nio_wait = \"200us\"\n[sweep]\ncores = [1, 2, 3]\nrepeats = 1\nwarmup = 0\n",
    );
    let (_, _, first) = run_ok(&config, &[]);
    let (_, _, second) = run_ok(&config, &[]);
    let charts = dir.path().join("charts");
    let a = first.path().join("results.json");
    let b = second.path().join("results.json");
    let o = martelli(&[
        "plot",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        charts.to_str().unwrap(),
        "--format",
        "svg",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let svg = std::fs::read_to_string(charts.join("speedup.svg")).unwrap();
    assert!(svg.contains("2 runs overlaid"), "overlay title");

    let cases = [
        ("empty.json", "", "the file is empty"),
        (
            "truncated.json",
            "{\"schema_version\": 1, \"points\": [",
            "results.json",
        ),
        (
            "foreign.json",
            "{\"hello\": \"world\"}",
            "not a martelli results.json",
        ),
    ];
    for (name, content, expected) in cases {
        let bad = write(dir.path(), name, content);
        let out = dir.path().join(format!("out-{name}"));
        let o = martelli(&[
            "plot",
            a.to_str().unwrap(),
            bad.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains(expected),
            "{name}: {stderr}"
        );
        assert!(!out.exists(), "{name}: no partial chart");
    }
    let o = martelli(&["plot", "no/such/results.json"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Scales every measured wall time of the points of `tier` in a results document by `factor`
/// (throughput by its inverse), as a run that slowed down would record them.
fn slowed(results: &Value, tier: &str, factor: f64) -> Value {
    let mut r = results.clone();
    for p in r["points"].as_array_mut().unwrap() {
        if p["tier"] == tier {
            for key in ["wall_s", "wall_s_min", "wall_s_max"] {
                p[key] = (p[key].as_f64().unwrap() * factor).into();
            }
            p["tasks_per_s"] = (p["tasks_per_s"].as_f64().unwrap() / factor).into();
        }
    }
    r
}

#[test]
fn compare_flags_slower_points_beyond_the_noise_and_refuses_other_workloads() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "c.toml",
        "tier = \"multi\"\n[workload]\ntasks = 200\nkind = \"cpu\"\niterations = 20000\n[sweep]\ncores = [1, 2]\nrepeats = 3\nwarmup = 0\n",
    );
    let (mut results, _, _out) = run_ok(&config, &[]);
    // Repeats 1% apart, whatever this machine's load did to the real ones: what is tested is
    // how compare judges a change against the noise, not how noisy this machine is.
    for p in results["points"].as_array_mut().unwrap() {
        let wall = p["wall_s"].as_f64().unwrap();
        p["wall_s_min"] = (wall * 0.99).into();
        p["wall_s_max"] = (wall * 1.01).into();
    }
    let save = |name: &str, value: &Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_string(value).unwrap()).unwrap();
        path
    };
    let base = save("base.json", &results);
    let compare = |new: &Path, extra: &[&str]| {
        let mut args = vec!["compare", base.to_str().unwrap(), new.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = martelli(&args);
        (o.status.code(), text(&o.stdout), text(&o.stderr))
    };
    // The same run: no change anywhere, exit 0.
    let (code, stdout, stderr) = compare(&base, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("0 slower, 0 faster, 2 no change"), "{stdout}");
    // The multi tier 30% slower: flagged, exit 1, named.
    let slow = save("slow.json", &slowed(&results, "multi", 1.3));
    let (code, stdout, stderr) = compare(&slow, &[]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("SLOWER (beyond the 5% threshold)"), "{stdout}");
    assert!(stderr.contains("multi / 2 cores (+30.0%)"), "{stderr}");
    // ...but within a 50% threshold it is reported and passes.
    let (code, stdout, _) = compare(&slow, &["--threshold", "50%"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("slower (within the 50% threshold)"), "{stdout}");
    // Faster, as JSON.
    let fast = save("fast.json", &slowed(&results, "multi", 0.5));
    let (code, stdout, _) = compare(&fast, &["--json"]);
    assert_eq!(code, Some(0));
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let multi = json["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["tier"] == "multi")
        .unwrap();
    assert_eq!(multi["change"], "faster", "{json}");
    // Another workload is refused, naming what differs.
    let mut other = results.clone();
    for p in other["points"].as_array_mut().unwrap() {
        p["iterations"] = 40000.into();
    }
    let other = save("other.json", &other);
    let (code, _, stderr) = compare(&other, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("not the same workload (20000 iterations a task against 40000)"),
        "{stderr}"
    );
}

#[test]
fn a_chart_that_cannot_be_written_replaces_none_of_the_previous_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "small.toml",
        "[workload]\ntasks = 40\nkind = \"cpu\"\niterations = 1000\n[sweep]\ncores = [1, 2]\nrepeats = 1\nwarmup = 0\n",
    );
    let out = dir.path().join("out");
    let o = martelli(&["run", config.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let before: Vec<(String, Vec<u8>)> = ["results.json", "results.csv", "speedup.png", "report.html"]
        .iter()
        .map(|name| (name.to_string(), std::fs::read(out.join(name)).unwrap()))
        .collect();
    // The next run cannot draw its second chart: where it would be drawn, a folder stands.
    std::fs::create_dir(out.join(".efficiency.partial.png")).unwrap();
    let stderr = run_fails(&config, &out, &[], 1, &["efficiency.png"]);
    for (name, bytes) in &before {
        assert_eq!(
            &std::fs::read(out.join(name)).unwrap(),
            bytes,
            "{name} was replaced by a run that failed: {stderr}"
        );
    }
    let partials: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial.") && n != ".efficiency.partial.png")
        .collect();
    assert!(partials.is_empty(), "temporaries left: {partials:?}");
}
