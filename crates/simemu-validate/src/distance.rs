//! Fréchet and kernel distances between two sets of feature vectors, as
//! jetnet (`jetnet.evaluation.gen_metrics`, Kansal et al. 2023,
//! arXiv:2211.10295) defines them:
//!
//! - every feature is first divided by its largest |value| in the reference
//!   set ([`normalise`] says what differs for features the reference leaves 0);
//! - **FPD**, the Fréchet distance between Gaussians fitted to the two sets,
//!   |μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^{1/2}) (covariances with N − 1), is
//!   biased by 1/N at sample size N; it is measured on `batches` sub-samples
//!   (drawn with replacement) at each of `points` sizes evenly spaced in 1/N
//!   between `min_samples` and `max_samples`, the means fitted with a line in
//!   1/N constrained to non-negative intercept and slope, and the intercept —
//!   the distance at infinite N — is the value, its fitted standard error the
//!   error;
//! - **KPD**, the unbiased estimate of the squared maximum mean discrepancy
//!   with the polynomial kernel k(x, y) = (x·y/d + 1)⁴, on `batches`
//!   sub-samples of `batch_size` (with replacement): the median is the value,
//!   half the 16.275–83.725 percentile range the error.
//!
//! jetnet's sub-samples come from numpy's generator; here they come from an
//! [`IndexDraw`], a seeded stream by default, so the values are simemu's own
//! to the last bit and jetnet's exactly when its draws are replayed (the
//! tests do so on fixtures from `tests/fixtures/make_jetnet.py`).

use nalgebra::{DMatrix, SymmetricEigen};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// A value and its error.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub error: f64,
}

/// Where the sub-sample indices come from: `draw(n, size)` returns `size`
/// indices below `n` (with replacement).
pub trait IndexDraw {
    fn draw(&mut self, n: usize, size: usize) -> Vec<usize>;
}

/// Uniform draws with replacement from a seeded Xoshiro256++ stream.
pub struct SeededDraw(rand_xoshiro::Xoshiro256PlusPlus);

impl SeededDraw {
    pub fn new(seed: u64) -> Self {
        SeededDraw(rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed))
    }
}

impl IndexDraw for SeededDraw {
    fn draw(&mut self, n: usize, size: usize) -> Vec<usize> {
        (0..size).map(|_| self.0.random_range(0..n)).collect()
    }
}

/// jetnet's FPD sampling, its defaults as in jetnet.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FpdOptions {
    pub min_samples: usize,
    pub max_samples: usize,
    pub batches: usize,
    pub points: usize,
}

impl Default for FpdOptions {
    fn default() -> Self {
        FpdOptions {
            min_samples: 20_000,
            max_samples: 50_000,
            batches: 20,
            points: 10,
        }
    }
}

/// Both sets divided, feature by feature, by the reference's largest |value|.
/// A feature the reference leaves 0 throughout is divided by the candidate's
/// largest |value| instead (jetnet leaves it unscaled, so that its weight in
/// the distance would depend on its units — a peak count per unit threshold
/// where the reference has none would outweigh every other feature).
pub fn normalise(reference: &[Vec<f64>], candidate: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let d = reference.first().map_or(0, |r| r.len());
    let largest = |set: &[Vec<f64>], f: usize| set.iter().map(|r| r[f].abs()).fold(0.0, f64::max);
    let scale: Vec<f64> = (0..d)
        .map(|f| match (largest(reference, f), largest(candidate, f)) {
            (0.0, 0.0) => 1.0,
            (0.0, m) | (m, _) => m,
        })
        .collect();
    let apply = |set: &[Vec<f64>]| -> Vec<Vec<f64>> {
        set.iter()
            .map(|r| r.iter().zip(&scale).map(|(v, s)| v / s).collect())
            .collect()
    };
    (apply(reference), apply(candidate))
}

