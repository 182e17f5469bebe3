//! Weak lensing by the shared cosmology: the Limber convergence power spectrum
//! of a single source plane, the empty-beam convergence and the log-normal shift.

use simemu_cosmology::{simpson, Cosmology, HalofitPoint, HUBBLE_DISTANCE};

/// C_ℓ^κκ for a single source plane at `z_source` by the Limber approximation with
/// k = (ℓ + ½)/χ; `nonlinear` selects halofit over linear theory.
pub fn cl_kappa(c: &Cosmology, ells: &[f64], z_source: f64, nonlinear: bool) -> Vec<f64> {
    const NZ: usize = 200;
    let chi_s = c.chi(z_source);
    let dz = z_source / NZ as f64;
    // χ(z) on the midpoints, by cumulative Simpson on a fine grid.
    let mut points = Vec::with_capacity(NZ);
    let mut z_prev = 0.0;
    let mut chi_prev = 0.0;
    for i in 0..NZ {
        let z = (i as f64 + 0.5) * dz;
        let chi = chi_prev + HUBBLE_DISTANCE * simpson(|x| 1.0 / c.e(x), z_prev, z, 16);
        z_prev = z;
        chi_prev = chi;
        let w = 1.5 * c.p.omega_m / (HUBBLE_DISTANCE * HUBBLE_DISTANCE)
            * (1.0 + z)
            * chi
            * (chi_s - chi)
            / chi_s;
        let d = c.growth(z);
        let weight = w * w / (chi * chi) * HUBBLE_DISTANCE / c.e(z) * dz;
        let hp = nonlinear.then(|| HalofitPoint::new(c, z, d));
        points.push((chi, z, d, weight, hp));
    }
    ells.iter()
        .map(|&ell| {
            points
                .iter()
                .map(|(chi, _z, d, weight, hp)| {
                    let k = (ell + 0.5) / chi;
                    let p = match hp {
                        Some(hp) => hp.p_nl(c, k),
                        None => {
                            let t = c.transfer(k);
                            c.amplitude * k.powf(c.p.n_s) * t * t * d * d
                        }
                    };
                    weight * p
                })
                .sum()
        })
        .collect()
}

/// Empty-beam convergence κ_min = −∫₀^{χ_s} W(χ) dχ.
pub fn kappa_empty_beam(c: &Cosmology, z_source: f64) -> f64 {
    let chi_s = c.chi(z_source);
    -simpson(
        |z| {
            let chi = c.chi(z);
            1.5 * c.p.omega_m / HUBBLE_DISTANCE.powi(2) * (1.0 + z) * chi * (chi_s - chi) / chi_s
                * HUBBLE_DISTANCE
                / c.e(z)
        },
        0.0,
        z_source,
        200,
    )
}

/// Hilbert, Hartlap & Schneider (2011) eq. 38 fit of the log-normal shift κ₀(z_s).
pub fn lognormal_shift_hilbert(z_source: f64) -> f64 {
    let z = z_source;
    0.008 * z + 0.029 * z * z - 0.0079 * z.powi(3) + 0.00065 * z.powi(4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simemu_cosmology::CosmoParams;

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
    // prototype, itself within 0.1% of pyccl 3.3.6 with the same ingredients).
    #[test]
    fn limber_cl_matches_reference_table() {
        let c = reference();
        let ells = [10.0, 100.0, 300.0, 1000.0, 2000.0, 3000.0, 10000.0];
        let lin = [
            3.99e-8, 6.90e-9, 1.09e-9, 8.48e-11, 1.68e-11, 6.26e-12, 2.98e-13,
        ];
        let nl = [
            3.97e-8, 7.43e-9, 1.71e-9, 3.91e-10, 1.59e-10, 8.65e-11, 9.40e-12,
        ];
        let cl_nl = cl_kappa(&c, &ells, 1.0, true);
        let cl_lin = cl_kappa(&c, &ells, 1.0, false);
        for i in 0..ells.len() {
            // 3 significant figures: rounding is at most 0.5e-2/1.59 ≈ 0.35%; allow 1%.
            assert!(
                close(cl_nl[i], nl[i], 0.01),
                "NL ell {}: {} vs {}",
                ells[i],
                cl_nl[i],
                nl[i]
            );
            assert!(
                close(cl_lin[i], lin[i], 0.01),
                "lin ell {}: {} vs {}",
                ells[i],
                cl_lin[i],
                lin[i]
            );
        }
        // ℓ = 1000 is quoted to 4 figures (pyccl 3.907e-10).
        assert!(close(cl_nl[3], 3.907e-10, 2e-3), "{}", cl_nl[3]);
    }

    #[test]
    fn empty_beam_and_shift() {
        let c = reference();
        assert!(
            close(kappa_empty_beam(&c, 1.0), -0.064, 0.01),
            "{}",
            kappa_empty_beam(&c, 1.0)
        );
        assert!(close(lognormal_shift_hilbert(1.0), 0.02975, 1e-9));
    }
}
