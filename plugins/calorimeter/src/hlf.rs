//! CaloChallenge's high-level features (its `HighLevelFeatures.py`, used by
//! `evaluate.py`) as statistics, on the challenge's geometries and on CaloGAN's
//! ([`crate::geometry`]):
//!
//! | statistic | per shower | per layer | separation-power histogram (`evaluate.py`) |
//! |---|---|---|---|
//! | `hlf-response` | E_tot / E_inc | — | 100 bins over 0.5–1.5 |
//! | `hlf-layer-energy` | — | E_layer, MeV | 39 log bins from the readout threshold to the reference's largest |
//! | `hlf-centroid` | — | ⟨η⟩, ⟨φ⟩, mm (layers binned across the axis) | 100 bins over ±100 mm (±500 in layers 12 and 13 of dataset 1; ±30 in datasets 2, 3) |
//! | `hlf-width` | — | √(⟨η²⟩ − ⟨η⟩²), the same in φ, mm | 100 bins over 0–100 mm (0–400; 0–30) |
//! | `hlf-radial` | — | ⟨r⟩ and its spread, mm | — |
//! | `hlf-sparsity` | — | fraction of cells without energy | — |
//!
//! and the inputs of the challenge's classifiers (`prepare_low_data_for_classifier`
//! and `prepare_high_data_for_classifier`), for the harness's `c2st-stats`:
//! `hlf-classifier-low`, log10 E_inc and every cell as 100 E/E_inc, and
//! `hlf-classifier-high`, log10 E_inc, log10(E_layer + 10⁻⁸) per layer, then
//! ⟨η⟩/100, ⟨φ⟩/100, the η widths/100 and the φ widths/100 per layer binned
//! across the axis.
//!
//! Averages are energy-weighted, Σ x E / (Σ E + 10⁻¹⁶) as the challenge writes
//! them (a layer without energy gives 0), and a variance that rounds below 0
//! is 0. E_tot sums the cells only (CaloGAN's overflow bins are not cells).
//! E_inc is the sample's first parameter: MeV for the challenge's files (the
//! `calochallenge` format's `incident_energy`), GeV for CaloGAN's showers
//! (the `calorimeter` simulator's `energy`).
//!
//! Each statistic takes `geometry`: `calogan` (default), `dataset-2`,
//! `dataset-3`, or a binning file in the challenge's XML layout (dataset 1).
//! The histograms go to the harness as `score_histograms`, which scores every
//! bin by separation power beside its KS test.

use simemu_core::bins::{ScoreHistogram, SCORE_HISTOGRAMS_KEY};
use simemu_core::{Error, OptionSpec, Registry, Result, Sample, StatValues, Statistic};

