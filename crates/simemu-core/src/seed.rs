//! Per-sample seeds. Sample `i` of a run depends only on (run seed, global index `i`),
//! never on the order or the shard in which samples are produced.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// SplitMix64 finaliser: a bijective, well-mixing 64-bit hash.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of sample `index` of a run seeded with `run_seed`.
pub fn sample_seed(run_seed: u64, index: u64) -> u64 {
    mix64(mix64(run_seed ^ 0x5349_4d45_4d55_0001).wrapping_add(mix64(index)))
}

/// A derived stream for a named purpose (e.g. "latent", "init") of a seed, so that
/// different uses of one seed never share random numbers.
pub fn derive_seed(seed: u64, purpose: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64; // FNV-1a of the purpose string
    for b in purpose.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    mix64(seed ^ mix64(h))
}

/// The portable, documented-reproducible generator used everywhere in simemu.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn seeds_are_stable_golden_values() {
        // Golden values: a change here silently changes every dataset ever produced.
        assert_eq!(sample_seed(7, 0), sample_seed(7, 0));
        assert_ne!(sample_seed(7, 0), sample_seed(7, 1));
        assert_ne!(sample_seed(7, 0), sample_seed(8, 0));
        let mut r = rng(42);
        assert_eq!(r.next_u64(), 12578764544318200737);
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0x5692_161d_100b_05e5);
    }
}
