//! End-to-end tests: they run the real `martelli` binary on real configs, as a user would.
//! The distributed tier's tests (real worker processes on 127.0.0.1) live in `distributed.rs`;
//! tests that need the machine's cores to themselves live in the `alone` binary.

mod answer;
mod deploy;
mod distributed;
mod fit;
mod join;
mod lessons;
mod memory;
mod netns;
mod plot;
mod replay;
mod simulate;

#[path = "../common/mod.rs"]
mod common;
pub(crate) use common::*;

use std::path::Path;

#[test]
fn the_quickstart_runs_end_to_end_with_one_checksum() {
    let (results, stdout, out) = run_ok(Path::new("configs/quickstart.toml"), &["--repeats", "1"]);
    assert!(
        stdout.contains("speed-up") && stdout.contains("checksum"),
        "{stdout}"
    );
    assert!(stdout.contains("wrote "), "{stdout}");
    // The report: self-contained, the verdict first, the charts inline.
    let page = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    let verdict = results["verdict"].as_str().unwrap().replace('\'', "&#39;");
    let verdict_at = page.find(&verdict).expect("the report shows the verdict");
    assert!(
        verdict_at < page.find("<h2>Summary</h2>").unwrap(),
        "the verdict comes first"
    );
    assert_eq!(
        page.matches("<svg ").count(),
        5,
        "four inline charts and the breakdown's heat map"
    );
    assert!(
        !page.contains("src=") && !page.contains("href="),
        "nothing to fetch"
    );
    let points = results["points"].as_array().unwrap();
    let tiers: Vec<(&str, u64)> = points
        .iter()
        .map(|p| (p["tier"].as_str().unwrap(), p["cores"].as_u64().unwrap()))
        .collect();
    assert_eq!(tiers, [("single", 1), ("multi", 2), ("multi", 4)]);
    let sums = checksums(&results);
    assert!(sums.iter().all(|c| *c == sums[0] && c.len() == 16), "{sums:?}");
    // The public schema: every documented field is there.
    for key in [
        "series",
        "tier",
        "cores",
        "wall_s",
        "wall_s_min",
        "wall_s_max",
        "tasks_per_s",
        "speedup",
        "efficiency",
        "latency_us",
        "first_result_s",
        "tasks_completed",
        "checksum",
        "cpu_s",
        "mean_task_us",
        "iterations",
    ] {
        assert!(points[0].get(key).is_some(), "point lacks {key}");
    }
    for key in ["p50", "p95", "p99"] {
        assert!(
            points[0]["latency_us"][key].as_f64().unwrap() > 0.0,
            "latency {key}"
        );
    }
    assert_eq!(points[0]["speedup"].as_f64(), Some(1.0));
    assert!(
        // The wording depends on the timings (kappa may fit to 0 on a busy machine); that a
        // verdict was given does not.
        stdout.contains("verdict: ") && !stdout.contains("no verdict"),
        "three core counts give a verdict: {stdout}"
    );
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    if logical < 4 {
        // 4 threads of compute on fewer cores measure the machine: the verdict says so, and
        // the oversubscribed point is shown but not fitted.
        assert!(
            stdout.contains(&format!(
                "points past this machine's {logical} cores were left out"
            )) && !stdout.contains("buys nothing"),
            "{stdout}"
        );
        assert_eq!(results["points"][2]["oversubscribed"], true);
        assert_eq!(results["fits"][0]["excluded_cores"][0], 4);
    } else {
        assert!(
            results["fits"][0]["usl"]["sigma"].as_f64().is_some(),
            "the fit is stored"
        );
    }
    for key in ["martelli_version", "config", "machine", "series", "started_at"] {
        assert!(results.get(key).is_some(), "results lack {key}");
    }
    assert!(results["machine"]["logical_cores"].as_u64().unwrap() >= 1);
    assert!(
        results["series"][0]["workload"]["iterations"].as_u64().unwrap() > 0,
        "calibrated count recorded"
    );
    for chart in ["speedup.png", "efficiency.png", "throughput.png", "latency.png"] {
        let bytes = std::fs::read(out.path().join(chart)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{chart} is a PNG");
        // Width and height from the IHDR chunk; a drawn chart compresses to tens of KB at least.
        let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!((size(16), size(20)), (1600, 1000), "{chart}");
        assert!(
            bytes.len() > 20_000,
            "{chart} is not blank: {} bytes",
            bytes.len()
        );
    }
    let csv = std::fs::read_to_string(out.path().join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(&sums[0])), "{csv}");
}

