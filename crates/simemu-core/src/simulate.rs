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

/// A simulation job: `count_per_point` samples at each of the `points`, in that
/// order (sample `i` is at point `i / count_per_point`).
pub struct SimulationJob<'a> {
    pub simulator: &'a dyn Simulator,
    /// Full parameter vectors, one per point.
    pub points: Vec<Vec<f64>>,
    pub count_per_point: usize,
    pub run_seed: u64,
    pub shard: Option<Shard>,
    pub shard_size: usize,
    /// Extra entries for the manifest's `source` (e.g. the design that produced it).
    pub extra_source: serde_json::Map<String, serde_json::Value>,
}

impl SimulationJob<'_> {
    /// Samples in the whole run.
    pub fn total(&self) -> usize {
        self.points.len().saturating_mul(self.count_per_point)
    }

    /// The samples of the run this job writes: all, or its shard's.
    fn range(&self) -> Result<std::ops::Range<usize>> {
        for p in &self.points {
            crate::params::check_params(self.simulator.params(), p)?;
        }
        let total = self.total();
        if total == 0 {
            return Err(Error::Option("nothing to simulate (count is 0)".into()));
        }
        let range = self.shard.map(|s| s.range(total)).unwrap_or(0..total);
        if range.is_empty() {
            return Err(Error::Option(format!(
                "shard {:?} of {total} samples is empty",
                self.shard
            )));
        }
        Ok(range)
    }
}

/// Runs the job into a dataset at `out`; `progress` is called with the number of
/// samples finished so far. Memory stays bounded by one block of samples in
/// flight, whatever the count.
pub fn simulate_to_dataset(
    job: &SimulationJob,
    out: &Path,
    overwrite: bool,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Manifest> {
    let sim = job.simulator;
    let total = job.total();
    let range = job.range()?;
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
    let sample_bytes = sample_bytes(sim);
    crate::fsutil::check_free_space(
        out,
        sample_bytes.checked_mul(range.len() as u64),
        &format!("{} samples", range.len()),
    )?;

    let mut points = PreparedPoints::new(job);
    // Produce in blocks: parallel inside a block, written in index order.
    let block = (rayon::current_num_threads() * 16).max(64);
    let mut writer: Option<DatasetWriter> = None;
    let mut start = range.start;
    while start < range.end {
        let end = (start + block).min(range.end);
        let drawn = points.draw(start..end)?;
        let w = match &mut writer {
            Some(w) => w,
            None => {
                // The first block's preparations give the notes known so far;
                // the rest are added before the manifest is written.
                spec.source.extend(source.clone());
                writer.insert(DatasetWriter::create(out, spec.clone(), overwrite)?)
            }
        };
        for (s, seed) in &drawn {
            w.push(s, Some(*seed))?;
        }
        progress(w.count());
        start = end;
    }
    let mut writer = writer.expect("the range is not empty");
    if let Some(notes) = points.notes() {
        writer.source_mut().insert("notes".into(), notes);
    }
    writer.finish()
}

/// Runs the job in memory: every sample of the design (or of its shard) with
/// its seed, in index order — the samples [`simulate_to_dataset`] writes.
pub fn simulate_samples(job: &SimulationJob) -> Result<Vec<(Sample, u64)>> {
    let range = job.range()?;
    let bytes = sample_bytes(job.simulator).checked_mul(range.len() as u64);
    let available = available_memory();
    if let (Some(available), bytes) = (available, bytes) {
        if bytes.is_none_or(|b| b > available) {
            return Err(Error::Refused(format!(
                "{} samples would take {} of memory, {} are available; write them to a dataset instead",
                range.len(),
                bytes.map(crate::fsutil::human_bytes).unwrap_or_else(|| "more than 16 EiB".into()),
                crate::fsutil::human_bytes(available)
            )));
        }
    }
    PreparedPoints::new(job).draw(range)
}

/// Bytes one sample of `sim` takes.
fn sample_bytes(sim: &dyn Simulator) -> u64 {
    crate::dataset::sample_bytes(&sim.fields(), sim.params().len())
}

/// Memory the system can give without swapping (Linux's `MemAvailable`).
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The points of a job prepared as the samples reach them: each once while
/// its samples are drawn (they are contiguous), so that memory holds the
/// preparations of one block, not of the whole design.
struct PreparedPoints<'j> {
    job: &'j SimulationJob<'j>,
    /// The last block's points: (point index, its preparation).
    current: Vec<(usize, Box<dyn PreparedSimulator>)>,
    /// Each prepared point's notes, in order (mostly null).
    notes: Vec<(usize, serde_json::Value)>,
}

impl<'j> PreparedPoints<'j> {
    fn new(job: &'j SimulationJob<'j>) -> Self {
        PreparedPoints {
            job,
            current: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// What the preparations had to adjust, per point (None: nothing).
    fn notes(&self) -> Option<serde_json::Value> {
        self.notes.iter().any(|(_, n)| !n.is_null()).then(|| {
            self.notes
                .iter()
                .map(|(k, n)| serde_json::json!({"params": self.job.points[*k], "notes": n}))
                .collect::<Vec<_>>()
                .into()
        })
    }

    /// Samples `indices` (of the whole run) with their seeds, drawn in parallel.
    fn draw(&mut self, indices: std::ops::Range<usize>) -> Result<Vec<(Sample, u64)>> {
        let per = self.job.count_per_point;
        let first = indices.start / per;
        let last = (indices.end - 1) / per;
        let kept: Vec<(usize, Box<dyn PreparedSimulator>)> = std::mem::take(&mut self.current)
            .into_iter()
            .filter(|(k, _)| (first..=last).contains(k))
            .collect();
        let known: Vec<usize> = kept.iter().map(|(k, _)| *k).collect();
        let fresh = (first..=last)
            .filter(|k| !known.contains(k))
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|k| {
                self.job
                    .simulator
                    .prepare(&self.job.points[k])
                    .map(|p| (k, p))
            })
            .collect::<Result<Vec<_>>>()?;
        self.notes
            .extend(fresh.iter().map(|(k, p)| (*k, p.notes())));
        self.current = kept.into_iter().chain(fresh).collect();
        self.current.sort_by_key(|(k, _)| *k);
        let current = &self.current;
        indices
            .into_par_iter()
            .map(|i| {
                let seed = sample_seed(self.job.run_seed, i as u64);
                current[i / per - first]
                    .1
                    .simulate(seed)
                    .map(|s| (s, seed))
                    .map_err(|e| Error::Other(format!("sample {i}: {e}")))
            })
            .collect()
    }
}
