//! The main job: one config, every stage, resumable.
//!
//! Stages, each writing one directory of the run:
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
//! a changed config redoes exactly the stages it affects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use simemu_core::seed::derive_seed;
use simemu_core::Registry;
use simemu_validate::report::Leaderboard;
use simemu_validate::StatRequest;

use crate::error::{io, request, Context, Result};
use crate::response::{write_responses, Responses};
use crate::{
    compare, generate, is_conditional, select, simulate, train, CompareRequest, Design,
    GenerateRequest, GridAxis, LatinHypercube, Observer, RangeAxis, SimulateRequest, TrainRequest,
    RUN_FILE,
};

/// The embedded default config: the shipped pre-trained emulator against fresh
/// simulations.
pub const DEFAULT_CONFIG: &str = include_str!("../../../configs/default.toml");

/// A `simemu run` config (TOML; see configs/).
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
    /// With `uniform`: the Latin hypercube has this many points, each with
    /// `data.train` samples (a design of points, as a grid is, but spread).
    pub points: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Training samples (per grid point; in all with `simulator.uniform`, or per
    /// point with `simulator.points`).
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
    /// Where the generator trains and generates: "cpu" (the default), "cuda" or
    /// "cuda:N" (`--device` on the command line takes precedence).
    pub device: Option<simemu_core::ComputeDevice>,
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
    /// Tests on whole samples and statistic vectors run beside the per-bin KS
    /// tests: `fpd`, `kpd`, `covariance`, `c2st`, `c2st-stats`.
    #[serde(default)]
    pub tests: Vec<simemu_validate::vector::VectorTest>,
    /// `[[validation.response_statistic]]`: statistics measured only for the
    /// parameter response (`response.md`), beside the reports' own. Give them
    /// fixed bins (thresholds in physical values): bins drawn from each point's
    /// reference quantiles differ between points and cannot be compared.
    #[serde(default)]
    pub response_statistic: Vec<serde_json::Map<String, Value>>,
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

impl RunConfig {
    /// The embedded default.
    pub fn embedded_default() -> Self {
        let value: toml::Value = toml::from_str(DEFAULT_CONFIG).expect("embedded config parses");
        let value = serde_json::to_value(value).expect("TOML is JSON");
        RunConfig::from_value(value, "the embedded default").expect("embedded config is valid")
    }

    /// A config from its JSON form (TOML converts to it), checked; `what` names it
    /// in errors.
    pub fn from_value(value: Value, what: &str) -> Result<Self> {
        let config: RunConfig =
            serde_json::from_value(value).map_err(|e| request(format!("{what}: {e}")))?;
        if config.data.validation == 0 || config.validation.count == 0 {
            return Err(request(format!(
                "{what}: data.validation and validation.count must be at least 1"
            )));
        }
        if !config.simulator.grid.is_empty() && !config.simulator.uniform.is_empty() {
            return Err(request(format!(
                "{what}: simulator.grid and simulator.uniform are alternatives; give one"
            )));
        }
        if config.simulator.points.is_some() && config.simulator.uniform.is_empty() {
            return Err(request(format!(
                "{what}: simulator.points sets the size of a Latin hypercube over simulator.uniform, which is not given"
            )));
        }
        if config.simulator.points == Some(0) {
            return Err(request(format!(
                "{what}: simulator.points must be at least 1"
            )));
        }
        if let Some(select) = &config.generator.select {
            if select.candidates < 2 || select.sets == 0 {
                return Err(request(format!(
                    "{what}: generator.select needs at least 2 candidates and 1 set (got {} and {})",
                    select.candidates, select.sets
                )));
            }
        }
        if let Err(e) = simemu_core::fsutil::check_plain_name(&config.name) {
            return Err(request(format!("{what}: the run's name {e}")));
        }
        Ok(config)
    }
}

impl SimulatorSection {
    /// The design of the training set (`train` samples per grid point, or a
    /// Latin hypercube of `train` points of one sample each) or of a held-out
    /// set of `count` samples at `params`.
    pub(crate) fn design(
        &self,
        params: &BTreeMap<String, f64>,
        count: usize,
        training: bool,
    ) -> Design {
        let varied = |n: &String| self.grid.contains_key(n) || self.uniform.contains_key(n);
        let fixed = params
            .iter()
            .filter(|(n, _)| !(training && varied(n)))
            .map(|(n, v)| (n.clone(), *v))
            .collect();
        let mut design = Design::at(fixed, count);
        if !training {
            return design;
        }
        design.grid = self
            .grid
            .iter()
            .map(|(name, &(lo, hi, n))| GridAxis {
                name: name.clone(),
                lo,
                hi,
                n,
            })
            .collect();
        if !self.uniform.is_empty() {
            let (points, per_point) = match self.points {
                Some(points) => (points, count),
                None => (count, 1),
            };
            design.count = per_point;
            design.latin_hypercube = Some(LatinHypercube {
                points,
                ranges: self
                    .uniform
                    .iter()
                    .map(|(name, &(lo, hi))| RangeAxis {
                        name: name.clone(),
                        lo,
                        hi,
                    })
                    .collect(),
            });
        }
        design
    }

    /// Simulates a set into `out` with the run seed `seed`: the training set
    /// (`training`, `count` as in [`DataSection::train`]) or `count` held-out
    /// samples at `params`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn simulate_set(
        &self,
        reg: &Registry,
        params: &BTreeMap<String, f64>,
        (count, training): (usize, bool),
        seed: u64,
        out: &Path,
        force: bool,
        obs: &dyn Observer,
    ) -> Result<()> {
        let request = SimulateRequest {
            simulator: &self.name,
            options: &Value::Object(self.options.clone()),
            design: &self.design(params, count, training),
            seed,
            shard: None,
            shard_size: simemu_core::dataset::DEFAULT_SHARD_SIZE,
            out,
            force,
        };
        simulate(reg, &request, obs).map(|_| ())
    }
}

