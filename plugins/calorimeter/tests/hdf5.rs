//! CaloGAN's HDF5 files (feature `hdf5`): an h5py-written file imports with the
//! values h5py wrote, round trips are exact, malformed files are refused by name.
#![cfg(feature = "hdf5")]

use std::path::{Path, PathBuf};

use hdf5_metno as h5;
use simemu_calorimeter::hdf5::CaloganFormat;
use simemu_calorimeter::CalorimeterSimulator;
use simemu_core::dataset::{DatasetSpec, DatasetWriter};
use simemu_core::formats::{import_dataset, Format};
use simemu_core::{Array, DType, Dataset, Field, Sample, Simulator};

const FIXTURE: &str = "tests/fixtures/calogan_h5py.h5";
const SHAPES: [(&str, [usize; 2]); 3] = [
    ("layer_0", [3, 96]),
    ("layer_1", [12, 12]),
    ("layer_2", [12, 6]),
];

fn import(inputs: &[PathBuf], out: &Path) -> simemu_core::Result<Dataset> {
    import_dataset(
        &CaloganFormat,
        inputs,
        &serde_json::json!({}),
        out,
        4,
        false,
    )?;
    Dataset::open(out)
}

fn all_samples(ds: &Dataset) -> Vec<Sample> {
    ds.read_samples(0, ds.len()).unwrap()
}

/// The file `make_calogan_fixture.py` wrote with h5py (gzip-compressed `layer_1`,
/// float32 `energy` of shape (N, 1)) imports with exactly the values it holds.
#[test]
fn an_h5py_written_calogan_file_imports_with_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let ds = import(&[PathBuf::from(FIXTURE)], &dir.path().join("ds")).unwrap();
    assert_eq!(ds.len(), 6);
    assert_eq!(ds.param_names(), ["energy"]);
    let names: Vec<&str> = ds.fields().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["layer_0", "layer_1", "layer_2", "overflow"]);
    assert!(ds.fields().iter().all(|f| f.dtype == DType::F32));
    let energies = [1.5, 10.0, 25.25, 50.0, 99.5, 100.0];
    for (i, s) in all_samples(&ds).iter().enumerate() {
        assert_eq!(s.params, [energies[i]]);
        for (l, (name, shape)) in SHAPES.iter().enumerate() {
            let f = s.field(name).unwrap();
            assert_eq!(f.shape, shape);
            let expected: Vec<f32> = (0..shape[0] * shape[1])
                .map(|c| {
                    if (c + i) % 7 == 0 {
                        ((i + 1) * 10 + l) as f32 + c as f32 / 8.0
                    } else {
                        0.0
                    }
                })
                .collect();
            assert_eq!(f.data, Array::F32(expected), "shower {i} {name}");
        }
        let overflow: Vec<f32> = (0..3).map(|l| i as f32 / 2.0 + l as f32).collect();
        assert_eq!(s.field("overflow").unwrap().data, Array::F32(overflow));
    }
}

/// Simulated showers at several energies (float32) and a float64 copy go out to a
/// CaloGAN file and come back bit for bit, parameters included; two files import
/// as one dataset in order.
#[test]
fn round_trips_are_exact_in_both_float_types() {
    let dir = tempfile::tempdir().unwrap();
    let sim = CalorimeterSimulator::from_options(&serde_json::json!({})).unwrap();
    for dtype in [DType::F32, DType::F64] {
        let mut spec = DatasetSpec::new(
            sim.fields()
                .into_iter()
                .map(|f| simemu_core::FieldSpec { dtype, ..f })
                .collect(),
            vec!["energy".into()],
        );
        spec.shard_size = 7;
        let src = dir.path().join(format!("src-{dtype:?}"));
        let mut w = DatasetWriter::create(&src, spec, false).unwrap();
        for (i, e) in [1.0, 7.3, 42.0, 100.0].iter().enumerate() {
            let prepared = sim.prepare(&[*e]).unwrap();
            for k in 0..5 {
                let mut s = prepared.simulate((i * 10 + k) as u64).unwrap();
                if dtype == DType::F64 {
                    for f in &mut s.fields {
                        // Values no float32 holds, so that a narrowing would show.
                        let v = f.data.to_f64().iter().map(|x| x * (1.0 + 1e-12)).collect();
                        *f = Field::new(f.name.clone(), f.shape.clone(), Array::F64(v)).unwrap();
                    }
                }
                w.push(&s, None).unwrap();
            }
        }
        w.finish().unwrap();
        let original = Dataset::open(&src).unwrap();
        let file = dir.path().join(format!("showers-{dtype:?}.h5"));
        let summary = CaloganFormat
            .export(&original, None, &file, &serde_json::json!({}), false)
            .unwrap();
        assert_eq!(summary.count, 20);
        let back = import(
            std::slice::from_ref(&file),
            &dir.path().join(format!("back-{dtype:?}")),
        )
        .unwrap();
        assert_eq!(back.fields(), original.fields());
        assert_eq!(all_samples(&back), all_samples(&original));

        let twice = import(
            &[file.clone(), file],
            &dir.path().join(format!("twice-{dtype:?}")),
        )
        .unwrap();
        assert_eq!(twice.len(), 40);
        assert_eq!(twice.read_samples(20, 20).unwrap(), all_samples(&original));
    }
}

