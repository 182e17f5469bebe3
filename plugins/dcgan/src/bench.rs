//! Fixed benchmark workloads, twins of `benches/reference/torch_bench.py` so that
//! candle and PyTorch can be timed side by side on one machine.
//!
//! Both use the benchmark layout: CosmoGAN's structure with four 5×5 stride-2
//! layers, D's channels doubling (width·2^l), and no convolution bias in front of a
//! BatchNorm (`bias_before_batchnorm = false`), exactly as `torch_bench.py` builds
//! it. The training step is [`gan_step`], the code `simemu train` runs.

use candle_core::{Device, Tensor};
use rand_distr::{Distribution, StandardNormal};
use simemu_core::seed::rng;
use simemu_core::Result;
use simemu_nn::{ce, Adam};

use crate::train::{gan_step, initialise, StepOutcome};
use crate::{DcganConfig, Nets};
use simemu_nn::checkpoint::{named_vars, parameter_count};

/// Transposed convolutions in G (and convolutions in D) of every benchmark model.
pub const LAYERS: usize = 4;

/// The benchmark model of side `size` and base width `width`; batch 64, latent 64.
pub fn bench_config(size: usize, width: usize) -> Result<DcganConfig> {
    DcganConfig::from_options(&serde_json::json!({
        "size": size,
        "layers": LAYERS,
        "width": width,
        "latent": 64,
        "batch": 64,
        "bias_before_batchnorm": false,
    }))
}

fn normal_tensor(shape: &[usize], seed: u64, device: &Device) -> Result<Tensor> {
    let mut r = rng(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| StandardNormal.sample(&mut r)).collect();
    Tensor::from_vec(v, shape, device).map_err(ce("benchmark input"))
}

/// One full GAN iteration (G forward, D update, G update) on a fixed "real" batch
/// of tanh(N(0, 1)) images, as `torch_bench.py train`.
pub struct TrainStep {
    nets: Nets,
    opt_d: Adam,
    opt_g: Adam,
    real: Tensor,
    config: DcganConfig,
    calls: u64,
}

impl TrainStep {
    pub fn new(size: usize, width: usize) -> Result<Self> {
        let config = bench_config(size, width)?;
        let device = Device::Cpu;
        let (nets, opt_g, opt_d) = initialise(&config, 0, &device, 1234)?;
        let real = normal_tensor(&[config.batch, 1, size, size], 1, &device)?
            .tanh()
            .map_err(ce("benchmark input"))?;
        Ok(TrainStep {
            nets,
            opt_d,
            opt_g,
            real,
            config,
            calls: 0,
        })
    }

    /// Trainable parameters of (G, D).
    pub fn parameters(&self) -> (usize, usize) {
        (
            parameter_count(&named_vars(&self.nets.g_vars)),
            parameter_count(&named_vars(&self.nets.d_vars)),
        )
    }

    pub fn config(&self) -> &DcganConfig {
        &self.config
    }

    /// Runs one step with a fresh z; returns (loss_d, loss_g).
    pub fn run(&mut self) -> Result<(f64, f64)> {
        self.calls += 1;
        let z = normal_tensor(
            &[self.config.batch, self.config.latent],
            1000 + self.calls,
            &Device::Cpu,
        )?;
        match gan_step(
            &self.nets,
            (&mut self.opt_d, &mut self.opt_g),
            (&self.real, &z, None),
            (1.0, 0.0),
            f64::INFINITY,
            &[],
        )? {
            StepOutcome::Updated { loss_d, loss_g, .. } => Ok((loss_d, loss_g)),
            StepOutcome::Diverged { loss_d, loss_g } => Err(simemu_core::Error::Other(format!(
                "benchmark step diverged (loss_d {loss_d}, loss_g {loss_g})"
            ))),
        }
    }
}

/// G forward in evaluation mode for one batch of 64 maps, as `torch_bench.py gen`.
pub struct Generate {
    nets: Nets,
    config: DcganConfig,
    calls: u64,
}

impl Generate {
    pub fn new(size: usize, width: usize) -> Result<Self> {
        let config = bench_config(size, width)?;
        let (nets, _, _) = initialise(&config, 0, &Device::Cpu, 7)?;
        Ok(Generate {
            nets,
            config,
            calls: 0,
        })
    }

    pub fn config(&self) -> &DcganConfig {
        &self.config
    }

    /// Generates one batch; returns the sum of its pixels (so nothing is optimised away).
    pub fn run(&mut self) -> Result<f64> {
        self.calls += 1;
        let z = normal_tensor(
            &[self.config.batch, self.config.latent],
            self.calls,
            &Device::Cpu,
        )?;
        let out = self.nets.g.forward(&z, false).map_err(ce("generating"))?;
        Ok(out
            .sum_all()
            .and_then(|s| s.to_scalar::<f32>())
            .map_err(ce("generating"))? as f64)
    }
}
