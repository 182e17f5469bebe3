//! Bin-by-bin comparison of a candidate sample set with a reference set: KS D and p
//! per bin, means, spreads, relative differences with standard errors, the seed's
//! p-value tables, and a verdict per statistic.

use serde::{Deserialize, Serialize};

use simemu_core::bins::{ScoreHistogram, SCORE_HISTOGRAMS_KEY};

use crate::ks::ks_2samp;
use crate::measure::Measurement;
use crate::separation::separation_power;

/// A bin passes when its KS p-value exceeds this.
pub const BIN_PASS_P: f64 = 0.05;
/// A statistic passes when at least this fraction of its bins pass (a perfect
/// emulator stays above 0.83 over 20 independent pairs: `../shared/reference/calibration`).
pub const STAT_PASS_FRACTION: f64 = 0.80;
/// Means agree in a bin when |relative difference| ≤ max(this, MEAN_SE_MULTIPLE·SE).
pub const MEAN_TOLERANCE: f64 = 0.10;
pub const MEAN_SE_MULTIPLE: f64 = 3.0;
/// Bins of statistics that publish `bin_counts` (independent measurements per
/// bin, e.g. Fourier modes) take part in the mean check only with at least this many.
pub const MIN_BIN_COUNT: u64 = 50;
/// Below this many samples per side, reports warn that the KS test has little power.
pub const LOW_POWER_SAMPLES: usize = 30;

/// The seed's p-value table: how many bins have p above each level.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PTable {
    pub p_above_0_999: usize,
    pub p_above_0_99: usize,
    pub p_above_0_95: usize,
    pub p_above_0_5: usize,
    pub p_above_0_05: usize,
    pub p_below_0_05: usize,
    pub bins: usize,
}

impl PTable {
    pub fn from_pvalues<'a>(ps: impl IntoIterator<Item = &'a f64>) -> Self {
        let mut t = PTable::default();
        for &p in ps {
            t.bins += 1;
            if p > 0.999 {
                t.p_above_0_999 += 1;
            } else if p > 0.99 {
                t.p_above_0_99 += 1;
            } else if p > 0.95 {
                t.p_above_0_95 += 1;
            } else if p > 0.5 {
                t.p_above_0_5 += 1;
            } else if p > BIN_PASS_P {
                t.p_above_0_05 += 1;
            } else {
                t.p_below_0_05 += 1;
            }
        }
        t
    }
}

/// Per-bin comparison of one component (arrays over bins).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComponentComparison {
    pub name: String,
    pub x: Vec<f64>,
    pub ref_mean: Vec<f64>,
    pub ref_std: Vec<f64>,
    pub cand_mean: Vec<f64>,
    pub cand_std: Vec<f64>,
    /// (cand_mean − ref_mean)/ref_mean; null where ref_mean is 0.
    pub rel_diff: Vec<Option<f64>>,
    /// Standard error of `rel_diff` from both sets' scatter.
    pub rel_diff_se: Vec<Option<f64>>,
    pub ks_d: Vec<f64>,
    pub ks_p: Vec<f64>,
    /// Separation power of each bin's histograms
    /// ([`crate::separation::separation_power`]) where the statistic names one
    /// (its `score_histograms` option, [`simemu_core::bins::SCORE_HISTOGRAMS_KEY`]);
    /// empty for statistics that name none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub separation_power: Vec<Option<f64>>,
}

impl ComponentComparison {
    /// The fraction of this component's bins whose KS p-value exceeds
    /// [`BIN_PASS_P`].
    pub fn pass_fraction(&self) -> f64 {
        pass_fraction_of(&self.ks_p)
    }

    /// Its smallest KS p-value.
    pub fn worst_p(&self) -> f64 {
        self.ks_p.iter().cloned().fold(1.0, f64::min)
    }
}

fn pass_fraction_of(pvalues: &[f64]) -> f64 {
    if pvalues.is_empty() {
        return 0.0;
    }
    pvalues.iter().filter(|&&p| p > BIN_PASS_P).count() as f64 / pvalues.len() as f64
}

/// "pass" when a pass fraction reaches [`STAT_PASS_FRACTION`], else "fail".
pub fn verdict_of(pass_fraction: f64) -> String {
    if pass_fraction >= STAT_PASS_FRACTION {
        "pass"
    } else {
        "fail"
    }
    .into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatisticComparison {
    pub statistic: String,
    pub options: serde_json::Value,
    pub x_name: String,
    pub components: Vec<ComponentComparison>,
    pub table: PTable,
    /// The fraction of all its bins (every component's) that pass.
    pub pass_fraction: f64,
    /// "pass" when *each* component passes in at least [`STAT_PASS_FRACTION`] of
    /// its bins, else "fail". A statistic of several functions measured over the
    /// same bins is judged function by function: a good total would hide one
    /// that fails.
    pub verdict: String,
    /// Largest |rel_diff| over all bins and components.
    pub max_abs_rel_diff: Option<f64>,
    /// Mean |rel_diff| over all bins and components.
    pub mean_abs_rel_diff: Option<f64>,
    pub worst_p: f64,
    /// Bins whose means agree (see [`MEAN_TOLERANCE`]) and bins checked.
    #[serde(default)]
    pub mean_match: MeanMatch,
}

/// How many bins' means agree within max([`MEAN_TOLERANCE`], [`MEAN_SE_MULTIPLE`]·SE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanMatch {
    pub within: usize,
    pub bins: usize,
}

