//! `simemu simulate` and `simemu theory`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use simemu_core::params::{parse_option_assignments, parse_param_assignments, resolve_params};
use simemu_core::simulate::Shard;
use simemu_core::Registry;
use simemu_pipeline::{Design, GridAxis, LatinHypercube, RangeAxis, SimulateRequest};

use super::usage;
use crate::ui::Terminal;

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

/// The design the arguments describe.
fn design(a: &SimulateArgs) -> Result<Design> {
    if a.count == 0 {
        return Err(usage("--count must be at least 1"));
    }
    if !a.grid.is_empty() && a.latin_hypercube.is_some() {
        return Err(usage("--grid and --latin-hypercube cannot be combined"));
    }
    let mut design = Design::at(parse_param_assignments(&a.params)?, a.count);
    for g in &a.grid {
        let (name, v) = parse_axis(g, 3)?;
        if v[2] < 1.0 || v[2].fract() != 0.0 {
            return Err(usage(format!("'{g}': N must be a whole number ≥ 1")));
        }
        design.grid.push(GridAxis {
            name,
            lo: v[0],
            hi: v[1],
            n: v[2] as usize,
        });
    }
    match a.latin_hypercube {
        Some(points) => {
            if points == 0 || a.ranges.is_empty() {
                return Err(usage(
                    "--latin-hypercube N needs N ≥ 1 and at least one --range NAME=LO:HI",
                ));
            }
            let ranges = a
                .ranges
                .iter()
                .map(|r| {
                    let (name, v) = parse_axis(r, 2)?;
                    Ok(RangeAxis {
                        name,
                        lo: v[0],
                        hi: v[1],
                    })
                })
                .collect::<Result<_>>()?;
            design.latin_hypercube = Some(LatinHypercube { points, ranges });
        }
        None if !a.ranges.is_empty() => return Err(usage("--range needs --latin-hypercube N")),
        None => {}
    }
    Ok(design)
}

pub fn run(reg: &Registry, seed: u64, a: &SimulateArgs) -> Result<()> {
    let design = design(a)?;
    let request = SimulateRequest {
        simulator: &a.name,
        options: &parse_option_assignments(&a.options)?,
        design: &design,
        seed,
        shard: a.shard.as_deref().map(Shard::parse).transpose()?,
        shard_size: a.shard_size,
        out: &a.out,
        force: a.force,
    };
    simemu_pipeline::simulate(reg, &request, &Terminal::new())?;
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
        crate::output::outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let names: Vec<&str> = sim.params().iter().map(|p| p.name.as_str()).collect();
    crate::output::outln!(
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
            crate::output::outln!(
                "{}",
                arrays
                    .iter()
                    .map(|(k, _)| format!("{k:>14}"))
                    .collect::<String>()
            );
            for i in 0..arrays[0].1.len() {
                crate::output::outln!(
                    "{}",
                    arrays
                        .iter()
                        .map(|(_, v)| format!("{:>14.6e}", v.get(i).copied().unwrap_or(f64::NAN)))
                        .collect::<String>()
                );
            }
        }
        for (k, v) in obj.iter().filter(|(_, v)| !v.is_array()) {
            crate::output::outln!("{k} = {v}");
        }
    }
    Ok(())
}
