//! Parameter response of a conditional emulator: between two parameter points, does
//! a statistic's mean change by the factor the simulator's does?
//!
//! From the validation reports at points A and B (each comparing a candidate with
//! simulations at that point), the response of bin *i* is `mean_B / mean_A`, for the
//! reference and for the candidate; the response error is their ratio minus one.
//! Only components whose bins are the same at both points take part (fixed bins,
//! such as a power spectrum's; bins drawn from each reference's quantiles differ).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::report::Report;

/// Tolerance of the response error the summary checks against.
pub const RESPONSE_TOLERANCE: f64 = 0.20;

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
    /// Largest |error| over the bins.
    pub max_abs_error: Option<f64>,
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
            let ratio = |b: &[f64], a: &[f64]| -> Vec<Option<f64>> {
                a.iter()
                    .zip(b)
                    .map(|(&a, &b)| (a != 0.0 && (b / a).is_finite()).then(|| b / a))
                    .collect()
            };
            let reference_ratio = ratio(&cb.ref_mean, &ca.ref_mean);
            let candidate_ratio = ratio(&cb.cand_mean, &ca.cand_mean);
            let error: Vec<Option<f64>> = reference_ratio
                .iter()
                .zip(&candidate_ratio)
                .map(|(r, c)| match (r, c) {
                    (Some(r), Some(c)) if *r != 0.0 => Some(c / r - 1.0),
                    _ => None,
                })
                .collect();
            let max_abs_error = error.iter().flatten().map(|e| e.abs()).reduce(f64::max);
            out.push(ComponentResponse {
                statistic: sa.statistic.clone(),
                component: ca.name.clone(),
                x_name: sa.x_name.clone(),
                x: ca.x.clone(),
                reference_ratio,
                candidate_ratio,
                error,
                max_abs_error,
            });
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
        let verdict = match r.max_abs_error {
            Some(e) if e <= RESPONSE_TOLERANCE => "within",
            Some(_) => "outside",
            None => "undefined",
        };
        let _ = writeln!(
            md,
            "{} {}: largest |error| {} ({verdict} {:.0}%)\n",
            r.statistic,
            r.component,
            fmt(r.max_abs_error, true),
            100.0 * RESPONSE_TOLERANCE
        );
        let _ = writeln!(
            md,
            "| {} | simulator ratio | emulator ratio | error |",
            r.x_name
        );
        md.push_str("|---|---|---|---|\n");
        for i in 0..r.x.len() {
            let _ = writeln!(
                md,
                "| {:.4} | {} | {} | {} |",
                r.x[i],
                fmt(r.reference_ratio[i], false),
                fmt(r.candidate_ratio[i], false),
                fmt(r.error[i], true)
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
        let md = response_markdown("A → B", &r);
        assert!(md.contains("+10.0%") && md.contains("within 20%"), "{md}");

        // Different bins (quantile thresholds) are not comparable; zero means are undefined.
        let c = report("s", vec![1.5, 2.0], vec![2.0, 8.0], vec![2.0, 8.0]);
        assert!(response(&a, &c).is_empty());
        let z = report("s", vec![1.0, 2.0], vec![0.0, 4.0], vec![1.0, 5.0]);
        assert_eq!(response(&z, &b)[0].error[0], None);
    }
}
