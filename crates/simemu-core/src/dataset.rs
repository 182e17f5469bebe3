//! The on-disk dataset: a directory that numpy users can read without simemu.
//!
//! ```text
//! data/fid/
//!   manifest.json        written last: a directory without it is not a dataset
//!   image-00000.npy      (n, *field_shape) little-endian f32/f64, C order
//!   image-00001.npy
//!   params.npy           (N, P) f64, the parameters σ of each sample
//!   seeds.npy            (N,) u64, the seed each sample was drawn from (optional)
//! ```
//!
//! See `datasets/README.md` for the full specification.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::TempDir;
use crate::npy::{self, NpyHeader};
use crate::sample::{Array, DType, Field, FieldSpec, Sample};
use crate::{Error, Result};

pub const FORMAT_NAME: &str = "simemu-dataset";
pub const FORMAT_VERSION: u32 = 1;
/// Default number of samples per shard file.
pub const DEFAULT_SHARD_SIZE: usize = 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    pub field: String,
    pub file: String,
    pub start: usize,
    pub count: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamsEntry {
    pub names: Vec<String>,
    pub file: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedsEntry {
    /// The run seed the per-sample seeds derive from.
    pub run_seed: u64,
    /// How a sample's seed follows from (run seed, global index).
    pub derivation: String,
    pub file: String,
}

/// Which part of a larger run a dataset holds (`--shard K/N` outputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartEntry {
    /// Global index of this dataset's first sample.
    pub start: usize,
    /// Number of samples in the whole run.
    pub total: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub count: usize,
    pub fields: Vec<FieldSpec>,
    pub shards: Vec<ShardEntry>,
    pub params: ParamsEntry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<SeedsEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<PartEntry>,
    /// Who produced the data and how: plugin kind and name, its configuration, the
    /// simemu version, the creation time, and anything the producer wants recorded.
    #[serde(default)]
    pub source: serde_json::Map<String, serde_json::Value>,
}

/// What a new dataset will hold.
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    pub fields: Vec<FieldSpec>,
    pub param_names: Vec<String>,
    pub source: serde_json::Map<String, serde_json::Value>,
    pub shard_size: usize,
    pub run_seed: Option<u64>,
    pub part: Option<PartEntry>,
}

impl DatasetSpec {
    pub fn new(fields: Vec<FieldSpec>, param_names: Vec<String>) -> Self {
        DatasetSpec {
            fields,
            param_names,
            source: Default::default(),
            shard_size: DEFAULT_SHARD_SIZE,
            run_seed: None,
            part: None,
        }
    }
}

