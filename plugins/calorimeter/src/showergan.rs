//! `shower-gan`: a conditional GAN G(E, z) for whole showers — every layer and the
//! overflow at once — trained with the same `simemu train/generate/validate` as the
//! map emulators.
//!
//! A deliberately simpler model than CaloGAN's three locally-connected streams
//! (documented in `docs/calorimeter.md`): fully-connected G and D over the
//! concatenated cells, built on CaloGAN's two energy ideas.
//!
//! - **Energy-normalised output.** G produces a shower's *shape* — per cell a
//!   ReLU output (exact zeros, as in real showers), squared and normalised to sum
//!   1 — and its *response* exp(ρ), the share of E deposited; a cell holds
//!   shape × response × E. Working in √(share) compresses the cells' dynamic range
//!   (10⁻⁶ … 0.3 of E) so that the small ones are learnable; the shape changes
//!   slowly with E, so G learns shapes, not scales; and the response's narrow
//!   spread is one output to learn, not a sum of 507.
//! - **Energy-aware discriminator and loss.** D sees, beside the cells and ln E,
//!   each part's energy share and the total response Σ cells / E (CaloGAN gives its
//!   D the layer energies); G's loss adds a term matching the batch mean and
//!   spread of those shares to the real batch at the same energies.
//!
//! Condition: the dataset's `energy` parameter (or its only one), in GeV, scaled as
//! ln E onto [−1, 1] over the training range. Fields are read in MeV (the
//! `calorimeter` simulator's and CaloGAN's files' unit).

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use simemu_core::fsutil::{write_json_atomic, TempDir};
use simemu_core::seed::derive_seed;
use simemu_core::{
    Array, Dataset, Error, Field, FieldSpec, Generator, OptionSpec, ParamSpec, Registry, Result,
    Sample, TrainOptions, TrainSummary,
};
use simemu_nn::checkpoint::{
    checkpoint_steps, load_moving_average, load_networks, load_optimizers, log_rows_up_to,
    named_vars, parameter_count, prune, read_state, save_networks, save_optimizers, step_dir,
    trainable, write_log, STATE_FILE,
};
use simemu_nn::{assign, bce_with_logits, ce, reinit_normal, Adam, Ema};

pub const NAME: &str = "shower-gan";
const MEV_PER_GEV: f64 = 1000.0;
const LEAKY_SLOPE: f64 = 0.2;
const LOG_HEADER: &str = "step,loss_d,loss_g,d_real,d_fake,share_loss";
/// Added to energy shares before their logarithm: parts that hold almost nothing
/// (a deep layer at 1 GeV) are compared at this resolution.
const SHARE_FLOOR: f64 = 1e-4;
/// Added to a batch variance before its square root (whose slope is infinite at 0).
const VARIANCE_FLOOR: f64 = 1e-12;
/// Rows G generates at a time (see [`ShowerGan::generate`]).
const GENERATE_ROWS: usize = 16;
/// Keeps the shape normalisation finite for a shower whose cells are all zero.
const NORM_FLOOR: f64 = 1e-12;
/// G's last layer starts this much smaller than He initialisation, so that the
/// first showers hold a small share of E rather than hundreds of times E.
const OUTPUT_INIT_SCALE: f64 = 0.05;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShowerGanConfig {
    /// Latent dimension of z.
    pub latent: usize,
    /// Width of the hidden layers (G: w, 2w, 4w; D: 2w, w).
    pub width: usize,
    pub batch: usize,
    pub lr_g: f64,
    pub lr_d: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Weight of the energy-share matching term in G's loss (0: off).
    pub share_loss: f64,
    /// Decay of the moving average of G's weights that generates (0: off).
    pub ema: f64,
    /// Training steps without --steps/--epochs.
    pub steps: u64,
    pub checkpoint_every: u64,
    /// Recent checkpoints kept.
    pub keep_last: usize,
    /// A loss above this (or NaN) stops training with an error.
    pub max_loss: f64,
    /// The energies (GeV) the model is for, [lo, hi]: the range the training
    /// energies were drawn over (default: their smallest and largest). `generate`
    /// refuses energies outside it.
    pub energy_range: Option<(f64, f64)>,
}

