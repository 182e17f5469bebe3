//! Pixel PDF, Minkowski functionals and peak counts of one square map.
//!
//! Every function reads the map in its stored precision (`f32` or `f64`, see
//! [`Pixel`]); arithmetic is in `f64` as in lenstools, so an `f32` map gives the same
//! numbers as its exact `f64` copy, without the copy.

use std::f64::consts::PI;

use simemu_core::bins::BinFinder;

/// A map value type the statistics read directly.
pub trait Pixel: Copy + PartialOrd + Into<f64> + Send + Sync {
    /// The value lenstools compares a peak candidate by: its C code stores the centre
    /// pixel in a `float` and its neighbours in `double`s.
    fn peak_centre(self) -> Self;
    /// The larger of two finite values.
    #[inline(always)]
    fn larger(self, other: Self) -> Self {
        // Not `f64::max`: its NaN handling costs a blend per element, and the maps
        // are checked to be finite before any statistic sees them.
        if self > other {
            self
        } else {
            other
        }
    }
}

impl Pixel for f32 {
    #[inline(always)]
    fn peak_centre(self) -> Self {
        self
    }
}

impl Pixel for f64 {
    #[inline(always)]
    fn peak_centre(self) -> Self {
        self as f32 as f64
    }
}

/// Population standard deviation (numpy `std`, ddof = 0), with pairwise summation
/// like numpy so that σ agrees with numpy to the last bits in practice.
pub fn std_ddof0<T: Pixel>(m: &[T]) -> f64 {
    let n = m.len() as f64;
    let mean = pairwise_sum_of(m.len(), |i| m[i].into()) / n;
    (pairwise_sum_of(m.len(), |i| {
        let d = m[i].into() - mean;
        d * d
    }) / n)
        .sqrt()
}

/// numpy's pairwise summation (blocks of 8 partial sums below 128 elements) of
/// `value(0..n)`, without materialising the values (σ of a map needs the squared
/// deviations only once).
fn pairwise_sum_of(n: usize, value: impl Fn(usize) -> f64 + Copy) -> f64 {
    fn go(start: usize, n: usize, value: impl Fn(usize) -> f64 + Copy) -> f64 {
        if n < 8 {
            return (start..start + n).map(value).sum();
        }
        if n <= 128 {
            let mut r = [0.0f64; 8];
            for (k, slot) in r.iter_mut().enumerate() {
                *slot = value(start + k);
            }
            let mut i = 8;
            while i < n - n % 8 {
                for (k, slot) in r.iter_mut().enumerate() {
                    *slot += value(start + i + k);
                }
                i += 8;
            }
            let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            while i < n {
                res += value(start + i);
                i += 1;
            }
            return res;
        }
        let mut half = n / 2;
        half -= half % 8;
        go(start, half, value) + go(start + half, n - half, value)
    }
    go(0, n, value)
}

/// numpy.histogram's counts: half-open bins `[e_k, e_{k+1})`, the last one closed.
///
/// Four interleaved count arrays keep neighbouring pixels (which often share a bin)
/// from waiting on each other's increments.
pub fn histogram<T: Pixel>(values: &[T], edges: &[f64]) -> Vec<u64> {
    let nb = edges.len() - 1;
    let bins = BinFinder::new(edges);
    let last = edges[nb];
    let mut lanes = vec![[0u64; 4]; nb + 2];
    let mut at_top = 0u64;
    let mut quads = values.chunks_exact(4);
    for q in &mut quads {
        for (lane, &x) in q.iter().enumerate() {
            let x: f64 = x.into();
            lanes[bins.slot(x)][lane] += 1;
            at_top += u64::from(x == last);
        }
    }
    for &x in quads.remainder() {
        let x: f64 = x.into();
        lanes[bins.slot(x)][0] += 1;
        at_top += u64::from(x == last);
    }
    let mut counts: Vec<u64> = lanes[1..=nb].iter().map(|l| l.iter().sum()).collect();
    counts[nb - 1] += at_top;
    counts
}

/// numpy.histogram(m, bins=edges·σ, density=True)·σ (last bin closed; density over
/// the in-range pixels only).
pub fn pixel_pdf<T: Pixel>(m: &[T], thresholds: &[f64], sigma: f64) -> Vec<f64> {
    let edges: Vec<f64> = thresholds.iter().map(|t| t * sigma).collect();
    let nb = edges.len() - 1;
    let counts = histogram(m, &edges);
    let total: u64 = counts.iter().sum();
    (0..nb)
        .map(|k| {
            if total == 0 {
                0.0
            } else {
                counts[k] as f64 / (edges[k + 1] - edges[k]) / total as f64 * sigma
            }
        })
        .collect()
}

