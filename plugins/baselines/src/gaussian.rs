//! The `gaussian-field` baseline.

use std::path::Path;

use serde::{Deserialize, Serialize};
use simemu_core::fsutil::write_json_atomic;
use simemu_core::{
    Array, DType, Dataset, Error, Field, FieldSpec, Generator, ParamSpec, Registry, Result, Sample,
    TrainOptions, TrainSummary,
};
use simemu_grid::num_complex::Complex64;
use simemu_grid::{fft2, FieldDrawer};

const STATE_FILE: &str = "gaussian-field.json";
const POWER_FILE: &str = "gaussian-field-power.npy";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    field: FieldSpec,
    mean: f64,
    training_samples: usize,
}

pub struct GaussianField {
    state: Option<(State, Vec<f64>, FieldDrawer<f64>)>,
}

impl GaussianField {
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        crate::no_options("gaussian-field", config)?;
        Ok(GaussianField { state: None })
    }

    pub fn load(dir: &Path, config: &serde_json::Value) -> Result<Self> {
        let mut g = Self::from_config(config)?;
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let state: State = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&path, format!("corrupt checkpoint: {e}")))?;
        let ppath = dir.join(POWER_FILE);
        let (shape, power) = simemu_core::npy::read::<f64>(&ppath)?;
        let n = side(&state.field)?;
        if shape != [n, n] || power.iter().any(|p| !p.is_finite() || *p < 0.0) {
            return Err(Error::bad_file(
                &ppath,
                format!("expected a non-negative {n}×{n} power map, got shape {shape:?}"),
            ));
        }
        let drawer = FieldDrawer::new(&power, n);
        g.state = Some((state, power, drawer));
        Ok(g)
    }
}

fn side(spec: &FieldSpec) -> Result<usize> {
    match spec.shape.as_slice() {
        [a, b] if a == b && a.is_power_of_two() => Ok(*a),
        s => Err(Error::Data(format!(
            "gaussian-field needs square 2D maps with a power-of-two side; field '{}' has shape {s:?}",
            spec.name
        ))),
    }
}

impl Generator for GaussianField {
    fn name(&self) -> &str {
        "gaussian-field"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn fields(&self) -> Vec<FieldSpec> {
        self.state
            .as_ref()
            .map(|(s, ..)| vec![s.field.clone()])
            .unwrap_or_default()
    }
    fn params(&self) -> Vec<ParamSpec> {
        Vec::new()
    }
    fn train(
        &mut self,
        data: &Dataset,
        _options: &TrainOptions,
        _registry: &Registry,
    ) -> Result<TrainSummary> {
        if data.fields().len() != 1 {
            return Err(Error::Data(
                "gaussian-field: the training data must hold exactly one field".into(),
            ));
        }
        let spec = data.fields()[0].clone();
        let n = side(&spec)?;
        let count = data.len();
        if count < 2 {
            return Err(Error::Data(
                "gaussian-field: at least 2 training maps are needed".into(),
            ));
        }
        // Mean |DFT|²/N² per mode; the DC mode from the scatter of the map means.
        let mut power = vec![0.0; n * n];
        let mut means = Vec::with_capacity(count);
        for chunk in data.chunks(128) {
            let (_, samples) = chunk?;
            for s in &samples {
                let m = s.fields[0].data.to_f64();
                means.push(m.iter().sum::<f64>() / (n * n) as f64);
                let mut c: Vec<Complex64> = m.iter().map(|&x| Complex64::new(x, 0.0)).collect();
                fft2(&mut c, n, false);
                for (p, z) in power.iter_mut().zip(&c) {
                    *p += z.norm_sqr() / (n * n) as f64 / count as f64;
                }
            }
        }
        let mean = means.iter().sum::<f64>() / count as f64;
        let var_mean = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (count - 1) as f64;
        power[0] = var_mean * (n * n) as f64;
        let drawer = FieldDrawer::new(&power, n);
        let mut field = spec;
        field.dtype = DType::F32;
        self.state = Some((
            State {
                field,
                mean,
                training_samples: count,
            },
            power,
            drawer,
        ));
        Ok(TrainSummary::default())
    }
    fn save(&self, dir: &Path) -> Result<()> {
        let (state, power, _) = self
            .state
            .as_ref()
            .ok_or_else(|| Error::Other("gaussian-field: not trained".into()))?;
        let n = side(&state.field)?;
        simemu_core::npy::write(&dir.join(POWER_FILE), &[n, n], power)?;
        write_json_atomic(&dir.join(STATE_FILE), state)
    }
    fn generate(&self, params: &[f64], seeds: &[u64]) -> Result<Vec<Sample>> {
        let (state, _, drawer) = self
            .state
            .as_ref()
            .ok_or_else(|| Error::Other("gaussian-field: not trained".into()))?;
        if !params.is_empty() {
            return Err(Error::Parameter(
                "gaussian-field is unconditional: it takes no parameters".into(),
            ));
        }
        seeds
            .iter()
            .map(|&seed| {
                let mut rng = simemu_core::seed::rng(seed);
                let m: Vec<f32> = drawer
                    .draw(&mut rng)
                    .into_iter()
                    .map(|x| (x + state.mean) as f32)
                    .collect();
                Ok(Sample::single(
                    Field::new(
                        state.field.name.clone(),
                        state.field.shape.clone(),
                        Array::F32(m),
                    )?,
                    vec![],
                ))
            })
            .collect()
    }
}
