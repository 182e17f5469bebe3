//! Running a simulator over a design of parameter points into a dataset, in parallel
//! and shardable: sample `i` always gets seed `sample_seed(run_seed, i)` and the
//! parameters `design[i]`, whatever the thread count or the shard.

use std::path::Path;

use rayon::prelude::*;

use crate::dataset::{source_record, DatasetSpec, DatasetWriter, Manifest, PartEntry};
use crate::seed::sample_seed;
use crate::traits::{PreparedSimulator, Simulator};
use crate::{Error, Result, Sample};

/// `K/N`: the K-th (0-based) of N contiguous, disjoint parts of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub fn parse(s: &str) -> Result<Shard> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| Error::Option(format!("shard '{s}' must be K/N")))?;
        let index: usize = k
            .trim()
            .parse()
            .map_err(|_| Error::Option(format!("shard '{s}': K is not a whole number")))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| Error::Option(format!("shard '{s}': N is not a whole number")))?;
        if count == 0 || index >= count {
            return Err(Error::Option(format!("shard '{s}': need 0 <= K < N")));
        }
        Ok(Shard { index, count })
    }

    /// The global index range of this part of `total` items.
    pub fn range(&self, total: usize) -> std::ops::Range<usize> {
        let start = total * self.index / self.count;
        let end = total * (self.index + 1) / self.count;
        start..end
    }
}

/// A simulation job: the parameter vector of every sample of the whole run.
pub struct SimulationJob<'a> {
    pub simulator: &'a dyn Simulator,
    /// Full parameter vectors, one per sample of the whole run.
    pub design: Vec<Vec<f64>>,
    pub run_seed: u64,
    pub shard: Option<Shard>,
    pub shard_size: usize,
    /// Extra entries for the manifest's `source` (e.g. the design that produced it).
    pub extra_source: serde_json::Map<String, serde_json::Value>,
}

/// Runs the job into a dataset at `out`; `progress` is called with the number of
/// samples finished so far.
pub fn simulate_to_dataset(
    job: &SimulationJob,
    out: &Path,
    overwrite: bool,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Manifest> {
    let sim = job.simulator;
    for p in &job.design {
        crate::params::check_params(sim.params(), p)?;
    }
    let total = job.design.len();
    if total == 0 {
        return Err(Error::Option("nothing to simulate (count is 0)".into()));
    }
    let range = job.shard.map(|s| s.range(total)).unwrap_or(0..total);
    if range.is_empty() {
        return Err(Error::Option(format!(
            "shard {:?} of {total} samples is empty",
            job.shard
        )));
    }
    let mut source = source_record("simulator", sim.name(), sim.config());
    source.extend(job.extra_source.clone());
    if let Some(s) = job.shard {
        source.insert("shard".into(), format!("{}/{}", s.index, s.count).into());
    }
    let mut spec = DatasetSpec::new(
        sim.fields(),
        sim.params().iter().map(|p| p.name.clone()).collect(),
    );
    spec.shard_size = job.shard_size;
    spec.run_seed = Some(job.run_seed);
    spec.part = job.shard.map(|_| PartEntry {
        start: range.start,
        total,
    });

    let points = PreparedPoints::new(job, range.clone())?;
    if let Some(notes) = points.notes() {
        spec.source.insert("notes".into(), notes);
    }
    spec.source.extend(source);
    let mut writer = DatasetWriter::create(out, spec, overwrite)?;

    // Produce in chunks: parallel inside a chunk, written in index order.
    let chunk = (rayon::current_num_threads() * 16).max(64);
    let indices: Vec<usize> = range.collect();
    for block in indices.chunks(chunk) {
        for (s, seed) in &points.draw(block)? {
            writer.push(s, Some(*seed))?;
        }
        progress(writer.count());
    }
    writer.finish()
}

/// Runs the job in memory: every sample of the design (or of its shard) with
/// its seed, in index order — the samples [`simulate_to_dataset`] writes.
pub fn simulate_samples(job: &SimulationJob) -> Result<Vec<(Sample, u64)>> {
    for p in &job.design {
        crate::params::check_params(job.simulator.params(), p)?;
    }
    let total = job.design.len();
    if total == 0 {
        return Err(Error::Option("nothing to simulate (count is 0)".into()));
    }
    let range = job.shard.map(|s| s.range(total)).unwrap_or(0..total);
    let points = PreparedPoints::new(job, range.clone())?;
    points.draw(&range.collect::<Vec<_>>())
}

/// Each distinct parameter point of a job's samples, prepared once.
struct PreparedPoints<'j> {
    job: &'j SimulationJob<'j>,
    range: std::ops::Range<usize>,
    points: Vec<Vec<f64>>,
    /// Per sample of `range`: its point.
    point_of: Vec<usize>,
    prepared: Vec<Box<dyn PreparedSimulator>>,
}

impl<'j> PreparedPoints<'j> {
    fn new(job: &'j SimulationJob<'j>, range: std::ops::Range<usize>) -> Result<Self> {
        let mut points: Vec<Vec<f64>> = Vec::new();
        let mut point_of = Vec::with_capacity(range.len());
        for i in range.clone() {
            let p = &job.design[i];
            let k = match points.iter().position(|q| q == p) {
                Some(k) => k,
                None => {
                    points.push(p.clone());
                    points.len() - 1
                }
            };
            point_of.push(k);
        }
        let prepared = points
            .par_iter()
            .map(|p| job.simulator.prepare(p))
            .collect::<Result<Vec<_>>>()?;
        Ok(PreparedPoints {
            job,
            range,
            points,
            point_of,
            prepared,
        })
    }

    /// What the preparations had to adjust, per point (None: nothing).
    fn notes(&self) -> Option<serde_json::Value> {
        let notes: Vec<serde_json::Value> = self.prepared.iter().map(|p| p.notes()).collect();
        notes.iter().any(|n| !n.is_null()).then(|| {
            self.points
                .iter()
                .zip(&notes)
                .map(|(p, n)| serde_json::json!({"params": p, "notes": n}))
                .collect::<Vec<_>>()
                .into()
        })
    }

    /// Samples `indices` (of the whole run) with their seeds, drawn in parallel.
    fn draw(&self, indices: &[usize]) -> Result<Vec<(Sample, u64)>> {
        indices
            .par_iter()
            .map(|&i| {
                let seed = sample_seed(self.job.run_seed, i as u64);
                self.prepared[self.point_of[i - self.range.start]]
                    .simulate(seed)
                    .map(|s| (s, seed))
                    .map_err(|e| Error::Other(format!("sample {i}: {e}")))
            })
            .collect()
    }
}
