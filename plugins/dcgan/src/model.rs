//! The CosmoGAN networks (NCHW): G is linear → seed map → BN, ReLU → transposed
//! 5×5 stride-2 convolutions halving the channels (BN, ReLU) → one channel, tanh;
//! D mirrors it with 5×5 stride-2 convolutions, LeakyReLU(0.2), BN on all but the
//! first, then a linear layer to one logit. Conditions σ enter G concatenated to z
//! and D as extra constant input channels; with `per_point` also as a per-channel
//! scale and shift after each of G's BatchNorms and as a projection onto D's
//! features (Miyato & Koyama 2018).

use candle_core::{Module, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, ConvTranspose2dConfig, Linear, VarBuilder};
use simemu_nn::{bias_activation, Activation, BatchNorm2d};

use crate::config::{DcganConfig, SpectrumBins, Upsample};
use crate::spectrum::{BandPower, BANDS};

/// Every layer is a 5×5 convolution of stride 2 padded so that it halves (D) or
/// doubles (G) the side exactly.
const KERNEL: usize = 5;
const STRIDE: usize = 2;
const PADDING: usize = 2;
const OUTPUT_PADDING: usize = 1;
/// `upsample = "even"`: 4×4 transposed convolutions of stride 2, padding 1.
const EVEN_KERNEL: usize = 4;

/// LeakyReLU slope of D (CosmoGAN: max(x, 0.2x)).
const LEAKY_SLOPE: f32 = 0.2;

/// BatchNorm as CosmoGAN: TF decay 0.9 = momentum 0.1, eps 1e-5.
const BN_MOMENTUM: f64 = 0.1;

fn batch_norm(channels: usize, vb: VarBuilder) -> candle_core::Result<BatchNorm2d> {
    BatchNorm2d::new(channels, 1e-5, BN_MOMENTUM, vb)
}

pub struct GeneratorNet {
    lin: Linear,
    /// `per_point`: for bn0 and each of `bns`, the map from the conditions to the
    /// channels' (scale − 1, shift) applied after the BatchNorm.
    film: Vec<Linear>,
    latent: usize,
    bn0: BatchNorm2d,
    /// Each upsampling layer's weight and bias.
    convs: Vec<(Tensor, Option<Tensor>)>,
    upsample: Upsample,
    bns: Vec<BatchNorm2d>,
    top: usize,
    seed: usize,
    pinned_mean: std::sync::Mutex<Option<f64>>,
}

impl GeneratorNet {
    pub fn new(c: &DcganConfig, n_cond: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let (top, seed) = (c.top_channels(), c.seed_size());
        let lin = candle_nn::linear(c.latent + n_cond, top * seed * seed, vb.pp("lin"))?;
        let bn0 = batch_norm(top, vb.pp("bn0"))?;
        let cfg = ConvTranspose2dConfig {
            padding: PADDING,
            output_padding: OUTPUT_PADDING,
            stride: STRIDE,
            dilation: 1,
        };
        // (H − 1)·2 − 2 + 4 = 2H.
        let even_cfg = ConvTranspose2dConfig {
            padding: 1,
            output_padding: 0,
            stride: STRIDE,
            dilation: 1,
        };
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        let conditioned = c.per_point && n_cond > 0;
        let mut film = Vec::new();
        if conditioned {
            film.push(candle_nn::linear(n_cond, 2 * top, vb.pp("film0"))?);
        }
        let mut ch = top;
        for l in 0..c.layers {
            let last = l + 1 == c.layers;
            let out = if last { 1 } else { ch / 2 };
            let bias = last || c.bias_before_batchnorm;
            let vb_conv = vb.pp(format!("convt{l}"));
            let (k, cfg) = match c.upsample {
                Upsample::Even => (EVEN_KERNEL, even_cfg),
                Upsample::Transposed => (KERNEL, cfg),
            };
            let conv = if bias {
                candle_nn::conv_transpose2d(ch, out, k, cfg, vb_conv)?
            } else {
                candle_nn::conv_transpose2d_no_bias(ch, out, k, cfg, vb_conv)?
            };
            convs.push((conv.weight().clone(), conv.bias().cloned()));
            if l + 1 < c.layers {
                bns.push(batch_norm(out, vb.pp(format!("bn{}", l + 1)))?);
                if conditioned {
                    film.push(candle_nn::linear(
                        n_cond,
                        2 * out,
                        vb.pp(format!("film{}", l + 1)),
                    )?);
                }
            }
            ch = out;
        }
        Ok(GeneratorNet {
            lin,
            film,
            latent: c.latent,
            bn0,
            convs,
            bns,
            top,
            seed,
            upsample: c.upsample,
            pinned_mean: std::sync::Mutex::new(None),
        })
    }

