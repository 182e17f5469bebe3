//! # simemu-nn
//!
//! Building blocks that every candle-based generator plugin needs and candle does
//! not give in a checkpointable, reproducible form:
//!
//! - [`Adam`]: Adam whose moments and step count can be saved and restored (candle's
//!   `AdamW` hides them), so a resumed training continues bit-identically;
//! - [`bce_with_logits`]: binary cross-entropy on logits that stays finite for any
//!   logit (candle's overflows past |logit| ≈ 17);
//! - [`reinit_normal`]: re-draws parameters from a seeded ChaCha stream (candle
//!   cannot seed its CPU RNG);
//! - [`save_tensors`] / [`load_tensors`]: atomic safetensors files that refuse
//!   corrupt or mismatched content with a clear error;
//! - [`checkpoint`]: the run directory's checkpoint layout and variable bookkeeping;
//! - [`device()`]: the candle device of a run's [`ComputeDevice`](simemu_core::ComputeDevice).
//!
//! The fused kernels ([`conv`], [`conv3d`], [`activation`], [`norm`], the Adam and
//! moving-average updates) run on f32 CPU tensors; on any other device every one of them computes
//! the same result with candle's tensor operations, which candle runs on the GPU
//! (the tests hold the two paths to each other on the CPU).

pub mod activation;
pub mod checkpoint;
pub mod conv;
pub mod conv3d;
pub mod norm;
mod output;

pub use activation::{bias_activation, Activation};
pub use conv::{circular_conv_transpose2d, circular_pad, conv2d, conv_transpose2d};
pub use conv3d::{
    circular_conv3d, circular_conv_transpose3d, circular_pad3d, conv3d, conv_transpose3d,
};
pub use norm::BatchNorm2d;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand_distr::{Distribution, Normal};
use simemu_core::{ComputeDevice, Error, Result};

/// The candle device of `device`. A binary built without the `cuda` feature
/// refuses CUDA with an option error (exit status 2 at the command line).
pub fn device(device: ComputeDevice) -> Result<Device> {
    match device {
        ComputeDevice::Cpu => Ok(Device::Cpu),
        ComputeDevice::Cuda(ordinal) => cuda_device(ordinal),
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> Result<Device> {
    Device::new_cuda(ordinal)
        .map_err(|e| Error::Other(format!("device cuda:{ordinal} could not be opened: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(ordinal: usize) -> Result<Device> {
    Err(Error::Option(format!(
        "device cuda:{ordinal}: this simemu was built without CUDA; build it with \
         scripts/build-cuda.sh (docs/gpu.md)"
    )))
}

/// Converts a candle error into a simemu error with context.
pub fn ce(context: &str) -> impl Fn(candle_core::Error) -> Error + '_ {
    move |e| Error::Other(format!("{context}: {e}"))
}

/// Numerically stable mean binary cross-entropy with logits against a constant
/// target: max(x, 0) − x·t + ln(1 + e^{−|x|}).
pub fn bce_with_logits(logits: &Tensor, target: f32) -> candle_core::Result<Tensor> {
    let relu = logits.relu()?;
    let xt = (logits * target as f64)?;
    let soft = logits.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    ((relu - xt)? + soft)?.mean_all()
}

/// Adam (Kingma & Ba) over named variables, with state that can be checkpointed.
///
/// The moments of each variable live in one (2, …) tensor, first m then v. On the
/// CPU in f32 an update is two fused in-place passes (moments, then parameters)
/// instead of a dozen allocating tensor operations.
pub struct Adam {
    vars: Vec<(String, Var)>,
    moments: Vec<Tensor>,
    step: u64,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

/// Elements per parallel task of the fused update.
const ADAM_CHUNK: usize = 1 << 15;

fn cpu_f32_mut<'a>(
    s: &'a mut candle_core::CpuStorage,
    l: &candle_core::Layout,
) -> candle_core::Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (candle_core::CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => candle_core::bail!("fused Adam needs contiguous f32 tensors"),
    }
}

fn cpu_f32<'a>(
    s: &'a candle_core::CpuStorage,
    l: &candle_core::Layout,
) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (candle_core::CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("fused Adam needs contiguous f32 tensors"),
    }
}

/// m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², in place on the (2, n) moments.
struct MomentUpdate {
    beta1: f32,
    beta2: f32,
}

impl candle_core::InplaceOp2 for MomentUpdate {
    fn name(&self) -> &'static str {
        "adam-moments"
    }
    fn cpu_fwd(
        &self,
        dst: &mut candle_core::CpuStorage,
        dst_layout: &candle_core::Layout,
        grad: &candle_core::CpuStorage,
        grad_layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        use rayon::prelude::*;
        let g = cpu_f32(grad, grad_layout)?;
        let mv = cpu_f32_mut(dst, dst_layout)?;
        let (m, v) = mv.split_at_mut(g.len());
        let (b1, b2) = (self.beta1, self.beta2);
        m.par_chunks_mut(ADAM_CHUNK)
            .zip(v.par_chunks_mut(ADAM_CHUNK))
            .zip(g.par_chunks(ADAM_CHUNK))
            .for_each(|((m, v), g)| {
                for ((m, v), &g) in m.iter_mut().zip(v.iter_mut()).zip(g) {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                }
            });
        Ok(())
    }
}

