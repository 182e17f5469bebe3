//! Transforms between physical values and the network's (tanh) range, fitted per
//! dataset and stored with the checkpoint so that generation returns physical values.

use serde::{Deserialize, Serialize};
use simemu_core::{Error, Result};

/// The configured choice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TransformKind {
    /// Values fed as they are (CosmoGAN).
    Identity,
    /// Affine map of the training range [min, max] onto [−0.9, 0.9].
    #[default]
    Affine,
    /// Rodríguez et al.'s s(x) = 2(x+λ)/(x+λ+a) − 1 applied to x + λ (> 0 for
    /// shifted log-normal maps); `None` values are fitted: λ = −min + 1% of the
    /// range, a = the median of x + λ.
    Shifted { lambda: Option<f64>, a: Option<f64> },
    /// ln(x + λ), then the affine map of its training range onto [−0.9, 0.9]: a
    /// shifted log-normal field becomes a Gaussian one. `None`: λ = −min + 1% of
    /// the range.
    Log { lambda: Option<f64> },
}

/// A fitted transform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Transform {
    Identity,
    Affine {
        offset: f64,
        scale: f64,
    },
    Shifted {
        lambda: f64,
        a: f64,
    },
    Log {
        lambda: f64,
        offset: f64,
        scale: f64,
    },
}

impl Transform {
    /// Fits the transform to sorted training values.
    pub fn fit(kind: &TransformKind, sorted: &[f32]) -> Result<Transform> {
        let (lo, hi) = (sorted[0] as f64, sorted[sorted.len() - 1] as f64);
        match kind {
            TransformKind::Identity => Ok(Transform::Identity),
            TransformKind::Affine => {
                let scale = if hi > lo { 1.8 / (hi - lo) } else { 1.0 };
                Ok(Transform::Affine {
                    offset: 0.5 * (lo + hi),
                    scale,
                })
            }
            TransformKind::Shifted { lambda, a } => {
                let lambda = lambda.unwrap_or(-lo + 0.01 * (hi - lo));
                if lo + lambda <= 0.0 {
                    return Err(Error::Option(format!(
                        "dcgan: shifted transform needs x + λ > 0, but min x = {lo} and λ = {lambda}"
                    )));
                }
                let median = sorted[sorted.len() / 2] as f64 + lambda;
                let a = a.unwrap_or(median);
                if a <= 0.0 {
                    return Err(Error::Option(format!(
                        "dcgan: shifted transform needs a > 0, got {a}"
                    )));
                }
                Ok(Transform::Shifted { lambda, a })
            }
            TransformKind::Log { lambda } => {
                let lambda = lambda.unwrap_or(-lo + 0.01 * (hi - lo));
                if lo + lambda <= 0.0 {
                    return Err(Error::Option(format!(
                        "dcgan: log transform needs x + λ > 0, but min x = {lo} and λ = {lambda}"
                    )));
                }
                let (llo, lhi) = ((lo + lambda).ln(), (hi + lambda).ln());
                Ok(Transform::Log {
                    lambda,
                    offset: 0.5 * (llo + lhi),
                    scale: if lhi > llo { 1.8 / (lhi - llo) } else { 1.0 },
                })
            }
        }
    }

    #[inline]
    pub fn forward(&self, x: f64) -> f64 {
        match *self {
            Transform::Identity => x,
            Transform::Affine { offset, scale } => (x - offset) * scale,
            Transform::Shifted { lambda, a } => 2.0 * (x + lambda) / (x + lambda + a) - 1.0,
            // Values below −λ (only a generator's) map to the bottom of the range.
            Transform::Log {
                lambda,
                offset,
                scale,
            } => ((x + lambda).max(f64::MIN_POSITIVE).ln() - offset) * scale,
        }
    }

