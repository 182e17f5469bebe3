//! The three plugin traits: [`Simulator`], [`Generator`] and [`Statistic`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::params::ParamSpec;
use crate::sample::{FieldSpec, FieldView, Sample};
use crate::{Error, Registry, Result};

/// A physical model S(σ, r): parameters σ and a seed r give one sample.
///
/// A simulator is built from its options (`size`, `angle_deg`, …) by its registry
/// entry; [`Simulator::prepare`] does the per-parameter-point work once (a power
/// spectrum, a transfer function) so that drawing many samples is cheap.
///
/// ```
/// use simemu_core::{FieldSpec, DType, ParamSpec, Sample, Field, Array, Simulator, PreparedSimulator, Result};
///
/// /// Gaussian white noise of standard deviation `sigma`.
/// struct WhiteNoise { params: Vec<ParamSpec> }
/// struct Prepared { sigma: f64 }
///
/// impl Simulator for WhiteNoise {
///     fn name(&self) -> &str { "white-noise" }
///     fn params(&self) -> &[ParamSpec] { &self.params }
///     fn fields(&self) -> Vec<FieldSpec> { vec![FieldSpec::new("x", vec![4], DType::F64)] }
///     fn config(&self) -> serde_json::Value { serde_json::json!({}) }
///     fn prepare(&self, params: &[f64]) -> Result<Box<dyn PreparedSimulator>> {
///         Ok(Box::new(Prepared { sigma: params[0] }))
///     }
/// }
/// impl PreparedSimulator for Prepared {
///     fn simulate(&self, seed: u64) -> Result<Sample> {
///         use rand::Rng;
///         let mut rng = simemu_core::seed::rng(seed);
///         let v = (0..4).map(|_| self.sigma * (rng.random::<f64>() - 0.5)).collect();
///         Ok(Sample::single(Field::new("x", vec![4], Array::F64(v))?, vec![self.sigma]))
///     }
/// }
///
/// let sim = WhiteNoise { params: vec![ParamSpec::new("sigma", "", 0.0, 10.0, 1.0, "noise level")] };
/// let a = sim.prepare(&[2.0]).unwrap().simulate(7).unwrap();
/// let b = sim.prepare(&[2.0]).unwrap().simulate(7).unwrap();
/// assert_eq!(a, b); // same seed, same bytes
/// ```
pub trait Simulator: Send + Sync {
    fn name(&self) -> &str;
    /// The parameter space σ, in the order samples store it.
    fn params(&self) -> &[ParamSpec];
    /// The fields every sample holds (with attributes such as a map's side angle).
    fn fields(&self) -> Vec<FieldSpec>;
    /// The resolved options, recorded in the datasets this simulator writes.
    fn config(&self) -> serde_json::Value;
    /// Precomputes what all samples at `params` share. `params` is a full vector in
    /// the order of [`Simulator::params`], already checked against the bounds.
    fn prepare(&self, params: &[f64]) -> Result<Box<dyn PreparedSimulator>>;
    /// Theory predictions at `params` for the requested abscissae (plugin-defined keys,
    /// e.g. `ell`). Simulators without theory say so.
    fn theory(
        &self,
        params: &[f64],
        query: &BTreeMap<String, Vec<f64>>,
    ) -> Result<serde_json::Value> {
        let _ = (params, query);
        Err(Error::Other(format!(
            "simulator '{}' offers no theory predictions",
            self.name()
        )))
    }
}

