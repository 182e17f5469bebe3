//! Statistical tests of the simulated maps against the simulator's own predictions.
//! The standard error of each compared mean is estimated from the spread across the
//! simulated maps (this includes the non-Gaussian covariance of log-normal maps), and
//! every comparison allows 4 standard errors: with ≈ 30 comparisons the chance of a
//! false failure is below 0.2%, and the seeds are fixed so the outcome is reproducible.

use simemu_convergence::{ConvergenceConfig, ConvergenceSimulator, PreparedConvergence};
use simemu_core::seed::sample_seed;
use simemu_core::Simulator;
use simemu_grid::num_complex::Complex64;
use simemu_grid::{fft2, mode_wavenumbers};

const N: usize = 64;
const MAPS: usize = 400;

fn simulator(field: &str) -> ConvergenceSimulator {
    let cfg = ConvergenceConfig::from_options(
        &serde_json::json!({"size": N, "angle_deg": 3.5, "field": field}),
    )
    .unwrap();
    ConvergenceSimulator::new(cfg)
}

fn fiducial() -> Vec<f64> {
    simemu_core::params::resolve_params(simulator("gaussian").params(), &[]).unwrap()
}

fn maps(p: &PreparedConvergence) -> Vec<Vec<f64>> {
    (0..MAPS)
        .map(|i| {
            p.draw(sample_seed(11, i as u64))
                .into_iter()
                .map(f64::from)
                .collect()
        })
        .collect()
}

fn mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let m = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

fn check_power_spectrum(field: &str) {
    let sim = simulator(field);
    let params = fiducial();
    let prepared = sim.prepare_concrete(&params).unwrap();
    let target = sim.power_map(&params).unwrap();
    let angle = 3.5f64.to_radians();
    let ells = mode_wavenumbers(N, angle);
    let pix = angle / N as f64;
    // Log bins from the fundamental to the corner of the grid; full-plane modes.
    let nb = 10;
    let (lo, hi) = (
        (2.0 * std::f64::consts::PI / angle).ln(),
        (ells.iter().cloned().fold(0.0, f64::max) * 1.0001).ln(),
    );
    let bin_of = |l: f64| ((l.ln() - lo) / (hi - lo) * nb as f64).floor() as isize;
    let mut count = vec![0usize; nb];
    let mut expected = vec![0.0; nb];
    for (k, &l) in ells.iter().enumerate() {
        let b = bin_of(l);
        if k > 0 && (0..nb as isize).contains(&b) {
            count[b as usize] += 1;
            expected[b as usize] += target[k] * pix * pix;
        }
    }
    let mut per_map: Vec<Vec<f64>> = vec![Vec::new(); nb];
    for m in maps(&prepared) {
        let mut c: Vec<Complex64> = m.iter().map(|&x| Complex64::new(x, 0.0)).collect();
        fft2(&mut c, N, false);
        let mut sums = vec![0.0; nb];
        for (k, z) in c.iter().enumerate() {
            let b = bin_of(ells[k]);
            if k > 0 && (0..nb as isize).contains(&b) {
                // Ĉ = |DFT κ|² Δ² / N²  (κ̃ = DFT·Δ², Ĉ = |κ̃|²/L²)
                sums[b as usize] += z.norm_sqr() * pix * pix / (N * N) as f64;
            }
        }
        for b in 0..nb {
            if count[b] > 0 {
                per_map[b].push(sums[b] / count[b] as f64);
            }
        }
    }
    let mut tested = 0;
    for b in 0..nb {
        if count[b] < 50 {
            continue;
        }
        tested += 1;
        let exp = expected[b] / count[b] as f64;
        let (m, se) = mean_se(&per_map[b]);
        assert!(
            (m - exp).abs() < 4.0 * se,
            "{field} bin {b} ({} modes): mean C = {m:.4e}, expected {exp:.4e}, SE {se:.2e}",
            count[b]
        );
    }
    assert!(tested >= 5, "only {tested} bins with >= 50 modes");
}

#[test]
fn lognormal_maps_have_the_target_power_spectrum() {
    check_power_spectrum("lognormal");
}

#[test]
fn gaussian_maps_have_the_target_power_spectrum() {
    check_power_spectrum("gaussian");
}

fn pixel_moments(field: &str) -> ((f64, f64), (f64, f64), f64, f64) {
    let sim = simulator(field);
    let prepared = sim.prepare_concrete(&fiducial()).unwrap();
    let all = maps(&prepared);
    let m2: Vec<f64> = all
        .iter()
        .map(|m| m.iter().map(|x| x * x).sum::<f64>() / m.len() as f64)
        .collect();
    let m3: Vec<f64> = all
        .iter()
        .map(|m| m.iter().map(|x| x * x * x).sum::<f64>() / m.len() as f64)
        .collect();
    (
        mean_se(&m2),
        mean_se(&m3),
        prepared.prediction.variance,
        prepared.prediction.skewness,
    )
}

#[test]
fn lognormal_pixel_variance_and_skewness_match_prediction() {
    let ((v, v_se), (t, t_se), pv, ps) = pixel_moments("lognormal");
    assert!(
        (v - pv).abs() < 4.0 * v_se,
        "variance {v:.4e} vs predicted {pv:.4e} (SE {v_se:.1e})"
    );
    // Third moment predicted from variance and skewness: μ3 = S σ³.
    let pt = ps * pv.powf(1.5);
    assert!(
        (t - pt).abs() < 4.0 * t_se,
        "third moment {t:.4e} vs predicted {pt:.4e} (SE {t_se:.1e})"
    );
    assert!(
        ps > 0.5,
        "log-normal maps must be clearly skewed, predicted skewness {ps}"
    );
}

#[test]
fn gaussian_pixels_are_not_skewed() {
    let ((v, v_se), (t, t_se), pv, ps) = pixel_moments("gaussian");
    assert_eq!(ps, 0.0);
    assert!(
        (v - pv).abs() < 4.0 * v_se,
        "variance {v:.4e} vs predicted {pv:.4e}"
    );
    assert!(
        t.abs() < 4.0 * t_se,
        "third moment {t:.3e} is not consistent with 0 (SE {t_se:.1e})"
    );
}

#[test]
fn same_seed_same_bytes() {
    let sim = simulator("lognormal");
    let p = sim.prepare_concrete(&fiducial()).unwrap();
    assert_eq!(p.draw(5), p.draw(5));
    assert_ne!(p.draw(5), p.draw(6));
}

#[test]
fn bad_options_and_parameters_are_refused_up_front() {
    let bad = |o: serde_json::Value, needle: &str| {
        let e = ConvergenceConfig::from_options(&o).unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
    };
    bad(serde_json::json!({"size": 100}), "power of two");
    bad(serde_json::json!({"size": 8}), "power of two");
    bad(serde_json::json!({"angle_deg": -1.0}), "angle_deg");
    bad(serde_json::json!({"colour": 1}), "unknown field `colour`");
    bad(serde_json::json!({"field": "poisson"}), "unknown variant");

    let cfg =
        ConvergenceConfig::from_options(&serde_json::json!({"size": 32, "lambda": 0.001})).unwrap();
    let sim = ConvergenceSimulator::new(cfg);
    let e = sim.prepare(&fiducial()).err().unwrap().to_string();
    assert!(e.contains("smallest admissible lambda"), "{e}");
    let mut p = fiducial();
    p[2] = 0.35; // omega_b above omega_m
    assert!(simulator("gaussian")
        .prepare(&p)
        .err()
        .unwrap()
        .to_string()
        .contains("omega_b"));
}
