//! The `density3d` simulator: the matter density contrast δ on a periodic box of
//! N³ cells at redshift z, drawn from the linear ΛCDM power spectrum of the
//! shared cosmology.
//!
//! Conventions (those of Pylians and nbodykit): the box has side L and volume
//! V = L³; the DFT δ_k = Σ_x δ(x) e^{−ik·x} is unnormalised, and the power
//! spectrum is P(k) = ⟨|δ_k|²⟩ V / N⁶. A Gaussian field is white noise w(x)
//! (unit variance) transformed, multiplied by √(P(k) N³ / V) and transformed
//! back, which gives exactly that P(k); the k = 0 mode is zero, so every box has
//! mean 0.
//!
//! - `gaussian`: the linear field itself.
//! - `lognormal`: δ = exp(g − σ_g²/2) − 1 for a Gaussian field g whose
//!   correlation function is ln(1 + ξ(r)), ξ the target's: the log-normal field
//!   whose P(k) is the target (as powerbox's `LogNormalPowerBox` builds it). Where
//!   the target is too strong for a log-normal field (ln(1 + ξ) has no
//!   non-negative spectrum), the negative part of g's spectrum is set to zero and
//!   the fraction of its power that this removes is recorded in the dataset's
//!   notes.
//! - `2lpt`: one particle per cell, on the grid nodes q, displaced by
//!   second-order Lagrangian perturbation theory, x = q − D₁∇φ⁽¹⁾ + D₂∇φ⁽²⁾ with
//!   ∇²φ⁽¹⁾ = δ_L, ∇²φ⁽²⁾ = Σ_{i<j} (φ⁽¹⁾_{,ii} φ⁽¹⁾_{,jj} − (φ⁽¹⁾_{,ij})²) and
//!   D₂ = −(3/7) D₁² Ω_m(z)^{−1/143} (Bouchet et al. 1995), then painted with
//!   cloud-in-cell: δ = (particles per cell) − 1. The field carries `mas = cic`,
//!   so `power-spectrum-3d` removes the painting window. The linear field's
//!   Nyquist planes are zeroed (a displacement there has no real direction).

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rustfft::num_complex::Complex64;
use serde::{Deserialize, Serialize};
use simemu_core::{
    Array, DType, Error, Field, FieldSpec, ParamSpec, PreparedSimulator, Result, Sample, Simulator,
};
use simemu_cosmology::Cosmology;

use crate::fft3::{fft3, mode_index_norms, RealFft3};

pub const NAME: &str = "density3d";
/// The field of every sample.
pub const FIELD: &str = "delta";
/// The field attribute holding the box side in Mpc/h.
pub const BOX_ATTR: &str = "box_mpc_h";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    Gaussian,
    Lognormal,
    #[serde(rename = "2lpt")]
    Twolpt,
}

/// Options of the `density3d` simulator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Density3dConfig {
    /// Cells per side (a power of two, 16 to 256).
    #[serde(default = "default_size")]
    pub size: usize,
    /// Side of the box in Mpc/h.
    #[serde(default = "default_box")]
    pub box_mpc_h: f64,
    /// Redshift of the field.
    #[serde(default)]
    pub z: f64,
    #[serde(default = "default_model")]
    pub model: Model,
}

fn default_size() -> usize {
    64
}
fn default_box() -> f64 {
    256.0
}
fn default_model() -> Model {
    Model::Lognormal
}

impl Density3dConfig {
    pub fn from_options(options: &serde_json::Value) -> Result<Self> {
        let c: Density3dConfig = simemu_core::params::options_from_json(NAME, options)?;
        if !c.size.is_power_of_two() || !(16..=256).contains(&c.size) {
            return Err(Error::Option(format!(
                "{NAME}: size = {} must be a power of two between 16 and 256",
                c.size
            )));
        }
        if !(c.box_mpc_h.is_finite() && c.box_mpc_h > 0.0) {
            return Err(Error::Option(format!(
                "{NAME}: box_mpc_h = {} must be positive",
                c.box_mpc_h
            )));
        }
        if !(c.z.is_finite() && (0.0..=20.0).contains(&c.z)) {
            return Err(Error::Option(format!(
                "{NAME}: z = {} must lie in [0, 20]",
                c.z
            )));
        }
        Ok(c)
    }

    /// The fundamental mode 2π/L in h/Mpc.
    pub fn fundamental(&self) -> f64 {
        2.0 * std::f64::consts::PI / self.box_mpc_h
    }

