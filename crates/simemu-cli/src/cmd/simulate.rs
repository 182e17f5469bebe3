//! `simemu simulate` and `simemu theory`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use rand::Rng;
use simemu_core::params::{parse_option_assignments, parse_param_assignments, resolve_params};
use simemu_core::simulate::{simulate_to_dataset, Shard, SimulationJob};
use simemu_core::{ParamSpec, Registry};

use super::usage;
use crate::ui;

#[derive(Args)]
pub struct SimulateArgs {
    /// Simulator name (see `simemu list simulators`).
    pub name: String,
    /// A fixed parameter value, NAME=VALUE; repeatable. Unset parameters take their defaults.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// A simulator option, KEY=VALUE; repeatable.
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Samples per parameter point.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// A grid axis NAME=LO:HI:N (N evenly spaced values); repeatable: the grid is their product.
    #[arg(long = "grid", value_name = "NAME=LO:HI:N")]
    pub grid: Vec<String>,
    /// A random design of N points (Latin hypercube) over the --range axes.
    #[arg(long = "latin-hypercube", value_name = "N")]
    pub latin_hypercube: Option<usize>,
    /// A Latin-hypercube axis NAME=LO:HI; repeatable.
    #[arg(long = "range", value_name = "NAME=LO:HI")]
    pub ranges: Vec<String>,
    /// Produce only part K of N (0-based) of the run; merge the parts with `simemu merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Samples per shard file.
    #[arg(long = "shard-size", default_value_t = simemu_core::dataset::DEFAULT_SHARD_SIZE)]
    pub shard_size: usize,
    /// Output dataset directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing output.
    #[arg(long)]
    pub force: bool,
}