    /// From now on every map G draws has this spatial mean (`None`: its own).
    pub fn pin_mean(&self, mean: Option<f64>) {
        *self.pinned_mean.lock().expect("not poisoned") = mean;
    }

    /// Whether the BatchNorms are conditioned (`per_point` on conditional data).
    pub fn conditioned(&self) -> bool {
        !self.film.is_empty()
    }

    /// BatchNorm `k` (0: after the linear layer) of `x`, then, when conditioned,
    /// x · (1 + γ(c)) + β(c) per channel, then ReLU.
    fn normalise(
        &self,
        k: usize,
        x: &Tensor,
        cond: Option<&Tensor>,
        momentum: Option<f64>,
    ) -> candle_core::Result<Tensor> {
        let bn = if k == 0 { &self.bn0 } else { &self.bns[k - 1] };
        let (Some(film), Some(cond)) = (self.film.get(k), cond) else {
            return bn.forward_with_momentum(x, momentum, Activation::Relu);
        };
        let x = bn.forward_with_momentum(x, momentum, Activation::Identity)?;
        let ch = x.dim(1)?;
        let b = x.dim(0)?;
        let gb = film.forward(cond)?;
        let gamma = gb
            .narrow(1, 0, ch)?
            .affine(1.0, 1.0)?
            .reshape((b, ch, 1, 1))?;
        let beta = gb.narrow(1, ch, ch)?.reshape((b, ch, 1, 1))?;
        x.broadcast_mul(&gamma)?.broadcast_add(&beta)?.relu()
    }

    /// Maps (B, latent + n_cond) to (B, 1, size, size) in (−1, 1) (shifted to the
    /// pinned mean, if there is one).
    pub fn forward(&self, zc: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward_bn(zc, train.then_some(BN_MOMENTUM))
    }

    /// Sets every BatchNorm's running statistics to their exact average over the
    /// batches `zs` (G in training mode): the statistics that match the weights G
    /// holds now. Generating with a moving average of the weights needs this — the
    /// running statistics gathered during training belong to other weights, and
    /// evaluation-mode maps then lose 40–50% of their small-scale power.
    pub fn recalibrate(&self, zs: &[Tensor]) -> candle_core::Result<()> {
        for (k, z) in zs.iter().enumerate() {
            self.forward_bn(z, Some(1.0 / (k + 1) as f64))?;
        }
        Ok(())
    }

    /// Batch statistics blended into the running ones with the given momentum, or
    /// the running statistics (`None`).
    fn forward_bn(&self, zc: &Tensor, momentum: Option<f64>) -> candle_core::Result<Tensor> {
        let b = zc.dim(0)?;
        let cond = if self.conditioned() {
            let n_cond = zc.dim(1)? - self.latent;
            Some(zc.narrow(1, self.latent, n_cond)?)
        } else {
            None
        };
        let mut x = self
            .lin
            .forward(zc)?
            .reshape((b, self.top, self.seed, self.seed))?;
        x = self.normalise(0, &x, cond.as_ref(), momentum)?;
        for (l, (weight, bias)) in self.convs.iter().enumerate() {
            let (padding, output_padding) = match self.upsample {
                Upsample::Transposed => (PADDING, OUTPUT_PADDING),
                Upsample::Even => (1, 0),
            };
            x = simemu_nn::conv_transpose2d(&x, weight, STRIDE, padding, output_padding)?;
            x = if l < self.bns.len() {
                self.normalise(
                    l + 1,
                    &with_bias(x, bias.as_ref())?,
                    cond.as_ref(),
                    momentum,
                )?
            } else {
                bias_activation(&x, bias.as_ref(), Activation::Tanh)?
            };
        }
        let pinned = *self.pinned_mean.lock().expect("not poisoned");
        match pinned {
            Some(mean) => {
                let map_means = x.mean_keepdim(3)?.mean_keepdim(2)?;
                x.broadcast_sub(&map_means)? + mean
            }
            None => Ok(x),
        }
    }
}

