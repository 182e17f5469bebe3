//! # simemu-io
//!
//! The file formats other tools use, as simemu [`Format`] plugins:
//!
//! | format | import | export |
//! |--------|--------|--------|
//! | `fits` | 2-D images (primary HDU or IMAGE extension; any BITPIX, BSCALE/BZERO, BLANK), one map per file, side angle from the `ANGLE` keyword in degrees (lenstools' `ConvergenceMap` convention) | one map per file in a directory, `ANGLE` in the header, parameters as `PNAMEn`/`PVALn` keywords |
//! | `npy` | a stack `(N, ...)` or a single 2-D map per file, little- or big-endian float32/float64 | one stack `(N, ...)` |
//! | `npz` | one array of an archive (`np.savez` or `np.savez_compressed`), with `params`, `param_names` and `angle_deg` when present | `np.savez` layout: the stack under the field's name, `params`, `param_names`, `angle_deg` |
//!
//! Every import streams: a file (or, for stacks, a block of samples) is read, checked
//! and handed on before the next is read. Every export writes under a temporary name
//! and renames into place.

mod fits;
mod npy_stack;
mod npz;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use serde::Deserialize;
use simemu_core::formats::{ImportLayout, ImportSink};
use simemu_core::{Array, DType, Error, Field, FieldSpec, OptionSpec, Registry, Result, Sample};

pub use fits::{FitsFormat, FitsImage};
pub use npy_stack::NpyFormat;
pub use npz::NpzFormat;

/// The field attribute holding a map's side angle in degrees; statistics read it.
pub const ANGLE_ATTR: &str = "angle_deg";

/// Samples read from a stack per block: bounds an import's memory.
const BLOCK_SAMPLES: usize = 64;

/// Options shared by the importers.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportOptions {
    /// Name of the dataset field the data become.
    field: Option<String>,
    /// Side angle in degrees, when the files do not carry it (or to check that they agree).
    angle_deg: Option<f64>,
    /// `.npz` only: which array of the archive holds the samples.
    array: Option<String>,
    /// FITS only: index of the HDU to read (default: the first that holds an image).
    hdu: Option<usize>,
}

impl ImportOptions {
    fn parse(format: &str, options: &serde_json::Value, allowed: &[&str]) -> Result<Self> {
        let o: ImportOptions = simemu_core::params::options_from_json(format, options)?;
        let given = [("array", o.array.is_some()), ("hdu", o.hdu.is_some())];
        for (name, set) in given {
            if set && !allowed.contains(&name) {
                return Err(Error::Option(format!(
                    "{format}: option '{name}' does not apply to this format"
                )));
            }
        }
        if let Some(a) = o.angle_deg {
            check_angle(a, "--angle-deg")?;
        }
        Ok(o)
    }

    fn field_name(&self) -> &str {
        self.field
            .as_deref()
            .unwrap_or(simemu_core::dataset::BARE_NPY_FIELD)
    }

    /// The field spec of the imported samples, with the side angle: the one the files
    /// carry, else the one given; both must agree when both exist.
    fn field_spec(
        &self,
        shape: Vec<usize>,
        dtype: simemu_core::DType,
        angle_in_files: Option<f64>,
        source: &Path,
    ) -> Result<FieldSpec> {
        let angle = match (angle_in_files, self.angle_deg) {
            (Some(a), Some(b)) if !same_angle(a, b) => {
                return Err(Error::bad_file(
                    source,
                    format!("the file says the side angle is {a}°, --angle-deg says {b}°"),
                ))
            }
            (Some(a), _) => Some(a),
            (None, b) => b,
        };
        let mut spec = FieldSpec::new(self.field_name(), shape, dtype);
        if let Some(a) = angle {
            spec = spec.with_attr(ANGLE_ATTR, a);
        }
        Ok(spec)
    }
}

fn check_angle(a: f64, what: &str) -> Result<()> {
    if a.is_finite() && a > 0.0 {
        Ok(())
    } else {
        Err(Error::Option(format!(
            "{what} = {a}: a side angle must be a positive number of degrees"
        )))
    }
}

