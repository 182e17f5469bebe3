//! The DCGAN plugin: architecture, gradients, learning, checkpoints and resume.

use std::path::{Path, PathBuf};

use simemu_core::{
    Array, DType, Dataset, DatasetSpec, DatasetWriter, Field, FieldSpec, Generator, Registry,
    Sample, TrainOptions,
};
use simemu_dcgan::{Dcgan, DcganConfig, Nets};
use simemu_nn::checkpoint::{named_vars, parameter_count, trainable};

fn config(extra: serde_json::Value) -> DcganConfig {
    let mut base = serde_json::json!({
        "preset": "baseline", "size": 16, "layers": 2, "width": 8, "latent": 8, "batch": 8,
        "holdout": 0, "checkpoint_every": 5, "keep_last": 10, "eval_stats": []
    });
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    DcganConfig::from_options(&base).unwrap()
}

/// `n` 16×16 maps: a smooth bump plus small seeded noise; parameter `a` scales it.
fn dataset(dir: &Path, n: usize, amplitudes: &[f64]) -> Dataset {
    dataset_centred(dir, n, amplitudes, false)
}

/// [`dataset`]'s maps, each with its own mean subtracted if `centre`.
fn dataset_centred(dir: &Path, n: usize, amplitudes: &[f64], centre: bool) -> Dataset {
    let spec = DatasetSpec::new(
        vec![FieldSpec::new("x", vec![16, 16], DType::F32)],
        vec!["a".into()],
    );
    let mut w = DatasetWriter::create(dir, spec, true).unwrap();
    for i in 0..n {
        let a = amplitudes[i % amplitudes.len()];
        let mut rng = simemu_core::seed::rng(i as u64);
        let v: Vec<f32> = (0..256)
            .map(|k| {
                let (r, c) = ((k / 16) as f64 - 7.5, (k % 16) as f64 - 7.5);
                let noise: f64 = rand::Rng::random::<f64>(&mut rng) - 0.5;
                (a * (-(r * r + c * c) / 20.0).exp() + 0.02 * noise) as f32
            })
            .collect();
        let v = if centre {
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
            v.iter().map(|&x| (x as f64 - mean) as f32).collect()
        } else {
            v
        };
        w.push(
            &Sample::single(
                Field::new("x", vec![16, 16], Array::F32(v)).unwrap(),
                vec![a],
            ),
            None,
        )
        .unwrap();
    }
    w.finish().unwrap();
    Dataset::open(dir).unwrap()
}

fn options(run: &Path, steps: u64, resume: bool) -> TrainOptions {
    TrainOptions {
        budget_seconds: None,
        run_dir: run.to_path_buf(),
        steps: Some(steps),
        epochs: None,
        resume,
        seed: 42,
        progress: false,
    }
}

#[test]
fn cosmogan_configuration_has_cosmogans_parameter_count() {
    // ../shared/reference/cosmogan.md: G 12,824,449 and D 4,436,225 trainable parameters.
    let c = DcganConfig::from_options(
        &serde_json::json!({"preset": "baseline", "size": 256, "width": 64, "latent": 64}),
    )
    .unwrap();
    let nets = Nets::new(&c, 0, &candle_core::Device::Cpu).unwrap();
    assert_eq!(parameter_count(&named_vars(&nets.g_vars)), 12_824_449);
    assert_eq!(parameter_count(&named_vars(&nets.d_vars)), 4_436_225);
}

#[test]
fn gradients_reach_every_layer() {
    for upsample in ["transposed", "even"] {
        gradients_reach_every_layer_of(config(serde_json::json!({ "upsample": upsample })));
    }
    gradients_reach_every_layer_of(config(serde_json::json!({ "d_spectrum": true })));
    // Conditioned BatchNorms in G and the projection in D learn too.
    gradients_reach_every_layer_of(config(
        serde_json::json!({ "d_spectrum": true, "per_point": true }),
    ));
}