fn mean_match(options: &serde_json::Value, components: &[ComponentComparison]) -> MeanMatch {
    let counts: Option<Vec<u64>> = options
        .get("bin_counts")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let mut m = MeanMatch::default();
    for c in components {
        for (b, (rel, se)) in c.rel_diff.iter().zip(&c.rel_diff_se).enumerate() {
            let enough = counts
                .as_ref()
                .and_then(|k| k.get(b))
                .is_none_or(|&k| k >= MIN_BIN_COUNT);
            if let (Some(rel), Some(se), true) = (rel, se, enough) {
                m.bins += 1;
                if rel.abs() <= MEAN_TOLERANCE.max(MEAN_SE_MULTIPLE * se) {
                    m.within += 1;
                }
            }
        }
    }
    m
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// Compares the measurements of one statistic on two sets (same bins).
pub fn compare_measurements(
    reference: &Measurement,
    candidate: &Measurement,
) -> StatisticComparison {
    let mut components = Vec::new();
    let mut all_p = Vec::new();
    let mut rels = Vec::new();
    let (nr, nc) = (reference.count() as f64, candidate.count() as f64);
    let score_histograms: Option<Vec<Vec<Option<ScoreHistogram>>>> = reference
        .options
        .get(SCORE_HISTOGRAMS_KEY)
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    for (ci, name) in reference.component_names.iter().enumerate() {
        let nb = reference.x.len();
        let mut c = ComponentComparison {
            name: name.clone(),
            x: reference.x.clone(),
            ref_mean: vec![],
            ref_std: vec![],
            cand_mean: vec![],
            cand_std: vec![],
            rel_diff: vec![],
            rel_diff_se: vec![],
            ks_d: vec![],
            ks_p: vec![],
            separation_power: vec![],
        };
        let histograms = score_histograms.as_ref().and_then(|h| h.get(ci));
        for b in 0..nb {
            let r: Vec<f64> = reference.values[ci].iter().map(|s| s[b]).collect();
            let k: Vec<f64> = candidate.values[ci].iter().map(|s| s[b]).collect();
            let (rm, rs) = mean_std(&r);
            let (km, ks) = mean_std(&k);
            let test = ks_2samp(&r, &k);
            let (rel, se) = if rm != 0.0 {
                let rel = (km - rm) / rm;
                rels.push(rel.abs());
                (
                    Some(rel),
                    Some((rs * rs / nr + ks * ks / nc).sqrt() / rm.abs()),
                )
            } else {
                (None, None)
            };
            c.ref_mean.push(rm);
            c.ref_std.push(rs);
            c.cand_mean.push(km);
            c.cand_std.push(ks);
            c.rel_diff.push(rel);
            c.rel_diff_se.push(se);
            c.ks_d.push(test.statistic);
            c.ks_p.push(test.pvalue);
            all_p.push(test.pvalue);
            if let Some(h) = histograms {
                c.separation_power.push(
                    h.get(b)
                        .cloned()
                        .flatten()
                        .and_then(|h| h.edges(&r).ok())
                        .and_then(|edges| separation_power(&r, &k, &edges).ok()),
                );
            }
        }
        components.push(c);
    }
    let table = PTable::from_pvalues(&all_p);
    let weakest = components
        .iter()
        .map(ComponentComparison::pass_fraction)
        .reduce(f64::min)
        .unwrap_or(0.0);
    StatisticComparison {
        statistic: reference.statistic.clone(),
        options: reference.options.clone(),
        x_name: reference.x_name.clone(),
        table,
        pass_fraction: pass_fraction_of(&all_p),
        verdict: verdict_of(weakest),
        max_abs_rel_diff: rels.iter().cloned().reduce(f64::max),
        mean_abs_rel_diff: if rels.is_empty() {
            None
        } else {
            Some(rels.iter().sum::<f64>() / rels.len() as f64)
        },
        worst_p: all_p.iter().cloned().fold(1.0, f64::min),
        mean_match: mean_match(&reference.options, &components),
        components,
    }
}

/// KS on the pooled values of a field (all pixels of all samples).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PooledKs {
    pub field: String,
    pub n_reference: usize,
    pub n_candidate: usize,
    pub ks_d: f64,
    pub ks_p: f64,
}

