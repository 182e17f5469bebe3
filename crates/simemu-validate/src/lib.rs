//! # simemu-validate
//!
//! The validation harness: measure statistics on sample sets, compare a candidate
//! set with a reference set bin by bin with two-sample KS tests, and write the
//! reports people read. It knows no science domain: statistics come from plugins.

pub mod ks;
