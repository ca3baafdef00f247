//! Radix sort of labelled `f64` scores through order-preserving `u64` keys.
//!
//! The ROC walk needs every pair in score order with its label. Each pair
//! becomes one `u64` entry; one most-significant-digit pass (the top 16 key
//! bits: sign, exponent and 4 mantissa bits) scatters the entries of all
//! input pieces into 65536 buckets, pieces in parallel; each bucket is then
//! sorted in cache by further most-significant-digit passes whose digit
//! width follows the bucket's size (so each bin holds a handful of entries)
//! and which skip bits that do not vary, buckets in parallel. Ties cost
//! nothing: a bin whose keys are all equal is left as it is.
//!
//! Memory: the entries (8 bytes per pair) and, per thread, a scratch buffer
//! as large as the largest bucket.

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
/// Number of top-digit buckets.
pub const TOP_BUCKETS: usize = 1 << TOP_BITS;
/// An entry is `key << LABEL_BITS | label`: the key's top digit is the
/// bucket's number and is not stored, which frees the low bits for the label.
const LABEL_BITS: u32 = TOP_BITS;
/// Bins holding at most this many entries are finished by insertion sort.
const SMALL: usize = 16;
/// Widest in-bucket digit (65536 bins, a 256 KiB count table).
const MAX_DIGIT_BITS: u32 = 16;
/// Most entries one histogram/scatter task takes from the input pieces.
const TASK_ENTRIES: usize = 1 << 20;

#[inline]
fn top_digit(key: u64) -> usize {
    (key >> TOP_SHIFT) as usize
}

/// Every pair as one entry, sorted by score: bucket `b` (the pairs whose
/// key's top 16 bits are `b`) is `entries[starts[b]..starts[b + 1]]`,
/// ascending by key; an entry is `key << 16 | label` (label 1 = genuine),
/// its key's top 16 bits being the bucket's number ([`SortedPairs::key`]).
#[derive(Debug)]
pub struct SortedPairs {
    /// The entries, bucket after bucket.
    pub entries: Vec<u64>,
    /// `TOP_BUCKETS + 1` offsets into `entries`.
    pub starts: Vec<usize>,
    /// Genuine pairs per bucket.
    pub genuine_in: Vec<u64>,
}

impl SortedPairs {
    /// The score key of `entry` of bucket `bucket`.
    #[inline]
    pub fn key(bucket: usize, entry: u64) -> u64 {
        ((bucket as u64) << TOP_SHIFT) | (entry >> LABEL_BITS)
    }

    /// Whether `entry` is a genuine pair.
    #[inline]
    pub fn is_genuine(entry: u64) -> bool {
        entry & 1 == 1
    }
}

/// A share of the input for one histogram/scatter task: slices of scores
/// with their label.
type Task<'a> = Vec<(&'a [f64], bool)>;

