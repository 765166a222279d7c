//! `martelli fit`: scaling laws fitted to a CSV, and bad CSV files refused with the line.

use serde_json::Value;

use crate::{martelli, text, write};

/// Throughput of the USL with σ = 0.05, κ = 0.0008, λ = 1000 at `cores`.
fn usl(cores: f64) -> f64 {
    1000.0 * cores / (1.0 + 0.05 * (cores - 1.0) + 0.0008 * cores * (cores - 1.0))
}

#[test]
fn fit_recovers_the_usl_from_a_csv_and_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = [2, 4, 8, 16, 24, 32, 48, 64]
        .iter()
        .map(|&n| format!("{n},{}\n", usl(n as f64)))
        .collect();
    let csv = write(dir.path(), "usl.csv", &format!("cores,throughput\n{rows}"));
    let o = martelli(&["fit", csv.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let fit: Value = serde_json::from_slice(&o.stdout).unwrap();
    let close = |key: &str, want: f64| {
        let got = fit[key].as_f64().unwrap();
        assert!(((got - want) / want).abs() < 0.01, "{key}: {got} vs {want}");
    };
    close("sigma", 0.05);
    close("kappa", 0.0008);
    close("lambda", 1000.0);
    close("peak_cores", (0.95f64 / 0.0008).sqrt());
    assert!(fit["r2"].as_f64().unwrap() > 0.9999);
    assert!(fit["max_speedup"].as_f64().unwrap() > 1.0);
    assert!(fit.get("sigma_interval").is_some());
    // Wall times work as well as throughput: throughput is 1 / wall_s.
    let rows: String = [1, 2, 4, 8, 16]
        .iter()
        .map(|&n| format!("{n},{}\n", 1.0 / usl(n as f64)))
        .collect();
    let csv = write(dir.path(), "wall.csv", &format!("cores,wall_s\n{rows}"));
    let o = martelli(&["fit", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("sigma (contention)"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn fit_rejects_bad_csv_files_with_the_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("empty.csv", "", "the file is empty"),
        ("header.csv", "cores,speed\n1,2\n", ":1: no `throughput`"),
        (
            "cell.csv",
            "cores,throughput\n1,10\n2,abc\n4,30\n",
            ":3: column `throughput`: \"abc\" is not a number",
        ),
        (
            "ragged.csv",
            "cores,throughput\n1,10\n2\n",
            ":3: 1 cells where the header has 2",
        ),
        (
            "zero.csv",
            "cores,throughput\n1,10\n2,0\n4,30\n",
            ":3: throughput must be a positive number",
        ),
        (
            "negative.csv",
            "cores,throughput\n1,10\n2,-4\n4,30\n",
            ":3: throughput must be a positive number",
        ),
        (
            "one.csv",
            "cores,throughput\n4,10\n4,10\n",
            "needs at least 3 distinct core counts",
        ),
    ];
    for (name, content, expected) in cases {
        let csv = write(dir.path(), name, content);
        let o = martelli(&["fit", csv.to_str().unwrap()]);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains(expected),
            "{name}: {stderr:?} lacks {expected:?}"
        );
        assert!(
            !stderr.contains("NaN") && !stderr.contains("panicked"),
            "{name}: {stderr}"
        );
    }
    let o = martelli(&["fit", "no/such/file.csv"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn fit_reads_quoted_labels_fits_each_curve_and_says_when_more_cores_slow_it_down() {
    let dir = tempfile::tempdir().unwrap();
    // martelli's own results.csv layout: a label with a comma (quoted), two series, and a
    // series that slows down as cores are added.
    let mut csv = String::from("series,tier,cores,tasks_per_s,predicted\n");
    for n in [1, 2, 4, 8, 16] {
        let tier = if n == 1 { "single" } else { "multi" };
        let x = usl(f64::from(n));
        csv.push_str(&format!("\"threads, no GIL\",{tier},{n},{x},false\n"));
        csv.push_str(&format!(
            "gil,{tier},{n},{},false\n",
            100.0 / (1.0 + 0.1 * f64::from(n - 1))
        ));
    }
    let csv = write(dir.path(), "results.csv", &csv);
    let o = martelli(&["fit", csv.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out: Value = serde_json::from_slice(&o.stdout).unwrap();
    let curves = out["curves"].as_array().unwrap();
    assert_eq!(curves.len(), 2, "one fit per curve, never pooled: {out}");
    assert_eq!(curves[0]["series"], "threads, no GIL");
    assert!(
        (curves[0]["sigma"].as_f64().unwrap() - 0.05).abs() < 0.001,
        "{out}"
    );
    assert!(curves[0]["r2"].as_f64().unwrap() > 0.999, "{out}");
    assert_eq!(curves[1]["series"], "gil");
    assert_eq!(curves[1]["amdahl"]["slows_down"], true, "{out}");
    assert!(
        curves[1]["amdahl"]["max_speedup"].is_null(),
        "no 'limit' below 1x: {out}"
    );
    let o = martelli(&["fit", csv.to_str().unwrap()]);
    let stdout = text(&o.stdout);
    assert!(stdout.contains("it slows down"), "{stdout}");
    assert!(!stdout.contains("limit 0."), "{stdout}");

    // codahale/usl's example, with its loss, gives its figures.
    let codahale = [
        955.16, 1878.91, 2688.01, 3548.68, 4315.54, 5130.43, 5931.37, 6531.08, 7219.8, 7867.61, 8278.71,
        8646.7, 9047.84, 9426.55, 9645.37, 9897.24, 10097.6, 10240.5, 10532.39, 10798.52, 11151.43, 11518.63,
        11806.0, 12089.37, 12075.41, 12177.29, 12211.41, 12158.93, 12155.27, 12118.04, 12140.4, 12074.39,
    ];
    let rows: String = codahale
        .iter()
        .enumerate()
        .map(|(i, x)| format!("{},{x}\n", i + 1))
        .collect();
    let csv = write(dir.path(), "codahale.csv", &format!("cores,throughput\n{rows}"));
    let o = martelli(&["fit", csv.to_str().unwrap(), "--json", "--loss", "absolute"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let fit: Value = serde_json::from_slice(&o.stdout).unwrap();
    for (key, want) in [
        ("sigma", 0.02671591),
        ("kappa", 7.690945e-4),
        ("lambda", 995.6486),
    ] {
        let got = fit[key].as_f64().unwrap();
        assert!(((got - want) / want).abs() < 0.01, "{key}: {got} vs {want}");
    }
    assert_eq!(fit["loss"], "absolute");
}
