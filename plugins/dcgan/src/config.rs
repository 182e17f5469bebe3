//! The `dcgan` configuration. Two presets give the options a user does not set:
//! `"fidelity"` (the default), the recipe that docs/fidelity.md measured and the
//! shipped convergence emulator was trained with; `"baseline"`, CosmoGAN's
//! architecture and optimiser at CPU size with every fidelity lever off, the
//! ablation's starting point. Everything is configurable so that CPU-sized models
//! exist.

use serde::{Deserialize, Serialize};
use simemu_core::{Error, Result};

use crate::transform::TransformKind;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcganConfig {
    /// Which preset gave the options that were not set (see [`Preset`]). A stored
    /// configuration without it predates presets: every option it lacks was added
    /// later and is off, as in `"baseline"`.
    #[serde(default = "d_stored_preset")]
    pub preset: Preset,
    /// Output side in pixels (64, 128, 256, …; must be divisible by 2^layers).
    #[serde(default = "d_size")]
    pub size: usize,
    /// Transposed convolutions in G (and convolutions in D); the seed map is size/2^layers.
    #[serde(default = "d_layers")]
    pub layers: usize,
    /// Base width: G's last hidden layer and D's first layer have this many channels.
    #[serde(default = "d_width")]
    pub width: usize,
    /// Latent dimension of z.
    #[serde(default = "d_latent")]
    pub latent: usize,
    /// Biases on the convolutions that BatchNorm follows. CosmoGAN has them; they
    /// are redundant with BatchNorm's shift, and the PyTorch benchmark twin omits them.
    #[serde(default = "d_true")]
    pub bias_before_batchnorm: bool,
    /// How G doubles the side: CosmoGAN's 5×5 stride-2 transposed convolutions, or
    /// 4×4 ones ("even": the kernel is a multiple of the stride, so every output
    /// pixel gets the same number of taps and the checkerboard pattern is gone).
    #[serde(default)]
    pub upsample: Upsample,
    /// Weight of the power-spectrum matching term in G's loss (0: off): the mean
    /// squared difference of log band powers between G's batch and the training set.
    #[serde(default)]
    pub spectrum_loss: f64,
    /// What the spectrum term compares: 12 log-spaced bands of |k| ("log"), or
    /// every shell of equal |k|² ("shells": 456 at 64², so that errors of 1.5–2×
    /// in a handful of modes are not averaged away inside a wide band).
    #[serde(default)]
    pub spectrum_bins: SpectrumBins,
    /// Weight of the summary-statistic matching term in G's loss (0: off): the
    /// mean and map-to-map scatter of per-map summaries (mean pixel, log band
    /// powers, fractions of pixels above thresholds) against the training data's.
    #[serde(default)]
    pub summary_loss: f64,
    /// The quantiles of the training pixels between which the summary term's
    /// pixel-fraction thresholds lie (linearly spaced): how far into the tails of
    /// the one-point distribution the term looks.
    #[serde(default = "d_summary_quantiles")]
    pub summary_quantiles: [f64; 2],
    /// How many pixel-fraction thresholds the summary term has (its smooth steps
    /// are half their spacing wide): how finely it resolves the one-point
    /// distribution and, with `summary_minkowski`, V1 and V2.
    #[serde(default = "d_summary_thresholds")]
    pub summary_thresholds: usize,
    /// How the thresholds are spaced between the two quantiles: evenly in pixel
    /// value ("linear"), or evenly in the normal score of the training pixels'
    /// quantile ("normal": at the pixel values below which a fraction Φ(z) of the
    /// training pixels lie, z evenly spaced). For Gaussian pixels the two agree;
    /// for a skewed distribution "normal" follows its shape — for a log-normal
    /// field, denser towards the bounded lower tail, sparser along the long upper
    /// one —, or "finer": from each threshold to the next, the finer of the two
    /// (at least `summary_thresholds`, more where "normal" is the denser). Each
    /// smooth step is half its local spacing wide.
    #[serde(default)]
    pub summary_spacing: SummarySpacing,
    /// Add smooth per-map Minkowski functionals V1 and V2 (mean |∇x| and level-set
    /// curvature per bin between consecutive thresholds) to the summary term.
    #[serde(default)]
    pub summary_minkowski: bool,
    /// Give D, beside its convolution features, the log power of its input in
    /// each of 12 log bands of |k|, standardised by the training maps' mean and
    /// spread of it, straight into its last layer. D's BatchNorm normalises
    /// every batch on its own, so an error of power that the whole fake batch
    /// shares (as the largest scales' deficit does) is mostly normalised away
    /// before D can see it; these features bypass BatchNorm.
    #[serde(default)]
    pub d_spectrum: bool,
    /// How many training maps (the first ones) the spectrum and summary terms
    /// take their targets from. Their lowest shells hold a handful of modes, so
    /// 512 maps fix those targets only to a few percent; all of them (a number
    /// at least the training set's size) to half that.
    #[serde(default = "d_matching_maps")]
    pub matching_maps: MatchingMaps,
    /// Augment every training batch with the exact symmetries of periodic,
    /// statistically isotropic maps: a random periodic shift and one of the 8
    /// rotations/reflections per sample. Turn off for data without them.
    #[serde(default = "d_true")]
    pub augment: bool,
    /// Decay of the exponential moving average of G's weights used to generate
    /// (and to score checkpoints); 0 turns it off.
    #[serde(default = "d_ema")]
    pub ema: f64,
    /// Give every generated map the same spatial mean in the network's range —
    /// the training maps' average — instead of letting G draw it. Simulators whose
    /// fields have their zero mode fixed (a periodic box's Gaussian field with the
    /// k = 0 mode zeroed, and its log-normal transform in the log space) have
    /// per-map means that do not scatter; a G that draws them adds scatter to every
    /// statistic that depends on the level of the whole map (area fractions near
    /// the median, every band power after an exponential transform). Training
    /// refuses it (`true`) or leaves the means to G (`"auto"`) when the training
    /// maps' means do scatter.
    #[serde(default)]
    pub pin_mean: PinMean,
    /// Data transform between physical values and the network's range.
    #[serde(default)]
    pub transform: TransformKind,
    /// Parameters the generator is conditioned on; `None`: the ones that vary in the
    /// training data (none for a single parameter point: unconditional).
    #[serde(default)]
    pub condition: Option<Vec<String>>,
    /// Conditional data drawn at a design of parameter points: every training
    /// batch holds one point's maps and is matched to that point's own targets
    /// (spectrum and summary terms from all its maps, D's spectrum features
    /// standardised by them); the transform's range and the pinned mean follow
    /// the conditions (polynomials fitted over the points); G's BatchNorm layers
    /// are conditioned (a per-channel scale and shift from the conditions after
    /// each) and D adds a projection of the conditions onto its features. G's
    /// BatchNorm statistics are recomputed at every condition it generates at,
    /// as the per-point batches normalised them in training. No effect on
    /// unconditional data.
    #[serde(default)]
    pub per_point: bool,
    /// The box each condition's model is for, NAME = [lo, hi] (default: the
    /// span of the training parameters, which it must contain): a design drawn
    /// over a range spans a little less than the range.
    #[serde(default)]
    pub condition_bounds: std::collections::BTreeMap<String, (f64, f64)>,
    #[serde(default = "d_batch")]
    pub batch: usize,
    #[serde(default = "d_lr")]
    pub lr_g: f64,
    #[serde(default = "d_lr")]
    pub lr_d: f64,
    /// How both learning rates change over the run's steps: "constant" (CosmoGAN),
    /// or "linear" / "cosine" decay from `lr_g`/`lr_d` at the first step to
    /// `lr_final` times them at the last (the `--steps`/`--epochs` target), so that
    /// the end of a run settles instead of oscillating between checkpoints.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Fraction of the learning rates reached at the last step of a decaying
    /// schedule.
    #[serde(default)]
    pub lr_final: f64,
    #[serde(default = "d_beta1")]
    pub beta1: f64,
    #[serde(default = "d_beta2")]
    pub beta2: f64,
    /// Probability of swapping the real/fake labels of a whole D batch.
    #[serde(default = "d_flip")]
    pub label_flip: f64,
    /// Training steps when neither --steps nor --epochs is given.
    #[serde(default = "d_steps")]
    pub steps: u64,
    /// Save a checkpoint every this many steps.
    #[serde(default = "d_ckpt")]
    pub checkpoint_every: u64,
    /// Keep this many recent checkpoints (plus the best).
    #[serde(default = "d_keep")]
    pub keep_last: usize,
    /// Samples held out of training to select the best checkpoint (0: none).
    #[serde(default = "d_holdout")]
    pub holdout: usize,
    /// Statistics (plugin names) scored against the held-out slice at each checkpoint.
    #[serde(default = "d_eval_stats")]
    pub eval_stats: Vec<String>,
    /// Samples generated for each checkpoint's score.
    #[serde(default = "d_eval_count")]
    pub eval_count: usize,
    /// A loss above this (or NaN/Inf) rolls back to the last checkpoint.
    #[serde(default = "d_max_loss")]
    pub max_loss: f64,
}

