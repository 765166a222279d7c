//! The verdict: the sentence a user acts on, built from the points measured or simulated, the
//! factor that limits them, and a fit's limit only where its 95% interval bounds it.
//!
//! Rules every verdict keeps: no speed-up beyond twice the largest core count measured or
//! simulated unless it is labelled a lower bound ("at least"); no gain over 300% quoted as a
//! percentage; no "-0%".

use crate::usl::UslFit;

/// Past this many cores a workload needs the distributed tier.
pub const MACHINE_CORES: usize = 8;

/// Below this best speed-up, more cores do not help.
const NO_HELP: f64 = 1.2;
/// How a verdict says that more cores do not help.
const NOTHING: &str = "adding cores does not help: one core is enough";

/// How a verdict says that the points stop growing.
const STOPS: &str = "the speed-up stops growing";

/// Gains above this ratio (300% more) are said as "N times", not as a percentage.
const MOST_PERCENT: f64 = 3.0;

/// Where a curve's core counts came from: measured, or simulated. The verdict says which.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Basis {
    /// Measured on this machine (or its workers).
    #[default]
    Measured,
    /// Predicted by the simulator.
    Simulated,
}

impl Basis {
    fn word(self) -> &'static str {
        match self {
            Basis::Measured => "measured",
            Basis::Simulated => "simulated",
        }
    }
}

/// One point a verdict stands on: a core count and what it reached there.
#[derive(Clone, Debug, PartialEq)]
pub struct Reached {
    /// Cores.
    pub cores: usize,
    /// Speed-up over one core.
    pub speedup: f64,
    /// Speed-up over cores.
    pub efficiency: f64,
    /// Tasks per second.
    pub throughput: f64,
    /// What loses the most of its efficiency, in words ("the serial phase"), when known.
    pub limit: Option<String>,
}

/// The simulator's prediction of the 9+ band for the same workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    /// The cluster predicted, in words ("32 nodes x 8 cores").
    pub cluster: String,
    /// The predicted points from the top of the 2-8 band on, in core order; the point of
    /// [`MACHINE_CORES`] first when there is one.
    pub points: Vec<Reached>,
}

/// What a verdict is built from: one curve (a series on a tier), and around it what else is
/// known.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence {
    /// Whether the curve was measured or simulated.
    pub basis: Basis,
    /// The curve's points past one core, in core order (without points left out of fits).
    pub points: Vec<Reached>,
    /// The USL fitted to them.
    pub usl: Option<UslFit>,
    /// Amdahl's law fitted to them (its sigma's interval bounds the limit).
    pub amdahl: Option<UslFit>,
    /// The 9+ band as the simulator predicts it, when it was asked.
    pub band: Option<Band>,
    /// How to get the band when it is missing (no calibration at hand), in words.
    pub band_hint: Option<String>,
    /// Seconds each task waits and how little it computes, when the work is mostly waits:
    /// (wait s, compute s).
    pub waits: Option<(f64, f64)>,
    /// This machine's logical cores, when points past them were left out (work that needs a
    /// core per task).
    pub machine_cores: Option<usize>,
}

/// A speed-up in words: `12.3x`.
fn times(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}x")
    } else {
        format!("{x:.2}x")
    }
}

/// How much more `best` is than `base` (the speed-up `on`, e.g. "on 8 cores"), in words
/// that stay honest: a percentage up to 300%, "N times" past it, "no more" when it is not
/// more.
pub fn gain_words(best: f64, base: f64, on: &str) -> String {
    if base <= 0.0 {
        return format!("nothing {on} to compare with");
    }
    let ratio = best / base;
    if ratio > 1.0 + MOST_PERCENT {
        format!("{ratio:.1} times the speed-up {on}")
    } else if ratio >= 1.005 {
        format!("{:.0}% more than {on}", (ratio - 1.0) * 100.0)
    } else {
        format!("no more than {on}")
    }
}

