//! Measuring statistics on sample sets: building a statistic against a reference set
//! (for quantile bins) and computing it on every sample in parallel.

use std::sync::OnceLock;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use simemu_core::{
    ArrayView, Dataset, Error, FieldSpec, Registry, Result, Sample, StatContext, Statistic,
};

/// Pooled values of one field of a reference set, loaded once and sorted on first use.
pub struct PooledValues<'a> {
    dataset: &'a Dataset,
    field: usize,
    sorted: OnceLock<Result<Vec<f32>, String>>,
}

impl<'a> PooledValues<'a> {
    pub fn new(dataset: &'a Dataset, field: usize) -> Self {
        PooledValues {
            dataset,
            field,
            sorted: OnceLock::new(),
        }
    }

    /// All values of the field over all samples, sorted (f32: the storage precision
    /// of maps, and half the memory).
    pub fn sorted(&self) -> Result<&[f32]> {
        self.sorted
            .get_or_init(|| {
                let mut all = Vec::new();
                for start in (0..self.dataset.len()).step_by(256) {
                    let n = 256.min(self.dataset.len() - start);
                    let arr = self
                        .dataset
                        .read_field_range(self.field, start, n)
                        .map_err(|e| e.to_string())?;
                    match arr {
                        simemu_core::Array::F32(v) => all.extend_from_slice(&v),
                        simemu_core::Array::F64(v) => all.extend(v.iter().map(|&x| x as f32)),
                    }
                }
                all.par_sort_unstable_by(|a, b| a.total_cmp(b));
                Ok(all)
            })
            .as_deref()
            .map_err(|e| Error::Data(e.clone()))
    }

    /// Quantiles with numpy's default linear interpolation.
    pub fn quantiles(&self, probs: &[f64]) -> Result<Vec<f64>> {
        Ok(quantiles_of(self.sorted()?, probs))
    }

    pub fn variance(&self) -> Result<f64> {
        Ok(variance_of(self.sorted()?))
    }
}

/// Quantiles of sorted values, with numpy's default linear interpolation.
fn quantiles_of(sorted: &[f32], probs: &[f64]) -> Vec<f64> {
    probs
        .iter()
        .map(|&q| simemu_core::bins::quantile_sorted(sorted, q))
        .collect()
}

/// The variance about the mean (ddof 0).
fn variance_of(values: &[f32]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().map(|&x| x as f64).sum::<f64>() / n;
    values
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n
}

/// Builds statistic `name` with `options` for field `field` of `reference`
/// (quantile bins use the reference's pooled values).
pub fn build_statistic(
    registry: &Registry,
    name: &str,
    options: &serde_json::Value,
    reference: &Dataset,
    field: usize,
    attrs_override: Option<&FieldSpec>,
) -> Result<Box<dyn Statistic>> {
    let pooled = PooledValues::new(reference, field);
    let spec = attrs_override
        .cloned()
        .unwrap_or_else(|| reference.fields()[field].clone());
    build_with(registry, name, options, spec, &|| pooled.sorted())
}

/// Builds statistic `name` with `options` for fields described by `spec`, its
/// quantile bins from `values`, the reference's values pooled over its samples
/// (read as float32, as [`PooledValues`] reads a dataset's, and only if the
/// statistic asks for quantiles): the statistic [`build_statistic`] builds for
/// a dataset of those values.
pub fn build_statistic_for_values(
    registry: &Registry,
    name: &str,
    options: &serde_json::Value,
    spec: FieldSpec,
    values: ArrayView<'_>,
) -> Result<Box<dyn Statistic>> {
    let sorted = OnceLock::new();
    let sorted = || -> Result<&[f32]> {
        Ok(sorted.get_or_init(|| {
            let mut all: Vec<f32> = match values {
                ArrayView::F32(v) => v.to_vec(),
                ArrayView::F64(v) => v.iter().map(|&x| x as f32).collect(),
            };
            all.par_sort_unstable_by(|a, b| a.total_cmp(b));
            all
        }))
    };
    build_with(registry, name, options, spec, &sorted)
}

/// Builds statistic `name` if it needs no reference values (its bins are all
/// given): None when it asks for quantiles or the pooled variance. Such a
/// statistic is the same for any data of `spec`'s shape, and can be kept.
pub fn build_statistic_without_values(
    registry: &Registry,
    name: &str,
    options: &serde_json::Value,
    spec: FieldSpec,
) -> Result<Option<Box<dyn Statistic>>> {
    let asked = std::sync::atomic::AtomicBool::new(false);
    let refuse = || -> Result<&[f32]> {
        asked.store(true, std::sync::atomic::Ordering::Relaxed);
        Err(Error::Data("no reference values".into()))
    };
    match build_with(registry, name, options, spec, &refuse) {
        Ok(stat) => Ok(Some(stat)),
        Err(_) if asked.load(std::sync::atomic::Ordering::Relaxed) => Ok(None),
        Err(e) => Err(e),
    }
}

fn build_with<'v>(
    registry: &Registry,
    name: &str,
    options: &serde_json::Value,
    spec: FieldSpec,
    sorted: &(dyn Fn() -> Result<&'v [f32]> + Sync + 'v),
) -> Result<Box<dyn Statistic>> {
    let entry = registry.statistic(name)?;
    let q = |p: &[f64]| Ok(quantiles_of(sorted()?, p));
    let v = || Ok(variance_of(sorted()?));
    let ctx = StatContext {
        field: spec,
        quantiles: &q,
        pooled_variance: &v,
    };
    (entry.build)(options, &ctx)
}

/// Per-sample values of one statistic over a sample set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Measurement {
    pub statistic: String,
    pub options: serde_json::Value,
    pub x_name: String,
    pub x: Vec<f64>,
    pub component_names: Vec<String>,
    /// `[component][sample][bin]`
    pub values: Vec<Vec<Vec<f64>>>,
}

impl Measurement {
    pub fn count(&self) -> usize {
        self.values.first().map(|c| c.len()).unwrap_or(0)
    }
}

/// Computes a statistic on samples, in parallel; errors name the sample index
/// (offset by `first_index`).
pub fn measure_samples(
    stat: &dyn Statistic,
    samples: &[Sample],
    first_index: usize,
) -> Result<Vec<Vec<Vec<f64>>>> {
    samples
        .par_iter()
        .enumerate()
        .map(|(k, s)| {
            stat.compute(s).map_err(|e| {
                Error::Data(format!("{}: sample {}: {e}", stat.name(), first_index + k))
            })
        })
        .collect()
}

/// Computes several statistics on every sample of a dataset in one streaming pass
/// over the samples in `range`; `progress` gets the number of samples done.
pub fn measure_dataset(
    stats: &[&dyn Statistic],
    ds: &Dataset,
    range: std::ops::Range<usize>,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Measurement>> {
    let mut out: Vec<Measurement> = stats
        .iter()
        .map(|s| Measurement {
            statistic: s.name().to_string(),
            options: s.options(),
            x_name: s.x_name().to_string(),
            x: s.x().to_vec(),
            component_names: s.components(),
            values: vec![Vec::new(); s.components().len()],
        })
        .collect();
    let chunk = 256;
    let mut done = 0;
    for start in range.clone().step_by(chunk) {
        let n = chunk.min(range.end - start);
        let samples = ds.read_samples(start, n)?;
        for (m, s) in out.iter_mut().zip(stats) {
            let per = measure_samples(*s, &samples, start)?;
            for sample_values in per {
                for (c, v) in sample_values.into_iter().enumerate() {
                    m.values[c].push(v);
                }
            }
        }
        done += n;
        progress(done);
    }
    Ok(out)
}