/// Mean and covariance (N − 1 in the denominator, as `numpy.cov`) of the rows
/// `rows` of `set` (all rows when `None`).
pub(crate) fn mean_and_covariance(
    set: &[Vec<f64>],
    rows: Option<&[usize]>,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let pick: Vec<&Vec<f64>> = match rows {
        Some(r) => r.iter().map(|&i| &set[i]).collect(),
        None => set.iter().collect(),
    };
    let n = pick.len() as f64;
    let d = pick[0].len();
    let mut mean = vec![0.0; d];
    for r in &pick {
        mean.iter_mut().zip(r.iter()).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut cov = vec![vec![0.0; d]; d];
    for r in &pick {
        let centred: Vec<f64> = r.iter().zip(&mean).map(|(v, m)| v - m).collect();
        for (row, da) in cov.iter_mut().zip(&centred) {
            row.iter_mut()
                .zip(&centred)
                .for_each(|(c, db)| *c += da * db);
        }
    }
    cov.iter_mut().flatten().for_each(|c| *c /= n - 1.0);
    (mean, cov)
}

/// tr((Σ₁Σ₂)^{1/2}) = Σ √λ over the eigenvalues of Σ₁^{1/2} Σ₂ Σ₁^{1/2}
/// (those of Σ₁Σ₂), negative rounding clipped to 0 as the real part of
/// scipy's `sqrtm` trace drops it. Both matrices may be singular (fewer
/// samples than features).
fn trace_sqrt_product(s1: &[Vec<f64>], s2: &[Vec<f64>]) -> f64 {
    let d = s1.len();
    let matrix = |m: &[Vec<f64>]| DMatrix::from_fn(d, d, |i, j| m[i][j]);
    let first = SymmetricEigen::new(matrix(s1));
    let roots = first.eigenvalues.map(|l| l.max(0.0).sqrt());
    let root =
        &first.eigenvectors * DMatrix::from_diagonal(&roots) * first.eigenvectors.transpose();
    let inner = &root * matrix(s2) * &root;
    // Symmetrise what rounding left unsymmetric.
    let inner = (&inner + inner.transpose()) * 0.5;
    SymmetricEigen::new(inner)
        .eigenvalues
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum()
}

/// The Fréchet distance between Gaussians with these means and covariances.
fn frechet(m1: &[f64], s1: &[Vec<f64>], m2: &[f64], s2: &[Vec<f64>]) -> f64 {
    let diff: f64 = m1.iter().zip(m2).map(|(a, b)| (a - b) * (a - b)).sum();
    let traces: f64 = (0..s1.len()).map(|i| s1[i][i] + s2[i][i]).sum();
    diff + traces - 2.0 * trace_sqrt_product(s1, s2)
}

/// The Fréchet distance between Gaussians fitted to two whole sets.
pub fn frechet_distance(x: &[Vec<f64>], y: &[Vec<f64>]) -> f64 {
    let (m1, s1) = mean_and_covariance(x, None);
    let (m2, s2) = mean_and_covariance(y, None);
    frechet(&m1, &s1, &m2, &s2)
}

/// FPD of candidate `y` against reference `x` (normalised here).
pub fn fpd(
    x: &[Vec<f64>],
    y: &[Vec<f64>],
    options: &FpdOptions,
    draws: &mut dyn IndexDraw,
) -> Estimate {
    let (x, y) = normalise(x, y);
    let points = options.points.max(2);
    let (lo, hi) = (
        1.0 / options.min_samples as f64,
        1.0 / options.max_samples as f64,
    );
    // jetnet: sizes evenly spaced in 1/N, truncated to integers.
    // (numpy.linspace's arithmetic: start + i·step, the last point exact).
    let step = (hi - lo) / (points - 1) as f64;
    let sizes: Vec<usize> = (0..points)
        .map(|p| {
            let inverse = if p == points - 1 {
                hi
            } else {
                p as f64 * step + lo
            };
            (1.0 / inverse) as usize
        })
        .collect();
    // Drawn in jetnet's order, measured in parallel, summed in order.
    let batches: Vec<(usize, Vec<usize>, Vec<usize>)> = sizes
        .iter()
        .enumerate()
        .flat_map(|(p, &size)| (0..options.batches).map(move |_| (p, size)))
        .map(|(p, size)| (p, draws.draw(x.len(), size), draws.draw(y.len(), size)))
        .collect();
    let distances: Vec<f64> = batches
        .par_iter()
        .map(|(_, r1, r2)| {
            let (m1, s1) = mean_and_covariance(&x, Some(r1));
            let (m2, s2) = mean_and_covariance(&y, Some(r2));
            frechet(&m1, &s1, &m2, &s2)
        })
        .collect();
    let means: Vec<f64> = distances
        .chunks(options.batches)
        .map(|c| c.iter().sum::<f64>() / options.batches as f64)
        .collect();
    let inverse: Vec<f64> = sizes.iter().map(|&s| 1.0 / s as f64).collect();
    nonnegative_line_intercept(&inverse, &means)
}

/// The intercept of the least-squares line a + b·x with a, b ≥ 0 through
/// the points, and its standard error as `scipy.optimize.curve_fit` reports
/// it (the covariance (JᵀJ)⁻¹ s², s² the residual variance with n − 2 degrees
/// of freedom).
fn nonnegative_line_intercept(x: &[f64], y: &[f64]) -> Estimate {
    let n = x.len() as f64;
    let (sx, sy) = (x.iter().sum::<f64>(), y.iter().sum::<f64>());
    let sxx: f64 = x.iter().map(|v| v * v).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| a * b).sum();
    let det = n * sxx - sx * sx;
    let sse = |a: f64, b: f64| -> f64 {
        x.iter()
            .zip(y)
            .map(|(xi, yi)| (yi - a - b * xi).powi(2))
            .sum()
    };
    let free = ((sxx * sy - sx * sxy) / det, (n * sxy - sx * sy) / det);
    let (a, b) = if free.0 >= 0.0 && free.1 >= 0.0 {
        free
    } else {
        // The minimum lies on the boundary: the best of a = 0, b = 0, origin.
        let through_origin = (0.0, (sxy / sxx).max(0.0));
        let constant = ((sy / n).max(0.0), 0.0);
        if sse(through_origin.0, through_origin.1) <= sse(constant.0, constant.1) {
            through_origin
        } else {
            constant
        }
    };
    let s2 = sse(a, b) / (n - 2.0);
    Estimate {
        value: a,
        error: (sxx / det * s2).sqrt(),
    }
}

