//! The classifier two-sample test: its calibration and AUC against
//! scikit-learn 1.9.1, and CaloChallenge's final scores (calibrated AUC,
//! accuracy, JSD with torch's BCELoss) given the same predictions (fixtures
//! made by `tests/fixtures/make_sklearn_fixture.py`),
//! and the test itself on fields and vectors with and without a planted
//! difference.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::Value;
use simemu_validate::c2st::{auc, c2st, calibrated_scores, C2stOptions, Inputs, Isotonic};

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A JSON fixture of `tests/fixtures/`.
fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// sklearn's IsotonicRegression (clip, y in [1e-6, 1 − 1e-6]) and
/// roc_auc_score, with and without ties, to rounding.
#[test]
fn isotonic_calibration_and_auc_match_sklearn() {
    let fixture = fixture("sklearn-calibration.json");
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (scores, labels) = (floats(&case["scores"]), floats(&case["labels"]));
        let iso = Isotonic::fit(&scores, &labels);
        for (q, want) in floats(&case["queries"])
            .iter()
            .zip(floats(&case["isotonic"]))
        {
            let got = iso.predict(*q);
            assert!(
                (got - want).abs() <= 1e-12,
                "{name}: isotonic({q}) = {got} vs sklearn {want}"
            );
        }
        let positive: Vec<bool> = labels.iter().map(|&l| l == 1.0).collect();
        let want = case["auc"].as_f64().unwrap();
        let got = auc(&scores, &positive);
        assert!((got - want).abs() <= 1e-12, "{name}: AUC {got} vs {want}");
    }
}

/// `evaluate.py`'s final evaluation given the same classifier outputs: the
/// isotonic calibrator fitted on one split, the rescaled AUC, accuracy and
/// JSD/ln 2 on the other, to 1e-6 relative.
#[test]
fn calibrated_scores_equal_the_challenges_evaluation() {
    let fixture = fixture("sklearn-evaluation.json");
    let cases = fixture["evaluations"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let iso = Isotonic::fit(
            &floats(&case["calibration_scores"]),
            &floats(&case["calibration_labels"]),
        );
        let rescaled: Vec<f64> = floats(&case["test_scores"])
            .iter()
            .map(|&s| iso.predict(s))
            .collect();
        let truth: Vec<bool> = floats(&case["test_labels"])
            .iter()
            .map(|&l| l == 1.0)
            .collect();
        let got = calibrated_scores(&rescaled, &truth);
        for (what, got, want) in [
            ("AUC", got.auc, &case["auc"]),
            ("accuracy", got.accuracy, &case["accuracy"]),
            ("JSD", got.jsd_bits, &case["jsd"]),
        ] {
            let want = want.as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "{name}: {what} {got} vs evaluate.py's {want}"
            );
        }
    }
}

/// `count` periodic 16×16 fields: white noise smoothed by a 3×3 box, plus
/// `pattern` (the same in every field) times `amplitude`.
fn fields(count: usize, seed: u64, amplitude: f32) -> Inputs {
    let side = 16;
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut pattern_rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(99);
    let pattern: Vec<f32> = (0..side * side)
        .map(|_| StandardNormal.sample(&mut pattern_rng))
        .collect();
    let mut values = Vec::with_capacity(count * side * side);
    for _ in 0..count {
        let noise: Vec<f32> = (0..side * side)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        for i in 0..side {
            for j in 0..side {
                let mut sum = 0.0;
                for di in [side - 1, 0, 1] {
                    for dj in [side - 1, 0, 1] {
                        sum += noise[((i + di) % side) * side + (j + dj) % side];
                    }
                }
                // The smoothed field has unit variance.
                values.push(sum / 3.0 + amplitude * pattern[i * side + j]);
            }
        }
    }
    Inputs {
        values,
        shape: vec![side, side],
        summaries: Vec::new(),
        summary_width: 0,
    }
}

/// Two independent sets of one distribution: no rejection, AUC near one
/// half; the same with a fixed pattern of 0.3 σ in every candidate field:
/// rejected. The same inputs give the same result.
#[test]
fn a_fixed_pattern_is_caught_and_independent_sets_are_not() {
    let options = C2stOptions::default();
    let reference = fields(150, 1, 0.0);
    let same = c2st(&reference, &fields(150, 2, 0.0), &options).unwrap();
    assert!(same.p_value > 0.01, "{same:?}");
    assert!((same.auc - 0.5).abs() < 0.1, "{same:?}");
    assert!(same.classifier.starts_with("CNN"), "{}", same.classifier);
    let patterned = c2st(&reference, &fields(150, 2, 0.3), &options).unwrap();
    assert!(patterned.p_value < 0.01, "{patterned:?}");
    assert!(patterned.auc > 0.7, "{patterned:?}");
    assert_eq!(patterned.epochs.len(), options.folds);
    assert_eq!(
        c2st(&reference, &fields(150, 2, 0.3), &options).unwrap(),
        patterned
    );
}

/// Vectors (the MLP): a shift of 0.5 σ in one of eight features is caught,
/// its absence is not.
#[test]
fn vectors_with_a_shifted_feature_are_caught() {
    let vectors = |count: usize, seed: u64, shift: f64| -> Vec<Vec<f64>> {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..count)
            .map(|_| {
                (0..8)
                    .map(|k| {
                        let g: f64 = StandardNormal.sample(&mut rng);
                        g + if k == 3 { shift } else { 0.0 }
                    })
                    .collect()
            })
            .collect()
    };
    let options = C2stOptions::default();
    let reference = Inputs::from_vectors(&vectors(300, 1, 0.0));
    let same = c2st(
        &reference,
        &Inputs::from_vectors(&vectors(300, 2, 0.0)),
        &options,
    )
    .unwrap();
    assert!(same.p_value > 0.01, "{same:?}");
    assert!(same.classifier.starts_with("MLP"), "{}", same.classifier);
    let shifted = c2st(
        &reference,
        &Inputs::from_vectors(&vectors(300, 2, 0.5)),
        &options,
    )
    .unwrap();
    assert!(shifted.p_value < 0.01, "{shifted:?}");
}

#[test]
fn bad_inputs_are_refused_with_the_reason() {
    let options = C2stOptions::default();
    let few = c2st(&fields(6, 1, 0.0), &fields(50, 2, 0.0), &options).unwrap_err();
    assert!(
        few.to_string().contains("at least 10 samples per set"),
        "{few}"
    );
    let shapes = c2st(
        &fields(50, 1, 0.0),
        &Inputs::from_vectors(&vec![vec![0.0; 256]; 50]),
        &options,
    )
    .unwrap_err();
    assert!(shapes.to_string().contains("differ in shape"), "{shapes}");
}
