//! 2-D batch normalisation fused with the activation that follows it.
//!
//! candle's `BatchNorm` runs a dozen allocating tensor operations (including a
//! transpose to channel-major and back) and the activation adds more; their
//! backward passes as many again. Here the training forward pass is one pass for
//! the channel statistics plus one for the output, and the backward pass two: on
//! the CPU in f32. Other devices and dtypes take the same formulas as tensor
//! operations. The variables have candle's `BatchNorm` names and semantics
//! (PyTorch's: biased batch variance for normalising, unbiased for the running
//! variance, `running ← (1 − momentum)·running + momentum·batch`), so checkpoints
//! are interchangeable.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor, Var};
use candle_nn::{Init, VarBuilder};
use rayon::prelude::*;

use crate::activation::{cpu_slice, f32_slice, Activation};

/// BatchNorm over the channels of NCHW tensors with a fused activation.
pub struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
    eps: f64,
    momentum: f64,
}

impl BatchNorm2d {
    /// Variables `weight` (1), `bias` (0), `running_mean` (0), `running_var` (1) under `vb`.
    pub fn new(
        channels: usize,
        eps: f64,
        momentum: f64,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        if !(eps >= 0.0 && (0.0..=1.0).contains(&momentum)) {
            candle_core::bail!(
                "batch norm: eps {eps} must be ≥ 0 and momentum {momentum} in [0, 1]"
            )
        }
        let running_mean = vb.get_with_hints(channels, "running_mean", Init::Const(0.))?;
        let running_var = vb.get_with_hints(channels, "running_var", Init::Const(1.))?;
        Ok(BatchNorm2d {
            weight: vb.get_with_hints(channels, "weight", Init::Const(1.))?,
            bias: vb.get_with_hints(channels, "bias", Init::Const(0.))?,
            running_mean: Var::from_tensor(&running_mean)?,
            running_var: Var::from_tensor(&running_var)?,
            eps,
            momentum,
        })
    }

    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }

    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }

    /// `act(γ·(x − μ)/√(σ² + ε) + β)` with the batch's statistics (and an update of
    /// the running ones) when `train`, the running statistics otherwise.
    pub fn forward(&self, x: &Tensor, train: bool, act: Activation) -> candle_core::Result<Tensor> {
        self.forward_with_momentum(x, train.then_some(self.momentum), act)
    }

    /// [`BatchNorm2d::forward`] with the batch's statistics blended into the running
    /// ones with `momentum` (`Some`), or with the running statistics (`None`).
    /// Momentum 1/(k+1) on the k-th of several batches makes the running statistics
    /// their exact average, whatever they were before.
    pub fn forward_with_momentum(
        &self,
        x: &Tensor,
        momentum: Option<f64>,
        act: Activation,
    ) -> candle_core::Result<Tensor> {
        let train = momentum.is_some();
        let momentum = momentum.unwrap_or(self.momentum);
        let (b, c, h, w) = x.dims4()?;
        if c != self.weight.dim(0)? {
            candle_core::bail!(
                "batch norm: input has {c} channels, the layer {}",
                self.weight.dim(0)?
            )
        }
        let count = b * h * w;
        if train && count < 2 {
            candle_core::bail!("batch norm: training needs more than one value per channel")
        }
        let fused = x.device().is_cpu() && x.dtype() == DType::F32;
        if !fused {
            return self.forward_tensors(x, train.then_some(momentum), act);
        }
        let x = x.contiguous()?;
        let (mean, var) = if train {
            let (mean, var) = channel_moments(&x)?;
            let unbiased = count as f64 / (count as f64 - 1.0);
            let blend = |running: &Var, batch: &[f64], factor: f64| -> candle_core::Result<()> {
                let batch: Vec<f32> = batch.iter().map(|&v| (v * factor) as f32).collect();
                let batch = Tensor::from_vec(batch, c, x.device())?;
                running.set(&((running.as_tensor() * (1.0 - momentum))? + (batch * momentum)?)?)
            };
            blend(&self.running_mean, &mean, 1.0)?;
            blend(&self.running_var, &var, unbiased)?;
            (mean, var)
        } else {
            let read = |t: &Tensor| -> candle_core::Result<Vec<f64>> {
                t.to_dtype(DType::F64)?.to_vec1::<f64>()
            };
            (read(self.running_mean())?, read(self.running_var())?)
        };
        let op = BatchNormAct {
            mean: mean.iter().map(|&m| m as f32).collect(),
            inv_std: var
                .iter()
                .map(|&v| (1.0 / (v + self.eps).sqrt()) as f32)
                .collect(),
            act,
            batch_statistics: train,
        };
        x.apply_op3(&self.weight.contiguous()?, &self.bias.contiguous()?, op)
    }

    /// The same computation as tensor operations (other devices and dtypes).
    fn forward_tensors(
        &self,
        x: &Tensor,
        momentum: Option<f64>,
        act: Activation,
    ) -> candle_core::Result<Tensor> {
        let c = x.dim(1)?;
        let per_channel = |t: &Tensor| t.reshape((1, c, 1, 1));
        let (mean, var) = if let Some(m) = momentum {
            let mean = x.mean_keepdim(0)?.mean_keepdim(2)?.mean_keepdim(3)?;
            let centred = x.broadcast_sub(&mean)?;
            let var = centred
                .sqr()?
                .mean_keepdim(0)?
                .mean_keepdim(2)?
                .mean_keepdim(3)?;
            let (b, _, h, w) = x.dims4()?;
            let n = (b * h * w) as f64;
            self.running_mean.set(
                &((self.running_mean.as_tensor() * (1.0 - m))? + (mean.flatten_all()? * m)?)?,
            )?;
            self.running_var.set(
                &((self.running_var.as_tensor() * (1.0 - m))?
                    + (var.flatten_all()? * (m * n / (n - 1.0)))?)?,
            )?;
            (mean, var)
        } else {
            (
                per_channel(&self.running_mean.as_tensor().detach())?,
                per_channel(&self.running_var.as_tensor().detach())?,
            )
        };
        let normalised = x
            .broadcast_sub(&mean)?
            .broadcast_div(&(var + self.eps)?.sqrt()?)?;
        let h = normalised
            .broadcast_mul(&per_channel(&self.weight)?)?
            .broadcast_add(&per_channel(&self.bias)?)?;
        act.apply_tensor(&h)
    }
}