pub struct DiscriminatorNet {
    convs: Vec<Conv2d>,
    bns: Vec<BatchNorm2d>,
    lin: Linear,
    /// `per_point` on conditional data: the conditions' projection onto the
    /// features, whose inner product with them adds to the logit.
    projection: Option<Linear>,
    /// `d_spectrum`: the log band powers of D's input, fed to `lin` beside the
    /// convolution features.
    spectrum: Option<SpectrumFeatures>,
}

/// Per-map log band powers, standardised by a reference set of maps.
struct SpectrumFeatures {
    band_power: BandPower,
    /// Per reference set (one, or one per design point with `per_point`), its
    /// maps' mean of each band's log power and the inverse of its standard
    /// deviation, each (1, bands); empty until [`DiscriminatorNet::
    /// standardise_spectrum`] adds them.
    references: Vec<(Tensor, Tensor)>,
}

impl DiscriminatorNet {
    pub fn new(c: &DcganConfig, n_cond: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let cfg = Conv2dConfig {
            padding: PADDING,
            stride: STRIDE,
            dilation: 1,
            groups: 1,
            cudnn_fwd_algo: None,
        };
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        let mut ch = 1 + n_cond;
        for l in 0..c.layers {
            let out = c.width << l;
            let make = if l == 0 || c.bias_before_batchnorm {
                candle_nn::conv2d
            } else {
                candle_nn::conv2d_no_bias
            };
            convs.push(make(ch, out, KERNEL, cfg, vb.pp(format!("conv{l}")))?);
            if l > 0 {
                bns.push(batch_norm(out, vb.pp(format!("bn{l}")))?);
            }
            ch = out;
        }
        let s = c.seed_size();
        let spectrum = c
            .d_spectrum
            .then(|| {
                BandPower::new(c.size, SpectrumBins::Log, vb.device())
                    .map_err(|e| candle_core::Error::Msg(e.to_string()))
            })
            .transpose()?
            .map(|band_power| SpectrumFeatures {
                band_power,
                references: Vec::new(),
            });
        let extra = if spectrum.is_some() { BANDS } else { 0 };
        let features = ch * s * s + extra;
        let lin = candle_nn::linear(features, 1, vb.pp("lin"))?;
        let projection = (c.per_point && n_cond > 0)
            .then(|| candle_nn::linear_no_bias(n_cond, features, vb.pp("projection")))
            .transpose()?;
        Ok(DiscriminatorNet {
            convs,
            bns,
            lin,
            projection,
            spectrum,
        })
    }

