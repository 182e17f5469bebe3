//! One-point and peak statistics of a periodic N³ field, optionally smoothed
//! with a Gaussian of radius R (δ_k · exp(−k²R²/2)):
//!
//! - `density-pdf`: the histogram density of the cell values over threshold
//!   bins, as `numpy.histogram(values, edges, density=True)` computes it
//!   (bins [e_i, e_{i+1}), the last one closed; normalised by the cells inside
//!   the edges);
//! - `peaks-3d`: the cells above all 26 periodic neighbours, counted by height
//!   per unit threshold (counts / bin width, as the 2D `peaks`).

use simemu_core::bins::midpoints;
use simemu_core::{FieldView, Result, Sample, StatContext, StatValues, Statistic};

use crate::fft3::RealFft3;
use crate::levels::{filter_half, Levels};

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

pub struct CellStat {
    kind: Kind,
    field: String,
    n: usize,
    thresholds: Vec<f64>,
    x: Vec<f64>,
    smoothing_mpc_h: Option<f64>,
    /// The transform and exp(−k²R²/2)/N³ by |k|², when smoothing.
    smoothing: Option<(RealFft3, Vec<f64>)>,
}

impl CellStat {
    pub fn build(kind: Kind, options: &serde_json::Value, ctx: &StatContext) -> Result<Self> {
        let levels = Levels::build(kind.name(), options, ctx, false)?;
        let n = levels.n;
        if levels.smoothing_mpc_h.is_some() && !n.is_multiple_of(2) {
            return Err(simemu_core::Error::Option(format!(
                "{}: smoothing needs an even number of cells per side; field '{}' has {n}",
                kind.name(),
                ctx.field.name
            )));
        }
        let smoothing = levels.smoothing_mpc_h.map(|_| {
            (
                RealFft3::new(n),
                levels.kernel_by_norm2(1.0 / (n * n * n) as f64),
            )
        });
        Ok(CellStat {
            kind,
            field: ctx.field.name.clone(),
            n,
            x: midpoints(&levels.thresholds),
            thresholds: levels.thresholds,
            smoothing_mpc_h: levels.smoothing_mpc_h,
            smoothing,
        })
    }

    fn cells(&self, field: &FieldView<'_>) -> Result<Vec<f64>> {
        let values = crate::field::cube_values(field, self.n)?;
        Ok(match &self.smoothing {
            None => values,
            Some((fft, kernel)) => {
                let mut half = fft.forward(&values);
                filter_half(fft, &mut half, kernel, false);
                fft.inverse(half)
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
