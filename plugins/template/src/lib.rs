//! # A template dynamic plugin
//!
//! Build with `cargo build --release -p simemu-plugin-template` and load with
//! `simemu --plugin target/release/libsimemu_plugin_template.so list`.
//! It registers one simulator (`white-noise`) and one statistic (`moments`): copy
//! the crate, rename them, and replace the physics.
//!
//! The plugin must be built with the same rustc and simemu-core as the `simemu`
//! binary that loads it; simemu checks this before calling any Rust code of the
//! library and refuses a mismatch with a message saying what differs.

use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use simemu_core::{
    Array, DType, Error, Field, FieldSpec, OptionSpec, ParamSpec, PreparedSimulator, Registry,
    Result, Sample, Simulator, StatContext, StatValues, Statistic,
};

/// Options of `white-noise`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhiteNoiseConfig {
    /// Pixels per side.
    #[serde(default = "default_size")]
    pub size: usize,
}

fn default_size() -> usize {
    32
}

/// Gaussian white noise maps of standard deviation `sigma` around `mean`.
pub struct WhiteNoise {
    config: WhiteNoiseConfig,
    params: Vec<ParamSpec>,
}

struct PreparedWhiteNoise {
    size: usize,
    params: Vec<f64>,
    normal: Normal<f64>,
}

impl Simulator for WhiteNoise {
    fn name(&self) -> &str {
        "white-noise"
    }
    fn params(&self) -> &[ParamSpec] {
        &self.params
    }
    fn fields(&self) -> Vec<FieldSpec> {
        vec![FieldSpec::new(
            "noise",
            vec![self.config.size, self.config.size],
            DType::F32,
        )]
    }
    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("serialisable")
    }
    fn prepare(&self, params: &[f64]) -> Result<Box<dyn PreparedSimulator>> {
        let normal =
            Normal::new(params[0], params[1]).map_err(|e| Error::Parameter(e.to_string()))?;
        Ok(Box::new(PreparedWhiteNoise {
            size: self.config.size,
            params: params.to_vec(),
            normal,
        }))
    }
}

impl PreparedSimulator for PreparedWhiteNoise {
    fn simulate(&self, seed: u64) -> Result<Sample> {
        let mut rng = simemu_core::seed::rng(seed);
        let v: Vec<f32> = (0..self.size * self.size)
            .map(|_| self.normal.sample(&mut rng) as f32)
            .collect();
        Ok(Sample::single(
            Field::new("noise", vec![self.size, self.size], Array::F32(v))?,
            self.params.clone(),
        ))
    }
}

/// Mean, variance and skewness of a sample's field (any shape).
pub struct Moments {
    field: String,
}

impl Statistic for Moments {
    fn name(&self) -> &str {
        "moments"
    }
    fn x_name(&self) -> &str {
        "order"
    }
    fn x(&self) -> &[f64] {
        &[1.0, 2.0, 3.0]
    }
    fn components(&self) -> Vec<String> {
        vec!["moment".into()]
    }
    fn options(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn compute(&self, sample: &Sample) -> Result<StatValues> {
        let f = sample
            .field(&self.field)
            .or_else(|e| sample.fields.first().ok_or(e))?;
        let v = f.data.to_f64();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let skew = v.iter().map(|x| (x - mean).powi(3)).sum::<f64>() / n / var.powf(1.5);
        Ok(vec![vec![mean, var, skew]])
    }
}

/// Registers this plugin's entries.
pub fn register(r: &mut Registry) -> Result<()> {
    r.add_simulator(
        "white-noise",
        "template plugin: Gaussian white noise maps",
        vec![OptionSpec::new("size", 32, "pixels per side")],
        |o| {
            let config: WhiteNoiseConfig =
                simemu_core::params::options_from_json("white-noise", o)?;
            if config.size == 0 {
                return Err(Error::Option("white-noise: size must be positive".into()));
            }
            Ok(Box::new(WhiteNoise {
                config,
                params: vec![
                    ParamSpec::new("mean", "", -10.0, 10.0, 0.0, "mean of the noise"),
                    ParamSpec::new(
                        "sigma",
                        "",
                        1e-6,
                        10.0,
                        1.0,
                        "standard deviation of the noise",
                    ),
                ],
            }) as Box<dyn Simulator>)
        },
    )?;
    r.add_statistic(
        "moments",
        "template plugin: mean, variance and skewness of a field",
        vec![],
        |o, ctx: &StatContext| {
            simemu_core::params::options_from_json::<serde_json::Map<String, serde_json::Value>>(
                "moments", o,
            )
            .and_then(|m| {
                if let Some(k) = m.keys().next() {
                    Err(Error::Option(format!("moments: unknown option '{k}'")))
                } else {
                    Ok(())
                }
            })?;
            Ok(Box::new(Moments {
                field: ctx.field.name.clone(),
            }) as Box<dyn Statistic>)
        },
    )
}

simemu_core::declare_plugin!("template", register);
