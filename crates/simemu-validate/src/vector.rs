//! Tests on the whole vector of a sample's statistics, where the per-bin KS
//! tests look at one bin at a time: the Fréchet and kernel distances of the
//! vectors ([`crate::distance`]) and the fidelity of each statistic's
//! bin-to-bin correlations. Each is printed beside its *floor*: the same
//! metric between two disjoint halves of the reference (even and odd samples),
//! carried to the sizes of the two sets compared, so that a reader sees what
//! "indistinguishable" gives at this sample size.
//!
//! - `fpd`: FPD on the concatenated bins of every statistic, sub-samples of
//!   N/4 … N (N the smaller set), 5 sizes × 10 batches. Between two finite
//!   sets of one distribution it does not vanish: it is the distance between
//!   their empirical Gaussians, ∝ 1/N_a + 1/N_b; so the halves' value is
//!   multiplied by (1/N_ref + 1/N_cand)/(1/N_even + 1/N_odd);
//! - `kpd`: KPD on the same vectors, 10 batches of N/2 (at most 1,000). The
//!   estimate is unbiased for independent draws, but jetnet's sub-samples are
//!   drawn with replacement, and a point drawn twice inflates the within-set
//!   terms by ∝ 1/N_a + 1/N_b: its floor is carried over as FPD's;
//! - `covariance`: for each statistic component, the largest |Δρ| between the
//!   reference's and the candidate's correlation matrices of its bins; the
//!   largest over components is the value. Its noise is ∝ √(1/N_a + 1/N_b):
//!   the halves' value is multiplied by the square root of the ratio above.
//!
//! A test *flags* the candidate when its value exceeds the floor by more than
//! three combined errors (FPD, KPD; errors as the metrics define them) or, for
//! `covariance`, by more than half the floor again (the floor is one draw of
//! the reference-split null).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use simemu_core::{Error, Result};

use crate::c2st::{self, C2stOptions, C2stResult, Inputs};
use crate::distance::{self, Estimate, FpdOptions, SeededDraw};
use crate::measure::Measurement;

/// A classifier test flags the candidate below this p-value.
pub const CLASSIFIER_FLAG_P: f64 = 0.01;

/// A test on statistic vectors, by the name `--stats` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VectorTest {
    Fpd,
    Kpd,
    Covariance,
    /// The classifier two-sample test on the samples themselves.
    C2st,
    /// The classifier two-sample test on the statistic vectors.
    #[serde(rename = "c2st-stats")]
    C2stStats,
}

impl VectorTest {
    pub const ALL: [VectorTest; 5] = [
        VectorTest::Fpd,
        VectorTest::Kpd,
        VectorTest::Covariance,
        VectorTest::C2st,
        VectorTest::C2stStats,
    ];

    pub fn name(self) -> &'static str {
        match self {
            VectorTest::Fpd => "fpd",
            VectorTest::Kpd => "kpd",
            VectorTest::Covariance => "covariance",
            VectorTest::C2st => "c2st",
            VectorTest::C2stStats => "c2st-stats",
        }
    }

    /// The test of this name, if it is one.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One test's value beside its floor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VectorTestResult {
    pub test: VectorTest,
    pub value: f64,
    pub error: Option<f64>,
    /// The same metric between the reference's even and odd samples.
    pub floor: f64,
    pub floor_error: Option<f64>,
    /// Whether the value exceeds the floor by the module's rule.
    pub flagged: bool,
    /// Features per sample (bins of every statistic).
    pub features: usize,
    /// For `covariance`: the statistic component with the largest |Δρ|.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst: Option<String>,
    /// For the classifier tests: everything the classifier found, on the
    /// candidate and on the reference's halves (the floor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<Box<ClassifierScores>>,
}

/// A classifier test on the candidate and its floor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierScores {
    pub candidate: C2stResult,
    pub floor: C2stResult,
}

impl VectorTestResult {
    /// The value as reports print it: `v ± e` where the metric has an error,
    /// the AUC and its p-value for a classifier.
    pub fn value_text(&self) -> String {
        match &self.classifier {
            Some(c) => auc_text(&c.candidate),
            None => with_error(self.value, self.error),
        }
    }

