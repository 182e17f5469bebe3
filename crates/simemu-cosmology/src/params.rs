//! The ΛCDM parameters as simulator parameters: the first five of every
//! cosmological simulator's parameter vector, in this order.

use simemu_core::{Error, ParamSpec, Result};

use crate::{CosmoParams, Cosmology};

pub const OMEGA_M: usize = 0;
pub const SIGMA_8: usize = 1;
pub const OMEGA_B: usize = 2;
pub const H: usize = 3;
pub const N_S: usize = 4;

/// Ω_m, σ_8, Ω_b, h and n_s with their bounds and defaults.
pub fn lcdm_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(
            "omega_m",
            "",
            0.10,
            0.60,
            0.3,
            "total matter density Ω_m (flat: Ω_Λ = 1 − Ω_m)",
        ),
        ParamSpec::new(
            "sigma_8",
            "",
            0.40,
            1.20,
            0.8,
            "linear RMS fluctuation in 8 Mpc/h spheres at z = 0",
        ),
        ParamSpec::new("omega_b", "", 0.01, 0.10, 0.046, "baryon density Ω_b"),
        ParamSpec::new("h", "", 0.50, 0.90, 0.7, "H0 / (100 km/s/Mpc)"),
        ParamSpec::new("n_s", "", 0.80, 1.20, 0.96, "primordial spectral index"),
    ]
}

/// The cosmology of a parameter vector that starts with [`lcdm_params`];
/// Ω_b must be below Ω_m.
pub fn cosmology(p: &[f64]) -> Result<Cosmology> {
    if p[OMEGA_B] >= p[OMEGA_M] {
        return Err(Error::Parameter(format!(
            "omega_b = {} must be below omega_m = {}",
            p[OMEGA_B], p[OMEGA_M]
        )));
    }
    Ok(Cosmology::new(CosmoParams {
        omega_m: p[OMEGA_M],
        omega_b: p[OMEGA_B],
        h: p[H],
        n_s: p[N_S],
        sigma_8: p[SIGMA_8],
    }))
}
