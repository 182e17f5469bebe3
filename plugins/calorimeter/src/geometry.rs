//! Calorimeter readout geometries as the high-level features see them: per
//! layer, the field holding its cells and each cell's transverse position.
//!
//! - **CaloChallenge 2022** (arXiv:2410.21611): layers binned in polar
//!   coordinates around the particle's axis — radial bins with edges r₀ < r₁ < …
//!   (mm) and `n_alpha` equal angular bins over (−π, π]. A layer's voxels run
//!   angle-major, radius fastest, and the layers follow each other in the
//!   order the binning lists them: the order of a row of the challenge's
//!   `showers` dataset. The binning is the challenge's XML layout
//!   (`<Bins><Bin name=…><Layer id=… r_edges="0,…" n_bin_alpha=…/>…`, the
//!   files `binning_dataset_*.xml`); a layer with a single edge has no voxels.
//!   Datasets 2 and 3 use a regular binning, built in here: 45 layers of 9
//!   radial bins of 4.65 mm (half a Molière radius) × 16 angles, and of 18
//!   bins of 2.325 mm × 50 angles. A voxel's position is its bin's centre
//!   (r̄ the radial midpoint, ᾱ the angular one): η = r̄ cos ᾱ, φ = r̄ sin ᾱ.
//! - **CaloGAN** (the `calorimeter` simulator's): three Cartesian layers; a
//!   cell's η and φ are its centre's x and y, its r the distance of that centre
//!   from the axis.

use std::path::Path;

use simemu_core::{Error, Result};

use crate::{HALF_WIDTH_MM, LAYER_CELLS};

/// One readout layer: the field of a sample that holds it and where its cells are.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// The layer's number in its detector (the challenge's layer id).
    pub id: usize,
    /// The field's shape: (angles, radii) for polar layers, (x, y) for CaloGAN's.
    pub shape: [usize; 2],
    /// Each cell's (η, φ, r), mm, in the field's order.
    pub cells: Vec<[f64; 3]>,
    /// Whether the layer resolves a direction across the axis (the challenge's
    /// "binned in alpha"); centroids and widths in η and φ exist only for these.
    pub transverse: bool,
    /// The radial bin edges of a polar layer, mm (empty for CaloGAN's).
    pub r_edges: Vec<f64>,
}

impl Layer {
    /// The name of the sample field that holds this layer.
    pub fn field(&self) -> String {
        format!("layer_{}", self.id)
    }

    pub fn voxels(&self) -> usize {
        self.cells.len()
    }

    fn polar(id: usize, r_edges: Vec<f64>, n_alpha: usize) -> Layer {
        let n_r = r_edges.len() - 1;
        let mut cells = Vec::with_capacity(n_alpha * n_r);
        let alpha_edges =
            simemu_core::bins::linspace(-std::f64::consts::PI, std::f64::consts::PI, n_alpha + 1);
        for a in alpha_edges.windows(2) {
            let alpha = a[0] + (a[1] - a[0]) / 2.0;
            for r in r_edges.windows(2) {
                let radius = r[0] + (r[1] - r[0]) / 2.0;
                cells.push([radius * alpha.cos(), radius * alpha.sin(), radius]);
            }
        }
        Layer {
            id,
            shape: [n_alpha, n_r],
            cells,
            transverse: n_alpha > 1,
            r_edges,
        }
    }
}

/// The challenge's datasets, told apart by their voxel counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeDataset {
    OnePhotons,
    OnePions,
    Two,
    Three,
}

impl ChallengeDataset {
    pub const ALL: [ChallengeDataset; 4] = [
        ChallengeDataset::OnePhotons,
        ChallengeDataset::OnePions,
        ChallengeDataset::Two,
        ChallengeDataset::Three,
    ];

    /// The voxels of one shower (`evaluate.py`'s `check_file`).
    pub fn voxels(self) -> usize {
        match self {
            ChallengeDataset::OnePhotons => 368,
            ChallengeDataset::OnePions => 533,
            ChallengeDataset::Two => 6_480,
            ChallengeDataset::Three => 40_500,
        }
    }

    /// The name the challenge gives it (`evaluate.py --dataset`).
    pub fn name(self) -> &'static str {
        match self {
            ChallengeDataset::OnePhotons => "1-photons",
            ChallengeDataset::OnePions => "1-pions",
            ChallengeDataset::Two => "2",
            ChallengeDataset::Three => "3",
        }
    }

    pub fn from_voxels(voxels: usize) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.voxels() == voxels)
    }

    /// The smallest energy a voxel reads out, MeV: `evaluate.py`'s `min_energy`,
    /// where its energy histograms start (10 MeV for dataset 1; 0.5 keV over the
    /// sampling fraction 0.033 for datasets 2 and 3).
    pub fn min_energy_mev(self) -> f64 {
        match self {
            ChallengeDataset::OnePhotons | ChallengeDataset::OnePions => 10.0,
            ChallengeDataset::Two | ChallengeDataset::Three => 0.5e-3 / 0.033,
        }
    }
}