    #[inline]
    pub fn inverse(&self, s: f64) -> f64 {
        match *self {
            Transform::Identity => s,
            Transform::Affine { offset, scale } => s / scale + offset,
            // s = 2y/(y+a) − 1 ⇔ y = a(1+s)/(1−s); tanh keeps |s| < 1.
            Transform::Shifted { lambda, a } => a * (1.0 + s) / (1.0 - s).max(1e-7) - lambda,
            Transform::Log {
                lambda,
                offset,
                scale,
            } => (s / scale + offset).exp() - lambda,
        }
    }

    /// [`Transform::inverse`] as tensor operations (differentiable, for losses on
    /// physical values).
    pub fn inverse_tensor(
        &self,
        s: &candle_core::Tensor,
    ) -> candle_core::Result<candle_core::Tensor> {
        match *self {
            Transform::Identity => Ok(s.clone()),
            Transform::Affine { offset, scale } => s.affine(1.0 / scale, offset),
            Transform::Shifted { lambda, a } => {
                let num = s.affine(a, a)?;
                let den = s.affine(-1.0, 1.0)?.clamp(1e-7, 2.0)?;
                (num / den)?.affine(1.0, -lambda)
            }
            Transform::Log {
                lambda,
                offset,
                scale,
            } => s.affine(1.0 / scale, offset)?.exp()?.affine(1.0, -lambda),
        }
    }
}

/// A polynomial in the scaled conditions (each in [−1, 1]): the monomials of
/// total degree ≤ `degree`, fitted by least squares to values known at the
/// training design's points. How quantities the data fix at each point (the
/// transform's range, the pinned mean) are carried to conditions between them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Polynomial {
    pub degree: usize,
    pub coefficients: Vec<f64>,
}

/// The exponents of every monomial of total degree ≤ `degree` in `vars` variables,
/// in a fixed order (the constant first).
fn monomials(vars: usize, degree: usize) -> Vec<Vec<usize>> {
    let mut out = vec![vec![0; vars]];
    for d in 1..=degree {
        let mut current = vec![0usize; vars];
        fn fill(at: usize, left: usize, current: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if at + 1 == current.len() {
                current[at] = left;
                out.push(current.clone());
                return;
            }
            for e in (0..=left).rev() {
                current[at] = e;
                fill(at + 1, left - e, current, out);
            }
        }
        if vars > 0 {
            fill(0, d, &mut current, &mut out);
        }
    }
    out
}

impl Polynomial {
    /// The highest degree (≤ 3) whose monomials number at most half the points:
    /// two points per coefficient at least, so the fit smooths instead of
    /// interpolating the points' sampling noise.
    pub fn degree_for(vars: usize, points: usize) -> usize {
        (0..=3)
            .rev()
            .find(|&d| monomials(vars, d).len() * 2 <= points)
            .unwrap_or(0)
    }

    /// Least-squares fit of `values` at `points` (scaled conditions).
    pub fn fit(points: &[Vec<f64>], values: &[f64], degree: usize) -> Result<Polynomial> {
        let vars = points.first().map_or(0, Vec::len);
        let terms = monomials(vars, degree);
        let m = terms.len();
        if points.len() < m {
            return Err(Error::Data(format!(
                "dcgan: a degree-{degree} fit over {vars} conditions needs {m} design points, the data have {}",
                points.len()
            )));
        }
        // Normal equations AᵀA c = Aᵀv, solved by Gaussian elimination with
        // partial pivoting (at most 20 unknowns).
        let mut a = vec![vec![0.0f64; m + 1]; m];
        for (p, &v) in points.iter().zip(values) {
            let row: Vec<f64> = terms.iter().map(|e| eval_monomial(e, p)).collect();
            for i in 0..m {
                for j in 0..m {
                    a[i][j] += row[i] * row[j];
                }
                a[i][m] += row[i] * v;
            }
        }
        for col in 0..m {
            let pivot = (col..m)
                .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
                .expect("non-empty");
            a.swap(col, pivot);
            let d = a[col][col];
            if d.abs() < 1e-12 {
                return Err(Error::Data(format!(
                    "dcgan: the design's points do not determine a degree-{degree} fit over the conditions (they lie on a lower-dimensional set)"
                )));
            }
            let pivot_row = a[col].clone();
            for (i, row) in a.iter_mut().enumerate() {
                if i != col {
                    let f = row[col] / d;
                    for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                        *x -= f * p;
                    }
                }
            }
        }
        Ok(Polynomial {
            degree,
            coefficients: (0..m).map(|i| a[i][m] / a[i][i]).collect(),
        })
    }

    pub fn eval(&self, scaled: &[f64]) -> f64 {
        monomials(scaled.len(), self.degree)
            .iter()
            .zip(&self.coefficients)
            .map(|(e, c)| c * eval_monomial(e, scaled))
            .sum()
    }
}

