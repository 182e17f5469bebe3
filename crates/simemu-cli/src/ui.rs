//! Progress bars and logging.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

static QUIET: AtomicBool = AtomicBool::new(false);

pub fn init_logging(verbose: u8, quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIMEMU_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A progress bar on stderr, hidden when quiet or not a terminal.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    if quiet() || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, ETA {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// A line of progress for people (stderr), unless quiet.
pub fn note(msg: &str) {
    if !quiet() {
        eprintln!("{msg}");
    }
}

/// The terminal as the pipeline's observer: notes on stderr and progress bars,
/// unless quiet.
pub struct Terminal {
    bars: std::sync::Mutex<std::collections::HashMap<String, ProgressBar>>,
}

impl Terminal {
    pub fn new() -> Self {
        Terminal {
            bars: Default::default(),
        }
    }
}

impl simemu_pipeline::Observer for Terminal {
    fn note(&self, line: &str) {
        note(line);
    }

    fn progress(&self, what: &str, done: usize, total: usize) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let pb = bars
            .entry(what.to_string())
            .or_insert_with(|| bar(total as u64, what));
        pb.set_position(done as u64);
        if done >= total {
            pb.finish_and_clear();
            bars.remove(what);
        }
    }

    fn shows_progress(&self) -> bool {
        !quiet()
    }
}
