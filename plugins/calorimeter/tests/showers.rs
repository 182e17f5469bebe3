//! The simulated showers follow the GFlash parameterisation and reproduce the
//! reference prototype's layer fractions (`../shared/reference/prototypes/gflash_calo.py`).

use simemu_calorimeter::{CalorimeterSimulator, PreparedShower};
use simemu_core::{Array, Simulator};

fn simulator(options: serde_json::Value) -> CalorimeterSimulator {
    CalorimeterSimulator::from_options(&options).unwrap()
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt())
}

/// The (ln T, ln α) each shower draws — the first numbers of its random stream — have
/// the means, spreads and correlation of the GFlash sampling relations, within 2%,
/// from 1 to 100 GeV. 20,000 showers: the sampling errors (σ/√n ≈ 0.7% of σ for
/// the means, 0.5% for the spreads, ~0.4% of ρ) stay well inside 2%.
#[test]
fn drawn_longitudinal_parameters_follow_the_gflash_relations() {
    let sim = simulator(serde_json::json!({}));
    for energy in [1.0, 3.0, 10.0, 30.0, 100.0] {
        let shower = sim.prepare_at(energy).unwrap();
        let rel = *shower.longitudinal();
        let n = 20_000;
        let (mut lt, mut la) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for seed in 0..n as u64 {
            let mut rng = simemu_core::seed::rng(simemu_core::seed::sample_seed(9, seed));
            let (t, a) = shower.draw_longitudinal(&mut rng);
            lt.push(t.ln());
            la.push(a.ln());
        }
        let (mt, st) = mean_std(&lt);
        let (ma, sa) = mean_std(&la);
        let cov = lt
            .iter()
            .zip(&la)
            .map(|(x, y)| (x - mt) * (y - ma))
            .sum::<f64>()
            / (n as f64 - 1.0);
        let rho = cov / (st * sa);
        let within = |got: f64, want: f64, what: &str| {
            assert!(
                (got - want).abs() <= 0.02 * want.abs(),
                "{energy} GeV {what}: {got} vs {want}"
            );
        };
        within(mt, rel.mean_ln_t, "⟨ln T⟩");
        within(ma, rel.mean_ln_alpha, "⟨ln α⟩");
        within(st, rel.sigma_ln_t, "σ(ln T)");
        within(sa, rel.sigma_ln_alpha, "σ(ln α)");
        within(rho, rel.rho, "ρ");
        // And the relations are GFlash's: at 10 GeV, ln y = ln(10 GeV / 8.96 MeV).
        if energy == 10.0 {
            let ln_y = (10_000.0f64 / sim.medium().critical_energy).ln();
            assert!((rel.sigma_ln_t - 1.0 / (-2.5 + 1.25 * ln_y)).abs() < 1e-12);
            assert!((rel.rho - (0.784 - 0.023 * ln_y)).abs() < 1e-12);
        }
    }
}

/// Mean energy fractions per layer (and overflow) over `n` showers, with their
/// standard errors.
fn fractions(shower: &PreparedShower, energy: f64, n: u64) -> Vec<(f64, f64)> {
    let mut per_shower: Vec<Vec<f64>> = vec![Vec::new(); 4];
    for seed in 0..n {
        let s = shower.shower(simemu_core::seed::sample_seed(3, seed));
        let e = energy * 1000.0;
        for (fractions, cells) in per_shower.iter_mut().zip(&s.layers) {
            fractions.push(cells.iter().sum::<f64>() / e);
        }
        per_shower[3].push(s.overflow.iter().sum::<f64>() / e);
        let total: f64 =
            s.layers.iter().flatten().sum::<f64>() + s.overflow.iter().sum::<f64>() + s.leakage;
        assert!(
            (total - e).abs() < 1e-6 * e,
            "energy is conserved: {total} vs {e}"
        );
    }
    per_shower
        .iter()
        .map(|v| {
            let (m, s) = mean_std(v);
            (m, s / (n as f64).sqrt())
        })
        .collect()
}