/// A detector's readout layers, in the order of the challenge's voxel rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    /// The particle the binning is for (the XML's `name`), or "calogan".
    pub particle: String,
    /// The layers that hold cells.
    pub layers: Vec<Layer>,
    /// The challenge's dataset of this voxel count, if it is one.
    pub dataset: Option<ChallengeDataset>,
    /// Whether showers give their incident energy in GeV (the `calorimeter`
    /// simulator's `energy`) rather than MeV (the challenge's files).
    pub incident_in_gev: bool,
}

impl Geometry {
    /// The `calorimeter` simulator's three layers.
    pub fn calogan() -> Geometry {
        let centre =
            |i: usize, n: usize| -HALF_WIDTH_MM + (i as f64 + 0.5) * 2.0 * HALF_WIDTH_MM / n as f64;
        let layers = LAYER_CELLS
            .iter()
            .enumerate()
            .map(|(id, &(nx, ny))| {
                let mut cells = Vec::with_capacity(nx * ny);
                for ix in 0..nx {
                    for iy in 0..ny {
                        let (x, y) = (centre(ix, nx), centre(iy, ny));
                        cells.push([x, y, x.hypot(y)]);
                    }
                }
                Layer {
                    id,
                    shape: [nx, ny],
                    cells,
                    transverse: true,
                    r_edges: vec![],
                }
            })
            .collect();
        Geometry {
            particle: "calogan".into(),
            layers,
            dataset: None,
            incident_in_gev: true,
        }
    }

    /// The built-in regular binning of datasets 2 and 3; datasets 1 come from
    /// their XML files ([`Geometry::from_xml_file`]).
    pub fn regular(dataset: ChallengeDataset) -> Result<Geometry> {
        let (n_r, n_alpha) = match dataset {
            ChallengeDataset::Two => (9, 16),
            ChallengeDataset::Three => (18, 50),
            other => {
                return Err(Error::Option(format!(
                "dataset {} has an irregular binning: give its XML file (binning_dataset_1_{}.xml)",
                other.name(),
                if other == ChallengeDataset::OnePhotons {
                    "photons"
                } else {
                    "pions"
                }
            )))
            }
        };
        // 41.85 mm = 4.5 Molière radii of 9.3 mm, split into n_r equal bins.
        let width = 41.85 / n_r as f64;
        let edges: Vec<f64> = (0..=n_r).map(|k| k as f64 * width).collect();
        let layers = (0..45)
            .map(|id| Layer::polar(id, edges.clone(), n_alpha))
            .collect();
        Ok(Geometry {
            particle: "electron".into(),
            layers,
            dataset: Some(dataset),
            incident_in_gev: false,
        })
    }

    /// A geometry by name as options give it: `calogan`, `dataset-2`,
    /// `dataset-3`, or the path of a binning file in the challenge's XML layout.
    pub fn from_option(value: &str) -> Result<Geometry> {
        match value {
            "calogan" => Ok(Geometry::calogan()),
            "dataset-2" => Geometry::regular(ChallengeDataset::Two),
            "dataset-3" => Geometry::regular(ChallengeDataset::Three),
            path => Geometry::from_xml_file(Path::new(path)),
        }
    }

