//! `simemu bench`: fixed workloads, warm-up, median of repeated runs, threads stated.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Serialize;
use simemu_core::{ComputeDevice, Registry, Sample, Statistic};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub workload: Workload,
    /// Also write the results as JSON here.
    #[arg(long, global = true)]
    pub json: Option<PathBuf>,
    /// Timed repetitions (the median is reported).
    #[arg(long, global = true, default_value_t = 5)]
    pub repeats: usize,
}

#[derive(Subcommand)]
pub enum Workload {
    /// Maps per second of the `convergence` simulator (256², log-normal, halofit).
    Simulate {
        #[arg(long, default_value_t = 256)]
        size: usize,
        /// Maps per timed run.
        #[arg(long, default_value_t = 256)]
        maps: usize,
    },
    /// Maps per second of each map statistic on 256² maps.
    Stats {
        #[arg(long, default_value_t = 256)]
        size: usize,
        #[arg(long, default_value_t = 128)]
        maps: usize,
    },
    /// Boxes per second of the `density3d` simulator (one box per item):
    /// `density3d_bench.py sim --model MODEL --size SIZE`.
    #[command(name = "simulate-3d")]
    Simulate3d {
        #[arg(long, default_value = "2lpt", value_parser = ["gaussian", "lognormal", "2lpt"])]
        model: String,
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Boxes per timed run.
        #[arg(long, default_value_t = 8)]
        boxes: usize,
    },
    /// Boxes per second of each 3D statistic on log-normal boxes:
    /// `density3d_bench.py stats --size SIZE`.
    #[command(name = "stats-3d")]
    Stats3d {
        #[arg(long, default_value_t = 128)]
        size: usize,
        #[arg(long, default_value_t = 4)]
        boxes: usize,
    },
    /// One DCGAN training iteration (G forward, D update, G update) in the benchmark
    /// layout: `torch_bench.py train --dims DIMS --width WIDTH --size SIZE`. Maps:
    /// 5×5 convolutions, batch 64; volumes (`--dims 3`): 4³ convolutions, batch 16.
    TrainStep {
        /// 2: maps of SIZE² pixels; 3: volumes of SIZE³ voxels.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
        dims: u8,
        /// The side (default: 64 for maps, 32 for volumes).
        #[arg(long)]
        size: Option<usize>,
        #[arg(long, default_value_t = 16)]
        width: usize,
    },
    /// Each convolution block of the `train-step` networks alone (convolution,
    /// BatchNorm or bias, activation; batch 64): forward, and forward + backward
    /// (weight and input gradients): `torch_bench.py layers`, with the same names.
    Layers {
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 16)]
        width: usize,
    },
    /// The classifier two-sample test as `simemu validate --stats …,c2st` runs it
    /// on two independent sets of `convergence` maps: the classifier on the
    /// candidate, and the whole test (the candidate and its floor, the
    /// reference's halves). Statistic vectors (the default four statistics)
    /// are measured before timing.
    C2st {
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Maps per set.
        #[arg(long, default_value_t = 500)]
        maps: usize,
    },
    /// Generation of 64 maps (G forward, evaluation mode) in the benchmark layout:
    /// `torch_bench.py gen WIDTH SIZE/16 4 2 REPEATS`.
    Generate {
        /// `cosmogan`: CosmoGAN's 256², width 64 (`torch_bench.py gen 64 16 4`);
        /// overrides --size and --width.
        #[arg(long, value_parser = ["cosmogan"])]
        arch: Option<String>,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 16)]
        width: usize,
    },
}

/// Warm-up runs before timing (as `torch_bench.py`: the first runs allocate).
const WARM_UP: usize = 2;

#[derive(Serialize)]
struct BenchRow {
    workload: String,
    threads: usize,
    items: usize,
    median_s: f64,
    items_per_s: f64,
    runs_s: Vec<f64>,
    /// Peak resident memory of the process during the timed runs (Linux only).
    peak_rss_mb: Option<f64>,
}