fn gradients_reach_every_layer_of(c: DcganConfig) {
    use simemu_nn::bce_with_logits;
    let mut nets = Nets::new(&c, 1, &candle_core::Device::Cpu).unwrap();
    let g = simemu_dcgan::Dcgan::new(c.clone());
    let z = g.latents_rows(&[1, 2, 3, 4], &vec![vec![0.5]; 4]).unwrap();
    let cond =
        candle_core::Tensor::new(&[[0.5f32], [0.5], [0.5], [0.5]], &candle_core::Device::Cpu)
            .unwrap();
    let fake = nets.g.forward(&z, true).unwrap();
    assert_eq!(fake.dims(), &[4, 1, 16, 16]);
    if c.d_spectrum {
        nets.d
            .standardise_spectrum([Ok(noise_maps(8, 16, 7))])
            .unwrap();
    }
    let loss = bce_with_logits(
        &nets
            .d
            .forward(&fake, (Some(&cond), 0), true, false)
            .unwrap(),
        1.0,
    )
    .unwrap();
    let grads = loss.backward().unwrap();
    for (name, var) in trainable(&named_vars(&nets.g_vars))
        .iter()
        .chain(trainable(&named_vars(&nets.d_vars)).iter())
    {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
        assert!(
            norm > 0.0 && norm.is_finite(),
            "{name}: gradient norm {norm}"
        );
    }
    // G's update through a frozen D: every G layer still learns, D's convolution
    // weights get no gradient computed at all.
    let loss = bce_with_logits(
        &nets.d.forward(&fake, (Some(&cond), 0), true, true).unwrap(),
        1.0,
    )
    .unwrap();
    let grads = loss.backward().unwrap();
    for (name, var) in trainable(&named_vars(&nets.g_vars)) {
        assert!(
            grads.get(var.as_tensor()).is_some(),
            "no gradient for {name}"
        );
    }
    for (name, var) in trainable(&named_vars(&nets.d_vars)) {
        let is_conv_weight = name.contains("conv") && name.ends_with("weight");
        assert_eq!(
            grads.get(var.as_tensor()).is_none(),
            is_conv_weight,
            "frozen D: {name}"
        );
    }
}

/// `count` maps of N² white noise, each at its own amplitude (0.5–1.5), seeded.
fn noise_maps(count: usize, n: usize, seed: u64) -> candle_core::Tensor {
    use rand::Rng;
    let mut rng = simemu_core::seed::rng(seed);
    let mut v = Vec::with_capacity(count * n * n);
    for _ in 0..count {
        let a = rng.random_range(0.5..1.5);
        v.extend((0..n * n).map(|_| a * (rng.random::<f32>() - 0.5)));
    }
    candle_core::Tensor::from_vec(v, (count, 1, n, n), &candle_core::Device::Cpu).unwrap()
}