/// The `source` record every producer starts from.
pub fn source_record(
    kind: &str,
    name: &str,
    config: serde_json::Value,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("kind".into(), kind.into());
    m.insert("name".into(), name.into());
    m.insert("config".into(), config);
    m.insert("simemu_version".into(), crate::VERSION.into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    m.insert("created_unix".into(), now.into());
    m
}

/// Bytes one sample takes in a dataset: its fields, its `params` parameters and
/// its seed.
pub fn sample_bytes(fields: &[FieldSpec], params: usize) -> u64 {
    let data: u64 = fields
        .iter()
        .map(|f| (f.len() * f.dtype.size()) as u64)
        .sum();
    data + 8 * (params as u64 + 1)
}

/// The description of how per-sample seeds are derived, stored in manifests.
pub const SEED_DERIVATION: &str = "simemu::seed::sample_seed(run_seed, global_index)";

/// Streams samples into a new dataset directory. Nothing appears at the destination
/// until [`DatasetWriter::finish`] succeeds; a failed or interrupted write leaves any
/// previous dataset there untouched.
pub struct DatasetWriter {
    dir: TempDir,
    spec: DatasetSpec,
    buffers: Vec<Array>,
    buffered: usize,
    count: usize,
    /// Parameters and seeds go to disk as they come: memory stays bounded by one
    /// shard, whatever the count.
    params: Column,
    seeds: Column,
    shards: Vec<ShardEntry>,
    overwrite: bool,
}

/// A column of 8-byte values streamed to a raw file in the dataset's temporary
/// directory, turned into an `.npy` file at the end.
struct Column {
    raw: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    len: usize,
}

impl Column {
    fn create(dir: &Path, name: &str) -> Result<Column> {
        let raw = dir.join(format!(".{name}.raw"));
        let f = std::fs::File::create(&raw).map_err(|e| Error::io(&raw, e))?;
        Ok(Column {
            raw,
            out: std::io::BufWriter::new(f),
            len: 0,
        })
    }

    fn push(&mut self, bytes: [u8; 8]) -> Result<()> {
        use std::io::Write;
        self.len += 1;
        self.out
            .write_all(&bytes)
            .map_err(|e| Error::io(&self.raw, e))
    }

    /// Writes `path`: the `.npy` header for `shape`, then the values.
    fn finish(self, path: &Path, dtype: npy::NpyDType, shape: &[usize]) -> Result<()> {
        use std::io::Write;
        let raw = self.raw.clone();
        self.out
            .into_inner()
            .map_err(|e| Error::io(&raw, e.into_error()))?;
        let mut input = std::fs::File::open(&raw).map_err(|e| Error::io(&raw, e))?;
        let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        f.write_all(&npy::header_bytes(dtype, shape))
            .and_then(|_| std::io::copy(&mut input, &mut f).map(|_| ()))
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(path, e))?;
        std::fs::remove_file(&raw).map_err(|e| Error::io(&raw, e))
    }

    fn discard(self) -> Result<()> {
        drop(self.out);
        std::fs::remove_file(&self.raw).map_err(|e| Error::io(&self.raw, e))
    }
}

