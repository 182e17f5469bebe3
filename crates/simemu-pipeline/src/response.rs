//! How each candidate's statistics respond to a change of parameters, beside the
//! simulator's: `response.md` and `response.json` of a run with several
//! validation points.

use std::path::{Path, PathBuf};

use simemu_validate::report::LeaderboardRow;
use simemu_validate::response::{response, response_markdown};

use crate::error::{io, Result};
use crate::job::{point_label, PointOutcome};

/// The parameter response a run wrote.
pub struct Responses {
    /// `response.md`.
    pub path: PathBuf,
    /// One line per candidate, pair of points and statistic component: the
    /// largest error of the response over its bins.
    pub summary: Vec<String>,
}

fn read_report(report_dir: &Path, row: &LeaderboardRow) -> Result<simemu_validate::Report> {
    let path = report_dir.join(row.report.replace("report.md", "report.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    Ok(serde_json::from_str(&text)
        .map_err(|e| simemu_core::Error::bad_file(&path, e.to_string()))?)
}

/// For every pair of neighbouring validation points that differ in one
/// parameter, how each candidate's statistics respond to the change compared
/// with the simulator's (None: no such pair).
pub(crate) fn write_responses(dir: &Path, points: &[PointOutcome]) -> Result<Option<Responses>> {
    let mut md = String::from("# Parameter response

Between neighbouring validation points that differ in one parameter: the ratio of each statistic's mean at the second point to that at the first, for the simulator (held-out sets) and for each emulator, per bin; error = emulator ratio / simulator ratio − 1.

");
    let mut json = Vec::new();
    let mut summary = Vec::new();
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            let (pa, pb) = (&a.params, &b.params);
            let changed: Vec<&String> = pa.keys().filter(|k| pa[*k] != pb[*k]).collect();
            if changed.len() != 1 {
                continue;
            }
            // Neighbours only: a point between the two along the changed parameter
            // (the others equal) makes the pair the sum of two shorter steps.
            let axis = changed[0];
            let (lo, hi) = (pa[axis].min(pb[axis]), pa[axis].max(pb[axis]));
            let between = points.iter().any(|c| {
                c.params
                    .iter()
                    .all(|(k, v)| k == axis || pa.get(k) == Some(v))
                    && c.params.get(axis).is_some_and(|&v| v > lo && v < hi)
            });
            if between {
                continue;
            }
            let (from, to) = (point_label(pa), point_label(pb));
            for ra in &a.leaderboard.rows {
                let Some(rb) = b
                    .leaderboard
                    .rows
                    .iter()
                    .find(|r| r.candidate == ra.candidate)
                else {
                    continue;
                };
                let responses = response(
                    &read_report(&a.report_dir, ra)?,
                    &read_report(&b.report_dir, rb)?,
                );
                md.push_str(&response_markdown(
                    &format!("{}: {from} → {to}", ra.candidate),
                    &responses,
                ));
                for c in &responses {
                    if let Some(e) = c.max_abs_error {
                        summary.push(format!(
                            "response {} {} → {} ({}): {} {} largest |error| {:.1}%",
                            ra.candidate,
                            serde_json::json!(pa),
                            serde_json::json!(pb),
                            changed[0],
                            c.statistic,
                            c.component,
                            100.0 * e
                        ));
                    }
                }
                json.push(serde_json::json!({"candidate": ra.candidate, "from": pa, "to": pb, "changed": changed[0], "components": responses}));
            }
        }
    }
    if json.is_empty() {
        return Ok(None);
    }
    let path = dir.join("response.md");
    simemu_core::fsutil::write_atomic(&path, md.as_bytes())?;
    simemu_core::fsutil::write_json_atomic(&dir.join("response.json"), &json)?;
    Ok(Some(Responses { path, summary }))
}
