//! What a new user types in the first minutes: flags in any position, negative
//! numbers, statistic options, shipped models from anywhere, a leaderboard that
//! fits a terminal, quiet expected events, movable reports, completions and the
//! version.

mod common;

use std::path::Path;

use common::{fails, ok, read_json, simemu};

/// `count` 16² convergence maps into `dir/NAME`.
fn maps(dir: &Path, name: &str, seed: &str, count: &str) {
    ok(
        dir,
        &[
            "--seed",
            seed,
            "simulate",
            "convergence",
            "--option",
            "size=16",
            "--count",
            count,
            "--out",
            name,
        ],
    );
}

#[test]
fn global_flags_work_after_trailing_queries() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        dir.path(),
        &["theory", "convergence", "--ell", "300,1000", "--json"],
    );
    let json: serde_json::Value = serde_json::from_str(&out).expect("--json gives JSON");
    assert_eq!(json["ell"].as_array().map(Vec::len), Some(2), "{json}");
    // Global and the command's own flags, after the queries, as before them.
    let after = ok(
        dir.path(),
        &[
            "theory",
            "convergence",
            "--ell",
            "300",
            "--param",
            "sigma_8=0.9",
            "-q",
            "--json",
        ],
    );
    let before = ok(
        dir.path(),
        &[
            "-q",
            "theory",
            "--json",
            "--param",
            "sigma_8=0.9",
            "convergence",
            "--ell",
            "300",
        ],
    );
    assert_eq!(after, before);
}

#[test]
fn negative_numbers_are_values_and_dataset_facts_suit_every_statistic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    maps(d, "a", "1", "8");
    maps(d, "b", "2", "8");
    let err = fails(d, &["stat", "power-spectrum", "a", "--angle-deg", "-2"], 2);
    assert!(err.contains("must be positive"), "{err}");
    // The angle is a fact about the data: any statistic accepts it.
    ok(d, &["stat", "minkowski", "a", "--angle-deg", "2"]);
    let validate = |stats: &str, out: &str| {
        ok(
            d,
            &[
                "validate",
                "--reference",
                "a",
                "--candidate",
                "b",
                "--stats",
                stats,
                "--angle-deg",
                "2",
                "--out",
                out,
            ],
        )
    };
    validate("pixel-pdf", "r1");
    validate("power-spectrum,pixel-pdf", "r2");
    // An option no chosen statistic knows is refused, naming it.
    let err = fails(
        d,
        &["stat", "minkowski", "a", "--ell-edges", "lin:100:1000:5"],
        2,
    );
    assert!(err.contains("ell-edges"), "{err}");
}

#[test]
fn shipped_models_generate_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "generate",
            "--checkpoint",
            "builtin:convergence-64",
            "--count",
            "100",
            "--out",
            "gen",
        ],
    );
    let ds = simemu_core::Dataset::open(&d.join("gen")).unwrap();
    assert_eq!(ds.len(), 100);
    assert_eq!(ds.fields()[0].shape, vec![64, 64]);
    assert_eq!(ds.manifest().source["checkpoint"], "builtin:convergence-64");
    let err = fails(
        d,
        &[
            "generate",
            "--checkpoint",
            "builtin:nothing",
            "--count",
            "1",
            "--out",
            "x",
        ],
        2,
    );
    assert!(err.contains("convergence-64"), "{err}");
}

