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
//!
//! With `summary_minkowski`, the summaries also include smooth versions of the
//! other two Minkowski functionals between consecutive thresholds: the mean of
//! |∇x| (V1, boundary length) and of the level-set curvature term (V2, Euler
//! characteristic) over the pixels in each threshold bin, with the same
//! periodic central differences as the harness's statistics and a soft bin
//! membership (the difference of two smooth steps), so that they have gradients.

use candle_core::{Device, Tensor};
use simemu_core::{Error, Result};
use simemu_nn::ce;

pub use crate::config::SummarySpacing;
use crate::spectrum::{maps_tensor, BandPower, GeneratorLossTerm, SpectrumBins};
use crate::transform::Transform;

/// The pixel thresholds of the smooth-step fractions: `count` of them, spaced
/// between two quantiles of the training pixels (the config's
/// `summary_thresholds`, `summary_quantiles` and `summary_spacing`; the
/// harness's default bins span [0.001, 0.999]).
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    pub quantiles: [f64; 2],
    pub count: usize,
    pub spacing: SummarySpacing,
}

/// The smooth steps' widths: one for all thresholds (linear spacing), or one per
/// threshold, (1, 1, T).
enum StepWidth {
    Uniform(f64),
    PerThreshold(Tensor),
}

pub struct SummaryMatcher {
    band_power: BandPower,
    /// (1, 1, T) pixel thresholds, physical values.
    thresholds: Tensor,
    /// Width of the smooth steps: half the (local) threshold spacing.
    step_width: StepWidth,
    /// Smooth V1 and V2 per threshold bin (`summary_minkowski`): the floor added
    /// to |∇x|², a thousandth of the training maps' mean, keeps V2's division
    /// and the square root of V1 differentiable where the gradient vanishes.
    minkowski: Option<f64>,
    /// The training maps' summaries (None: each real batch is the target).
    target: Option<Target>,
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
        thresholds: Thresholds,
        minkowski: bool,
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
        let [q_lo, q_hi] = thresholds.quantiles;
        let (lo, hi) = (quantile(q_lo), quantile(q_hi));
        if hi <= lo {
            return Err(Error::Data(format!(
                "summary_loss: the training pixels have no spread between their {q_lo} and {q_hi} quantiles"
            )));
        }
        let count = thresholds.count;
        if count < 2 {
            return Err(Error::Option(format!(
                "summary_loss: {count} thresholds; at least 2 are needed"
            )));
        }
        let linear = (hi - lo) / count as f64;
        let (values, step_width) = match thresholds.spacing {
            SummarySpacing::Linear => {
                let values: Vec<f32> = (0..count)
                    .map(|i| (lo + (i as f64 + 0.5) * linear) as f32)
                    .collect();
                (values, StepWidth::Uniform(linear / 2.0))
            }
            SummarySpacing::Normal | SummarySpacing::Finer => {
                use statrs::distribution::{ContinuousCDF, Normal};
                let normal = Normal::standard();
                let (z_lo, z_hi) = (normal.inverse_cdf(q_lo), normal.inverse_cdf(q_hi));
                let dz = (z_hi - z_lo) / count as f64;
                let (values, widths): (Vec<f32>, Vec<f32>) =
                    if thresholds.spacing == SummarySpacing::Normal {
                        let at = |k: f64| quantile(normal.cdf(z_lo + k * dz));
                        (0..count)
                            .map(|i| {
                                let k = i as f64;
                                let width = (at(k + 1.0) - at(k)) / 2.0;
                                (at(k + 0.5) as f32, width as f32)
                            })
                            .unzip()
                    } else {
                        // From each edge, the next one is the nearer of the linear
                        // spacing and the pixel value one step dz further in normal
                        // score (through the empirical distribution function).
                        let score = |x: f64| {
                            let below = pixels.partition_point(|&p| (p as f64) <= x);
                            let f = (below as f64 / pixels.len() as f64).clamp(q_lo, q_hi);
                            normal.inverse_cdf(f)
                        };
                        let mut edges = vec![lo];
                        let mut x = lo;
                        while x < hi {
                            let by_score = quantile(normal.cdf(score(x) + dz));
                            let gap = if by_score > x {
                                (by_score - x).min(linear)
                            } else {
                                linear
                            };
                            // A sliver of a last interval joins the one before it.
                            x = if hi - (x + gap) < 0.5 * gap {
                                hi
                            } else {
                                x + gap
                            };
                            edges.push(x);
                        }
                        edges
                            .windows(2)
                            .map(|e| (((e[0] + e[1]) / 2.0) as f32, ((e[1] - e[0]) / 2.0) as f32))
                            .unzip()
                    };
                if let Some(i) = widths.iter().position(|&w| w.is_nan() || w <= 0.0) {
                    return Err(Error::Data(format!(
                        "summary_spacing = \"{}\": the training pixels have no spread \
                         around threshold {i} of {} (tied values); use \"linear\"",
                        thresholds.spacing.name(),
                        widths.len()
                    )));
                }
                let tensor = Tensor::from_slice(&widths, (1, 1, values.len()), device)
                    .map_err(ce("summary thresholds"))?;
                (values, StepWidth::PerThreshold(tensor))
            }
        };
        let mut matcher = SummaryMatcher {
            band_power: BandPower::new(n, SpectrumBins::Log, device)?,
            thresholds: Tensor::from_vec(values.clone(), (1, 1, values.len()), device)
                .map_err(ce("summary thresholds"))?,
            step_width,
            minkowski: None,
            target: None,
            transform,
            weight,
        };
        let training = maps_tensor(maps, n, device)?;
        if minkowski {
            let mean_gradient2 = (|| {
                let (gx, gy, ..) = derivatives(&training)?;
                (gx.sqr()? + gy.sqr()?)?.mean_all()?.to_scalar::<f32>()
            })()
            .map_err(ce("summary gradients"))?;
            matcher.minkowski = Some(1e-3 * mean_gradient2 as f64);
        }
        // In chunks: the smooth steps of all maps at once would hold maps × N² ×
        // thresholds values.
        let summaries = (0..maps.len())
            .step_by(TARGET_CHUNK)
            .map(|start| {
                let len = TARGET_CHUNK.min(maps.len() - start);
                matcher.summaries(&training.narrow(0, start, len)?)
            })
            .collect::<candle_core::Result<Vec<_>>>()
            .and_then(|parts| Tensor::cat(&parts, 0))
            .map_err(ce("summary target"))?;
        let (mean, std) = mean_and_std(&summaries).map_err(ce("summary target"))?;
        matcher.target = Some(Target { mean, std });
        Ok(matcher)
    }

    /// Match each step's fake batch to its real batch instead of the fixed target.
    pub fn per_batch(mut self) -> Self {
        self.target = None;
        self
    }

    /// Per-map summaries of (B, 1, N, N) physical maps: (B, F) with F = 1 + bands +
    /// thresholds [+ 2 (thresholds − 1) with `minkowski`].
    fn summaries(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _, n, _) = x.dims4()?;
        let flat = x.reshape((b, n * n))?;
        let mean = flat.mean_keepdim(1)?;
        let log_power = self.band_power.log_per_map(x)?;
        // Smooth step σ((x − t)/w) = (1 + tanh((x − t)/2w))/2 per pixel: (B, N², T).
        let offsets = flat.unsqueeze(2)?.broadcast_sub(&self.thresholds)?;
        let scaled = match &self.step_width {
            StepWidth::Uniform(w) => offsets.affine(0.5 / w, 0.0)?,
            StepWidth::PerThreshold(w) => offsets.broadcast_div(&(w * 2.0)?)?,
        };
        let steps = scaled.tanh()?.affine(0.5, 0.5)?;
        let above = steps.mean(1)?;
        let Some(floor) = self.minkowski else {
            return Tensor::cat(&[&mean, &log_power, &above], 1);
        };
        // Soft membership of the bins between consecutive thresholds: (B, N², T − 1).
        let t = self.thresholds.dim(2)?;
        let bins = (steps.narrow(2, 0, t - 1)? - steps.narrow(2, 1, t - 1)?)?;
        let (gx, gy, hxx, hyy, hxy) = derivatives(x)?;
        let g2 = ((gx.sqr()? + gy.sqr()?)? + floor)?;
        let curvature = ((((gx.clone() * &gy)? * hxy)?.affine(2.0, 0.0)? - (gx.sqr()? * hyy)?)?
            - (gy.sqr()? * hxx)?)?
            .div(&g2)?;
        let per_bin = |integrand: Tensor| -> candle_core::Result<Tensor> {
            (integrand.reshape((b, 1, n * n))?.matmul(&bins)? / (n * n) as f64)?.squeeze(1)
        };
        let v1 = per_bin(g2.sqrt()?)?;
        let v2 = per_bin(curvature)?;
        Tensor::cat(&[&mean, &log_power, &above, &v1, &v2], 1)
    }
}

