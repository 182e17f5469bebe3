//! `power-spectrum-3d`: the spherically averaged power spectrum of a periodic
//! N³ field, by the conventions of Pylians' `Pk_library.Pk` (its monopole):
//!
//! - modes are binned by ⌊|k|/k_F⌋ (k_F = 2π/L, the fundamental mode), one bin
//!   per integer from 1 to ⌊√3 N/2⌋; the k = 0 bin is dropped;
//! - each independent mode counts once (of a ±k pair, the one in the half-space
//!   Pylians keeps: k_z > 0, or k_z ∈ {0, N/2} with k_x > 0, or k_x ∈ {0, N/2}
//!   with k_y ≥ 0);
//! - a bin's k is the mean |k| of its modes, its P the mean |δ_k|² times
//!   (L/N²)³ = V/N⁶;
//! - with a mass-assignment scheme (`mas = ngp|cic|tsc|pcs`, order p = 1–4),
//!   each δ_k is first divided by the scheme's window Π_i sinc(π k_i/N)^p;
//! - `k_min`, `k_max` keep the bins whose mean k lies between them (a k the
//!   box cannot hold is refused, not dropped).
//!
//! The transform is real-to-complex on the half spectrum ([`RealFft3`]), in
//! float32 as Pylians' (FFTW's single precision; the mode powers and their
//! sums in float64), and
//! the binning reads each mode's bin and window from tables of |k|² and of one
//! axis, so a box costs one half-size transform and one pass over its modes.

use serde::Deserialize;
use simemu_core::{ArrayView, FieldView, Result, Sample, StatContext, StatValues, Statistic};

use crate::fft3::{frequency, RealFft3};

pub const NAME: &str = "power-spectrum-3d";

/// A mass-assignment scheme whose window the estimator removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mas {
    None,
    Ngp,
    Cic,
    Tsc,
    Pcs,
}

