//! Validation runs and the reports they write: `report.json` (machine-readable),
//! `report.md` (tables and embedded plots) and PNG plots; leaderboards for
//! comparative benchmarks.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use simemu_core::fsutil::{write_atomic, write_json_atomic, TempDir};
use simemu_core::{Dataset, Error, Registry, Result, Statistic};

use crate::compare::{
    compare_measurements, pooled_ks, PooledKs, StatisticComparison, LOW_POWER_SAMPLES,
};
use crate::measure::{build_statistic, measure_dataset, Measurement, PooledValues};

/// One statistic to compute, by plugin name, with its options.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatRequest {
    pub name: String,
    #[serde(default)]
    pub options: serde_json::Value,
}

/// The default set: the seed's four statistics with default bins.
pub fn default_stats() -> Vec<StatRequest> {
    ["pixel-pdf", "power-spectrum", "minkowski", "peaks"]
        .iter()
        .map(|n| StatRequest {
            name: n.to_string(),
            options: serde_json::Value::Null,
        })
        .collect()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetInfo {
    pub path: String,
    pub count: usize,
    #[serde(default)]
    pub source: serde_json::Map<String, serde_json::Value>,
}

impl SetInfo {
    pub fn of(ds: &Dataset) -> Self {
        SetInfo {
            path: ds.path().display().to_string(),
            count: ds.len(),
            source: ds.manifest().source.clone(),
        }
    }

    /// The same set, its path relative to `dir`: how report and leaderboard
    /// files name their datasets, so that they resolve from the file's own
    /// directory (see docs/formats.md).
    pub fn relative_to(mut self, dir: &Path) -> Self {
        self.path = simemu_core::fsutil::relative_path(dir, Path::new(&self.path))
            .display()
            .to_string();
        self
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatSummary {
    pub statistic: String,
    pub pass_fraction: f64,
    pub verdict: String,
    pub bins: usize,
    pub worst_p: f64,
    pub max_abs_rel_diff: Option<f64>,
    pub mean_abs_rel_diff: Option<f64>,
    #[serde(default)]
    pub mean_match: crate::compare::MeanMatch,
    /// Each component's pass fraction and verdict (the statistic passes when
    /// each passes). Empty in reports written before simemu judged components.
    #[serde(default)]
    pub components: Vec<ComponentSummary>,
}

impl StatSummary {
    pub fn of(s: &StatisticComparison) -> Self {
        StatSummary {
            statistic: s.statistic.clone(),
            pass_fraction: s.pass_fraction,
            verdict: s.verdict.clone(),
            bins: s.table.bins,
            worst_p: s.worst_p,
            max_abs_rel_diff: s.max_abs_rel_diff,
            mean_abs_rel_diff: s.mean_abs_rel_diff,
            mean_match: s.mean_match,
            components: s
                .components
                .iter()
                .map(|c| {
                    let pass_fraction = c.pass_fraction();
                    ComponentSummary {
                        name: c.name.clone(),
                        bins: c.ks_p.len(),
                        pass_fraction,
                        verdict: crate::compare::verdict_of(pass_fraction),
                        worst_p: c.worst_p(),
                    }
                })
                .collect(),
        }
    }

    /// The pass fraction of its weakest component (of the whole statistic for
    /// reports that have no component summaries).
    pub fn lowest_pass_fraction(&self) -> f64 {
        self.components
            .iter()
            .map(|c| c.pass_fraction)
            .reduce(f64::min)
            .unwrap_or(self.pass_fraction)
    }
}

/// One component of a statistic (one of several functions it measures over the
/// same bins), judged alone.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComponentSummary {
    pub name: String,
    pub bins: usize,
    pub pass_fraction: f64,
    pub verdict: String,
    pub worst_p: f64,
}

/// Everything a validation found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
    pub simemu_version: String,
    pub reference: SetInfo,
    pub candidate: SetInfo,
    pub field: String,
    pub criteria: serde_json::Value,
    pub summary: Vec<StatSummary>,
    pub statistics: Vec<StatisticComparison>,
    pub pooled_ks: PooledKs,
    /// The tests on whole statistic vectors asked for (`fpd`, `kpd`,
    /// `covariance`), each beside its reference-split floor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vector_tests: Vec<crate::vector::VectorTestResult>,
    pub warnings: Vec<String>,
}

/// The statistics of a validation, built once against the reference set.
pub struct Harness<'a> {
    pub reference: &'a Dataset,
    pub field: usize,
    stats: Vec<Box<dyn Statistic>>,
    reference_measurements: Vec<Measurement>,
    reference_pooled: PooledValues<'a>,
    vector_tests: Vec<crate::vector::VectorTest>,
    floors: crate::vector::Floors,
    /// The reference's samples as the classifier tests read them, loaded on
    /// first use and kept for the next candidate.
    reference_samples: std::sync::OnceLock<std::result::Result<crate::c2st::Inputs, String>>,
}

