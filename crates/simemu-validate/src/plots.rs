//! PNG plots drawn with plotters and an embedded font (no system fonts needed):
//! μ ± σ bands of reference and candidate with a ratio panel for every statistic
//! component, KS p-values per bin, and a grid of sample maps for 2D fields.
//!
//! Axis scales are chosen from the data (log when all values are positive and span
//! more than two decades), so the harness needs no knowledge of any domain.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use simemu_core::{Array, Dataset, Error, Result};

use crate::measure::Measurement;
use crate::report::Report;

const FONT: &str = "sans-serif";
const REF_COLOR: RGBColor = RGBColor(31, 119, 180);
const CAND_COLOR: RGBColor = RGBColor(214, 39, 40);

fn ensure_font() -> Result<()> {
    static FONT_OK: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT_OK
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "cannot register the embedded font".to_string())
        })
        .clone()
        .map_err(Error::Other)
}

fn pe<E: std::fmt::Debug>(e: E) -> Error {
    Error::Other(format!("plotting failed: {e:?}"))
}

/// log10 when the values are positive and span more than `decades` decades.
fn use_log(values: impl Iterator<Item = f64> + Clone, decades: f64) -> bool {
    let mut lo = f64::INFINITY;
    let mut hi = 0.0f64;
    for v in values {
        if v <= 0.0 || !v.is_finite() {
            return false;
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    hi > 0.0 && (hi / lo).log10() > decades
}

fn axis_label(v: f64, log: bool) -> String {
    let x = if log { 10f64.powf(v) } else { v };
    if x == 0.0 || x.abs() < 1e-12 * (1.0 + v.abs()) && !log {
        "0".into()
    } else if x.abs() >= 1e4 || x.abs() < 1e-3 {
        format!("{x:.2e}")
    } else {
        // Three significant digits.
        let decimals = (2 - x.abs().log10().floor() as i32).max(0) as usize;
        format!("{x:.decimals$}")
    }
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if hi <= lo || hi.is_nan() || lo.is_nan() {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - d, hi + d);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

/// μ ± σ bands of both sets with a candidate/reference ratio panel.
fn band_plot(
    path: &Path,
    title: &str,
    x_name: &str,
    r: &Measurement,
    c: &Measurement,
    comp: usize,
) -> Result<()> {
    let stats = |m: &Measurement| -> (Vec<f64>, Vec<f64>) {
        let n = m.values[comp].len() as f64;
        let nb = m.x.len();
        let mut mean = vec![0.0; nb];
        let mut sd = vec![0.0; nb];
        for s in &m.values[comp] {
            for b in 0..nb {
                mean[b] += s[b] / n;
            }
        }
        for s in &m.values[comp] {
            for b in 0..nb {
                sd[b] += (s[b] - mean[b]).powi(2) / (n - 1.0).max(1.0);
            }
        }
        (mean, sd.into_iter().map(f64::sqrt).collect())
    };
    let (rm, rs) = stats(r);
    let (cm, cs) = stats(c);
    let logx = use_log(r.x.iter().cloned(), 1.0);
    let logy = use_log(rm.iter().chain(cm.iter()).cloned(), 1.0);
    let tx = |v: f64| if logx { v.log10() } else { v };
    let ty = |v: f64| if logy { v.max(1e-300).log10() } else { v };
    let xs: Vec<f64> = r.x.iter().map(|&v| tx(v)).collect();
    // Bands: in log y, draw μ·exp(±σ/μ) to stay positive.
    let band = |m: &[f64], s: &[f64]| -> (Vec<f64>, Vec<f64>) {
        m.iter()
            .zip(s)
            .map(|(&mu, &sd)| {
                if logy {
                    let f = (sd / mu).min(5.0).exp();
                    (ty(mu / f), ty(mu * f))
                } else {
                    (mu - sd, mu + sd)
                }
            })
            .unzip()
    };
    let (rlo, rhi) = band(&rm, &rs);
    let (clo, chi) = band(&cm, &cs);
    let ylo = rlo
        .iter()
        .chain(&clo)
        .cloned()
        .fold(f64::INFINITY, f64::min);
    let yhi = rhi
        .iter()
        .chain(&chi)
        .cloned()
        .fold(f64::NEG_INFINITY, f64::max);
    let (x0, x1) = padded(
        xs.iter().cloned().fold(f64::INFINITY, f64::min),
        xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    let (y0, y1) = padded(ylo, yhi);

    let root = BitMapBackend::new(path, (900, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(pe)?;
    let (upper, lower) = root.split_vertically(500);
    let mut chart = ChartBuilder::on(&upper)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(pe)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|v| axis_label(*v, logx))
        .y_label_formatter(&|v| axis_label(*v, logy))
        .y_desc(if logy { "value (log scale)" } else { "value" })
        .label_style((FONT, 14))
        .draw()
        .map_err(pe)?;
    for (lo, hi, mean, color, label) in [
        (&rlo, &rhi, &rm, REF_COLOR, "reference"),
        (&clo, &chi, &cm, CAND_COLOR, "candidate"),
    ] {
        let mut poly: Vec<(f64, f64)> = xs.iter().cloned().zip(hi.iter().cloned()).collect();
        poly.extend(xs.iter().cloned().zip(lo.iter().cloned()).rev());
        chart
            .draw_series(std::iter::once(Polygon::new(poly, color.mix(0.2))))
            .map_err(pe)?;
        chart
            .draw_series(LineSeries::new(
                xs.iter().cloned().zip(mean.iter().map(|&v| ty(v))),
                color.stroke_width(2),
            ))
            .map_err(pe)?
            .label(format!("{label} μ ± σ"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(pe)?;

    // Ratio panel: candidate mean / reference mean with the reference's relative σ.
    let ratio: Vec<(f64, f64)> = xs
        .iter()
        .zip(rm.iter().zip(&cm))
        .filter(|(_, (r, _))| **r != 0.0)
        .map(|(&x, (r, c))| (x, c / r))
        .collect();
    let spread: Vec<(f64, f64, f64)> = xs
        .iter()
        .zip(rm.iter().zip(&rs))
        .filter(|(_, (r, _))| **r != 0.0)
        .map(|(&x, (r, s))| (x, 1.0 - (s / r).abs(), 1.0 + (s / r).abs()))
        .collect();
    let rlo_ = ratio.iter().map(|p| p.1).fold(0.8f64, f64::min).max(-2.0);
    let rhi_ = ratio.iter().map(|p| p.1).fold(1.2f64, f64::max).min(4.0);
    let mut rc = ChartBuilder::on(&lower)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, rlo_..rhi_)
        .map_err(pe)?;
    rc.configure_mesh()
        .x_label_formatter(&|v| axis_label(*v, logx))
        .x_desc(if logx {
            format!("{x_name} (log scale)")
        } else {
            x_name.to_string()
        })
        .y_desc("candidate / reference")
        .label_style((FONT, 14))
        .draw()
        .map_err(pe)?;
    let mut poly: Vec<(f64, f64)> = spread.iter().map(|p| (p.0, p.2.min(rhi_))).collect();
    poly.extend(spread.iter().rev().map(|p| (p.0, p.1.max(rlo_))));
    rc.draw_series(std::iter::once(Polygon::new(poly, REF_COLOR.mix(0.15))))
        .map_err(pe)?;
    rc.draw_series(LineSeries::new(
        vec![(x0, 1.0), (x1, 1.0)],
        BLACK.stroke_width(1),
    ))
    .map_err(pe)?;
    rc.draw_series(LineSeries::new(ratio.clone(), CAND_COLOR.stroke_width(2)))
        .map_err(pe)?;
    rc.draw_series(
        ratio
            .iter()
            .map(|&p| Circle::new(p, 3, CAND_COLOR.filled())),
    )
    .map_err(pe)?;
    root.present().map_err(pe)?;
    Ok(())
}

/// "name (P% of bins pass)", with each component's share when there are several
/// (each is judged alone).
fn pvalue_caption(st: &crate::compare::StatisticComparison) -> String {
    let mut caption = format!(
        "{} ({:.0}% of bins pass",
        st.statistic,
        100.0 * st.pass_fraction
    );
    if st.components.len() > 1 {
        for c in &st.components {
            caption += &format!("; {} {:.0}%", c.name, 100.0 * c.pass_fraction());
        }
    }
    caption + ")"
}

/// KS p-value of every bin, one panel per statistic, with the 0.05 line.
fn pvalue_plot(path: &Path, report: &Report) -> Result<()> {
    let n = report.statistics.len().max(1);
    let root = BitMapBackend::new(path, (900, 220 * n as u32 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(pe)?;
    let (title, body) = root.split_vertically(40);
    title
        .draw(&Text::new(
            "KS p-value per bin (log scale; dashed: 0.05)",
            (250, 10),
            (FONT, 20),
        ))
        .map_err(pe)?;
    for (area, st) in body.split_evenly((n, 1)).iter().zip(&report.statistics) {
        let pts: Vec<(f64, f64)> = st
            .components
            .iter()
            .flat_map(|c| c.ks_p.iter())
            .enumerate()
            .map(|(i, &p)| (i as f64, p.max(1e-30).log10()))
            .collect();
        let nb = pts.len().max(1) as f64;
        let ymin = pts.iter().map(|p| p.1).fold(-2.0f64, f64::min) - 0.2;
        let mut chart = ChartBuilder::on(area)
            .caption(pvalue_caption(st), (FONT, 16))
            .margin(8)
            .x_label_area_size(25)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..nb - 0.5, ymin..0.2)
            .map_err(pe)?;
        chart
            .configure_mesh()
            .y_label_formatter(&|v| format!("1e{v:.0}"))
            .x_desc("bin (components in order)")
            .label_style((FONT, 12))
            .draw()
            .map_err(pe)?;
        let line = 0.05f64.log10();
        chart
            .draw_series(DashedLineSeries::new(
                vec![(-0.5, line), (nb - 0.5, line)],
                6,
                4,
                BLACK.stroke_width(1),
            ))
            .map_err(pe)?;
        chart
            .draw_series(pts.iter().map(|&(x, y)| {
                let color = if y > line { REF_COLOR } else { CAND_COLOR };
                Circle::new((x, y), 4, color.filled())
            }))
            .map_err(pe)?;
    }
    root.present().map_err(pe)?;
    Ok(())
}

/// Heat maps of the first samples of both sets on one colour scale: 2D
/// fields whole, 3D fields by their central slice along the first axis (other
/// shapes get none).
fn map_grid(path: &Path, reference: &Dataset, candidate: &Dataset, field: usize) -> Result<bool> {
    let spec = &reference.fields()[field];
    let ([h, w], depth) = match spec.shape.as_slice() {
        [h, w] => ([*h, *w], 1),
        [d, h, w] => ([*h, *w], *d),
        _ => return Ok(false),
    };
    // The plane shown of each sample: its only one, or the central one.
    let plane = depth / 2;
    let per_row = 4usize.min(reference.len()).min(candidate.len());
    let load = |ds: &Dataset| -> Result<Vec<Vec<f64>>> {
        let f = field.min(ds.fields().len() - 1);
        let arr = ds.read_field_range(f, 0, per_row)?;
        let v = match arr {
            Array::F32(v) => v.into_iter().map(|x| x as f64).collect::<Vec<_>>(),
            Array::F64(v) => v,
        };
        Ok(v.chunks(depth * h * w)
            .map(|c| c[plane * h * w..(plane + 1) * h * w].to_vec())
            .collect())
    };
    let maps: Vec<Vec<f64>> = load(reference)?
        .into_iter()
        .chain(load(candidate)?)
        .collect();
    let mut all: Vec<f64> = maps.iter().flatten().cloned().collect();
    all.sort_by(|a, b| a.total_cmp(b));
    let lo = all[(all.len() as f64 * 0.005) as usize];
    let hi = all[((all.len() as f64 * 0.995) as usize).min(all.len() - 1)];
    let scale = (256 / h.max(w)).max(1);
    let (tw, th) = ((w * scale) as u32, (h * scale) as u32);
    let gap = 10u32;
    let label = 28u32;
    let width = per_row as u32 * (tw + gap) + gap;
    let height = 2 * (th + label) + gap;
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(pe)?;
    for (row, name) in ["reference", "candidate"].iter().enumerate() {
        let y0 = row as u32 * (th + label);
        root.draw(&Text::new(
            format!("{name} (colour scale {lo:.3e} … {hi:.3e})"),
            (gap as i32, y0 as i32 + 6),
            (FONT, 16),
        ))
        .map_err(pe)?;
        for k in 0..per_row {
            let m = &maps[row * per_row + k];
            let x0 = gap + k as u32 * (tw + gap);
            for i in 0..h {
                for j in 0..w {
                    let t = ((m[i * w + j] - lo) / (hi - lo)).clamp(0.0, 1.0);
                    let color = ViridisRGB::get_color(t);
                    for di in 0..scale {
                        for dj in 0..scale {
                            root.draw_pixel(
                                (
                                    (x0 + (j * scale + dj) as u32) as i32,
                                    (y0 + label + (i * scale + di) as u32) as i32,
                                ),
                                &color,
                            )
                            .map_err(pe)?;
                        }
                    }
                }
            }
        }
    }
    root.present().map_err(pe)?;
    Ok(true)
}

/// Draws every plot of a report into `dir`; returns (title, file name) pairs.
pub fn draw_all(
    dir: &Path,
    report: &Report,
    reference: (&Dataset, &[Measurement]),
    candidate: (&Dataset, &[Measurement]),
) -> Result<Vec<(String, String)>> {
    ensure_font()?;
    let mut out = Vec::new();
    let field = reference
        .0
        .fields()
        .iter()
        .position(|f| f.name == report.field)
        .unwrap_or(0);
    if map_grid(&dir.join("samples.png"), reference.0, candidate.0, field)? {
        let title = if reference.0.fields()[field].shape.len() == 3 {
            "Sample central slices"
        } else {
            "Sample maps"
        };
        out.push((title.to_string(), "samples.png".to_string()));
    }
    for (r, c) in reference.1.iter().zip(candidate.1) {
        for (ci, comp) in r.component_names.iter().enumerate() {
            let file = format!("{}-{}.png", r.statistic, comp);
            let title = format!("{} — {}", r.statistic, comp);
            band_plot(&dir.join(&file), &title, &r.x_name, r, c, ci)?;
            out.push((title, file));
        }
    }
    pvalue_plot(&dir.join("ks-pvalues.png"), report)?;
    out.push((
        "KS p-values per bin".to_string(),
        "ks-pvalues.png".to_string(),
    ));
    for t in &report.vector_tests {
        if let Some(scores) = &t.classifier {
            let file = format!("roc-{}.png", t.test.name());
            let title = format!("{} — ROC curve", t.test.name());
            roc_plot(&dir.join(&file), &title, scores)?;
            out.push((title, file));
        }
        if let Some(worst) = &t.worst {
            let file = "correlation-difference.png".to_string();
            if correlation_difference_plot(&dir.join(&file), worst, reference.1, candidate.1)? {
                out.push((format!("Δρ of {worst}: candidate − reference"), file));
            }
        }
    }
    Ok(out)
}

/// The held-out ROC curves of a classifier test: the candidate's and the
/// floor's (the reference's halves), with the diagonal of no separation.
fn roc_plot(path: &Path, title: &str, scores: &crate::vector::ClassifierScores) -> Result<()> {
    let root = BitMapBackend::new(path, (520, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(pe)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(pe)?;
    chart
        .configure_mesh()
        .x_desc("false positive rate (reference called candidate)")
        .y_desc("true positive rate")
        .label_style((FONT, 12))
        .draw()
        .map_err(pe)?;
    chart
        .draw_series(DashedLineSeries::new(
            vec![(0.0, 0.0), (1.0, 1.0)],
            6,
            4,
            BLACK.stroke_width(1),
        ))
        .map_err(pe)?;
    for (result, color, name) in [
        (&scores.candidate, CAND_COLOR, "candidate"),
        (&scores.floor, REF_COLOR, "floor: reference halves"),
    ] {
        chart
            .draw_series(LineSeries::new(
                result.roc.iter().map(|p| (p[0], p[1])),
                color.stroke_width(2),
            ))
            .map_err(pe)?
            .label(format!(
                "{name} (AUC {:.3}, p {:.1e})",
                result.auc, result.p_value
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(pe)?;
    root.present().map_err(pe)?;
    Ok(())
}

/// The difference of the candidate's and the reference's bin correlation
/// matrices for the component `worst` ("statistic component"), as a heat map
/// from −1 (blue) to +1 (red). False when no measurement has that name.
fn correlation_difference_plot(
    path: &Path,
    worst: &str,
    reference: &[Measurement],
    candidate: &[Measurement],
) -> Result<bool> {
    let found = reference.iter().zip(candidate).find_map(|(r, c)| {
        r.component_names
            .iter()
            .position(|n| format!("{} {n}", r.statistic) == worst)
            .map(|k| (r, c, k))
    });
    let Some((r, c, k)) = found else {
        return Ok(false);
    };
    let rows = |m: &Measurement| (0..m.count()).collect::<Vec<_>>();
    let rho_r = crate::vector::correlation(&r.values[k], &rows(r));
    let rho_c = crate::vector::correlation(&c.values[k], &rows(c));
    let bins = rho_r.len();
    let cell = (360 / bins.max(1)).max(4) as i32;
    let side = cell as u32 * bins as u32;
    let root = BitMapBackend::new(path, (side + 40, side + 70)).into_drawing_area();
    root.fill(&WHITE).map_err(pe)?;
    root.draw(&Text::new(
        format!("Δρ {worst} (blue −1 … red +1)"),
        (20, 10),
        (FONT, 16),
    ))
    .map_err(pe)?;
    for i in 0..bins {
        for j in 0..bins {
            let d = (rho_c[i][j] - rho_r[i][j]).clamp(-1.0, 1.0);
            let shade = (255.0 * (1.0 - d.abs())) as u8;
            let color = if d >= 0.0 {
                RGBColor(255, shade, shade)
            } else {
                RGBColor(shade, shade, 255)
            };
            let (x, y) = (20 + j as i32 * cell, 45 + i as i32 * cell);
            root.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                color.filled(),
            ))
            .map_err(pe)?;
        }
    }
    root.present().map_err(pe)?;
    Ok(true)
}

/// Plots every numeric column of a CSV file against its first column (one panel per
/// column; empty cells are skipped), e.g. a generator's `training.csv`.
pub fn plot_csv(csv: &Path, png: &Path, title: &str) -> Result<()> {
    ensure_font()?;
    let text = std::fs::read_to_string(csv).map_err(|e| Error::io(csv, e))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    if header.len() < 2 {
        return Err(Error::bad_file(
            csv,
            "needs a header with at least two columns",
        ));
    }
    let rows: Vec<Vec<Option<f64>>> = lines
        .map(|l| l.split(',').map(|c| c.trim().parse::<f64>().ok()).collect())
        .collect();
    let cols = header.len() - 1;
    let root = BitMapBackend::new(png, (900, 180 * cols as u32 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(pe)?;
    let (top, body) = root.split_vertically(40);
    top.draw(&Text::new(title.to_string(), (20, 10), (FONT, 20)))
        .map_err(pe)?;
    for (k, area) in body.split_evenly((cols, 1)).iter().enumerate() {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| Some((r.first().copied()??, r.get(k + 1).copied()??)))
            .filter(|p| p.1.is_finite())
            .collect();
        if pts.is_empty() {
            continue;
        }
        let (x0, x1) = padded(
            pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min),
            pts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max),
        );
        let (y0, y1) = padded(
            pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
            pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
        );
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .x_label_area_size(25)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(pe)?;
        chart
            .configure_mesh()
            .x_desc(header[0])
            .y_desc(header[k + 1])
            .x_label_formatter(&|v| axis_label(*v, false))
            .y_label_formatter(&|v| axis_label(*v, false))
            .label_style((FONT, 12))
            .draw()
            .map_err(pe)?;
        if pts.len() > 60 {
            chart
                .draw_series(LineSeries::new(pts, REF_COLOR.stroke_width(1)))
                .map_err(pe)?;
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), CAND_COLOR.stroke_width(2)))
                .map_err(pe)?;
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, CAND_COLOR.filled())))
                .map_err(pe)?;
        }
    }
    root.present().map_err(pe)?;
    Ok(())
}

/// One panel per response component: the simulator's ratio between two points
/// (with the band ±max(5%, 3 SE) of the error around it) and the emulator's, per
/// bin.
pub fn response_plot(
    path: &Path,
    title: &str,
    responses: &[crate::response::ComponentResponse],
) -> Result<()> {
    use crate::response::{RESPONSE_SE, RESPONSE_TOLERANCE};
    ensure_font()?;
    let shown: Vec<&crate::response::ComponentResponse> = responses
        .iter()
        .filter(|r| r.reference_ratio.iter().any(Option::is_some))
        .collect();
    if shown.is_empty() {
        return Ok(());
    }
    let root = BitMapBackend::new(path, (900, 220 * shown.len() as u32 + 40)).into_drawing_area();
    root.fill(&WHITE).map_err(pe)?;
    let (top, body) = root.split_vertically(40);
    top.draw(&Text::new(title.to_string(), (20, 10), (FONT, 20)))
        .map_err(pe)?;
    for (r, area) in shown.iter().zip(body.split_evenly((shown.len(), 1)).iter()) {
        let log = use_log(r.x.iter().copied(), 1.0);
        let fx = |x: f64| if log { x.log10() } else { x };
        let rows: Vec<(f64, f64, Option<f64>, Option<f64>)> = (0..r.x.len())
            .filter_map(|i| {
                let reference = r.reference_ratio[i]?;
                let band =
                    r.error_se[i].map(|se| reference * RESPONSE_TOLERANCE.max(RESPONSE_SE * se));
                Some((fx(r.x[i]), reference, r.candidate_ratio[i], band))
            })
            .collect();
        let ys = rows.iter().flat_map(|&(_, y, c, b)| {
            [Some(y), c, b.map(|b| y + b), b.map(|b| y - b)]
                .into_iter()
                .flatten()
        });
        let (y0, y1) = padded(
            ys.clone().fold(f64::INFINITY, f64::min),
            ys.fold(f64::NEG_INFINITY, f64::max),
        );
        let (x0, x1) = padded(
            rows.iter().map(|r| r.0).fold(f64::INFINITY, f64::min),
            rows.iter().map(|r| r.0).fold(f64::NEG_INFINITY, f64::max),
        );
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .caption(format!("{} {}", r.statistic, r.component), (FONT, 14))
            .x_label_area_size(25)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(pe)?;
        chart
            .configure_mesh()
            .x_desc(r.x_name.as_str())
            .y_desc("ratio B / A")
            .x_label_formatter(&|v| axis_label(*v, log))
            .y_label_formatter(&|v| axis_label(*v, false))
            .label_style((FONT, 12))
            .draw()
            .map_err(pe)?;
        let band: Vec<(f64, f64, f64)> = rows
            .iter()
            .filter_map(|&(x, y, _, b)| Some((x, y - b?, y + b?)))
            .collect();
        if band.len() > 1 {
            let mut polygon: Vec<(f64, f64)> = band.iter().map(|&(x, lo, _)| (x, lo)).collect();
            polygon.extend(band.iter().rev().map(|&(x, _, hi)| (x, hi)));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    polygon,
                    REF_COLOR.mix(0.2).filled(),
                )))
                .map_err(pe)?;
        }
        let reference: Vec<(f64, f64)> = rows.iter().map(|&(x, y, _, _)| (x, y)).collect();
        let candidate: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|&(x, _, c, _)| Some((x, c?)))
            .collect();
        for (points, color, label) in [
            (reference, REF_COLOR, "simulator"),
            (candidate, CAND_COLOR, "emulator"),
        ] {
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(pe)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(pe)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font((FONT, 12))
            .draw()
            .map_err(pe)?;
    }
    root.present().map_err(pe)?;
    Ok(())
}
