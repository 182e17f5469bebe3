//! The periodic N³ grid: full 3D complex DFTs (unnormalised, in place, axis by
//! axis in parallel), real-to-complex 3D DFTs on the half spectrum
//! ([`RealFft3`]), and the wavenumber of each mode.

use std::sync::Arc;

use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::{Complex, Complex64};
use rustfft::num_traits::Zero;
use rustfft::{Fft, FftNum, FftPlanner};
use simemu_core::ArrayView;

/// The signed frequency index of DFT bin `i` of `n`: 0, 1, …, n/2, −n/2+1, …, −1.
pub fn frequency(i: usize, n: usize) -> i64 {
    if i <= n / 2 {
        i as i64
    } else {
        i as i64 - n as i64
    }
}

/// In-place 3D DFT of a C-ordered N³ array (forward when `inverse` is false),
/// unnormalised: the inverse of the forward transform is N³ times the input.
pub fn fft3(data: &mut [Complex64], n: usize, inverse: bool) {
    assert_eq!(data.len(), n * n * n, "fft3 needs an N³ array");
    let mut planner = FftPlanner::new();
    let fft = if inverse {
        planner.plan_fft_inverse(n)
    } else {
        planner.plan_fft_forward(n)
    };
    // The last axis is contiguous; the other two are gathered into lines as
    // for the real transform.
    data.par_chunks_mut(n).for_each(|line| fft.process(line));
    data.par_chunks_mut(n * n)
        .for_each(|plane| lines_across_rows(plane.chunks_mut(n).collect(), &*fft));
    across_planes(data, n, &*fft);
}

/// |k| of every mode of the N³ grid of a box of side `side`, in units of the
/// fundamental mode 2π/side (multiply by it for physical units).
pub fn mode_index_norms(n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n * n * n);
    for i in 0..n {
        let fi = frequency(i, n) as f64;
        for j in 0..n {
            let fj = frequency(j, n) as f64;
            for k in 0..n {
                let fk = frequency(k, n) as f64;
                out.push((fi * fi + fj * fj + fk * fk).sqrt());
            }
        }
    }
    out
}

/// Columns gathered at a time when transforming along an axis whose lines
/// are strided: 16 complex values (256 bytes) of each row within a plane
/// (which stays in cache), 64 (1 KiB runs, which the prefetcher follows) of
/// each plane across planes (which come from memory).
const TILE: usize = 16;
const PLANE_TILE: usize = 64;
/// Four complex values (one cache line) between gathered lines.
const LINE_PAD: usize = 4;

/// The 3D DFT of a real N³ field on its half spectrum, as `numpy.fft.rfftn`
/// lays it out: index `(i·N + j)·H + l` with H = N/2 + 1 holds the mode
/// (f(i), f(j), l), f the signed [`frequency`]; the modes with l > N/2 are the
/// complex conjugates of stored ones. Unnormalised both ways, like [`fft3`].
/// Half the memory and about half the work of the complex transform.
pub struct RealFft3<T: FftNum = f64> {
    n: usize,
    r2c: Arc<dyn RealToComplex<T>>,
    c2r: Arc<dyn ComplexToReal<T>>,
    forward: Arc<dyn Fft<T>>,
    inverse: Arc<dyn Fft<T>>,
}

impl<T: FftNum> RealFft3<T> {
    pub fn new(n: usize) -> Self {
        assert!(n >= 2 && n.is_multiple_of(2), "RealFft3 needs an even N");
        let mut real = RealFftPlanner::<T>::new();
        let mut complex = FftPlanner::<T>::new();
        RealFft3 {
            n,
            r2c: real.plan_fft_forward(n),
            c2r: real.plan_fft_inverse(n),
            forward: complex.plan_fft_forward(n),
            inverse: complex.plan_fft_inverse(n),
        }
    }

    /// Cells per side.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Stored modes along the last axis, N/2 + 1.
    pub fn half(&self) -> usize {
        self.n / 2 + 1
    }

    /// The half spectrum of a C-ordered N³ field.
    pub fn forward(&self, real: &[T]) -> Vec<Complex<T>> {
        let n = self.n;
        assert_eq!(real.len(), n * n * n, "RealFft3 needs an N³ field");
        self.forward_rows(|r, row| row.copy_from_slice(&real[r * n..(r + 1) * n]))
    }

