//! What a hostile or clumsy user cannot do: replace what simemu did not write,
//! destroy an input or an old run, escape a folder through a manifest, exhaust
//! memory or disk with a number, reuse a dead process's temporary files, or
//! crash on a closed pipe. Every test leaves a sentinel file where damage would
//! show and checks it afterwards.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{fails, ok, read_json, simemu};

/// A file whose survival shows that nothing was deleted around it.
fn sentinel(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path).unwrap();
    let f = path.join("main.rs");
    std::fs::write(&f, "fn main() {}\n").unwrap();
    f
}

fn assert_intact(f: &Path) {
    assert_eq!(
        std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())),
        "fn main() {}\n",
        "{} was touched",
        f.display()
    );
}

fn simulate(d: &Path, out: &str, seed: &str, count: &str) {
    ok(
        d,
        &[
            "-q",
            "--seed",
            seed,
            "simulate",
            "convergence",
            "--option",
            "size=32",
            "--count",
            count,
            "--out",
            out,
        ],
    );
}

/// Two small datasets, a trained baseline and an export, for the commands to
/// work on.
fn workspace(d: &Path) {
    simulate(d, "a", "1", "6");
    simulate(d, "b", "2", "6");
    for part in ["0/2", "1/2"] {
        let out = format!("part{}", &part[..1]);
        ok(
            d,
            &[
                "-q",
                "simulate",
                "convergence",
                "--option",
                "size=32",
                "--count",
                "4",
                "--shard",
                part,
                "--out",
                &out,
            ],
        );
    }
    ok(
        d,
        &[
            "-q",
            "train",
            "gaussian-field",
            "--data",
            "a",
            "--out",
            "run",
        ],
    );
    ok(
        d,
        &["-q", "export", "a", "--format", "npz", "--out", "a.npz"],
    );
}

/// `--force` replaces only what simemu wrote: a directory of somebody's code
/// at `--out` survives every command that takes `--force`, and so does a
/// regular file of another format.
#[test]
fn force_never_replaces_what_simemu_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    workspace(d);
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "simulate",
            "convergence",
            "--option",
            "size=32",
            "--count",
            "2",
        ],
        vec!["import", "a.npz"],
        vec!["merge", "part0", "part1"],
        vec!["generate", "--checkpoint", "run", "--count", "2"],
        vec!["train", "gaussian-field", "--data", "a"],
        vec![
            "validate",
            "--reference",
            "a",
            "--candidate",
            "b",
            "--stats",
            "pixel-pdf",
        ],
        vec!["compare", "--reference", "a", "b", "--stats", "pixel-pdf"],
        vec!["export", "a", "--format", "fits"],
    ];
    for (k, command) in commands.iter().enumerate() {
        let project = d.join(format!("p{k}/proj"));
        let code = sentinel(&project);
        let out = format!("p{k}/proj");
        let mut args = command.clone();
        args.extend(["--out", &out, "--force"]);
        let err = fails(d, &args, 2);
        assert!(
            err.contains("is not a dataset, run, report or export that simemu wrote"),
            "{command:?}: {err}"
        );
        assert_intact(&code);
    }
    // A regular file of another format, for the single-file exports.
    std::fs::write(d.join("notes.txt"), "fn main() {}\n").unwrap();
    for format in ["npz", "npy"] {
        let err = fails(
            d,
            &[
                "export",
                "a",
                "--format",
                format,
                "--out",
                "notes.txt",
                "--force",
            ],
            2,
        );
        assert!(err.contains("is not a"), "{format}: {err}");
        assert_intact(&d.join("notes.txt"));
    }
    // What simemu wrote is replaced.
    ok(
        d,
        &["-q", "export", "a", "--format", "fits", "--out", "fits"],
    );
    ok(
        d,
        &[
            "-q", "export", "b", "--format", "fits", "--out", "fits", "--force",
        ],
    );
    ok(
        d,
        &[
            "-q", "export", "b", "--format", "npz", "--out", "a.npz", "--force",
        ],
    );
    simulate(d, "a2", "1", "2");
    ok(
        d,
        &[
            "-q",
            "--seed",
            "7",
            "simulate",
            "convergence",
            "--option",
            "size=32",
            "--count",
            "3",
            "--out",
            "a2",
            "--force",
        ],
    );
    assert_eq!(simemu_core::Dataset::open(&d.join("a2")).unwrap().len(), 3);
}

