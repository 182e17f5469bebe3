//! Two-sample Kolmogorov–Smirnov test reproducing `scipy.stats.ks_2samp` (two-sided,
//! `method='auto'`, scipy 1.17): the exact lattice-path p-value when
//! max(n1, n2) ≤ 10 000 (falling back to the asymptotic one when the exact computation
//! leaves [0, 1], as it does for large equal samples with small D), otherwise
//! `kstwo.sf(D, round(n1·n2/(n1+n2)))`, the finite-n one-sample Kolmogorov
//! distribution of Simard & L'Ecuyer (2011) as scipy evaluates it.

/// Result of a two-sample KS test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KsResult {
    /// sup |F1 − F2|.
    pub statistic: f64,
    pub pvalue: f64,
    /// Whether the p-value came from the exact lattice-path computation.
    pub exact: bool,
}

/// scipy's threshold between the exact and the asymptotic method.
pub const MAX_EXACT_N: usize = 10_000;

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The KS statistic of two *sorted* samples, as scipy computes it (ECDF differences
/// evaluated at every pooled value with `searchsorted(side='right')`).
pub fn statistic_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let (mut max_s, mut min_s) = (f64::NEG_INFINITY, f64::INFINITY);
    // Visit distinct values in increasing order; at each, advance past all equal values
    // in both samples (side='right').
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => unreachable!(),
        };
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        let d = i as f64 / n1 - j as f64 / n2;
        max_s = max_s.max(d);
        min_s = min_s.min(d);
    }
    let min_s = (-min_s).clamp(0.0, 1.0);
    if min_s > max_s {
        min_s
    } else {
        max_s
    }
}

/// Two-sided two-sample KS test with scipy's `method='auto'`.
///
/// Panics if either sample is empty or holds NaN (callers check their data first).
pub fn ks_2samp(data1: &[f64], data2: &[f64]) -> KsResult {
    assert!(
        !data1.is_empty() && !data2.is_empty(),
        "ks_2samp needs non-empty samples"
    );
    let mut a = data1.to_vec();
    let mut b = data2.to_vec();
    a.sort_by(|x, y| x.partial_cmp(y).expect("NaN in KS sample"));
    b.sort_by(|x, y| x.partial_cmp(y).expect("NaN in KS sample"));
    ks_2samp_sorted(&a, &b)
}

/// [`ks_2samp`] on samples already sorted in increasing order.
pub fn ks_2samp_sorted(a: &[f64], b: &[f64]) -> KsResult {
    let (n1, n2) = (a.len(), b.len());
    let mut d = statistic_sorted(a, b);
    if n1.max(n2) <= MAX_EXACT_N {
        let g = gcd(n1, n2);
        let lcm = (n1 / g) as f64 * n2 as f64;
        let h = (d * lcm).round_ties_even() as usize;
        d = h as f64 / lcm;
        if h == 0 {
            return KsResult {
                statistic: d,
                pvalue: 1.0,
                exact: true,
            };
        }
        let p = if n1 == n2 {
            prob_outside_square(n1, h)
        } else {
            outer_prob_inside(n1, n2, g, h)
        };
        if p.is_finite() && (0.0..=1.0).contains(&p) {
            return KsResult {
                statistic: d,
                pvalue: p,
                exact: true,
            };
        }
    }
    let (m, n) = if n1 >= n2 {
        (n1 as f64, n2 as f64)
    } else {
        (n2 as f64, n1 as f64)
    };
    let en = m * n / (m + n);
    KsResult {
        statistic: d,
        pvalue: kstwo_sf(d, en.round_ties_even()).clamp(0.0, 1.0),
        exact: false,
    }
}

/// Probability that a path of the equal-size lattice leaves the band |x − y| < h
/// (alternating series in Horner form, as scipy evaluates it).
fn prob_outside_square(n: usize, h: usize) -> f64 {
    let nf = n as f64;
    let mut p = 0.0;
    let mut k = (n / h) as i64;
    while k >= 0 {
        let kh = (k as usize * h) as f64;
        let mut p1 = 1.0;
        for j in 0..h {
            let j = j as f64;
            p1 = (nf - kh - j) * p1 / (nf + kh + j + 1.0);
        }
        p = p1 * (1.0 - p);
        k -= 1;
    }
    2.0 * p
}