    /// The floor as reports print it.
    pub fn floor_text(&self) -> String {
        match &self.classifier {
            Some(c) => auc_text(&c.floor),
            None => with_error(self.floor, self.floor_error),
        }
    }
}

fn auc_text(r: &C2stResult) -> String {
    format!("AUC {:.3} p {:.1e}", r.auc, r.p_value)
}

fn with_error(value: f64, error: Option<f64>) -> String {
    match error {
        Some(e) => format!("{value:.3e} ± {e:.1e}"),
        None => format!("{value:.3}"),
    }
}

/// Seed of the sub-sample draws: the same report for the same sets.
const SEED: u64 = 0x5eed_d157;

/// Every sample's vector: every component's bins of every statistic.
pub fn sample_vectors(measurements: &[Measurement]) -> Vec<Vec<f64>> {
    let count = measurements.first().map_or(0, Measurement::count);
    vectors(measurements, &(0..count).collect::<Vec<_>>())
}

/// Per-sample vectors: every component's bins of every statistic.
fn vectors(measurements: &[Measurement], rows: &[usize]) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|&s| {
            measurements
                .iter()
                .flat_map(|m| m.values.iter().flat_map(move |c| c[s].iter().copied()))
                .collect()
        })
        .collect()
}

/// The floors of one reference, each computed on first use: the metric
/// between the reference's halves does not depend on the candidate (only its
/// scaling to the candidate's size does), so a harness validating several
/// candidates against one reference computes each once.
#[derive(Default)]
pub struct Floors {
    distances: Mutex<HashMap<VectorTest, Estimate>>,
    correlations: Mutex<HashMap<VectorTest, f64>>,
    classifiers: Mutex<HashMap<VectorTest, C2stResult>>,
}

/// The value cached under `test`, computed on first use.
fn cached<T: Clone>(
    cache: &Mutex<HashMap<VectorTest, T>>,
    test: VectorTest,
    compute: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if let Some(value) = cache.lock().expect("floors lock").get(&test) {
        return Ok(value.clone());
    }
    let value = compute()?;
    cache
        .lock()
        .expect("floors lock")
        .insert(test, value.clone());
    Ok(value)
}

/// A distance between two sets of vectors.
type DistanceMetric = dyn Fn(&[Vec<f64>], &[Vec<f64>]) -> Estimate;

