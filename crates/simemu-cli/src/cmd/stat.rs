//! `simemu stat`: one statistic on every sample of a dataset.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};
use simemu_core::simulate::Shard;
use simemu_core::{Dataset, Registry};
use simemu_validate::measure::{build_statistic, measure_dataset, Measurement};
use simemu_validate::StatRequest;

use crate::{ui, StatOptionArgs};

#[derive(Args)]
pub struct StatArgs {
    /// Statistic name (see `simemu list statistics`).
    pub name: String,
    /// A dataset directory or a .npy stack.
    pub input: PathBuf,
    #[command(flatten)]
    pub options: StatOptionArgs,
    /// Dataset whose values define quantile bins (default: the input itself).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Write the per-sample values as JSON here (large results get .npy
    /// sidecars), or to standard output with `-` (values inline).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Replace an existing JSON file that `simemu stat` wrote.
    #[arg(long)]
    pub force: bool,
    /// Compute only part K of N (0-based); merge the JSON parts with `simemu merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
}

/// The requests for the statistics `names` with the options given on the
/// command line (`simemu_pipeline::statistic_requests_for`'s rule: each
/// statistic gets the options it declares, the angle is a fact about the data).
pub fn requests(reg: &Registry, names: &[String], o: &StatOptionArgs) -> Result<Vec<StatRequest>> {
    let mut given = serde_json::Map::new();
    if let Some(t) = &o.thresholds {
        given.insert("thresholds".into(), t.clone().into());
    }
    if let Some(e) = &o.ell_edges {
        given.insert("ell_edges".into(), e.clone().into());
    }
    if o.sigma_units {
        given.insert("sigma_units".into(), true.into());
    }
    if let Some(a) = o.angle_deg {
        given.insert("angle_deg".into(), a.into());
    }
    if let serde_json::Value::Object(m) =
        simemu_core::params::parse_option_assignments(&o.stat_options)?
    {
        given.extend(m);
    }
    let flag = |name: &str| format!("--{}", name.replace('_', "-"));
    Ok(simemu_pipeline::statistic_requests_for(
        reg, names, &given, &flag,
    )?)
}

/// The JSON written by `simemu stat --json`.
#[derive(Serialize, Deserialize)]
pub struct StatFile {
    pub statistic: String,
    pub options: serde_json::Value,
    pub x_name: String,
    pub x: Vec<f64>,
    pub input: String,
    pub count: usize,
    /// Global index of the first sample (parts of a sharded computation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<simemu_core::dataset::PartEntry>,
    /// Per component: `[[sample 0 values...], ...]`, or `{"npy": "file"}` for a sidecar.
    pub components: serde_json::Map<String, serde_json::Value>,
}

const SIDECAR_THRESHOLD: usize = 100_000;

/// How a statistic file is recognised for `--force`.
const STAT_FILE: simemu_core::fsutil::OutputKind =
    simemu_core::fsutil::OutputKind::Json { key: "statistic" };

/// `--json -`: standard output.
fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn write_stat_file(
    path: &Path,
    m: &Measurement,
    input: &str,
    part: Option<simemu_core::dataset::PartEntry>,
) -> Result<()> {
    let mut components = serde_json::Map::new();
    let stem = path
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    for (name, values) in m.component_names.iter().zip(&m.values) {
        let n = values.len() * m.x.len();
        if n > SIDECAR_THRESHOLD && !is_stdout(path) {
            let file = format!("{stem}.{name}.npy");
            let flat: Vec<f64> = values.iter().flatten().cloned().collect();
            simemu_core::npy::write(
                &path.with_file_name(&file),
                &[values.len(), m.x.len()],
                &flat,
            )?;
            components.insert(name.clone(), serde_json::json!({"npy": file}));
        } else {
            components.insert(name.clone(), serde_json::to_value(values)?);
        }
    }
    let f = StatFile {
        statistic: m.statistic.clone(),
        options: m.options.clone(),
        x_name: m.x_name.clone(),
        x: m.x.clone(),
        input: input.into(),
        count: m.count(),
        part,
        components,
    };
    if is_stdout(path) {
        let mut text = serde_json::to_string_pretty(&f)?;
        text.push('\n');
        crate::output::out!("{text}");
        Ok(())
    } else {
        simemu_core::fsutil::write_json_atomic(path, &f)?;
        Ok(())
    }
}

fn read_stat_file(path: &Path) -> Result<(StatFile, Vec<Vec<Vec<f64>>>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let f: StatFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a simemu statistic file", path.display()))?;
    let mut values = Vec::new();
    for (name, v) in &f.components {
        let rows: Vec<Vec<f64>> = match v.get("npy").and_then(|x| x.as_str()) {
            Some(file) => {
                simemu_core::fsutil::check_plain_name(file)
                    .map_err(|e| anyhow::anyhow!("{}: sidecar {e}", path.display()))?;
                let (shape, flat) = simemu_core::npy::read::<f64>(&path.with_file_name(file))?;
                if shape.len() != 2 || shape[1] != f.x.len() {
                    anyhow::bail!("{}: sidecar {file} has shape {shape:?}", path.display());
                }
                flat.chunks(shape[1]).map(|c| c.to_vec()).collect()
            }
            None => serde_json::from_value(v.clone())
                .with_context(|| format!("{}: component {name}", path.display()))?,
        };
        values.push(rows);
    }
    Ok((f, values))
}

