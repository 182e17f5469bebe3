//! The CosmoGAN networks (NCHW): G is linear → seed map → BN, ReLU → transposed
//! 5×5 stride-2 convolutions halving the channels (BN, ReLU) → one channel, tanh;
//! D mirrors it with 5×5 stride-2 convolutions, LeakyReLU(0.2), BN on all but the
//! first, then a linear layer to one logit. Conditions σ enter G concatenated to z
//! and D as extra constant input channels.

use candle_core::{Module, ModuleT, Tensor, Var};
use candle_nn::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig,
    Linear, VarBuilder, VarMap,
};

use crate::config::DcganConfig;

fn bn_config() -> BatchNormConfig {
    // TF decay 0.9 = momentum 0.1; eps 1e-5 (CosmoGAN).
    BatchNormConfig {
        eps: 1e-5,
        remove_mean: true,
        affine: true,
        momentum: 0.1,
    }
}

pub struct GeneratorNet {
    lin: Linear,
    bn0: BatchNorm,
    convs: Vec<ConvTranspose2d>,
    bns: Vec<BatchNorm>,
    top: usize,
    seed: usize,
}

impl GeneratorNet {
    pub fn new(c: &DcganConfig, n_cond: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let (top, seed) = (c.top_channels(), c.seed_size());
        let lin = candle_nn::linear(c.latent + n_cond, top * seed * seed, vb.pp("lin"))?;
        let bn0 = candle_nn::batch_norm(top, bn_config(), vb.pp("bn0"))?;
        let cfg = ConvTranspose2dConfig {
            padding: 2,
            output_padding: 1,
            stride: 2,
            dilation: 1,
        };
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        let mut ch = top;
        for l in 0..c.layers {
            let out = if l + 1 == c.layers { 1 } else { ch / 2 };
            convs.push(candle_nn::conv_transpose2d(
                ch,
                out,
                5,
                cfg,
                vb.pp(format!("convt{l}")),
            )?);
            if l + 1 < c.layers {
                bns.push(candle_nn::batch_norm(
                    out,
                    bn_config(),
                    vb.pp(format!("bn{}", l + 1)),
                )?);
            }
            ch = out;
        }
        Ok(GeneratorNet {
            lin,
            bn0,
            convs,
            bns,
            top,
            seed,
        })
    }

    /// Maps (B, latent + n_cond) to (B, 1, size, size) in (−1, 1).
    pub fn forward(&self, zc: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let b = zc.dim(0)?;
        let mut x = self
            .lin
            .forward(zc)?
            .reshape((b, self.top, self.seed, self.seed))?;
        x = self.bn0.forward_t(&x, train)?.relu()?;
        for (l, conv) in self.convs.iter().enumerate() {
            x = conv.forward(&x)?;
            x = match self.bns.get(l) {
                Some(bn) => bn.forward_t(&x, train)?.relu()?,
                None => x.tanh()?,
            };
        }
        Ok(x)
    }
}

pub struct DiscriminatorNet {
    convs: Vec<Conv2d>,
    bns: Vec<BatchNorm>,
    lin: Linear,
}

impl DiscriminatorNet {
    pub fn new(c: &DcganConfig, n_cond: usize, vb: VarBuilder) -> candle_core::Result<Self> {
        let cfg = Conv2dConfig {
            padding: 2,
            stride: 2,
            dilation: 1,
            groups: 1,
            cudnn_fwd_algo: None,
        };
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        let mut ch = 1 + n_cond;
        for l in 0..c.layers {
            let out = c.width << l;
            convs.push(candle_nn::conv2d(
                ch,
                out,
                5,
                cfg,
                vb.pp(format!("conv{l}")),
            )?);
            if l > 0 {
                bns.push(candle_nn::batch_norm(
                    out,
                    bn_config(),
                    vb.pp(format!("bn{l}")),
                )?);
            }
            ch = out;
        }
        let s = c.seed_size();
        let lin = candle_nn::linear(ch * s * s, 1, vb.pp("lin"))?;
        Ok(DiscriminatorNet { convs, bns, lin })
    }

    /// Logits (B,) of images (B, 1, H, W) with conditions `cond` (B, n_cond) broadcast
    /// as constant channels.
    pub fn forward(
        &self,
        x: &Tensor,
        cond: Option<&Tensor>,
        train: bool,
    ) -> candle_core::Result<Tensor> {
        let (b, _, h, w) = x.dims4()?;
        let mut x = match cond {
            Some(c) => {
                let k = c.dim(1)?;
                let planes = c.reshape((b, k, 1, 1))?.broadcast_as((b, k, h, w))?;
                Tensor::cat(&[x, &planes], 1)?
            }
            None => x.clone(),
        };
        for (l, conv) in self.convs.iter().enumerate() {
            x = conv.forward(&x)?;
            if l > 0 {
                x = self.bns[l - 1].forward_t(&x, train)?;
            }
            // LeakyReLU(0.2) as CosmoGAN defines it: max(x, 0.2x).
            x = x.maximum(&(&x * 0.2)?)?;
        }
        self.lin.forward(&x.flatten_from(1)?)?.squeeze(1)
    }
}

/// Named variables of a VarMap, sorted by name.
pub fn named_vars(vm: &VarMap) -> Vec<(String, Var)> {
    let mut v: Vec<(String, Var)> = vm
        .data()
        .lock()
        .expect("varmap lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The variables an optimizer updates: all but BatchNorm running statistics.
pub fn trainable(vars: &[(String, Var)]) -> Vec<(String, Var)> {
    vars.iter()
        .filter(|(n, _)| !n.contains("running_"))
        .cloned()
        .collect()
}

/// Number of trainable parameters.
pub fn parameter_count(vars: &[(String, Var)]) -> usize {
    trainable(vars).iter().map(|(_, v)| v.elem_count()).sum()
}