use crate::geometry::{Geometry, Layer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feature {
    Response,
    LayerEnergy,
    Centroid,
    Width,
    Radial,
    Sparsity,
    ClassifierLow,
    ClassifierHigh,
}

const FEATURES: [(Feature, &str, &str); 8] = [
    (Feature::Response, "hlf-response", "CaloChallenge feature: total cell energy over the incident energy"),
    (Feature::LayerEnergy, "hlf-layer-energy", "CaloChallenge feature: energy in each layer, MeV"),
    (
        Feature::Centroid,
        "hlf-centroid",
        "CaloChallenge feature: energy-weighted mean η and φ in each layer binned across the axis, mm",
    ),
    (
        Feature::Width,
        "hlf-width",
        "CaloChallenge feature: energy-weighted spread in η and φ in each layer binned across the axis, mm",
    ),
    (
        Feature::Radial,
        "hlf-radial",
        "CaloChallenge feature: energy-weighted mean radius and its spread in each layer, mm",
    ),
    (Feature::Sparsity, "hlf-sparsity", "CaloChallenge feature: fraction of each layer's cells without energy"),
    (
        Feature::ClassifierLow,
        "hlf-classifier-low",
        "CaloChallenge's low-level classifier inputs: log10 E_inc and every cell as 100 E/E_inc",
    ),
    (
        Feature::ClassifierHigh,
        "hlf-classifier-high",
        "CaloChallenge's high-level classifier inputs: log10 E_inc, log10(E_layer + 1e-8), centroids and widths / 100",
    ),
];

struct HlfStat {
    feature: Feature,
    name: &'static str,
    geometry: Geometry,
    geometry_option: String,
    /// Indices into `geometry.layers` of the layers reported.
    layers: Vec<usize>,
    x: Vec<f64>,
}

/// The cells of `layer` in `sample`, as f64, checked.
fn cells(sample: &Sample, layer: &Layer) -> Result<Vec<f64>> {
    let name = layer.field();
    let f = sample.field(&name)?;
    if f.shape != layer.shape {
        return Err(Error::Data(format!(
            "{name} has shape {:?}; the geometry's layer {} is {:?} (the option `geometry` names the data's binning: calogan, dataset-2, dataset-3 or an XML file)",
            f.shape, layer.id, layer.shape
        )));
    }
    if let Some(i) = f.data.first_non_finite() {
        return Err(Error::Data(format!(
            "{name}: non-finite energy in cell {i}"
        )));
    }
    Ok(f.data.to_f64())
}

/// Energy-weighted mean and spread of coordinate `axis` of a layer's cells,
/// as the challenge computes them.
fn moments(layer: &Layer, energy: &[f64], axis: usize) -> (f64, f64) {
    let total: f64 = energy.iter().sum::<f64>() + 1e-16;
    let (mut first, mut second) = (0.0, 0.0);
    for (cell, &e) in layer.cells.iter().zip(energy) {
        let x = cell[axis];
        first += x * e;
        second += x * x * e;
    }
    let mean = first / total;
    let spread = (second / total - mean * mean).max(0.0).sqrt();
    (mean, spread)
}

impl HlfStat {
    fn new(feature: Feature, name: &'static str, geometry_option: &str) -> Result<HlfStat> {
        let geometry = Geometry::from_option(geometry_option)?;
        let layers: Vec<usize> = match feature {
            Feature::Response => vec![],
            Feature::Centroid | Feature::Width => geometry
                .layers
                .iter()
                .enumerate()
                .filter(|(_, l)| l.transverse)
                .map(|(i, _)| i)
                .collect(),
            _ => (0..geometry.layers.len()).collect(),
        };
        if matches!(feature, Feature::Centroid | Feature::Width) && layers.is_empty() {
            return Err(Error::Option(format!(
                "{name}: geometry '{geometry_option}' has no layer binned across the axis"
            )));
        }
        let transverse = geometry.layers.iter().filter(|l| l.transverse).count();
        let inputs = match feature {
            Feature::ClassifierLow => Some(1 + geometry.voxels()),
            Feature::ClassifierHigh => Some(1 + geometry.layers.len() + 4 * transverse),
            _ => None,
        };
        let x = match (feature, inputs) {
            (Feature::Response, _) => vec![0.0],
            (_, Some(n)) => (0..n).map(|i| i as f64).collect(),
            _ => layers
                .iter()
                .map(|&i| geometry.layers[i].id as f64)
                .collect(),
        };
        Ok(HlfStat {
            feature,
            name,
            geometry,
            geometry_option: geometry_option.to_string(),
            layers,
            x,
        })
    }

    /// The challenge's histogram limits for centroids (`width` false) and
    /// widths of layer `id`.
    fn transverse_histogram(&self, id: usize, width: bool) -> ScoreHistogram {
        let regular = matches!(
            self.geometry.dataset,
            Some(crate::geometry::ChallengeDataset::Two | crate::geometry::ChallengeDataset::Three)
        );
        let reach = if regular {
            30.0
        } else if self.geometry.dataset.is_some() && (id == 12 || id == 13) {
            if width {
                400.0
            } else {
                500.0
            }
        } else {
            100.0
        };
        let lo = if width { 0.0 } else { -reach };
        ScoreHistogram::Linear {
            lo,
            hi: reach,
            edges: 101,
        }
    }

    fn score_histograms(&self) -> Option<Vec<Vec<ScoreHistogram>>> {
        match self.feature {
            Feature::Response => Some(vec![vec![ScoreHistogram::Linear {
                lo: 0.5,
                hi: 1.5,
                edges: 101,
            }]]),
            Feature::LayerEnergy => Some(vec![vec![
                ScoreHistogram::LogToReferenceMax {
                    lo: self.geometry.min_energy_mev(),
                    edges: 40,
                };
                self.layers.len()
            ]]),
            Feature::Centroid | Feature::Width => {
                let width = self.feature == Feature::Width;
                let row: Vec<ScoreHistogram> = self
                    .layers
                    .iter()
                    .map(|&i| self.transverse_histogram(self.geometry.layers[i].id, width))
                    .collect();
                Some(vec![row.clone(), row])
            }
            Feature::Radial
            | Feature::Sparsity
            | Feature::ClassifierLow
            | Feature::ClassifierHigh => None,
        }
    }

    /// E_inc in MeV from the sample's first parameter.
    fn incident_mev(&self, sample: &Sample) -> Result<f64> {
        let Some(&e) = sample.params.first() else {
            return Err(Error::Data(format!(
                "{} needs the incident energy as the sample's first parameter",
                self.name
            )));
        };
        Ok(if self.geometry.incident_in_gev {
            e * 1000.0
        } else {
            e
        })
    }
}

impl Statistic for HlfStat {
    fn name(&self) -> &str {
        self.name
    }
    fn x_name(&self) -> &str {
        match self.feature {
            Feature::Response => "shower",
            Feature::ClassifierLow | Feature::ClassifierHigh => "input",
            _ => "layer",
        }
    }
    fn x(&self) -> &[f64] {
        &self.x
    }
    fn components(&self) -> Vec<String> {
        let names: &[&str] = match self.feature {
            Feature::Response => &["etot_over_einc"],
            Feature::LayerEnergy => &["energy_mev"],
            Feature::Centroid | Feature::Width => &["eta_mm", "phi_mm"],
            Feature::Radial => &["centroid_mm", "width_mm"],
            Feature::Sparsity => &["sparsity"],
            Feature::ClassifierLow | Feature::ClassifierHigh => &["input"],
        };
        names.iter().map(|s| s.to_string()).collect()
    }
    fn options(&self) -> serde_json::Value {
        let mut o = serde_json::json!({ "geometry": self.geometry_option });
        if let Some(h) = self.score_histograms() {
            o[SCORE_HISTOGRAMS_KEY] = serde_json::to_value(h).expect("plain data");
        }
        o
    }
    fn compute(&self, sample: &Sample) -> Result<StatValues> {
        let g = &self.geometry;
        Ok(match self.feature {
            Feature::Response => {
                let mut total = 0.0;
                for layer in &g.layers {
                    total += cells(sample, layer)?.iter().sum::<f64>();
                }
                vec![vec![total / self.incident_mev(sample)?]]
            }
            Feature::LayerEnergy => {
                let mut row = Vec::with_capacity(self.layers.len());
                for &i in &self.layers {
                    row.push(cells(sample, &g.layers[i])?.iter().sum());
                }
                vec![row]
            }
            Feature::Centroid | Feature::Width | Feature::Radial => {
                let axes: [usize; 2] = if self.feature == Feature::Radial {
                    [2, 2]
                } else {
                    [0, 1]
                };
                let mut out: Vec<Vec<f64>> = vec![Vec::new(), Vec::new()];
                for &i in &self.layers {
                    let layer = &g.layers[i];
                    let e = cells(sample, layer)?;
                    let first = moments(layer, &e, axes[0]);
                    let second = moments(layer, &e, axes[1]);
                    let (a, b) = match self.feature {
                        Feature::Centroid => (first.0, second.0),
                        Feature::Width => (first.1, second.1),
                        _ => (first.0, first.1),
                    };
                    out[0].push(a);
                    out[1].push(b);
                }
                out
            }
            Feature::ClassifierLow => {
                let e_inc = self.incident_mev(sample)?;
                let mut row = Vec::with_capacity(self.x.len());
                row.push(e_inc.log10());
                for layer in &g.layers {
                    row.extend(cells(sample, layer)?.iter().map(|e| 100.0 * e / e_inc));
                }
                vec![row]
            }
            Feature::ClassifierHigh => {
                let mut row = Vec::with_capacity(self.x.len());
                row.push(self.incident_mev(sample)?.log10());
                let mut per_layer = Vec::with_capacity(g.layers.len());
                for layer in &g.layers {
                    per_layer.push(cells(sample, layer)?);
                }
                row.extend(
                    per_layer
                        .iter()
                        .map(|e| (e.iter().sum::<f64>() + 1e-8).log10()),
                );
                let transverse: Vec<(&Layer, &Vec<f64>)> = g
                    .layers
                    .iter()
                    .zip(&per_layer)
                    .filter(|(l, _)| l.transverse)
                    .collect();
                let eta: Vec<(f64, f64)> =
                    transverse.iter().map(|(l, e)| moments(l, e, 0)).collect();
                let phi: Vec<(f64, f64)> =
                    transverse.iter().map(|(l, e)| moments(l, e, 1)).collect();
                // evaluate.py's order: centroids in η, in φ, then widths in η, in φ.
                row.extend(eta.iter().map(|m| m.0 / 100.0));
                row.extend(phi.iter().map(|m| m.0 / 100.0));
                row.extend(eta.iter().map(|m| m.1 / 100.0));
                row.extend(phi.iter().map(|m| m.1 / 100.0));
                vec![row]
            }
            Feature::Sparsity => {
                let mut row = Vec::with_capacity(self.layers.len());
                for &i in &self.layers {
                    let e = cells(sample, &g.layers[i])?;
                    let hit = e.iter().filter(|&&v| v > 0.0).count();
                    row.push(1.0 - hit as f64 / e.len() as f64);
                }
                vec![row]
            }
        })
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HlfOptions {
    #[serde(default = "default_geometry")]
    geometry: String,
}

fn default_geometry() -> String {
    "calogan".into()
}

pub fn register(r: &mut Registry) -> Result<()> {
    for (feature, name, description) in FEATURES {
        r.add_statistic(
            name,
            description,
            vec![OptionSpec::new(
                "geometry",
                "calogan",
                "calogan, dataset-2, dataset-3, or a CaloChallenge binning XML file (dataset 1)",
            )],
            move |options, _ctx| {
                let o: HlfOptions = simemu_core::params::options_from_json(name, options)?;
                Ok(Box::new(HlfStat::new(feature, name, &o.geometry)?) as Box<dyn Statistic>)
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use simemu_core::{Array, Field};

    /// CaloGAN's layers: 10 MeV in one cell of layer 0; in layer 1, 10 MeV in
    /// each of two cells 40 mm apart along x; layer 2 empty; incident 0.05 GeV.
    fn shower() -> Sample {
        let mut l0 = vec![0f32; 3 * 96];
        l0[96 + 48] = 10.0;
        let mut l1 = vec![0f32; 144];
        l1[5 * 12 + 6] = 10.0;
        l1[6 * 12 + 6] = 10.0;
        let f = |name: &str, shape: Vec<usize>, v: Vec<f32>| {
            Field::new(name, shape, Array::F32(v)).unwrap()
        };
        Sample {
            fields: vec![
                f("layer_0", vec![3, 96], l0),
                f("layer_1", vec![12, 12], l1),
                f("layer_2", vec![12, 6], vec![0.0; 72]),
            ],
            params: vec![0.05],
        }
    }

    fn compute(feature: Feature) -> StatValues {
        let (_, name, _) = FEATURES.iter().find(|f| f.0 == feature).unwrap();
        HlfStat::new(feature, name, "calogan")
            .unwrap()
            .compute(&shower())
            .unwrap()
    }

    #[test]
    fn calogan_showers_give_the_known_features() {
        // 30 MeV of 50 MeV.
        assert!((compute(Feature::Response)[0][0] - 0.6).abs() < 1e-15);
        assert_eq!(compute(Feature::LayerEnergy), vec![vec![10.0, 20.0, 0.0]]);
        // Layer 1's cells are 40 mm wide; cells 5 and 6 along x have centres
        // −20 and +20 mm, cell 6 along y +20 mm. An empty layer gives 0.
        let c = compute(Feature::Centroid);
        assert!(
            c[0][1].abs() < 1e-9 && (c[1][1] - 20.0).abs() < 1e-9,
            "{c:?}"
        );
        assert_eq!((c[0][2], c[1][2]), (0.0, 0.0));
        let w = compute(Feature::Width);
        assert!(
            (w[0][1] - 20.0).abs() < 1e-9 && w[1][1].abs() < 1e-6,
            "{w:?}"
        );
        // Both cells of layer 1 lie √(20² + 20²) from the axis.
        let r = compute(Feature::Radial);
        assert!(
            (r[0][1] - 800f64.sqrt()).abs() < 1e-9 && r[1][1] < 1e-6,
            "{r:?}"
        );
        let s = compute(Feature::Sparsity);
        assert_eq!(s, vec![vec![1.0 - 1.0 / 288.0, 1.0 - 2.0 / 144.0, 1.0]]);
    }

    #[test]
    fn a_layer_of_the_wrong_shape_or_a_missing_geometry_is_refused() {
        let stat = HlfStat::new(Feature::LayerEnergy, "hlf-layer-energy", "dataset-2").unwrap();
        let e = stat.compute(&shower()).unwrap_err();
        assert!(e.to_string().contains("[16, 9]"), "{e}");
        let e = HlfStat::new(Feature::Width, "hlf-width", "no/such/binning.xml")
            .err()
            .unwrap();
        assert!(e.to_string().contains("no/such/binning.xml"), "{e}");
    }
}
