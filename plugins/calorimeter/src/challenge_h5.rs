//! The Fast Calorimeter Simulation Challenge 2022's HDF5 files as the
//! `calochallenge` format (cargo feature `hdf5`).
//!
//! A challenge file (written with h5py) holds `incident_energies`, (N, 1), and
//! `showers`, (N, voxels), both in MeV; a row of `showers` runs layer by layer
//! in the order of the dataset's binning, each layer angle-major with the
//! radius fastest ([`crate::geometry`]). The voxel count names the dataset, as
//! `evaluate.py`'s `check_file` requires: 368 (1, photons), 533 (1, pions),
//! 6,480 (2) or 40,500 (3).
//!
//! Imports give one field per layer, `layer_{id}` of shape (angles, radii) in
//! MeV, and the parameter `incident_energy` in MeV, so that the `hlf-*`
//! statistics and the harness read them like any showers. Datasets 2 and 3
//! have their regular binning built in; dataset 1's comes from its binning
//! file in the challenge's XML layout, `--option binning=FILE` (which any
//! dataset may give). Exports write the layer fields back into one row per
//! shower, in the element type of the dataset, gzip-compressed as the
//! challenge's files are, with `incident_energies` as (N, 1) float64, so that
//! a round trip is exact.
//!
//! Refused, naming the file: a missing dataset, shapes that disagree, a voxel
//! count of no dataset (or not the binning's), a NaN or negative voxel energy,
//! an incident energy that is not a positive number. An import stages its
//! dataset and an export writes a temporary file, so nothing is left behind.

use std::path::{Path, PathBuf};

use hdf5_metno as h5;
use simemu_core::formats::{ExportSummary, Format, ImportLayout, ImportSink};
use simemu_core::{Array, DType, Dataset, Error, Field, FieldSpec, Result, Sample};

use crate::geometry::{ChallengeDataset, Geometry};
use crate::hdf5::{
    fields_of_shapes, h5_error, param_column, read_rows, rows_selection, write_atomically,
};

pub const FORMAT_NAME: &str = "calochallenge";
const SHOWERS: &str = "showers";
const ENERGIES: &str = "incident_energies";
/// The parameter imports give each shower, MeV.
pub const PARAM: &str = "incident_energy";
/// Showers read or written per block: bounds memory for dataset 3's 40,500 voxels.
const BLOCK: usize = 256;
/// h5py's default gzip level.
const GZIP_LEVEL: u8 = 4;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    binning: Option<PathBuf>,
}

fn read_options(options: &serde_json::Value) -> Result<Option<Geometry>> {
    let o: Options = simemu_core::params::options_from_json(FORMAT_NAME, options)?;
    o.binning.map(|p| Geometry::from_xml_file(&p)).transpose()
}

/// The geometry of showers of `voxels` voxels: the binning given, checked
/// against the count, or the built-in one of datasets 2 and 3.
fn geometry_for(voxels: usize, given: &Option<Geometry>, what: &Path) -> Result<Geometry> {
    let Some(dataset) = ChallengeDataset::from_voxels(voxels) else {
        return Err(Error::bad_file(
            what,
            format!("showers have {voxels} voxels; the challenge's datasets have 368 (1-photons), 533 (1-pions), 6480 (2) or 40500 (3)"),
        ));
    };
    match given {
        Some(g) if g.voxels() == voxels => Ok(g.clone()),
        Some(g) => Err(Error::bad_file(
            what,
            format!(
                "showers have {voxels} voxels (dataset {}) but the binning file has {}",
                dataset.name(),
                g.voxels()
            ),
        )),
        None => Geometry::regular(dataset).map_err(|e| {
            Error::bad_file(
                what,
                format!("dataset {}: {e}; --option binning=FILE", dataset.name()),
            )
        }),
    }
}

fn field_specs(geometry: &Geometry, dtype: DType) -> Vec<FieldSpec> {
    geometry
        .layers
        .iter()
        .map(|l| {
            FieldSpec::new(l.field(), l.shape.to_vec(), dtype)
                .with_attr("units", "MeV")
                .with_attr("r_edges_mm", l.r_edges.clone())
        })
        .collect()
}

struct Inspected {
    path: PathBuf,
    count: usize,
    voxels: usize,
    dtype: DType,
}