/// Chains of f64 additions run side by side in the batch statistics. One chain at
/// a time waited on each addition's latency, and the statistics were most of a
/// BatchNorm's time; each chain keeps its own order, so the bytes are the same.
const SIDE_BY_SIDE: usize = 4;

/// Per-channel mean and biased variance of a contiguous NCHW f32 tensor, summed in f64.
fn channel_moments(x: &Tensor) -> candle_core::Result<(Vec<f64>, Vec<f64>)> {
    let (b, c, h, w) = x.dims4()?;
    let hw = h * w;
    let (storage, layout) = x.storage_and_layout();
    let data = cpu_slice(&storage, layout, "batch norm input")?;
    let n = (b * hw) as f64;
    let stats: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let plane = |i: usize| &data[(i * c + ch) * hw..][..hw];
            let mean = sum_of_plane_sums(b, plane, |v| v as f64) / n;
            let var = sum_of_plane_sums(b, plane, |v| (v as f64 - mean).powi(2)) / n;
            (mean, var)
        })
        .collect();
    Ok(stats.into_iter().unzip())
}

/// `(0..count).map(|i| plane(i).iter().map(|&v| f(v)).sum::<f64>()).sum::<f64>()`,
/// with the same bytes: every sum is the same chain of additions, but
/// [`SIDE_BY_SIDE`] planes' chains run together.
fn sum_of_plane_sums<'a>(
    count: usize,
    plane: impl Fn(usize) -> &'a [f32],
    f: impl Fn(f32) -> f64,
) -> f64 {
    // Iterator::sum folds floats from −0.0.
    let mut total = -0.0f64;
    let mut i = 0;
    while i + SIDE_BY_SIDE <= count {
        let planes: [&[f32]; SIDE_BY_SIDE] = std::array::from_fn(|j| plane(i + j));
        for s in interleaved_sums(planes, &f) {
            total += s;
        }
        i += SIDE_BY_SIDE;
    }
    for i in i..count {
        total += interleaved_sums([plane(i)], &f)[0];
    }
    total
}

/// Σ f(v) over each of `N` equally long slices, each folded from −0.0 in order
/// as `Iterator::sum` does, the `N` chains interleaved.
#[inline(always)]
fn interleaved_sums<const N: usize>(slices: [&[f32]; N], f: impl Fn(f32) -> f64) -> [f64; N] {
    let len = slices[0].len();
    assert!(slices.iter().all(|s| s.len() == len));
    let mut acc = [-0.0f64; N];
    for k in 0..len {
        for (a, s) in acc.iter_mut().zip(&slices) {
            *a += f(s[k]);
        }
    }
    acc
}

