//! `simemu`: run simulators, train and sample emulators, and validate them, selecting
//! every plugin by name. The CLI stays thin: the work lives in the library crates.

mod args;
mod cmd;
mod output;
mod plugins;
mod ui;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "simemu",
    version,
    about = "Build, train and validate fast generative emulators of scientific simulators"
)]
pub struct Cli {
    /// Load a dynamic plugin (a cdylib built against this simemu); repeatable.
    #[arg(long = "plugin", global = true, value_name = "LIB")]
    pub plugins: Vec<PathBuf>,
    /// Seed for commands that draw random numbers (default 0; `train --resume`
    /// keeps the run's own).
    #[arg(long, global = true)]
    pub seed: Option<u64>,
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress bars or informational output.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Where generators train and generate: cpu (default), cuda or cuda:N. Used by
    /// train, generate, run (over the config's `[generator] device`) and bench
    /// train-step, layers and generate; needs a binary built with
    /// scripts/build-cuda.sh.
    #[arg(long, global = true, value_name = "cpu|cuda[:N]")]
    pub device: Option<simemu_core::ComputeDevice>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// The main job: simulate, train (or load the shipped model), generate, validate
    /// against held-out simulations and compare with the baselines, from one config.
    Run(cmd::run::RunArgs),
    /// List registered plugins with their parameters and options.
    List(cmd::list::ListArgs),
    /// Run a simulator into a dataset.
    Simulate(cmd::simulate::SimulateArgs),
    /// Print a simulator's theory predictions.
    Theory(cmd::simulate::TheoryArgs),
    /// Describe a dataset.
    Info(cmd::data::InfoArgs),
    /// Merge the parts of a sharded run (datasets or statistic results).
    Merge(cmd::data::MergeArgs),
    /// Make a dataset from other tools' files (FITS maps, .npy stacks, .npz archives; CaloGAN and CaloChallenge HDF5 with `--features hdf5`).
    Import(cmd::transfer::ImportArgs),
    /// Write a dataset in another tool's format (FITS, .npy, .npz; CaloGAN and CaloChallenge HDF5 with `--features hdf5`).
    Export(cmd::transfer::ExportArgs),
    /// Compute a statistic on every sample of a dataset.
    Stat(cmd::stat::StatArgs),
    /// Train a generator on a dataset.
    Train(cmd::train::TrainArgs),
    /// Generate samples from a trained generator.
    Generate(cmd::train::GenerateArgs),
    /// Compare a candidate set with a reference set, statistic by statistic.
    Validate(cmd::validate::ValidateArgs),
    /// Compare several candidates with one reference: one leaderboard.
    Compare(cmd::validate::CompareArgs),
    /// Benchmarks with fixed workloads.
    Bench(cmd::bench::BenchArgs),
    /// Print a shell completion script: `simemu completions bash > ~/.local/share/bash-completion/completions/simemu`.
    Completions(cmd::CompletionsArgs),
}

/// Statistic options shared by `stat`, `validate` and `compare`; each is passed to
/// the statistics that declare it.
#[derive(Args, Clone, Debug, Default)]
pub struct StatOptionArgs {
    /// Threshold bin edges: a,b,c | lin:A:B:N | log:A:B:N | quantile:QLO:QHI:N.
    #[arg(long, allow_hyphen_values = true)]
    pub thresholds: Option<String>,
    /// ℓ bin edges: a,b,c | lin:A:B:N | log:A:B:N.
    #[arg(long = "ell-edges")]
    pub ell_edges: Option<String>,
    /// Thresholds in units of each map's σ (lenstools norm=True).
    #[arg(long = "sigma-units")]
    pub sigma_units: bool,
    /// Side angle in degrees (default: from the dataset). A fact about the data:
    /// accepted whichever statistics are chosen, used by those that need it.
    #[arg(long = "angle-deg", allow_negative_numbers = true)]
    pub angle_deg: Option<f64>,
    /// Any other statistic option, key=value; repeatable.
    #[arg(long = "stat-option", value_name = "KEY=VALUE")]
    pub stat_options: Vec<String>,
    /// The field to measure (default: the dataset's only field).
    #[arg(long)]
    pub field: Option<String>,
}

/// Keeps freed memory in the process. By default glibc hands freed blocks above
/// 128 KiB back to the kernel (an munmap, or a trim of the heap's top) until its
/// adaptive threshold has grown, and candle allocates each operation's output
/// afresh, so short workloads page-fault their buffers in again and again: 40% of
/// the time of D's first convolution block alone (`simemu bench layers`). Long
/// training runs were measured unchanged (glibc adapts); resident memory stays at
/// the high-water mark the work reaches anyway.
///
/// One arena: the work runs on rayon's threads, and glibc gives each thread an
/// arena of 64 MiB heaps that it unmaps as soon as they empty, whatever the trim
/// threshold; `bench train-step --width 64 --repeats 3` (five steps) page-faulted
/// 429,000 times (1.1 s of system time) with per-thread arenas and 157,000
/// (0.5 s) with one. Allocations here are few and large, so the shared lock
/// costs nothing measurable.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets three allocator parameters (the largest mmap
    // threshold glibc accepts on 64-bit, 32 MiB; a 1 GiB trim threshold; one
    // arena); called first thing in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// How long candle's elementwise worker spins for the next operation before it
/// sleeps, unless the user set it. candle's default (25,000 pauses, about a
/// millisecond here) keeps that thread busy after every parallel elementwise
/// operation, and on a two-core machine it takes the core from the rayon
/// workers running the convolutions: `bench train-step --width 16` took
/// 0.128–0.129 s a step with the default and 0.120–0.124 s with 0, 100, 1,000 or
/// 5,000 (width 64 and generation unchanged). Elementwise results do not depend
/// on which thread computes them.
const CANDLE_SPIN_LIMIT: &str = "1000";

fn shorten_candle_spin() {
    const VAR: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(VAR).is_none() {
        // candle reads it once, when its pool first starts; main has started no
        // thread yet.
        std::env::set_var(VAR, CANDLE_SPIN_LIMIT);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    shorten_candle_spin();
    let cli = args::parse();
    ui::init_logging(cli.verbose, cli.quiet);
    if let Some(t) = cli.threads {
        if t == 0 {
            eprintln!("error: --threads must be at least 1");
            return ExitCode::from(2);
        }
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global();
    }
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// 2 for errors in what the user asked (unknown plugin, bad option or parameter),
/// 1 for everything that went wrong while doing it.
fn exit_code(e: &anyhow::Error) -> u8 {
    use simemu_core::Error as E;
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<simemu_pipeline::Error>() {
            return if err.is_request_error() { 2 } else { 1 };
        }
        if let Some(err) = cause.downcast_ref::<simemu_core::Error>() {
            return match err {
                E::UnknownPlugin(_) | E::Option(_) | E::Parameter(_) | E::Refused(_) => 2,
                _ => 1,
            };
        }
        if cause.downcast_ref::<cmd::UsageError>().is_some() {
            return 2;
        }
    }
    1
}