    /// The half spectrum of a C-ordered N³ field stored in f32 or f64, read
    /// in place (each row converted to `T` as it is transformed).
    pub fn forward_view(&self, data: ArrayView<'_>) -> Vec<Complex<T>> {
        let n = self.n;
        assert_eq!(data.len(), n * n * n, "RealFft3 needs an N³ field");
        let convert = |x: f64| T::from_f64(x).expect("finite values convert");
        match data {
            ArrayView::F64(v) => self.forward_rows(|r, row| {
                for (out, &x) in row.iter_mut().zip(&v[r * n..(r + 1) * n]) {
                    *out = convert(x);
                }
            }),
            ArrayView::F32(v) => self.forward_rows(|r, row| {
                for (out, &x) in row.iter_mut().zip(&v[r * n..(r + 1) * n]) {
                    *out = convert(x as f64);
                }
            }),
        }
    }

    /// The half spectrum of the field whose row r (of N², each along the last
    /// axis) `fill(r, row)` writes.
    fn forward_rows(&self, fill: impl Fn(usize, &mut [T]) + Sync) -> Vec<Complex<T>> {
        let (n, h) = (self.n, self.half());
        let mut out = vec![Complex::<T>::zero(); n * n * h];
        out.par_chunks_mut(n * h)
            .enumerate()
            .for_each(|(i, plane)| {
                let mut row = vec![T::zero(); n];
                let mut scratch = self.r2c.make_scratch_vec();
                for (j, line) in plane.chunks_mut(h).enumerate() {
                    fill(i * n + j, &mut row);
                    self.r2c
                        .process_with_scratch(&mut row, line, &mut scratch)
                        .expect("buffer lengths are the plan's");
                }
                lines_across_rows(plane.chunks_mut(h).collect(), &*self.forward);
            });
        across_planes(&mut out, n, &*self.forward);
        out
    }

    /// The transform along the first axis, the first half of the inverse:
    /// what is left is plane by plane ([`RealFft3::inverse_plane`]).
    pub fn inverse_first_axis(&self, half: &mut [Complex<T>]) {
        let n = self.n;
        assert_eq!(
            half.len(),
            n * n * self.half(),
            "not an N²(N/2+1) half spectrum"
        );
        across_planes(half, n, &*self.inverse);
    }

    /// The inverse along the other two axes of one plane (N·H values, after
    /// [`RealFft3::inverse_first_axis`]), into its N² cells; `plane` is
    /// overwritten. The imaginary parts of the l = 0 and l = N/2 modes, which a
    /// real field does not have, are ignored as `numpy.fft.irfftn` ignores them.
    pub fn inverse_plane(&self, plane: &mut [Complex<T>], cells: &mut [T]) {
        let (n, h) = (self.n, self.half());
        lines_across_rows(plane.chunks_mut(h).collect(), &*self.inverse);
        let mut scratch = self.c2r.make_scratch_vec();
        for (line, out) in plane.chunks_mut(h).zip(cells.chunks_mut(n)) {
            line[0].im = T::zero();
            line[h - 1].im = T::zero();
            self.c2r
                .process_with_scratch(line, out, &mut scratch)
                .expect("buffer lengths are the plan's");
        }
    }

    /// The real field of a half spectrum (consumed as scratch).
    pub fn inverse(&self, mut half: Vec<Complex<T>>) -> Vec<T> {
        let (n, h) = (self.n, self.half());
        self.inverse_first_axis(&mut half);
        let mut cells = vec![T::zero(); n * n * n];
        cells
            .par_chunks_mut(n * n)
            .zip(half.par_chunks_mut(n * h))
            .for_each(|(out, plane)| self.inverse_plane(plane, out));
        cells
    }
}

/// The 1D transform down the columns of `rows` (equal lengths; the line of
/// column c is row[c] of every row in turn), a tile of [`TILE`] columns at a
/// time: gathered into contiguous lines, transformed together, put back.
fn lines_across_rows<T: FftNum>(rows: Vec<&mut [Complex<T>]>, fft: &dyn Fft<T>) {
    lines_across_rows_by(rows, fft, TILE)
}