/// Sorts the scores of `pieces` (each a `(genuine, impostor)` pair of
/// slices, any order, no NaN) into [`SortedPairs`].
pub fn sort_pairs(pieces: &[(&[f64], &[f64])]) -> SortedPairs {
    // cut the input into tasks of about TASK_ENTRIES entries
    let mut tasks: Vec<Task> = vec![Vec::new()];
    let mut in_last = 0usize;
    for &(genuine, impostor) in pieces {
        for (scores, label) in [(genuine, true), (impostor, false)] {
            let mut rest = scores;
            while !rest.is_empty() {
                if in_last == TASK_ENTRIES {
                    tasks.push(Vec::new());
                    in_last = 0;
                }
                let take = rest.len().min(TASK_ENTRIES - in_last);
                tasks.last_mut().expect("one task").push((&rest[..take], label));
                in_last += take;
                rest = &rest[take..];
            }
        }
    }
    // per task: entries per bucket, and genuine pairs per bucket
    let histograms: Vec<(Vec<u32>, Vec<u32>)> = tasks
        .par_iter()
        .map(|task| {
            let (mut all, mut genuine) = (vec![0u32; TOP_BUCKETS], vec![0u32; TOP_BUCKETS]);
            for &(scores, label) in task {
                let counts = if label { &mut genuine } else { &mut all };
                for &s in scores {
                    counts[top_digit(score_key(s))] += 1;
                }
            }
            for (a, g) in all.iter_mut().zip(&genuine) {
                *a += g;
            }
            (all, genuine)
        })
        .collect();
    let mut starts = vec![0usize; TOP_BUCKETS + 1];
    let mut genuine_in = vec![0u64; TOP_BUCKETS];
    for (all, genuine) in &histograms {
        for b in 0..TOP_BUCKETS {
            starts[b + 1] += all[b] as usize;
            genuine_in[b] += u64::from(genuine[b]);
        }
    }
    for b in 0..TOP_BUCKETS {
        starts[b + 1] += starts[b];
    }
    let n = starts[TOP_BUCKETS];
    // each task's first position in each bucket: disjoint ranges
    let mut fill = starts[..TOP_BUCKETS].to_vec();
    let offsets: Vec<Vec<usize>> = histograms
        .iter()
        .map(|(all, _)| {
            let mine = fill.clone();
            for (f, &c) in fill.iter_mut().zip(all) {
                *f += c as usize;
            }
            mine
        })
        .collect();
    drop(histograms);
    let mut entries: Vec<u64> = vec![0; n];
    let out = SharedEntries(entries.as_mut_ptr());
    tasks.par_iter().zip(offsets).for_each(|(task, mut next)| {
        let out = &out;
        for &(scores, label) in task {
            for &s in scores {
                let key = score_key(s);
                let b = top_digit(key);
                // SAFETY: `next[b]` walks this task's own range of bucket `b`
                // (its count of bucket b from the histogram pass, which saw
                // the same scores), ranges of all tasks and buckets are
                // disjoint and inside `entries`, which outlives the scope.
                unsafe { *out.0.add(next[b]) = (key << LABEL_BITS) | u64::from(label) };
                next[b] += 1;
            }
        }
    });
    // bucket slices, sorted in parallel
    let mut buckets: Vec<&mut [u64]> = Vec::new();
    let mut rest: &mut [u64] = &mut entries;
    for b in 0..TOP_BUCKETS {
        let (bucket, tail) = rest.split_at_mut(starts[b + 1] - starts[b]);
        rest = tail;
        if bucket.len() > 1 {
            buckets.push(bucket);
        }
    }
    buckets.into_par_iter().for_each_init(Scratch::default, |scratch, bucket| sort_bucket(bucket, scratch, 64));
    SortedPairs { entries, starts, genuine_in }
}

struct SharedEntries(*mut u64);
unsafe impl Sync for SharedEntries {}

/// One thread's buffers for [`sort_bucket`]: the entries' scratch copy and
/// one count table per recursion depth.
#[derive(Default)]
struct Scratch {
    entries: Vec<u64>,
    counts: Vec<Vec<u32>>,
}

/// Sorts `entries`, whose key bits at and above `top` are all equal, by
/// their key bits below `top` (entry bits `LABEL_BITS..top`).
fn sort_bucket(entries: &mut [u64], scratch: &mut Scratch, top: u32) {
    if entries.len() > u32::MAX as usize {
        // beyond the u32 count tables (34 GB of entries in one bucket)
        entries.sort_unstable();
        return;
    }
    if scratch.entries.len() < entries.len() {
        scratch.entries.resize(entries.len(), 0);
    }
    sort_bins(entries, &mut scratch.entries[..entries.len()], true, &mut scratch.counts, 0, top);
}

/// The recursive step of [`sort_bucket`]: sorts the entries in `data` into
/// whichever of `data` and `other` is the output (`data` if
/// `data_is_output`), the two trading places at each digit so that no pass
/// copies back; `depth` chooses the count table.
fn sort_bins(data: &mut [u64], other: &mut [u64], data_is_output: bool, counts: &mut Vec<Vec<u32>>, depth: usize, top: u32) {
    let first = data[0] >> LABEL_BITS;
    let differ = data.iter().fold(0u64, |d, &e| d | ((e >> LABEL_BITS) ^ first));
    let key_bits = top - LABEL_BITS;
    let differ = if key_bits >= 64 { differ } else { differ & ((1u64 << key_bits) - 1) };
    if differ == 0 || data.len() <= SMALL {
        // every key equal, or few enough for insertion sort
        if differ != 0 {
            insertion_sort(data);
        }
        if !data_is_output {
            other.copy_from_slice(data);
        }
        return;
    }
    // the highest varying bit, and a digit about as wide as the bins are many
    let top = LABEL_BITS + 64 - differ.leading_zeros();
    let width = (usize::BITS - 1 - data.len().leading_zeros()).clamp(4, MAX_DIGIT_BITS).min(top - LABEL_BITS);
    let shift = top - width;
    let mask = (1usize << width) - 1;
    let digit = |e: u64| ((e >> shift) as usize) & mask;
    if counts.len() <= depth {
        counts.push(Vec::new());
    }
    let mut table = std::mem::take(&mut counts[depth]);
    table.clear();
    table.resize(mask + 1, 0);
    for &e in data.iter() {
        table[digit(e)] += 1;
    }
    let mut offset = 0u32;
    for c in table.iter_mut() {
        let here = *c;
        *c = offset;
        offset += here;
    }
    for &e in data.iter() {
        let d = digit(e);
        other[table[d] as usize] = e;
        table[d] += 1;
    }
    // table[d] is now the end of bin d; the bins are in `other`
    let mut start = 0usize;
    for &end in table.iter() {
        let end = end as usize;
        match end - start {
            0 => {}
            1 => {
                if data_is_output {
                    data[start] = other[start];
                }
            }
            _ => sort_bins(&mut other[start..end], &mut data[start..end], !data_is_output, counts, depth + 1, shift),
        }
        start = end;
    }
    counts[depth] = table;
}