/// Layer fractions at 10 and 100 GeV against the prototype's (300 showers each, its
/// own random numbers): the tolerance is 4 combined standard errors, ours measured
/// and the prototype's estimated from our spread at its 300 showers.
#[test]
fn layer_fractions_match_the_reference_prototype() {
    let sim = simulator(serde_json::json!({}));
    let reference = [
        (10.0, [0.350, 0.645, 0.0004, 0.0048]),
        (100.0, [0.162, 0.831, 0.0013, 0.0044]),
    ];
    let n = 400;
    for (energy, want) in reference {
        let got = fractions(&sim.prepare_at(energy).unwrap(), energy, n);
        eprintln!("{energy} GeV: layer 0/1/2, overflow = {got:.4?}");
        for (k, ((m, se), w)) in got.iter().zip(want).enumerate() {
            let se_proto = se * (n as f64 / 300.0).sqrt();
            let tol = 4.0 * (se * se + se_proto * se_proto).sqrt();
            assert!(
                (m - w).abs() <= tol,
                "{energy} GeV, part {k}: {m:.4} ± {se:.4} vs prototype {w}"
            );
        }
    }
}

#[test]
fn showers_are_reproducible_and_shaped_as_calogan_files() {
    let sim = simulator(serde_json::json!({}));
    let fields = sim.fields();
    let shapes: Vec<(String, Vec<usize>)> = fields
        .iter()
        .map(|f| (f.name.clone(), f.shape.clone()))
        .collect();
    assert_eq!(
        shapes,
        [
            ("layer_0".to_string(), vec![3, 96]),
            ("layer_1".to_string(), vec![12, 12]),
            ("layer_2".to_string(), vec![12, 6]),
            ("overflow".to_string(), vec![3]),
        ]
    );
    let p = sim.prepare(&[25.0]).unwrap();
    let a = p.simulate(17).unwrap();
    assert_eq!(a, p.simulate(17).unwrap());
    assert_ne!(a, p.simulate(18).unwrap());
    assert_eq!(a.params, [25.0]);
    // The shower is centred: the middle layer's hottest cell is one of the four central ones.
    let Array::F32(l1) = &a.fields[1].data else {
        unreachable!()
    };
    let hottest = (0..144).max_by(|&i, &j| l1[i].total_cmp(&l1[j])).unwrap();
    assert!(
        [5 * 12 + 5, 5 * 12 + 6, 6 * 12 + 5, 6 * 12 + 6].contains(&hottest),
        "{hottest}"
    );
}

#[test]
fn photons_start_later_and_active_deposits_are_the_argon_share() {
    let e = 50.0;
    let electrons = simulator(serde_json::json!({})).prepare_at(e).unwrap();
    let photons = simulator(serde_json::json!({"particle": "gamma"}))
        .prepare_at(e)
        .unwrap();
    let first_layer = |s: &PreparedShower| fractions(s, e, 200)[0].0;
    assert!(first_layer(&photons) < first_layer(&electrons));

    let active = simulator(serde_json::json!({"deposit": "active"}))
        .prepare_at(e)
        .unwrap();
    let (mut sum_active, mut sum_total) = (0.0, 0.0);
    for seed in 0..200 {
        let a = active.shower(seed);
        let t = electrons.shower(seed);
        sum_active += a.layers.iter().flatten().sum::<f64>();
        sum_total += t.layers.iter().flatten().sum::<f64>();
    }
    let ratio = sum_active / sum_total;
    // Same seeds, same spots; the Gamma fluctuations (c_s = 10%/√E) average out to
    // well under 1% over 200 showers of 50 GeV.
    let want = simemu_calorimeter::SAMPLING_FRACTION;
    assert!((ratio - want).abs() < 0.01 * want, "{ratio} vs {want}");
}

#[test]
fn bad_options_and_energies_are_refused() {
    let e = CalorimeterSimulator::from_options(&serde_json::json!({"particle": "pi+"}))
        .err()
        .unwrap();
    assert!(e.to_string().contains("pi+"), "{e}");
    let e = CalorimeterSimulator::from_options(&serde_json::json!({"depth": 3}))
        .err()
        .unwrap();
    assert!(e.to_string().contains("depth"), "{e}");
    let sim = simulator(serde_json::json!({}));
    for bad in [0.5, 150.0, f64::NAN] {
        let e = sim.prepare_at(bad).err().unwrap();
        assert!(e.to_string().contains("energy"), "{e}");
    }
}
