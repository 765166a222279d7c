//! The verdict: one plain sentence on which Martelli tier a workload needs, from its USL fit.

use crate::usl::UslFit;

/// Past this many cores a workload needs the distributed tier.
const MACHINE_CORES: f64 = 8.0;

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

/// Which tier the fitted curve calls for, in one sentence. Figures beyond the largest core
/// count measured (or simulated, as `basis` says) are labelled as extrapolation.
pub fn verdict(fit: &UslFit, basis: Basis) -> String {
    let measured = fit.max_measured_cores;
    let how = basis.word();
    let beyond = |n: f64| {
        if n > measured {
            format!(" (extrapolated beyond the {measured} cores {how})")
        } else {
            String::new()
        }
    };
    let at_machine = fit.speedup(MACHINE_CORES);
    match (fit.peak_cores(), fit.max_speedup()) {
        (Some(peak), _) if peak < 1.5 => format!(
            "adding cores does not help (USL N* = {peak:.1}, sigma = {:.3}, kappa = {:.4}): one core is enough",
            fit.sigma, fit.kappa
        ),
        (Some(peak), Some(best)) if peak <= MACHINE_CORES => format!(
            "speed-up stops growing near {:.0} cores (USL N* = {peak:.1}, at most {best:.2}x){}: the 2-8 core tier \
             is enough; going distributed buys nothing",
            peak.round(),
            beyond(peak)
        ),
        (Some(peak), Some(best)) => {
            let gain = (best / at_machine - 1.0) * 100.0;
            let tier = if gain < 10.0 {
                "the 2-8 core tier is nearly enough"
            } else {
                "the 9+ core distributed tier pays"
            };
            format!(
                "speed-up keeps growing to about {:.0} cores (USL N* = {peak:.1}, at most {best:.2}x){}: {tier}, \
                 {gain:.0}% more than on 8 cores",
                peak.round(),
                beyond(peak)
            )
        }
        (None, Some(limit)) => {
            let gain = (limit / at_machine - 1.0) * 100.0;
            let tier = if gain < 10.0 {
                "the 2-8 core tier is nearly enough"
            } else {
                "the 9+ core distributed tier pays"
            };
            format!(
                "no coherency cost (kappa = 0): speed-up approaches {limit:.1}x (Amdahl, sigma = {:.3}){}; {tier}, up to \
                 {gain:.0}% more than on 8 cores",
                fit.sigma,
                beyond(f64::INFINITY)
            )
        }
        _ => format!(
            "scales linearly over the {measured} cores {how} (sigma = kappa = 0): the more cores the better, so the \
             9+ core distributed tier pays (extrapolated beyond the {measured} cores {how})"
        ),
    }
}

/// The verdict when the data cannot support one.
pub fn no_verdict(distinct_cores: usize, basis: Basis) -> String {
    format!(
        "no verdict: {distinct_cores} core count(s) {}, and a scaling law needs at least 3; \
         add more to sweep.cores",
        basis.word()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn law(sigma: f64, kappa: f64, measured: f64) -> UslFit {
        UslFit {
            sigma,
            kappa,
            lambda: 1.0,
            r2: 1.0,
            sigma_se: None,
            kappa_se: None,
            lambda_se: None,
            points: 5,
            max_measured_cores: measured,
        }
    }

    #[test]
    fn each_regime_gets_its_tier() {
        let cases = [
            (law(0.9, 0.5, 8.0), "one core is enough"),
            (law(0.05, 0.03, 8.0), "the 2-8 core tier is enough"),
            (law(0.02, 0.0005, 8.0), "the 9+ core distributed tier pays"),
            (law(0.2, 0.0, 8.0), "Amdahl"),
            (law(0.0, 0.0, 8.0), "scales linearly"),
        ];
        for (fit, words) in cases {
            let text = verdict(&fit, Basis::Measured);
            assert!(text.contains(words), "{fit:?}: {text}");
        }
        assert!(
            verdict(&law(0.02, 0.0005, 8.0), Basis::Measured)
                .contains("extrapolated beyond the 8 cores measured"),
            "N* = 44 > 8 measured"
        );
        assert!(
            !verdict(&law(0.05, 0.03, 8.0), Basis::Measured).contains("extrapolated"),
            "N* = 5.6 <= 8 measured"
        );
        assert!(
            no_verdict(2, Basis::Measured)
                .contains("2 core count(s) measured, and a scaling law needs at least 3")
        );
        let simulated = verdict(&law(0.0, 0.0, 64.0), Basis::Simulated);
        assert!(
            simulated.contains("over the 64 cores simulated") && !simulated.contains("measured"),
            "{simulated}"
        );
        assert!(no_verdict(2, Basis::Simulated).contains("core count(s) simulated"));
    }
}