fn d_size() -> usize {
    64
}
fn d_layers() -> usize {
    4
}
fn d_width() -> usize {
    16
}
fn d_latent() -> usize {
    64
}
fn d_batch() -> usize {
    64
}
fn d_true() -> bool {
    true
}
/// The bins of the spectrum-matching term.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpectrumBins {
    #[default]
    Log,
    Shells,
}

/// The learning-rate schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    #[default]
    Constant,
    Linear,
    Cosine,
}

impl LrSchedule {
    /// The factor on the learning rates for step `step` (1-based) of `total`, from 1
    /// at the first step to `last` at step `total`.
    pub fn factor(self, step: u64, total: u64, last: f64) -> f64 {
        let progress = if total <= 1 {
            1.0
        } else {
            (step.saturating_sub(1) as f64 / (total - 1) as f64).min(1.0)
        };
        let fall = match self {
            LrSchedule::Constant => return 1.0,
            LrSchedule::Linear => progress,
            LrSchedule::Cosine => 0.5 * (1.0 - (std::f64::consts::PI * progress).cos()),
        };
        1.0 - (1.0 - last) * fall
    }
}

/// G's upsampling layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsample {
    #[default]
    Transposed,
    Even,
}

/// How the summary term's thresholds are spaced (see
/// [`DcganConfig::summary_spacing`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SummarySpacing {
    #[default]
    Linear,
    Normal,
    Finer,
}

