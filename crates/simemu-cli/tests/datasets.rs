//! The dataset format through the CLI: reproducibility under sharding and threads,
//! and clear errors for damaged datasets.

mod common;

use std::path::Path;

use common::{arrays, fails, ok};

fn simulate(dir: &Path, out: &str, extra: &[&str]) {
    let mut args = vec![
        "--seed",
        "21",
        "simulate",
        "convergence",
        "--option",
        "size=32",
        "--count",
        "40",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    ok(dir, &args);
}

#[test]
fn shards_threads_and_merged_parts_give_identical_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    simulate(d, "one", &["--shard-size", "1000"]);
    simulate(d, "four", &["--shard-size", "10"]);
    ok(
        d,
        &[
            "--threads",
            "1",
            "--seed",
            "21",
            "simulate",
            "convergence",
            "--option",
            "size=32",
            "--count",
            "40",
            "--out",
            "t1",
        ],
    );
    for k in 0..4 {
        simulate(d, &format!("part{k}"), &["--shard", &format!("{k}/4")]);
    }
    // Parts in any order.
    ok(
        d,
        &[
            "merge", "part2", "part0", "part3", "part1", "--out", "merged",
        ],
    );
    let reference = arrays(&d.join("one"));
    assert_eq!(
        std::fs::read_dir(d.join("four"))
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("kappa-"))
            .count(),
        4
    );
    for other in ["four", "t1", "merged"] {
        assert!(
            arrays(&d.join(other)) == reference,
            "{other} differs from the single-shard run"
        );
    }
    // A missing part is refused.
    let err = fails(d, &["merge", "part0", "part1", "part3", "--out", "bad"], 1);
    assert!(
        err.contains("expected 10") || err.contains("expected"),
        "{err}"
    );
    assert!(!d.join("bad").exists());
}

#[test]
fn damaged_datasets_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    simulate(d, "good", &["--shard-size", "20"]);
    let copy = |name: &str| {
        let dst = d.join(name);
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(d.join("good")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
        dst
    };
    // Corrupt manifest.
    let p = copy("corrupt");
    std::fs::write(
        p.join("manifest.json"),
        "{\"format\": \"simemu-dataset\", \"count\": ",
    )
    .unwrap();
    let err = fails(d, &["info", "corrupt"], 1);
    assert!(
        err.contains("manifest.json") && err.contains("corrupt manifest"),
        "{err}"
    );
    // Truncated shard.
    let p = copy("truncated");
    let shard = p.join("kappa-00001.npy");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 100]).unwrap();
    let err = fails(d, &["info", "truncated"], 1);
    assert!(
        err.contains("kappa-00001.npy") && err.contains("truncated"),
        "{err}"
    );
    // Shape mismatch between the manifest and a shard.
    let p = copy("shape");
    let m = std::fs::read_to_string(p.join("manifest.json"))
        .unwrap()
        .replacen("32,\n        32", "32,\n        16", 1);
    std::fs::write(p.join("manifest.json"), m).unwrap();
    let err = fails(d, &["info", "shape"], 1);
    assert!(
        err.contains("kappa-00000.npy") && err.contains("does not match"),
        "{err}"
    );
    // Missing shard.
    let p = copy("missing");
    std::fs::remove_file(p.join("kappa-00000.npy")).unwrap();
    let err = fails(d, &["info", "missing"], 1);
    assert!(
        err.contains("kappa-00000.npy") && err.contains("missing shard"),
        "{err}"
    );
    // NaN in the data: found when samples are read, naming the sample.
    let p = copy("nan");
    let shard = p.join("kappa-00001.npy");
    let mut bytes = std::fs::read(&shard).unwrap();
    let at = bytes.len() - 4 * 32 * 32 * 3; // sample 17 of the shard holding 20..40
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&shard, bytes).unwrap();
    let err = fails(d, &["stat", "power-spectrum", "nan"], 1);
    assert!(
        err.contains("kappa-00001.npy") && err.contains("sample 37"),
        "{err}"
    );
    // Not a dataset at all.
    let err = fails(d, &["info", "nowhere"], 1);
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn bad_requests_fail_before_any_work_with_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "simulate",
                "convergence",
                "--param",
                "omega_m=0.9",
                "--out",
                "x",
            ],
            "outside its bounds",
        ),
        (
            &[
                "simulate",
                "convergence",
                "--param",
                "omegam=0.3",
                "--out",
                "x",
            ],
            "did you mean 'omega_m'",
        ),
        (
            &[
                "simulate",
                "convergence",
                "--option",
                "size=100",
                "--out",
                "x",
            ],
            "power of two",
        ),
        (
            &[
                "simulate",
                "convergence",
                "--option",
                "angle_deg=-2",
                "--out",
                "x",
            ],
            "angle_deg",
        ),
        (
            &[
                "simulate",
                "convergence",
                "--option",
                "colour=red",
                "--out",
                "x",
            ],
            "unknown field `colour`",
        ),
        (
            &[
                "simulate",
                "convergence",
                "--option",
                "size=32",
                "--option",
                "lambda=0.0001",
                "--out",
                "x",
            ],
            "smallest admissible lambda",
        ),
        (
            &["simulate", "convergence", "--shard", "4/4", "--out", "x"],
            "0 <= K < N",
        ),
        (
            &["theory", "convergence", "--kappa", "1"],
            "unknown theory query",
        ),
    ];
    for (args, needle) in cases {
        let err = fails(d, args, 2);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!d.join("x").exists(), "{args:?} left output behind");
    }
}

