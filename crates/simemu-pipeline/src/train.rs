//! Training and generation: the plumbing every generator plugin shares.
//!
//! Run-directory contract: `RUN_DIR/generator.json` names the generator plugin and
//! holds its configuration; everything else in the directory belongs to the plugin.
//! A checkpoint is the run directory or any directory below it (a plugin's
//! per-step checkpoint), or `builtin:NAME`, a shipped one; the plugin's loader
//! receives its path.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use simemu_core::dataset::{source_record, DatasetSpec, DatasetWriter};
use simemu_core::params::resolve_params;
use simemu_core::seed::sample_seed;
use simemu_core::{
    ComputeDevice, Dataset, Generator, GeneratorContext, Registry, TrainOptions, TrainSummary,
};

use crate::error::{io, request, Context, Result};
use crate::Observer;

/// The run file's name inside a run directory.
pub const RUN_FILE: &str = "generator.json";

/// `generator.json`: which plugin trained the run, with what.
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

/// A training run.
pub struct TrainRequest {
    /// The generator plugin's name.
    pub generator: String,
    /// The training dataset.
    pub data: PathBuf,
    /// The run directory.
    pub out: PathBuf,
    /// The generator's configuration (a table; `null`: its defaults).
    pub config: serde_json::Value,
    pub steps: Option<u64>,
    pub epochs: Option<u64>,
    /// Continue the run in `out` from its last checkpoint.
    pub resume: bool,
    /// Replace an existing run directory.
    pub force: bool,
    /// Wall-clock limit in seconds (generators that support it stop there).
    pub budget_seconds: Option<f64>,
    /// Where the generator computes.
    pub device: ComputeDevice,
}

/// Trains (or resumes) a generator into its run directory. `seed` (`None`: not
/// given) starts a run with that seed (0 by default); a resumed run keeps the
/// seed it was started with, and a different one is refused.
///
/// A new run is written straight into `out`, so that `--resume` continues it
/// after an interruption; a run that replaces one (`force`) is trained beside it
/// and takes its place only once complete: until then the old run stays.
pub fn train(
    reg: &Registry,
    seed: Option<u64>,
    r: &TrainRequest,
    obs: &dyn Observer,
) -> Result<TrainSummary> {
    let entry = reg.generator(&r.generator)?;
    simemu_core::fsutil::refuse_overlap(&r.out, &[&r.data])?;
    let data = Dataset::open(&r.data)?;
    // The configuration is checked before anything is written.
    let context = GeneratorContext {
        registry: reg,
        device: r.device,
    };
    let mut generator = (entry.build)(&r.config, &context)?;
    let mut staged = None;
    let mut lock = None;
    let seed = if r.resume {
        let prev = read_run_file(&r.out.join(RUN_FILE))?;
        if prev.generator != r.generator {
            return Err(request(format!(
                "{} holds a '{}' run, not '{}'",
                r.out.display(),
                prev.generator,
                r.generator
            )));
        }
        if seed.is_some_and(|s| s != prev.seed) {
            return Err(request(format!(
                "{} was started with seed {}; --resume continues it with that seed (leave out --seed)",
                r.out.display(),
                prev.seed
            )));
        }
        lock = Some(simemu_core::fsutil::DirLock::acquire(&r.out)?);
        prev.seed
    } else {
        if r.out.exists() {
            if !r.force {
                return Err(request(format!(
                    "{} already exists (use --resume to continue it or --force to replace it)",
                    r.out.display()
                )));
            }
            simemu_core::fsutil::check_output(
                &r.out,
                true,
                simemu_core::fsutil::OutputKind::Directory,
            )?;
            staged = Some(simemu_core::fsutil::TempDir::new(&r.out)?);
        } else {
            std::fs::create_dir_all(&r.out).map_err(|e| io(&r.out, e))?;
            lock = Some(simemu_core::fsutil::DirLock::acquire(&r.out)?);
        }
        seed.unwrap_or(0)
    };
    let dir = staged
        .as_ref()
        .map(|t| t.path().to_path_buf())
        .unwrap_or_else(|| r.out.clone());
    let run_file = dir.join(RUN_FILE);
    let mut run = RunFile {
        format: "simemu-run".into(),
        version: 1,
        generator: r.generator.clone(),
        config: generator.config(),
        data: data.path().display().to_string(),
        seed,
        simemu_version: simemu_core::VERSION.into(),
        train: serde_json::Value::Null,
    };
    simemu_core::fsutil::write_json_atomic(&run_file, &run)?;
    let options = TrainOptions {
        run_dir: dir.clone(),
        steps: r.steps,
        epochs: r.epochs,
        resume: r.resume,
        seed,
        progress: obs.shows_progress(),
        budget_seconds: r.budget_seconds,
    };
    let t0 = Instant::now();
    let summary = generator.train(&data, &options, reg)?;
    generator.save(&dir)?;
    run.train = serde_json::to_value(&summary).map_err(|e| request(e.to_string()))?;
    run.train["wall_seconds"] = t0.elapsed().as_secs_f64().into();
    simemu_core::fsutil::write_json_atomic(&run_file, &run)?;
    // Run-directory convention: a plugin's `training.csv` (step, then numeric
    // columns) is plotted for people to look at.
    let csv = dir.join("training.csv");
    if csv.exists() {
        simemu_validate::plots::plot_csv(
            &csv,
            &dir.join("training.png"),
            &format!("{} training", r.generator),
        )?;
    }
    if let Some(staged) = staged {
        staged.persist(true)?;
    }
    drop(lock);
    tracing::info!(
        "trained '{}' ({} steps) into {}",
        r.generator,
        summary.steps,
        r.out.display()
    );
    Ok(summary)
}