/// p ← p − lr·(m/bc1)/(√(v/bc2) + ε), in place on the parameter.
struct ParameterUpdate {
    lr: f32,
    bc1: f32,
    bc2: f32,
    eps: f32,
}

impl candle_core::InplaceOp2 for ParameterUpdate {
    fn name(&self) -> &'static str {
        "adam-parameters"
    }
    fn cpu_fwd(
        &self,
        dst: &mut candle_core::CpuStorage,
        dst_layout: &candle_core::Layout,
        mv: &candle_core::CpuStorage,
        mv_layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        use rayon::prelude::*;
        let p = cpu_f32_mut(dst, dst_layout)?;
        let (m, v) = cpu_f32(mv, mv_layout)?.split_at(p.len());
        let (lr, bc1, bc2, eps) = (self.lr, self.bc1, self.bc2, self.eps);
        p.par_chunks_mut(ADAM_CHUNK)
            .zip(m.par_chunks(ADAM_CHUNK))
            .zip(v.par_chunks(ADAM_CHUNK))
            .for_each(|((p, m), v)| {
                for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
                    *p -= lr * (m / bc1) / ((v / bc2).sqrt() + eps);
                }
            });
        Ok(())
    }
}

impl Adam {
    /// `vars` are the trainable variables (not BatchNorm running statistics).
    pub fn new(
        vars: Vec<(String, Var)>,
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
    ) -> candle_core::Result<Self> {
        let moments = vars
            .iter()
            .map(|(_, v)| Tensor::zeros((2, v.elem_count()), v.dtype(), v.device()))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Adam {
            vars,
            moments,
            step: 0,
            lr,
            beta1,
            beta2,
            eps,
        })
    }

    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// One update from the gradients of `loss`; variables without a gradient are
    /// left unchanged (their moments too).
    pub fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - self.beta1.powi(t);
        let bc2 = 1.0 - self.beta2.powi(t);
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let fused = var.device().is_cpu()
                && var.dtype() == DType::F32
                && var.is_contiguous()
                && g.dtype() == DType::F32;
            if fused {
                let g = g.flatten_all()?.contiguous()?;
                self.moments[i].inplace_op2(
                    &g,
                    &MomentUpdate {
                        beta1: self.beta1 as f32,
                        beta2: self.beta2 as f32,
                    },
                )?;
                var.inplace_op2(
                    &self.moments[i],
                    &ParameterUpdate {
                        lr: self.lr as f32,
                        bc1: bc1 as f32,
                        bc2: bc2 as f32,
                        eps: self.eps as f32,
                    },
                )?;
            } else {
                let g = g.flatten_all()?;
                let (m, v) = (self.moments[i].get(0)?, self.moments[i].get(1)?);
                let m = ((m * self.beta1)? + (&g * (1.0 - self.beta1))?)?;
                let v = ((v * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
                let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + self.eps)?)?;
                let update = (update * self.lr)?.reshape(var.dims())?;
                var.set(&(var.as_tensor() - update)?)?;
                self.moments[i] = Tensor::stack(&[m, v], 0)?;
            }
        }
        Ok(())
    }

    /// Moments and step count as named tensors (`m.NAME`, `v.NAME`, `step`).
    pub fn state(&self) -> candle_core::Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (i, (name, var)) in self.vars.iter().enumerate() {
            for (k, prefix) in ["m", "v"].iter().enumerate() {
                let t = self.moments[i].get(k)?.reshape(var.dims())?;
                out.insert(format!("{prefix}.{name}"), t);
            }
        }
        // u64 step stored exactly as two u32 halves.
        let halves = [(self.step >> 32) as u32, self.step as u32];
        out.insert("step".into(), Tensor::new(&halves, &Device::Cpu)?);
        Ok(out)
    }

    /// Restores [`Adam::state`]; refuses missing or mis-shaped entries.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        for (i, (name, var)) in self.vars.iter().enumerate() {
            let mut parts = Vec::with_capacity(2);
            for prefix in ["m", "v"] {
                let key = format!("{prefix}.{name}");
                let t = state
                    .get(&key)
                    .ok_or_else(|| Error::Data(format!("optimizer state has no '{key}'")))?;
                if t.dims() != var.dims() {
                    return Err(Error::Data(format!(
                        "optimizer state '{key}' has shape {:?}, expected {:?}",
                        t.dims(),
                        var.dims()
                    )));
                }
                parts.push(
                    t.to_dtype(var.dtype())
                        .and_then(|t| t.to_device(var.device()))
                        .and_then(|t| t.flatten_all())
                        .map_err(ce("optimizer state"))?,
                );
            }
            // A fresh tensor: the fused update writes into it in place.
            self.moments[i] = Tensor::stack(&parts, 0)
                .and_then(|t| t.copy())
                .map_err(ce("optimizer state"))?;
        }
        let step = state
            .get("step")
            .ok_or_else(|| Error::Data("optimizer state has no 'step'".into()))?;
        let h: Vec<u32> = step.to_vec1().map_err(ce("optimizer step"))?;
        if h.len() != 2 {
            return Err(Error::Data(
                "optimizer step must hold two u32 halves".into(),
            ));
        }
        self.step = ((h[0] as u64) << 32) | h[1] as u64;
        Ok(())
    }
}

