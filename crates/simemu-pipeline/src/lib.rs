//! simemu's pipeline as a library.
//!
//! The stages every front runs — [`simulate()`], [`train()`], [`generate()`],
//! [`compare()`] — take typed requests and call the core, the plugins (through
//! the registry) and the harness directly, and [`run()`] is the main job: one
//! config, every stage, a record of what each finished stage was made from so
//! that an interrupted run resumes and a changed config redoes exactly what it
//! affects. The command-line tool parses its arguments into these requests and
//! displays what they return; the Python package runs the same code.
//!
//! Nothing here knows a science domain: simulators, generators and statistics
//! are plugins chosen by name.

mod compare;
mod design;
mod error;
mod job;
mod response;
mod select;
mod simulate;
mod train;

pub use compare::{compare, validate, CompareRequest};
pub use design::{Design, GridAxis, LatinHypercube, RangeAxis};
pub use error::{Context, Error, Result};
pub use job::{
    check_dataset_facts, parse_duration, point_label, run, statistic_requests,
    statistic_requests_for, DataSection, GeneratorSection, PointOutcome, RunConfig, RunOptions,
    RunOutcome, SelectSection, SimulatorSection, ValidationSection, DATASET_FACTS, DEFAULT_CONFIG,
};
pub use response::Responses;
pub use simulate::{simulate, SimulateRequest};
pub use train::{
    find_run, generate, is_conditional, load_generator, sample_seeds, train, GenerateRequest,
    LoadedGenerator, RunFile, TrainRequest, RUN_FILE,
};

/// What the pipeline tells the person watching: notes on its stages and the
/// progress of long loops. The default methods say nothing.
pub trait Observer: Sync {
    /// A line about the work: a stage starting, skipped or resumed.
    fn note(&self, _line: &str) {}
    /// `done` of `total` units of `what` are finished.
    fn progress(&self, _what: &str, _done: usize, _total: usize) {}
    /// Whether generators should show their own progress while training.
    fn shows_progress(&self) -> bool {
        false
    }
}

/// An observer that says nothing.
pub struct Silent;

impl Observer for Silent {}