fn read_run_file(path: &Path) -> Result<RunFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io(path, e))
        .with_context(|| {
            format!(
                "{} is not a simemu run directory",
                path.parent().unwrap_or(path).display()
            )
        })?;
    serde_json::from_str(&text)
        .map_err(|e| simemu_core::Error::bad_file(path, format!("corrupt run file: {e}")).into())
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

/// A checkpoint ready to load: a directory, and for a shipped one the temporary
/// directory it was unpacked into.
struct Checkpoint {
    path: PathBuf,
    _unpacked: Option<simemu_models::TemporaryDir>,
}

impl Checkpoint {
    fn open(reference: &Path) -> Result<Self> {
        let Some(name) = reference.to_str().and_then(simemu_models::builtin_name) else {
            return Ok(Checkpoint {
                path: reference.to_path_buf(),
                _unpacked: None,
            });
        };
        let builtin = simemu_models::find(name)?;
        let dir = builtin.unpack_temporary()?;
        Ok(Checkpoint {
            path: dir.path().join(builtin.name),
            _unpacked: Some(dir),
        })
    }
}

/// A trained generator with its run file. A shipped checkpoint's files stay
/// unpacked while it lives.
pub struct LoadedGenerator {
    pub generator: Box<dyn Generator>,
    pub run: RunFile,
    _checkpoint: Checkpoint,
}

/// Loads the generator of a run directory, a checkpoint inside one, or a
/// shipped `builtin:NAME`, onto `device`.
pub fn load_generator(
    reg: &Registry,
    checkpoint: &Path,
    device: ComputeDevice,
) -> Result<LoadedGenerator> {
    let opened = Checkpoint::open(checkpoint)?;
    let run = find_run(&opened.path)?;
    let entry = reg.generator(&run.generator)?;
    let context = GeneratorContext {
        registry: reg,
        device,
    };
    let generator = (entry.load)(&opened.path, &run.config, &context)
        .with_context(|| format!("loading {}", checkpoint.display()))?;
    Ok(LoadedGenerator {
        generator,
        run,
        _checkpoint: opened,
    })
}

impl LoadedGenerator {
    /// The parameter vector of a condition given by name (empty: the
    /// generator's defaults; an unconditional generator takes none).
    pub fn condition(&self, params: &[(String, f64)]) -> Result<Vec<f64>> {
        let space = self.generator.params();
        if params.is_empty() {
            Ok(Vec::new())
        } else if space.is_empty() {
            Err(request(format!(
                "generator '{}' is unconditional: it takes no parameters",
                self.run.generator
            )))
        } else {
            Ok(resolve_params(&space, params)?)
        }
    }
}

/// The seeds of samples `start..start + n` of a generation with run seed `seed`.
pub fn sample_seeds(seed: u64, start: usize, n: usize) -> Vec<u64> {
    (start..start + n)
        .map(|i| sample_seed(seed, i as u64))
        .collect()
}

/// Whether the generator of a checkpoint (a path or `builtin:NAME`) takes
/// parameters.
pub fn is_conditional(reg: &Registry, checkpoint: &Path) -> Result<bool> {
    Ok(!load_generator(reg, checkpoint, ComputeDevice::Cpu)?
        .generator
        .params()
        .is_empty())
}

