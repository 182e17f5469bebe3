//! Helpers shared by the CLI integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn simemu(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simemu"))
        .args(args)
        .current_dir(dir)
        .env("SIMEMU_LOG", "warn")
        .output()
        .expect("simemu runs")
}

/// Runs simemu and asserts success, returning stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let o = simemu(dir, args);
    assert!(
        o.status.success(),
        "simemu {args:?} failed ({:?}):\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs simemu, asserts the exit code, returns stderr.
pub fn fails(dir: &Path, args: &[&str], code: i32) -> String {
    let o = simemu(dir, args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(code),
        "simemu {args:?}: stderr:\n{err}"
    );
    err
}

/// The template plugin's shared library, built by cargo as a dev-dependency.
pub fn template_plugin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let name = format!(
        "{}simemu_plugin_template{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    for dir in [deps.to_path_buf(), deps.parent().unwrap().to_path_buf()] {
        if dir.join(&name).exists() {
            return dir.join(&name);
        }
    }
    panic!("{name} not found next to {}", exe.display());
}

/// All values of a dataset's first field and its parameters, for identity checks.
pub fn arrays(path: &Path) -> (Vec<f64>, Vec<f64>, Option<Vec<u64>>) {
    let ds = simemu_core::Dataset::open(path).unwrap();
    let data = ds.read_field_range(0, 0, ds.len()).unwrap().to_f64();
    let params = (0..ds.len())
        .flat_map(|i| ds.params_of(i).to_vec())
        .collect();
    (data, params, ds.seeds().map(|s| s.to_vec()))
}

/// A JSON file the CLI wrote, parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