impl DatasetWriter {
    pub fn create(path: &Path, spec: DatasetSpec, overwrite: bool) -> Result<Self> {
        if spec.fields.is_empty() {
            return Err(Error::Data("a dataset needs at least one field".into()));
        }
        if spec.shard_size == 0 {
            return Err(Error::Option("shard size must be at least 1".into()));
        }
        let mut names = std::collections::HashSet::new();
        for f in &spec.fields {
            crate::fsutil::check_plain_name(&f.name)
                .map_err(|e| Error::Data(format!("field name {e}")))?;
            if !names.insert(&f.name) {
                return Err(Error::Data(format!("repeated field name '{}'", f.name)));
            }
        }
        crate::fsutil::check_output(path, overwrite, crate::fsutil::OutputKind::Directory)?;
        let buffers = spec
            .fields
            .iter()
            .map(|f| match f.dtype {
                DType::F32 => Array::F32(Vec::new()),
                DType::F64 => Array::F64(Vec::new()),
            })
            .collect();
        let dir = TempDir::new(path)?;
        let params = Column::create(dir.path(), "params")?;
        let seeds = Column::create(dir.path(), "seeds")?;
        Ok(DatasetWriter {
            dir,
            spec,
            buffers,
            buffered: 0,
            count: 0,
            params,
            seeds,
            shards: Vec::new(),
            overwrite,
        })
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The `source` record, still editable until [`DatasetWriter::finish`] writes the
    /// manifest (e.g. to record a cost measured while writing).
    pub fn source_mut(&mut self) -> &mut serde_json::Map<String, serde_json::Value> {
        &mut self.spec.source
    }

    /// Appends one sample (checked against the declared fields) and, when the dataset
    /// records seeds, the seed it was drawn from.
    pub fn push(&mut self, sample: &Sample, seed: Option<u64>) -> Result<()> {
        sample
            .check(&self.spec.fields, self.spec.param_names.len())
            .map_err(|e| Error::Data(format!("sample {}: {e}", self.count)))?;
        if self.spec.run_seed.is_some() != seed.is_some() {
            return Err(Error::Data(
                "a seed must be given for every sample exactly when the dataset records seeds"
                    .into(),
            ));
        }
        for (buf, f) in self.buffers.iter_mut().zip(&sample.fields) {
            match (buf, &f.data) {
                (Array::F32(b), Array::F32(d)) => b.extend_from_slice(d),
                (Array::F64(b), Array::F64(d)) => b.extend_from_slice(d),
                _ => unreachable!("dtype checked above"),
            }
        }
        for p in &sample.params {
            self.params.push(p.to_le_bytes())?;
        }
        if let Some(s) = seed {
            self.seeds.push(s.to_le_bytes())?;
        }
        self.count += 1;
        self.buffered += 1;
        if self.buffered == self.spec.shard_size {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.buffered == 0 {
            return Ok(());
        }
        let index = self.shards.len() / self.spec.fields.len();
        let start = self.count - self.buffered;
        for (spec, buf) in self.spec.fields.iter().zip(self.buffers.iter_mut()) {
            let file = format!("{}-{index:05}.npy", spec.name);
            let mut shape = vec![self.buffered];
            shape.extend_from_slice(&spec.shape);
            let path = self.dir.path().join(&file);
            match buf {
                Array::F32(v) => {
                    npy::write(&path, &shape, v)?;
                    v.clear();
                }
                Array::F64(v) => {
                    npy::write(&path, &shape, v)?;
                    v.clear();
                }
            }
            self.shards.push(ShardEntry {
                field: spec.name.clone(),
                file,
                start,
                count: self.buffered,
            });
        }
        self.buffered = 0;
        Ok(())
    }

    /// Writes the remaining shard, the parameters, the seeds and, last, the manifest;
    /// then moves the directory into place.
    pub fn finish(mut self) -> Result<Manifest> {
        if self.count == 0 {
            return Err(Error::Data("refusing to write an empty dataset".into()));
        }
        self.flush()?;
        let DatasetWriter {
            dir,
            spec,
            params,
            seeds,
            shards,
            count,
            overwrite,
            ..
        } = self;
        let p = spec.param_names.len();
        params.finish(
            &dir.path().join("params.npy"),
            npy::NpyDType::F64,
            &[count, p],
        )?;
        let seeds = match spec.run_seed {
            Some(run_seed) => {
                seeds.finish(&dir.path().join("seeds.npy"), npy::NpyDType::U64, &[count])?;
                Some(SeedsEntry {
                    run_seed,
                    derivation: SEED_DERIVATION.into(),
                    file: "seeds.npy".into(),
                })
            }
            None => {
                seeds.discard()?;
                None
            }
        };
        let manifest = Manifest {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            count,
            fields: spec.fields.clone(),
            shards,
            params: ParamsEntry {
                names: spec.param_names.clone(),
                file: "params.npy".into(),
            },
            seeds,
            part: spec.part,
            source: spec.source.clone(),
        };
        crate::fsutil::write_json_atomic(&dir.path().join("manifest.json"), &manifest)?;
        dir.persist(overwrite)?;
        Ok(manifest)
    }
}

#[derive(Clone, Debug)]
struct ShardFile {
    entry: ShardEntry,
    path: PathBuf,
    header: NpyHeader,
}

/// A dataset opened for reading: a simemu dataset directory or a bare `.npy` stack.
/// Opening validates the manifest and every file's header and size.
#[derive(Clone, Debug)]
pub struct Dataset {
    path: PathBuf,
    manifest: Manifest,
    /// Per field (in manifest order), its shards sorted by start.
    shards: Vec<Vec<ShardFile>>,
    params: Vec<f64>,
    seeds: Option<Vec<u64>>,
}

/// Field name given to the data of a bare `.npy` stack.
pub const BARE_NPY_FIELD: &str = "data";

impl Dataset {
    /// Opens a dataset directory, or a bare `.npy` file holding `(N, ...)` samples
    /// (a 2D array is one sample).
    pub fn open(path: &Path) -> Result<Dataset> {
        if path.is_file() {
            return Self::open_npy(path);
        }
        let mpath = path.join("manifest.json");
        if !path.exists() {
            return Err(Error::bad_file(
                path,
                "no such dataset (neither a directory nor a .npy file)",
            ));
        }
        let text = std::fs::read_to_string(&mpath).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::bad_file(
                    &mpath,
                    "missing: not a simemu dataset (or an unfinished write)",
                )
            } else {
                Error::io(&mpath, e)
            }
        })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&mpath, format!("corrupt manifest: {e}")))?;
        Self::from_manifest(path, manifest)
    }

    fn from_manifest(path: &Path, manifest: Manifest) -> Result<Dataset> {
        let mpath = path.join("manifest.json");
        let bad = |m: String| Error::bad_file(&mpath, m);
        if manifest.format != FORMAT_NAME {
            return Err(bad(format!(
                "format is '{}', expected '{FORMAT_NAME}'",
                manifest.format
            )));
        }
        if manifest.version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} is not supported (this simemu reads version {FORMAT_VERSION})",
                manifest.version
            )));
        }
        if manifest.fields.is_empty() {
            return Err(bad("no fields".into()));
        }
        // Every name the manifest gives stays inside the dataset's directory.
        let names = manifest
            .fields
            .iter()
            .map(|f| ("field", &f.name))
            .chain(manifest.shards.iter().map(|s| ("shard file", &s.file)))
            .chain([("parameter file", &manifest.params.file)])
            .chain(manifest.seeds.iter().map(|s| ("seed file", &s.file)));
        for (what, name) in names {
            crate::fsutil::check_plain_name(name).map_err(|e| bad(format!("{what} {e}")))?;
        }
        if let Some(s) = manifest
            .shards
            .iter()
            .find(|s| !manifest.fields.iter().any(|f| f.name == s.field))
        {
            return Err(bad(format!(
                "shard {} belongs to no field ('{}')",
                s.file, s.field
            )));
        }
        let mut shards = Vec::new();
        for spec in &manifest.fields {
            let mut list: Vec<&ShardEntry> = manifest
                .shards
                .iter()
                .filter(|s| s.field == spec.name)
                .collect();
            list.sort_by_key(|s| s.start);
            let mut next = 0;
            let mut files = Vec::new();
            for s in list {
                if s.start != next {
                    return Err(bad(format!(
                        "shards of field '{}' do not cover samples contiguously (gap or overlap at {})",
                        spec.name, next
                    )));
                }
                let spath = path.join(&s.file);
                if !spath.exists() {
                    return Err(Error::bad_file(
                        &spath,
                        format!("missing shard of field '{}'", spec.name),
                    ));
                }
                let header = npy::read_header(&spath)?;
                let mut want = vec![s.count];
                want.extend_from_slice(&spec.shape);
                if header.shape != want {
                    return Err(Error::bad_file(
                        &spath,
                        format!(
                            "shape {:?} does not match the manifest's {want:?}",
                            header.shape
                        ),
                    ));
                }
                let dtype_ok = matches!(
                    (header.dtype, spec.dtype),
                    (npy::NpyDType::F32, DType::F32) | (npy::NpyDType::F64, DType::F64)
                );
                if !dtype_ok {
                    return Err(Error::bad_file(
                        &spath,
                        format!(
                            "element type {:?} does not match the manifest's {:?}",
                            header.dtype, spec.dtype
                        ),
                    ));
                }
                next += s.count;
                files.push(ShardFile {
                    entry: s.clone(),
                    path: spath,
                    header,
                });
            }
            if next != manifest.count {
                return Err(bad(format!(
                    "field '{}' has {next} samples in its shards, the manifest says {}",
                    spec.name, manifest.count
                )));
            }
            shards.push(files);
        }
        let ppath = path.join(&manifest.params.file);
        let (pshape, params) = npy::read::<f64>(&ppath)?;
        let p = manifest.params.names.len();
        if pshape != [manifest.count, p] {
            return Err(Error::bad_file(
                &ppath,
                format!("shape {pshape:?}, expected [{}, {p}]", manifest.count),
            ));
        }
        if let Some(i) = params.iter().position(|x| !x.is_finite()) {
            return Err(Error::bad_file(
                &ppath,
                format!("non-finite parameter of sample {}", i / p.max(1)),
            ));
        }
        let seeds = match &manifest.seeds {
            Some(s) => {
                let spath = path.join(&s.file);
                let (shape, v) = npy::read::<u64>(&spath)?;
                if shape != [manifest.count] {
                    return Err(Error::bad_file(
                        &spath,
                        format!("shape {shape:?}, expected [{}]", manifest.count),
                    ));
                }
                Some(v)
            }
            None => None,
        };
        Ok(Dataset {
            path: path.to_path_buf(),
            manifest,
            shards,
            params,
            seeds,
        })
    }

    fn open_npy(path: &Path) -> Result<Dataset> {
        let header = npy::read_header(path)?;
        let (count, shape) =
            npy::stack_layout(&header.shape).map_err(|m| Error::bad_file(path, m))?;
        let dtype = match header.dtype {
            npy::NpyDType::F32 => DType::F32,
            npy::NpyDType::F64 => DType::F64,
            other => {
                return Err(Error::bad_file(
                    path,
                    format!("element type {other:?} is not a float"),
                ))
            }
        };
        if count == 0 {
            return Err(Error::bad_file(path, "holds no samples"));
        }
        let spec = FieldSpec::new(BARE_NPY_FIELD, shape, dtype);
        let file = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut source = serde_json::Map::new();
        source.insert("kind".into(), "npy".into());
        source.insert("path".into(), path.display().to_string().into());
        let manifest = Manifest {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            count,
            fields: vec![spec],
            shards: vec![ShardEntry {
                field: BARE_NPY_FIELD.into(),
                file,
                start: 0,
                count,
            }],
            params: ParamsEntry {
                names: vec![],
                file: String::new(),
            },
            seeds: None,
            part: None,
            source,
        };
        let entry = manifest.shards[0].clone();
        Ok(Dataset {
            path: path.to_path_buf(),
            manifest,
            shards: vec![vec![ShardFile {
                entry,
                path: path.to_path_buf(),
                header,
            }]],
            params: Vec::new(),
            seeds: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn len(&self) -> usize {
        self.manifest.count
    }

    pub fn is_empty(&self) -> bool {
        self.manifest.count == 0
    }

    pub fn fields(&self) -> &[FieldSpec] {
        &self.manifest.fields
    }

    /// Index of the named field, or of the only field when no name is given.
    pub fn field_index(&self, field: Option<&str>) -> Result<usize> {
        match field {
            Some(name) => {
                let spec = self.field_spec(name)?;
                Ok(self
                    .fields()
                    .iter()
                    .position(|f| f.name == spec.name)
                    .expect("field_spec found it"))
            }
            None if self.fields().len() == 1 => Ok(0),
            None => Err(Error::Option(format!(
                "{} has several fields ({}); choose one with --field",
                self.path.display(),
                self.fields()
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    pub fn field_spec(&self, name: &str) -> Result<&FieldSpec> {
        self.manifest
            .fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self
                    .manifest
                    .fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect();
                Error::Data(format!(
                    "{}: no field '{name}' (fields: {names:?})",
                    self.path.display()
                ))
            })
    }

    pub fn param_names(&self) -> &[String] {
        &self.manifest.params.names
    }

    /// Parameters σ of sample `i`.
    pub fn params_of(&self, i: usize) -> &[f64] {
        let p = self.manifest.params.names.len();
        &self.params[i * p..(i + 1) * p]
    }

    pub fn seeds(&self) -> Option<&[u64]> {
        self.seeds.as_deref()
    }

    /// Values of field `field` (index into [`Dataset::fields`]) for samples
    /// `[start, start+count)`, flat in C order; NaN/Inf is refused naming the sample.
    pub fn read_field_range(&self, field: usize, start: usize, count: usize) -> Result<Array> {
        let spec = &self.manifest.fields[field];
        if start + count > self.len() {
            return Err(Error::Data(format!(
                "{}: samples {start}..{} requested, dataset holds {}",
                self.path.display(),
                start + count,
                self.len()
            )));
        }
        let per = spec.len();
        let mut out = match spec.dtype {
            DType::F32 => Array::F32(Vec::with_capacity(per * count)),
            DType::F64 => Array::F64(Vec::with_capacity(per * count)),
        };
        for sf in &self.shards[field] {
            let s0 = sf.entry.start.max(start);
            let s1 = (sf.entry.start + sf.entry.count).min(start + count);
            if s0 >= s1 {
                continue;
            }
            let offset = (s0 - sf.entry.start) * per;
            let n = (s1 - s0) * per;
            let check = |idx: Option<usize>| -> Result<()> {
                match idx {
                    Some(i) => Err(Error::bad_file(
                        &sf.path,
                        format!(
                            "non-finite value in sample {} (field '{}')",
                            s0 + i / per,
                            spec.name
                        ),
                    )),
                    None => Ok(()),
                }
            };
            match &mut out {
                Array::F32(v) => {
                    let chunk: Vec<f32> = npy::read_range(&sf.path, &sf.header, offset, n)?;
                    check(chunk.iter().position(|x| !x.is_finite()))?;
                    v.extend_from_slice(&chunk);
                }
                Array::F64(v) => {
                    let chunk: Vec<f64> = npy::read_range(&sf.path, &sf.header, offset, n)?;
                    check(chunk.iter().position(|x| !x.is_finite()))?;
                    v.extend_from_slice(&chunk);
                }
            }
        }
        Ok(out)
    }

    /// Samples `[start, start+count)` with all their fields and parameters.
    pub fn read_samples(&self, start: usize, count: usize) -> Result<Vec<Sample>> {
        let mut per_field = Vec::new();
        for i in 0..self.manifest.fields.len() {
            per_field.push(self.read_field_range(i, start, count)?);
        }
        let mut out = Vec::with_capacity(count);
        for k in 0..count {
            let mut fields = Vec::new();
            for (spec, arr) in self.manifest.fields.iter().zip(&per_field) {
                let n = spec.len();
                let data = match arr {
                    Array::F32(v) => Array::F32(v[k * n..(k + 1) * n].to_vec()),
                    Array::F64(v) => Array::F64(v[k * n..(k + 1) * n].to_vec()),
                };
                fields.push(Field {
                    name: spec.name.clone(),
                    shape: spec.shape.clone(),
                    data,
                });
            }
            out.push(Sample {
                fields,
                params: self.params_of(start + k).to_vec(),
            });
        }
        Ok(out)
    }

    /// Iterates over all samples in chunks of at most `chunk` samples, reading each
    /// chunk from disk only when it is needed (datasets larger than memory work).
    pub fn chunks(&self, chunk: usize) -> impl Iterator<Item = Result<(usize, Vec<Sample>)>> + '_ {
        let chunk = chunk.max(1);
        (0..self.len()).step_by(chunk).map(move |s| {
            let n = chunk.min(self.len() - s);
            self.read_samples(s, n).map(|v| (s, v))
        })
    }

    /// Checks that another dataset holds samples of the same kind: same field names,
    /// shapes, and no attribute that both declare with different values.
    pub fn check_compatible(&self, other: &Dataset) -> Result<()> {
        check_fields_compatible(self.fields(), other.fields()).map_err(|m| {
            Error::Data(format!(
                "{} and {} hold different kinds of samples: {m}",
                self.path.display(),
                other.path.display()
            ))
        })
    }
}

/// Compares two field lists; bare `.npy` stacks (one unnamed field) match any single
/// field of the same shape.
pub fn check_fields_compatible(
    a: &[FieldSpec],
    b: &[FieldSpec],
) -> std::result::Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{} fields vs {}", a.len(), b.len()));
    }
    for (x, y) in a.iter().zip(b) {
        let bare = x.name == BARE_NPY_FIELD || y.name == BARE_NPY_FIELD;
        if x.name != y.name && !(bare && a.len() == 1) {
            return Err(format!("field '{}' vs '{}'", x.name, y.name));
        }
        if x.shape != y.shape {
            return Err(format!(
                "field '{}' has shape {:?} vs {:?}",
                x.name, x.shape, y.shape
            ));
        }
        for (k, v) in &x.attrs {
            if let Some(w) = y.attrs.get(k) {
                if !json_equal(v, w) {
                    return Err(format!("field '{}' attribute '{k}' is {v} vs {w}", x.name));
                }
            }
        }
    }
    Ok(())
}

fn json_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y || ((x - y).abs() <= 1e-12 * x.abs().max(y.abs())),
        _ => a == b,
    }
}