    fn volume(&self) -> f64 {
        self.box_mpc_h.powi(3)
    }
}

/// Parameters: the ΛCDM ones of the shared cosmology.
pub fn param_space() -> Vec<ParamSpec> {
    simemu_cosmology::params::lcdm_params()
}

pub struct Density3dSimulator {
    config: Density3dConfig,
    params: Vec<ParamSpec>,
}

impl Density3dSimulator {
    pub fn new(config: Density3dConfig) -> Self {
        Density3dSimulator {
            config,
            params: param_space(),
        }
    }

    fn cosmology(&self, p: &[f64]) -> Result<Cosmology> {
        simemu_cosmology::params::cosmology(p)
    }

    /// The linear P(k) at the config's z on every grid mode (0 at k = 0).
    pub fn power_grid(&self, p: &[f64]) -> Result<Vec<f64>> {
        Ok(self.grid_power(&self.cosmology(p)?))
    }

    fn grid_power(&self, c: &Cosmology) -> Vec<f64> {
        let kf = self.config.fundamental();
        // P(k, z) = P(k, 0) D(z)², the growth integrated once.
        let d2 = c.growth(self.config.z).powi(2);
        mode_index_norms(self.config.size)
            .into_iter()
            .map(|m| {
                if m == 0.0 {
                    0.0
                } else {
                    c.p_lin(m * kf, 0.0) * d2
                }
            })
            .collect()
    }

    pub fn prepare_concrete(&self, p: &[f64]) -> Result<PreparedBox> {
        let n = self.config.size;
        let cells = (n * n * n) as f64;
        let volume = self.config.volume();
        let c = self.cosmology(p)?;
        let target = self.grid_power(&c);
        // The variance of the grid field: Σ_k P(k) / V.
        let target_variance = target.iter().sum::<f64>() / volume;
        let (power, gaussian_variance, notes) = match self.config.model {
            Model::Gaussian => (target, target_variance, serde_json::Value::Null),
            Model::Twolpt => {
                let mut power = target;
                zero_nyquist_planes(&mut power, n);
                let variance = power.iter().sum::<f64>() / volume;
                (power, variance, serde_json::Value::Null)
            }
            Model::Lognormal => {
                let (power, clipped) = lognormal_gaussian_power(&target, n, volume);
                let variance = power.iter().sum::<f64>() / volume;
                let notes = if clipped > 0.0 {
                    serde_json::json!({ "clipped_power_fraction": clipped })
                } else {
                    serde_json::Value::Null
                };
                (power, variance, notes)
            }
        };
        // The half spectrum's modes (l ≤ N/2) of the full grid's.
        let h = n / 2 + 1;
        let amplitude = (0..n * n * h)
            .map(|q| {
                let pk = power[(q / h) * n + q % h];
                (pk * cells / volume).sqrt()
            })
            .collect();
        Ok(PreparedBox {
            n,
            model: self.config.model,
            second_order: 3.0 / 7.0 * c.omega_m_z(self.config.z).powf(-1.0 / 143.0),
            fundamental: self.config.fundamental(),
            amplitude,
            fft: RealFft3::new(n),
            gaussian_variance,
            target_variance,
            params: p.to_vec(),
            notes,
        })
    }
}

/// The spectrum of the Gaussian field g whose exponential has the spectrum
/// `target` on the grid: ξ_g = ln(1 + ξ) in real space. Returns it with the
/// fraction of its power that was negative and set to zero.
fn lognormal_gaussian_power(target: &[f64], n: usize, volume: f64) -> (Vec<f64>, f64) {
    let cells = (n * n * n) as f64;
    // ξ(x) = (1/V) Σ_k P(k) e^{ik·x}.
    let mut xi: Vec<Complex64> = target
        .iter()
        .map(|&p| Complex64::new(p / volume, 0.0))
        .collect();
    fft3(&mut xi, n, true);
    for v in xi.iter_mut() {
        *v = Complex64::new((1.0 + v.re).ln(), 0.0);
    }
    // P_g(k) = (V / N³) Σ_x ξ_g(x) e^{−ik·x}.
    fft3(&mut xi, n, false);
    let raw: Vec<f64> = xi.iter().map(|v| v.re * volume / cells).collect();
    let total: f64 = raw.iter().map(|p| p.abs()).sum();
    let negative: f64 = raw.iter().filter(|p| **p < 0.0).map(|p| -p).sum();
    let mut power: Vec<f64> = raw.into_iter().map(|p| p.max(0.0)).collect();
    power[0] = 0.0;
    (power, if total > 0.0 { negative / total } else { 0.0 })
}