impl Default for ShowerGanConfig {
    fn default() -> Self {
        ShowerGanConfig {
            latent: 64,
            width: 128,
            batch: 128,
            lr_g: 2e-4,
            lr_d: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            share_loss: 1.0,
            ema: 0.999,
            steps: 6000,
            checkpoint_every: 500,
            keep_last: 3,
            max_loss: 1e4,
            energy_range: None,
        }
    }
}

impl ShowerGanConfig {
    pub fn from_options(options: &serde_json::Value) -> Result<Self> {
        let c: ShowerGanConfig = simemu_core::params::options_from_json(NAME, options)?;
        let positive = [
            ("latent", c.latent),
            ("width", c.width),
            ("batch", c.batch),
            ("checkpoint_every", c.checkpoint_every as usize),
            ("keep_last", c.keep_last),
        ];
        if let Some((k, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(Error::Option(format!("{NAME}: {k} must be at least 1")));
        }
        if c.batch < 2 {
            return Err(Error::Option(format!(
                "{NAME}: batch must be at least 2 (the energy-share term needs a spread)"
            )));
        }
        if c.batch > simemu_core::MAX_BATCH {
            return Err(Error::Option(format!(
                "{NAME}: batch = {} is more than the {} samples a batch may hold",
                c.batch,
                simemu_core::MAX_BATCH
            )));
        }
        for (k, v) in [("lr_g", c.lr_g), ("lr_d", c.lr_d), ("max_loss", c.max_loss)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::Option(format!("{NAME}: {k} = {v} must be positive")));
            }
        }
        for (k, v) in [("beta1", c.beta1), ("beta2", c.beta2), ("ema", c.ema)] {
            if !(0.0..1.0).contains(&v) {
                return Err(Error::Option(format!(
                    "{NAME}: {k} = {v} must be in [0, 1)"
                )));
            }
        }
        if let Some((lo, hi)) = c.energy_range {
            if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo < hi) {
                return Err(Error::Option(format!(
                    "{NAME}: energy_range = [{lo}, {hi}] must be two increasing positive energies"
                )));
            }
        }
        if !(c.share_loss.is_finite() && c.share_loss >= 0.0) {
            return Err(Error::Option(format!(
                "{NAME}: share_loss = {} must be ≥ 0",
                c.share_loss
            )));
        }
        Ok(c)
    }
}

/// What a checkpoint records besides the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShowerMeta {
    /// The fields of a shower, in the order G emits their cells.
    pub fields: Vec<FieldSpec>,
    /// The conditioning parameter's name and column in the training data.
    pub condition: String,
    pub column: usize,
    /// Training range of the condition, GeV.
    pub lo: f64,
    pub hi: f64,
    pub training_samples: usize,
}

impl ShowerMeta {
    fn cells(&self) -> usize {
        self.fields.iter().map(|f| f.len()).sum()
    }

    /// ln E mapped onto [−1, 1] over the training range.
    fn scale(&self, energy: f64) -> f64 {
        if self.hi > self.lo {
            2.0 * (energy / self.lo).ln() / (self.hi / self.lo).ln() - 1.0
        } else {
            0.0
        }
    }
}

/// Each part's share of E and the total response, per row.
fn shares(shares_sqrt: &Tensor, meta: &ShowerMeta) -> candle_core::Result<Tensor> {
    let squared = shares_sqrt.sqr()?;
    let mut parts = Vec::with_capacity(meta.fields.len() + 1);
    let mut offset = 0;
    for f in &meta.fields {
        parts.push(squared.narrow(1, offset, f.len())?.sum_keepdim(1)?);
        offset += f.len();
    }
    parts.push(squared.sum_keepdim(1)?);
    Tensor::cat(&parts, 1)
}

/// D's input features beyond the cells: the logarithms of [`shares`].
fn share_features(shares_sqrt: &Tensor, meta: &ShowerMeta) -> candle_core::Result<Tensor> {
    (shares(shares_sqrt, meta)? + SHARE_FLOOR)?.log()
}

struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    fn new(sizes: &[usize], vb: VarBuilder) -> candle_core::Result<Self> {
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| candle_nn::linear(w[0], w[1], vb.pp(format!("fc{i}"))))
            .collect::<candle_core::Result<_>>()?;
        Ok(Mlp { layers })
    }

    /// Leaky ReLU between layers, none after the last.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = candle_nn::ops::leaky_relu(&h, LEAKY_SLOPE)?;
            }
        }
        Ok(h)
    }
}