/// Periodic neighbour indices of each row/column: −2, −1, +1, +2.
fn wrap_table(n: usize) -> Vec<[usize; 4]> {
    (0..n)
        .map(|i| [(i + n - 2) % n, (i + n - 1) % n, (i + 1) % n, (i + 2) % n])
        .collect()
}

/// Periodic central-difference gradient and wide-stencil Hessian at (r, c).
#[inline]
fn derivatives(
    m: &[f64],
    n: usize,
    w: &[[usize; 4]],
    r: usize,
    c: usize,
) -> (f64, f64, f64, f64, f64) {
    let [r_2, r_1, r1, r2] = w[r];
    let [c_2, c_1, c1, c2] = w[c];
    let v = m[r * n + c];
    let gx = (m[r * n + c1] - m[r * n + c_1]) / 2.0;
    let gy = (m[r1 * n + c] - m[r_1 * n + c]) / 2.0;
    let hxx = (m[r * n + c2] + m[r * n + c_2] - 2.0 * v) / 4.0;
    let hyy = (m[r2 * n + c] + m[r_2 * n + c] - 2.0 * v) / 4.0;
    let hxy = (m[r1 * n + c1] + m[r_1 * n + c_1] - m[r1 * n + c_1] - m[r_1 * n + c1]) / 4.0;
    (gx, gy, hxx, hyy, hxy)
}

/// Gradient (gx, gy) and Hessian (hxx, hyy, hxy) maps, as lenstools computes them.
pub fn gradient_hessian(m: &[f64], n: usize) -> [Vec<f64>; 5] {
    let w = wrap_table(n);
    let mut out: [Vec<f64>; 5] = std::array::from_fn(|_| vec![0.0; n * n]);
    for r in 0..n {
        for c in 0..n {
            let d = derivatives(m, n, &w, r, c);
            let i = r * n + c;
            out[0][i] = d.0;
            out[1][i] = d.1;
            out[2][i] = d.2;
            out[3][i] = d.3;
            out[4][i] = d.4;
        }
    }
    out
}

/// Row `r` of the map in f64 with two pixels of periodic wrap on each side.
fn padded_row<T: Pixel>(m: &[T], n: usize, r: usize, out: &mut [f64]) {
    let row = &m[r * n..(r + 1) * n];
    out[0] = row[n - 2].into();
    out[1] = row[n - 1].into();
    for (o, &x) in out[2..n + 2].iter_mut().zip(row) {
        *o = x.into();
    }
    out[n + 2] = row[0].into();
    out[n + 3] = row[1].into();
}