/// The simulator at one parameter point.
pub struct PreparedBox {
    n: usize,
    model: Model,
    /// −D₂/D₁² of the 2LPT displacement.
    second_order: f64,
    /// 2π/L in h/Mpc.
    fundamental: f64,
    /// √(P(k) N³ / V) per mode of the half spectrum, of the Gaussian field
    /// drawn.
    amplitude: Vec<f64>,
    fft: RealFft3,
    gaussian_variance: f64,
    target_variance: f64,
    params: Vec<f64>,
    notes: serde_json::Value,
}

impl PreparedBox {
    /// One box, C order. White noise from a Xoshiro256++ stream seeded with
    /// `seed`, shaped in Fourier space in f64, stored as f32.
    pub fn draw(&self, seed: u64) -> Vec<f32> {
        let n3 = self.n * self.n * self.n;
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let noise: Vec<f64> = (0..n3).map(|_| StandardNormal.sample(&mut rng)).collect();
        let mut field = self.fft.forward(&noise);
        for (v, a) in field.iter_mut().zip(&self.amplitude) {
            *v *= *a;
        }
        if self.model == Model::Twolpt {
            return self.displace_and_paint(field);
        }
        let values = self.fft.inverse(field);
        let scale = 1.0 / n3 as f64;
        match self.model {
            Model::Gaussian => values.iter().map(|v| (v * scale) as f32).collect(),
            Model::Lognormal => {
                let half = 0.5 * self.gaussian_variance;
                values
                    .iter()
                    .map(|v| ((v * scale - half).exp() - 1.0) as f32)
                    .collect()
            }
            Model::Twolpt => unreachable!("painted above"),
        }
    }

    /// The 2LPT box from the linear δ_k at z (half spectrum): Ψ_i(k) =
    /// i k_i (δ_k + c S_k)/k², S the second-order source, c = −D₂/D₁²;
    /// particles from the grid nodes displaced by Ψ, painted with cloud-in-cell.
    fn displace_and_paint(&self, delta_k: Vec<Complex64>) -> Vec<f32> {
        let n = self.n;
        let h = self.fft.half();
        let n3 = n * n * n;
        let scale = 1.0 / n3 as f64;
        let kf = self.fundamental;
        // k and 1/k² (0 at k = 0) of every mode of the half spectrum.
        let modes: Vec<([f64; 3], f64)> = (0..n * n * h)
            .map(|q| {
                let k = [
                    crate::fft3::frequency(q / (n * h), n) as f64 * kf,
                    crate::fft3::frequency((q / h) % n, n) as f64 * kf,
                    (q % h) as f64 * kf,
                ];
                let k2 = k[0] * k[0] + k[1] * k[1] + k[2] * k[2];
                (k, if k2 == 0.0 { 0.0 } else { 1.0 / k2 })
            })
            .collect();
        let inverse = |spectrum: Vec<Complex64>| -> Vec<f64> {
            let mut f = self.fft.inverse(spectrum);
            f.iter_mut().for_each(|v| *v *= scale);
            f
        };
        // φ⁽¹⁾_{,ij}(k) = k_i k_j δ_k / k², in real space.
        let pairs = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)];
        let second: Vec<Vec<f64>> = pairs
            .iter()
            .map(|&(a, b)| {
                inverse(
                    delta_k
                        .iter()
                        .zip(&modes)
                        .map(|(d, (k, inv_k2))| d * (k[a] * k[b] * inv_k2))
                        .collect(),
                )
            })
            .collect();
        let source: Vec<f64> = (0..n3)
            .map(|x| {
                let [p11, p22, p33, p12, p13, p23] = [0, 1, 2, 3, 4, 5].map(|m| second[m][x]);
                p11 * p22 + p11 * p33 + p22 * p33 - p12 * p12 - p13 * p13 - p23 * p23
            })
            .collect();
        let source = self.fft.forward(&source);
        let cell = 2.0 * std::f64::consts::PI / (kf * n as f64);
        let displacement: Vec<Vec<f64>> = (0..3)
            .map(|axis| {
                inverse(
                    delta_k
                        .iter()
                        .zip(&source)
                        .zip(&modes)
                        .map(|((d, s), (k, inv_k2))| {
                            (d + s * self.second_order) * Complex64::new(0.0, k[axis] * inv_k2)
                        })
                        .collect(),
                )
                .into_iter()
                .map(|v| v / cell)
                .collect()
            })
            .collect();
        let mut mass = vec![0.0f64; n3];
        let nf = n as f64;
        let moves = displacement[0]
            .iter()
            .zip(&displacement[1])
            .zip(&displacement[2]);
        for (q, ((dx, dy), dz)) in moves.enumerate() {
            let node = [q / (n * n), (q / n) % n, q % n];
            let step = [dx, dy, dz];
            let mut base = [0usize; 3];
            let mut frac = [0.0f64; 3];
            for a in 0..3 {
                let x = (node[a] as f64 + step[a]).rem_euclid(nf);
                let i = x.floor();
                base[a] = (i as usize) % n;
                frac[a] = x - i;
            }
            for (da, wa) in [(0, 1.0 - frac[0]), (1, frac[0])] {
                for (db, wb) in [(0, 1.0 - frac[1]), (1, frac[1])] {
                    for (dc, wc) in [(0, 1.0 - frac[2]), (1, frac[2])] {
                        let i = (base[0] + da) % n;
                        let j = (base[1] + db) % n;
                        let l = (base[2] + dc) % n;
                        mass[(i * n + j) * n + l] += wa * wb * wc;
                    }
                }
            }
        }
        mass.into_iter().map(|m| (m - 1.0) as f32).collect()
    }
}

