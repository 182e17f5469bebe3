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
//!   each δ_k is first divided by the scheme's window Π_i sinc(π k_i/N)^p.

use rustfft::num_complex::Complex64;
use serde::Deserialize;
use simemu_core::{FieldView, Result, Sample, StatContext, StatValues, Statistic};

use crate::fft3::{fft3, frequency};

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
}

/// The estimator for one grid size and box.
pub struct PowerSpectrum3d {
    field: String,
    n: usize,
    box_mpc_h: f64,
    mas: Mas,
    /// Bin (0-based, k index − 1) of each mode counted, per flat index; None:
    /// not counted.
    bin_of: Vec<Option<u32>>,
    /// 1 / window² per mode (1 without a scheme).
    correction: Vec<f64>,
    modes: Vec<f64>,
    k: Vec<f64>,
}

impl PowerSpectrum3d {
    pub fn new(field: &str, n: usize, box_mpc_h: f64, mas: Mas) -> Self {
        let middle = n / 2;
        let k_max = ((3.0 * (middle * middle) as f64).sqrt()) as usize;
        let mut bin_of = vec![None; n * n * n];
        let mut correction = vec![1.0; n * n * n];
        let mut k_sum = vec![0.0; k_max + 1];
        let mut modes = vec![0.0; k_max + 1];
        let window = |f: i64| {
            let x = std::f64::consts::PI * f as f64 / n as f64;
            if x == 0.0 {
                1.0
            } else {
                (x.sin() / x).powi(mas.order())
            }
        };
        let even = n.is_multiple_of(2);
        for i in 0..n {
            let kx = frequency(i, n);
            for j in 0..n {
                let ky = frequency(j, n);
                for l in 0..=middle {
                    let kz = frequency(l, n);
                    // Of each ±k pair on the planes k_z = 0 and k_z = N/2, the
                    // one with k_x > 0, or k_x ∈ {0, N/2} and k_y ≥ 0.
                    let edge = |f: i64| f == 0 || (f == middle as i64 && even);
                    if edge(kz) && (kx < 0 || (edge(kx) && ky < 0)) {
                        continue;
                    }
                    let norm = ((kx * kx + ky * ky + kz * kz) as f64).sqrt();
                    let index = norm as usize;
                    let flat = (i * n + j) * n + l;
                    let w = window(kx) * window(ky) * window(kz);
                    correction[flat] = 1.0 / (w * w);
                    k_sum[index] += norm;
                    modes[index] += 1.0;
                    bin_of[flat] = (index > 0).then(|| (index - 1) as u32);
                }
            }
        }
        let kf = 2.0 * std::f64::consts::PI / box_mpc_h;
        let k = k_sum[1..]
            .iter()
            .zip(&modes[1..])
            .map(|(s, m)| s / m * kf)
            .collect();
        PowerSpectrum3d {
            field: field.into(),
            n,
            box_mpc_h,
            mas,
            bin_of,
            correction,
            modes: modes[1..].to_vec(),
            k,
        }
    }

    /// P(k) of one N³ field, C order.
    pub fn measure(&self, values: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut field: Vec<Complex64> = values.iter().map(|&v| Complex64::new(v, 0.0)).collect();
        fft3(&mut field, n, false);
        let scale = (self.box_mpc_h / (n * n) as f64).powi(3);
        let power: Vec<f64> = field
            .iter()
            .zip(&self.correction)
            .map(|(v, c)| v.norm_sqr() * c * scale)
            .collect();
        self.bin_average(&power)
    }

    /// The mean over each bin's modes of a value per mode (flat N³ order): of
    /// |δ_k|² V/N⁶ it is the estimate, of the true P(k) on the grid its
    /// expectation.
    pub fn bin_average(&self, per_mode: &[f64]) -> Vec<f64> {
        let mut sums = vec![0.0; self.k.len()];
        for (v, bin) in per_mode.iter().zip(&self.bin_of) {
            if let Some(b) = bin {
                sums[*b as usize] += v;
            }
        }
        sums.iter().zip(&self.modes).map(|(s, m)| s / m).collect()
    }

    /// Independent modes per bin.
    pub fn mode_counts(&self) -> &[f64] {
        &self.modes
    }

    pub fn build(options: &serde_json::Value, ctx: &StatContext) -> Result<Self> {
        let o: Options = simemu_core::params::options_from_json(NAME, options)?;
        let n = crate::field::cube_side(NAME, ctx, 4)?;
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
        Ok(PowerSpectrum3d::new(&ctx.field.name, n, box_mpc_h, mas))
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
        &self.k
    }
    fn components(&self) -> Vec<String> {
        vec!["power".into()]
    }
    fn options(&self) -> serde_json::Value {
        serde_json::json!({ "box_mpc_h": self.box_mpc_h, "mas": self.mas })
    }
    fn compute(&self, sample: &Sample) -> Result<StatValues> {
        self.compute_view(crate::field::field_of(sample, &self.field)?.view())
    }
    fn compute_view(&self, field: FieldView<'_>) -> Result<StatValues> {
        Ok(vec![
            self.measure(&crate::field::cube_values(&field, self.n)?)
        ])
    }
}
