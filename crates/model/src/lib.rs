//! Scaling laws fitted to measurements: Amdahl, Gustafson and the Universal Scalability Law.
//!
//! Pure functions over plain numbers: no I/O, no clocks. Every fit works in throughput form
//! (`X(N) = λ · speed-up(N)`, with the single-core throughput λ fitted too), so no 1-core point
//! is needed; every fit keeps σ and κ non-negative and answers bad data with a [`FitError`],
//! never a NaN or a panic.
#![deny(missing_docs)]

mod linalg;
mod table;
mod tier;
mod usl;
mod verdict;

pub use table::{Curve, CurvePoint, TableError, read_curves, series_curves};
pub use tier::Tier;
pub use usl::{
    GustafsonFit, Loss, UslFit, fit_amdahl, fit_amdahl_with, fit_gustafson, fit_usl, fit_usl_with,
};
pub use verdict::{Band, Basis, Evidence, MACHINE_CORES, Reached, claims_are_bounded, gain_words, verdict};

/// One measurement: throughput (any unit, e.g. tasks per second) at a core count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    /// Cores (or threads, workers: the N of the laws), at least 1.
    pub cores: f64,
    /// Throughput at that core count, above 0.
    pub throughput: f64,
}

/// Why a fit cannot be made.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Fewer distinct core counts than the law has parameters.
    #[error("needs at least {need} distinct core counts to fit, got {got}")]
    TooFewPoints {
        /// Distinct core counts needed.
        need: usize,
        /// Distinct core counts given.
        got: usize,
    },
    /// A value that cannot be a measurement.
    #[error("point {index}: {what}")]
    BadPoint {
        /// Zero-based index of the point.
        index: usize,
        /// What is wrong with it.
        what: String,
    },
    /// The data do not determine the parameters (e.g. every throughput equal to zero).
    #[error("the data do not determine the fit: {0}")]
    Degenerate(String),
}

/// Checks the points and returns how many distinct core counts they have.
pub(crate) fn check(points: &[Observation], need: usize) -> Result<(), FitError> {
    for (index, p) in points.iter().enumerate() {
        if !p.cores.is_finite() || p.cores < 1.0 {
            return Err(FitError::BadPoint {
                index,
                what: format!("cores must be a number of at least 1, got {}", p.cores),
            });
        }
        if !p.throughput.is_finite() || p.throughput <= 0.0 {
            return Err(FitError::BadPoint {
                index,
                what: format!("throughput must be a positive number, got {}", p.throughput),
            });
        }
    }
    let mut cores: Vec<f64> = points.iter().map(|p| p.cores).collect();
    cores.sort_by(f64::total_cmp);
    cores.dedup();
    if cores.len() < need {
        return Err(FitError::TooFewPoints {
            need,
            got: cores.len(),
        });
    }
    Ok(())
}

/// Coefficient of determination of `predicted` against `observed` (1 is a perfect fit).
pub(crate) fn r_squared(observed: &[f64], predicted: &[f64]) -> f64 {
    let mean = observed.iter().sum::<f64>() / observed.len() as f64;
    let total: f64 = observed.iter().map(|y| (y - mean).powi(2)).sum();
    let residual: f64 = observed.iter().zip(predicted).map(|(y, p)| (y - p).powi(2)).sum();
    if total > 0.0 {
        1.0 - residual / total
    } else if residual == 0.0 {
        1.0
    } else {
        0.0
    }
}
