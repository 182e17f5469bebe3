//! The classifier two-sample test (C2ST): a network trained to tell reference
//! samples from candidate samples, scored on samples it never saw — the test
//! CaloChallenge ranks emulators by and sbibm scores with.
//!
//! **Protocol.** The samples of each set are dealt, after a seeded shuffle, into
//! [`C2stOptions::folds`] folds (5). Fold k is tested by a classifier trained
//! on the other folds but one: fold k + 1 is its validation split, which stops
//! the training (the epoch of lowest validation loss is kept, with a patience of
//! [`C2stOptions::patience`] epochs) and calibrates its output by isotonic
//! regression. With five folds each classifier sees CaloChallenge's 60/20/20
//! split, and every sample is scored once, out of fold, so that all of them
//! count towards the scores (a single split would judge on a fifth).
//!
//! **Scores**, as CaloChallenge's `evaluate.py` computes them on the
//! calibrated probabilities p of the held-out samples (label 1: candidate):
//! the ROC AUC (sklearn's `roc_auc_score`, ties as mid-ranks), the accuracy of
//! `round(p)`, and JSD = ln 2 − BCE(p) in nats (0 when the classifier cannot
//! tell the sets apart, ln 2 when it always can) and in bits, divided by ln 2,
//! as the challenge reports it ([`calibrated_scores`]).
//!
//! **p-value.** Under the null (one distribution) a classifier's scores on
//! the fold it did not train on are exchangeable with respect to the labels of
//! that fold. The test statistic is the mean over folds of each fold's AUC of
//! the raw network outputs (the calibrated AUC of the scores has ties, which
//! only cost power); its null is computed by [`C2stOptions::permutations`]
//! random permutations of the labels within each fold — exact, with no
//! assumption about the classifier. p = (1 + #{T_perm ≥ T})/(1 + permutations).
//!
//! **Classifiers**, built from `simemu-nn`'s blocks, f32 on the CPU:
//! - fields of two or more dimensions whose last two sides are at least 16: a
//!   CNN (leading dimensions as channels, so a 3D field is a stack of planes):
//!   3×3 stride-2 convolutions with LeakyReLU down to a side ≤ 8 (8, 16, 32, 32
//!   channels). A linear head reads the channel means of every layer (amplitude
//!   and one-point shape, averaged over the whole sample), a 1×1 projection of
//!   the last layer at every position (where structures sit), the statistic
//!   vectors through a hidden layer of 64 where they are given, and — summed
//!   into the logit — a linear template on the input values themselves, under
//!   an L1 penalty so that it stays sparse: a fixed pattern or a pixel that
//!   always holds a maximum is a template on a few or many pixels, and
//!   thousands of noise weights would otherwise drown it (the head carries an
//!   L2 penalty for the same reason). With 600 training samples for thousands
//!   of inputs, these two penalties are what let the network learn before it
//!   overfits;
//! - anything else (vectors, several fields, statistic vectors): an MLP of two
//!   hidden layers (128, 64) with LeakyReLU on the values and the summaries.
//!
//! Inputs are standardised with the training split's mean and standard
//! deviation (one pair for a field, one per feature for vectors). Everything is
//! seeded: the same sets give the same bytes.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use simemu_core::{Array, Dataset, Error, Result};
use simemu_nn::{bias_activation, Activation, Adam};

/// How the test trains and how many permutations its null takes.
#[derive(Clone, Debug, PartialEq)]
pub struct C2stOptions {
    pub folds: usize,
    pub max_epochs: usize,
    /// Epochs without a lower validation loss before training stops.
    pub patience: usize,
    pub batch: usize,
    pub learning_rate: f64,
    pub permutations: usize,
    pub seed: u64,
}

impl Default for C2stOptions {
    fn default() -> Self {
        C2stOptions {
            folds: 5,
            max_epochs: 60,
            patience: 10,
            batch: 32,
            learning_rate: 3e-4,
            permutations: 10_000,
            seed: 0xc257,
        }
    }
}

/// Samples as one flat f32 array, each of `shape`.
#[derive(Clone, Debug)]
pub struct Inputs {
    pub values: Vec<f32>,
    pub shape: Vec<usize>,
    /// Per-sample summaries the classifier reads beside the samples (the
    /// statistic vectors the harness measured), `summary_width` each.
    pub summaries: Vec<f32>,
    pub summary_width: usize,
}

impl Inputs {
    pub fn count(&self) -> usize {
        self.values.len().checked_div(self.size()).unwrap_or(0)
    }