/// Samples drawn from a trained generator.
pub struct GenerateRequest {
    /// A run directory, a checkpoint inside one, or `builtin:NAME`.
    pub checkpoint: PathBuf,
    pub count: usize,
    /// The condition σ (empty: the generator's defaults; unconditional
    /// generators take none).
    pub params: Vec<(String, f64)>,
    /// The output dataset.
    pub out: PathBuf,
    /// Samples per generator call.
    pub batch: usize,
    /// The candidate's name in leaderboards (default: the generator's).
    pub label: Option<String>,
    /// Replace an existing output.
    pub force: bool,
    /// Where the generator computes.
    pub device: ComputeDevice,
}

/// Generates `count` samples into a dataset; sample `i` draws from
/// `sample_seed(seed, i)`.
pub fn generate(reg: &Registry, seed: u64, r: &GenerateRequest, obs: &dyn Observer) -> Result<()> {
    if r.count == 0 || r.batch == 0 {
        return Err(request("--count and --batch must be at least 1"));
    }
    if r.batch > simemu_core::MAX_BATCH {
        return Err(request(format!(
            "--batch {} is more than the {} samples a batch may hold",
            r.batch,
            simemu_core::MAX_BATCH
        )));
    }
    if simemu_models::builtin_name(&r.checkpoint.to_string_lossy()).is_none() {
        simemu_core::fsutil::refuse_overlap(&r.out, &[&r.checkpoint])?;
    }
    simemu_core::fsutil::check_output(&r.out, r.force, simemu_core::fsutil::OutputKind::Directory)?;
    let loaded = load_generator(reg, &r.checkpoint, r.device)?;
    let params = loaded.condition(&r.params)?;
    let (generator, run) = (&loaded.generator, &loaded.run);
    let space = generator.params();
    let fields = generator.fields();
    let sample_bytes = simemu_core::dataset::sample_bytes(&fields, space.len());
    simemu_core::fsutil::check_free_space(
        &r.out,
        sample_bytes.checked_mul(r.count as u64),
        &format!("{} generated samples", r.count),
    )?;
    let mut source = source_record("generator", &run.generator, run.config.clone());
    source.insert(
        "checkpoint".into(),
        r.checkpoint.display().to_string().into(),
    );
    if !r.device.is_cpu() {
        // Another device may round differently: the samples say where they came from.
        source.insert("device".into(), r.device.to_string().into());
    }
    let loaded_from = generator.provenance();
    if !loaded_from.is_null() {
        source.insert("loaded_from".into(), loaded_from);
    }
    source.insert(
        "label".into(),
        r.label
            .clone()
            .unwrap_or_else(|| run.generator.clone())
            .into(),
    );
    let mut spec = DatasetSpec::new(fields, space.iter().map(|p| p.name.clone()).collect());
    spec.run_seed = Some(seed);
    spec.source = source;
    let t0 = Instant::now();
    let mut gen_seconds = 0.0;
    let mut writer: Option<DatasetWriter> = None;
    for start in (0..r.count).step_by(r.batch) {
        let n = r.batch.min(r.count - start);
        let seeds = sample_seeds(seed, start, n);
        let t = Instant::now();
        let samples = generator.generate(&params, &seeds)?;
        gen_seconds += t.elapsed().as_secs_f64();
        if samples.len() != n {
            return Err(simemu_core::Error::Other(format!(
                "generator '{}' returned {} samples for {n} seeds",
                run.generator,
                samples.len()
            ))
            .into());
        }
        let w = match &mut writer {
            Some(w) => w,
            None => {
                // An unconditional call of a conditional generator (its defaults) may
                // return samples without parameters: record what the samples carry.
                if samples[0].params.is_empty() {
                    spec.param_names.clear();
                }
                writer.insert(DatasetWriter::create(&r.out, spec.clone(), r.force)?)
            }
        };
        for (s, seed) in samples.iter().zip(&seeds) {
            w.push(s, Some(*seed))?;
        }
        obs.progress("generate", start + n, r.count);
    }
    let mut w = writer.expect("count >= 1");
    w.source_mut().insert(
        "seconds_per_sample".into(),
        (gen_seconds / r.count as f64).into(),
    );
    w.finish()?;
    tracing::info!(
        "generated {} samples into {} in {:.2}s ({:.2e} s/sample)",
        r.count,
        r.out.display(),
        t0.elapsed().as_secs_f64(),
        gen_seconds / r.count as f64
    );
    Ok(())
}
