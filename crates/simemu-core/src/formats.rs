//! Foreign file formats: the [`Format`] trait that importers and exporters implement,
//! and the streaming glue that turns an import into a [`Dataset`].
//!
//! The core knows no file layout but its own dataset directory. A format plugin
//! (an image format, `.npz`, HDF5, …) reads its files and *pushes* samples into an
//! [`ImportSink`]; [`import_dataset`] provides the sink that streams them into a
//! new dataset, so an import larger than memory needs one shard's worth of memory.
//! Exports pull samples from a [`Dataset`] chunk by chunk and must be atomic:
//! nothing appears at the destination until it is complete.

use std::path::{Path, PathBuf};

use crate::dataset::{source_record, DatasetSpec, DatasetWriter};
use crate::sample::{FieldSpec, Sample};
use crate::{Dataset, Error, Manifest, Result};

/// What every imported sample looks like, declared before the first sample.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportLayout {
    /// The fields each sample holds, in order (name, shape, element type, attributes).
    pub fields: Vec<FieldSpec>,
    /// Names of the parameters each sample carries (empty when the files carry none).
    pub param_names: Vec<String>,
    /// How many samples will follow, when the format knows it up front.
    pub expected: Option<usize>,
}

/// Where an importer sends what it reads.
pub trait ImportSink {
    /// Called once, before any sample.
    fn begin(&mut self, layout: ImportLayout) -> Result<()>;
    /// One sample; `origin` names the file (and position in it) for error messages.
    fn push(&mut self, sample: Sample, origin: &str) -> Result<()>;
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportSummary {
    /// Samples written.
    pub count: usize,
    /// Files written (the output itself for single-file formats).
    pub files: usize,
    /// The dataset fields written.
    pub fields: Vec<String>,
    /// The destination.
    pub path: PathBuf,
}

/// A foreign file format: it may import, export, or both.
///
/// `options` are the format's own (declared in its registry entry, e.g. the name to
/// give the imported field); unknown options must be refused.
pub trait Format: Send + Sync {
    fn name(&self) -> &str;

    /// Reads `inputs` (files the user named, already expanded from directories and
    /// globs by [`expand_inputs`]) and pushes every sample into `sink`, calling
    /// [`ImportSink::begin`] first. Every sample must match the declared layout.
    fn import(
        &self,
        inputs: &[PathBuf],
        options: &serde_json::Value,
        sink: &mut dyn ImportSink,
    ) -> Result<()> {
        let _ = (inputs, options, sink);
        Err(Error::Other(format!(
            "format '{}' cannot import (export only)",
            self.name()
        )))
    }

    /// Writes `dataset` to `out` atomically, replacing an existing `out` only when
    /// `overwrite` is set. Formats that hold one array per sample write the named
    /// field (or the only one: [`Dataset::field_index`]); formats with a fixed
    /// multi-part layout write all of theirs and refuse a `field`.
    fn export(
        &self,
        dataset: &Dataset,
        field: Option<&str>,
        out: &Path,
        options: &serde_json::Value,
        overwrite: bool,
    ) -> Result<ExportSummary> {
        let _ = (dataset, field, out, options, overwrite);
        Err(Error::Other(format!(
            "format '{}' cannot export (import only)",
            self.name()
        )))
    }
}

/// Imports with `format` into a new dataset at `out`, streaming samples into shards
/// of `shard_size`. Nothing appears at `out` unless every input was read and every
/// sample was valid.
pub fn import_dataset(
    format: &dyn Format,
    inputs: &[PathBuf],
    options: &serde_json::Value,
    out: &Path,
    shard_size: usize,
    overwrite: bool,
) -> Result<Manifest> {
    if inputs.is_empty() {
        return Err(Error::Data("nothing to import: no input files".into()));
    }
    let mut sink = DatasetSink {
        out: out.to_path_buf(),
        shard_size,
        overwrite,
        source: source_record(
            "import",
            format.name(),
            serde_json::json!({
                "inputs": inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "options": options,
            }),
        ),
        writer: None,
        expected: None,
    };
    format.import(inputs, options, &mut sink)?;
    let expected = sink.expected;
    let writer = sink.writer.ok_or_else(|| {
        Error::Data(format!(
            "format '{}' found no samples in the inputs",
            format.name()
        ))
    })?;
    if let Some(n) = expected {
        if writer.count() != n {
            return Err(Error::Data(format!(
                "format '{}' announced {n} samples but delivered {}",
                format.name(),
                writer.count()
            )));
        }
    }
    writer.finish()
}

struct DatasetSink {
    out: PathBuf,
    shard_size: usize,
    overwrite: bool,
    source: serde_json::Map<String, serde_json::Value>,
    writer: Option<DatasetWriter>,
    expected: Option<usize>,
}

impl ImportSink for DatasetSink {
    fn begin(&mut self, layout: ImportLayout) -> Result<()> {
        if self.writer.is_some() {
            return Err(Error::Other("import began twice".into()));
        }
        let mut spec = DatasetSpec::new(layout.fields, layout.param_names);
        spec.shard_size = self.shard_size;
        spec.source = std::mem::take(&mut self.source);
        self.expected = layout.expected;
        self.writer = Some(DatasetWriter::create(&self.out, spec, self.overwrite)?);
        Ok(())
    }

