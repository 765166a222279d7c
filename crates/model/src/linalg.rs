//! The little linear algebra the fits need: solving and inverting 3×3 (or smaller) systems.

/// Solves `a x = b` for a small dense symmetric positive-definite `a` (Gaussian elimination
/// with partial pivoting); `None` when `a` is singular.
pub(crate) fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    for col in 0..N {
        let pivot = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (upper, lower) = a.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for (offset, row) in lower.iter_mut().enumerate() {
            let factor = row[col] / pivot_row[col];
            for (cell, &above) in row.iter_mut().zip(pivot_row.iter()).skip(col) {
                *cell -= factor * above;
            }
            b[col + 1 + offset] -= factor * b[col];
        }
    }
    let mut x = [0.0; N];
    for row in (0..N).rev() {
        let tail: f64 = (row + 1..N).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The inverse of a small matrix, column by column; `None` when singular.
pub(crate) fn inverse<const N: usize>(a: [[f64; N]; N]) -> Option<[[f64; N]; N]> {
    let mut inv = [[0.0; N]; N];
    for col in 0..N {
        let mut e = [0.0; N];
        e[col] = 1.0;
        let x = solve(a, e)?;
        for row in 0..N {
            inv[row][col] = x[row];
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_and_inverts() {
        let a = [[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]];
        let x = solve(a, [1.0, 2.0, 3.0]).unwrap();
        let back: Vec<f64> = (0..3).map(|r| (0..3).map(|c| a[r][c] * x[c]).sum()).collect();
        for (got, want) in back.iter().zip([1.0, 2.0, 3.0]) {
            assert!((got - want).abs() < 1e-12);
        }
        let inv = inverse(a).unwrap();
        let id: f64 = (0..3).map(|c| a[0][c] * inv[c][0]).sum();
        assert!((id - 1.0).abs() < 1e-12);
        assert!(solve([[1.0, 2.0], [2.0, 4.0]], [1.0, 1.0]).is_none(), "singular");
    }
}