/// Resets the kernel's resident-set high-water mark (Linux ≥ 4.0).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The resident-set high-water mark in MiB (VmHWM), where the kernel reports it.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Times `f` (after [`WARM_UP`] runs) in a pool of `threads` threads.
fn time_it(
    name: &str,
    threads: usize,
    items: usize,
    repeats: usize,
    f: &mut (dyn FnMut() -> Result<()> + Send),
) -> Result<BenchRow> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    for _ in 0..WARM_UP {
        pool.install(&mut *f)?;
    }
    reset_peak_rss();
    let mut runs = Vec::with_capacity(repeats.max(1));
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        pool.install(&mut *f)?;
        runs.push(t.elapsed().as_secs_f64());
    }
    let m = median(&mut runs.clone());
    Ok(BenchRow {
        workload: name.into(),
        threads,
        items,
        median_s: m,
        items_per_s: items as f64 / m,
        runs_s: runs,
        peak_rss_mb: peak_rss_mb(),
    })
}

pub fn run(reg: &Registry, device: ComputeDevice, a: &BenchArgs) -> Result<()> {
    let on_device = matches!(
        a.workload,
        Workload::TrainStep { .. } | Workload::Layers { .. } | Workload::Generate { .. }
    );
    if !device.is_cpu() && !on_device {
        return Err(super::usage(
            "--device applies to bench train-step, layers and generate; this workload computes on the CPU",
        ));
    }
    let candle_device = simemu_nn::device(device)?;
    if !device.is_cpu() {
        eprintln!("device: {device}");
    }
    // The global pool's size: all cores, or `--threads`.
    let all = rayon::current_num_threads();
    let thread_counts: Vec<usize> = if all > 1 { vec![1, all] } else { vec![1] };
    let mut rows = Vec::new();
    match &a.workload {
        Workload::Simulate { size, maps } => rows.extend(simulate_rows(
            reg,
            "convergence",
            &serde_json::json!({"size": size}),
            "simulate convergence",
            *maps,
            a.repeats,
            &thread_counts,
        )?),
        Workload::Simulate3d { model, size, boxes } => rows.extend(simulate_rows(
            reg,
            "density3d",
            &serde_json::json!({"size": size, "model": model}),
            &format!("simulate density3d {model} {size}³"),
            *boxes,
            a.repeats,
            &thread_counts,
        )?),
        Workload::Stats { size, maps } => {
            // Bins as the lenstools benchmark twin uses them: 40 log ℓ bins, 30 thresholds.
            rows.extend(stat_rows(
                reg,
                "convergence",
                &serde_json::json!({"size": size}),
                *maps,
                a.repeats,
                &thread_counts,
                |thresholds| {
                    vec![
                        (
                            "power-spectrum",
                            serde_json::json!({"ell_edges": "log:100:18700:40"}),
                        ),
                        ("minkowski", serde_json::json!({"thresholds": thresholds})),
                        ("peaks", serde_json::json!({"thresholds": thresholds})),
                        ("pixel-pdf", serde_json::json!({"thresholds": thresholds})),
                    ]
                },
            )?)
        }
        Workload::Stats3d { size, boxes } => {
            // As the twin: the power spectrum over all k bins, 30 thresholds.
            rows.extend(stat_rows(
                reg,
                "density3d",
                &serde_json::json!({"size": size, "model": "lognormal"}),
                *boxes,
                a.repeats,
                &thread_counts,
                |thresholds| {
                    vec![
                        ("power-spectrum-3d", serde_json::json!({})),
                        ("density-pdf", serde_json::json!({"thresholds": thresholds})),
                        ("peaks-3d", serde_json::json!({"thresholds": thresholds})),
                        (
                            "minkowski-3d",
                            serde_json::json!({"thresholds": thresholds}),
                        ),
                    ]
                },
            )?)
        }
        Workload::C2st { size, maps } => rows.extend(c2st_rows(reg, *size, *maps, a.repeats)?),
        Workload::TrainStep {
            dims: 3,
            size,
            width,
        } => {
            let size = size.unwrap_or(32);
            let mut step = simemu_dcgan::bench::TrainStep3d::new(size, *width, &candle_device)?;
            let (pg, pd) = step.parameters();
            let batch = simemu_dcgan::bench::BATCH_3D;
            eprintln!(
                "train-step: {size}³, width {width}, batch {batch}, G {pg} + D {pd} parameters"
            );
            rows.push(time_it(
                &format!("train-step {size}³ w{width}"),
                all,
                batch,
                a.repeats,
                &mut || step.run().map(|_| ()).map_err(Into::into),
            )?);
        }
        Workload::TrainStep { size, width, .. } => {
            let size = size.unwrap_or(64);
            let mut step = simemu_dcgan::bench::TrainStep::new(size, *width, &candle_device)?;
            let (pg, pd) = step.parameters();
            eprintln!(
                "train-step: {size}², width {width}, batch {}, G {pg} + D {pd} parameters",
                step.config().batch
            );
            rows.push(time_it(
                &format!("train-step {size}² w{width}"),
                all,
                step.config().batch,
                a.repeats,
                &mut || step.run().map(|_| ()).map_err(Into::into),
            )?);
        }
        Workload::Layers { size, width } => {
            for block in simemu_dcgan::bench::layer_blocks(*size, *width, &candle_device)? {
                let name = format!("layer {} {}", block.name, block.shape);
                rows.push(time_it(
                    &format!("{name} forward"),
                    all,
                    64,
                    a.repeats,
                    &mut || {
                        block.forward()?;
                        Ok(block.synchronize()?)
                    },
                )?);
                rows.push(time_it(
                    &format!("{name} forward+backward"),
                    all,
                    64,
                    a.repeats,
                    &mut || {
                        block.forward_backward()?;
                        Ok(block.synchronize()?)
                    },
                )?);
            }
        }
        Workload::Generate { arch, size, width } => {
            let (size, width) = match arch.as_deref() {
                Some("cosmogan") => (256, 64),
                _ => (*size, *width),
            };
            let mut gen = simemu_dcgan::bench::Generate::new(size, width, &candle_device)?;
            rows.push(time_it(
                &format!("generate {size}² w{width}"),
                all,
                gen.config().batch,
                a.repeats,
                &mut || gen.run().map(|_| ()).map_err(Into::into),
            )?);
        }
    }
    crate::output::outln!(
        "{:<44} {:>8} {:>8} {:>12} {:>12} {:>12}",
        "workload",
        "threads",
        "items",
        "median s",
        "items/s",
        "peak RSS MB"
    );
    for r in &rows {
        let rss = r
            .peak_rss_mb
            .map(|m| format!("{m:.0}"))
            .unwrap_or_else(|| "-".into());
        crate::output::outln!(
            "{:<44} {:>8} {:>8} {:>12.4} {:>12.1} {:>12}",
            r.workload,
            r.threads,
            r.items,
            r.median_s,
            r.items_per_s,
            rss
        );
    }
    if let Some(p) = &a.json {
        simemu_core::fsutil::write_json_atomic(
            p,
            &serde_json::json!({"simemu_version": simemu_core::VERSION, "available_threads": all, "device": device.to_string(), "results": rows}),
        )?;
    }
    Ok(())
}

