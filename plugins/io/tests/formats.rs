//! Imports of files written by numpy and astropy (`tests/fixtures/make_fixtures.py`),
//! exports read back, and every kind of bad input. No Python is needed to run them.

use std::path::{Path, PathBuf};

use simemu_core::formats::{expand_inputs, import_dataset, Format};
use simemu_core::{
    npy, Array, DType, Dataset, DatasetSpec, DatasetWriter, Field, FieldSpec, Sample,
};
use simemu_io::{FitsFormat, FitsImage, NpyFormat, NpzFormat};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn expected_f32(name: &str) -> Vec<f32> {
    npy::read::<f32>(&fixture(&format!("{name}.expected.npy")))
        .unwrap()
        .1
}

fn all_values(ds: &Dataset) -> Array {
    ds.read_field_range(0, 0, ds.len()).unwrap()
}

fn import(
    format: &dyn Format,
    inputs: &[PathBuf],
    options: serde_json::Value,
    out: &Path,
) -> simemu_core::Result<Dataset> {
    import_dataset(format, inputs, &options, out, 2, false)?;
    Dataset::open(out)
}

/// An import that must fail: the message names `what` (and the file), and nothing
/// is left where the dataset would have gone — not even a temporary directory.
fn refused(format: &dyn Format, files: &[&str], options: serde_json::Value, what: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let inputs: Vec<PathBuf> = files.iter().map(|f| fixture(f)).collect();
    let e = import(format, &inputs, options, &out)
        .unwrap_err()
        .to_string();
    for w in what {
        assert!(e.contains(w), "'{w}' missing from: {e}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "left behind after: {e}"
    );
}

#[test]
fn lenstools_style_fits_maps_import_with_their_values_and_angle() {
    let dir = tempfile::tempdir().unwrap();
    let files = expand_inputs(&[fixture("maps")], &["fits"]).unwrap();
    assert_eq!(files.len(), 3);
    let ds = import(
        &FitsFormat,
        &files,
        serde_json::json!({"field": "kappa"}),
        &dir.path().join("a"),
    )
    .unwrap();
    assert_eq!(ds.len(), 3);
    let spec = &ds.fields()[0];
    assert_eq!(
        (spec.name.as_str(), spec.shape.as_slice(), spec.dtype),
        ("kappa", &[12, 16][..], DType::F32)
    );
    assert_eq!(spec.attr_f64("angle_deg"), Some(3.5));
    assert_eq!(all_values(&ds), Array::F32(expected_f32("maps")));
    assert_eq!(ds.manifest().source["kind"], "import");

    // A glob gives the same files in the same order.
    let glob = expand_inputs(&[fixture("maps/kappa-*.fits")], &["fits"]).unwrap();
    assert_eq!(glob, files);
}

#[test]
fn an_image_extension_is_found_and_inherits_the_primary_angle() {
    let dir = tempfile::tempdir().unwrap();
    let ds = import(
        &FitsFormat,
        &[fixture("extension_f64.fits")],
        serde_json::json!({}),
        &dir.path().join("a"),
    )
    .unwrap();
    assert_eq!(ds.fields()[0].dtype, DType::F64);
    assert_eq!(ds.fields()[0].attr_f64("angle_deg"), Some(3.5));
    let want = npy::read::<f64>(&fixture("extension_f64.expected.npy"))
        .unwrap()
        .1;
    assert_eq!(all_values(&ds), Array::F64(want));
    // Asking for the empty primary HDU is refused.
    refused(
        &FitsFormat,
        &["extension_f64.fits"],
        serde_json::json!({"hdu": 0}),
        &["HDU 0 holds no image"],
    );
    refused(
        &FitsFormat,
        &["extension_f64.fits"],
        serde_json::json!({"hdu": 5}),
        &["has no HDU 5"],
    );
}

#[test]
fn bscale_bzero_integer_images_give_astropys_physical_values() {
    let img = FitsImage::read(&fixture("scaled_int16.fits"), None).unwrap();
    let Array::F32(got) = img.data else {
        panic!("int16 images become float32, as in astropy")
    };
    let want = expected_f32("scaled_int16");
    // Bit for bit: simemu scales in float32 in astropy's order (× BSCALE, then + BZERO).
    assert_eq!(got, want);
}

#[test]
fn bad_fits_inputs_are_refused_naming_the_file_and_the_problem() {
    let fits = &FitsFormat;
    let none = serde_json::json!({});
    refused(
        fits,
        &["blank_int16.fits"],
        none.clone(),
        &["blank_int16.fits", "pixel [4, 7] is BLANK"],
    );
    refused(
        fits,
        &["nan_pixel.fits"],
        none.clone(),
        &["nan_pixel.fits", "[5, 9]", "NaN"],
    );
    refused(
        fits,
        &["cube.fits"],
        none.clone(),
        &[
            "cube.fits",
            "3-D image",
            "[3, 12, 16]",
            "2-D map is expected",
        ],
    );
    refused(
        fits,
        &["no_image.fits"],
        none.clone(),
        &["no_image.fits", "no image"],
    );
    refused(
        fits,
        &["no_angle.fits"],
        none.clone(),
        &["no_angle.fits", "no ANGLE", "--angle-deg"],
    );
    refused(
        fits,
        &["truncated.fits"],
        none.clone(),
        &["truncated.fits", "truncated"],
    );
    refused(
        fits,
        &["make_fixtures.py"],
        none.clone(),
        &["make_fixtures.py", "not a FITS file"],
    );
    refused(
        fits,
        &["maps/kappa-0.fits", "other_shape.fits"],
        none.clone(),
        &["other_shape.fits", "[8, 8]", "[12, 16]"],
    );
    refused(
        fits,
        &["maps/kappa-0.fits"],
        serde_json::json!({"angle_deg": 5.0}),
        &["3.5", "5"],
    );
    // The angle can be given when the file lacks it.
    let dir = tempfile::tempdir().unwrap();
    let ds = import(
        fits,
        &[fixture("no_angle.fits")],
        serde_json::json!({"angle_deg": 3.5}),
        &dir.path().join("a"),
    )
    .unwrap();
    assert_eq!(ds.fields()[0].attr_f64("angle_deg"), Some(3.5));
}

#[test]
fn npz_archives_import_with_parameters_names_and_angle() {
    let dir = tempfile::tempdir().unwrap();
    let ds = import(
        &NpzFormat,
        &[fixture("stack_compressed.npz")],
        serde_json::json!({"field": "kappa"}),
        &dir.path().join("a"),
    )
    .unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(all_values(&ds), Array::F32(expected_f32("maps")));
    assert_eq!(ds.param_names(), ["omega_m", "sigma_8"]);
    assert_eq!(ds.params_of(1), &[0.25, 0.85]);
    assert_eq!(ds.fields()[0].attr_f64("angle_deg"), Some(3.5));

    refused(
        &NpzFormat,
        &["two_arrays.npz"],
        serde_json::json!({}),
        &["several arrays (a, b)", "--array"],
    );
    refused(
        &NpzFormat,
        &["two_arrays.npz"],
        serde_json::json!({"array": "c"}),
        &["no array 'c'"],
    );
    refused(
        &NpzFormat,
        &["maps/kappa-0.fits"],
        serde_json::json!({}),
        &["kappa-0.fits", "zip"],
    );
    let ds = import(
        &NpzFormat,
        &[fixture("two_arrays.npz")],
        serde_json::json!({"array": "b"}),
        &dir.path().join("b"),
    )
    .unwrap();
    assert_eq!(ds.len(), 2);
    assert!(ds.fields()[0].attrs.is_empty());
}

#[test]
fn big_endian_npy_stacks_import_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let ds = import(
        &NpyFormat,
        &[fixture("big_endian.npy")],
        serde_json::json!({"angle_deg": 3.5}),
        &dir.path().join("a"),
    )
    .unwrap();
    let want: Vec<f64> = expected_f32("maps").into_iter().map(f64::from).collect();
    assert_eq!(all_values(&ds), Array::F64(want));
    assert_eq!(ds.fields()[0].attr_f64("angle_deg"), Some(3.5));
    let small = dir.path().join("small.npy");
    npy::write(&small, &[2, 8, 8], &[0.0f32; 128]).unwrap();
    let e = import(
        &NpyFormat,
        &[fixture("big_endian.npy"), small],
        serde_json::json!({}),
        &dir.path().join("b"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("small.npy") && e.contains("[8, 8]") && e.contains("[12, 16]"),
        "{e}"
    );
    assert!(!dir.path().join("b").exists());
}

/// A small dataset with parameters, an angle and awkward values (extremes, negative zero).
fn synthetic(dir: &Path, dtype: DType) -> Dataset {
    let path = dir.join("synthetic");
    let field = FieldSpec::new("kappa", vec![5, 7], dtype).with_attr("angle_deg", 3.5);
    let mut spec = DatasetSpec::new(vec![field], vec!["omega_m".into(), "sigma_8".into()]);
    spec.shard_size = 3;
    let mut w = DatasetWriter::create(&path, spec, false).unwrap();
    for i in 0..7 {
        let v: Vec<f64> = (0..35)
            .map(|j| match (i + j) % 7 {
                0 => -0.0,
                1 => 1e-30,
                2 => f32::MAX as f64,
                _ => ((i * 35 + j) as f64 * 0.37).sin() * 0.01,
            })
            .collect();
        let data = match dtype {
            DType::F32 => Array::F32(v.iter().map(|&x| x as f32).collect()),
            DType::F64 => Array::F64(v),
        };
        let f = Field::new("kappa", vec![5, 7], data).unwrap();
        w.push(&Sample::single(f, vec![0.3 + 0.01 * i as f64, 0.8]), None)
            .unwrap();
    }
    w.finish().unwrap();
    Dataset::open(&path).unwrap()
}

fn assert_same_data(a: &Dataset, b: &Dataset) {
    assert_eq!(a.len(), b.len());
    assert_eq!(a.fields()[0].shape, b.fields()[0].shape);
    assert_eq!(a.fields()[0].dtype, b.fields()[0].dtype);
    // Bit-for-bit, so that -0.0 and tiny values count.
    let bits = |x: Array| match x {
        Array::F32(v) => v.iter().map(|x| x.to_bits() as u64).collect::<Vec<_>>(),
        Array::F64(v) => v.iter().map(|x| x.to_bits()).collect(),
    };
    assert_eq!(bits(all_values(a)), bits(all_values(b)));
}

#[test]
fn round_trips_through_every_format_are_exact() {
    for dtype in [DType::F32, DType::F64] {
        let dir = tempfile::tempdir().unwrap();
        let ds = synthetic(dir.path(), dtype);
        let kappa = serde_json::json!({"field": "kappa"});

        // dataset → FITS → dataset: values, parameters and angle.
        let fits_dir = dir.path().join("fits");
        let s = FitsFormat
            .export(&ds, Some("kappa"), &fits_dir, &serde_json::json!({}), false)
            .unwrap();
        assert_eq!((s.count, s.files), (7, 7));
        let files = expand_inputs(std::slice::from_ref(&fits_dir), &["fits"]).unwrap();
        let back = import(
            &FitsFormat,
            &files,
            kappa.clone(),
            &dir.path().join("from-fits"),
        )
        .unwrap();
        assert_same_data(&ds, &back);
        assert_eq!(back.param_names(), ds.param_names());
        assert_eq!(back.params_of(6), ds.params_of(6));
        assert_eq!(back.fields()[0].attrs, ds.fields()[0].attrs);

        // dataset → npz (stored and deflated) → dataset.
        for compressed in [false, true] {
            let npz = dir.path().join(format!("x{compressed}.npz"));
            NpzFormat
                .export(
                    &ds,
                    Some("kappa"),
                    &npz,
                    &serde_json::json!({"compressed": compressed}),
                    false,
                )
                .unwrap();
            let back = import(
                &NpzFormat,
                &[npz],
                kappa.clone(),
                &dir.path().join(format!("z{compressed}")),
            )
            .unwrap();
            assert_same_data(&ds, &back);
            assert_eq!(back.param_names(), ds.param_names());
            assert_eq!(back.params_of(3), ds.params_of(3));
            assert_eq!(back.fields()[0].attrs, ds.fields()[0].attrs);
        }

        // dataset → npy → dataset (a bare stack carries no parameters or angle).
        let npy_file = dir.path().join("x.npy");
        NpyFormat
            .export(&ds, Some("kappa"), &npy_file, &serde_json::json!({}), false)
            .unwrap();
        let back = import(
            &NpyFormat,
            std::slice::from_ref(&npy_file),
            kappa.clone(),
            &dir.path().join("from-npy"),
        )
        .unwrap();
        assert_same_data(&ds, &back);
        // numpy's own reader view: the bare stack opens as a dataset too.
        assert_same_data(&ds, &Dataset::open(&npy_file).unwrap());
    }
}

#[test]
fn npy_to_dataset_to_fits_to_dataset_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let first = import(
        &NpyFormat,
        &[fixture("big_endian.npy")],
        serde_json::json!({"angle_deg": 3.5}),
        &dir.path().join("a"),
    )
    .unwrap();
    FitsFormat
        .export(
            &first,
            Some("data"),
            &dir.path().join("f"),
            &serde_json::json!({}),
            false,
        )
        .unwrap();
    let files = expand_inputs(&[dir.path().join("f")], &["fits"]).unwrap();
    let second = import(
        &FitsFormat,
        &files,
        serde_json::json!({}),
        &dir.path().join("b"),
    )
    .unwrap();
    assert_same_data(&first, &second);
    assert_eq!(second.fields()[0].attr_f64("angle_deg"), Some(3.5));
}