pub fn merge_parts(parts: &[PathBuf], out: &Path, force: bool) -> Result<()> {
    simemu_core::fsutil::check_output(out, force, STAT_FILE)?;
    let mut loaded = parts
        .iter()
        .map(|p| read_stat_file(p).map(|r| (p, r)))
        .collect::<Result<Vec<_>>>()?;
    loaded.sort_by_key(|(_, (f, _))| f.part.map(|p| p.start).unwrap_or(0));
    let first = &loaded[0].1 .0;
    let total = first.part.map(|p| p.total);
    let mut next = 0;
    let mut values: Vec<Vec<Vec<f64>>> = vec![Vec::new(); first.components.len()];
    for (p, (f, v)) in &loaded {
        if f.statistic != first.statistic
            || f.options != first.options
            || f.x != first.x
            || f.input != first.input
        {
            anyhow::bail!(
                "{}: a different statistic, options or input than {}",
                p.display(),
                loaded[0].0.display()
            );
        }
        let start = f.part.map(|q| q.start).unwrap_or(next);
        if start != next || f.part.map(|q| q.total) != total {
            anyhow::bail!(
                "{}: part starts at sample {start}, expected {next}",
                p.display()
            );
        }
        next += f.count;
        for (acc, rows) in values.iter_mut().zip(v) {
            acc.extend(rows.iter().cloned());
        }
    }
    if let Some(t) = total {
        if next != t {
            anyhow::bail!("the parts hold {next} of the {t} samples");
        }
    }
    let m = Measurement {
        statistic: first.statistic.clone(),
        options: first.options.clone(),
        x_name: first.x_name.clone(),
        x: first.x.clone(),
        component_names: first.components.keys().cloned().collect(),
        values,
    };
    write_stat_file(out, &m, &first.input, None)?;
    tracing::info!(
        "merged {} parts into {} ({next} samples)",
        loaded.len(),
        out.display()
    );
    Ok(())
}

pub fn run(reg: &Registry, a: &StatArgs) -> Result<()> {
    if let Some(path) = a.json.as_deref().filter(|p| !is_stdout(p)) {
        simemu_core::fsutil::refuse_overlap(path, &[&a.input])?;
        simemu_core::fsutil::check_output(path, a.force, STAT_FILE)?;
    }
    let ds = Dataset::open(&a.input)?;
    let reference = match &a.reference {
        Some(r) => {
            let r = Dataset::open(r)?;
            r.check_compatible(&ds)?;
            r
        }
        None => ds.clone(),
    };
    let req = requests(reg, std::slice::from_ref(&a.name), &a.options)?.remove(0);
    let field = ds.field_index(a.options.field.as_deref())?;
    let rfield = field.min(reference.fields().len() - 1);
    let stat = build_statistic(
        reg,
        &req.name,
        &req.options,
        &reference,
        rfield,
        Some(&ds.fields()[field]),
    )?;
    let shard = a.shard.as_deref().map(Shard::parse).transpose()?;
    let range = shard.map(|s| s.range(ds.len())).unwrap_or(0..ds.len());
    let pb = ui::bar(range.len() as u64, &a.name);
    let m = measure_dataset(&[stat.as_ref()], &ds, range.clone(), &|n| {
        pb.set_position(n as u64)
    })?
    .remove(0);
    pb.finish_and_clear();
    match &a.json {
        Some(path) => {
            let part = shard.map(|_| simemu_core::dataset::PartEntry {
                start: range.start,
                total: ds.len(),
            });
            write_stat_file(path, &m, &ds.path().display().to_string(), part)?;
            if !is_stdout(path) {
                tracing::info!("wrote {} ({} samples)", path.display(), m.count());
            }
        }
        None => print_table(&m),
    }
    Ok(())
}

fn print_table(m: &Measurement) {
    crate::output::outln!(
        "{} on {} samples (mean ± std per bin)",
        m.statistic,
        m.count()
    );
    crate::output::out!("{:>14}", m.x_name);
    for c in &m.component_names {
        crate::output::out!("{:>30}", c);
    }
    crate::output::outln!();
    let n = m.count() as f64;
    for b in 0..m.x.len() {
        crate::output::out!("{:>14.5e}", m.x[b]);
        for comp in &m.values {
            let mean = comp.iter().map(|s| s[b]).sum::<f64>() / n;
            let var = comp.iter().map(|s| (s[b] - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            crate::output::out!("{:>30}", format!("{mean:.5e} ± {:.3e}", var.sqrt()));
        }
        crate::output::outln!();
    }
}
