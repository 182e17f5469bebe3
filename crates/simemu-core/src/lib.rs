//! # simemu-core
//!
//! The domain-free heart of simemu: the [`Simulator`], [`Generator`] and [`Statistic`]
//! traits, samples and the on-disk [`Dataset`] format, and the plugin [`Registry`]
//! (static plugins via `inventory`, dynamic ones via [`plugin`]). It knows nothing of
//! any science domain: plugins bring that.

pub mod bins;
pub mod dataset;
mod device;
mod error;
pub mod formats;
pub mod fsutil;
pub mod npy;
pub mod params;
pub mod plugin;
mod registry;
mod sample;
pub mod seed;
pub mod simulate;
mod traits;

pub use dataset::{Dataset, DatasetSpec, DatasetWriter, Manifest};
pub use device::{ComputeDevice, GeneratorContext};
pub use error::{Error, Result};

/// The most samples one training or generation batch may hold: its activations
/// live in memory at once, and a larger batch is a typo, not a plan.
pub const MAX_BATCH: usize = 65_536;
pub use params::{OptionSpec, ParamSpec};
pub use registry::{
    FormatEntry, GeneratorEntry, Origin, Registry, SimulatorEntry, StaticPlugin, StatisticEntry,
};
pub use sample::{Array, ArrayView, DType, Field, FieldSpec, FieldView, Sample};
pub use traits::{
    Generator, PreparedSimulator, Simulator, StatContext, StatValues, Statistic, TrainOptions,
    TrainSummary,
};

/// Re-exported so that plugin crates can `inventory::submit!` without their own dependency.
pub use inventory;

/// The simemu version, recorded in every file simemu writes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