#[test]
fn exports_are_reproducible_and_never_clobber_without_permission() {
    let dir = tempfile::tempdir().unwrap();
    let ds = synthetic(dir.path(), DType::F32);
    let opts = serde_json::json!({"compressed": true});
    let (a, b) = (dir.path().join("a.npz"), dir.path().join("b.npz"));
    NpzFormat
        .export(&ds, Some("kappa"), &a, &opts, false)
        .unwrap();
    NpzFormat
        .export(&ds, Some("kappa"), &b, &opts, false)
        .unwrap();
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "same data, same bytes"
    );

    let before = std::fs::read(&a).unwrap();
    let e = NpyFormat
        .export(&ds, Some("kappa"), &a, &serde_json::json!({}), false)
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert_eq!(std::fs::read(&a).unwrap(), before);
    // --force replaces a file of the same format only.
    let e = NpyFormat
        .export(&ds, Some("kappa"), &a, &serde_json::json!({}), true)
        .unwrap_err();
    assert!(e.to_string().contains("is not a .npy file"), "{e}");
    assert_eq!(std::fs::read(&a).unwrap(), before);
    NpzFormat
        .export(&ds, Some("kappa"), &a, &serde_json::json!({}), true)
        .unwrap();
    assert_ne!(std::fs::read(&a).unwrap(), before);

    let e = FitsFormat
        .export(
            &ds,
            Some("nope"),
            &dir.path().join("f"),
            &serde_json::json!({}),
            false,
        )
        .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    let e = FitsFormat
        .export(
            &ds,
            Some("kappa"),
            &dir.path().join("f"),
            &serde_json::json!({"compressed": true}),
            false,
        )
        .unwrap_err();
    assert!(e.to_string().contains("compressed"), "{e}");
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["a.npz", "b.npz", "synthetic"]);
}