/// Angles agree to the precision a header or a float32 round trip keeps.
fn same_angle(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Options shared by the exporters.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportOptions {
    /// `.npz` only: deflate the members (`np.savez_compressed`).
    #[serde(default)]
    compressed: bool,
}

impl ExportOptions {
    fn parse(format: &str, options: &serde_json::Value, allows_compression: bool) -> Result<Self> {
        let o: ExportOptions = simemu_core::params::options_from_json(format, options)?;
        if o.compressed && !allows_compression {
            return Err(Error::Option(format!(
                "{format}: option 'compressed' does not apply to this format"
            )));
        }
        Ok(o)
    }
}

/// What one input file holds, for checking that all inputs agree.
struct InputLayout<'a> {
    path: &'a Path,
    shape: &'a [usize],
    dtype: DType,
    param_names: Vec<&'a str>,
    angle: Option<f64>,
}

/// Checks that all inputs agree and declares the import: one field of the inputs'
/// shape, float32 only when every input is (float64 holds both exactly), with the
/// side angle the files carry or the one given, and the files' parameter names.
fn begin_import(
    o: &ImportOptions,
    inputs: &[InputLayout],
    expected: usize,
    sink: &mut dyn ImportSink,
) -> Result<FieldSpec> {
    check_inputs_agree(inputs)?;
    let first = &inputs[0];
    let dtype = DType::common(inputs.iter().map(|i| i.dtype));
    let spec = o.field_spec(first.shape.to_vec(), dtype, first.angle, first.path)?;
    sink.begin(ImportLayout {
        fields: vec![spec.clone()],
        param_names: first.param_names.iter().map(|s| s.to_string()).collect(),
        expected: Some(expected),
    })?;
    Ok(spec)
}

/// Hands one sample to the sink after refusing NaN/Inf values and parameters.
fn push_sample(
    sink: &mut dyn ImportSink,
    spec: &FieldSpec,
    data: Array,
    params: Vec<f64>,
    origin: &str,
) -> Result<()> {
    check_finite(&data, &spec.shape, origin)?;
    if params.iter().any(|x| !x.is_finite()) {
        return Err(Error::Data(format!(
            "{origin}: non-finite parameter {params:?}"
        )));
    }
    let field = Field::new(spec.name.clone(), spec.shape.clone(), data)?;
    sink.push(Sample::single(field, params), origin)
}

