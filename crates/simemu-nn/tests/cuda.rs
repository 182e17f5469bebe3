//! Every building block on a CUDA GPU against the fused CPU kernels: the GPU runs
//! candle's tensor operations (its CUDA convolutions, cuBLAS products), the CPU
//! simemu's kernels, from the same inputs. Built only with the `cuda` feature, and
//! then it needs a GPU: `scripts/build-cuda.sh --tests` packs this test binary for
//! the device run (docs/gpu.md).
//!
//! Tolerance: 1e-4 of each result's largest magnitude. Both sides compute in f32
//! but sum the same products in different orders (im2col + gemm on the CPU,
//! candle's CUDA kernels and cuBLAS on the GPU); f32 sums of a few thousand O(1)
//! products differ by ~1e-6 relative, while a wrong index, padding or missing
//! term moves results by O(1).
#![cfg(feature = "cuda")]

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use simemu_nn::{bias_activation, conv2d, conv_transpose2d, Activation, Adam, BatchNorm2d, Ema};

fn gpu() -> Device {
    Device::new_cuda(0).expect("these tests need a CUDA GPU")
}

fn random(shape: &[usize], rng: &mut rand_chacha::ChaCha8Rng) -> Vec<f32> {
    let n: usize = shape.iter().product();
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn on(v: &[f32], shape: &[usize], device: &Device) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, device).unwrap()
}

/// Largest |a − b| relative to the largest |a|, with `a` on the CPU.
fn relative_difference(a: &Tensor, b: &Tensor) -> f32 {
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b
        .to_device(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(a.len(), b.len());
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn assert_close(a: &Tensor, b: &Tensor, what: &str) {
    let d = relative_difference(a, b);
    assert!(d < 1e-4, "{what}: the GPU differs from the CPU by {d:.2e}");
}

/// `f(x, w)` and the gradients of ⟨f(x, w), r⟩ on both devices.
fn compare_op(
    (x, w): (&[f32], &[f32]),
    (x_shape, w_shape): (&[usize], &[usize]),
    f: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    rng: &mut rand_chacha::ChaCha8Rng,
    what: &str,
) {
    let run = |device: &Device, r: Option<&[f32]>| {
        let xv = Var::from_tensor(&on(x, x_shape, device)).unwrap();
        let wv = Var::from_tensor(&on(w, w_shape, device)).unwrap();
        let y = f(xv.as_tensor(), wv.as_tensor()).unwrap();
        let r = match r {
            Some(r) => on(r, y.dims(), device),
            None => return (y, None),
        };
        let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let gx = grads.get(xv.as_tensor()).unwrap().clone();
        let gw = grads.get(wv.as_tensor()).unwrap().clone();
        (y, Some((gx, gw)))
    };
    let (y_cpu, _) = run(&Device::Cpu, None);
    let r = random(y_cpu.dims(), rng);
    let (y_cpu, g_cpu) = run(&Device::Cpu, Some(&r));
    let (y_gpu, g_gpu) = run(&gpu(), Some(&r));
    assert_close(&y_cpu, &y_gpu, &format!("{what}: output"));
    let ((gx_cpu, gw_cpu), (gx_gpu, gw_gpu)) = (g_cpu.unwrap(), g_gpu.unwrap());
    assert_close(&gx_cpu, &gx_gpu, &format!("{what}: input gradient"));
    assert_close(&gw_cpu, &gw_gpu, &format!("{what}: weight gradient"));
}

/// The convolutions of the generators' layers and odd shapes, forward and both
/// gradients.
#[test]
fn convolutions_on_the_gpu_match_the_cpu_kernels() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    // (batch, c_in, c_out, side, kernel, stride, padding)
    for (b, ci, co, side, k, s, p) in [
        (64, 1, 16, 64, 5, 2, 2),
        (64, 16, 32, 32, 5, 2, 2),
        (3, 2, 5, 9, 3, 1, 1),
        (7, 3, 4, 11, 4, 2, 1),
    ] {
        let (xs, ws) = ([b, ci, side, side], [co, ci, k, k]);
        let (x, w) = (random(&xs, &mut rng), random(&ws, &mut rng));
        compare_op(
            (&x, &w),
            (&xs, &ws),
            |x, w| conv2d(x, w, s, p),
            &mut rng,
            &format!("conv2d {:?}", (b, ci, co, side, k, s, p)),
        );
    }
    // (batch, c_in, c_out, side, kernel, stride, padding, output_padding)
    for (b, ci, co, side, k, s, p, op) in [
        (64, 128, 64, 4, 5, 2, 2, 1),
        (64, 32, 16, 16, 4, 2, 1, 0),
        (3, 4, 1, 7, 5, 2, 2, 1),
        (5, 2, 3, 6, 3, 1, 1, 0),
    ] {
        let (xs, ws) = ([b, ci, side, side], [ci, co, k, k]);
        let (x, w) = (random(&xs, &mut rng), random(&ws, &mut rng));
        compare_op(
            (&x, &w),
            (&xs, &ws),
            |x, w| conv_transpose2d(x, w, s, p, op),
            &mut rng,
            &format!("conv_transpose2d {:?}", (b, ci, co, side, k, s, p, op)),
        );
    }
}

/// Bias + activation and BatchNorm + activation, training mode with gradients and
/// running statistics, then evaluation mode.
#[test]
fn normalisation_and_activations_on_the_gpu_match_the_cpu_kernels() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let shape = [16, 6, 9, 9];
    let x = random(&shape, &mut rng);
    let bias = random(&[6], &mut rng);
    for act in [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu(0.2),
        Activation::Tanh,
    ] {
        compare_op(
            (&x, &bias),
            (&shape, &[6]),
            |x, b| bias_activation(x, Some(b), act),
            &mut rng,
            &format!("bias_activation {act:?}"),
        );
    }
    let r = random(&shape, &mut rng);
    let layer = |device: &Device| {
        let vars = VarMap::new();
        let bn = BatchNorm2d::new(
            6,
            1e-5,
            0.1,
            VarBuilder::from_varmap(&vars, DType::F32, device),
        )
        .unwrap();
        let x = Var::from_tensor(&on(&x, &shape, device)).unwrap();
        let y = bn
            .forward(x.as_tensor(), true, Activation::LeakyRelu(0.2))
            .unwrap();
        let grads = (&y * &on(&r, &shape, device))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gx = grads.get(x.as_tensor()).unwrap().clone();
        let eval = bn.forward(x.as_tensor(), false, Activation::Relu).unwrap();
        (
            y,
            gx,
            bn.running_mean().clone(),
            bn.running_var().clone(),
            eval,
        )
    };
    let cpu = layer(&Device::Cpu);
    let gpu = layer(&gpu());
    assert_close(&cpu.0, &gpu.0, "batch norm: output");
    assert_close(&cpu.1, &gpu.1, "batch norm: input gradient");
    assert_close(&cpu.2, &gpu.2, "batch norm: running mean");
    assert_close(&cpu.3, &gpu.3, "batch norm: running variance");
    assert_close(&cpu.4, &gpu.4, "batch norm: evaluation");
}