/// How to run a config.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The run directory (default: `runs/NAME`).
    pub out: Option<PathBuf>,
    /// The directory relative checkpoint paths in the config start from (the
    /// config file's; None: the working directory).
    pub base: Option<PathBuf>,
    /// Train the generator even if the config names a checkpoint.
    pub train: bool,
    /// Wall-clock training limit in seconds, over the config's.
    pub budget_seconds: Option<f64>,
    /// Redo every stage.
    pub force: bool,
    /// Where the generator computes, over the config's `[generator] device`.
    pub device: Option<simemu_core::ComputeDevice>,
}

impl RunOptions {
    /// The device `config`'s generator computes on: this run's choice, else the
    /// config's, else the CPU.
    pub fn device(&self, config: &RunConfig) -> simemu_core::ComputeDevice {
        self.device.or(config.generator.device).unwrap_or_default()
    }
}

/// What a run produced.
pub struct RunOutcome {
    pub dir: PathBuf,
    /// One per validation point, in the config's order.
    pub points: Vec<PointOutcome>,
    /// With several validation points: how the candidates respond between them.
    pub responses: Option<Responses>,
    pub seconds: f64,
}

/// A validation point's leaderboard.
pub struct PointOutcome {
    /// The point's full parameters.
    pub params: BTreeMap<String, f64>,
    pub report_dir: PathBuf,
    pub leaderboard: Leaderboard,
    /// The held-out simulator set.
    pub reference: PathBuf,
    /// Each candidate's generated set, in the leaderboard's order.
    pub generated: Vec<PathBuf>,
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

/// The run directory and its record.
pub(crate) struct Pipeline<'o> {
    pub(crate) dir: PathBuf,
    record: RunRecord,
    force: bool,
    t0: Instant,
    obs: &'o dyn Observer,
}

impl<'o> Pipeline<'o> {
    fn save(&self) -> Result<()> {
        simemu_core::fsutil::write_json_atomic(&self.dir.join("run.json"), &self.record)?;
        Ok(())
    }

