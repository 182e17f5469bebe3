//! A power-spectrum matching term for G's loss (`spectrum_loss` in the config).
//!
//! The adversarial loss alone leaves the generated maps' power spectrum off by
//! tens of percent in bands that move from checkpoint to checkpoint. This term
//! pulls the batch-mean spectrum of G's maps towards the training set's, in
//! physical units (G's output goes through the inverse data transform inside the
//! graph): the mean squared difference of the log band powers. candle has no FFT, so the 2D DFT is two products with fixed cos/sin
//! matrices per map (at 64² as cheap as a convolution layer), all inside the graph.

use candle_core::{Device, Tensor};
use simemu_core::Result;
use simemu_nn::ce;

pub use crate::config::SpectrumBins;
use crate::transform::Transform;

/// `SpectrumBins::Log`: log-spaced bands of the integer wavenumber |k| from 1 to
/// the corner N/√2.
pub(crate) const BANDS: usize = 12;

/// Added to band powers before their logarithm: keeps a band without power
/// (the empty log bands of small maps) finite.
const LOG_FLOOR: f64 = 1e-12;

/// Band powers of (B, 1, N, N) maps inside the graph: the 2D DFT as two products
/// with fixed cos/sin matrices, then |X_k|² averaged over the modes of each band.
#[derive(Clone)]
pub struct BandPower {
    cos: Tensor,
    sin: Tensor,
    /// (N², bands): averages |X_k|² over the modes of each band.
    bands: Tensor,
}

/// A term added to G's loss, computed from G's batch and the real batch beside it
/// (both in the network's units).
pub trait GeneratorLossTerm {
    fn loss(&self, fake: &Tensor, real: &Tensor) -> candle_core::Result<Tensor>;
}

pub struct SpectrumMatcher {
    band_power: BandPower,
    /// ln of the training set's mean band powers, (bands,).
    target: Tensor,
    /// Conditional models: the target is the real batch's band powers (G's batch is
    /// drawn at the same parameters), since one spectrum for the whole parameter
    /// grid would pull every σ towards the grid's average.
    target_from_real_batch: bool,
    /// Maps G's output to physical values.
    transform: Transform,
    pub weight: f64,
}

/// The band of every mode (None: the mean mode k = 0) and the number of bands.
fn band_of_modes(n: usize, bins: SpectrumBins) -> (Vec<Option<usize>>, usize) {
    // Integer |k|: wavenumbers for a side of 2π.
    let k = simemu_grid::mode_wavenumbers(n, 2.0 * std::f64::consts::PI);
    match bins {
        SpectrumBins::Log => {
            let out = k
                .into_iter()
                .map(|k| (k >= 1.0).then(|| log_band(k, n)))
                .collect();
            (out, BANDS)
        }
        SpectrumBins::Shells => {
            let k2: Vec<u64> = k.iter().map(|k| (k * k).round() as u64).collect();
            let mut shells: Vec<u64> = k2.iter().copied().filter(|&q| q > 0).collect();
            shells.sort_unstable();
            shells.dedup();
            let out = k2.iter().map(|q| shells.binary_search(q).ok()).collect();
            (out, shells.len())
        }
    }
}

/// The log band (of `BANDS`) of integer wavenumber |k| ≥ 1 on N×N maps.
fn log_band(k: f64, n: usize) -> usize {
    let kmax = (2.0f64).sqrt() * (n / 2) as f64;
    let t = k.ln() / kmax.ln(); // 0 at |k| = 1, 1 at the corner
    ((t * BANDS as f64) as usize).min(BANDS - 1)
}