/// `d_spectrum`: over the maps D was standardised on, every band's feature has
/// mean 0 and standard deviation 1; doubling the maps adds ln 4 / σ_band to each
/// (P ∝ a²); a D never standardised refuses to run, and one without the option
/// has no such features.
#[test]
fn d_spectrum_features_are_standardised_and_follow_the_power() {
    let c = config(serde_json::json!({ "d_spectrum": true }));
    let mut nets = Nets::new(&c, 0, &candle_core::Device::Cpu).unwrap();
    let maps = noise_maps(64, 16, 3);
    let err = nets
        .d
        .forward(&maps, (None, 0), true, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("standardise"), "{err}");
    // Two batches, to check they are pooled.
    nets.d
        .standardise_spectrum([maps.narrow(0, 0, 40), maps.narrow(0, 40, 24)])
        .unwrap();
    let features: Vec<Vec<f32>> = nets
        .d
        .spectrum_features(&maps, 0)
        .unwrap()
        .to_vec2()
        .unwrap();
    let doubled: Vec<Vec<f32>> = nets
        .d
        .spectrum_features(&(&maps * 2.0).unwrap(), 0)
        .unwrap()
        .to_vec2()
        .unwrap();
    let n = features.len() as f64;
    let mut occupied = 0;
    for b in 0..features[0].len() {
        let column: Vec<f64> = features.iter().map(|r| r[b] as f64).collect();
        if column.iter().all(|&x| x == 0.0) {
            // A band without modes at 16² (|k| of 1.50–1.83, say): no power, a
            // constant zero feature.
            assert!(doubled.iter().all(|r| r[b] == 0.0), "band {b}");
            continue;
        }
        occupied += 1;
        let mean = column.iter().sum::<f64>() / n;
        let sd = (column.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!(mean.abs() < 1e-4, "band {b}: mean {mean}");
        assert!((sd - 1.0).abs() < 1e-4, "band {b}: sd {sd}");
        // f32 log powers of ~10 shift by ln 4 to within ~1e-6, over σ ~ 0.1–0.5.
        let want = 4f64.ln() / sd_of_log_power(&maps, b);
        for (x, y) in features.iter().zip(&doubled) {
            let shift = (y[b] - x[b]) as f64;
            assert!(
                (shift - want).abs() < 1e-3 * want,
                "band {b}: {shift} vs {want}"
            );
        }
    }
    assert!(occupied >= 8, "{occupied} of 12 bands occupied at 16²");
    assert_eq!(
        D_LIN_INPUTS_WITHOUT + 12,
        nets.d_vars.data().lock().unwrap()["d.lin.weight"]
            .dim(1)
            .unwrap()
    );
    let plain = Nets::new(&config(serde_json::json!({})), 0, &candle_core::Device::Cpu).unwrap();
    assert!(plain.d.spectrum_features(&maps, 0).is_err());
    assert_eq!(
        D_LIN_INPUTS_WITHOUT,
        plain.d_vars.data().lock().unwrap()["d.lin.weight"]
            .dim(1)
            .unwrap()
    );
}

/// D's last layer at `config`'s shape: width 8 · 2 channels × 4² from two layers.
const D_LIN_INPUTS_WITHOUT: usize = 16 * 4 * 4;

/// The standard deviation over `maps` of band `b`'s log power, computed directly
/// (a 2D DFT in f64, the 12 log bands of |k| up to the corner).
fn sd_of_log_power(maps: &candle_core::Tensor, b: usize) -> f64 {
    let (count, _, n, _) = maps.dims4().unwrap();
    let v: Vec<f32> = maps.flatten_all().unwrap().to_vec1().unwrap();
    let kmax = 2f64.sqrt() * (n / 2) as f64;
    let freq = |i: usize| {
        if i <= n / 2 {
            i as f64
        } else {
            i as f64 - n as f64
        }
    };
    let logs: Vec<f64> = (0..count)
        .map(|m| {
            let (mut sum, mut modes) = (0.0, 0usize);
            for ky in 0..n {
                for kx in 0..n {
                    let k = freq(ky).hypot(freq(kx));
                    if k < 1.0 || ((k.ln() / kmax.ln() * 12.0) as usize).min(11) != b {
                        continue;
                    }
                    let (mut re, mut im) = (0.0, 0.0);
                    for y in 0..n {
                        for x in 0..n {
                            let a =
                                -2.0 * std::f64::consts::PI * (ky * y + kx * x) as f64 / n as f64;
                            let p = v[m * n * n + y * n + x] as f64;
                            re += p * a.cos();
                            im += p * a.sin();
                        }
                    }
                    sum += re * re + im * im;
                    modes += 1;
                }
            }
            (sum / modes as f64).ln()
        })
        .collect();
    let mean = logs.iter().sum::<f64>() / count as f64;
    (logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (count as f64 - 1.0)).sqrt()
}

/// `d_spectrum` standardises from the training data alone: a resumed run's
/// networks and optimisers are the bytes of a straight one.
#[test]
fn d_spectrum_training_resumes_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir.path().join("data"), 24, &[1.0]);
    let c = config(serde_json::json!({ "d_spectrum": true }));
    train_straight_and_resumed(&ds, &c, dir.path());
}

