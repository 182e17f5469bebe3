//! The bispectrum of a square map in the equilateral or folded configuration,
//! as lenstools 1.2 computes it (`ConvergenceMap.bispectrum`, `azimuth.c`).
//!
//! For every mode ℓ₁ of the unnormalised rfft2 (rows: complex frequencies
//! k_x = i for i < N/2, i − N above; columns: k_y = j ≥ 0) with |ℓ₁| below the
//! last edge, a second leg ℓ₂ is made from it — equilateral: ℓ₁ turned by 120°,
//! each component truncated toward zero (modes past 120° from the k_x axis
//! skipped); folded: −⌊r·ℓ₁⌉ (truncated) for the ratio r — and the third closes
//! the triangle, ℓ₃ = −ℓ₁ − ℓ₂. Legs with k_y < 0 are read as the conjugate of
//! their mirror; a leg with k_y ≥ N/2 + 1 or |k_x| ≥ N/2 + 1 is dropped (lenstools
//! bounds k_x by the half-plane's width too). The bin of ℓ₁, `(e_k, e_{k+1}]`,
//! collects Re(F(ℓ₁)F(ℓ₂)F(ℓ₃)); each bin is its mean times θ_rad⁴/N⁶, empty
//! bins 0.

use rustfft::num_complex::Complex64;

use crate::power::Rfft2;

/// How the second leg follows from the first.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Configuration {
    Equilateral,
    /// ℓ₂ = −ratio·ℓ₁, for 0 < ratio < 1.
    Folded {
        ratio: f64,
    },
}

impl Configuration {
    /// The second leg of the triangle on (kx, ky), or none where lenstools
    /// skips the mode.
    fn second_leg(self, kx: i64, ky: i64) -> Option<(i64, i64)> {
        match self {
            Configuration::Equilateral => {
                const S120: f64 = 0.8660254037844386;
                const C120: f64 = -0.5;
                const T120: f64 = -1.7320508075688772;
                let (x, y) = (kx as f64, ky as f64);
                if kx < 0 && y < x * T120 {
                    return None;
                }
                // C's (int) cast truncates toward zero, as `as` does.
                Some(((C120 * x - S120 * y) as i64, (S120 * x + C120 * y) as i64))
            }
            Configuration::Folded { ratio } => {
                Some((-((ratio * kx as f64) as i64), -((ratio * ky as f64) as i64)))
            }
        }
    }
}

/// One leg: its index in the column-major rfft2 spectrum and whether it is read
/// conjugated.
#[derive(Clone, Copy, Debug)]
struct Leg {
    index: usize,
    conjugate: bool,
}

/// A bispectrum estimator for one map size, angle, binning and configuration:
/// the triangles of every bin precomputed, the FFT plans made once.
pub struct Bispectrum {
    /// Per triangle, in lenstools' loop order: (bin, ℓ₁'s index, ℓ₂, ℓ₃).
    triangles: Vec<(usize, usize, Leg, Leg)>,
    triangles_per_bin: Vec<usize>,
    norm: f64,
    rfft2: Rfft2,
}

impl Bispectrum {
    pub fn new(n: usize, angle_deg: f64, edges: &[f64], configuration: Configuration) -> Self {
        let half = n / 2 + 1;
        let lpix = 360.0 / angle_deg;
        let bins = edges.len().saturating_sub(1);
        let last = edges.last().copied().unwrap_or(0.0);
        // A leg's place in the rfft2 array, as azimuth.c reads it.
        let leg = |mut kx: i64, mut ky: i64| -> Option<Leg> {
            let conjugate = ky < 0;
            if conjugate {
                kx = -kx;
                ky = -ky;
            }
            let bound = half as i64;
            if ky >= bound || kx <= -bound || kx >= bound {
                return None;
            }
            let row = if kx < 0 { n as i64 + kx } else { kx };
            Some(Leg {
                index: ky as usize * n + row as usize,
                conjugate,
            })
        };
        let mut triangles = Vec::new();
        let mut triangles_per_bin = vec![0; bins];
        for i in 0..n {
            let kx1 = if i < n >> 1 {
                i as i64
            } else {
                i as i64 - n as i64
            };
            for j in 0..half {
                let ky1 = j as i64;
                let ell = ((kx1 * kx1 + ky1 * ky1) as f64).sqrt() * lpix;
                if ell >= last {
                    continue;
                }
                let Some((kx2, ky2)) = configuration.second_leg(kx1, ky1) else {
                    continue;
                };
                let (Some(second), Some(third)) = (leg(kx2, ky2), leg(-kx1 - kx2, -ky1 - ky2))
                else {
                    continue;
                };
                for k in 0..bins {
                    if ell > edges[k] && ell <= edges[k + 1] {
                        triangles.push((k, j * n + i, second, third));
                        triangles_per_bin[k] += 1;
                    }
                }
            }
        }
        let angle_rad = angle_deg * std::f64::consts::PI / 180.0;
        Bispectrum {
            triangles,
            triangles_per_bin,
            norm: angle_rad.powi(4) / (n as f64).powi(6),
            rfft2: Rfft2::new(n),
        }
    }

    /// Triangles averaged in each bin.
    pub fn triangles_per_bin(&self) -> &[usize] {
        &self.triangles_per_bin
    }

    /// The binned bispectrum of a row-major N×N map (read in place, see
    /// [`Rfft2::forward`]), or the index of its first NaN or infinite pixel.
    pub fn compute<T: Copy + Into<f64>>(&self, map: &[T]) -> Result<Vec<f64>, usize> {
        let (values, all_finite) = self.rfft2.forward(map, |ft| self.average(ft));
        if all_finite {
            Ok(values)
        } else {
            Err(map
                .iter()
                .position(|&x| !x.into().is_finite())
                .expect("a non-finite pixel was seen"))
        }
    }

    /// Each bin's mean of Re(F(ℓ₁)F(ℓ₂)F(ℓ₃)), normalised.
    fn average(&self, ft: &[Complex64]) -> Vec<f64> {
        let mut sums = vec![0.0; self.triangles_per_bin.len()];
        let read = |leg: Leg| {
            let z = ft[leg.index];
            if leg.conjugate {
                z.conj()
            } else {
                z
            }
        };
        for &(bin, first, second, third) in &self.triangles {
            let (b1, b2, b3) = (ft[first], read(second), read(third));
            // Re(b1·b2·b3), term by term as azimuth.c sums it.
            sums[bin] += b1.re * b2.re * b3.re
                - b1.re * b2.im * b3.im
                - b1.im * b2.re * b3.im
                - b1.im * b2.im * b3.re;
        }
        for (s, &h) in sums.iter_mut().zip(&self.triangles_per_bin) {
            *s = if h == 0 {
                0.0
            } else {
                self.norm * *s / h as f64
            };
        }
        sums
    }
}
