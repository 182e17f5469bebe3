//! Azimuthally averaged power spectrum of a square map (lenstools `powerSpectrum`):
//! unnormalised rfft2, every rfft half-plane mode counted once, right-closed bins
//! `(l_k, l_{k+1}]`, P = (θ_rad/N²)² · mean |F|², empty bins 0.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};

/// Rows transformed before their outputs are transposed into the column buffer:
/// writing a block of rows makes runs of contiguous stores in each column instead of
/// single stores N·16 bytes apart (a stride that defeats the cache's associativity).
const ROW_BLOCK: usize = 8;

/// FFT work space, one per thread and map size, so estimates allocate nothing.
struct Buffers {
    cols: Vec<Complex64>,
    row_in: Vec<f64>,
    row_out: Vec<Complex64>,
    scratch: Vec<Complex64>,
    cscratch: Vec<Complex64>,
}

impl Buffers {
    fn new(t: &Rfft2) -> Self {
        let n = t.n;
        let zero = Complex64::new(0.0, 0.0);
        Buffers {
            cols: vec![zero; (n / 2 + 1) * n],
            row_in: vec![0.0; n],
            row_out: vec![zero; ROW_BLOCK * (n / 2 + 1)],
            scratch: t.row_r2c.make_scratch_vec(),
            cscratch: vec![zero; t.col_fft.get_inplace_scratch_len()],
        }
    }
}

thread_local! {
    static BUFFERS: std::cell::RefCell<std::collections::HashMap<usize, Buffers>> = Default::default();
}

/// numpy's unnormalised `rfft2` of a square N×N map, in per-thread work space:
/// the N/2 + 1 columns of N modes each, column-major (mode (i, j) — row
/// frequency i, column frequency j — at j·N + i).
pub struct Rfft2 {
    n: usize,
    row_r2c: Arc<dyn RealToComplex<f64>>,
    col_fft: Arc<dyn Fft<f64>>,
}

impl Rfft2 {
    pub fn new(n: usize) -> Self {
        Rfft2 {
            n,
            row_r2c: RealFftPlanner::<f64>::new().plan_fft_forward(n),
            col_fft: FftPlanner::<f64>::new().plan_fft_forward(n),
        }
    }

    /// Transforms a row-major N×N map of f32 or f64 values, read row by row
    /// straight into the transform's input (no f64 copy of the map), and hands
    /// the column-major spectrum to `with`; also says whether every pixel was
    /// finite. Finiteness is checked while the rows are read, not in a pass of
    /// its own: on maps that are not yet in cache that pass costs a sixth of a
    /// power-spectrum estimate.
    pub fn forward<T: Copy + Into<f64>, R>(
        &self,
        map: &[T],
        with: impl FnOnce(&[Complex64]) -> R,
    ) -> (R, bool) {
        BUFFERS.with(|b| {
            let mut all = b.borrow_mut();
            let buf = all.entry(self.n).or_insert_with(|| Buffers::new(self));
            let finite = self.transform(map, buf);
            (with(&buf.cols), finite)
        })
    }

    fn transform<T: Copy + Into<f64>>(&self, map: &[T], buf: &mut Buffers) -> bool {
        let n = self.n;
        let half = n / 2 + 1;
        let Buffers {
            cols,
            row_in,
            row_out,
            scratch,
            cscratch,
        } = buf;
        // Rows: real-to-complex along axis 1, written column-major for the column pass.
        let mut any_non_finite = false;
        for i0 in (0..n).step_by(ROW_BLOCK) {
            let rows = ROW_BLOCK.min(n - i0);
            for b in 0..rows {
                let i = i0 + b;
                for (d, &x) in row_in.iter_mut().zip(&map[i * n..(i + 1) * n]) {
                    *d = x.into();
                    any_non_finite |= !d.is_finite();
                }
                self.row_r2c
                    .process_with_scratch(row_in, &mut row_out[b * half..(b + 1) * half], scratch)
                    .expect("buffer sizes match the plan");
            }
            for j in 0..half {
                let column = &mut cols[j * n + i0..j * n + i0 + rows];
                for (b, z) in column.iter_mut().enumerate() {
                    *z = row_out[b * half + j];
                }
            }
        }
        // All columns in one call (rustfft batches them).
        self.col_fft.process_with_scratch(cols, cscratch);
        !any_non_finite
    }
}