/// The training maps' summaries, as the term compares them.
struct Target {
    /// Mean and standard deviation over the maps of every summary, (F,).
    mean: Tensor,
    std: Tensor,
}

/// Maps per chunk when computing the training targets.
const TARGET_CHUNK: usize = 64;

/// Periodic central differences of (B, 1, N, N) maps, each (B, N, N): the gradient
/// (gx, gy) and the wide-stencil Hessian (hxx, hyy, hxy) — the stencils of the
/// harness's Minkowski functionals (lenstools'), with x along the last axis.
fn derivatives(x: &Tensor) -> candle_core::Result<(Tensor, Tensor, Tensor, Tensor, Tensor)> {
    let (b, _, n, _) = x.dims4()?;
    let m = x.reshape((b, n, n))?;
    // roll(−1) brings the next pixel to each position, roll(1) the previous one.
    let (right, left) = (m.roll(-1, 2)?, m.roll(1, 2)?);
    let (down, up) = (m.roll(-1, 1)?, m.roll(1, 1)?);
    let gx = ((&right - &left)? * 0.5)?;
    let gy = ((&down - &up)? * 0.5)?;
    let twice = (&m * 2.0)?;
    let hxx = (((m.roll(-2, 2)? + m.roll(2, 2)?)? - &twice)? * 0.25)?;
    let hyy = (((m.roll(-2, 1)? + m.roll(2, 1)?)? - &twice)? * 0.25)?;
    let hxy =
        ((((down.roll(-1, 2)? + up.roll(1, 2)?)? - down.roll(1, 2)?)? - up.roll(-1, 2)?)? * 0.25)?;
    Ok((gx, gy, hxx, hyy, hxy))
}

