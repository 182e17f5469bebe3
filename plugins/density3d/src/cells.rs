//! One-point and peak statistics of a periodic N³ field, optionally smoothed
//! with a Gaussian of radius R (δ_k · exp(−k²R²/2)):
//!
//! - `density-pdf`: the histogram density of the cell values over threshold
//!   bins, as `numpy.histogram(values, edges, density=True)` computes it
//!   (bins [e_i, e_{i+1}), the last one closed; normalised by the cells inside
//!   the edges);
//! - `peaks-3d`: the cells above all 26 periodic neighbours, counted by height
//!   per unit threshold (counts / bin width, as the 2D `peaks`).

use rustfft::num_complex::Complex64;
use serde::Deserialize;
use simemu_core::bins::{midpoints, BinSpec};
use simemu_core::{Error, FieldView, Result, Sample, StatContext, StatValues, Statistic};

use crate::fft3::{fft3, mode_index_norms};

/// Default bins: 30 between the 0.1% and 99.9% quantiles of the reference cells.
pub const DEFAULT_THRESHOLDS: &str = "quantile:0.001:0.999:30";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Pdf,
    Peaks,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Pdf => "density-pdf",
            Kind::Peaks => "peaks-3d",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    thresholds: Option<serde_json::Value>,
    /// Gaussian smoothing radius in Mpc/h (none by default).
    #[serde(default)]
    smoothing_mpc_h: Option<f64>,
    #[serde(default)]
    box_mpc_h: Option<f64>,
}

pub struct CellStat {
    kind: Kind,
    field: String,
    n: usize,
    thresholds: Vec<f64>,
    x: Vec<f64>,
    smoothing_mpc_h: Option<f64>,
    /// exp(−k²R²/2) per mode, when smoothing.
    kernel: Option<Vec<f64>>,
}

impl CellStat {
    pub fn build(kind: Kind, options: &serde_json::Value, ctx: &StatContext) -> Result<Self> {
        let name = kind.name();
        let o: Options = simemu_core::params::options_from_json(name, options)?;
        let n = crate::field::cube_side(name, ctx, 3)?;
        let spec = BinSpec::from_option(name, &o.thresholds, DEFAULT_THRESHOLDS)?;
        let kernel = match o.smoothing_mpc_h {
            None => None,
            Some(r) if !(r.is_finite() && r > 0.0) => {
                return Err(Error::Option(format!(
                    "{name}: smoothing_mpc_h = {r} must be positive"
                )))
            }
            Some(r) => {
                if spec.needs_quantiles() {
                    return Err(Error::Option(format!(
                        "{name}: quantile thresholds are of the unsmoothed reference cells; give explicit thresholds (a,b,c or lin:A:B:N) with smoothing_mpc_h"
                    )));
                }
                let side = crate::field::box_side(name, o.box_mpc_h, ctx)?;
                let kf = 2.0 * std::f64::consts::PI / side;
                Some(
                    mode_index_norms(n)
                        .into_iter()
                        .map(|m| (-0.5 * (m * kf * r).powi(2)).exp())
                        .collect(),
                )
            }
        };
        let thresholds = spec.resolve(ctx.quantiles)?;
        Ok(CellStat {
            kind,
            field: ctx.field.name.clone(),
            n,
            x: midpoints(&thresholds),
            thresholds,
            smoothing_mpc_h: o.smoothing_mpc_h,
            kernel,
        })
    }

    fn cells(&self, field: &FieldView<'_>) -> Result<Vec<f64>> {
        let n = self.n;
        let values = crate::field::cube_values(field, n)?;
        Ok(match &self.kernel {
            None => values,
            Some(kernel) => {
                let mut f: Vec<Complex64> =
                    values.iter().map(|&v| Complex64::new(v, 0.0)).collect();
                fft3(&mut f, n, false);
                for (v, w) in f.iter_mut().zip(kernel) {
                    *v *= *w;
                }
                fft3(&mut f, n, true);
                let scale = 1.0 / (n * n * n) as f64;
                f.iter().map(|v| v.re * scale).collect()
            }
        })
    }

    /// The bin of `v` by numpy.histogram's rule, if inside the edges.
    fn bin(&self, v: f64) -> Option<usize> {
        let e = &self.thresholds;
        let last = e.len() - 1;
        if v < e[0] || v > e[last] {
            return None;
        }
        if v == e[last] {
            return Some(last - 1);
        }
        Some(e.partition_point(|&t| t <= v) - 1)
    }

    pub fn measure(&self, cells: &[f64]) -> Vec<f64> {
        let bins = self.thresholds.len() - 1;
        let mut counts = vec![0u64; bins];
        match self.kind {
            Kind::Pdf => {
                for &v in cells {
                    if let Some(b) = self.bin(v) {
                        counts[b] += 1;
                    }
                }
                let total: u64 = counts.iter().sum();
                (0..bins)
                    .map(|b| {
                        if total == 0 {
                            0.0
                        } else {
                            counts[b] as f64
                                / total as f64
                                / (self.thresholds[b + 1] - self.thresholds[b])
                        }
                    })
                    .collect()
            }
            Kind::Peaks => {
                for_each_peak(cells, self.n, |v| {
                    if let Some(b) = self.bin(v) {
                        counts[b] += 1;
                    }
                });
                (0..bins)
                    .map(|b| counts[b] as f64 / (self.thresholds[b + 1] - self.thresholds[b]))
                    .collect()
            }
        }
    }
}

/// Calls `f` with the value of every cell above all 26 of its periodic
/// neighbours.
fn for_each_peak(cells: &[f64], n: usize, mut f: impl FnMut(f64)) {
    let at = |i: usize, j: usize, k: usize| cells[(i * n + j) * n + k];
    let wrap = |i: usize, d: isize| ((i as isize + d).rem_euclid(n as isize)) as usize;
    for i in 0..n {
        for j in 0..n {
            for k in 0..n {
                let v = at(i, j, k);
                let mut peak = true;
                'around: for di in -1..=1isize {
                    for dj in -1..=1isize {
                        for dk in -1..=1isize {
                            if (di, dj, dk) != (0, 0, 0)
                                && at(wrap(i, di), wrap(j, dj), wrap(k, dk)) >= v
                            {
                                peak = false;
                                break 'around;
                            }
                        }
                    }
                }
                if peak {
                    f(v);
                }
            }
        }
    }
}

impl Statistic for CellStat {
    fn name(&self) -> &str {
        self.kind.name()
    }
    fn x_name(&self) -> &str {
        "threshold"
    }
    fn x(&self) -> &[f64] {
        &self.x
    }
    fn components(&self) -> Vec<String> {
        match self.kind {
            Kind::Pdf => vec!["pdf".into()],
            Kind::Peaks => vec!["peaks".into()],
        }
    }
    fn options(&self) -> serde_json::Value {
        serde_json::json!({ "thresholds": self.thresholds, "smoothing_mpc_h": self.smoothing_mpc_h })
    }
    fn compute(&self, sample: &Sample) -> Result<StatValues> {
        self.compute_view(crate::field::field_of(sample, &self.field)?.view())
    }
    fn compute_view(&self, field: FieldView<'_>) -> Result<StatValues> {
        Ok(vec![self.measure(&self.cells(&field)?)])
    }
}