    /// Runs `work(force, resume)` unless `out` exists and was made from `inputs`.
    pub(crate) fn stage(
        &mut self,
        name: &str,
        inputs: Value,
        out: &Path,
        work: impl FnOnce(bool, bool) -> Result<()>,
    ) -> Result<()> {
        let up_to_date = !self.force && out.exists() && self.record.done.get(name) == Some(&inputs);
        if up_to_date {
            self.obs.note(&format!(
                "[{:>6.1}s] {name}: up to date",
                self.t0.elapsed().as_secs_f64()
            ));
            return Ok(());
        }
        let resume = !self.force && out.exists() && self.record.started.get(name) == Some(&inputs);
        self.obs.note(&format!(
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

    pub(crate) fn observer(&self) -> &'o dyn Observer {
        self.obs
    }
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

/// The statistics a config asks for (default: the harness's four).
fn stat_requests(reg: &Registry, config: &RunConfig) -> Result<Vec<StatRequest>> {
    if config.validation.statistic.is_empty() {
        return Ok(simemu_validate::default_stats());
    }
    statistic_requests(reg, &config.validation.statistic, "validation.statistic")
}

/// Statistic requests from a file's `[[SECTION]]` tables, each a `name` and the
/// statistic's options; an unknown statistic or a table without a name is
/// refused.
pub fn statistic_requests(
    reg: &Registry,
    tables: &[serde_json::Map<String, Value>],
    section: &str,
) -> Result<Vec<StatRequest>> {
    tables
        .iter()
        .map(|m| {
            let mut m = m.clone();
            let name = m
                .remove("name")
                .and_then(|n| n.as_str().map(str::to_string))
                .ok_or_else(|| request(format!("every [[{section}]] needs a name")))?;
            reg.statistic(&name)?;
            Ok(StatRequest {
                name,
                options: Value::Object(m),
            })
        })
        .collect()
}

/// Options that describe the data rather than a statistic (a map's side
/// angle): every statistic may be given them, and those that do not need them
/// ignore them.
pub const DATASET_FACTS: &[&str] = &["angle_deg"];

/// The requests for statistics `names` given one table of options, as a
/// command line gives them: each statistic gets the options it declares; an
/// option no chosen statistic declares is refused, unless it is one of
/// [`DATASET_FACTS`], which must be positive numbers. `spelling` writes an
/// option's name as the caller's user typed it (`--angle-deg`, `angle_deg`).
pub fn statistic_requests_for(
    reg: &Registry,
    names: &[String],
    given: &serde_json::Map<String, Value>,
    spelling: &dyn Fn(&str) -> String,
) -> Result<Vec<StatRequest>> {
    check_dataset_facts(given, spelling)?;
    let mut used: std::collections::HashSet<&str> = DATASET_FACTS.iter().copied().collect();
    let mut out = Vec::new();
    for (k, name) in names.iter().enumerate() {
        if names[..k].contains(name) {
            return Err(request(format!("the statistic '{name}' is given twice")));
        }
        let entry = reg.statistic(name)?;
        let mut options = serde_json::Map::new();
        for spec in &entry.options {
            if let Some((k, v)) = given.get_key_value(&spec.name) {
                options.insert(k.clone(), v.clone());
                used.insert(k);
            }
        }
        out.push(StatRequest {
            name: name.clone(),
            options: Value::Object(options),
        });
    }
    if let Some(k) = given.keys().find(|k| !used.contains(k.as_str())) {
        return Err(request(format!(
            "option '{}' is not an option of {}",
            spelling(k),
            names.join(", ")
        )));
    }
    Ok(out)
}

/// Refuses a [`DATASET_FACTS`] entry of `given` that is not a positive number.
pub fn check_dataset_facts(
    given: &serde_json::Map<String, Value>,
    spelling: &dyn Fn(&str) -> String,
) -> Result<()> {
    for fact in DATASET_FACTS {
        if let Some(v) = given.get(*fact) {
            if !v.as_f64().is_some_and(|a| a.is_finite() && a > 0.0) {
                // JSON has no NaN or infinity: such a value arrives as null.
                let v = if v.is_null() {
                    "(not finite)".into()
                } else {
                    v.to_string()
                };
                return Err(request(format!(
                    "{} {v}: the angle must be positive",
                    spelling(fact)
                )));
            }
        }
    }
    Ok(())
}

/// The condition a generator generates at: `params` if it is conditional, none
/// otherwise.
pub(crate) fn generation_params(
    conditional: bool,
    params: &BTreeMap<String, f64>,
) -> Vec<(String, f64)> {
    if conditional {
        params.iter().map(|(n, v)| (n.clone(), *v)).collect()
    } else {
        Vec::new()
    }
}

/// Whether each checkpoint's generator is conditional (loading a generator is
/// not free: once per checkpoint, not per set it generates).
pub(crate) fn conditional_flags<'a>(
    reg: &Registry,
    checkpoints: impl IntoIterator<Item = &'a PathBuf>,
) -> Result<Vec<bool>> {
    checkpoints
        .into_iter()
        .map(|checkpoint| is_conditional(reg, checkpoint))
        .collect()
}

/// `NAME=VALUE, …` of a parameter point, as headings name it.
pub fn point_label(params: &BTreeMap<String, f64>) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", serde_json::json!(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs a config: every stage not already up to date in the run directory.
pub fn run(
    reg: &Registry,
    config: &RunConfig,
    options: &RunOptions,
    obs: &dyn Observer,
) -> Result<RunOutcome> {
    reg.simulator(&config.simulator.name)?;
    reg.generator(&config.generator.name)?;
    for b in &config.validation.baselines {
        reg.generator(b)?;
    }
    let requests = stat_requests(reg, config)?;
    if config.validation.points.is_empty() {
        let varied = config
            .simulator
            .grid
            .keys()
            .chain(config.simulator.uniform.keys());
        let unplaced: Vec<&str> = varied
            .filter(|name| !config.simulator.params.contains_key(*name))
            .map(String::as_str)
            .collect();
        if !unplaced.is_empty() {
            return Err(request(format!(
                "the training data vary {}: give [validation] points = [{{ {} }}, …], the parameter points to validate at",
                unplaced.join(", "),
                unplaced.iter().map(|n| format!("{n} = …")).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let builtin = config
        .generator
        .checkpoint
        .as_deref()
        .and_then(simemu_models::builtin_name)
        .map(simemu_models::find)
        .transpose()
        .context("generator.checkpoint")?;
    let dir = options
        .out
        .clone()
        .unwrap_or_else(|| Path::new("runs").join(&config.name));
    let foreign = std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some())
        && !dir.join("run.json").exists();
    if foreign {
        return Err(simemu_core::Error::Refused(format!(
            "{} holds files but no run.json: not a simemu run directory; choose another --out",
            dir.display()
        ))
        .into());
    }
    std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
    // One process at a time in a run directory.
    let _lock = simemu_core::fsutil::DirLock::acquire(&dir)?;
    let record: RunRecord = std::fs::read_to_string(dir.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let mut p = Pipeline {
        dir: dir.clone(),
        record,
        force: options.force,
        t0: Instant::now(),
        obs,
    };
    p.record.format = "simemu-pipeline".into();
    p.record.simemu_version = simemu_core::VERSION.into();
    p.record.config = Some(config.clone());
    p.save()?;

    let sim = &config.simulator;
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
            let count = (config.data.train, true);
            sim.simulate_set(
                reg,
                &sim.params,
                count,
                seed("train"),
                &train_dir,
                force,
                obs,
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
    let checkpoint = match (&config.generator.checkpoint, options.train) {
        (Some(c), false) => Some(c.clone()),
        _ => None,
    };
    let model_dir = dir.join("models").join(&config.generator.name);
    let budget = match (options.budget_seconds, &config.generator.budget) {
        (Some(b), _) => Some(b),
        (None, Some(s)) => Some(parse_duration(s).map_err(request)?),
        (None, None) => None,
    };
    let device = options.device(config);
    let mut model_inputs = serde_json::json!({
        "generator": config.generator.name, "options": config.generator.options,
        "checkpoint": checkpoint,
        "builtin": checkpoint.as_ref().and(builtin).map(|b| b.fingerprint()),
        "steps": config.generator.steps, "budget_s": budget,
        "data": train_inputs, "seed": seed("generator"),
    });
    if !device.is_cpu() {
        // Another device rounds differently: what it trains and generates are
        // other stages' results (a CPU run's records stay as they were).
        model_inputs["device"] = device.to_string().into();
    }
    let model = match (checkpoint.as_deref(), builtin) {
        (Some(_), Some(builtin)) => {
            p.stage(
                "unpack shipped model",
                model_inputs.clone(),
                &model_dir,
                |force, _| Ok(builtin.unpack(&model_dir, force)?),
            )?;
            model_dir.clone()
        }
        (Some(c), None) => {
            let path = options.base.clone().unwrap_or_default().join(c);
            if !path.exists() {
                return Err(request(format!(
                    "checkpoint {} does not exist",
                    path.display()
                )));
            }
            path
        }
        (None, _) => {
            let options_file = dir
                .join("models")
                .join(format!("{}.json", config.generator.name));
            let models = dir.join("models");
            std::fs::create_dir_all(&models).map_err(|e| io(&models, e))?;
            simemu_core::fsutil::write_json_atomic(&options_file, &config.generator.options)?;
            let generator_config = Value::Object(config.generator.options.clone());
            let train_model =
                |p: &mut Pipeline, stage: &str, inputs: &Value, out: &Path, generator_seed: u64| {
                    let train_request = |resume: bool, force: bool| TrainRequest {
                        generator: config.generator.name.clone(),
                        data: train_dir.clone(),
                        out: out.to_path_buf(),
                        config: generator_config.clone(),
                        steps: config.generator.steps,
                        epochs: None,
                        resume,
                        force,
                        budget_seconds: budget,
                        device,
                    };
                    p.stage(stage, inputs.clone(), out, |force, resume| {
                        let resume = resume && out.join(RUN_FILE).exists();
                        if resume {
                            match train(reg, Some(generator_seed), &train_request(true, false), obs)
                            {
                                Ok(_) => return Ok(()),
                                // Interrupted before the first checkpoint: start over.
                                Err(e) => tracing::warn!(
                                    "cannot resume ({}); training from the start",
                                    e.with_causes()
                                ),
                            }
                        }
                        train(reg, Some(generator_seed), &train_request(false, force), obs)
                            .map(|_| ())
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
                Some(selection) => {
                    let mut trained = vec![(model_dir.clone(), model_inputs.clone())];
                    for c in 1..selection.candidates {
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
                        simulator: sim,
                        points: &point_params,
                        counts: (config.data.validation, config.validation.count),
                        statistics: (&requests, config.validation.field.as_deref()),
                        sets: selection.sets,
                        device,
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
                let baseline = TrainRequest {
                    generator: b.clone(),
                    data: train_dir.clone(),
                    out: out.clone(),
                    config: Value::Null,
                    steps: None,
                    epochs: None,
                    resume: false,
                    force,
                    budget_seconds: None,
                    device,
                };
                train(reg, Some(seed(b)), &baseline, obs).map(|_| ())
            },
        )?;
        candidates.push((b.clone(), out, inputs));
    }

    let conditional =
        conditional_flags(reg, candidates.iter().map(|(_, checkpoint, _)| checkpoint))?;
    let mut outcomes = Vec::new();
    for (k, params) in point_params.iter().enumerate() {
        let validation_dir = dir.join(format!("data/validation{}", suffix(k)));
        let validation_seed = seed(&format!("validation-{k}"));
        let validation_inputs = serde_json::json!({"simulator": sim, "params": params, "count": config.data.validation, "seed": validation_seed});
        p.stage(
            &format!("simulate validation set{}", suffix(k)),
            validation_inputs.clone(),
            &validation_dir,
            |force, _| {
                let count = (config.data.validation, false);
                let out = &validation_dir;
                sim.simulate_set(reg, params, count, validation_seed, out, force, obs)
            },
        )?;
        let mut generated = Vec::new();
        for ((name, checkpoint, inputs), &conditional) in candidates.iter().zip(&conditional) {
            let out = dir.join(format!("generated{}", suffix(k))).join(name);
            let gen_params = generation_params(conditional, params);
            let gen_seed = seed(&format!("generate-{k}"));
            let gen_inputs = serde_json::json!({"model": inputs, "params": gen_params.iter().map(|(n, v)| format!("{n}={}", serde_json::json!(v))).collect::<Vec<_>>(), "count": config.validation.count, "seed": gen_seed});
            p.stage(
                &format!("generate {name}{}", suffix(k)),
                gen_inputs,
                &out,
                |force, _| {
                    generate(
                        reg,
                        gen_seed,
                        &GenerateRequest {
                            checkpoint: checkpoint.clone(),
                            count: config.validation.count,
                            params: gen_params.clone(),
                            out: out.clone(),
                            batch: 64,
                            label: Some(name.clone()),
                            force,
                            device,
                        },
                        obs,
                    )
                },
            )?;
            generated.push(out);
        }
        let report_dir = dir.join(format!("report{}", suffix(k)));
        let report_inputs = serde_json::json!({"reference": validation_inputs, "candidates": p.record.done.iter().filter(|(n, _)| n.starts_with("generate")).collect::<BTreeMap<_, _>>(), "statistics": requests, "tests": config.validation.tests});
        p.stage(
            &format!("validate and compare{}", suffix(k)),
            report_inputs,
            &report_dir,
            |force, _| {
                compare(
                    reg,
                    &CompareRequest {
                        reference: &validation_dir,
                        candidates: &generated,
                        statistics: &requests,
                        vector_tests: &config.validation.tests,
                        field: config.validation.field.as_deref(),
                        out: &report_dir,
                        force,
                    },
                    obs,
                )
                .map(|_| ())
            },
        )?;
        let path = report_dir.join("leaderboard.json");
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        let leaderboard: Leaderboard = serde_json::from_str(&text)
            .map_err(|e| simemu_core::Error::bad_file(&path, e.to_string()))?;
        outcomes.push(PointOutcome {
            params: params.clone(),
            report_dir,
            leaderboard,
            reference: validation_dir,
            generated,
        });
    }
    let responses = if outcomes.len() > 1 {
        let extra = statistic_requests(
            reg,
            &config.validation.response_statistic,
            "validation.response_statistic",
        )?;
        let field = config.validation.field.as_deref();
        write_responses(reg, &dir, &outcomes, (&extra, field))?
    } else {
        None
    };
    Ok(RunOutcome {
        dir,
        points: outcomes,
        responses,
        seconds: p.t0.elapsed().as_secs_f64(),
    })
}