/// The unbiased MMD² of two sets with the kernel (x·y/d + 1)⁴.
pub fn mmd_poly_unbiased(x: &[Vec<f64>], y: &[Vec<f64>]) -> f64 {
    let d = x[0].len() as f64;
    let kernel = |a: &[f64], b: &[f64]| -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(p, q)| p * q).sum();
        (dot / d + 1.0).powi(4)
    };
    let within = |set: &[Vec<f64>]| -> f64 {
        let m = set.len() as f64;
        let mut total = 0.0;
        for (i, a) in set.iter().enumerate() {
            for (j, b) in set.iter().enumerate() {
                if i != j {
                    total += kernel(a, b);
                }
            }
        }
        total / (m * (m - 1.0))
    };
    let mut cross = 0.0;
    for a in x {
        for b in y {
            cross += kernel(a, b);
        }
    }
    within(x) + within(y) - 2.0 * cross / (x.len() * y.len()) as f64
}

/// KPD of candidate `y` against reference `x` (normalised here).
pub fn kpd(
    x: &[Vec<f64>],
    y: &[Vec<f64>],
    batches: usize,
    batch_size: usize,
    draws: &mut dyn IndexDraw,
) -> Estimate {
    let (x, y) = normalise(x, y);
    let drawn: Vec<(Vec<usize>, Vec<usize>)> = (0..batches)
        .map(|_| {
            (
                draws.draw(x.len(), batch_size),
                draws.draw(y.len(), batch_size),
            )
        })
        .collect();
    let pick = |set: &[Vec<f64>], rows: &[usize]| -> Vec<Vec<f64>> {
        rows.iter().map(|&i| set[i].clone()).collect()
    };
    let mut values: Vec<f64> = drawn
        .par_iter()
        .map(|(r1, r2)| mmd_poly_unbiased(&pick(&x, r1), &pick(&y, r2)))
        .collect();
    values.sort_by(f64::total_cmp);
    Estimate {
        value: percentile(&values, 50.0),
        error: (percentile(&values, 83.725) - percentile(&values, 16.275)) / 2.0,
    }
}

/// The q-th percentile of sorted values, linearly interpolated (numpy's
/// default).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let position = (sorted.len() - 1) as f64 * q / 100.0;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let t = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Fréchet distance of 1D Gaussians is (μ₁ − μ₂)² + (σ₁ − σ₂)².
    #[test]
    fn frechet_of_one_dimension_is_closed_form() {
        let (m1, s1) = (vec![0.5], vec![vec![4.0]]);
        let (m2, s2) = (vec![-1.0], vec![vec![1.0]]);
        let d = frechet(&m1, &s1, &m2, &s2);
        assert!((d - (1.5f64.powi(2) + 1.0)).abs() < 1e-12, "{d}");
    }

    /// tr((Σ₁Σ₂)^{1/2}) of commuting matrices is Σ √(a_i b_i), also when
    /// one is singular.
    #[test]
    fn trace_sqrt_of_diagonal_matrices() {
        let s1 = vec![
            vec![4.0, 0.0, 0.0],
            vec![0.0, 0.0, 0.0],
            vec![0.0, 0.0, 2.0],
        ];
        let s2 = vec![
            vec![1.0, 0.0, 0.0],
            vec![0.0, 5.0, 0.0],
            vec![0.0, 0.0, 8.0],
        ];
        let t = trace_sqrt_product(&s1, &s2);
        assert!((t - (2.0 + 0.0 + 4.0)).abs() < 1e-12, "{t}");
    }
}