fn parse_axis(s: &str, parts_wanted: usize) -> Result<(String, Vec<f64>)> {
    let (name, rest) = simemu_core::params::split_assignment(s)?;
    let parts: Vec<&str> = rest.split(':').collect();
    if parts.len() != parts_wanted {
        return Err(usage(format!(
            "'{s}' must be NAME={}",
            if parts_wanted == 3 {
                "LO:HI:N"
            } else {
                "LO:HI"
            }
        )));
    }
    let nums = parts
        .iter()
        .map(|p| {
            p.parse::<f64>()
                .map_err(|_| usage(format!("'{p}' in '{s}' is not a number")))
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok((name, nums))
}

fn param_index(space: &[ParamSpec], name: &str) -> Result<usize> {
    space.iter().position(|p| p.name == name).ok_or_else(|| {
        let names: Vec<&str> = space.iter().map(|p| p.name.as_str()).collect();
        usage(format!(
            "unknown parameter '{name}'{} (parameters: {})",
            simemu_core::params::did_you_mean(name, &names),
            names.join(", ")
        ))
    })
}

/// The parameter vector of every sample: fixed values, then a grid or a Latin
/// hypercube, each point repeated `count` times.
pub fn design(
    space: &[ParamSpec],
    a: &SimulateArgs,
    run_seed: u64,
) -> Result<(Vec<Vec<f64>>, serde_json::Value)> {
    if a.count == 0 {
        return Err(usage("--count must be at least 1"));
    }
    let base = resolve_params(space, &parse_param_assignments(&a.params)?)?;
    let mut points = vec![base.clone()];
    let mut desc = serde_json::json!({"fixed": base});
    if !a.grid.is_empty() && a.latin_hypercube.is_some() {
        return Err(usage("--grid and --latin-hypercube cannot be combined"));
    }
    if !a.grid.is_empty() {
        let mut axes = Vec::new();
        for g in &a.grid {
            let (name, v) = parse_axis(g, 3)?;
            let n = v[2];
            if n < 1.0 || n.fract() != 0.0 {
                return Err(usage(format!("'{g}': N must be a whole number ≥ 1")));
            }
            let i = param_index(space, &name)?;
            axes.push((i, simemu_core::bins::linspace(v[0], v[1], n as usize)));
        }
        for (i, vals) in &axes {
            points = points
                .iter()
                .flat_map(|p| {
                    vals.iter().map(move |&v| {
                        let mut q = p.clone();
                        q[*i] = v;
                        q
                    })
                })
                .collect();
        }
        desc["grid"] = serde_json::json!(a.grid);
    }
    if let Some(n) = a.latin_hypercube {
        if n == 0 || a.ranges.is_empty() {
            return Err(usage(
                "--latin-hypercube N needs N ≥ 1 and at least one --range NAME=LO:HI",
            ));
        }
        let mut rng =
            simemu_core::seed::rng(simemu_core::seed::derive_seed(run_seed, "latin-hypercube"));
        points = vec![base.clone(); n];
        for r in &a.ranges {
            let (name, v) = parse_axis(r, 2)?;
            let i = param_index(space, &name)?;
            let mut strata: Vec<usize> = (0..n).collect();
            for k in (1..n).rev() {
                strata.swap(k, rng.random_range(0..=k));
            }
            for (p, s) in points.iter_mut().zip(strata) {
                let u: f64 = rng.random();
                p[i] = v[0] + (v[1] - v[0]) * (s as f64 + u) / n as f64;
            }
        }
        desc["latin_hypercube"] = serde_json::json!({"points": n, "ranges": a.ranges});
    } else if !a.ranges.is_empty() {
        return Err(usage("--range needs --latin-hypercube N"));
    }
    for p in &points {
        simemu_core::params::check_params(space, p)?;
    }
    desc["count_per_point"] = a.count.into();
    let all = points
        .iter()
        .flat_map(|p| std::iter::repeat_n(p.clone(), a.count))
        .collect();
    Ok((all, desc))
}

pub fn run(reg: &Registry, seed: u64, a: &SimulateArgs) -> Result<()> {
    let options = parse_option_assignments(&a.options)?;
    let sim = reg.build_simulator(&a.name, &options)?;
    let run_seed = seed;
    let (design, desc) = design(sim.params(), a, run_seed)?;
    let shard = a.shard.as_deref().map(Shard::parse).transpose()?;
    let total = shard
        .map(|s| s.range(design.len()).len())
        .unwrap_or(design.len());
    let mut extra = serde_json::Map::new();
    extra.insert("design".into(), desc);
    let job = SimulationJob {
        simulator: sim.as_ref(),
        design,
        run_seed,
        shard,
        shard_size: a.shard_size,
        extra_source: extra,
    };
    let pb = ui::bar(total as u64, "simulate");
    let t0 = std::time::Instant::now();
    let manifest = simulate_to_dataset(&job, &a.out, a.force, &|n| pb.set_position(n as u64))
        .with_context(|| format!("simulating into {}", a.out.display()))?;
    pb.finish_and_clear();
    if let Some(notes) = manifest.source.get("notes").and_then(|n| n.as_array()) {
        for n in notes {
            let clipped = n["notes"]["clipped_gaussian_modes"].as_u64().unwrap_or(0);
            if clipped > 0 {
                tracing::warn!(
                    "{} Gaussian modes had negative power and were clipped (fraction {:.2e} of the power) at {}",
                    clipped,
                    n["notes"]["clipped_gaussian_power_fraction"].as_f64().unwrap_or(0.0),
                    n["params"]
                );
            }
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    tracing::info!(
        "wrote {} samples to {} in {:.2}s ({:.0}/s)",
        manifest.count,
        a.out.display(),
        dt,
        manifest.count as f64 / dt
    );
    Ok(())
}

#[derive(Args)]
pub struct TheoryArgs {
    /// Simulator name.
    pub name: String,
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Simulator-defined queries, e.g. `--ell 100,1000,10000`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "--QUERY VALUES"
    )]
    pub queries: Vec<String>,
}

fn parse_queries(items: &[String]) -> Result<BTreeMap<String, Vec<f64>>> {
    let mut out = BTreeMap::new();
    let mut it = items.iter();
    while let Some(k) = it.next() {
        let key = k.strip_prefix("--").ok_or_else(|| {
            usage(format!(
                "unexpected argument '{k}' (queries look like --ell 100,1000)"
            ))
        })?;
        let (key, value) = match key.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (
                key.to_string(),
                it.next()
                    .ok_or_else(|| usage(format!("--{key} needs values")))?
                    .clone(),
            ),
        };
        let vals = value
            .split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| usage(format!("--{key}: '{v}' is not a number")))
            })
            .collect::<Result<Vec<f64>>>()?;
        out.insert(key.replace('-', "_"), vals);
    }
    Ok(out)
}

pub fn theory(reg: &Registry, a: &TheoryArgs) -> Result<()> {
    let sim = reg.build_simulator(&a.name, &parse_option_assignments(&a.options)?)?;
    let params = resolve_params(sim.params(), &parse_param_assignments(&a.params)?)?;
    let out = sim.theory(&params, &parse_queries(&a.queries)?)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let names: Vec<&str> = sim.params().iter().map(|p| p.name.as_str()).collect();
    println!(
        "{} at {}",
        a.name,
        names
            .iter()
            .zip(&params)
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let Some(obj) = out.as_object() {
        // Arrays of equal length print as a table, scalars as lines.
        let arrays: Vec<(&String, Vec<f64>)> = obj
            .iter()
            .filter_map(|(k, v)| {
                v.as_array()
                    .map(|a| (k, a.iter().filter_map(|x| x.as_f64()).collect()))
            })
            .collect();
        if !arrays.is_empty() {
            println!(
                "{}",
                arrays
                    .iter()
                    .map(|(k, _)| format!("{k:>14}"))
                    .collect::<String>()
            );
            for i in 0..arrays[0].1.len() {
                println!(
                    "{}",
                    arrays
                        .iter()
                        .map(|(_, v)| format!("{:>14.6e}", v.get(i).copied().unwrap_or(f64::NAN)))
                        .collect::<String>()
                );
            }
        }
        for (k, v) in obj.iter().filter(|(_, v)| !v.is_array()) {
            println!("{k} = {v}");
        }
    }
    Ok(())
}
