//! Pixel PDF, Minkowski functionals and peak counts of one square map.

/// Population standard deviation (numpy `std`, ddof = 0), with pairwise summation
/// like numpy so that σ agrees with numpy to the last bits in practice.
pub fn std_ddof0(m: &[f64]) -> f64 {
    let n = m.len() as f64;
    let mean = pairwise_sum(m) / n;
    (pairwise_sum_of(m.len(), |i| (m[i] - mean) * (m[i] - mean)) / n).sqrt()
}

/// numpy's pairwise summation (blocks of 8 partial sums below 128 elements).
pub fn pairwise_sum(a: &[f64]) -> f64 {
    pairwise_sum_of(a.len(), |i| a[i])
}

/// Pairwise summation of `value(0..n)` in numpy's order, without materialising the
/// values (σ of a map needs the squared deviations only once).
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

/// Finds the half-open bin of values quickly. For equally spaced edges (what
/// `lin:` and the default quantile-free bins give) a multiplication guesses the bin
/// to within one, and two branch-free comparisons with the actual edges make it
/// exact; other edges take a binary search.
pub struct BinFinder<'a> {
    edges: &'a [f64],
    lo: f64,
    inv_width: f64,
    uniform: bool,
}

impl<'a> BinFinder<'a> {
    pub fn new(edges: &'a [f64]) -> Self {
        let nb = edges.len() - 1;
        let (lo, hi) = (edges[0], edges[nb]);
        let width = (hi - lo) / nb as f64;
        // Off-grid by less than a millionth of a bin: the guess is off by at most one.
        let uniform = edges
            .iter()
            .enumerate()
            .all(|(k, &e)| (e - (lo + k as f64 * width)).abs() <= 1e-6 * width);
        BinFinder {
            edges,
            lo,
            inv_width: nb as f64 / (hi - lo),
            uniform,
        }
    }

    /// Index `k` with `e_k <= x < e_{k+1}`, if any.
    #[inline]
    pub fn find(&self, x: f64) -> Option<usize> {
        let e = self.edges;
        let nb = e.len() - 1;
        if !(x >= e[0] && x < e[nb]) {
            return None;
        }
        if !self.uniform {
            return Some(e.partition_point(|&v| v <= x) - 1);
        }
        let guess = (((x - self.lo) * self.inv_width) as usize).min(nb - 1);
        // x >= e_0 and x < e_nb keep both steps inside 0..nb.
        let k = guess - usize::from(x < e[guess]);
        Some(k + usize::from(x >= e[k + 1]))
    }
}

/// numpy.histogram's counts: half-open bins `[e_k, e_{k+1})`, the last one closed.
///
/// Four interleaved count arrays keep neighbouring pixels (which often share a bin)
/// from waiting on each other's increments; slot 0 collects values outside the bins.
pub fn histogram(values: &[f64], edges: &[f64]) -> Vec<u64> {
    let nb = edges.len() - 1;
    let bins = BinFinder::new(edges);
    let last = edges[nb];
    let slot = |x: f64| bins.find(x).map_or(0, |k| k + 1);
    let mut lanes = vec![[0u64; 4]; nb + 1];
    let mut at_top = 0u64;
    let mut quads = values.chunks_exact(4);
    for q in &mut quads {
        for (lane, &x) in q.iter().enumerate() {
            lanes[slot(x)][lane] += 1;
            at_top += u64::from(x == last);
        }
    }
    for &x in quads.remainder() {
        lanes[slot(x)][0] += 1;
        at_top += u64::from(x == last);
    }
    let mut counts: Vec<u64> = lanes[1..].iter().map(|l| l.iter().sum()).collect();
    counts[nb - 1] += at_top;
    counts
}