    /// With `d_spectrum`: adds a standardisation of the spectrum features, the
    /// mean and standard deviation of each band's log power over `maps`
    /// (batches of (B, 1, N, N) maps in the network's units, read one at a time);
    /// the k-th added is reference k of [`DiscriminatorNet::forward`].
    /// A band without spread (empty on small maps) gets a constant zero feature.
    pub fn standardise_spectrum(
        &mut self,
        maps: impl IntoIterator<Item = candle_core::Result<Tensor>>,
    ) -> candle_core::Result<()> {
        let Some(features) = &mut self.spectrum else {
            return Ok(());
        };
        let mut sum = [0f64; BANDS];
        let mut sum_sq = [0f64; BANDS];
        let mut count = 0usize;
        for batch in maps {
            let logs: Vec<Vec<f32>> = features.band_power.log_per_map(&batch?)?.to_vec2()?;
            for row in &logs {
                for (b, &v) in row.iter().enumerate() {
                    sum[b] += v as f64;
                    sum_sq[b] += v as f64 * v as f64;
                }
            }
            count += logs.len();
        }
        if count < 2 {
            candle_core::bail!("d_spectrum: the standardisation needs at least 2 maps");
        }
        let n = count as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let inv_std: Vec<f32> = sum
            .iter()
            .zip(&sum_sq)
            .map(|(s, q)| {
                let var = (q - s * s / n) / (n - 1.0);
                // Relative to the squared mean: f32 log powers of a band that
                // never changes still scatter by rounding.
                if var > 1e-10 * (s / n).powi(2).max(1.0) {
                    (1.0 / var.sqrt()) as f32
                } else {
                    0.0
                }
            })
            .collect();
        let device = features.band_power.device();
        features.references.push((
            Tensor::from_vec(mean, (1, BANDS), device)?,
            Tensor::from_vec(inv_std, (1, BANDS), device)?,
        ));
        Ok(())
    }

    /// The log band powers of (B, 1, N, N) maps standardised by reference
    /// `reference`, (B, bands): what `d_spectrum` adds to D's last layer.
    pub fn spectrum_features(&self, x: &Tensor, reference: usize) -> candle_core::Result<Tensor> {
        let Some(features) = &self.spectrum else {
            candle_core::bail!("this discriminator has no spectrum features (d_spectrum = false)");
        };
        let Some((mean, inv_std)) = features.references.get(reference) else {
            candle_core::bail!(
                "d_spectrum: the spectrum features have no standardisation {reference} (standardise_spectrum)"
            );
        };
        features
            .band_power
            .log_per_map(x)?
            .broadcast_sub(mean)?
            .broadcast_mul(inv_std)
    }

    /// Logits (B,) of images (B, 1, H, W) with conditions `cond` (B, n_cond) broadcast
    /// as constant channels, the spectrum features standardised by `reference`.
    /// With `frozen`, the convolution weights are detached so that backpropagation
    /// (for G's update) computes no gradient for them.
    pub fn forward(
        &self,
        x: &Tensor,
        (cond, reference): (Option<&Tensor>, usize),
        train: bool,
        frozen: bool,
    ) -> candle_core::Result<Tensor> {
        let (b, _, h, w) = x.dims4()?;
        let spectrum = self
            .spectrum
            .is_some()
            .then(|| self.spectrum_features(x, reference))
            .transpose()?;
        let mut x = match cond {
            Some(c) => {
                let k = c.dim(1)?;
                let planes = c.reshape((b, k, 1, 1))?.broadcast_as((b, k, h, w))?;
                Tensor::cat(&[x, &planes], 1)?
            }
            None => x.clone(),
        };
        for (l, conv) in self.convs.iter().enumerate() {
            let weight = if frozen {
                conv.weight().detach()
            } else {
                conv.weight().clone()
            };
            x = simemu_nn::conv2d(&x, &weight, STRIDE, PADDING)?;
            let leaky = Activation::LeakyRelu(LEAKY_SLOPE);
            x = match l.checked_sub(1) {
                Some(k) => self.bns[k].forward(&with_bias(x, conv.bias())?, train, leaky)?,
                None => bias_activation(&x, conv.bias(), leaky)?,
            };
        }
        let features = match spectrum {
            Some(s) => Tensor::cat(&[&x.flatten_from(1)?, &s], 1)?,
            None => x.flatten_from(1)?,
        };
        let logit = self.lin.forward(&features)?.squeeze(1)?;
        match (&self.projection, cond) {
            (Some(p), Some(c)) => logit + (p.forward(c)? * &features)?.sum(1)?,
            _ => Ok(logit),
        }
    }
}

/// Adds a per-channel bias to an NCHW tensor.
fn with_bias(x: Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
    match bias {
        Some(_) => bias_activation(&x, bias, Activation::Identity),
        None => Ok(x),
    }
}
