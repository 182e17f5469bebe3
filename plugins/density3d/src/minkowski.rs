//! `minkowski-3d`: the four Minkowski functionals of the excursion sets
//! K_ν = {u ≥ ν} of a periodic field u, per unit volume, by the Koenderink
//! invariants of Schmalzing & Buchert (1997, ApJ 482 L1): every functional but
//! the volume is an integral over the level surface ∂K_ν, written as a volume
//! integral with δ_D(u − ν)|∇u| and the surface's curvatures from the first and
//! second derivatives of u. In the normalisation of Schmalzing & Buchert,
//!
//! - V0 = |K_ν| / V, the volume fraction;
//! - V1 = S / (6V), S the area of ∂K_ν;
//! - V2 = ∫ H dS / (3πV), H = (κ₁ + κ₂)/2 the mean curvature (> 0 where K_ν
//!   is convex);
//! - V3 = ∫ K dS / (4πV) = χ(K_ν) / V, K = κ₁κ₂ the Gaussian curvature, χ the
//!   Euler characteristic (Gauss–Bonnet).
//!
//! Lengths are in Mpc/h, so V1, V2, V3 are in (h/Mpc)¹, ², ³. Like lenstools'
//! 2D functionals, V0 is measured at the midpoint of each threshold bin
//! [ν_b, ν_{b+1}) and V1–V3 with δ_D replaced by the bin's indicator over its
//! width: they are the mean of the surface functional over the bin's levels.
//! The derivatives are spectral (exact for the field's trigonometric
//! interpolant), after the optional Gaussian smoothing and with the Nyquist
//! planes removed, whose derivative a real field does not define. For a
//! Gaussian field the expectation of every value is then known in closed form
//! (Tomita 1986; the Gaussian kinematic formula), which the tests check.

use std::f64::consts::PI;

use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use simemu_core::bins::{midpoints, BinFinder};
use simemu_core::{
    ArrayView, Error, FieldView, Result, Sample, StatContext, StatValues, Statistic,
};

use crate::fft3::{frequency, RealFft3};
use crate::levels::{filter_half, Levels};

pub const NAME: &str = "minkowski-3d";

/// The estimator for one grid, box and set of thresholds.
pub struct Minkowski3d {
    field: String,
    n: usize,
    box_mpc_h: f64,
    thresholds: Vec<f64>,
    bins: BinFinder,
    x: Vec<f64>,
    smoothing_mpc_h: Option<f64>,
    fft: RealFft3,
    /// Smoothing kernel / N³ by |k|² (units of k_F²).
    kernel: Vec<f64>,
}

/// Sums over the cells of one plane by threshold slot (0 below the first
/// edge, b + 1 in bin b, the last at or above the last edge): cells, cells in
/// the upper half of their bin, and the V1–V3 integrands.
struct PlaneSums {
    cells: Vec<u64>,
    upper_half: Vec<u64>,
    surface: [Vec<f64>; 3],
}

impl Minkowski3d {
    pub fn new(
        field: &str,
        n: usize,
        box_mpc_h: f64,
        thresholds: Vec<f64>,
        smoothing_mpc_h: Option<f64>,
    ) -> Self {
        let levels = Levels {
            n,
            thresholds,
            smoothing_mpc_h,
            box_mpc_h: Some(box_mpc_h),
        };
        let kernel = levels.kernel_by_norm2(1.0 / (n * n * n) as f64);
        Minkowski3d {
            field: field.into(),
            n,
            box_mpc_h,
            x: midpoints(&levels.thresholds),
            bins: BinFinder::new(&levels.thresholds),
            thresholds: levels.thresholds,
            smoothing_mpc_h,
            fft: RealFft3::new(n),
            kernel,
        }
    }

    pub fn build(options: &serde_json::Value, ctx: &StatContext) -> Result<Self> {
        let n = crate::field::cube_side(NAME, ctx, 3)?;
        if !n.is_multiple_of(2) || n < 4 {
            return Err(Error::Option(format!(
                "{NAME} needs an even number (≥ 4) of cells per side; field '{}' has {n}",
                ctx.field.name
            )));
        }
        let levels = Levels::build(NAME, options, ctx, true)?;
        let side = levels.box_mpc_h.expect("asked for");
        Ok(Minkowski3d::new(
            &ctx.field.name,
            levels.n,
            side,
            levels.thresholds,
            levels.smoothing_mpc_h,
        ))
    }

    /// [V0, V1, V2, V3] over the threshold bins of one N³ field, C order.
    pub fn measure(&self, values: &[f64]) -> [Vec<f64>; 4] {
        self.measure_view(ArrayView::F64(values))
    }

