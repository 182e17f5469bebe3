//! `.npy` files written by numpy (`tests/fixtures/make_npy_fixtures.py`) read back
//! exactly, and files simemu writes have numpy's exact header layout.

use std::path::PathBuf;

use simemu_core::{npy, Dataset};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected() -> Vec<f64> {
    (0..24).map(|i| i as f64 * 0.25 - 3.0).collect()
}

#[test]
fn numpy_files_read_exactly() {
    for name in ["stack_f4.npy", "stack_be_f8.npy", "stack_v2_f4.npy"] {
        let (shape, v) = npy::read::<f64>(&fixture(name)).unwrap();
        assert_eq!(shape, vec![2, 3, 4], "{name}");
        assert_eq!(v, expected(), "{name}");
        let ds = Dataset::open(&fixture(name)).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.fields()[0].shape, vec![3, 4]);
        assert_eq!(
            ds.read_samples(1, 1).unwrap()[0].fields[0].data.to_f64(),
            expected()[12..].to_vec()
        );
    }
    let ds = Dataset::open(&fixture("map_f8.npy")).unwrap();
    assert_eq!((ds.len(), ds.fields()[0].shape.clone()), (1, vec![4, 6]));
}

#[test]
fn unsupported_layouts_are_refused_by_name() {
    let e = Dataset::open(&fixture("fortran_f8.npy"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("fortran_f8.npy") && e.contains("Fortran"), "{e}");
    let e = Dataset::open(&fixture("ints_i4.npy"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ints_i4.npy") && e.contains("<i4"), "{e}");
}

#[test]
fn written_header_is_byte_identical_to_numpy() {
    // numpy 2.4 `np.save` of a (2, 3, 4) float32 array: the header numpy writes.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.npy");
    let v: Vec<f32> = expected().iter().map(|&x| x as f32).collect();
    npy::write(&p, &[2, 3, 4], &v).unwrap();
    let ours = std::fs::read(&p).unwrap();
    let theirs = std::fs::read(fixture("stack_f4.npy")).unwrap();
    assert_eq!(ours, theirs);
}
