//! CaloGAN's HDF5 files as the `calogan` format (cargo feature `hdf5`).
//!
//! The layout of the published dataset (Mendeley Data doi 10.17632/pvn3xc3wy5.1,
//! written by CaloGAN's `generation/convert.py` with h5py): one file per particle
//! with datasets `layer_0` (N, 3, 96), `layer_1` (N, 12, 12), `layer_2` (N, 12, 6)
//! and `overflow` (N, 3) of deposited energy in MeV, and `energy` (N, 1) — or (N,) —
//! of incident energy in GeV. Imports give samples with the `calorimeter`
//! simulator's fields and its `energy` parameter, so an imported file is validated
//! against simulated or generated showers without conversion; exports write the
//! same layout, in the dataset's float type, with `energy` as (N, 1) float64 so
//! that a round trip is exact.

use std::path::{Path, PathBuf};

use hdf5_metno as h5;
use simemu_core::formats::{ExportSummary, Format, ImportLayout, ImportSink};
use simemu_core::{Array, DType, Dataset, Error, Field, FieldSpec, Result, Sample};

use crate::LAYER_CELLS;

pub const FORMAT_NAME: &str = "calogan";
/// The file extensions `simemu import` recognises as CaloGAN files.
pub const EXTENSIONS: &[&str] = &["h5", "hdf5"];
const ENERGY: &str = "energy";
/// Showers read or written per block: bounds memory for files of 100k showers.
const BLOCK: usize = 1024;

/// The per-shower datasets, in field order, with their per-shower shapes.
fn parts() -> Vec<(String, Vec<usize>)> {
    let mut parts: Vec<(String, Vec<usize>)> = LAYER_CELLS
        .iter()
        .enumerate()
        .map(|(l, &(nx, ny))| (format!("layer_{l}"), vec![nx, ny]))
        .collect();
    parts.push(("overflow".into(), vec![3]));
    parts
}

pub(crate) fn h5_error<'a>(path: &'a Path, what: &str) -> impl Fn(h5::Error) -> Error + 'a {
    let what = what.to_string();
    move |e| Error::bad_file(path, format!("{what}: {e}"))
}

/// The options `calogan` accepts: none (its layout is fixed).
fn refuse_options(options: &serde_json::Value) -> Result<()> {
    match options.as_object() {
        Some(o) if !o.is_empty() => Err(Error::Option(format!(
            "{FORMAT_NAME}: option '{}' does not apply (the CaloGAN layout fixes every field's name and shape)",
            o.keys().next().expect("non-empty")
        ))),
        _ => Ok(()),
    }
}

/// What one input file holds, checked against CaloGAN's layout.
struct Inspected {
    path: PathBuf,
    count: usize,
    dtype: DType,
}

fn inspect(path: &Path) -> Result<Inspected> {
    let file = h5::File::open(path).map_err(h5_error(path, "not a readable HDF5 file"))?;
    let mut count = None;
    let mut all_f32 = true;
    let mut check_count = |name: &str, n: usize| -> Result<()> {
        match count {
            None => {
                count = Some(n);
                Ok(())
            }
            Some(c) if c == n => Ok(()),
            Some(c) => Err(Error::bad_file(
                path,
                format!("'{name}' holds {n} showers but the datasets before it hold {c}"),
            )),
        }
    };
    for (name, shape) in parts() {
        let ds = file.dataset(&name).map_err(|_| {
            Error::bad_file(
                path,
                format!("no dataset '{name}' (a CaloGAN file holds layer_0, layer_1, layer_2, overflow and energy)"),
            )
        })?;
        let found = ds.shape();
        if found.len() != shape.len() + 1 || found[1..] != shape[..] {
            return Err(Error::bad_file(
                path,
                format!(
                    "'{name}' has shape {found:?}, expected (N, {})",
                    join(&shape)
                ),
            ));
        }
        check_count(&name, found[0])?;
        all_f32 &= ds
            .dtype()
            .map_err(h5_error(path, &format!("'{name}' type")))?
            .is::<f32>();
    }
    let energy = file
        .dataset(ENERGY)
        .map_err(|_| Error::bad_file(path, "no dataset 'energy' (incident energy in GeV)"))?;
    let shape = energy.shape();
    if !(shape.len() == 1 || (shape.len() == 2 && shape[1] == 1)) {
        return Err(Error::bad_file(
            path,
            format!("'energy' has shape {shape:?}, expected (N, 1) or (N,)"),
        ));
    }
    check_count(ENERGY, shape[0])?;
    Ok(Inspected {
        path: path.to_path_buf(),
        count: count.expect("layouts have parts"),
        dtype: if all_f32 { DType::F32 } else { DType::F64 },
    })
}