/// The two Minkowski integrands of one row, from the five padded rows around it:
/// `i1 = |∇m|/4` and `i2` = the curvature term (lenstools' zero-gradient fallback
/// where ∇m = 0 exactly).
///
/// Branch-free (both V2 forms computed, one kept: the same bits as a branch), so
/// that it vectorises; compiled for AVX-512 or AVX2 when the CPU has them. Rust never
/// fuses a multiply and an add on its own, so every variant gives identical bits.
fn curvature_row(rows: &[Vec<f64>; 5], i1: &mut [f64], i2: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { curvature_row_avx512(rows, i1, i2) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { curvature_row_avx2(rows, i1, i2) };
        }
    }
    curvature_row_portable(rows, i1, i2)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn curvature_row_avx512(rows: &[Vec<f64>; 5], i1: &mut [f64], i2: &mut [f64]) {
    curvature_row_portable(rows, i1, i2)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn curvature_row_avx2(rows: &[Vec<f64>; 5], i1: &mut [f64], i2: &mut [f64]) {
    curvature_row_portable(rows, i1, i2)
}

#[inline(always)]
fn curvature_row_portable(rows: &[Vec<f64>; 5], i1: &mut [f64], i2: &mut [f64]) {
    let n = i1.len();
    let [up2, up1, mid, dn1, dn2] = rows;
    let (up2, up1, mid, dn1, dn2) = (
        &up2[..n + 4],
        &up1[..n + 4],
        &mid[..n + 4],
        &dn1[..n + 4],
        &dn2[..n + 4],
    );
    let i2 = &mut i2[..n];
    for c in 0..n {
        let p = c + 2;
        let v = mid[p];
        let gx = (mid[p + 1] - mid[p - 1]) / 2.0;
        let gy = (dn1[p] - up1[p]) / 2.0;
        let hxx = (mid[p + 2] + mid[p - 2] - 2.0 * v) / 4.0;
        let hyy = (dn2[p] + up2[p] - 2.0 * v) / 4.0;
        let hxy = (dn1[p + 1] + up1[p - 1] - dn1[p - 1] - up1[p + 1]) / 4.0;
        let g2 = gx * gx + gy * gy;
        i1[c] = 0.25 * g2.sqrt();
        let flat = g2 == 0.0;
        let fallback = (2.0 * hxy - hxx - hyy) / (4.0 * PI);
        let denominator = if flat { 1.0 } else { g2 };
        let general =
            ((2.0 * gx * gy * hxy - gx * gx * hyy - gy * gy * hxx) / denominator) / (2.0 * PI);
        i2[c] = if flat { fallback } else { general };
    }
}

/// Minkowski functionals V0, V1, V2 over the threshold bins (lenstools minkowski.c).
///
/// Derivatives are computed a row at a time on padded copies of the five rows the
/// stencils touch; the sums over each bin then only gather, into four interleaved
/// accumulators per bin (neighbouring pixels share bins, and one accumulator would
/// make each addition wait for the last). V1 and V2 therefore differ from lenstools'
/// row-major sums in the last bits only.
pub fn minkowski<T: Pixel>(m: &[T], n: usize, thresholds: &[f64], sigma: f64) -> [Vec<f64>; 3] {
    let nb = thresholds.len() - 1;
    let npix = (n * n) as f64;
    let edges: Vec<f64> = thresholds.iter().map(|t| t * sigma).collect();
    let bins = BinFinder::new(&edges);
    // V0 at the bin midpoints: pixels >= each midpoint, by counting pixels between
    // consecutive midpoints and a suffix sum. A pixel in slot s (bin s − 1) passes
    // s − 1 midpoints, or s if it is at or above its bin's midpoint; a pixel below
    // every bin passes none, one above them all passes nb (its "midpoint" is +∞).
    let mut passed_before = vec![0usize; nb + 2];
    let mut midpoint = vec![f64::INFINITY; nb + 2];
    for k in 0..nb {
        passed_before[k + 1] = k;
        midpoint[k + 1] = (thresholds[k] + thresholds[k + 1]) * sigma / 2.0;
    }
    passed_before[nb + 1] = nb;
    let mut above = vec![[0u64; 4]; nb + 1];
    let mut s1 = vec![[0.0f64; 4]; nb + 2];
    let mut s2 = vec![[0.0f64; 4]; nb + 2];
    let mut rows: [Vec<f64>; 5] = std::array::from_fn(|_| vec![0.0; n + 4]);
    // Rows −2 … 1 in slots 1 … 4: the first slide below makes them slots 0 … 3.
    for (k, row) in rows.iter_mut().enumerate().skip(1) {
        padded_row(m, n, (2 * n + k - 3) % n, row);
    }
    let (mut i1, mut i2) = (vec![0.0; n], vec![0.0; n]);
    for r in 0..n {
        // Slide the five-row window down by one row: one new padded row per row.
        rows.rotate_left(1);
        padded_row(m, n, (r + 2) % n, &mut rows[4]);
        curvature_row(&rows, &mut i1, &mut i2);
        let mid = &rows[2][2..n + 2];
        for (c, ((&v, &a), &b)) in mid.iter().zip(&i1).zip(&i2).enumerate() {
            let s = bins.slot(v);
            let lane = c % 4;
            above[passed_before[s] + usize::from(v >= midpoint[s])][lane] += 1;
            s1[s][lane] += a;
            s2[s][lane] += b;
        }
    }
    let total = |lanes: &[f64; 4]| (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    let mut v0 = vec![0.0; nb];
    let mut cum = 0u64;
    for i in (0..nb).rev() {
        cum += above[i + 1].iter().sum::<u64>();
        v0[i] = cum as f64 / npix;
    }
    let mut v1 = vec![0.0; nb];
    let mut v2 = vec![0.0; nb];
    for k in 0..nb {
        let d = thresholds[k + 1] - thresholds[k];
        v1[k] = total(&s1[k + 1]) / (npix * d);
        v2[k] = total(&s2[k + 1]) / (npix * d);
    }
    [v0, v1, v2]
}

/// Strict 8-neighbour maxima (periodic) as (row, column, value), row-major order.
///
/// A pixel beats all 8 neighbours iff it beats its left and right neighbours and the
/// 3-wide maxima of the rows above and below. Each row is tested in a branch-free
/// loop (random maps make every comparison unpredictable) and the peaks (about one
/// pixel in nine) are collected afterwards, again without a branch per pixel. The
/// centre is rounded to f32 first, as lenstools' C code stores it in a `float`.
pub fn peaks<T: Pixel>(m: &[T], n: usize) -> Vec<(usize, usize, f64)> {
    let mut out = Vec::new();
    for_each_peak(m, n, |r, c, v| out.push((r, c, v.into())));
    out
}

/// Calls `found(row, column, value)` for every peak, in row-major order.
fn for_each_peak<T: Pixel>(m: &[T], n: usize, mut found: impl FnMut(usize, usize, T)) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { for_each_peak_avx512(m, n, &mut found) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { for_each_peak_avx2(m, n, &mut found) };
        }
    }
    for_each_peak_portable(m, n, &mut found)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
fn for_each_peak_avx512<T: Pixel>(m: &[T], n: usize, found: &mut impl FnMut(usize, usize, T)) {
    for_each_peak_portable(m, n, found)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn for_each_peak_avx2<T: Pixel>(m: &[T], n: usize, found: &mut impl FnMut(usize, usize, T)) {
    for_each_peak_portable(m, n, found)
}

/// 3-wide periodic maxima of one row.
#[inline(always)]
fn row_maxima<T: Pixel>(row: &[T], out: &mut [T]) {
    let n = row.len();
    let out = &mut out[..n];
    out[0] = row[n - 1].larger(row[0]).larger(row[1]);
    for c in 1..n - 1 {
        out[c] = row[c - 1].larger(row[c]).larger(row[c + 1]);
    }
    out[n - 1] = row[n - 2].larger(row[n - 1]).larger(row[0]);
}

#[inline(always)]
fn for_each_peak_portable<T: Pixel>(m: &[T], n: usize, found: &mut impl FnMut(usize, usize, T)) {
    // The 3-wide maxima of rows r − 1, r and r + 1, slid down one row at a time.
    let mut maxima = vec![m[0]; 3 * n];
    row_maxima(&m[(n - 1) * n..], &mut maxima[..n]);
    row_maxima(&m[..n], &mut maxima[n..2 * n]);
    let mut padded = vec![m[0]; n + 2];
    let mut flags = vec![0u8; n];
    let mut columns = vec![0u32; n];
    for r in 0..n {
        let next = (r + 1) % n;
        let slot_below = (r + 2) % 3;
        row_maxima(
            &m[next * n..(next + 1) * n],
            &mut maxima[slot_below * n..(slot_below + 1) * n],
        );
        let above = &maxima[(r % 3) * n..][..n];
        let below = &maxima[slot_below * n..][..n];
        let row = &m[r * n..(r + 1) * n];
        padded[0] = row[n - 1];
        padded[1..n + 1].copy_from_slice(row);
        padded[n + 1] = row[0];
        let flags = &mut flags[..n];
        for c in 0..n {
            let centre = padded[c + 1].peak_centre();
            flags[c] = u8::from(centre > padded[c])
                & u8::from(centre > padded[c + 2])
                & u8::from(centre > above[c])
                & u8::from(centre > below[c]);
        }
        // Compact the peaks' columns without a branch per pixel: about one
        // pixel in nine is a peak, too often for a predictable branch.
        let mut count = 0;
        for (c, &f) in flags.iter().enumerate() {
            columns[count] = c as u32;
            count += usize::from(f);
        }
        for &c in &columns[..count] {
            found(r, c as usize, row[c as usize]);
        }
    }
}

/// Differential peak counts dN/dν: each peak in `[t_k σ, t_{k+1} σ)` adds 1/Δt_k.
pub fn peak_counts<T: Pixel>(m: &[T], n: usize, thresholds: &[f64], sigma: f64) -> Vec<f64> {
    let edges: Vec<f64> = thresholds.iter().map(|t| t * sigma).collect();
    let bins = BinFinder::new(&edges);
    let mut counts = vec![0u64; thresholds.len() + 1];
    for_each_peak(m, n, |_, _, v| counts[bins.slot(v.into())] += 1);
    counts[1..thresholds.len()]
        .iter()
        .enumerate()
        .map(|(k, &c)| c as f64 / (thresholds[k + 1] - thresholds[k]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy.histogram's counts, the top edge in the last bin, for equally
    /// spaced edges (the finder's fast path) and uneven ones.
    #[test]
    fn histogram_counts_as_numpy() {
        let uniform: Vec<f64> = (0..=30).map(|k| -0.02 + k as f64 * (0.07 / 30.0)).collect();
        let uneven: Vec<f64> = (0..=12).map(|k| (k as f64 * 0.3).exp() - 1.0).collect();
        for edges in [&uniform, &uneven] {
            let (lo, hi) = (edges[0], edges[edges.len() - 1]);
            let mut want = vec![0u64; edges.len() - 1];
            for x in xs_for(edges) {
                if x == hi {
                    want[edges.len() - 2] += 1;
                } else if let Some(k) =
                    (x >= lo && x < hi).then(|| edges.iter().rposition(|&e| e <= x).unwrap())
                {
                    want[k] += 1;
                }
            }
            assert_eq!(histogram(&xs_for(edges), edges), want);
        }
    }

    /// A 64×64 map of hashed values with ties and a flat patch (exact zero gradients).
    fn test_map() -> Vec<f64> {
        let n = 64;
        (0..n * n)
            .map(|i| {
                let (r, c) = (i / n, i % n);
                if (10..17).contains(&r) && (20..27).contains(&c) {
                    0.5
                } else {
                    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                    ((h % 1000) as f64 / 1000.0 - 0.3) * (1.0 + (r as f64 * 0.2).sin())
                }
            })
            .collect()
    }

    /// The vector-compiled kernels the CPU selects give the portable loop's bits.
    #[test]
    fn dispatched_kernels_agree_with_the_portable_ones() {
        let n = 64;
        let m = test_map();
        let rows: [Vec<f64>; 5] = std::array::from_fn(|k| {
            let mut row = vec![0.0; n + 4];
            padded_row(&m, n, 11 + k, &mut row);
            row
        });
        let (mut a1, mut a2, mut b1, mut b2) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        curvature_row(&rows, &mut a1, &mut a2);
        curvature_row_portable(&rows, &mut b1, &mut b2);
        assert!(b1.contains(&0.0), "the flat patch exercises the fallback");
        assert_eq!((a1, a2), (b1, b2));
        let (mut dispatched, mut portable) = (vec![], vec![]);
        for_each_peak(&m, n, |r, c, v| dispatched.push((r, c, v)));
        for_each_peak_portable(&m, n, &mut |r, c, v| portable.push((r, c, v)));
        assert!(portable.len() > 100);
        assert_eq!(dispatched, portable);
    }

    /// Minkowski functionals and peaks do not depend on where the periodic map starts:
    /// rolling it by whole rows and columns leaves every sum's terms unchanged.
    #[test]
    fn statistics_are_invariant_under_periodic_shifts() {
        let n = 64;
        let m = test_map();
        let rolled: Vec<f64> = (0..n * n)
            .map(|i| m[((i / n + 7) % n) * n + (i % n + 61) % n])
            .collect();
        let t: Vec<f64> = (0..=10).map(|k| -0.4 + 0.13 * k as f64).collect();
        let [a0, a1, a2] = minkowski(&m, n, &t, 1.0);
        let [b0, b1, b2] = minkowski(&rolled, n, &t, 1.0);
        assert_eq!(a0, b0);
        for (x, y) in a1.iter().zip(&b1).chain(a2.iter().zip(&b2)) {
            assert!((x - y).abs() <= 1e-12 * x.abs().max(1e-3), "{x} vs {y}");
        }
        assert_eq!(
            peak_counts(&m, n, &t, 1.0),
            peak_counts(&rolled, n, &t, 1.0)
        );
    }

    fn xs_for(edges: &[f64]) -> Vec<f64> {
        let (lo, hi) = (edges[0], edges[edges.len() - 1]);
        let mut xs: Vec<f64> = edges.to_vec();
        xs.extend(edges.iter().map(|&e| e - 1e-15));
        xs.extend(
            (0..1001)
                .map(|i| lo - 0.1 * (hi - lo) + 1.2 * (hi - lo) * (i as f64 * 0.618_034).fract()),
        );
        xs
    }
}