impl SummarySpacing {
    /// The name the configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            SummarySpacing::Linear => "linear",
            SummarySpacing::Normal => "normal",
            SummarySpacing::Finer => "finer",
        }
    }
}

/// Where the options a user does not set come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// docs/fidelity.md's recipe, measured on 64² convergence maps (all six
    /// statistics pass on 36 of 40 judging sets over four training seeds):
    /// width 32, two even 4×4 upsampling layers from a seed map a quarter of the
    /// side, the log transform, spectrum matching in every shell, matching of the
    /// per-map summaries (pixel fractions past the 0.02% and 99.98% quantiles at the
    /// finer of linear and normal-score spacing, smooth V1/V2) against all the
    /// training maps, D's spectrum features, each map's mean pinned where the data's
    /// means do not scatter, and learning rates decaying to zero along a cosine.
    #[default]
    Fidelity,
    /// CosmoGAN's architecture and optimiser at CPU size (width 16, four 5×5
    /// stride-2 transposed convolutions from 4×4, Adam 2e-4/0.5 at constant rates),
    /// the affine transform, symmetry augmentation and the moving average of G;
    /// every other lever off. The ablation's first rows and the benchmarks.
    Baseline,
}

impl Preset {
    /// The options this preset sets beyond the plain defaults (those of
    /// `"baseline"`), as the user would write them.
    fn options(self) -> serde_json::Map<String, serde_json::Value> {
        let options = match self {
            Preset::Baseline => serde_json::json!({}),
            Preset::Fidelity => serde_json::json!({
                "width": 32,
                "layers": 2,
                "upsample": "even",
                "transform": { "kind": "log" },
                "lr_schedule": "cosine",
                "spectrum_loss": 50.0,
                "spectrum_bins": "shells",
                "summary_loss": 5.0,
                "summary_quantiles": [0.0002, 0.9998],
                "summary_thresholds": 20,
                "summary_spacing": "finer",
                "summary_minkowski": true,
                "matching_maps": "all",
                "pin_mean": "auto",
                "d_spectrum": true,
                "per_point": true,
            }),
        };
        match options {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("a preset is a table"),
        }
    }
}