    fn size(&self) -> usize {
        self.shape.iter().product()
    }

    /// The samples of `rows`, in that order.
    pub fn rows(&self, rows: &[usize]) -> Inputs {
        let size = self.size();
        let width = self.summary_width;
        let mut values = Vec::with_capacity(rows.len() * size);
        let mut summaries = Vec::with_capacity(rows.len() * width);
        for &r in rows {
            values.extend_from_slice(&self.values[r * size..(r + 1) * size]);
            summaries.extend_from_slice(&self.summaries[r * width..(r + 1) * width]);
        }
        Inputs {
            values,
            shape: self.shape.clone(),
            summaries,
            summary_width: width,
        }
    }

    /// The same samples with these per-sample summaries beside them.
    pub fn with_summaries(mut self, vectors: &[Vec<f64>]) -> Result<Inputs> {
        if vectors.len() != self.count() {
            return Err(Error::Data(format!(
                "c2st: {} summaries for {} samples",
                vectors.len(),
                self.count()
            )));
        }
        self.summary_width = vectors.first().map_or(0, Vec::len);
        self.summaries = vectors.iter().flatten().map(|&v| v as f32).collect();
        Ok(self)
    }

    /// Vectors of equal length (statistic vectors) as inputs.
    pub fn from_vectors(vectors: &[Vec<f64>]) -> Inputs {
        let width = vectors.first().map_or(0, Vec::len);
        Inputs {
            values: vectors.iter().flatten().map(|&v| v as f32).collect(),
            shape: vec![width],
            summaries: Vec::new(),
            summary_width: 0,
        }
    }

    /// A dataset's samples: the field `field` alone where a CNN takes it,
    /// otherwise every field, flattened and concatenated.
    pub fn of_dataset(dataset: &Dataset, field: usize) -> Result<Inputs> {
        let read = |f: usize| -> Result<Vec<f32>> {
            Ok(match dataset.read_field_range(f, 0, dataset.len())? {
                Array::F32(v) => v,
                Array::F64(v) => v.into_iter().map(|x| x as f32).collect(),
            })
        };
        let shape = dataset.fields()[field].shape.clone();
        if takes_cnn(&shape) {
            return Ok(Inputs {
                values: read(field)?,
                shape,
                summaries: Vec::new(),
                summary_width: 0,
            });
        }
        let fields: Vec<Vec<f32>> = (0..dataset.fields().len())
            .map(read)
            .collect::<Result<_>>()?;
        let sizes: Vec<usize> = dataset
            .fields()
            .iter()
            .map(|f| f.shape.iter().product())
            .collect();
        let width: usize = sizes.iter().sum();
        let mut values = Vec::with_capacity(width * dataset.len());
        for s in 0..dataset.len() {
            for (f, &size) in fields.iter().zip(&sizes) {
                values.extend_from_slice(&f[s * size..(s + 1) * size]);
            }
        }
        Ok(Inputs {
            values,
            shape: vec![width],
            summaries: Vec::new(),
            summary_width: 0,
        })
    }
}

/// Whether samples of this shape go to the CNN.
fn takes_cnn(shape: &[usize]) -> bool {
    shape.len() >= 2 && shape[shape.len() - 2..].iter().all(|&s| s >= 16)
}

/// What the test found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct C2stResult {
    /// The network, in words.
    pub classifier: String,
    pub n_reference: usize,
    pub n_candidate: usize,
    /// Held-out ROC AUC of the calibrated probabilities, all folds pooled.
    pub auc: f64,
    pub accuracy: f64,
    /// ln 2 − BCE of the calibrated probabilities, in nats.
    pub jsd: f64,
    /// The same in bits, (ln 2 − BCE)/ln 2: the JSD CaloChallenge reports.
    #[serde(default)]
    pub jsd_bits: f64,
    /// The p-value's statistic: the mean over folds of the raw outputs' AUC.
    pub fold_auc: f64,
    pub p_value: f64,
    pub permutations: usize,
    /// Epoch kept (lowest validation loss), per fold.
    pub epochs: Vec<usize>,
    /// The pooled ROC curve of the calibrated probabilities: (false positive
    /// rate, true positive rate) at every distinct threshold.
    pub roc: Vec<[f64; 2]>,
}

