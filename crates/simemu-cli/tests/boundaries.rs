//! The boundaries that keep simemu plugin-based (docs/ARCHITECTURE.md): the core and
//! the harness depend on no plugin and speak of no science domain; a domain plugin
//! depends on no other domain plugin.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dependencies(crate_dir: &str) -> String {
    let text = std::fs::read_to_string(root().join(crate_dir).join("Cargo.toml")).unwrap();
    // Only the dependency tables, not the description.
    text.split("\n[")
        .filter(|t| t.contains("dependencies]"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn sources(crate_dir: &str) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root().join(crate_dir).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

const PLUGINS: [&str; 7] = [
    "simemu-convergence",
    "simemu-density3d",
    "simemu-map-stats",
    "simemu-dcgan",
    "simemu-baselines",
    "simemu-io",
    "simemu-calorimeter",
];

#[test]
fn the_core_and_the_harness_know_no_plugin_and_no_domain() {
    for krate in [
        "crates/simemu-core",
        "crates/simemu-validate",
        "crates/simemu-pipeline",
    ] {
        let deps = dependencies(krate);
        for p in PLUGINS {
            assert!(!deps.contains(p), "{krate} depends on {p}");
        }
        for (path, text) in sources(krate) {
            let lower = text.to_lowercase();
            for symbol in ["κ", "ℓ"] {
                assert!(
                    !lower.contains(symbol),
                    "{} mentions '{symbol}'",
                    path.display()
                );
            }
            let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
            for word in [
                "kappa",
                "calorimeter",
                "calorimeters",
                "shower",
                "showers",
                "convergence",
                "lensing",
                "lenstools",
                "fits",
                "cosmology",
            ] {
                assert!(
                    !words.contains(&word),
                    "{} mentions '{word}'",
                    path.display()
                );
            }
        }
    }
}

/// Shared building blocks and shared science serve every domain: none depends
/// on a plugin.
#[test]
fn shared_crates_depend_on_no_plugin() {
    for krate in [
        "crates/simemu-grid",
        "crates/simemu-nn",
        "crates/simemu-cosmology",
    ] {
        let deps = dependencies(krate);
        for p in PLUGINS {
            assert!(!deps.contains(p), "{krate} depends on {p}");
        }
    }
}

#[test]
fn domain_plugins_depend_on_no_other_domain() {
    for (krate, name) in [
        ("plugins/convergence", "simemu-convergence"),
        ("plugins/calorimeter", "simemu-calorimeter"),
        ("plugins/density3d", "simemu-density3d"),
        ("plugins/map-stats", "simemu-map-stats"),
        ("plugins/io", "simemu-io"),
    ] {
        let deps = dependencies(krate);
        for p in PLUGINS.iter().filter(|p| **p != name) {
            assert!(!deps.contains(p), "{krate} depends on {p}");
        }
    }
}
