//! Training, checkpoints and checkpoint selection.
//!
//! Run directory layout:
//!
//! ```text
//! RUN_DIR/generator.json            written by simemu (plugin name, config)
//! RUN_DIR/checkpoints/step-00000250/{generator,discriminator,optim_g,optim_d}.safetensors, state.json
//! RUN_DIR/checkpoints/best.json     {"step": ..., "score": ...}: the checkpoint `generate` uses
//! RUN_DIR/training.csv              step, losses, D outputs, checkpoint scores
//! ```
//!
//! Every random number of step s comes from a stream seeded with (run seed, s,
//! rollback count), so a run resumed from any checkpoint continues bit-identically.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};
use simemu_core::fsutil::{write_json_atomic, TempDir};
use simemu_core::seed::{derive_seed, sample_seed};
use simemu_core::{
    Array, Dataset, Error, Field, Registry, Result, Sample, StatContext, TrainOptions, TrainSummary,
};
use simemu_nn::checkpoint::{
    checkpoint_steps, load_moving_average, load_networks, load_optimizers, log_rows_up_to,
    named_vars, parameter_count, prune, read_state, save_networks, save_optimizers, step_dir,
    trainable, write_log,
};
use simemu_nn::{assign, bce_with_logits, ce, reinit_normal, Adam, Ema};

use crate::config::PinMean;
use crate::spectrum::{GeneratorLossTerm, SpectrumMatcher};
use crate::summary::{SummaryMatcher, Thresholds};
use crate::transform::{ConditionalRange, PointMoments, Polynomial, Transform};
use crate::{Condition, Dcgan, DcganConfig, Meta, Nets, PerPoint};

/// What `state.json` of a checkpoint holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointState {
    pub format: String,
    pub step: u64,
    pub rollbacks: u64,
    /// Read as every stored configuration is ([`DcganConfig::from_stored`]):
    /// checkpoints written with options since removed still load.
    #[serde(deserialize_with = "crate::config::deserialize_stored")]
    pub config: DcganConfig,
    pub meta: Meta,
    pub score: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Best {
    step: u64,
    score: f64,
}

const CSV_HEADER: &str = "step,loss_d,loss_g,d_real,d_fake,score";
const MAX_ROLLBACKS: u64 = 5;
/// Maps per batch when D's spectrum features are standardised on the training maps.
const REFERENCE_BATCH: usize = 256;

/// Training data: the field's values (transformed) per sample, read on demand.
struct TrainingData<'a> {
    ds: &'a Dataset,
    field: usize,
    /// Each sample's transform (one for all, unless `per_point`).
    transforms: Vec<Transform>,
    conditions: Vec<Condition>,
    /// The training samples grouped by their conditions (one group for
    /// unconditional data), in order of first appearance.
    points: Vec<DesignPoint>,
    /// Whole transformed field when it fits comfortably in memory.
    cache: Option<Vec<f32>>,
    per: usize,
}

/// One of the 8 symmetries of the square (k) after a periodic shift (dy, dx):
/// out[y][x] = map[(y' + dy) mod n][(x' + dx) mod n] with (y', x') = D_k(y, x).
fn augment_map(map: &[f32], n: usize, (dy, dx, k): (usize, usize, u8), out: &mut Vec<f32>) {
    let m = n - 1;
    for y in 0..n {
        for x in 0..n {
            let (sy, sx) = match k {
                0 => (y, x),
                1 => (x, m - y),
                2 => (m - y, m - x),
                3 => (m - x, y),
                4 => (y, m - x),
                5 => (x, y),
                6 => (m - y, x),
                _ => (m - x, m - y),
            };
            out.push(map[((sy + dy) % n) * n + (sx + dx) % n]);
        }
    }
}

impl TrainingData<'_> {
    /// The transformed maps `idx` (each with its symmetry, if given) and their
    /// scaled conditions.
    fn batch(
        &self,
        idx: &[usize],
        symmetries: Option<&[(usize, usize, u8)]>,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let mut x = Vec::with_capacity(idx.len() * self.per);
        let n = (self.per as f64).sqrt() as usize;
        for (j, &i) in idx.iter().enumerate() {
            let map: std::borrow::Cow<[f32]> = match &self.cache {
                Some(c) => c[i * self.per..(i + 1) * self.per].into(),
                None => {
                    let v = self.ds.read_field_range(self.field, i, 1)?.to_f64();
                    v.iter()
                        .map(|&y| self.transforms[i].forward(y) as f32)
                        .collect::<Vec<_>>()
                        .into()
                }
            };
            match symmetries {
                Some(s) => augment_map(&map, n, s[j], &mut x),
                None => x.extend_from_slice(&map),
            }
        }
        let mut c = Vec::with_capacity(idx.len() * self.conditions.len());
        for &i in idx {
            let p = self.ds.params_of(i);
            c.extend(self.conditions.iter().map(|k| k.scale(p[k.column]) as f32));
        }
        Ok((x, c))
    }
}

/// One parameter point of the training design.
#[derive(Clone, Debug)]
struct DesignPoint {
    /// Its scaled conditions.
    scaled: Vec<f64>,
    /// Its training samples.
    samples: Vec<usize>,
}

/// The training samples `0..n_train` grouped by their conditions.
fn design_points(ds: &Dataset, conditions: &[Condition], n_train: usize) -> Vec<DesignPoint> {
    let mut points: Vec<DesignPoint> = Vec::new();
    let mut index: HashMap<Vec<u64>, usize> = HashMap::new();
    for i in 0..n_train {
        let p = ds.params_of(i);
        let key: Vec<u64> = conditions.iter().map(|c| p[c.column].to_bits()).collect();
        let k = *index.entry(key).or_insert_with(|| {
            points.push(DesignPoint {
                scaled: Condition::scale_all(conditions, p),
                samples: Vec::new(),
            });
            points.len() - 1
        });
        points[k].samples.push(i);
    }
    points
}