/// Rows `rows` of an `ndim`-dimensional dataset, every index of the other axes.
pub(crate) fn rows_selection(rows: std::ops::Range<usize>, ndim: usize) -> h5::Selection {
    let mut axes = vec![h5::SliceOrIndex::from(rows)];
    axes.extend((1..ndim).map(|_| h5::SliceOrIndex::from(..)));
    h5::Hyperslab::from(axes).into()
}

fn join(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn field_specs(dtype: DType) -> Vec<FieldSpec> {
    parts()
        .into_iter()
        .map(|(name, shape)| FieldSpec::new(name, shape, dtype).with_attr("units", "MeV"))
        .collect()
}

/// Rows `rows` of dataset `name`, flattened, in `dtype`.
pub(crate) fn read_rows(
    file: &h5::File,
    path: &Path,
    name: &str,
    rows: std::ops::Range<usize>,
    dtype: DType,
) -> Result<Array> {
    let ds = file
        .dataset(name)
        .map_err(h5_error(path, &format!("opening '{name}'")))?;
    let what = format!("reading '{name}' rows {}..{}", rows.start, rows.end);
    let rows = rows_selection(rows, ds.ndim());
    Ok(match dtype {
        DType::F32 => Array::F32(
            ds.read_slice::<f32, _, ndarray::IxDyn>(rows)
                .map_err(h5_error(path, &what))?
                .iter()
                .copied()
                .collect(),
        ),
        DType::F64 => Array::F64(
            ds.read_slice::<f64, _, ndarray::IxDyn>(rows)
                .map_err(h5_error(path, &what))?
                .iter()
                .copied()
                .collect(),
        ),
    })
}

/// Pushes every shower of `input` into `sink`, read in the element type of `specs`.
fn stream(input: &Inspected, specs: &[FieldSpec], sink: &mut dyn ImportSink) -> Result<()> {
    let path = &input.path;
    let file = h5::File::open(path).map_err(h5_error(path, "not a readable HDF5 file"))?;
    let mut start = 0;
    while start < input.count {
        let rows = start..(start + BLOCK).min(input.count);
        let n = rows.len();
        let blocks = specs
            .iter()
            .map(|s| read_rows(&file, path, &s.name, rows.clone(), s.dtype))
            .collect::<Result<Vec<_>>>()?;
        let energies = match read_rows(&file, path, ENERGY, rows.clone(), DType::F64)? {
            Array::F64(v) => v,
            Array::F32(_) => unreachable!("read as f64"),
        };
        for (i, &e) in energies.iter().enumerate() {
            let origin = format!("{} shower {}", path.display(), start + i);
            let mut fields = Vec::with_capacity(specs.len());
            for (spec, block) in specs.iter().zip(&blocks) {
                let per: usize = spec.shape.iter().product();
                let data = block.slice(i * per, per);
                if let Some(k) = data.first_non_finite() {
                    return Err(Error::Data(format!(
                        "{origin}: non-finite energy in '{}' cell {k}",
                        spec.name
                    )));
                }
                fields.push(Field::new(spec.name.clone(), spec.shape.clone(), data)?);
            }
            if !(e.is_finite() && e > 0.0) {
                return Err(Error::Data(format!(
                    "{origin}: incident energy {e} GeV is not a positive number"
                )));
            }
            sink.push(
                Sample {
                    fields,
                    params: vec![e],
                },
                &origin,
            )?;
        }
        start += n;
    }
    Ok(())
}

/// CaloGAN's HDF5 layout (see the module documentation).
pub struct CaloganFormat;

impl Format for CaloganFormat {
    fn name(&self) -> &str {
        FORMAT_NAME
    }

    fn import(
        &self,
        inputs: &[PathBuf],
        options: &serde_json::Value,
        sink: &mut dyn ImportSink,
    ) -> Result<()> {
        refuse_options(options)?;
        let inspected = inputs
            .iter()
            .map(|p| inspect(p))
            .collect::<Result<Vec<_>>>()?;
        let specs = field_specs(DType::common(inspected.iter().map(|i| i.dtype)));
        sink.begin(ImportLayout {
            fields: specs.clone(),
            param_names: vec![ENERGY.into()],
            expected: Some(inspected.iter().map(|i| i.count).sum()),
        })?;
        for input in &inspected {
            stream(input, &specs, sink)?;
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
        refuse_options(options)?;
        if let Some(f) = field {
            return Err(Error::Option(format!(
                "{FORMAT_NAME} writes every part of a shower (layer_0, layer_1, layer_2, overflow); --field {f} does not apply"
            )));
        }
        let specs = fields_of_shapes(dataset, &parts(), "CaloGAN's")?;
        let energy_column = param_column(
            dataset,
            ENERGY,
            "CaloGAN files store each shower's incident energy",
        )?;
        write_atomically(out, overwrite, |tmp| {
            write_file(tmp, dataset, &specs, energy_column)
        })?;
        Ok(ExportSummary {
            count: dataset.len(),
            files: 1,
            path: out.to_path_buf(),
            fields: specs.iter().map(|s| s.name.clone()).collect(),
        })
    }
}

/// The dataset's fields named in `expected`, each checked to have the shape
/// given beside its name; `whose` names the layout in the error.
pub(crate) fn fields_of_shapes<'a>(
    dataset: &'a Dataset,
    expected: &[(String, Vec<usize>)],
    whose: &str,
) -> Result<Vec<&'a FieldSpec>> {
    expected
        .iter()
        .map(|(name, shape)| {
            let spec = dataset.field_spec(name)?;
            if &spec.shape != shape {
                return Err(Error::Data(format!(
                    "{}: field '{name}' has shape {:?}; {whose} is {shape:?}",
                    dataset.path().display(),
                    spec.shape
                )));
            }
            Ok(spec)
        })
        .collect()
}

