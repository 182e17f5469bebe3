//! The GFlash parameterisation of electromagnetic showers (Grindhammer & Peters,
//! hep-ex/0001020; constants as in Geant4's `GVFlashHomoShowerTuning.hh` and
//! `GFlashSamplingShowerTuning.hh`), for a sampling calorimeter of two materials.
//!
//! Units: depths t in radiation lengths X0, radii in Molière radii, energies in MeV
//! unless a name says GeV; y = E / E_c.

/// The GFlash critical-energy formula E_c = 2.66 (X0 Z/A)^1.1 MeV, X0 in g/cm².
fn critical_energy(x0_gcm2: f64, z: f64, a: f64) -> f64 {
    2.66 * (x0_gcm2 * z / a).powf(1.1)
}

/// The shower energy scale of the Molière radius.
const E_S_MEV: f64 = 21.2;

/// One material: atomic number, mass number, density (g/cm³), X0 (g/cm²).
#[derive(Clone, Copy, Debug)]
pub struct Material {
    pub z: f64,
    pub a: f64,
    pub density: f64,
    pub x0_gcm2: f64,
}

pub const LEAD: Material = Material {
    z: 82.0,
    a: 207.2,
    density: 11.35,
    x0_gcm2: 6.37,
};
pub const LIQUID_ARGON: Material = Material {
    z: 18.0,
    a: 39.95,
    density: 1.39,
    x0_gcm2: 19.55,
};

/// A passive/active sampling structure reduced to GFlash's effective medium.
#[derive(Clone, Debug)]
pub struct SamplingMedium {
    pub z: f64,
    pub a: f64,
    /// g/cm³.
    pub density: f64,
    /// Radiation length in mm.
    pub x0_mm: f64,
    /// Critical energy in MeV.
    pub critical_energy: f64,
    /// Molière radius in mm.
    pub moliere_mm: f64,
    /// F_S = X0_eff / (d_passive + d_active).
    pub sampling_frequency: f64,
    /// ê = 1 / (1 + 0.007 (Z_passive − Z_active)).
    pub e_hat: f64,
}

impl SamplingMedium {
    /// The GFlash mixing rules for layers of `passive` and `active` material of the
    /// given thicknesses (mm).
    pub fn new(passive: Material, active: Material, d_passive_mm: f64, d_active_mm: f64) -> Self {
        let (d1, d2) = (d_passive_mm / 10.0, d_active_mm / 10.0); // cm
        let (m1, m2) = (d1 * passive.density, d2 * active.density);
        let (w1, w2) = (m1 / (m1 + m2), m2 / (m1 + m2));
        let density = (m1 + m2) / (d1 + d2);
        let x0_gcm2 = 1.0 / (w1 / passive.x0_gcm2 + w2 / active.x0_gcm2);
        let ec_over_x0 = w1 * critical_energy(passive.x0_gcm2, passive.z, passive.a)
            / passive.x0_gcm2
            + w2 * critical_energy(active.x0_gcm2, active.z, active.a) / active.x0_gcm2;
        let x0_mm = x0_gcm2 / density * 10.0;
        SamplingMedium {
            z: w1 * passive.z + w2 * active.z,
            a: w1 * passive.a + w2 * active.a,
            density,
            x0_mm,
            critical_energy: x0_gcm2 * ec_over_x0,
            moliere_mm: E_S_MEV / ec_over_x0 / density * 10.0,
            sampling_frequency: (x0_mm / 10.0) / (d1 + d2),
            e_hat: 1.0 / (1.0 + 0.007 * (passive.z - active.z)),
        }
    }
}

/// The distribution of a shower's longitudinal parameters: (ln T, ln α) jointly
/// normal (GFlash's correlated log-normal fluctuations), with the sampling-calorimeter
/// corrections applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Longitudinal {
    pub mean_ln_t: f64,
    pub mean_ln_alpha: f64,
    pub sigma_ln_t: f64,
    pub sigma_ln_alpha: f64,
    pub rho: f64,
}