    /// [`Minkowski3d::measure`] of a field stored in f32 or f64.
    pub fn measure_view(&self, values: ArrayView<'_>) -> [Vec<f64>; 4] {
        let n = self.n;
        let h = self.fft.half();
        let kf = 2.0 * PI / self.box_mpc_h;
        let mut u = self.fft.forward_view(values);
        filter_half(&self.fft, &mut u, &self.kernel, true);
        // The x derivatives are taken before the first-axis inverse; those
        // along y and z plane by plane, once only x is left in real space.
        let wave: Vec<f64> = (0..n).map(|i| frequency(i, n) as f64 * kf).collect();
        let mut ux = u.clone();
        let mut uxx = u.clone();
        for (i, (a, b)) in ux.chunks_mut(n * h).zip(uxx.chunks_mut(n * h)).enumerate() {
            let k = wave[i];
            a.iter_mut().for_each(|v| *v *= Complex64::new(0.0, k));
            b.iter_mut().for_each(|v| *v *= -k * k);
        }
        for spectrum in [&mut u, &mut ux, &mut uxx] {
            self.fft.inverse_first_axis(spectrum);
        }
        let sums: Vec<PlaneSums> = u
            .par_chunks(n * h)
            .zip(ux.par_chunks(n * h))
            .zip(uxx.par_chunks(n * h))
            .map(|((p0, p1), p2)| self.plane_sums([p0, p1, p2], &wave))
            .collect();
        self.finish(&sums)
    }

    /// The ten real planes u, ∇u and the Hessian from one plane of u, ∂ₓu and
    /// ∂ₓ²u (transformed along x only), and their sums over the bins.
    fn plane_sums(&self, [p0, p1, p2]: [&[Complex64]; 3], wave: &[f64]) -> PlaneSums {
        let n = self.n;
        let h = self.fft.half();
        let mut planes: [Vec<f64>; 10] = std::array::from_fn(|_| vec![0.0; n * n]);
        let mut buffer = vec![Complex64::new(0.0, 0.0); n * h];
        // (source, factor of (k_y, k_z)): u, u_x, u_xx, u_y, u_z, u_xy, u_xz,
        // u_yy, u_zz, u_yz.
        type Factor = fn(f64, f64) -> Complex64;
        let recipes: [(&[Complex64], Factor); 10] = [
            (p0, |_, _| Complex64::new(1.0, 0.0)),
            (p1, |_, _| Complex64::new(1.0, 0.0)),
            (p2, |_, _| Complex64::new(1.0, 0.0)),
            (p0, |ky, _| Complex64::new(0.0, ky)),
            (p0, |_, kz| Complex64::new(0.0, kz)),
            (p1, |ky, _| Complex64::new(0.0, ky)),
            (p1, |_, kz| Complex64::new(0.0, kz)),
            (p0, |ky, _| Complex64::new(-ky * ky, 0.0)),
            (p0, |_, kz| Complex64::new(-kz * kz, 0.0)),
            (p0, |ky, kz| Complex64::new(-ky * kz, 0.0)),
        ];
        for ((source, factor), out) in recipes.iter().zip(planes.iter_mut()) {
            for (j, (line, src)) in buffer.chunks_mut(h).zip(source.chunks(h)).enumerate() {
                let ky = wave[j];
                for (l, (v, s)) in line.iter_mut().zip(src).enumerate() {
                    *v = s * factor(ky, wave[l]);
                }
            }
            self.fft.inverse_plane(&mut buffer, out);
        }
        let bins = self.thresholds.len() - 1;
        let mut sums = PlaneSums {
            cells: vec![0; bins + 2],
            upper_half: vec![0; bins],
            surface: std::array::from_fn(|_| vec![0.0; bins + 2]),
        };
        let [u, ux, uxx, uy, uz, uxy, uxz, uyy, uzz, uyz] = &planes;
        for c in 0..n * n {
            let v = u[c];
            let slot = self.bins.slot(v);
            sums.cells[slot] += 1;
            if slot == 0 || slot > bins {
                continue;
            }
            sums.upper_half[slot - 1] += u64::from(v >= self.x[slot - 1]);
            let g = [ux[c], uy[c], uz[c]];
            let g2 = g[0] * g[0] + g[1] * g[1] + g[2] * g[2];
            if g2 == 0.0 {
                continue;
            }
            let hess = [
                [uxx[c], uxy[c], uxz[c]],
                [uxy[c], uyy[c], uyz[c]],
                [uxz[c], uyz[c], uzz[c]],
            ];
            let [area, mean, gauss] = surface_integrands(g, g2, &hess);
            sums.surface[0][slot] += area;
            sums.surface[1][slot] += mean;
            sums.surface[2][slot] += gauss;
        }
        sums
    }