/// An exponential moving average of variables (for example a generator's weights,
/// which then sample better than the raw ones): `shadow ← d·shadow + (1 − d)·var`
/// with d = min(decay, (1 + t)/(10 + t)) after t updates, so early averages are
/// not dominated by the initialisation.
pub struct Ema {
    decay: f64,
    updates: u64,
    shadow: Vec<(String, Tensor)>,
}

/// shadow ← d·shadow + (1 − d)·var, in place.
struct EmaUpdate {
    decay: f32,
}

impl candle_core::InplaceOp2 for EmaUpdate {
    fn name(&self) -> &'static str {
        "ema"
    }
    fn cpu_fwd(
        &self,
        dst: &mut candle_core::CpuStorage,
        dst_layout: &candle_core::Layout,
        var: &candle_core::CpuStorage,
        var_layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let shadow = cpu_f32_mut(dst, dst_layout)?;
        let v = cpu_f32(var, var_layout)?;
        let d = self.decay;
        for (s, &v) in shadow.iter_mut().zip(v) {
            *s = d * *s + (1.0 - d) * v;
        }
        Ok(())
    }
}

impl Ema {
    /// Starts the average at the variables' current values.
    pub fn new(vars: &[(String, Var)], decay: f64) -> candle_core::Result<Self> {
        let shadow = vars
            .iter()
            .map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?)))
            .collect::<candle_core::Result<_>>()?;
        Ok(Ema {
            decay,
            updates: 0,
            shadow,
        })
    }

    /// Folds the variables' current values in; `vars` in the order given to `new`.
    pub fn update(&mut self, vars: &[(String, Var)]) -> candle_core::Result<()> {
        let t = self.updates as f64;
        let d = self.decay.min((1.0 + t) / (10.0 + t));
        self.updates += 1;
        for ((_, shadow), (_, var)) in self.shadow.iter_mut().zip(vars) {
            let fused = shadow.device().is_cpu()
                && shadow.dtype() == DType::F32
                && var.dtype() == DType::F32
                && var.is_contiguous();
            if fused {
                shadow.inplace_op2(var.as_tensor(), &EmaUpdate { decay: d as f32 })?;
            } else {
                *shadow = ((&*shadow * d)? + (var.as_tensor() * (1.0 - d))?)?;
            }
        }
        Ok(())
    }

    /// The averaged values by variable name, with the update count under `ema.updates`.
    pub fn state(&self) -> candle_core::Result<HashMap<String, Tensor>> {
        let mut out: HashMap<String, Tensor> = self.shadow.iter().cloned().collect();
        let halves = [(self.updates >> 32) as u32, self.updates as u32];
        out.insert("ema.updates".into(), Tensor::new(&halves, &Device::Cpu)?);
        Ok(out)
    }

    /// Restores [`Ema::state`].
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        for (name, shadow) in &mut self.shadow {
            let t = state
                .get(name)
                .ok_or_else(|| Error::Data(format!("moving average has no '{name}'")))?;
            if t.dims() != shadow.dims() {
                return Err(Error::Data(format!(
                    "moving average '{name}' has shape {:?}, expected {:?}",
                    t.dims(),
                    shadow.dims()
                )));
            }
            // A fresh tensor on the average's device: the fused update writes into
            // it in place.
            *shadow = t
                .to_device(shadow.device())
                .and_then(|t| t.copy())
                .map_err(ce("moving average"))?;
        }
        let h: Vec<u32> = state
            .get("ema.updates")
            .ok_or_else(|| Error::Data("moving average has no 'ema.updates'".into()))?
            .to_vec1()
            .map_err(ce("moving average"))?;
        if h.len() != 2 {
            return Err(Error::Data("ema.updates must hold two u32 halves".into()));
        }
        self.updates = ((h[0] as u64) << 32) | h[1] as u64;
        Ok(())
    }
}

