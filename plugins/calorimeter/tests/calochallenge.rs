//! CaloChallenge's files and high-level features (feature `hdf5`): h5py-written
//! challenge files import with exactly their values, the `hlf-*` statistics and
//! their separation powers equal the challenge's formulas on fixtures
//! (`tests/fixtures/make_calochallenge_fixture.py`), exports pass `check_file`'s
//! rules and round-trip, and malformed files are refused by name.
#![cfg(feature = "hdf5")]

use std::path::{Path, PathBuf};

use hdf5_metno as h5;
use simemu_calorimeter::challenge_h5::CaloChallengeFormat;
use simemu_core::bins::{ScoreHistogram, SCORE_HISTOGRAMS_KEY};
use simemu_core::dataset::{DatasetSpec, DatasetWriter};
use simemu_core::formats::{import_dataset, Format};
use simemu_core::{DType, Dataset, Registry, Sample, Simulator, Statistic};

const FIXTURES: &str = "tests/fixtures";
const PHOTONS_XML: &str = "tests/fixtures/binning_dataset_1_photons.xml";

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

fn import(
    inputs: &[PathBuf],
    options: serde_json::Value,
    out: &Path,
) -> simemu_core::Result<Dataset> {
    import_dataset(&CaloChallengeFormat, inputs, &options, out, 64, false)?;
    Dataset::open(out)
}

fn photons() -> serde_json::Value {
    serde_json::json!({ "binning": PHOTONS_XML })
}

fn statistic(name: &str, geometry: &str) -> Box<dyn Statistic> {
    let mut r = Registry::new();
    simemu_calorimeter::register(&mut r).unwrap();
    let q = |_: &[f64]| Ok(vec![]);
    let v = || Ok(1.0);
    let ctx = simemu_core::StatContext {
        field: simemu_core::FieldSpec::new("layer_1", vec![10, 16], DType::F32),
        quantiles: &q,
        pooled_variance: &v,
    };
    (r.statistic(name).unwrap().build)(&serde_json::json!({ "geometry": geometry }), &ctx).unwrap()
}

/// `[component][bin][shower]` of a statistic over a set.
fn measure(stat: &dyn Statistic, samples: &[Sample]) -> Vec<Vec<Vec<f64>>> {
    let per: Vec<_> = samples.iter().map(|s| stat.compute(s).unwrap()).collect();
    (0..stat.components().len())
        .map(|c| {
            (0..stat.x().len())
                .map(|b| per.iter().map(|v| v[c][b]).collect())
                .collect()
        })
        .collect()
}

/// Relative agreement to 1e-6, with an absolute floor for values near 0 (a
/// centroid of a symmetric layer) at 1e-6 of the quantity's scale.
fn assert_close(got: &[f64], want: &[f64], scale: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-6 * w.abs().max(scale),
            "{what} shower {i}: {g} vs {w}"
        );
    }
}

#[test]
fn an_h5py_written_dataset_2_file_imports_with_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let ds = import(
        &[fixture("calochallenge_ds2.h5")],
        serde_json::json!({}),
        &dir.path().join("ds"),
    )
    .unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.param_names(), ["incident_energy"]);
    assert_eq!(ds.fields().len(), 45);
    assert!(ds
        .fields()
        .iter()
        .all(|f| f.shape == [16, 9] && f.dtype == DType::F32));
    let energies = [1000.0, 65536.5, 1e6];
    for (i, s) in ds.read_samples(0, 3).unwrap().iter().enumerate() {
        assert_eq!(s.params, [energies[i]]);
        let row: Vec<f32> = s
            .fields
            .iter()
            .flat_map(|f| f.data.to_f64())
            .map(|v| v as f32)
            .collect();
        let expected: Vec<f32> = (0..6480)
            .map(|v| {
                if (7 * v + 13 * i) % 29 == 0 {
                    (i + 1) as f32 / 2.0 + v as f32 / 64.0
                } else {
                    0.0
                }
            })
            .collect();
        assert_eq!(row, expected, "shower {i}");
    }
}