    /// Sums the planes in order (the same bytes for any thread count) and
    /// normalises.
    fn finish(&self, planes: &[PlaneSums]) -> [Vec<f64>; 4] {
        let bins = self.thresholds.len() - 1;
        let cells = (self.n * self.n * self.n) as f64;
        let mut in_slot = vec![0u64; bins + 2];
        let mut upper_half = vec![0u64; bins];
        let mut surface: [Vec<f64>; 3] = std::array::from_fn(|_| vec![0.0; bins + 2]);
        for p in planes {
            in_slot.iter_mut().zip(&p.cells).for_each(|(a, b)| *a += b);
            upper_half
                .iter_mut()
                .zip(&p.upper_half)
                .for_each(|(a, b)| *a += b);
            for (total, plane) in surface.iter_mut().zip(&p.surface) {
                total.iter_mut().zip(plane).for_each(|(a, b)| *a += b);
            }
        }
        // Cells at or above midpoint b: the upper half of bin b, and every
        // cell of the slots above it.
        let mut v0 = vec![0.0; bins];
        let mut higher = in_slot[bins + 1];
        for b in (0..bins).rev() {
            v0[b] = (higher + upper_half[b]) as f64 / cells;
            higher += in_slot[b + 1];
        }
        let [s1, s2, s3] = surface.map(|s| {
            (0..bins)
                .map(|b| s[b + 1] / (cells * (self.thresholds[b + 1] - self.thresholds[b])))
                .collect::<Vec<f64>>()
        });
        [v0, s1, s2, s3]
    }
}

/// The three surface integrands at a point of gradient g (|g|² = g2 > 0) and
/// Hessian H, per unit volume and unit level: |g|/6, |g| H/(3π) and
/// |g| K/(4π), with H = (gᵀHg − |g|² tr H)/(2|g|³) for the set u ≥ ν (whose
/// outward normal is −g/|g|) and K = gᵀ adj(H) g / |g|⁴.
fn surface_integrands(g: [f64; 3], g2: f64, hess: &[[f64; 3]; 3]) -> [f64; 3] {
    let norm = g2.sqrt();
    let trace = hess[0][0] + hess[1][1] + hess[2][2];
    let quadratic = |m: &[[f64; 3]; 3]| -> f64 {
        (0..3)
            .map(|a| (0..3).map(|b| g[a] * m[a][b] * g[b]).sum::<f64>())
            .sum()
    };
    let [[a, b, c], [_, d, e], [_, _, f]] = *hess;
    let adjugate = [
        [d * f - e * e, c * e - b * f, b * e - c * d],
        [c * e - b * f, a * f - c * c, b * c - a * e],
        [b * e - c * d, b * c - a * e, a * d - b * b],
    ];
    [
        norm / 6.0,
        (quadratic(hess) - g2 * trace) / (6.0 * PI * g2),
        quadratic(&adjugate) / (4.0 * PI * g2 * norm),
    ]
}

impl Statistic for Minkowski3d {
    fn name(&self) -> &str {
        NAME
    }
    fn x_name(&self) -> &str {
        "threshold"
    }
    fn x(&self) -> &[f64] {
        &self.x
    }
    fn components(&self) -> Vec<String> {
        ["V0", "V1", "V2", "V3"].map(String::from).to_vec()
    }
    fn options(&self) -> serde_json::Value {
        serde_json::json!({
            "thresholds": self.thresholds,
            "smoothing_mpc_h": self.smoothing_mpc_h,
            "box_mpc_h": self.box_mpc_h,
        })
    }
    fn compute(&self, sample: &Sample) -> Result<StatValues> {
        self.compute_view(crate::field::field_of(sample, &self.field)?.view())
    }
    fn compute_view(&self, field: FieldView<'_>) -> Result<StatValues> {
        Ok(self
            .measure_view(crate::field::checked_cube(&field, self.n)?)
            .to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ball u = −r² (level set r = R): area 4πR², ∫H dS = 4πR, ∫K dS = 4π;
    /// the integrands per unit |g| must give H = 1/R and K = 1/R².
    #[test]
    fn integrands_of_a_sphere() {
        let x: [f64; 3] = [0.3, -0.4, 1.2];
        let r = (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]).sqrt();
        let g = x.map(|v| -2.0 * v);
        let g2 = 4.0 * r * r;
        let hess = [[-2.0, 0.0, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, -2.0]];
        let [area, mean, gauss] = surface_integrands(g, g2, &hess);
        let norm = g2.sqrt();
        assert!((area - norm / 6.0).abs() < 1e-15);
        assert!((mean * 3.0 * PI / norm - 1.0 / r).abs() < 1e-12);
        assert!((gauss * 4.0 * PI / norm - 1.0 / (r * r)).abs() < 1e-12);
    }

    /// A cylinder u = −(x² + y²): H = 1/(2ρ), K = 0, whatever the axis.
    #[test]
    fn integrands_of_a_cylinder() {
        let p: [f64; 2] = [0.7, -0.2];
        let rho = (p[0] * p[0] + p[1] * p[1]).sqrt();
        let g = [-2.0 * p[0], -2.0 * p[1], 0.0];
        let g2 = 4.0 * rho * rho;
        let hess = [[-2.0, 0.0, 0.0], [0.0, -2.0, 0.0], [0.0, 0.0, 0.0]];
        let [_, mean, gauss] = surface_integrands(g, g2, &hess);
        let norm = g2.sqrt();
        assert!((mean * 3.0 * PI / norm - 0.5 / rho).abs() < 1e-12);
        assert!(gauss.abs() < 1e-15);
    }
}