/// Runs `tests` on the reference's and the candidate's measurements (the
/// same statistics, in order); `samples` are the sets' samples, which `c2st`
/// reads (loaded only when it is asked for). `floors` keeps the reference's
/// floors for the next candidate: give every call with this reference the same.
pub fn run(
    tests: &[VectorTest],
    reference: &[Measurement],
    candidate: &[Measurement],
    samples: Option<&dyn Fn() -> Result<(Inputs, Inputs)>>,
    floors: &Floors,
) -> Result<Vec<VectorTestResult>> {
    let n_ref = reference.first().map_or(0, Measurement::count);
    let n_cand = candidate.first().map_or(0, Measurement::count);
    if tests.is_empty() {
        return Ok(Vec::new());
    }
    if n_ref < 8 || n_cand < 4 {
        return Err(Error::Data(format!(
            "the vector tests need at least 8 reference and 4 candidate samples (have {n_ref} and {n_cand})"
        )));
    }
    let all_ref: Vec<usize> = (0..n_ref).collect();
    let even: Vec<usize> = (0..n_ref).step_by(2).collect();
    let odd: Vec<usize> = (1..n_ref).step_by(2).collect();
    let x = vectors(reference, &all_ref);
    let y = vectors(candidate, &(0..n_cand).collect::<Vec<_>>());
    let (xa, xb) = (vectors(reference, &even), vectors(reference, &odd));
    let features = x[0].len();
    let inverse = |n: usize| 1.0 / n as f64;
    let size_ratio =
        (inverse(n_ref) + inverse(n_cand)) / (inverse(even.len()) + inverse(odd.len()));
    tests
        .iter()
        .map(|&test| {
            let result = |value: Estimate, floor: Estimate, scale: f64| {
                let floor = Estimate {
                    value: floor.value * scale,
                    error: floor.error * scale,
                };
                let combined = (value.error.powi(2) + floor.error.powi(2)).sqrt();
                VectorTestResult {
                    test,
                    value: value.value,
                    error: Some(value.error),
                    floor: floor.value,
                    floor_error: Some(floor.error),
                    flagged: value.value - floor.value > 3.0 * combined,
                    features,
                    worst: None,
                    classifier: None,
                }
            };
            let distance_floor =
                |metric: &DistanceMetric| cached(&floors.distances, test, || Ok(metric(&xa, &xb)));
            let classifier = |x: Inputs, y: Inputs| -> Result<VectorTestResult> {
                let options = C2stOptions::default();
                let candidate = c2st::c2st(&x, &y, &options)?;
                let floor = cached(&floors.classifiers, test, || {
                    c2st::c2st(&x.rows(&even), &x.rows(&odd), &options)
                })?;
                Ok(VectorTestResult {
                    test,
                    value: candidate.auc,
                    error: None,
                    floor: floor.auc,
                    floor_error: None,
                    flagged: candidate.p_value < CLASSIFIER_FLAG_P,
                    features: x.shape.iter().product(),
                    worst: None,
                    classifier: Some(Box::new(ClassifierScores { candidate, floor })),
                })
            };
            Ok(match test {
                VectorTest::Fpd => {
                    let metric = |a: &[Vec<f64>], b: &[Vec<f64>]| {
                        let n = a.len().min(b.len());
                        let options = FpdOptions {
                            min_samples: (n / 4).max(2),
                            max_samples: n,
                            batches: 10,
                            points: 5,
                        };
                        distance::fpd(a, b, &options, &mut SeededDraw::new(SEED))
                    };
                    result(metric(&x, &y), distance_floor(&metric)?, size_ratio)
                }
                VectorTest::Kpd => {
                    let metric = |a: &[Vec<f64>], b: &[Vec<f64>]| {
                        let size = (a.len().min(b.len()) / 2).clamp(2, 1000);
                        distance::kpd(a, b, 10, size, &mut SeededDraw::new(SEED))
                    };
                    result(metric(&x, &y), distance_floor(&metric)?, size_ratio)
                }
                VectorTest::Covariance => {
                    let (value, worst) = largest_correlation_difference(
                        reference,
                        &all_ref,
                        candidate,
                        &(0..n_cand).collect::<Vec<_>>(),
                    );
                    let halves = cached(&floors.correlations, test, || {
                        Ok(largest_correlation_difference(reference, &even, reference, &odd).0)
                    })?;
                    let floor = halves * size_ratio.sqrt();
                    VectorTestResult {
                        test,
                        value,
                        error: None,
                        floor,
                        floor_error: None,
                        flagged: value > 1.5 * floor,
                        features,
                        worst: Some(worst),
                        classifier: None,
                    }
                }
                VectorTest::C2st => {
                    let load = samples.ok_or_else(|| {
                        Error::Option("c2st needs the samples, not only their statistics".into())
                    })?;
                    let (samples_x, samples_y) = load()?;
                    classifier(samples_x.with_summaries(&x)?, samples_y.with_summaries(&y)?)?
                }
                VectorTest::C2stStats => {
                    classifier(Inputs::from_vectors(&x), Inputs::from_vectors(&y))?
                }
            })
        })
        .collect()
}

/// The largest |Δρ| between the bin correlation matrices of two sets, over
/// every statistic component, and the component it is in.
fn largest_correlation_difference(
    a: &[Measurement],
    rows_a: &[usize],
    b: &[Measurement],
    rows_b: &[usize],
) -> (f64, String) {
    let mut worst = (0.0, String::new());
    for (ma, mb) in a.iter().zip(b) {
        for (c, name) in ma.component_names.iter().enumerate() {
            let ra = correlation(&ma.values[c], rows_a);
            let rb = correlation(&mb.values[c], rows_b);
            for (row_a, row_b) in ra.iter().zip(&rb) {
                for (p, q) in row_a.iter().zip(row_b) {
                    let d = (p - q).abs();
                    if d > worst.0 {
                        worst = (d, format!("{} {name}", ma.statistic));
                    }
                }
            }
        }
    }
    worst
}