impl Longitudinal {
    /// The relations at incident energy `e_mev`:
    /// homogeneous ⟨ln T⟩ = ln(ln y − 0.812), ⟨ln α⟩ = ln(0.81 + (0.458 + 2.26/Z) ln y),
    /// then T → T − 0.55/F_S − 0.69(1 − ê), α → α − 0.476/F_S (on the medians), and
    /// the sampling spreads σ(ln T) = 1/(−2.5 + 1.25 ln y), σ(ln α) = 1/(−0.82 + 0.79 ln y),
    /// ρ = 0.784 − 0.023 ln y.
    pub fn at(medium: &SamplingMedium, e_mev: f64) -> Self {
        let ln_y = (e_mev / medium.critical_energy).ln();
        let t_hom = ln_y - 0.812;
        let alpha_hom = 0.81 + (0.458 + 2.26 / medium.z) * ln_y;
        let t = t_hom - 0.55 / medium.sampling_frequency - 0.69 * (1.0 - medium.e_hat);
        let alpha = alpha_hom - 0.476 / medium.sampling_frequency;
        Longitudinal {
            mean_ln_t: t.ln(),
            mean_ln_alpha: alpha.ln(),
            sigma_ln_t: 1.0 / (-2.5 + 1.25 * ln_y),
            sigma_ln_alpha: 1.0 / (-0.82 + 0.79 * ln_y),
            rho: 0.784 - 0.023 * ln_y,
        }
    }

    /// (T, α) from two independent standard normals.
    pub fn draw(&self, z1: f64, z2: f64) -> (f64, f64) {
        let c1 = ((1.0 + self.rho) / 2.0).sqrt();
        let c2 = ((1.0 - self.rho) / 2.0).sqrt();
        let ln_t = self.mean_ln_t + self.sigma_ln_t * (c1 * z1 + c2 * z2);
        let ln_alpha = self.mean_ln_alpha + self.sigma_ln_alpha * (c1 * z1 - c2 * z2);
        (ln_t.exp(), ln_alpha.exp())
    }
}

/// The radial profile at reduced depth τ = t/T: f(r) = p f_C(r) + (1 − p) f_T(r) with
/// f(r) = 2 r R² / (r² + R²)², core and tail radii in Molière radii.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Radial {
    pub core: f64,
    pub tail: f64,
    pub core_fraction: f64,
}

impl Radial {
    /// The homogeneous relations (Geant4's tuning) with the medium's effective Z.
    pub fn at(z: f64, e_gev: f64, tau: f64) -> Self {
        let ln_e = e_gev.ln();
        let core = (0.0251 + 0.00319 * ln_e) + (0.1162 - 0.000381 * z) * tau;
        let (p1, p2, p3) = (
            2.632 - 0.00094 * z,
            0.401 + 0.00187 * z,
            1.313 - 0.0686 * ln_e,
        );
        let p = p1 * ((p2 - tau) / p3 - ((p2 - tau) / p3).exp()).exp();
        let (k1, k2, k3, k4) = (0.659 - 0.00309 * z, 0.645, -2.59, 0.3585 + 0.0412 * ln_e);
        let tail = k1 * ((k3 * (tau - k2)).exp() + (k4 * (tau - k2)).exp());
        Radial {
            core,
            tail,
            core_fraction: p.clamp(0.0, 1.0),
        }
    }

    /// A radius (Molière radii) from two uniforms: which component, then the inverse
    /// CDF r = R √(u / (1 − u)).
    pub fn sample(&self, pick: f64, u: f64) -> f64 {
        let r = if pick < self.core_fraction {
            self.core
        } else {
            self.tail
        };
        r * (u / (1.0 - u)).sqrt()
    }
}

/// GFlash's number of energy spots for a homogeneous medium of atomic number `z`:
/// 93 ln Z E^0.876 (E in GeV), the constants Geant4's sampling class also uses.
pub fn spot_count(z: f64, e_gev: f64) -> usize {
    (93.0 * z.ln() * e_gev.powf(0.876)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The effective Pb/LAr numbers of the reference notes (`plugins-and-simulators.md`,
    /// computed there with the same mixing rules), quoted to 3 significant digits.
    #[test]
    fn the_calogan_medium_has_the_reference_effective_constants() {
        let m = SamplingMedium::new(LEAD, LIQUID_ARGON, 2.0, 4.0);
        // Each reference value is rounded: it must hold to half a unit of its last digit.
        let close = |got: f64, want: f64, half_unit: f64| {
            assert!((got - want).abs() <= half_unit, "{got} vs {want}");
        };
        close(m.z, 69.4, 0.05);
        close(m.a, 174.3, 0.05);
        close(m.density, 4.71, 0.005);
        close(m.x0_mm, 15.6, 0.05);
        close(m.critical_energy, 8.96, 0.005);
        close(m.moliere_mm, 36.9, 0.05);
        close(m.sampling_frequency, 2.60, 0.005);
        close(m.e_hat, 0.691, 0.0005);
        // 480 mm of it is 30.8 X0.
        close(480.0 / m.x0_mm, 30.8, 0.05);
    }
}