/// The verdict of one curve, from what was measured or simulated on it and around it.
pub fn verdict(e: &Evidence) -> String {
    let how = e.basis.word();
    let Some(last) = e.points.last() else {
        return match &e.band {
            Some(band) => band_words(band, None),
            None => "no verdict: no point past 1 core".into(),
        };
    };
    let mut parts = Vec::new();
    // A prediction alone: its band says what it reached.
    let own_band = e.basis == Basis::Simulated && e.band.is_some();
    // 1. What was reached, up to where.
    let mut reached = format!(
        "{how} up to {} cores: {} ({:.0}% efficiency)",
        last.cores,
        times(last.speedup),
        last.efficiency * 100.0
    );
    if let Some(best) = e.points.iter().max_by(|a, b| a.speedup.total_cmp(&b.speedup))
        && best.cores != last.cores
        && best.speedup > last.speedup * 1.02
    {
        reached.push_str(&format!(", best {} at {}", times(best.speedup), best.cores));
    }
    if last.efficiency < 0.9
        && let Some(limit) = &last.limit
    {
        reached.push_str(&format!("; lost to {limit}"));
    }
    if !own_band {
        parts.push(reached);
    }
    // 2. Waits need concurrency, not cores.
    if let Some((wait, compute)) = e.waits {
        parts.push(format!(
            "its tasks wait ({}) far more than they compute ({}): waits need concurrency, not cores; \
             threads or async on one core overlap them, and {} in flight gave {:.0} tasks/s (each in \
             flight adds up to {:.0} tasks/s)",
            seconds(wait),
            seconds(compute),
            last.cores,
            last.throughput,
            1.0 / (wait + compute).max(1e-9)
        ));
    } else if let Some(fit) = fit_words(e, last.cores) {
        // 3. What the data say of a limit, only as far as they bound it (a prediction's
        // points are its band's to speak for).
        if !own_band {
            parts.push(fit);
        }
    }
    // 4. Past this machine: the 9+ band.
    if let Some(logical) = e.machine_cores {
        parts.push(format!(
            "points past this machine's {logical} cores were left out (every core busy: they measure the machine)"
        ));
    }
    // Work that waits has its answer (concurrency); a cluster's cores are not it.
    match (&e.band, e.waits) {
        (Some(band), None) => parts.push(band_words(band, at_machine(e))),
        (None, None) => {
            if let Some(hint) = &e.band_hint {
                parts.push(hint.clone());
            }
        }
        _ => {}
    }
    parts.join("; ")
}

/// The speed-up on [`MACHINE_CORES`] cores on this curve, when it has that point.
fn at_machine(e: &Evidence) -> Option<f64> {
    e.points
        .iter()
        .find(|p| p.cores == MACHINE_CORES)
        .map(|p| p.speedup)
}

/// A duration in words.
fn seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} us", s * 1e6)
    }
}

/// What the fits say of a limit: a USL peak only inside twice the cores seen; otherwise
/// Amdahl's limit only as its sigma's 95% interval bounds it.
fn fit_words(e: &Evidence, largest: usize) -> Option<String> {
    let reach = 2.0 * largest as f64;
    // No speed-up anywhere: more cores do not help.
    let top = e.points.iter().map(|p| p.speedup).fold(0.0, f64::max);
    if top < NO_HELP {
        return Some(format!("{NOTHING} (at most {})", times(top)));
    }
    // Where the points themselves stop growing, they say so; no fit is needed.
    if let [.., before, last] = e.points.as_slice()
        && last.cores as f64 >= 1.5 * before.cores as f64
        && last.speedup < 1.05 * before.speedup
    {
        let from = e.points.iter().find(|p| p.speedup >= 0.95 * top).unwrap_or(last);
        return Some(format!(
            "{STOPS} from {} cores on (at most {})",
            from.cores,
            times(top)
        ));
    }
    if let Some(usl) = &e.usl
        && let (Some(peak), Some(best)) = (usl.peak_cores(), usl.max_speedup())
    {
        // A coherency cost the data are sure of: kappa's interval above 0.
        let sure = UslFit::interval(usl.kappa, usl.kappa_se).is_some_and(|(lo, _)| lo > 0.0);
        if peak < 1.5 {
            return Some(format!("{NOTHING} (USL peak at {peak:.1} cores)"));
        }
        if peak <= reach && (sure || peak <= largest as f64) {
            let beyond = if peak > largest as f64 {
                format!(", past the {largest} cores seen")
            } else {
                String::new()
            };
            return Some(format!(
                "the USL puts its peak near {:.0} cores ({}{beyond})",
                peak.round(),
                times(best)
            ));
        }
    }
    let amdahl = e.amdahl.as_ref()?;
    match UslFit::interval(amdahl.sigma, amdahl.sigma_se) {
        Some((lo, hi)) if hi < 1.0 => {
            if lo > 0.0 && 1.0 / lo <= reach {
                Some(format!(
                    "Amdahl's limit lies between {} and {} (sigma {lo:.3} to {hi:.3} at 95%)",
                    times(1.0 / hi),
                    times(1.0 / lo)
                ))
            } else {
                Some(format!(
                    "no limit is visible up to {largest} cores (sigma < {hi:.3} at 95%): at least {}",
                    times((1.0 / hi).max(e.points.last().map_or(1.0, |p| p.speedup)))
                ))
            }
        }
        _ => None,
    }
}