#[test]
fn high_level_features_and_separation_powers_equal_the_challenges() {
    let dir = tempfile::tempdir().unwrap();
    let fixture_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("calochallenge_hlf.json")).unwrap())
            .unwrap();
    let mut sets = Vec::new();
    for name in ["a", "b"] {
        let ds = import(
            &[fixture(&format!("calochallenge_ds1_{name}.h5"))],
            photons(),
            &dir.path().join(name),
        )
        .unwrap();
        assert_eq!(ds.len(), 200);
        assert_eq!(
            ds.fields()
                .iter()
                .map(|f| f.shape.iter().product::<usize>())
                .sum::<usize>(),
            368
        );
        sets.push(ds.read_samples(0, ds.len()).unwrap());
    }
    let want = |set: &str, key: &str, layer: Option<f64>| -> Vec<f64> {
        let v = &fixture_json["features"][set][key];
        let v = match layer {
            Some(l) => &v[format!("{l}")],
            None => v,
        };
        serde_json::from_value(v.clone()).unwrap()
    };
    let mut separation_checked = 0;
    for (name, keys, scale) in [
        ("hlf-layer-energy", vec!["E_layer"], 1.0),
        ("hlf-centroid", vec!["EC_eta", "EC_phi"], 1.0),
        ("hlf-width", vec!["width_eta", "width_phi"], 1.0),
        ("hlf-radial", vec!["EC_r", "width_r"], 1.0),
        ("hlf-sparsity", vec!["sparsity"], 1e-3),
        ("hlf-response", vec![], 1e-3),
    ] {
        let stat = statistic(name, PHOTONS_XML);
        let a = measure(stat.as_ref(), &sets[0]);
        let b = measure(stat.as_ref(), &sets[1]);
        if name == "hlf-response" {
            let energies: Vec<f64> = sets[0].iter().map(|s| s.params[0]).collect();
            let expected: Vec<f64> = want("a", "E_tot", None)
                .iter()
                .zip(&energies)
                .map(|(t, e)| t / e)
                .collect();
            assert_close(&a[0][0], &expected, scale, name);
        }
        for (c, key) in keys.iter().enumerate() {
            for (bin, &layer) in stat.x().iter().enumerate() {
                assert_close(
                    &a[c][bin],
                    &want("a", key, Some(layer)),
                    scale,
                    &format!("{name} {key} {layer}"),
                );
                assert_close(
                    &b[c][bin],
                    &want("b", key, Some(layer)),
                    scale,
                    &format!("{name} {key} {layer}"),
                );
            }
        }
        let histograms: Option<Vec<Vec<ScoreHistogram>>> = stat
            .options()
            .get(SCORE_HISTOGRAMS_KEY)
            .map(|h| serde_json::from_value(h.clone()).unwrap());
        let Some(histograms) = histograms else {
            continue;
        };
        for (c, row) in histograms.iter().enumerate() {
            for (bin, h) in row.iter().enumerate() {
                let key = match name {
                    "hlf-response" => "E_tot/E_inc".to_string(),
                    _ => format!("{} {}", keys[c], stat.x()[bin]),
                };
                let edges = h.edges(&a[c][bin]).unwrap();
                let got =
                    simemu_validate::separation::separation_power(&a[c][bin], &b[c][bin], &edges)
                        .unwrap();
                let expected = fixture_json["separation_power"][&key].as_f64().unwrap();
                assert!(
                    (got - expected).abs() <= 1e-6 * expected.abs(),
                    "{key}: separation power {got} vs the challenge's {expected}"
                );
                separation_checked += 1;
            }
        }
    }
    // E_tot/E_inc, five layer energies, and centroids and widths in η and φ of
    // the two layers binned in angle.
    assert_eq!(separation_checked, 1 + 5 + 8);

    // The classifiers' inputs, row by row.
    for (name, key, showers, width) in [
        ("hlf-classifier-low", "classifier_low_a_first_5", 5, 1 + 368),
        (
            "hlf-classifier-high",
            "classifier_high_a",
            200,
            1 + 5 + 4 * 2,
        ),
    ] {
        let stat = statistic(name, PHOTONS_XML);
        assert_eq!(stat.x().len(), width, "{name}");
        let rows: Vec<Vec<f64>> = serde_json::from_value(fixture_json[key].clone()).unwrap();
        assert_eq!(rows.len(), showers);
        for (i, want) in rows.iter().enumerate() {
            let got = &stat.compute(&sets[0][i]).unwrap()[0];
            assert_close(got, want, 1e-3, &format!("{name} shower {i}"));
        }
    }
}

#[test]
fn exports_pass_check_file_and_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for (input, options) in [
        ("calochallenge_ds1_a.h5", photons()),
        ("calochallenge_ds2.h5", serde_json::json!({})),
    ] {
        let ds = import(&[fixture(input)], options.clone(), &dir.path().join(input)).unwrap();
        let out = dir.path().join(format!("out-{input}"));
        CaloChallengeFormat
            .export(&ds, None, &out, &options, false)
            .unwrap();
        // evaluate.py's check_file: as many energies as showers, the dataset's voxels.
        let file = h5::File::open(&out).unwrap();
        let n = file.dataset("incident_energies").unwrap().shape();
        let showers = file.dataset("showers").unwrap().shape();
        assert_eq!(n, [ds.len(), 1]);
        // gzip-compressed, as the challenge's files are.
        let filters = file.dataset("showers").unwrap().filters();
        assert!(
            filters
                .iter()
                .any(|f| matches!(f, h5::filters::Filter::Deflate(4))),
            "{filters:?}"
        );
        assert_eq!(
            showers,
            [ds.len(), if input.contains("ds1") { 368 } else { 6480 }]
        );
        // The exported rows equal the source file's.
        let source = h5::File::open(fixture(input)).unwrap();
        let a: Vec<f32> = source.dataset("showers").unwrap().read_raw().unwrap();
        let b: Vec<f32> = file.dataset("showers").unwrap().read_raw().unwrap();
        assert_eq!(a, b, "{input}");
        let ea: Vec<f64> = source
            .dataset("incident_energies")
            .unwrap()
            .read_raw()
            .unwrap();
        let eb: Vec<f64> = file
            .dataset("incident_energies")
            .unwrap()
            .read_raw()
            .unwrap();
        assert_eq!(ea, eb, "{input}");
        // And it imports to the same samples.
        let back = import(
            std::slice::from_ref(&out),
            options,
            &dir.path().join(format!("back-{input}")),
        )
        .unwrap();
        assert_eq!(
            back.read_samples(0, back.len()).unwrap(),
            ds.read_samples(0, ds.len()).unwrap()
        );
        // An existing file is never clobbered.
        let before = std::fs::read(&out).unwrap();
        let e = CaloChallengeFormat.export(&ds, None, &out, &serde_json::json!({}), false);
        assert!(e.is_err());
        assert_eq!(std::fs::read(&out).unwrap(), before);
    }
}