#[test]
fn theory_reports_cl_and_pixel_moments() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        dir.path(),
        &[
            "theory",
            "convergence",
            "--param",
            "omega_b=0.05",
            "--json",
            "--ell",
            "100,1000,10000",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let cl = v["cl"].as_array().unwrap();
    // Reference C_ℓ(1000) = 3.907e-10 (pyccl with the same ingredients).
    assert!(
        (cl[1].as_f64().unwrap() / 3.907e-10 - 1.0).abs() < 2e-3,
        "{out}"
    );
    assert!(v["pixel_skewness"].as_f64().unwrap() > 0.5);
}

#[test]
fn validate_refuses_sets_that_cannot_be_compared() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    simulate(d, "ref", &[]);
    ok(
        d,
        &[
            "--seed",
            "5",
            "simulate",
            "convergence",
            "--option",
            "size=32",
            "--option",
            "angle_deg=5",
            "--count",
            "10",
            "--out",
            "wide",
        ],
    );
    ok(
        d,
        &[
            "--seed",
            "5",
            "simulate",
            "convergence",
            "--option",
            "size=64",
            "--count",
            "10",
            "--out",
            "big",
        ],
    );
    ok(
        d,
        &[
            "--seed",
            "5",
            "simulate",
            "convergence",
            "--option",
            "size=32",
            "--count",
            "1",
            "--out",
            "one",
        ],
    );
    for (candidate, needle) in [
        ("wide", "angle_deg"),
        ("big", "shape"),
        ("one", "at least 2"),
    ] {
        let err = fails(
            d,
            &[
                "validate",
                "--reference",
                "ref",
                "--candidate",
                candidate,
                "--out",
                "r",
            ],
            1,
        );
        assert!(err.contains(needle), "{candidate}: {err}");
    }
    let err = fails(
        d,
        &[
            "validate",
            "--reference",
            "ref",
            "--candidate",
            "ref",
            "--stats",
            "power-spectrum",
            "--thresholds",
            "lin:0:1:3",
            "--out",
            "r",
        ],
        2,
    );
    assert!(err.contains("thresholds"), "{err}");
    assert!(!d.join("r").exists());
    // Few samples: the report says the test has little power.
    ok(
        d,
        &[
            "--seed",
            "6",
            "simulate",
            "convergence",
            "--option",
            "size=32",
            "--count",
            "10",
            "--out",
            "few",
        ],
    );
    ok(
        d,
        &[
            "-q",
            "validate",
            "--reference",
            "ref",
            "--candidate",
            "few",
            "--stats",
            "pixel-pdf",
            "--out",
            "small",
        ],
    );
    let report = std::fs::read_to_string(d.join("small/report.json")).unwrap();
    assert!(report.contains("little power"), "{report}");
}
