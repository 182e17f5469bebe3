//! KS p-values against scipy 1.17.1 `ks_2samp` (fixture made by
//! `tests/fixtures/make_ks_fixture.py`): relative 1e-6, or absolute 1e-12 for tiny p.

use serde_json::Value;
use simemu_validate::ks::{ks_2samp, kstwo_sf};

fn sample(spec: &Value) -> Vec<f64> {
    let g = |k: &str| spec[k].as_f64().unwrap();
    let (n, a, b, p) = (g("n") as i64, g("a") as i64, g("b") as i64, g("p") as i64);
    (0..n)
        .map(|i| ((a * i + b) % p) as f64 / p as f64 * g("scale") + g("shift"))
        .collect()
}

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ks_scipy.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-12 || (got - want).abs() <= 1e-6 * want.abs()
}

#[test]
fn ks_2samp_matches_scipy() {
    let f = fixture();
    for case in f["ks_2samp"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let r = ks_2samp(&sample(&case["sample1"]), &sample(&case["sample2"]));
        let d = case["statistic"].as_f64().unwrap();
        let p = case["pvalue"].as_f64().unwrap();
        assert!(
            (r.statistic - d).abs() <= 1e-14,
            "{name}: D {} vs scipy {d}",
            r.statistic
        );
        assert!(
            close(r.pvalue, p),
            "{name}: p {:e} vs scipy {p:e}",
            r.pvalue
        );
        let fell_back = case["warning"]
            .as_str()
            .is_some_and(|w| w.contains("asymp"));
        if fell_back {
            assert!(!r.exact, "{name}: scipy fell back to asymp");
        }
    }
}

#[test]
fn kstwo_sf_matches_scipy() {
    for v in fixture()["kstwo_sf"].as_array().unwrap() {
        let (n, d, sf) = (
            v["n"].as_f64().unwrap(),
            v["d"].as_f64().unwrap(),
            v["sf"].as_f64().unwrap(),
        );
        let got = kstwo_sf(d, n);
        assert!(close(got, sf), "kstwo.sf({d}, {n}) = {got:e}, scipy {sf:e}");
    }
}

#[test]
fn identical_samples_give_p_one_without_hanging() {
    let x: Vec<f64> = (0..20_000).map(|i| (i % 97) as f64).collect();
    let r = ks_2samp(&x, &x);
    assert_eq!(r.statistic, 0.0);
    assert_eq!(r.pvalue, 1.0);
}

#[test]
fn lenstools_fixture_ks_values() {
    // scipy 1.10.1 values recorded with the lenstools fixture (map_A vs map_B).
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../plugins/map-stats/tests/fixtures"
    );
    let a = simemu_core::npy::read::<f64>(std::path::Path::new(&format!("{dir}/map_A.npy")))
        .unwrap()
        .1;
    let b = simemu_core::npy::read::<f64>(std::path::Path::new(&format!("{dir}/map_B.npy")))
        .unwrap()
        .1;
    let r = ks_2samp(&a, &b);
    assert_eq!(r.statistic, 0.0144500732421875);
    assert!(close(r.pvalue, 2.257509382069515e-06), "{:e}", r.pvalue);
    let sa: Vec<f64> = a.iter().step_by(97).take(500).cloned().collect();
    let sb: Vec<f64> = b.iter().step_by(89).take(400).cloned().collect();
    let r = ks_2samp(&sa, &sb);
    assert!((r.statistic - 0.0555).abs() < 1e-15);
    assert!(close(r.pvalue, 0.48375346168567085), "{:e}", r.pvalue);
    let shifted: Vec<f64> = a.iter().map(|x| x + 0.05).collect();
    let r = ks_2samp(&a, &shifted);
    assert_eq!(r.statistic, 0.0315093994140625);
    assert!(close(r.pvalue, 1.0657568028937005e-28), "{:e}", r.pvalue);
}