/// The correlation matrix of the bins over the given samples; a bin that does
/// not vary correlates 0 with the others (and 1 with itself).
pub fn correlation(samples: &[Vec<f64>], rows: &[usize]) -> Vec<Vec<f64>> {
    let (_, cov) = distance::mean_and_covariance(samples, Some(rows));
    let bins = cov.len();
    let sd: Vec<f64> = (0..bins).map(|b| cov[b][b].sqrt()).collect();
    cov.iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .enumerate()
                .map(|(j, c)| {
                    if i == j {
                        1.0
                    } else if sd[i] > 0.0 && sd[j] > 0.0 {
                        c / (sd[i] * sd[j])
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pearson's r of a perfectly linear pair is ±1, of a constant bin 0.
    #[test]
    fn correlation_of_known_columns() {
        let samples: Vec<Vec<f64>> = (0..10)
            .map(|i| vec![i as f64, -2.0 * i as f64 + 1.0, 3.0])
            .collect();
        let rows: Vec<usize> = (0..10).collect();
        let r = correlation(&samples, &rows);
        assert!((r[0][1] + 1.0).abs() < 1e-12);
        assert_eq!(r[0][2], 0.0);
        assert_eq!(r[2][2], 1.0);
    }

    /// Measurements of one 6-bin statistic whose bins are correlated
    /// Gaussians (bin b = g₀ + g_b), shifted by `shift` in bin 0 or with the
    /// shared part drawn afresh per bin (`independent`: same marginals, no
    /// correlation).
    fn measurements(count: usize, seed: u64, shift: f64, independent: bool) -> Vec<Measurement> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let values: Vec<Vec<f64>> = (0..count)
            .map(|_| {
                let common: f64 = StandardNormal.sample(&mut rng);
                (0..6)
                    .map(|b| {
                        let own: f64 = StandardNormal.sample(&mut rng);
                        let shared = if independent {
                            StandardNormal.sample(&mut rng)
                        } else {
                            common
                        };
                        3.0 + shared + own + if b == 0 { shift } else { 0.0 }
                    })
                    .collect()
            })
            .collect();
        vec![Measurement {
            statistic: "s".into(),
            options: serde_json::Value::Null,
            x_name: "x".into(),
            x: (0..6).map(f64::from).collect(),
            component_names: vec!["c".into()],
            values: vec![values],
        }]
    }

    /// An independent set of the same distribution is flagged by none; a
    /// shift of half a standard deviation in one bin by FPD; the same
    /// marginals without the bins' correlation by `covariance`.
    #[test]
    fn flags_what_differs_and_only_that() {
        let reference = measurements(600, 1, 0.0, false);
        let tests = [VectorTest::Fpd, VectorTest::Kpd, VectorTest::Covariance];
        let same = run(
            &tests,
            &reference,
            &measurements(600, 2, 0.0, false),
            None,
            &Floors::default(),
        )
        .unwrap();
        assert!(same.iter().all(|t| !t.flagged), "{same:?}");
        let shifted = run(
            &tests,
            &reference,
            &measurements(600, 3, 0.7, false),
            None,
            &Floors::default(),
        )
        .unwrap();
        assert!(shifted[0].flagged, "{shifted:?}");
        // KPD sees it too, but its floor (one split, errors of the batch
        // spread) leaves it short of flagging at this size.
        assert!(
            shifted[1].value > 5.0 * same[1].value.max(0.0),
            "{shifted:?} {same:?}"
        );
        let uncorrelated = run(
            &tests,
            &reference,
            &measurements(600, 4, 0.0, true),
            None,
            &Floors::default(),
        )
        .unwrap();
        assert!(uncorrelated[2].flagged, "{uncorrelated:?}");
        assert_eq!(uncorrelated[2].worst.as_deref(), Some("s c"));
    }
}
