//! The simulation stage: a simulator plugin, run over a design, into a dataset.

use std::path::Path;

use simemu_core::dataset::Manifest;
use simemu_core::simulate::{simulate_to_dataset, Shard, SimulationJob};
use simemu_core::Registry;

use crate::error::{Context, Result};
use crate::{Design, Observer};

/// What to simulate, and where to.
pub struct SimulateRequest<'a> {
    /// The simulator plugin's name.
    pub simulator: &'a str,
    /// Its options (a table; `null`: the defaults).
    pub options: &'a serde_json::Value,
    pub design: &'a Design,
    /// The run seed: every sample's seed derives from it and its index.
    pub seed: u64,
    /// Only this part of the run (merged later).
    pub shard: Option<Shard>,
    /// Samples per shard file.
    pub shard_size: usize,
    pub out: &'a Path,
    /// Replace an existing output.
    pub force: bool,
}

/// Runs the simulation; returns the dataset's manifest.
pub fn simulate(reg: &Registry, r: &SimulateRequest, obs: &dyn Observer) -> Result<Manifest> {
    let sim = reg.build_simulator(r.simulator, r.options)?;
    let (points, description) = r.design.points(sim.params(), r.seed)?;
    let mut extra = serde_json::Map::new();
    extra.insert("design".into(), description);
    let job = SimulationJob {
        simulator: sim.as_ref(),
        points,
        count_per_point: r.design.count,
        run_seed: r.seed,
        shard: r.shard,
        shard_size: r.shard_size,
        extra_source: extra,
    };
    let total = r
        .shard
        .map(|s| s.range(job.total()).len())
        .unwrap_or(job.total());
    let t0 = std::time::Instant::now();
    let manifest = simulate_to_dataset(&job, r.out, r.force, &|n| {
        obs.progress("simulate", n, total)
    })
    .with_context(|| format!("simulating into {}", r.out.display()))?;
    let dt = t0.elapsed().as_secs_f64();
    tracing::info!(
        "wrote {} samples to {} in {:.2}s ({:.0}/s)",
        manifest.count,
        r.out.display(),
        dt,
        manifest.count as f64 / dt
    );
    Ok(manifest)
}
