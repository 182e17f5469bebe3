//! # simemu-convergence
//!
//! The `convergence` simulator: weak-lensing convergence maps κ on a flat periodic
//! patch, as a **shifted log-normal** field (Hilbert, Hartlap & Schneider 2011;
//! Xavier et al. 2016) — or a Gaussian field — whose expected power spectrum equals
//! the ΛCDM C_ℓ of a single source plane exactly (see [`lensing`], built on the
//! shared `simemu-cosmology`, and [`lognormal`]). It stands in for N-body ray
//! tracing: non-Gaussian, cosmology dependent, and milliseconds per map.

pub mod lensing;
pub mod lognormal;

use std::collections::BTreeMap;
use std::f64::consts::PI;

use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use simemu_core::{
    Array, DType, Error, Field, FieldSpec, OptionSpec, ParamSpec, PreparedSimulator, Registry,
    Result, Sample, Simulator,
};

use lensing::{cl_kappa, lognormal_shift_hilbert};
use lognormal::lognormal_transform;
use simemu_cosmology::Cosmology;
use simemu_grid::{mode_wavenumbers, DrawBuffers, FieldDrawer};

pub const NAME: &str = "convergence";
/// Name of the map field in every sample.
pub const FIELD: &str = "kappa";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    Lognormal,
    Gaussian,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Nonlinear {
    Halofit,
    Linear,
}

/// Options of the `convergence` simulator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvergenceConfig {
    /// Pixels per side (a power of two, 16 to 4096).
    #[serde(default = "default_size")]
    pub size: usize,
    /// Side of the map in degrees.
    #[serde(default = "default_angle")]
    pub angle_deg: f64,
    #[serde(default = "default_field")]
    pub field: FieldKind,
    #[serde(default = "default_nonlinear")]
    pub nonlinear: Nonlinear,
    /// Log-normal shift λ; `None`: the Hilbert et al. (2011) fit at z_source.
    #[serde(default)]
    pub lambda: Option<f64>,
}

fn default_size() -> usize {
    256
}
fn default_angle() -> f64 {
    3.5
}
fn default_field() -> FieldKind {
    FieldKind::Lognormal
}
fn default_nonlinear() -> Nonlinear {
    Nonlinear::Halofit
}

impl ConvergenceConfig {
    pub fn from_options(options: &serde_json::Value) -> Result<Self> {
        let c: ConvergenceConfig = simemu_core::params::options_from_json(NAME, options)?;
        if !c.size.is_power_of_two() || !(16..=4096).contains(&c.size) {
            return Err(Error::Option(format!(
                "{NAME}: size = {} must be a power of two between 16 and 4096",
                c.size
            )));
        }
        if !(c.angle_deg.is_finite() && c.angle_deg > 0.0 && c.angle_deg <= 60.0) {
            return Err(Error::Option(format!(
                "{NAME}: angle_deg = {} must be positive and at most 60 (flat-sky patch)",
                c.angle_deg
            )));
        }
        if let Some(l) = c.lambda {
            if !(l.is_finite() && l > 0.0) {
                return Err(Error::Option(format!(
                    "{NAME}: lambda = {l} must be positive"
                )));
            }
        }
        Ok(c)
    }

    pub fn angle_rad(&self) -> f64 {
        self.angle_deg * PI / 180.0
    }
}

/// Parameter order in samples: the ΛCDM parameters, then the source redshift.
pub use simemu_cosmology::params::{H, N_S, OMEGA_B, OMEGA_M, SIGMA_8};
pub const Z_SOURCE: usize = 5;

pub fn param_space() -> Vec<ParamSpec> {
    let mut space = simemu_cosmology::params::lcdm_params();
    space.push(ParamSpec::new(
        "z_source",
        "",
        0.30,
        4.00,
        1.0,
        "redshift of the single source plane",
    ));
    space
}

pub struct ConvergenceSimulator {
    config: ConvergenceConfig,
    params: Vec<ParamSpec>,
}

impl ConvergenceSimulator {
    pub fn new(config: ConvergenceConfig) -> Self {
        ConvergenceSimulator {
            config,
            params: param_space(),
        }
    }

    pub fn config_ref(&self) -> &ConvergenceConfig {
        &self.config
    }

    fn cosmology(&self, p: &[f64]) -> Result<Cosmology> {
        simemu_cosmology::params::cosmology(p)
    }

    /// The log-normal shift used at these parameters.
    pub fn lambda(&self, p: &[f64]) -> f64 {
        self.config
            .lambda
            .unwrap_or_else(|| lognormal_shift_hilbert(p[Z_SOURCE]))
    }

    /// C_ℓ at the given multipoles.
    pub fn cl(&self, p: &[f64], ells: &[f64]) -> Result<Vec<f64>> {
        let c = self.cosmology(p)?;
        Ok(cl_kappa(
            &c,
            ells,
            p[Z_SOURCE],
            self.config.nonlinear == Nonlinear::Halofit,
        ))
    }

