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
}