struct Nets {
    g_vars: VarMap,
    d_vars: VarMap,
    g: Mlp,
    d: Mlp,
}

impl Nets {
    fn new(c: &ShowerGanConfig, cells: usize, parts: usize, device: &Device) -> Result<Self> {
        let (g_vars, d_vars) = (VarMap::new(), VarMap::new());
        let w = c.width;
        let g = Mlp::new(
            &[c.latent + 1, w, 2 * w, 4 * w, cells + 1],
            VarBuilder::from_varmap(&g_vars, DType::F32, device).pp("g"),
        )
        .map_err(ce("building G"))?;
        let d = Mlp::new(
            &[cells + parts + 2, 2 * w, w, 1],
            VarBuilder::from_varmap(&d_vars, DType::F32, device).pp("d"),
        )
        .map_err(ce("building D"))?;
        Ok(Nets {
            g_vars,
            d_vars,
            g,
            d,
        })
    }

    /// The networks as checkpoints name them.
    fn networks(&self) -> [(&'static str, &VarMap); 2] {
        [("generator", &self.g_vars), ("discriminator", &self.d_vars)]
    }

    /// √(share of E) per cell for rows of (z, scaled condition): a shape (the
    /// cells' ReLU outputs, squared and normalised to sum 1) times a response
    /// exp(ρ) from G's last output, so that the spread of the total — 0.1% when
    /// every deposit is counted, ~10% in the argon alone — is one number to learn
    /// rather than a sum of hundreds of cells.
    fn generate(&self, zc: &Tensor) -> candle_core::Result<Tensor> {
        let out = self.g.forward(zc)?;
        let cells = out.dim(1)? - 1;
        let shape = out.narrow(1, 0, cells)?.relu()?;
        let response = out.narrow(1, cells, 1)?.exp()?;
        let norm = (shape.sqr()?.sum_keepdim(1)? + NORM_FLOOR)?;
        shape.broadcast_mul(&(response / norm)?.sqrt()?)
    }

    fn discriminate(
        &self,
        shares_sqrt: &Tensor,
        cond: &Tensor,
        meta: &ShowerMeta,
    ) -> candle_core::Result<Tensor> {
        let x = Tensor::cat(&[shares_sqrt, &share_features(shares_sqrt, meta)?, cond], 1)?;
        self.d.forward(&x)
    }
}

/// He-normal weights (std √(2 / fan-in)) and zero biases, layer by layer from
/// streams derived from `seed` (candle cannot seed its own initialisers); the
/// variables whose names start with `output` start [`OUTPUT_INIT_SCALE`] times smaller.
fn initialise(vars: &VarMap, seed: u64, what: &str, output: Option<&str>) -> Result<()> {
    let vars = named_vars(vars);
    for (i, (name, var)) in vars.iter().enumerate() {
        let fan_in = var.dims().last().copied().unwrap_or(1).max(1);
        let scale = if output.is_some_and(|o| name.starts_with(o)) {
            OUTPUT_INIT_SCALE
        } else {
            1.0
        };
        reinit_normal(
            &[(name.clone(), var.clone())],
            derive_seed(seed, &format!("{what}-{i}")),
            scale * (2.0 / fan_in as f64).sqrt(),
        )
        .map_err(ce("initialising"))?;
    }
    Ok(())
}

/// What `state.json` of a checkpoint holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CheckpointState {
    format: String,
    step: u64,
    config: ShowerGanConfig,
    meta: ShowerMeta,
}

pub struct ShowerGan {
    config: ShowerGanConfig,
    device: Device,
    trained: Option<(Nets, ShowerMeta)>,
}

/// The training set in memory: √(share of E) per cell, and the scaled condition.
struct TrainingSet {
    shares_sqrt: Vec<f32>,
    cond: Vec<f32>,
    cells: usize,
}