#[test]
fn a_fits_export_reads_back_as_astropy_would_lay_it_out() {
    // NAXIS1 = columns, NAXIS2 = rows; data start after a 2880-byte header block.
    let dir = tempfile::tempdir().unwrap();
    let ds = synthetic(dir.path(), DType::F32);
    FitsFormat
        .export(
            &ds,
            Some("kappa"),
            &dir.path().join("f"),
            &serde_json::json!({}),
            false,
        )
        .unwrap();
    let bytes = std::fs::read(dir.path().join("f/kappa-00000.fits")).unwrap();
    assert_eq!(bytes.len() % 2880, 0);
    let header = String::from_utf8_lossy(&bytes[..2880]);
    assert!(
        header.contains("NAXIS1  =                    7"),
        "{header}"
    );
    assert!(
        header.contains("NAXIS2  =                    5"),
        "{header}"
    );
    assert!(
        header.contains("ANGLE   =                3.5E0"),
        "{header}"
    );
    assert!(header.contains("PNAME1  = 'omega_m '"), "{header}");
    let Array::F32(v) = ds.read_field_range(0, 0, 1).unwrap() else {
        unreachable!()
    };
    let first_row_second = f32::from_be_bytes(bytes[2884..2888].try_into().unwrap());
    assert_eq!(first_row_second.to_bits(), v[1].to_bits());
}

