//! The cosmology every domain of simemu shares: the flat ΛCDM background
//! (E(z), comoving distance, Ω_m(z)), linear growth, the Eisenstein & Hu (1998)
//! no-wiggle linear power spectrum normalised to σ_8, and Takahashi et al. (2012)
//! halofit. Domain plugins build on it (weak-lensing spectra, density fields);
//! it knows no observable.
//!
//! Units: k in h/Mpc, distances in Mpc/h, P(k) in (Mpc/h)³.

use std::f64::consts::PI;

pub mod params;

/// Hubble distance c/H0 in Mpc/h.
pub const HUBBLE_DISTANCE: f64 = 299_792.458 / 100.0;
/// CMB temperature used by the transfer function (K).
pub const T_CMB: f64 = 2.7255;

const LNK_MIN: f64 = -11.512925464970229; // ln 1e-5
const LNK_MAX: f64 = 6.907755278982137; // ln 1e3
const LNK_POINTS: usize = 4001;

/// Composite Simpson rule of `f` over `[a, b]` with `n` (even) intervals.
pub fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    let n = n + n % 2;
    let h = (b - a) / n as f64;
    let mut s = f(a) + f(b);
    for i in 1..n {
        let w = if i % 2 == 1 { 4.0 } else { 2.0 };
        s += w * f(a + i as f64 * h);
    }
    s * h / 3.0
}

/// Simpson weights for samples on a uniform grid of `n` (odd) points with step `h`.
fn simpson_weights(n: usize, h: f64) -> Vec<f64> {
    assert!(n % 2 == 1 && n >= 3);
    (0..n)
        .map(|i| {
            let w = if i == 0 || i == n - 1 {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            w * h / 3.0
        })
        .collect()
}

/// Cosmological parameters of a flat ΛCDM model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosmoParams {
    pub omega_m: f64,
    pub omega_b: f64,
    pub h: f64,
    pub n_s: f64,
    pub sigma_8: f64,
}

/// A cosmology with its linear power spectrum normalised.
#[derive(Clone, Debug)]
pub struct Cosmology {
    pub p: CosmoParams,
    /// Amplitude A in P_lin(k, 0) = A k^{n_s} T(k)².
    pub amplitude: f64,
    growth_norm: f64,
    /// Δ²_L(k, z=0) on the ln k grid, for halofit's spectral integrals.
    lnk: Vec<f64>,
    delta2_lin0: Vec<f64>,
    lnk_weights: Vec<f64>,
}

impl Cosmology {
    pub fn new(p: CosmoParams) -> Self {
        let step = (LNK_MAX - LNK_MIN) / (LNK_POINTS - 1) as f64;
        let lnk: Vec<f64> = (0..LNK_POINTS).map(|i| LNK_MIN + i as f64 * step).collect();
        let mut c = Cosmology {
            p,
            amplitude: 1.0,
            growth_norm: 1.0,
            delta2_lin0: Vec::new(),
            lnk_weights: simpson_weights(LNK_POINTS, step),
            lnk,
        };
        c.growth_norm = c.growth_unnormalised(1.0);
        let s8 = c.sigma_r(8.0);
        c.amplitude = p.sigma_8 * p.sigma_8 / (s8 * s8);
        c.delta2_lin0 = c
            .lnk
            .iter()
            .map(|&lk| {
                let k = lk.exp();
                k * k * k * c.p_lin(k, 0.0) / (2.0 * PI * PI)
            })
            .collect();
        c
    }

    pub fn omega_lambda(&self) -> f64 {
        1.0 - self.p.omega_m
    }

    /// E(z) = H(z)/H0.
    pub fn e(&self, z: f64) -> f64 {
        (self.p.omega_m * (1.0 + z).powi(3) + self.omega_lambda()).sqrt()
    }

    /// Comoving distance χ(z) in Mpc/h.
    pub fn chi(&self, z: f64) -> f64 {
        if z <= 0.0 {
            return 0.0;
        }
        let n = ((z * 2000.0) as usize).max(200);
        HUBBLE_DISTANCE * simpson(|x| 1.0 / self.e(x), 0.0, z, n)
    }

    /// Ω_m(z).
    pub fn omega_m_z(&self, z: f64) -> f64 {
        self.p.omega_m * (1.0 + z).powi(3) / self.e(z).powi(2)
    }

    /// Unnormalised growth (5Ω_m/2) E(a) ∫₀ᵃ da'/(a'E(a'))³, exact for ΛCDM.
    fn growth_unnormalised(&self, a: f64) -> f64 {
        let om = self.p.omega_m;
        let ol = self.omega_lambda();
        let ea = |a: f64| (om / (a * a * a) + ol).sqrt();
        // Substituting a' = u² removes the a'^{3/2} behaviour at the origin.
        let integrand = |u: f64| {
            if u == 0.0 {
                return 0.0;
            }
            let x = u * u;
            2.0 * u / (x * ea(x)).powi(3)
        };
        let i = simpson(integrand, 0.0, a.sqrt(), 4000);
        2.5 * om * ea(a) * i
    }

