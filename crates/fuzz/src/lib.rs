//! The fuzz targets' bodies, one function per target: arbitrary bytes in, no panic out. The
//! coverage-guided harness (`fuzz/`, `cargo +nightly fuzz run TARGET`, see
//! `scripts/fuzz.sh`) and the corpus replay test (`tests/corpus.rs`, on every `cargo test`)
//! call the same functions.
#![deny(missing_docs)]

use std::path::Path;

use martelli_config::Overrides;
use martelli_model::{Loss, fit_amdahl_with, fit_usl_with, read_curves};

/// A fuzz target: bytes in, no panic out.
pub type Target = fn(&[u8]);

/// The targets, by the name of their corpus folder.
pub const TARGETS: [(&str, Target); 4] = [
    ("config", config),
    ("worker_receives", worker_receives),
    ("coordinator_receives", coordinator_receives),
    ("fit_csv", fit_csv),
];

/// A config file: parsed and validated as `martelli run` and `martelli validate` do.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = martelli_config::parse(Path::new("fuzz.toml"), text, &Overrides::default());
    }
}

/// A message a worker decodes (see [`martelli_distributed::fuzzing::worker_receives`]).
pub fn worker_receives(data: &[u8]) {
    martelli_distributed::fuzzing::worker_receives(data);
}

/// A message a coordinator decodes (see [`martelli_distributed::fuzzing::coordinator_receives`]).
pub fn coordinator_receives(data: &[u8]) {
    martelli_distributed::fuzzing::coordinator_receives(data);
}

/// A CSV file given to `martelli fit`: read, and every curve fitted with both losses; a fit
/// is an error or finite numbers, never a NaN.
pub fn fit_csv(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(curves) = read_curves(text, &[]) else {
        return;
    };
    for curve in curves.iter().take(16) {
        for loss in [Loss::Relative, Loss::Absolute] {
            for fit in [
                fit_usl_with(&curve.points, loss),
                fit_amdahl_with(&curve.points, loss),
            ]
            .into_iter()
            .flatten()
            {
                assert!(
                    fit.sigma.is_finite() && fit.kappa.is_finite() && fit.lambda.is_finite(),
                    "a fit of finite data has finite parameters: {fit:?}"
                );
            }
        }
    }
}