fn training_set(ds: &Dataset, range: Option<(f64, f64)>) -> Result<(TrainingSet, ShowerMeta)> {
    if ds.len() < 2 {
        return Err(Error::Data(format!(
            "{NAME}: {} holds {} shower(s); training needs at least 2",
            ds.path().display(),
            ds.len()
        )));
    }
    let names = ds.param_names();
    let column = match names.iter().position(|n| n == "energy") {
        Some(c) => c,
        None if names.len() == 1 => 0,
        None => {
            return Err(Error::Data(format!(
                "{NAME}: {} has no 'energy' parameter to condition on (parameters: {names:?})",
                ds.path().display()
            )))
        }
    };
    let energies: Vec<f64> = (0..ds.len()).map(|i| ds.params_of(i)[column]).collect();
    if let Some(i) = energies.iter().position(|e| !(e.is_finite() && *e > 0.0)) {
        return Err(Error::Data(format!(
            "{NAME}: shower {i} has incident energy {}; energies must be positive",
            energies[i]
        )));
    }
    let lowest = energies.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = energies.iter().copied().fold(0.0, f64::max);
    let (lo, hi) = match range {
        Some((lo, hi)) if lowest < lo || highest > hi => {
            return Err(Error::Data(format!(
                "{NAME}: the training energies span [{lowest}, {highest}] GeV, outside energy_range = [{lo}, {hi}]"
            )))
        }
        Some(r) => r,
        None => (lowest, highest),
    };
    let meta = ShowerMeta {
        fields: ds.fields().to_vec(),
        condition: names[column].clone(),
        column,
        lo,
        hi,
        training_samples: ds.len(),
    };
    let cells = meta.cells();
    let mut shares_sqrt = Vec::with_capacity(ds.len() * cells);
    let block = 4096;
    for start in (0..ds.len()).step_by(block) {
        for (k, s) in ds
            .read_samples(start, block.min(ds.len() - start))?
            .iter()
            .enumerate()
        {
            let i = start + k;
            let scale = MEV_PER_GEV * energies[i];
            for f in &s.fields {
                if let Some(c) = f.data.first_non_finite() {
                    return Err(Error::Data(format!(
                        "{NAME}: shower {i}: non-finite energy in '{}' cell {c}",
                        f.name
                    )));
                }
                shares_sqrt.extend(
                    f.data
                        .to_f64()
                        .iter()
                        .map(|&e| (e.max(0.0) / scale).sqrt() as f32),
                );
            }
        }
    }
    let cond = energies.iter().map(|&e| meta.scale(e) as f32).collect();
    Ok((
        TrainingSet {
            shares_sqrt,
            cond,
            cells,
        },
        meta,
    ))
}

/// Latent rows for `seeds`, each followed by its scaled condition.
fn latents(latent: usize, seeds: &[u64], cond: &[f32], device: &Device) -> Result<Tensor> {
    let mut v = Vec::with_capacity(seeds.len() * (latent + 1));
    for (&s, &c) in seeds.iter().zip(cond) {
        let mut rng = simemu_core::seed::rng(derive_seed(s, "shower-gan-z"));
        v.extend((0..latent).map(|_| -> f32 { StandardNormal.sample(&mut rng) }));
        v.push(c);
    }
    Tensor::from_vec(v, (seeds.len(), latent + 1), device).map_err(ce("latents"))
}

/// How far the batch mean and standard deviation of each energy share (and of the
/// response) of the fake showers are from the real batch's, on a log scale:
/// Σ (ln(m_fake + ε) − ln(m_real + ε))² over means and spreads.
fn share_matching(fake: &Tensor, real: &Tensor, meta: &ShowerMeta) -> candle_core::Result<Tensor> {
    let log_moments = |t: &Tensor| -> candle_core::Result<Tensor> {
        let f = shares(t, meta)?;
        let mean = f.mean_keepdim(0)?;
        // The offset keeps √ differentiable when a share does not vary in the batch.
        let sd = (f.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)? + VARIANCE_FLOOR)?.sqrt()?;
        (Tensor::cat(&[mean, sd], 1)? + SHARE_FLOOR)?.log()
    };
    (log_moments(fake)? - log_moments(&real.detach())?)?
        .sqr()?
        .sum_all()
}

impl ShowerGan {
    /// An untrained model on the CPU.
    pub fn new(config: ShowerGanConfig) -> Self {
        ShowerGan::on(config, Device::Cpu)
    }

    /// An untrained model that trains and generates on `device`.
    pub fn on(config: ShowerGanConfig, device: Device) -> Self {
        ShowerGan {
            config,
            device,
            trained: None,
        }
    }

