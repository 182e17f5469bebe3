//! # simemu-dcgan
//!
//! The `dcgan` generator: CosmoGAN's DCGAN (Mustafa et al. 2019) in candle, with
//! the conditional form G(σ, z) the seed names as the next step. See
//! `../shared/reference/cosmogan.md` for the architecture and hyper-parameters; the
//! defaults here are CosmoGAN's except the size (64² on CPU), the base width and the
//! data transform (an affine map onto the tanh range; `identity` is CosmoGAN's).
//!
//! Training writes periodic checkpoints (safetensors weights, Adam moments and a
//! JSON state) into the run directory, scores each on a held-out slice with the
//! registered statistics to pick the best one, rolls back on a diverging loss, and
//! resumes bit-identically (`simemu train dcgan --resume`).

pub mod bench;
pub mod config;
pub mod model;
pub mod spectrum;
pub mod summary;
pub mod train;
pub mod transform;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use simemu_core::{
    Array, Dataset, Error, Field, FieldSpec, Generator, OptionSpec, ParamSpec, Registry, Result,
    Sample, TrainOptions, TrainSummary,
};
use simemu_nn::ce;

pub use config::DcganConfig;
use model::{DiscriminatorNet, GeneratorNet};
use transform::{ConditionalRange, Polynomial, Transform};

pub const NAME: &str = "dcgan";

/// Batches (of the configured batch size) that set G's BatchNorm statistics.
const RECALIBRATION_BATCHES: usize = 32;
const RECALIBRATION_SEED: u64 = 0x5eed_ba7c;

/// A parameter the model is conditioned on, with the training range used to scale
/// it to [−1, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub name: String,
    /// Column in the training dataset's parameters.
    pub column: usize,
    pub lo: f64,
    pub hi: f64,
    /// The box the model is for (`condition_bounds`); `None`: [lo, hi].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounds: Option<(f64, f64)>,
}

impl Condition {
    /// The range of values the model generates at.
    pub fn range(&self) -> (f64, f64) {
        self.bounds.unwrap_or((self.lo, self.hi))
    }

    /// Each condition of a sample's parameters `params` (in the dataset's
    /// columns), scaled.
    pub fn scale_all(conditions: &[Condition], params: &[f64]) -> Vec<f64> {
        conditions
            .iter()
            .map(|c| c.scale(params[c.column]))
            .collect()
    }

    pub fn scale(&self, v: f64) -> f64 {
        if self.hi > self.lo {
            2.0 * (v - self.lo) / (self.hi - self.lo) - 1.0
        } else {
            0.0
        }
    }
}

/// What a checkpoint records besides the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub field: FieldSpec,
    pub transform: Transform,
    pub conditions: Vec<Condition>,
    pub training_samples: usize,
    /// The spatial mean every generated map gets in the network's range
    /// (`pin_mean`): the training maps' average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_mean: Option<f64>,
    /// `per_point` on conditional data: the transform's range and the pinned
    /// mean as functions of the conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_point: Option<PerPoint>,
}

/// What `per_point` fits over the design's points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerPoint {
    pub range: ConditionalRange,
    /// The pinned mean in the network's range (where every point's maps have
    /// means that do not scatter).
    pub pinned_mean: Option<Polynomial>,
    /// The design points (scaled conditions) the fits were made over.
    pub points: Vec<Vec<f64>>,
}

impl Meta {
    /// The transform at scaled conditions `c`.
    pub fn transform_at(&self, c: &[f64]) -> Transform {
        match &self.per_point {
            Some(p) => p.range.at(&self.transform, c),
            None => self.transform.clone(),
        }
    }

    /// The pinned mean at scaled conditions `c`.
    pub fn pinned_mean_at(&self, c: &[f64]) -> Option<f64> {
        match &self.per_point {
            Some(p) => p.pinned_mean.as_ref().map(|m| m.eval(c)),
            None => self.pinned_mean,
        }
    }
}

/// Networks and their variables.
pub struct Nets {
    pub g_vars: VarMap,
    pub d_vars: VarMap,
    pub g: GeneratorNet,
    pub d: DiscriminatorNet,
}

