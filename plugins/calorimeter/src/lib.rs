//! # simemu-calorimeter
//!
//! Electromagnetic showers in the CaloGAN calorimeter (Paganini, de Oliveira &
//! Nachman, arXiv:1705.02355), simulated with the GFlash parameterisation
//! ([`gflash`]) instead of Geant4, as the `calorimeter` simulator plugin.
//!
//! Geometry (CaloGAN's `DetectorConstruction.cc`): 80 periods of 2 mm lead + 4 mm
//! liquid argon, 480 mm deep, beam along +z through the centre of the front face;
//! three longitudinal layers, 0–90, 90–437 and 437–480 mm, segmented over
//! x, y ∈ (−240, 240) mm into 3×96, 12×12 and 12×6 cells; energy outside the window
//! goes to one overflow bin per layer, energy behind the calorimeter is lost.
//!
//! Each shower: (T, α) drawn from GFlash's correlated log-normal distribution with the
//! sampling-calorimeter corrections; `93 ln Z E^0.876` equal-energy spots at depths
//! drawn from the Gamma profile (photons first convert after an exponential depth of
//! mean 9/7 X0), at radii drawn from the core + tail profile of their depth, at
//! uniform azimuth. `deposit = "active"` keeps the liquid-argon share with GFlash's
//! sampling fluctuations. The shower statistics CaloGAN compares are registered
//! beside it ([`stats`]), with the `shower-gan` conditional generator of whole
//! showers ([`showergan`]) and, with the `hdf5` feature, CaloGAN's HDF5 files as the
//! `calogan` format (`hdf5`). Simplifications: no lateral impact spread,
//! equal-energy spots, electromagnetic particles only.

#[cfg(feature = "hdf5")]
pub mod challenge_h5;
pub mod geometry;
pub mod gflash;
#[cfg(feature = "hdf5")]
pub mod hdf5;
pub mod hlf;
pub mod showergan;
pub mod stats;

use rand::Rng;
use rand_distr::{Distribution, Exp, Gamma, StandardNormal};
use serde::Deserialize;
use simemu_core::{
    Array, DType, Error, Field, FieldSpec, OptionSpec, ParamSpec, PreparedSimulator, Registry,
    Result, Sample, Simulator,
};

use gflash::{Longitudinal, Radial, SamplingMedium, LEAD, LIQUID_ARGON};

pub const NAME: &str = "calorimeter";

