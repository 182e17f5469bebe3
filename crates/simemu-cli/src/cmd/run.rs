//! `simemu run [CONFIG.toml]`: the main job as one pipeline.
//!
//! Stages, each writing one directory of the run (`./runs/NAME` by default):
//!
//! | stage | output |
//! |---|---|
//! | simulate the training set | `data/train` |
//! | simulate the held-out set (per validation point) | `data/validation[-K]` |
//! | train the generator, or unpack/point at its checkpoint | `models/GENERATOR` |
//! | with `[generator.select]`: train the other candidates, score them all on held-out sets of their own, keep the best | `models/GENERATOR-candidate-K`, `selection/` |
//! | fit the baselines on the training set | `models/BASELINE` |
//! | generate (per validation point) | `generated[-K]/NAME` |
//! | validate and compare (per validation point) | `report[-K]/` |
//!
//! `run.json` records, for every finished stage, the inputs it was run with; a
//! stage whose output exists and whose inputs match is skipped, so an interrupted
//! run resumes where it stopped (training continues from its last checkpoint) and
//! a changed config redoes exactly the stages it affects. The stages call the same
//! functions as `simemu simulate`, `train`, `generate` and `compare`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use simemu_core::seed::derive_seed;
use simemu_core::Registry;
use simemu_validate::report::{leaderboard_markdown, Leaderboard};
use simemu_validate::StatRequest;

use super::{simulate, train, usage, validate};
use crate::ui;

mod select;

/// The embedded default: the shipped pre-trained emulator against fresh simulations.
pub const DEFAULT_CONFIG: &str = include_str!("../../../../configs/default.toml");

/// A checkpoint's files: (name, content).
type Files = &'static [(&'static str, &'static [u8])];