/// An output equal to, inside or containing an input is refused: no command
/// replaces or writes into what it reads.
#[test]
fn outputs_never_overlap_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    workspace(d);
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "train",
            "gaussian-field",
            "--data",
            "a",
            "--out",
            "a",
            "--force",
        ],
        vec![
            "generate",
            "--checkpoint",
            "run",
            "--count",
            "2",
            "--out",
            "run",
            "--force",
        ],
        vec![
            "validate",
            "--reference",
            "a",
            "--candidate",
            "b",
            "--stats",
            "pixel-pdf",
            "--out",
            "b",
            "--force",
        ],
        vec![
            "compare",
            "--reference",
            "a",
            "b",
            "--stats",
            "pixel-pdf",
            "--out",
            ".",
            "--force",
        ],
        vec!["export", "a", "--format", "fits", "--out", "a/fits"],
        vec!["merge", "part0", "part1", "--out", "part1", "--force"],
        vec![
            "stat",
            "pixel-pdf",
            "a",
            "--json",
            "a/manifest.json",
            "--force",
        ],
    ];
    let before = common::arrays(&d.join("a"));
    for case in &cases {
        let err = fails(d, case, 2);
        assert!(err.contains("the output"), "{case:?}: {err}");
    }
    assert_eq!(common::arrays(&d.join("a")), before);
    assert!(d.join("run/generator.json").exists());
}

/// `train --force` trains beside the old run and replaces it only when done:
/// a replacement that fails or is killed leaves the old run whole.
#[test]
fn a_failed_forced_training_keeps_the_old_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    workspace(d);
    let before = std::fs::read(d.join("run/generator.json")).unwrap();
    let files = |p: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let listing = files(&d.join("run"));
    fails(
        d,
        &[
            "train", "dcgan", "--data", "a", "--out", "run", "--force", "--option", "width=0",
        ],
        2,
    );
    assert_eq!(std::fs::read(d.join("run/generator.json")).unwrap(), before);
    assert_eq!(files(&d.join("run")), listing);
    let partials = || {
        files(d)
            .iter()
            .filter(|n| n.to_string_lossy().starts_with(".run.partial-"))
            .count()
    };
    // Nothing of the failed attempt is left beside it.
    assert_eq!(partials(), 0);
    // Killed two seconds into training, the replacement leaves the old run whole.
    let mut child = Command::new(env!("CARGO_BIN_EXE_simemu"))
        .args([
            "-q", "train", "dcgan", "--data", "a", "--out", "run", "--force",
        ])
        .args(["--option", "size=32", "--steps", "1000000"])
        .current_dir(d)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read(d.join("run/generator.json")).unwrap(), before);
    assert_eq!(files(&d.join("run")), listing);
    assert_eq!(partials(), 1, "the killed attempt's directory");
    // A completed replacement takes its place, and removes what the killed
    // one left.
    ok(
        d,
        &[
            "-q",
            "train",
            "simulator",
            "--data",
            "b",
            "--out",
            "run",
            "--force",
        ],
    );
    assert_eq!(
        read_json(&d.join("run/generator.json"))["generator"],
        "simulator"
    );
    assert_eq!(partials(), 0);
}

/// Names in a manifest stay inside the dataset: a field named `../../ESCAPED`
/// or a shard at `../other/x.npy` or `/etc/passwd` is refused when the dataset
/// is opened, before anything is read or written.
#[test]
fn manifest_names_cannot_escape_the_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    simulate(d, "nested/deep/a", "1", "3");
    let manifest = d.join("nested/deep/a/manifest.json");
    let original = read_json(&manifest);
    let tamper = |edit: &Edit| {
        let mut m = original.clone();
        edit(&mut m);
        std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    };
    let field_escape = |m: &mut serde_json::Value| {
        m["fields"][0]["name"] = "../../ESCAPED".into();
        for s in m["shards"].as_array_mut().unwrap() {
            s["field"] = "../../ESCAPED".into();
        }
    };
    let shard_escape = |m: &mut serde_json::Value| m["shards"][0]["file"] = "../other/x.npy".into();
    let absolute = |m: &mut serde_json::Value| m["shards"][0]["file"] = "/etc/passwd".into();
    let params_escape = |m: &mut serde_json::Value| m["params"]["file"] = "../../params.npy".into();
    let cases: [(&Edit, &str); 4] = [
        (
            &field_escape,
            "field '../../ESCAPED' contains a path separator",
        ),
        (
            &shard_escape,
            "shard file '../other/x.npy' contains a path separator",
        ),
        (
            &absolute,
            "shard file '/etc/passwd' contains a path separator",
        ),
        (
            &params_escape,
            "parameter file '../../params.npy' contains a path separator",
        ),
    ];
    for (edit, message) in cases {
        tamper(edit);
        for format in ["fits", "npz"] {
            let out = format!("nested/deep/out.{format}");
            let err = fails(
                d,
                &["export", "nested/deep/a", "--format", format, "--out", &out],
                1,
            );
            assert!(err.contains(message), "{format}: {err}");
            assert!(!d.join(&out).exists());
        }
        let err = fails(d, &["info", "nested/deep/a"], 1);
        assert!(err.contains(message), "{err}");
    }
    let escaped: Vec<_> = walk(d)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("ESCAPED"))
        .collect();
    assert!(escaped.is_empty(), "{escaped:?}");
}

