//! `simemu._simemu`: the extension module under the `simemu` Python package.
//!
//! Each function is a thin conversion between numpy arrays and the libraries the
//! CLI runs (`simemu-core`, `simemu-validate`, `simemu-pipeline` and the
//! plugins), so the same inputs give the same bytes through either front. Heavy
//! work runs with the interpreter detached. Errors are raised as
//! `_simemu.RawError(kind, message)`; the Python layer turns them into
//! `simemu.Error` and its subclasses.

use simemu_validate::vector::VectorTest;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, RwLock};

use numpy::ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use simemu_core::simulate::{simulate_samples, SimulationJob};
use simemu_core::{
    Array, ArrayView, DType, Dataset, DatasetSpec, DatasetWriter, Field, FieldSpec, FieldView,
    Registry, Sample,
};
use simemu_validate::StatRequest;

// The statically linked plugins: a crate only named in Cargo.toml is dropped by
// the linker and its registrations vanish.
use simemu_baselines as _;
use simemu_calorimeter as _;
use simemu_convergence as _;
use simemu_dcgan as _;
use simemu_density3d as _;
use simemu_io as _;
use simemu_map_stats as _;

pyo3::create_exception!(_simemu, RawError, PyException);

/// The kinds of error the Python layer maps to exception classes.
fn raw(kind: &str, message: String) -> PyErr {
    RawError::new_err((kind.to_string(), message))
}

fn core_error(e: simemu_core::Error) -> PyErr {
    use simemu_core::Error as E;
    let kind = match &e {
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => "not_found",
        E::Io { .. } => "io",
        E::Parameter(_) | E::Option(_) | E::Data(_) | E::UnknownPlugin(_) | E::Refused(_) => {
            "value"
        }
        E::BadFile { path, .. } if !path.exists() => "not_found",
        E::BadFile { .. } => "bad_file",
        _ => "runtime",
    };
    raw(kind, e.to_string())
}

fn pipeline_error(e: simemu_pipeline::Error) -> PyErr {
    let message = e.with_causes();
    let mut inner = &e;
    while let simemu_pipeline::Error::Context { source, .. } = inner {
        inner = source;
    }
    let kind = match inner {
        simemu_pipeline::Error::Core(simemu_core::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            "not_found"
        }
        _ if e.is_request_error() => "value",
        _ => "runtime",
    };
    raw(kind, message)
}

fn value_error(message: impl Into<String>) -> PyErr {
    raw("value", message.into())
}

fn json_error(e: serde_json::Error) -> PyErr {
    value_error(format!("invalid JSON from the Python layer: {e}"))
}

/// The registry: static plugins plus every loaded dynamic one.
fn registry() -> &'static RwLock<Registry> {
    static REGISTRY: OnceLock<RwLock<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        RwLock::new(Registry::with_static_plugins().expect("static plugins register"))
    })
}

fn read_registry() -> std::sync::RwLockReadGuard<'static, Registry> {
    registry().read().unwrap_or_else(|e| e.into_inner())
}

/// The registry as `simemu list --json` shows it.
#[pyfunction]
fn plugins_json() -> String {
    read_registry().listing().to_string()
}

/// Loads a dynamic plugin (a cdylib built against this simemu).
#[pyfunction]
fn load_plugin(path: PathBuf) -> PyResult<()> {
    let mut reg = registry().write().unwrap_or_else(|e| e.into_inner());
    reg.load_dynamic(&path).map_err(core_error)
}

/// Sets the worker threads, as the CLI's `--threads` (once, before any work).
#[pyfunction]
fn set_threads(threads: usize) -> PyResult<()> {
    if threads == 0 {
        return Err(value_error("threads must be at least 1"));
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| {
            raw(
                "runtime",
                format!("the thread pool is already running: {e}"),
            )
        })
}

#[pyfunction]
fn version() -> &'static str {
    simemu_core::VERSION
}

