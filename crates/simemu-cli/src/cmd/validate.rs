//! `simemu validate` and `simemu compare`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use simemu_core::{Dataset, Registry};
use simemu_validate::report::{
    leaderboard_markdown, leaderboard_row, write_report_dir, Leaderboard, SetInfo,
};
use simemu_validate::{Harness, StatRequest};

use super::usage;
use crate::{ui, StatOptionArgs};

#[derive(Args)]
pub struct StatSelection {
    /// Statistics to compare, comma-separated (default: pixel-pdf,power-spectrum,minkowski,peaks).
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

pub fn stat_requests(reg: &Registry, s: &StatSelection) -> Result<Vec<StatRequest>> {
    if let Some(path) = &s.config {
        let v = super::read_config(path)?;
        let f: StatsFile =
            serde_json::from_value(v).map_err(|e| usage(format!("{}: {e}", path.display())))?;
        return f
            .statistic
            .into_iter()
            .map(|mut m| {
                let name = m
                    .remove("name")
                    .and_then(|n| n.as_str().map(|s| s.to_string()))
                    .ok_or_else(|| {
                        usage(format!(
                            "{}: every [[statistic]] needs a name",
                            path.display()
                        ))
                    })?;
                reg.statistic(&name)?;
                Ok(StatRequest {
                    name,
                    options: serde_json::Value::Object(m),
                })
            })
            .collect();
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

fn progress() -> impl Fn(&str, usize, usize) + Sync {
    let bars =
        std::sync::Mutex::new(std::collections::HashMap::<String, indicatif::ProgressBar>::new());
    move |what: &str, done: usize, total: usize| {
        let mut b = bars.lock().unwrap();
        let pb = b
            .entry(what.to_string())
            .or_insert_with(|| ui::bar(total as u64, what));
        pb.set_position(done as u64);
        if done >= total {
            pb.finish_and_clear();
        }
    }
}

fn print_summary(report: &simemu_validate::Report) {
    if ui::quiet() {
        return;
    }
    println!(
        "{:<16} {:>6} {:>10} {:>8} {:>10} {:>14}",
        "statistic", "bins", "pass", "verdict", "worst p", "max|rel diff|"
    );
    for s in &report.summary {
        println!(
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
                println!(
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
    println!(
        "pooled KS on '{}': D = {:.3e}, p = {:.3e}",
        report.pooled_ks.field, report.pooled_ks.ks_d, report.pooled_ks.ks_p
    );
    for w in &report.warnings {
        println!("warning: {w}");
    }
}

/// Opens the reference and the candidates, checks they are comparable and that the
/// output may be written, and builds the harness (measuring the reference).
fn open_sets<'r>(
    reg: &Registry,
    reference: &'r Dataset,
    candidates: &[PathBuf],
    (requests, field): (&[StatRequest], Option<&str>),
    out: &std::path::Path,
    force: bool,
    p: &(dyn Fn(&str, usize, usize) + Sync),
) -> Result<(Vec<Dataset>, Harness<'r>)> {
    let sets = candidates
        .iter()
        .map(|c| Dataset::open(c).with_context(|| format!("opening candidate {}", c.display())))
        .collect::<Result<Vec<_>>>()?;
    for c in &sets {
        reference.check_compatible(c)?;
    }
    if out.exists() && !force {
        return Err(usage(format!(
            "{} already exists (use --force to replace it)",
            out.display()
        )));
    }
    let harness = Harness::new(reg, reference, field, requests, p)?;
    Ok((sets, harness))
}

pub fn validate(reg: &Registry, a: &ValidateArgs) -> Result<()> {
    let reference = Dataset::open(&a.reference)?;
    let p = progress();
    let requests = stat_requests(reg, &a.selection)?;
    let (mut sets, harness) = open_sets(
        reg,
        &reference,
        std::slice::from_ref(&a.candidate),
        (&requests, a.selection.options.field.as_deref()),
        &a.out,
        a.force,
        &p,
    )?;
    let candidate = sets.remove(0);
    let (report, cand) = harness.validate(&candidate, &p)?;
    let md = write_report_dir(
        &a.out,
        &report,
        (&reference, harness.reference_measurements()),
        (&candidate, &cand),
        a.force,
    )?;
    print_summary(&report);
    println!("report: {}", md.display());
    Ok(())
}

pub fn compare(reg: &Registry, a: &CompareArgs) -> Result<()> {
    let requests = stat_requests(reg, &a.selection)?;
    let lb = compare_sets(
        reg,
        &a.reference,
        &a.candidates,
        (&requests, a.selection.options.field.as_deref()),
        &a.out,
        a.force,
    )?;
    if !ui::quiet() {
        println!("{}", leaderboard_markdown(&lb));
    }
    println!("leaderboard: {}", a.out.join("leaderboard.md").display());
    Ok(())
}

/// Validates each candidate against the reference and writes one report per
/// candidate plus `leaderboard.{json,md}` into `out` (atomically).
pub fn compare_sets(
    reg: &Registry,
    reference: &std::path::Path,
    candidates: &[PathBuf],
    selection: (&[StatRequest], Option<&str>),
    out: &std::path::Path,
    force: bool,
) -> Result<Leaderboard> {
    let reference = Dataset::open(reference)?;
    let p = progress();
    let (candidates, harness) = open_sets(reg, &reference, candidates, selection, out, force, &p)?;
    let dir = simemu_core::fsutil::TempDir::new(out)?;
    let mut rows = Vec::new();
    for (k, c) in candidates.iter().enumerate() {
        let (report, cand) = harness.validate(c, &p)?;
        let name = format!(
            "{:02}-{}",
            k,
            sanitize(&simemu_validate::report::candidate_name(c))
        );
        write_report_dir(
            &dir.path().join(&name),
            &report,
            (&reference, harness.reference_measurements()),
            (c, &cand),
            false,
        )?;
        rows.push(leaderboard_row(&report, c, &format!("{name}/report.md")));
    }
    let lb = Leaderboard {
        format: "simemu-leaderboard".into(),
        simemu_version: simemu_core::VERSION.into(),
        reference: SetInfo::of(&reference),
        rows,
    };
    simemu_core::fsutil::write_json_atomic(&dir.path().join("leaderboard.json"), &lb)?;
    let md = leaderboard_markdown(&lb);
    simemu_core::fsutil::write_atomic(&dir.path().join("leaderboard.md"), md.as_bytes())?;
    dir.persist(force)?;
    Ok(lb)
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
