//! `simemu train` and `simemu generate`: the generic plumbing every generator uses.
//!
//! Run-directory contract: `RUN_DIR/generator.json` names the generator plugin and
//! holds its configuration; everything else in the directory belongs to the plugin.
//! `generate --checkpoint` accepts the run directory or any directory below it (a
//! plugin's per-step checkpoint); the plugin's loader receives that path.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use simemu_core::dataset::{source_record, DatasetSpec, DatasetWriter};
use simemu_core::params::{parse_param_assignments, resolve_params};
use simemu_core::seed::sample_seed;
use simemu_core::{Dataset, Registry, TrainOptions};

use super::usage;
use crate::ui;

pub const RUN_FILE: &str = "generator.json";

#[derive(Serialize, Deserialize)]
pub struct RunFile {
    pub format: String,
    pub version: u32,
    pub generator: String,
    pub config: serde_json::Value,
    pub data: String,
    pub seed: u64,
    pub simemu_version: String,
    #[serde(default)]
    pub train: serde_json::Value,
}

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
    #[arg(long, value_parser = parse_duration)]
    pub budget: Option<f64>,
}

/// Seconds in a duration written as a number with an optional unit s, m or h.
pub fn parse_duration(s: &str) -> std::result::Result<f64, String> {
    let (number, unit) = match s.trim().char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s.trim()[..i], c),
        _ => (s.trim(), 's'),
    };
    let scale = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        _ => return Err(format!("'{s}': the unit must be s, m or h")),
    };
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v * scale),
        _ => Err(format!(
            "'{s}' is not a positive duration such as 90s, 20m or 1h"
        )),
    }
}

pub fn train(reg: &Registry, seed: u64, a: &TrainArgs) -> Result<()> {
    let entry = reg.generator(&a.name)?;
    let base = match &a.config {
        Some(p) => super::read_config(p)?,
        None => serde_json::Value::Null,
    };
    let config = super::merge_options(base, &a.options)?;
    let data = Dataset::open(&a.data)?;
    let run_file = a.out.join(RUN_FILE);
    if a.resume {
        let prev: RunFile = read_run_file(&run_file)?;
        if prev.generator != a.name {
            return Err(usage(format!(
                "{} holds a '{}' run, not '{}'",
                a.out.display(),
                prev.generator,
                a.name
            )));
        }
    } else if a.out.exists() {
        if !a.force {
            return Err(usage(format!(
                "{} already exists (use --resume to continue it or --force to replace it)",
                a.out.display()
            )));
        }
        std::fs::remove_dir_all(&a.out).with_context(|| format!("removing {}", a.out.display()))?;
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut generator = (entry.build)(&config, reg)?;
    let mut run = RunFile {
        format: "simemu-run".into(),
        version: 1,
        generator: a.name.clone(),
        config: generator.config(),
        data: data.path().display().to_string(),
        seed,
        simemu_version: simemu_core::VERSION.into(),
        train: serde_json::Value::Null,
    };
    simemu_core::fsutil::write_json_atomic(&run_file, &run)?;
    let options = TrainOptions {
        run_dir: a.out.clone(),
        steps: a.steps,
        epochs: a.epochs,
        resume: a.resume,
        seed,
        progress: !ui::quiet(),
        budget_seconds: a.budget,
    };
    let t0 = Instant::now();
    let summary = generator.train(&data, &options, reg)?;
    generator.save(&a.out)?;
    run.train = serde_json::to_value(&summary)?;
    run.train["wall_seconds"] = t0.elapsed().as_secs_f64().into();
    simemu_core::fsutil::write_json_atomic(&run_file, &run)?;
    // Run-directory convention: a plugin's `training.csv` (step, then numeric
    // columns) is plotted for people to look at.
    let csv = a.out.join("training.csv");
    if csv.exists() {
        simemu_validate::plots::plot_csv(
            &csv,
            &a.out.join("training.png"),
            &format!("{} training", a.name),
        )?;
    }
    tracing::info!(
        "trained '{}' ({} steps) into {}",
        a.name,
        summary.steps,
        a.out.display()
    );
    Ok(())
}

fn read_run_file(path: &Path) -> Result<RunFile> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "{} is not a simemu run directory",
            path.parent().unwrap_or(path).display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: corrupt run file", path.display()))
}