    /// Linear growth factor D(z), D(0) = 1.
    pub fn growth(&self, z: f64) -> f64 {
        self.growth_unnormalised(1.0 / (1.0 + z)) / self.growth_norm
    }

    /// Eisenstein & Hu (1998) no-wiggle transfer function (eqs. 26, 28–31).
    pub fn transfer(&self, k: f64) -> f64 {
        let CosmoParams {
            omega_m,
            omega_b,
            h,
            ..
        } = self.p;
        let wm = omega_m * h * h;
        let wb = omega_b * h * h;
        let fb = omega_b / omega_m;
        let theta = T_CMB / 2.7;
        let sound = 44.5 * (9.83 / wm).ln() / (1.0 + 10.0 * wb.powf(0.75)).sqrt();
        let alpha = 1.0 - 0.328 * (431.0 * wm).ln() * fb + 0.38 * (22.3 * wm).ln() * fb * fb;
        let ks = k * h * sound;
        let gamma_eff = omega_m * h * (alpha + (1.0 - alpha) / (1.0 + (0.43 * ks).powi(4)));
        let q = k * theta * theta / gamma_eff;
        let l0 = (2.0 * std::f64::consts::E + 1.8 * q).ln();
        let c0 = 14.2 + 731.0 / (1.0 + 62.5 * q);
        l0 / (l0 + c0 * q * q)
    }

    /// Linear matter power spectrum P_lin(k, z).
    pub fn p_lin(&self, k: f64, z: f64) -> f64 {
        let t = self.transfer(k);
        let d = if z == 0.0 { 1.0 } else { self.growth(z) };
        self.amplitude * k.powf(self.p.n_s) * t * t * d * d
    }

    /// RMS linear fluctuation in a top-hat sphere of radius `r` (Mpc/h) at z = 0.
    pub fn sigma_r(&self, r: f64) -> f64 {
        let f = |lnk: f64| {
            let k = lnk.exp();
            let x = k * r;
            let w = if x < 1e-3 {
                1.0 - x * x / 10.0
            } else {
                3.0 * (x.sin() - x * x.cos()) / (x * x * x)
            };
            k * k * k * self.p_lin(k, 0.0) * w * w / (2.0 * PI * PI)
        };
        simpson(f, LNK_MIN, LNK_MAX, 20000).sqrt()
    }

    /// Takahashi halofit scale parameters (k_σ, n_eff, C) at growth factor `d`.
    pub fn halofit_params(&self, d: f64) -> (f64, f64, f64) {
        let d2 = d * d;
        let sigma2 = |r: f64| -> f64 {
            self.lnk
                .iter()
                .zip(&self.delta2_lin0)
                .zip(&self.lnk_weights)
                .map(|((lk, dl), w)| {
                    let y = lk.exp() * r;
                    w * dl * (-y * y).exp()
                })
                .sum::<f64>()
                * d2
        };
        // σ²(R) decreases monotonically with R: solve ln σ²(ln R) = 0 by bisection down
        // to a narrow bracket, then the Illinois variant of regula falsi (smooth, so a
        // handful of evaluations reach 1e-13 instead of 100 bisections).
        let f = |lr: f64| sigma2(lr.exp()).ln();
        let (mut lo, mut hi) = ((1e-4f64).ln(), (1e2f64).ln());
        let (mut flo, mut fhi) = (f(lo), f(hi));
        while hi - lo > 0.5 {
            let mid = 0.5 * (lo + hi);
            let fm = f(mid);
            if fm > 0.0 {
                (lo, flo) = (mid, fm);
            } else {
                (hi, fhi) = (mid, fm);
            }
        }
        let mut side = 0;
        for _ in 0..60 {
            let x = (lo * fhi - hi * flo) / (fhi - flo);
            let fx = f(x);
            if fx == 0.0 || (hi - lo).abs() < 1e-13 {
                lo = x;
                hi = x;
                break;
            }
            if fx > 0.0 {
                (lo, flo) = (x, fx);
                if side == -1 {
                    fhi *= 0.5;
                }
                side = -1;
            } else {
                (hi, fhi) = (x, fx);
                if side == 1 {
                    flo *= 0.5;
                }
                side = 1;
            }
        }
        let r = (0.5 * (lo + hi)).exp();
        let (mut s0, mut s1, mut s2) = (0.0, 0.0, 0.0);
        for ((lk, dl), w) in self
            .lnk
            .iter()
            .zip(&self.delta2_lin0)
            .zip(&self.lnk_weights)
        {
            let y2 = (lk.exp() * r).powi(2);
            let g = w * dl * d2 * (-y2).exp();
            s0 += g;
            s1 += g * 2.0 * y2;
            s2 += g * 4.0 * (y2 - y2 * y2);
        }
        let d1 = s1 / s0;
        let neff = d1 - 3.0;
        let c = d1 * d1 + s2 / s0;
        (1.0 / r, neff, c)
    }

    /// Non-linear P(k, z) by Takahashi et al. (2012) halofit (w = −1).
    pub fn p_nl(&self, k: f64, z: f64) -> f64 {
        let d = self.growth(z);
        let hp = HalofitPoint::new(self, z, d);
        hp.p_nl(self, k)
    }
}