/// What the simulator predicts for the 9+ band, against `at8` (the curve's own speed-up on
/// [`MACHINE_CORES`] cores; else the band's).
fn band_words(band: &Band, at8: Option<f64>) -> String {
    let machine = band.points.iter().find(|p| p.cores == MACHINE_CORES);
    let past: Vec<&Reached> = band.points.iter().filter(|p| p.cores > MACHINE_CORES).collect();
    let top = past.iter().map(|p| p.speedup).fold(0.0, f64::max);
    // The fewest cores that reach the best (a plateau's first point).
    let (Some(best), Some(last)) = (past.iter().find(|p| p.speedup >= 0.995 * top), past.last()) else {
        return format!(
            "the simulator has no point past {MACHINE_CORES} cores on {}",
            band.cluster
        );
    };
    if best.speedup < NO_HELP {
        return format!(
            "more cores do not help on a cluster either: the simulator predicts at most {} past {MACHINE_CORES} \
             cores on {}",
            times(top),
            band.cluster
        );
    }
    let base = at8.or(machine.map(|p| p.speedup));
    let on = format!("on {MACHINE_CORES} cores");
    let gain = base.map(|b| (best.speedup / b, gain_words(best.speedup, b, &on)));
    // The 9+ band pays when it adds speed-up and keeps at least half of its cores busy with
    // useful work somewhere past the machine.
    let worth = past.iter().any(|p| p.efficiency >= 0.5);
    let tier = match gain {
        Some((ratio, _)) if ratio < 1.10 => "the 2-8 core tier is enough",
        _ if !worth => "the 2-8 core tier is the efficient choice (past 8 cores efficiency falls below 50%)",
        _ => "the 9+ core distributed tier pays",
    };
    let mut text = format!(
        "{tier}: the simulator predicts {} at {} cores of {}",
        times(best.speedup),
        best.cores,
        band.cluster
    );
    if let Some((_, words)) = gain {
        text.push_str(&format!(" ({words})"));
    }
    // A plateau: the largest count gains under 5% over the best half its size.
    if last.cores != best.cores || past.len() >= 2 {
        let flat_from = past
            .iter()
            .find(|p| p.speedup >= 0.95 * best.speedup)
            .map_or(best.cores, |p| p.cores);
        if flat_from < last.cores {
            text.push_str(&format!(
                ", flat from {flat_from} cores on ({} at {})",
                times(last.speedup),
                last.cores
            ));
        } else {
            text.push_str(&format!(", {:.0}% efficiency there", last.efficiency * 100.0));
        }
    }
    // Where half the cores' worth is still won, when the largest count wastes more.
    if last.efficiency < 0.5
        && let Some(half) = past.iter().rev().find(|p| p.efficiency >= 0.5)
    {
        text.push_str(&format!(
            ", at least 50% efficiency up to {} cores ({})",
            half.cores,
            times(half.speedup)
        ));
    }
    if let Some(limit) = &last.limit {
        text.push_str(&format!("; what limits it at {}: {limit}", last.cores));
    }
    text
}

