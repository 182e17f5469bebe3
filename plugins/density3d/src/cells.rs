//! One-point and peak statistics of a periodic N³ field, optionally smoothed
//! with a Gaussian of radius R (δ_k · exp(−k²R²/2)):
//!
//! - `density-pdf`: the histogram density of the cell values over threshold
//!   bins, as `numpy.histogram(values, edges, density=True)` computes it
//!   (bins [e_i, e_{i+1}), the last one closed; normalised by the cells inside
//!   the edges);
//! - `peaks-3d`: the cells above all 26 periodic neighbours, counted by height
//!   per unit threshold (counts / bin width, as the 2D `peaks`).

use simemu_core::bins::{midpoints, BinFinder};
use simemu_core::{ArrayView, FieldView, Result, Sample, StatContext, StatValues, Statistic};

use crate::fft3::RealFft3;
use crate::levels::{filter_half, Levels};

/// A cell value the statistics read in its stored precision (comparisons
/// are exact in either; bins are found in f64).
pub trait Cell: Copy + PartialOrd + Into<f64> + Send + Sync {
    /// The larger of two finite values (fields are checked finite first).
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        if self > other {
            self
        } else {
            other
        }
    }
}

impl Cell for f32 {}
impl Cell for f64 {}

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
    bins: BinFinder,
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
            bins: BinFinder::new(&levels.thresholds),
            thresholds: levels.thresholds,
            smoothing_mpc_h: levels.smoothing_mpc_h,
            smoothing,
        })
    }

    /// The statistic of a checked field: read in place, or smoothed first.
    fn measure_view(&self, values: ArrayView<'_>) -> Vec<f64> {
        match (&self.smoothing, values) {
            (None, ArrayView::F32(v)) => self.measure(v),
            (None, ArrayView::F64(v)) => self.measure(v),
            (Some((fft, kernel)), values) => {
                let mut half = fft.forward_view(values);
                filter_half(fft, &mut half, kernel, false);
                self.measure(&fft.inverse(half))
            }
        }
    }

    /// The bin of `v` by numpy.histogram's rule, if inside the edges.
    fn bin(&self, v: f64) -> Option<usize> {
        let last = self.thresholds.len() - 1;
        match self.bins.find(v) {
            None if v == self.thresholds[last] => Some(last - 1),
            found => found,
        }
    }

    /// The statistic of the (smoothed, if asked) cells.
    pub fn measure<T: Cell>(&self, cells: &[T]) -> Vec<f64> {
        let bins = self.thresholds.len() - 1;
        let mut counts = vec![0u64; bins];
        match self.kind {
            Kind::Pdf => {
                // Four interleaved counts per slot: neighbouring cells often
                // share a bin, and one count would make each increment wait
                // for the last.
                let mut lanes = vec![[0u64; 4]; bins + 2];
                let last = self.thresholds[bins];
                let mut at_last = 0u64;
                for (c, &v) in cells.iter().enumerate() {
                    let v: f64 = v.into();
                    lanes[self.bins.slot(v)][c % 4] += 1;
                    at_last += u64::from(v == last);
                }
                for (b, count) in counts.iter_mut().enumerate() {
                    *count = lanes[b + 1].iter().sum();
                }
                counts[bins - 1] += at_last;
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
///
/// The 8 neighbouring rows of a cell (along the last axis) take part through
/// their 3-wide maxima around its column, so each row's maxima are computed
/// once (for the three planes in use at a time) and a cell is tested with ten
/// branch-free comparisons: its two neighbours in its own row, and those
/// eight maxima.
fn for_each_peak<T: Cell>(cells: &[T], n: usize, mut f: impl FnMut(f64)) {
    let wrap = |i: usize, d: isize| ((i as isize + d).rem_euclid(n as isize)) as usize;
    let row = |i: usize, j: usize| &cells[(i * n + j) * n..(i * n + j + 1) * n];
    let window_maxima = |i: usize| -> Vec<T> {
        let mut out = vec![cells[0]; n * n];
        for (j, maxima) in out.chunks_mut(n).enumerate() {
            let r = row(i, j);
            for (m, w) in maxima[1..n - 1].iter_mut().zip(r.windows(3)) {
                *m = w[0].max(w[1]).max(w[2]);
            }
            maxima[0] = r[n - 1].max(r[0]).max(r[1]);
            maxima[n - 1] = r[n - 2].max(r[n - 1]).max(r[0]);
        }
        out
    };
    // Maxima of planes i − 1, i, i + 1.
    let mut planes = [window_maxima(n - 1), window_maxima(0), window_maxima(1 % n)];
    let mut is_peak = vec![false; n];
    for i in 0..n {
        if i > 0 {
            planes.rotate_left(1);
            planes[2] = window_maxima((i + 1) % n);
        }
        for j in 0..n {
            let centre = row(i, j);
            let others: Vec<&[T]> = [-1isize, 0, 1]
                .iter()
                .flat_map(|&di| [-1isize, 0, 1].map(move |dj| (di, dj)))
                .filter(|&d| d != (0, 0))
                .map(|(di, dj)| {
                    let m = &planes[(di + 1) as usize];
                    let jj = wrap(j, dj);
                    &m[jj * n..(jj + 1) * n]
                })
                .collect();
            for k in [0, n - 1] {
                let v = centre[k];
                let mut above = (v > centre[wrap(k, -1)]) & (v > centre[wrap(k, 1)]);
                for o in &others {
                    above &= v > o[k];
                }
                is_peak[k] = above;
            }
            for (k, (p, w)) in is_peak[1..n - 1]
                .iter_mut()
                .zip(centre.windows(3))
                .enumerate()
            {
                let mut above = (w[1] > w[0]) & (w[1] > w[2]);
                for o in &others {
                    above &= w[1] > o[k + 1];
                }
                *p = above;
            }
            for (k, &p) in is_peak.iter().enumerate() {
                if p {
                    f(centre[k].into());
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
        Ok(vec![
            self.measure_view(crate::field::checked_cube(&field, self.n)?)
        ])
    }
}
