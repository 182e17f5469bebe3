//! The five `Statistic` plugins and their options.

use serde::{Deserialize, Serialize};
use simemu_core::bins::{midpoints, BinSpec};
use simemu_core::{
    ArrayView, Error, FieldView, OptionSpec, Registry, Result, Sample, StatContext, StatValues,
    Statistic,
};

use crate::bispectrum::{Bispectrum, Configuration};
use crate::power::PowerSpectrum;
use crate::topology::{minkowski, peak_counts, pixel_pdf, std_ddof0, Pixel};

/// Default threshold bins: 30 linear bins over the reference pixels' [0.1%, 99.9%]
/// quantiles (in κ units), as the validation calibration used.
pub const DEFAULT_THRESHOLDS: &str = "quantile:0.001:0.999:30";
/// Default number of log ℓ bins between 2ℓ_fundamental and the axis Nyquist ℓ.
pub const DEFAULT_ELL_BINS: usize = 12;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdOptions {
    #[serde(default)]
    thresholds: Option<serde_json::Value>,
    #[serde(default)]
    sigma_units: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerOptions {
    #[serde(default)]
    ell_edges: Option<serde_json::Value>,
    #[serde(default)]
    angle_deg: Option<f64>,
}

/// Side length of the square map the context describes.
fn square_side(stat: &str, ctx: &StatContext) -> Result<usize> {
    match ctx.field.shape.as_slice() {
        [a, b] if a == b && *a >= 4 => Ok(*a),
        s => Err(Error::Data(format!(
            "{stat} needs square 2D maps (at least 4×4); field '{}' has shape {s:?}",
            ctx.field.name
        ))),
    }
}

/// The map field of a sample (the named one, or the only one), checked to be N×N.
fn map_field<'s>(sample: &'s Sample, field: &str) -> Result<&'s simemu_core::Field> {
    match sample.field(field) {
        Ok(fd) => Ok(fd),
        Err(_) if sample.fields.len() == 1 => Ok(&sample.fields[0]),
        Err(e) => Err(e),
    }
}

/// Refuses a map that is not N×N.
fn check_square(field: &FieldView<'_>, n: usize) -> Result<()> {
    if field.shape != [n, n] || field.data.len() != n * n {
        return Err(Error::Data(format!(
            "map has shape {:?}, expected [{n}, {n}]",
            field.shape
        )));
    }
    Ok(())
}

/// Refuses NaN/Inf, naming the first bad pixel.
fn check_finite(data: ArrayView<'_>, n: usize) -> Result<()> {
    match data.first_non_finite() {
        Some(i) => Err(non_finite_pixel(i, n)),
        None => Ok(()),
    }
}