/// Twenty Adam steps and moving-average updates on a quadratic follow the same
/// trajectory on both devices.
#[test]
fn optimiser_and_moving_average_on_the_gpu_match_the_cpu_kernels() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let start = random(&[3, 5], &mut rng);
    let run = |device: &Device| {
        let w = Var::from_tensor(&on(&start, &[3, 5], device)).unwrap();
        let vars = vec![("w".to_string(), w.clone())];
        let mut adam = Adam::new(vars.clone(), 0.05, 0.5, 0.999, 1e-8).unwrap();
        let mut ema = Ema::new(&vars, 0.9).unwrap();
        for _ in 0..20 {
            let loss = (w.as_tensor().powf(4.0).unwrap() * 0.25 - w.as_tensor())
                .unwrap()
                .sum_all()
                .unwrap();
            adam.backward_step(&loss).unwrap();
            ema.update(&vars).unwrap();
        }
        (w.as_tensor().clone(), ema.state().unwrap()["w"].clone())
    };
    let (w_cpu, ema_cpu) = run(&Device::Cpu);
    let (w_gpu, ema_gpu) = run(&gpu());
    assert_close(&w_cpu, &w_gpu, "Adam");
    assert_close(&ema_cpu, &ema_gpu, "moving average");
}

/// A checkpoint written from the GPU loads on the CPU with the same values, and
/// the other way round.
#[test]
fn checkpoints_move_between_devices() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let values = random(&[4, 3], &mut rng);
    let on_gpu = Var::from_tensor(&on(&values, &[4, 3], &gpu())).unwrap();
    let path = dir.path().join("w.safetensors");
    let tensors = simemu_nn::checkpoint::tensors_of(&[("w".to_string(), on_gpu.clone())]);
    simemu_nn::save_tensors(&path, &tensors).unwrap();
    let on_cpu = Var::zeros((4, 3), DType::F32, &Device::Cpu).unwrap();
    let saved = simemu_nn::load_tensors(&path).unwrap();
    simemu_nn::assign(&[("w".to_string(), on_cpu.clone())], &saved, "test").unwrap();
    assert_eq!(
        on_cpu
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        values
    );
    let back = Var::zeros((4, 3), DType::F32, &gpu()).unwrap();
    simemu_nn::assign(&[("w".to_string(), back.clone())], &saved, "test").unwrap();
    assert!(back.device().is_cuda());
    assert_eq!(
        back.as_tensor()
            .to_device(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        values
    );
}