impl<'a> Harness<'a> {
    /// Builds the statistics and measures them on the reference set.
    pub fn new(
        registry: &Registry,
        reference: &'a Dataset,
        field: Option<&str>,
        requests: &[StatRequest],
        progress: &(dyn Fn(&str, usize, usize) + Sync),
    ) -> Result<Self> {
        if reference.len() < 2 {
            return Err(Error::Data(format!(
                "{}: the reference set holds {} sample; comparisons need at least 2 per set",
                reference.path().display(),
                reference.len()
            )));
        }
        if requests.is_empty() {
            return Err(Error::Option("no statistics requested".into()));
        }
        let field = reference.field_index(field)?;
        let stats = requests
            .iter()
            .map(|r| build_statistic(registry, &r.name, &r.options, reference, field, None))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&dyn Statistic> = stats.iter().map(|s| s.as_ref()).collect();
        let total = reference.len();
        let reference_measurements = measure_dataset(&refs, reference, 0..total, &|d| {
            progress("reference", d, total)
        })?;
        Ok(Harness {
            reference,
            field,
            stats,
            reference_measurements,
            reference_pooled: PooledValues::new(reference, field),
            vector_tests: Vec::new(),
            floors: Default::default(),
            reference_samples: Default::default(),
        })
    }

    /// Also runs these tests on whole statistic vectors in every validation.
    pub fn with_vector_tests(mut self, tests: &[crate::vector::VectorTest]) -> Self {
        self.vector_tests = tests.to_vec();
        self
    }

    pub fn reference_measurements(&self) -> &[Measurement] {
        &self.reference_measurements
    }

    /// Measures the candidate and compares it with the reference.
    pub fn validate(
        &self,
        candidate: &Dataset,
        progress: &(dyn Fn(&str, usize, usize) + Sync),
    ) -> Result<(Report, Vec<Measurement>)> {
        self.reference.check_compatible(candidate)?;
        if candidate.len() < 2 {
            return Err(Error::Data(format!(
                "{}: the candidate set holds {} sample; comparisons need at least 2 per set",
                candidate.path().display(),
                candidate.len()
            )));
        }
        let refs: Vec<&dyn Statistic> = self.stats.iter().map(|s| s.as_ref()).collect();
        let total = candidate.len();
        let cand = measure_dataset(&refs, candidate, 0..total, &|d| {
            progress("candidate", d, total)
        })?;
        let statistics: Vec<StatisticComparison> = self
            .reference_measurements
            .iter()
            .zip(&cand)
            .map(|(r, c)| compare_measurements(r, c))
            .collect();
        let cand_field = self.field.min(candidate.fields().len() - 1);
        let cand_pooled = PooledValues::new(candidate, cand_field);
        let field_name = self.reference.fields()[self.field].name.clone();
        let pooled = pooled_ks(
            &field_name,
            self.reference_pooled.sorted()?,
            cand_pooled.sorted()?,
        );
        let mut warnings = Vec::new();
        let n = self.reference.len().min(candidate.len());
        if n < LOW_POWER_SAMPLES {
            warnings.push(format!(
                "only {n} samples in the smaller set: the per-bin KS tests have little power, so passing bins say little"
            ));
        }
        let summary = statistics.iter().map(StatSummary::of).collect();
        let samples = || {
            let reference = self
                .reference_samples
                .get_or_init(|| {
                    crate::c2st::Inputs::of_dataset(self.reference, self.field)
                        .map_err(|e| e.to_string())
                })
                .as_ref()
                .map_err(|e| Error::Data(e.clone()))?;
            Ok((
                reference.clone(),
                crate::c2st::Inputs::of_dataset(candidate, cand_field)?,
            ))
        };
        let vector_tests = crate::vector::run(
            &self.vector_tests,
            &self.reference_measurements,
            &cand,
            Some(&samples),
            &self.floors,
        )?;
        Ok((
            Report {
                format: "simemu-validation-report".into(),
                simemu_version: simemu_core::VERSION.into(),
                reference: SetInfo::of(self.reference),
                candidate: SetInfo::of(candidate),
                field: field_name,
                criteria: serde_json::json!({
                    "bin_passes_when_p_above": crate::compare::BIN_PASS_P,
                    "statistic_passes_when_pass_fraction_at_least": crate::compare::STAT_PASS_FRACTION,
                    "pass_fraction_applies_to": "each component of a statistic alone",
                    "test": "two-sample Kolmogorov-Smirnov per bin (scipy ks_2samp, two-sided, method=auto)",
                    "means_agree_when_abs_rel_diff_at_most": format!(
                        "max({}, {}·SE), in bins with at least {} independent measurements where the statistic publishes bin_counts",
                        crate::compare::MEAN_TOLERANCE,
                        crate::compare::MEAN_SE_MULTIPLE,
                        crate::compare::MIN_BIN_COUNT
                    ),
                }),
                summary,
                statistics,
                pooled_ks: pooled,
                vector_tests,
                warnings,
            },
            cand,
        ))
    }
}