fn inspect(path: &Path) -> Result<Inspected> {
    let file = h5::File::open(path).map_err(h5_error(path, "not a readable HDF5 file"))?;
    let missing = |name: &'static str| {
        move |_| {
            Error::bad_file(
                path,
                format!("no dataset '{name}' (a CaloChallenge file holds 'incident_energies' and 'showers')"),
            )
        }
    };
    let showers = file.dataset(SHOWERS).map_err(missing(SHOWERS))?;
    let energies = file.dataset(ENERGIES).map_err(missing(ENERGIES))?;
    let shape = showers.shape();
    if shape.len() != 2 {
        return Err(Error::bad_file(
            path,
            format!("'showers' has shape {shape:?}, expected (N, voxels)"),
        ));
    }
    let e_shape = energies.shape();
    if !(e_shape.len() == 1 || (e_shape.len() == 2 && e_shape[1] == 1)) {
        return Err(Error::bad_file(
            path,
            format!("'incident_energies' has shape {e_shape:?}, expected (N, 1)"),
        ));
    }
    if e_shape[0] != shape[0] {
        return Err(Error::bad_file(
            path,
            format!("{} incident energies for {} showers", e_shape[0], shape[0]),
        ));
    }
    let f32s = showers
        .dtype()
        .map_err(h5_error(path, "'showers' type"))?
        .is::<f32>();
    Ok(Inspected {
        path: path.to_path_buf(),
        count: shape[0],
        voxels: shape[1],
        dtype: if f32s { DType::F32 } else { DType::F64 },
    })
}

fn stream(
    input: &Inspected,
    geometry: &Geometry,
    specs: &[FieldSpec],
    sink: &mut dyn ImportSink,
) -> Result<()> {
    let path = &input.path;
    let file = h5::File::open(path).map_err(h5_error(path, "not a readable HDF5 file"))?;
    let dtype = specs[0].dtype;
    let mut start = 0;
    while start < input.count {
        let rows = start..(start + BLOCK).min(input.count);
        let showers = read_rows(&file, path, SHOWERS, rows.clone(), dtype)?;
        let energies = read_rows(&file, path, ENERGIES, rows.clone(), DType::F64)?.to_f64();
        for (i, &e) in energies.iter().enumerate() {
            let origin = format!("{} shower {}", path.display(), start + i);
            let row = showers.slice(i * input.voxels, input.voxels);
            if let Some(k) = row.first_non_finite() {
                return Err(Error::Data(format!(
                    "{origin}: voxel {k} is not a finite energy"
                )));
            }
            if let Some(k) = row.to_f64().iter().position(|&v| v < 0.0) {
                return Err(Error::Data(format!(
                    "{origin}: voxel {k} has a negative energy"
                )));
            }
            if !(e.is_finite() && e > 0.0) {
                return Err(Error::Data(format!(
                    "{origin}: incident energy {e} MeV is not a positive number"
                )));
            }
            let mut fields = Vec::with_capacity(specs.len());
            let mut offset = 0;
            for (layer, spec) in geometry.layers.iter().zip(specs) {
                let n = layer.voxels();
                fields.push(Field::new(
                    spec.name.clone(),
                    spec.shape.clone(),
                    row.slice(offset, n),
                )?);
                offset += n;
            }
            sink.push(
                Sample {
                    fields,
                    params: vec![e],
                },
                &origin,
            )?;
        }
        start = rows.end;
    }
    Ok(())
}

/// CaloChallenge's HDF5 layout (see the module documentation).
pub struct CaloChallengeFormat;

impl Format for CaloChallengeFormat {
    fn name(&self) -> &str {
        FORMAT_NAME
    }

