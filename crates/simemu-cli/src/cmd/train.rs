//! `simemu train` and `simemu generate`: arguments into the pipeline's requests.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use simemu_core::params::parse_param_assignments;
use simemu_core::{ComputeDevice, Registry};
use simemu_pipeline::{GenerateRequest, TrainRequest};

use crate::ui::Terminal;

#[derive(Args)]
pub struct TrainArgs {
    /// Generator name (see `simemu list generators`).
    pub name: String,
    /// Training dataset.
    #[arg(long)]
    pub data: PathBuf,
    /// Run directory for checkpoints and logs.
    #[arg(long)]
    pub out: PathBuf,
    /// Generator configuration (TOML or JSON).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// A configuration value KEY=VALUE over the file's; repeatable.
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Training steps.
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<u64>,
    /// Training epochs.
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Replace an existing run directory.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// Wall-clock limit, e.g. 90s, 20m, 1h (generators that support it stop there).
    #[arg(long, value_parser = simemu_pipeline::parse_duration)]
    pub budget: Option<f64>,
}

pub fn train(
    reg: &Registry,
    seed: Option<u64>,
    device: ComputeDevice,
    a: &TrainArgs,
) -> Result<()> {
    let base = match &a.config {
        Some(p) => super::read_config(p)?,
        None => serde_json::Value::Null,
    };
    let request = TrainRequest {
        generator: a.name.clone(),
        data: a.data.clone(),
        out: a.out.clone(),
        config: super::merge_options(base, &a.options)?,
        steps: a.steps,
        epochs: a.epochs,
        resume: a.resume,
        force: a.force,
        budget_seconds: a.budget,
        device,
    };
    simemu_pipeline::train(reg, seed, &request, &Terminal::new())?;
    Ok(())
}

#[derive(Args)]
pub struct GenerateArgs {
    /// A run directory (or a checkpoint inside one), or builtin:NAME for a
    /// shipped model (`simemu generate --checkpoint builtin:convergence-64`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Number of samples.
    #[arg(long)]
    pub count: usize,
    /// Condition σ, NAME=VALUE; repeatable (unset: the generator's defaults).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Output dataset.
    #[arg(long)]
    pub out: PathBuf,
    /// Samples per generator call.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// A name for this candidate in leaderboards.
    #[arg(long)]
    pub label: Option<String>,
    #[arg(long)]
    pub force: bool,
}

pub fn generate(reg: &Registry, seed: u64, device: ComputeDevice, a: &GenerateArgs) -> Result<()> {
    let request = GenerateRequest {
        checkpoint: a.checkpoint.clone(),
        count: a.count,
        params: parse_param_assignments(&a.params)?,
        out: a.out.clone(),
        batch: a.batch,
        label: a.label.clone(),
        force: a.force,
        device,
    };
    simemu_pipeline::generate(reg, seed, &request, &Terminal::new())?;
    Ok(())
}
