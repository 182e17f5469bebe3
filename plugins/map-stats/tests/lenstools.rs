//! Reproduces every number of the lenstools 1.2 fixture (`tests/fixtures/`, copied
//! from `../shared/reference/lenstools/`; see its README for how it was made) with the
//! tolerances the fixture documents: bit-exact where the arithmetic is exact (map
//! values are dyadic, so derivatives, V0 and peak sets are exact), rtol 1e-12 where
//! only summation order differs (V1, V2, peak and PDF densities), and 1e-12·max(P) or
//! rtol 1e-8 for the power spectrum (FFT round-off; bins span 16 decades).

use std::path::PathBuf;

use serde_json::Value;
use simemu_map_stats::power::PowerSpectrum;
use simemu_map_stats::topology::{
    gradient_hessian, minkowski, peak_counts, peaks, pixel_pdf, std_ddof0,
};

fn fixture() -> (Vec<f64>, Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let (shape, map) = simemu_core::npy::read::<f64>(&dir.join("map_A.npy")).unwrap();
    assert_eq!(shape, vec![256, 256]);
    // Python's json writes NaN (in countModes, which we do not use) where JSON has none.
    let text = std::fs::read_to_string(dir.join("lenstools_reference.json"))
        .unwrap()
        .replace("NaN", "null");
    let json: Value = serde_json::from_str(&text).unwrap();
    (map, json)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn hex_floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| parse_hex(x.as_str().unwrap()))
        .collect()
}

/// Parses Python's float.hex() output.
fn parse_hex(s: &str) -> f64 {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let s = s.strip_prefix("0x").unwrap();
    let (mant, exp) = s.split_once('p').unwrap();
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut v = u64::from_str_radix(int, 16).unwrap() as f64;
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16).unwrap() as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp.parse::<i32>().unwrap());
    if neg {
        -v
    } else {
        v
    }
}

fn assert_close(what: &str, got: &[f64], want: &[f64], rtol: f64, atol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}[{i}]: got {g:e}, lenstools {w:e} (diff {:e})",
            (g - w).abs()
        );
    }
}

#[test]
fn map_checks_and_sigma() {
    let (map, j) = fixture();
    let checks = &j["map"]["checks"];
    assert_eq!(map.iter().sum::<f64>(), checks["sum"].as_f64().unwrap());
    assert_eq!(map[0], checks["A[0,0]"].as_f64().unwrap());
    assert_eq!(map[150 * 256 + 90], checks["A[150,90]"].as_f64().unwrap());
    let sigma = std_ddof0(&map);
    let want = parse_hex(checks["std_ddof0_hex"].as_str().unwrap());
    assert!(
        (sigma - want).abs() <= 2.0 * f64::EPSILON * want,
        "σ {sigma:e} vs {want:e}"
    );
}

#[test]
fn derivatives_are_bit_exact() {
    let (map, j) = fixture();
    let d = &j["derivatives"];
    let [gx, gy, hxx, hyy, hxy] = gradient_hessian(&map, 256);
    let sumsq = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>();
    for (name, v) in [
        ("gx", &gx),
        ("gy", &gy),
        ("hxx", &hxx),
        ("hyy", &hyy),
        ("hxy", &hxy),
    ] {
        let want = d[format!("{name}_sumsq")].as_f64().unwrap();
        assert!(
            (sumsq(v) - want).abs() <= 1e-12 * want,
            "{name} sum of squares"
        );
        assert_eq!(
            d["at_row150_col90"][name].as_f64().unwrap(),
            v[150 * 256 + 90],
            "{name}[150,90]"
        );
        assert_eq!(
            d["at_row0_col255"][name].as_f64().unwrap(),
            v[255],
            "{name}[0,255]"
        );
    }
    let zero = gx
        .iter()
        .zip(&gy)
        .filter(|(a, b)| **a == 0.0 && **b == 0.0)
        .count();
    assert_eq!(zero as u64, d["zero_gradient_pixels"].as_u64().unwrap());
}