impl Nets {
    pub fn new(config: &DcganConfig, n_cond: usize, device: &Device) -> Result<Self> {
        let g_vars = VarMap::new();
        let d_vars = VarMap::new();
        let g = GeneratorNet::new(
            config,
            n_cond,
            VarBuilder::from_varmap(&g_vars, DType::F32, device).pp("g"),
        )
        .map_err(ce("building G"))?;
        let d = DiscriminatorNet::new(
            config,
            n_cond,
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
}

impl Nets {
    /// The networks as checkpoints name them.
    pub fn networks(&self) -> [(&'static str, &VarMap); 2] {
        [("generator", &self.g_vars), ("discriminator", &self.d_vars)]
    }
}

pub struct Dcgan {
    pub config: DcganConfig,
    pub device: Device,
    pub trained: Option<(Nets, Meta)>,
    /// The checkpoint step a loaded model holds.
    pub loaded_step: Option<u64>,
    /// The scaled conditions G's BatchNorm statistics were last computed at (a
    /// model with conditioned BatchNorms computes them per condition).
    calibrated_at: std::sync::Mutex<Option<Vec<f64>>>,
}

impl Dcgan {
    /// An untrained model on the CPU.
    pub fn new(config: DcganConfig) -> Self {
        Dcgan::on(config, Device::Cpu)
    }

    /// An untrained model that trains and generates on `device`.
    pub fn on(config: DcganConfig, device: Device) -> Self {
        Dcgan {
            config,
            device,
            trained: None,
            loaded_step: None,
            calibrated_at: std::sync::Mutex::new(None),
        }
    }

    fn ready(&self) -> Result<&(Nets, Meta)> {
        self.trained
            .as_ref()
            .ok_or_else(|| Error::Other("dcgan: not trained or loaded".into()))
    }

    /// Latent vectors for `seeds` (one ChaCha stream per seed), each with its scaled
    /// conditions appended: (B, latent + n_cond).
    pub fn latents_rows(&self, seeds: &[u64], conds: &[Vec<f64>]) -> Result<Tensor> {
        use rand_distr::{Distribution, StandardNormal};
        let k = conds.first().map(|c| c.len()).unwrap_or(0);
        let mut v = Vec::with_capacity(seeds.len() * (self.config.latent + k));
        for (&s, cond) in seeds.iter().zip(conds) {
            let mut rng = simemu_core::seed::rng(simemu_core::seed::derive_seed(s, "dcgan-z"));
            v.extend((0..self.config.latent).map(|_| -> f32 { StandardNormal.sample(&mut rng) }));
            v.extend(cond.iter().map(|&c| c as f32));
        }
        Tensor::from_vec(v, (seeds.len(), self.config.latent + k), &self.device)
            .map_err(ce("latents"))
    }

    /// Recomputes G's BatchNorm running statistics for the weights it holds (see
    /// [`GeneratorNet::recalibrate`](model::GeneratorNet::recalibrate)), from
    /// fixed latent draws and conditions spread uniformly over the trained range:
    /// deterministic, so a loaded checkpoint generates what the trainer scored.
    ///
    /// With conditioned BatchNorms (`per_point`), training normalised each
    /// design point's batches by their own statistics, so the statistics are
    /// computed at each condition generated at instead, when it is first asked
    /// for; this forgets those computed for earlier weights.
    pub fn recalibrate_batch_norm(&self) -> Result<()> {
        let (nets, _) = self.ready()?;
        if nets.g.conditioned() {
            *self.calibrated_at.lock().expect("not poisoned") = None;
            return Ok(());
        }
        self.recalibrate_at(None)
    }

    /// Recalibration from the fixed latent draws, every row at the scaled
    /// conditions `at`, or at conditions drawn uniformly over the trained range
    /// (`None`).
    fn recalibrate_at(&self, at: Option<&[f64]>) -> Result<()> {
        use rand::Rng;
        let (nets, meta) = self.ready()?;
        let mut rng = simemu_core::seed::rng(simemu_core::seed::derive_seed(
            RECALIBRATION_SEED,
            "dcgan-bn-recalibration",
        ));
        let b = self.config.batch;
        let zs = (0..RECALIBRATION_BATCHES)
            .map(|_| {
                let seeds: Vec<u64> = (0..b).map(|_| rng.random()).collect();
                let conds: Vec<Vec<f64>> = (0..b)
                    .map(|_| {
                        let drawn: Vec<f64> = meta
                            .conditions
                            .iter()
                            .map(|_| rng.random_range(-1.0..=1.0))
                            .collect();
                        at.map_or(drawn, <[f64]>::to_vec)
                    })
                    .collect();
                self.latents_rows(&seeds, &conds)
            })
            .collect::<Result<Vec<_>>>()?;
        nets.g
            .recalibrate(&zs)
            .map_err(ce("recalibrating BatchNorm"))
    }

    /// Physical-unit maps from G in evaluation mode, one per seed, each at its own
    /// scaled conditions.
    pub fn sample_maps_rows(&self, seeds: &[u64], conds: &[Vec<f64>]) -> Result<Vec<Vec<f32>>> {
        let (nets, meta) = self.ready()?;
        if !nets.g.conditioned() {
            nets.g.pin_mean(meta.pinned_mean);
            return self.sample_maps_at(seeds, conds, &meta.transform);
        }
        // Row by row of equal conditions, each with G's statistics, transform and
        // pinned mean at them.
        let mut out = vec![Vec::new(); seeds.len()];
        let mut done = vec![false; seeds.len()];
        let mut calibrated = self.calibrated_at.lock().expect("not poisoned");
        for first in 0..seeds.len() {
            if done[first] {
                continue;
            }
            let c = &conds[first];
            let rows: Vec<usize> = (first..seeds.len()).filter(|&i| &conds[i] == c).collect();
            if calibrated.as_ref() != Some(c) {
                self.recalibrate_at(Some(c))?;
                *calibrated = Some(c.clone());
            }
            nets.g.pin_mean(meta.pinned_mean_at(c));
            let group_seeds: Vec<u64> = rows.iter().map(|&i| seeds[i]).collect();
            let group_conds = vec![c.clone(); rows.len()];
            let maps = self.sample_maps_at(&group_seeds, &group_conds, &meta.transform_at(c))?;
            for (&i, m) in rows.iter().zip(maps) {
                out[i] = m;
                done[i] = true;
            }
        }
        Ok(out)
    }

    /// [`Dcgan::sample_maps_rows`] with G's state as it is and one transform.
    fn sample_maps_at(
        &self,
        seeds: &[u64],
        conds: &[Vec<f64>],
        transform: &Transform,
    ) -> Result<Vec<Vec<f32>>> {
        let (nets, _) = self.ready()?;
        let z = self.latents_rows(seeds, conds)?;
        // A one-row matrix product takes gemm's matrix-vector path, which rounds
        // differently: generate at least two rows so that a sample's bytes do not
        // depend on the batch it was generated in.
        let z = if seeds.len() == 1 {
            Tensor::cat(&[&z, &z], 0).map_err(ce("latents"))?
        } else {
            z
        };
        let out = nets
            .g
            .forward(&z, false)
            .and_then(|o| o.narrow(0, 0, seeds.len()))
            .map_err(ce("generating"))?;
        let flat: Vec<f32> = out
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .map_err(ce("generating"))?;
        let per = self.config.size * self.config.size;
        Ok(flat
            .chunks(per)
            .map(|c| {
                c.iter()
                    .map(|&s| transform.inverse(s as f64) as f32)
                    .collect()
            })
            .collect())
    }
}

impl Generator for Dcgan {
    fn name(&self) -> &str {
        NAME
    }
    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("serialisable")
    }
    fn fields(&self) -> Vec<FieldSpec> {
        self.trained
            .as_ref()
            .map(|(_, m)| vec![m.field.clone()])
            .unwrap_or_default()
    }
    fn params(&self) -> Vec<ParamSpec> {
        self.trained
            .as_ref()
            .map(|(_, m)| {
                m.conditions
                    .iter()
                    .map(|c| {
                        let (lo, hi) = c.range();
                        ParamSpec::new(
                            &c.name,
                            "",
                            lo,
                            hi,
                            0.5 * (lo + hi),
                            "condition (trained range)",
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    fn train(
        &mut self,
        data: &Dataset,
        options: &TrainOptions,
        registry: &Registry,
    ) -> Result<TrainSummary> {
        train::train(self, data, options, registry)
    }
    fn save(&self, dir: &Path) -> Result<()> {
        train::save_final(dir)
    }
    fn provenance(&self) -> serde_json::Value {
        match self.loaded_step {
            Some(step) => serde_json::json!({ "step": step }),
            None => serde_json::Value::Null,
        }
    }
    fn generate(&self, params: &[f64], seeds: &[u64]) -> Result<Vec<Sample>> {
        let (_, meta) = self.ready()?;
        if !meta.conditions.is_empty() && params.is_empty() {
            let names: Vec<&str> = meta.conditions.iter().map(|c| c.name.as_str()).collect();
            return Err(Error::Parameter(format!(
                "dcgan is conditioned on {}: give --param for each",
                names.join(", ")
            )));
        }
        if params.len() != meta.conditions.len() {
            return Err(Error::Parameter(format!(
                "dcgan takes {} parameters, got {}",
                meta.conditions.len(),
                params.len()
            )));
        }
        for (c, &v) in meta.conditions.iter().zip(params) {
            let (lo, hi) = c.range();
            // A hair of slack for parameters written in decimal.
            let slack = 1e-9 * (hi - lo).abs().max(lo.abs());
            if !(v >= lo - slack && v <= hi + slack) {
                let range: Vec<String> = meta
                    .conditions
                    .iter()
                    .map(|c| {
                        let (lo, hi) = c.range();
                        format!("{} ∈ [{lo}, {hi}]", c.name)
                    })
                    .collect();
                return Err(Error::Parameter(format!(
                    "dcgan: {} = {v} is outside the box the model was trained on ({})",
                    c.name,
                    range.join(", ")
                )));
            }
        }
        let scaled: Vec<f64> = meta
            .conditions
            .iter()
            .zip(params)
            .map(|(c, &v)| c.scale(v))
            .collect();
        let maps = self.sample_maps_rows(seeds, &vec![scaled; seeds.len()])?;
        let shape = meta.field.shape.clone();
        maps.into_iter()
            .map(|m| {
                Ok(Sample::single(
                    Field::new(meta.field.name.clone(), shape.clone(), Array::F32(m))?,
                    params.to_vec(),
                ))
            })
            .collect()
    }
}

/// `dcgan`'s options as `simemu list` shows them: each group's, in order.
const OPTION_GROUPS: &[(&str, &[(&str, &str)])] = &[
    (
        "preset",
        &[("preset", "\"fidelity\": docs/fidelity.md's recipe (the shipped emulator's) | \"baseline\": CosmoGAN's architecture and optimiser, fidelity levers off; fills every option not set")],
    ),
    (
        "architecture",
        &[
            ("size", "output side in pixels (multiple of 2^layers)"),
            ("layers", "transposed convolutions in G / convolutions in D"),
            ("width", "base width (CosmoGAN: 64)"),
            ("latent", "latent dimension of z"),
            ("upsample", "\"transposed\": 5×5 stride 2 (CosmoGAN) | \"even\": 4×4 (no checkerboard)"),
            ("bias_before_batchnorm", "biases on convolutions that BatchNorm follows (CosmoGAN: true; the PyTorch benchmark twin: false)"),
            ("transform", "{kind = \"affine\"} | {kind = \"identity\"} | {kind = \"shifted\", lambda, a} | {kind = \"log\", lambda}: physical values ↔ the network's range"),
            ("condition", "parameters to condition on (default: those that vary in the data)"),
            ("condition_bounds", "NAME = [lo, hi]: the box each condition's model is for (default: the training parameters' span, which it must contain)"),
            ("per_point", "conditional data: batches of one design point each, matched to that point's targets; the transform's range and the pinned mean fitted over the points; conditioned BatchNorm in G, a projection of the conditions in D"),
        ],
    ),
    (
        "objective",
        &[
            ("batch", "batch size"),
            ("lr_g", "G's Adam learning rate"),
            ("lr_d", "D's Adam learning rate"),
            ("lr_schedule", "\"constant\" | \"linear\" | \"cosine\": decay of the learning rates over the run's steps"),
            ("lr_final", "fraction of the learning rates a decaying schedule reaches at the last step"),
            ("beta1", "Adam β1"),
            ("beta2", "Adam β2"),
            ("label_flip", "probability of swapping a whole D batch's labels"),
            ("augment", "random periodic shifts and rotations/reflections of training maps (off for data without those symmetries)"),
            ("ema", "decay of the moving average of G's weights used to generate (0: off)"),
        ],
    ),
    (
        "fidelity terms",
        &[
            ("spectrum_loss", "weight of the power-spectrum matching term in G's loss (0: off)"),
            ("spectrum_bins", "\"log\": 12 log bands of |k| | \"shells\": every shell of equal |k|²"),
            ("summary_loss", "weight of the per-map summary matching term (mean and scatter) in G's loss (0: off)"),
            ("summary_quantiles", "[lo, hi]: training-pixel quantiles spanned by the summary term's pixel-fraction thresholds"),
            ("summary_thresholds", "number of the summary term's pixel-fraction thresholds (smooth steps half their spacing wide)"),
            ("summary_spacing", "\"linear\": thresholds evenly spaced in pixel value | \"normal\": evenly in the normal score of the training pixels' quantile | \"finer\": the finer of the two at every threshold"),
            ("summary_minkowski", "true: the summary term also matches smooth per-map V1 and V2 between its thresholds"),
            ("matching_maps", "training maps the spectrum and summary terms take their targets from: \"all\" or at most this many (the first)"),
            ("d_spectrum", "true: D also sees its input's log power in 12 log bands of |k|, standardised by the training maps' (bypassing its BatchNorm)"),
            ("pin_mean", "every generated map gets the training maps' mean (in the network's range): true (refused for data whose per-map means scatter) | false | \"auto\": pinned unless they scatter"),
        ],
    ),
    (
        "bookkeeping",
        &[
            ("steps", "training steps without --steps/--epochs"),
            ("checkpoint_every", "steps between checkpoints"),
            ("keep_last", "recent checkpoints kept (plus the best)"),
            ("holdout", "training samples held out to score checkpoints"),
            ("eval_stats", "statistics scored against the held-out slice"),
            ("eval_count", "maps generated to score a checkpoint"),
            ("max_loss", "a loss above this (or NaN) rolls back to the last checkpoint"),
        ],
    ),
];

fn options() -> Vec<OptionSpec> {
    let defaults = serde_json::to_value(DcganConfig::default()).expect("serialisable");
    OPTION_GROUPS
        .iter()
        .flat_map(|(group, options)| {
            options.iter().map(|(name, description)| {
                OptionSpec::new(name, defaults[*name].clone(), description).in_group(group)
            })
        })
        .collect()
}

/// Registers `dcgan`.
pub fn register(r: &mut Registry) -> Result<()> {
    r.add_generator(
        NAME,
        "CosmoGAN DCGAN: G(σ, z) with transposed convolutions, trained adversarially (candle)",
        options(),
        |o, ctx| {
            let device = simemu_nn::device(ctx.device)?;
            Ok(Box::new(Dcgan::on(DcganConfig::from_options(o)?, device)) as Box<dyn Generator>)
        },
        |path, o, ctx| {
            let device = simemu_nn::device(ctx.device)?;
            Ok(
                Box::new(train::load(path, DcganConfig::from_stored(o)?, &device)?)
                    as Box<dyn Generator>,
            )
        },
    )
}

simemu_core::inventory::submit! { simemu_core::StaticPlugin { name: "dcgan", register } }

#[cfg(test)]
mod tests {
    /// Every configuration field is listed once, in a group, with a description.
    #[test]
    fn every_option_is_listed_once_with_its_group() {
        let defaults = serde_json::to_value(super::DcganConfig::default()).unwrap();
        let mut fields: Vec<&String> = defaults.as_object().unwrap().keys().collect();
        let mut listed: Vec<String> = super::options().into_iter().map(|o| o.name).collect();
        fields.sort();
        listed.sort();
        assert_eq!(listed.iter().collect::<Vec<_>>(), fields);
        assert!(super::options()
            .iter()
            .all(|o| !o.group.is_empty() && !o.description.is_empty()));
    }
}