/// Checks the rules every verdict keeps, for `largest` the most cores measured or simulated:
/// every speed-up quoted (a number then "x") is at most twice `largest` unless it is labelled
/// "at least"; no gain over 300% is said as a percentage; no "-0%". The error names the claim.
pub fn claims_are_bounded(text: &str, largest: usize) -> Result<(), String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let w = w.trim_matches(|c: char| "(),;:".contains(c));
        if let Some(number) = w.strip_suffix('x')
            && let Ok(x) = number.parse::<f64>()
        {
            let lower = i >= 2 && words[i - 2] == "at" && words[i - 1] == "least";
            if x > 2.0 * largest as f64 && !lower {
                return Err(format!("{x}x beyond twice {largest} cores: {text}"));
            }
        }
        if let Some(number) = w.strip_suffix('%')
            && let Ok(p) = number.parse::<f64>()
            && words.get(i + 1) == Some(&"more")
            && p > 300.0
        {
            return Err(format!("{p}% more: {text}"));
        }
    }
    if text.contains("-0%") {
        return Err(format!("-0%: {text}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn law(sigma: f64, kappa: f64, sigma_se: Option<f64>, kappa_se: Option<f64>, measured: f64) -> UslFit {
        UslFit {
            sigma,
            kappa,
            lambda: 1.0,
            r2: 1.0,
            sigma_se,
            kappa_se,
            lambda_se: None,
            points: 5,
            max_measured_cores: measured,
        }
    }

    fn at(cores: usize, speedup: f64) -> Reached {
        Reached {
            cores,
            speedup,
            efficiency: speedup / cores as f64,
            throughput: speedup * 1000.0,
            limit: None,
        }
    }

    #[test]
    fn an_amdahl_limit_the_data_cannot_bound_is_said_as_a_lower_bound() {
        // The CPU sweep: 15.73x at 16, sigma 0.002 with a 95% interval up to 0.029.
        let e = Evidence {
            points: vec![at(2, 1.99), at(4, 3.97), at(8, 7.9), at(16, 15.73)],
            amdahl: Some(law(0.002, 0.0, Some(0.0138), None, 16.0)),
            usl: Some(law(0.002, 0.0, Some(0.0138), Some(0.001), 16.0)),
            ..Evidence::default()
        };
        let text = verdict(&e);
        assert!(
            text.contains("no limit is visible up to 16 cores (sigma < 0.029 at 95%): at least 34"),
            "{text}"
        );
        assert!(!text.contains("450"), "{text}");
        claims_are_bounded(&text, 16).unwrap();
    }

    #[test]
    fn a_bounded_limit_and_a_peak_inside_the_range_are_quoted() {
        // sigma 0.1 +- 0.0196: the limit lies between 8.4x and 12.4x, inside twice 8 cores.
        let e = Evidence {
            points: vec![at(2, 1.8), at(4, 3.1), at(8, 4.7)],
            amdahl: Some(law(0.1, 0.0, Some(0.01), None, 8.0)),
            ..Evidence::default()
        };
        let text = verdict(&e);
        assert!(
            text.contains("Amdahl's limit lies between 8.36x and 12.44x"),
            "{text}"
        );
        // A sure coherency cost with its peak at 5.6 cores.
        let e = Evidence {
            points: vec![at(2, 1.8), at(4, 2.9), at(6, 3.3)],
            usl: Some(law(0.05, 0.03, Some(0.01), Some(0.005), 6.0)),
            ..Evidence::default()
        };
        let text = verdict(&e);
        assert!(text.contains("the USL puts its peak near 6 cores"), "{text}");
        // Points that stop growing say so themselves.
        let e = Evidence {
            points: vec![at(2, 1.8), at(4, 2.9), at(8, 2.8)],
            usl: Some(law(0.05, 0.03, Some(0.01), Some(0.005), 8.0)),
            ..Evidence::default()
        };
        let text = verdict(&e);
        assert!(
            text.contains("the speed-up stops growing from 4 cores on (at most 2.90x)"),
            "{text}"
        );
        // A peak far past the data is not quoted.
        let e = Evidence {
            points: vec![at(2, 1.99), at(4, 3.9)],
            usl: Some(law(0.01, 0.0005, Some(0.01), Some(0.001), 4.0)),
            amdahl: Some(law(0.014, 0.0, Some(0.01), None, 4.0)),
            ..Evidence::default()
        };
        let text = verdict(&e);
        assert!(!text.contains("peak"), "{text}");
        claims_are_bounded(&text, 4).unwrap();
    }

    #[test]
    fn the_band_gives_the_tier_with_honest_gains_and_its_plateau() {
        let band = Band {
            cluster: "32 nodes x 8 cores".into(),
            points: vec![
                at(8, 7.9),
                at(16, 15.5),
                at(32, 30.97),
                at(64, 37.6),
                at(128, 37.6),
                Reached {
                    limit: Some("the coordinator's link is full".into()),
                    ..at(256, 37.6)
                },
            ],
        };
        let e = Evidence {
            basis: Basis::Simulated,
            points: band.points.clone(),
            band: Some(band.clone()),
            ..Evidence::default()
        };
        let text = verdict(&e);
        assert!(text.contains("the 9+ core distributed tier pays"), "{text}");
        assert!(
            text.contains("37.60x at 64 cores of 32 nodes x 8 cores (4.8 times the speed-up on 8 cores)"),
            "{text}"
        );
        assert!(text.contains("flat from 64 cores on"), "{text}");
        assert!(text.contains("the coordinator's link is full"), "{text}");
        claims_are_bounded(&text, 256).unwrap();
        // A band that adds nothing: the 2-8 core tier is enough, and "no more", never "-0%".
        let flat = Band {
            cluster: "4 nodes x 8 cores".into(),
            points: vec![at(8, 6.0), at(16, 5.99), at(32, 5.9)],
        };
        let text = band_words(&flat, None);
        assert!(
            text.contains("the 2-8 core tier is enough") && text.contains("no more than on 8"),
            "{text}"
        );
        // More speed-up past 8 cores, but never at half the cores' worth: 8 cores are the
        // efficient choice.
        let serial = Band {
            cluster: "the default cluster".into(),
            points: vec![at(8, 4.7), at(16, 6.4), at(64, 8.8), at(256, 9.33)],
        };
        let text = band_words(&serial, None);
        assert!(
            text.starts_with("the 2-8 core tier is the efficient choice"),
            "{text}"
        );
        claims_are_bounded(&text, 256).unwrap();
        // Less than one core's speed anywhere past 8: no tier claim.
        let slower = Band {
            cluster: "the default cluster".into(),
            points: vec![at(8, 1.1), at(16, 0.52), at(256, 0.5)],
        };
        let text = band_words(&slower, Some(2.2));
        assert!(
            text.starts_with("more cores do not help on a cluster either"),
            "{text}"
        );
        assert_eq!(
            gain_words(10.0, 2.0, "on 8 cores"),
            "5.0 times the speed-up on 8 cores"
        );
        assert_eq!(gain_words(2.5, 2.0, "on 8 cores"), "25% more than on 8 cores");
        assert_eq!(gain_words(2.0, 2.0, "on 8 cores"), "no more than on 8 cores");
    }

    #[test]
    fn waits_need_concurrency_not_cores() {
        let e = Evidence {
            points: vec![at(8, 7.9), at(64, 60.0)],
            waits: Some((0.005, 0.00001)),
            amdahl: Some(law(0.0, 0.0, Some(0.001), None, 64.0)),
            ..Evidence::default()
        };
        let text = verdict(&e);
        assert!(text.contains("waits need concurrency, not cores"), "{text}");
        assert!(text.contains("64 in flight gave 60000 tasks/s"), "{text}");
        claims_are_bounded(&text, 64).unwrap();
    }
}