/// The conditions: configured names, or the parameters that vary in the data.
fn conditions(config: &DcganConfig, ds: &Dataset) -> Result<Vec<Condition>> {
    let ranges = simemu_core::dataset::param_ranges(ds);
    let names: Vec<String> = match &config.condition {
        Some(n) => n.clone(),
        None => ds
            .param_names()
            .iter()
            .filter(|n| ranges[*n].0 < ranges[*n].1)
            .cloned()
            .collect(),
    };
    names
        .iter()
        .map(|n| {
            let column = ds
                .param_names()
                .iter()
                .position(|p| p == n)
                .ok_or_else(|| {
                    Error::Option(format!(
                        "dcgan: condition '{n}' is not a parameter of the data ({:?})",
                        ds.param_names()
                    ))
                })?;
            let (lo, hi) = ranges[n];
            let bounds = config.condition_bounds.get(n).copied();
            if let Some((b_lo, b_hi)) = bounds {
                if !(b_lo <= lo && hi <= b_hi) {
                    return Err(Error::Option(format!(
                        "dcgan: condition_bounds {n} = [{b_lo}, {b_hi}] does not contain the training values' span [{lo}, {hi}]"
                    )));
                }
            }
            Ok(Condition {
                name: n.clone(),
                column,
                lo,
                hi,
                bounds,
            })
        })
        .collect::<Result<Vec<Condition>>>()
        .and_then(|conditions| {
            match config
                .condition_bounds
                .keys()
                .find(|k| !conditions.iter().any(|c| &c.name == *k))
            {
                Some(k) => Err(Error::Option(format!(
                    "dcgan: condition_bounds names '{k}', which is not a condition ({:?})",
                    names
                ))),
                None => Ok(conditions),
            }
        })
}

fn prepare_data<'a>(config: &DcganConfig, ds: &'a Dataset) -> Result<(TrainingData<'a>, Meta)> {
    if ds.fields().len() != 1 {
        return Err(Error::Data(
            "dcgan trains on datasets with exactly one field".into(),
        ));
    }
    let spec = ds.fields()[0].clone();
    if spec.shape != [config.size, config.size] {
        return Err(Error::Data(format!(
            "dcgan is configured for {0}×{0} maps but the data hold {1:?} (set the 'size' option)",
            config.size, spec.shape
        )));
    }
    let per = config.size * config.size;
    let holdout = config.holdout.min(ds.len() / 5);
    let n_train = ds.len() - holdout;
    if n_train < 2 {
        return Err(Error::Data(
            "dcgan needs at least 2 training samples".into(),
        ));
    }
    // Fit the transform: exact extremes, the median from a strided subsample.
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    let mut sub = Vec::new();
    let stride = ((n_train * per) / 1_000_000).max(1);
    let mut k = 0usize;
    let in_memory = n_train * per * 4 <= 1 << 30;
    let mut raw = Vec::with_capacity(if in_memory { ds.len() * per } else { 0 });
    for start in (0..ds.len()).step_by(256) {
        let n = 256.min(ds.len() - start);
        let v = match ds.read_field_range(0, start, n)? {
            Array::F32(v) => v,
            Array::F64(v) => v.iter().map(|&x| x as f32).collect(),
        };
        for (j, &x) in v.iter().enumerate() {
            if start + j / per < n_train {
                lo = lo.min(x);
                hi = hi.max(x);
                if k.is_multiple_of(stride) {
                    sub.push(x);
                }
                k += 1;
            }
        }
        if in_memory {
            raw.extend_from_slice(&v);
        }
    }
    sub.push(lo);
    sub.push(hi);
    sub.sort_by(|a, b| a.total_cmp(b));
    let transform = Transform::fit(&config.transform, &sub)?;
    let conds = conditions(config, ds)?;
    let points = design_points(ds, &conds, n_train);
    let per_point = (config.per_point && !conds.is_empty())
        .then(|| fit_range(ds, &transform, &points, &raw))
        .transpose()?;
    let transforms: Vec<Transform> = (0..ds.len())
        .map(|i| match &per_point {
            Some(range) => range.at(&transform, &Condition::scale_all(&conds, ds.params_of(i))),
            None => transform.clone(),
        })
        .collect();
    let cache = in_memory.then(|| {
        raw.chunks(per)
            .zip(&transforms)
            .flat_map(|(map, t)| map.iter().map(|&x| t.forward(x as f64) as f32))
            .collect()
    });
    let data = TrainingData {
        ds,
        field: 0,
        transforms,
        conditions: conds.clone(),
        points,
        cache,
        per,
    };
    let (pinned_mean, per_point) = match per_point {
        None => {
            let pinned = match config.pin_mean {
                PinMean::Off => None,
                PinMean::On => {
                    Some(map_means(&data, &(0..n_train).collect::<Vec<_>>())?.within_tolerance()?)
                }
                PinMean::Auto => map_means(&data, &(0..n_train).collect::<Vec<_>>())?
                    .within_tolerance()
                    .ok(),
            };
            (pinned, None)
        }
        Some(range) => {
            let scaled: Vec<Vec<f64>> = data.points.iter().map(|p| p.scaled.clone()).collect();
            let pinned = match config.pin_mean {
                PinMean::Off => None,
                PinMean::On => Some(pinned_mean_fit(&data, &scaled)?),
                PinMean::Auto => pinned_mean_fit(&data, &scaled).ok(),
            };
            (
                None,
                Some(PerPoint {
                    range,
                    pinned_mean: pinned,
                    points: scaled,
                }),
            )
        }
    };
    let meta = Meta {
        field: spec,
        transform,
        conditions: conds,
        training_samples: n_train,
        pinned_mean,
        per_point,
    };
    Ok((data, meta))
}