/// A change made to a manifest.
type Edit = dyn Fn(&mut serde_json::Value);

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// Sizes that cannot be honoured are refused up front with the number named,
/// before memory or disk is spent.
#[test]
fn huge_sizes_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    workspace(d);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "simulate",
                "convergence",
                "--option",
                "size=64",
                "--count",
                "100000000000",
                "--out",
                "x",
            ],
            "100000000000 samples would take",
        ),
        (
            vec![
                "simulate",
                "convergence",
                "--grid",
                "omega_m=0.2:0.4:10000",
                "--grid",
                "sigma_8=0.7:0.9:10000",
                "--count",
                "1",
                "--out",
                "x",
            ],
            "the design has 100000000 parameter points",
        ),
        (
            vec![
                "generate",
                "--checkpoint",
                "run",
                "--count",
                "100000000000",
                "--out",
                "x",
            ],
            "100000000000 generated samples would take",
        ),
        (
            vec![
                "generate",
                "--checkpoint",
                "run",
                "--count",
                "2",
                "--batch",
                "100000000",
                "--out",
                "x",
            ],
            "--batch 100000000",
        ),
        (
            vec![
                "train",
                "dcgan",
                "--data",
                "a",
                "--out",
                "x",
                "--option",
                "batch=100000000",
            ],
            "batch = 100000000",
        ),
        (
            vec![
                "stat",
                "pixel-pdf",
                "a",
                "--thresholds",
                "lin:-1:1:100000000",
            ],
            "100000000 bins",
        ),
    ];
    for (args, message) in cases {
        let err = fails(d, &args, 2);
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!d.join("x").exists(), "{args:?} left an output");
    }
}

/// A reader that has gone (`simemu list | head -1`) ends the output quietly
/// with exit 0; a full disk (`> /dev/full`) is an error with exit 1; neither
/// panics.
#[test]
fn closed_and_full_stdout() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["list"],
        vec!["theory", "convergence"],
        vec!["completions", "bash"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_simemu"))
            .args(&args)
            .current_dir(dir.path())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
        if Path::new("/dev/full").exists() {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_simemu"))
                .args(&args)
                .current_dir(dir.path())
                .stdout(full)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(
                err.contains("writing to standard output"),
                "{args:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{args:?}: {err}");
        }
    }
}

