//! # simemu-validate
//!
//! The validation harness: measure statistics on sample sets ([`measure`]), compare
//! a candidate set with a reference set bin by bin with two-sample KS tests
//! ([`compare`], [`ks`]), measure Fréchet and kernel distances between vectors of
//! statistics ([`distance`]) and test whole statistic vectors with them ([`vector`]),
//! score histograms by separation power ([`separation`]),
//! and write the reports people read ([`report`], [`plots`]).
//! It knows no science domain: statistics come from plugins through the registry.

pub mod c2st;
pub mod compare;
pub mod distance;
pub mod ks;
pub mod measure;
pub mod plots;
pub mod report;
pub mod response;
pub mod separation;
pub mod vector;

pub use report::{default_stats, Harness, Report, StatRequest};