/// `per_point`: the transform's range over the design (see [`ConditionalRange`]),
/// from every point's training maps (`raw`: all samples' values, when they fit in
/// memory; read from the dataset otherwise).
fn fit_range(
    ds: &Dataset,
    transform: &Transform,
    points: &[DesignPoint],
    raw: &[f32],
) -> Result<ConditionalRange> {
    if transform.with_affine(0.0, 1.0).is_none() {
        return Err(Error::Option(
            "dcgan: per_point fits the transform's affine range per point; use transform = {kind = \"log\"} or {kind = \"affine\"}, or per_point = false".into(),
        ));
    }
    let per = ds.fields()[0].shape.iter().product::<usize>();
    let values = |i: usize| -> Result<Vec<f64>> {
        let v: Vec<f64> = if raw.len() >= (i + 1) * per {
            raw[i * per..(i + 1) * per]
                .iter()
                .map(|&x| x as f64)
                .collect()
        } else {
            ds.read_field_range(0, i, 1)?.to_f64()
        };
        Ok(v.into_iter().map(|x| transform.pre_affine(x)).collect())
    };
    let mut moments = Vec::with_capacity(points.len());
    for p in points {
        let (mut s, mut s2, mut n) = (0.0f64, 0.0f64, 0usize);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for &i in &p.samples {
            for u in values(i)? {
                s += u;
                s2 += u * u;
                n += 1;
                min = min.min(u);
                max = max.max(u);
            }
        }
        let mean = s / n as f64;
        moments.push(PointMoments {
            mean,
            std: (s2 / n as f64 - mean * mean).max(0.0).sqrt(),
            min,
            max,
        });
    }
    let scaled: Vec<Vec<f64>> = points.iter().map(|p| p.scaled.clone()).collect();
    ConditionalRange::fit(&scaled, &moments)
}

/// `per_point`'s pinned mean: every point's maps must have means that do not
/// scatter ([`MapMeans::within_tolerance`]); a polynomial over the points carries
/// their mean to any condition.
fn pinned_mean_fit(data: &TrainingData, scaled: &[Vec<f64>]) -> Result<Polynomial> {
    let means = data
        .points
        .iter()
        .map(|p| map_means(data, &p.samples)?.within_tolerance())
        .collect::<Result<Vec<f64>>>()?;
    let degree = Polynomial::degree_for(scaled[0].len(), scaled.len());
    Polynomial::fit(scaled, &means, degree)
}

/// How far the training maps' own means (in the network's range) may scatter,
/// as a fraction of σ_pixel/√pixels — what they would scatter by if the pixels
/// were independent — for `pin_mean` to be a property of the data. A field with
/// its zero mode fixed scatters by ~0 (the `convergence` simulator's 64² maps:
/// 0.019, from float rounding and the log transform's fitted λ); any field that
/// draws its zero mode, by about 1 or more.
const PINNED_MEAN_MAX_SCATTER: f64 = 0.1;

/// The training maps' average spatial mean in the network's range, and how far
/// their own means scatter around it.
struct MapMeans {
    mean: f64,
    /// The means' standard deviation over σ_pixel/√pixels.
    relative_scatter: f64,
    scatter: f64,
}

impl MapMeans {
    /// `pin_mean`'s value, refused when the maps' means scatter (then the
    /// simulator draws the mean, and pinning it would remove real variance).
    fn within_tolerance(&self) -> Result<f64> {
        if !self.mean.is_finite() || self.relative_scatter > PINNED_MEAN_MAX_SCATTER {
            return Err(Error::Data(format!(
                "dcgan: pin_mean needs training maps whose means do not scatter, but theirs \
                 scatter by {:.3e} in the network's range, {:.2} of σ_pixel/√pixels \
                 (at most {PINNED_MEAN_MAX_SCATTER}): the simulator draws each map's mean, \
                 so G must too (set pin_mean = false or \"auto\")",
                self.scatter, self.relative_scatter
            )));
        }
        Ok(self.mean)
    }
}

fn map_means(data: &TrainingData, samples: &[usize]) -> Result<MapMeans> {
    let n_train = samples.len();
    let mut means = Vec::with_capacity(n_train);
    let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
    for idx in samples.chunks(256) {
        let (x, _) = data.batch(idx, None)?;
        for map in x.chunks(data.per) {
            let (s, s2) = map.iter().fold((0.0f64, 0.0f64), |(s, s2), &v| {
                (s + v as f64, s2 + v as f64 * v as f64)
            });
            means.push(s / data.per as f64);
            sum += s;
            sum_sq += s2;
        }
    }
    let pixels = (n_train * data.per) as f64;
    let mean = sum / pixels;
    let pixel_std = (sum_sq / pixels - mean * mean).max(0.0).sqrt();
    let n = means.len() as f64;
    let scatter = (means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / n).sqrt();
    let independent = pixel_std / (data.per as f64).sqrt();
    Ok(MapMeans {
        mean,
        relative_scatter: scatter / independent,
        scatter,
    })
}

