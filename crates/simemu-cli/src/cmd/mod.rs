//! Command implementations.

pub mod bench;
pub mod data;
pub mod list;
pub mod run;
pub mod simulate;
pub mod stat;
pub mod train;
pub mod transfer;
pub mod validate;

use anyhow::{Context, Result};
use simemu_core::Registry;

use crate::{Cli, Command};

/// An error in how the command was called (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// The registry: static plugins plus every `--plugin` library.
pub fn registry(cli: &Cli) -> Result<Registry> {
    let mut r = Registry::with_static_plugins()?;
    for p in &cli.plugins {
        r.load_dynamic(p)
            .with_context(|| format!("loading plugin {}", p.display()))?;
        tracing::debug!("loaded plugin {}", p.display());
    }
    Ok(r)
}

/// Opens `device` before any work starts, so that a binary without CUDA, or a
/// machine without the GPU, is refused before anything is simulated or written.
pub fn open_device(device: simemu_core::ComputeDevice) -> Result<()> {
    if !device.is_cpu() {
        simemu_nn::device(device)?;
    }
    Ok(())
}

pub fn run(cli: Cli) -> Result<()> {
    let reg = registry(&cli)?;
    let device = cli.device;
    if device.is_some_and(|d| !d.is_cpu()) {
        match &cli.command {
            Command::Train(_) | Command::Generate(_) | Command::Run(_) | Command::Bench(_) => {}
            _ => {
                return Err(usage(
                    "--device applies to train, generate, run and bench; this command computes on the CPU",
                ))
            }
        }
    }
    // `run` also opens the device its config names, `bench` the device of the
    // workloads that use one.
    if matches!(cli.command, Command::Train(_) | Command::Generate(_)) {
        open_device(device.unwrap_or_default())?;
    }
    let device = device.unwrap_or_default();
    match &cli.command {
        Command::List(a) => list::run(&reg, a),
        Command::Simulate(a) => simulate::run(&reg, cli.seed.unwrap_or(0), a),
        Command::Theory(a) => simulate::theory(&reg, a),
        Command::Info(a) => data::info(a),
        Command::Merge(a) => data::merge(a),
        Command::Import(a) => transfer::import(&reg, a),
        Command::Export(a) => transfer::export(&reg, a),
        Command::Stat(a) => stat::run(&reg, a),
        Command::Train(a) => train::train(&reg, cli.seed, device, a),
        Command::Generate(a) => train::generate(&reg, cli.seed.unwrap_or(0), device, a),
        Command::Validate(a) => validate::validate(&reg, a),
        Command::Compare(a) => validate::compare(&reg, a),
        Command::Bench(a) => bench::run(&reg, device, a),
        Command::Run(a) => run::run(&reg, cli.device, a),
        Command::Completions(a) => {
            let mut script = Vec::new();
            clap_complete::generate(
                a.shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "simemu",
                &mut script,
            );
            crate::output::out!("{}", String::from_utf8_lossy(&script));
            Ok(())
        }
    }
}

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}

/// Reads a TOML or JSON configuration file into JSON.
pub fn read_config(path: &std::path::Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        return serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid JSON", path.display()));
    }
    let v: toml::Value = toml::from_str(&text)
        .map_err(|e| usage(format!("{}: invalid TOML: {e}", path.display())))?;
    Ok(serde_json::to_value(v)?)
}

/// Merges `--option key=value` assignments over a base option table.
pub fn merge_options(base: serde_json::Value, assignments: &[String]) -> Result<serde_json::Value> {
    let mut base = match base {
        serde_json::Value::Null => serde_json::Map::new(),
        serde_json::Value::Object(m) => m,
        other => return Err(usage(format!("options must be a table, got {other}"))),
    };
    if let serde_json::Value::Object(extra) =
        simemu_core::params::parse_option_assignments(assignments)?
    {
        base.extend(extra);
    }
    Ok(serde_json::Value::Object(base))
}