fn non_finite_pixel(index: usize, n: usize) -> Error {
    Error::Data(format!(
        "non-finite pixel at row {}, column {}",
        index / n,
        index % n
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pdf,
    Minkowski,
    Peaks,
}

/// Threshold-binned statistics: pixel PDF, Minkowski functionals, peak counts.
struct ThresholdStat {
    kind: Kind,
    name: &'static str,
    field: String,
    n: usize,
    thresholds: Vec<f64>,
    sigma_units: bool,
    x: Vec<f64>,
}

impl ThresholdStat {
    fn build(
        kind: Kind,
        name: &'static str,
        options: &serde_json::Value,
        ctx: &StatContext,
    ) -> Result<Self> {
        let o: ThresholdOptions = simemu_core::params::options_from_json(name, options)?;
        let n = square_side(name, ctx)?;
        let spec = BinSpec::from_option(name, &o.thresholds, DEFAULT_THRESHOLDS)?;
        let thresholds = if o.sigma_units && spec.needs_quantiles() {
            // Quantile bins in σ units: quantiles of the pooled pixels over their pooled σ.
            let q = spec.resolve(ctx.quantiles)?;
            let s = (ctx.pooled_variance)()?.sqrt();
            q.iter().map(|x| x / s).collect()
        } else {
            spec.resolve(ctx.quantiles)?
        };
        Ok(ThresholdStat {
            kind,
            name,
            field: ctx.field.name.clone(),
            n,
            x: midpoints(&thresholds),
            thresholds,
            sigma_units: o.sigma_units,
        })
    }
}

impl Statistic for ThresholdStat {
    fn name(&self) -> &str {
        self.name
    }
    fn x_name(&self) -> &str {
        "threshold"
    }
    fn x(&self) -> &[f64] {
        &self.x
    }
    fn components(&self) -> Vec<String> {
        match self.kind {
            Kind::Pdf => vec!["pdf".into()],
            Kind::Minkowski => vec!["V0".into(), "V1".into(), "V2".into()],
            Kind::Peaks => vec!["peaks".into()],
        }
    }
    fn options(&self) -> serde_json::Value {
        serde_json::json!({"thresholds": self.thresholds, "sigma_units": self.sigma_units})
    }
    fn compute(&self, sample: &Sample) -> Result<StatValues> {
        self.compute_view(map_field(sample, &self.field)?.view())
    }
    fn compute_view(&self, field: FieldView<'_>) -> Result<StatValues> {
        check_square(&field, self.n)?;
        check_finite(field.data, self.n)?;
        match field.data {
            ArrayView::F32(m) => self.compute_on(m),
            ArrayView::F64(m) => self.compute_on(m),
        }
    }
}

impl ThresholdStat {
    /// The statistic of one map, read in its stored precision.
    fn compute_on<T: Pixel>(&self, m: &[T]) -> Result<StatValues> {
        let sigma = if self.sigma_units { std_ddof0(m) } else { 1.0 };
        if self.sigma_units && sigma == 0.0 {
            return Err(Error::Data(
                "constant map: σ = 0, cannot use sigma units".into(),
            ));
        }
        Ok(match self.kind {
            Kind::Pdf => vec![pixel_pdf(m, &self.thresholds, sigma)],
            Kind::Minkowski => minkowski(m, self.n, &self.thresholds, sigma).to_vec(),
            Kind::Peaks => vec![peak_counts(m, self.n, &self.thresholds, sigma)],
        })
    }
}

struct PowerStat {
    field: String,
    n: usize,
    edges: Vec<f64>,
    angle_deg: f64,
    x: Vec<f64>,
    estimator: PowerSpectrum,
}

/// The side angle and the ℓ edges of an ℓ-binned statistic: the options', or
/// the field's angle and 12 log bins from 2ℓ_fundamental to the axis Nyquist ℓ.
fn ell_binning(
    stat: &str,
    ell_edges: &Option<serde_json::Value>,
    angle_deg: Option<f64>,
    n: usize,
    ctx: &StatContext,
) -> Result<(f64, Vec<f64>)> {
    let angle_deg = match angle_deg.or_else(|| ctx.field.attr_f64("angle_deg")) {
        Some(a) if a.is_finite() && a > 0.0 => a,
        Some(a) => {
            return Err(Error::Option(format!(
                "{stat}: angle_deg = {a} must be positive"
            )))
        }
        None => {
            return Err(Error::Option(format!(
                "{stat}: the side angle of field '{}' is unknown; give --angle-deg",
                ctx.field.name
            )))
        }
    };
    let lpix = 360.0 / angle_deg;
    let edges = match ell_edges {
        None | Some(serde_json::Value::Null) => {
            let (lo, hi) = (2.0 * lpix, lpix * (n / 2) as f64);
            simemu_core::bins::BinSpec::parse(&format!("log:{lo}:{hi}:{DEFAULT_ELL_BINS}"))?
                .resolve(ctx.quantiles)?
        }
        v => {
            let spec = BinSpec::from_option(stat, v, "")?;
            if spec.needs_quantiles() {
                return Err(Error::Option(format!(
                    "{stat}: quantile bins make no sense for ℓ"
                )));
            }
            spec.resolve(ctx.quantiles)?
        }
    };
    Ok((angle_deg, edges))
}

/// Refuses ℓ edges between which no Fourier mode (or triangle) of the map falls.
fn check_counts(
    stat: &str,
    counts: &[usize],
    n: usize,
    angle_deg: f64,
    edges: &[f64],
) -> Result<()> {
    if counts.iter().all(|&m| m == 0) {
        let lpix = 360.0 / angle_deg;
        return Err(Error::Option(format!(
            "{stat}: no Fourier mode of a {n}×{n} map of {angle_deg}° falls between the ℓ edges {edges:?} (modes lie between {lpix:.1} and {:.1})",
            lpix * (n as f64 / 2.0) * 2f64.sqrt()
        )));
    }
    Ok(())
}

impl PowerStat {
    fn build(options: &serde_json::Value, ctx: &StatContext) -> Result<Self> {
        let o: PowerOptions = simemu_core::params::options_from_json("power-spectrum", options)?;
        let n = square_side("power-spectrum", ctx)?;
        let (angle_deg, edges) = ell_binning("power-spectrum", &o.ell_edges, o.angle_deg, n, ctx)?;
        let estimator = PowerSpectrum::new(n, angle_deg, &edges);
        check_counts(
            "power-spectrum",
            estimator.modes_per_bin(),
            n,
            angle_deg,
            &edges,
        )?;
        Ok(PowerStat {
            field: ctx.field.name.clone(),
            n,
            x: midpoints(&edges),
            edges,
            angle_deg,
            estimator,
        })
    }
}

impl Statistic for PowerStat {
    fn name(&self) -> &str {
        "power-spectrum"
    }
    fn x_name(&self) -> &str {
        "ell"
    }
    fn x(&self) -> &[f64] {
        &self.x
    }
    fn components(&self) -> Vec<String> {
        vec!["power".into()]
    }
    fn options(&self) -> serde_json::Value {
        serde_json::json!({
            "ell_edges": self.edges,
            "angle_deg": self.angle_deg,
            "modes_per_bin": self.estimator.modes_per_bin(),
            // The harness's generic name for independent measurements per bin.
            "bin_counts": self.estimator.modes_per_bin(),
        })
    }
    fn compute(&self, sample: &Sample) -> Result<StatValues> {
        self.compute_view(map_field(sample, &self.field)?.view())
    }
    fn compute_view(&self, field: FieldView<'_>) -> Result<StatValues> {
        check_square(&field, self.n)?;
        let power = match field.data {
            ArrayView::F32(v) => self.estimator.compute_rows(v),
            ArrayView::F64(v) => self.estimator.compute_rows(v),
        };
        Ok(vec![power.map_err(|i| non_finite_pixel(i, self.n))?])
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BispectrumOptions {
    #[serde(default)]
    ell_edges: Option<serde_json::Value>,
    #[serde(default)]
    angle_deg: Option<f64>,
    #[serde(default = "default_configuration")]
    configuration: String,
    #[serde(default = "default_ratio")]
    ratio: f64,
}

fn default_configuration() -> String {
    "equilateral".into()
}

fn default_ratio() -> f64 {
    0.5
}

struct BispectrumStat {
    field: String,
    n: usize,
    edges: Vec<f64>,
    angle_deg: f64,
    configuration: Configuration,
    x: Vec<f64>,
    estimator: Bispectrum,
}

impl BispectrumStat {
    fn build(options: &serde_json::Value, ctx: &StatContext) -> Result<Self> {
        let o: BispectrumOptions = simemu_core::params::options_from_json("bispectrum", options)?;
        let n = square_side("bispectrum", ctx)?;
        let configuration = match o.configuration.as_str() {
            "equilateral" => Configuration::Equilateral,
            "folded" if o.ratio > 0.0 && o.ratio < 1.0 => Configuration::Folded { ratio: o.ratio },
            "folded" => {
                return Err(Error::Option(format!(
                    "bispectrum: the folding ratio must lie between 0 and 1, got {}",
                    o.ratio
                )))
            }
            other => {
                return Err(Error::Option(format!(
                    "bispectrum: configuration '{other}' is neither 'equilateral' nor 'folded'"
                )))
            }
        };
        let (angle_deg, edges) = ell_binning("bispectrum", &o.ell_edges, o.angle_deg, n, ctx)?;
        let estimator = Bispectrum::new(n, angle_deg, &edges, configuration);
        check_counts(
            "bispectrum",
            estimator.triangles_per_bin(),
            n,
            angle_deg,
            &edges,
        )?;
        Ok(BispectrumStat {
            field: ctx.field.name.clone(),
            n,
            x: midpoints(&edges),
            edges,
            angle_deg,
            configuration,
            estimator,
        })
    }
}

impl Statistic for BispectrumStat {
    fn name(&self) -> &str {
        "bispectrum"
    }
    fn x_name(&self) -> &str {
        "ell"
    }
    fn x(&self) -> &[f64] {
        &self.x
    }
    fn components(&self) -> Vec<String> {
        vec!["bispectrum".into()]
    }
    fn options(&self) -> serde_json::Value {
        let (configuration, ratio) = match self.configuration {
            Configuration::Equilateral => ("equilateral", None),
            Configuration::Folded { ratio } => ("folded", Some(ratio)),
        };
        serde_json::json!({
            "ell_edges": self.edges,
            "angle_deg": self.angle_deg,
            "configuration": configuration,
            "ratio": ratio,
            "triangles_per_bin": self.estimator.triangles_per_bin(),
            "bin_counts": self.estimator.triangles_per_bin(),
        })
    }
    fn compute(&self, sample: &Sample) -> Result<StatValues> {
        self.compute_view(map_field(sample, &self.field)?.view())
    }
    fn compute_view(&self, field: FieldView<'_>) -> Result<StatValues> {
        check_square(&field, self.n)?;
        let values = match field.data {
            ArrayView::F32(v) => self.estimator.compute(v),
            ArrayView::F64(v) => self.estimator.compute(v),
        };
        Ok(vec![values.map_err(|i| non_finite_pixel(i, self.n))?])
    }
}

fn ell_options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new(
            "ell_edges",
            serde_json::Value::Null,
            "ℓ bin edges: a,b,c | lin:A:B:N | log:A:B:N (default: 12 log bins from 2ℓ_fund to the axis Nyquist ℓ)",
        ),
        OptionSpec::new("angle_deg", serde_json::Value::Null, "side angle in degrees (default: from the dataset)"),
    ]
}

fn threshold_options() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new(
            "thresholds",
            DEFAULT_THRESHOLDS,
            "bin edges: a,b,c | lin:A:B:N | log:A:B:N | quantile:QLO:QHI:N (of the reference pixels)",
        ),
        OptionSpec::new("sigma_units", false, "thresholds in units of each map's σ (lenstools norm=True)"),
    ]
}