struct Trainer<'a> {
    gan: &'a mut Dcgan,
    opt_g: Adam,
    opt_d: Adam,
    /// The moving average of G's variables that generates, if configured.
    ema: Option<Ema>,
}

impl Trainer<'_> {
    fn save(&self, run: &Path, step: u64, rollbacks: u64, score: Option<f64>) -> Result<()> {
        let (nets, meta) = self.gan.trained.as_ref().expect("trained");
        let final_dir = step_dir(run, step);
        let dir = TempDir::new(&final_dir)?;
        save_networks(dir.path(), &nets.networks())?;
        save_optimizers(dir.path(), (&self.opt_g, &self.opt_d), self.ema.as_ref())?;
        let state = CheckpointState {
            format: "simemu-dcgan-checkpoint".into(),
            step,
            rollbacks,
            config: self.gan.config.clone(),
            meta: meta.clone(),
            score,
        };
        write_json_atomic(&dir.path().join("state.json"), &state)?;
        dir.persist_replacing()
    }

    fn restore(&mut self, run: &Path, step: u64) -> Result<CheckpointState> {
        let dir = step_dir(run, step);
        let state: CheckpointState = read_state(&dir)?;
        let (nets, _) = self.gan.trained.as_ref().expect("built");
        load_networks(&dir, &nets.networks())?;
        load_optimizers(&dir, (&mut self.opt_g, &mut self.opt_d), self.ema.as_mut())?;
        Ok(state)
    }

    /// Runs `f` with G as it generates: the moving average of its weights when
    /// there is one, BatchNorm statistics recalibrated for them (the raw training
    /// state is put back afterwards).
    fn with_generating_weights<T>(&self, f: impl FnOnce(&Dcgan) -> Result<T>) -> Result<T> {
        let vars = named_vars(&self.gan.trained.as_ref().expect("built").0.g_vars);
        let raw: HashMap<String, Tensor> = vars
            .iter()
            .map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?)))
            .collect::<candle_core::Result<_>>()
            .map_err(ce("moving average"))?;
        if let Some(ema) = &self.ema {
            let state = ema.state().map_err(ce("moving average"))?;
            assign(&vars, &state, "moving average")?;
        }
        let out = self.gan.recalibrate_batch_norm().and_then(|()| f(self.gan));
        assign(&vars, &raw, "generator")?;
        out
    }
}

/// Networks drawn from N(0, 0.02) by `seed` and their fresh Adam optimizers
/// (G's, D's).
pub fn initialise(
    config: &DcganConfig,
    n_cond: usize,
    device: &Device,
    seed: u64,
) -> Result<(Nets, Adam, Adam)> {
    let nets = Nets::new(config, n_cond, device)?;
    let g_vars = named_vars(&nets.g_vars);
    let d_vars = named_vars(&nets.d_vars);
    reinit_normal(&g_vars, derive_seed(seed, "dcgan-init-g"), 0.02).map_err(ce("init G"))?;
    reinit_normal(&d_vars, derive_seed(seed, "dcgan-init-d"), 0.02).map_err(ce("init D"))?;
    let adam = |vars: &[(String, candle_core::Var)], lr: f64| {
        Adam::new(trainable(vars), lr, config.beta1, config.beta2, 1e-8).map_err(ce("Adam"))
    };
    let opt_g = adam(&g_vars, config.lr_g)?;
    let opt_d = adam(&d_vars, config.lr_d)?;
    Ok((nets, opt_g, opt_d))
}

/// What one [`gan_step`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepOutcome {
    /// Both networks were updated; the losses and D's mean output on real and fake.
    Updated {
        loss_d: f64,
        loss_g: f64,
        p_real: f64,
        p_fake: f64,
    },
    /// A loss was non-finite or above the limit (`loss_g` is NaN when D's loss
    /// already was); D may have been updated, so the caller rolls back.
    Diverged { loss_d: f64, loss_g: f64 },
}

/// One GAN iteration as CosmoGAN (and the PyTorch benchmark twin) runs it: G(z);
/// a D update on the real batch and the detached fake batch (two BatchNorm
/// batches); then a G update through the updated D. Only the gradients each update
/// uses are computed: none for the data or the detached fake, none for D's
/// convolution weights in the G update.
pub fn gan_step(
    nets: &Nets,
    (opt_d, opt_g): (&mut Adam, &mut Adam),
    (real, z, cond, reference): (&Tensor, &Tensor, Option<&Tensor>, usize),
    (target_real, target_fake): (f32, f32),
    max_loss: f64,
    extra_g_terms: &[Box<dyn GeneratorLossTerm>],
) -> Result<StepOutcome> {
    let bad = |l: f64| !l.is_finite() || l.abs() > max_loss;
    let mut run = || -> candle_core::Result<StepOutcome> {
        let fake = nets.g.forward(z, true)?;
        let d_real = nets.d.forward(real, (cond, reference), true, false)?;
        let d_fake = nets
            .d
            .forward(&fake.detach(), (cond, reference), true, false)?;
        let loss_d =
            (bce_with_logits(&d_real, target_real)? + bce_with_logits(&d_fake, target_fake)?)?;
        let ld = loss_d.to_scalar::<f32>()? as f64;
        if bad(ld) {
            return Ok(StepOutcome::Diverged {
                loss_d: ld,
                loss_g: f64::NAN,
            });
        }
        let mean_p = |t: &Tensor| -> candle_core::Result<f64> {
            Ok(candle_nn::ops::sigmoid(t)?.mean_all()?.to_scalar::<f32>()? as f64)
        };
        let (p_real, p_fake) = (mean_p(&d_real)?, mean_p(&d_fake)?);
        opt_d.backward_step(&loss_d)?;
        let mut loss_g =
            bce_with_logits(&nets.d.forward(&fake, (cond, reference), true, true)?, 1.0)?;
        for term in extra_g_terms {
            loss_g = (loss_g + term.loss(&fake, real)?)?;
        }
        let lg = loss_g.to_scalar::<f32>()? as f64;
        if bad(lg) {
            return Ok(StepOutcome::Diverged {
                loss_d: ld,
                loss_g: lg,
            });
        }
        opt_g.backward_step(&loss_g)?;
        Ok(StepOutcome::Updated {
            loss_d: ld,
            loss_g: lg,
            p_real,
            p_fake,
        })
    };
    run().map_err(ce("training step"))
}