/// Runs the test between two sets of samples of one shape.
pub fn c2st(reference: &Inputs, candidate: &Inputs, options: &C2stOptions) -> Result<C2stResult> {
    if reference.shape != candidate.shape {
        return Err(Error::Data(format!(
            "c2st: the sets' samples differ in shape ({:?} and {:?})",
            reference.shape, candidate.shape
        )));
    }
    let k = options.folds;
    if k < 3 {
        return Err(Error::Option(format!(
            "c2st needs at least 3 folds (train, validation, test), got {k}"
        )));
    }
    let (n0, n1) = (reference.count(), candidate.count());
    if n0 < 2 * k || n1 < 2 * k {
        return Err(Error::Data(format!(
            "c2st with {k} folds needs at least {} samples per set (have {n0} and {n1})",
            2 * k
        )));
    }
    if reference.summary_width != candidate.summary_width {
        return Err(Error::Data(
            "c2st: the sets' summaries differ in width".into(),
        ));
    }
    // Samples 0..n0 are the reference (label 0), n0.. the candidate (label 1).
    let mut all = reference.clone();
    all.values.extend_from_slice(&candidate.values);
    all.summaries.extend_from_slice(&candidate.summaries);
    let labels: Vec<f32> = (0..n0 + n1).map(|i| (i >= n0) as u8 as f32).collect();
    let fold_of = deal_folds(n0, n1, k, options.seed);
    let folds: Vec<Vec<usize>> = (0..k)
        .map(|f| (0..n0 + n1).filter(|&i| fold_of[i] == f).collect())
        .collect();
    let kind = Classifier::for_shape(&all.shape);
    let outcomes = (0..k)
        .into_par_iter()
        .map(|f| {
            let validation = &folds[(f + 1) % k];
            let train: Vec<usize> = (0..k)
                .filter(|&g| g != f && g != (f + 1) % k)
                .flat_map(|g| folds[g].iter().copied())
                .collect();
            run_fold(
                &kind, &all, &labels, &train, validation, &folds[f], options, f,
            )
        })
        .collect::<Result<Vec<_>>>()?;

    let mut probability = vec![0.0; n0 + n1];
    let mut raw_auc = Vec::with_capacity(k);
    let mut ranks = Vec::with_capacity(k);
    for (f, outcome) in outcomes.iter().enumerate() {
        for (&i, &p) in folds[f].iter().zip(&outcome.calibrated) {
            probability[i] = p;
        }
        let fold_labels: Vec<bool> = folds[f].iter().map(|&i| i >= n0).collect();
        raw_auc.push(auc(&outcome.raw, &fold_labels));
        ranks.push((mid_ranks(&outcome.raw), fold_labels));
    }
    let truth: Vec<bool> = (0..n0 + n1).map(|i| i >= n0).collect();
    let fold_auc = raw_auc.iter().sum::<f64>() / k as f64;
    let scores = calibrated_scores(&probability, &truth);
    Ok(C2stResult {
        classifier: kind.describe(&all.shape),
        n_reference: n0,
        n_candidate: n1,
        auc: scores.auc,
        accuracy: scores.accuracy,
        jsd: scores.jsd,
        jsd_bits: scores.jsd_bits,
        fold_auc,
        p_value: permutation_p(fold_auc, &ranks, options.permutations, options.seed),
        permutations: options.permutations,
        epochs: outcomes.iter().map(|o| o.epoch).collect(),
        roc: roc_curve(&probability, &truth),
    })
}

/// The scores of calibrated probabilities, as CaloChallenge's `evaluate.py`
/// computes them on its test split.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibratedScores {
    /// ROC AUC (`roc_auc_score`).
    pub auc: f64,
    /// Accuracy of `round(p)` (`accuracy_score`; 0.5 rounds to 0).
    pub accuracy: f64,
    /// ln 2 − BCE (`torch.nn.BCELoss`), in nats.
    pub jsd: f64,
    /// (ln 2 − BCE)/ln 2, what `evaluate.py` prints and returns as the JSD.
    pub jsd_bits: f64,
}

/// The scores of probabilities `probability` for labels `truth` (`true`:
/// candidate). BCE's logarithms are clamped at −100 as torch's `BCELoss`
/// clamps them; calibrated probabilities, within [1e-6, 1 − 1e-6], never
/// reach it.
pub fn calibrated_scores(probability: &[f64], truth: &[bool]) -> CalibratedScores {
    let n = probability.len() as f64;
    let bce = probability
        .iter()
        .zip(truth)
        .map(|(&p, &t)| {
            if t {
                -p.ln().max(-100.0)
            } else {
                -(1.0 - p).ln().max(-100.0)
            }
        })
        .sum::<f64>()
        / n;
    let correct = probability
        .iter()
        .zip(truth)
        .filter(|(&p, &t)| (p > 0.5) == t)
        .count();
    let jsd = std::f64::consts::LN_2 - bce;
    CalibratedScores {
        auc: auc(probability, truth),
        accuracy: correct as f64 / n,
        jsd,
        jsd_bits: jsd / std::f64::consts::LN_2,
    }
}