#[test]
fn power_spectrum_both_bin_layouts() {
    let (map, j) = fixture();
    for layout in ["log40", "lin"] {
        let r = &j["powerSpectrum"][layout];
        let edges = hex_floats(&r["l_edges_hex"]);
        let ps = PowerSpectrum::new(256, 3.5, &edges);
        let modes: Vec<usize> = r["modes_per_bin_rfft_halfplane"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(
            ps.modes_per_bin(),
            modes.as_slice(),
            "{layout} modes per bin"
        );
        let want = hex_floats(&r["power_hex"]);
        let got = ps.compute(&map).unwrap();
        let max = want.iter().cloned().fold(0.0, f64::max);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let ok = (g - w).abs() <= 1e-12 * max || (g - w).abs() <= 1e-8 * w.abs();
            assert!(ok, "{layout} bin {i}: {g:e} vs {w:e}");
        }
        assert_close(
            "ell_mid",
            &simemu_core::bins::midpoints(&edges),
            &floats(&r["ell_mid"]),
            1e-15,
            0.0,
        );
    }
}

#[test]
fn minkowski_both_unit_conventions() {
    let (map, j) = fixture();
    for conv in ["sigma_units_norm_true", "kappa_units_norm_false"] {
        let r = &j["minkowskiFunctionals"][conv];
        let t = hex_floats(&r["thresholds_hex"]);
        let sigma = if r["norm"].as_bool().unwrap() {
            std_ddof0(&map)
        } else {
            1.0
        };
        let [v0, v1, v2] = minkowski(&map, 256, &t, sigma);
        assert_eq!(v0, hex_floats(&r["V0_hex"]), "{conv} V0 is exact");
        let w1 = hex_floats(&r["V1_hex"]);
        let w2 = hex_floats(&r["V2_hex"]);
        let m1 = w1.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        let m2 = w2.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        assert_close(&format!("{conv} V1"), &v1, &w1, 1e-12, 1e-13 * m1);
        assert_close(&format!("{conv} V2"), &v2, &w2, 1e-12, 1e-13 * m2);
    }
}

#[test]
fn peak_counts_and_peak_list() {
    let (map, j) = fixture();
    let r = &j["peakCount"];
    for conv in ["sigma_units_norm_true", "kappa_units_norm_false"] {
        let t = hex_floats(&r[conv]["thresholds_hex"]);
        let sigma = if r[conv]["norm"].as_bool().unwrap() {
            std_ddof0(&map)
        } else {
            1.0
        };
        let got = peak_counts(&map, 256, &t, sigma);
        assert_close(
            &format!("{conv} peaks"),
            &got,
            &floats(&r[conv]["peak_counts_differential"]),
            1e-12,
            0.0,
        );
        let ints: Vec<f64> = got
            .iter()
            .zip(t.windows(2))
            .map(|(g, w)| (g * (w[1] - w[0])).round())
            .collect();
        assert_eq!(
            ints,
            floats(&r[conv]["peak_counts_integer"]),
            "{conv} integer counts"
        );
    }
    let list = peaks(&map, 256);
    let want = r["all_peaks"]["peaks"].as_array().unwrap();
    assert_eq!(list.len(), want.len());
    for (p, w) in list.iter().zip(want) {
        let w = floats(w);
        assert_eq!((p.0 as f64, p.1 as f64, p.2), (w[0], w[1], w[2]));
    }
}

#[test]
fn pixel_pdf_both_unit_conventions() {
    let (map, j) = fixture();
    let sigma = std_ddof0(&map);
    for (conv, s) in [
        ("sigma_units_norm_true", sigma),
        ("kappa_units_norm_false", 1.0),
    ] {
        let r = &j["pdf"][conv];
        let t = floats(&r["thresholds"]);
        assert_close(
            &format!("{conv} pdf"),
            &pixel_pdf(&map, &t, s),
            &floats(&r["pdf"]),
            1e-12,
            0.0,
        );
    }
}