#[test]
fn files_saved_by_lenstools_import_with_their_values_and_angle() {
    // ConvergenceMap.save writes float32 FITS and float64 npz (arr_0 + angle_deg).
    let want = npy::read::<f64>(&fixture("lenstools_map.expected.npy"))
        .unwrap()
        .1;
    let dir = tempfile::tempdir().unwrap();
    let fits = import(
        &FitsFormat,
        &[fixture("lenstools_map.fits")],
        serde_json::json!({}),
        &dir.path().join("f"),
    )
    .unwrap();
    assert_eq!(fits.fields()[0].attr_f64("angle_deg"), Some(3.5));
    let single: Vec<f32> = want.iter().map(|&x| x as f32).collect();
    assert_eq!(all_values(&fits), Array::F32(single));
    let npz = import(
        &NpzFormat,
        &[fixture("lenstools_map.npz")],
        serde_json::json!({}),
        &dir.path().join("z"),
    )
    .unwrap();
    assert_eq!(
        (npz.len(), npz.fields()[0].shape.as_slice()),
        (1, &[16, 16][..])
    );
    assert_eq!(npz.fields()[0].attr_f64("angle_deg"), Some(3.5));
    assert_eq!(all_values(&npz), Array::F64(want));
}

#[test]
fn a_corrupt_header_declaring_an_absurd_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let card = |k: &str, v: &str| format!("{k:<8}= {v:>20}{:50}", "");
    let mut header: String = [
        card("SIMPLE", "T"),
        card("BITPIX", "-64"),
        card("NAXIS", "2"),
        card("NAXIS1", "4000000000000000000"),
        card("NAXIS2", "4000000000000000000"),
        card("ANGLE", "3.5"),
    ]
    .concat();
    header.push_str(&format!("{:<80}", "END"));
    header.push_str(&" ".repeat(2880 - header.len()));
    let path = dir.path().join("huge.fits");
    std::fs::write(&path, header.as_bytes()).unwrap();
    let e = FitsImage::read(&path, None).unwrap_err().to_string();
    assert!(
        e.contains("huge.fits") && e.contains("more than 2^64"),
        "{e}"
    );
}
