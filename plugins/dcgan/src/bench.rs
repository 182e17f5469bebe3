//! Fixed benchmark workloads, twins of `benches/reference/torch_bench.py` so that
//! candle and PyTorch can be timed side by side on one machine.
//!
//! Both use the benchmark layout: CosmoGAN's structure with four 5×5 stride-2
//! layers, D's channels doubling (width·2^l), and no convolution bias in front of a
//! BatchNorm (`bias_before_batchnorm = false`), exactly as `torch_bench.py` builds
//! it. The training step is [`gan_step`], the code `simemu train` runs.
//!
//! [`TrainStep3d`] is the same step on volumes (4³ stride-2 layers, batch 16), with
//! networks of its own: `dcgan` generates maps only.

use candle_core::{Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand_distr::{Distribution, StandardNormal};
use simemu_core::seed::rng;
use simemu_core::Result;
use simemu_nn::{bce_with_logits, bias_activation, ce, Activation, Adam, BatchNorm2d};

use crate::train::{gan_step, initialise, StepOutcome};
use crate::{DcganConfig, Nets};
use simemu_nn::checkpoint::{named_vars, parameter_count};

/// Transposed convolutions in G (and convolutions in D) of every benchmark model.
pub const LAYERS: usize = 4;

/// The benchmark model of side `size` and base width `width`; batch 64, latent 64.
pub fn bench_config(size: usize, width: usize) -> Result<DcganConfig> {
    DcganConfig::from_options(&serde_json::json!({
        "preset": "baseline",
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
    /// The workload on `device`; its inputs are drawn on the host, so every device
    /// starts from the same values.
    pub fn new(size: usize, width: usize, device: &Device) -> Result<Self> {
        let config = bench_config(size, width)?;
        let (nets, opt_g, opt_d) = initialise(&config, 0, device, 1234)?;
        let real = normal_tensor(&[config.batch, 1, size, size], 1, device)?
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

    /// Runs one step with a fresh z; returns (loss_d, loss_g), read back from the
    /// device (so the step has finished there).
    pub fn run(&mut self) -> Result<(f64, f64)> {
        self.calls += 1;
        let z = normal_tensor(
            &[self.config.batch, self.config.latent],
            1000 + self.calls,
            self.real.device(),
        )?;
        match gan_step(
            &self.nets,
            (&mut self.opt_d, &mut self.opt_g),
            (&self.real, &z, None, 0),
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
    device: Device,
    calls: u64,
}

impl Generate {
    pub fn new(size: usize, width: usize, device: &Device) -> Result<Self> {
        let config = bench_config(size, width)?;
        let (nets, _, _) = initialise(&config, 0, device, 7)?;
        Ok(Generate {
            nets,
            config,
            device: device.clone(),
            calls: 0,
        })
    }

    pub fn config(&self) -> &DcganConfig {
        &self.config
    }

    /// Generates one batch; returns the sum of its pixels (so nothing is optimised
    /// away, and the batch has been computed when it returns).
    pub fn run(&mut self) -> Result<f64> {
        self.calls += 1;
        let z = normal_tensor(
            &[self.config.batch, self.config.latent],
            self.calls,
            &self.device,
        )?;
        let out = self.nets.g.forward(&z, false).map_err(ce("generating"))?;
        Ok(out
            .sum_all()
            .and_then(|s| s.to_scalar::<f32>())
            .map_err(ce("generating"))? as f64)
    }
}

/// One convolution block of the benchmark networks — the convolution, then
/// BatchNorm or a bias, then the activation, as in the training step — with a fixed
/// input and output gradient, timed alone to show where a step's time goes
/// (`torch_bench.py layers`, with the same names).
pub struct LayerBlock {
    /// `G1`…`G4` (G's transposed convolutions), `D1`…`D4` (D's convolutions).
    pub name: String,
    /// Channels and sides: `128→64 4²→8²`.
    pub shape: String,
    input: Tensor,
    weight: Var,
    bias: Option<Var>,
    norm: Option<BatchNorm2d>,
    activation: Activation,
    transposed: bool,
    output_grad: Tensor,
}

impl LayerBlock {
    fn new(
        (name, transposed): (String, bool),
        (c_in, c_out): (usize, usize),
        side_in: usize,
        normalised: bool,
        activation: Activation,
        input_needs_grad: bool,
        (seed, device): (u64, &Device),
    ) -> Result<Self> {
        let side_out = if transposed { side_in * 2 } else { side_in / 2 };
        let batch = 64;
        let input = normal_tensor(&[batch, c_in, side_in, side_in], seed, device)?;
        let input = if input_needs_grad {
            Var::from_tensor(&input)
                .map_err(ce("layer input"))?
                .as_tensor()
                .clone()
        } else {
            input
        };
        let kernel_shape = if transposed {
            [c_in, c_out, BENCH_KERNEL, BENCH_KERNEL]
        } else {
            [c_out, c_in, BENCH_KERNEL, BENCH_KERNEL]
        };
        let weight = (normal_tensor(&kernel_shape, seed + 1, device)? * 0.02)
            .and_then(|w| Var::from_tensor(&w))
            .map_err(ce("layer weight"))?;
        let (norm, bias) = if normalised {
            let vars = VarMap::new();
            let vb = VarBuilder::from_varmap(&vars, candle_core::DType::F32, device);
            let bn = BatchNorm2d::new(c_out, 1e-5, 0.1, vb).map_err(ce("layer norm"))?;
            (Some(bn), None)
        } else {
            let b = Var::zeros(c_out, candle_core::DType::F32, device).map_err(ce("layer bias"))?;
            (None, Some(b))
        };
        let output_grad = normal_tensor(&[batch, c_out, side_out, side_out], seed + 2, device)?;
        Ok(LayerBlock {
            name,
            shape: format!("{c_in}→{c_out} {side_in}²→{side_out}²"),
            input,
            weight,
            bias,
            norm,
            activation,
            transposed,
            output_grad,
        })
    }

    /// The block's output (training mode: batch statistics).
    pub fn forward(&self) -> Result<Tensor> {
        let (pad, w) = (BENCH_KERNEL / 2, self.weight.as_tensor());
        let run = || -> candle_core::Result<Tensor> {
            let x = if self.transposed {
                simemu_nn::conv_transpose2d(&self.input, w, 2, pad, 1)?
            } else {
                simemu_nn::conv2d(&self.input, w, 2, pad)?
            };
            match &self.norm {
                Some(bn) => bn.forward(&x, true, self.activation),
                None => bias_activation(
                    &x,
                    self.bias.as_ref().map(|b| b.as_tensor()),
                    self.activation,
                ),
            }
        };
        run().map_err(ce("layer forward"))
    }

    /// Forward, then the gradients of ⟨output, fixed output gradient⟩ with respect
    /// to the weights (and the input, unless it is data); returns the convolution
    /// weight's gradient and whether the input got one.
    pub fn forward_backward(&self) -> Result<(Tensor, bool)> {
        let grads = self
            .forward()?
            .mul(&self.output_grad)
            .and_then(|l| l.sum_all())
            .and_then(|l| l.backward())
            .map_err(ce("layer backward"))?;
        let weight = grads.get(self.weight.as_tensor()).cloned().ok_or_else(|| {
            simemu_core::Error::Other(format!("{}: no weight gradient", self.name))
        })?;
        Ok((weight, grads.get(&self.input).is_some()))
    }

    /// Waits until the block's device has finished the work queued on it (a GPU
    /// runs asynchronously; on the CPU there is nothing to wait for).
    pub fn synchronize(&self) -> Result<()> {
        self.input
            .device()
            .synchronize()
            .map_err(ce("synchronising"))
    }
}

/// 5×5 stride-2 convolutions, as in every benchmark model.
const BENCH_KERNEL: usize = 5;

/// The eight convolution blocks of the benchmark model of side `size` and base
/// width `width`: G's four transposed convolutions (BatchNorm + ReLU; the last
/// to one channel with a bias and tanh), then D's four convolutions (a bias on the
/// first, BatchNorm on the others; LeakyReLU 0.2). D1's input is data and gets no
/// gradient, as in the D update.
pub fn layer_blocks(size: usize, width: usize, device: &Device) -> Result<Vec<LayerBlock>> {
    bench_config(size, width)?;
    let mut blocks = Vec::with_capacity(2 * LAYERS);
    for l in 0..LAYERS {
        let last = l == LAYERS - 1;
        let c_in = width << (LAYERS - 1 - l);
        let (c_out, activation) = if last {
            (1, Activation::Tanh)
        } else {
            (c_in / 2, Activation::Relu)
        };
        blocks.push(LayerBlock::new(
            (format!("G{}", l + 1), true),
            (c_in, c_out),
            (size >> LAYERS) << l,
            !last,
            activation,
            true,
            (100 + 10 * l as u64, device),
        )?);
    }
    for l in 0..LAYERS {
        let c_in = if l == 0 { 1 } else { width << (l - 1) };
        blocks.push(LayerBlock::new(
            (format!("D{}", l + 1), false),
            (c_in, width << l),
            size >> l,
            l > 0,
            Activation::LeakyRelu(0.2),
            l > 0,
            (200 + 10 * l as u64, device),
        )?);
    }
    Ok(blocks)
}

/// Boxes per batch of the 3-D benchmark step.
pub const BATCH_3D: usize = 16;
/// Every 3-D layer is a 4³ convolution of stride 2 and padding 1: it halves (D) or
/// doubles (G) the side exactly.
const KERNEL_3D: usize = 4;

/// A 5-D tensor through a BatchNorm (or a bias) and an activation: the 2-D
/// kernels see (B, C, D·H, W), which has the same per-channel statistics.
fn normalise_3d(
    x: &Tensor,
    norm: Option<&BatchNorm2d>,
    bias: Option<&Tensor>,
    act: Activation,
) -> candle_core::Result<Tensor> {
    let (b, c, d, h, w) = x.dims5()?;
    let planes = x.reshape((b, c, d * h, w))?;
    let out = match norm {
        Some(bn) => bn.forward(&planes, true, act)?,
        None => bias_activation(&planes, bias, act)?,
    };
    out.reshape((b, c, d, h, w))
}

/// The networks of the 3-D benchmark layout (`torch_bench.py train --dims 3`):
/// G: linear → (8W, (S/16)³) → BN, ReLU → four 4³ transposed convolutions of
/// stride 2, padding 1, halving the channels (BN, ReLU; the last to one channel
/// with a bias, then tanh). D: four 4³ convolutions of stride 2, padding 1, with
/// W·2^l channels (a bias on the first, BN on the others), LeakyReLU(0.2), then a
/// linear layer to one logit. Weights N(0, 0.02), biases 0.
struct Nets3d {
    g_lin: candle_nn::Linear,
    g_norms: Vec<BatchNorm2d>,
    g_weights: Vec<Tensor>,
    g_bias: Tensor,
    d_weights: Vec<Tensor>,
    d_bias: Tensor,
    d_norms: Vec<BatchNorm2d>,
    d_lin: candle_nn::Linear,
    top: usize,
    seed: usize,
}

impl Nets3d {
    fn new(size: usize, width: usize, g_vb: VarBuilder, d_vb: VarBuilder) -> Result<Self> {
        let build = || -> candle_core::Result<Self> {
            let (top, seed) = (width << (LAYERS - 1), size >> LAYERS);
            let bn = |c: usize, vb: VarBuilder| BatchNorm2d::new(c, 1e-5, 0.1, vb);
            let k = KERNEL_3D;
            let g_lin = candle_nn::linear(64, top * seed.pow(3), g_vb.pp("lin"))?;
            let mut g_norms = vec![bn(top, g_vb.pp("bn0"))?];
            let mut g_weights = Vec::new();
            let mut ch = top;
            for l in 0..LAYERS {
                let out = if l + 1 == LAYERS { 1 } else { ch / 2 };
                g_weights.push(g_vb.get((ch, out, k, k, k), &format!("convt{l}.weight"))?);
                if l + 1 < LAYERS {
                    g_norms.push(bn(out, g_vb.pp(format!("bn{}", l + 1)))?);
                }
                ch = out;
            }
            let g_bias = g_vb.get(1, &format!("convt{}.bias", LAYERS - 1))?;
            let (mut d_weights, mut d_norms, mut ch) = (Vec::new(), Vec::new(), 1);
            for l in 0..LAYERS {
                let out = width << l;
                d_weights.push(d_vb.get((out, ch, k, k, k), &format!("conv{l}.weight"))?);
                if l > 0 {
                    d_norms.push(bn(out, d_vb.pp(format!("bn{l}")))?);
                }
                ch = out;
            }
            let d_bias = d_vb.get(width, "conv0.bias")?;
            let d_lin = candle_nn::linear(ch * seed.pow(3), 1, d_vb.pp("lin"))?;
            Ok(Nets3d {
                g_lin,
                g_norms,
                g_weights,
                g_bias,
                d_weights,
                d_bias,
                d_norms,
                d_lin,
                top,
                seed,
            })
        };
        build().map_err(ce("3-D benchmark networks"))
    }

    fn generate(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        use candle_core::Module;
        let s = self.seed;
        let mut x = self
            .g_lin
            .forward(z)?
            .reshape((z.dim(0)?, self.top, s, s, s))?;
        x = normalise_3d(&x, Some(&self.g_norms[0]), None, Activation::Relu)?;
        for (l, w) in self.g_weights.iter().enumerate() {
            x = simemu_nn::conv_transpose3d(&x, w, 2, 1, 0)?;
            x = match self.g_norms.get(l + 1) {
                Some(bn) => normalise_3d(&x, Some(bn), None, Activation::Relu)?,
                None => normalise_3d(&x, None, Some(&self.g_bias), Activation::Tanh)?,
            };
        }
        Ok(x)
    }

    /// D's logits; with `frozen`, no gradient reaches D's convolution weights.
    fn discriminate(&self, x: &Tensor, frozen: bool) -> candle_core::Result<Tensor> {
        use candle_core::Module;
        let leaky = Activation::LeakyRelu(0.2);
        let mut x = x.clone();
        for (l, w) in self.d_weights.iter().enumerate() {
            let w = if frozen { w.detach() } else { w.clone() };
            x = simemu_nn::conv3d(&x, &w, 2, 1)?;
            x = match l.checked_sub(1) {
                Some(k) => normalise_3d(&x, Some(&self.d_norms[k]), None, leaky)?,
                None => normalise_3d(&x, None, Some(&self.d_bias), leaky)?,
            };
        }
        self.d_lin.forward(&x.flatten_from(1)?)?.squeeze(1)
    }
}

/// One GAN iteration on volumes (`simemu bench train-step --dims 3`, `torch_bench.py
/// train --dims 3`): G(z), a D update on a fixed real batch of tanh(N(0, 1)) boxes
/// and the detached fake (two BatchNorm batches), then a G update through the
/// updated D; batch [`BATCH_3D`], latent 64, Adam(2e-4, 0.5, 0.999).
pub struct TrainStep3d {
    nets: Nets3d,
    g_vars: VarMap,
    d_vars: VarMap,
    opt_d: Adam,
    opt_g: Adam,
    real: Tensor,
    calls: u64,
}

impl TrainStep3d {
    pub fn new(size: usize, width: usize, device: &Device) -> Result<Self> {
        if !size.is_multiple_of(1 << LAYERS) || size == 0 || width == 0 {
            return Err(simemu_core::Error::Option(format!(
                "bench train-step --dims 3: the side must be a positive multiple of {} and \
                 the width positive (got {size} and {width})",
                1 << LAYERS
            )));
        }
        let (g_vars, d_vars) = (VarMap::new(), VarMap::new());
        let vb = |vars: &VarMap| VarBuilder::from_varmap(vars, candle_core::DType::F32, device);
        let nets = Nets3d::new(size, width, vb(&g_vars), vb(&d_vars))?;
        let adam = |vars: &VarMap, what: &str, seed: u64| {
            let named = named_vars(vars);
            simemu_nn::reinit_normal(&named, seed, 0.02).map_err(ce(what))?;
            Adam::new(
                simemu_nn::checkpoint::trainable(&named),
                2e-4,
                0.5,
                0.999,
                1e-8,
            )
            .map_err(ce(what))
        };
        let opt_g = adam(&g_vars, "3-D benchmark G", 1234)?;
        let opt_d = adam(&d_vars, "3-D benchmark D", 1235)?;
        let real = normal_tensor(&[BATCH_3D, 1, size, size, size], 1, device)?
            .tanh()
            .map_err(ce("benchmark input"))?;
        Ok(TrainStep3d {
            nets,
            g_vars,
            d_vars,
            opt_d,
            opt_g,
            real,
            calls: 0,
        })
    }

    /// Trainable parameters of (G, D).
    pub fn parameters(&self) -> (usize, usize) {
        (
            parameter_count(&named_vars(&self.g_vars)),
            parameter_count(&named_vars(&self.d_vars)),
        )
    }

    /// Runs one step with a fresh z; returns (loss_d, loss_g), read back from the
    /// device.
    pub fn run(&mut self) -> Result<(f64, f64)> {
        self.calls += 1;
        let z = normal_tensor(&[BATCH_3D, 64], 1000 + self.calls, self.real.device())?;
        let mut step = || -> candle_core::Result<(f64, f64)> {
            let fake = self.nets.generate(&z)?;
            let loss_d = (bce_with_logits(&self.nets.discriminate(&self.real, false)?, 1.0)?
                + bce_with_logits(&self.nets.discriminate(&fake.detach(), false)?, 0.0)?)?;
            self.opt_d.backward_step(&loss_d)?;
            let loss_g = bce_with_logits(&self.nets.discriminate(&fake, true)?, 1.0)?;
            self.opt_g.backward_step(&loss_g)?;
            Ok((
                loss_d.to_scalar::<f32>()? as f64,
                loss_g.to_scalar::<f32>()? as f64,
            ))
        };
        step().map_err(ce("3-D benchmark step"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eight blocks have the shapes of `torch_bench.py layers` (names, channels,
    /// sides), produce outputs of those shapes, and the backward pass yields a
    /// weight gradient of the weight's shape for each, and an input gradient for
    /// all but D1, whose input is data.
    #[test]
    fn layer_blocks_mirror_the_benchmark_networks() {
        let blocks = layer_blocks(32, 4, &Device::Cpu).unwrap();
        let shapes: Vec<String> = blocks
            .iter()
            .map(|b| format!("{} {}", b.name, b.shape))
            .collect();
        assert_eq!(
            shapes,
            [
                "G1 32→16 2²→4²",
                "G2 16→8 4²→8²",
                "G3 8→4 8²→16²",
                "G4 4→1 16²→32²",
                "D1 1→4 32²→16²",
                "D2 4→8 16²→8²",
                "D3 8→16 8²→4²",
                "D4 16→32 4²→2²",
            ]
        );
        for b in &blocks {
            let y = b.forward().unwrap();
            assert_eq!(y.dims(), b.output_grad.dims(), "{}", b.name);
            let (weight_grad, input_grad) = b.forward_backward().unwrap();
            assert_eq!(
                weight_grad.dims(),
                b.weight.as_tensor().dims(),
                "{}",
                b.name
            );
            let norm: f32 = weight_grad
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar()
                .unwrap();
            assert!(norm.is_finite() && norm > 0.0, "{}: {norm}", b.name);
            assert_eq!(input_grad, b.name != "D1", "{}", b.name);
        }
        assert!(
            layer_blocks(40, 4, &Device::Cpu).is_err(),
            "sizes must be multiples of 16"
        );
    }

    /// The 3-D step has the parameters of `torch_bench.py train --dims 3`'s
    /// networks (counted by PyTorch 2.15: 11,981 + 10,955 at side 16, width 2;
    /// 756,193 + 690,641 at the default 32, 16), trains both networks, repeats its
    /// losses bit for bit from the same seeds, and refuses sides that four
    /// halvings do not divide.
    #[test]
    fn train_step_3d_mirrors_its_pytorch_twin() {
        let mut step = TrainStep3d::new(16, 2, &Device::Cpu).unwrap();
        assert_eq!(step.parameters(), (11_981, 10_955));
        let values = |vars: &VarMap| -> Vec<f32> {
            let mut named = named_vars(vars);
            named.sort_by(|a, b| a.0.cmp(&b.0));
            named
                .iter()
                .flat_map(|(_, v)| {
                    v.as_tensor()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                })
                .collect()
        };
        let (g0, d0) = (values(&step.g_vars), values(&step.d_vars));
        let first: Vec<(f64, f64)> = (0..3).map(|_| step.run().unwrap()).collect();
        assert!(first.iter().all(|(d, g)| d.is_finite() && g.is_finite()));
        assert_ne!(values(&step.g_vars), g0, "G is updated");
        assert_ne!(values(&step.d_vars), d0, "D is updated");
        let mut again = TrainStep3d::new(16, 2, &Device::Cpu).unwrap();
        let second: Vec<(f64, f64)> = (0..3).map(|_| again.run().unwrap()).collect();
        assert_eq!(first, second);
        assert!(TrainStep3d::new(24, 2, &Device::Cpu).is_err());
        assert!(TrainStep3d::new(16, 0, &Device::Cpu).is_err());
    }
}