/// Fraction of lattice paths from (0,0) to (m,n) that leave |ng·x − mg·y| < h, by a
/// column recursion on the normalised counts (scipy's `_compute_outer_prob_inside_method`).
fn outer_prob_inside(m: usize, n: usize, g: usize, h: usize) -> f64 {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (mg, ng) = ((m / g) as f64, (n / g) as f64);
    let hf = h as f64;
    let mut minj = 0usize;
    let mut maxj = ((hf / mg).ceil() as usize).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1);
    // a[j − minj] = fraction of paths to (i, j) that have left the band; points
    // outside the band count as 1.
    let mut a = vec![1.0f64; len_a.max(curlen)];
    for v in a.iter_mut().take(maxj).skip(minj) {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        let fi = i as f64;
        minj = (((ng * fi - hf) / mg).floor() as i64 + 1).max(0) as usize;
        minj = minj.min(n);
        maxj = (((ng * fi + hf) / mg).ceil() as usize).min(n + 1);
        if maxj <= minj {
            return 1.0;
        }
        if a.len() < maxj - minj + lastlen {
            a.resize(maxj - minj + lastlen, 1.0);
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..maxj - minj {
            let j = (jj + minj) as f64;
            val = (a[jj + minj - lastminj] * fi + val * j) / (fi + j);
            a[jj] = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            for v in &mut a[curlen..lastlen] {
                *v = 1.0;
            }
        }
    }
    a[maxj - minj - 1]
}

const PI2: f64 = std::f64::consts::PI * std::f64::consts::PI;
const SQRT_2PI: f64 = 2.5066282746310002;
const LOG_2PI: f64 = 1.8378770664093453;
// scipy's coefficients, kept digit for digit as published.
#[allow(clippy::excessive_precision)]
const STIRLING: [f64; 8] = [
    -2.955065359477124183e-2,
    6.4102564102564102564e-3,
    -1.9175269175269175269e-3,
    8.4175084175084175084e-4,
    -5.952380952380952381e-4,
    7.9365079365079365079e-4,
    -2.7777777777777777778e-3,
    8.3333333333333333333e-2,
];

/// log(n!/nⁿ) by Stirling's series with n·log n removed up front.
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    let rn = 1.0 / n;
    let x = rn / n;
    let poly = STIRLING.iter().fold(0.0, |acc, c| acc * x + c);
    n.ln() / 2.0 - n + LOG_2PI / 2.0 + rn * poly
}

/// Survival function of the two-sided one-sample KS statistic D_n (scipy `kstwo.sf`).
pub fn kstwo_sf(x: f64, n: f64) -> f64 {
    if x >= 1.0 {
        return 0.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let t = n * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return 1.0;
        }
        let prob = if n <= 140.0 {
            (1..=n as usize)
                .map(|i| i as f64 * (1.0 / n) * (2.0 * t - 1.0))
                .product()
        } else {
            (log_nfactorial_div_n_pow_n(n) + n * (2.0 * t - 1.0).ln()).exp()
        };
        return (1.0 - prob).clamp(0.0, 1.0);
    }
    if t >= n - 1.0 {
        return (2.0 * (1.0 - x).powf(n)).clamp(0.0, 1.0);
    }
    if x >= 0.5 {
        return (2.0 * smirnov(n as u64, x)).clamp(0.0, 1.0);
    }
    let nxx = t * x;
    if n <= 140.0 {
        // Reached only when an exact two-sample computation of small samples fails.
        // scipy: Durbin matrix (≤ 0.754693), Pomeranz (≤ 4) — both exact, so the
        // exact Durbin matrix serves for both — and the Miller approximation above.
        if nxx <= 4.0 {
            return (1.0 - durbin_cdf(n as usize, x)).clamp(0.0, 1.0);
        }
        return (2.0 * smirnov(n as u64, x)).clamp(0.0, 1.0);
    }
    if nxx >= 370.0 {
        return 0.0;
    }
    if nxx >= 2.2 {
        return (2.0 * smirnov(n as u64, x)).clamp(0.0, 1.0);
    }
    let cdf = if n <= 100_000.0 && n * x.powf(1.5) <= 1.4 {
        durbin_cdf(n as usize, x)
    } else {
        pelz_good_cdf(n, x)
    };
    (1.0 - cdf).clamp(0.0, 1.0)
}