pub fn pooled_ks(field: &str, reference_sorted: &[f32], candidate_sorted: &[f32]) -> PooledKs {
    let a: Vec<f64> = reference_sorted.iter().map(|&x| x as f64).collect();
    let b: Vec<f64> = candidate_sorted.iter().map(|&x| x as f64).collect();
    let r = crate::ks::ks_2samp_sorted(&a, &b);
    PooledKs {
        field: field.into(),
        n_reference: a.len(),
        n_candidate: b.len(),
        ks_d: r.statistic,
        ks_p: r.pvalue,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn means_agree_within_ten_percent_or_three_standard_errors() {
        let c = ComponentComparison {
            name: "v".into(),
            x: vec![1.0; 5],
            ref_mean: vec![1.0; 5],
            ref_std: vec![0.0; 5],
            cand_mean: vec![1.0; 5],
            cand_std: vec![0.0; 5],
            // 10% passes; 12% passes only with SE ≥ 4%; no mean, not checked.
            rel_diff: vec![Some(0.10), Some(-0.12), Some(0.12), Some(0.5), None],
            rel_diff_se: vec![Some(0.0), Some(0.041), Some(0.039), Some(0.1), None],
            ks_d: vec![0.0; 5],
            ks_p: vec![1.0; 5],
            separation_power: vec![],
        };
        let all = mean_match(&serde_json::Value::Null, std::slice::from_ref(&c));
        assert_eq!(all, MeanMatch { within: 2, bins: 4 });
        // Bins with fewer than 50 independent measurements are not checked.
        let counts = serde_json::json!({"bin_counts": [50, 49, 60, 10, 99]});
        assert_eq!(
            mean_match(&counts, std::slice::from_ref(&c)),
            MeanMatch { within: 1, bins: 2 }
        );
    }

    use super::*;

    fn m(values: Vec<Vec<f64>>) -> Measurement {
        Measurement {
            statistic: "s".into(),
            options: serde_json::Value::Null,
            x_name: "x".into(),
            x: vec![0.0, 1.0],
            component_names: vec!["c".into()],
            values: vec![values],
        }
    }

    #[test]
    fn identical_sets_pass_and_shifted_sets_fail() {
        let a: Vec<Vec<f64>> = (0..200)
            .map(|i| vec![(i % 37) as f64, 1.0 + (i % 11) as f64])
            .collect();
        let c = compare_measurements(&m(a.clone()), &m(a.clone()));
        assert_eq!(c.pass_fraction, 1.0);
        assert_eq!(c.verdict, "pass");
        assert_eq!(c.table.p_above_0_999, 2);
        let b: Vec<Vec<f64>> = a.iter().map(|v| vec![v[0] + 10.0, v[1] * 2.0]).collect();
        let c = compare_measurements(&m(a), &m(b));
        assert_eq!(c.verdict, "fail");
        assert_eq!(c.table.p_below_0_05, 2);
        assert!((c.components[0].rel_diff[1].unwrap() - 1.0).abs() < 1e-12);
    }

    /// Bins whose statistic names a histogram are scored by separation power on
    /// it; a bin named `null` is not, and statistics that name none carry none.
    #[test]
    fn named_histograms_score_their_bins_by_separation_power() {
        let a: Vec<Vec<f64>> = (0..100).map(|i| vec![(i % 10) as f64 + 0.5, 0.0]).collect();
        let b: Vec<Vec<f64>> = (0..100).map(|i| vec![(i % 5) as f64 + 0.5, 0.0]).collect();
        let mut reference = m(a);
        reference.options = serde_json::json!({ SCORE_HISTOGRAMS_KEY: [[
            { "kind": "linear", "lo": 0.0, "hi": 10.0, "edges": 11 },
            null
        ]] });
        let c = compare_measurements(&reference, &m(b.clone()));
        let sep = &c.components[0].separation_power;
        // Reference 1/10 in each of ten bins, candidate 1/5 in the first five.
        let expected = 0.5 * (5.0 * 0.01 / 0.3 + 5.0 * 0.1);
        assert!((sep[0].unwrap() - expected).abs() < 1e-12, "{sep:?}");
        assert_eq!(sep[1], None);
        assert!(compare_measurements(&m(b.clone()), &m(b)).components[0]
            .separation_power
            .is_empty());
    }

    /// Three components of five bins each, the last failing two of its five:
    /// 13 of all 15 bins pass (87%), yet the statistic fails with its weakest
    /// component (60%).
    #[test]
    fn a_statistic_passes_only_when_each_component_does() {
        let bins = 5;
        let measurement = |shift: f64| {
            let steady: Vec<Vec<f64>> = (0..200).map(|i| vec![(i % 37) as f64; bins]).collect();
            let shifted = (0..200)
                .map(|i| {
                    (0..bins)
                        .map(|b| (i % 37) as f64 + if b < 2 { shift } else { 0.0 })
                        .collect()
                })
                .collect();
            Measurement {
                statistic: "s".into(),
                options: serde_json::Value::Null,
                x_name: "x".into(),
                x: (0..bins).map(|b| b as f64).collect(),
                component_names: vec!["a".into(), "b".into(), "bad".into()],
                values: vec![steady.clone(), steady, shifted],
            }
        };
        let c = compare_measurements(&measurement(0.0), &measurement(10.0));
        assert_eq!(c.pass_fraction, 13.0 / 15.0);
        assert_eq!(c.components[0].pass_fraction(), 1.0);
        assert_eq!(c.components[2].pass_fraction(), 0.6);
        assert!(c.components[2].worst_p() < 1e-6);
        assert_eq!(c.verdict, "fail");
        let c = compare_measurements(&measurement(0.0), &measurement(0.0));
        assert_eq!(c.verdict, "pass");
    }
}