/// Halofit coefficients at one redshift.
pub struct HalofitPoint {
    d: f64,
    k_sigma: f64,
    an: f64,
    bn: f64,
    cn: f64,
    gn: f64,
    aln: f64,
    ben: f64,
    nun: f64,
    f1: f64,
    f2: f64,
    f3: f64,
}

impl HalofitPoint {
    pub fn new(c: &Cosmology, z: f64, d: f64) -> Self {
        let (k_sigma, n, cc) = c.halofit_params(d);
        let om = c.omega_m_z(z);
        HalofitPoint {
            d,
            k_sigma,
            an: 10f64.powf(
                1.5222 + 2.8553 * n + 2.3706 * n * n + 0.9903 * n.powi(3) + 0.2250 * n.powi(4)
                    - 0.6038 * cc,
            ),
            bn: 10f64.powf(-0.5642 + 0.5864 * n + 0.5716 * n * n - 1.5474 * cc),
            cn: 10f64.powf(0.3698 + 2.0404 * n + 0.8161 * n * n + 0.5869 * cc),
            gn: 0.1971 - 0.0843 * n + 0.8460 * cc,
            aln: (6.0835 + 1.3373 * n - 0.1959 * n * n - 5.5274 * cc).abs(),
            ben: 2.0379 - 0.7354 * n + 0.3157 * n * n + 1.2490 * n.powi(3) + 0.3980 * n.powi(4)
                - 0.1682 * cc,
            nun: 10f64.powf(5.2105 + 3.6902 * n),
            f1: om.powf(-0.0307),
            f2: om.powf(-0.0585),
            f3: om.powf(0.0743),
        }
    }

    pub fn p_nl(&self, c: &Cosmology, k: f64) -> f64 {
        let t = c.transfer(k);
        let p_lin = c.amplitude * k.powf(c.p.n_s) * t * t * self.d * self.d;
        let d2l = k * k * k * p_lin / (2.0 * PI * PI);
        let y = k / self.k_sigma;
        let fy = y / 4.0 + y * y / 8.0;
        let d2q = d2l * (1.0 + d2l).powf(self.ben) / (1.0 + self.aln * d2l) * (-fy).exp();
        let d2h = self.an * y.powf(3.0 * self.f1)
            / (1.0 + self.bn * y.powf(self.f2) + (self.cn * self.f3 * y).powf(3.0 - self.gn))
            / (1.0 + self.nun / (y * y));
        (d2q + d2h) * 2.0 * PI * PI / (k * k * k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Cosmology {
        Cosmology::new(CosmoParams {
            omega_m: 0.3,
            omega_b: 0.05,
            h: 0.7,
            n_s: 0.96,
            sigma_8: 0.8,
        })
    }

    fn close(a: f64, b: f64, rtol: f64) -> bool {
        ((a - b) / b).abs() <= rtol
    }

    // Reference values: ../shared/reference/plugins-and-simulators.md B1 (numpy/scipy
    // prototype, itself within 0.1% of pyccl 3.3.6 with the same ingredients). They are
    // quoted to 3–4 significant figures, so tolerances are the quoted rounding (≤0.5%).
    #[test]
    fn background_growth_transfer() {
        let c = reference();
        assert!(close(c.amplitude, 2.987e6, 1e-3), "A = {}", c.amplitude);
        assert!(close(c.transfer(0.01), 0.7861, 2e-4));
        assert!(close(c.transfer(0.1), 0.1312, 5e-4));
        assert!(close(c.transfer(1.0), 4.553e-3, 3e-4));
        assert!(close(c.p_lin(0.01, 0.0), 2.219e4, 5e-4));
        assert!(
            close(c.p_lin(0.1, 0.0), 5638.0, 2e-4),
            "{}",
            c.p_lin(0.1, 0.0)
        );
        assert!(close(c.p_lin(1.0, 0.0), 61.93, 2e-4));
        assert!(close(c.chi(1.0), 2312.7, 1e-4), "{}", c.chi(1.0));
        assert!(close(c.growth(0.5), 0.7732, 2e-4));
        assert!(close(c.growth(1.0), 0.6118, 2e-4));
        assert!(close(c.sigma_r(8.0), 0.8, 1e-9));
    }

    #[test]
    fn halofit_parameters_and_power() {
        let c = reference();
        for (z, ks, n, cc) in [
            (0.0, 0.3755, -1.777, 0.341),
            (0.5, 0.5870, -1.916, 0.284),
            (1.0, 0.9278, -2.034, 0.235),
        ] {
            let (a, b, d) = c.halofit_params(c.growth(z));
            assert!(close(a, ks, 5e-4), "k_sigma({z}) = {a}");
            assert!((b - n).abs() < 1.5e-3, "n_eff({z}) = {b}");
            assert!((d - cc).abs() < 1.5e-3, "C({z}) = {d}");
        }
        assert!(close(c.p_nl(1.0, 0.0), 381.0, 2e-3), "{}", c.p_nl(1.0, 0.0));
    }
}
