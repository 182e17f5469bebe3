//! `simemu info` and `simemu merge`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use simemu_core::Dataset;

use super::usage;

#[derive(Args)]
pub struct InfoArgs {
    /// A dataset directory or a .npy stack.
    pub dataset: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn info(a: &InfoArgs) -> Result<()> {
    let ds = Dataset::open(&a.dataset)?;
    let ranges = simemu_core::dataset::param_ranges(&ds);
    if a.json {
        let v = serde_json::json!({
            "path": ds.path(),
            "count": ds.len(),
            "fields": ds.fields(),
            "params": ranges.iter().map(|(k, (lo, hi))| (k.clone(), serde_json::json!([lo, hi]))).collect::<serde_json::Map<_, _>>(),
            "source": ds.manifest().source,
            "part": ds.manifest().part,
        });
        crate::output::outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    crate::output::outln!("{}: {} samples", ds.path().display(), ds.len());
    for f in ds.fields() {
        let attrs = if f.attrs.is_empty() {
            String::new()
        } else {
            format!(" {}", serde_json::Value::Object(f.attrs.clone()))
        };
        crate::output::outln!(
            "  field {:<10} shape {:?} {:?}{attrs}",
            f.name,
            f.shape,
            f.dtype
        );
    }
    for (k, (lo, hi)) in &ranges {
        if lo == hi {
            crate::output::outln!("  param {k:<10} = {lo}");
        } else {
            crate::output::outln!("  param {k:<10} in [{lo}, {hi}]");
        }
    }
    if let Some(p) = ds.manifest().part {
        crate::output::outln!(
            "  part: samples {}..{} of a run of {}",
            p.start,
            p.start + ds.len(),
            p.total
        );
    }
    let src = &ds.manifest().source;
    if !src.is_empty() {
        crate::output::outln!(
            "  source: {} '{}' (simemu {})",
            src.get("kind").and_then(|v| v.as_str()).unwrap_or("?"),
            src.get("name").and_then(|v| v.as_str()).unwrap_or("?"),
            src.get("simemu_version")
                .and_then(|v| v.as_str())
                .unwrap_or("?")
        );
        if let Some(c) = src.get("config") {
            crate::output::outln!("  config: {c}");
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct MergeArgs {
    /// The parts: dataset directories, or statistic JSON files from `simemu stat --shard`.
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    /// The merged output.
    #[arg(long)]
    pub out: PathBuf,
    /// Samples per shard file of a merged dataset.
    #[arg(long = "shard-size", default_value_t = simemu_core::dataset::DEFAULT_SHARD_SIZE)]
    pub shard_size: usize,
    #[arg(long)]
    pub force: bool,
}

pub fn merge(a: &MergeArgs) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for p in &a.parts {
        if !seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())) {
            return Err(usage(format!("the part {} is given twice", p.display())));
        }
    }
    let inputs: Vec<&std::path::Path> = a.parts.iter().map(PathBuf::as_path).collect();
    simemu_core::fsutil::refuse_overlap(&a.out, &inputs)?;
    let stat_parts = a
        .parts
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .count();
    if stat_parts == a.parts.len() {
        return super::stat::merge_parts(&a.parts, &a.out, a.force);
    }
    if stat_parts > 0 {
        return Err(usage("cannot merge statistic results with datasets"));
    }
    let parts = a
        .parts
        .iter()
        .map(|p| Dataset::open(p).with_context(|| format!("opening part {}", p.display())))
        .collect::<Result<Vec<_>>>()?;
    let m = simemu_core::dataset::merge(&parts, &a.out, a.shard_size, a.force)?;
    tracing::info!(
        "merged {} parts into {} ({} samples)",
        parts.len(),
        a.out.display(),
        m.count
    );
    Ok(())
}
