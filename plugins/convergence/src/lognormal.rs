//! Grid-exact Gaussian and shifted log-normal fields on a periodic N×N map whose
//! expected power spectrum is the target C_ℓ exactly.
//!
//! Conventions: side L (radians), pixel Δ = L/N, mode (i, j) has
//! ℓ = (2π/L)·√(f_i² + f_j²) with f the FFT frequency index. The "power map"
//! P_ij = C(ℓ_ij)/Δ² is the expected |DFT|²/N² of the field, so that the field's
//! pixel covariance is ξ = IDFT(P) (with the 1/N² of the inverse transform).

use std::f64::consts::PI;
use std::sync::Arc;

use rand::Rng;
use rand_distr::StandardNormal;
use realfft::{ComplexToReal, RealFftPlanner};
use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};

/// Square-root power on the rfft half plane (N rows × (N/2+1) columns), stored
/// column-major (column j holds rows 0..N) to match the order of the transforms.
pub struct FieldDrawer {
    n: usize,
    sqrt_power_cols: Vec<f64>,
    col_fft: Arc<dyn Fft<f64>>,
    row_c2r: Arc<dyn ComplexToReal<f64>>,
}

/// Full-plane |ℓ| of each DFT mode, row-major N×N.
pub fn mode_ells(n: usize, angle_rad: f64) -> Vec<f64> {
    let fund = 2.0 * PI / angle_rad;
    let freq = |i: usize| if i <= n / 2 { i as f64 } else { i as f64 - n as f64 };
    let mut out = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            out.push(fund * (freq(i).powi(2) + freq(j).powi(2)).sqrt());
        }
    }
    out
}

/// Full 2D complex DFT (forward when `inverse` is false), unnormalised, in place.
pub fn fft2(data: &mut [Complex64], n: usize, inverse: bool) {
    let mut planner = FftPlanner::new();
    let fft = if inverse { planner.plan_fft_inverse(n) } else { planner.plan_fft_forward(n) };
    for row in data.chunks_mut(n) {
        fft.process(row);
    }
    let mut col = vec![Complex64::new(0.0, 0.0); n];
    for j in 0..n {
        for i in 0..n {
            col[i] = data[i * n + j];
        }
        fft.process(&mut col);
        for i in 0..n {
            data[i * n + j] = col[i];
        }
    }
}

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

/// The smallest shift for which ln(1 + ξ/λ²) is defined on the whole grid.
pub fn min_admissible_lambda(power: &[f64], n: usize) -> f64 {
    let xi = covariance(power, n);
    let min = xi.iter().cloned().fold(f64::INFINITY, f64::min);
    if min < 0.0 {
        (-min).sqrt()
    } else {
        0.0
    }
}

/// Pixel covariance ξ = IDFT(P)/N² (real, since P is even).
pub fn covariance(power: &[f64], n: usize) -> Vec<f64> {
    let mut c: Vec<Complex64> = power.iter().map(|&p| Complex64::new(p, 0.0)).collect();
    fft2(&mut c, n, true);
    let norm = 1.0 / (n * n) as f64;
    c.iter().map(|z| z.re * norm).collect()
}

/// ξ_G = ln(1 + ξ/λ²), P_G = DFT(ξ_G), negative modes clipped, DC zeroed.
pub fn lognormal_transform(power: &[f64], n: usize, lambda: f64) -> Result<LognormalTransform, f64> {
    let xi = covariance(power, n);
    let lam2 = lambda * lambda;
    let min = xi.iter().cloned().fold(f64::INFINITY, f64::min);
    if lam2 + min <= 0.0 {
        return Err((-min).sqrt());
    }
    let mut g: Vec<Complex64> = xi.iter().map(|&x| Complex64::new((x / lam2).ln_1p(), 0.0)).collect();
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
        clipped_fraction: if total > 0.0 { clipped_power / total } else { 0.0 },
    })
}

impl FieldDrawer {
    /// `power` is a full-plane power map (row-major N×N, symmetric under k → −k).
    pub fn new(power: &[f64], n: usize) -> Self {
        let half = n / 2 + 1;
        let mut sqrt_power_cols = vec![0.0; half * n];
        for j in 0..half {
            for i in 0..n {
                sqrt_power_cols[j * n + i] = power[i * n + j].max(0.0).sqrt();
            }
        }
        let mut planner = FftPlanner::new();
        let col_fft = planner.plan_fft_inverse(n);
        let row_c2r = RealFftPlanner::<f64>::new().plan_fft_inverse(n);
        FieldDrawer {
            n,
            sqrt_power_cols,
            col_fft,
            row_c2r,
        }
    }

    /// Draws one zero-mean Gaussian field with the power map, row-major N×N.
    ///
    /// Equivalent in distribution to IDFT(DFT(w)·√P) for white noise w ~ N(0, 1), but
    /// draws DFT(w) directly on the half plane: E|W|² = N², Hermitian symmetry on the
    /// self-conjugate columns j = 0 and j = N/2, real values at the four
    /// self-conjugate modes.
    pub fn draw(&self, rng: &mut impl Rng) -> Vec<f64> {
        let n = self.n;
        let half = n / 2 + 1;
        let nf = n as f64;
        let amp = nf * std::f64::consts::FRAC_1_SQRT_2;
        let mut cols = vec![Complex64::new(0.0, 0.0); half * n];
        for j in 0..half {
            let sp = &self.sqrt_power_cols[j * n..(j + 1) * n];
            let col = &mut cols[j * n..(j + 1) * n];
            if j == 0 || j == n / 2 {
                for i in 0..=n / 2 {
                    if i == 0 || i == n / 2 {
                        let a: f64 = rng.sample(StandardNormal);
                        col[i] = Complex64::new(nf * a * sp[i], 0.0);
                    } else {
                        let a: f64 = rng.sample(StandardNormal);
                        let b: f64 = rng.sample(StandardNormal);
                        let v = Complex64::new(amp * a * sp[i], amp * b * sp[i]);
                        col[i] = v;
                        col[n - i] = v.conj();
                    }
                }
            } else {
                for i in 0..n {
                    let a: f64 = rng.sample(StandardNormal);
                    let b: f64 = rng.sample(StandardNormal);
                    col[i] = Complex64::new(amp * a * sp[i], amp * b * sp[i]);
                }
            }
        }
        let mut scratch = vec![Complex64::new(0.0, 0.0); self.col_fft.get_inplace_scratch_len()];
        for col in cols.chunks_mut(n) {
            self.col_fft.process_with_scratch(col, &mut scratch);
        }
        let mut out = vec![0.0; n * n];
        let mut row = vec![Complex64::new(0.0, 0.0); half];
        let mut rscratch = self.row_c2r.make_scratch_vec();
        let norm = 1.0 / (nf * nf);
        for i in 0..n {
            for j in 0..half {
                row[j] = cols[j * n + i];
            }
            // Exactly real by symmetry; drop round-off so the c2r transform accepts it.
            row[0].im = 0.0;
            row[half - 1].im = 0.0;
            let dst = &mut out[i * n..(i + 1) * n];
            self.row_c2r
                .process_with_scratch(&mut row, dst, &mut rscratch)
                .expect("buffer sizes match the plan");
            for v in dst.iter_mut() {
                *v *= norm;
            }
        }
        out
    }
}