/// A pid that no process has now: that of a child that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A killed writer's temporary directory is never picked up by a later one
/// (same pid or not) and is removed when the next write to the same output
/// starts.
#[test]
fn stale_temporary_outputs_are_removed_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    simulate(d, "a", "1", "10");
    // As a killed export would leave them: an old-style name and a new one.
    let dead = dead_pid();
    for name in [
        format!(".maps.partial-{dead}-0"),
        format!(".maps.partial-{dead}-0123456789abcdef-0"),
    ] {
        std::fs::create_dir_all(d.join(&name)).unwrap();
        std::fs::write(d.join(&name).join("kappa-99999.fits"), "stale").unwrap();
    }
    ok(
        d,
        &["-q", "export", "a", "--format", "fits", "--out", "maps"],
    );
    let fits = std::fs::read_dir(d.join("maps"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "fits")
        })
        .count();
    assert_eq!(fits, 10);
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `stat --json`: `-` is standard output, a link is written through (the link
/// stays), an existing file needs `--force`, and `--force` replaces only a
/// statistic file simemu wrote.
#[test]
fn stat_json_writes_safely() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    simulate(d, "a", "1", "3");
    let out = ok(d, &["stat", "pixel-pdf", "a", "--json", "-"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["statistic"], "pixel-pdf");
    assert!(!d.join("-").exists());
    ok(d, &["-q", "stat", "pixel-pdf", "a", "--json", "s.json"]);
    let err = fails(d, &["stat", "pixel-pdf", "a", "--json", "s.json"], 2);
    assert!(err.contains("already exists (use --force"), "{err}");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("s.json", d.join("link.json")).unwrap();
        ok(
            d,
            &[
                "-q",
                "stat",
                "power-spectrum",
                "a",
                "--json",
                "link.json",
                "--force",
            ],
        );
        assert!(std::fs::symlink_metadata(d.join("link.json"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(read_json(&d.join("s.json"))["statistic"], "power-spectrum");
    }
    let code = sentinel(&d.join("proj"));
    let err = fails(
        d,
        &[
            "stat",
            "pixel-pdf",
            "a",
            "--json",
            "proj/main.rs",
            "--force",
        ],
        2,
    );
    assert!(
        err.contains("is not a JSON file that simemu wrote"),
        "{err}"
    );
    assert_intact(&code);
}

/// What used to be accepted silently is an error naming the problem.
#[test]
fn silent_acceptances_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    workspace(d);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["stat", "power-spectrum", "a", "--angle-deg", "nan"],
            "not finite",
        ),
        (
            vec!["stat", "power-spectrum", "a", "--angle-deg", "inf"],
            "not finite",
        ),
        (
            vec![
                "simulate",
                "convergence",
                "--param",
                "omega_m=nan",
                "--count",
                "1",
                "--out",
                "x",
            ],
            "not finite",
        ),
        (
            vec![
                "simulate",
                "convergence",
                "--grid",
                "omega_m=0.2:0.4:3",
                "--grid",
                "omega_m=0.25:0.3:2",
                "--count",
                "1",
                "--out",
                "x",
            ],
            "the axis 'omega_m' is given twice",
        ),
        (
            vec![
                "simulate",
                "convergence",
                "--grid",
                "omega_m=0.2:0.4:3",
                "--param",
                "omega_m=0.3",
                "--count",
                "1",
                "--out",
                "x",
            ],
            "'omega_m' is both fixed and varied",
        ),
        (
            vec![
                "simulate",
                "convergence",
                "--param",
                "omega_m=0.3",
                "--param",
                "omega_m=0.31",
                "--count",
                "1",
                "--out",
                "x",
            ],
            "parameter 'omega_m' is given twice",
        ),
        (
            vec![
                "simulate",
                "convergence",
                "--option",
                "size=32",
                "--option",
                "size=64",
                "--count",
                "1",
                "--out",
                "x",
            ],
            "option 'size' is given twice",
        ),
        (
            vec!["merge", "a", "a", "--out", "x"],
            "the part a is given twice",
        ),
        (
            vec![
                "validate",
                "--reference",
                "a",
                "--candidate",
                "b",
                "--stats",
                "pixel-pdf,pixel-pdf",
                "--out",
                "x",
            ],
            "the statistic 'pixel-pdf' is given twice",
        ),
        (
            vec![
                "--seed",
                "5",
                "train",
                "gaussian-field",
                "--data",
                "a",
                "--out",
                "run",
                "--resume",
            ],
            "was started with seed 0",
        ),
    ];
    for (args, message) in cases {
        let err = fails(d, &args, 2);
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!d.join("x").exists(), "{args:?} left an output");
    }
    assert_eq!(read_json(&d.join("run/generator.json"))["seed"], 0);
    // The same seed, or none, resumes.
    ok(
        d,
        &[
            "-q",
            "--seed",
            "0",
            "train",
            "gaussian-field",
            "--data",
            "a",
            "--out",
            "run",
            "--resume",
        ],
    );
}

/// A gridded run config without validation points is refused before any
/// simulation or training, naming the section to add.
#[test]
fn a_gridded_run_needs_validation_points() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("grid.toml"),
        r#"name = "grid"
[simulator]
name = "convergence"
options = { size = 32 }
grid = { omega_m = [0.2, 0.4, 3] }
[data]
train = 4
validation = 4
[generator]
name = "gaussian-field"
[validation]
count = 4
"#,
    )
    .unwrap();
    let err = fails(d, &["run", "grid.toml", "--out", "r"], 2);
    assert!(
        err.contains("the training data vary omega_m: give [validation] points"),
        "{err}"
    );
    assert!(!d.join("r/data").exists());
    // A number of design points is the size of a Latin hypercube: without its
    // ranges it is refused.
    let config = std::fs::read_to_string(d.join("grid.toml"))
        .unwrap()
        .replace("grid = { omega_m = [0.2, 0.4, 3] }", "points = 3");
    std::fs::write(d.join("points.toml"), config).unwrap();
    let err = fails(d, &["run", "points.toml", "--out", "r"], 2);
    assert!(
        err.contains("simulator.points") && err.contains("simulator.uniform"),
        "{err}"
    );
}