impl BandPower {
    /// DFT and band matrices for N×N maps.
    pub fn new(n: usize, bins: SpectrumBins, device: &Device) -> Result<Self> {
        let mut c = vec![0f32; n * n];
        let mut s = vec![0f32; n * n];
        for j in 0..n {
            for k in 0..n {
                let a = 2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
                c[j * n + k] = a.cos() as f32;
                s[j * n + k] = a.sin() as f32;
            }
        }
        let (modes, nb) = band_of_modes(n, bins);
        let mut count = vec![0usize; nb];
        for b in modes.iter().flatten() {
            count[*b] += 1;
        }
        let mut m = vec![0f32; n * n * nb];
        for (i, b) in modes.iter().enumerate() {
            if let Some(b) = b {
                m[i * nb + b] = 1.0 / count[*b] as f32;
            }
        }
        let t = |v: Vec<f32>, shape: (usize, usize)| Tensor::from_vec(v, shape, device);
        Ok(BandPower {
            cos: t(c, (n, n)).map_err(ce("spectrum"))?,
            sin: t(s, (n, n)).map_err(ce("spectrum"))?,
            bands: t(m, (n * n, nb)).map_err(ce("spectrum"))?,
        })
    }

    pub fn device(&self) -> &Device {
        self.cos.device()
    }

    /// Band powers of each of (B, 1, N, N) maps: (B, bands).
    pub fn per_map(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _, n, _) = x.dims4()?;
        let x = x.reshape((b, n, n))?;
        // X = W x W with W = C − iS (symmetric): Re = CxC − SxS, Im = −(CxS + SxC).
        let cx = x.broadcast_matmul(&self.cos)?;
        let sx = x.broadcast_matmul(&self.sin)?;
        let re = (self.cos.broadcast_matmul(&cx)? - self.sin.broadcast_matmul(&sx)?)?;
        let im = (self.cos.broadcast_matmul(&sx)? + self.sin.broadcast_matmul(&cx)?)?;
        let power = (re.sqr()? + im.sqr()?)?.reshape((b, n * n))?;
        power.matmul(&self.bands)
    }

    /// ln of each map's band powers, (B, bands), floored so that a band without
    /// power stays finite.
    pub fn log_per_map(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        (self.per_map(x)? + LOG_FLOOR)?.log()
    }

    /// ln of the batch-mean band powers of (B, 1, N, N) maps: (bands,).
    fn log_batch_mean(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        (self.per_map(x)?.mean(0)? + LOG_FLOOR)?.log()
    }
}

/// Maps in physical values as a (count, 1, n, n) tensor.
pub fn maps_tensor(maps: &[&[f32]], n: usize, device: &Device) -> Result<Tensor> {
    let flat: Vec<f32> = maps.iter().flat_map(|m| m.iter().copied()).collect();
    Tensor::from_vec(flat, (maps.len(), 1, n, n), device).map_err(ce("matching target"))
}

impl SpectrumMatcher {
    /// Builds the DFT and band matrices for N×N maps and the target from
    /// `maps` (each N², physical values); `transform` maps G's output to them.
    pub fn new(
        n: usize,
        bins: SpectrumBins,
        maps: &[&[f32]],
        transform: Transform,
        weight: f64,
        device: &Device,
    ) -> Result<Self> {
        let band_power = BandPower::new(n, bins, device)?;
        let target = band_power
            .log_batch_mean(&maps_tensor(maps, n, device)?)
            .map_err(ce("spectrum target"))?
            .detach();
        Ok(SpectrumMatcher {
            band_power,
            target,
            target_from_real_batch: false,
            transform,
            weight,
        })
    }

    /// Match each step's fake batch to its real batch instead of the fixed target
    /// (for conditional generators).
    pub fn per_batch(mut self) -> Self {
        self.target_from_real_batch = true;
        self
    }
}