/// [`lines_across_rows`], `tile` columns at a time. The gathered lines lie
/// [`LINE_PAD`] values apart beyond their length: at a power-of-two stride
/// every line would start in the same few cache sets, and the strided writes
/// of the gather would evict one another.
fn lines_across_rows_by<T: FftNum>(
    mut rows: Vec<&mut [Complex<T>]>,
    fft: &dyn Fft<T>,
    tile: usize,
) {
    let len = rows.len();
    let stride = len + LINE_PAD;
    let width = rows.first().map_or(0, |r| r.len());
    let mut lines = vec![Complex::<T>::zero(); tile * stride];
    let mut scratch = vec![Complex::<T>::zero(); fft.get_inplace_scratch_len()];
    for start in (0..width).step_by(tile) {
        let cols = tile.min(width - start);
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row[start..start + cols].iter().enumerate() {
                lines[c * stride + r] = *v;
            }
        }
        for line in lines.chunks_mut(stride).take(cols) {
            fft.process_with_scratch(&mut line[..len], &mut scratch);
        }
        for (r, row) in rows.iter_mut().enumerate() {
            for (c, v) in row[start..start + cols].iter_mut().enumerate() {
                *v = lines[c * stride + r];
            }
        }
    }
}

/// The 1D transform along the first axis of N planes: each task takes the
/// same tile of columns of every plane (disjoint slices, so no task sees
/// another's).
fn across_planes<T: FftNum>(data: &mut [Complex<T>], n: usize, fft: &dyn Fft<T>) {
    let plane_len = data.len() / n;
    let mut tiles: Vec<Vec<&mut [Complex<T>]>> = Vec::new();
    for plane in data.chunks_mut(plane_len) {
        for (t, tile) in plane.chunks_mut(PLANE_TILE).enumerate() {
            if tiles.len() <= t {
                tiles.push(Vec::with_capacity(n));
            }
            tiles[t].push(tile);
        }
    }
    tiles
        .into_par_iter()
        .for_each(|rows| lines_across_rows_by(rows, fft, PLANE_TILE));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the defining sum on a small odd-free grid, and the round trip.
    #[test]
    fn fft3_is_the_dft_and_inverts() {
        let n = 4;
        let data: Vec<Complex64> = (0..n * n * n)
            .map(|i| Complex64::new((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()))
            .collect();
        let mut out = data.clone();
        fft3(&mut out, n, false);
        let tau = 2.0 * std::f64::consts::PI / n as f64;
        for (q, got) in out.iter().enumerate() {
            let (a, b, c) = (q / (n * n), (q / n) % n, q % n);
            let mut want = Complex64::new(0.0, 0.0);
            for (p, v) in data.iter().enumerate() {
                let (x, y, z) = (p / (n * n), (p / n) % n, p % n);
                let phase = -tau * ((a * x + b * y + c * z) % n) as f64;
                want += v * Complex64::from_polar(1.0, phase);
            }
            assert!((got - want).norm() < 1e-10, "mode {q}: {got} vs {want}");
        }
        fft3(&mut out, n, true);
        for (a, b) in out.iter().zip(&data) {
            assert!((a / (n * n * n) as f64 - b).norm() < 1e-12);
        }
    }

    /// The half spectrum is numpy's rfftn layout of the full transform, and
    /// the inverse returns the field.
    #[test]
    fn real_fft_is_the_half_of_the_complex_one() {
        for n in [2, 4, 6, 8, 32] {
            let cells: Vec<f64> = (0..n * n * n)
                .map(|i| (i as f64 * 0.37).sin() + (i as f64 * 0.011).cos())
                .collect();
            let mut full: Vec<Complex64> = cells.iter().map(|&v| Complex64::new(v, 0.0)).collect();
            fft3(&mut full, n, false);
            let fft = RealFft3::new(n);
            let h = fft.half();
            let half = fft.forward(&cells);
            for i in 0..n {
                for j in 0..n {
                    for l in 0..h {
                        let (a, b) = (half[(i * n + j) * h + l], full[(i * n + j) * n + l]);
                        assert!(
                            (a - b).norm() < 1e-9 * (n * n * n) as f64,
                            "n {n} mode {i},{j},{l}"
                        );
                    }
                }
            }
            let back = fft.inverse(half);
            for (a, b) in back.iter().zip(&cells) {
                assert!((a / (n * n * n) as f64 - b).abs() < 1e-12, "n {n}");
            }
        }
    }
}