/// Samples per second of a simulator at its default parameters, each sample
/// an item, at each thread count.
fn simulate_rows(
    reg: &Registry,
    simulator: &str,
    options: &serde_json::Value,
    name: &str,
    samples: usize,
    repeats: usize,
    thread_counts: &[usize],
) -> Result<Vec<BenchRow>> {
    use rayon::prelude::*;
    let sim = reg.build_simulator(simulator, options)?;
    let params = simemu_core::params::resolve_params(sim.params(), &[])?;
    let prepared = sim.prepare(&params)?;
    thread_counts
        .iter()
        .map(|&t| {
            time_it(name, t, samples, repeats, &mut || {
                (0..samples).into_par_iter().try_for_each(|i| {
                    std::hint::black_box(prepared.simulate(i as u64)?);
                    Ok(())
                })
            })
        })
        .collect()
}

/// Samples per second of each statistic `stats(thresholds)` names, on
/// `samples` draws of a simulator; the thresholds are 30 linear bins from −2σ
/// to 5σ of the drawn values, as the twins use them.
fn stat_rows(
    reg: &Registry,
    simulator: &str,
    options: &serde_json::Value,
    samples: usize,
    repeats: usize,
    thread_counts: &[usize],
    stats: impl Fn(&str) -> Vec<(&'static str, serde_json::Value)>,
) -> Result<Vec<BenchRow>> {
    use rayon::prelude::*;
    let sim = reg.build_simulator(simulator, options)?;
    let params = simemu_core::params::resolve_params(sim.params(), &[])?;
    let prepared = sim.prepare(&params)?;
    let drawn: Vec<Sample> = (0..samples)
        .map(|i| prepared.simulate(i as u64))
        .collect::<simemu_core::Result<_>>()?;
    let dir = tempdir_dataset(&drawn, &sim.fields(), &params, "stats")?;
    let ds = simemu_core::Dataset::open(dir.path())?;
    let sigma = (simemu_validate::measure::PooledValues::new(&ds, 0).variance()?).sqrt();
    let thresholds = format!("lin:{}:{}:30", -2.0 * sigma, 5.0 * sigma);
    let mut rows = Vec::new();
    for (name, opts) in stats(&thresholds) {
        let stat: Box<dyn Statistic> =
            simemu_validate::measure::build_statistic(reg, name, &opts, &ds, 0, None)?;
        for &t in thread_counts {
            rows.push(time_it(
                &format!("stat {name}"),
                t,
                samples,
                repeats,
                &mut || {
                    drawn.par_iter().try_for_each(|s| {
                        std::hint::black_box(stat.compute(s)?);
                        Ok(())
                    })
                },
            )?);
        }
    }
    Ok(rows)
}

/// The c2st rows: the classifier on reference vs candidate, then the whole
/// test with its floor, each with all threads.
fn c2st_rows(reg: &Registry, size: usize, maps: usize, repeats: usize) -> Result<Vec<BenchRow>> {
    use simemu_validate::c2st::{c2st, C2stOptions, Inputs};
    use simemu_validate::vector::{self, VectorTest};
    let sim = reg.build_simulator("convergence", &serde_json::json!({ "size": size }))?;
    let params = simemu_core::params::resolve_params(sim.params(), &[])?;
    let prepared = sim.prepare(&params)?;
    let draw = |from: usize| -> Result<TempDataset> {
        let drawn: Vec<Sample> = (from..from + maps)
            .map(|i| prepared.simulate(i as u64))
            .collect::<simemu_core::Result<_>>()?;
        tempdir_dataset(&drawn, &sim.fields(), &params, &format!("c2st-{from}"))
    };
    let (reference_dir, candidate_dir) = (draw(0)?, draw(maps)?);
    let reference = simemu_core::Dataset::open(reference_dir.path())?;
    let candidate = simemu_core::Dataset::open(candidate_dir.path())?;
    let stats = simemu_validate::default_stats()
        .iter()
        .map(|r| {
            simemu_validate::measure::build_statistic(reg, &r.name, &r.options, &reference, 0, None)
        })
        .collect::<simemu_core::Result<Vec<_>>>()?;
    let refs: Vec<&dyn Statistic> = stats.iter().map(|s| s.as_ref()).collect();
    let measure = |ds: &simemu_core::Dataset| {
        simemu_validate::measure::measure_dataset(&refs, ds, 0..ds.len(), &|_| {})
    };
    let (ref_measured, cand_measured) = (measure(&reference)?, measure(&candidate)?);
    let inputs = |ds: &simemu_core::Dataset, measured| -> simemu_core::Result<Inputs> {
        Inputs::of_dataset(ds, 0)?.with_summaries(&vector::sample_vectors(measured))
    };
    let (x, y) = (
        inputs(&reference, &ref_measured)?,
        inputs(&candidate, &cand_measured)?,
    );
    let threads = rayon::current_num_threads();
    let options = C2stOptions::default();
    let classifier = time_it(
        &format!("c2st {size}² {maps}+{maps}"),
        threads,
        2 * maps,
        repeats,
        &mut || {
            std::hint::black_box(c2st(&x, &y, &options)?);
            Ok(())
        },
    )?;
    let samples = || Ok((x.clone(), y.clone()));
    let whole = time_it(
        &format!("c2st {size}² {maps}+{maps} with its floor"),
        threads,
        2 * maps,
        repeats,
        &mut || {
            std::hint::black_box(vector::run(
                &[VectorTest::C2st],
                &ref_measured,
                &cand_measured,
                Some(&samples),
                // A fresh cache each run: the floor is part of what is timed.
                &vector::Floors::default(),
            )?);
            Ok(())
        },
    )?;
    Ok(vec![classifier, whole])
}

fn tempdir_dataset(
    samples: &[Sample],
    fields: &[simemu_core::FieldSpec],
    params: &[f64],
    name: &str,
) -> Result<TempDataset> {
    let base = std::env::temp_dir().join(format!("simemu-bench-{}-{name}", std::process::id()));
    let spec = simemu_core::DatasetSpec::new(
        fields.to_vec(),
        (0..params.len()).map(|i| format!("p{i}")).collect(),
    );
    let mut w = simemu_core::DatasetWriter::create(&base, spec, true)?;
    for s in samples {
        w.push(s, None)?;
    }
    w.finish()?;
    Ok(TempDataset(base))
}

struct TempDataset(PathBuf);

impl TempDataset {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDataset {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
