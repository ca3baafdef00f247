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

/// Sorts keys ascending in place (LSD radix, 11-bit digits).
pub fn radix_sort_u64(keys: &mut Vec<u64>) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    const PASSES: usize = 64usize.div_ceil(BITS as usize);
    if keys.len() < 1024 {
        keys.sort_unstable();
        return;
    }
    // all digit histograms in one read of the keys
    let mut histograms = vec![[0usize; BUCKETS]; PASSES];
    for &k in keys.iter() {
        for (pass, h) in histograms.iter_mut().enumerate() {
            h[((k >> (pass as u32 * BITS)) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    let mut scratch: Vec<u64> = vec![0; keys.len()];
    for (pass, counts) in histograms.iter_mut().enumerate() {
        let shift = pass as u32 * BITS;
        if counts.iter().any(|&c| c == keys.len()) {
            continue; // every key has the same digit: this pass would not move anything
        }
        let mut offset = 0usize;
        for c in counts.iter_mut() {
            let n = *c;
            *c = offset;
            offset += n;
        }
        for &k in keys.iter() {
            let bucket = ((k >> shift) as usize) & (BUCKETS - 1);
            scratch[counts[bucket]] = k;
            counts[bucket] += 1;
        }
        std::mem::swap(keys, &mut scratch);
    }
}

/// Sorted keys of `scores` (ascending).
pub fn sorted_keys(scores: &[f64]) -> Vec<u64> {
    let mut keys: Vec<u64> = scores.iter().map(|&s| score_key(s)).collect();
    radix_sort_u64(&mut keys);
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
}