fn fmt_opt(v: Option<f64>, pct: bool) -> String {
    match v {
        Some(x) if pct => format!("{:.1}%", 100.0 * x),
        Some(x) => format!("{x:.3e}"),
        None => "—".into(),
    }
}

/// The Markdown report (plots are referenced by relative path).
pub fn markdown(report: &Report, plots: &[(String, String)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Validation report\n");
    let _ = writeln!(
        s,
        "Reference: `{}` ({} samples). Candidate: `{}` ({} samples). Field `{}`. simemu {}.\n",
        report.reference.path,
        report.reference.count,
        report.candidate.path,
        report.candidate.count,
        report.field,
        report.simemu_version
    );
    let _ = writeln!(
        s,
        "A bin passes when the two-sample KS p-value exceeds {}; a statistic passes when at least {:.0}% of its bins pass, in each of its components alone (a perfect emulator passes 95–99% of bins on average).\n",
        crate::compare::BIN_PASS_P,
        100.0 * crate::compare::STAT_PASS_FRACTION
    );
    for w in &report.warnings {
        let _ = writeln!(s, "> **Warning:** {w}\n");
    }
    let _ = writeln!(s, "## Summary\n");
    let _ = writeln!(s, "| statistic | bins | pass fraction | verdict | worst p | max \\|rel diff\\| | mean \\|rel diff\\| | means agree |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for x in &report.summary {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1}% | **{}** | {:.2e} | {} | {} | {}/{} |",
            x.statistic,
            x.bins,
            100.0 * x.pass_fraction,
            x.verdict,
            x.worst_p,
            fmt_opt(x.max_abs_rel_diff, true),
            fmt_opt(x.mean_abs_rel_diff, true),
            x.mean_match.within,
            x.mean_match.bins
        );
        if x.components.len() > 1 {
            for c in &x.components {
                let _ = writeln!(
                    s,
                    "| ↳ {} | {} | {:.1}% | {} | {:.2e} | | | |",
                    c.name,
                    c.bins,
                    100.0 * c.pass_fraction,
                    c.verdict,
                    c.worst_p
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nA bin passes when its KS p-value exceeds {}; a statistic passes when at least {:.0}% of the bins of each of its components (↳) pass. \
         Means agree in a bin when |rel diff| ≤ max({:.0}%, {}·SE) (bins with fewer than {} independent measurements, \
         where the statistic counts them, are not checked).",
        crate::compare::BIN_PASS_P,
        100.0 * crate::compare::STAT_PASS_FRACTION,
        100.0 * crate::compare::MEAN_TOLERANCE,
        crate::compare::MEAN_SE_MULTIPLE,
        crate::compare::MIN_BIN_COUNT
    );
    let _ = writeln!(
        s,
        "\nPooled KS on all values of `{}`: D = {:.4e}, p = {:.3e} ({} vs {} values).\n",
        report.pooled_ks.field,
        report.pooled_ks.ks_d,
        report.pooled_ks.ks_p,
        report.pooled_ks.n_reference,
        report.pooled_ks.n_candidate
    );
    if !report.vector_tests.is_empty() {
        let _ = writeln!(s, "## Tests on whole samples and statistic vectors\n");
        let _ = writeln!(
            s,
            "Each beside its floor, the same metric between the reference's even and odd samples (carried to the sizes compared for the distances; docs/validation.md gives the rules).\n"
        );
        let _ = writeln!(s, "| test | features | value | floor | flagged | worst |");
        let _ = writeln!(s, "|---|---|---|---|---|---|");
        for t in &report.vector_tests {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                t.test.name(),
                t.features,
                t.value_text(),
                t.floor_text(),
                if t.flagged { "**yes**" } else { "no" },
                t.worst.as_deref().unwrap_or("—")
            );
        }
        let _ = writeln!(s);
        let classifiers: Vec<_> = report
            .vector_tests
            .iter()
            .filter_map(|t| t.classifier.as_ref().map(|c| (t.test.name(), c)))
            .collect();
        if !classifiers.is_empty() {
            let _ = writeln!(
                s,
                "Classifier tests: held-out scores over five folds (calibrated by isotonic regression), p from label permutations within folds; floor: reference even vs odd samples.\n"
            );
            let _ = writeln!(
                s,
                "| test | set | AUC | accuracy | JSD (bits, CaloChallenge's) | p | epochs kept | classifier |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
            for (name, c) in classifiers {
                for (set, r) in [("candidate", &c.candidate), ("floor", &c.floor)] {
                    let _ = writeln!(
                        s,
                        "| {name} | {set} | {:.3} | {:.3} | {:.3} | {:.1e} | {:?} | {} |",
                        r.auc, r.accuracy, r.jsd_bits, r.p_value, r.epochs, r.classifier
                    );
                }
            }
            let _ = writeln!(s);
        }
    }
    let _ = writeln!(s, "## p-value tables (bins per p-value range)\n");
    let _ = writeln!(
        s,
        "| statistic | p > 0.999 | 0.99–0.999 | 0.95–0.99 | 0.5–0.95 | 0.05–0.5 | p ≤ 0.05 |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for st in &report.statistics {
        let t = &st.table;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            st.statistic,
            t.p_above_0_999,
            t.p_above_0_99,
            t.p_above_0_95,
            t.p_above_0_5,
            t.p_above_0_05,
            t.p_below_0_05
        );
    }
    if !plots.is_empty() {
        let _ = writeln!(s, "\n## Plots\n");
        for (title, file) in plots {
            let _ = writeln!(s, "### {title}\n\n![{title}]({file})\n");
        }
    }
    let _ = writeln!(s, "## Per-bin details\n");
    for st in &report.statistics {
        for c in &st.components {
            let _ = writeln!(s, "### {} — {}\n", st.statistic, c.name);
            // Separation power, where the statistic names histograms to score.
            let scored = !c.separation_power.is_empty();
            let (sep_head, sep_rule) = if scored {
                (" sep. power |", "---|")
            } else {
                ("", "")
            };
            let _ = writeln!(s, "| {} | ref mean | ref std | cand mean | cand std | rel diff | ± SE | KS D | KS p |{sep_head}", st.x_name);
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|{sep_rule}");
            for b in 0..c.x.len() {
                let sep = if scored {
                    format!(" {} |", fmt_opt(c.separation_power[b], false))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "| {:.4e} | {:.4e} | {:.3e} | {:.4e} | {:.3e} | {} | {} | {:.4} | {:.3e} |{sep}",
                    c.x[b],
                    c.ref_mean[b],
                    c.ref_std[b],
                    c.cand_mean[b],
                    c.cand_std[b],
                    fmt_opt(c.rel_diff[b], true),
                    fmt_opt(c.rel_diff_se[b], true),
                    c.ks_d[b],
                    c.ks_p[b]
                );
            }
            let _ = writeln!(s);
        }
    }
    s
}

/// Writes a report directory atomically: `report.json`, `report.md`, plots.
pub fn write_report_dir(
    out: &Path,
    report: &Report,
    reference: (&Dataset, &[Measurement]),
    candidate: (&Dataset, &[Measurement]),
    overwrite: bool,
) -> Result<PathBuf> {
    let dir = TempDir::new(out)?;
    let mut report = report.clone();
    report.reference = report.reference.relative_to(out);
    report.candidate = report.candidate.relative_to(out);
    let plots = crate::plots::draw_all(dir.path(), &report, reference, candidate)?;
    write_json_atomic(&dir.path().join("report.json"), &report)?;
    write_atomic(
        &dir.path().join("report.md"),
        markdown(&report, &plots).as_bytes(),
    )?;
    dir.persist(overwrite)?;
    Ok(out.join("report.md"))
}

/// One row of a leaderboard.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeaderboardRow {
    pub candidate: String,
    pub path: String,
    pub statistics: Vec<StatSummary>,
    /// Bins passing over all statistics.
    pub overall_pass_fraction: f64,
    pub seconds_per_sample: Option<f64>,
    pub report: String,
    /// The tests on whole samples and statistic vectors, as the report has them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<TestSummary>,
}

/// A test's value, floor and flag, as leaderboards print them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestSummary {
    pub test: String,
    pub value: String,
    pub floor: String,
    pub flagged: bool,
}

