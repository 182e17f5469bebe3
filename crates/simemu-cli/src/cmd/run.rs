//! `simemu run [CONFIG.toml]`: the main job (`simemu_pipeline::run`), its
//! leaderboards shown compactly.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use simemu_core::{ComputeDevice, Registry};
use simemu_pipeline::{RunConfig, RunOptions};
use simemu_validate::report::leaderboard_terminal;

use crate::ui::{self, Terminal};

#[derive(Args)]
pub struct RunArgs {
    /// Pipeline configuration (TOML; see configs/). Default: the embedded default.
    pub config: Option<PathBuf>,
    /// Run directory (default: ./runs/NAME).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Train the generator from scratch instead of starting from the config's checkpoint.
    #[arg(long)]
    pub train: bool,
    /// Wall-clock limit for training, e.g. 20m (overrides the config's).
    #[arg(long, value_parser = simemu_pipeline::parse_duration)]
    pub budget: Option<f64>,
    /// Redo every stage.
    #[arg(long)]
    pub force: bool,
}

pub fn run(reg: &Registry, device: Option<ComputeDevice>, a: &RunArgs) -> Result<()> {
    let (config, base) = match &a.config {
        Some(path) => {
            let what = path.display().to_string();
            let config = RunConfig::from_value(super::read_config(path)?, &what)?;
            let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (config, Some(base))
        }
        None => (RunConfig::embedded_default(), None),
    };
    let options = RunOptions {
        out: a.out.clone(),
        base,
        train: a.train,
        budget_seconds: a.budget,
        force: a.force,
        device,
    };
    // The run's device is opened before the run starts, as `--device` alone is
    // for `train` and `generate`.
    super::open_device(options.device(&config))?;
    let outcome = simemu_pipeline::run(reg, &config, &options, &Terminal::new())?;
    for point in &outcome.points {
        if outcome.points.len() > 1 {
            crate::output::outln!("\n## {}\n", simemu_pipeline::point_label(&point.params));
        }
        crate::output::out!("{}", leaderboard_terminal(&point.leaderboard));
        crate::output::outln!(
            "report: {}",
            point.report_dir.join("leaderboard.md").display()
        );
    }
    if let Some(responses) = &outcome.responses {
        for line in &responses.summary {
            crate::output::outln!("{line}");
        }
        crate::output::outln!("parameter response: {}", responses.path.display());
    }
    ui::note(&format!(
        "run finished in {:.1}s: {}",
        outcome.seconds,
        outcome.dir.display()
    ));
    Ok(())
}