/// An owned array of `count` samples of `shape` as numpy, (count, *shape).
fn to_numpy<'py>(
    py: Python<'py>,
    data: Array,
    count: usize,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let mut full = vec![count];
    full.extend_from_slice(shape);
    let dims = IxDyn(&full);
    let shape_error = |e: numpy::ndarray::ShapeError| raw("runtime", e.to_string());
    Ok(match data {
        Array::F32(v) => ArrayD::from_shape_vec(dims, v)
            .map_err(shape_error)?
            .into_pyarray(py)
            .into_any(),
        Array::F64(v) => ArrayD::from_shape_vec(dims, v)
            .map_err(shape_error)?
            .into_pyarray(py)
            .into_any(),
    })
}

/// Samples' fields stacked: per field (name, (N, *shape) array, attributes as
/// JSON), and the parameters (N × P, row-major).
type Stacked<'py> = (Vec<(String, Bound<'py, PyAny>, String)>, Vec<f64>);

fn stack<'py>(py: Python<'py>, specs: &[FieldSpec], samples: &[Sample]) -> PyResult<Stacked<'py>> {
    let mut fields = Vec::new();
    for (k, spec) in specs.iter().enumerate() {
        let data = match spec.dtype {
            DType::F32 => Array::F32(
                samples
                    .iter()
                    .flat_map(|s| match &s.fields[k].data {
                        Array::F32(v) => v.clone(),
                        Array::F64(v) => v.iter().map(|&x| x as f32).collect(),
                    })
                    .collect(),
            ),
            DType::F64 => Array::F64(
                samples
                    .iter()
                    .flat_map(|s| s.fields[k].data.to_f64())
                    .collect(),
            ),
        };
        let attrs = serde_json::to_string(&spec.attrs).map_err(json_error)?;
        fields.push((
            spec.name.clone(),
            to_numpy(py, data, samples.len(), &spec.shape)?,
            attrs,
        ));
    }
    let params = samples
        .iter()
        .flat_map(|s| s.params.iter().copied())
        .collect();
    Ok((fields, params))
}

/// Simulates a design in memory, as `simemu simulate` writes it: the fields,
/// the parameters (N × P) and their names, and each sample's seed.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn simulate<'py>(
    py: Python<'py>,
    name: &str,
    options_json: &str,
    design_json: &str,
    seed: u64,
) -> PyResult<(Stacked<'py>, Vec<String>, Vec<u64>)> {
    let options: serde_json::Value = serde_json::from_str(options_json).map_err(json_error)?;
    let design: simemu_pipeline::Design = serde_json::from_str(design_json).map_err(json_error)?;
    let reg = read_registry();
    let sim = reg.build_simulator(name, &options).map_err(core_error)?;
    let samples = py.detach(|| -> Result<_, PyErr> {
        let (points, _) = design.points(sim.params(), seed).map_err(pipeline_error)?;
        let job = SimulationJob {
            simulator: sim.as_ref(),
            points,
            count_per_point: design.count,
            run_seed: seed,
            shard: None,
            shard_size: simemu_core::dataset::DEFAULT_SHARD_SIZE,
            extra_source: Default::default(),
        };
        simulate_samples(&job).map_err(core_error)
    })?;
    let seeds = samples.iter().map(|(_, s)| *s).collect();
    let samples: Vec<Sample> = samples.into_iter().map(|(s, _)| s).collect();
    let names = sim.params().iter().map(|p| p.name.clone()).collect();
    Ok((stack(py, &sim.fields(), &samples)?, names, seeds))
}

/// The values of a float32 or float64 numpy array: borrowed when it is
/// C-contiguous, else copied in C order.
enum Values<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>),
    F64(PyReadonlyArrayDyn<'py, f64>),
}

