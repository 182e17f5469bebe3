//! Pixel PDF, Minkowski functionals and peak counts of one square map.

/// Population standard deviation (numpy `std`, ddof = 0), with pairwise summation
/// like numpy so that σ agrees with numpy to the last bits in practice.
pub fn std_ddof0(m: &[f64]) -> f64 {
    let n = m.len() as f64;
    let mean = pairwise_sum(m) / n;
    let dev: Vec<f64> = m.iter().map(|x| (x - mean) * (x - mean)).collect();
    (pairwise_sum(&dev) / n).sqrt()
}

/// numpy's pairwise summation (blocks of 8 partial sums below 128 elements).
pub fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        return a.iter().sum();
    }
    if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for k in 0..8 {
                r[k] += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        return res;
    }
    let mut half = n / 2;
    half -= half % 8;
    pairwise_sum(&a[..half]) + pairwise_sum(&a[half..])
}

/// Index `k` of the half-open bin `[e_k, e_{k+1})` holding `x`, if any.
#[inline]
pub fn half_open_bin(edges: &[f64], x: f64) -> Option<usize> {
    // Number of edges <= x, minus one.
    let k = edges.partition_point(|&e| e <= x);
    if k == 0 || k == edges.len() {
        None
    } else {
        Some(k - 1)
    }
}

/// numpy.histogram(m, bins=edges·σ, density=True)·σ (last bin closed; density over
/// the in-range pixels only).
pub fn pixel_pdf(m: &[f64], thresholds: &[f64], sigma: f64) -> Vec<f64> {
    let edges: Vec<f64> = thresholds.iter().map(|t| t * sigma).collect();
    let nb = edges.len() - 1;
    let mut counts = vec![0u64; nb];
    let last = edges[nb];
    for &x in m {
        if x == last {
            counts[nb - 1] += 1;
        } else if let Some(k) = half_open_bin(&edges, x) {
            counts[k] += 1;
        }
    }
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

/// Periodic central-difference gradient and wide-stencil Hessian at (r, c).
#[inline]
fn derivatives(m: &[f64], n: usize, r: usize, c: usize) -> (f64, f64, f64, f64, f64) {
    let at = |dr: isize, dc: isize| {
        let rr = (r as isize + dr).rem_euclid(n as isize) as usize;
        let cc = (c as isize + dc).rem_euclid(n as isize) as usize;
        m[rr * n + cc]
    };
    let v = m[r * n + c];
    let gx = (at(0, 1) - at(0, -1)) / 2.0;
    let gy = (at(1, 0) - at(-1, 0)) / 2.0;
    let hxx = (at(0, 2) + at(0, -2) - 2.0 * v) / 4.0;
    let hyy = (at(2, 0) + at(-2, 0) - 2.0 * v) / 4.0;
    let hxy = (at(1, 1) + at(-1, -1) - at(1, -1) - at(-1, 1)) / 4.0;
    (gx, gy, hxx, hyy, hxy)
}

/// Gradient (gx, gy) and Hessian (hxx, hyy, hxy) maps, as lenstools computes them.
pub fn gradient_hessian(m: &[f64], n: usize) -> [Vec<f64>; 5] {
    let mut out: [Vec<f64>; 5] = std::array::from_fn(|_| vec![0.0; n * n]);
    for r in 0..n {
        for c in 0..n {
            let d = derivatives(m, n, r, c);
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

/// Minkowski functionals V0, V1, V2 over the threshold bins (lenstools minkowski.c).
pub fn minkowski(m: &[f64], n: usize, thresholds: &[f64], sigma: f64) -> [Vec<f64>; 3] {
    let nb = thresholds.len() - 1;
    let npix = (n * n) as f64;
    let edges: Vec<f64> = thresholds.iter().map(|t| t * sigma).collect();
    let mids: Vec<f64> = (0..nb).map(|i| (thresholds[i] + thresholds[i + 1]) * sigma / 2.0).collect();
    // V0 at midpoints: number of pixels >= each midpoint, from a histogram over the
    // (increasing) midpoints and a suffix sum.
    let mut above = vec![0u64; nb + 1];
    let mut v1 = vec![0.0; nb];
    let mut v2 = vec![0.0; nb];
    let mut s1 = vec![0.0; nb];
    let mut s2 = vec![0.0; nb];
    for r in 0..n {
        for c in 0..n {
            let v = m[r * n + c];
            above[mids.partition_point(|&x| x <= v)] += 1;
            if let Some(k) = half_open_bin(&edges, v) {
                let (gx, gy, hxx, hyy, hxy) = derivatives(m, n, r, c);
                let g2 = gx * gx + gy * gy;
                s1[k] += 0.25 * g2.sqrt();
                s2[k] += if g2 == 0.0 {
                    (2.0 * hxy - hxx - hyy) / (4.0 * std::f64::consts::PI)
                } else {
                    ((2.0 * gx * gy * hxy - gx * gx * hyy - gy * gy * hxx) / g2) / (2.0 * std::f64::consts::PI)
                };
            }
        }
    }
    let mut v0 = vec![0.0; nb];
    let mut cum = 0u64;
    for i in (0..nb).rev() {
        cum += above[i + 1];
        v0[i] = cum as f64 / npix;
    }
    for k in 0..nb {
        let d = thresholds[k + 1] - thresholds[k];
        v1[k] = s1[k] / (npix * d);
        v2[k] = s2[k] / (npix * d);
    }
    [v0, v1, v2]
}

/// Whether pixel (r, c) is a strict 8-neighbour maximum (periodic); the centre value
/// is rounded to f32 first, as lenstools' C code stores it in a `float`.
#[inline]
pub fn is_peak(m: &[f64], n: usize, r: usize, c: usize) -> bool {
    let centre = m[r * n + c] as f32 as f64;
    let up = if r == 0 { n - 1 } else { r - 1 };
    let down = if r + 1 == n { 0 } else { r + 1 };
    let left = if c == 0 { n - 1 } else { c - 1 };
    let right = if c + 1 == n { 0 } else { c + 1 };
    for rr in [up, r, down] {
        for cc in [left, c, right] {
            if (rr != r || cc != c) && centre <= m[rr * n + cc] {
                return false;
            }
        }
    }
    true
}

/// All peaks as (row, column, value), row-major order.
pub fn peaks(m: &[f64], n: usize) -> Vec<(usize, usize, f64)> {
    let mut out = Vec::new();
    for r in 0..n {
        for c in 0..n {
            if is_peak(m, n, r, c) {
                out.push((r, c, m[r * n + c]));
            }
        }
    }
    out
}

/// Differential peak counts dN/dν: each peak in `[t_k σ, t_{k+1} σ)` adds 1/Δt_k.
pub fn peak_counts(m: &[f64], n: usize, thresholds: &[f64], sigma: f64) -> Vec<f64> {
    let edges: Vec<f64> = thresholds.iter().map(|t| t * sigma).collect();
    let mut counts = vec![0u64; thresholds.len() - 1];
    for r in 0..n {
        for c in 0..n {
            let v = m[r * n + c];
            if let Some(k) = half_open_bin(&edges, v) {
                if is_peak(m, n, r, c) {
                    counts[k] += 1;
                }
            }
        }
    }
    counts
        .iter()
        .enumerate()
        .map(|(k, &c)| c as f64 / (thresholds[k + 1] - thresholds[k]))
        .collect()
}