/// `--device`: `cpu` is the default and changes no byte; a device that is not one
/// is refused by name; a binary without CUDA refuses `cuda` (from the flag or a
/// run config) with exit status 2 before anything is written; commands that
/// compute on the CPU refuse it.
#[test]
fn the_device_is_cpu_unless_a_cuda_build_is_asked_for_cuda() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let generate = |device: Option<&str>, out: &str| -> Vec<String> {
        let mut args: Vec<String> = device
            .map(|v| vec!["--device".to_string(), v.to_string()])
            .unwrap_or_default();
        args.extend(
            [
                "--seed",
                "4",
                "generate",
                "--checkpoint",
                "builtin:convergence-64",
                "--count",
                "3",
                "--out",
                out,
            ]
            .map(String::from),
        );
        args
    };
    let strs = |v: &[String]| v.iter().map(String::as_str).collect::<Vec<_>>().join(" ");
    let run_ok = |args: Vec<String>| ok(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let run_fails =
        |args: Vec<String>| fails(d, &args.iter().map(String::as_str).collect::<Vec<_>>(), 2);
    run_ok(generate(None, "default"));
    run_ok(generate(Some("cpu"), "cpu"));
    let bytes = |name: &str| std::fs::read(d.join(name).join("kappa-00000.npy")).unwrap();
    assert_eq!(bytes("default"), bytes("cpu"));

    let err = run_fails(generate(Some("gpu"), "x"));
    assert!(
        err.contains("'gpu' is not one of cpu, cuda, cuda:N"),
        "{err}"
    );
    if cfg!(not(feature = "cuda")) {
        let args = generate(Some("cuda"), "x");
        let err = run_fails(args.clone());
        assert!(
            err.contains("cuda:0") && err.contains("built without CUDA"),
            "{}: {err}",
            strs(&args)
        );
        assert!(!d.join("x").exists());
        let err = fails(d, &["--device", "cuda:1", "bench", "train-step"], 2);
        assert!(err.contains("cuda:1"), "{err}");
        // A run config that asks for it is refused before the run starts.
        std::fs::write(
            d.join("gpu.toml"),
            "name = \"gpu\"\n[simulator]\nname = \"convergence\"\noptions = { size = 16 }\n\
             [data]\ntrain = 8\nvalidation = 8\n[generator]\nname = \"dcgan\"\n\
             device = \"cuda\"\nsteps = 1\n[validation]\ncount = 8\n",
        )
        .unwrap();
        let err = fails(d, &["run", "gpu.toml", "--out", "gpu-run"], 2);
        assert!(err.contains("built without CUDA"), "{err}");
        assert!(!d.join("gpu-run").exists());
    }
    let err = fails(
        d,
        &["--device", "cuda", "simulate", "convergence", "--out", "s"],
        2,
    );
    assert!(
        err.contains("--device applies to train, generate, run and bench"),
        "{err}"
    );
    let err = fails(d, &["--device", "cuda", "bench", "simulate"], 2);
    assert!(err.contains("this workload computes on the CPU"), "{err}");
}

/// The conditional model generates at any point of its box, from any
/// directory; a point outside the box is refused with the box named, an
/// unknown parameter and a missing condition are refused.
#[test]
fn the_conditional_model_generates_inside_its_box_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = "builtin:convergence-64-conditional";
    let generate = |params: &[&str], out: &str| -> Vec<String> {
        let mut args: Vec<String> = [
            "generate",
            "--checkpoint",
            model,
            "--count",
            "3",
            "--out",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for p in params {
            args.push("--param".into());
            args.push(p.to_string());
        }
        args
    };
    let run = |args: Vec<String>, code: Option<i32>| -> String {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        match code {
            None => ok(d, &refs),
            Some(c) => fails(d, &refs, c),
        }
    };
    run(generate(&["omega_m=0.27", "sigma_8=0.84"], "a"), None);
    let ds = simemu_core::Dataset::open(&d.join("a")).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(ds.params_of(0), [0.27, 0.84]);
    let err = run(generate(&["omega_m=0.45", "sigma_8=0.8"], "b"), Some(2));
    assert!(
        err.contains("omega_m = 0.45 is outside its bounds [0.2, 0.4]"),
        "{err}"
    );
    let err = run(generate(&["omega_m=0.3", "h=0.7"], "c"), Some(2));
    assert!(err.contains("h"), "{err}");
    let err = run(generate(&[], "e"), Some(2));
    assert!(err.contains("omega_m") && err.contains("sigma_8"), "{err}");
    for out in ["b", "c", "e"] {
        assert!(
            !d.join(out).exists(),
            "a refused generation left {out} behind"
        );
    }
}

/// The terminal leaderboard: one line per candidate within 100 columns, a
/// pass % with ✓/✗ per statistic and Minkowski functional; `leaderboard.md`
/// keeps the full table. The report files name their datasets relative to
/// themselves, so the whole directory can move.
#[test]
fn leaderboards_fit_a_terminal_and_reports_move_with_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("run")).unwrap();
    let run = d.join("run");
    maps(&run, "reference", "1", "32");
    maps(&run, "simulated", "2", "32");
    maps(&run, "other", "3", "32");
    let out = ok(
        &run,
        &[
            "compare",
            "--reference",
            "reference",
            "simulated",
            "other",
            "--out",
            "board",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("candidate"), "{out}");
    for label in [
        "pixel-pdf",
        "power-spectrum",
        "V0",
        "V1",
        "V2",
        "peaks",
        "means",
        "s/sample",
    ] {
        assert!(lines[0].contains(label), "{label}: {out}");
    }
    for line in &lines {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains('✓') || l.contains('✗'))
            .count(),
        2
    );
    let md = std::fs::read_to_string(run.join("board/leaderboard.md")).unwrap();
    assert!(md.contains("worst p"), "{md}");

    // Moved elsewhere, every dataset path still resolves from its file.
    std::fs::rename(&run, d.join("moved")).unwrap();
    let moved = d.join("moved");
    let board = moved.join("board");
    let lb = read_json(&board.join("leaderboard.json"));
    let resolves = |from: &Path, path: &serde_json::Value| {
        let p = from.join(path.as_str().unwrap());
        assert!(p.join("manifest.json").exists(), "{}", p.display());
        p.canonicalize().unwrap()
    };
    assert_eq!(
        resolves(&board, &lb["reference"]["path"]),
        moved.join("reference").canonicalize().unwrap()
    );
    let row = &lb["rows"][0];
    assert_eq!(
        resolves(&board, &row["path"]),
        moved.join("simulated").canonicalize().unwrap()
    );
    let report_dir = board
        .join(row["report"].as_str().unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let report = read_json(&report_dir.join("report.json"));
    assert_eq!(
        resolves(&report_dir, &report["reference"]["path"]),
        moved.join("reference").canonicalize().unwrap()
    );
    assert_eq!(
        resolves(&report_dir, &report["candidate"]["path"]),
        moved.join("simulated").canonicalize().unwrap()
    );
}