/// The column of the dataset's parameter `name`; `why` says what the files
/// need it for.
pub(crate) fn param_column(dataset: &Dataset, name: &str, why: &str) -> Result<usize> {
    dataset
        .param_names()
        .iter()
        .position(|n| n == name)
        .ok_or_else(|| {
            Error::Data(format!(
                "{}: no parameter '{name}' (parameters: {:?}); {why}",
                dataset.path().display(),
                dataset.param_names()
            ))
        })
}

/// Writes an HDF5 file at `out` through `write`, which fills a temporary file
/// beside it that replaces `out` only once complete and synced; an existing
/// `out` is replaced only with `overwrite`, and only when it is HDF5.
pub(crate) fn write_atomically(
    out: &Path,
    overwrite: bool,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    if out.is_dir() {
        return Err(Error::bad_file(out, "is a directory; give a file name"));
    }
    simemu_core::fsutil::check_output(
        out,
        overwrite,
        simemu_core::fsutil::OutputKind::File {
            format: "HDF5",
            magic: b"\x89HDF\r\n\x1a\n",
        },
    )?;
    let tmp = simemu_core::fsutil::TempFile::new(out)?;
    write(tmp.path())?;
    std::fs::File::open(tmp.path())
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(tmp.path(), e))?;
    tmp.persist()
}

fn write_file(
    path: &Path,
    dataset: &Dataset,
    specs: &[&FieldSpec],
    energy_column: usize,
) -> Result<()> {
    let n = dataset.len();
    let file = h5::File::create(path).map_err(h5_error(path, "creating the file"))?;
    let mut targets = Vec::with_capacity(specs.len());
    for spec in specs {
        let mut shape = vec![n];
        shape.extend_from_slice(&spec.shape);
        let builder = match spec.dtype {
            DType::F32 => file.new_dataset::<f32>(),
            DType::F64 => file.new_dataset::<f64>(),
        };
        targets.push(
            builder
                .shape(shape)
                .create(spec.name.as_str())
                .map_err(h5_error(path, &format!("creating '{}'", spec.name)))?,
        );
    }
    let energy = file
        .new_dataset::<f64>()
        .shape([n, 1])
        .create(ENERGY)
        .map_err(h5_error(path, "creating 'energy'"))?;
    let mut start = 0;
    while start < n {
        let count = BLOCK.min(n - start);
        let samples = dataset.read_samples(start, count)?;
        let rows = start..start + count;
        for (spec, target) in specs.iter().zip(&targets) {
            let index = dataset.field_index(Some(&spec.name))?;
            let mut shape = vec![count];
            shape.extend_from_slice(&spec.shape);
            let shape = ndarray::IxDyn(&shape);
            let what = format!("writing '{}'", spec.name);
            let mut f32s = Vec::new();
            let mut f64s = Vec::new();
            for s in &samples {
                match &s.fields[index].data {
                    Array::F32(v) => f32s.extend_from_slice(v),
                    Array::F64(v) => f64s.extend_from_slice(v),
                }
            }
            let view_error = |e: ndarray::ShapeError| {
                Error::Data(format!("'{}': {e} (a sample of the wrong size)", spec.name))
            };
            match spec.dtype {
                DType::F32 => target.write_slice(
                    ndarray::ArrayView::from_shape(shape, &f32s).map_err(view_error)?,
                    rows_selection(rows.clone(), spec.shape.len() + 1),
                ),
                DType::F64 => target.write_slice(
                    ndarray::ArrayView::from_shape(shape, &f64s).map_err(view_error)?,
                    rows_selection(rows.clone(), spec.shape.len() + 1),
                ),
            }
            .map_err(h5_error(path, &what))?;
        }
        let e: Vec<f64> = (start..start + count)
            .map(|i| dataset.params_of(i)[energy_column])
            .collect();
        let view = ndarray::ArrayView::from_shape((count, 1), &e).expect("one column");
        energy
            .write_slice(view, rows_selection(rows, 2))
            .map_err(h5_error(path, "writing 'energy'"))?;
        start += count;
    }
    file.flush().map_err(h5_error(path, "flushing"))?;
    file.close().map_err(h5_error(path, "closing"))
}
