//! A summary-statistic matching term for G's loss (`summary_loss` in the config).
//!
//! The harness compares, bin by bin, the *distribution over maps* of each summary
//! (a KS test on per-map values), not just its mean. The spectrum term pulls G's
//! batch-mean band powers to the data's; it says nothing about how much they
//! scatter from map to map, nor about the one-point distribution. This term
//! computes, for every map of G's batch, a vector of summaries — the mean pixel,
//! the log band powers, and the fraction of pixels above fixed thresholds (a
//! smooth step, so V0 and the pixel CDF have gradients) — and pulls both the mean
//! and the standard deviation over the batch of each towards the training data's,
//! in units of the data's standard deviation.

use candle_core::{Device, Tensor};
use simemu_core::{Error, Result};
use simemu_nn::ce;

use crate::spectrum::{maps_tensor, BandPower, GeneratorLossTerm, SpectrumBins};
use crate::transform::Transform;

/// Pixel thresholds of the smooth-step fractions, linear between two quantiles of
/// the training pixels (the config's `summary_quantiles`; the harness's default
/// bins span [0.001, 0.999]).
const THRESHOLDS: usize = 16;

pub struct SummaryMatcher {
    band_power: BandPower,
    /// (1, 1, THRESHOLDS) pixel thresholds, physical values.
    thresholds: Tensor,
    /// Width of the smooth step: half the threshold spacing.
    step_width: f64,
    /// Mean and standard deviation over the training maps of every summary, (F,).
    target: Option<(Tensor, Tensor)>,
    transform: Transform,
    weight: f64,
}

impl SummaryMatcher {
    /// Thresholds and targets from `maps` (each N², physical values). Conditional
    /// models use [`SummaryMatcher::per_batch`]: the real batch drawn beside G's, at
    /// the same parameters, is the target.
    pub fn new(
        n: usize,
        maps: &[&[f32]],
        quantile_range: [f64; 2],
        transform: Transform,
        weight: f64,
        device: &Device,
    ) -> Result<Self> {
        let mut pixels: Vec<f32> = maps.iter().flat_map(|m| m.iter().copied()).collect();
        if pixels.is_empty() || pixels.iter().any(|v| !v.is_finite()) {
            return Err(Error::Data(
                "summary_loss: the training maps are empty or not finite".into(),
            ));
        }
        pixels.sort_unstable_by(f32::total_cmp);
        let quantile = |q: f64| pixels[((pixels.len() - 1) as f64 * q).round() as usize] as f64;
        let (lo, hi) = (quantile(quantile_range[0]), quantile(quantile_range[1]));
        if hi <= lo {
            return Err(Error::Data(format!(
                "summary_loss: the training pixels have no spread between their {} and {} quantiles",
                quantile_range[0], quantile_range[1]
            )));
        }
        let spacing = (hi - lo) / THRESHOLDS as f64;
        let thresholds: Vec<f32> = (0..THRESHOLDS)
            .map(|i| (lo + (i as f64 + 0.5) * spacing) as f32)
            .collect();
        let mut matcher = SummaryMatcher {
            band_power: BandPower::new(n, SpectrumBins::Log, device)?,
            thresholds: Tensor::from_vec(thresholds, (1, 1, THRESHOLDS), device)
                .map_err(ce("summary thresholds"))?,
            step_width: spacing / 2.0,
            target: None,
            transform,
            weight,
        };
        let summaries = matcher
            .summaries(&maps_tensor(maps, n, device)?)
            .map_err(ce("summary target"))?;
        matcher.target = Some(mean_and_std(&summaries).map_err(ce("summary target"))?);
        Ok(matcher)
    }

    /// Match each step's fake batch to its real batch instead of the fixed target.
    pub fn per_batch(mut self) -> Self {
        self.target = None;
        self
    }

    /// Per-map summaries of (B, 1, N, N) physical maps: (B, F) with F = 1 + bands +
    /// thresholds.
    fn summaries(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _, n, _) = x.dims4()?;
        let flat = x.reshape((b, n * n))?;
        let mean = flat.mean_keepdim(1)?;
        let log_power = (self.band_power.per_map(x)? + 1e-12)?.log()?;
        // Smooth step σ((x − t)/w) = (1 + tanh((x − t)/2w))/2, averaged over pixels.
        let above = flat
            .unsqueeze(2)?
            .broadcast_sub(&self.thresholds)?
            .affine(0.5 / self.step_width, 0.0)?
            .tanh()?
            .affine(0.5, 0.5)?
            .mean(1)?;
        Tensor::cat(&[&mean, &log_power, &above], 1)
    }
}

/// Mean and standard deviation over the rows of (B, F): two (F,) tensors.
fn mean_and_std(x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let mean = x.mean(0)?;
    let var = x.broadcast_sub(&mean)?.sqr()?.mean(0)?;
    Ok((mean, (var + 1e-20)?.sqrt()?))
}