/// Fold of every sample: each set shuffled alone and dealt round-robin, so
/// every fold holds its share of both.
fn deal_folds(n0: usize, n1: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut rng = simemu_core::seed::rng(seed);
    let mut fold = vec![0; n0 + n1];
    for range in [0..n0, n0..n0 + n1] {
        let mut rows: Vec<usize> = range.collect();
        rows.shuffle(&mut rng);
        for (j, r) in rows.into_iter().enumerate() {
            fold[r] = j % k;
        }
    }
    fold
}

/// One fold's trained classifier on its held-out samples.
struct FoldOutcome {
    raw: Vec<f64>,
    calibrated: Vec<f64>,
    epoch: usize,
}

#[allow(clippy::too_many_arguments)]
fn run_fold(
    kind: &Classifier,
    all: &Inputs,
    labels: &[f32],
    train: &[usize],
    validation: &[usize],
    test: &[usize],
    options: &C2stOptions,
    fold: usize,
) -> Result<FoldOutcome> {
    let fail = |e: candle_core::Error| Error::Other(format!("c2st: {e}"));
    let standardise = Standardise::fit(kind, &all.rows(train));
    let tensor = |rows: &[usize]| standardise.tensor(&all.rows(rows));
    let targets = |rows: &[usize]| {
        let t: Vec<f32> = rows.iter().map(|&r| labels[r]).collect();
        Tensor::from_vec(t, rows.len(), &Device::Cpu)
    };
    let fold_seed = options.seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(fold as u64 + 1));
    let network = Network::new(kind, &all.shape, all.summary_width, fold_seed).map_err(fail)?;
    let mut adam = Adam::new(
        network.vars.clone(),
        options.learning_rate,
        0.9,
        0.999,
        1e-8,
    )
    .map_err(fail)?;
    let (x_val, s_val) = tensor(validation).map_err(fail)?;
    let t_val = targets(validation).map_err(fail)?;
    let mut order = train.to_vec();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(fold_seed);
    let mut best = (f64::INFINITY, 0, network.snapshot());
    for epoch in 1..=options.max_epochs {
        order.shuffle(&mut rng);
        for batch in order.chunks(options.batch) {
            let (x, s) = tensor(batch).map_err(fail)?;
            let logits = network.forward(&x, s.as_ref()).map_err(fail)?;
            let loss = bce(&logits, &targets(batch).map_err(fail)?)
                .and_then(|l| l + network.penalty()?)
                .map_err(fail)?;
            adam.backward_step(&loss).map_err(fail)?;
        }
        let loss = bce(
            &network.forward(&x_val, s_val.as_ref()).map_err(fail)?,
            &t_val,
        )
        .and_then(|l| l.to_scalar::<f32>())
        .map_err(fail)? as f64;
        if loss < best.0 {
            best = (loss, epoch, network.snapshot());
        } else if epoch - best.1 >= options.patience {
            break;
        }
    }
    network.restore(&best.2).map_err(fail)?;
    let probabilities = |x: &Tensor, s: Option<&Tensor>| -> candle_core::Result<Vec<f64>> {
        let p: Vec<f32> = candle_nn::ops::sigmoid(&network.forward(x, s)?)?.to_vec1()?;
        Ok(p.into_iter().map(f64::from).collect())
    };
    let p_val = probabilities(&x_val, s_val.as_ref()).map_err(fail)?;
    let (x_test, s_test) = tensor(test).map_err(fail)?;
    let p_test = probabilities(&x_test, s_test.as_ref()).map_err(fail)?;
    let val_labels: Vec<f64> = validation.iter().map(|&r| labels[r] as f64).collect();
    let calibration = Isotonic::fit(&p_val, &val_labels);
    Ok(FoldOutcome {
        calibrated: p_test.iter().map(|&p| calibration.predict(p)).collect(),
        raw: p_test,
        epoch: best.1,
    })
}

