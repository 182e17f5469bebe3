//! What the statistics of a field's levels share — `density-pdf`, `peaks-3d`
//! and `minkowski-3d`: threshold bins and an optional Gaussian smoothing
//! exp(−k²R²/2), with the options that set them.

use serde::Deserialize;
use simemu_core::bins::BinSpec;
use simemu_core::{Error, OptionSpec, Result, StatContext};

use crate::fft3::{frequency, RealFft3};

/// Default bins: 30 between the 0.1% and 99.9% quantiles of the reference cells.
pub const DEFAULT_THRESHOLDS: &str = "quantile:0.001:0.999:30";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    thresholds: Option<serde_json::Value>,
    #[serde(default)]
    smoothing_mpc_h: Option<f64>,
    #[serde(default)]
    box_mpc_h: Option<f64>,
}

/// The options of a level statistic, as the registry lists them.
pub fn option_specs() -> Vec<OptionSpec> {
    vec![
        OptionSpec::new(
            "thresholds",
            DEFAULT_THRESHOLDS,
            "bin edges: a,b,c | lin:A:B:N | log:A:B:N | quantile:QLO:QHI:N (of the reference cells; not with smoothing)",
        ),
        OptionSpec::new(
            "smoothing_mpc_h",
            serde_json::Value::Null,
            "radius R of a Gaussian smoothing exp(−k²R²/2) in Mpc/h (default: none)",
        ),
        OptionSpec::new(
            "box_mpc_h",
            serde_json::Value::Null,
            "side of the box in Mpc/h (default: from the dataset)",
        ),
    ]
}

/// A level statistic's resolved options.
pub struct Levels {
    pub n: usize,
    pub thresholds: Vec<f64>,
    pub smoothing_mpc_h: Option<f64>,
    /// The box side, where the statistic needs it (smoothing, derivatives).
    pub box_mpc_h: Option<f64>,
}

impl Levels {
    /// Reads the options of statistic `name`; `needs_box`: the box side is
    /// needed even without smoothing.
    pub fn build(
        name: &str,
        options: &serde_json::Value,
        ctx: &StatContext,
        needs_box: bool,
    ) -> Result<Self> {
        let o: Options = simemu_core::params::options_from_json(name, options)?;
        let n = crate::field::cube_side(name, ctx, 3)?;
        let spec = BinSpec::from_option(name, &o.thresholds, DEFAULT_THRESHOLDS)?;
        if let Some(r) = o.smoothing_mpc_h {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::Option(format!(
                    "{name}: smoothing_mpc_h = {r} must be positive"
                )));
            }
            if spec.needs_quantiles() {
                return Err(Error::Option(format!(
                    "{name}: quantile thresholds are of the unsmoothed reference cells; give explicit thresholds (a,b,c or lin:A:B:N) with smoothing_mpc_h"
                )));
            }
        }
        let box_mpc_h = if needs_box || o.smoothing_mpc_h.is_some() {
            Some(crate::field::box_side(name, o.box_mpc_h, ctx)?)
        } else {
            None
        };
        Ok(Levels {
            n,
            thresholds: spec.resolve(ctx.quantiles)?,
            smoothing_mpc_h: o.smoothing_mpc_h,
            box_mpc_h,
        })
    }

    /// The smoothing kernel by |k|² in units of k_F² (0 …= 3(N/2)²), times
    /// `scale`; all ones (times `scale`) without smoothing.
    pub fn kernel_by_norm2(&self, scale: f64) -> Vec<f64> {
        let middle = self.n / 2;
        let table = 0..=3 * middle * middle;
        match (self.smoothing_mpc_h, self.box_mpc_h) {
            (Some(r), Some(side)) => {
                let kf = 2.0 * std::f64::consts::PI / side;
                table
                    .map(|m2| scale * (-0.5 * m2 as f64 * (kf * r).powi(2)).exp())
                    .collect()
            }
            _ => table.map(|_| scale).collect(),
        }
    }
}

/// Multiplies every mode of a half spectrum by `table[|k|²]` (|k| in units of
/// k_F), or by 0 where `drop_nyquist` and any component is N/2.
pub fn filter_half(
    fft: &RealFft3,
    half: &mut [rustfft::num_complex::Complex64],
    table: &[f64],
    drop_nyquist: bool,
) {
    let n = fft.n();
    let h = fft.half();
    let middle = (n / 2) as i64;
    for (i, plane) in half.chunks_mut(n * h).enumerate() {
        let kx = frequency(i, n);
        for (j, line) in plane.chunks_mut(h).enumerate() {
            let ky = frequency(j, n);
            let m2xy = (kx * kx + ky * ky) as usize;
            let nyquist_line = drop_nyquist && (kx == middle || ky == middle);
            for (l, v) in line.iter_mut().enumerate() {
                if nyquist_line || (drop_nyquist && l as i64 == middle) {
                    *v = rustfft::num_complex::Complex64::new(0.0, 0.0);
                } else {
                    *v *= table[m2xy + l * l];
                }
            }
        }
    }
}
