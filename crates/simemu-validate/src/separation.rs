//! Separation power, CaloChallenge's score of one histogram against another:
//! the triangular discrimination ½ Σᵢ (h₁ᵢ − h₂ᵢ)² / (h₁ᵢ + h₂ᵢ) of two
//! histograms normalised to unit sum (Diefenbacher et al., arXiv:2009.03796,
//! eq. 15). 0 for identical histograms, 1 for histograms with no bin in common.
//!
//! It is computed as the challenge's `evaluate.py` does: each set is binned as
//! `numpy.histogram(values, edges, density=True)` bins it — bins closed on the
//! left, the last one on both sides, values outside the edges dropped, each
//! set normalised by the count that falls inside — the densities are turned
//! back into fractions by multiplying with the bin widths, and every term's
//! denominator gets 1e-16 so that bins empty on both sides add 0.

use simemu_core::bins::BinFinder;
use simemu_core::{Error, Result};

/// The triangular discrimination of the histograms of `reference` and
/// `candidate` over `edges` (strictly increasing, at least two). An error when
/// a set has no finite value inside the edges: its histogram is undefined
/// (numpy gives NaN).
pub fn separation_power(reference: &[f64], candidate: &[f64], edges: &[f64]) -> Result<f64> {
    simemu_core::bins::check_edges(edges)?;
    let finder = BinFinder::new(edges);
    let p = fractions(reference, &finder, edges, "reference")?;
    let q = fractions(candidate, &finder, edges, "candidate")?;
    let sum: f64 = p
        .iter()
        .zip(&q)
        .map(|(a, b)| (a - b) * (a - b) / (a + b + 1e-16))
        .sum();
    Ok(0.5 * sum)
}

/// Fraction of the in-range values in each bin, as numpy's density times the
/// bin width (count / (n · width) · width, in that order, so that the rounding
/// is numpy's).
fn fractions(values: &[f64], finder: &BinFinder, edges: &[f64], which: &str) -> Result<Vec<f64>> {
    let nb = edges.len() - 1;
    let last = edges[nb];
    let mut counts = vec![0u64; nb];
    for &x in values {
        // numpy's last bin includes its right edge.
        let bin = if x == last {
            Some(nb - 1)
        } else {
            finder.find(x)
        };
        if let Some(b) = bin {
            counts[b] += 1;
        }
    }
    let inside: u64 = counts.iter().sum();
    if inside == 0 {
        return Err(Error::Data(format!(
            "separation power: no {which} value lies within [{}, {last}]",
            edges[0]
        )));
    }
    Ok(counts
        .iter()
        .zip(edges.windows(2))
        .map(|(&c, w)| {
            let width = w[1] - w[0];
            c as f64 / (inside as f64 * width) * width
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_sets_score_zero_and_disjoint_sets_one() {
        let edges = [0.0, 1.0, 2.0, 3.0];
        let a = [0.5, 1.5, 1.6, 2.5];
        assert_eq!(separation_power(&a, &a, &edges).unwrap(), 0.0);
        let s = separation_power(&[0.5, 0.6], &[2.5, 3.0], &edges).unwrap();
        assert!((s - 1.0).abs() < 1e-15, "{s}");
    }

    #[test]
    fn a_hand_computed_case() {
        // Reference fractions (1/2, 1/2, 0), candidate (1/4, 1/4, 1/2); the value
        // outside the edges is dropped before normalising.
        let edges = [0.0, 1.0, 2.0, 4.0];
        let r = [0.1, 1.2, -5.0];
        let c = [0.2, 1.9, 3.0, 4.0];
        let expected = 0.5 * (2.0 * (0.25 * 0.25) / 0.75 + 0.25 / 0.5);
        let s = separation_power(&r, &c, &edges).unwrap();
        assert!((s - expected).abs() < 1e-15, "{s} vs {expected}");
    }

    #[test]
    fn a_set_with_nothing_in_range_is_refused() {
        let e = separation_power(&[0.5], &[7.0], &[0.0, 1.0]).unwrap_err();
        assert!(e.to_string().contains("candidate"), "{e}");
    }
}
