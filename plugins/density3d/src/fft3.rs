//! The periodic N³ grid: full 3D complex DFTs (unnormalised, in place, axis by
//! axis in parallel) and the wavenumber of each mode.

use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use rustfft::FftPlanner;

/// The signed frequency index of DFT bin `i` of `n`: 0, 1, …, n/2, −n/2+1, …, −1.
pub fn frequency(i: usize, n: usize) -> i64 {
    if i <= n / 2 {
        i as i64
    } else {
        i as i64 - n as i64
    }
}

/// In-place 3D DFT of a C-ordered N³ array (forward when `inverse` is false),
/// unnormalised: the inverse of the forward transform is N³ times the input.
pub fn fft3(data: &mut [Complex64], n: usize, inverse: bool) {
    assert_eq!(data.len(), n * n * n, "fft3 needs an N³ array");
    let mut planner = FftPlanner::new();
    let fft = if inverse {
        planner.plan_fft_inverse(n)
    } else {
        planner.plan_fft_forward(n)
    };
    // The last axis is contiguous.
    data.par_chunks_mut(n).for_each(|line| fft.process(line));
    // The middle axis: lines of stride n inside each plane.
    data.par_chunks_mut(n * n).for_each(|plane| {
        let mut line = vec![Complex64::new(0.0, 0.0); n];
        for k in 0..n {
            for j in 0..n {
                line[j] = plane[j * n + k];
            }
            fft.process(&mut line);
            for j in 0..n {
                plane[j * n + k] = line[j];
            }
        }
    });
    // The first axis: lines of stride n², gathered a row of the last axis at a time.
    let rows: Vec<Vec<Complex64>> = (0..n * n)
        .into_par_iter()
        .map(|jk| {
            let mut line: Vec<Complex64> = (0..n).map(|i| data[i * n * n + jk]).collect();
            fft.process(&mut line);
            line
        })
        .collect();
    for (jk, line) in rows.into_iter().enumerate() {
        for (i, v) in line.into_iter().enumerate() {
            data[i * n * n + jk] = v;
        }
    }
}

/// |k| of every mode of the N³ grid of a box of side `side`, in units of the
/// fundamental mode 2π/side (multiply by it for physical units).
pub fn mode_index_norms(n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n * n * n);
    for i in 0..n {
        let fi = frequency(i, n) as f64;
        for j in 0..n {
            let fj = frequency(j, n) as f64;
            for k in 0..n {
                let fk = frequency(k, n) as f64;
                out.push((fi * fi + fj * fj + fk * fk).sqrt());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the defining sum on a small odd-free grid, and the round trip.
    #[test]
    fn fft3_is_the_dft_and_inverts() {
        let n = 4;
        let data: Vec<Complex64> = (0..n * n * n)
            .map(|i| Complex64::new((i as f64 * 0.37).sin(), (i as f64 * 0.11).cos()))
            .collect();
        let mut out = data.clone();
        fft3(&mut out, n, false);
        let tau = 2.0 * std::f64::consts::PI / n as f64;
        for (q, got) in out.iter().enumerate() {
            let (a, b, c) = (q / (n * n), (q / n) % n, q % n);
            let mut want = Complex64::new(0.0, 0.0);
            for (p, v) in data.iter().enumerate() {
                let (x, y, z) = (p / (n * n), (p / n) % n, p % n);
                let phase = -tau * ((a * x + b * y + c * z) % n) as f64;
                want += v * Complex64::from_polar(1.0, phase);
            }
            assert!((got - want).norm() < 1e-10, "mode {q}: {got} vs {want}");
        }
        fft3(&mut out, n, true);
        for (a, b) in out.iter().zip(&data) {
            assert!((a / (n * n * n) as f64 - b).norm() < 1e-12);
        }
    }
}