/// Owned C-order copies of non-contiguous arrays.
enum Owned {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl<'py> Values<'py> {
    fn extract(array: &Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        if let Ok(a) = array.extract::<PyReadonlyArrayDyn<'py, f32>>() {
            return Ok(Values::F32(a));
        }
        if let Ok(a) = array.extract::<PyReadonlyArrayDyn<'py, f64>>() {
            return Ok(Values::F64(a));
        }
        Err(value_error(format!(
            "{what} must be a float32 or float64 numpy array"
        )))
    }

    fn shape(&self) -> Vec<usize> {
        match self {
            Values::F32(a) => a.shape().to_vec(),
            Values::F64(a) => a.shape().to_vec(),
        }
    }

    /// A copy when the array is not C-contiguous (None: it can be read in place).
    fn copy_if_strided(&self) -> Option<Owned> {
        match self {
            Values::F32(a) if !a.is_c_contiguous() => {
                Some(Owned::F32(a.as_array().iter().copied().collect()))
            }
            Values::F64(a) if !a.is_c_contiguous() => {
                Some(Owned::F64(a.as_array().iter().copied().collect()))
            }
            _ => None,
        }
    }

    /// All values in C order: in place, or from `copy`.
    fn view<'a>(&'a self, copy: &'a Option<Owned>) -> ArrayView<'a> {
        match (copy, self) {
            (Some(Owned::F32(v)), _) => ArrayView::F32(v),
            (Some(Owned::F64(v)), _) => ArrayView::F64(v),
            (None, Values::F32(a)) => ArrayView::F32(a.as_slice().expect("C-contiguous")),
            (None, Values::F64(a)) => ArrayView::F64(a.as_slice().expect("C-contiguous")),
        }
    }

    fn dtype(&self) -> DType {
        match self {
            Values::F32(_) => DType::F32,
            Values::F64(_) => DType::F64,
        }
    }
}

/// Whether the last statistic call read its samples in place (tests check that
/// C-contiguous arrays are not copied).
static LAST_READ_IN_PLACE: Mutex<bool> = Mutex::new(false);

#[pyfunction]
fn last_statistic_read_in_place() -> bool {
    *LAST_READ_IN_PLACE.lock().unwrap_or_else(|e| e.into_inner())
}

fn sample_view<'a>(all: ArrayView<'a>, i: usize, len: usize) -> ArrayView<'a> {
    match all {
        ArrayView::F32(v) => ArrayView::F32(&v[i * len..(i + 1) * len]),
        ArrayView::F64(v) => ArrayView::F64(&v[i * len..(i + 1) * len]),
    }
}

type KeptStatistic = std::sync::Arc<dyn simemu_core::Statistic>;

/// Statistics whose bins need no data (every bin given), by name, options,
/// attributes, sample shape and type: a notebook's repeated calls build each
/// once. The most recent few are kept.
static KEPT: Mutex<Vec<(String, KeptStatistic)>> = Mutex::new(Vec::new());
const KEPT_STATISTICS: usize = 16;

fn kept_statistic(key: &str) -> Option<KeptStatistic> {
    let kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    kept.iter().find(|(k, _)| k == key).map(|(_, s)| s.clone())
}

fn keep_statistic(key: String, stat: Box<dyn simemu_core::Statistic>) -> KeptStatistic {
    let stat: KeptStatistic = std::sync::Arc::from(stat);
    let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() == KEPT_STATISTICS {
        kept.remove(0);
    }
    kept.push((key, stat.clone()));
    stat
}