#[test]
fn zero_gradient_branch_of_v2() {
    // A symmetric bump: at its centre both central differences vanish exactly, so
    // lenstools' fallback I2 = (2 hxy − hxx − hyy)/(4π) applies there.
    let n = 8;
    let mut m = vec![0.0; n * n];
    let set = |m: &mut Vec<f64>, r: usize, c: usize, v: f64| m[r * n + c] = v;
    set(&mut m, 4, 4, 1.0);
    for (r, c) in [(3, 4), (5, 4), (4, 3), (4, 5)] {
        set(&mut m, r, c, 0.5);
    }
    set(&mut m, 3, 3, 0.25);
    set(&mut m, 5, 5, 0.25);
    // Only the centre pixel lies in [0.9, 1.1).
    let t = [0.9, 1.1];
    let [_, _, v2] = minkowski(&m, n, &t, 1.0);
    // hxx = (m[4,6] + m[4,2] − 2)/4 = −0.5, hyy = −0.5, hxy = (m[5,5] + m[3,3] − m[5,3] − m[3,5])/4 = 0.125
    let expected = (2.0 * 0.125 + 0.5 + 0.5) / (4.0 * std::f64::consts::PI) / (64.0 * 0.2);
    assert!((v2[0] - expected).abs() < 1e-15, "{} vs {expected}", v2[0]);
}

/// The statistics read f32 maps without an f64 copy; the fixture map is exactly
/// representable in f32, so its f32 copy must give the very same bits (every
/// statistic does its arithmetic in f64, in the same order).
#[test]
fn an_f32_map_gives_the_numbers_of_its_f64_copy() {
    let (map, j) = fixture();
    let map32: Vec<f32> = map.iter().map(|&x| x as f32).collect();
    assert!(map32.iter().zip(&map).all(|(&a, &b)| a as f64 == b));
    assert_eq!(std_ddof0(&map32), std_ddof0(&map));
    let sigma = std_ddof0(&map);
    for (conv, s) in [
        ("sigma_units_norm_true", sigma),
        ("kappa_units_norm_false", 1.0),
    ] {
        let t = hex_floats(&j["minkowskiFunctionals"][conv]["thresholds_hex"]);
        assert_eq!(minkowski(&map32, 256, &t, s), minkowski(&map, 256, &t, s));
        let t = hex_floats(&j["peakCount"][conv]["thresholds_hex"]);
        assert_eq!(
            peak_counts(&map32, 256, &t, s),
            peak_counts(&map, 256, &t, s)
        );
        let t = floats(&j["pdf"][conv]["thresholds"]);
        assert_eq!(pixel_pdf(&map32, &t, s), pixel_pdf(&map, &t, s));
    }
    assert_eq!(peaks(&map32, 256), peaks(&map, 256));
}

/// lenstools 1.2 `ConvergenceMap.bispectrum` (fixture `lenstools_bispectrum.json`,
/// made by `make_bispectrum_fixture.py`) on map_A and its 64² sub-grid, both
/// configurations, linear and log ℓ edges: rtol 1e-6, or 1e-12 of the case's
/// largest |B| (measured: 3e-13 relative where |B| exceeds 1e-6 of the largest,
/// 1.4e-15 of the largest elsewhere). The analytic map's few plane waves close
/// few triangles, so many bins sum terms that cancel to FFT round-off, 20
/// decades below the largest; there only the round-off is compared.
#[test]
fn bispectrum_matches_lenstools() {
    use simemu_map_stats::bispectrum::{Bispectrum, Configuration};
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let (map, _) = fixture();
    let text = std::fs::read_to_string(dir.join("lenstools_bispectrum.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let angle = json["angle_deg"].as_f64().unwrap();
    let sub: Vec<f64> = (0..64)
        .flat_map(|i| (0..64).map(move |j| (i, j)))
        .map(|(i, j)| map[4 * i * 256 + 4 * j])
        .collect();
    let cases = json["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 12);
    for case in cases {
        let (data, n) = match case["map"].as_str().unwrap() {
            "map_A" => (&map, 256),
            _ => (&sub, 64),
        };
        let configuration = match case["configuration"].as_str().unwrap() {
            "equilateral" => Configuration::Equilateral,
            _ => Configuration::Folded {
                ratio: case["ratio"].as_f64().unwrap(),
            },
        };
        let edges = floats(&case["ell_edges"]);
        let want = floats(&case["bispectrum"]);
        let got = Bispectrum::new(n, angle, &edges, configuration)
            .compute(data)
            .unwrap();
        let largest = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs() + 1e-12 * largest,
                "{} {:?} {}: bin {k}: {g:e} vs lenstools {w:e}",
                case["map"],
                configuration,
                case["edges_name"]
            );
        }
    }
}