/// Registers `pixel-pdf`, `power-spectrum`, `bispectrum`, `minkowski` and `peaks`.
pub fn register(r: &mut Registry) -> Result<()> {
    r.add_statistic(
        "pixel-pdf",
        "histogram density of pixel values over thresholds (lenstools pdf)",
        threshold_options(),
        |o, ctx| {
            Ok(
                Box::new(ThresholdStat::build(Kind::Pdf, "pixel-pdf", o, ctx)?)
                    as Box<dyn Statistic>,
            )
        },
    )?;
    r.add_statistic(
        "power-spectrum",
        "azimuthally averaged power spectrum over ℓ bins (lenstools powerSpectrum)",
        ell_options(),
        |o, ctx| Ok(Box::new(PowerStat::build(o, ctx)?) as Box<dyn Statistic>),
    )?;
    r.add_statistic(
        "bispectrum",
        "bispectrum over ℓ bins, equilateral or folded triangles (lenstools bispectrum)",
        ell_options()
            .into_iter()
            .chain([
                OptionSpec::new(
                    "configuration",
                    "equilateral",
                    "triangles: equilateral | folded",
                ),
                OptionSpec::new("ratio", 0.5, "folded: |ℓ₂|/|ℓ₁|, between 0 and 1"),
            ])
            .collect(),
        |o, ctx| Ok(Box::new(BispectrumStat::build(o, ctx)?) as Box<dyn Statistic>),
    )?;
    r.add_statistic(
        "minkowski",
        "Minkowski functionals V0, V1, V2 over thresholds (lenstools minkowskiFunctionals)",
        threshold_options(),
        |o, ctx| {
            Ok(
                Box::new(ThresholdStat::build(Kind::Minkowski, "minkowski", o, ctx)?)
                    as Box<dyn Statistic>,
            )
        },
    )?;
    r.add_statistic(
        "peaks",
        "differential peak counts dN/dν of 8-neighbour maxima (lenstools peakCount)",
        threshold_options(),
        |o, ctx| {
            Ok(Box::new(ThresholdStat::build(Kind::Peaks, "peaks", o, ctx)?) as Box<dyn Statistic>)
        },
    )
}