/// Mean binary cross-entropy of logits against per-sample targets:
/// max(x, 0) − x·t + ln(1 + e^{−|x|}), finite for any logit.
fn bce(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let soft = logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    ((logits.relu()? - (logits * targets)?)? + soft)?.mean_all()
}

/// Which network a sample shape gets.
enum Classifier {
    /// Convolutions over the last two axes, with this many stride-2 layers.
    Cnn {
        layers: usize,
    },
    Mlp,
}

const CNN_CHANNELS: [usize; 4] = [8, 16, 32, 32];
const MLP_HIDDEN: [usize; 2] = [128, 64];
const SLOPE: f32 = 0.2;
const HEAD_L2: f64 = 1e-2;
const PIXEL_L1: f64 = 2e-2;
/// The template's weights enter ×PIXEL_GAIN: Adam moves a weight by about the
/// learning rate per step whatever its gradient, and one pixel's weight must
/// grow to O(1) within the epochs the head needs.
const PIXEL_GAIN: f64 = 30.0;
const SUMMARY_HIDDEN: usize = 64;

impl Classifier {
    fn for_shape(shape: &[usize]) -> Classifier {
        if !takes_cnn(shape) {
            return Classifier::Mlp;
        }
        let mut side = shape[shape.len() - 2..].iter().copied().max().unwrap_or(1);
        let mut layers = 0;
        while side > 8 && layers < CNN_CHANNELS.len() {
            side = side.div_ceil(2);
            layers += 1;
        }
        Classifier::Cnn { layers }
    }

    fn describe(&self, shape: &[usize]) -> String {
        match self {
            Classifier::Cnn { layers } => format!(
                "CNN on {shape:?}: {layers} stride-2 3×3 convolutions ({}), linear head on channel means, last-layer positions and summaries, sparse pixel template",
                CNN_CHANNELS[..*layers]
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Classifier::Mlp => format!(
                "MLP on {} features: hidden layers {}, {}",
                shape.iter().product::<usize>(),
                MLP_HIDDEN[0],
                MLP_HIDDEN[1]
            ),
        }
    }
}

/// Mean and inverse standard deviation of the training split: one pair for a
/// field, one per feature for vectors.
struct Standardise {
    samples: Moments,
    summaries: Moments,
    cnn: bool,
}

/// Mean and inverse standard deviation per position modulo `mean.len()`.
struct Moments {
    mean: Vec<f32>,
    inverse_sd: Vec<f32>,
}

impl Moments {
    fn fit(values: &[f32], width: usize) -> Moments {
        let mut sum = vec![0.0f64; width];
        let mut sum2 = vec![0.0f64; width];
        for (i, &v) in values.iter().enumerate() {
            let j = i % width;
            sum[j] += v as f64;
            sum2[j] += (v as f64) * (v as f64);
        }
        let n = (values.len() / width.max(1)) as f64;
        let (mut mean, mut inverse_sd) = (Vec::new(), Vec::new());
        for (s, s2) in sum.iter().zip(&sum2) {
            let m = s / n;
            let var = (s2 / n - m * m).max(0.0);
            mean.push(m as f32);
            inverse_sd.push(if var > 0.0 {
                (1.0 / var.sqrt()) as f32
            } else {
                1.0
            });
        }
        Moments { mean, inverse_sd }
    }

    fn apply(&self, values: &[f32]) -> Vec<f32> {
        let width = self.mean.len();
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| (v - self.mean[i % width]) * self.inverse_sd[i % width])
            .collect()
    }
}

impl Standardise {
    fn fit(kind: &Classifier, train: &Inputs) -> Self {
        let cnn = matches!(kind, Classifier::Cnn { .. });
        Standardise {
            samples: Moments::fit(&train.values, if cnn { 1 } else { train.size() }),
            summaries: Moments::fit(&train.summaries, train.summary_width),
            cnn,
        }
    }

    /// The samples standardised, as (B, C, H, W) for the CNN or (B, F), and
    /// their summaries (B, S) where they have them.
    fn tensor(&self, x: &Inputs) -> candle_core::Result<(Tensor, Option<Tensor>)> {
        let b = x.count();
        let t = Tensor::from_vec(self.samples.apply(&x.values), (b, x.size()), &Device::Cpu)?;
        let t = if self.cnn {
            let d = x.shape.len();
            let (h, w) = (x.shape[d - 2], x.shape[d - 1]);
            t.reshape((b, x.size() / (h * w), h, w))?
        } else {
            t
        };
        let summaries = (x.summary_width > 0)
            .then(|| {
                Tensor::from_vec(
                    self.summaries.apply(&x.summaries),
                    (b, x.summary_width),
                    &Device::Cpu,
                )
            })
            .transpose()?;
        Ok((t, summaries))
    }
}