/// Writes a challenge-layout file: `voxels` per shower, the energies given, and
/// `edit` applied to the shower values; `keys` are the datasets written.
fn write_variant(
    path: &Path,
    voxels: usize,
    energies: &[f64],
    edit: impl Fn(&mut Vec<f32>),
    keys: &[&str],
) {
    let file = h5::File::create(path).unwrap();
    let n = energies.len();
    let mut values = vec![1.0f32; n * voxels];
    edit(&mut values);
    if keys.contains(&"showers") {
        let ds = file
            .new_dataset::<f32>()
            .shape([n, voxels])
            .create("showers")
            .unwrap();
        ds.write_raw(&values).unwrap();
    }
    if keys.contains(&"incident_energies") {
        let ds = file
            .new_dataset::<f64>()
            .shape([n, 1])
            .create("incident_energies")
            .unwrap();
        ds.write_raw(energies).unwrap();
    }
}

/// One malformed file: what it holds and what its refusal must say.
struct Case {
    name: &'static str,
    voxels: usize,
    energies: Vec<f64>,
    edit: fn(&mut Vec<f32>),
    keys: &'static [&'static str],
    binning: bool,
    says: &'static str,
}

#[test]
fn malformed_files_are_refused_by_name_and_leave_nothing_behind() {
    const BOTH: &[&str] = &["showers", "incident_energies"];
    let case = |name, voxels, energies: &[f64], edit: fn(&mut Vec<f32>), says| Case {
        name,
        voxels,
        energies: energies.to_vec(),
        edit,
        keys: BOTH,
        binning: false,
        says,
    };
    let cases = [
        case("voxels", 100, &[1e3, 2e3], |_| {}, "100 voxels"),
        Case {
            keys: &["showers"],
            ..case(
                "missing",
                6480,
                &[1e3],
                |_| {},
                "no dataset 'incident_energies'",
            )
        },
        case(
            "nan",
            6480,
            &[1e3, 2e3],
            |v| v[6480 + 7] = f32::NAN,
            "shower 1: voxel 7 is not a finite energy",
        ),
        case(
            "negative",
            6480,
            &[1e3, 2e3],
            |v| v[3] = -0.5,
            "shower 0: voxel 3 has a negative energy",
        ),
        case(
            "energy",
            6480,
            &[1e3, -2e3],
            |_| {},
            "shower 1: incident energy -2000 MeV is not a positive number",
        ),
        case(
            "unbinned",
            368,
            &[1e3],
            |_| {},
            "binning_dataset_1_photons.xml",
        ),
        Case {
            binning: true,
            ..case(
                "wrongbinning",
                533,
                &[1e3],
                |_| {},
                "the binning file has 368",
            )
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    for c in cases {
        let file = dir.path().join(format!("{}.h5", c.name));
        write_variant(&file, c.voxels, &c.energies, c.edit, c.keys);
        let out = dir.path().join(format!("out-{}", c.name));
        let options = if c.binning {
            photons()
        } else {
            serde_json::json!({})
        };
        let e = import(&[file], options, &out).unwrap_err().to_string();
        assert!(
            e.contains(c.says) && e.contains(&format!("{}.h5", c.name)),
            "{}: {e}",
            c.name
        );
        assert!(!out.exists(), "{}: a partial dataset was left", c.name);
    }
}

#[test]
fn exports_refuse_showers_of_no_challenge_dataset() {
    // CaloGAN's showers: 288 + 144 + 72 layer cells, no challenge dataset's count.
    let dir = tempfile::tempdir().unwrap();
    let sim =
        simemu_calorimeter::CalorimeterSimulator::from_options(&serde_json::json!({})).unwrap();
    let src = dir.path().join("calogan");
    let spec = DatasetSpec::new(sim.fields(), vec!["incident_energy".into()]);
    let mut w = DatasetWriter::create(&src, spec, false).unwrap();
    let prepared = sim.prepare(&[10.0]).unwrap();
    for seed in 0..2 {
        w.push(&prepared.simulate(seed).unwrap(), None).unwrap();
    }
    w.finish().unwrap();
    let ds = Dataset::open(&src).unwrap();
    let out = dir.path().join("x.h5");
    let e = CaloChallengeFormat
        .export(&ds, None, &out, &serde_json::json!({}), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("504 voxels"), "{e}");
    assert!(!out.exists());
}