impl GeneratorLossTerm for SpectrumMatcher {
    /// weight · mean over bands of (ln P_G − ln P_data)²,
    /// from G's output and the real batch it was drawn beside (both in the
    /// network's units).
    fn loss(&self, fake: &Tensor, real: &Tensor) -> candle_core::Result<Tensor> {
        let physical = self.transform.inverse_tensor(fake)?;
        let target = if self.target_from_real_batch {
            let real = self.transform.inverse_tensor(&real.detach())?;
            self.band_power.log_batch_mean(&real)?.detach()
        } else {
            self.target.clone()
        };
        let d2 = (self.band_power.log_batch_mean(&physical)? - target)?.sqr()?;
        d2.mean_all()? * self.weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matrix DFT's band powers equal a direct DFT's, and the loss vanishes on
    /// the data it was built from and grows when the maps are scaled (P ∝ a²).
    #[test]
    fn band_powers_match_a_direct_dft_and_the_loss_sees_scaling() {
        for bins in [SpectrumBins::Log, SpectrumBins::Shells] {
            band_powers_match_a_direct_dft_and_the_loss_sees_scaling_with(bins);
        }
    }

    /// At 8²: |k|² ∈ {1, 2, 4, 5, 8, 9, 10, 13, 16, 17, 18, 20, 25, 32}.
    #[test]
    fn shells_are_the_distinct_squared_wavenumbers() {
        let (modes, nb) = band_of_modes(8, SpectrumBins::Shells);
        assert_eq!(nb, 14);
        assert_eq!(modes[0], None);
        assert_eq!(modes[1], Some(0)); // (0, 1)
        assert_eq!(modes[8 + 1], Some(1)); // (1, 1)
        assert_eq!(modes[4 * 8 + 4], Some(13)); // (4, 4): the corner, |k|² = 32
        assert_eq!(modes.iter().filter(|b| **b == Some(0)).count(), 4);
    }

    fn band_powers_match_a_direct_dft_and_the_loss_sees_scaling_with(bins: SpectrumBins) {
        let n = 8;
        let map: Vec<f32> = (0..n * n)
            .map(|i| ((i * i * 7919 + i * 37) % 101) as f32 * 0.01 - 0.5)
            .collect();
        let m =
            SpectrumMatcher::new(n, bins, &[&map], Transform::Identity, 1.0, &Device::Cpu).unwrap();
        let x = Tensor::from_vec(map.clone(), (1, 1, n, n), &Device::Cpu).unwrap();
        let got: Vec<f32> = m.band_power.log_batch_mean(&x).unwrap().to_vec1().unwrap();
        // Direct DFT.
        let (modes, nb) = band_of_modes(n, bins);
        let mut sum = vec![0f64; nb];
        let mut cnt = vec![0usize; nb];
        for ky in 0..n {
            for kx in 0..n {
                let (mut re, mut im) = (0f64, 0f64);
                for y in 0..n {
                    for xx in 0..n {
                        let a =
                            -2.0 * std::f64::consts::PI * ((ky * y + kx * xx) as f64) / n as f64;
                        re += map[y * n + xx] as f64 * a.cos();
                        im += map[y * n + xx] as f64 * a.sin();
                    }
                }
                if let Some(b) = modes[ky * n + kx] {
                    sum[b] += re * re + im * im;
                    cnt[b] += 1;
                }
            }
        }
        // f32 sums of O(1) terms: compare powers to 1e-5 of the largest.
        let largest = (0..nb)
            .filter(|&b| cnt[b] > 0)
            .map(|b| sum[b] / cnt[b] as f64)
            .fold(0.0, f64::max);
        for b in 0..nb {
            if cnt[b] > 0 {
                let want = sum[b] / cnt[b] as f64;
                let p = (got[b] as f64).exp() - 1e-12;
                assert!(
                    (p - want).abs() < 1e-5 * largest,
                    "{bins:?} band {b}: {p} vs {want}"
                );
            }
        }
        let zero: f32 = m.loss(&x, &x).unwrap().to_scalar().unwrap();
        assert!(zero.abs() < 1e-9);
        let scaled = (&x * 2.0).unwrap();
        let l: f32 = m.loss(&scaled, &x).unwrap().to_scalar().unwrap();
        // Bands with power (not just the 1e-12 floor) move by ln 4.
        let occupied = (0..nb)
            .filter(|&b| cnt[b] > 0 && sum[b] / cnt[b] as f64 > 1e-6 * largest)
            .count() as f32;
        let want = (2.0f32.ln() * 2.0).powi(2) * occupied / nb as f32;
        assert!((l - want).abs() < 1e-3 * want, "{l} vs {want}");

        // Per batch: the target is the real batch, whatever the fixed target says.
        let m = m.per_batch();
        let same: f32 = m.loss(&scaled, &scaled).unwrap().to_scalar().unwrap();
        assert!(same.abs() < 1e-9);
        let l: f32 = m.loss(&x, &scaled).unwrap().to_scalar().unwrap();
        assert!((l - want).abs() < 1e-3 * want, "{l} vs {want}");
    }
}