/// The classifier's weights, seeded; `forward` gives one logit per sample.
struct Network {
    vars: Vec<(String, Var)>,
    cnn_layers: usize,
}

impl Network {
    fn new(
        kind: &Classifier,
        shape: &[usize],
        summary_width: usize,
        seed: u64,
    ) -> candle_core::Result<Self> {
        let mut rng = simemu_core::seed::rng(seed);
        let mut vars = Vec::new();
        // He initialisation for LeakyReLU layers; biases start at 0.
        // The pixel template (fan-in 0 below) starts at 0: it is meant to be sparse.
        let mut add = |name: String, dims: &[usize], fan_in: usize| -> candle_core::Result<()> {
            let n: usize = dims.iter().product();
            let w: Vec<f32> = if fan_in == 0 {
                vec![0.0; n]
            } else {
                let normal = Normal::new(0.0f64, (2.0 / fan_in as f64).sqrt()).expect("valid std");
                (0..n).map(|_| normal.sample(&mut rng) as f32).collect()
            };
            vars.push((
                format!("{name}.weight"),
                Var::from_tensor(&Tensor::from_vec(w, dims, &Device::Cpu)?)?,
            ));
            vars.push((
                format!("{name}.bias"),
                Var::from_tensor(&Tensor::zeros(dims[0], DType::F32, &Device::Cpu)?)?,
            ));
            Ok(())
        };
        let cnn_layers = match *kind {
            Classifier::Cnn { layers } => {
                let d = shape.len();
                let mut channels: usize = shape[..d - 2].iter().product();
                let (mut h, mut w) = (shape[d - 2], shape[d - 1]);
                // A linear template on the input's own values, beside the head:
                // a fixed pattern or a preferred pixel is one.
                let pixels = channels * shape[d - 2] * shape[d - 1];
                add("pixels".into(), &[1, pixels], 0)?;
                let mut features = 0;
                for (l, &out) in CNN_CHANNELS[..layers].iter().enumerate() {
                    add(format!("conv{l}"), &[out, channels, 3, 3], 9 * channels)?;
                    channels = out;
                    h = h.div_ceil(2);
                    w = w.div_ceil(2);
                    features += out;
                    if l + 1 == layers {
                        add(format!("project{l}"), &[1, out, 1, 1], out)?;
                        features += h * w;
                    }
                }
                if summary_width > 0 {
                    add(
                        "summary".into(),
                        &[SUMMARY_HIDDEN, summary_width],
                        summary_width,
                    )?;
                    features += SUMMARY_HIDDEN;
                }
                add("head".into(), &[1, features], features)?;
                layers
            }
            Classifier::Mlp => {
                let mut width: usize = shape.iter().product::<usize>() + summary_width;
                for (l, &out) in MLP_HIDDEN.iter().enumerate() {
                    add(format!("dense{l}"), &[out, width], width)?;
                    width = out;
                }
                add(format!("dense{}", MLP_HIDDEN.len()), &[1, width], width)?;
                0
            }
        };
        Ok(Network { vars, cnn_layers })
    }

