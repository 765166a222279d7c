//! The fits: USL (σ, κ, λ) by Levenberg–Marquardt with σ, κ ≥ 0; Amdahl as the USL with κ = 0;
//! Gustafson by linear least squares.
//!
//! Residuals are relative by default (`(model − measured) / measured`), so a 2% error weighs
//! the same at 10 tasks/s and at 10 million, as measurement noise does; [`Loss::Absolute`]
//! minimises `model − measured` instead, as codahale/usl and R's `usl` package do.

use serde::{Deserialize, Serialize};

use crate::linalg::{inverse, solve};
use crate::{FitError, Observation, check, r_squared};

/// A fitted Universal Scalability Law: `X(N) = λN / (1 + σ(N−1) + κN(N−1))`.
/// Amdahl's law is the special case κ = 0.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct UslFit {
    /// Contention (serial fraction), ≥ 0.
    pub sigma: f64,
    /// Coherency (crosstalk) cost, ≥ 0 (0 for an Amdahl fit).
    pub kappa: f64,
    /// Throughput of one core.
    pub lambda: f64,
    /// Coefficient of determination on throughput.
    pub r2: f64,
    /// Standard errors of σ, κ, λ, when there are more points than parameters.
    pub sigma_se: Option<f64>,
    /// Standard error of κ.
    pub kappa_se: Option<f64>,
    /// Standard error of λ.
    pub lambda_se: Option<f64>,
    /// Points fitted.
    pub points: usize,
    /// Largest core count measured: anything quoted beyond it is extrapolation.
    pub max_measured_cores: f64,
}

impl UslFit {
    /// Speed-up over one core at `n` cores.
    pub fn speedup(&self, n: f64) -> f64 {
        n / (1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0))
    }

    /// Throughput at `n` cores.
    pub fn throughput(&self, n: f64) -> f64 {
        self.lambda * self.speedup(n)
    }

    /// Core count where throughput peaks, `sqrt((1 − σ) / κ)`; `None` when κ = 0 (no peak:
    /// throughput grows forever, towards Amdahl's limit).
    pub fn peak_cores(&self) -> Option<f64> {
        (self.kappa > 0.0).then(|| ((1.0 - self.sigma).max(0.0) / self.kappa).sqrt())
    }

    /// The largest speed-up the law allows: at the peak for κ > 0, else Amdahl's limit
    /// `1 / σ`; `None` when both are 0 (linear scaling, no limit).
    pub fn max_speedup(&self) -> Option<f64> {
        match self.peak_cores() {
            Some(peak) => Some(self.speedup(peak.max(1.0))),
            None if self.sigma > 0.0 => Some(1.0 / self.sigma),
            None => None,
        }
    }

    /// 95% interval (±1.96 standard errors) of a parameter, when its error is known, cut at 0
    /// below (σ, κ and λ cannot be negative).
    pub fn interval(value: f64, se: Option<f64>) -> Option<(f64, f64)> {
        se.map(|se| ((value - 1.96 * se).max(0.0), value + 1.96 * se))
    }
}

/// A fitted Gustafson law (weak scaling): `X(N) = λ(N − σ(N−1))`, the scaled speed-up.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GustafsonFit {
    /// Serial fraction of the scaled work, in [0, 1].
    pub sigma: f64,
    /// Throughput of one core.
    pub lambda: f64,
    /// Coefficient of determination on throughput.
    pub r2: f64,
}

/// What a fit minimises: the sum of squared residuals, each relative to its measurement or
/// absolute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Loss {
    /// `(model − measured) / measured`: every point weighs the same whatever its size, as noise
    /// that is a share of the figure (timing noise) does. martelli's default.
    #[default]
    Relative,
    /// `model − measured`: large throughputs weigh more. What codahale/usl and R's `usl`
    /// minimise, for reproducing their figures.
    Absolute,
}

impl Loss {
    /// The weight of a residual at a measured throughput.
    fn weight(self, throughput: f64) -> f64 {
        match self {
            Loss::Relative => 1.0 / throughput,
            Loss::Absolute => 1.0,
        }
    }
}

/// Fits the USL (σ, κ, λ) with relative residuals. Needs three distinct core counts.
pub fn fit_usl(points: &[Observation]) -> Result<UslFit, FitError> {
    fit_usl_with(points, Loss::Relative)
}

