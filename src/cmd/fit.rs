//! `martelli fit DATA.csv`: scaling laws fitted to any measurements, not only martelli's.

use std::path::Path;

use martelli_model::{FitError, Observation, UslFit, fit_amdahl, fit_usl};
use serde_json::json;

use crate::cli::FitArgs;
use crate::exit::UsageError;

/// Reads the CSV, fits the USL and Amdahl's law, prints the figures.
pub fn fit(args: FitArgs) -> anyhow::Result<()> {
    let (points, lines) = read_csv(&args.data, args.series.as_deref(), args.tier.as_deref())?;
    let path = args.data.display();
    // A bad point is reported at its line of the file.
    let explain = |law: &str, e: FitError| match e {
        FitError::BadPoint { index, what } => UsageError(format!("{path}:{}: {what}", lines[index])),
        other => UsageError(format!("{path}: cannot fit {law}: {other}")),
    };
    let usl = fit_usl(&points).map_err(|e| explain("the USL", e))?;
    let amdahl = fit_amdahl(&points).map_err(|e| explain("Amdahl's law", e))?;
    let peak = usl.peak_cores();
    let extrapolated = peak.is_some_and(|p| p > usl.max_measured_cores);
    if args.json {
        let interval = |v: f64, se: Option<f64>| UslFit::interval(v, se).map(|(lo, hi)| [lo, hi]);
        let out = json!({
            "sigma": usl.sigma,
            "kappa": usl.kappa,
            "lambda": usl.lambda,
            "r2": usl.r2,
            "peak_cores": peak,
            "max_speedup": usl.max_speedup(),
            "sigma_interval": interval(usl.sigma, usl.sigma_se),
            "kappa_interval": interval(usl.kappa, usl.kappa_se),
            "lambda_interval": interval(usl.lambda, usl.lambda_se),
            "points": usl.points,
            "max_measured_cores": usl.max_measured_cores,
            "peak_is_extrapolated": extrapolated,
            "amdahl": {
                "sigma": amdahl.sigma,
                "lambda": amdahl.lambda,
                "r2": amdahl.r2,
                "max_speedup": amdahl.max_speedup(),
            },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let pm = |v: f64, se: Option<f64>| match UslFit::interval(v, se) {
        Some((lo, hi)) => format!("{v:.6} (95% interval {lo:.6} to {hi:.6})"),
        None => format!("{v:.6} (too few points for an interval)"),
    };
    println!(
        "USL fit of {} points from {path} (cores up to {}):",
        usl.points, usl.max_measured_cores
    );
    println!("  sigma (contention)  = {}", pm(usl.sigma, usl.sigma_se));
    println!("  kappa (coherency)   = {}", pm(usl.kappa, usl.kappa_se));
    println!("  lambda (1 core)     = {}", pm(usl.lambda, usl.lambda_se));
    println!("  R^2                 = {:.5}", usl.r2);
    match (peak, usl.max_speedup()) {
        (Some(p), Some(s)) => println!(
            "  throughput peaks at {p:.1} cores, {s:.2}x one core{}",
            if extrapolated {
                " (extrapolated: beyond the cores measured)"
            } else {
                ""
            }
        ),
        (None, Some(s)) => println!("  no peak (kappa = 0): speed-up approaches {s:.2}x (Amdahl's limit)"),
        _ => println!("  no peak and no limit: the data scale linearly"),
    }
    println!(
        "Amdahl fit: sigma = {:.6}, limit {} (R^2 {:.5})",
        amdahl.sigma,
        amdahl
            .max_speedup()
            .map_or_else(|| "none".into(), |s| format!("{s:.2}x")),
        amdahl.r2
    );
    Ok(())
}

/// Reads `cores` and throughput from a CSV file, with each point's line number. Every error names the file, the line and the
/// column.
fn read_csv(
    path: &Path,
    series: Option<&str>,
    tier: Option<&str>,
) -> Result<(Vec<Observation>, Vec<usize>), UsageError> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| UsageError(format!("cannot read {name}: {e}")))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(UsageError(format!(
            "{name}: the file is empty: expected a header such as `cores,throughput`"
        )));
    };
    let columns: Vec<String> = header
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(|c| c.trim().to_lowercase())
        .collect();
    let find = |wanted: &str| columns.iter().position(|c| c == wanted);
    let cores = find("cores").ok_or_else(|| {
        UsageError(format!(
            "{name}:1: no `cores` column in the header {header:?}: expected e.g. `cores,throughput`"
        ))
    })?;
    let (value, inverse) = match (find("throughput"), find("tasks_per_s"), find("wall_s")) {
        (Some(c), _, _) | (None, Some(c), _) => (c, false),
        (None, None, Some(c)) => (c, true),
        _ => {
            return Err(UsageError(format!(
                "{name}:1: no `throughput` (or `tasks_per_s`, or `wall_s`) column in the header {header:?}"
            )));
        }
    };
    let filters: Vec<(usize, &str)> = [("series", series), ("tier", tier)]
        .into_iter()
        .filter_map(|(column, wanted)| {
            let wanted = wanted?;
            Some(find(column).map(|c| (c, wanted)).ok_or_else(|| {
                UsageError(format!(
                    "{name}:1: --{column} given but the header has no `{column}` column"
                ))
            }))
        })
        .collect::<Result<_, _>>()?;
    let (mut points, mut line_numbers) = (Vec::new(), Vec::new());
    for (index, line) in lines {
        let line_no = index + 1;
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != columns.len() {
            return Err(UsageError(format!(
                "{name}:{line_no}: {} cells where the header has {}",
                cells.len(),
                columns.len()
            )));
        }
        if filters
            .iter()
            .any(|&(c, wanted)| cells[c].trim_matches('"') != wanted)
        {
            continue;
        }
        let number = |c: usize| -> Result<f64, UsageError> {
            cells[c]
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    UsageError(format!(
                        "{name}:{line_no}: column `{}`: {:?} is not a number",
                        columns[c], cells[c]
                    ))
                })
        };
        let n = number(cores)?;
        let v = number(value)?;
        let throughput = if inverse {
            if v <= 0.0 {
                return Err(UsageError(format!(
                    "{name}:{line_no}: column `wall_s`: {v} is not a positive time"
                )));
            }
            1.0 / v
        } else {
            v
        };
        points.push(Observation { cores: n, throughput });
        line_numbers.push(line_no);
    }
    if points.is_empty() {
        return Err(UsageError(format!(
            "{name}: no data rows{}",
            if filters.is_empty() {
                ""
            } else {
                " match the filters"
            }
        )));
    }
    Ok((points, line_numbers))
}