/// Layer boundaries along z from the front face, mm.
pub const LAYER_DEPTHS_MM: [f64; 4] = [0.0, 90.0, 437.0, 480.0];
/// Cells per layer: (along x, along y).
pub const LAYER_CELLS: [(usize, usize); 3] = [(3, 96), (12, 12), (12, 6)];
/// Half-width of the segmented window, mm.
pub const HALF_WIDTH_MM: f64 = 240.0;
/// Liquid argon's share of an electromagnetic shower's energy: the mip fraction of
/// 2 mm Pb + 4 mm LAr (0.315) times GFlash's ê (0.69), as the reference notes give it.
pub const SAMPLING_FRACTION: f64 = 0.315 * 0.691;
/// Sampling term c_s of the deposits' Gamma fluctuations (σ/E = c_s/√E[GeV]).
pub const SAMPLING_TERM: f64 = 0.1;
/// Photons convert after an exponential depth of mean 9/7 X0.
const PHOTON_CONVERSION_X0: f64 = 9.0 / 7.0;
/// Floors that keep every drawn Gamma profile proper (α > 1 puts its maximum past
/// the front face), as in the reference prototype.
const MIN_ALPHA: f64 = 1.1;
const MIN_T: f64 = 0.5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Particle {
    #[serde(rename = "e-")]
    Electron,
    #[serde(rename = "gamma")]
    Photon,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Deposit {
    /// Energy in lead and argon (the published CaloGAN dataset).
    Total,
    /// Energy in the argon only, with sampling fluctuations.
    Active,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CalorimeterConfig {
    #[serde(default = "default_particle")]
    pub particle: Particle,
    #[serde(default = "default_deposit")]
    pub deposit: Deposit,
}

fn default_particle() -> Particle {
    Particle::Electron
}

fn default_deposit() -> Deposit {
    Deposit::Total
}

pub struct CalorimeterSimulator {
    config: CalorimeterConfig,
    medium: SamplingMedium,
    params: Vec<ParamSpec>,
}

impl CalorimeterSimulator {
    pub fn new(config: CalorimeterConfig) -> Self {
        CalorimeterSimulator {
            config,
            medium: SamplingMedium::new(LEAD, LIQUID_ARGON, 2.0, 4.0),
            params: vec![ParamSpec::new(
                "energy",
                "GeV",
                1.0,
                100.0,
                10.0,
                "incident energy",
            )],
        }
    }

    pub fn from_options(options: &serde_json::Value) -> Result<Self> {
        Ok(Self::new(simemu_core::params::options_from_json(
            NAME, options,
        )?))
    }

    pub fn medium(&self) -> &SamplingMedium {
        &self.medium
    }

    /// The shower generator at one incident energy.
    pub fn prepare_at(&self, energy_gev: f64) -> Result<PreparedShower> {
        if !(energy_gev.is_finite() && (1.0..=100.0).contains(&energy_gev)) {
            return Err(Error::Parameter(format!(
                "{NAME}: energy = {energy_gev} GeV is outside [1, 100]"
            )));
        }
        Ok(PreparedShower {
            energy_gev,
            config: self.config.clone(),
            medium: self.medium.clone(),
            longitudinal: Longitudinal::at(&self.medium, energy_gev * 1000.0),
            spots: gflash::spot_count(self.medium.z, energy_gev),
        })
    }
}

impl Simulator for CalorimeterSimulator {
    fn name(&self) -> &str {
        NAME
    }
    fn params(&self) -> &[ParamSpec] {
        &self.params
    }
    fn fields(&self) -> Vec<FieldSpec> {
        let mut fields: Vec<FieldSpec> = LAYER_CELLS
            .iter()
            .enumerate()
            .map(|(l, &(nx, ny))| {
                FieldSpec::new(format!("layer_{l}"), vec![nx, ny], DType::F32)
                    .with_attr("units", "MeV")
            })
            .collect();
        fields.push(FieldSpec::new("overflow", vec![3], DType::F32).with_attr("units", "MeV"));
        fields
    }
    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("serialisable")
    }
    fn prepare(&self, params: &[f64]) -> Result<Box<dyn PreparedSimulator>> {
        Ok(Box::new(self.prepare_at(params[0])?))
    }
}

/// Showers at one incident energy.
pub struct PreparedShower {
    energy_gev: f64,
    config: CalorimeterConfig,
    medium: SamplingMedium,
    longitudinal: Longitudinal,
    spots: usize,
}

/// One shower's energy by layer and cell, in MeV.
#[derive(Clone, Debug, PartialEq)]
pub struct Shower {
    pub layers: [Vec<f64>; 3],
    pub overflow: [f64; 3],
    /// Energy behind the last layer.
    pub leakage: f64,
    /// The drawn longitudinal parameters (before the floors).
    pub t_max: f64,
    pub alpha: f64,
}

impl PreparedShower {
    pub fn longitudinal(&self) -> &Longitudinal {
        &self.longitudinal
    }

    /// The shower's (T, α), drawn first from its random stream.
    pub fn draw_longitudinal(&self, rng: &mut impl Rng) -> (f64, f64) {
        let z1: f64 = StandardNormal.sample(rng);
        let z2: f64 = StandardNormal.sample(rng);
        self.longitudinal.draw(z1, z2)
    }

    /// One shower from `seed`.
    pub fn shower(&self, seed: u64) -> Shower {
        let mut rng = simemu_core::seed::rng(seed);
        let (t_max, alpha) = self.draw_longitudinal(&mut rng);
        let (t, a) = (t_max.max(MIN_T), alpha.max(MIN_ALPHA));
        let beta = (a - 1.0) / t;
        let start = match self.config.particle {
            Particle::Electron => 0.0,
            Particle::Photon => Exp::new(1.0 / PHOTON_CONVERSION_X0)
                .expect("positive rate")
                .sample(&mut rng),
        };
        let depth = Gamma::new(a, 1.0 / beta).expect("α > 1, β > 0");
        let e_spot = self.energy_gev * 1000.0 / self.spots as f64;
        let mut layers: [Vec<f64>; 3] =
            std::array::from_fn(|l| vec![0.0; LAYER_CELLS[l].0 * LAYER_CELLS[l].1]);
        let mut overflow = [0.0; 3];
        let mut leakage = 0.0;
        for _ in 0..self.spots {
            let t_spot = depth.sample(&mut rng);
            let radial = Radial::at(self.medium.z, self.energy_gev, t_spot / t);
            let (pick, u, phi): (f64, f64, f64) = (rng.random(), rng.random(), rng.random());
            let r = self.medium.moliere_mm * radial.sample(pick, u);
            let phi = 2.0 * std::f64::consts::PI * phi;
            let (x, y) = (r * phi.cos(), r * phi.sin());
            let z = (start + t_spot) * self.medium.x0_mm;
            let Some(l) = (0..3).find(|&l| z < LAYER_DEPTHS_MM[l + 1]) else {
                leakage += e_spot;
                continue;
            };
            if x.abs() < HALF_WIDTH_MM && y.abs() < HALF_WIDTH_MM {
                let (nx, ny) = LAYER_CELLS[l];
                let cell = |v: f64, n: usize| {
                    (((v + HALF_WIDTH_MM) / (2.0 * HALF_WIDTH_MM) * n as f64) as usize).min(n - 1)
                };
                layers[l][cell(x, nx) * ny + cell(y, ny)] += e_spot;
            } else {
                overflow[l] += e_spot;
            }
        }
        if self.config.deposit == Deposit::Active {
            // Gamma(ΔE/c², c²) in GeV: mean ΔE, relative spread c/√ΔE.
            let c2 = SAMPLING_TERM * SAMPLING_TERM;
            let mut fluctuate = |e: &mut f64| {
                if *e > 0.0 {
                    let g = Gamma::new(*e / 1000.0 / c2, c2).expect("positive shape");
                    *e = SAMPLING_FRACTION * g.sample(&mut rng) * 1000.0;
                }
            };
            layers.iter_mut().flatten().for_each(&mut fluctuate);
            overflow.iter_mut().for_each(&mut fluctuate);
        }
        Shower {
            layers,
            overflow,
            leakage,
            t_max,
            alpha,
        }
    }
}

impl PreparedSimulator for PreparedShower {
    fn simulate(&self, seed: u64) -> Result<Sample> {
        let s = self.shower(seed);
        let mut fields = Vec::with_capacity(4);
        for (l, cells) in s.layers.iter().enumerate() {
            let (nx, ny) = LAYER_CELLS[l];
            let data = cells.iter().map(|&e| e as f32).collect();
            fields.push(Field::new(
                format!("layer_{l}"),
                vec![nx, ny],
                Array::F32(data),
            )?);
        }
        let over = s.overflow.iter().map(|&e| e as f32).collect();
        fields.push(Field::new("overflow", vec![3], Array::F32(over))?);
        Ok(Sample {
            fields,
            params: vec![self.energy_gev],
        })
    }
}

fn options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new("particle", "e-", "incident particle: e- or gamma"),
        OptionSpec::new(
            "deposit",
            "total",
            "total (lead and argon, as the published CaloGAN data) or active (argon only, with sampling fluctuations)",
        ),
    ]
}

