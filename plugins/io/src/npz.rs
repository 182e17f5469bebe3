//! `.npz` archives as `np.savez` / `np.savez_compressed` write them: a zip of `.npy`
//! members named after the keys. simemu reads one array of samples and, when present,
//! `params` `(N, P)`, `param_names` `(P,)` (a numpy string array) and `angle_deg` (a
//! scalar); it writes the same layout.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use simemu_core::formats::{ExportSummary, Format, ImportSink};
use simemu_core::npy::{self, FromNpy, NpyElement};
use simemu_core::{Array, DType, Dataset, Error, FieldSpec, Result};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use crate::npy_stack::{float_dtype, npy_dtype, write_field_data};
use crate::{ExportOptions, ImportOptions, ANGLE_ATTR, BLOCK_SAMPLES};

const PARAMS_KEY: &str = "params";
const PARAM_NAMES_KEY: &str = "param_names";
const ANGLE_KEY: &str = "angle_deg";
const RESERVED: [&str; 3] = [PARAMS_KEY, PARAM_NAMES_KEY, ANGLE_KEY];

pub struct NpzFormat;

/// What one archive holds, found before any sample is read.
struct Archive {
    path: PathBuf,
    member: String,
    header: npy::NpyHeader,
    dtype: DType,
    count: usize,
    shape: Vec<usize>,
    params: Vec<f64>,
    param_names: Vec<String>,
    angle: Option<f64>,
}

fn open(path: &Path) -> Result<ZipArchive<BufReader<File>>> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    ZipArchive::new(BufReader::new(f))
        .map_err(|e| Error::bad_file(path, format!("not a readable .npz (zip) archive: {e}")))
}

/// A name for a member in error messages: `archive.npz[kappa.npy]`.
fn member_path(path: &Path, member: &str) -> PathBuf {
    PathBuf::from(format!("{}[{member}]", path.display()))
}

fn read_member(
    zip: &mut ZipArchive<BufReader<File>>,
    path: &Path,
    member: &str,
) -> Result<Vec<u8>> {
    let mut f = zip
        .by_name(member)
        .map_err(|e| Error::bad_file(member_path(path, member), e.to_string()))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .map_err(|e| Error::bad_file(member_path(path, member), format!("cannot read: {e}")))?;
    Ok(bytes)
}

/// A small float array member, whole: (shape, values).
fn read_small_floats(
    zip: &mut ZipArchive<BufReader<File>>,
    path: &Path,
    member: &str,
) -> Result<(Vec<usize>, Vec<f64>)> {
    let origin = member_path(path, member);
    let bytes = read_member(zip, path, member)?;
    let mut cursor = Cursor::new(&bytes[..]);
    let header = npy::read_header_from(&mut cursor, &origin)?;
    float_dtype(header.dtype, &origin)?;
    let data = &bytes[header.data_offset as usize..];
    let need = header.count() * header.dtype.size();
    if data.len() < need {
        return Err(Error::bad_file(&origin, "truncated array"));
    }
    let values =
        f64::convert(&data[..need], header.dtype, header.big_endian).expect("float dtype checked");
    Ok((header.shape, values))
}

