//! Plugin registry from the command line: static plugins, dynamic loading, refusals.

mod common;

use common::{fails, ok, template_plugin};

#[test]
fn list_shows_the_static_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["list"]);
    for name in [
        "convergence",
        "gaussian-field",
        "simulator",
        "pixel-pdf",
        "power-spectrum",
        "minkowski",
        "peaks",
        "calorimeter",
        "layer-fractions",
        "shower-gan",
        "fits",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["list", "--json"])).unwrap();
    let simulators = json["simulators"].as_array().unwrap();
    let first_param = |name: &str| {
        simulators.iter().find(|s| s["name"] == name).unwrap()["params"][0]["name"].clone()
    };
    assert_eq!(first_param("convergence"), "omega_m");
    assert_eq!(first_param("calorimeter"), "energy");
    for format in ["fits", "npy", "npz"] {
        assert!(
            json["formats"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == format),
            "{format}"
        );
    }
}

#[test]
fn template_cdylib_loads_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lib = template_plugin();
    let lib = lib.to_str().unwrap();
    let out = ok(dir.path(), &["--plugin", lib, "list", "simulators"]);
    assert!(
        out.contains("white-noise") && out.contains("dynamic:template"),
        "{out}"
    );
    ok(
        dir.path(),
        &[
            "--plugin",
            lib,
            "--seed",
            "3",
            "simulate",
            "white-noise",
            "--param",
            "sigma=2",
            "--count",
            "50",
            "--out",
            "wn",
        ],
    );
    let stats = ok(dir.path(), &["--plugin", lib, "stat", "moments", "wn"]);
    // Variance of N(0, 2²) noise: 4 within a few percent over 50×32² pixels.
    let var_line = stats
        .lines()
        .find(|l| l.trim_start().starts_with("2.00000e0"))
        .unwrap();
    let var: f64 = var_line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!((var - 4.0).abs() < 0.1, "{stats}");
    // Without the plugin the name is unknown (exit 2), with a hint.
    let err = fails(dir.path(), &["simulate", "white-noise", "--out", "x"], 2);
    assert!(err.contains("unknown simulator 'white-noise'"), "{err}");
}

/// Builds a C shared library exporting a simemu declaration with chosen fields.
fn bad_plugin(
    dir: &std::path::Path,
    name: &str,
    magic: &str,
    abi: u32,
    rustc: &str,
) -> std::path::PathBuf {
    let src = dir.join(format!("{name}.c"));
    let lib = dir.join(format!("lib{name}.so"));
    std::fs::write(
        &src,
        format!(
            r#"#include <stdint.h>
#include <stdlib.h>
struct decl {{ uint64_t magic; uint32_t abi; uint32_t size; const char *rustc, *core, *target; uint64_t layout; const char *name; int (*reg)(void *, void *); }};
static int reg(void *r, void *e) {{ abort(); }}
static struct decl D = {{ {magic}ULL, {abi}, sizeof(struct decl), "{rustc}", "0.1.0", "x86_64-unknown-linux-gnu", 0, "{name}", reg }};
const struct decl *simemu_plugin_entry(void) {{ return &D; }}
"#
        ),
    )
    .unwrap();
    let st = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("a C compiler (cc)");
    assert!(st.success());
    lib
}

#[test]
fn mismatched_libraries_are_refused_before_any_rust_call() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `reg` aborts the process: reaching it would crash the test, not fail it politely.
    let cases = [
        (
            bad_plugin(d, "wrongmagic", "0x1234", 1, "rustc 1.95.0"),
            "wrong magic number",
        ),
        (
            bad_plugin(d, "wrongabi", "0x53494d454d550001", 99, "rustc 1.95.0"),
            "plugin ABI version 99",
        ),
        (
            bad_plugin(
                d,
                "wrongrustc",
                "0x53494d454d550001",
                simemu_core::plugin::ABI_VERSION,
                "rustc 1.70.0 (90c541806 2023-05-31)",
            ),
            "differs",
        ),
    ];
    for (lib, needle) in cases {
        let err = fails(d, &["--plugin", lib.to_str().unwrap(), "list"], 1);
        assert!(
            err.contains(needle) && err.contains(lib.to_str().unwrap()),
            "{needle}: {err}"
        );
    }
    // A shared library that is not a simemu plugin, and a missing file.
    let src = d.join("plain.c");
    std::fs::write(&src, "int f(void) { return 1; }\n").unwrap();
    let lib = d.join("libplain.so");
    assert!(std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .unwrap()
        .success());
    let err = fails(d, &["--plugin", lib.to_str().unwrap(), "list"], 1);
    assert!(err.contains("not a simemu plugin"), "{err}");
    let err = fails(d, &["--plugin", "/nonexistent/libx.so", "list"], 1);
    assert!(err.contains("cannot read it"), "{err}");
}
