//! Shower statistics, the ones CaloGAN's paper compares (arXiv:1705.02355, Figs. 3–6):
//! energy per layer, response, longitudinal barycentre, lateral widths, sparsity and
//! the hottest cells. Each reads the layer fields of a sample by name, so they apply
//! to simulated and generated showers alike, whatever field the harness reports on.

use simemu_core::{Error, OptionSpec, Registry, Result, Sample, StatValues, Statistic};

use crate::{HALF_WIDTH_MM, LAYER_CELLS, LAYER_DEPTHS_MM};

/// How many of each layer's hottest cells `hottest-cells` reports.
const HOTTEST: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    LayerFractions,
    Response,
    Depth,
    LateralWidth,
    Sparsity,
    Hottest,
}

struct ShowerStat {
    kind: Kind,
    name: &'static str,
    x: Vec<f64>,
}

/// The three layers' cell energies (MeV) of a sample, checked.
fn layers(sample: &Sample) -> Result<[Vec<f64>; 3]> {
    let mut out: [Vec<f64>; 3] = Default::default();
    for (l, slot) in out.iter_mut().enumerate() {
        let f = sample.field(&format!("layer_{l}"))?;
        let (nx, ny) = LAYER_CELLS[l];
        if f.shape != [nx, ny] {
            return Err(Error::Data(format!(
                "layer_{l} has shape {:?}, expected [{nx}, {ny}]",
                f.shape
            )));
        }
        let v = f.data.to_f64();
        if let Some(i) = f.data.first_non_finite() {
            return Err(Error::Data(format!(
                "layer_{l}: non-finite energy in cell {i}"
            )));
        }
        *slot = v;
    }
    Ok(out)
}

/// Centre of cell `i` of `n` across the window, mm.
fn centre(i: usize, n: usize) -> f64 {
    -HALF_WIDTH_MM + (i as f64 + 0.5) * 2.0 * HALF_WIDTH_MM / n as f64
}

/// Energy-weighted standard deviation of the cell centres along x and y of one layer.
fn widths(cells: &[f64], (nx, ny): (usize, usize)) -> (f64, f64) {
    let total: f64 = cells.iter().sum();
    if total <= 0.0 {
        return (0.0, 0.0);
    }
    let (mut mx, mut my, mut mxx, mut myy) = (0.0, 0.0, 0.0, 0.0);
    for ix in 0..nx {
        for iy in 0..ny {
            let e = cells[ix * ny + iy] / total;
            let (x, y) = (centre(ix, nx), centre(iy, ny));
            mx += e * x;
            my += e * y;
            mxx += e * x * x;
            myy += e * y * y;
        }
    }
    (
        (mxx - mx * mx).max(0.0).sqrt(),
        (myy - my * my).max(0.0).sqrt(),
    )
}

