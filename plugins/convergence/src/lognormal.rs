//! The shifted log-normal transform of a target power map (Hilbert, Hartlap &
//! Schneider 2011; Xavier et al. 2016), on the periodic grid of [`simemu_grid`]:
//! ξ_G = ln(1 + ξ/λ²), P_G = DFT(ξ_G), negative Gaussian power clipped.

use rustfft::num_complex::Complex64;
use simemu_grid::{covariance, fft2};

/// Outcome of converting a target power map to the Gaussian field's power map.
pub struct LognormalTransform {
    /// Power map of the Gaussian field g (row-major N×N), clipped ≥ 0, DC zeroed.
    pub gaussian_power: Vec<f64>,
    /// Variance of g actually realised by `gaussian_power`.
    pub gaussian_variance: f64,
    /// Number of modes whose Gaussian power was negative and clipped to 0.
    pub clipped_modes: usize,
    /// Clipped power as a fraction of the total Gaussian power.
    pub clipped_fraction: f64,
}

/// ξ_G = ln(1 + ξ/λ²), P_G = DFT(ξ_G), negative modes clipped, DC zeroed.
pub fn lognormal_transform(
    power: &[f64],
    n: usize,
    lambda: f64,
) -> Result<LognormalTransform, f64> {
    let xi = covariance(power, n);
    let lam2 = lambda * lambda;
    let min = xi.iter().cloned().fold(f64::INFINITY, f64::min);
    if lam2 + min <= 0.0 {
        return Err((-min).sqrt());
    }
    let mut g: Vec<Complex64> = xi
        .iter()
        .map(|&x| Complex64::new((x / lam2).ln_1p(), 0.0))
        .collect();
    fft2(&mut g, n, false);
    let mut clipped = 0;
    let mut clipped_power = 0.0;
    let mut total = 0.0;
    let mut out: Vec<f64> = g
        .iter()
        .map(|z| {
            total += z.re.abs();
            if z.re < 0.0 {
                clipped += 1;
                clipped_power += -z.re;
                0.0
            } else {
                z.re
            }
        })
        .collect();
    out[0] = 0.0;
    let variance = out.iter().sum::<f64>() / (n * n) as f64;
    Ok(LognormalTransform {
        gaussian_power: out,
        gaussian_variance: variance,
        clipped_modes: clipped,
        clipped_fraction: if total > 0.0 {
            clipped_power / total
        } else {
            0.0
        },
    })
}