simemu_core::inventory::submit! { simemu_core::StaticPlugin { name: "map-stats", register } }

#[cfg(test)]
mod tests {
    use super::*;
    use simemu_core::{Array, DType, Field, FieldSpec};

    fn build(name: &str, options: serde_json::Value, n: usize) -> Box<dyn Statistic> {
        let mut r = Registry::new();
        register(&mut r).unwrap();
        let q = |_: &[f64]| Ok(vec![-1.0, 1.0]);
        let v = || Ok(1.0);
        let mut field = FieldSpec::new("kappa", vec![n, n], DType::F32);
        field
            .attrs
            .insert("angle_deg".into(), serde_json::json!(3.5));
        let ctx = StatContext {
            field,
            quantiles: &q,
            pooled_variance: &v,
        };
        (r.statistic(name).unwrap().build)(&options, &ctx).unwrap()
    }

    /// Every statistic refuses a NaN or infinite pixel, naming its row and column,
    /// whether the map is stored in f32 or f64 (the power spectrum checks while it
    /// reads, the others before).
    #[test]
    fn non_finite_pixels_are_refused_with_their_position() {
        let n = 16;
        let clean: Vec<f64> = (0..n * n)
            .map(|i| ((i * 37 % 101) as f64 - 50.0) / 60.0)
            .collect();
        for name in [
            "pixel-pdf",
            "power-spectrum",
            "bispectrum",
            "minkowski",
            "peaks",
        ] {
            let stat = build(name, serde_json::Value::Null, n);
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let mut m = clean.clone();
                m[5 * n + 9] = bad;
                m[11 * n + 2] = bad;
                let arrays = [
                    Array::F64(m.clone()),
                    Array::F32(m.iter().map(|&x| x as f32).collect()),
                ];
                for data in arrays {
                    let s = Sample::single(Field::new("kappa", vec![n, n], data).unwrap(), vec![]);
                    let e = stat.compute(&s).unwrap_err().to_string();
                    assert!(e.contains("row 5, column 9"), "{name}, {bad}: {e}");
                }
            }
            let s = Sample::single(
                Field::new("kappa", vec![n, n], Array::F64(clean.clone())).unwrap(),
                vec![],
            );
            assert!(stat.compute(&s).is_ok(), "{name}");
        }
    }
}