/// `builtin:NAME` checkpoints compiled into the binary, so the default runs anywhere.
const BUILTIN_MODELS: &[(&str, Files)] = &[(
    "convergence-64",
    &[
        (
            "generator.json",
            include_bytes!("../../../../models/convergence-64/generator.json"),
        ),
        (
            "state.json",
            include_bytes!("../../../../models/convergence-64/state.json"),
        ),
        (
            "generator.safetensors",
            include_bytes!("../../../../models/convergence-64/generator.safetensors"),
        ),
        (
            "generator_ema.safetensors",
            include_bytes!("../../../../models/convergence-64/generator_ema.safetensors"),
        ),
        (
            "discriminator.safetensors",
            include_bytes!("../../../../models/convergence-64/discriminator.safetensors"),
        ),
    ],
)];

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
    #[arg(long, value_parser = train::parse_duration)]
    pub budget: Option<f64>,
    /// Redo every stage.
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Names the run directory.
    pub name: String,
    /// Every stage's seed derives from this one.
    #[serde(default)]
    pub seed: u64,
    pub simulator: SimulatorSection,
    pub data: DataSection,
    pub generator: GeneratorSection,
    #[serde(default)]
    pub validation: ValidationSection,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorSection {
    pub name: String,
    #[serde(default)]
    pub options: serde_json::Map<String, Value>,
    /// Fixed parameter values (others take their defaults).
    #[serde(default)]
    pub params: BTreeMap<String, f64>,
    /// Training grid: NAME = [lo, hi, n] (n evenly spaced values; the product of axes).
    #[serde(default)]
    pub grid: BTreeMap<String, (f64, f64, usize)>,
    /// Training parameters spread over NAME = [lo, hi] instead (a Latin hypercube of
    /// `data.train` points, one sample each): a continuous condition.
    #[serde(default)]
    pub uniform: BTreeMap<String, (f64, f64)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Training samples (per grid point; in all with `simulator.uniform`).
    pub train: usize,
    /// Held-out simulator samples per validation point.
    pub validation: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorSection {
    pub name: String,
    #[serde(default)]
    pub options: serde_json::Map<String, Value>,
    /// Start from this checkpoint instead of training: `builtin:NAME` or a path
    /// (relative to the config file).
    pub checkpoint: Option<String>,
    /// Training steps (default: the generator's).
    pub steps: Option<u64>,
    /// Wall-clock training limit, e.g. "20m" (per candidate with `select`).
    pub budget: Option<String>,
    /// Train several candidates and keep the best on held-out sets of its own.
    pub select: Option<SelectSection>,
}

/// `[generator.select]`, used when the run trains the generator: candidates
/// differ in their training seed alone (same data, same options); each is scored
/// on `sets` fresh held-out sets per validation point, simulated for the selection
/// and never shown to the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectSection {
    /// Models to train; the first has the seed an unselected run trains with.
    pub candidates: usize,
    /// Held-out sets per validation point that score the candidates.
    pub sets: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationSection {
    /// Generated samples per validation point (and per candidate).
    #[serde(default = "default_count")]
    pub count: usize,
    /// Baseline generators trained on the same data and compared alongside.
    #[serde(default = "default_baselines")]
    pub baselines: Vec<String>,
    /// `[[validation.statistic]] name = "...", options...` (default: the four map statistics).
    #[serde(default)]
    pub statistic: Vec<serde_json::Map<String, Value>>,
    /// Parameter points to validate at (conditional runs; default: one point, the
    /// simulator section's parameters).
    #[serde(default)]
    pub points: Vec<BTreeMap<String, f64>>,
    /// The field that single-field statistics read, for samples with several fields.
    pub field: Option<String>,
}

fn default_count() -> usize {
    500
}

fn default_baselines() -> Vec<String> {
    vec!["simulator".into(), "gaussian-field".into()]
}

impl Default for ValidationSection {
    fn default() -> Self {
        serde_json::from_value(serde_json::json!({})).expect("defaults")
    }
}

/// `run.json`: the config and what each finished stage was run with.
#[derive(Default, Serialize, Deserialize)]
struct RunRecord {
    format: String,
    simemu_version: String,
    config: Option<RunConfig>,
    /// Stage name → the inputs of its finished run.
    done: BTreeMap<String, Value>,
    /// Stage name → the inputs of a run that started (training resumes it).
    started: BTreeMap<String, Value>,
    /// Stage name → wall seconds.
    seconds: BTreeMap<String, f64>,
}

struct Pipeline {
    dir: PathBuf,
    record: RunRecord,
    force: bool,
    t0: Instant,
}

impl Pipeline {
    fn record_path(&self) -> PathBuf {
        self.dir.join("run.json")
    }

    fn save(&self) -> Result<()> {
        simemu_core::fsutil::write_json_atomic(&self.record_path(), &self.record)?;
        Ok(())
    }

    /// Runs `work(force, resume)` unless `out` exists and was made from `inputs`.
    fn stage(
        &mut self,
        name: &str,
        inputs: Value,
        out: &Path,
        work: impl FnOnce(bool, bool) -> Result<()>,
    ) -> Result<()> {
        let up_to_date = !self.force && out.exists() && self.record.done.get(name) == Some(&inputs);
        if up_to_date {
            ui::note(&format!(
                "[{:>6.1}s] {name}: up to date",
                self.t0.elapsed().as_secs_f64()
            ));
            return Ok(());
        }
        let resume = !self.force && out.exists() && self.record.started.get(name) == Some(&inputs);
        ui::note(&format!(
            "[{:>6.1}s] {name}{}",
            self.t0.elapsed().as_secs_f64(),
            if resume { " (resuming)" } else { "" }
        ));
        self.record.done.remove(name);
        self.record.started.insert(name.into(), inputs.clone());
        self.save()?;
        let t = Instant::now();
        work(out.exists(), resume).with_context(|| format!("stage '{name}'"))?;
        self.record.started.remove(name);
        self.record.done.insert(name.into(), inputs);
        self.record
            .seconds
            .insert(name.into(), t.elapsed().as_secs_f64());
        self.save()
    }
}

/// `NAME=VALUE` strings from a table, values as JSON literals.
fn assignments<V: Serialize>(table: impl IntoIterator<Item = (String, V)>) -> Vec<String> {
    table
        .into_iter()
        .map(|(k, v)| format!("{k}={}", serde_json::to_value(v).expect("serialisable")))
        .collect()
}

fn load_config(a: &RunArgs) -> Result<(RunConfig, Option<PathBuf>)> {
    let (value, base) = match &a.config {
        Some(p) => (
            super::read_config(p)?,
            Some(p.parent().unwrap_or(Path::new(".")).to_path_buf()),
        ),
        None => {
            let v: toml::Value = toml::from_str(DEFAULT_CONFIG).expect("embedded config parses");
            (serde_json::to_value(v)?, None)
        }
    };
    let what = a
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the embedded default".into());
    let config: RunConfig =
        serde_json::from_value(value).map_err(|e| usage(format!("{what}: {e}")))?;
    if config.data.validation == 0 || config.validation.count == 0 {
        return Err(usage(format!(
            "{what}: data.validation and validation.count must be at least 1"
        )));
    }
    if !config.simulator.grid.is_empty() && !config.simulator.uniform.is_empty() {
        return Err(usage(format!(
            "{what}: simulator.grid and simulator.uniform are alternatives; give one"
        )));
    }
    if let Some(select) = &config.generator.select {
        if select.candidates < 2 || select.sets == 0 {
            return Err(usage(format!(
                "{what}: generator.select needs at least 2 candidates and 1 set (got {} and {})",
                select.candidates, select.sets
            )));
        }
    }
    if config.name.is_empty() || config.name.contains(['/', '\\']) {
        return Err(usage(format!(
            "{what}: name '{}' must be a plain directory name",
            config.name
        )));
    }
    Ok((config, base))
}

/// FNV-1a over a builtin checkpoint's files, so that a new binary with a new
/// shipped model redoes the stages that used the old one.
fn builtin_fingerprint(name: &str) -> Option<String> {
    let (_, files) = BUILTIN_MODELS.iter().find(|(n, _)| *n == name)?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (file, bytes) in *files {
        for b in file.bytes().chain(bytes.iter().copied()) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    Some(format!("{h:016x}"))
}

/// Writes a builtin checkpoint into `out` (atomically).
fn unpack_builtin(name: &str, out: &Path, force: bool) -> Result<()> {
    let files = BUILTIN_MODELS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .ok_or_else(|| usage(format!("no builtin checkpoint '{name}'")))?;
    let dir = simemu_core::fsutil::TempDir::new(out)?;
    for (file, bytes) in files {
        simemu_core::fsutil::write_atomic(&dir.path().join(file), bytes)?;
    }
    dir.persist(force)?;
    Ok(())
}

pub fn run(reg: &Registry, a: &RunArgs) -> Result<()> {
    let (config, base) = load_config(a)?;
    reg.simulator(&config.simulator.name)?;
    reg.generator(&config.generator.name)?;
    for b in &config.validation.baselines {
        reg.generator(b)?;
    }
    let requests: Vec<StatRequest> = if config.validation.statistic.is_empty() {
        simemu_validate::default_stats()
    } else {
        config
            .validation
            .statistic
            .iter()
            .map(|m| {
                let mut m = m.clone();
                let name = m
                    .remove("name")
                    .and_then(|n| n.as_str().map(str::to_string))
                    .ok_or_else(|| usage("every [[validation.statistic]] needs a name"))?;
                reg.statistic(&name)?;
                Ok(StatRequest {
                    name,
                    options: Value::Object(m),
                })
            })
            .collect::<Result<_>>()?
    };
    if let Some(name) = config
        .generator
        .checkpoint
        .as_deref()
        .and_then(|c| c.strip_prefix("builtin:"))
    {
        if builtin_fingerprint(name).is_none() {
            let known: Vec<&str> = BUILTIN_MODELS.iter().map(|(n, _)| *n).collect();
            return Err(usage(format!(
                "generator.checkpoint: no builtin checkpoint '{name}' (builtin: {})",
                known.join(", ")
            )));
        }
    }
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| Path::new("runs").join(&config.name));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let record: RunRecord = std::fs::read_to_string(dir.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut p = Pipeline {
        dir: dir.clone(),
        record,
        force: a.force,
        t0: Instant::now(),
    };
    p.record.format = "simemu-pipeline".into();
    p.record.simemu_version = simemu_core::VERSION.into();
    p.record.config = Some(config.clone());
    p.save()?;

    let sim = &config.simulator;
    let sim_options = assignments(sim.options.clone());
    let seed = |what: &str| derive_seed(config.seed, what);

    // Training data (the generator's unless it starts from a checkpoint; always the baselines').
    let train_dir = dir.join("data/train");
    let train_inputs =
        serde_json::json!({"simulator": sim, "count": config.data.train, "seed": seed("train")});
    p.stage(
        "simulate training set",
        train_inputs.clone(),
        &train_dir,
        |force, _| {
            simulate::run(
                reg,
                seed("train"),
                &simulate_args(
                    sim,
                    &sim_options,
                    &sim.params,
                    (config.data.train, true),
                    &train_dir,
                    force,
                ),
            )
        },
    )?;

    // Validation points: the config's, or the simulator section's parameters.
    let points: Vec<BTreeMap<String, f64>> = if config.validation.points.is_empty() {
        vec![sim.params.clone()]
    } else {
        config.validation.points.clone()
    };
    // Each point's full parameter set: the simulator section's, overridden by the point's.
    let point_params: Vec<BTreeMap<String, f64>> = points
        .iter()
        .map(|point| {
            let mut params = sim.params.clone();
            params.extend(point.iter().map(|(n, v)| (n.clone(), *v)));
            params
        })
        .collect();
    let suffix = |k: usize| {
        if points.len() > 1 {
            format!("-{k}")
        } else {
            String::new()
        }
    };

    // The generator: trained here, or from a checkpoint.
    let checkpoint = match (&config.generator.checkpoint, a.train) {
        (Some(c), false) => Some(c.clone()),
        _ => None,
    };
    let model_dir = dir.join("models").join(&config.generator.name);
    let budget = match (a.budget, &config.generator.budget) {
        (Some(b), _) => Some(b),
        (None, Some(s)) => Some(train::parse_duration(s).map_err(usage)?),
        (None, None) => None,
    };
    let mut model_inputs = serde_json::json!({
        "generator": config.generator.name, "options": config.generator.options,
        "checkpoint": checkpoint,
        "builtin": checkpoint.as_deref().and_then(|c| c.strip_prefix("builtin:")).and_then(builtin_fingerprint),
        "steps": config.generator.steps, "budget_s": budget,
        "data": train_inputs, "seed": seed("generator"),
    });
    let model = match checkpoint.as_deref() {
        Some(c) if c.starts_with("builtin:") => {
            let name = &c["builtin:".len()..];
            p.stage(
                "unpack shipped model",
                model_inputs.clone(),
                &model_dir,
                |force, _| unpack_builtin(name, &model_dir, force),
            )?;
            model_dir.clone()
        }
        Some(c) => {
            let path = base.clone().unwrap_or_default().join(c);
            if !path.exists() {
                return Err(usage(format!(
                    "checkpoint {} does not exist",
                    path.display()
                )));
            }
            path
        }
        None => {
            let options_file = dir
                .join("models")
                .join(format!("{}.json", config.generator.name));
            std::fs::create_dir_all(dir.join("models"))?;
            simemu_core::fsutil::write_json_atomic(&options_file, &config.generator.options)?;
            let train_model =
                |p: &mut Pipeline, stage: &str, inputs: &Value, out: &Path, generator_seed: u64| {
                    let train_args = |resume: bool, force: bool| train::TrainArgs {
                        name: config.generator.name.clone(),
                        data: train_dir.clone(),
                        out: out.to_path_buf(),
                        config: Some(options_file.clone()),
                        options: Vec::new(),
                        steps: config.generator.steps,
                        epochs: None,
                        resume,
                        force,
                        budget,
                    };
                    p.stage(stage, inputs.clone(), out, |force, resume| {
                        let resume = resume && out.join(train::RUN_FILE).exists();
                        if resume {
                            match train::train(reg, generator_seed, &train_args(true, false)) {
                                Ok(()) => return Ok(()),
                                // Interrupted before the first checkpoint: start over.
                                Err(e) => {
                                    tracing::warn!("cannot resume ({e:#}); training from the start")
                                }
                            }
                        }
                        train::train(reg, generator_seed, &train_args(false, force))
                    })
                };
            train_model(
                &mut p,
                "train generator",
                &model_inputs,
                &model_dir,
                seed("generator"),
            )?;
            match &config.generator.select {
                None => model_dir.clone(),
                Some(select) => {
                    let mut trained = vec![(model_dir.clone(), model_inputs.clone())];
                    for c in 1..select.candidates {
                        let generator_seed = seed(&format!("generator-candidate-{c}"));
                        let mut inputs = model_inputs.clone();
                        inputs["seed"] = generator_seed.into();
                        let out = dir
                            .join("models")
                            .join(format!("{}-candidate-{c}", config.generator.name));
                        train_model(
                            &mut p,
                            &format!("train generator candidate {c}"),
                            &inputs,
                            &out,
                            generator_seed,
                        )?;
                        trained.push((out, inputs));
                    }
                    let job = select::Job {
                        reg,
                        run_seed: config.seed,
                        simulator: (sim, &sim_options),
                        points: &point_params,
                        counts: (config.data.validation, config.validation.count),
                        statistics: (&requests, config.validation.field.as_deref()),
                        sets: select.sets,
                    };
                    let chosen = select::choose(&mut p, &job, &trained)?;
                    let (path, inputs) = trained.swap_remove(chosen);
                    model_inputs = inputs;
                    path
                }
            }
        }
    };

    // Baselines, fitted on the training set.
    let mut candidates: Vec<(String, PathBuf, Value)> = vec![(
        config.generator.name.clone(),
        model.clone(),
        model_inputs.clone(),
    )];
    for b in &config.validation.baselines {
        let out = dir.join("models").join(b);
        let inputs = serde_json::json!({"generator": b, "data": train_inputs, "seed": seed(b)});
        p.stage(
            &format!("fit baseline {b}"),
            inputs.clone(),
            &out,
            |force, _| {
                train::train(
                    reg,
                    seed(b),
                    &train::TrainArgs {
                        name: b.clone(),
                        data: train_dir.clone(),
                        out: out.clone(),
                        config: None,
                        options: Vec::new(),
                        steps: None,
                        epochs: None,
                        resume: false,
                        force,
                        budget: None,
                    },
                )
            },
        )?;
        candidates.push((b.clone(), out, inputs));
    }

    let conditional =
        conditional_flags(reg, candidates.iter().map(|(_, checkpoint, _)| checkpoint))?;
    let mut leaderboards = Vec::new();
    for (k, params) in point_params.iter().enumerate() {
        let validation_dir = dir.join(format!("data/validation{}", suffix(k)));
        let validation_inputs = serde_json::json!({"simulator": sim, "params": params, "count": config.data.validation, "seed": seed(&format!("validation-{k}"))});
        p.stage(
            &format!("simulate validation set{}", suffix(k)),
            validation_inputs.clone(),
            &validation_dir,
            |force, _| {
                let args = simulate_args(
                    sim,
                    &sim_options,
                    params,
                    (config.data.validation, false),
                    &validation_dir,
                    force,
                );
                simulate::run(reg, seed(&format!("validation-{k}")), &args)
            },
        )?;
        let mut generated = Vec::new();
        for ((name, checkpoint, inputs), &conditional) in candidates.iter().zip(&conditional) {
            let out = dir.join(format!("generated{}", suffix(k))).join(name);
            let gen_params = generation_params(conditional, params);
            let gen_seed = seed(&format!("generate-{k}"));
            let gen_inputs = serde_json::json!({"model": inputs, "params": gen_params, "count": config.validation.count, "seed": gen_seed});
            p.stage(
                &format!("generate {name}{}", suffix(k)),
                gen_inputs,
                &out,
                |force, _| {
                    train::generate(
                        reg,
                        gen_seed,
                        &train::GenerateArgs {
                            checkpoint: checkpoint.clone(),
                            count: config.validation.count,
                            params: gen_params.clone(),
                            out: out.clone(),
                            batch: 64,
                            label: Some(name.clone()),
                            force,
                        },
                    )
                },
            )?;
            generated.push(out);
        }
        let report_dir = dir.join(format!("report{}", suffix(k)));
        let report_inputs = serde_json::json!({"reference": validation_inputs, "candidates": p.record.done.iter().filter(|(n, _)| n.starts_with("generate")).collect::<BTreeMap<_, _>>(), "statistics": requests});
        p.stage(
            &format!("validate and compare{}", suffix(k)),
            report_inputs,
            &report_dir,
            |force, _| {
                validate::compare_sets(
                    reg,
                    &validation_dir,
                    &generated,
                    (&requests, config.validation.field.as_deref()),
                    &report_dir,
                    force,
                )
                .map(|_| ())
            },
        )?;
        let lb: Leaderboard = serde_json::from_str(
            &std::fs::read_to_string(report_dir.join("leaderboard.json"))
                .context("reading the leaderboard")?,
        )?;
        leaderboards.push((params.clone(), report_dir, lb));
    }

    for (params, report_dir, lb) in &leaderboards {
        if points.len() > 1 {
            println!("\n## {}\n", assignments(params.clone()).join(", "));
        }
        println!("{}", leaderboard_markdown(lb));
        println!("report: {}", report_dir.join("leaderboard.md").display());
    }
    if leaderboards.len() > 1 {
        write_responses(&dir, &leaderboards)?;
    }
    ui::note(&format!(
        "run finished in {:.1}s: {}",
        p.t0.elapsed().as_secs_f64(),
        dir.display()
    ));
    Ok(())
}

/// For every pair of neighbouring validation points that differ in one parameter,
/// how each candidate's statistics respond to the change compared with the simulator's
/// (`response.md` / `response.json` in the run directory).
fn write_responses(
    dir: &Path,
    leaderboards: &[(BTreeMap<String, f64>, PathBuf, Leaderboard)],
) -> Result<()> {
    use simemu_validate::response::{response, response_markdown};
    let read_report = |report_dir: &Path, row: &simemu_validate::report::LeaderboardRow| {
        let path = report_dir.join(row.report.replace("report.md", "report.json"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str::<simemu_validate::Report>(&text)
            .with_context(|| format!("parsing {}", path.display()))
    };
    let mut md = String::from("# Parameter response

Between neighbouring validation points that differ in one parameter: the ratio of each statistic's mean at the second point to that at the first, for the simulator (held-out sets) and for each emulator, per bin; error = emulator ratio / simulator ratio − 1.

");
    let mut json = Vec::new();
    let mut summary = Vec::new();
    for (i, (pa, da, la)) in leaderboards.iter().enumerate() {
        for (pb, db, lb) in &leaderboards[i + 1..] {
            let changed: Vec<&String> = pa.keys().filter(|k| pa[*k] != pb[*k]).collect();
            if changed.len() != 1 {
                continue;
            }
            // Neighbours only: a point between the two along the changed parameter
            // (the others equal) makes the pair the sum of two shorter steps.
            let axis = changed[0];
            let (lo, hi) = (pa[axis].min(pb[axis]), pa[axis].max(pb[axis]));
            let between = leaderboards.iter().any(|(pc, _, _)| {
                pc.iter().all(|(k, v)| k == axis || pa.get(k) == Some(v))
                    && pc.get(axis).is_some_and(|&v| v > lo && v < hi)
            });
            if between {
                continue;
            }
            let (from, to) = (
                assignments(pa.clone()).join(", "),
                assignments(pb.clone()).join(", "),
            );
            for ra in &la.rows {
                let Some(rb) = lb.rows.iter().find(|r| r.candidate == ra.candidate) else {
                    continue;
                };
                let responses = response(&read_report(da, ra)?, &read_report(db, rb)?);
                md.push_str(&response_markdown(
                    &format!("{}: {from} → {to}", ra.candidate),
                    &responses,
                ));
                for c in &responses {
                    if let Some(e) = c.max_abs_error {
                        summary.push(format!(
                            "response {} {} → {} ({}): {} {} largest |error| {:.1}%",
                            ra.candidate,
                            serde_json::json!(pa),
                            serde_json::json!(pb),
                            changed[0],
                            c.statistic,
                            c.component,
                            100.0 * e
                        ));
                    }
                }
                json.push(serde_json::json!({"candidate": ra.candidate, "from": pa, "to": pb, "changed": changed[0], "components": responses}));
            }
        }
    }
    if json.is_empty() {
        return Ok(());
    }
    simemu_core::fsutil::write_atomic(&dir.join("response.md"), md.as_bytes())?;
    simemu_core::fsutil::write_json_atomic(&dir.join("response.json"), &json)?;
    for line in &summary {
        println!("{line}");
    }
    println!("parameter response: {}", dir.join("response.md").display());
    Ok(())
}

/// Whether each checkpoint's generator is conditional (loading a generator is
/// not free: once per checkpoint, not per set it generates).
fn conditional_flags<'a>(
    reg: &Registry,
    checkpoints: impl IntoIterator<Item = &'a PathBuf>,
) -> Result<Vec<bool>> {
    checkpoints
        .into_iter()
        .map(|checkpoint| train::is_conditional(reg, checkpoint))
        .collect()
}

/// The condition a generator generates at: `params` if it is conditional, none
/// otherwise.
fn generation_params(conditional: bool, params: &BTreeMap<String, f64>) -> Vec<String> {
    if conditional {
        assignments(params.clone())
    } else {
        Vec::new()
    }
}

/// `simemu simulate` arguments for the training set (`training`: the grid or the
/// uniform design over the varied parameters) or a held-out set at `params`.
fn simulate_args(
    sim: &SimulatorSection,
    options: &[String],
    params: &BTreeMap<String, f64>,
    (count, training): (usize, bool),
    out: &Path,
    force: bool,
) -> simulate::SimulateArgs {
    let varied = |n: &String| sim.grid.contains_key(n) || sim.uniform.contains_key(n);
    let latin = training && !sim.uniform.is_empty();
    simulate::SimulateArgs {
        name: sim.name.clone(),
        params: assignments(
            params
                .iter()
                .filter(|(n, _)| !(training && varied(n)))
                .map(|(n, v)| (n.clone(), *v)),
        ),
        options: options.to_vec(),
        // A uniform design has `count` points of one sample each.
        count: if latin { 1 } else { count },
        grid: if training {
            sim.grid
                .iter()
                .map(|(n, (lo, hi, k))| format!("{n}={lo}:{hi}:{k}"))
                .collect()
        } else {
            Vec::new()
        },
        latin_hypercube: latin.then_some(count),
        ranges: if latin {
            sim.uniform
                .iter()
                .map(|(n, (lo, hi))| format!("{n}={lo}:{hi}"))
                .collect()
        } else {
            Vec::new()
        },
        shard: None,
        shard_size: simemu_core::dataset::DEFAULT_SHARD_SIZE,
        out: out.to_path_buf(),
        force,
    }
}