impl LeaderboardRow {
    /// The pass fraction of the candidate's weakest statistic — of its weakest
    /// component, for statistics of several: "every statistic passes" holds when
    /// this reaches the pass threshold, so it is what ranks candidates that are
    /// to pass everywhere.
    pub fn lowest_pass_fraction(&self) -> f64 {
        self.statistics
            .iter()
            .map(StatSummary::lowest_pass_fraction)
            .reduce(f64::min)
            .unwrap_or(0.0)
    }

    /// How many statistics have every checked bin mean agreeing.
    pub fn statistics_with_agreeing_means(&self) -> usize {
        self.statistics
            .iter()
            .filter(|s| s.mean_match.within == s.mean_match.bins)
            .count()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Leaderboard {
    pub format: String,
    pub simemu_version: String,
    pub reference: SetInfo,
    pub rows: Vec<LeaderboardRow>,
}

/// A candidate's display name: its producer's name from the manifest, else its path.
pub fn candidate_name(ds: &Dataset) -> String {
    ds.manifest()
        .source
        .get("label")
        .or_else(|| ds.manifest().source.get("name"))
        .and_then(|v| v.as_str())
        .map(|s| s.to_string())
        .unwrap_or_else(|| ds.path().display().to_string())
}

pub fn leaderboard_row(report: &Report, candidate: &Dataset, report_path: &str) -> LeaderboardRow {
    let total: usize = report.statistics.iter().map(|s| s.table.bins).sum();
    let passed: f64 = report
        .statistics
        .iter()
        .map(|s| s.pass_fraction * s.table.bins as f64)
        .sum();
    LeaderboardRow {
        candidate: candidate_name(candidate),
        path: candidate.path().display().to_string(),
        statistics: report.summary.clone(),
        overall_pass_fraction: if total > 0 {
            passed / total as f64
        } else {
            0.0
        },
        seconds_per_sample: candidate
            .manifest()
            .source
            .get("seconds_per_sample")
            .and_then(|v| v.as_f64()),
        report: report_path.into(),
        tests: report
            .vector_tests
            .iter()
            .map(|t| TestSummary {
                test: t.test.name().into(),
                value: t.value_text(),
                floor: t.floor_text(),
                flagged: t.flagged,
            })
            .collect(),
    }
}

/// The leaderboard's second table: each candidate's tests on whole samples
/// and statistic vectors, value and floor, ✗ where flagged. Empty without tests.
fn tests_markdown(lb: &Leaderboard) -> String {
    let mut s = String::new();
    let Some(first) = lb.rows.iter().find(|r| !r.tests.is_empty()) else {
        return s;
    };
    let _ = writeln!(
        s,
        "\n## Tests on whole samples and statistic vectors\n\nValue / floor (the same test between the reference's halves); ✗ where the test flags the candidate.\n"
    );
    let _ = write!(s, "| candidate |");
    for t in &first.tests {
        let _ = write!(s, " {} |", t.test);
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "|---|{}", "---|".repeat(first.tests.len()));
    for r in &lb.rows {
        let _ = write!(s, "| {} |", r.candidate);
        for t in &r.tests {
            let mark = if t.flagged { " ✗" } else { "" };
            let _ = write!(s, " {} / {}{mark} |", t.value, t.floor);
        }
        let _ = writeln!(s);
    }
    s
}

pub fn leaderboard_markdown(lb: &Leaderboard) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Leaderboard\n\nReference: `{}` ({} samples).\n",
        lb.reference.path, lb.reference.count
    );
    let stats: Vec<String> = lb
        .rows
        .first()
        .map(|r| r.statistics.iter().map(|x| x.statistic.clone()).collect())
        .unwrap_or_default();
    let _ = write!(s, "| candidate |");
    for st in &stats {
        let _ = write!(s, " {st} pass | {st} worst p | {st} mean \\|rel\\| |");
    }
    let _ = writeln!(s, " all bins pass | means agree | s/sample | report |");
    let _ = write!(s, "|---|");
    for _ in &stats {
        let _ = write!(s, "---|---|---|");
    }
    let _ = writeln!(s, "---|---|---|---|");
    for r in &lb.rows {
        let _ = write!(s, "| {} |", r.candidate);
        for x in &r.statistics {
            let components = if x.components.len() > 1 {
                let each: Vec<String> = x
                    .components
                    .iter()
                    .map(|c| format!("{} {:.0}%", c.name, 100.0 * c.pass_fraction))
                    .collect();
                format!(" ({})", each.join(", "))
            } else {
                String::new()
            };
            let _ = write!(
                s,
                " {:.0}% {}{components} | {:.1e} | {} |",
                100.0 * x.pass_fraction,
                if x.verdict == "pass" { "✓" } else { "✗" },
                x.worst_p,
                fmt_opt(x.mean_abs_rel_diff, true)
            );
        }
        let (within, bins) = r.statistics.iter().fold((0, 0), |(w, b), x| {
            (w + x.mean_match.within, b + x.mean_match.bins)
        });
        let _ = writeln!(
            s,
            " {:.0}% | {within}/{bins} | {} | [report]({}) |",
            100.0 * r.overall_pass_fraction,
            r.seconds_per_sample
                .map(|v| format!("{v:.2e}"))
                .unwrap_or_else(|| "—".into()),
            r.report
        );
    }
    s + &tests_markdown(lb)
}