/// The run file for a checkpoint path: in the path itself or in an ancestor.
pub fn find_run(checkpoint: &Path) -> Result<RunFile> {
    for dir in checkpoint.ancestors().take(4) {
        let f = dir.join(RUN_FILE);
        if f.exists() {
            return read_run_file(&f);
        }
    }
    Err(simemu_core::Error::bad_file(
        checkpoint,
        format!("no {RUN_FILE} here or above: not a simemu run directory"),
    )
    .into())
}

/// Whether the generator in a run directory (or checkpoint) takes parameters.
pub fn is_conditional(reg: &Registry, checkpoint: &Path) -> Result<bool> {
    let run = find_run(checkpoint)?;
    let entry = reg.generator(&run.generator)?;
    let generator = (entry.load)(checkpoint, &run.config, reg)
        .with_context(|| format!("loading {}", checkpoint.display()))?;
    Ok(!generator.params().is_empty())
}

#[derive(Args)]
pub struct GenerateArgs {
    /// A run directory (or a checkpoint inside one).
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

pub fn generate(reg: &Registry, seed: u64, a: &GenerateArgs) -> Result<()> {
    if a.count == 0 || a.batch == 0 {
        return Err(usage("--count and --batch must be at least 1"));
    }
    let run = find_run(&a.checkpoint)?;
    let entry = reg.generator(&run.generator)?;
    let generator = (entry.load)(&a.checkpoint, &run.config, reg)
        .with_context(|| format!("loading {}", a.checkpoint.display()))?;
    let space = generator.params();
    let given = parse_param_assignments(&a.params)?;
    let params = if given.is_empty() {
        Vec::new()
    } else if space.is_empty() {
        return Err(usage(format!(
            "generator '{}' is unconditional: it takes no --param",
            run.generator
        )));
    } else {
        resolve_params(&space, &given)?
    };
    let fields = generator.fields();
    let mut source = source_record("generator", &run.generator, run.config.clone());
    source.insert(
        "checkpoint".into(),
        a.checkpoint.display().to_string().into(),
    );
    source.insert(
        "label".into(),
        a.label
            .clone()
            .unwrap_or_else(|| run.generator.clone())
            .into(),
    );
    let mut spec = DatasetSpec::new(fields, space.iter().map(|p| p.name.clone()).collect());
    spec.run_seed = Some(seed);
    spec.source = source;
    let pb = ui::bar(a.count as u64, "generate");
    let t0 = Instant::now();
    let mut gen_seconds = 0.0;
    let mut writer: Option<DatasetWriter> = None;
    for start in (0..a.count).step_by(a.batch) {
        let n = a.batch.min(a.count - start);
        let seeds: Vec<u64> = (start..start + n)
            .map(|i| sample_seed(seed, i as u64))
            .collect();
        let t = Instant::now();
        let samples = generator.generate(&params, &seeds)?;
        gen_seconds += t.elapsed().as_secs_f64();
        if samples.len() != n {
            anyhow::bail!(
                "generator '{}' returned {} samples for {n} seeds",
                run.generator,
                samples.len()
            );
        }
        let w = match &mut writer {
            Some(w) => w,
            None => {
                // An unconditional call of a conditional generator (its defaults) may
                // return samples without parameters: record what the samples carry.
                if samples[0].params.is_empty() {
                    spec.param_names.clear();
                }
                writer.insert(DatasetWriter::create(&a.out, spec.clone(), a.force)?)
            }
        };
        for (s, seed) in samples.iter().zip(&seeds) {
            w.push(s, Some(*seed))?;
        }
        pb.set_position((start + n) as u64);
    }
    pb.finish_and_clear();
    let mut w = writer.expect("count >= 1");
    w.source_mut().insert(
        "seconds_per_sample".into(),
        (gen_seconds / a.count as f64).into(),
    );
    w.finish()?;
    tracing::info!(
        "generated {} samples into {} in {:.2}s ({:.2e} s/sample)",
        a.count,
        a.out.display(),
        t0.elapsed().as_secs_f64(),
        gen_seconds / a.count as f64
    );
    Ok(())
}
