//! C_ℓ against pyccl 3.3.6 run with the same ingredients (EH98 no-wiggle transfer,
//! Takahashi halofit, Limber; a σ_z = 0.002 Gaussian n(z) standing in for the single
//! source plane) at five cosmologies and two source redshifts
//! (`tests/fixtures/make_ccl_fixture.py`). Required: better than 1% for
//! 100 ≤ ℓ ≤ 10⁴. The residual comes from the narrow n(z), pyccl's radiation in the
//! background and its integration accuracy.

use simemu_convergence::{ConvergenceConfig, ConvergenceSimulator};
use simemu_core::Simulator;

#[test]
fn cl_matches_pyccl_at_several_cosmologies() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ccl_cl.json");
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let sim =
        ConvergenceSimulator::new(ConvergenceConfig::from_options(&serde_json::json!({})).unwrap());
    let mut worst = 0.0f64;
    for case in f["cases"].as_array().unwrap() {
        let given: Vec<(String, f64)> = case["params"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
            .collect();
        let p = simemu_core::params::resolve_params(sim.params(), &given).unwrap();
        let ells: Vec<f64> = case["ell"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let ours = sim.cl(&p, &ells).unwrap();
        for ((l, o), c) in ells.iter().zip(&ours).zip(case["cl"].as_array().unwrap()) {
            let c = c.as_f64().unwrap();
            let rel = (o / c - 1.0).abs();
            worst = worst.max(rel);
            assert!(
                rel < 0.01,
                "{given:?} ℓ = {l}: ours {o:.5e}, pyccl {c:.5e} ({:.2}%)",
                100.0 * rel
            );
        }
    }
    eprintln!(
        "worst relative difference from pyccl: {:.3}%",
        100.0 * worst
    );
}