fn insertion_sort(entries: &mut [u64]) {
    for i in 1..entries.len() {
        let e = entries[i];
        let mut j = i;
        while j > 0 && entries[j - 1] > e {
            entries[j] = entries[j - 1];
            j -= 1;
        }
        entries[j] = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scores of `pairs` in the order the walk reads them, with labels.
    fn sorted(pairs: &SortedPairs) -> Vec<(f64, bool)> {
        let mut out = Vec::new();
        for b in 0..TOP_BUCKETS {
            for &e in &pairs.entries[pairs.starts[b]..pairs.starts[b + 1]] {
                out.push((key_score(SortedPairs::key(b, e)), SortedPairs::is_genuine(e)));
            }
        }
        out
    }

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

    /// Random scores of several scales, with ties, in several pieces: the
    /// same (score, label) multiset as a comparison sort gives, in order.
    #[test]
    fn radix_matches_comparison_sort() {
        let mut state = 12345u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for (n, scale, grid) in [(10_000, 10.0, 0.0), (300_000, 0.2, 0.0), (300_000, 1.0, 1e-3), (200_000, 1e-3, 1e-9), (5000, 1.0, 0.5)] {
            let mut draw = |count: usize| -> Vec<f64> {
                (0..count)
                    .map(|_| {
                        let v = (next() - 0.5) * scale;
                        if grid > 0.0 {
                            (v / grid).round() * grid
                        } else {
                            v
                        }
                    })
                    .collect()
            };
            let (g1, i1, g2, i2) = (draw(n / 10), draw(n / 2), draw(n / 10), draw(n - n / 2 - 2 * (n / 10)));
            let pairs = sort_pairs(&[(&g1, &i1), (&g2, &i2)]);
            let mut expected: Vec<(f64, bool)> = g1.iter().chain(&g2).map(|&s| (s, true)).chain(i1.iter().chain(&i2).map(|&s| (s, false))).collect();
            let fold = |v: &mut Vec<(f64, bool)>| {
                for p in v.iter_mut() {
                    p.0 = key_score(score_key(p.0));
                }
                v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            };
            fold(&mut expected);
            let mut got = sorted(&pairs);
            // ascending by score already; labels within a tie in any order
            assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "n {n}: not sorted");
            fold(&mut got);
            assert_eq!(got, expected, "n {n} scale {scale} grid {grid}");
            let genuine: u64 = pairs.genuine_in.iter().sum();
            assert_eq!(genuine as usize, g1.len() + g2.len());
        }
    }

    #[test]
    fn constant_and_few_distinct_values() {
        let same = vec![0.25; 5000];
        let pairs = sort_pairs(&[(&same, &same)]);
        assert!(sorted(&pairs).iter().all(|&(s, _)| s == 0.25));
        let few: Vec<f64> = (0..5000).map(|i| [0.5, -0.0, 0.0, -2.0][i % 4]).collect();
        let got: Vec<f64> = sorted(&sort_pairs(&[(&[], &few)])).iter().map(|p| p.0).collect();
        assert_eq!(&got[..1250], vec![-2.0; 1250].as_slice());
        assert!(got[1250..3750].iter().all(|&v| v == 0.0));
        assert!(got[3750..].iter().all(|&v| v == 0.5));
    }
}
