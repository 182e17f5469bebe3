//! Parameter response of a conditional emulator: between two parameter points, does
//! a statistic's mean change by the factor the simulator's does?
//!
//! From the validation reports at points A and B (each comparing a candidate with
//! simulations at that point), the response of bin *i* is `mean_B / mean_A`, for the
//! reference and for the candidate; the response error is their ratio minus one.
//! Only components whose bins are the same at both points take part (fixed bins,
//! such as a power spectrum's; bins drawn from each reference's quantiles differ).
//!
//! A bin's response agrees when |error| ≤ max(5%, 3 SE), SE being the standard
//! error of the error from the four means it is made of (each mean's standard
//! deviation over √count, relative to the mean, added in quadrature).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::report::Report;

/// The response error a bin may have whatever its standard error.
pub const RESPONSE_TOLERANCE: f64 = 0.05;
/// Standard errors of the response error a bin may be off by, where that is wider.
pub const RESPONSE_SE: f64 = 3.0;

/// A bin's mean over a set, its standard deviation and the set's size.
#[derive(Clone, Copy, Debug)]
pub struct Moments {
    pub mean: f64,
    pub std: f64,
    pub count: usize,
}

impl Moments {
    /// The standard error of the mean relative to the mean (None at a zero mean).
    fn relative_se(&self) -> Option<f64> {
        (self.mean != 0.0 && self.count > 0)
            .then(|| self.std / (self.count as f64).sqrt() / self.mean.abs())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComponentResponse {
    pub statistic: String,
    pub component: String,
    pub x_name: String,
    pub x: Vec<f64>,
    /// Reference mean at B over reference mean at A, per bin (null where undefined).
    pub reference_ratio: Vec<Option<f64>>,
    pub candidate_ratio: Vec<Option<f64>>,
    /// candidate_ratio / reference_ratio − 1.
    pub error: Vec<Option<f64>>,
    /// The standard error of `error`, per bin.
    pub error_se: Vec<Option<f64>>,
    /// Bins whose error is outside max(5%, 3 SE) (or undefined).
    pub disagreeing: usize,
    /// Largest |error| over the bins.
    pub max_abs_error: Option<f64>,
}

impl ComponentResponse {
    /// The response of one component from its per-bin moments at A and at B, for
    /// the reference and for the candidate.
    pub fn from_moments(
        (statistic, component, x_name): (&str, &str, &str),
        x: &[f64],
        reference: (&[Moments], &[Moments]),
        candidate: (&[Moments], &[Moments]),
    ) -> ComponentResponse {
        let ratio = |a: &[Moments], b: &[Moments]| -> Vec<Option<f64>> {
            a.iter()
                .zip(b)
                .map(|(a, b)| {
                    (a.mean != 0.0 && (b.mean / a.mean).is_finite()).then(|| b.mean / a.mean)
                })
                .collect()
        };
        let reference_ratio = ratio(reference.0, reference.1);
        let candidate_ratio = ratio(candidate.0, candidate.1);
        let error: Vec<Option<f64>> = reference_ratio
            .iter()
            .zip(&candidate_ratio)
            .map(|(r, c)| match (r, c) {
                (Some(r), Some(c)) if *r != 0.0 => Some(c / r - 1.0),
                _ => None,
            })
            .collect();
        let error_se: Vec<Option<f64>> = (0..x.len())
            .map(|i| {
                let parts = [
                    reference.0[i],
                    reference.1[i],
                    candidate.0[i],
                    candidate.1[i],
                ];
                let mut sum = 0.0;
                for m in parts {
                    sum += m.relative_se()?.powi(2);
                }
                // The error is a ratio of ratios: its SE is (1 + error) times the
                // relative one.
                Some(sum.sqrt() * (1.0 + error[i]?))
            })
            .collect();
        let disagreeing = error
            .iter()
            .zip(&error_se)
            .filter(|(e, se)| match (e, se) {
                (Some(e), Some(se)) => e.abs() > RESPONSE_TOLERANCE.max(RESPONSE_SE * se),
                _ => true,
            })
            .count();
        let max_abs_error = error.iter().flatten().map(|e| e.abs()).reduce(f64::max);
        ComponentResponse {
            statistic: statistic.into(),
            component: component.into(),
            x_name: x_name.into(),
            x: x.to_vec(),
            reference_ratio,
            candidate_ratio,
            error,
            error_se,
            disagreeing,
            max_abs_error,
        }
    }
}

/// Every comparable component's response between the reports at two points.
pub fn response(at_a: &Report, at_b: &Report) -> Vec<ComponentResponse> {
    let mut out = Vec::new();
    for sa in &at_a.statistics {
        let Some(sb) = at_b.statistics.iter().find(|s| s.statistic == sa.statistic) else {
            continue;
        };
        for ca in &sa.components {
            let Some(cb) = sb.components.iter().find(|c| c.name == ca.name) else {
                continue;
            };
            if ca.x != cb.x {
                continue;
            }
            let moments = |mean: &[f64], std: &[f64], count: usize| -> Vec<Moments> {
                mean.iter()
                    .zip(std)
                    .map(|(&mean, &std)| Moments { mean, std, count })
                    .collect()
            };
            let (na, nb) = (at_a.reference.count, at_b.reference.count);
            let (ma, mb) = (at_a.candidate.count, at_b.candidate.count);
            out.push(ComponentResponse::from_moments(
                (&sa.statistic, &ca.name, &sa.x_name),
                &ca.x,
                (
                    &moments(&ca.ref_mean, &ca.ref_std, na),
                    &moments(&cb.ref_mean, &cb.ref_std, nb),
                ),
                (
                    &moments(&ca.cand_mean, &ca.cand_std, ma),
                    &moments(&cb.cand_mean, &cb.cand_std, mb),
                ),
            ));
        }
    }
    out
}

/// A Markdown table of one response: a row per bin.
pub fn response_markdown(title: &str, responses: &[ComponentResponse]) -> String {
    let mut md = format!("### {title}\n\n");
    if responses.is_empty() {
        md.push_str("No statistic has the same bins at both points.\n");
        return md;
    }
    let fmt = |v: Option<f64>, pct: bool| match v {
        Some(x) if pct => format!("{:+.1}%", 100.0 * x),
        Some(x) => format!("{x:.4}"),
        None => "—".into(),
    };
    for r in responses {
        let verdict = if r.disagreeing == 0 {
            "every bin agrees".to_string()
        } else {
            format!("{} of {} bins disagree", r.disagreeing, r.x.len())
        };
        let _ = writeln!(
            md,
            "{} {}: largest |error| {}; {verdict} (within max({:.0}%, {RESPONSE_SE} SE))\n",
            r.statistic,
            r.component,
            fmt(r.max_abs_error, true),
            100.0 * RESPONSE_TOLERANCE
        );
        let _ = writeln!(
            md,
            "| {} | simulator ratio | emulator ratio | error | SE |",
            r.x_name
        );
        md.push_str("|---|---|---|---|---|\n");
        for i in 0..r.x.len() {
            let _ = writeln!(
                md,
                "| {:.4} | {} | {} | {} | {} |",
                r.x[i],
                fmt(r.reference_ratio[i], false),
                fmt(r.candidate_ratio[i], false),
                fmt(r.error[i], true),
                fmt(r.error_se[i], true)
            );
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{ComponentComparison, MeanMatch, PTable, StatisticComparison};

    fn report(stat: &str, x: Vec<f64>, ref_mean: Vec<f64>, cand_mean: Vec<f64>) -> Report {
        let n = x.len();
        let component = ComponentComparison {
            name: "c".into(),
            x,
            ref_mean,
            ref_std: vec![0.0; n],
            cand_mean,
            cand_std: vec![0.0; n],
            rel_diff: vec![None; n],
            rel_diff_se: vec![None; n],
            ks_d: vec![0.0; n],
            ks_p: vec![1.0; n],
            separation_power: vec![],
        };
        let statistic = StatisticComparison {
            statistic: stat.into(),
            options: serde_json::Value::Null,
            x_name: "x".into(),
            components: vec![component],
            table: PTable::from_pvalues(&[1.0]),
            pass_fraction: 1.0,
            verdict: "pass".into(),
            max_abs_rel_diff: None,
            mean_abs_rel_diff: None,
            worst_p: 1.0,
            mean_match: MeanMatch::default(),
        };
        let mut r: Report = serde_json::from_value(serde_json::json!({
            "format": "x", "simemu_version": "x",
            "reference": {"path": "a", "count": 1, "source": {}},
            "candidate": {"path": "b", "count": 1, "source": {}},
            "field": "f", "criteria": null, "summary": [], "statistics": [],
            "pooled_ks": {"field": "f", "ks_d": 0.0, "ks_p": 1.0, "n_reference": 1, "n_candidate": 1},
            "warnings": []
        }))
        .unwrap();
        r.statistics.push(statistic);
        r
    }

    #[test]
    fn errors_are_ratio_of_ratios_and_only_matching_bins_count() {
        // Simulator doubles, emulator grows 2.2× in bin 0 and 1.8× in bin 1.
        let a = report("s", vec![1.0, 2.0], vec![1.0, 4.0], vec![1.0, 5.0]);
        let b = report("s", vec![1.0, 2.0], vec![2.0, 8.0], vec![2.2, 9.0]);
        let r = response(&a, &b);
        assert_eq!(r.len(), 1);
        let e: Vec<f64> = r[0].error.iter().map(|e| e.unwrap()).collect();
        assert!(
            (e[0] - 0.1).abs() < 1e-12 && (e[1] + 0.1).abs() < 1e-12,
            "{e:?}"
        );
        assert!((r[0].max_abs_error.unwrap() - 0.1).abs() < 1e-12);
        // Standard deviations of 0: both bins are off by more than 5%.
        assert_eq!(r[0].disagreeing, 2);
        let md = response_markdown("A → B", &r);
        assert!(
            md.contains("+10.0%") && md.contains("2 of 2 bins disagree"),
            "{md}"
        );

        // Different bins (quantile thresholds) are not comparable; zero means are undefined.
        let c = report("s", vec![1.5, 2.0], vec![2.0, 8.0], vec![2.0, 8.0]);
        assert!(response(&a, &c).is_empty());
        let z = report("s", vec![1.0, 2.0], vec![0.0, 4.0], vec![1.0, 5.0]);
        assert_eq!(response(&z, &b)[0].error[0], None);
    }

    /// The standard error of the response error adds the four means' relative
    /// errors in quadrature; a bin agrees within max(5%, 3 SE).
    #[test]
    fn responses_agree_within_three_standard_errors() {
        let m = |mean: f64, std: f64| {
            [Moments {
                mean,
                std,
                count: 100,
            }]
        };
        // Each mean has a relative SE of 0.05 (σ/√100 = 0.5 of 10): SE = 0.1·1.1.
        let r = ComponentResponse::from_moments(
            ("s", "c", "x"),
            &[1.0],
            (&m(10.0, 5.0), &m(20.0, 10.0)),
            (&m(10.0, 5.0), &m(22.0, 11.0)),
        );
        assert!((r.error[0].unwrap() - 0.1).abs() < 1e-12);
        assert!((r.error_se[0].unwrap() - 0.1 * 1.1).abs() < 1e-12);
        assert_eq!(r.disagreeing, 0);
        // With a tenth of that scatter the 10% error is 9 SE out.
        let r = ComponentResponse::from_moments(
            ("s", "c", "x"),
            &[1.0],
            (&m(10.0, 0.5), &m(20.0, 1.0)),
            (&m(10.0, 0.5), &m(22.0, 1.1)),
        );
        assert_eq!(r.disagreeing, 1);
    }
}