    fn save_checkpoint(
        &self,
        run: &Path,
        step: u64,
        opt: (&Adam, &Adam),
        ema: Option<&Ema>,
    ) -> Result<()> {
        let (nets, meta) = self.trained.as_ref().expect("built");
        let dir = TempDir::new(&step_dir(run, step))?;
        save_networks(dir.path(), &nets.networks())?;
        save_optimizers(dir.path(), opt, ema)?;
        write_json_atomic(
            &dir.path().join(STATE_FILE),
            &CheckpointState {
                format: "simemu-shower-gan-checkpoint".into(),
                step,
                config: self.config.clone(),
                meta: meta.clone(),
            },
        )?;
        dir.persist_replacing()
    }

    fn train_loop(&mut self, data: &Dataset, options: &TrainOptions) -> Result<TrainSummary> {
        let c = self.config.clone();
        let (set, meta) = training_set(data, c.energy_range)?;
        let nets = Nets::new(&c, meta.cells(), meta.fields.len(), &self.device)?;
        let g_vars = named_vars(&nets.g_vars);
        let d_vars = named_vars(&nets.d_vars);
        let g_last = format!("g.fc{}.", nets.g.layers.len() - 1);
        initialise(
            &nets.g_vars,
            derive_seed(options.seed, "shower-gan-init-g"),
            "g",
            Some(&g_last),
        )?;
        initialise(
            &nets.d_vars,
            derive_seed(options.seed, "shower-gan-init-d"),
            "d",
            None,
        )?;
        let adam = |vars: &[(String, candle_core::Var)], lr: f64| {
            Adam::new(trainable(vars), lr, c.beta1, c.beta2, 1e-8).map_err(ce("Adam"))
        };
        let mut opt_g = adam(&g_vars, c.lr_g)?;
        let mut opt_d = adam(&d_vars, c.lr_d)?;
        let mut ema = if c.ema > 0.0 {
            Some(Ema::new(&g_vars, c.ema).map_err(ce("moving average"))?)
        } else {
            None
        };
        let run = &options.run_dir;
        let mut start = 0;
        let log = run.join("training.csv");
        let mut log_rows = Vec::new();
        if options.resume {
            if let Some(&step) = checkpoint_steps(run).last() {
                let dir = step_dir(run, step);
                let state: CheckpointState = read_state(&dir)?;
                if state.meta != meta {
                    return Err(Error::Data(format!(
                        "{NAME}: cannot resume {}: it was trained on other data (fields, parameter or range differ)",
                        run.display()
                    )));
                }
                load_networks(&dir, &nets.networks())?;
                load_optimizers(&dir, (&mut opt_g, &mut opt_d), ema.as_mut())?;
                // Rows up to the checkpoint; later ones are redone.
                log_rows = log_rows_up_to(&log, step);
                start = step;
            }
        }
        let steps = match (options.steps, options.epochs) {
            (Some(s), _) => s,
            (None, Some(e)) => e * (set.cond.len() as u64).div_ceil(c.batch as u64),
            (None, None) => c.steps,
        };
        self.trained = Some((nets, meta));
        let (nets, meta) = self.trained.as_ref().expect("just set");
        let t0 = Instant::now();
        let bar = options.progress.then(|| {
            let b = indicatif::ProgressBar::new(steps);
            b.set_position(start);
            b
        });
        let mut last = (f64::NAN, f64::NAN);
        let mut step = start;
        while step < steps {
            let mut rng = simemu_core::seed::rng(derive_seed(
                options.seed,
                &format!("shower-gan-step-{step}"),
            ));
            let rows: Vec<usize> = (0..c.batch)
                .map(|_| rng.random_range(0..set.cond.len()))
                .collect();
            let mut real = Vec::with_capacity(c.batch * set.cells);
            for &r in &rows {
                real.extend_from_slice(&set.shares_sqrt[r * set.cells..(r + 1) * set.cells]);
            }
            let cond: Vec<f32> = rows.iter().map(|&r| set.cond[r]).collect();
            let seeds: Vec<u64> = (0..c.batch).map(|_| rng.random()).collect();
            let outcome = (|| -> candle_core::Result<[f64; 5]> {
                let real = Tensor::from_vec(real, (c.batch, set.cells), &self.device)?;
                let cond_t = Tensor::from_vec(cond.clone(), (c.batch, 1), &self.device)?;
                let z = latents(c.latent, &seeds, &cond, &self.device)
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
                let fake = nets.generate(&z)?;
                let d_real = nets.discriminate(&real, &cond_t, meta)?;
                let d_fake = nets.discriminate(&fake.detach(), &cond_t, meta)?;
                let loss_d = (bce_with_logits(&d_real, 1.0)? + bce_with_logits(&d_fake, 0.0)?)?;
                let mean_p = |t: &Tensor| -> candle_core::Result<f64> {
                    Ok(candle_nn::ops::sigmoid(t)?.mean_all()?.to_scalar::<f32>()? as f64)
                };
                let (p_real, p_fake) = (mean_p(&d_real)?, mean_p(&d_fake)?);
                let ld = loss_d.to_scalar::<f32>()? as f64;
                opt_d.backward_step(&loss_d)?;
                let adversarial = bce_with_logits(&nets.discriminate(&fake, &cond_t, meta)?, 1.0)?;
                let matching = share_matching(&fake, &real, meta)?;
                let lm = matching.to_scalar::<f32>()? as f64;
                let loss_g = (adversarial + (matching * c.share_loss)?)?;
                let lg = loss_g.to_scalar::<f32>()? as f64;
                if lg.is_finite() && lg.abs() <= c.max_loss {
                    opt_g.backward_step(&loss_g)?;
                }
                Ok([ld, lg, p_real, p_fake, lm])
            })()
            .map_err(ce("training step"))?;
            let [ld, lg, p_real, p_fake, lm] = outcome;
            if [ld, lg]
                .iter()
                .any(|l| !l.is_finite() || l.abs() > c.max_loss)
            {
                return Err(Error::Other(format!(
                    "{NAME}: training diverged at step {} (loss_d {ld}, loss_g {lg}); the last checkpoint in {} is intact — lower lr_g/lr_d and resume or retrain",
                    step + 1,
                    run.display()
                )));
            }
            if let Some(ema) = &mut ema {
                ema.update(&g_vars).map_err(ce("moving average"))?;
            }
            step += 1;
            last = (ld, lg);
            if step % 10 == 0 || step == steps {
                log_rows.push(format!("{step},{ld},{lg},{p_real},{p_fake},{lm}"));
            }
            let over_budget = options
                .budget_seconds
                .is_some_and(|b| t0.elapsed().as_secs_f64() >= b);
            if step % c.checkpoint_every == 0 || step == steps || over_budget {
                self.save_checkpoint(run, step, (&opt_g, &opt_d), ema.as_ref())?;
                write_log(&log, LOG_HEADER, &log_rows)?;
                prune(run, c.keep_last, None)?;
            }
            if let Some(b) = &bar {
                b.set_position(step);
            }
            if over_budget {
                break;
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        if let Some(ema) = &ema {
            // Generate with the moving average, as a loaded checkpoint does.
            assign(
                &g_vars,
                &ema.state().map_err(ce("moving average"))?,
                "moving average",
            )?;
        }
        Ok(TrainSummary {
            steps: step,
            seconds: t0.elapsed().as_secs_f64(),
            details: serde_json::json!({
                "loss_d": last.0,
                "loss_g": last.1,
                "parameters_g": parameter_count(&g_vars),
                "parameters_d": parameter_count(&d_vars),
                "condition": {"name": meta.condition, "lo": meta.lo, "hi": meta.hi},
            }),
        })
    }
}

/// Loads the latest checkpoint of a run directory, or one checkpoint directory,
/// with G's moving-average weights when it has them, onto `device`.
pub fn load(path: &Path, device: &Device) -> Result<ShowerGan> {
    let dir = if path.join(STATE_FILE).exists() {
        path.to_path_buf()
    } else {
        let step = *checkpoint_steps(path).last().ok_or_else(|| {
            Error::bad_file(
                path,
                "no shower-gan checkpoint here (checkpoints/step-*/state.json)",
            )
        })?;
        step_dir(path, step)
    };
    let state: CheckpointState = read_state(&dir)?;
    let nets = Nets::new(
        &state.config,
        state.meta.cells(),
        state.meta.fields.len(),
        device,
    )?;
    load_networks(&dir, &nets.networks())?;
    load_moving_average(&dir, &nets.g_vars)?;
    Ok(ShowerGan {
        config: state.config,
        device: device.clone(),
        trained: Some((nets, state.meta)),
    })
}

impl Generator for ShowerGan {
    fn name(&self) -> &str {
        NAME
    }
    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("serialisable")
    }
    fn fields(&self) -> Vec<FieldSpec> {
        self.trained
            .as_ref()
            .map(|(_, m)| m.fields.clone())
            .unwrap_or_default()
    }
    fn params(&self) -> Vec<ParamSpec> {
        self.trained
            .as_ref()
            .map(|(_, m)| {
                vec![ParamSpec::new(
                    &m.condition,
                    "GeV",
                    m.lo,
                    m.hi,
                    (m.lo * m.hi).sqrt(),
                    "incident energy (trained range)",
                )]
            })
            .unwrap_or_default()
    }
    fn train(
        &mut self,
        data: &Dataset,
        options: &TrainOptions,
        _registry: &Registry,
    ) -> Result<TrainSummary> {
        self.train_loop(data, options)
    }
    fn save(&self, dir: &Path) -> Result<()> {
        if checkpoint_steps(dir).is_empty() {
            return Err(Error::Other(format!(
                "{NAME}: no checkpoint was written in {}",
                dir.display()
            )));
        }
        Ok(())
    }
    fn generate(&self, params: &[f64], seeds: &[u64]) -> Result<Vec<Sample>> {
        let (nets, meta) = self
            .trained
            .as_ref()
            .ok_or_else(|| Error::Other(format!("{NAME}: not trained or loaded")))?;
        let [energy] = params else {
            return Err(Error::Parameter(format!(
                "{NAME} is conditioned on {}: give --param {}=VALUE (GeV)",
                meta.condition, meta.condition
            )));
        };
        if !(energy.is_finite() && *energy > 0.0) {
            return Err(Error::Parameter(format!(
                "{NAME}: {} = {energy} GeV must be a positive energy",
                meta.condition
            )));
        }
        // gemm picks its kernels by the number of rows, and they round differently:
        // every sample goes through G in a block of GENERATE_ROWS rows (the last
        // block padded by repeating its last seed), so that its bytes depend on its
        // seed only, never on how many were generated with it.
        let c = meta.scale(*energy) as f32;
        let mut out: Vec<f32> = Vec::with_capacity(seeds.len() * meta.cells());
        for block in seeds.chunks(GENERATE_ROWS) {
            let mut padded = block.to_vec();
            padded.resize(GENERATE_ROWS, *block.last().expect("chunks are non-empty"));
            let z = latents(
                self.config.latent,
                &padded,
                &[c; GENERATE_ROWS],
                &self.device,
            )?;
            let rows: Vec<f32> = nets
                .generate(&z)
                .and_then(|t| t.narrow(0, 0, block.len()))
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1())
                .map_err(ce("generating"))?;
            out.extend(rows);
        }
        let scale = MEV_PER_GEV * energy;
        let cells = meta.cells();
        out.chunks(cells)
            .map(|row| {
                let mut fields = Vec::with_capacity(meta.fields.len());
                let mut offset = 0;
                for f in &meta.fields {
                    let values: Vec<f64> = row[offset..offset + f.len()]
                        .iter()
                        .map(|&s| (s as f64) * (s as f64) * scale)
                        .collect();
                    offset += f.len();
                    let data = match f.dtype {
                        simemu_core::DType::F32 => {
                            Array::F32(values.iter().map(|&v| v as f32).collect())
                        }
                        simemu_core::DType::F64 => Array::F64(values),
                    };
                    fields.push(Field::new(f.name.clone(), f.shape.clone(), data)?);
                }
                Ok(Sample {
                    fields,
                    params: vec![*energy],
                })
            })
            .collect()
    }
}

pub fn options() -> Vec<OptionSpec> {
    let d = serde_json::to_value(ShowerGanConfig::default()).expect("serialisable");
    let describe = |k: &str| match k {
        "latent" => "latent dimension of z",
        "width" => "hidden width (G: w, 2w, 4w; D: 2w, w)",
        "batch" => "batch size",
        "lr_g" | "lr_d" => "Adam learning rate",
        "beta1" | "beta2" => "Adam β",
        "share_loss" => "weight of the energy-share matching term in G's loss (0: off)",
        "ema" => "decay of the moving average of G's weights used to generate (0: off)",
        "steps" => "training steps without --steps/--epochs",
        "checkpoint_every" => "steps between checkpoints",
        "keep_last" => "recent checkpoints kept",
        "max_loss" => "a loss above this (or NaN) stops training",
        "energy_range" => "[lo, hi] GeV the model is for (default: the training energies' span)",
        _ => "",
    };
    d.as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| OptionSpec::new(k, v.clone(), describe(k)))
        .collect()
}