/// Pelz–Good asymptotic CDF of D_n (Li-Chien/Korolyuk series in Jacobi-theta form),
/// evaluated term by term as scipy's `_kolmogn_PelzGood`.
fn pelz_good_cdf(n: f64, x: f64) -> f64 {
    let z = n.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let qlog = -PI2 / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let pi4 = PI2 * PI2;
    let pi6 = pi4 * PI2;
    let k1a = -z2;
    let k1b = PI2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * PI2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = PI2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut k = [0.0f64; 4];
    let maxk = (16.0 * z / std::f64::consts::PI).ceil() as i64;
    for kk in (1..=maxk).rev() {
        let m = (2 * kk - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf((8 * kk) as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for i in 0..4 {
            k[i] = k[i] * qpower + coeffs[i];
        }
    }
    let div = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for i in 0..4 {
        k[i] = k[i] * q * SQRT_2PI / div[i];
    }
    let q2 = (-PI2 / 2.0 / z2).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let (mut k2extra, mut k3extra) = (0.0, 0.0);
    for kk in (1..=maxk).rev() {
        let kf = kk as f64;
        let ks2 = kf * kf;
        let qp = q2.powf(ks2);
        let kspi = std::f64::consts::PI * kf;
        k2extra += ks2 * qp;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ks2 * qp;
    }
    k[2] += k2extra * (PI2 * SQRT_2PI / (-36.0 * z3));
    k[3] += k3extra * (PI2 * SQRT_2PI / (216.0 * z6));
    (0..4).map(|i| k[i] / n.powf(i as f64 / 2.0)).sum()
}

/// Exact one-sided Smirnov survival function P(D⁺_n ≥ x) by the Birnbaum–Tingey sum
/// (all terms positive: summed in log space with a running maximum).
pub fn smirnov(n: u64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x >= 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let jmax = (nf * (1.0 - x)).floor() as u64;
    let mut log_binom = 0.0; // log C(n, j)
    let mut terms = Vec::with_capacity(jmax as usize + 1);
    for j in 0..=jmax {
        if j > 0 {
            log_binom += ((n - j + 1) as f64).ln() - (j as f64).ln();
        }
        let jf = j as f64;
        let a = 1.0 - x - jf / nf;
        let b = x + jf / nf;
        let la = if n - j == 0 {
            0.0
        } else if a <= 0.0 {
            continue;
        } else {
            (nf - jf) * a.ln()
        };
        terms.push(log_binom + la + (jf - 1.0) * b.ln());
    }
    if terms.is_empty() {
        return 0.0;
    }
    let max = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = terms.iter().map(|t| (t - max).exp()).sum();
    x * max.exp() * sum
}

/// CDF of D_n by the Durbin (1973) matrix method (Marsaglia, Tsang & Wang 2003):
/// P(D_n < d) = n!/nⁿ · (Hⁿ)_{kk}, with the matrix power renormalised as it grows.
fn durbin_cdf(n: usize, d: f64) -> f64 {
    let nd = n as f64 * d;
    let k = nd.floor() as usize + 1;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut hm = vec![0.0f64; m * m];
    for i in 0..m {
        for j in 0..m {
            if i + 1 >= j {
                hm[i * m + j] = 1.0;
            }
        }
    }
    for i in 0..m {
        hm[i * m] -= h.powi(i as i32 + 1);
        hm[(m - 1) * m + i] -= h.powi((m - i) as i32);
    }
    if 2.0 * h - 1.0 > 0.0 {
        hm[(m - 1) * m] += (2.0 * h - 1.0).powi(m as i32);
    }
    for i in 0..m {
        for j in 0..=i.min(m - 1) {
            let f: f64 = (1..=(i + 1 - j)).map(|g| g as f64).product();
            hm[i * m + j] /= f;
        }
    }
    let matmul = |a: &[f64], b: &[f64]| {
        let mut c = vec![0.0; m * m];
        for i in 0..m {
            for l in 0..m {
                let x = a[i * m + l];
                if x != 0.0 {
                    for j in 0..m {
                        c[i * m + j] += x * b[l * m + j];
                    }
                }
            }
        }
        c
    };
    // Keep entries near 1: divide by the largest magnitude and remember its log.
    let renorm = |a: &mut Vec<f64>| -> f64 {
        let mx = a.iter().fold(0.0f64, |acc, v| acc.max(v.abs()));
        if mx > 0.0 {
            for v in a.iter_mut() {
                *v /= mx;
            }
            mx.ln()
        } else {
            0.0
        }
    };
    let mut result = vec![0.0; m * m];
    for i in 0..m {
        result[i * m + i] = 1.0;
    }
    let (mut log_result, mut log_base) = (0.0, 0.0);
    let mut base = hm;
    let mut e = n;
    while e > 0 {
        if e & 1 == 1 {
            result = matmul(&result, &base);
            log_result += log_base + renorm(&mut result);
        }
        e >>= 1;
        if e > 0 {
            base = matmul(&base, &base);
            log_base = 2.0 * log_base + renorm(&mut base);
        }
    }
    let v = result[(k - 1) * m + (k - 1)];
    if v <= 0.0 {
        return 0.0;
    }
    let log_nf_nn: f64 = (1..=n).map(|i| (i as f64 / n as f64).ln()).sum();
    (v.ln() + log_result + log_nf_nn).exp()
}
