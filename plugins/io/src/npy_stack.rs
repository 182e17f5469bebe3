//! `.npy` stacks: import one or more files, export one stack.

use std::io::Write;
use std::path::{Path, PathBuf};

use simemu_core::formats::{ExportSummary, Format, ImportSink};
use simemu_core::npy::{self, NpyDType, NpyElement};
use simemu_core::{Array, DType, Dataset, Error, Result};

use crate::{ExportOptions, ImportOptions, BLOCK_SAMPLES};

pub struct NpyFormat;

impl Format for NpyFormat {
    fn name(&self) -> &str {
        "npy"
    }

    fn import(
        &self,
        inputs: &[PathBuf],
        options: &serde_json::Value,
        sink: &mut dyn ImportSink,
    ) -> Result<()> {
        let o = ImportOptions::parse("npy", options, &[])?;
        // Every header first: a shape mismatch in the last file is found before any
        // data is read, and the total is known up front.
        let mut files = Vec::new();
        for path in inputs {
            let header = npy::read_header(path)?;
            let (count, shape) =
                npy::stack_layout(&header.shape).map_err(|m| Error::bad_file(path, m))?;
            let dtype = float_dtype(header.dtype, path)?;
            if count == 0 {
                return Err(Error::bad_file(path, "holds no samples"));
            }
            files.push((path, header, count, shape, dtype));
        }
        let layouts: Vec<crate::InputLayout> = files
            .iter()
            .map(|(path, _, _, shape, dtype)| crate::InputLayout {
                path,
                shape,
                dtype: *dtype,
                param_names: vec![],
                angle: None,
            })
            .collect();
        let expected = files.iter().map(|f| f.2).sum();
        let spec = crate::begin_import(&o, &layouts, expected, sink)?;
        let per_sample: usize = spec.len();
        for (path, header, count, _, _) in &files {
            for start in (0..*count).step_by(BLOCK_SAMPLES) {
                let n = BLOCK_SAMPLES.min(count - start);
                let (offset, len) = (start * per_sample, n * per_sample);
                let block = match spec.dtype {
                    DType::F32 => Array::F32(npy::read_range(path, header, offset, len)?),
                    DType::F64 => Array::F64(npy::read_range(path, header, offset, len)?),
                };
                for k in 0..n {
                    let origin = format!("{}, sample {}", path.display(), start + k);
                    let data = block.slice(k * per_sample, per_sample);
                    crate::push_sample(sink, &spec, data, vec![], &origin)?;
                }
            }
        }
        Ok(())
    }

    fn export(
        &self,
        dataset: &Dataset,
        field: Option<&str>,
        out: &Path,
        options: &serde_json::Value,
        overwrite: bool,
    ) -> Result<ExportSummary> {
        ExportOptions::parse("npy", options, false)?;
        let index = dataset.field_index(field)?;
        let spec = &dataset.fields()[index];
        let mut shape = vec![dataset.len()];
        shape.extend_from_slice(&spec.shape);
        let file = crate::AtomicOutput::file(
            out,
            overwrite,
            simemu_core::fsutil::OutputKind::File {
                format: ".npy",
                magic: simemu_core::npy::MAGIC,
            },
        )?;
        {
            let mut w = file.writer()?;
            let header = npy::header_bytes(npy_dtype(spec.dtype), &shape);
            w.write_all(&header)
                .map_err(|e| Error::io(file.path(), e))?;
            write_field_data(dataset, index, &mut w, file.path())?;
            file.finish_writer(w)?;
        }
        file.persist()?;
        Ok(ExportSummary {
            count: dataset.len(),
            files: 1,
            fields: vec![spec.name.clone()],
            path: out.to_path_buf(),
        })
    }
}

/// Streams all of field `index` of `dataset` as little-endian C-ordered values.
pub(crate) fn write_field_data(
    dataset: &Dataset,
    index: usize,
    w: &mut impl Write,
    path: &Path,
) -> Result<()> {
    let mut bytes = Vec::new();
    for start in (0..dataset.len()).step_by(BLOCK_SAMPLES) {
        let n = BLOCK_SAMPLES.min(dataset.len() - start);
        bytes.clear();
        match dataset.read_field_range(index, start, n)? {
            Array::F32(v) => f32::write_le(&v, &mut bytes),
            Array::F64(v) => f64::write_le(&v, &mut bytes),
        }
        w.write_all(&bytes).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

pub(crate) fn npy_dtype(d: DType) -> NpyDType {
    match d {
        DType::F32 => NpyDType::F32,
        DType::F64 => NpyDType::F64,
    }
}

pub(crate) fn float_dtype(d: NpyDType, path: &Path) -> Result<DType> {
    match d {
        NpyDType::F32 => Ok(DType::F32),
        NpyDType::F64 => Ok(DType::F64),
        other => Err(Error::bad_file(
            path,
            format!("element type {other:?} is not float32 or float64"),
        )),
    }
}