/// A power-spectrum estimator for one map size, angle and set of ℓ edges, with the
/// bin of every mode and the FFT plans precomputed.
pub struct PowerSpectrum {
    /// Bin of each rfft mode, column-major (mode (i, j) at j·N + i) like the
    /// transform's output, or `u32::MAX` outside all bins (counted in a spare
    /// slot past the last).
    bin_of_mode: Vec<u32>,
    modes_per_bin: Vec<usize>,
    norm: f64,
    rfft2: Rfft2,
}

/// |ℓ| of rfft mode (i, j), computed as lenstools' azimuth.c does.
pub fn mode_ell(n: usize, angle_deg: f64, i: usize, j: usize) -> f64 {
    let lpix = 360.0 / angle_deg;
    let lx = (i.min(n - i)) as f64 * lpix;
    let ly = j as f64 * lpix;
    (lx * lx + ly * ly).sqrt()
}

impl PowerSpectrum {
    pub fn new(n: usize, angle_deg: f64, edges: &[f64]) -> Self {
        let half = n / 2 + 1;
        let nb = edges.len() - 1;
        let mut bin_of_mode = vec![u32::MAX; n * half];
        let mut modes_per_bin = vec![0; nb];
        for i in 0..n {
            for j in 0..half {
                let ell = mode_ell(n, angle_deg, i, j);
                // Right-closed: bin k iff e_k < ℓ <= e_{k+1}.
                let k = edges.partition_point(|&e| e < ell);
                if k >= 1 && k <= nb {
                    bin_of_mode[j * n + i] = (k - 1) as u32;
                    modes_per_bin[k - 1] += 1;
                }
            }
        }
        let angle_rad = angle_deg * std::f64::consts::PI / 180.0;
        let norm = (angle_rad / (n * n) as f64).powi(2);
        PowerSpectrum {
            bin_of_mode,
            modes_per_bin,
            norm,
            rfft2: Rfft2::new(n),
        }
    }

    /// Number of rfft modes in each bin.
    pub fn modes_per_bin(&self) -> &[usize] {
        &self.modes_per_bin
    }

    /// The binned power spectrum of `map` (row-major N×N), or the index of its first
    /// NaN or infinite pixel.
    pub fn compute(&self, map: &[f64]) -> Result<Vec<f64>, usize> {
        self.compute_rows(map)
    }

    /// The binned power spectrum of a row-major N×N map of f32 or f64 values
    /// (read in place, see [`Rfft2::forward`]), or the index of its first NaN
    /// or infinite pixel.
    pub fn compute_rows<T: Copy + Into<f64>>(&self, map: &[T]) -> Result<Vec<f64>, usize> {
        let (power, all_finite) = self.rfft2.forward(map, |cols| self.bin(cols));
        if all_finite {
            Ok(power)
        } else {
            Err(map
                .iter()
                .position(|&x| !x.into().is_finite())
                .expect("a non-finite pixel was seen"))
        }
    }

    /// The binned power of a column-major spectrum. One pass over the modes in
    /// the same order as the bin table. Neighbouring modes share a bin, so four
    /// interleaved sums per bin keep each addition from waiting for the
    /// previous one; modes outside every bin go to a spare slot instead of a
    /// branch.
    fn bin(&self, cols: &[Complex64]) -> Vec<f64> {
        let nb = self.modes_per_bin.len();
        let mut sums = vec![[0.0f64; 4]; nb + 1];
        let mut quads = cols.chunks_exact(4).zip(self.bin_of_mode.chunks_exact(4));
        for (z, b) in &mut quads {
            for lane in 0..4 {
                let slot = (b[lane] as usize).min(nb);
                sums[slot][lane] += z[lane].re * z[lane].re + z[lane].im * z[lane].im;
            }
        }
        let tail = cols.len() - cols.len() % 4;
        for (z, &b) in cols[tail..].iter().zip(&self.bin_of_mode[tail..]) {
            sums[(b as usize).min(nb)][0] += z.re * z.re + z.im * z.im;
        }
        sums[..nb]
            .iter()
            .zip(&self.modes_per_bin)
            .map(|(s, &h)| {
                if h == 0 {
                    0.0
                } else {
                    self.norm * ((s[0] + s[1]) + (s[2] + s[3])) / h as f64
                }
            })
            .collect()
    }
}