/// How many training maps the matching terms take their targets from: `"all"`
/// or a number (the first ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WordOr<usize>", into = "WordOr<usize>")]
pub enum MatchingMaps {
    All,
    First(usize),
}

/// Whether every generated map gets the training maps' mean: `false`, `true`
/// (training refuses data whose means scatter) or `"auto"` (pinned when the
/// training maps' means do not scatter, drawn by G when they do).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WordOr<bool>", into = "WordOr<bool>")]
pub enum PinMean {
    #[default]
    Off,
    On,
    Auto,
}

/// An option's written form: a value, or a word naming a special case.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WordOr<T> {
    Value(T),
    Word(String),
}

impl TryFrom<WordOr<usize>> for MatchingMaps {
    type Error = String;
    fn try_from(w: WordOr<usize>) -> std::result::Result<Self, String> {
        match w {
            WordOr::Value(m) => Ok(MatchingMaps::First(m)),
            WordOr::Word(w) if w == "all" => Ok(MatchingMaps::All),
            WordOr::Word(w) => Err(format!("matching_maps = \"{w}\": give a number or \"all\"")),
        }
    }
}

impl From<MatchingMaps> for WordOr<usize> {
    fn from(m: MatchingMaps) -> Self {
        match m {
            MatchingMaps::All => WordOr::Word("all".into()),
            MatchingMaps::First(m) => WordOr::Value(m),
        }
    }
}

impl TryFrom<WordOr<bool>> for PinMean {
    type Error = String;
    fn try_from(w: WordOr<bool>) -> std::result::Result<Self, String> {
        match w {
            WordOr::Value(false) => Ok(PinMean::Off),
            WordOr::Value(true) => Ok(PinMean::On),
            WordOr::Word(w) if w == "auto" => Ok(PinMean::Auto),
            WordOr::Word(w) => Err(format!("pin_mean = \"{w}\": give true, false or \"auto\"")),
        }
    }
}

impl From<PinMean> for WordOr<bool> {
    fn from(p: PinMean) -> Self {
        match p {
            PinMean::Off => WordOr::Value(false),
            PinMean::On => WordOr::Value(true),
            PinMean::Auto => WordOr::Word("auto".into()),
        }
    }
}

fn d_stored_preset() -> Preset {
    Preset::Baseline
}
fn d_matching_maps() -> MatchingMaps {
    MatchingMaps::First(512)
}
fn d_summary_quantiles() -> [f64; 2] {
    [0.01, 0.99]
}
fn d_summary_thresholds() -> usize {
    16
}
fn d_ema() -> f64 {
    0.999
}
fn d_lr() -> f64 {
    2e-4
}
fn d_beta1() -> f64 {
    0.5
}
fn d_beta2() -> f64 {
    0.999
}
fn d_flip() -> f64 {
    0.01
}
fn d_steps() -> u64 {
    2000
}
fn d_ckpt() -> u64 {
    250
}
fn d_keep() -> usize {
    3
}
fn d_holdout() -> usize {
    128
}
fn d_eval_stats() -> Vec<String> {
    vec!["power-spectrum".into(), "pixel-pdf".into()]
}
fn d_eval_count() -> usize {
    128
}
fn d_max_loss() -> f64 {
    1e4
}