impl Mas {
    /// The power of sinc in the window.
    fn order(self) -> i32 {
        match self {
            Mas::None => 0,
            Mas::Ngp => 1,
            Mas::Cic => 2,
            Mas::Tsc => 3,
            Mas::Pcs => 4,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    box_mpc_h: Option<f64>,
    #[serde(default)]
    mas: Option<Mas>,
    #[serde(default)]
    k_min: Option<f64>,
    #[serde(default)]
    k_max: Option<f64>,
}

/// The estimator for one grid size and box.
pub struct PowerSpectrum3d {
    field: String,
    n: usize,
    box_mpc_h: f64,
    mas: Mas,
    /// In f32, as Pylians transforms (FFTW's single precision): half the
    /// memory traffic of f64, the agreement with Pylians unchanged.
    fft: RealFft3<f32>,
    /// Bin (0-based, k index − 1) of a mode by its |k|² in units of k_F²;
    /// `NOT_COUNTED` for k = 0.
    bin_of_norm2: Vec<u32>,
    /// 1 / window² per frequency index of one axis (1 without a scheme).
    correction: Vec<f64>,
    modes: Vec<f64>,
    k: Vec<f64>,
    /// The bins reported (all, or those of the k range asked for).
    kept: std::ops::Range<usize>,
}

const NOT_COUNTED: u32 = u32::MAX;

impl PowerSpectrum3d {
    pub fn new(field: &str, n: usize, box_mpc_h: f64, mas: Mas) -> Self {
        let middle = n / 2;
        let k_max = ((3.0 * (middle * middle) as f64).sqrt()) as usize;
        let bin_of_norm2: Vec<u32> = (0..=3 * middle * middle)
            .map(|m2| match (m2 as f64).sqrt() as usize {
                0 => NOT_COUNTED,
                index => (index - 1) as u32,
            })
            .collect();
        let correction: Vec<f64> = (0..n)
            .map(|i| {
                let x = std::f64::consts::PI * frequency(i, n) as f64 / n as f64;
                if x == 0.0 {
                    1.0
                } else {
                    (x.sin() / x).powi(-2 * mas.order())
                }
            })
            .collect();
        let mut k_sum = vec![0.0; k_max];
        let mut modes = vec![0.0; k_max];
        for_each_counted_mode(n, |_, m2| {
            let bin = bin_of_norm2[m2];
            if bin != NOT_COUNTED {
                k_sum[bin as usize] += (m2 as f64).sqrt();
                modes[bin as usize] += 1.0;
            }
        });
        let kf = 2.0 * std::f64::consts::PI / box_mpc_h;
        let k: Vec<f64> = k_sum.iter().zip(&modes).map(|(s, m)| s / m * kf).collect();
        PowerSpectrum3d {
            field: field.into(),
            n,
            box_mpc_h,
            mas,
            fft: RealFft3::new(n),
            bin_of_norm2,
            correction,
            kept: 0..k.len(),
            modes,
            k,
        }
    }

    /// Reports only the bins whose mean k lies in [k_min, k_max] (h/Mpc).
    /// Refused where the box cannot hold the range: below its fundamental
    /// mode (a larger box is needed), beyond its grid's largest k (finer cells
    /// are needed), or with no bin inside.
    pub fn with_k_range(mut self, k_min: Option<f64>, k_max: Option<f64>) -> Result<Self> {
        let kf = 2.0 * std::f64::consts::PI / self.box_mpc_h;
        let largest = *self.k.last().expect("N ≥ 4 has bins");
        let (lo, hi) = (k_min.unwrap_or(0.0), k_max.unwrap_or(f64::INFINITY));
        let refuse = |why: String| Err(simemu_core::Error::Option(format!("{NAME}: {why}")));
        if !(lo >= 0.0 && hi > lo) || lo.is_infinite() || hi.is_nan() {
            return refuse(format!(
                "k range [{lo}, {hi}] h/Mpc is not an interval of k ≥ 0"
            ));
        }
        if k_min.is_some() && lo < kf {
            return refuse(format!(
                "k_min = {lo} h/Mpc is below the fundamental mode 2π/L = {kf:.4} h/Mpc: a box of {:.0} Mpc/h is too small for it (a side of at least {:.0} Mpc/h is needed)",
                self.box_mpc_h,
                2.0 * std::f64::consts::PI / lo
            ));
        }
        if k_max.is_some() && hi > largest {
            return refuse(format!(
                "k_max = {hi} h/Mpc is beyond the grid's largest k, {largest:.4} h/Mpc ({} cells over {:.0} Mpc/h): finer cells are needed",
                self.n, self.box_mpc_h
            ));
        }
        let first = self.k.partition_point(|&k| k < lo);
        let end = self.k.partition_point(|&k| k <= hi);
        if first >= end {
            return refuse(format!(
                "no k bin of this box (k_F = {kf:.4} h/Mpc) has its mean in [{lo}, {hi}] h/Mpc"
            ));
        }
        self.kept = first..end;
        Ok(self)
    }

    /// P(k) of one N³ field, C order.
    pub fn measure(&self, values: &[f64]) -> Vec<f64> {
        self.measure_view(ArrayView::F64(values))
    }

    /// P(k) of one N³ field stored in f32 or f64, C order.
    pub fn measure_view(&self, values: ArrayView<'_>) -> Vec<f64> {
        let n = self.n;
        let h = self.fft.half();
        let half = self.fft.forward_view(values);
        let scale = (self.box_mpc_h / (n * n) as f64).powi(3);
        // Two sets of sums, for even and odd l: neighbouring modes often share
        // a bin, and one set would make each addition wait for the previous.
        let mut sums = vec![0.0; self.k.len()];
        let mut odd = vec![0.0; self.k.len()];
        let freq: Vec<i64> = (0..n).map(|i| frequency(i, n)).collect();
        let squares: Vec<usize> = freq.iter().map(|f| (f * f) as usize).collect();
        for (i, plane) in half.chunks(n * h).enumerate() {
            for (j, line) in plane.chunks(h).enumerate() {
                let m2xy = squares[i] + squares[j];
                let cxy = self.correction[i] * self.correction[j];
                // The planes k_z = 0 and N/2 keep one mode of each ±k pair.
                for l in [0, h - 1] {
                    if counted_on_edge(freq[i], freq[j], n) {
                        let bin = self.bin_of_norm2[m2xy + l * l];
                        if bin != NOT_COUNTED {
                            sums[bin as usize] += power(line[l]) * cxy * self.correction[l];
                        }
                    }
                }
                for (l, v) in line.iter().enumerate().take(h - 1).skip(1) {
                    let bin = self.bin_of_norm2[m2xy + l * l] as usize;
                    let set = if l % 2 == 0 { &mut sums } else { &mut odd };
                    set[bin] += power(*v) * cxy * self.correction[l];
                }
            }
        }
        sums.iter_mut().zip(&odd).for_each(|(s, o)| *s += o);
        sums[self.kept.clone()]
            .iter()
            .zip(self.mode_counts())
            .map(|(s, m)| s / m * scale)
            .collect()
    }

    /// The mean over each bin's modes of a value per mode (flat N³ order, as
    /// the simulator's `power_grid`): of |δ_k|² V/N⁶ it is the estimate, of
    /// the true P(k) on the grid its expectation.
    pub fn bin_average(&self, per_mode: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut sums = vec![0.0; self.k.len()];
        for_each_counted_mode(n, |[i, j, l], m2| {
            let bin = self.bin_of_norm2[m2];
            if bin != NOT_COUNTED {
                sums[bin as usize] += per_mode[(i * n + j) * n + l];
            }
        });
        sums[self.kept.clone()]
            .iter()
            .zip(self.mode_counts())
            .map(|(s, m)| s / m)
            .collect()
    }

    /// Independent modes per bin.
    pub fn mode_counts(&self) -> &[f64] {
        &self.modes[self.kept.clone()]
    }

    pub fn build(options: &serde_json::Value, ctx: &StatContext) -> Result<Self> {
        let o: Options = simemu_core::params::options_from_json(NAME, options)?;
        let n = crate::field::cube_side(NAME, ctx, 4)?;
        if !n.is_multiple_of(2) {
            return Err(simemu_core::Error::Option(format!(
                "{NAME} needs an even number of cells per side (its Nyquist planes); field '{}' has {n}",
                ctx.field.name
            )));
        }
        let box_mpc_h = crate::field::box_side(NAME, o.box_mpc_h, ctx)?;
        let mas = o
            .mas
            .or_else(|| {
                ctx.field
                    .attrs
                    .get("mas")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
            })
            .unwrap_or(Mas::None);
        PowerSpectrum3d::new(&ctx.field.name, n, box_mpc_h, mas).with_k_range(o.k_min, o.k_max)
    }
}

impl Statistic for PowerSpectrum3d {
    fn name(&self) -> &str {
        NAME
    }
    fn x_name(&self) -> &str {
        "k"
    }
    fn x(&self) -> &[f64] {
        &self.k[self.kept.clone()]
    }
    fn components(&self) -> Vec<String> {
        vec!["power".into()]
    }
    fn options(&self) -> serde_json::Value {
        serde_json::json!({
            "box_mpc_h": self.box_mpc_h,
            "mas": self.mas,
            "k_min": self.k[self.kept.start],
            "k_max": self.k[self.kept.end - 1],
        })
    }
    fn compute(&self, sample: &Sample) -> Result<StatValues> {
        self.compute_view(crate::field::field_of(sample, &self.field)?.view())
    }
    fn compute_view(&self, field: FieldView<'_>) -> Result<StatValues> {
        Ok(vec![
            self.measure_view(crate::field::checked_cube(&field, self.n)?)
        ])
    }
}

/// Whether Pylians counts a mode of the k_z = 0 or N/2 plane: of each ±k pair
/// there, the one with k_x > 0, or k_x ∈ {0, N/2} and k_y ≥ 0.
fn counted_on_edge(kx: i64, ky: i64, n: usize) -> bool {
    let edge = |f: i64| f == 0 || f == (n / 2) as i64;
    !(kx < 0 || (edge(kx) && ky < 0))
}

/// Calls `f([i, j, l], |k|²)` for every independent mode of the half
/// spectrum, in its storage order ((i, j, l) the indices of the mode
/// (f(i), f(j), l), |k|² in units of k_F²).
fn for_each_counted_mode(n: usize, mut f: impl FnMut([usize; 3], usize)) {
    let middle = n / 2;
    for i in 0..n {
        let kx = frequency(i, n);
        for j in 0..n {
            let ky = frequency(j, n);
            for l in 0..=middle {
                if (l == 0 || l == middle) && !counted_on_edge(kx, ky, n) {
                    continue;
                }
                f([i, j, l], (kx * kx + ky * ky) as usize + l * l);
            }
        }
    }
}

/// |δ_k|² of an f32 mode, in f64.
#[inline(always)]
fn power(v: rustfft::num_complex::Complex32) -> f64 {
    let (re, im) = (v.re as f64, v.im as f64);
    re * re + im * im
}
