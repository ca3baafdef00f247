//! Radix sort of `f64` scores through order-preserving `u64` keys.
//!
//! The ROC walk needs every score in order; an LSD radix sort with 11-bit
//! digits makes six linear passes (fewer when a digit is constant, e.g. the
//! sign and exponent of scores in one range) whose 2048 buckets stay in
//! cache, which on 10⁷–10⁸ scores is several times faster than a comparison
//! sort and needs one scratch buffer.

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

const BITS: u32 = 11;
const BUCKETS: usize = 1 << BITS;
const PASSES: usize = 64usize.div_ceil(BITS as usize);

/// Sorted keys of `scores` (ascending): LSD radix sort, 11-bit digits. The
/// keys are computed on the fly by the histogram pass and by the first
/// scattering pass, so the scores are read twice and no unsorted key array
/// is ever written.
pub fn sorted_keys(scores: &[f64]) -> Vec<u64> {
    let n = scores.len();
    if n < 1024 || n >= u32::MAX as usize {
        let mut keys: Vec<u64> = scores.iter().map(|&s| score_key(s)).collect();
        keys.sort_unstable();
        return keys;
    }
    // all digit histograms in one read of the scores
    let mut histograms = vec![[0u32; BUCKETS]; PASSES];
    for &score in scores {
        let k = score_key(score);
        for (pass, h) in histograms.iter_mut().enumerate() {
            h[((k >> (pass as u32 * BITS)) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    let mut keys: Vec<u64> = vec![0; n];
    let mut scratch: Vec<u64> = vec![0; n];
    let mut sorted_from_scores = false;
    for (pass, counts) in histograms.iter_mut().enumerate() {
        let shift = pass as u32 * BITS;
        if counts.iter().any(|&c| c as usize == n) {
            continue; // every key has the same digit: this pass would not move anything
        }
        let mut offset = 0u32;
        for c in counts.iter_mut() {
            let here = *c;
            *c = offset;
            offset += here;
        }
        if !sorted_from_scores {
            for &score in scores {
                let k = score_key(score);
                let bucket = ((k >> shift) as usize) & (BUCKETS - 1);
                keys[counts[bucket] as usize] = k;
                counts[bucket] += 1;
            }
            sorted_from_scores = true;
        } else {
            for &k in keys.iter() {
                let bucket = ((k >> shift) as usize) & (BUCKETS - 1);
                scratch[counts[bucket] as usize] = k;
                counts[bucket] += 1;
            }
            std::mem::swap(&mut keys, &mut scratch);
        }
    }
    if !sorted_from_scores {
        // all keys identical
        keys.iter_mut().zip(scores).for_each(|(k, &s)| *k = score_key(s));
    }
    keys
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