/// Options that were measured and removed, each with the value that turned it
/// off. A stored configuration written before their removal holds them; it loads
/// unchanged where each is off, and is refused, naming the option, where one was
/// on (this version cannot rebuild that model).
const REMOVED_OPTIONS: &[(&str, &str)] = &[
    ("circular_padding", "false"),
    ("spectrum_weights", "\"shells\""),
    ("summary_weights", "\"even\""),
    ("summary_match", "\"moments\""),
    ("summary_v1_weight", "1.0"),
    ("score", "\"moments\""),
];

/// A stored configuration without the removed options that are off in it.
fn without_removed_options(o: &serde_json::Value) -> Result<serde_json::Value> {
    let serde_json::Value::Object(map) = o else {
        return Ok(o.clone());
    };
    let mut map = map.clone();
    for (name, off) in REMOVED_OPTIONS {
        let Some(stored) = map.remove(*name) else {
            continue;
        };
        let off: serde_json::Value = serde_json::from_str(off).expect("valid JSON");
        let same = match (stored.as_f64(), off.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => stored == off,
        };
        if !same {
            return Err(Error::Option(format!(
                "dcgan: this configuration sets {name} = {stored}, an option that was removed \
                 (measured and not kept); only its off value {off} still loads"
            )));
        }
    }
    if map.get("upsample").and_then(|u| u.as_str()) == Some("resize") {
        return Err(Error::Option(
            "dcgan: this configuration sets upsample = \"resize\", which was removed \
             (measured and not kept); \"transposed\" and \"even\" remain"
                .into(),
        ));
    }
    Ok(serde_json::Value::Object(map))
}

/// Deserialises a stored configuration as [`DcganConfig::from_stored`] reads it.
pub fn deserialize_stored<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<DcganConfig, D::Error> {
    let stored = serde_json::Value::deserialize(d)?;
    DcganConfig::from_stored(&stored).map_err(serde::de::Error::custom)
}

/// The default configuration: the `"fidelity"` preset.
impl Default for DcganConfig {
    fn default() -> Self {
        DcganConfig::from_options(&serde_json::json!({})).expect("the fidelity preset is valid")
    }
}

impl DcganConfig {
    /// The configuration from user options: the named preset (default
    /// `"fidelity"`) fills every option the user did not set. A stored
    /// configuration (a checkpoint's) is read with [`DcganConfig::from_stored`].
    pub fn from_options(o: &serde_json::Value) -> Result<Self> {
        let given = match o {
            serde_json::Value::Null => serde_json::Map::new(),
            serde_json::Value::Object(m) => m.clone(),
            _ => {
                return Err(Error::Option(format!(
                    "dcgan: options must be a table of key = value, got {o}"
                )))
            }
        };
        let preset: Preset = match given.get("preset") {
            None => Preset::default(),
            Some(p) => serde_json::from_value(p.clone()).map_err(|_| {
                Error::Option(format!(
                    "dcgan: preset = {p} is not one of \"fidelity\", \"baseline\""
                ))
            })?,
        };
        if let Some((name, _)) = REMOVED_OPTIONS.iter().find(|(n, _)| given.contains_key(*n)) {
            return Err(Error::Option(format!(
                "dcgan: option '{name}' was removed (measured and not kept: docs/fidelity.md)"
            )));
        }
        let mut merged = preset.options();
        merged.extend(given);
        merged.insert(
            "preset".into(),
            serde_json::to_value(preset).expect("serialisable"),
        );
        DcganConfig::from_stored(&serde_json::Value::Object(merged))
    }

