//! The `simulator` baseline.

use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use simemu_core::fsutil::write_json_atomic;
use simemu_core::{
    Dataset, Error, FieldSpec, Generator, ParamSpec, PreparedSimulator, Registry, Result, Sample,
    Simulator, TrainOptions, TrainSummary,
};

const STATE_FILE: &str = "simulator-baseline.json";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct State {
    simulator: String,
    config: serde_json::Value,
    /// Parameters used when `generate` is given none: those of the first training sample.
    default_params: Vec<f64>,
}

/// The simulator prepared at the parameters of the last `generate` call.
type PreparedCache = Mutex<Option<(Vec<f64>, Box<dyn PreparedSimulator>)>>;

pub struct SimulatorBaseline {
    state: Option<(State, Box<dyn Simulator>)>,
    prepared: PreparedCache,
}

impl SimulatorBaseline {
    pub fn from_config(config: &serde_json::Value) -> Result<Self> {
        crate::no_options("simulator", config)?;
        Ok(SimulatorBaseline {
            state: None,
            prepared: Mutex::new(None),
        })
    }

    pub fn load(dir: &Path, config: &serde_json::Value, registry: &Registry) -> Result<Self> {
        let mut g = Self::from_config(config)?;
        let path = checkpoint_file(dir)?;
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let state: State = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(&path, format!("corrupt checkpoint: {e}")))?;
        let sim = registry.build_simulator(&state.simulator, &state.config)?;
        g.state = Some((state, sim));
        Ok(g)
    }

    fn ready(&self) -> Result<&(State, Box<dyn Simulator>)> {
        self.state.as_ref().ok_or_else(|| {
            Error::Other(
                "simulator baseline: not trained (train it on a simulated dataset first)".into(),
            )
        })
    }
}

/// The checkpoint file in a run directory or in one of its checkpoint directories.
fn checkpoint_file(dir: &Path) -> Result<std::path::PathBuf> {
    let p = dir.join(STATE_FILE);
    if p.exists() {
        Ok(p)
    } else {
        Err(Error::bad_file(
            dir,
            format!("no {STATE_FILE}: not a simulator-baseline checkpoint"),
        ))
    }
}

impl Generator for SimulatorBaseline {
    fn name(&self) -> &str {
        "simulator"
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn fields(&self) -> Vec<FieldSpec> {
        self.state
            .as_ref()
            .map(|(_, s)| s.fields())
            .unwrap_or_default()
    }
    fn params(&self) -> Vec<ParamSpec> {
        self.state
            .as_ref()
            .map(|(_, s)| s.params().to_vec())
            .unwrap_or_default()
    }
    fn train(
        &mut self,
        data: &Dataset,
        _options: &TrainOptions,
        registry: &Registry,
    ) -> Result<TrainSummary> {
        let src = &data.manifest().source;
        if src.get("kind").and_then(|v| v.as_str()) != Some("simulator") {
            return Err(Error::Data(format!(
                "simulator baseline: {} was not produced by a simulator (its source is {:?})",
                data.path().display(),
                src.get("kind")
            )));
        }
        let name = src
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let config = src
            .get("config")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let sim = registry.build_simulator(&name, &config)?;
        let state = State {
            simulator: name,
            config,
            default_params: data.params_of(0).to_vec(),
        };
        self.state = Some((state, sim));
        *self.prepared.lock().unwrap() = None;
        Ok(TrainSummary::default())
    }
    fn save(&self, dir: &Path) -> Result<()> {
        let (state, _) = self.ready()?;
        write_json_atomic(&dir.join(STATE_FILE), state)
    }
    fn generate(&self, params: &[f64], seeds: &[u64]) -> Result<Vec<Sample>> {
        let (state, sim) = self.ready()?;
        let params = if params.is_empty() {
            state.default_params.clone()
        } else {
            params.to_vec()
        };
        simemu_core::params::check_params(sim.params(), &params)?;
        let mut cache = self.prepared.lock().unwrap();
        if cache.as_ref().map(|(p, _)| p != &params).unwrap_or(true) {
            *cache = Some((params.clone(), sim.prepare(&params)?));
        }
        let prepared = &cache.as_ref().unwrap().1;
        seeds.iter().map(|&s| prepared.simulate(s)).collect()
    }
}
