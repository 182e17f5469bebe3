//! Real data in and out through the CLI: simulated maps exported to FITS and `.npz`,
//! imported back, and measured and validated as transparently as the originals.

mod common;

use common::{fails, ok, read_json};

fn fixture(name: &str) -> String {
    format!(
        "{}/../../plugins/io/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn exported_maps_import_back_and_measure_and_validate_like_the_originals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "-q",
            "--seed",
            "1",
            "simulate",
            "convergence",
            "--option",
            "size=32",
            "--count",
            "40",
            "--out",
            "sim",
        ],
    );
    ok(
        d,
        &["-q", "export", "sim", "--format", "fits", "--out", "fits"],
    );
    // 40 maps and the marker that lets `--force` recognise the export.
    let entries: Vec<String> = std::fs::read_dir(d.join("fits"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.iter().filter(|n| n.ends_with(".fits")).count(), 40);
    assert!(entries.contains(&simemu_core::fsutil::EXPORT_MARKER.to_string()));
    assert_eq!(entries.len(), 41);
    ok(
        d,
        &[
            "-q",
            "import",
            "fits",
            "--field",
            "kappa",
            "--out",
            "from-fits",
        ],
    );
    ok(
        d,
        &[
            "-q",
            "export",
            "sim",
            "--format",
            "npz",
            "--compressed",
            "--out",
            "sim.npz",
        ],
    );
    ok(
        d,
        &[
            "-q", "import", "sim.npz", "--field", "kappa", "--out", "from-npz",
        ],
    );

    // The statistics see the angle carried in the imported manifest: identical numbers.
    let stat = |data: &str| -> serde_json::Value {
        ok(
            d,
            &[
                "-q",
                "stat",
                "power-spectrum",
                data,
                "--json",
                &format!("{data}.json"),
            ],
        );
        let v = read_json(&d.join(format!("{data}.json")));
        serde_json::json!({"x": v["x"], "components": v["components"]})
    };
    let original = stat("sim");
    assert_eq!(stat("from-fits"), original);
    assert_eq!(stat("from-npz"), original);

    // Validation accepts an imported set as either side; identical maps pass everything.
    ok(
        d,
        &[
            "-q",
            "validate",
            "--reference",
            "sim",
            "--candidate",
            "from-fits",
            "--out",
            "report",
        ],
    );
    let report = read_json(&d.join("report/report.json"));
    for s in report["statistics"].as_array().unwrap() {
        assert_eq!(s["pass_fraction"], 1.0, "{}", s["statistic"]);
    }
    let info = ok(d, &["info", "from-npz", "--json"]);
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["fields"][0]["attrs"]["angle_deg"], 3.5);
    assert!(
        info["params"]["omega_m"].is_array(),
        "parameters survive the npz round trip: {info}"
    );
}

#[test]
fn import_and_export_refuse_bad_requests_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Unknown formats and file kinds are usage errors (exit code 2).
    let e = fails(
        d,
        &["import", &fixture("make_fixtures.py"), "--out", "x"],
        2,
    );
    assert!(e.contains("--format"), "{e}");
    let e = fails(
        d,
        &[
            "import",
            &fixture("cube.fits"),
            "--format",
            "fitz",
            "--out",
            "x",
        ],
        2,
    );
    assert!(
        e.contains("unknown format 'fitz'") && e.contains("did you mean"),
        "{e}"
    );
    // Bad files are errors naming the file (exit code 1), and leave nothing behind.
    let e = fails(d, &["import", &fixture("cube.fits"), "--out", "x"], 1);
    assert!(
        e.contains("cube.fits") && e.contains("2-D map is expected"),
        "{e}"
    );
    let e = fails(
        d,
        &[
            "import",
            &fixture("maps"),
            &fixture("other_shape.fits"),
            "--out",
            "x",
        ],
        1,
    );
    assert!(e.contains("other_shape.fits"), "{e}");
    assert!(!d.join("x").exists());
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 0);
    // An existing output is kept unless --force.
    ok(d, &["-q", "import", &fixture("maps"), "--out", "x"]);
    let e = fails(d, &["import", &fixture("maps"), "--out", "x"], 2);
    assert!(e.contains("already exists"), "{e}");
    let e = fails(
        d,
        &[
            "export",
            "x",
            "--format",
            "fits",
            "--out",
            "f",
            "--compressed",
        ],
        2,
    );
    assert!(e.contains("compressed"), "{e}");
    ok(
        d,
        &["-q", "import", &fixture("maps"), "--out", "x", "--force"],
    );
}