/// `generate` says which checkpoint a run directory gave it, and refuses a
/// `best.json` that names a missing one instead of taking another.
#[test]
fn generate_records_the_checkpoint_it_used() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/convergence-64");
    let step = d.join("run/checkpoints/step-00002000");
    std::fs::create_dir_all(&step).unwrap();
    for e in std::fs::read_dir(&shipped).unwrap() {
        let p = e.unwrap().path();
        let target = if p.file_name().unwrap() == "generator.json" {
            d.join("run/generator.json")
        } else {
            step.join(p.file_name().unwrap())
        };
        std::fs::copy(&p, target).unwrap();
    }
    let best = d.join("run/checkpoints/best.json");
    std::fs::write(&best, r#"{"step": 2000, "score": 0.9}"#).unwrap();
    ok(
        d,
        &[
            "-q",
            "generate",
            "--checkpoint",
            "run",
            "--count",
            "2",
            "--out",
            "g",
        ],
    );
    let manifest = read_json(&d.join("g/manifest.json"));
    assert_eq!(manifest["source"]["loaded_from"]["step"], 2000);
    std::fs::write(&best, r#"{"step": 3000, "score": 0.9}"#).unwrap();
    let err = fails(
        d,
        &[
            "generate",
            "--checkpoint",
            "run",
            "--count",
            "2",
            "--out",
            "g2",
        ],
        1,
    );
    assert!(
        err.contains("names step 3000, whose checkpoint is missing"),
        "{err}"
    );
}

/// Two processes never work in one run directory: a resume while another
/// holds the run's lock is refused, and leaves the run as it was.
#[test]
fn a_run_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    workspace(d);
    let before = std::fs::read(d.join("run/generator.json")).unwrap();
    let lock = simemu_core::fsutil::DirLock::acquire(&d.join("run")).unwrap();
    let err = fails(
        d,
        &[
            "train",
            "gaussian-field",
            "--data",
            "a",
            "--out",
            "run",
            "--resume",
        ],
        1,
    );
    assert!(err.contains("is in use by another simemu process"), "{err}");
    assert_eq!(std::fs::read(d.join("run/generator.json")).unwrap(), before);
    drop(lock);
    ok(
        d,
        &[
            "-q",
            "train",
            "gaussian-field",
            "--data",
            "a",
            "--out",
            "run",
            "--resume",
        ],
    );
}

/// One exit-code rule: 2 for what the caller asked (arguments, an output that
/// exists, a refused request), 1 for what failed while doing it.
#[test]
fn exit_codes_follow_one_rule() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    workspace(d);
    ok(
        d,
        &[
            "-q",
            "validate",
            "--reference",
            "a",
            "--candidate",
            "b",
            "--stats",
            "pixel-pdf",
            "--out",
            "rep",
        ],
    );
    ok(d, &["-q", "stat", "pixel-pdf", "a", "--json", "s.json"]);
    // "already exists" is the caller's to fix, whichever command says it.
    let exists: Vec<Vec<&str>> = vec![
        vec![
            "simulate",
            "convergence",
            "--option",
            "size=32",
            "--count",
            "2",
            "--out",
            "a",
        ],
        vec!["import", "a.npz", "--out", "a"],
        vec!["merge", "part0", "part1", "--out", "rep"],
        vec![
            "generate",
            "--checkpoint",
            "run",
            "--count",
            "2",
            "--out",
            "a",
        ],
        vec!["train", "gaussian-field", "--data", "a", "--out", "run"],
        vec![
            "validate",
            "--reference",
            "a",
            "--candidate",
            "b",
            "--stats",
            "pixel-pdf",
            "--out",
            "rep",
        ],
        vec![
            "compare",
            "--reference",
            "a",
            "b",
            "--stats",
            "pixel-pdf",
            "--out",
            "rep",
        ],
        vec!["export", "a", "--format", "npz", "--out", "a.npz"],
        vec!["stat", "pixel-pdf", "a", "--json", "s.json"],
    ];
    for args in &exists {
        let err = fails(d, args, 2);
        assert!(err.contains("already exists"), "{args:?}: {err}");
    }
    // Arguments: unknown names, bad values.
    fails(d, &["simulate", "nope", "--count", "1", "--out", "x"], 2);
    fails(
        d,
        &["simulate", "convergence", "--count", "x", "--out", "x"],
        2,
    );
    fails(d, &["stat", "nope", "a"], 2);
    // Runtime: what is read is broken.
    std::fs::write(d.join("a/params.npy"), b"broken").unwrap();
    fails(d, &["info", "a"], 1);
    // A library that is not a plugin is refused before it is loaded.
    std::fs::write(d.join("notes.so"), "text").unwrap();
    let err = fails(d, &["--plugin", "notes.so", "list"], 1);
    assert!(err.contains("not a shared library"), "{err}");
    let out = simemu(d, &["list"]);
    assert!(out.status.success());
}