/// Trains `c` for 10 steps straight and for 5 then resumed to 10 (as a fresh
/// process would) under `dir`, checks that both leave the same bytes, and
/// returns the straight model and its run directory.
fn train_straight_and_resumed(ds: &Dataset, c: &DcganConfig, dir: &Path) -> (Dcgan, PathBuf) {
    let reg = Registry::new();
    let straight = dir.join("straight");
    let mut a = Dcgan::new(c.clone());
    a.train(ds, &options(&straight, 10, false), &reg).unwrap();
    let split = dir.join("split");
    Dcgan::new(c.clone())
        .train(ds, &options(&split, 5, false), &reg)
        .unwrap();
    let mut b = Dcgan::new(c.clone());
    b.train(ds, &options(&split, 10, true), &reg).unwrap();
    for f in [
        "generator.safetensors",
        "generator_ema.safetensors",
        "discriminator.safetensors",
        "optim_g.safetensors",
        "optim_d.safetensors",
    ] {
        let x = std::fs::read(straight.join("checkpoints/step-00000010").join(f)).unwrap();
        let y = std::fs::read(split.join("checkpoints/step-00000010").join(f)).unwrap();
        assert!(x == y, "{f} differs between straight and resumed training");
    }
    (a, straight)
}

#[test]
fn a_tiny_model_fits_a_tiny_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir.path().join("data"), 32, &[1.0]);
    // A bump at a fixed place has no shift symmetry: no augmentation.
    let mut gan = Dcgan::new(config(serde_json::json!({
        "lr_g": 1e-3, "lr_d": 1e-3, "checkpoint_every": 1000, "augment": false
    })));
    gan.train(
        &ds,
        &options(&dir.path().join("run"), 300, false),
        &Registry::new(),
    )
    .unwrap();
    // The generated maps reproduce the bump: mean map close to the data's mean map.
    let maps = gan.generate(&[], &(0..64).collect::<Vec<u64>>()).unwrap();
    let mean: Vec<f64> = (0..256)
        .map(|k| {
            maps.iter()
                .map(|s| s.fields[0].data.to_f64()[k])
                .sum::<f64>()
                / 64.0
        })
        .collect();
    let centre = mean[8 * 16 + 8];
    let corner = mean[0];
    assert!(
        centre > 0.6 && corner.abs() < 0.15,
        "centre {centre:.3}, corner {corner:.3} (data: ~0.95 and ~0)"
    );
}

/// Every optional term and layer kind together: training runs, the saved config
/// keeps them, and the generated maps are finite.
#[test]
fn the_fidelity_options_train_together() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir.path().join("data"), 32, &[1.0]);
    let extra = serde_json::json!({
        "upsample": "even", "transform": {"kind": "log", "lambda": null},
        "spectrum_loss": 1.0, "summary_loss": 1.0, "d_spectrum": true
    });
    let mut gan = Dcgan::new(config(extra.clone()));
    let run = dir.path().join("run");
    gan.train(&ds, &options(&run, 10, false), &Registry::new())
        .unwrap();
    let saved: DcganConfig = serde_json::from_value(gan.config()).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        assert_eq!(&gan.config()[k], v, "{k}");
    }
    let loaded = simemu_dcgan::train::load(&run, saved, &candle_core::Device::Cpu).unwrap();
    for s in loaded.generate(&[], &[1, 2, 3]).unwrap() {
        assert!(s.fields[0].data.to_f64().iter().all(|v| v.is_finite()));
    }
}

#[test]
fn checkpoints_round_trip_resume_is_bit_identical_and_corruption_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir.path().join("data"), 24, &[0.5, 1.0]);
    let c = config(serde_json::json!({}));
    let (a, straight) = train_straight_and_resumed(&ds, &c, dir.path());

    // Conditional (a varies), and loading restores exactly what was trained.
    assert_eq!(a.params().len(), 1);
    let seeds: Vec<u64> = (100..108).collect();
    let before = a.generate(&[0.75], &seeds).unwrap();
    let loaded =
        simemu_dcgan::train::load(&straight, c.clone(), &candle_core::Device::Cpu).unwrap();
    assert_eq!(loaded.generate(&[0.75], &seeds).unwrap(), before);
    assert!(a
        .generate(&[], &seeds)
        .unwrap_err()
        .to_string()
        .contains("give --param"));

    // A corrupted checkpoint is refused; the previous one stays usable.
    let latest = straight.join("checkpoints/step-00000010/generator.safetensors");
    let bytes = std::fs::read(&latest).unwrap();
    std::fs::write(&latest, &bytes[..bytes.len() / 2]).unwrap();
    let err = simemu_dcgan::train::load(
        &straight.join("checkpoints/step-00000010"),
        c.clone(),
        &candle_core::Device::Cpu,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("generator.safetensors") && err.contains("corrupt"),
        "{err}"
    );
    let prev = simemu_dcgan::train::load(
        &straight.join("checkpoints/step-00000005"),
        c.clone(),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert_eq!(prev.generate(&[0.75], &seeds).unwrap().len(), 8);
}

