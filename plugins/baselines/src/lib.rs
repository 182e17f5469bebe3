//! # simemu-baselines
//!
//! Two generators that make comparisons meaningful:
//!
//! - `simulator`: fresh draws of the simulator that produced the training data, with
//!   new seeds — the ideal emulator, which calibrates how often a perfect emulator
//!   "fails" a test by chance;
//! - `gaussian-field`: Gaussian random fields with the training maps' mean 2D power
//!   (and mean), each map scaled by a random amplitude fitted to the training maps'
//!   excess map-to-map scatter of power — it matches the power spectrum, mean and
//!   per-map scatter, and misses every non-Gaussian feature (pixel PDF skewness,
//!   Minkowski functionals, peaks).
//!
//! Both go through the generic `simemu train` / `simemu generate` like any generator.

mod gaussian;
mod simulator;

use simemu_core::{Registry, Result};

pub use gaussian::GaussianField;
pub use simulator::SimulatorBaseline;

/// Registers `simulator` and `gaussian-field`.
pub fn register(r: &mut Registry) -> Result<()> {
    r.add_generator(
        "simulator",
        "baseline: fresh draws of the training data's simulator with new seeds (the perfect emulator)",
        vec![],
        |o, _| Ok(Box::new(SimulatorBaseline::from_config(o)?) as Box<dyn simemu_core::Generator>),
        |dir, o, ctx| Ok(Box::new(SimulatorBaseline::load(dir, o, ctx.registry)?) as Box<dyn simemu_core::Generator>),
    )?;
    r.add_generator(
        "gaussian-field",
        "baseline: Gaussian random fields with the training maps' mean 2D power spectrum",
        GaussianField::options(),
        |o, _| Ok(Box::new(GaussianField::from_config(o)?) as Box<dyn simemu_core::Generator>),
        |dir, o, _| Ok(Box::new(GaussianField::load(dir, o)?) as Box<dyn simemu_core::Generator>),
    )
}

simemu_core::inventory::submit! { simemu_core::StaticPlugin { name: "baselines", register } }

/// Refuses any option: the baselines have none.
fn no_options(name: &str, config: &serde_json::Value) -> Result<()> {
    match config {
        serde_json::Value::Null => Ok(()),
        serde_json::Value::Object(m) if m.is_empty() => Ok(()),
        serde_json::Value::Object(m) => Err(simemu_core::Error::Option(format!(
            "{name}: unknown option '{}' (this generator has no options)",
            m.keys().next().unwrap()
        ))),
        other => Err(simemu_core::Error::Option(format!(
            "{name}: expected an option table, got {other}"
        ))),
    }
}