/// The matching terms of G's loss the config turns on, one set per design point
/// with `per_point` (targets from that point's maps, at most `matching_maps` of
/// them), else one set: targets from (at most `matching_maps` of) the training
/// maps, or, for conditional models without `per_point`, each batch matched to
/// the real batch drawn beside it.
fn matching_terms(
    config: &DcganConfig,
    data: &TrainingData,
    n_train: usize,
    per_point: bool,
    device: &Device,
) -> Result<Vec<Vec<Box<dyn GeneratorLossTerm>>>> {
    let ds = data.ds;
    if !per_point {
        let conditional = !data.conditions.is_empty();
        let samples: Vec<usize> = (0..config.matching_count(n_train)).collect();
        return Ok(vec![point_terms(
            config,
            &data.transforms[0],
            ds,
            &samples,
            conditional,
            device,
        )?]);
    }
    data.points
        .iter()
        .map(|p| {
            let count = config.matching_count(p.samples.len());
            let t = &data.transforms[p.samples[0]];
            point_terms(config, t, ds, &p.samples[..count], false, device)
        })
        .collect()
}

/// The matching terms with targets from `samples` (physical values; `transform`
/// maps G's output to them), or matched to the real batch (`per_batch`).
fn point_terms(
    config: &DcganConfig,
    transform: &Transform,
    ds: &Dataset,
    samples: &[usize],
    per_batch: bool,
    device: &Device,
) -> Result<Vec<Box<dyn GeneratorLossTerm>>> {
    if config.spectrum_loss == 0.0 && config.summary_loss == 0.0 {
        return Ok(Vec::new());
    }
    let mut maps: Vec<f32> = Vec::with_capacity(samples.len() * config.size * config.size);
    for run in contiguous_runs(samples) {
        maps.extend(
            ds.read_field_range(0, run.start, run.len())?
                .to_f64()
                .iter()
                .map(|&v| v as f32),
        );
    }
    let refs: Vec<&[f32]> = maps.chunks(config.size * config.size).collect();
    let mut terms: Vec<Box<dyn GeneratorLossTerm>> = Vec::new();
    if config.spectrum_loss > 0.0 {
        let m = SpectrumMatcher::new(
            config.size,
            config.spectrum_bins,
            &refs,
            transform.clone(),
            config.spectrum_loss,
            device,
        )?;
        terms.push(Box::new(if per_batch { m.per_batch() } else { m }));
    }
    if config.summary_loss > 0.0 {
        let m = SummaryMatcher::new(
            config.size,
            &refs,
            Thresholds {
                quantiles: config.summary_quantiles,
                count: config.summary_thresholds,
                spacing: config.summary_spacing,
            },
            config.summary_minkowski,
            transform.clone(),
            config.summary_loss,
            device,
        )?;
        terms.push(Box::new(if per_batch { m.per_batch() } else { m }));
    }
    Ok(terms)
}