pub fn register(r: &mut Registry) -> Result<()> {
    r.add_simulator(
        NAME,
        "electromagnetic showers in the CaloGAN Pb/LAr calorimeter (3 layers: 3×96, 12×12, 12×6 cells), GFlash-parameterised",
        options(),
        |o| Ok(Box::new(CalorimeterSimulator::from_options(o)?) as Box<dyn Simulator>),
    )?;
    r.add_generator(
        showergan::NAME,
        "conditional GAN G(E, z) for whole showers (all layers and overflow), energy-normalised, fully connected (candle)",
        showergan::options(),
        |o, ctx| {
            Ok(Box::new(showergan::ShowerGan::on(
                showergan::ShowerGanConfig::from_options(o)?,
                simemu_nn::device(ctx.device)?,
            )) as Box<dyn simemu_core::Generator>)
        },
        |path, _, ctx| {
            let device = simemu_nn::device(ctx.device)?;
            Ok(Box::new(showergan::load(path, &device)?) as Box<dyn simemu_core::Generator>)
        },
    )?;
    #[cfg(feature = "hdf5")]
    r.add_format(
        "CaloGAN's HDF5 showers: layer_0 (N,3,96), layer_1 (N,12,12), layer_2 (N,12,6), overflow (N,3) in MeV, energy (N,1) in GeV",
        hdf5::EXTENSIONS,
        Vec::new(),
        hdf5::CaloganFormat,
    )?;
    // No file extension: `.h5` files are CaloGAN's unless `--format` says otherwise.
    #[cfg(feature = "hdf5")]
    r.add_format(
        "CaloChallenge 2022 HDF5 showers: incident_energies (N,1) and showers (N,voxels) in MeV, datasets 1 (with --option binning=XML), 2 and 3",
        &[],
        vec![simemu_core::OptionSpec::new("binning", "", "the dataset's binning file in the challenge's XML layout (needed for dataset 1)")],
        challenge_h5::CaloChallengeFormat,
    )?;
    stats::register(r)?;
    hlf::register(r)
}

simemu_core::inventory::submit! { simemu_core::StaticPlugin { name: "calorimeter", register } }