#[test]
fn every_shipped_config_validates() {
    let mut configs: Vec<String> = [
        "configs",
        "configs/lessons",
        "configs/validate",
        "configs/validate/wide",
    ]
    .iter()
    .flat_map(|dir| std::fs::read_dir(dir).unwrap())
    .map(|e| e.unwrap().path().display().to_string())
    .filter(|p| p.ends_with(".toml"))
    .collect();
    configs.sort();
    assert!(configs.len() >= 7, "{configs:?}");
    let mut args = vec!["validate"];
    args.extend(configs.iter().map(String::as_str));
    let o = martelli(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).lines().filter(|l| l.starts_with("ok: ")).count(),
        configs.len()
    );
}

/// A small config of each kind runs through the binary with one checksum on every point.
#[test]
fn every_kind_runs_with_one_checksum_across_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let kinds = [
        (
            "cpu",
            "iterations = 20000\nsize_distribution = \"lognormal\"\nspread = 1.0",
        ),
        ("memory", "iterations = 2000\nworking_set = \"4MiB\""),
        (
            "memory",
            "iterations = 20000\nworking_set = \"3MiB\"\naccess = \"stream\"\nserial_fraction = 0.1",
        ),
        ("io", "io_wait = \"200us\"\nsize_distribution = \"uniform\""),
        (
            "mixed",
            "iterations = 5000\nio_wait = \"100us\"\nserial_fraction = 0.2\npayload_bytes = \"1KiB\"",
        ),
    ];
    for (kind, extra) in kinds {
        let config = write(
            dir.path(),
            &format!("{kind}.toml"),
            &format!(
                "tier = \"multi\"\n[workload]\ntasks = 200\nkind = \"{kind}\"\n{extra}\n[sweep]\ncores = [1, 2, 3]\nrepeats = 2\nwarmup = 0\n"
            ),
        );
        let (results, _, _) = run_ok(&config, &[]);
        let sums = checksums(&results);
        assert_eq!(sums.len(), 3, "{kind}");
        assert!(sums.iter().all(|c| *c == sums[0]), "{kind}: {sums:?}");
        // Three core counts: enough for a USL fit and a verdict.
        let fit = &results["fits"][0];
        assert_eq!(fit["tier"], "multi", "{kind}");
        let verdict = results["verdict"].as_str().unwrap();
        // Compute past this machine's cores is not fitted; waits overlap, and are.
        let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
        let waits = extra.contains("io_wait");
        if logical < 3 && !waits {
            assert!(verdict.contains("this machine's"), "{kind}: {verdict}");
        } else {
            assert!(
                fit["usl"]["sigma"].as_f64().unwrap() >= 0.0 && fit["usl"]["kappa"].as_f64().unwrap() >= 0.0
            );
            // Waits are said to need concurrency, compute gets what the fits can bound.
            let fitted =
                verdict.contains("USL") || verdict.contains("sigma") || verdict.contains("stops growing");
            let said = fitted || (waits && verdict.contains("waits need concurrency, not cores"));
            assert!(said, "{kind}: {verdict}");
        }
    }
}

