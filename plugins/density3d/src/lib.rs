//! # simemu-density3d
//!
//! The third domain: 3D matter density fields. The `density3d` simulator draws
//! the density contrast δ on a periodic box of N³ cells from the linear ΛCDM
//! power spectrum of the shared cosmology (`gaussian`), the log-normal field
//! with that spectrum (`lognormal`), or particles displaced by second-order
//! Lagrangian perturbation theory and painted with cloud-in-cell (`2lpt`); see
//! [`simulator`]. The `power-spectrum-3d`
//! statistic measures it by Pylians' conventions ([`power`]); `density-pdf` and
//! `peaks-3d` count its cells and peaks by height ([`cells`]); `minkowski-3d`
//! gives the Minkowski functionals of its excursion sets ([`minkowski`]). Samples are ordinary
//! datasets (a float32 field of shape (N, N, N)), so the harness, the formats and
//! the pipeline handle them unchanged.

pub mod cells;
pub mod fft3;
mod field;
pub mod levels;
pub mod minkowski;
pub mod power;
pub mod simulator;

use simemu_core::{OptionSpec, Registry, Result, Simulator, Statistic};

pub use cells::{CellStat, Kind};
pub use minkowski::Minkowski3d;
pub use power::{Mas, PowerSpectrum3d};
pub use simulator::{Density3dConfig, Density3dSimulator, Model};

fn simulator_options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new("size", 64, "cells per side (power of two, 16–256)"),
        OptionSpec::new("box_mpc_h", 256.0, "side of the box in Mpc/h"),
        OptionSpec::new("z", 0.0, "redshift of the field"),
        OptionSpec::new("model", "lognormal", "lognormal | gaussian | 2lpt"),
    ]
}

/// Registers the `density3d` simulator and its four statistics.
pub fn register(r: &mut Registry) -> Result<()> {
    r.add_simulator(
        simulator::NAME,
        "3D matter density contrast on a periodic box: Gaussian or log-normal field with the linear ΛCDM P(k) (EH98, σ_8-normalised, linear growth to z), or 2LPT particles painted with CIC",
        simulator_options(),
        |o| {
            Ok(Box::new(Density3dSimulator::new(Density3dConfig::from_options(o)?))
                as Box<dyn Simulator>)
        },
    )?;
    r.add_statistic(
        power::NAME,
        "spherically averaged 3D power spectrum over k bins of the fundamental mode (Pylians Pk_library.Pk monopole)",
        vec![
            OptionSpec::new(
                "box_mpc_h",
                serde_json::Value::Null,
                "side of the box in Mpc/h (default: from the dataset)",
            ),
            OptionSpec::new(
                "mas",
                serde_json::Value::Null,
                "mass-assignment window to remove: none | ngp | cic | tsc | pcs (default: the field's, else none)",
            ),
            OptionSpec::new(
                "k_min",
                serde_json::Value::Null,
                "report only bins with mean k ≥ k_min, in h/Mpc (at least the box's fundamental mode; default: from it)",
            ),
            OptionSpec::new(
                "k_max",
                serde_json::Value::Null,
                "report only bins with mean k ≤ k_max, in h/Mpc (at most the grid's largest k; default: to it)",
            ),
        ],
        |o, ctx| Ok(Box::new(PowerSpectrum3d::build(o, ctx)?) as Box<dyn Statistic>),
    )?;
    for (kind, description) in [
        (Kind::Pdf, "histogram density of the cell values over thresholds, optionally Gaussian-smoothed (numpy.histogram density)"),
        (Kind::Peaks, "cells above all 26 periodic neighbours, counted by height per unit threshold, optionally Gaussian-smoothed"),
    ] {
        r.add_statistic(kind.name(), description, levels::option_specs(), move |o, ctx| {
            Ok(Box::new(CellStat::build(kind, o, ctx)?) as Box<dyn Statistic>)
        })?;
    }
    r.add_statistic(
        minkowski::NAME,
        "Minkowski functionals V0–V3 of the excursion sets over threshold bins, per unit volume (Schmalzing & Buchert 1997 Koenderink invariants, spectral derivatives), optionally Gaussian-smoothed",
        levels::option_specs(),
        |o, ctx| Ok(Box::new(minkowski::Minkowski3d::build(o, ctx)?) as Box<dyn Statistic>),
    )?;
    Ok(())
}

simemu_core::inventory::submit! { simemu_core::StaticPlugin { name: "density3d", register } }