/// Re-draws every variable whose name ends with one of `suffixes` from N(0, std²),
/// in name order, from a ChaCha stream seeded with `seed`; biases (`.bias`) become 0
/// and BatchNorm scales (`.weight` of names containing `bn`) become 1.
pub fn reinit_normal(vars: &[(String, Var)], seed: u64, std: f64) -> candle_core::Result<()> {
    let mut rng = simemu_core::seed::rng(seed);
    let normal = Normal::new(0.0f64, std).expect("valid std");
    let mut sorted: Vec<&(String, Var)> = vars.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in sorted {
        let n = var.elem_count();
        let t = if name.ends_with(".bias") {
            var.zeros_like()?
        } else if name.contains("bn") && name.ends_with(".weight") {
            var.ones_like()?
        } else if name.contains("bn") {
            continue; // running statistics keep their defaults
        } else {
            let v: Vec<f32> = (0..n).map(|_| normal.sample(&mut rng) as f32).collect();
            Tensor::from_vec(v, var.dims(), var.device())?.to_dtype(var.dtype())?
        };
        var.set(&t)?;
    }
    Ok(())
}

/// Writes named tensors as safetensors atomically.
pub fn save_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let tmp = simemu_core::fsutil::TempFile::new(path)?;
    candle_core::safetensors::save(tensors, tmp.path())
        .map_err(|e| Error::Other(format!("{}: {e}", path.display())))?;
    tmp.persist()
}

/// Reads a safetensors file, refusing a corrupt one with the file named.
pub fn load_tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(Error::bad_file(path, "missing checkpoint file"));
    }
    candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| Error::bad_file(path, format!("corrupt checkpoint: {e}")))
}

