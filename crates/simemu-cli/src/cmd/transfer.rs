//! `simemu import` and `simemu export`: other tools' files in and out, through the
//! format plugins.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use simemu_core::{Dataset, Registry};

use super::{merge_options, usage};

#[derive(Args)]
pub struct ImportArgs {
    /// Files, directories (their files of the format's extensions) or quoted glob
    /// patterns ("maps/*.fits"); read in sorted order.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The dataset to write.
    #[arg(long)]
    pub out: PathBuf,
    /// The format (default: from the first input's extension; `simemu list formats`).
    #[arg(long)]
    pub format: Option<String>,
    /// Name of the dataset field the data become (default: `data`).
    #[arg(long)]
    pub field: Option<String>,
    /// Side angle in degrees, for files that do not carry it (FITS: the ANGLE keyword).
    #[arg(long = "angle-deg")]
    pub angle_deg: Option<f64>,
    /// `.npz`: the archive's array that holds the samples.
    #[arg(long)]
    pub array: Option<String>,
    /// Any other format option, key=value; repeatable.
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Samples per shard file.
    #[arg(long = "shard-size", default_value_t = simemu_core::dataset::DEFAULT_SHARD_SIZE)]
    pub shard_size: usize,
    /// Replace an existing dataset at --out.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    /// A dataset directory or a .npy stack.
    pub dataset: PathBuf,
    /// The format: fits (a directory of maps), npy or npz (one file).
    #[arg(long)]
    pub format: String,
    /// Output directory (fits) or file (npy, npz).
    #[arg(long)]
    pub out: PathBuf,
    /// The field to export (default: the dataset's only field; formats with a fixed
    /// multi-field layout, such as calogan, write all of theirs).
    #[arg(long)]
    pub field: Option<String>,
    /// `.npz`: deflate the members, as np.savez_compressed does.
    #[arg(long)]
    pub compressed: bool,
    /// Any other format option, key=value; repeatable.
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Replace an existing output.
    #[arg(long)]
    pub force: bool,
}

pub fn import(reg: &Registry, a: &ImportArgs) -> Result<()> {
    if a.shard_size == 0 {
        return Err(usage("--shard-size must be at least 1"));
    }
    let mut options = serde_json::Map::new();
    if let Some(f) = &a.field {
        options.insert("field".into(), f.clone().into());
    }
    if let Some(x) = a.angle_deg {
        options.insert("angle_deg".into(), x.into());
    }
    if let Some(x) = &a.array {
        options.insert("array".into(), x.clone().into());
    }
    let options = merge_options(serde_json::Value::Object(options), &a.options)?;
    // A directory or a pattern says nothing of the format: look at what it expands to
    // under every known extension when --format is not given.
    let entry = match &a.format {
        Some(n) => reg.format(n)?,
        None => {
            let all: Vec<&str> = reg
                .formats()
                .flat_map(|f| f.extensions.iter().map(String::as_str))
                .collect();
            let files = simemu_core::formats::expand_inputs(&a.inputs, &all)?;
            reg.format_for_path(&files[0])?
        }
    };
    let extensions: Vec<&str> = entry.extensions.iter().map(String::as_str).collect();
    let files = simemu_core::formats::expand_inputs(&a.inputs, &extensions)?;
    let inputs: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    simemu_core::fsutil::refuse_overlap(&a.out, &inputs)?;
    let m = simemu_core::formats::import_dataset(
        entry.format.as_ref(),
        &files,
        &options,
        &a.out,
        a.shard_size,
        a.force,
    )
    .with_context(|| format!("importing {} file(s) as {}", files.len(), entry.name))?;
    let fields: Vec<String> = m
        .fields
        .iter()
        .map(|f| format!("'{}' {:?} {:?}", f.name, f.shape, f.dtype))
        .collect();
    let angle = match &m.fields[..] {
        [f] if f.shape.len() == 2 => f
            .attr_f64("angle_deg")
            .map(|x| format!(", side angle {x}°"))
            .unwrap_or_else(|| {
                ", no side angle (give --angle-deg to statistics that need one)".into()
            }),
        _ => String::new(),
    };
    crate::ui::note(&format!(
        "imported {} sample(s) from {} file(s) ({}) into {}: {}{angle}",
        m.count,
        files.len(),
        entry.name,
        a.out.display(),
        fields.join(", "),
    ));
    Ok(())
}

pub fn export(reg: &Registry, a: &ExportArgs) -> Result<()> {
    let entry = reg.format(&a.format)?;
    simemu_core::fsutil::refuse_overlap(&a.out, &[&a.dataset])?;
    let ds = Dataset::open(&a.dataset)?;
    let mut options = serde_json::Map::new();
    if a.compressed {
        options.insert("compressed".into(), true.into());
    }
    let options = merge_options(serde_json::Value::Object(options), &a.options)?;
    let s = entry
        .format
        .export(&ds, a.field.as_deref(), &a.out, &options, a.force)
        .with_context(|| format!("exporting {} as {}", a.dataset.display(), entry.name))?;
    crate::ui::note(&format!(
        "exported {} sample(s) ({}) to {} ({} file(s), {})",
        s.count,
        s.fields.join(", "),
        s.path.display(),
        s.files,
        entry.name
    ));
    Ok(())
}