    fn var(&self, name: &str) -> &Tensor {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_tensor())
            .expect("the network's own variable")
    }

    fn dense(&self, x: &Tensor, name: &str, act: Activation) -> candle_core::Result<Tensor> {
        let w = self.var(&format!("{name}.weight"));
        let b = self.var(&format!("{name}.bias"));
        act.apply_tensor(&x.matmul(&w.t()?)?.broadcast_add(b)?)
    }

    fn forward(&self, x: &Tensor, summaries: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let leaky = Activation::LeakyRelu(SLOPE);
        let mut h = x.clone();
        if self.cnn_layers > 0 {
            let template =
                (self.dense(&x.flatten_from(1)?, "pixels", Activation::Identity)? * PIXEL_GAIN)?;
            let mut features = Vec::new();
            for l in 0..self.cnn_layers {
                let w = self.var(&format!("conv{l}.weight"));
                h = simemu_nn::conv2d(&h, w, 2, 1)?;
                h = bias_activation(&h, Some(self.var(&format!("conv{l}.bias"))), leaky)?;
                features.push(h.mean(3)?.mean(2)?);
                if l + 1 == self.cnn_layers {
                    let projected =
                        simemu_nn::conv2d(&h, self.var(&format!("project{l}.weight")), 1, 0)?;
                    let projected = projected.broadcast_add(
                        &self
                            .var(&format!("project{l}.bias"))
                            .reshape((1, 1, 1, 1))?,
                    )?;
                    features.push(projected.flatten_from(1)?);
                }
            }
            if let Some(s) = summaries {
                features.push(self.dense(s, "summary", leaky)?);
            }
            let features = Tensor::cat(&features, 1)?;
            return (self.dense(&features, "head", Activation::Identity)? + template)?.squeeze(1);
        }
        if let Some(s) = summaries {
            h = Tensor::cat(&[&h, s], 1)?;
        }
        let last = MLP_HIDDEN.len();
        for l in 0..last {
            h = self.dense(&h, &format!("dense{l}"), leaky)?;
        }
        self.dense(&h, &format!("dense{last}"), Activation::Identity)?
            .squeeze(1)
    }

    /// The penalties on the weights that see many more features than there are
    /// training samples: L2 on the head, L1 on the pixel template (sparse: a
    /// defect at a few pixels stands out of thousands of noise weights).
    fn penalty(&self) -> candle_core::Result<Tensor> {
        let mut total = Tensor::new(0.0f32, &Device::Cpu)?;
        for (name, var) in &self.vars {
            let w = var.as_tensor();
            if name == "head.weight" {
                total = (total + (w.sqr()?.sum_all()? * HEAD_L2)?)?;
            } else if name == "pixels.weight" {
                total = (total + (w.abs()?.sum_all()? * (PIXEL_L1 * PIXEL_GAIN))?)?;
            }
        }
        Ok(total)
    }

    fn snapshot(&self) -> HashMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().copy().expect("CPU copy")))
            .collect()
    }

    fn restore(&self, saved: &HashMap<String, Tensor>) -> candle_core::Result<()> {
        for (name, var) in &self.vars {
            var.set(&saved[name])?;
        }
        Ok(())
    }
}

/// Isotonic regression of labels on scores, as sklearn's
/// `IsotonicRegression(out_of_bounds="clip", y_min=1e-6, y_max=1 − 1e-6)`:
/// pool-adjacent-violators over the sorted scores (equal scores pooled first),
/// kept at the ends of each constant block, predicted by linear interpolation
/// between them and clipped outside.
#[derive(Clone, Debug, PartialEq)]
pub struct Isotonic {
    x: Vec<f64>,
    y: Vec<f64>,
}

const PROBABILITY_CLIP: f64 = 1e-6;