/// numpy.histogram(m, bins=edges·σ, density=True)·σ (last bin closed; density over
/// the in-range pixels only).
pub fn pixel_pdf(m: &[f64], thresholds: &[f64], sigma: f64) -> Vec<f64> {
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

/// Row `r` of the map with two pixels of periodic wrap on each side.
fn padded_row(m: &[f64], n: usize, r: usize, out: &mut [f64]) {
    let row = &m[r * n..(r + 1) * n];
    out[0] = row[n - 2];
    out[1] = row[n - 1];
    out[2..n + 2].copy_from_slice(row);
    out[n + 2] = row[0];
    out[n + 3] = row[1];
}

/// Minkowski functionals V0, V1, V2 over the threshold bins (lenstools minkowski.c).
///
/// Derivatives are computed a row at a time on padded copies of the five rows the
/// stencils touch, in loops the compiler vectorises; the sums over each bin then
/// only gather. The per-bin sums run in row-major order, like lenstools.
pub fn minkowski(m: &[f64], n: usize, thresholds: &[f64], sigma: f64) -> [Vec<f64>; 3] {
    use std::f64::consts::PI;
    let nb = thresholds.len() - 1;
    let npix = (n * n) as f64;
    let edges: Vec<f64> = thresholds.iter().map(|t| t * sigma).collect();
    let mids: Vec<f64> = (0..nb)
        .map(|i| (thresholds[i] + thresholds[i + 1]) * sigma / 2.0)
        .collect();
    let bins = BinFinder::new(&edges);
    // V0 at midpoints: pixels >= each midpoint, by a histogram over the (increasing)
    // midpoints and a suffix sum.
    let mut above = vec![0u64; nb + 1];
    let mut s1 = vec![0.0; nb];
    let mut s2 = vec![0.0; nb];
    let mut rows: [Vec<f64>; 5] = std::array::from_fn(|_| vec![0.0; n + 4]);
    let (mut i1, mut i2) = (vec![0.0; n], vec![0.0; n]);
    for r in 0..n {
        for (k, row) in rows.iter_mut().enumerate() {
            padded_row(m, n, (r + n + k - 2) % n, row);
        }
        let [up2, up1, mid, dn1, dn2] = &rows;
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
            i2[c] = if g2 == 0.0 {
                (2.0 * hxy - hxx - hyy) / (4.0 * PI)
            } else {
                ((2.0 * gx * gy * hxy - gx * gx * hyy - gy * gy * hxx) / g2) / (2.0 * PI)
            };
        }
        for c in 0..n {
            let v = mid[c + 2];
            match bins.find(v) {
                Some(k) => {
                    // Midpoint k lies inside bin k: v passes k of them, or k + 1.
                    above[k + usize::from(v >= mids[k])] += 1;
                    s1[k] += i1[c];
                    s2[k] += i2[c];
                }
                None if v < edges[0] => above[0] += 1,
                None => above[nb] += 1,
            }
        }
    }
    let mut v0 = vec![0.0; nb];
    let mut cum = 0u64;
    for i in (0..nb).rev() {
        cum += above[i + 1];
        v0[i] = cum as f64 / npix;
    }
    let mut v1 = vec![0.0; nb];
    let mut v2 = vec![0.0; nb];
    for k in 0..nb {
        let d = thresholds[k + 1] - thresholds[k];
        v1[k] = s1[k] / (npix * d);
        v2[k] = s2[k] / (npix * d);
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
pub fn peaks(m: &[f64], n: usize) -> Vec<(usize, usize, f64)> {
    let mut out = Vec::new();
    for_each_peak(m, n, |r, c, v| out.push((r, c, v)));
    out
}

thread_local! {
    /// Row maxima of the last map, reused so that a map costs no allocation.
    static ROW_MAXIMA: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Calls `found(row, column, value)` for every peak, in row-major order.
fn for_each_peak(m: &[f64], n: usize, mut found: impl FnMut(usize, usize, f64)) {
    ROW_MAXIMA.with(|cell| {
        let mut hmax = cell.borrow_mut();
        hmax.resize(n * n, 0.0);
        // 3-wide row maxima of every row, once.
        for (row, out) in m.chunks_exact(n).zip(hmax.chunks_exact_mut(n)) {
            out[0] = row[n - 1].max(row[0]).max(row[1]);
            for c in 1..n - 1 {
                out[c] = row[c - 1].max(row[c]).max(row[c + 1]);
            }
            out[n - 1] = row[n - 2].max(row[n - 1]).max(row[0]);
        }
        let mut padded = vec![0.0; n + 2];
        let mut flags = vec![0u8; n];
        let mut columns = vec![0u32; n];
        for r in 0..n {
            let above = &hmax[((r + n - 1) % n) * n..][..n];
            let below = &hmax[((r + 1) % n) * n..][..n];
            let row = &m[r * n..(r + 1) * n];
            padded[0] = row[n - 1];
            padded[1..n + 1].copy_from_slice(row);
            padded[n + 1] = row[0];
            for c in 0..n {
                let centre = padded[c + 1] as f32 as f64;
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
    })
}

/// Differential peak counts dN/dν: each peak in `[t_k σ, t_{k+1} σ)` adds 1/Δt_k.
pub fn peak_counts(m: &[f64], n: usize, thresholds: &[f64], sigma: f64) -> Vec<f64> {
    let edges: Vec<f64> = thresholds.iter().map(|t| t * sigma).collect();
    let bins = BinFinder::new(&edges);
    let mut counts = vec![0u64; thresholds.len() - 1];
    for_each_peak(m, n, |_, _, v| {
        if let Some(k) = bins.find(v) {
            counts[k] += 1;
        }
    });
    counts
        .iter()
        .enumerate()
        .map(|(k, &c)| c as f64 / (thresholds[k + 1] - thresholds[k]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bin of every value, edges included, equals a plain search's, for
    /// equally spaced edges (fast path) and uneven ones (binary search).
    #[test]
    fn bin_finder_agrees_with_a_search_on_edges_and_between() {
        let uniform: Vec<f64> = (0..=30).map(|k| -0.02 + k as f64 * (0.07 / 30.0)).collect();
        let uneven: Vec<f64> = (0..=12).map(|k| (k as f64 * 0.3).exp() - 1.0).collect();
        for edges in [&uniform, &uneven] {
            let bins = BinFinder::new(edges);
            let (lo, hi) = (edges[0], edges[edges.len() - 1]);
            let mut xs: Vec<f64> = edges.clone();
            xs.extend(edges.iter().map(|&e| e - 1e-15));
            xs.extend(edges.iter().map(|&e| e + 1e-15));
            xs.extend(
                (0..10_000).map(|i| {
                    lo - 0.1 * (hi - lo) + 1.2 * (hi - lo) * (i as f64 * 0.618_034).fract()
                }),
            );
            for x in xs {
                let want =
                    (x >= lo && x < hi).then(|| edges.iter().rposition(|&e| e <= x).unwrap());
                assert_eq!(bins.find(x), want, "x = {x:e}");
            }
            // numpy.histogram's counts: the same bins, the top edge in the last one.
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
