//! End to end through the CLI: simulate, train the baselines, generate, validate.
//! The `simulator` baseline (a perfect emulator) must pass every statistic with
//! p-values that look uniform; `gaussian-field` must pass the power spectrum and
//! fail the pixel PDF and the Minkowski functionals — the seed's point.

mod common;

use common::{ok, read_json};

#[test]
fn baselines_validate_as_the_seed_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = |seed: &str, out: &str| {
        ok(
            d,
            &[
                "-q",
                "--seed",
                seed,
                "simulate",
                "convergence",
                "--option",
                "size=64",
                "--count",
                "300",
                "--out",
                out,
            ],
        );
    };
    sim("1", "train");
    sim("2", "heldout");
    for g in ["simulator", "gaussian-field"] {
        ok(
            d,
            &[
                "-q",
                "--seed",
                "3",
                "train",
                g,
                "--data",
                "train",
                "--out",
                &format!("runs/{g}"),
            ],
        );
        ok(
            d,
            &[
                "-q",
                "--seed",
                "4",
                "generate",
                "--checkpoint",
                &format!("runs/{g}"),
                "--count",
                "300",
                "--out",
                &format!("gen-{g}"),
            ],
        );
        ok(
            d,
            &[
                "-q",
                "validate",
                "--reference",
                "heldout",
                "--candidate",
                &format!("gen-{g}"),
                "--out",
                &format!("reports/{g}"),
            ],
        );
    }
    let report = |g: &str| read_json(&d.join(format!("reports/{g}/report.json")));
    let verdict = |r: &serde_json::Value, stat: &str| -> (String, f64) {
        let s = r["statistics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["statistic"] == stat)
            .unwrap();
        (
            s["verdict"].as_str().unwrap().to_string(),
            s["pass_fraction"].as_f64().unwrap(),
        )
    };

    let perfect = report("simulator");
    // The Minkowski functionals are judged one by one, and the report says so.
    let markdown = std::fs::read_to_string(d.join("reports/simulator/report.md")).unwrap();
    for functional in ["V0", "V1", "V2"] {
        assert!(
            markdown.contains(&format!("| ↳ {functional} | ")),
            "{markdown}"
        );
    }
    let mut all_p = Vec::new();
    for stat in ["pixel-pdf", "power-spectrum", "minkowski", "peaks"] {
        let (v, f) = verdict(&perfect, stat);
        assert_eq!(v, "pass", "simulator baseline fails {stat} ({f})");
        for s in perfect["statistics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["statistic"] == stat)
        {
            for c in s["components"].as_array().unwrap() {
                all_p.extend(
                    c["ks_p"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_f64().unwrap()),
                );
            }
        }
    }
    // Uniform p-values: about 5% below 0.05 and half below 0.5 (bins are correlated,
    // so the bounds are loose).
    let frac = |t: f64| all_p.iter().filter(|&&p| p < t).count() as f64 / all_p.len() as f64;
    assert!(
        frac(0.05) < 0.15,
        "too many small p-values for a perfect emulator: {}",
        frac(0.05)
    );
    assert!(
        (0.2..0.8).contains(&frac(0.5)),
        "p-values far from uniform: {} below 0.5",
        frac(0.5)
    );

    // The baseline reproduces the mean power of the maps it was fitted on.
    ok(
        d,
        &[
            "-q",
            "validate",
            "--reference",
            "train",
            "--candidate",
            "gen-gaussian-field",
            "--stats",
            "power-spectrum",
            "--out",
            "reports/gaussian-vs-train",
        ],
    );
    let fit = report("gaussian-vs-train");
    let ps = fit["statistics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["statistic"] == "power-spectrum")
        .unwrap();
    let c = &ps["components"][0];
    for (b, (rel, se)) in c["rel_diff"]
        .as_array()
        .unwrap()
        .iter()
        .zip(c["rel_diff_se"].as_array().unwrap())
        .enumerate()
    {
        let (rel, se) = (rel.as_f64().unwrap().abs(), se.as_f64().unwrap());
        assert!(
            rel <= 3.0 * se,
            "gaussian-field mean P(ℓ) bin {b} off by {:.1}% (SE {:.1}%)",
            100.0 * rel,
            100.0 * se
        );
    }
    let gauss = report("gaussian-field");
    let (ps_verdict, ps_pass) = verdict(&gauss, "power-spectrum");
    assert_eq!(
        ps_verdict,
        "pass",
        "gaussian-field passes only {:.0}% of P(ℓ) bins",
        100.0 * ps_pass
    );
    for stat in ["pixel-pdf", "minkowski"] {
        let (v, f) = verdict(&gauss, stat);
        assert_eq!(v, "fail", "gaussian-field passes {stat}");
        assert!(
            f < 0.3,
            "gaussian-field passes {:.0}% of {stat} bins",
            100.0 * f
        );
    }
    // The report directory is complete.
    for f in [
        "report.md",
        "report.json",
        "samples.png",
        "ks-pvalues.png",
        "power-spectrum-power.png",
        "minkowski-V1.png",
    ] {
        assert!(
            d.join("reports/gaussian-field").join(f).exists(),
            "{f} missing"
        );
    }
    // Generation cost is recorded for leaderboards.
    let info = ok(d, &["info", "gen-gaussian-field", "--json"]);
    assert!(info.contains("seconds_per_sample"));
    let lb = ok(
        d,
        &[
            "-q",
            "compare",
            "--reference",
            "heldout",
            "gen-simulator",
            "gen-gaussian-field",
            "--out",
            "lb",
        ],
    );
    assert!(lb.contains("leaderboard"), "{lb}");
    let board = read_json(&d.join("lb/leaderboard.json"));
    assert_eq!(board["rows"].as_array().unwrap().len(), 2);
}