/// Fits the USL (σ, κ, λ), minimising `loss`. Needs three distinct core counts.
pub fn fit_usl_with(points: &[Observation], loss: Loss) -> Result<UslFit, FitError> {
    check(points, 3)?;
    fit(points, true, loss)
}

/// Fits Amdahl's law in throughput form (σ, λ; κ = 0) with relative residuals. Needs two
/// distinct core counts.
pub fn fit_amdahl(points: &[Observation]) -> Result<UslFit, FitError> {
    fit_amdahl_with(points, Loss::Relative)
}

/// Fits Amdahl's law in throughput form (σ, λ; κ = 0), minimising `loss`.
pub fn fit_amdahl_with(points: &[Observation], loss: Loss) -> Result<UslFit, FitError> {
    check(points, 2)?;
    fit(points, false, loss)
}

/// Fits Gustafson's law by linear least squares (σ clamped to [0, 1]). Needs two distinct
/// core counts.
pub fn fit_gustafson(points: &[Observation]) -> Result<GustafsonFit, FitError> {
    check(points, 2)?;
    // X = λ(1 − σ) N + λσ = a N + b, so λ = a + b and σ = b / (a + b).
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), p| (sx + p.cores, sy + p.throughput));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|p| (p.cores - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.cores - mx) * (p.throughput - my)).sum();
    let a = sxy / sxx;
    let b = my - a * mx;
    let lambda = a + b;
    if !positive(lambda) {
        return Err(FitError::Degenerate(
            "throughput falls as cores are added: no Gustafson fit".into(),
        ));
    }
    let sigma = (b / lambda).clamp(0.0, 1.0);
    let observed: Vec<f64> = points.iter().map(|p| p.throughput).collect();
    let predicted: Vec<f64> = points
        .iter()
        .map(|p| lambda * (p.cores - sigma * (p.cores - 1.0)))
        .collect();
    Ok(GustafsonFit {
        sigma,
        lambda,
        r2: r_squared(&observed, &predicted),
    })
}

/// True for a finite or infinite number above zero; false for zero, negatives and NaN.
fn positive(x: f64) -> bool {
    x > 0.0
}

/// Parameters in fitting order: λ, σ, κ.
type Params = [f64; 3];

/// Residuals (weighted as `loss` says) and their Jacobian at `p`; κ's column is zero when it
/// is not fitted.
fn residuals(points: &[Observation], p: &Params, with_kappa: bool, loss: Loss) -> (Vec<f64>, Vec<[f64; 3]>) {
    let [lambda, sigma, kappa] = *p;
    let mut r = Vec::with_capacity(points.len());
    let mut j = Vec::with_capacity(points.len());
    for o in points {
        let w = loss.weight(o.throughput);
        let n = o.cores;
        let d = 1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0);
        let g = n / d;
        r.push((lambda * g - o.throughput) * w);
        let dsigma = -lambda * n * (n - 1.0) / (d * d) * w;
        let dkappa = if with_kappa {
            -lambda * n * n * (n - 1.0) / (d * d) * w
        } else {
            0.0
        };
        j.push([g * w, dsigma, dkappa]);
    }
    (r, j)
}

fn cost(r: &[f64]) -> f64 {
    r.iter().map(|x| x * x).sum()
}

/// The best λ for given σ, κ (the model is linear in λ).
fn best_lambda(points: &[Observation], sigma: f64, kappa: f64, loss: Loss) -> f64 {
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), o| {
        let n = o.cores;
        let w = loss.weight(o.throughput);
        let u = n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0)) * w;
        (num + u * o.throughput * w, den + u * u)
    });
    num / den
}

