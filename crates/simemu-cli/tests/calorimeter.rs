//! The second domain through the same commands: simulate calorimeter showers and
//! validate one set against another with the shower statistics. Nothing in the core
//! or the harness knows of showers (`tests/boundaries.rs`).

mod common;

use common::{ok, read_json};

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
    let report = read_json(&d.join("report/report.json"));
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

/// `configs/calorimeter.toml`, shrunk (fewer showers and steps, a narrower model),
/// runs end to end: a uniform design of training energies, the shower generator,
/// one report per validation energy on the shower statistics, and the energy
/// response between the points.
#[test]
fn the_calorimeter_pipeline_runs_end_to_end() {
    let config = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../configs/calorimeter.toml"
    ))
    .unwrap()
    .replace("train = 20000", "train = 300")
    .replace("validation = 500", "validation = 60")
    .replace("count = 500", "count = 60")
    .replace("steps = 6000", "steps = 20")
    .replace(
        "energy_range = [1.0, 100.0]",
        "energy_range = [1.0, 100.0]\nwidth = 8\nbatch = 32\ncheckpoint_every = 10",
    );
    assert!(config.contains("train = 300") && config.contains("steps = 20"));
    let points_start = config.find("points = [").unwrap();
    let points_end = points_start + config[points_start..].find(']').unwrap() + 1;
    let config = format!(
        "{}points = [{{ energy = 3.0 }}, {{ energy = 60.0 }}]{}",
        &config[..points_start],
        &config[points_end..]
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("calo.toml"), config).unwrap();
    let out = ok(d, &["run", "calo.toml"]);
    let run = d.join("runs/calorimeter");
    let train = simemu_core::Dataset::open(&run.join("data/train")).unwrap();
    assert_eq!(train.len(), 300);
    let energies: Vec<f64> = (0..300).map(|i| train.params_of(i)[0]).collect();
    assert!(energies.iter().all(|e| (1.0..=100.0).contains(e)));
    assert!(
        energies.iter().filter(|&&e| e < 50.5).count().abs_diff(150) <= 1,
        "a Latin hypercube puts half the energies below the midpoint"
    );
    for (k, energy) in [3.0, 60.0].iter().enumerate() {
        let generated =
            simemu_core::Dataset::open(&run.join(format!("generated-{k}/shower-gan"))).unwrap();
        assert_eq!(generated.len(), 60);
        assert_eq!(generated.params_of(0), [*energy]);
        let board = read_json(&run.join(format!("report-{k}/leaderboard.json")));
        let candidates: Vec<&str> = board["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["candidate"].as_str().unwrap())
            .collect();
        assert_eq!(candidates, ["shower-gan", "simulator"], "{out}");
    }
    assert!(run.join("response.json").exists(), "{out}");
    // The model is for the design's range, not just the span of the drawn energies.
    let model = run.join("models/shower-gan");
    ok(
        d,
        &[
            "-q",
            "generate",
            "--checkpoint",
            model.to_str().unwrap(),
            "--param",
            "energy=100",
            "--count",
            "3",
            "--out",
            "at-100",
        ],
    );
}