impl GeneratorLossTerm for SummaryMatcher {
    /// weight · mean over summaries of h((μ_G − μ)/σ) + h((σ_G − σ)/σ), with the
    /// pseudo-Huber h(d) = 2(√(1 + d²) − 1): d² near a match, but only linear in
    /// the tens of σ an untrained G is off by, so the term cannot swamp the
    /// adversarial gradient (or trip the divergence check) at the start.
    fn loss(&self, fake: &Tensor, real: &Tensor) -> candle_core::Result<Tensor> {
        let (mean, std) = match &self.target {
            Some((m, s)) => (m.clone(), s.clone()),
            None => {
                let real = self.transform.inverse_tensor(&real.detach())?;
                let (m, s) = mean_and_std(&self.summaries(&real)?)?;
                (m.detach(), s.detach())
            }
        };
        let physical = self.transform.inverse_tensor(fake)?;
        let (fake_mean, fake_std) = mean_and_std(&self.summaries(&physical)?)?;
        let pseudo_huber = |d: Tensor| -> candle_core::Result<Tensor> {
            d.sqr()?.affine(1.0, 1.0)?.sqrt()?.affine(2.0, -2.0)
        };
        let mean_term = pseudo_huber((fake_mean - &mean)?.broadcast_div(&std)?)?;
        let std_term = pseudo_huber((fake_std - &std)?.broadcast_div(&std)?)?;
        (mean_term + std_term)?.mean_all()? * self.weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(count: usize, n: usize, scale: f32, seed: u64) -> Vec<Vec<f32>> {
        use rand::Rng;
        let mut rng = simemu_core::seed::rng(seed);
        (0..count)
            .map(|_| {
                let amplitude = scale * rng.random_range(0.6f32..1.4);
                (0..n * n)
                    .map(|_| amplitude * (rng.random::<f32>() - 0.5))
                    .collect()
            })
            .collect()
    }

    fn loss_of(m: &SummaryMatcher, fake: &[Vec<f32>], n: usize) -> f32 {
        let refs: Vec<&[f32]> = fake.iter().map(|v| v.as_slice()).collect();
        let x = maps_tensor(&refs, n, &Device::Cpu).unwrap();
        m.loss(&x, &x).unwrap().to_scalar().unwrap()
    }

    /// The loss is zero on the maps it was built from, small on other maps of the
    /// same distribution, and large when the maps' scale or their map-to-map
    /// scatter changes — also when the batch-mean is right but the scatter is not.
    #[test]
    fn the_loss_sees_the_mean_and_the_scatter_of_per_map_summaries() {
        let n = 16;
        let data = maps(256, n, 1.0, 1);
        let refs: Vec<&[f32]> = data.iter().map(|v| v.as_slice()).collect();
        let m = SummaryMatcher::new(
            n,
            &refs,
            [0.01, 0.99],
            Transform::Identity,
            1.0,
            &Device::Cpu,
        )
        .unwrap();
        assert!(loss_of(&m, &data, n) < 1e-6);
        let same = loss_of(&m, &maps(256, n, 1.0, 2), n);
        let scaled = loss_of(&m, &maps(256, n, 1.3, 3), n);
        // Same mean amplitude, no map-to-map scatter of it.
        let fixed: Vec<Vec<f32>> = {
            use rand::Rng;
            let mut rng = simemu_core::seed::rng(4);
            (0..256)
                .map(|_| (0..n * n).map(|_| rng.random::<f32>() - 0.5).collect())
                .collect()
        };
        let no_scatter = loss_of(&m, &fixed, n);
        assert!(same < 0.1, "same distribution: {same}");
        assert!(scaled > 10.0 * same, "scaled: {scaled} vs {same}");
        assert!(
            no_scatter > 10.0 * same,
            "no scatter: {no_scatter} vs {same}"
        );

        // Per batch: the real batch is the target.
        let m = m.per_batch();
        let a = maps(64, n, 1.0, 5);
        let refs: Vec<&[f32]> = a.iter().map(|v| v.as_slice()).collect();
        let x = maps_tensor(&refs, n, &Device::Cpu).unwrap();
        let zero: f32 = m.loss(&x, &x).unwrap().to_scalar().unwrap();
        assert!(zero.abs() < 1e-6);
    }

    #[test]
    fn constant_training_maps_are_refused() {
        let flat = vec![vec![1f32; 64]; 4];
        let refs: Vec<&[f32]> = flat.iter().map(|v| v.as_slice()).collect();
        let e = SummaryMatcher::new(
            8,
            &refs,
            [0.01, 0.99],
            Transform::Identity,
            1.0,
            &Device::Cpu,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("no spread"), "{e}");
    }
}