    /// A configuration as stored with a checkpoint, read as written: it holds every
    /// option there was when it was written, so those it lacks were added later and
    /// take their off (`"baseline"`) values, never a preset's — the checkpoint loads
    /// as it trained.
    pub fn from_stored(o: &serde_json::Value) -> Result<Self> {
        let c: DcganConfig =
            simemu_core::params::options_from_json("dcgan", &without_removed_options(o)?)?;
        let bad = |m: String| Err(Error::Option(format!("dcgan: {m}")));
        if c.layers == 0 || c.layers > 8 {
            return bad(format!("layers = {} must be between 1 and 8", c.layers));
        }
        if c.size == 0 || !c.size.is_multiple_of(1 << c.layers) || c.size >> c.layers == 0 {
            return bad(format!(
                "size = {} must be a multiple of 2^layers = {}",
                c.size,
                1 << c.layers
            ));
        }
        if c.width == 0 || c.latent == 0 || c.batch < 2 {
            return bad("width and latent must be positive and batch at least 2".into());
        }
        if c.batch > simemu_core::MAX_BATCH {
            return bad(format!(
                "batch = {} is more than the {} samples a batch may hold",
                c.batch,
                simemu_core::MAX_BATCH
            ));
        }
        for (name, v) in [("lr_g", c.lr_g), ("lr_d", c.lr_d)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{name} = {v} must be positive"));
            }
        }
        if !(0.0..=1.0).contains(&c.lr_final) {
            return bad(format!("lr_final = {} must lie in [0, 1]", c.lr_final));
        }
        if !(0.0..1.0).contains(&c.beta1)
            || !(0.0..1.0).contains(&c.beta2)
            || !(0.0..=0.5).contains(&c.label_flip)
        {
            return bad("beta1, beta2 must lie in [0, 1) and label_flip in [0, 0.5]".into());
        }
        for (name, v) in [
            ("spectrum_loss", c.spectrum_loss),
            ("summary_loss", c.summary_loss),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(format!("{name} = {v} must be ≥ 0"));
            }
        }
        let [q_lo, q_hi] = c.summary_quantiles;
        if !(0.0 <= q_lo && q_lo < q_hi && q_hi <= 1.0) {
            return bad(format!(
                "summary_quantiles = [{q_lo}, {q_hi}] must be increasing within [0, 1]"
            ));
        }
        if c.summary_spacing != SummarySpacing::Linear && !(q_lo > 0.0 && q_hi < 1.0) {
            return bad(format!(
                "summary_spacing = \"{}\" needs summary_quantiles strictly inside (0, 1) \
                 (their normal scores are the ends), got [{q_lo}, {q_hi}]",
                c.summary_spacing.name()
            ));
        }
        if c.summary_thresholds < 2 {
            return bad(format!(
                "summary_thresholds = {} must be ≥ 2",
                c.summary_thresholds
            ));
        }
        if c.summary_minkowski && c.summary_loss == 0.0 {
            return bad(
                "summary_minkowski = true needs summary_loss > 0 (it adds to that term)".into(),
            );
        }
        if let MatchingMaps::First(m) = c.matching_maps {
            if m < 2 {
                return bad(format!(
                    "matching_maps = {m} must be ≥ 2 (the targets' scatter needs two maps)"
                ));
            }
        }
        if !(0.0..1.0).contains(&c.ema) {
            return bad(format!("ema = {} must lie in [0, 1)", c.ema));
        }
        if c.checkpoint_every == 0 || c.keep_last == 0 {
            return bad("checkpoint_every and keep_last must be at least 1".into());
        }
        Ok(c)
    }

    /// How many of `n_train` training maps the matching terms take targets from.
    pub fn matching_count(&self, n_train: usize) -> usize {
        match self.matching_maps {
            MatchingMaps::All => n_train,
            MatchingMaps::First(m) => m.min(n_train),
        }
    }

    /// Side of the seed map G starts from.
    pub fn seed_size(&self) -> usize {
        self.size >> self.layers
    }

    /// Channels of G's seed map: width·2^(layers−1).
    pub fn top_channels(&self) -> usize {
        self.width << (self.layers - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rate_schedules_run_from_one_to_the_final_fraction_and_bad_ranges_are_refused() {
        for schedule in [LrSchedule::Linear, LrSchedule::Cosine] {
            assert_eq!(schedule.factor(1, 2000, 0.1), 1.0);
            assert!((schedule.factor(2000, 2000, 0.1) - 0.1).abs() < 1e-15);
            // Halfway both have fallen halfway.
            assert!((schedule.factor(1001, 2001, 0.0) - 0.5).abs() < 1e-12);
            let f: Vec<f64> = (1..=100).map(|s| schedule.factor(s, 100, 0.0)).collect();
            assert!(f.windows(2).all(|w| w[1] < w[0]), "{schedule:?} decreases");
            // Steps past the target (a resumed run asked for fewer) stay at the end.
            assert_eq!(
                schedule.factor(150, 100, 0.2),
                schedule.factor(100, 100, 0.2)
            );
        }
        // Cosine falls slower at first, linear later.
        assert!(
            LrSchedule::Cosine.factor(101, 1001, 0.0) > LrSchedule::Linear.factor(101, 1001, 0.0)
        );
        assert_eq!(LrSchedule::Constant.factor(77, 100, 0.0), 1.0);
        // Each refused option set, and the option its error names.
        let refused = [
            (
                serde_json::json!({"summary_quantiles": [0.9, 0.1]}),
                "summary_quantiles",
            ),
            (
                serde_json::json!({"summary_minkowski": true}),
                "summary_minkowski",
            ),
            (
                serde_json::json!({"summary_thresholds": 1}),
                "summary_thresholds",
            ),
            (
                serde_json::json!({"summary_spacing": "normal", "summary_quantiles": [0.0, 0.99]}),
                "summary_spacing",
            ),
            (serde_json::json!({"matching_maps": 1}), "matching_maps"),
            (
                serde_json::json!({"lr_schedule": "cosine", "lr_final": 1.5}),
                "lr_final",
            ),
        ];
        for (mut options, named) in refused {
            // The baseline preset: every lever off, so each set holds one fault.
            options["preset"] = "baseline".into();
            let e = DcganConfig::from_options(&options).unwrap_err().to_string();
            assert!(e.contains(named), "{options}: {e}");
        }
        let unknown = serde_json::json!({"summary_loss": 1.0, "summary_spacing": "median"});
        assert!(DcganConfig::from_options(&unknown).is_err());
    }

    /// Removed options: a stored configuration loads where they are off and is
    /// refused, naming the option, where one was on; a user's options may not
    /// name them at all.
    #[test]
    fn removed_options_load_when_off_and_are_refused_when_on() {
        let mut stored = serde_json::to_value(
            DcganConfig::from_options(&serde_json::json!({"preset": "baseline"})).unwrap(),
        )
        .unwrap();
        let expected = DcganConfig::from_stored(&stored).unwrap();
        for (name, off) in REMOVED_OPTIONS {
            stored[*name] = serde_json::from_str(off).unwrap();
        }
        stored["summary_v1_weight"] = 1.into();
        assert_eq!(DcganConfig::from_stored(&stored).unwrap(), expected);
        let on = [
            ("circular_padding", serde_json::json!(true)),
            ("spectrum_weights", serde_json::json!("bands")),
            ("summary_weights", serde_json::json!("span")),
            ("summary_match", serde_json::json!("quantiles")),
            ("summary_v1_weight", serde_json::json!(4.0)),
            ("score", serde_json::json!("ks")),
            ("upsample", serde_json::json!("resize")),
        ];
        for (name, value) in on {
            let mut config = stored.clone();
            config[name] = value;
            let e = DcganConfig::from_stored(&config).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains("removed"), "{name}: {e}");
            let e = DcganConfig::from_options(&serde_json::json!({ name: config[name].clone() }))
                .unwrap_err()
                .to_string();
            assert!(e.contains(name), "{name}: {e}");
        }
    }
}
