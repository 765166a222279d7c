//! `martelli fit DATA.csv`: scaling laws fitted to any measurements, not only martelli's. A
//! file of several curves (martelli's results.csv: series, tiers, measured and predicted) is
//! fitted one curve at a time, never pooled.

use martelli_model::{Curve, FitError, Loss, UslFit, fit_amdahl_with, fit_usl_with, read_curves};
use serde_json::{Value, json};

use crate::cli::{FitArgs, FitLoss};
use crate::exit::UsageError;

/// Reads the CSV, fits the USL and Amdahl's law to each curve, prints the figures.
pub fn fit(args: FitArgs) -> anyhow::Result<()> {
    let name = args.data.display().to_string();
    let text =
        std::fs::read_to_string(&args.data).map_err(|e| UsageError(format!("cannot read {name}: {e}")))?;
    let filters: Vec<(&str, &str)> = [("series", args.series.as_deref()), ("tier", args.tier.as_deref())]
        .into_iter()
        .filter_map(|(column, wanted)| Some((column, wanted?)))
        .collect();
    let curves = read_curves(&text, &filters).map_err(|e| UsageError(format!("{name}:{e}")))?;
    let loss = match args.loss {
        FitLoss::Relative => Loss::Relative,
        FitLoss::Absolute => Loss::Absolute,
    };
    let several = curves.len() > 1;
    let mut fits = Vec::with_capacity(curves.len());
    for curve in &curves {
        match fit_curve(&name, curve, loss) {
            Ok(fit) => fits.push((curve, Ok(fit))),
            // One curve too short to fit does not stop the others; bad data does.
            Err(e) if several && e.too_few => fits.push((curve, Err(e.message))),
            Err(e) => return Err(UsageError(e.message).into()),
        }
    }
    if args.json {
        let objects: Vec<Value> = fits
            .iter()
            .map(|(curve, fit)| to_json(curve, fit, loss))
            .collect();
        let out = match objects.as_slice() {
            [one] if !several => one.clone(),
            _ => json!({ "loss": loss_name(loss), "curves": objects }),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for (i, (curve, fit)) in fits.iter().enumerate() {
        if i > 0 {
            println!();
        }
        match fit {
            Ok(fit) => print_fit(&name, curve, fit, loss),
            Err(message) => println!("{}: not fitted: {message}", curve.describe()),
        }
    }
    Ok(())
}

/// The fits of one curve: the USL where it has three distinct core counts, Amdahl's law.
struct CurveFit {
    usl: Option<UslFit>,
    amdahl: UslFit,
}

/// Why a curve was not fitted; `too_few` when it only lacks core counts.
struct NotFitted {
    message: String,
    too_few: bool,
}

fn fit_curve(name: &str, curve: &Curve, loss: Loss) -> Result<CurveFit, NotFitted> {
    // A bad point is reported at its line of the file.
    let explain = |law: &str, e: FitError| match e {
        FitError::BadPoint { index, what } => NotFitted {
            message: format!("{name}:{}: {what}", curve.lines[index]),
            too_few: false,
        },
        other => NotFitted {
            too_few: matches!(other, FitError::TooFewPoints { .. }),
            message: format!(
                "{name}: cannot fit {law}{}: {other}",
                if curve.label.is_empty() {
                    String::new()
                } else {
                    format!(" to {}", curve.describe())
                }
            ),
        },
    };
    let usl = match fit_usl_with(&curve.points, loss) {
        Ok(usl) => Some(usl),
        // A curve of a results file with two core counts gets Amdahl's law only, and says so.
        Err(FitError::TooFewPoints { got: 2, .. }) if !curve.label.is_empty() => None,
        Err(e) => return Err(explain("the USL", e)),
    };
    let amdahl = fit_amdahl_with(&curve.points, loss).map_err(|e| explain("Amdahl's law", e))?;
    Ok(CurveFit { usl, amdahl })
}

fn loss_name(loss: Loss) -> &'static str {
    match loss {
        Loss::Relative => "relative",
        Loss::Absolute => "absolute",
    }
}

/// A law under which more cores never beat one: contention σ of 1 or more.
fn slows_down(fit: &UslFit) -> bool {
    fit.sigma >= 1.0
}

fn to_json(curve: &Curve, fit: &Result<CurveFit, String>, loss: Loss) -> Value {
    let mut out = serde_json::Map::new();
    for (column, value) in &curve.label {
        out.insert(column.clone(), json!(value));
    }
    let fit = match fit {
        Ok(fit) => fit,
        Err(message) => {
            out.insert("error".into(), json!(message));
            return Value::Object(out);
        }
    };
    let interval = |v: f64, se: Option<f64>| UslFit::interval(v, se).map(|(lo, hi)| [lo, hi]);
    if let Some(usl) = &fit.usl {
        let peak = usl.peak_cores().filter(|_| !slows_down(usl));
        out.extend(
            json!({
                "sigma": usl.sigma,
                "kappa": usl.kappa,
                "lambda": usl.lambda,
                "r2": usl.r2,
                "peak_cores": peak,
                "max_speedup": usl.max_speedup().filter(|_| !slows_down(usl)),
                "slows_down": slows_down(usl),
                "sigma_interval": interval(usl.sigma, usl.sigma_se),
                "kappa_interval": interval(usl.kappa, usl.kappa_se),
                "lambda_interval": interval(usl.lambda, usl.lambda_se),
                "points": usl.points,
                "max_measured_cores": usl.max_measured_cores,
                "peak_is_extrapolated": peak.is_some_and(|p| p > usl.max_measured_cores),
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        );
    }
    let a = &fit.amdahl;
    out.insert(
        "amdahl".into(),
        json!({
            "sigma": a.sigma,
            "lambda": a.lambda,
            "r2": a.r2,
            "max_speedup": a.max_speedup().filter(|_| !slows_down(a)),
            "slows_down": slows_down(a),
        }),
    );
    out.insert("loss".into(), json!(loss_name(loss)));
    Value::Object(out)
}

fn print_fit(name: &str, curve: &Curve, fit: &CurveFit, loss: Loss) {
    let of = if curve.label.is_empty() {
        String::new()
    } else {
        format!(" of {}", curve.describe())
    };
    let pm = |v: f64, se: Option<f64>| match UslFit::interval(v, se) {
        Some((lo, hi)) => format!("{v:.6} (95% interval {lo:.6} to {hi:.6})"),
        None => format!("{v:.6} (too few points for an interval)"),
    };
    match &fit.usl {
        Some(usl) => {
            println!(
                "USL fit{of}: {} points from {name} (cores up to {}; {} errors minimised):",
                usl.points,
                usl.max_measured_cores,
                loss_name(loss)
            );
            println!("  sigma (contention)  = {}", pm(usl.sigma, usl.sigma_se));
            println!("  kappa (coherency)   = {}", pm(usl.kappa, usl.kappa_se));
            println!("  lambda (1 core)     = {}", pm(usl.lambda, usl.lambda_se));
            println!("  R^2                 = {:.5}", usl.r2);
            let peak = usl.peak_cores();
            match (peak, usl.max_speedup()) {
                _ if slows_down(usl) => println!(
                    "  slows down: more cores are slower than one (sigma {:.3} is 1 or more)",
                    usl.sigma
                ),
                (Some(p), Some(s)) => println!(
                    "  throughput peaks at {p:.1} cores, {s:.2}x one core{}",
                    if p > usl.max_measured_cores {
                        " (extrapolated: beyond the cores measured)"
                    } else {
                        ""
                    }
                ),
                (None, Some(s)) => println!(
                    "  no peak (kappa = 0): speed-up approaches {s:.2}x (Amdahl's limit; {})",
                    limit_interval(usl)
                ),
                _ => println!("  no peak and no limit: the data scale linearly"),
            }
        }
        None => println!(
            "{}: two core counts: Amdahl's law only (the USL needs three)",
            curve.describe()
        ),
    }
    let a = &fit.amdahl;
    let limit = if slows_down(a) {
        "none: it slows down (more cores are slower than one)".to_string()
    } else {
        a.max_speedup()
            .map_or_else(|| "none".into(), |s| format!("{s:.2}x, {}", limit_interval(a)))
    };
    println!(
        "Amdahl fit{of}: sigma = {:.6}, limit {limit} (R^2 {:.5})",
        a.sigma, a.r2
    );
}

/// What sigma's 95% interval says of Amdahl's limit `1 / sigma`: a range where it bounds it,
/// a lower bound where sigma may be 0.
fn limit_interval(fit: &UslFit) -> String {
    match UslFit::interval(fit.sigma, fit.sigma_se) {
        Some((lo, hi)) if lo > 0.0 => format!("95% interval {:.2}x to {:.2}x", 1.0 / hi, 1.0 / lo),
        Some((_, hi)) => format!("95% interval: at least {:.2}x, no upper bound", 1.0 / hi),
        None => "too few points for an interval".into(),
    }
}
