//! 3D boxes go through the same commands as maps: simulate, theory, stat and
//! validate by name, the harness unchanged.

mod common;

use common::{fails, ok, read_json};

#[test]
fn boxes_simulate_measure_and_validate_through_the_harness() {
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
                "density3d",
                "--option",
                "size=16",
                "--count",
                "30",
                "--out",
                out,
            ],
        );
    }
    let manifest = read_json(&d.join("reference/manifest.json"));
    assert_eq!(
        manifest["fields"][0]["shape"],
        serde_json::json!([16, 16, 16])
    );
    assert_eq!(manifest["fields"][0]["attrs"]["box_mpc_h"], 256.0);
    let theory = ok(d, &["theory", "density3d", "--k", "0.1", "--json"]);
    let theory: serde_json::Value = serde_json::from_str(&theory).unwrap();
    assert!(theory["pk"][0].as_f64().unwrap() > 0.0);
    ok(
        d,
        &[
            "-q",
            "validate",
            "--reference",
            "reference",
            "--candidate",
            "candidate",
            "--stats",
            "power-spectrum-3d,density-pdf,peaks-3d,minkowski-3d,fpd,kpd,covariance",
            "--out",
            "report",
        ],
    );
    let report = read_json(&d.join("report/report.json"));
    assert_eq!(report["statistics"][0]["statistic"], "power-spectrum-3d");
    assert_eq!(report["statistics"][0]["table"]["bins"], 13);
    let names: Vec<&str> = report["statistics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["statistic"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "power-spectrum-3d",
            "density-pdf",
            "peaks-3d",
            "minkowski-3d"
        ]
    );
    let minkowski = &report["statistics"][3];
    let components: Vec<&str> = minkowski["components"]
        .as_array()
        .map(|c| c.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(components, ["V0", "V1", "V2", "V3"], "{minkowski}");
    // The vector tests run on the four statistics' bins, beside their floors.
    let tests: Vec<&str> = report["vector_tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["test"].as_str().unwrap())
        .collect();
    assert_eq!(tests, ["fpd", "kpd", "covariance"]);
    assert!(report["vector_tests"][0]["floor"].as_f64().unwrap() > 0.0);
    // The sample images are the boxes' central slices.
    assert!(d.join("report/samples.png").is_file());
    // Tests alone have no vectors to test.
    let e = fails(
        d,
        &[
            "validate",
            "--reference",
            "reference",
            "--candidate",
            "candidate",
            "--stats",
            "fpd",
            "--out",
            "other",
        ],
        2,
    );
    assert!(e.contains("names only vector tests (fpd)"), "{e}");
}