    fn push(&mut self, sample: Sample, origin: &str) -> Result<()> {
        let w = self
            .writer
            .as_mut()
            .ok_or_else(|| Error::Other("a sample arrived before the import began".into()))?;
        w.push(&sample, None)
            .map_err(|e| Error::Data(format!("{origin}: {e}")))
    }
}

/// Expands the user's inputs into a sorted list of files: a directory stands for the
/// files in it whose extension is one of `extensions` (case-insensitive); a path with
/// `*`, `?` or `[` that does not exist as such is a glob pattern. Files are taken in
/// lexicographic order of their paths so that an import is reproducible.
pub fn expand_inputs(inputs: &[PathBuf], extensions: &[&str]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        let text = input.to_string_lossy();
        let (mut found, none_found) = if input.is_dir() {
            let mut found = Vec::new();
            let entries = std::fs::read_dir(input).map_err(|e| Error::io(input, e))?;
            for entry in entries {
                let path = entry.map_err(|e| Error::io(input, e))?.path();
                if path.is_file() && has_extension(&path, extensions) {
                    found.push(path);
                }
            }
            let message = format!(
                "directory holds no files ending in {}",
                extensions.join(", ")
            );
            (found, message)
        } else if !input.exists() && text.contains(['*', '?', '[']) {
            let paths = glob::glob(&text)
                .map_err(|e| Error::Option(format!("bad glob pattern '{text}': {e}")))?;
            let mut found = Vec::new();
            for p in paths {
                let p = p.map_err(|e| {
                    let path = e.path().to_path_buf();
                    Error::io(path, e.into())
                })?;
                if p.is_file() {
                    found.push(p);
                }
            }
            (found, "the pattern matches no file".to_string())
        } else if input.is_file() {
            out.push(input.clone());
            continue;
        } else {
            return Err(Error::bad_file(input, "no such file or directory"));
        };
        if found.is_empty() {
            return Err(Error::bad_file(input, none_found));
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Whether `path` ends in `.EXT` for one of `extensions` (case-insensitive, so that
/// `MAP.IMG` is an `img` file; multi-part extensions such as `img.gz` work too).
pub fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    extensions.iter().any(|e| {
        name.len() > e.len() + 1 && name.ends_with(&format!(".{}", e.to_ascii_lowercase()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Array, DType, Field};

    /// Emits `n` constant 2×2 samples; `bad_at` makes one of them non-finite.
    struct Constant {
        n: usize,
        bad_at: Option<usize>,
    }

    impl Format for Constant {
        fn name(&self) -> &str {
            "constant"
        }
        fn import(
            &self,
            _inputs: &[PathBuf],
            _options: &serde_json::Value,
            sink: &mut dyn ImportSink,
        ) -> Result<()> {
            sink.begin(ImportLayout {
                fields: vec![FieldSpec::new("x", vec![2, 2], DType::F32)],
                param_names: vec!["a".into()],
                expected: Some(self.n),
            })?;
            for i in 0..self.n {
                let v = if Some(i) == self.bad_at {
                    f32::NAN
                } else {
                    i as f32
                };
                let f = Field::new("x", vec![2, 2], Array::F32(vec![v; 4]))?;
                sink.push(Sample::single(f, vec![i as f64]), &format!("item {i}"))?;
            }
            Ok(())
        }
    }

    #[test]
    fn import_streams_into_shards_and_records_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ds");
        let inputs = [PathBuf::from("whatever")];
        let m = import_dataset(
            &Constant { n: 5, bad_at: None },
            &inputs,
            &serde_json::json!({}),
            &out,
            2,
            false,
        )
        .unwrap();
        assert_eq!(m.count, 5);
        assert_eq!(m.shards.len(), 3);
        assert_eq!(m.source["kind"], "import");
        assert_eq!(m.source["name"], "constant");
        let ds = Dataset::open(&out).unwrap();
        assert_eq!(ds.params_of(4), &[4.0]);
        assert_eq!(
            ds.read_samples(3, 1).unwrap()[0].fields[0].data,
            Array::F32(vec![3.0; 4])
        );
    }

    #[test]
    fn a_bad_sample_leaves_nothing_behind_and_names_its_origin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ds");
        let e = import_dataset(
            &Constant {
                n: 5,
                bad_at: Some(3),
            },
            &[PathBuf::from("x")],
            &serde_json::json!({}),
            &out,
            2,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("item 3") && e.contains("non-finite"), "{e}");
        assert!(!out.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temporary files left"
        );
    }

    #[test]
    fn inputs_expand_from_directories_and_globs_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.img", "a.IMG", "c.txt", "d.img"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let files = expand_inputs(&[dir.path().to_path_buf()], &["img"]).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.IMG", "b.img", "d.img"]);
        let pattern = dir.path().join("[bd].img");
        assert_eq!(expand_inputs(&[pattern], &["img"]).unwrap().len(), 2);
        let e = expand_inputs(&[dir.path().join("nothing*.img")], &["img"]).unwrap_err();
        assert!(e.to_string().contains("matches no file"), "{e}");
        let e = expand_inputs(&[dir.path().join("missing.img")], &["img"]).unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
    }
}