fn eval_monomial(exponents: &[usize], x: &[f64]) -> f64 {
    exponents
        .iter()
        .zip(x)
        .map(|(&e, &v)| v.powi(e as i32))
        .product()
}

/// The transform's affine range as a function of the conditions (`per_point`):
/// at conditions c the network's value is (u − m(c)) · k / s(c), with u the
/// transform's value before its affine map (ln(x + λ) for `log`, x for `affine`),
/// m and ln s polynomials fitted to every design point's mean and standard
/// deviation of u, and k one factor that keeps all training values within ±0.9.
/// Every point's maps then fill the network's range alike, so G learns how the
/// shape of the field changes with the conditions, not its amplitude.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConditionalRange {
    pub mean: Polynomial,
    pub log_std: Polynomial,
    pub factor: f64,
}

impl Transform {
    /// The value before the affine map (the identity for transforms without one).
    pub fn pre_affine(&self, x: f64) -> f64 {
        match *self {
            Transform::Log { lambda, .. } => (x + lambda).max(f64::MIN_POSITIVE).ln(),
            _ => x,
        }
    }

    /// This transform with its affine map replaced; `None` for kinds without one.
    pub fn with_affine(&self, offset: f64, scale: f64) -> Option<Transform> {
        match *self {
            Transform::Affine { .. } => Some(Transform::Affine { offset, scale }),
            Transform::Log { lambda, .. } => Some(Transform::Log {
                lambda,
                offset,
                scale,
            }),
            Transform::Identity | Transform::Shifted { .. } => None,
        }
    }
}

/// One design point's pre-affine values: their mean, standard deviation and
/// extremes.
#[derive(Clone, Copy, Debug)]
pub struct PointMoments {
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

impl ConditionalRange {
    /// Fits the range to per-point moments of the pre-affine values at `points`
    /// (scaled conditions); k keeps every point's extremes, |u − m(c)| / s(c),
    /// within 0.9.
    pub fn fit(points: &[Vec<f64>], moments: &[PointMoments]) -> Result<ConditionalRange> {
        let degree = Polynomial::degree_for(points.first().map_or(0, Vec::len), points.len());
        if let Some(p) = moments
            .iter()
            .position(|m| !(m.mean.is_finite() && m.std > 0.0))
        {
            return Err(Error::Data(format!(
                "dcgan: design point {p} has no spread in the transformed values (σ = {})",
                moments[p].std
            )));
        }
        let means: Vec<f64> = moments.iter().map(|m| m.mean).collect();
        let log_stds: Vec<f64> = moments.iter().map(|m| m.std.ln()).collect();
        let mean = Polynomial::fit(points, &means, degree)?;
        let log_std = Polynomial::fit(points, &log_stds, degree)?;
        let widest = points.iter().zip(moments).fold(0.0f64, |w, (p, pm)| {
            let (m, sd) = (mean.eval(p), log_std.eval(p).exp());
            w.max((pm.max - m) / sd).max((m - pm.min) / sd)
        });
        Ok(ConditionalRange {
            mean,
            log_std,
            factor: 0.9 / widest.max(1e-12),
        })
    }