/// A simulator at one parameter point.
pub trait PreparedSimulator: Send + Sync {
    /// One sample; identical bytes for identical seeds.
    fn simulate(&self, seed: u64) -> Result<Sample>;
    /// What the preparation had to adjust (e.g. clipped power), recorded in manifests.
    fn notes(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// Options of one training run, common to every generator.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The run directory (checkpoints, logs).
    pub run_dir: PathBuf,
    pub steps: Option<u64>,
    pub epochs: Option<u64>,
    pub resume: bool,
    pub seed: u64,
    /// Show progress bars.
    pub progress: bool,
    /// Wall-clock limit: a generator that supports it stops at the first step after
    /// this many seconds and saves a final checkpoint. The step count it reached is
    /// in its summary, so the run can be reproduced exactly with `steps`.
    pub budget_seconds: Option<f64>,
}

/// What a finished training reports.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TrainSummary {
    pub steps: u64,
    pub seconds: f64,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// A conditional generative model G(σ, z). Unconditional models have no parameters.
///
/// The run-directory contract (`docs/plugins.md`): `train` writes whatever the plugin
/// needs into `TrainOptions::run_dir`; simemu writes `generator.json` there (plugin
/// name and config); `load` receives the run directory or one of its checkpoint
/// directories and must restore a generator that generates exactly what the saved
/// one did.
///
/// ```
/// use std::path::Path;
/// use simemu_core::*;
///
/// /// Emits the training set's mean sample plus seeded white noise of its spread.
/// struct MeanPlusNoise { mean: Vec<f64>, sd: f64, field: Option<FieldSpec> }
///
/// impl Generator for MeanPlusNoise {
///     fn name(&self) -> &str { "mean-plus-noise" }
///     fn config(&self) -> serde_json::Value { serde_json::json!({}) }
///     fn fields(&self) -> Vec<FieldSpec> { self.field.clone().into_iter().collect() }
///     fn params(&self) -> Vec<ParamSpec> { vec![] } // unconditional
///     fn train(&mut self, data: &Dataset, _: &TrainOptions, _: &Registry) -> Result<TrainSummary> {
///         let all = data.read_samples(0, data.len())?;
///         let n = all.len() as f64;
///         let k = all[0].fields[0].data.len();
///         self.mean = (0..k).map(|i| all.iter().map(|s| s.fields[0].data.to_f64()[i]).sum::<f64>() / n).collect();
///         let var = all.iter().flat_map(|s| s.fields[0].data.to_f64().into_iter().zip(&self.mean).map(|(x, m)| (x - m).powi(2)).collect::<Vec<_>>()).sum::<f64>();
///         self.sd = (var / (n * k as f64)).sqrt();
///         self.field = Some(FieldSpec { dtype: DType::F64, ..data.fields()[0].clone() });
///         Ok(TrainSummary { steps: 1, ..Default::default() })
///     }
///     fn save(&self, dir: &Path) -> Result<()> {
///         fsutil::write_json_atomic(&dir.join("mean.json"), &(&self.mean, self.sd))
///     }
///     fn generate(&self, _params: &[f64], seeds: &[u64]) -> Result<Vec<Sample>> {
///         use rand::Rng;
///         let f = self.field.as_ref().expect("trained");
///         seeds.iter().map(|&s| {
///             let mut rng = seed::rng(s);
///             let v = self.mean.iter().map(|m| m + self.sd * (rng.random::<f64>() - 0.5) * 12f64.sqrt()).collect();
///             Ok(Sample::single(Field::new(f.name.clone(), f.shape.clone(), Array::F64(v))?, vec![]))
///         }).collect()
///     }
/// }
/// ```
pub trait Generator: Send {
    fn name(&self) -> &str;
    /// The configuration this generator was built from (written to `generator.json`).
    fn config(&self) -> serde_json::Value;
    /// Fields of generated samples (known after training or loading).
    fn fields(&self) -> Vec<FieldSpec>;
    /// The condition σ, in the order `generate` takes it (empty: unconditional).
    fn params(&self) -> Vec<ParamSpec>;
    fn train(
        &mut self,
        data: &Dataset,
        options: &TrainOptions,
        registry: &Registry,
    ) -> Result<TrainSummary>;
    /// Writes a complete checkpoint into `dir` (atomically: a reader never sees half of it).
    fn save(&self, dir: &Path) -> Result<()>;
    /// One sample per seed at parameters `params`; sample `k` depends only on
    /// (`params`, `seeds[k]`).
    fn generate(&self, params: &[f64], seeds: &[u64]) -> Result<Vec<Sample>>;
    /// Approximate cost of one generated sample in seconds, if measured.
    fn cost_per_sample(&self) -> Option<f64> {
        None
    }
    /// Which weights a loaded generator holds (say the checkpoint step chosen
    /// from a run directory), recorded with the samples it generates; `null`
    /// when there is nothing to tell.
    fn provenance(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// Per-sample values of one statistic: for each component, one value per bin.
pub type StatValues = Vec<Vec<f64>>;

/// A summary statistic of one sample: named components over an x-axis
/// (`power` over `ell`; `V0`,`V1`,`V2` over `threshold`).
///
/// ```
/// use simemu_core::{Array, Field, Result, Sample, StatValues, Statistic};
///
/// /// Fraction of values above each threshold.
/// struct Exceedance { thresholds: Vec<f64> }
///
/// impl Statistic for Exceedance {
///     fn name(&self) -> &str { "exceedance" }
///     fn x_name(&self) -> &str { "threshold" }
///     fn x(&self) -> &[f64] { &self.thresholds }
///     fn components(&self) -> Vec<String> { vec!["fraction".into()] }
///     fn options(&self) -> serde_json::Value { serde_json::json!({"thresholds": self.thresholds}) }
///     fn compute(&self, sample: &Sample) -> Result<StatValues> {
///         let v = sample.fields[0].data.to_f64();
///         let frac = self.thresholds.iter()
///             .map(|t| v.iter().filter(|&&x| x > *t).count() as f64 / v.len() as f64)
///             .collect();
///         Ok(vec![frac])
///     }
/// }
///
/// let s = Sample::single(Field::new("x", vec![4], Array::F64(vec![0.0, 1.0, 2.0, 3.0]))?, vec![]);
/// let stat = Exceedance { thresholds: vec![0.5, 2.5] };
/// assert_eq!(stat.compute(&s)?, vec![vec![0.75, 0.25]]);
/// # Ok::<(), simemu_core::Error>(())
/// ```
pub trait Statistic: Send + Sync {
    fn name(&self) -> &str;
    fn x_name(&self) -> &str;
    /// Abscissa (bin midpoints).
    fn x(&self) -> &[f64];
    fn components(&self) -> Vec<String>;
    /// The resolved options (edges, units), recorded with the results.
    fn options(&self) -> serde_json::Value;
    /// Values for one sample, `[component][bin]`.
    fn compute(&self, sample: &Sample) -> Result<StatValues>;
    /// Values for one field's data held elsewhere (an array of a caller's),
    /// `[component][bin]`. The default copies it into a sample for
    /// [`Statistic::compute`]; statistics of a single field override it to read
    /// the values in place.
    fn compute_view(&self, field: FieldView<'_>) -> Result<StatValues> {
        self.compute(&field.to_sample()?)
    }
}

/// What a statistic may know of the data when it is built: the field it reads
/// (with its attributes) and quantiles of the reference values of that field.
pub struct StatContext<'a> {
    pub field: FieldSpec,
    /// Quantiles (probabilities in, values out) of the pooled reference values.
    pub quantiles: &'a (dyn Fn(&[f64]) -> Result<Vec<f64>> + Sync),
    /// Variance of the pooled reference values about their mean.
    pub pooled_variance: &'a (dyn Fn() -> Result<f64> + Sync),
}
