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
use rand_distr::{Distribution, StandardNormal};
use realfft::{ComplexToReal, RealFftPlanner};
use rustfft::num_complex::{Complex, Complex64};
use rustfft::num_traits::Float;
use rustfft::{Fft, FftNum, FftPlanner};

pub use rustfft::num_complex;

/// Full-plane |k| of each DFT mode (row-major N×N) for a periodic side of length
/// `side` (any unit): k = (2π/side)·√(f_i² + f_j²), f the FFT frequency index.
pub fn mode_wavenumbers(n: usize, side: f64) -> Vec<f64> {
    let fund = 2.0 * PI / side;
    let freq = |i: usize| {
        if i <= n / 2 {
            i as f64
        } else {
            i as f64 - n as f64
        }
    };
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
    let fft = if inverse {
        planner.plan_fft_inverse(n)
    } else {
        planner.plan_fft_forward(n)
    };
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

/// Draws zero-mean Gaussian fields with a given power map, in f32 or f64. Keeps the
/// square-root power on the rfft half plane (N rows × (N/2+1) columns),
/// column-major (column j holds rows 0..N) to match the order of the transforms.
pub struct FieldDrawer<T: FftNum> {
    n: usize,
    sqrt_power_cols: Vec<T>,
    col_fft: Arc<dyn Fft<T>>,
    row_c2r: Arc<dyn ComplexToReal<T>>,
}

/// Work space of [`FieldDrawer::draw_into`], reusable across draws (one per thread).
pub struct DrawBuffers<T: FftNum> {
    cols: Vec<Complex<T>>,
    col_scratch: Vec<Complex<T>>,
    row: Vec<Complex<T>>,
    row_scratch: Vec<Complex<T>>,
}

impl<T: FftNum + Float> FieldDrawer<T>
where
    StandardNormal: Distribution<T>,
{
    /// `power` is a full-plane power map (row-major N×N, symmetric under k → −k).
    pub fn new(power: &[f64], n: usize) -> Self {
        let half = n / 2 + 1;
        let mut sqrt_power_cols = vec![T::zero(); half * n];
        for j in 0..half {
            for i in 0..n {
                sqrt_power_cols[j * n + i] =
                    T::from_f64(power[i * n + j].max(0.0).sqrt()).expect("finite power");
            }
        }
        let col_fft = FftPlanner::new().plan_fft_inverse(n);
        let row_c2r = RealFftPlanner::<T>::new().plan_fft_inverse(n);
        FieldDrawer {
            n,
            sqrt_power_cols,
            col_fft,
            row_c2r,
        }
    }

    pub fn size(&self) -> usize {
        self.n
    }

    /// Fresh work space for [`FieldDrawer::draw_into`].
    pub fn buffers(&self) -> DrawBuffers<T> {
        let n = self.n;
        let zero = Complex::new(T::zero(), T::zero());
        DrawBuffers {
            cols: vec![zero; (n / 2 + 1) * n],
            col_scratch: vec![zero; self.col_fft.get_inplace_scratch_len()],
            row: vec![zero; n / 2 + 1],
            row_scratch: self.row_c2r.make_scratch_vec(),
        }
    }

    /// One zero-mean Gaussian field with the power map, row-major N×N.
    pub fn draw(&self, rng: &mut impl Rng) -> Vec<T> {
        let mut out = vec![T::zero(); self.n * self.n];
        self.draw_into(rng, &mut self.buffers(), &mut out);
        out
    }

    /// Draws into `out` (N×N, row-major) using `buffers` as work space.
    ///
    /// Equivalent in distribution to IDFT(DFT(w)·√P) for white noise w ~ N(0, 1), but
    /// draws DFT(w) directly on the half plane: E|W|² = N², Hermitian symmetry on the
    /// self-conjugate columns j = 0 and j = N/2, real values at the four
    /// self-conjugate modes. One inverse real FFT per field.
    pub fn draw_into(&self, rng: &mut impl Rng, buffers: &mut DrawBuffers<T>, out: &mut [T]) {
        let n = self.n;
        let half = n / 2 + 1;
        let nf = T::from_usize(n).expect("size");
        let amp = nf * T::from_f64(std::f64::consts::FRAC_1_SQRT_2).expect("constant");
        let DrawBuffers {
            cols,
            col_scratch,
            row,
            row_scratch,
        } = buffers;
        for j in 0..half {
            let sp = &self.sqrt_power_cols[j * n..(j + 1) * n];
            let col = &mut cols[j * n..(j + 1) * n];
            if j == 0 || j == n / 2 {
                for i in 0..=n / 2 {
                    if i == 0 || i == n / 2 {
                        let a: T = rng.sample(StandardNormal);
                        col[i] = Complex::new(nf * a * sp[i], T::zero());
                    } else {
                        let a: T = rng.sample(StandardNormal);
                        let b: T = rng.sample(StandardNormal);
                        let v = Complex::new(amp * a * sp[i], amp * b * sp[i]);
                        col[i] = v;
                        col[n - i] = v.conj();
                    }
                }
            } else {
                for (c, &p) in col.iter_mut().zip(sp) {
                    let a: T = rng.sample(StandardNormal);
                    let b: T = rng.sample(StandardNormal);
                    *c = Complex::new(amp * a * p, amp * b * p);
                }
            }
        }
        for col in cols.chunks_mut(n) {
            self.col_fft.process_with_scratch(col, col_scratch);
        }
        let norm = T::one() / (nf * nf);
        for i in 0..n {
            for j in 0..half {
                row[j] = cols[j * n + i];
            }
            // Exactly real by symmetry; drop round-off so the c2r transform accepts it.
            row[0].im = T::zero();
            row[half - 1].im = T::zero();
            let dst = &mut out[i * n..(i + 1) * n];
            self.row_c2r
                .process_with_scratch(row, dst, row_scratch)
                .expect("buffer sizes match the plan");
            for v in dst.iter_mut() {
                *v = *v * norm;
            }
        }
    }
}

/// e^x in f32 to about 1 ulp, branch-free so that loops over maps vectorise
/// (glibc's scalar `expf`/`expm1f` dominated map generation). Range reduction
/// x = n·ln2 + r with |r| ≤ ln2/2, a degree-7 Taylor polynomial for e^r, and the
/// exponent n put in the float's bits. Inputs are clamped to [−87, 88].
#[inline]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // t's low mantissa bits hold n: 2^n = bits((bits(t) − bits(ROUND) + 127) << 23),
    // all in integer lanes (an `as i32` cast would saturate and not vectorise).
    f32::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23) * p
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_f32_is_accurate() {
        let mut worst = 0.0f64;
        for i in -80_000..80_000 {
            let x = i as f32 * 1e-3;
            let want = (x as f64).exp();
            let got = super::exp_f32(x) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(
            worst < 3.0 * f32::EPSILON as f64,
            "worst relative error {worst:e}"
        );
    }

    use super::*;
    use rand::SeedableRng;

    #[test]
    fn field_variance_is_the_mean_power() {
        // A smooth power map: variance ΣP/N², in f32 and f64 draws alike.
        let n = 32;
        let k = mode_wavenumbers(n, n as f64);
        let power: Vec<f64> = k
            .iter()
            .map(|&k| if k == 0.0 { 0.0 } else { (-k * k).exp() * 50.0 })
            .collect();
        let want = power.iter().sum::<f64>() / (n * n) as f64;
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(1);
        let d64 = FieldDrawer::<f64>::new(&power, n);
        let d32 = FieldDrawer::<f32>::new(&power, n);
        let draws = 400;
        let (mut v64, mut v32) = (0.0, 0.0);
        for _ in 0..draws {
            v64 += d64.draw(&mut rng).iter().map(|x| x * x).sum::<f64>() / (n * n * draws) as f64;
            v32 += d32
                .draw(&mut rng)
                .iter()
                .map(|&x| (x as f64).powi(2))
                .sum::<f64>()
                / (n * n * draws) as f64;
        }
        // ~400 independent large-scale modes per draw: 2% is several standard errors.
        assert!((v64 / want - 1.0).abs() < 0.02, "{v64} vs {want}");
        assert!((v32 / want - 1.0).abs() < 0.02, "{v32} vs {want}");
    }
}