/// Σdh (∂β) and Σdh·x̂ (∂γ) of channels `first`, `first + 1`, … into `sums`, each
/// one chain of additions in (sample, pixel) order.
#[inline(always)]
fn gradient_sums(
    sums: &mut [(f64, f64)],
    first: usize,
    (b, c, hw): (usize, usize, usize),
    (x, dh): (&[f32], &[f32]),
    (mean, inv_std): (&[f32], &[f32]),
) {
    for i in 0..b {
        for k in 0..hw {
            for (j, (sd, sdx)) in sums.iter_mut().enumerate() {
                let (ch, at) = (first + j, (i * c + first + j) * hw + k);
                let xhat = (x[at] - mean[ch]) * inv_std[ch];
                *sd += dh[at] as f64;
                *sdx += (dh[at] * xhat) as f64;
            }
        }
    }
}

/// y = act(γ·(x − μ)·s + β) per channel, with μ and s = 1/√(σ² + ε) given; with
/// `batch_statistics` the backward pass accounts for μ and σ² depending on x.
struct BatchNormAct {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    act: Activation,
    batch_statistics: bool,
}

impl CustomOp3 for BatchNormAct {
    fn name(&self) -> &'static str {
        "simemu-batch-norm-act"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = lx.shape().dims4()?;
        let hw = h * w;
        let x = f32_slice(sx, lx, "input")?;
        let (gamma, beta) = (f32_slice(sg, lg, "weight")?, f32_slice(sb, lb, "bias")?);
        let y = crate::output::par_filled(x.len(), hw, |plane, out| {
            let ch = plane % c;
            let scale = gamma[ch] * self.inv_std[ch];
            let shift = beta[ch] - self.mean[ch] * scale;
            self.act
                .apply_affine(&x[plane * hw..][..hw], (scale, shift), out);
        });
        Ok((CpuStorage::F32(y), (b, c, h, w).into()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, c, h, w) = x.dims4()?;
        let hw = h * w;
        let n = (b * hw) as f32;
        let grad = grad.contiguous()?;
        let (sx, lx) = x.storage_and_layout();
        let (sy, ly) = res.storage_and_layout();
        let (sd, ld) = grad.storage_and_layout();
        let (sg, lg) = gamma.storage_and_layout();
        let xv = cpu_slice(&sx, lx, "input")?;
        let yv = cpu_slice(&sy, ly, "output")?;
        let dy = cpu_slice(&sd, ld, "gradient")?;
        let g = cpu_slice(&sg, lg, "weight")?;
        // dh = dy·act'(h), kept in dx's buffer; per channel Σdh (= ∂β) and Σdh·x̂ (= ∂γ).
        let mut dx = crate::output::par_filled(xv.len(), hw, |plane, dh| {
            let o = plane * hw;
            self.act.scale_by_slope(&yv[o..o + hw], &dy[o..o + hw], dh);
        });
        let dh = &dx;
        // SIDE_BY_SIDE channels' sums together, each still one chain in its own
        // order.
        let mut sums = vec![(0f64, 0f64); c];
        let moments = (&self.mean[..], &self.inv_std[..]);
        sums.par_chunks_mut(SIDE_BY_SIDE)
            .enumerate()
            .for_each(|(group, into)| {
                let first = group * SIDE_BY_SIDE;
                match <&mut [(f64, f64); SIDE_BY_SIDE]>::try_from(&mut *into) {
                    // A whole group, with the count known to the compiler.
                    Ok(four) => gradient_sums(four, first, (b, c, hw), (xv, dh), moments),
                    Err(_) => gradient_sums(into, first, (b, c, hw), (xv, dh), moments),
                }
            });
        dx.par_chunks_mut(hw).enumerate().for_each(|(plane, out)| {
            let ch = plane % c;
            let k = g[ch] * self.inv_std[ch];
            let (mean_dh, mean_dhx) = if self.batch_statistics {
                (sums[ch].0 as f32 / n, sums[ch].1 as f32 / n)
            } else {
                (0.0, 0.0)
            };
            let (mean, inv_std) = (self.mean[ch], self.inv_std[ch]);
            for (d, &v) in out.iter_mut().zip(&xv[plane * hw..][..hw]) {
                let xhat = (v - mean) * inv_std;
                *d = k * (*d - mean_dh - xhat * mean_dhx);
            }
        });
        let dev = x.device();
        let dgamma: Vec<f32> = sums.iter().map(|s| s.1 as f32).collect();
        let dbeta: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
        Ok((
            x.track_op()
                .then(|| Tensor::from_vec(dx, (b, c, h, w), dev))
                .transpose()?,
            Some(Tensor::from_vec(dgamma, c, dev)?),
            Some(Tensor::from_vec(dbeta, c, dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::{ModuleT, VarMap};
    use rand::{Rng, SeedableRng};

    fn random(shape: &[usize], seed: u64, offset: f32) -> Tensor {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| rng.random_range(-1.0f32..1.0) * 2.0 + offset)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// The largest |value| of `t`.
    fn largest(t: &Tensor) -> f32 {
        t.abs().unwrap().max_all().unwrap().to_scalar().unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    /// Against candle's `BatchNorm` followed by the activation as tensor operations:
    /// outputs, running statistics after two training batches, all three gradients,
    /// and evaluation mode. Both compute in f32; normalised values are O(1), so
    /// 2e-5 absolute covers reassociation (the statistics here are summed in f64).
    #[test]
    fn matches_candle_batch_norm_with_activations() {
        let cfg = candle_nn::BatchNormConfig {
            eps: 1e-5,
            remove_mean: true,
            affine: true,
            momentum: 0.1,
        };
        for (i, act) in [
            Activation::Identity,
            Activation::Relu,
            Activation::LeakyRelu(0.2),
        ]
        .into_iter()
        .enumerate()
        {
            let (vm_ref, vm) = (VarMap::new(), VarMap::new());
            let dev = Device::Cpu;
            let reference =
                candle_nn::batch_norm(3, cfg, VarBuilder::from_varmap(&vm_ref, DType::F32, &dev))
                    .unwrap();
            let fused =
                BatchNorm2d::new(3, 1e-5, 0.1, VarBuilder::from_varmap(&vm, DType::F32, &dev))
                    .unwrap();
            // Same non-trivial affine parameters in both.
            for vmap in [&vm_ref, &vm] {
                let data = vmap.data().lock().unwrap();
                data["weight"]
                    .set(&Tensor::new(&[0.5f32, -1.5, 2.0], &dev).unwrap())
                    .unwrap();
                data["bias"]
                    .set(&Tensor::new(&[0.1f32, 0.0, -0.3], &dev).unwrap())
                    .unwrap();
            }
            let x = Var::from_tensor(&random(&[5, 3, 4, 7], i as u64, 0.7)).unwrap();
            let r = random(&[5, 3, 4, 7], 10 + i as u64, 0.0);
            let y_ref = act
                .apply_tensor(&reference.forward_t(x.as_tensor(), true).unwrap())
                .unwrap();
            let y = fused.forward(x.as_tensor(), true, act).unwrap();
            assert!(max_diff(&y_ref, &y) < 2e-5, "{act:?}: forward");
            let g_ref = (&y_ref * &r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let weight = |vm: &VarMap, n: &str| vm.data().lock().unwrap()[n].clone();
            for (a, b, what) in [
                (g_ref.get(&x).unwrap(), g.get(&x).unwrap(), "input"),
                (
                    g_ref.get(&weight(&vm_ref, "weight")).unwrap(),
                    g.get(&weight(&vm, "weight")).unwrap(),
                    "weight",
                ),
                (
                    g_ref.get(&weight(&vm_ref, "bias")).unwrap(),
                    g.get(&weight(&vm, "bias")).unwrap(),
                    "bias",
                ),
            ] {
                let tol = 2e-5 * largest(a).max(1.0);
                assert!(max_diff(a, b) < tol, "{act:?}: {what} gradient");
            }
            let x2 = random(&[5, 3, 4, 7], 20 + i as u64, -0.4);
            reference.forward_t(&x2, true).unwrap();
            fused.forward(&x2, true, act).unwrap();
            assert!(max_diff(reference.running_mean(), fused.running_mean()) < 1e-6);
            assert!(max_diff(reference.running_var(), fused.running_var()) < 1e-6);
            let e_ref = act
                .apply_tensor(&reference.forward_t(&x2, false).unwrap())
                .unwrap();
            let e = fused.forward(&x2, false, act).unwrap();
            assert!(max_diff(&e_ref, &e) < 2e-5, "{act:?}: evaluation");
            // The tensor-operation path (other devices) computes the same.
            let t = fused.forward_tensors(&x2, None, act).unwrap();
            assert!(max_diff(&t, &e) < 2e-5, "{act:?}: tensor path");
        }
    }

    /// The tensor-operation path, which every device other than the CPU takes,
    /// trains as the fused kernel does: outputs, the running statistics it
    /// blends in, and the gradients of input, scale and shift (2e-5 of the
    /// largest gradient, as against candle above).
    #[test]
    fn the_tensor_path_trains_as_the_fused_kernel() {
        let dev = Device::Cpu;
        let act = Activation::LeakyRelu(0.2);
        let (vm_fused, vm_tensors) = (VarMap::new(), VarMap::new());
        let layer = |vm: &VarMap| {
            let bn = BatchNorm2d::new(4, 1e-5, 0.1, VarBuilder::from_varmap(vm, DType::F32, &dev))
                .unwrap();
            let data = vm.data().lock().unwrap();
            data["weight"]
                .set(&Tensor::new(&[0.5f32, -1.5, 2.0, 1.0], &dev).unwrap())
                .unwrap();
            data["bias"]
                .set(&Tensor::new(&[0.1f32, 0.0, -0.3, 0.2], &dev).unwrap())
                .unwrap();
            bn
        };
        let (fused, tensors) = (layer(&vm_fused), layer(&vm_tensors));
        let x = Var::from_tensor(&random(&[6, 4, 5, 3], 3, 0.4)).unwrap();
        let r = random(&[6, 4, 5, 3], 4, 0.0);
        let y_fused = fused.forward(x.as_tensor(), true, act).unwrap();
        let y_tensors = tensors
            .forward_tensors(x.as_tensor(), Some(0.1), act)
            .unwrap();
        assert!(max_diff(&y_fused, &y_tensors) < 2e-5, "forward");
        assert!(max_diff(fused.running_mean(), tensors.running_mean()) < 1e-6);
        assert!(max_diff(fused.running_var(), tensors.running_var()) < 1e-6);
        let grads = |y: &Tensor| (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let (g_fused, g_tensors) = (grads(&y_fused), grads(&y_tensors));
        let var = |vm: &VarMap, n: &str| vm.data().lock().unwrap()[n].clone();
        for (what, a, b) in [
            ("input", g_fused.get(&x), g_tensors.get(&x)),
            (
                "weight",
                g_fused.get(&var(&vm_fused, "weight")),
                g_tensors.get(&var(&vm_tensors, "weight")),
            ),
            (
                "bias",
                g_fused.get(&var(&vm_fused, "bias")),
                g_tensors.get(&var(&vm_tensors, "bias")),
            ),
        ] {
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!(
                max_diff(a, b) < 2e-5 * largest(a).max(1.0),
                "{what} gradient"
            );
        }
    }

    /// The interleaved sums are the one-chain-at-a-time sums, bit for bit: with
    /// exact zeros of both signs, values over a wide range of magnitudes, and
    /// counts that leave every remainder of the groups.
    #[test]
    fn side_by_side_sums_are_the_serial_sums() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut value = || match rng.random_range(0..10) {
            0 => 0.0,
            1 => -0.0,
            _ => rng.random_range(-1.0f32..1.0) * 10f32.powi(rng.random_range(-6..6)),
        };
        for (b, c, hw) in [(0, 3, 4), (1, 1, 5), (5, 3, 7), (8, 6, 16), (7, 9, 3)] {
            let x: Vec<f32> = (0..b * c * hw).map(|_| value()).collect();
            let dh: Vec<f32> = (0..b * c * hw).map(|_| value()).collect();
            let mean: Vec<f32> = (0..c).map(|_| value()).collect();
            let inv_std: Vec<f32> = (0..c).map(|_| value().abs() + 0.5).collect();
            for ch in 0..c {
                let plane = |i: usize| &x[(i * c + ch) * hw..][..hw];
                let m = mean[ch] as f64;
                for f in [&(|v: f32| v as f64) as &dyn Fn(f32) -> f64, &|v: f32| {
                    (v as f64 - m).powi(2)
                }] {
                    let serial = (0..b)
                        .map(|i| plane(i).iter().map(|&v| f(v)).sum::<f64>())
                        .sum::<f64>();
                    assert_eq!(sum_of_plane_sums(b, plane, f).to_bits(), serial.to_bits());
                }
            }
            let mut side_by_side = vec![(0f64, 0f64); c];
            for (group, into) in side_by_side.chunks_mut(SIDE_BY_SIDE).enumerate() {
                let first = group * SIDE_BY_SIDE;
                gradient_sums(into, first, (b, c, hw), (&x, &dh), (&mean, &inv_std));
            }
            for (ch, &(sd, sdx)) in side_by_side.iter().enumerate() {
                let mut one = [(0f64, 0f64)];
                gradient_sums(&mut one, ch, (b, c, hw), (&x, &dh), (&mean, &inv_std));
                assert_eq!(
                    (sd.to_bits(), sdx.to_bits()),
                    (one[0].0.to_bits(), one[0].1.to_bits())
                );
            }
        }
    }
}