/// `pin_mean`: every generated map, also after loading, has the training maps'
/// mean (here 0: the maps are centred), where an unpinned G's means scatter; data
/// whose means scatter are refused with an error that names the option.
#[test]
fn pinned_mean_holds_for_every_map_and_needs_data_whose_means_do_not_scatter() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset_centred(&dir.path().join("data"), 32, &[1.0], true);
    let seeds: Vec<u64> = (0..16).collect();
    let map_means_at = |gan: &Dcgan, params: &[f64]| -> Vec<f64> {
        gan.generate(params, &seeds)
            .unwrap()
            .iter()
            .map(|s| {
                let v = s.fields[0].data.to_f64();
                v.iter().sum::<f64>() / v.len() as f64
            })
            .collect()
    };
    let map_means = |gan: &Dcgan| map_means_at(gan, &[]);
    let largest = |means: &[f64]| means.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let trained_on = |data: &Dataset, pin: serde_json::Value, run: &str| {
        let mut gan = Dcgan::new(config(serde_json::json!({ "pin_mean": pin })));
        gan.train(
            data,
            &options(&dir.path().join(run), 5, false),
            &Registry::new(),
        )
        .unwrap();
        gan
    };
    let trained = |pin: bool, run: &str| trained_on(&ds, pin.into(), run);
    let pinned = trained(true, "pinned");
    // f32 rounding of a mean over 256 values of size ~1, mapped back to physical
    // values (×1/scale ≈ 0.6).
    assert!(
        largest(&map_means(&pinned)) < 1e-6,
        "{:?}",
        map_means(&pinned)
    );
    let loaded = simemu_dcgan::train::load(
        &dir.path().join("pinned"),
        pinned.config.clone(),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert_eq!(map_means(&loaded), map_means(&pinned));
    let free = largest(&map_means(&trained(false, "free")));
    assert!(
        free > 1e-3,
        "an unpinned G's map means: largest |mean| {free:.2e}"
    );

    // Two amplitudes: each map's mean follows its amplitude.
    let scattered = dataset(&dir.path().join("scattered"), 32, &[0.5, 1.0]);
    let mut gan = Dcgan::new(config(serde_json::json!({ "pin_mean": true })));
    let err = gan
        .train(
            &scattered,
            &options(&dir.path().join("refused"), 5, false),
            &Registry::new(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("pin_mean") && err.contains("scatter"), "{err}");

    // "auto" pins the centred maps' mean as `true` does, and leaves the scattered
    // maps' means to G.
    let auto = trained_on(&ds, "auto".into(), "auto");
    assert_eq!(map_means(&auto), map_means(&pinned));
    let auto = trained_on(&scattered, "auto".into(), "auto-scattered");
    let free = trained_on(&scattered, false.into(), "free-scattered");
    assert_eq!(map_means_at(&auto, &[0.5]), map_means_at(&free, &[0.5]));
    let e = refusal(serde_json::json!({ "pin_mean": "always" }));
    assert!(e.contains("pin_mean") && e.contains("auto"), "{e}");
}

/// The plugin's defaults are the shipped emulator's recipe: with the bookkeeping
/// its training config sets, the default configuration is the one stored with
/// `models/convergence-64`, option for option, but for the preset's name and two
/// options written in their general form: all the training maps (the model's
/// 7,872 are fewer than the 8,000 its config named), and its mean pinned where the
/// data allows (the model's is pinned); and `per_point`, which the preset gained
/// for conditional data and which does nothing on the model's unconditional data.
#[test]
fn the_default_preset_is_the_shipped_models_recipe() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/convergence-64");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{model}/generator.json")).unwrap())
            .unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{model}/state.json")).unwrap())
            .unwrap();
    assert!(
        state["meta"]["pinned_mean"].is_f64(),
        "the shipped model is pinned"
    );
    let trained_on = state["meta"]["training_samples"].as_u64().unwrap();
    // As every stored configuration loads: the options since removed, which it
    // stores at their off values, drop out.
    let loaded = DcganConfig::from_stored(&run["config"]).unwrap();
    let loaded = serde_json::to_value(&loaded).unwrap();
    let mut shipped = loaded.as_object().unwrap().clone();
    assert!(shipped["matching_maps"].as_u64().unwrap() >= trained_on);
    assert_eq!(shipped["pin_mean"], true);
    shipped.insert("matching_maps".into(), "all".into());
    shipped.insert("pin_mean".into(), "auto".into());
    shipped.insert("preset".into(), "fidelity".into());
    assert_eq!(shipped["per_point"], false);
    shipped.insert("per_point".into(), true.into());
    let defaults = DcganConfig::from_options(&serde_json::json!({
        "checkpoint_every": 250, "keep_last": 30, "eval_count": 256
    }))
    .unwrap();
    assert_eq!(
        serde_json::to_value(&defaults).unwrap(),
        serde_json::Value::Object(shipped)
    );
    assert_eq!(DcganConfig::default().width, 32);
}