#[test]
fn varied_and_weak_sweeps_report_one_point_per_series_and_core_count() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "vary.toml",
        "tier = \"auto\"\n[workload]\ntasks = 100\nkind = \"cpu\"\niterations = 1000\n\
         [sweep]\ncores = [1, 2]\nrepeats = 1\nwarmup = 0\nscaling = \"weak\"\nvary = { iterations = [100, 1000] }\n",
    );
    let (results, stdout, _) = run_ok(&config, &[]);
    assert!(stdout.contains("iterations=100"), "{stdout}");
    let points = results["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    // Weak scaling: the task count grows with the cores; the two series differ.
    assert_eq!(points[1]["tasks"].as_u64(), Some(200));
    assert_ne!(points[0]["checksum"], points[2]["checksum"]);
    assert!(
        results["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("auto"))
    );
    // Two core counts per series cannot support a scaling law: the verdict says what was
    // measured and claims no limit.
    let verdict = results["verdict"].as_str().unwrap();
    assert!(verdict.contains("measured up to 2 cores"), "{verdict}");
    assert!(
        !verdict.contains("USL") && !verdict.contains("Amdahl"),
        "{verdict}"
    );
}

/// Bad input: one clear message naming the file and line, exit code 2, no panic, and the
/// results of an earlier run left exactly as they were.
#[test]
fn bad_input_exits_2_with_a_located_message_and_keeps_earlier_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("results.json"), "earlier results").unwrap();
    let base = "[workload]\ntasks = 10\nkind = \"cpu\"\niterations = 10\n";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown key",
            format!("{base}colour = \"red\"\n"),
            ":5:1: unknown field `colour`",
        ),
        (
            "wrong type",
            "[workload]\ntasks = \"ten\"\n".into(),
            ":2:9: invalid type",
        ),
        (
            "zero tasks",
            base.replace("tasks = 10", "tasks = 0"),
            ":2:9: workload.tasks",
        ),
        (
            "zero cores",
            format!("{base}[sweep]\ncores = [0]\n"),
            ":6:10: sweep.cores[0]",
        ),
        (
            "negative serial fraction",
            format!("{base}serial_fraction = -0.5\n"),
            ":5:19: workload.serial_fraction",
        ),
        (
            "serial fraction of one",
            format!("{base}serial_fraction = 1\n"),
            "workload.serial_fraction",
        ),
        (
            "bad duration",
            base.replace("iterations = 10", "task_cost = \"2 fortnights\""),
            ":4:13: unknown unit",
        ),
        (
            "unknown tier",
            format!("tier = \"cloud\"\n{base}"),
            ":1:8: unknown variant `cloud`",
        ),
        (
            "unknown kind",
            base.replace("\"cpu\"", "\"quantum\""),
            ":3:8: unknown variant `quantum`",
        ),
        ("empty file", String::new(), "the file is empty"),
        (
            "an unknown dispatch",
            format!("{base}[executor]\ndispatch = \"pigeon\"\n"),
            ":6:12: unknown variant `pigeon`, expected `futures` or `queue`",
        ),
        (
            "a switch interval without a GIL",
            format!("{base}[executor]\nswitch_interval = \"5ms\"\n"),
            ":6:19: executor.switch_interval: only meaningful with gil = true",
        ),
        (
            "executor options on the single tier",
            format!("tier = \"single\"\n{base}[executor]\ngil = true\n"),
            ":7:7: executor.gil: tier \"single\" is the executors' 1-core baseline",
        ),
        (
            "processes on the single tier",
            format!("tier = \"single\"\n{base}[executor]\nmodel = \"processes\"\n"),
            "executor.model: tier \"single\" is the executors' 1-core baseline",
        ),
        (
            "executor options on the distributed tier",
            format!(
                "tier = \"distributed\"\n{base}[distributed]\nspawn_local = 1\n[executor]\nmodel = \"async\"\n"
            ),
            "executor: [executor] sets how the multi tier runs its tasks",
        ),
        (
            "a tiny switch interval, varied",
            format!("{base}[sweep]\nvary = {{ switch_interval = [\"1us\"] }}\n[executor]\ngil = true\n"),
            "sweep.vary.switch_interval[0]: must be between 50us and 1s",
        ),
        (
            "concurrency without async",
            format!("{base}[executor]\nconcurrency = 100\n"),
            ":6:15: executor.concurrency: only meaningful with model = \"async\", or on tier \"single\"",
        ),
        (
            "a GIL with async",
            format!("{base}[executor]\nmodel = \"async\"\ngil = true\n"),
            "executor.gil: gil = true with model = \"async\" means nothing here",
        ),
        (
            "no concurrency",
            format!("{base}[executor]\nmodel = \"async\"\nconcurrency = 0\n"),
            ":7:15: executor.concurrency: must be between 1 and 10000000",
        ),
        (
            "a cluster of no nodes",
            format!("{base}[cluster]\nnodes = 0\n"),
            ":6:9: cluster.nodes: must be between 1",
        ),
        (
            "a cluster with no bandwidth",
            format!("{base}[cluster]\nbandwidth = \"0GB/s\"\n"),
            ":6:13: cluster.bandwidth",
        ),
        (
            "a negative latency",
            format!("{base}[cluster]\nlatency = \"-1ms\"\n"),
            ":6:11: cluster.latency: \"-1ms\" is not a duration: it must be zero or positive",
        ),
        (
            "a bandwidth without /s",
            format!("{base}[cluster]\nbandwidth = \"1GB\"\n"),
            "cluster.bandwidth: \"1GB\" is not a rate",
        ),
        (
            "truncated file",
            "[workload]\ntasks = 10\nkind = \"cp".into(),
            ":3:",
        ),
    ];
    for (case, content, expected) in cases {
        let config = write(dir.path(), "bad.toml", &content);
        let o = martelli(&["run", config.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{case}: {stderr}");
        assert!(
            stderr.contains("bad.toml") && stderr.contains(expected),
            "{case}: {stderr:?} lacks {expected:?}"
        );
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
        assert_eq!(
            std::fs::read_to_string(out.join("results.json")).unwrap(),
            "earlier results",
            "{case}"
        );
        assert!(!out.join("results.csv").exists(), "{case}");
        // `validate` agrees with `run`.
        let v = martelli(&["validate", config.to_str().unwrap()]);
        assert_eq!(v.status.code(), Some(2), "{case}: validate");
    }
    let missing = martelli(&["run", "no/such/config.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("no/such/config.toml"),
        "{}",
        text(&missing.stderr)
    );
    let directory = martelli(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(directory.status.code(), Some(2), "a folder is not a config");
}

#[test]
fn bad_flags_and_unavailable_tiers_exit_2() {
    for args in [
        &["run", "configs/quickstart.toml", "--cores", "0"][..],
        &["run", "configs/quickstart.toml", "--cores", "two"],
        &["run", "configs/quickstart.toml", "--tier", "cloud"],
        &["run", "configs/quickstart.toml", "--repeats", "0"],
        &["run", "configs/quickstart.toml", "--tier", "distributed"],
        &["frobnicate"],
    ] {
        let o = martelli(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(!text(&o.stderr).contains("panicked"), "{args:?}");
    }
    let o = martelli(&["run", "configs/quickstart.toml", "--tier", "distributed"]);
    assert!(
        text(&o.stderr).contains("needs a [distributed] section"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn help_explains_the_tiers() {
    let o = martelli(&["--help"]);
    assert!(o.status.success());
    let help = text(&o.stdout);
    assert!(
        help.contains("2-8 cores") && help.contains("run") && help.contains("validate"),
        "{help}"
    );
    let o = martelli(&["run", "--help"]);
    assert!(text(&o.stdout).contains("--cores"));
}

#[test]
fn a_sweep_over_task_sizes_reports_each_tiers_metg() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "metg.toml",
        "tier = \"multi\"\n[workload]\nkind = \"cpu\"\ntasks = 100\ntask_cost = \"10us\"\n\
         [sweep]\ncores = [1, 2]\nrepeats = 1\nwarmup = 0\n\
         vary = { task_cost = [\"2us\", \"20us\", \"200us\"], tasks = [5000, 500, 50] }\n",
    );
    let (results, stdout, out) = run_ok(&config, &[]);
    assert!(
        stdout.contains("METG (the smallest task that keeps 50% efficiency): single at 1 core"),
        "{stdout}"
    );
    let metg = results["metg"].as_array().expect("results.json carries the METG");
    let tiers: Vec<(&str, u64)> = metg
        .iter()
        .map(|m| (m["tier"].as_str().unwrap(), m["cores"].as_u64().unwrap()))
        .collect();
    assert_eq!(tiers, [("single", 1), ("multi", 2)]);
    for m in metg {
        let sizes: Vec<f64> = m["curve"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["task_s"].as_f64().unwrap())
            .collect();
        assert_eq!(
            sizes,
            [2e-6, 2e-5, 2e-4],
            "one point per series, smallest first: {m}"
        );
        for p in m["curve"].as_array().unwrap() {
            let e = p["efficiency"].as_f64().unwrap();
            assert!(e > 0.0 && e.is_finite(), "{m}");
        }
    }
    assert!(out.path().join("metg.png").exists(), "the METG chart is drawn");
    let page = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(page.contains("Task size: METG"), "and shown in the report");
}

#[test]
fn bad_outputs_and_bad_files_are_refused_before_anything_runs_each_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a-file", "");
    // --out under a file: refused before measuring (exit 2, no table), the OS's reason once.
    let out = file.join("sub");
    let o = martelli(&["run", "configs/quickstart.toml", "--out", out.to_str().unwrap()]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(!text(&o.stdout).contains("speed-up"), "nothing was measured");
    assert_eq!(stderr.matches("is not a folder").count(), 1, "{stderr}");
    assert!(!out.exists(), "nothing is created");
    // A missing config: its OS error once.
    let o = martelli(&["run", "configs/no-such-config.toml"]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");
    // validate checks every file, says which are bad, and fails.
    let o = martelli(&[
        "validate",
        "configs/no-such-config.toml",
        "configs/quickstart.toml",
        file.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stdout.contains("ok: configs/quickstart.toml"),
        "the good one is still checked: {stdout}"
    );
    assert!(stderr.contains("2 of 3 configs are bad"), "{stderr}");
    assert!(
        stderr.contains("a-file"),
        "the second bad one is named too: {stderr}"
    );
    // The help no longer calls the distributed tier unavailable.
    let help = text(&martelli(&["run", "--help"]).stdout);
    assert!(!help.contains("not available"), "{help}");
}

#[test]
fn a_tier_from_the_command_line_is_checked_as_if_the_file_said_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "ex.toml",
        "tier = \"multi\"\n[workload]\ntasks = 10\nkind = \"cpu\"\niterations = 10\n[executor]\ngil = true\n\
         [distributed]\nspawn_local = 1\n",
    );
    // The distributed tier would silently drop the [executor]: refused, as in the file.
    let stderr = run_fails(
        &config,
        &dir.path().join("o"),
        &["--tier", "distributed"],
        2,
        &["[executor]"],
    );
    assert!(stderr.contains("ex.toml:6:1"), "{stderr}");
}
