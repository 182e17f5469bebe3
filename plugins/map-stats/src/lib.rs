//! # simemu-map-stats
//!
//! Summary statistics of square 2D maps, computed exactly as lenstools 1.2 computes
//! them (`ConvergenceMap.pdf`, `powerSpectrum`, `bispectrum`, `minkowskiFunctionals`,
//! `peakCount`):
//!
//! | plugin | components | x | lenstools |
//! |---|---|---|---|
//! | `pixel-pdf` | `pdf` | `threshold` | `pdf(thresholds, norm)` |
//! | `power-spectrum` | `power` | `ell` | `powerSpectrum(l_edges)` |
//! | `bispectrum` | `bispectrum` | `ell` | `bispectrum(l_edges, ratio, configuration)` |
//! | `minkowski` | `V0`, `V1`, `V2` | `threshold` | `minkowskiFunctionals(thresholds, norm)` |
//! | `peaks` | `peaks` | `threshold` | `peakCount(thresholds, norm)` (dN/dν) |
//!
//! Conventions (`../shared/reference/statistics.md` §2): periodic stencils in pixel
//! units, x = column; σ is the map's own population standard deviation when
//! `sigma_units` is set; binned abscissae are edge midpoints; empty bins give 0.

pub mod bispectrum;
mod maps;
pub mod power;
pub mod topology;

pub use maps::register;