/// Copies saved values into existing variables, refusing missing or mis-shaped ones
/// and non-finite values.
pub fn assign(vars: &[(String, Var)], saved: &HashMap<String, Tensor>, what: &str) -> Result<()> {
    for (name, var) in vars {
        let t = saved
            .get(name)
            .ok_or_else(|| Error::Data(format!("{what}: checkpoint has no tensor '{name}'")))?;
        if t.dims() != var.dims() {
            return Err(Error::Data(format!(
                "{what}: '{name}' has shape {:?}, the model {:?}",
                t.dims(),
                var.dims()
            )));
        }
        let t = t.to_dtype(DType::F32).map_err(ce(what))?;
        let finite = t
            .flatten_all()
            .and_then(|f| f.to_vec1::<f32>())
            .map_err(ce(what))?
            .iter()
            .all(|x| x.is_finite());
        if !finite {
            return Err(Error::Data(format!("{what}: '{name}' holds NaN or Inf")));
        }
        // Checkpoints are read on the CPU; the variable may live on another device.
        let t = t
            .to_dtype(var.dtype())
            .and_then(|t| t.to_device(var.device()))
            .map_err(ce(what))?;
        var.set(&t).map_err(ce(what))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bce_is_finite_for_huge_logits_and_matches_the_formula() {
        let x = Tensor::new(&[-40.0f32, -1.0, 0.0, 2.0, 40.0], &Device::Cpu).unwrap();
        let l1: f32 = bce_with_logits(&x, 1.0).unwrap().to_scalar().unwrap();
        let want: f64 = [-40.0f64, -1.0, 0.0, 2.0, 40.0]
            .iter()
            .map(|&v| (1.0 + (-v).exp()).ln())
            .sum::<f64>()
            / 5.0;
        assert!((l1 as f64 - want).abs() < 1e-5, "{l1} vs {want}");
        let l0: f32 = bce_with_logits(&x, 0.0).unwrap().to_scalar().unwrap();
        assert!(l0.is_finite());
    }

    #[test]
    fn adam_minimises_a_quadratic_and_its_state_round_trips() {
        let w = Var::new(&[3.0f32, -2.0], &Device::Cpu).unwrap();
        let mut opt = Adam::new(vec![("w".into(), w.clone())], 0.1, 0.9, 0.999, 1e-8).unwrap();
        for _ in 0..300 {
            let loss = w.as_tensor().sqr().unwrap().sum_all().unwrap();
            opt.backward_step(&loss).unwrap();
        }
        let v: Vec<f32> = w.as_tensor().to_vec1().unwrap();
        assert!(v.iter().all(|x| x.abs() < 0.05), "{v:?}");
        let state = opt.state().unwrap();
        let mut other = Adam::new(vec![("w".into(), w.clone())], 0.1, 0.9, 0.999, 1e-8).unwrap();
        other.load_state(&state).unwrap();
        assert_eq!(other.step_count(), 300);
    }

    /// After t updates with a constant value v the average is v − (v − v0)·Π dᵢ.
    #[test]
    fn moving_average_follows_its_formula_and_round_trips() {
        let w = Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let vars = vec![("w".to_string(), w.clone())];
        let mut ema = Ema::new(&vars, 0.9).unwrap();
        w.set(&Tensor::new(&[3.0f32, 0.0], &Device::Cpu).unwrap())
            .unwrap();
        let mut keep = 1.0f64;
        for t in 0..20 {
            ema.update(&vars).unwrap();
            keep *= 0.9f64.min((1.0 + t as f64) / (10.0 + t as f64));
        }
        let got: Vec<f32> = ema.state().unwrap()["w"].to_vec1().unwrap();
        for (g, (v, v0)) in got.iter().zip([(3.0, 1.0), (0.0, -2.0)]) {
            let want = v - (v - v0) * keep;
            assert!((*g as f64 - want).abs() < 1e-5, "{g} vs {want}");
        }
        let mut other = Ema::new(&vars, 0.9).unwrap();
        other.load_state(&ema.state().unwrap()).unwrap();
        assert_eq!(other.updates, 20);
        let back: Vec<f32> = other.state().unwrap()["w"].to_vec1().unwrap();
        assert_eq!(back, got);
    }

    /// The fused f32 CPU update against the tensor formula that other devices take
    /// (and f64 variables on the CPU): the same averages to f32 rounding.
    #[test]
    fn moving_average_tensor_path_matches_the_fused_update() {
        let start = [0.5f64, -1.5, 2.0, 1e-3];
        let w32 = Var::new(&start.map(|x| x as f32), &Device::Cpu).unwrap();
        let w64 = Var::new(&start, &Device::Cpu).unwrap();
        let (v32, v64) = (
            vec![("w".to_string(), w32.clone())],
            vec![("w".to_string(), w64.clone())],
        );
        let (mut e32, mut e64) = (Ema::new(&v32, 0.95).unwrap(), Ema::new(&v64, 0.95).unwrap());
        for step in 0..30 {
            let next: Vec<f64> = start
                .iter()
                .map(|x| x * (1.0 + 0.1 * step as f64).sin())
                .collect();
            w32.set(
                &Tensor::new(
                    next.iter().map(|&x| x as f32).collect::<Vec<_>>(),
                    &Device::Cpu,
                )
                .unwrap(),
            )
            .unwrap();
            w64.set(&Tensor::new(next, &Device::Cpu).unwrap()).unwrap();
            e32.update(&v32).unwrap();
            e64.update(&v64).unwrap();
        }
        let a: Vec<f32> = e32.state().unwrap()["w"].to_vec1().unwrap();
        let b: Vec<f64> = e64.state().unwrap()["w"].to_vec1().unwrap();
        for (a, b) in a.iter().zip(b) {
            assert!((*a as f64 - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    /// A binary without the `cuda` feature names the problem and the way out, as an
    /// option error (the command line's exit status 2).
    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_is_refused_without_the_cuda_build() {
        assert!(device(ComputeDevice::Cpu).unwrap().is_cpu());
        let e = device(ComputeDevice::Cuda(1)).unwrap_err();
        assert!(matches!(e, Error::Option(_)), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("cuda:1")
                && text.contains("without CUDA")
                && text.contains("build-cuda.sh"),
            "{text}"
        );
    }

    /// The fused f32 CPU update against the plain tensor formula (taken by f64
    /// variables): the same trajectory to f32 rounding. Adam's first step moves
    /// every coordinate by exactly lr·sign(g) (m̂ = g, v̂ = g²), an analytic anchor.
    #[test]
    fn fused_adam_matches_the_tensor_formula() {
        let start = [[0.5f64, -1.5, 2.0], [1e-3, -7.0, 0.25]];
        let w32 = Var::new(&start.map(|r| r.map(|x| x as f32)), &Device::Cpu).unwrap();
        let w64 = Var::new(&start, &Device::Cpu).unwrap();
        let mut o32 = Adam::new(vec![("w".into(), w32.clone())], 0.05, 0.5, 0.999, 1e-8).unwrap();
        let mut o64 = Adam::new(vec![("w".into(), w64.clone())], 0.05, 0.5, 0.999, 1e-8).unwrap();
        let loss = |w: &Tensor| {
            // Σ w⁴/4 − w: gradients that change from step to step.
            (w.powf(4.0).unwrap() * 0.25 - w)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        for step in 0..50 {
            o32.backward_step(&loss(w32.as_tensor())).unwrap();
            o64.backward_step(&loss(w64.as_tensor())).unwrap();
            let a: Vec<f32> = w32.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let b: Vec<f64> = w64.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            if step == 0 {
                let flat: Vec<f64> = start.iter().flatten().copied().collect();
                for (x, x0) in b.iter().zip(&flat) {
                    let g = x0.powi(3) - 1.0;
                    assert!((x - (x0 - 0.05 * g.signum())).abs() < 1e-9);
                }
            }
            for (x, y) in a.iter().zip(&b) {
                assert!((*x as f64 - y).abs() < 1e-5, "step {step}: {x} vs {y}");
            }
        }
        let (s32, s64) = (o32.state().unwrap(), o64.state().unwrap());
        for key in ["m.w", "v.w"] {
            assert_eq!(s32[key].dims(), &[2, 3]);
            let d = (s32[key].to_dtype(DType::F64).unwrap() - &s64[key])
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            let scale = s64[key]
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            // f32 and f64 trajectories drift apart by rounding over 50 steps.
            assert!(d < 1e-4 * scale, "{key}: {d} of {scale}");
        }
    }
}
