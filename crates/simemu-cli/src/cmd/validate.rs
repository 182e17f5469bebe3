//! `simemu validate` and `simemu compare`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use simemu_core::Registry;
use simemu_pipeline::CompareRequest;
use simemu_validate::report::leaderboard_terminal;
use simemu_validate::vector::VectorTest;
use simemu_validate::StatRequest;

use super::usage;
use crate::ui::{self, Terminal};
use crate::StatOptionArgs;

#[derive(Args)]
pub struct StatSelection {
    /// Statistics to compare, comma-separated (default: pixel-pdf,power-spectrum,minkowski,peaks);
    /// `fpd`, `kpd` and `covariance` add those tests on the vectors of the others;
    /// `c2st` a classifier test on the samples (and their statistic vectors),
    /// `c2st-stats` one on the statistic vectors alone.
    #[arg(long, value_delimiter = ',')]
    pub stats: Vec<String>,
    /// Statistics and their options from a file: `[[statistic]] name = "..." key = value`.
    #[arg(long, conflicts_with = "stats")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub options: StatOptionArgs,
}

#[derive(Args)]
pub struct ValidateArgs {
    /// Held-out simulator samples.
    #[arg(long)]
    pub reference: PathBuf,
    /// The emulator's samples.
    #[arg(long)]
    pub candidate: PathBuf,
    #[command(flatten)]
    pub selection: StatSelection,
    /// Report directory.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct CompareArgs {
    /// Held-out simulator samples.
    #[arg(long)]
    pub reference: PathBuf,
    /// Candidate sample sets.
    #[arg(required = true)]
    pub candidates: Vec<PathBuf>,
    #[command(flatten)]
    pub selection: StatSelection,
    /// Leaderboard directory (one sub-report per candidate).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsFile {
    statistic: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// The statistics and the tests (`fpd`, `kpd`, `covariance`, `c2st`, `c2st-stats`) that
/// `--stats` names; the tests need statistics to test.
fn selection(reg: &Registry, s: &StatSelection) -> Result<(Vec<StatRequest>, Vec<VectorTest>)> {
    let tests: Vec<VectorTest> = s
        .stats
        .iter()
        .filter_map(|n| VectorTest::named(n))
        .collect();
    let statistics = StatSelection {
        stats: s
            .stats
            .iter()
            .filter(|n| VectorTest::named(n).is_none())
            .cloned()
            .collect(),
        config: s.config.clone(),
        options: s.options.clone(),
    };
    if !tests.is_empty() && statistics.stats.is_empty() && statistics.config.is_none() {
        return Err(usage(format!(
            "--stats names only vector tests ({}); name the statistics whose vectors they test",
            s.stats.join(",")
        )));
    }
    Ok((stat_requests(reg, &statistics)?, tests))
}

pub fn stat_requests(reg: &Registry, s: &StatSelection) -> Result<Vec<StatRequest>> {
    if let Some(path) = &s.config {
        let v = super::read_config(path)?;
        let f: StatsFile =
            serde_json::from_value(v).map_err(|e| usage(format!("{}: {e}", path.display())))?;
        return simemu_pipeline::statistic_requests(reg, &f.statistic, "statistic")
            .with_context(|| path.display().to_string());
    }
    let names: Vec<String> = if s.stats.is_empty() {
        simemu_validate::default_stats()
            .into_iter()
            .map(|r| r.name)
            .collect()
    } else {
        s.stats.clone()
    };
    super::stat::requests(reg, &names, &s.options)
}

fn print_summary(report: &simemu_validate::Report) {
    if ui::quiet() {
        return;
    }
    crate::output::outln!(
        "{:<16} {:>6} {:>10} {:>8} {:>10} {:>14}",
        "statistic",
        "bins",
        "pass",
        "verdict",
        "worst p",
        "max|rel diff|"
    );
    for s in &report.summary {
        crate::output::outln!(
            "{:<16} {:>6} {:>9.1}% {:>8} {:>10.2e} {:>14}",
            s.statistic,
            s.bins,
            100.0 * s.pass_fraction,
            s.verdict,
            s.worst_p,
            s.max_abs_rel_diff
                .map(|v| format!("{:.1}%", 100.0 * v))
                .unwrap_or_else(|| "—".into())
        );
        if s.components.len() > 1 {
            for c in &s.components {
                crate::output::outln!(
                    "  {:<14} {:>6} {:>9.1}% {:>8} {:>10.2e}",
                    c.name,
                    c.bins,
                    100.0 * c.pass_fraction,
                    c.verdict,
                    c.worst_p
                );
            }
        }
    }
    crate::output::outln!(
        "pooled KS on '{}': D = {:.3e}, p = {:.3e}",
        report.pooled_ks.field,
        report.pooled_ks.ks_d,
        report.pooled_ks.ks_p
    );
    for t in &report.vector_tests {
        crate::output::outln!(
            "{:<16} {:>6} {:>22} floor {:>22} {}",
            t.test.name(),
            t.features,
            t.value_text(),
            t.floor_text(),
            if t.flagged { "FLAGGED" } else { "ok" }
        );
    }
    for w in &report.warnings {
        crate::output::outln!("warning: {w}");
    }
}

pub fn validate(reg: &Registry, a: &ValidateArgs) -> Result<()> {
    let (requests, tests) = selection(reg, &a.selection)?;
    let request = CompareRequest {
        reference: &a.reference,
        candidates: std::slice::from_ref(&a.candidate),
        statistics: &requests,
        vector_tests: &tests,
        field: a.selection.options.field.as_deref(),
        out: &a.out,
        force: a.force,
    };
    let report = simemu_pipeline::validate(reg, &request, &Terminal::new())?;
    print_summary(&report);
    crate::output::outln!("report: {}", a.out.join("report.md").display());
    Ok(())
}

pub fn compare(reg: &Registry, a: &CompareArgs) -> Result<()> {
    let (requests, tests) = selection(reg, &a.selection)?;
    let request = CompareRequest {
        reference: &a.reference,
        candidates: &a.candidates,
        statistics: &requests,
        vector_tests: &tests,
        field: a.selection.options.field.as_deref(),
        out: &a.out,
        force: a.force,
    };
    let lb = simemu_pipeline::compare(reg, &request, &Terminal::new())?;
    if !ui::quiet() {
        crate::output::out!("{}", leaderboard_terminal(&lb));
    }
    crate::output::outln!("leaderboard: {}", a.out.join("leaderboard.md").display());
    Ok(())
}