    pub fn from_xml_file(path: &Path) -> Result<Geometry> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Geometry::from_xml(&text).map_err(|e| Error::bad_file(path, e))
    }

    /// Parses the challenge's binning layout; the error says what is wrong.
    pub fn from_xml(text: &str) -> std::result::Result<Geometry, String> {
        let doc = roxmltree::Document::parse(text).map_err(|e| format!("not XML: {e}"))?;
        let root = doc.root_element();
        if root.tag_name().name() != "Bins" {
            return Err(format!(
                "the root element is <{}>; a binning file's is <Bins>",
                root.tag_name().name()
            ));
        }
        let bins: Vec<_> = root.children().filter(|n| n.is_element()).collect();
        let [bin] = bins[..] else {
            return Err(format!(
                "<Bins> holds {} <Bin> elements; a binning file describes one particle",
                bins.len()
            ));
        };
        let particle = bin.attribute("name").unwrap_or("").to_string();
        let mut layers = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for node in bin.children().filter(|n| n.is_element()) {
            if node.tag_name().name() != "Layer" {
                return Err(format!(
                    "<Bin> holds a <{}>; expected <Layer>",
                    node.tag_name().name()
                ));
            }
            let attr = |name: &str| {
                node.attribute(name)
                    .ok_or_else(|| format!("a <Layer> has no '{name}' attribute"))
            };
            let id: usize = attr("id")?.trim().parse().map_err(|_| {
                format!(
                    "layer id '{}' is not a whole number",
                    attr("id").unwrap_or("")
                )
            })?;
            if !seen.insert(id) {
                return Err(format!("layer {id} is listed twice"));
            }
            let edges = attr("r_edges")?
                .split(',')
                .map(|s| s.trim().parse::<f64>())
                .collect::<std::result::Result<Vec<f64>, _>>()
                .map_err(|_| {
                    format!(
                        "layer {id}: r_edges '{}' are not numbers",
                        attr("r_edges").unwrap_or("")
                    )
                })?;
            let n_alpha: usize = attr("n_bin_alpha")?
                .trim()
                .parse()
                .map_err(|_| format!("layer {id}: n_bin_alpha is not a whole number"))?;
            if edges.iter().any(|e| !e.is_finite() || *e < 0.0)
                || edges.windows(2).any(|w| w[0] >= w[1])
            {
                return Err(format!(
                    "layer {id}: r_edges must be non-negative and increase strictly, got {edges:?}"
                ));
            }
            if n_alpha == 0 {
                return Err(format!("layer {id}: n_bin_alpha must be at least 1"));
            }
            if edges.len() >= 2 {
                layers.push(Layer::polar(id, edges, n_alpha));
            }
        }
        if layers.is_empty() {
            return Err("no layer has radial bins (every r_edges holds a single edge)".into());
        }
        let voxels = layers.iter().map(Layer::voxels).sum();
        Ok(Geometry {
            particle,
            layers,
            dataset: ChallengeDataset::from_voxels(voxels),
            incident_in_gev: false,
        })
    }

    /// Voxels of one shower, all layers together.
    pub fn voxels(&self) -> usize {
        self.layers.iter().map(Layer::voxels).sum()
    }

    /// The smallest readout energy, MeV, where energy histograms start: the
    /// challenge's for its datasets; for CaloGAN's cells, 1 MeV.
    pub fn min_energy_mev(&self) -> f64 {
        self.dataset.map_or(1.0, ChallengeDataset::min_energy_mev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHOTONS: &str = include_str!("../tests/fixtures/binning_small.xml");

    #[test]
    fn the_xml_layout_gives_layers_voxels_and_positions() {
        let g = Geometry::from_xml(PHOTONS).unwrap();
        assert_eq!(g.particle, "photon");
        let ids: Vec<usize> = g.layers.iter().map(|l| l.id).collect();
        assert_eq!(ids, [0, 1, 3]);
        assert_eq!(g.layers[1].shape, [4, 3]);
        assert_eq!(g.voxels(), 2 + 12 + 1);
        assert_eq!(g.dataset, None);
        // Layer 1, angle bin 0 (centre −3π/4), radial bin 2 (centre 7.5 mm).
        let [eta, phi, r] = g.layers[1].cells[2];
        let a = -0.75 * std::f64::consts::PI;
        assert_eq!(r, 7.5);
        assert!((eta - 7.5 * a.cos()).abs() < 1e-12 && (phi - 7.5 * a.sin()).abs() < 1e-12);
        // A single angular bin is centred on 0: η = r, φ = 0.
        assert_eq!(g.layers[0].cells[1], [15.0, 0.0, 15.0]);
        assert!(!g.layers[0].transverse && g.layers[1].transverse);
    }

    #[test]
    fn the_regular_datasets_have_the_challenge_voxel_counts() {
        for d in [ChallengeDataset::Two, ChallengeDataset::Three] {
            let g = Geometry::regular(d).unwrap();
            assert_eq!(g.voxels(), d.voxels());
            assert_eq!(g.dataset, Some(d));
        }
        let g = Geometry::regular(ChallengeDataset::Two).unwrap();
        assert!((g.layers[7].r_edges[9] - 41.85).abs() < 1e-12);
        assert!((g.layers[7].r_edges[1] - 4.65).abs() < 1e-12);
        let e = Geometry::regular(ChallengeDataset::OnePions).unwrap_err();
        assert!(e.to_string().contains("binning_dataset_1_pions.xml"), "{e}");
    }

    #[test]
    fn broken_binning_files_are_refused_saying_why() {
        for (text, says) in [
            ("<Bins>", "not XML"),
            ("<Bin/>", "<Bins>"),
            ("<Bins></Bins>", "0 <Bin>"),
            (
                r#"<Bins><Bin><Layer id="0" r_edges="0,2,1" n_bin_alpha="1"/></Bin></Bins>"#,
                "increase",
            ),
            (
                r#"<Bins><Bin><Layer id="0" r_edges="0,1" n_bin_alpha="0"/></Bin></Bins>"#,
                "at least 1",
            ),
            (
                r#"<Bins><Bin><Layer id="0" n_bin_alpha="1"/></Bin></Bins>"#,
                "r_edges",
            ),
            (
                r#"<Bins><Bin><Layer id="0" r_edges="0" n_bin_alpha="1"/></Bin></Bins>"#,
                "no layer",
            ),
            (
                r#"<Bins><Bin><Layer id="0" r_edges="0,1" n_bin_alpha="1"/><Layer id="0" r_edges="0,1" n_bin_alpha="1"/></Bin></Bins>"#,
                "twice",
            ),
        ] {
            let e = Geometry::from_xml(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
