//! The comparison stage: several candidate sets against one reference, one
//! report each and a leaderboard.

use std::path::{Path, PathBuf};

use simemu_core::fsutil::relative_path;
use simemu_core::{Dataset, Registry};
use simemu_validate::report::{
    leaderboard_markdown, leaderboard_row, write_report_dir, Leaderboard, SetInfo,
};
use simemu_validate::vector::VectorTest;
use simemu_validate::{Harness, Report, StatRequest};

use crate::error::{request, Context, Result};
use crate::Observer;

/// What to compare, and where to write it.
pub struct CompareRequest<'a> {
    /// The held-out simulator samples.
    pub reference: &'a Path,
    pub candidates: &'a [PathBuf],
    pub statistics: &'a [StatRequest],
    /// Tests on whole statistic vectors to run beside the per-bin ones.
    pub vector_tests: &'a [VectorTest],
    /// The field single-field statistics read (None: the only one).
    pub field: Option<&'a str>,
    /// The leaderboard directory: one report directory per candidate.
    pub out: &'a Path,
    /// Replace an existing output.
    pub force: bool,
}

/// Opens the candidates, checks that they are comparable with the reference and
/// that the output may be written.
fn open_candidates(reference: &Dataset, r: &CompareRequest) -> Result<Vec<Dataset>> {
    let candidates = r
        .candidates
        .iter()
        .map(|c| Dataset::open(c).with_context(|| format!("opening candidate {}", c.display())))
        .collect::<Result<Vec<_>>>()?;
    for c in &candidates {
        reference.check_compatible(c)?;
    }
    let inputs: Vec<&Path> = std::iter::once(r.reference)
        .chain(r.candidates.iter().map(PathBuf::as_path))
        .collect();
    simemu_core::fsutil::refuse_overlap(r.out, &inputs)?;
    simemu_core::fsutil::check_output(r.out, r.force, simemu_core::fsutil::OutputKind::Directory)?;
    Ok(candidates)
}

/// Validates one candidate (the request's only one) against the reference and
/// writes its report directory (`report.json`, `report.md`, plots) into `out`.
pub fn validate(reg: &Registry, r: &CompareRequest, obs: &dyn Observer) -> Result<Report> {
    if r.candidates.len() != 1 {
        return Err(request(format!(
            "validate takes one candidate, not {}",
            r.candidates.len()
        )));
    }
    let reference = Dataset::open(r.reference)?;
    let progress = |what: &str, done: usize, total: usize| obs.progress(what, done, total);
    let candidate = open_candidates(&reference, r)?.remove(0);
    let harness = Harness::new(reg, &reference, r.field, r.statistics, &progress)?
        .with_vector_tests(r.vector_tests);
    let (report, measured) = harness.validate(&candidate, &progress)?;
    write_report_dir(
        r.out,
        &report,
        (&reference, harness.reference_measurements()),
        (&candidate, &measured),
        r.force,
    )?;
    Ok(report)
}

/// Validates each candidate against the reference and writes one report per
/// candidate plus `leaderboard.{json,md}` into `out` (atomically). Datasets are
/// named by paths relative to the file that names them.
pub fn compare(reg: &Registry, r: &CompareRequest, obs: &dyn Observer) -> Result<Leaderboard> {
    let reference = Dataset::open(r.reference)?;
    let progress = |what: &str, done: usize, total: usize| obs.progress(what, done, total);
    let candidates = open_candidates(&reference, r)?;
    let harness = Harness::new(reg, &reference, r.field, r.statistics, &progress)?
        .with_vector_tests(r.vector_tests);
    let dir = simemu_core::fsutil::TempDir::new(r.out)?;
    let mut rows = Vec::new();
    for (k, c) in candidates.iter().enumerate() {
        let (report, measured) = harness.validate(c, &progress)?;
        let name = format!(
            "{:02}-{}",
            k,
            file_name(&simemu_validate::report::candidate_name(c))
        );
        write_report_dir(
            &dir.path().join(&name),
            &report,
            (&reference, harness.reference_measurements()),
            (c, &measured),
            false,
        )?;
        let mut row = leaderboard_row(&report, c, &format!("{name}/report.md"));
        row.path = relative_path(r.out, c.path()).display().to_string();
        rows.push(row);
    }
    let lb = Leaderboard {
        format: "simemu-leaderboard".into(),
        simemu_version: simemu_core::VERSION.into(),
        reference: SetInfo::of(&reference).relative_to(r.out),
        rows,
    };
    simemu_core::fsutil::write_json_atomic(&dir.path().join("leaderboard.json"), &lb)?;
    let md = leaderboard_markdown(&lb);
    simemu_core::fsutil::write_atomic(&dir.path().join("leaderboard.md"), md.as_bytes())?;
    dir.persist(r.force)?;
    Ok(lb)
}

/// A candidate's name as a file name: letters, digits, `-` and `_`.
pub(crate) fn file_name(s: &str) -> String {
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