/// Computes statistic `name` on every sample of `samples` (N, *shape); the
/// quantile bins come from `reference` (default: the samples themselves).
/// Returns the bin centres, the abscissa's name, the component names and the
/// values, `[component][sample][bin]`, flattened.
#[pyfunction]
#[pyo3(signature = (name, options_json, attrs_json, samples, reference=None))]
#[allow(clippy::type_complexity)]
fn statistic<'py>(
    py: Python<'py>,
    name: &str,
    options_json: &str,
    attrs_json: &str,
    samples: &Bound<'py, PyAny>,
    reference: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Vec<f64>, String, Vec<String>, Bound<'py, PyAny>)> {
    let options: serde_json::Value = serde_json::from_str(options_json).map_err(json_error)?;
    let attrs: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(attrs_json).map_err(json_error)?;
    simemu_pipeline::check_dataset_facts(&attrs, &str::to_string).map_err(pipeline_error)?;
    let values = Values::extract(samples, "samples")?;
    let shape = values.shape();
    if shape.len() < 2 {
        return Err(value_error(format!(
            "samples must be an array of samples (N, …), got shape {shape:?}"
        )));
    }
    let (count, sample_shape) = (shape[0], shape[1..].to_vec());
    let len: usize = sample_shape.iter().product();
    let reference = reference
        .map(|r| Values::extract(r, "reference"))
        .transpose()?;
    if let Some(r) = &reference {
        if r.shape()[1..] != sample_shape[..] {
            return Err(value_error(format!(
                "reference samples have shape {:?}, the samples {sample_shape:?}",
                &r.shape()[1..]
            )));
        }
    }
    let copy = values.copy_if_strided();
    *LAST_READ_IN_PLACE.lock().unwrap_or_else(|e| e.into_inner()) = copy.is_none();
    let reference_copy = reference.as_ref().and_then(Values::copy_if_strided);
    let mut spec = FieldSpec::new("field", sample_shape.clone(), values.dtype());
    spec.attrs = attrs;
    let all = values.view(&copy);
    let pooled_from = match &reference {
        Some(r) => r.view(&reference_copy),
        None => all,
    };
    let reg = read_registry();
    let key = format!(
        "{name}\n{options_json}\n{attrs_json}\n{sample_shape:?}\n{:?}",
        values.dtype()
    );
    let (x, x_name, components, out) = py.detach(|| -> Result<_, PyErr> {
        use rayon::prelude::*;
        let stat = match kept_statistic(&key) {
            Some(stat) => stat,
            None => {
                let kept = simemu_validate::measure::build_statistic_without_values(
                    &reg,
                    name,
                    &options,
                    spec.clone(),
                )
                .map_err(core_error)?;
                match kept {
                    Some(stat) => keep_statistic(key, stat),
                    None => std::sync::Arc::from(
                        simemu_validate::measure::build_statistic_for_values(
                            &reg,
                            name,
                            &options,
                            spec,
                            pooled_from,
                        )
                        .map_err(core_error)?,
                    ),
                }
            }
        };
        let per_sample = (0..count)
            .into_par_iter()
            .map(|i| {
                let field = FieldView {
                    name: "field",
                    shape: &sample_shape,
                    data: sample_view(all, i, len),
                };
                stat.compute_view(field).map_err(|e| {
                    let message = match e {
                        simemu_core::Error::Data(m) => m,
                        other => other.to_string(),
                    };
                    core_error(simemu_core::Error::Data(format!(
                        "{name}: sample {i}: {message}"
                    )))
                })
            })
            .collect::<Result<Vec<_>, PyErr>>()?;
        let components = stat.components();
        let bins = stat.x().len();
        let mut out = Vec::with_capacity(components.len() * count * bins);
        for c in 0..components.len() {
            for values in &per_sample {
                out.extend_from_slice(&values[c]);
            }
        }
        Ok((
            stat.x().to_vec(),
            stat.x_name().to_string(),
            components,
            out,
        ))
    })?;
    let bins = x.len();
    let values = to_numpy(py, Array::F64(out), components.len(), &[count, bins])?;
    Ok((x, x_name, components, values))
}

/// The requests for statistics `names` with one table of options, by the
/// command line's rule (`simemu_pipeline::statistic_requests_for`), as JSON.
#[pyfunction]
fn statistic_requests(names: Vec<String>, options_json: &str) -> PyResult<String> {
    let given = serde_json::from_str(options_json).map_err(json_error)?;
    let requests =
        simemu_pipeline::statistic_requests_for(&read_registry(), &names, &given, &str::to_string)
            .map_err(pipeline_error)?;
    serde_json::to_string(&requests).map_err(json_error)
}

/// A dataset's manifest and layout, as JSON.
#[pyfunction]
fn dataset_info(path: PathBuf) -> PyResult<String> {
    let ds = Dataset::open(&path).map_err(core_error)?;
    serde_json::to_string(&serde_json::json!({
        "len": ds.len(),
        "fields": ds.fields(),
        "param_names": ds.param_names(),
        "source": ds.manifest().source,
    }))
    .map_err(json_error)
}

/// Samples `start..start + count` of a dataset's field `field`, (count, *shape).
#[pyfunction]
fn dataset_read<'py>(
    py: Python<'py>,
    path: PathBuf,
    field: usize,
    start: usize,
    count: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let ds = Dataset::open(&path).map_err(core_error)?;
    let spec = ds
        .fields()
        .get(field)
        .cloned()
        .ok_or_else(|| value_error(format!("the dataset has {} fields", ds.fields().len())))?;
    if start + count > ds.len() {
        return Err(value_error(format!(
            "samples {start}..{} of a dataset of {}",
            start + count,
            ds.len()
        )));
    }
    let data = py
        .detach(|| ds.read_field_range(field, start, count))
        .map_err(core_error)?;
    to_numpy(py, data, count, &spec.shape)
}