    /// The fitted transform at scaled conditions `c`.
    pub fn at(&self, base: &Transform, c: &[f64]) -> Transform {
        let offset = self.mean.eval(c);
        let scale = self.factor / self.log_std.eval(c).exp();
        base.with_affine(offset, scale)
            .expect("a conditional range is fitted only for transforms with an affine map")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_invert() {
        let data: Vec<f32> = (0..100).map(|i| -0.02 + 0.001 * i as f32).collect();
        for kind in [
            TransformKind::Identity,
            TransformKind::Affine,
            TransformKind::Shifted {
                lambda: None,
                a: None,
            },
            TransformKind::Log { lambda: None },
        ] {
            let t = Transform::fit(&kind, &data).unwrap();
            for &x in &[-0.02, 0.0, 0.03, 0.07] {
                let back = t.inverse(t.forward(x));
                assert!((back - x).abs() < 1e-12, "{t:?}: {x} -> {back}");
            }
        }
        // The tensor inverse computes the same.
        for kind in [
            TransformKind::Affine,
            TransformKind::Shifted {
                lambda: None,
                a: None,
            },
            TransformKind::Log { lambda: None },
        ] {
            let t = Transform::fit(&kind, &data).unwrap();
            let s = [-0.9f64, -0.3, 0.0, 0.5, 0.9];
            let st = candle_core::Tensor::new(&s, &candle_core::Device::Cpu).unwrap();
            let got: Vec<f64> = t.inverse_tensor(&st).unwrap().to_vec1().unwrap();
            for (g, &v) in got.iter().zip(&s) {
                assert!((g - t.inverse(v)).abs() < 1e-12, "{t:?} at {v}");
            }
        }
        let t = Transform::fit(&TransformKind::Affine, &data).unwrap();
        assert!((t.forward(-0.02) + 0.9).abs() < 1e-5 && (t.forward(0.079) - 0.9).abs() < 1e-5);
        // The log transform maps the training range onto [−0.9, 0.9] too, and a
        // log-normal variable κ = λ(e^g − 1) back onto the Gaussian g (affinely).
        let t = Transform::fit(&TransformKind::Log { lambda: None }, &data).unwrap();
        let (lo, hi) = (data[0] as f64, data[99] as f64);
        assert!((t.forward(lo) + 0.9).abs() < 1e-9 && (t.forward(hi) - 0.9).abs() < 1e-9);
        let t = Transform::fit(&TransformKind::Log { lambda: Some(0.03) }, &data).unwrap();
        let g = |x: f64| t.forward(0.03 * (x.exp() - 1.0));
        assert!(((g(0.5) - g(0.0)) - (g(0.0) - g(-0.5))).abs() < 1e-12);
    }

    /// A polynomial fit recovers a polynomial of its degree exactly and the
    /// monomials of degree ≤ 2 in two variables are the six expected.
    #[test]
    fn polynomial_fits_recover_polynomials() {
        assert_eq!(monomials(2, 2).len(), 6);
        assert_eq!(monomials(2, 3).len(), 10);
        assert_eq!(Polynomial::degree_for(2, 32), 3);
        assert_eq!(Polynomial::degree_for(2, 12), 2);
        assert_eq!(Polynomial::degree_for(2, 3), 0);
        let f = |c: &[f64]| 0.3 - 0.2 * c[0] + 0.7 * c[1] + 0.1 * c[0] * c[1] - 0.05 * c[1] * c[1];
        let points: Vec<Vec<f64>> = (0..12)
            .map(|i| vec![-1.0 + 0.17 * i as f64, (0.9 * i as f64).sin()])
            .collect();
        let values: Vec<f64> = points.iter().map(|p| f(p)).collect();
        let poly = Polynomial::fit(&points, &values, 2).unwrap();
        for c in [[0.1, -0.4], [0.9, 0.9], [-0.5, 0.2]] {
            assert!((poly.eval(&c) - f(&c)).abs() < 1e-10);
        }
        // Points on a line cannot determine a surface.
        let line: Vec<Vec<f64>> = (0..8)
            .map(|i| vec![0.1 * i as f64, 0.1 * i as f64])
            .collect();
        assert!(Polynomial::fit(&line, &[0.0; 8], 1).is_err());
    }
}