    fn import(
        &self,
        inputs: &[PathBuf],
        options: &serde_json::Value,
        sink: &mut dyn ImportSink,
    ) -> Result<()> {
        let given = read_options(options)?;
        let inspected = inputs
            .iter()
            .map(|p| inspect(p))
            .collect::<Result<Vec<_>>>()?;
        let first = inspected
            .first()
            .ok_or_else(|| Error::Option("no input files".into()))?;
        if let Some(other) = inspected.iter().find(|i| i.voxels != first.voxels) {
            return Err(Error::bad_file(
                &other.path,
                format!(
                    "showers have {} voxels, {} has {}",
                    other.voxels,
                    first.path.display(),
                    first.voxels
                ),
            ));
        }
        let geometry = geometry_for(first.voxels, &given, &first.path)?;
        let specs = field_specs(&geometry, DType::common(inspected.iter().map(|i| i.dtype)));
        sink.begin(ImportLayout {
            fields: specs.clone(),
            param_names: vec![PARAM.into()],
            expected: Some(inspected.iter().map(|i| i.count).sum()),
        })?;
        for input in &inspected {
            stream(input, &geometry, &specs, sink)?;
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
        let given = read_options(options)?;
        if let Some(f) = field {
            return Err(Error::Option(format!(
                "{FORMAT_NAME} writes every layer of a shower into one row; --field {f} does not apply"
            )));
        }
        let source = dataset.path();
        let voxels: usize = dataset
            .fields()
            .iter()
            .filter(|s| s.name.starts_with("layer_"))
            .map(|s| s.shape.iter().product::<usize>())
            .sum();
        let geometry = geometry_for(voxels, &given, source)?;
        let expected: Vec<(String, Vec<usize>)> = geometry
            .layers
            .iter()
            .map(|l| (l.field(), l.shape.to_vec()))
            .collect();
        let specs = fields_of_shapes(dataset, &expected, "the binning's layer")?;
        let energy_column = param_column(
            dataset,
            PARAM,
            "challenge files store each shower's incident energy in MeV",
        )?;
        write_atomically(out, overwrite, |tmp| {
            write_file(tmp, dataset, &specs, voxels, energy_column)
        })?;
        Ok(ExportSummary {
            count: dataset.len(),
            files: 1,
            path: out.to_path_buf(),
            fields: specs.iter().map(|s| s.name.clone()).collect(),
        })
    }
}

fn write_file(
    path: &Path,
    dataset: &Dataset,
    specs: &[&FieldSpec],
    voxels: usize,
    energy_column: usize,
) -> Result<()> {
    let n = dataset.len();
    let file = h5::File::create(path).map_err(h5_error(path, "creating the file"))?;
    let dtype = DType::common(specs.iter().map(|s| s.dtype));
    let builder = match dtype {
        DType::F32 => file.new_dataset::<f32>(),
        DType::F64 => file.new_dataset::<f64>(),
    };
    // gzip at h5py's default level, in chunks of the rows written at a time,
    // as the challenge's own files are stored (dataset 3 is ~8 GB raw).
    let showers = builder
        .chunk([BLOCK.min(n).max(1), voxels])
        .deflate(GZIP_LEVEL)
        .shape([n, voxels])
        .create(SHOWERS)
        .map_err(h5_error(path, "creating 'showers'"))?;
    let energies = file
        .new_dataset::<f64>()
        .shape([n, 1])
        .create(ENERGIES)
        .map_err(h5_error(path, "creating 'incident_energies'"))?;
    let indices = specs
        .iter()
        .map(|s| dataset.field_index(Some(&s.name)))
        .collect::<Result<Vec<_>>>()?;
    let mut start = 0;
    while start < n {
        let count = BLOCK.min(n - start);
        let samples = dataset.read_samples(start, count)?;
        let rows = start..start + count;
        let mut f32s = Vec::new();
        let mut f64s = Vec::new();
        for s in &samples {
            for &k in &indices {
                match (&s.fields[k].data, dtype) {
                    (Array::F32(v), DType::F32) => f32s.extend_from_slice(v),
                    (data, _) => f64s.extend(data.to_f64()),
                }
            }
        }
        let view_error = |e: ndarray::ShapeError| {
            Error::Data(format!("'showers': {e} (a sample of the wrong size)"))
        };
        match dtype {
            DType::F32 => showers.write_slice(
                ndarray::ArrayView2::from_shape((count, voxels), &f32s).map_err(view_error)?,
                rows_selection(rows.clone(), 2),
            ),
            DType::F64 => showers.write_slice(
                ndarray::ArrayView2::from_shape((count, voxels), &f64s).map_err(view_error)?,
                rows_selection(rows.clone(), 2),
            ),
        }
        .map_err(h5_error(path, "writing 'showers'"))?;
        let e: Vec<f64> = rows
            .clone()
            .map(|i| dataset.params_of(i)[energy_column])
            .collect();
        let view = ndarray::ArrayView::from_shape((count, 1), &e).expect("one column");
        energies
            .write_slice(view, rows_selection(rows, 2))
            .map_err(h5_error(path, "writing 'incident_energies'"))?;
        start += count;
    }
    file.flush().map_err(h5_error(path, "flushing"))?;
    file.close().map_err(h5_error(path, "closing"))
}