impl Statistic for ShowerStat {
    fn name(&self) -> &str {
        self.name
    }
    fn x_name(&self) -> &str {
        match self.kind {
            Kind::Response | Kind::Depth => "shower",
            Kind::Hottest => "rank",
            _ => "layer",
        }
    }
    fn x(&self) -> &[f64] {
        &self.x
    }
    fn components(&self) -> Vec<String> {
        match self.kind {
            Kind::LayerFractions => vec!["fraction".into()],
            Kind::Response => vec!["response".into()],
            Kind::Depth => vec!["barycentre_mm".into()],
            Kind::LateralWidth => vec!["x_mm".into(), "y_mm".into()],
            Kind::Sparsity => vec!["sparsity".into()],
            Kind::Hottest => (0..3).map(|l| format!("layer_{l}")).collect(),
        }
    }
    fn options(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn compute(&self, sample: &Sample) -> Result<StatValues> {
        let cells = layers(sample)?;
        let per_layer: Vec<f64> = cells.iter().map(|c| c.iter().sum()).collect();
        let total: f64 = per_layer.iter().sum();
        Ok(match self.kind {
            Kind::LayerFractions => vec![per_layer
                .iter()
                .map(|e| if total > 0.0 { e / total } else { 0.0 })
                .collect()],
            Kind::Response => {
                let Some(&energy) = sample.params.first() else {
                    return Err(Error::Data(
                        "energy-response needs the incident energy (GeV) as the sample's first parameter".into(),
                    ));
                };
                let overflow: f64 = sample
                    .field("overflow")
                    .map_or(0.0, |f| f.data.to_f64().iter().sum());
                vec![vec![(total + overflow) / (energy * 1000.0)]]
            }
            Kind::Depth => {
                let mids: Vec<f64> = (0..3)
                    .map(|l| (LAYER_DEPTHS_MM[l] + LAYER_DEPTHS_MM[l + 1]) / 2.0)
                    .collect();
                let z = if total > 0.0 {
                    per_layer.iter().zip(&mids).map(|(e, z)| e * z).sum::<f64>() / total
                } else {
                    0.0
                };
                vec![vec![z]]
            }
            Kind::LateralWidth => {
                let w: Vec<(f64, f64)> =
                    (0..3).map(|l| widths(&cells[l], LAYER_CELLS[l])).collect();
                vec![
                    w.iter().map(|p| p.0).collect(),
                    w.iter().map(|p| p.1).collect(),
                ]
            }
            Kind::Sparsity => vec![cells
                .iter()
                .map(|c| c.iter().filter(|&&e| e > 0.0).count() as f64 / c.len() as f64)
                .collect()],
            Kind::Hottest => cells
                .iter()
                .map(|c| {
                    let mut sorted = c.clone();
                    sorted.sort_by(|a, b| b.total_cmp(a));
                    sorted.truncate(HOTTEST);
                    sorted
                })
                .collect(),
        })
    }
}

pub fn register(r: &mut Registry) -> Result<()> {
    let stats: [(Kind, &'static str, &str, Vec<f64>); 6] = [
        (
            Kind::LayerFractions,
            "layer-fractions",
            "shower energy fraction in each calorimeter layer",
            vec![0.0, 1.0, 2.0],
        ),
        (
            Kind::Response,
            "energy-response",
            "deposited energy (cells + overflow) over the incident energy (first parameter, GeV)",
            vec![0.0],
        ),
        (
            Kind::Depth,
            "shower-depth",
            "energy-weighted mean depth of the layers' centres (longitudinal barycentre), mm",
            vec![0.0],
        ),
        (
            Kind::LateralWidth,
            "lateral-width",
            "energy-weighted spread of cell centres along x and y in each layer, mm",
            vec![0.0, 1.0, 2.0],
        ),
        (
            Kind::Sparsity,
            "sparsity",
            "fraction of cells with energy in each layer",
            vec![0.0, 1.0, 2.0],
        ),
        (
            Kind::Hottest,
            "hottest-cells",
            "energies of each layer's 5 hottest cells, MeV",
            (1..=HOTTEST).map(|k| k as f64).collect(),
        ),
    ];
    for (kind, name, description, x) in stats {
        r.add_statistic(name, description, Vec::<OptionSpec>::new(), move |options, _ctx| {
            simemu_core::params::options_from_json::<serde_json::Map<String, serde_json::Value>>(name, options)
                .and_then(|o| {
                    if let Some(k) = o.keys().next() {
                        return Err(Error::Option(format!("{name}: unknown option '{k}' (it takes none)")));
                    }
                    Ok(Box::new(ShowerStat { kind, name, x: x.clone() }) as Box<dyn Statistic>)
                })
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use simemu_core::{Array, Field};

    /// A shower with known answers: layer 0 holds 10 MeV in one cell, layer 1 holds
    /// 20 MeV split over two cells 40 mm apart along x, layer 2 holds 10 MeV; the
    /// overflow 10 MeV; incident energy 0.05 GeV.
    fn sample() -> Sample {
        let mut l0 = vec![0f32; 3 * 96];
        l0[96 + 48] = 10.0;
        let mut l1 = vec![0f32; 144];
        l1[5 * 12 + 6] = 10.0;
        l1[6 * 12 + 6] = 10.0;
        let mut l2 = vec![0f32; 72];
        l2[6 * 6 + 3] = 10.0;
        let f = |name: &str, shape: Vec<usize>, v: Vec<f32>| {
            Field::new(name, shape, Array::F32(v)).unwrap()
        };
        Sample {
            fields: vec![
                f("layer_0", vec![3, 96], l0),
                f("layer_1", vec![12, 12], l1),
                f("layer_2", vec![12, 6], l2),
                f("overflow", vec![3], vec![0.0, 10.0, 0.0]),
            ],
            params: vec![0.05],
        }
    }

    /// Builds statistic `name` with `options` as the harness would for `layer_1`.
    fn build(name: &str, options: serde_json::Value) -> Result<Box<dyn Statistic>> {
        let mut r = Registry::new();
        register(&mut r).unwrap();
        let q = |_: &[f64]| Ok(vec![]);
        let v = || Ok(1.0);
        let ctx = simemu_core::StatContext {
            field: simemu_core::FieldSpec::new("layer_1", vec![12, 12], simemu_core::DType::F32),
            quantiles: &q,
            pooled_variance: &v,
        };
        (r.statistic(name).unwrap().build)(&options, &ctx)
    }

    fn compute(name: &str) -> StatValues {
        let stat = build(name, serde_json::Value::Null).unwrap();
        let values = stat.compute(&sample()).unwrap();
        assert_eq!(values.len(), stat.components().len());
        for c in &values {
            assert_eq!(c.len(), stat.x().len());
        }
        values
    }

    #[test]
    fn shower_statistics_give_the_known_answers() {
        assert_eq!(compute("layer-fractions"), vec![vec![0.25, 0.5, 0.25]]);
        assert_eq!(compute("energy-response"), vec![vec![1.0]]);
        // Layer centres 45, 263.5, 458.5 mm weighted 1:2:1.
        let z = compute("shower-depth")[0][0];
        assert!(
            (z - (45.0 + 2.0 * 263.5 + 458.5) / 4.0).abs() < 1e-12,
            "{z}"
        );
        // Two equal cells 40 mm apart along x: σ_x = 20 mm, σ_y = 0; single cells: 0.
        let w = compute("lateral-width");
        assert!(
            (w[0][1] - 20.0).abs() < 1e-9 && w[1][1].abs() < 1e-6,
            "{w:?}"
        );
        assert_eq!((w[0][0], w[0][2]), (0.0, 0.0));
        let s = compute("sparsity");
        assert_eq!(s, vec![vec![1.0 / 288.0, 2.0 / 144.0, 1.0 / 72.0]]);
        let h = compute("hottest-cells");
        assert_eq!(h[1], vec![10.0, 10.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn samples_without_the_layers_or_options_are_refused() {
        let e = build("sparsity", serde_json::json!({"bins": 3}))
            .err()
            .unwrap();
        assert!(e.to_string().contains("bins"), "{e}");
        let stat = build("sparsity", serde_json::Value::Null).unwrap();
        let mut s = sample();
        s.fields.remove(2);
        let e = stat.compute(&s).unwrap_err();
        assert!(e.to_string().contains("layer_2"), "{e}");
    }
}