    /// The grid power map P_ij = C(ℓ_ij)/Δ², interpolating C_ℓ log-log from a table.
    pub fn power_map(&self, p: &[f64]) -> Result<Vec<f64>> {
        let n = self.config.size;
        let angle = self.config.angle_rad();
        let ell_max = 2f64.sqrt() * PI * n as f64 / angle * 1.01;
        let table_n = 160;
        let (l0, l1) = (1f64.ln(), ell_max.ln());
        let table_ell: Vec<f64> = (0..table_n)
            .map(|i| (l0 + (l1 - l0) * i as f64 / (table_n - 1) as f64).exp())
            .collect();
        let table_cl = self.cl(p, &table_ell)?;
        let ln_cl: Vec<f64> = table_cl.iter().map(|c| c.ln()).collect();
        let pix = angle / n as f64;
        let ells = mode_wavenumbers(n, angle);
        let step = (l1 - l0) / (table_n - 1) as f64;
        Ok(ells
            .iter()
            .enumerate()
            .map(|(k, &ell)| {
                if k == 0 {
                    return 0.0;
                }
                let x = ((ell.max(1.0).ln() - l0) / step).clamp(0.0, (table_n - 1) as f64);
                let i = (x.floor() as usize).min(table_n - 2);
                let f = x - i as f64;
                (ln_cl[i] + f * (ln_cl[i + 1] - ln_cl[i])).exp() / (pix * pix)
            })
            .collect())
    }
}

/// Pixel statistics the simulator predicts at one parameter point.
#[derive(Clone, Debug, Serialize)]
pub struct PixelPrediction {
    pub variance: f64,
    pub skewness: f64,
}

pub struct PreparedConvergence {
    n: usize,
    drawer: FieldDrawer<f32>,
    kind: FieldKind,
    lambda: f64,
    gaussian_variance: f64,
    params: Vec<f64>,
    notes: serde_json::Value,
    pub prediction: PixelPrediction,
}

impl ConvergenceSimulator {
    pub fn prepare_concrete(&self, p: &[f64]) -> Result<PreparedConvergence> {
        let n = self.config.size;
        let power = self.power_map(p)?;
        let target_variance = power.iter().sum::<f64>() / (n * n) as f64;
        match self.config.field {
            FieldKind::Gaussian => Ok(PreparedConvergence {
                n,
                drawer: FieldDrawer::new(&power, n),
                kind: FieldKind::Gaussian,
                lambda: 0.0,
                gaussian_variance: target_variance,
                params: p.to_vec(),
                notes: serde_json::json!({"field": "gaussian", "pixel_variance": target_variance}),
                prediction: PixelPrediction {
                    variance: target_variance,
                    skewness: 0.0,
                },
            }),
            FieldKind::Lognormal => {
                let lambda = self.lambda(p);
                let t = lognormal_transform(&power, n, lambda).map_err(|min| {
                    Error::Option(format!(
                        "{NAME}: lambda = {lambda} is too small: ln(1 + ξ/λ²) is undefined on this grid; the smallest admissible lambda is {:.6}",
                        min * (1.0 + 1e-9)
                    ))
                })?;
                report_clipping(t.clipped_modes, t.clipped_fraction, p);
                let s = t.gaussian_variance;
                let variance = lambda * lambda * (s.exp() - 1.0);
                let skewness = (s.exp() + 2.0) * (s.exp() - 1.0).sqrt();
                let notes = serde_json::json!({
                    "field": "lognormal",
                    "lambda": lambda,
                    "gaussian_variance": s,
                    "target_pixel_variance": target_variance,
                    "clipped_gaussian_modes": t.clipped_modes,
                    "clipped_gaussian_power_fraction": t.clipped_fraction,
                });
                Ok(PreparedConvergence {
                    n,
                    drawer: FieldDrawer::new(&t.gaussian_power, n),
                    kind: FieldKind::Lognormal,
                    lambda,
                    gaussian_variance: s,
                    params: p.to_vec(),
                    notes,
                    prediction: PixelPrediction { variance, skewness },
                })
            }
        }
    }
}

/// The fraction of the Gaussian field's power, clipped where the log-normal
/// transform asks for negative power, above which preparing a parameter point
/// warns. Below it the change is far smaller than what the harness resolves
/// (P(ℓ) standard errors on 500 maps: 0.4–3%): the default 64² maps of 3.5°
/// clip 1.3e-4 of the power. Every point's figures are in the dataset's
/// manifest (`notes`) either way.
const CLIPPED_POWER_WARNING: f64 = 1e-3;

/// Logs a parameter point's clipped modes: a warning above
/// [`CLIPPED_POWER_WARNING`] of the power, a debug line below it.
fn report_clipping(modes: usize, fraction: f64, params: &[f64]) {
    if modes == 0 {
        return;
    }
    let message = format!(
        "{NAME}: {modes} Gaussian modes had negative power and were clipped \
         (fraction {fraction:.2e} of the power) at {params:?}"
    );
    if fraction > CLIPPED_POWER_WARNING {
        tracing::warn!("{message}");
    } else {
        tracing::debug!("{message}");
    }
}