impl Isotonic {
    pub fn fit(scores: &[f64], labels: &[f64]) -> Isotonic {
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        // Equal scores become one point: their mean label, their count as weight.
        let mut x: Vec<f64> = Vec::new();
        let mut sum: Vec<f64> = Vec::new();
        let mut weight: Vec<f64> = Vec::new();
        for &i in &order {
            if x.last() == Some(&scores[i]) {
                *sum.last_mut().unwrap() += labels[i];
                *weight.last_mut().unwrap() += 1.0;
            } else {
                x.push(scores[i]);
                sum.push(labels[i]);
                weight.push(1.0);
            }
        }
        // Pool adjacent violators: blocks of (mean, weight, points).
        let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
        for (s, w) in sum.iter().zip(&weight) {
            blocks.push((s / w, *w, 1));
            while blocks.len() > 1 && blocks[blocks.len() - 2].0 >= blocks[blocks.len() - 1].0 {
                let (m2, w2, c2) = blocks.pop().unwrap();
                let (m1, w1, c1) = blocks.pop().unwrap();
                blocks.push(((m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2));
            }
        }
        let fitted: Vec<f64> = blocks
            .iter()
            .flat_map(|&(m, _, c)| std::iter::repeat_n(m, c))
            .map(|m| m.clamp(PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP))
            .collect();
        // sklearn keeps the first and last point of every constant run.
        let n = x.len();
        let keep: Vec<usize> = (0..n)
            .filter(|&i| {
                i == 0 || i + 1 == n || fitted[i] != fitted[i - 1] || fitted[i] != fitted[i + 1]
            })
            .collect();
        Isotonic {
            x: keep.iter().map(|&i| x[i]).collect(),
            y: keep.iter().map(|&i| fitted[i]).collect(),
        }
    }

    pub fn predict(&self, score: f64) -> f64 {
        let n = self.x.len();
        if n == 1 || score <= self.x[0] {
            return self.y[0];
        }
        if score >= self.x[n - 1] {
            return self.y[n - 1];
        }
        let j = self.x.partition_point(|&x| x <= score);
        let (x0, x1, y0, y1) = (self.x[j - 1], self.x[j], self.y[j - 1], self.y[j]);
        y0 + (y1 - y0) * (score - x0) / (x1 - x0)
    }
}

/// Ranks from 1, ties sharing the mean of their ranks.
fn mid_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            ranks[o] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// The ROC AUC of scores for the positive labels (`true`): Mann–Whitney's U
/// over the product of the class sizes, ties counting one half.
pub fn auc(scores: &[f64], positive: &[bool]) -> f64 {
    auc_of_ranks(&mid_ranks(scores), positive)
}

fn auc_of_ranks(ranks: &[f64], positive: &[bool]) -> f64 {
    let n1 = positive.iter().filter(|&&p| p).count() as f64;
    let n0 = positive.len() as f64 - n1;
    let rank_sum: f64 = ranks
        .iter()
        .zip(positive)
        .filter(|(_, &p)| p)
        .map(|(r, _)| r)
        .sum();
    (rank_sum - n1 * (n1 + 1.0) / 2.0) / (n0 * n1)
}

/// p of the folds' mean AUC under label permutations within each fold.
fn permutation_p(observed: f64, folds: &[(Vec<f64>, Vec<bool>)], count: usize, seed: u64) -> f64 {
    let mut rng = simemu_core::seed::rng(seed ^ 0x5045_524d);
    let mut shuffled: Vec<Vec<bool>> = folds.iter().map(|(_, l)| l.clone()).collect();
    // A tolerance keeps the observed labelling's own value from falling
    // below itself through rounding.
    let threshold = observed - 1e-12;
    let mut at_least = 0usize;
    for _ in 0..count {
        let mut total = 0.0;
        for ((ranks, _), labels) in folds.iter().zip(shuffled.iter_mut()) {
            labels.shuffle(&mut rng);
            total += auc_of_ranks(ranks, labels);
        }
        if total / folds.len() as f64 >= threshold {
            at_least += 1;
        }
    }
    (1 + at_least) as f64 / (1 + count) as f64
}

/// (false positive rate, true positive rate) at every distinct threshold,
/// from (0, 0) to (1, 1).
fn roc_curve(scores: &[f64], positive: &[bool]) -> Vec<[f64; 2]> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let n1 = positive.iter().filter(|&&p| p).count() as f64;
    let n0 = positive.len() as f64 - n1;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut curve = vec![[0.0, 0.0]];
    for (j, &i) in order.iter().enumerate() {
        if positive[i] {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_tie = order
            .get(j + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if last_of_tie {
            curve.push([fp / n0, tp / n1]);
        }
    }
    curve
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_pairs_and_half_ties() {
        // Positives 0.9, 0.4; negatives 0.5, 0.4, 0.1: pairs won 2 + 1.5 + 1 of 6.
        let s = [0.9, 0.4, 0.5, 0.4, 0.1];
        let l = [true, true, false, false, false];
        assert!((auc(&s, &l) - 4.5 / 6.0).abs() < 1e-12);
        let roc = roc_curve(&s, &l);
        assert_eq!(roc.first(), Some(&[0.0, 0.0]));
        assert_eq!(roc.last(), Some(&[1.0, 1.0]));
    }

    #[test]
    fn isotonic_pools_violators_and_interpolates() {
        let scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        let labels = [0.0, 1.0, 0.0, 0.0, 1.0, 1.0];
        let iso = Isotonic::fit(&scores, &labels);
        // PAVA: 0 | (1, 0, 0) → 1/3 | 1, 1.
        assert_eq!(iso.predict(0.0), PROBABILITY_CLIP);
        assert!((iso.predict(0.2) - 1.0 / 3.0).abs() < 1e-12);
        assert!((iso.predict(0.4) - 1.0 / 3.0).abs() < 1e-12);
        assert!(
            (iso.predict(0.45) - (1.0 / 3.0 + 0.5 * (1.0 - PROBABILITY_CLIP - 1.0 / 3.0))).abs()
                < 1e-12
        );
        assert_eq!(iso.predict(0.9), 1.0 - PROBABILITY_CLIP);
        assert!(
            (iso.predict(0.15) - (PROBABILITY_CLIP + 0.5 * (1.0 / 3.0 - PROBABILITY_CLIP))).abs()
                < 1e-12
        );
    }
}
