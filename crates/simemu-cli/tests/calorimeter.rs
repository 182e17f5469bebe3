//! The second domain through the same commands: simulate calorimeter showers and
//! validate one set against another with the shower statistics. Nothing in the core
//! or the harness knows of showers (`tests/boundaries.rs`).

mod common;

use common::ok;

#[test]
fn showers_simulate_and_validate_through_the_generic_harness() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (seed, out) in [("1", "reference"), ("2", "candidate")] {
        ok(
            d,
            &[
                "-q",
                "--seed",
                seed,
                "simulate",
                "calorimeter",
                "--param",
                "energy=20",
                "--count",
                "200",
                "--out",
                out,
            ],
        );
    }
    let stats = "layer-fractions,energy-response,shower-depth,lateral-width,sparsity,hottest-cells";
    ok(
        d,
        &[
            "-q",
            "validate",
            "--reference",
            "reference",
            "--candidate",
            "candidate",
            "--field",
            "layer_1",
            "--stats",
            stats,
            "--out",
            "report",
        ],
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("report/report.json")).unwrap())
            .unwrap();
    let got: Vec<&str> = report["statistics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["statistic"].as_str().unwrap())
        .collect();
    assert_eq!(got, stats.split(',').collect::<Vec<_>>());
    // Two sets from the same simulator: most bins agree (a perfect emulator).
    let (mut passed, mut bins) = (0.0, 0.0);
    for s in report["statistics"].as_array().unwrap() {
        let n = s["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["ks_p"].as_array().unwrap().len())
            .sum::<usize>() as f64;
        passed += s["pass_fraction"].as_f64().unwrap() * n;
        bins += n;
    }
    assert!(passed / bins >= 0.8, "{passed}/{bins} bins pass");
    assert!(
        d.join("report/report.md").exists()
            && d.join("report/layer-fractions-fraction.png").exists()
    );
    // The energy response of total deposits is 1 minus what leaks out of the back.
    let response = report["statistics"][1]["components"][0]["ref_mean"][0]
        .as_f64()
        .unwrap();
    assert!((0.99..=1.0).contains(&response), "{response}");
}