thread_local! {
    /// FFT work space per thread and map size: drawing allocates nothing.
    static BUFFERS: std::cell::RefCell<std::collections::HashMap<usize, DrawBuffers<f32>>> = Default::default();
}

impl PreparedConvergence {
    /// One map, row-major. The field is drawn in f32 (the precision maps are stored
    /// in) from a Xoshiro256++ stream seeded with `seed` (SplitMix64 expansion,
    /// portable and documented-reproducible).
    pub fn draw(&self, seed: u64) -> Vec<f32> {
        let mut out = vec![0.0f32; self.n * self.n];
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        BUFFERS.with(|b| {
            let mut map = b.borrow_mut();
            let buffers = map.entry(self.n).or_insert_with(|| self.drawer.buffers());
            self.drawer.draw_into(&mut rng, buffers, &mut out);
        });
        if self.kind == FieldKind::Lognormal {
            // κ = λ(exp(g − σ_g²/2) − 1) has mean exactly 0 for the realised σ_g².
            let half = (0.5 * self.gaussian_variance) as f32;
            let lambda = self.lambda as f32;
            for v in out.iter_mut() {
                *v = lambda * (simemu_grid::exp_f32(*v - half) - 1.0);
            }
        }
        out
    }
}

impl PreparedSimulator for PreparedConvergence {
    fn simulate(&self, seed: u64) -> Result<Sample> {
        let map = self.draw(seed);
        Ok(Sample::single(
            Field::new(FIELD, vec![self.n, self.n], Array::F32(map))?,
            self.params.clone(),
        ))
    }

    fn notes(&self) -> serde_json::Value {
        self.notes.clone()
    }
}

impl Simulator for ConvergenceSimulator {
    fn name(&self) -> &str {
        NAME
    }

    fn params(&self) -> &[ParamSpec] {
        &self.params
    }

    fn fields(&self) -> Vec<FieldSpec> {
        vec![
            FieldSpec::new(FIELD, vec![self.config.size, self.config.size], DType::F32)
                .with_attr("angle_deg", self.config.angle_deg)
                .with_attr("units", "convergence"),
        ]
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("config serialises")
    }

    fn prepare(&self, params: &[f64]) -> Result<Box<dyn PreparedSimulator>> {
        Ok(Box::new(self.prepare_concrete(params)?))
    }

    fn theory(
        &self,
        params: &[f64],
        query: &BTreeMap<String, Vec<f64>>,
    ) -> Result<serde_json::Value> {
        let mut out = serde_json::Map::new();
        for key in query.keys() {
            if key != "ell" {
                return Err(Error::Option(format!(
                    "{NAME}: unknown theory query '--{key}' (available: --ell)"
                )));
            }
        }
        if let Some(ells) = query.get("ell") {
            if ells.iter().any(|&l| !(l.is_finite() && l > 0.0)) {
                return Err(Error::Option(format!(
                    "{NAME}: ell values must be positive"
                )));
            }
            out.insert("ell".into(), serde_json::json!(ells));
            out.insert("cl".into(), serde_json::json!(self.cl(params, ells)?));
        }
        let prepared = self.prepare_concrete(params)?;
        out.insert("lambda".into(), serde_json::json!(prepared.lambda));
        out.insert(
            "pixel_variance".into(),
            serde_json::json!(prepared.prediction.variance),
        );
        out.insert(
            "pixel_skewness".into(),
            serde_json::json!(prepared.prediction.skewness),
        );
        Ok(serde_json::Value::Object(out))
    }
}

fn options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new("size", 256, "pixels per side (power of two, 16–4096)"),
        OptionSpec::new("angle_deg", 3.5, "side of the map in degrees"),
        OptionSpec::new("field", "lognormal", "lognormal | gaussian"),
        OptionSpec::new("nonlinear", "halofit", "halofit (Takahashi 2012) | linear"),
        OptionSpec::new(
            "lambda",
            serde_json::Value::Null,
            "log-normal shift λ (default: Hilbert et al. 2011 fit at z_source, 0.0298 at z = 1)",
        ),
    ]
}

/// Registers the `convergence` simulator.
pub fn register(r: &mut Registry) -> Result<()> {
    r.add_simulator(
        NAME,
        "weak-lensing convergence maps: shifted log-normal (or Gaussian) field with the ΛCDM C_ℓ (EH98 + halofit + Limber, single source plane)",
        options(),
        |o| Ok(Box::new(ConvergenceSimulator::new(ConvergenceConfig::from_options(o)?)) as Box<dyn Simulator>),
    )
}

simemu_core::inventory::submit! { simemu_core::StaticPlugin { name: "convergence", register } }