/// The few Gaussian modes the log-normal transform clips at the default size
/// (1.3e-4 of the power) are an expected event: logged at debug level, not
/// shown by default.
#[test]
fn expected_clipping_is_not_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let run = |level: &str| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_simemu"))
            .args([
                "simulate",
                "convergence",
                "--option",
                "size=64",
                "--count",
                "2",
                "--out",
            ])
            .arg(format!("maps-{level}"))
            .current_dir(dir.path())
            .env("SIMEMU_LOG", level)
            .output()
            .unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let default = run("info");
    assert!(!default.contains("clipped"), "{default}");
    let debug = run("debug");
    assert!(debug.contains("clipped"), "{debug}");
    let manifest = read_json(&dir.path().join("maps-info/manifest.json"));
    let fraction = manifest["source"]["notes"][0]["notes"]["clipped_gaussian_power_fraction"]
        .as_f64()
        .unwrap();
    assert!(fraction > 0.0 && fraction < 1e-3, "{fraction}");
}

/// `dcgan`'s options come in groups, and the levers measured and not kept are
/// gone from them.
#[test]
fn generator_options_are_listed_by_group() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(dir.path(), &["list", "generators"]);
    let dcgan = &out[out.find("  dcgan").unwrap()..out.find("  gaussian-field").unwrap()];
    let headings: Vec<&str> = dcgan
        .lines()
        .filter(|l| l.starts_with("    ") && !l.starts_with("     ") && l.ends_with(':'))
        .map(str::trim)
        .collect();
    assert_eq!(
        headings,
        [
            "preset:",
            "architecture:",
            "objective:",
            "fidelity terms:",
            "bookkeeping:"
        ]
    );
    for removed in [
        "circular_padding",
        "summary_weights",
        "summary_match",
        "spectrum_weights",
    ] {
        assert!(!dcgan.contains(removed), "{removed} is listed");
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["list", "generators", "--json"])).unwrap();
    let dcgan = json["generators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "dcgan")
        .unwrap();
    let options = dcgan["options"].as_array().unwrap();
    assert!(
        options.iter().all(|o| o["group"].is_string()),
        "{options:?}"
    );
}

#[test]
fn completions_and_the_version() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(dir.path(), &["completions", shell]);
        assert!(
            script.contains("simemu") && script.contains("simulate"),
            "{shell}"
        );
    }
    let o = simemu(dir.path(), &["--version"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("simemu {}", env!("CARGO_PKG_VERSION"))
    );
    fails(dir.path(), &["completions", "tcsh"], 2);
}

/// `bench train-step --dims 3` times the volume step and names it by its side;
/// a dimension other than 2 or 3 and a side four halvings do not divide are
/// refused with the problem named.
#[test]
fn the_train_step_benchmark_runs_on_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "bench",
            "train-step",
            "--dims",
            "3",
            "--size",
            "16",
            "--width",
            "2",
            "--repeats",
            "1",
            "--json",
            "b.json",
        ],
    );
    let rows = read_json(&d.join("b.json"));
    assert_eq!(
        rows["results"][0]["workload"], "train-step 16³ w2",
        "{rows}"
    );
    assert_eq!(rows["results"][0]["items"], 16, "{rows}");
    let err = fails(d, &["bench", "train-step", "--dims", "4"], 2);
    assert!(err.contains("--dims"), "{err}");
    let err = fails(
        d,
        &["bench", "train-step", "--dims", "3", "--size", "24"],
        2,
    );
    assert!(err.contains("multiple of 16"), "{err}");
}
