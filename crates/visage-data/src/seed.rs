//! Random streams derived from a tuple of integers, so that a sample's
//! randomness depends on (seed, epoch, sample index) only: not on the rank,
//! the thread that happens to process it, or what was drawn before it.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// Which use a stream is for; keeps the shuffle and the augmentation of the
/// same (seed, epoch) independent.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Shuffle = 1,
    Augment = 2,
}

/// SplitMix64's finaliser: a bijection on u64 that spreads every input bit.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(crate) fn rng(stream: Stream, parts: &[u64]) -> StdRng {
    let mixed = parts.iter().fold(splitmix(stream as u64), |acc, &part| splitmix(acc ^ splitmix(part)));
    StdRng::seed_from_u64(mixed)
}
