//! What each fuzz target does with its input: the bytes become a file (or a
//! dataset's manifest) in a scratch directory of this process, and the reader
//! simemu uses on users' files reads it. Errors are the expected outcome;
//! only a panic, an abort or a hang is a finding.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

// simemu-io registers its formats through `inventory`: a crate only listed in
// Cargo.toml is dropped by the linker with its registrations.
use simemu_io as _;

/// This process's scratch directory (one per fuzzing process, reused).
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("simemu-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch directory");
        d
    })
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    std::fs::write(&p, bytes).expect("scratch file");
    p
}

/// Imports `bytes` as one file of `format` into a dataset, which is then read
/// back whole, as `simemu import` and the commands after it would.
fn import(format: &str, extension: &str, bytes: &[u8]) {
    let input = write(&format!("input.{extension}"), bytes);
    let reg = registry();
    let entry = reg.format(format).expect("format registered");
    let out = scratch().join(format!("imported-{format}"));
    let _ = std::fs::remove_dir_all(&out);
    let imported = simemu_core::formats::import_dataset(
        entry.format.as_ref(),
        &[input],
        &serde_json::Value::Null,
        &out,
        64,
        true,
    );
    if imported.is_ok() {
        read_whole(&out);
    }
}

fn registry() -> &'static simemu_core::Registry {
    static REG: OnceLock<simemu_core::Registry> = OnceLock::new();
    REG.get_or_init(|| simemu_core::Registry::with_static_plugins().expect("registry"))
}

/// Opens a dataset and reads every sample of it.
fn read_whole(path: &Path) {
    if let Ok(ds) = simemu_core::Dataset::open(path) {
        for chunk in ds.chunks(16) {
            if chunk.is_err() {
                break;
            }
        }
    }
}

/// A `.npy` file: the header parser, then the whole array as a dataset.
pub fn npy(bytes: &[u8]) {
    let path = write("input.npy", bytes);
    if let Ok(header) = simemu_core::npy::read_header(&path) {
        if header.count() <= 1 << 20 {
            let _ = simemu_core::npy::read_range::<f64>(&path, &header, 0, header.count());
        }
    }
    read_whole(&path);
    import("npy", "npy", bytes);
}

/// A FITS image.
pub fn fits(bytes: &[u8]) {
    import("fits", "fits", bytes);
}

/// An `.npz` archive.
pub fn npz(bytes: &[u8]) {
    import("npz", "npz", bytes);
}

/// A dataset's `manifest.json` beside two valid shards, parameters and seeds:
/// every name and number in it is the fuzzer's.
pub fn manifest(bytes: &[u8]) {
    let dir = scratch().join("dataset");
    if !dir.join("x-00000.npy").exists() {
        std::fs::create_dir_all(&dir).expect("dataset directory");
        let shard = |n: usize| vec![0.5f32; n * 4];
        simemu_core::npy::write(&dir.join("x-00000.npy"), &[2, 2, 2], &shard(2)).unwrap();
        simemu_core::npy::write(&dir.join("x-00001.npy"), &[1, 2, 2], &shard(1)).unwrap();
        simemu_core::npy::write(&dir.join("params.npy"), &[3, 1], &[0.1f64, 0.2, 0.3]).unwrap();
        simemu_core::npy::write(&dir.join("seeds.npy"), &[3], &[1u64, 2, 3]).unwrap();
    }
    std::fs::write(dir.join("manifest.json"), bytes).expect("manifest");
    read_whole(&dir);
}
