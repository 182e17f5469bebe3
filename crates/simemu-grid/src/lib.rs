//! # simemu-grid
//!
//! Periodic N×N grids shared by plugins that simulate or emulate maps: full 2D DFTs
//! and Gaussian random fields drawn with a prescribed power map.
//!
//! Convention: the "power map" P_ij is the expected |DFT|²/N² of the field, so the
//! field's pixel covariance is ξ = IDFT(P) (with the 1/N² of the inverse transform)
//! and its variance is ΣP/N².

use std::f64::consts::PI;
use std::sync::Arc;

use rand::Rng;
use rand_distr::StandardNormal;
use realfft::{ComplexToReal, RealFftPlanner};
use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};

pub use rustfft::num_complex;

/// Draws zero-mean Gaussian fields with a given power map. Keeps the square-root
/// power on the rfft half plane (N rows × (N/2+1) columns), column-major (column j
/// holds rows 0..N) to match the order of the transforms.
pub struct FieldDrawer {
    n: usize,
    sqrt_power_cols: Vec<f64>,
    col_fft: Arc<dyn Fft<f64>>,
    row_c2r: Arc<dyn ComplexToReal<f64>>,
}

/// Full-plane |k| of each DFT mode (row-major N×N) for a periodic side of length
/// `side` (any unit): k = (2π/side)·√(f_i² + f_j²), f the FFT frequency index.
pub fn mode_wavenumbers(n: usize, side: f64) -> Vec<f64> {
    let fund = 2.0 * PI / side;
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

/// Pixel covariance ξ = IDFT(P)/N² (real, since P is even).
pub fn covariance(power: &[f64], n: usize) -> Vec<f64> {
    let mut c: Vec<Complex64> = power.iter().map(|&p| Complex64::new(p, 0.0)).collect();
    fft2(&mut c, n, true);
    let norm = 1.0 / (n * n) as f64;
    c.iter().map(|z| z.re * norm).collect()
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
