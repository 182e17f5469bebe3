//! Activations, and a per-channel bias fused with the activation that follows it.
//!
//! In candle a bias on an NCHW tensor is a broadcast add whose gradient is a
//! reduction over the batch and spatial axes, and LeakyReLU is three more
//! operations; fused, the forward pass is one pass and the backward pass one.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};

/// An elementwise activation whose derivative can be computed from its output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    /// max(x, slope·x) for 0 ≤ slope < 1.
    LeakyRelu(f32),
    Tanh,
}

impl Activation {
    /// `out = act(x · scale + shift)`, with the match outside the loop.
    pub(crate) fn apply_affine(self, x: &[f32], (scale, shift): (f32, f32), out: &mut [f32]) {
        fn each(x: &[f32], out: &mut [f32], (scale, shift): (f32, f32), act: impl Fn(f32) -> f32) {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = act(v * scale + shift);
            }
        }
        match self {
            Activation::Identity => each(x, out, (scale, shift), |h| h),
            Activation::Relu => each(x, out, (scale, shift), |h| h.max(0.0)),
            Activation::LeakyRelu(a) => each(x, out, (scale, shift), |h| h.max(a * h)),
            Activation::Tanh => each(x, out, (scale, shift), f32::tanh),
        }
    }

    /// `dx = dy · act'(h)` given the outputs `y = act(h)`, with the match on the
    /// activation outside the loop, so that each loop is branch-free and vectorises
    /// (a per-element match and LeakyReLU's sign branch cost ~10 ns per value).
    pub(crate) fn scale_by_slope(self, y: &[f32], dy: &[f32], dx: &mut [f32]) {
        fn each(y: &[f32], dy: &[f32], dx: &mut [f32], slope: impl Fn(f32) -> f32) {
            for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(y) {
                *d = g * slope(v);
            }
        }
        match self {
            Activation::Identity => dx.copy_from_slice(&dy[..dx.len()]),
            Activation::Relu => each(y, dy, dx, |v| (v > 0.0) as u8 as f32),
            Activation::LeakyRelu(a) => each(y, dy, dx, |v| if v > 0.0 { 1.0 } else { a }),
            Activation::Tanh => each(y, dy, dx, |v| 1.0 - v * v),
        }
    }

    /// The activation as candle tensor operations.
    pub fn apply_tensor(self, h: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Identity => Ok(h.clone()),
            Activation::Relu => h.relu(),
            Activation::LeakyRelu(a) => h.maximum(&(h * a as f64)?),
            Activation::Tanh => h.tanh(),
        }
    }
}

/// The contiguous f32 data of a CPU storage.
pub(crate) fn cpu_slice<'a>(
    storage: &'a candle_core::Storage,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    match storage {
        candle_core::Storage::Cpu(s) => f32_slice(s, layout, what),
        _ => candle_core::bail!("{what}: CPU tensor expected"),
    }
}

pub(crate) fn f32_slice<'a>(
    s: &'a CpuStorage,
    l: &Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("{what} must be contiguous f32, got {:?}", s.dtype()),
    }
}

/// `act(x + bias[c])` over an NCHW tensor (no bias: `act(x)`). f32 on the CPU is
/// one fused pass forward and one backward; anything else uses tensor operations.
pub fn bias_activation(
    x: &Tensor,
    bias: Option<&Tensor>,
    act: Activation,
) -> candle_core::Result<Tensor> {
    let c = x.dim(1)?;
    let fused = x.device().is_cpu()
        && x.dtype() == DType::F32
        && x.rank() == 4
        && bias.is_none_or(|b| b.dtype() == DType::F32);
    let zeros;
    let bias = match bias {
        Some(b) => b,
        None => {
            zeros = Tensor::zeros(c, x.dtype(), x.device())?;
            &zeros
        }
    };
    if !fused {
        return act.apply_tensor(&x.broadcast_add(&bias.reshape((1, c, 1, 1))?)?);
    }
    if bias.dims() != [c] {
        candle_core::bail!("bias {:?} does not match {c} channels", bias.dims())
    }
    x.contiguous()?
        .apply_op2(&bias.contiguous()?, BiasActivation { act })
}

struct BiasActivation {
    act: Activation,
}

impl CustomOp2 for BiasActivation {
    fn name(&self) -> &'static str {
        "simemu-bias-activation"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, c, h, w) = lx.shape().dims4()?;
        let hw = h * w;
        let x = f32_slice(sx, lx, "input")?;
        let bias = f32_slice(sb, lb, "bias")?;
        let y = crate::output::par_filled(x.len(), hw, |plane, out| {
            let b = bias[plane % c];
            self.act.apply_affine(&x[plane * hw..][..hw], (1.0, b), out);
        });
        Ok((CpuStorage::F32(y), lx.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (_, c, h, w) = x.dims4()?;
        let hw = h * w;
        let grad = grad.contiguous()?;
        let (sy, ly) = res.storage_and_layout();
        let (sd, ld) = grad.storage_and_layout();
        let y = cpu_slice(&sy, ly, "output")?;
        let dy = cpu_slice(&sd, ld, "gradient")?;
        let (dx, plane_sums) = crate::output::par_chunks(y.len(), hw, |plane, out| {
            let o = plane * hw;
            self.act.scale_by_slope(&y[o..o + hw], &dy[o..o + hw], out);
            // In index order, in f64: the bits do not depend on how dx was made.
            out.iter().fold(0f64, |sum, &d| sum + d as f64)
        });
        let mut db = vec![0f64; c];
        for (plane, s) in plane_sums.iter().enumerate() {
            db[plane % c] += s;
        }
        let dev = x.device();
        let db: Vec<f32> = db.iter().map(|&v| v as f32).collect();
        Ok((
            x.track_op()
                .then(|| Tensor::from_vec(dx, x.shape(), dev))
                .transpose()?,
            bias.track_op()
                .then(|| Tensor::from_vec(db, c, dev))
                .transpose()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};

    /// Against broadcast add + activation as candle tensor operations: values and
    /// both gradients, for every activation. f32 throughout; the bias gradient sums
    /// 2·5·7 = 70 terms of O(1), so 1e-5 relative.
    #[test]
    fn matches_tensor_operations() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut random = |shape: &[usize]| {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
            Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
        };
        let x = Var::from_tensor(&random(&[2, 3, 5, 7])).unwrap();
        let b = Var::from_tensor(&random(&[3])).unwrap();
        let r = random(&[2, 3, 5, 7]);
        for act in [
            Activation::Identity,
            Activation::Relu,
            Activation::LeakyRelu(0.2),
            Activation::Tanh,
        ] {
            let reference = act
                .apply_tensor(&x.broadcast_add(&b.reshape((1, 3, 1, 1)).unwrap()).unwrap())
                .unwrap();
            let fused = bias_activation(&x, Some(&b), act).unwrap();
            let diff = |a: &Tensor, b: &Tensor| {
                let scale = a
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
                d.to_scalar::<f32>().unwrap() / scale.max(1.0)
            };
            assert!(diff(&reference, &fused) < 1e-6, "{act:?}: values");
            let g_ref = (&reference * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g = (&fused * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &b] {
                let d = diff(g_ref.get(v).unwrap(), g.get(v).unwrap());
                assert!(d < 1e-5, "{act:?}: gradient {d}");
            }
        }
        // Without a bias: the plain activation.
        let y = bias_activation(&x, None, Activation::Tanh).unwrap();
        let d = (y - x.tanh().unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
    }
}