/// Concatenates the parts of one sharded run (`--shard K/N` outputs) into one dataset,
/// refusing parts that do not belong together or do not cover the run exactly.
pub fn merge(
    parts: &[Dataset],
    out: &Path,
    shard_size: usize,
    overwrite: bool,
) -> Result<Manifest> {
    if parts.is_empty() {
        return Err(Error::Data("nothing to merge".into()));
    }
    let mut order: Vec<&Dataset> = parts.iter().collect();
    order.sort_by_key(|d| d.manifest.part.map(|p| p.start).unwrap_or(0));
    let first = order[0];
    let total = first.manifest.part.map(|p| p.total);
    let mut next = 0;
    for d in &order {
        first.check_compatible(d)?;
        if d.param_names() != first.param_names() {
            return Err(Error::Data(format!(
                "{}: different parameters",
                d.path.display()
            )));
        }
        if strip_volatile(&d.manifest.source) != strip_volatile(&first.manifest.source) {
            return Err(Error::Data(format!(
                "{} was produced by a different source or configuration than {}",
                d.path.display(),
                first.path.display()
            )));
        }
        let start = d.manifest.part.map(|p| p.start).unwrap_or(next);
        if start != next || d.manifest.part.map(|p| p.total) != total {
            return Err(Error::Data(format!(
                "{}: part starts at sample {start}, expected {next} (parts must cover the run without gaps or overlaps)",
                d.path.display()
            )));
        }
        if d.manifest.seeds.as_ref().map(|s| s.run_seed)
            != first.manifest.seeds.as_ref().map(|s| s.run_seed)
        {
            return Err(Error::Data(format!(
                "{}: different run seed",
                d.path.display()
            )));
        }
        next += d.len();
    }
    if let Some(t) = total {
        if next != t {
            return Err(Error::Data(format!(
                "the parts hold {next} of the run's {t} samples"
            )));
        }
    }
    let mut source = strip_volatile(&first.manifest.source);
    source.insert(
        "merged_from".into(),
        order
            .iter()
            .map(|d| d.path.display().to_string())
            .collect::<Vec<_>>()
            .into(),
    );
    let mut spec = DatasetSpec::new(first.fields().to_vec(), first.param_names().to_vec());
    spec.source = source;
    spec.shard_size = shard_size;
    spec.run_seed = first.manifest.seeds.as_ref().map(|s| s.run_seed);
    let mut w = DatasetWriter::create(out, spec, overwrite)?;
    for d in &order {
        for chunk in d.chunks(256) {
            let (start, samples) = chunk?;
            for (k, s) in samples.iter().enumerate() {
                w.push(s, d.seeds().map(|v| v[start + k]))?;
            }
        }
    }
    w.finish()
}

/// The source record without what legitimately differs between parts of one run.
fn strip_volatile(
    source: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    let mut s = source.clone();
    s.remove("created_unix");
    s.remove("shard");
    s
}

/// Counts of samples per parameter point, used by `info`.
pub fn param_ranges(ds: &Dataset) -> BTreeMap<String, (f64, f64)> {
    let mut out = BTreeMap::new();
    for (j, name) in ds.param_names().iter().enumerate() {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for i in 0..ds.len() {
            let v = ds.params_of(i)[j];
            lo = lo.min(v);
            hi = hi.max(v);
        }
        out.insert(name.clone(), (lo, hi));
    }
    out
}