/// Every input must hold samples of the first one's shape, parameters and angle.
fn check_inputs_agree(inputs: &[InputLayout]) -> Result<()> {
    let Some(first) = inputs.first() else {
        return Ok(());
    };
    for x in &inputs[1..] {
        let same_angle = match (x.angle, first.angle) {
            (Some(a), Some(b)) => same_angle(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        let other = first.path.display();
        let differs = if x.shape != first.shape {
            format!(
                "samples of shape {:?}, but {other} holds samples of shape {:?}",
                x.shape, first.shape
            )
        } else if x.param_names != first.param_names {
            format!(
                "parameters {:?}, but {other} has {:?}",
                x.param_names, first.param_names
            )
        } else if !same_angle {
            format!(
                "side angle {:?}°, but {other} has {:?}°",
                x.angle, first.angle
            )
        } else {
            continue;
        };
        return Err(Error::bad_file(
            x.path,
            format!("{differs}: all inputs must agree"),
        ));
    }
    Ok(())
}

/// Refuses NaN and infinite values, naming the file and the element's index.
fn check_finite(data: &Array, shape: &[usize], origin: &str) -> Result<()> {
    let Some(flat) = data.first_non_finite() else {
        return Ok(());
    };
    let value = match data {
        Array::F32(v) => v[flat] as f64,
        Array::F64(v) => v[flat],
    };
    let mut index = vec![0; shape.len()];
    let mut rest = flat;
    for (slot, &extent) in index.iter_mut().zip(shape).rev() {
        *slot = rest % extent;
        rest /= extent;
    }
    Err(Error::Data(format!(
        "{origin}: the value at {index:?} is {value}; simemu datasets hold finite values only (mask or fill such pixels before importing)"
    )))
}

/// A single output file written under a temporary name and renamed into place.
struct AtomicOutput {
    tmp: simemu_core::fsutil::TempFile,
}

impl AtomicOutput {
    /// `kind` recognises a file of the same format, the only one `--force`
    /// replaces.
    fn file(out: &Path, overwrite: bool, kind: simemu_core::fsutil::OutputKind) -> Result<Self> {
        if out.is_dir() {
            return Err(Error::bad_file(out, "is a directory; give a file name"));
        }
        simemu_core::fsutil::check_output(out, overwrite, kind)?;
        Ok(AtomicOutput {
            tmp: simemu_core::fsutil::TempFile::new(out)?,
        })
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }

    fn writer(&self) -> Result<BufWriter<File>> {
        let f = File::create(self.path()).map_err(|e| Error::io(self.path(), e))?;
        Ok(BufWriter::new(f))
    }

    fn finish_writer(&self, w: BufWriter<File>) -> Result<()> {
        let f = w
            .into_inner()
            .map_err(|e| Error::io(self.path(), e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(self.path(), e))
    }

    fn persist(self) -> Result<()> {
        self.tmp.persist()
    }
}

fn import_options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new(
            "field",
            simemu_core::dataset::BARE_NPY_FIELD,
            "name of the dataset field the imported data become",
        ),
        OptionSpec::new(
            "angle_deg",
            serde_json::Value::Null,
            "side angle in degrees when the files do not carry it",
        ),
    ]
}

fn register(r: &mut Registry) -> Result<()> {
    let mut fits_options = import_options();
    fits_options.push(OptionSpec::new(
        "hdu",
        serde_json::Value::Null,
        "import: index of the HDU to read (default: the first holding an image)",
    ));
    r.add_format(
        "FITS images, one 2-D map per file; side angle in the ANGLE keyword (degrees), as lenstools reads and writes it",
        &["fits", "fit", "fts"],
        fits_options,
        FitsFormat,
    )?;
    r.add_format(
        "NumPy .npy: a stack (N, ...) of samples or a single 2-D map per file",
        &["npy"],
        import_options(),
        NpyFormat,
    )?;
    let mut npz_options = import_options();
    npz_options.push(OptionSpec::new(
        "array",
        serde_json::Value::Null,
        "import: the archive's array holding the samples (default: the field's name, else the only array)",
    ));
    npz_options.push(OptionSpec::new(
        "compressed",
        false,
        "export: deflate the members, as np.savez_compressed does",
    ));
    r.add_format(
        "NumPy .npz archives (np.savez / np.savez_compressed) with optional params, param_names and angle_deg arrays",
        &["npz"],
        npz_options,
        NpzFormat,
    )?;
    Ok(())
}

simemu_core::inventory::submit! { simemu_core::StaticPlugin { name: "io", register } }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_three_formats_found_by_extension() {
        let mut r = Registry::new();
        register(&mut r).unwrap();
        let names: Vec<_> = r.formats().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["fits", "npy", "npz"]);
        assert_eq!(
            r.format_for_path(Path::new("a/MAP.FITS")).unwrap().name,
            "fits"
        );
        assert_eq!(r.format_for_path(Path::new("x.npz")).unwrap().name, "npz");
        let e = r
            .format_for_path(Path::new("x.h5"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--format") && e.contains("fits"), "{e}");
    }

    #[test]
    fn options_are_checked() {
        let e = ImportOptions::parse("npy", &serde_json::json!({"hdu": 1}), &[]).unwrap_err();
        assert!(e.to_string().contains("'hdu' does not apply"), "{e}");
        let e =
            ImportOptions::parse("npy", &serde_json::json!({"angle_deg": -1.0}), &[]).unwrap_err();
        assert!(e.to_string().contains("positive"), "{e}");
        let e = ImportOptions::parse("npy", &serde_json::json!({"colour": 1}), &[]).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
    }
}