/// Zeroes the modes on the Nyquist planes (any |k_i| = N/2).
fn zero_nyquist_planes(power: &mut [f64], n: usize) {
    let half = n / 2;
    for (q, p) in power.iter_mut().enumerate() {
        if [q / (n * n), (q / n) % n, q % n].contains(&half) {
            *p = 0.0;
        }
    }
}

impl PreparedSimulator for PreparedBox {
    fn simulate(&self, seed: u64) -> Result<Sample> {
        let n = self.n;
        Ok(Sample::single(
            Field::new(FIELD, vec![n, n, n], Array::F32(self.draw(seed)))?,
            self.params.clone(),
        ))
    }

    fn notes(&self) -> serde_json::Value {
        self.notes.clone()
    }
}

impl Simulator for Density3dSimulator {
    fn name(&self) -> &str {
        NAME
    }

    fn params(&self) -> &[ParamSpec] {
        &self.params
    }

    fn fields(&self) -> Vec<FieldSpec> {
        let n = self.config.size;
        let spec = FieldSpec::new(FIELD, vec![n, n, n], DType::F32)
            .with_attr(BOX_ATTR, self.config.box_mpc_h)
            .with_attr("units", "density contrast");
        vec![match self.config.model {
            Model::Twolpt => spec.with_attr("mas", "cic"),
            _ => spec,
        }]
    }

    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("config serialises")
    }

    fn prepare(&self, params: &[f64]) -> Result<Box<dyn PreparedSimulator>> {
        Ok(Box::new(self.prepare_concrete(params)?))
    }

    /// `--k K,…`: the linear P(k) at z (h/Mpc, (Mpc/h)³); always the growth
    /// factor D(z) (1 at z = 0), the variance of the grid field per cell, and for
    /// `lognormal` the variance of its Gaussian field.
    fn theory(
        &self,
        params: &[f64],
        query: &BTreeMap<String, Vec<f64>>,
    ) -> Result<serde_json::Value> {
        if let Some(key) = query.keys().find(|k| *k != "k") {
            return Err(Error::Option(format!(
                "{NAME}: unknown theory query '--{key}' (available: --k)"
            )));
        }
        let c = self.cosmology(params)?;
        let mut out = serde_json::Map::new();
        if let Some(ks) = query.get("k") {
            if ks.iter().any(|&k| !(k.is_finite() && k > 0.0)) {
                return Err(Error::Option(format!("{NAME}: k values must be positive")));
            }
            out.insert("k".into(), serde_json::json!(ks));
            let pk: Vec<f64> = ks.iter().map(|&k| c.p_lin(k, self.config.z)).collect();
            out.insert("pk".into(), serde_json::json!(pk));
        }
        out.insert("growth".into(), serde_json::json!(c.growth(self.config.z)));
        let prepared = self.prepare_concrete(params)?;
        out.insert(
            "cell_variance".into(),
            serde_json::json!(prepared.target_variance),
        );
        if self.config.model == Model::Lognormal {
            out.insert(
                "gaussian_variance".into(),
                serde_json::json!(prepared.gaussian_variance),
            );
        }
        Ok(serde_json::Value::Object(out))
    }
}