/// Levenberg–Marquardt from the best point of a coarse grid, σ and κ projected onto ≥ 0.
fn fit(points: &[Observation], with_kappa: bool, loss: Loss) -> Result<UslFit, FitError> {
    let sigmas = [0.0, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.2, 0.4, 0.7, 0.95];
    let kappas: &[f64] = if with_kappa {
        &[0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1]
    } else {
        &[0.0]
    };
    let mut best: Option<(f64, Params)> = None;
    for &sigma in &sigmas {
        for &kappa in kappas {
            let p = [best_lambda(points, sigma, kappa, loss), sigma, kappa];
            let c = cost(&residuals(points, &p, with_kappa, loss).0);
            if c.is_finite() && best.is_none_or(|(b, _)| c < b) {
                best = Some((c, p));
            }
        }
    }
    let (mut current, mut p) = best.ok_or_else(|| FitError::Degenerate("no starting point".into()))?;
    let free = if with_kappa { 3 } else { 2 };
    let mut mu = 1e-3;
    for _ in 0..500 {
        let (r, j) = residuals(points, &p, with_kappa, loss);
        let mut jtj = [[0.0; 3]; 3];
        let mut jtr = [0.0; 3];
        for (ri, ji) in r.iter().zip(&j) {
            for a in 0..3 {
                jtr[a] += ji[a] * ri;
                for b in 0..3 {
                    jtj[a][b] += ji[a] * ji[b];
                }
            }
        }
        if !with_kappa {
            jtj[2][2] = 1.0;
        }
        let mut improved = false;
        for _ in 0..30 {
            let mut a = jtj;
            for (k, row) in a.iter_mut().enumerate() {
                row[k] += mu * row[k].max(1e-300);
            }
            let Some(step) = solve(a, jtr.map(|v| -v)) else {
                mu *= 10.0;
                continue;
            };
            let mut next = [
                p[0] + step[0],
                (p[1] + step[1]).max(0.0),
                (p[2] + step[2]).max(0.0),
            ];
            if !with_kappa {
                next[2] = 0.0;
            }
            if !positive(next[0]) {
                next[0] = p[0] / 2.0;
            }
            let c = cost(&residuals(points, &next, with_kappa, loss).0);
            if c.is_finite() && c <= current {
                let change = current - c;
                p = next;
                current = c;
                mu = (mu / 3.0).max(1e-12);
                improved = change > current * 1e-15 + 1e-300;
                break;
            }
            mu *= 4.0;
        }
        if !improved {
            break;
        }
    }
    if !p.iter().all(|v| v.is_finite()) || !positive(p[0]) {
        return Err(FitError::Degenerate(
            "the fit did not converge to finite parameters".into(),
        ));
    }
    // Standard errors from the Jacobian at the optimum, when there are spare degrees of freedom.
    let (r, j) = residuals(points, &p, with_kappa, loss);
    let dof = points.len() as f64 - free as f64;
    let mut jtj = [[0.0; 3]; 3];
    for ji in &j {
        for a in 0..3 {
            for b in 0..3 {
                jtj[a][b] += ji[a] * ji[b];
            }
        }
    }
    if !with_kappa {
        jtj[2][2] = 1.0;
    }
    let se = (dof > 0.0).then(|| inverse(jtj)).flatten().map(|cov| {
        let s2 = cost(&r) / dof;
        [0, 1, 2].map(|k| (cov[k][k] * s2).max(0.0).sqrt())
    });
    let observed: Vec<f64> = points.iter().map(|o| o.throughput).collect();
    let fit = UslFit {
        sigma: p[1],
        kappa: p[2],
        lambda: p[0],
        r2: 0.0,
        sigma_se: se.map(|s| s[1]),
        kappa_se: se.filter(|_| with_kappa).map(|s| s[2]),
        lambda_se: se.map(|s| s[0]),
        points: points.len(),
        max_measured_cores: points.iter().map(|o| o.cores).fold(1.0, f64::max),
    };
    let predicted: Vec<f64> = points.iter().map(|o| fit.throughput(o.cores)).collect();
    Ok(UslFit {
        r2: r_squared(&observed, &predicted),
        ..fit
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGMA: f64 = 0.05;
    const KAPPA: f64 = 0.0008;

    /// Throughput of the law at 1..=64 cores, times a deterministic ±`noise` factor.
    fn synthetic(noise: f64, from: usize) -> Vec<Observation> {
        let law = UslFit {
            sigma: SIGMA,
            kappa: KAPPA,
            lambda: 1000.0,
            r2: 1.0,
            sigma_se: None,
            kappa_se: None,
            lambda_se: None,
            points: 0,
            max_measured_cores: 64.0,
        };
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (from..=64)
            .map(|n| {
                // xorshift: a fixed, reproducible "random" error in [-noise, +noise].
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                let n = n as f64;
                Observation {
                    cores: n,
                    throughput: law.throughput(n) * (1.0 + noise * (2.0 * u - 1.0)),
                }
            })
            .collect()
    }

    fn within(got: f64, want: f64, tolerance: f64) -> bool {
        ((got - want) / want).abs() <= tolerance
    }

    fn observations(data: &[(f64, f64)]) -> Vec<Observation> {
        data.iter()
            .map(|&(cores, throughput)| Observation { cores, throughput })
            .collect()
    }

    /// codahale/usl's test measurements (model_test.go) and its fit: σ = 0.02671591,
    /// κ = 7.690945e-4, λ = 995.6486.
    const CODAHALE: [(f64, f64); 32] = [
        (1.0, 955.16),
        (2.0, 1878.91),
        (3.0, 2688.01),
        (4.0, 3548.68),
        (5.0, 4315.54),
        (6.0, 5130.43),
        (7.0, 5931.37),
        (8.0, 6531.08),
        (9.0, 7219.8),
        (10.0, 7867.61),
        (11.0, 8278.71),
        (12.0, 8646.7),
        (13.0, 9047.84),
        (14.0, 9426.55),
        (15.0, 9645.37),
        (16.0, 9897.24),
        (17.0, 10097.6),
        (18.0, 10240.5),
        (19.0, 10532.39),
        (20.0, 10798.52),
        (21.0, 11151.43),
        (22.0, 11518.63),
        (23.0, 11806.0),
        (24.0, 12089.37),
        (25.0, 12075.41),
        (26.0, 12177.29),
        (27.0, 12211.41),
        (28.0, 12158.93),
        (29.0, 12155.27),
        (30.0, 12118.04),
        (31.0, 12140.4),
        (32.0, 12074.39),
    ];

    /// R's `usl` package's example, SPEC SDM91 on a Sun SPARCcenter 2000 (Gunther, Guerrilla
    /// Capacity Planning), and its fit (tests/summary.Rout.save): σ = 2.773e-2,
    /// κ = 1.044e-4, λ = 90.00.
    const SPECSDM91: [(f64, f64); 7] = [
        (1.0, 64.9),
        (18.0, 995.9),
        (36.0, 1652.4),
        (72.0, 1853.2),
        (108.0, 1828.9),
        (144.0, 1775.0),
        (216.0, 1702.2),
    ];

    #[test]
    fn absolute_loss_reproduces_the_reference_tools_fits_of_their_own_examples() {
        let fit = fit_usl_with(&observations(&CODAHALE), Loss::Absolute).unwrap();
        assert!(within(fit.sigma, 0.02671591, 0.01), "{fit:?}");
        assert!(within(fit.kappa, 7.690945e-4, 0.01), "{fit:?}");
        assert!(within(fit.lambda, 995.6486, 0.01), "{fit:?}");
        let fit = fit_usl_with(&observations(&SPECSDM91), Loss::Absolute).unwrap();
        assert!(within(fit.sigma, 2.773e-2, 0.01), "{fit:?}");
        assert!(within(fit.kappa, 1.044e-4, 0.01), "{fit:?}");
        assert!(within(fit.lambda, 90.00, 0.01), "{fit:?}");
        // The default weighs every point alike, and lands elsewhere on the same data.
        let relative = fit_usl(&observations(&SPECSDM91)).unwrap();
        assert!(!within(relative.sigma, 2.773e-2, 0.05), "{relative:?}");
    }

    #[test]
    fn usl_recovers_known_parameters_without_noise() {
        let fit = fit_usl(&synthetic(0.0, 1)).unwrap();
        assert!(
            within(fit.sigma, SIGMA, 0.01) && within(fit.kappa, KAPPA, 0.01),
            "{fit:?}"
        );
        assert!(within(fit.lambda, 1000.0, 0.01) && fit.r2 > 0.9999, "{fit:?}");
        let peak = fit.peak_cores().unwrap();
        assert!(within(peak, (0.95f64 / 0.0008).sqrt(), 0.01), "peak {peak}");
    }

    #[test]
    fn usl_recovers_known_parameters_with_two_percent_noise() {
        let fit = fit_usl(&synthetic(0.02, 1)).unwrap();
        assert!(
            within(fit.sigma, SIGMA, 0.10) && within(fit.kappa, KAPPA, 0.10),
            "{fit:?}"
        );
        let (lo, hi) = UslFit::interval(fit.kappa, fit.kappa_se).unwrap();
        assert!(
            lo < KAPPA && KAPPA < hi,
            "the interval holds the truth: {lo}..{hi}"
        );
    }

    #[test]
    fn no_one_core_point_is_needed() {
        let fit = fit_usl(&synthetic(0.0, 4)).unwrap();
        assert!(
            within(fit.sigma, SIGMA, 0.01) && within(fit.kappa, KAPPA, 0.01),
            "{fit:?}"
        );
        assert!(within(fit.lambda, 1000.0, 0.01), "{fit:?}");
    }

    #[test]
    fn parameters_never_go_negative() {
        // Superlinear data would want σ < 0: the fit stops at 0.
        let points: Vec<Observation> = [1.0, 2.0, 4.0, 8.0]
            .iter()
            .map(|&n| Observation {
                cores: n,
                throughput: 100.0 * n * (1.0 + 0.02 * n),
            })
            .collect();
        let fit = fit_usl(&points).unwrap();
        assert!(fit.sigma >= 0.0 && fit.kappa >= 0.0, "{fit:?}");
        assert!(fit.sigma.is_finite() && fit.r2.is_finite());
    }

    #[test]
    fn amdahl_and_gustafson_recover_their_serial_fraction() {
        let amdahl: Vec<Observation> = [1.0, 2.0, 4.0, 8.0, 16.0]
            .iter()
            .map(|&n| Observation {
                cores: n,
                throughput: 50.0 * n / (1.0 + 0.1 * (n - 1.0)),
            })
            .collect();
        let fit = fit_amdahl(&amdahl).unwrap();
        assert!(within(fit.sigma, 0.1, 1e-6) && fit.kappa == 0.0, "{fit:?}");
        assert!(within(fit.max_speedup().unwrap(), 10.0, 1e-6));
        let gustafson: Vec<Observation> = [1.0, 2.0, 4.0, 8.0]
            .iter()
            .map(|&n| Observation {
                cores: n,
                throughput: 50.0 * (n - 0.2 * (n - 1.0)),
            })
            .collect();
        let g = fit_gustafson(&gustafson).unwrap();
        assert!(
            within(g.sigma, 0.2, 1e-9) && within(g.lambda, 50.0, 1e-9),
            "{g:?}"
        );
    }

    #[test]
    fn degenerate_input_is_an_error_not_a_nan() {
        let one = [Observation {
            cores: 2.0,
            throughput: 10.0,
        }];
        assert_eq!(fit_usl(&one), Err(FitError::TooFewPoints { need: 3, got: 1 }));
        let same = [Observation {
            cores: 4.0,
            throughput: 10.0,
        }; 5];
        assert!(matches!(fit_usl(&same), Err(FitError::TooFewPoints { .. })));
        for bad in [0.0, -5.0, f64::NAN, f64::INFINITY] {
            let points = [
                Observation {
                    cores: 1.0,
                    throughput: 10.0,
                },
                Observation {
                    cores: 2.0,
                    throughput: bad,
                },
                Observation {
                    cores: 4.0,
                    throughput: 30.0,
                },
            ];
            assert!(
                matches!(fit_usl(&points), Err(FitError::BadPoint { index: 1, .. })),
                "{bad}"
            );
        }
        let zero_cores = [Observation {
            cores: 0.0,
            throughput: 1.0,
        }; 3];
        assert!(matches!(
            fit_amdahl(&zero_cores),
            Err(FitError::BadPoint { index: 0, .. })
        ));
        let falling: Vec<Observation> = [1.0, 2.0, 3.0]
            .iter()
            .map(|&n| Observation {
                cores: n,
                throughput: 100.0 / (n * n * n),
            })
            .collect();
        assert!(fit_usl(&falling).is_ok_and(|f| f.sigma.is_finite() && f.kappa.is_finite()));
    }
}
