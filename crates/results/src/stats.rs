//! Small, exact statistics over a handful of repeats: median, quartiles, Tukey's fences.

/// Median, extremes and quartiles of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Middle value (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// First quartile (linear interpolation).
    pub q1: f64,
    /// Third quartile (linear interpolation).
    pub q3: f64,
}

impl Summary {
    /// Summarises `values`; `None` when there are none or any is not finite.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Summary {
            median: quantile(&sorted, 0.5),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            q1: quantile(&sorted, 0.25),
            q3: quantile(&sorted, 0.75),
        })
    }

    /// Values outside Tukey's fences `[q1 - 1.5 IQR, q3 + 1.5 IQR]`, the rule criterion and
    /// hyperfine use to flag outliers.
    pub fn outliers(&self, values: &[f64]) -> Vec<f64> {
        let iqr = self.q3 - self.q1;
        let (low, high) = (self.q1 - 1.5 * iqr, self.q3 + 1.5 * iqr);
        values.iter().copied().filter(|&v| v < low || v > high).collect()
    }

    /// `(max - min) / median`: the relative spread of the repeats.
    pub fn relative_spread(&self) -> f64 {
        if self.median > 0.0 {
            (self.max - self.min) / self.median
        } else {
            0.0
        }
    }
}

/// Linear-interpolation quantile of sorted values (type 7, as R and NumPy default to).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_values() {
        let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.q1, s.q3), (2.5, 1.0, 4.0, 1.75, 3.25));
        assert_eq!(Summary::of(&[]), None);
        assert_eq!(Summary::of(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn tukey_flags_a_far_value_only() {
        let values = [1.0, 1.01, 0.99, 1.02, 0.98, 3.0];
        let s = Summary::of(&values).unwrap();
        assert_eq!(s.outliers(&values), vec![3.0]);
        let calm = [1.0, 1.01, 0.99];
        assert!(Summary::of(&calm).unwrap().outliers(&calm).is_empty());
    }
}