/// A preset fills only the options not given; "baseline" is CosmoGAN's
/// architecture with every fidelity lever off, and a stored configuration from
/// before presets takes the baseline's (off) values for the options it lacks.
#[test]
fn presets_fill_the_options_not_given() {
    let tuned =
        DcganConfig::from_options(&serde_json::json!({ "width": 16, "pin_mean": false })).unwrap();
    let fidelity = DcganConfig::default();
    assert_eq!(
        (tuned.width, tuned.pin_mean),
        (16, simemu_dcgan::config::PinMean::Off)
    );
    assert_eq!(
        (tuned.layers, tuned.d_spectrum, tuned.spectrum_loss),
        (fidelity.layers, fidelity.d_spectrum, fidelity.spectrum_loss)
    );
    let baseline = DcganConfig::from_options(&serde_json::json!({ "preset": "baseline" })).unwrap();
    assert_eq!(
        (baseline.layers, baseline.width, baseline.upsample),
        (4, 16, simemu_dcgan::config::Upsample::Transposed)
    );
    assert_eq!((baseline.spectrum_loss, baseline.summary_loss), (0.0, 0.0));
    assert!(!baseline.d_spectrum && baseline.augment && baseline.ema > 0.0);
    assert_eq!(
        baseline.transform,
        simemu_dcgan::transform::TransformKind::Affine
    );
    // Serialised and read back, a configuration is itself, whatever its preset.
    for c in [&fidelity, &tuned, &baseline] {
        let stored: DcganConfig = serde_json::from_value(serde_json::to_value(c).unwrap()).unwrap();
        assert_eq!(&stored, c);
        let given = DcganConfig::from_options(&serde_json::to_value(c).unwrap()).unwrap();
        assert_eq!(&given, c);
    }
    let mut old = serde_json::to_value(&fidelity).unwrap();
    for key in ["preset", "d_spectrum"] {
        old.as_object_mut().unwrap().remove(key);
    }
    let old = DcganConfig::from_stored(&old).unwrap();
    assert!(!old.d_spectrum && old.summary_minkowski);
    // A config from before the smooth Minkowski summaries, without a summary term:
    // stored, it loads with them off; the fidelity preset would have turned them on
    // and refused it (they need the summary term).
    let mut older = serde_json::to_value(&baseline).unwrap();
    for key in ["preset", "summary_minkowski", "d_spectrum"] {
        older.as_object_mut().unwrap().remove(key);
    }
    let older_config = DcganConfig::from_stored(&older).unwrap();
    assert_eq!(older_config, baseline);
    assert!(refusal(older).contains("summary_minkowski"));
    let e = refusal(serde_json::json!({ "preset": "cosmogan" }));
    assert!(e.contains("preset") && e.contains("baseline"), "{e}");
}