/// Mean and standard deviation over the rows of (B, F): two (F,) tensors.
fn mean_and_std(x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    let mean = x.mean(0)?;
    let var = x.broadcast_sub(&mean)?.sqr()?.mean(0)?;
    Ok((mean, (var + 1e-20)?.sqrt()?))
}

impl GeneratorLossTerm for SummaryMatcher {
    /// weight · mean over summaries of
    /// h((μ_G − μ)/σ) + h((σ_G − σ)/σ), with the pseudo-Huber
    /// h(d) = 2(√(1 + d²) − 1): d² near a match, but only linear in the tens of
    /// σ an untrained G is off by, so the term cannot swamp the adversarial
    /// gradient (or trip the divergence check) at the start. Without a fixed
    /// target (conditional models) the real batch drawn beside G's, at the same
    /// parameters, gives μ and σ.
    fn loss(&self, fake: &Tensor, real: &Tensor) -> candle_core::Result<Tensor> {
        let (mean, std) = match &self.target {
            Some(t) => (t.mean.clone(), t.std.clone()),
            None => {
                let real = self.transform.inverse_tensor(&real.detach())?;
                mean_and_std(&self.summaries(&real)?.detach())?
            }
        };
        let physical = self.transform.inverse_tensor(fake)?;
        let fake_summaries = self.summaries(&physical)?;
        let pseudo_huber = |d: Tensor| -> candle_core::Result<Tensor> {
            d.sqr()?.affine(1.0, 1.0)?.sqrt()?.affine(2.0, -2.0)
        };
        let (fake_mean, fake_std) = mean_and_std(&fake_summaries)?;
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

    const THRESHOLDS: usize = 16;

    /// A matcher of weight 1 on physical values from `data`, 16 thresholds between
    /// its 1% and 99% quantiles.
    fn matcher(data: &[Vec<f32>], n: usize, minkowski: bool) -> Result<SummaryMatcher> {
        spaced_matcher(data, n, minkowski, SummarySpacing::Linear)
    }

    /// As [`matcher`], with the thresholds spaced as asked.
    fn spaced_matcher(
        data: &[Vec<f32>],
        n: usize,
        minkowski: bool,
        spacing: SummarySpacing,
    ) -> Result<SummaryMatcher> {
        let refs: Vec<&[f32]> = data.iter().map(|v| v.as_slice()).collect();
        SummaryMatcher::new(
            n,
            &refs,
            Thresholds {
                quantiles: [0.01, 0.99],
                count: THRESHOLDS,
                spacing,
            },
            minkowski,
            Transform::Identity,
            1.0,
            &Device::Cpu,
        )
    }

    /// N×N maps as a (count, 1, N, N) tensor.
    fn tensor_of(maps: &[Vec<f32>], n: usize) -> Tensor {
        let refs: Vec<&[f32]> = maps.iter().map(|v| v.as_slice()).collect();
        maps_tensor(&refs, n, &Device::Cpu).unwrap()
    }

    fn loss_of(m: &SummaryMatcher, fake: &[Vec<f32>], n: usize) -> f32 {
        let x = tensor_of(fake, n);
        m.loss(&x, &x).unwrap().to_scalar().unwrap()
    }

    /// The loss is zero on the maps it was built from, small on other maps of the
    /// same distribution, and large when the maps' scale or their map-to-map
    /// scatter changes — also when the batch-mean is right but the scatter is not.
    #[test]
    fn the_loss_sees_the_mean_and_the_scatter_of_per_map_summaries() {
        let n = 16;
        let data = maps(256, n, 1.0, 1);
        let m = matcher(&data, n, false).unwrap();
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
        let x = tensor_of(&maps(64, n, 1.0, 5), n);
        let zero: f32 = m.loss(&x, &x).unwrap().to_scalar().unwrap();
        assert!(zero.abs() < 1e-6);
    }

    /// The smooth V1 and V2 summaries equal a direct loop over the pixels with the
    /// harness's stencils (lenstools': central gradient, wide Hessian, periodic),
    /// and the loss is zero on the training maps themselves.
    #[test]
    fn smooth_minkowski_summaries_follow_the_harness_stencils() {
        let n = 12;
        let data = maps(8, n, 1.0, 7);
        let m = matcher(&data, n, true).unwrap();
        let floor = m.minkowski.unwrap();
        let x = tensor_of(&data, n);
        let got: Vec<Vec<f32>> = m.summaries(&x).unwrap().to_vec2().unwrap();
        let thresholds: Vec<f32> = m.thresholds.flatten_all().unwrap().to_vec1().unwrap();
        let StepWidth::Uniform(width) = m.step_width else {
            panic!("linear spacing has one width")
        };
        let step = |v: f64, t: f32| 0.5 + 0.5 * ((v - t as f64) / (2.0 * width)).tanh();
        let first_v1 = 1 + crate::spectrum::BANDS + THRESHOLDS;
        for (map, row) in data.iter().zip(&got) {
            let at = |r: usize, c: usize| map[(r % n) * n + c % n] as f64;
            let mut v1 = [0f64; THRESHOLDS - 1];
            let mut v2 = [0f64; THRESHOLDS - 1];
            for r in 0..n {
                for c in 0..n {
                    let (rp, cp, rm, cm) = (r + 1, c + 1, r + n - 1, c + n - 1);
                    let gx = (at(r, cp) - at(r, cm)) / 2.0;
                    let gy = (at(rp, c) - at(rm, c)) / 2.0;
                    let hxx = (at(r, c + 2) + at(r, c + n - 2) - 2.0 * at(r, c)) / 4.0;
                    let hyy = (at(r + 2, c) + at(r + n - 2, c) - 2.0 * at(r, c)) / 4.0;
                    let hxy = (at(rp, cp) + at(rm, cm) - at(rp, cm) - at(rm, cp)) / 4.0;
                    let g2 = gx * gx + gy * gy + floor;
                    let curvature = (2.0 * gx * gy * hxy - gx * gx * hyy - gy * gy * hxx) / g2;
                    for i in 0..THRESHOLDS - 1 {
                        let w = step(at(r, c), thresholds[i]) - step(at(r, c), thresholds[i + 1]);
                        v1[i] += w * g2.sqrt() / (n * n) as f64;
                        v2[i] += w * curvature / (n * n) as f64;
                    }
                }
            }
            let expected = v1.iter().chain(&v2);
            for (g, e) in row[first_v1..].iter().zip(expected) {
                // f32 tensor arithmetic against an f64 loop: a few ulps of f32 on
                // sums of order 1, relative to the largest summary.
                assert!((*g as f64 - e).abs() < 1e-5 * (1.0 + e.abs()), "{g} vs {e}");
            }
            assert_eq!(row.len(), first_v1 + 2 * (THRESHOLDS - 1));
        }
        assert!(loss_of(&m, &data, n) < 1e-6);
    }

    /// 128 N×N maps of independent log-normal pixels, e^g with g ~ N(0, 1).
    fn log_normal_maps(n: usize) -> Vec<Vec<f32>> {
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = simemu_core::seed::rng(11);
        (0..128)
            .map(|_| {
                (0..n * n)
                    .map(|_| StandardNormal.sample(&mut rng))
                    .map(|g: f64| g.exp() as f32)
                    .collect()
            })
            .collect()
    }

    /// Normal-score spacing on log-normal pixels, x = e^g with g ~ N(0, 1): the
    /// thresholds sit at e^z for z evenly spaced between the normal scores of the
    /// two quantiles, each step half its local spacing wide (e^z · sinh(dz/2));
    /// the loss is zero on the training maps; tied pixel values are refused.
    /// "finer" takes the normal-score step where it is the shorter (the lower
    /// tail) and the linear one elsewhere, the steps tiling the whole range.
    #[test]
    fn normal_spacing_follows_the_shape_of_the_pixel_distribution() {
        use statrs::distribution::{ContinuousCDF, Normal};
        let n = 32;
        let data = log_normal_maps(n);
        let build = |data: &[Vec<f32>], spacing| spaced_matcher(data, n, true, spacing);
        let m = build(&data, SummarySpacing::Normal).unwrap();
        let z_hi = Normal::standard().inverse_cdf(0.99);
        let dz = 2.0 * z_hi / THRESHOLDS as f64;
        let thresholds: Vec<f32> = m.thresholds.flatten_all().unwrap().to_vec1().unwrap();
        let StepWidth::PerThreshold(widths) = &m.step_width else {
            panic!("normal spacing has a width per threshold")
        };
        let widths: Vec<f32> = widths.flatten_all().unwrap().to_vec1().unwrap();
        for (i, (&t, &w)) in thresholds.iter().zip(&widths).enumerate() {
            let expected = (-z_hi + (i as f64 + 0.5) * dz).exp();
            // A quantile of 131,072 pixels near the 1.5% one is off by ~0.013 in
            // z (√(p(1 − p)/N)/φ(z)): 1.3% in e^z; 3σ.
            assert!(
                (t as f64 / expected - 1.0).abs() < 0.04,
                "{i}: {t} vs {expected}"
            );
            // A difference of two such quantiles, relative to a spacing of 0.29 in z.
            let half_spacing = expected * (dz / 2.0).sinh();
            assert!(
                (w as f64 / half_spacing - 1.0).abs() < 0.15,
                "{i}: {w} vs {half_spacing}"
            );
        }
        assert!(loss_of(&m, &data, n) < 1e-6);
        let normal_widths = widths;

        let m = build(&data, SummarySpacing::Finer).unwrap();
        let thresholds: Vec<f32> = m.thresholds.flatten_all().unwrap().to_vec1().unwrap();
        let StepWidth::PerThreshold(widths) = &m.step_width else {
            panic!("finer spacing has a width per threshold")
        };
        let widths: Vec<f32> = widths.flatten_all().unwrap().to_vec1().unwrap();
        let edges: Vec<f64> = thresholds
            .iter()
            .zip(&widths)
            .flat_map(|(&t, &w)| [t as f64 - w as f64, t as f64 + w as f64])
            .collect();
        // The quantiles of the range, 3σ as above.
        let (lo, hi) = ((-z_hi).exp(), z_hi.exp());
        assert!((edges[0] / lo - 1.0).abs() < 0.04, "{} vs {lo}", edges[0]);
        assert!((edges[edges.len() - 1] / hi - 1.0).abs() < 0.04);
        for (i, pair) in edges[1..edges.len() - 1].chunks(2).enumerate() {
            assert!((pair[1] - pair[0]).abs() < 1e-5 * hi, "gap after step {i}");
        }
        let linear = (edges[edges.len() - 1] - edges[0]) / THRESHOLDS as f64;
        let (last, inner) = widths.split_last().unwrap();
        assert!(inner
            .iter()
            .all(|&w| 2.0 * w as f64 <= linear * (1.0 + 1e-5)));
        // The last step also holds what was left of the range, less than half a step.
        assert!(2.0 * *last as f64 <= 1.5 * linear * (1.0 + 1e-5));
        assert!(widths.len() > THRESHOLDS);
        // At the bottom the normal-score step (e^−2.3 · 2 sinh(dz/2) ≈ 0.03) is the
        // finer one by far (linear: 0.63); the first differs from "normal"'s
        // only by its midpoint-of-edges placement.
        assert!((widths[0] / normal_widths[0] - 1.0).abs() < 0.15);
        assert!(2.0 * widths[THRESHOLDS] as f64 > 0.99 * linear);
        assert!(loss_of(&m, &data, n) < 1e-6);

        let two_valued: Vec<Vec<f32>> = (0..4)
            .map(|k| (0..n * n).map(|i| ((i + k) % 2) as f32).collect())
            .collect();
        let e = build(&two_valued, SummarySpacing::Normal).err().unwrap();
        assert!(e.to_string().contains("tied"), "{e}");
    }

    #[test]
    fn constant_training_maps_are_refused() {
        let flat = vec![vec![1f32; 64]; 4];
        let e = matcher(&flat, 8, false).err().unwrap();
        assert!(e.to_string().contains("no spread"), "{e}");
    }
}
