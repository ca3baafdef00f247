//! Radix sort of `f64` scores through order-preserving `u64` keys.
//!
//! The ROC walk needs every score in order. One most-significant-digit pass
//! splits the keys by their top 16 bits; each bucket is then sorted in cache
//! by least-significant-digit passes (12-bit digits, constant digits skipped),
//! buckets in parallel. On 10⁷–10⁸ scores this is several times faster than
//! a comparison sort and needs one scratch buffer.

use rayon::prelude::*;

/// Maps an `f64` to a `u64` whose unsigned order is the numeric order
/// (IEEE-754 total order; `-0.0` is folded into `0.0` first so the two tie,
/// as they do for scikit-learn). NaN must be rejected before.
#[inline]
pub fn score_key(score: f64) -> u64 {
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = score.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1u64 << 63)
    }
}

/// Inverse of [`score_key`].
#[inline]
pub fn key_score(key: u64) -> f64 {
    let bits = if key >> 63 == 1 { key & !(1u64 << 63) } else { !key };
    f64::from_bits(bits)
}

/// The first (most significant) digit: sign, exponent and 4 mantissa bits
/// (bits 48..64), so that scores spread over many buckets even when they
/// share a few exponents.
const TOP_BITS: u32 = 16;
const TOP_SHIFT: u32 = 64 - TOP_BITS;
const TOP_BUCKETS: usize = 1 << TOP_BITS;
/// Digits of the in-bucket passes: 4 × 12 bits cover bits 0..48.
const BITS: u32 = 12;
const BUCKETS: usize = 1 << BITS;
const PASSES: usize = 4;

#[inline]
fn digit(key: u64, shift: u32) -> usize {
    ((key >> shift) as usize) & (BUCKETS - 1)
}

#[inline]
fn top_digit(key: u64) -> usize {
    (key >> TOP_SHIFT) as usize
}

/// Sorted keys of `scores` (ascending). One most-significant-digit pass
/// (computing the keys on the fly) splits the keys into 65536 buckets by
/// their top 16 bits; each bucket is then small enough to be sorted in cache
/// by least-significant-digit radix passes over the remaining 48 bits
/// (passes whose digit is constant within the bucket are skipped). Buckets
/// are sorted in parallel.
pub fn sorted_keys(scores: &[f64]) -> Vec<u64> {
    let n = scores.len();
    if n < 4096 || n >= u32::MAX as usize {
        let mut keys: Vec<u64> = scores.iter().map(|&s| score_key(s)).collect();
        keys.sort_unstable();
        return keys;
    }
    let mut counts = vec![0usize; TOP_BUCKETS];
    for &score in scores {
        counts[top_digit(score_key(score))] += 1;
    }
    let mut starts = vec![0usize; TOP_BUCKETS + 1];
    for b in 0..TOP_BUCKETS {
        starts[b + 1] = starts[b] + counts[b];
    }
    let mut keys: Vec<u64> = vec![0; n];
    let mut fill = starts.clone();
    for &score in scores {
        let k = score_key(score);
        let b = top_digit(k);
        keys[fill[b]] = k;
        fill[b] += 1;
    }
    let mut scratch: Vec<u64> = vec![0; n];
    // disjoint bucket slices of both buffers, sorted in parallel
    let mut jobs: Vec<(&mut [u64], &mut [u64])> = Vec::new();
    let (mut rest_k, mut rest_s): (&mut [u64], &mut [u64]) = (&mut keys, &mut scratch);
    for b in 0..TOP_BUCKETS {
        let len = starts[b + 1] - starts[b];
        let (k, tail_k) = rest_k.split_at_mut(len);
        let (s, tail_s) = rest_s.split_at_mut(len);
        rest_k = tail_k;
        rest_s = tail_s;
        if len > 1 {
            jobs.push((k, s));
        }
    }
    jobs.into_par_iter().for_each(|(k, s)| lsd_sort(k, s));
    keys
}

/// LSD radix sort of one bucket over bits 0..48 (digits at 0, 12, 24, 36).
fn lsd_sort(keys: &mut [u64], scratch: &mut [u64]) {
    if keys.len() <= 256 {
        keys.sort_unstable();
        return;
    }
    let mut histograms = [[0u32; BUCKETS]; PASSES];
    for &k in keys.iter() {
        for (pass, h) in histograms.iter_mut().enumerate() {
            h[digit(k, pass as u32 * BITS)] += 1;
        }
    }
    let n = keys.len();
    let mut in_scratch = false; // where the current order lives
    for (pass, counts) in histograms.iter_mut().enumerate() {
        if counts.iter().any(|&c| c as usize == n) {
            continue; // constant digit in this bucket
        }
        let mut offset = 0u32;
        for c in counts.iter_mut() {
            let here = *c;
            *c = offset;
            offset += here;
        }
        let shift = pass as u32 * BITS;
        let (src, dst): (&[u64], &mut [u64]) = if in_scratch { (&*scratch, &mut *keys) } else { (&*keys, &mut *scratch) };
        for &k in src {
            let d = digit(k, shift);
            dst[counts[d] as usize] = k;
            counts[d] += 1;
        }
        in_scratch = !in_scratch;
    }
    if in_scratch {
        keys.copy_from_slice(scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_preserve_order_and_roundtrip() {
        let values = [f64::NEG_INFINITY, -3.5, -1e-300, -0.0, 0.0, 1e-300, 0.25, 7.0, f64::INFINITY];
        for w in values.windows(2) {
            assert!(score_key(w[0]) <= score_key(w[1]), "{} vs {}", w[0], w[1]);
        }
        assert_eq!(score_key(-0.0), score_key(0.0));
        for &v in &values {
            assert_eq!(key_score(score_key(v)), if v == 0.0 { 0.0 } else { v });
        }
    }

    #[test]
    fn radix_matches_comparison_sort() {
        let mut state = 12345u64;
        let scores: Vec<f64> = (0..10_000)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 10.0
            })
            .collect();
        let keys = sorted_keys(&scores);
        let mut expected = scores.clone();
        expected.sort_by(|a, b| a.total_cmp(b));
        let got: Vec<f64> = keys.iter().map(|&k| key_score(k)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn constant_and_few_distinct_values() {
        let same = vec![0.25; 5000];
        assert!(sorted_keys(&same).iter().all(|&k| k == score_key(0.25)));
        let few: Vec<f64> = (0..5000).map(|i| [0.5, -0.0, 0.0, -2.0][i % 4]).collect();
        let got: Vec<f64> = sorted_keys(&few).iter().map(|&k| key_score(k)).collect();
        assert_eq!(&got[..1250], vec![-2.0; 1250].as_slice());
        assert!(got[1250..3750].iter().all(|&v| v == 0.0));
        assert!(got[3750..].iter().all(|&v| v == 0.5));
    }
}