/// Ascending sample indices as runs of consecutive ones.
fn contiguous_runs(samples: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for &i in samples {
        match runs.last_mut() {
            Some(r) if r.end == i => r.end += 1,
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

fn nets_g_vars(gan: &Dcgan) -> candle_nn::VarMap {
    gan.trained.as_ref().expect("built").0.g_vars.clone()
}

/// Checkpoint score: mean over the bins of the statistics of |Δ mean| / σ_ref between
/// generated maps and the held-out slice (lower is better).
/// (mean, standard deviation) per bin.
type BinMoments = Vec<(f64, f64)>;

struct Scorer {
    /// Each statistic with the held-out (mean, std) of every bin.
    stats: Vec<(Box<dyn simemu_core::Statistic>, BinMoments)>,
    seeds: Vec<u64>,
    cond_rows: Vec<Vec<f64>>,
}

impl Scorer {
    fn new(
        gan: &Dcgan,
        ds: &Dataset,
        holdout: std::ops::Range<usize>,
        registry: &Registry,
        seed: u64,
    ) -> Result<Option<Scorer>> {
        if holdout.is_empty() || gan.config.eval_stats.is_empty() {
            return Ok(None);
        }
        let samples = ds.read_samples(holdout.start, holdout.len())?;
        let mut pooled: Vec<f64> = samples
            .iter()
            .flat_map(|s| s.fields[0].data.to_f64())
            .collect();
        pooled.sort_by(|a, b| a.total_cmp(b));
        let q = |p: &[f64]| {
            Ok(p.iter()
                .map(|&x| simemu_core::bins::quantile_sorted(&pooled, x))
                .collect())
        };
        let mean = pooled.iter().sum::<f64>() / pooled.len() as f64;
        let var = pooled.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / pooled.len() as f64;
        let v = || Ok(var);
        let ctx = StatContext {
            field: ds.fields()[0].clone(),
            quantiles: &q,
            pooled_variance: &v,
        };
        let mut stats = Vec::new();
        for name in &gan.config.eval_stats {
            let entry = registry.statistic(name)?;
            let stat = (entry.build)(&serde_json::Value::Null, &ctx)?;
            let per: Vec<Vec<f64>> = samples
                .iter()
                .map(|s| stat.compute(s).map(|c| c.concat()))
                .collect::<Result<_>>()?;
            let nb = per[0].len();
            let n = per.len() as f64;
            let moments = (0..nb)
                .map(|b| {
                    let m = per.iter().map(|r| r[b]).sum::<f64>() / n;
                    let s = (per.iter().map(|r| (r[b] - m).powi(2)).sum::<f64>()
                        / (n - 1.0).max(1.0))
                    .sqrt();
                    (m, s)
                })
                .collect();
            stats.push((stat, moments));
        }
        let count = gan.config.eval_count.max(2);
        let eval_seed = derive_seed(seed, "dcgan-eval");
        let seeds: Vec<u64> = (0..count as u64)
            .map(|i| sample_seed(eval_seed, i))
            .collect();
        // Conditional models are scored at the held-out samples' own parameters.
        let meta = &gan.trained.as_ref().expect("built").1;
        let cond_rows = (0..count)
            .map(|i| {
                Condition::scale_all(
                    &meta.conditions,
                    ds.params_of(holdout.start + i % holdout.len()),
                )
            })
            .collect();
        Ok(Some(Scorer {
            stats,
            seeds,
            cond_rows,
        }))
    }

    fn score(&self, gan: &Dcgan) -> Result<f64> {
        let meta = &gan.trained.as_ref().expect("built").1;
        let mut maps = Vec::new();
        for (chunk, conds) in self.seeds.chunks(64).zip(self.cond_rows.chunks(64)) {
            maps.extend(gan.sample_maps_rows(chunk, conds)?);
        }
        let mut total = 0.0;
        let mut bins = 0usize;
        for (stat, moments) in &self.stats {
            let per: Vec<Vec<f64>> = maps
                .iter()
                .map(|m| {
                    let f = Field::new(
                        meta.field.name.clone(),
                        meta.field.shape.clone(),
                        Array::F32(m.clone()),
                    )?;
                    stat.compute(&Sample::single(f, vec![])).map(|c| c.concat())
                })
                .collect::<Result<_>>()?;
            let n = per.len() as f64;
            for (b, &(m, s)) in moments.iter().enumerate() {
                let g = per.iter().map(|r| r[b]).sum::<f64>() / n;
                if s > 0.0 {
                    total += (g - m).abs() / s;
                    bins += 1;
                }
            }
        }
        Ok(if bins == 0 {
            f64::INFINITY
        } else {
            total / bins as f64
        })
    }
}

/// Trains (or resumes) a DCGAN; returns when the target step is reached.
pub fn train(
    gan: &mut Dcgan,
    ds: &Dataset,
    options: &TrainOptions,
    registry: &Registry,
) -> Result<TrainSummary> {
    let t0 = std::time::Instant::now();
    let config = gan.config.clone();
    let run = options.run_dir.clone();
    let (data, meta) = prepare_data(&config, ds)?;
    let n_train = meta.training_samples;
    let n_cond = meta.conditions.len();
    let (mut nets, opt_g, opt_d) = initialise(&config, n_cond, &gan.device, options.seed)?;
    nets.g.pin_mean(meta.pinned_mean);
    let per_point = meta.per_point.is_some();
    if config.d_spectrum {
        // From the data alone, so a resumed run standardises exactly as it began:
        // one reference set of all training maps, or one per design point.
        let sets: Vec<Vec<usize>> = if per_point {
            data.points
                .iter()
                .map(|p| p.samples[..config.matching_count(p.samples.len())].to_vec())
                .collect()
        } else {
            vec![(0..config.matching_count(n_train)).collect()]
        };
        let n = config.size;
        for set in &sets {
            let batches = set.chunks(REFERENCE_BATCH).map(|idx| {
                let (x, _) = data
                    .batch(idx, None)
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
                Tensor::from_vec(x, (idx.len(), 1, n, n), &gan.device)
            });
            nets.d
                .standardise_spectrum(batches)
                .map_err(ce("standardising D's spectrum features"))?;
        }
    }
    gan.trained = Some((nets, meta.clone()));
    let ema = (config.ema > 0.0)
        .then(|| Ema::new(&named_vars(&nets_g_vars(gan)), config.ema))
        .transpose()
        .map_err(ce("moving average"))?;
    let mut tr = Trainer {
        gan,
        opt_g,
        opt_d,
        ema,
    };

    let steps_per_epoch = (n_train / config.batch).max(1) as u64;
    let target = options
        .steps
        .or(options.epochs.map(|e| e * steps_per_epoch))
        .unwrap_or(config.steps);
    let mut step = 0u64;
    let mut rollbacks = 0u64;
    let mut rows: Vec<String> = Vec::new();
    let csv_path = run.join("training.csv");
    if options.resume {
        if let Some(&last) = checkpoint_steps(&run).last() {
            let state = tr.restore(&run, last)?;
            if state.meta != meta {
                return Err(Error::Data(format!(
                    "{}: the checkpoint was trained on different data (field, transform or conditions differ)",
                    run.display()
                )));
            }
            step = state.step;
            rollbacks = state.rollbacks;
            rows = log_rows_up_to(&csv_path, step);
        }
    }
    let holdout = n_train..ds.len();
    let scorer = Scorer::new(tr.gan, ds, holdout, registry, options.seed)?;
    let mut best: Option<Best> = std::fs::read_to_string(run.join("checkpoints/best.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(|b: &Best| options.resume && b.step <= step);

    let bar = if options.progress && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let pb = indicatif::ProgressBar::new(target);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "dcgan {bar:30} {pos}/{len} {msg} ({per_sec}, ETA {eta})",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        pb.set_position(step);
        pb
    } else {
        indicatif::ProgressBar::hidden()
    };
    let extra_g_terms = matching_terms(&config, &data, n_train, per_point, &tr.gan.device)?;
    let train_seed = derive_seed(options.seed, "dcgan-steps");
    let g_named = named_vars(&nets_g_vars(tr.gan));
    let (h, w) = (config.size, config.size);
    let b = config.batch;
    let mut budget_reached = false;
    let out_of_time = || {
        options
            .budget_seconds
            .is_some_and(|b| t0.elapsed().as_secs_f64() >= b)
    };
    while step < target {
        if out_of_time() {
            bar.println(format!("dcgan: time budget reached at step {step}"));
            budget_reached = true;
            break;
        }
        let s = step + 1;
        let mut rng = simemu_core::seed::rng(sample_seed(
            train_seed ^ rollbacks.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            s,
        ));
        // `per_point`: a batch of one design point, drawn uniformly among them.
        let point = if per_point {
            rng.random_range(0..data.points.len())
        } else {
            0
        };
        let idx: Vec<usize> = if per_point {
            let samples = &data.points[point].samples;
            (0..b)
                .map(|_| samples[rng.random_range(0..samples.len())])
                .collect()
        } else {
            (0..b).map(|_| rng.random_range(0..n_train)).collect()
        };
        let symmetries: Option<Vec<(usize, usize, u8)>> = config.augment.then(|| {
            (0..b)
                .map(|_| {
                    (
                        rng.random_range(0..h),
                        rng.random_range(0..w),
                        rng.random_range(0..8u8),
                    )
                })
                .collect()
        });
        let (x, c) = data.batch(&idx, symmetries.as_deref())?;
        let dev = tr.gan.device.clone();
        let real = Tensor::from_vec(x, (b, 1, h, w), &dev).map_err(ce("batch"))?;
        let cond = (n_cond > 0)
            .then(|| Tensor::from_vec(c.clone(), (b, n_cond), &dev))
            .transpose()
            .map_err(ce("batch"))?;
        let zseeds: Vec<u64> = (0..b).map(|_| rng.random()).collect();
        let cond_rows: Vec<Vec<f64>> = (0..b)
            .map(|k| {
                c[k * n_cond..(k + 1) * n_cond]
                    .iter()
                    .map(|&v| v as f64)
                    .collect()
            })
            .collect();
        let z = tr.gan.latents_rows(&zseeds, &cond_rows)?;
        let lr_factor = config.lr_schedule.factor(s, target, config.lr_final);
        tr.opt_g.lr = config.lr_g * lr_factor;
        tr.opt_d.lr = config.lr_d * lr_factor;
        let flip = rng.random::<f64>() < config.label_flip;
        let (t_real, t_fake) = if flip { (0.0, 1.0) } else { (1.0, 0.0) };
        let (nets, meta) = tr.gan.trained.as_ref().expect("built");
        if per_point {
            nets.g
                .pin_mean(meta.pinned_mean_at(&data.points[point].scaled));
        }
        let outcome = gan_step(
            nets,
            (&mut tr.opt_d, &mut tr.opt_g),
            (&real, &z, cond.as_ref(), point),
            (t_real, t_fake),
            config.max_loss,
            &extra_g_terms[point],
        )?;
        let (ld, lg, pr, pf) = match outcome {
            StepOutcome::Updated {
                loss_d,
                loss_g,
                p_real,
                p_fake,
            } => (loss_d, loss_g, p_real, p_fake),
            StepOutcome::Diverged { loss_d, loss_g } => (loss_d, loss_g, f64::NAN, f64::NAN),
        };
        if let StepOutcome::Diverged { .. } = outcome {
            let last = checkpoint_steps(&run).into_iter().rfind(|&c| c <= step);
            let Some(last) = last else {
                return Err(Error::Other(format!(
                    "dcgan diverged at step {s} (loss_d {ld}, loss_g {lg}) before the first checkpoint; lower the learning rates"
                )));
            };
            rollbacks += 1;
            if rollbacks > MAX_ROLLBACKS {
                return Err(Error::Other(format!(
                    "dcgan diverged {rollbacks} times; last at step {s} (loss_d {ld}, loss_g {lg})"
                )));
            }
            bar.println(format!(
                "step {s}: loss_d {ld:.3e}, loss_g {lg:.3e}: rolling back to step {last}"
            ));
            tr.restore(&run, last)?;
            step = last;
            rows.retain(|r| {
                r.split(',')
                    .next()
                    .and_then(|x| x.parse::<u64>().ok())
                    .is_some_and(|x| x <= last)
            });
            continue;
        }
        if let Some(ema) = &mut tr.ema {
            ema.update(&g_named).map_err(ce("moving average"))?;
        }
        step = s;
        let mut score = None;
        if step.is_multiple_of(config.checkpoint_every) || step == target {
            if let Some(sc) = &scorer {
                score = Some(tr.with_generating_weights(|g| sc.score(g))?);
            }
            tr.save(&run, step, rollbacks, score)?;
            if let Some(sv) = score {
                if best.as_ref().is_none_or(|b| sv < b.score) {
                    best = Some(Best { step, score: sv });
                    write_json_atomic(&run.join("checkpoints/best.json"), best.as_ref().unwrap())?;
                }
            }
            prune(&run, config.keep_last, best.as_ref().map(|b| b.step))?;
        }
        rows.push(format!(
            "{step},{ld},{lg},{pr},{pf},{}",
            score.map(|v| v.to_string()).unwrap_or_default()
        ));
        if score.is_some() {
            write_log(&csv_path, CSV_HEADER, &rows)?;
        }
        bar.set_position(step);
        bar.set_message(format!("loss_d {ld:.3} loss_g {lg:.3}"));
    }
    bar.finish_and_clear();
    if !step_dir(&run, step).join("state.json").exists() {
        // E.g. `--steps 0`: the initialised model, a baseline for comparisons.
        let score = scorer
            .as_ref()
            .map(|sc| tr.with_generating_weights(|g| sc.score(g)))
            .transpose()?;
        tr.save(&run, step, rollbacks, score)?;
    }
    write_log(&csv_path, CSV_HEADER, &rows)?;
    if let Some(ema) = &tr.ema {
        // From here on the trained generator generates, with its averaged weights.
        assign(
            &g_named,
            &ema.state().map_err(ce("moving average"))?,
            "moving average",
        )?;
    }
    tr.gan.recalibrate_batch_norm()?;
    Ok(TrainSummary {
        steps: step,
        seconds: t0.elapsed().as_secs_f64(),
        details: serde_json::json!({
            "rollbacks": rollbacks,
            "budget_reached": budget_reached,
            "best": best.map(|b| serde_json::json!({"step": b.step, "score": b.score})),
            "parameters_g": parameter_count(&named_vars(&tr.gan.trained.as_ref().unwrap().0.g_vars)),
            "parameters_d": parameter_count(&named_vars(&tr.gan.trained.as_ref().unwrap().0.d_vars)),
        }),
    })
}

/// `save` after training: the loop writes every checkpoint itself (atomically, with
/// the optimizer state), so this only checks that training left one behind.
pub fn save_final(dir: &Path) -> Result<()> {
    if checkpoint_steps(dir).is_empty() {
        return Err(Error::Other(format!(
            "dcgan: no checkpoint was written in {}",
            dir.display()
        )));
    }
    Ok(())
}

/// Loads a generator from a run directory (its best checkpoint, else its latest) or
/// from one checkpoint directory onto `device`, whichever device wrote it.
pub fn load(path: &Path, config: DcganConfig, device: &Device) -> Result<Dcgan> {
    let dir = if path.join("state.json").exists() {
        path.to_path_buf()
    } else {
        let best: Option<Best> = std::fs::read_to_string(path.join("checkpoints/best.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let step = match best {
            Some(b) if step_dir(path, b.step).join("state.json").exists() => b.step,
            Some(b) => {
                return Err(Error::bad_file(
                    path.join("checkpoints/best.json"),
                    format!(
                        "names step {}, whose checkpoint is missing; give one of the checkpoints there ({}) as --checkpoint",
                        b.step,
                        step_dir(path, 0).parent().map(|p| p.display().to_string()).unwrap_or_default()
                    ),
                ))
            }
            None => *checkpoint_steps(path).last().ok_or_else(|| {
                Error::bad_file(
                    path,
                    "no dcgan checkpoint here (checkpoints/step-*/state.json)",
                )
            })?,
        };
        step_dir(path, step)
    };
    let state: CheckpointState = read_state(&dir)?;
    let step = state.step;
    let config = if state.config != config {
        state.config.clone()
    } else {
        config
    };
    let mut gan = Dcgan::on(config, device.clone());
    let nets = Nets::new(&gan.config, state.meta.conditions.len(), &gan.device)?;
    nets.g.pin_mean(state.meta.pinned_mean);
    load_networks(&dir, &nets.networks())?;
    // Generation uses the moving average of G's weights.
    load_moving_average(&dir, &nets.g_vars)?;
    gan.trained = Some((nets, state.meta));
    gan.loaded_step = Some(step);
    gan.recalibrate_batch_norm()?;
    Ok(gan)
}

#[cfg(test)]
mod tests {
    use super::augment_map;

    /// The 8 symmetries of the square are 8 distinct permutations, composed with a
    /// periodic shift; the identity with no shift returns the map.
    #[test]
    fn augmentation_is_the_dihedral_group_after_a_periodic_shift() {
        let n = 4;
        let map: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let mut seen = Vec::new();
        for k in 0..8u8 {
            let mut out = Vec::new();
            augment_map(&map, n, (0, 0, k), &mut out);
            let mut sorted = out.clone();
            sorted.sort_by(f32::total_cmp);
            assert_eq!(sorted, map, "k = {k} is a permutation");
            assert!(!seen.contains(&out), "k = {k} repeats another symmetry");
            seen.push(out);
        }
        assert_eq!(seen[0], map);
        // A 90° rotation applied four times is the identity.
        let mut x = map.clone();
        for _ in 0..4 {
            let mut out = Vec::new();
            augment_map(&x, n, (0, 0, 1), &mut out);
            x = out;
        }
        assert_eq!(x, map);
        // Shift by (1, 2): out[y][x] = map[(y + 1) % n][(x + 2) % n].
        let mut out = Vec::new();
        augment_map(&map, n, (1, 2, 0), &mut out);
        assert_eq!(out[0], map[n + 2]);
        assert_eq!(out[n * n - 1], map[1]); // (3 + 1) % 4 = 0, (3 + 2) % 4 = 1
    }
}