/// A dataset's parameters (N × P, row-major) and seeds.
#[pyfunction]
fn dataset_params(path: PathBuf) -> PyResult<(Vec<f64>, Option<Vec<u64>>)> {
    let ds = Dataset::open(&path).map_err(core_error)?;
    let params = (0..ds.len())
        .flat_map(|i| ds.params_of(i).to_vec())
        .collect();
    Ok((params, ds.seeds().map(<[u64]>::to_vec)))
}

/// Writes arrays as a dataset: per field (name, (N, *shape) array, attributes
/// as JSON), the parameters (N × P) with their names.
#[pyfunction]
#[pyo3(signature = (path, fields, params, param_names, force=false))]
fn write_dataset(
    py: Python<'_>,
    path: PathBuf,
    fields: Vec<(String, Bound<'_, PyAny>, String)>,
    params: Vec<f64>,
    param_names: Vec<String>,
    force: bool,
) -> PyResult<()> {
    let mut specs = Vec::new();
    let mut arrays = Vec::new();
    let mut count = None;
    for (name, array, attrs) in &fields {
        let values = Values::extract(array, &format!("field '{name}'"))?;
        let shape = values.shape();
        if shape.is_empty() {
            return Err(value_error(format!(
                "field '{name}' must hold samples (N, …)"
            )));
        }
        if *count.get_or_insert(shape[0]) != shape[0] {
            return Err(value_error(format!(
                "field '{name}' has {} samples, the first field {}",
                shape[0],
                count.unwrap_or(0)
            )));
        }
        let mut spec = FieldSpec::new(name.clone(), shape[1..].to_vec(), values.dtype());
        spec.attrs = serde_json::from_str(attrs).map_err(json_error)?;
        let copy = values.copy_if_strided();
        arrays.push(values.view(&copy).to_array());
        specs.push(spec);
    }
    let count = count.ok_or_else(|| value_error("a dataset needs at least one field"))?;
    let p = param_names.len();
    if params.len() != count * p {
        return Err(value_error(format!(
            "{} parameter values for {count} samples of {p} parameters",
            params.len()
        )));
    }
    py.detach(|| -> Result<(), PyErr> {
        let spec = DatasetSpec::new(specs.clone(), param_names.clone());
        let mut writer = DatasetWriter::create(&path, spec, force).map_err(core_error)?;
        for i in 0..count {
            let fields = specs
                .iter()
                .zip(&arrays)
                .map(|(s, a)| {
                    let len = s.len();
                    Field::new(s.name.clone(), s.shape.clone(), a.slice(i * len, len))
                })
                .collect::<simemu_core::Result<Vec<_>>>()
                .map_err(core_error)?;
            let sample = Sample {
                fields,
                params: params[i * p..(i + 1) * p].to_vec(),
            };
            writer.push(&sample, None).map_err(core_error)?;
        }
        writer.finish().map_err(core_error)?;
        Ok(())
    })
}

/// Validates a candidate dataset against a reference dataset; writes the report
/// directory to `out` if given. Returns the report as JSON.
#[pyfunction]
#[pyo3(signature = (reference, candidate, statistics_json, field=None, out=None, force=false, tests=Vec::new()))]
#[allow(clippy::too_many_arguments)]
fn validate(
    py: Python<'_>,
    reference: PathBuf,
    candidate: PathBuf,
    statistics_json: &str,
    field: Option<String>,
    out: Option<PathBuf>,
    force: bool,
    tests: Vec<String>,
) -> PyResult<String> {
    let statistics: Vec<StatRequest> = serde_json::from_str(statistics_json).map_err(json_error)?;
    let tests = tests
        .iter()
        .map(|name| {
            VectorTest::named(name).ok_or_else(|| {
                value_error(format!(
                    "unknown test '{name}' (known: {})",
                    test_names().join(", ")
                ))
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let reg = read_registry();
    let report = py.detach(|| -> Result<_, PyErr> {
        let candidates = [candidate];
        // Without a report directory the report is written to scratch space and
        // only returned.
        let scratch = tempfile::tempdir().map_err(|e| raw("io", e.to_string()))?;
        let out = out.clone().unwrap_or_else(|| scratch.path().join("report"));
        let request = simemu_pipeline::CompareRequest {
            reference: &reference,
            candidates: &candidates,
            statistics: &statistics,
            vector_tests: &tests,
            field: field.as_deref(),
            out: &out,
            force,
        };
        simemu_pipeline::validate(&reg, &request, &simemu_pipeline::Silent).map_err(pipeline_error)
    })?;
    serde_json::to_string(&report).map_err(json_error)
}

/// The names of the tests on whole samples and statistic vectors, which
/// `validate` runs beside the statistics.
#[pyfunction]
fn test_names() -> Vec<&'static str> {
    VectorTest::ALL.iter().map(|t| t.name()).collect()
}

/// A trained generator, loaded once.
#[pyclass(module = "simemu._simemu")]
struct Generator {
    inner: Mutex<simemu_pipeline::LoadedGenerator>,
    /// The plugin's name.
    #[pyo3(get)]
    name: String,
    /// The checkpoint as given (a path or `builtin:NAME`).
    #[pyo3(get)]
    checkpoint: String,
}

/// Loads the generator of a run directory, a checkpoint inside one, or a
/// shipped `builtin:NAME`, onto `device` (`cpu`, `cuda`, `cuda:N`).
#[pyfunction]
#[pyo3(signature = (checkpoint, device="cpu"))]
fn load(py: Python<'_>, checkpoint: &str, device: &str) -> PyResult<Generator> {
    let device: simemu_core::ComputeDevice = device.parse().map_err(core_error)?;
    let reg = read_registry();
    let loaded = py
        .detach(|| simemu_pipeline::load_generator(&reg, std::path::Path::new(checkpoint), device))
        .map_err(pipeline_error)?;
    Ok(Generator {
        name: loaded.run.generator.clone(),
        inner: Mutex::new(loaded),
        checkpoint: checkpoint.to_string(),
    })
}

#[pymethods]
impl Generator {
    /// The condition's parameter names (empty: unconditional).
    #[getter]
    fn param_names(&self) -> Vec<String> {
        let g = self.lock();
        g.generator
            .params()
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }

    /// `count` samples drawn from `sample_seed(seed, i)`, in calls of `batch`,
    /// as `simemu generate` draws them.
    #[pyo3(signature = (count, params, seed=0, batch=64))]
    fn generate<'py>(
        &self,
        py: Python<'py>,
        count: usize,
        params: Vec<(String, f64)>,
        seed: u64,
        batch: usize,
    ) -> PyResult<Stacked<'py>> {
        if count == 0 || batch == 0 {
            return Err(value_error("count and batch must be at least 1"));
        }
        let (samples, fields) = py.detach(|| -> Result<_, PyErr> {
            let g = self.lock();
            let values = g.condition(&params).map_err(pipeline_error)?;
            let mut all = Vec::with_capacity(count);
            for start in (0..count).step_by(batch) {
                let seeds = simemu_pipeline::sample_seeds(seed, start, batch.min(count - start));
                all.extend(g.generator.generate(&values, &seeds).map_err(core_error)?);
            }
            Ok((all, g.generator.fields()))
        })?;
        stack(py, &fields, &samples)
    }
}

impl Generator {
    fn lock(&self) -> std::sync::MutexGuard<'_, simemu_pipeline::LoadedGenerator> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymodule]
fn _simemu(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("RawError", m.py().get_type::<RawError>())?;
    m.add_class::<Generator>()?;
    m.add_function(wrap_pyfunction!(plugins_json, m)?)?;
    m.add_function(wrap_pyfunction!(load_plugin, m)?)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(statistic, m)?)?;
    m.add_function(wrap_pyfunction!(last_statistic_read_in_place, m)?)?;
    m.add_function(wrap_pyfunction!(statistic_requests, m)?)?;
    m.add_function(wrap_pyfunction!(dataset_info, m)?)?;
    m.add_function(wrap_pyfunction!(dataset_read, m)?)?;
    m.add_function(wrap_pyfunction!(dataset_params, m)?)?;
    m.add_function(wrap_pyfunction!(write_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(validate, m)?)?;
    m.add_function(wrap_pyfunction!(test_names, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    Ok(())
}
