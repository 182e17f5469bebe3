//! How each candidate's statistics respond to a change of parameters, beside the
//! simulator's: `response.md` and `response.json` of a run with several
//! validation points.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use simemu_core::{Dataset, Registry};
use simemu_validate::report::{LeaderboardRow, Report};
use simemu_validate::response::{response, response_markdown, ComponentResponse, Moments};
use simemu_validate::{Harness, StatRequest};

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

fn read_report(report_dir: &Path, row: &LeaderboardRow) -> Result<Report> {
    let path = report_dir.join(row.report.replace("report.md", "report.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    Ok(serde_json::from_str(&text)
        .map_err(|e| simemu_core::Error::bad_file(&path, e.to_string()))?)
}

/// What one point adds to the responses beside its reports: per candidate (in
/// the leaderboard's order), the response statistics' reports and the moments of
/// the samples' variance, with the reference's moments of it.
struct PointExtras {
    reports: Vec<Option<Report>>,
    variance: Vec<Moments>,
    reference_variance: Moments,
    field: String,
}

/// Each sample's variance over its values (of `field`, or the only field, as
/// [`Dataset::field_index`] picks it): the mean over the set, its standard
/// deviation and the set's size.
fn variance_moments(path: &Path, field: Option<&str>) -> Result<(Moments, String)> {
    let ds = Dataset::open(path)?;
    let k = ds.field_index(field)?;
    let per: usize = ds.fields()[k].shape.iter().product();
    let mut values = Vec::with_capacity(ds.len());
    for start in (0..ds.len()).step_by(256) {
        let chunk = ds
            .read_field_range(k, start, 256.min(ds.len() - start))?
            .to_f64();
        for v in chunk.chunks(per) {
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            values.push(v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n);
        }
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    Ok((
        Moments {
            mean,
            std,
            count: values.len(),
        },
        ds.fields()[k].name.clone(),
    ))
}

fn point_extras(
    reg: &Registry,
    point: &PointOutcome,
    (statistics, field): (&[StatRequest], Option<&str>),
) -> Result<PointExtras> {
    let (reference_variance, name) = variance_moments(&point.reference, field)?;
    let mut variance = Vec::new();
    for g in &point.generated {
        variance.push(variance_moments(g, field)?.0);
    }
    let mut reports = Vec::new();
    if statistics.is_empty() {
        reports.resize_with(point.generated.len(), || None);
    } else {
        let reference = Dataset::open(&point.reference)?;
        let quiet = |_: &str, _: usize, _: usize| {};
        let harness = Harness::new(reg, &reference, field, statistics, &quiet)?;
        for g in &point.generated {
            let candidate = Dataset::open(g)?;
            reports.push(Some(harness.validate(&candidate, &quiet)?.0));
        }
    }
    Ok(PointExtras {
        reports,
        variance,
        reference_variance,
        field: name,
    })
}

/// For every pair of neighbouring validation points that differ in one
/// parameter, how each candidate's statistics respond to the change compared
/// with the simulator's (None: no such pair): the reports' statistics with
/// fixed bins, the response statistics, and the variance of the samples'
/// values. Each candidate's plot of its responses is `response/NAME-K.png`.
pub(crate) fn write_responses(
    reg: &Registry,
    dir: &Path,
    points: &[PointOutcome],
    extra: (&[StatRequest], Option<&str>),
) -> Result<Option<Responses>> {
    let mut md = String::from("# Parameter response

Between neighbouring validation points that differ in one parameter: the ratio of each statistic's mean at the second point to that at the first, for the simulator (held-out sets) and for each emulator, per bin; error = emulator ratio / simulator ratio − 1, with its standard error from the four means; a bin agrees within max(5%, 3 SE). `variance` is the mean over samples of each sample's variance of its values.

");
    let extras = points
        .iter()
        .map(|p| point_extras(reg, p, extra))
        .collect::<Result<Vec<_>>>()?;
    let plots = dir.join("response");
    let mut pair = 0usize;
    let mut json = Vec::new();
    let mut summary = Vec::new();
    for (i, a) in points.iter().enumerate() {
        for (j, b) in points.iter().enumerate().skip(i + 1) {
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
            pair += 1;
            for (ka, ra) in a.leaderboard.rows.iter().enumerate() {
                let Some(kb) = b
                    .leaderboard
                    .rows
                    .iter()
                    .position(|r| r.candidate == ra.candidate)
                else {
                    continue;
                };
                let rb = &b.leaderboard.rows[kb];
                let mut responses = response(
                    &read_report(&a.report_dir, ra)?,
                    &read_report(&b.report_dir, rb)?,
                );
                let (ea, eb) = (&extras[i], &extras[j]);
                if let (Some(Some(x)), Some(Some(y))) = (ea.reports.get(ka), eb.reports.get(kb)) {
                    responses.extend(response(x, y));
                }
                if let (Some(va), Some(vb)) = (ea.variance.get(ka), eb.variance.get(kb)) {
                    responses.push(ComponentResponse::from_moments(
                        ("variance", &ea.field, ""),
                        &[0.0],
                        (&[ea.reference_variance], &[eb.reference_variance]),
                        (&[*va], &[*vb]),
                    ));
                }
                let title = format!("{}: {from} → {to}", ra.candidate);
                md.push_str(&response_markdown(&title, &responses));
                let png = plots.join(format!(
                    "{}-{pair}.png",
                    crate::compare::file_name(&ra.candidate)
                ));
                std::fs::create_dir_all(&plots).map_err(|e| io(&plots, e))?;
                simemu_validate::plots::response_plot(&png, &title, &responses)?;
                let _ = writeln!(
                    md,
                    "![{title}](response/{})\n",
                    png.file_name().expect("named").to_string_lossy()
                );
                for c in &responses {
                    if let Some(e) = c.max_abs_error {
                        summary.push(format!(
                            "response {} {} → {} ({}): {} {} largest |error| {:.1}%, {} of {} bins outside max(5%, 3 SE)",
                            ra.candidate,
                            serde_json::json!(pa),
                            serde_json::json!(pb),
                            changed[0],
                            c.statistic,
                            c.component,
                            100.0 * e,
                            c.disagreeing,
                            c.x.len()
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