/// A numpy string array (`<U…` or `|S…`) member.
fn read_strings(
    zip: &mut ZipArchive<BufReader<File>>,
    path: &Path,
    member: &str,
) -> Result<Vec<String>> {
    let origin = member_path(path, member);
    let bytes = read_member(zip, path, member)?;
    let mut cursor = Cursor::new(&bytes[..]);
    let raw = npy::read_raw_header_from(&mut cursor, &origin)?;
    let data = &bytes[raw.data_offset as usize..];
    let n: usize = raw.shape.iter().product();
    let bad = |m: String| Error::bad_file(&origin, m);
    let (kind, width) = raw.descr.split_at(raw.descr.len().min(2));
    let width: usize = width.parse().map_err(|_| {
        bad(format!(
            "expected a string array, found element type '{}'",
            raw.descr
        ))
    })?;
    let unit = match kind {
        "<U" | ">U" | "=U" => 4,
        "|S" => 1,
        _ => {
            return Err(bad(format!(
                "expected a string array, found element type '{}'",
                raw.descr
            )))
        }
    };
    if data.len() < n * width * unit {
        return Err(bad("truncated array".into()));
    }
    let mut out = Vec::with_capacity(n);
    for item in data.chunks_exact(width * unit).take(n) {
        let text: String = if unit == 4 {
            item.chunks_exact(4)
                .map(|c| {
                    let b = [c[0], c[1], c[2], c[3]];
                    if kind == ">U" {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                })
                .take_while(|&c| c != 0)
                .map(|c| char::from_u32(c).ok_or_else(|| bad("invalid character".into())))
                .collect::<Result<_>>()?
        } else {
            String::from_utf8_lossy(item)
                .trim_end_matches('\0')
                .to_string()
        };
        out.push(text);
    }
    Ok(out)
}

fn keys(zip: &ZipArchive<BufReader<File>>) -> Vec<String> {
    zip.file_names()
        .filter_map(|n| n.ok())
        .filter_map(|n| n.strip_suffix(".npy").map(str::to_string))
        .collect()
}

fn inspect(path: &Path, o: &ImportOptions) -> Result<Archive> {
    let mut zip = open(path)?;
    let mut all = keys(&zip);
    all.sort();
    let candidates: Vec<&String> = all
        .iter()
        .filter(|k| !RESERVED.contains(&k.as_str()))
        .collect();
    let key = if let Some(a) = &o.array {
        if !all.contains(a) {
            return Err(Error::bad_file(
                path,
                format!("has no array '{a}' (arrays: {})", all.join(", ")),
            ));
        }
        a.clone()
    } else if all.iter().any(|k| k == o.field_name()) {
        o.field_name().to_string()
    } else {
        match candidates.as_slice() {
            [one] => (*one).clone(),
            [] => return Err(Error::bad_file(path, "holds no array of samples")),
            many => {
                let names: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
                return Err(Error::bad_file(
                    path,
                    format!(
                        "holds several arrays ({}); choose one with --array",
                        names.join(", ")
                    ),
                ));
            }
        }
    };
    let member = format!("{key}.npy");
    let origin = member_path(path, &member);
    let header = {
        let mut f = zip
            .by_name(&member)
            .map_err(|e| Error::bad_file(&origin, e.to_string()))?;
        npy::read_header_from(&mut f, &origin)?
    };
    let dtype = float_dtype(header.dtype, &origin)?;
    let (count, shape) =
        npy::stack_layout(&header.shape).map_err(|m| Error::bad_file(&origin, m))?;
    if count == 0 {
        return Err(Error::bad_file(&origin, "holds no samples"));
    }
    let has = |k: &str| all.iter().any(|x| x == k);
    let (params, param_names) = if has(PARAMS_KEY) {
        let (pshape, values) = read_small_floats(&mut zip, path, "params.npy")?;
        let p = match pshape.as_slice() {
            [n] if *n == count => 1,
            [n, p] if *n == count => *p,
            _ => {
                return Err(Error::bad_file(
                    member_path(path, "params.npy"),
                    format!(
                        "shape {pshape:?} does not match {count} samples: expected ({count}, P)"
                    ),
                ))
            }
        };
        let names = if has(PARAM_NAMES_KEY) {
            let names = read_strings(&mut zip, path, "param_names.npy")?;
            if names.len() != p {
                return Err(Error::bad_file(
                    member_path(path, "param_names.npy"),
                    format!("{} names for {p} parameters", names.len()),
                ));
            }
            names
        } else {
            (0..p).map(|i| format!("param_{i}")).collect()
        };
        (values, names)
    } else {
        (vec![], vec![])
    };
    let angle = if has(ANGLE_KEY) {
        let (ashape, v) = read_small_floats(&mut zip, path, "angle_deg.npy")?;
        if v.len() != 1 {
            return Err(Error::bad_file(
                member_path(path, "angle_deg.npy"),
                format!("expected a single number, found shape {ashape:?}"),
            ));
        }
        crate::check_angle(v[0], &format!("{}: angle_deg", path.display()))?;
        Some(v[0])
    } else {
        None
    };
    Ok(Archive {
        path: path.to_path_buf(),
        member,
        header,
        dtype,
        count,
        shape,
        params,
        param_names,
        angle,
    })
}

impl NpzFormat {
    fn stream(archive: &Archive, spec: &FieldSpec, sink: &mut dyn ImportSink) -> Result<()> {
        let origin = member_path(&archive.path, &archive.member);
        let mut zip = open(&archive.path)?;
        let mut f = zip
            .by_name(&archive.member)
            .map_err(|e| Error::bad_file(&origin, e.to_string()))?;
        npy::read_header_from(&mut f, &origin)?;
        let per_sample = spec.len();
        let width = archive.header.dtype.size();
        let p = archive.param_names.len();
        let mut bytes = Vec::new();
        for start in (0..archive.count).step_by(BLOCK_SAMPLES) {
            let n = BLOCK_SAMPLES.min(archive.count - start);
            bytes.resize(n * per_sample * width, 0);
            f.read_exact(&mut bytes).map_err(|e| {
                Error::bad_file(
                    &origin,
                    format!("cannot read samples {start}..{}: {e}", start + n),
                )
            })?;
            let (dt, be) = (archive.header.dtype, archive.header.big_endian);
            let block = match spec.dtype {
                DType::F32 => Array::F32(f32::convert(&bytes, dt, be).expect("float dtype")),
                DType::F64 => Array::F64(f64::convert(&bytes, dt, be).expect("float dtype")),
            };
            for k in 0..n {
                let i = start + k;
                let origin = format!("{}, sample {i}", origin.display());
                let data = block.slice(k * per_sample, per_sample);
                let params = archive.params[i * p..(i + 1) * p].to_vec();
                crate::push_sample(sink, spec, data, params, &origin)?;
            }
        }
        Ok(())
    }
}

impl Format for NpzFormat {
    fn name(&self) -> &str {
        "npz"
    }

    fn import(
        &self,
        inputs: &[PathBuf],
        options: &serde_json::Value,
        sink: &mut dyn ImportSink,
    ) -> Result<()> {
        let o = ImportOptions::parse("npz", options, &["array"])?;
        let archives = inputs
            .iter()
            .map(|p| inspect(p, &o))
            .collect::<Result<Vec<_>>>()?;
        let layouts: Vec<crate::InputLayout> = archives
            .iter()
            .map(|a| crate::InputLayout {
                path: &a.path,
                shape: &a.shape,
                dtype: a.dtype,
                param_names: a.param_names.iter().map(String::as_str).collect(),
                angle: a.angle,
            })
            .collect();
        let expected = archives.iter().map(|a| a.count).sum();
        let spec = crate::begin_import(&o, &layouts, expected, sink)?;
        for a in &archives {
            Self::stream(a, &spec, sink)?;
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
        let o = ExportOptions::parse("npz", options, true)?;
        let index = dataset.field_index(field)?;
        let spec = &dataset.fields()[index];
        if RESERVED.contains(&spec.name.as_str()) {
            return Err(Error::Data(format!(
                "field '{}' would collide with the archive's own '{}' array",
                spec.name, spec.name
            )));
        }
        let method = if o.compressed {
            CompressionMethod::Deflated
        } else {
            CompressionMethod::Stored
        };
        // A fixed timestamp, as numpy uses, so that the same data give the same bytes.
        let member = |bytes: usize| {
            SimpleFileOptions::default()
                .compression_method(method)
                .last_modified_time(DateTime::default())
                .large_file(bytes as u64 >= u32::MAX as u64)
        };
        let file = crate::AtomicOutput::file(
            out,
            overwrite,
            simemu_core::fsutil::OutputKind::File {
                format: ".npz (zip)",
                magic: b"PK",
            },
        )?;
        let zip_err =
            |e: zip::result::ZipError| Error::bad_file(out, format!("writing the archive: {e}"));
        let io_err = |e: std::io::Error| Error::io(out, e);
        let mut zip = ZipWriter::new(file.writer()?);

        let n = dataset.len();
        let mut shape = vec![n];
        shape.extend_from_slice(&spec.shape);
        zip.start_file(
            format!("{}.npy", spec.name),
            member(n * spec.len() * spec.dtype.size() + 128),
        )
        .map_err(zip_err)?;
        zip.write_all(&npy::header_bytes(npy_dtype(spec.dtype), &shape))
            .map_err(io_err)?;
        write_field_data(dataset, index, &mut zip, out)?;

        let names = dataset.param_names();
        if !names.is_empty() {
            let p = names.len();
            let mut bytes = npy::header_bytes(npy::NpyDType::F64, &[n, p]);
            let params: Vec<f64> = (0..n).flat_map(|i| dataset.params_of(i).to_vec()).collect();
            f64::write_le(&params, &mut bytes);
            zip.start_file("params.npy", member(bytes.len()))
                .map_err(zip_err)?;
            zip.write_all(&bytes).map_err(io_err)?;

            let width = names
                .iter()
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(1)
                .max(1);
            let mut bytes = npy::header_bytes_for(&format!("<U{width}"), &[p]);
            for name in names {
                let mut chars: Vec<u32> = name.chars().map(|c| c as u32).collect();
                chars.resize(width, 0);
                for c in chars {
                    bytes.extend_from_slice(&c.to_le_bytes());
                }
            }
            zip.start_file("param_names.npy", member(bytes.len()))
                .map_err(zip_err)?;
            zip.write_all(&bytes).map_err(io_err)?;
        }
        if let Some(angle) = spec.attr_f64(ANGLE_ATTR) {
            let mut bytes = npy::header_bytes(npy::NpyDType::F64, &[]);
            f64::write_le(&[angle], &mut bytes);
            zip.start_file("angle_deg.npy", member(bytes.len()))
                .map_err(zip_err)?;
            zip.write_all(&bytes).map_err(io_err)?;
        }
        let w = zip.finish().map_err(zip_err)?;
        file.finish_writer(w)?;
        file.persist()?;
        Ok(ExportSummary {
            count: n,
            files: 1,
            fields: vec![spec.name.clone()],
            path: out.to_path_buf(),
        })
    }
}