/// The error that refuses these options.
fn refusal(options: serde_json::Value) -> String {
    DcganConfig::from_options(&options).unwrap_err().to_string()
}

/// A sample's bytes depend on its seed only: not on the batch it is generated in
/// (including a batch of one) nor on the number of threads.
#[test]
fn generated_samples_do_not_depend_on_batch_or_threads() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(&dir.path().join("data"), 16, &[1.0]);
    let mut gan = Dcgan::new(config(serde_json::json!({})));
    gan.train(
        &ds,
        &options(&dir.path().join("run"), 5, false),
        &Registry::new(),
    )
    .unwrap();
    let seeds: Vec<u64> = (100..111).collect();
    let bytes = |batch: usize, threads: usize| -> Vec<Vec<f64>> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            seeds
                .chunks(batch)
                .flat_map(|c| gan.generate(&[], c).unwrap())
                .map(|s| s.fields[0].data.to_f64())
                .collect()
        })
    };
    let reference = bytes(11, 2);
    for (batch, threads) in [(1, 2), (3, 1), (4, 2), (11, 1)] {
        assert!(
            bytes(batch, threads) == reference,
            "batch {batch}, {threads} threads"
        );
    }
}

/// `per_point` on data at six design points: the transform's range and the
/// pinned mean are fitted over the points, training resumes bit-identically,
/// generation at a condition between the points is the same whichever
/// conditions were generated at before and after loading, and a condition
/// outside the trained box is refused with the box named.
#[test]
fn per_point_training_fits_the_range_over_the_design_and_generates_between_points() {
    let dir = tempfile::tempdir().unwrap();
    let amplitudes = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0];
    let ds = dataset_centred(&dir.path().join("data"), 48, &amplitudes, true);
    let c = config(serde_json::json!({
        "per_point": true, "transform": {"kind": "log"}, "spectrum_loss": 1.0,
        "d_spectrum": true, "pin_mean": "auto"
    }));
    let (gan, run) = train_straight_and_resumed(&ds, &c, dir.path());
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("checkpoints/step-00000010/state.json")).unwrap(),
    )
    .unwrap();
    let per_point = &state["meta"]["per_point"];
    assert_eq!(per_point["points"].as_array().unwrap().len(), 6);
    // Six points: a quadratic (three coefficients), two points per coefficient.
    assert_eq!(per_point["range"]["log_std"]["degree"], 2);
    // The centred maps' means do not scatter: pinned, by a fit over the points.
    assert!(per_point["pinned_mean"].is_object(), "{per_point}");
    let bytes = |g: &Dcgan, a: f64, seeds: &[u64]| -> Vec<Vec<f64>> {
        g.generate(&[a], seeds)
            .unwrap()
            .iter()
            .map(|s| s.fields[0].data.to_f64())
            .collect()
    };
    let first = bytes(&gan, 1.25, &[1, 2, 3]);
    let other = bytes(&gan, 2.75, &[1, 2, 3]);
    assert_ne!(first, other, "the condition changes the maps");
    assert_eq!(bytes(&gan, 1.25, &[3]), first[2..].to_vec());
    let saved: DcganConfig = serde_json::from_value(gan.config()).unwrap();
    let loaded = simemu_dcgan::train::load(&run, saved, &candle_core::Device::Cpu).unwrap();
    assert_eq!(bytes(&loaded, 2.75, &[1, 2, 3]), other);
    assert_eq!(bytes(&loaded, 1.25, &[1, 2, 3]), first);
    // The maps' spread follows the condition, as the data's does.
    let spread = |maps: &[Vec<f64>]| -> f64 {
        maps.iter()
            .map(|m| {
                let mean = m.iter().sum::<f64>() / m.len() as f64;
                (m.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m.len() as f64).sqrt()
            })
            .sum::<f64>()
            / maps.len() as f64
    };
    assert!(
        spread(&other) > 1.5 * spread(&first),
        "{} vs {}",
        spread(&other),
        spread(&first)
    );
    let err = gan.generate(&[3.5], &[1]).unwrap_err().to_string();
    assert!(
        err.contains("outside the box") && err.contains("a ∈ [0.5, 3]"),
        "{err}"
    );
}