/// Edits one dataset of a correct layout (name, shape, values); false drops it.
type Edit = Box<dyn Fn(&str, &mut Vec<usize>, &mut Vec<f32>) -> bool>;

/// Writes a CaloGAN-layout file with `edit` applied to the correct layout.
fn write_variant(path: &Path, edit: &Edit) {
    let file = h5::File::create(path).unwrap();
    let n = 3;
    let mut parts: Vec<(&str, Vec<usize>)> = SHAPES
        .iter()
        .map(|(name, s)| (*name, vec![n, s[0], s[1]]))
        .collect();
    parts.push(("overflow", vec![n, 3]));
    parts.push(("energy", vec![n, 1]));
    for (name, mut shape) in parts {
        let mut values: Vec<f32> = vec![1.0; shape.iter().product()];
        if name == "energy" {
            values = vec![10.0, 20.0, 30.0];
        }
        if !edit(name, &mut shape, &mut values) {
            continue;
        }
        let ds = file
            .new_dataset::<f32>()
            .shape(shape.clone())
            .create(name)
            .unwrap();
        ds.write_raw(&values).unwrap();
    }
}

#[test]
fn malformed_files_are_refused_by_name_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "missing",
            Box::new(|n, _, _| n != "layer_2"),
            "no dataset 'layer_2'",
        ),
        (
            "shape",
            Box::new(|n, s, v| {
                if n == "layer_1" {
                    *s = vec![3, 12, 11];
                    v.truncate(3 * 12 * 11);
                }
                true
            }),
            "'layer_1' has shape [3, 12, 11], expected (N, 12, 12)",
        ),
        (
            "count",
            Box::new(|n, s, v| {
                if n == "overflow" {
                    *s = vec![2, 3];
                    v.truncate(6);
                }
                true
            }),
            "'overflow' holds 2 showers but the datasets before it hold 3",
        ),
        (
            "nan",
            Box::new(|n, _, v| {
                if n == "layer_0" {
                    v[3 * 96 + 5] = f32::NAN;
                }
                true
            }),
            "shower 1: non-finite energy in 'layer_0' cell 5",
        ),
        (
            "energy",
            Box::new(|n, _, v| {
                if n == "energy" {
                    v[2] = -1.0;
                }
                true
            }),
            "shower 2: incident energy -1 GeV is not a positive number",
        ),
    ];
    for (name, edit, message) in cases {
        let file = dir.path().join(format!("{name}.h5"));
        write_variant(&file, &edit);
        let out = dir.path().join(format!("out-{name}"));
        let e = import(&[file], &out).unwrap_err().to_string();
        assert!(e.contains(message) && e.contains(name), "{name}: {e}");
        assert!(!out.exists(), "{name}: a partial dataset was left");
    }
    let not_hdf5 = dir.path().join("text.h5");
    std::fs::write(&not_hdf5, b"layer_0,layer_1\n").unwrap();
    let e = import(&[not_hdf5], &dir.path().join("out-text"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("text.h5") && e.contains("not a readable HDF5 file"),
        "{e}"
    );
}

#[test]
fn exports_refuse_what_calogan_cannot_hold_and_never_clobber() {
    let dir = tempfile::tempdir().unwrap();
    let ds = import(&[PathBuf::from(FIXTURE)], &dir.path().join("ds")).unwrap();
    let out = dir.path().join("out.h5");
    let opts = serde_json::json!({});
    let e = CaloganFormat
        .export(&ds, Some("layer_0"), &out, &opts, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--field layer_0 does not apply"), "{e}");
    let e = CaloganFormat
        .export(
            &ds,
            None,
            &out,
            &serde_json::json!({"compressed": true}),
            false,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("option 'compressed' does not apply"), "{e}");
    assert!(!out.exists());

    CaloganFormat.export(&ds, None, &out, &opts, false).unwrap();
    let before = std::fs::read(&out).unwrap();
    let e = CaloganFormat
        .export(&ds, None, &out, &opts, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exists"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), before);
    CaloganFormat.export(&ds, None, &out, &opts, true).unwrap();

    // A dataset that is not made of showers.
    let field = simemu_core::FieldSpec::new("kappa", vec![4, 4], DType::F32);
    let path = dir.path().join("maps");
    let mut w = DatasetWriter::create(&path, DatasetSpec::new(vec![field], vec![]), false).unwrap();
    let f = Field::new("kappa", vec![4, 4], Array::F32(vec![0.0; 16])).unwrap();
    w.push(&Sample::single(f, vec![]), None).unwrap();
    w.finish().unwrap();
    let maps = Dataset::open(&path).unwrap();
    let e = CaloganFormat
        .export(&maps, None, &dir.path().join("maps.h5"), &opts, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no field 'layer_0'"), "{e}");
    assert_eq!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("partial"))
            .count(),
        0,
        "temporary files left"
    );
}