/// The widest line [`leaderboard_terminal`] aims for.
pub const TERMINAL_WIDTH: usize = 100;

/// A compact leaderboard for a terminal: per candidate, each statistic's pass
/// fraction with its verdict (a statistic of several components: one column
/// per component, each judged alone), the bin means that agree, and the time
/// per sample. The Markdown table ([`leaderboard_markdown`]) has the rest.
pub fn leaderboard_terminal(lb: &Leaderboard) -> String {
    let Some(first) = lb.rows.first() else {
        return String::from("(no candidates)\n");
    };
    // The columns: (label, statistic index, component index).
    let mut columns: Vec<(String, usize, Option<usize>)> = Vec::new();
    for (i, st) in first.statistics.iter().enumerate() {
        if st.components.len() > 1 {
            for (j, c) in st.components.iter().enumerate() {
                columns.push((c.name.clone(), i, Some(j)));
            }
        } else {
            columns.push((st.statistic.clone(), i, None));
        }
    }
    let cell = |row: &LeaderboardRow, (i, j): (usize, Option<usize>)| -> String {
        let Some(st) = row.statistics.get(i) else {
            return "—".into();
        };
        let (fraction, verdict) = match j.and_then(|j| st.components.get(j)) {
            Some(c) => (c.pass_fraction, c.verdict.as_str()),
            None => (st.pass_fraction, st.verdict.as_str()),
        };
        let mark = if verdict == "pass" { "✓" } else { "✗" };
        format!("{:.0}% {mark}", 100.0 * fraction)
    };
    let name_width = lb
        .rows
        .iter()
        .map(|r| r.candidate.chars().count())
        .max()
        .unwrap_or(0)
        .clamp("candidate".len(), 20);
    let widths: Vec<usize> = columns
        .iter()
        .map(|(label, ..)| label.chars().count().max("100% ✓".chars().count()))
        .collect();
    let mut s = String::new();
    let mut line = format!("{:<name_width$}", "candidate");
    for ((label, ..), w) in columns.iter().zip(&widths) {
        let _ = write!(line, "  {label:<w$}");
    }
    let _ = writeln!(s, "{line}  {:>9}  {:>8}", "means", "s/sample");
    for r in &lb.rows {
        let name: String = r.candidate.chars().take(name_width).collect();
        let mut line = format!("{name:<name_width$}");
        for ((_, i, j), w) in columns.iter().zip(&widths) {
            let _ = write!(line, "  {:<w$}", cell(r, (*i, *j)));
        }
        let (within, bins) = r.statistics.iter().fold((0, 0), |(w, b), x| {
            (w + x.mean_match.within, b + x.mean_match.bins)
        });
        let time = r
            .seconds_per_sample
            .map(|v| format!("{v:.1e}"))
            .unwrap_or_else(|| "—".into());
        let _ = writeln!(s, "{line}  {:>9}  {time:>8}", format!("{within}/{bins}"));
    }
    // The tests: a column each would overflow the terminal's width, so each
    // candidate gets one line of verdicts.
    if lb.rows.iter().any(|r| !r.tests.is_empty()) {
        let _ = writeln!(
            s,
            "\ntests (ok, or FLAGGED beyond the reference-split floor):"
        );
        for r in &lb.rows {
            let name: String = r.candidate.chars().take(name_width).collect();
            let verdicts: Vec<String> = r
                .tests
                .iter()
                .map(|t| {
                    if t.flagged {
                        format!("{} FLAGGED ({})", t.test, t.value)
                    } else {
                        format!("{} ok", t.test)
                    }
                })
                .collect();
            let _ = writeln!(s, "{name:<name_width$}  {}", verdicts.join(", "));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component as `compare_measurements` leaves it, with only its p-values set.
    fn component(name: &str, ks_p: Vec<f64>) -> crate::compare::ComponentComparison {
        let n = ks_p.len();
        crate::compare::ComponentComparison {
            name: name.into(),
            x: vec![0.0; n],
            ref_mean: vec![1.0; n],
            ref_std: vec![0.0; n],
            cand_mean: vec![1.0; n],
            cand_std: vec![0.0; n],
            rel_diff: vec![Some(0.0); n],
            rel_diff_se: vec![Some(0.0); n],
            ks_d: vec![0.0; n],
            ks_p,
            separation_power: vec![],
        }
    }

    fn summary(
        statistic: &str,
        components: Vec<crate::compare::ComponentComparison>,
    ) -> StatSummary {
        let all: Vec<f64> = components.iter().flat_map(|c| c.ks_p.clone()).collect();
        StatSummary::of(&StatisticComparison {
            statistic: statistic.into(),
            options: serde_json::Value::Null,
            x_name: "x".into(),
            table: crate::compare::PTable::from_pvalues(&all),
            pass_fraction: all.iter().filter(|&&p| p > 0.05).count() as f64 / all.len() as f64,
            verdict: "fail".into(),
            max_abs_rel_diff: None,
            mean_abs_rel_diff: None,
            worst_p: all.iter().cloned().fold(1.0, f64::min),
            mean_match: Default::default(),
            components,
        })
    }

    /// The weakest component ranks a candidate, the leaderboard and the report
    /// show each component of a statistic that has several, and a summary read
    /// from a report written before components were judged falls back to the
    /// statistic's own fraction.
    #[test]
    fn components_are_summarised_ranked_and_shown() {
        let pass = |n: usize, failing: usize| -> Vec<f64> {
            (0..n)
                .map(|i| if i < failing { 0.01 } else { 0.5 })
                .collect()
        };
        let several = summary(
            "several",
            vec![
                component("a", pass(10, 0)),
                component("b", pass(10, 3)),
                component("c", pass(10, 1)),
            ],
        );
        assert_eq!(several.components.len(), 3);
        assert_eq!(several.components[1].pass_fraction, 0.7);
        assert_eq!(several.components[1].verdict, "fail");
        assert_eq!(several.components[1].worst_p, 0.01);
        assert_eq!(several.components[2].verdict, "pass");
        assert!((several.pass_fraction - 26.0 / 30.0).abs() < 1e-12);
        let power = summary("power", vec![component("power", pass(10, 1))]);
        let row = LeaderboardRow {
            candidate: "g".into(),
            path: "g".into(),
            statistics: vec![power.clone(), several],
            overall_pass_fraction: 0.0,
            seconds_per_sample: None,
            report: "r".into(),
            tests: Vec::new(),
        };
        assert_eq!(row.lowest_pass_fraction(), 0.7);
        let board = Leaderboard {
            format: "x".into(),
            simemu_version: "x".into(),
            reference: SetInfo {
                path: "ref".into(),
                count: 10,
                source: Default::default(),
            },
            rows: vec![row],
        };
        let md = leaderboard_markdown(&board);
        assert!(md.contains("(a 100%, b 70%, c 90%)"), "{md}");
        assert!(!md.contains("(power"), "{md}");

        let mut old = serde_json::to_value(&power).unwrap();
        old.as_object_mut().unwrap().remove("components");
        let old: StatSummary = serde_json::from_value(old).unwrap();
        assert_eq!(old.lowest_pass_fraction(), 0.9);
    }
}
