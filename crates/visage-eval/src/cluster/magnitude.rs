//! MagFace's observation (Meng et al., CVPR 2021, §3.3 and Fig. 1): the
//! feature magnitude ‖f‖ tracks quality, and high-magnitude faces sit near
//! their class centre. Per cluster we order members by magnitude and report
//! the Pearson correlation between magnitude and the cosine similarity to the
//! cluster centre (mean of the members' normalised features).

use ndarray::{Array1, Array2};
use serde::Serialize;

use super::distance::{normalize_rows, row_norms};

/// One cluster of a [`MagnitudeReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ClusterMagnitudes {
    /// The cluster's label.
    pub label: i64,
    /// Member indices, highest magnitude first.
    pub members_by_magnitude: Vec<usize>,
    /// L2 norm of each member's raw embedding, same order (non-increasing).
    pub magnitudes: Vec<f64>,
    /// Cosine similarity of each member (same order) to the cluster centre.
    pub centre_similarity: Vec<f64>,
    /// Pearson correlation of magnitude and centre similarity (None below 3 members
    /// or when either is constant).
    pub correlation: Option<f64>,
}

/// MagFace's magnitude analysis of a clustering (`visage cluster
/// --magnitude-report`): the JSON written is this struct.
#[derive(Debug, Clone, Serialize)]
pub struct MagnitudeReport {
    /// One entry per cluster, by ascending label.
    pub clusters: Vec<ClusterMagnitudes>,
    /// Correlation over all clustered faces (noise excluded).
    pub overall_correlation: Option<f64>,
}

/// Pearson's correlation coefficient of two equally long samples, in
/// [−1, 1]; `None` below 3 values, for different lengths, or when either
/// sample is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len();
    if n < 3 || n != b.len() {
        return None;
    }
    let ma = a.iter().sum::<f64>() / n as f64;
    let mb = b.iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa <= 0.0 || sbb <= 0.0 {
        return None;
    }
    Some(sab / (saa.sqrt() * sbb.sqrt()))
}

/// Spearman's rank correlation: Pearson's on the ranks, tied values sharing
/// their average rank (as scipy's `spearmanr`). `None` as for [`pearson`].
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    pearson(&average_ranks(a), &average_ranks(b))
}

/// 1-based ranks, ties given the mean of the ranks they span.
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0; // mean of start+1 ..= end
        order[start..end].iter().for_each(|&i| ranks[i] = rank);
        start = end;
    }
    ranks
}

/// The magnitude report of a clustering: `embeddings` are the raw
/// (unnormalised) features, one row per label; noise (`-1`) is skipped.
pub fn magnitude_report(embeddings: &Array2<f64>, labels: &[i64]) -> MagnitudeReport {
    let magnitudes = row_norms(embeddings);
    let unit = normalize_rows(embeddings);
    let mut ids: Vec<i64> = labels.iter().copied().filter(|&l| l >= 0).collect();
    ids.sort_unstable();
    ids.dedup();
    let (mut all_mag, mut all_sim) = (Vec::new(), Vec::new());
    let clusters = ids
        .into_iter()
        .map(|label| {
            let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == label).collect();
            let mut centre = Array1::<f64>::zeros(embeddings.ncols());
            for &i in &members {
                centre += &unit.row(i);
            }
            let norm = centre.dot(&centre).sqrt();
            if norm > 0.0 {
                centre /= norm;
            }
            members.sort_by(|&a, &b| magnitudes[b].total_cmp(&magnitudes[a]));
            let mags: Vec<f64> = members.iter().map(|&i| magnitudes[i]).collect();
            let sims: Vec<f64> = members.iter().map(|&i| unit.row(i).dot(&centre)).collect();
            all_mag.extend_from_slice(&mags);
            all_sim.extend_from_slice(&sims);
            ClusterMagnitudes { label, correlation: pearson(&mags, &sims), members_by_magnitude: members, magnitudes: mags, centre_similarity: sims }
        })
        .collect();
    MagnitudeReport { clusters, overall_correlation: pearson(&all_mag, &all_sim) }
}

/// Count, mean, population standard deviation, minimum and maximum of a
/// set of feature magnitudes (`visage eval magnitudes`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MagnitudeStats {
    /// Number of values.
    pub count: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Population standard deviation (divides by `count`, NumPy's default).
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// Statistics of `values`. An empty slice gives count 0, mean and std 0,
/// min `+∞` and max `−∞` (serialised to JSON as `null`).
pub fn magnitude_stats(values: &[f64]) -> MagnitudeStats {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|m| (m - mean) * (m - mean)).sum::<f64>() / n;
    MagnitudeStats {
        count: values.len(),
        mean,
        std: var.sqrt(),
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// `values` split by `labels` (same length, else a panic): those of
/// clustered rows (label ≥ 0) and those of noise (label < 0), each in input
/// order.
pub fn split_by_noise(values: &[f64], labels: &[i64]) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(values.len(), labels.len(), "one label per value");
    let part = |noise: bool| values.iter().zip(labels).filter(|(_, &l)| (l < 0) == noise).map(|(&v, _)| v).collect();
    (part(false), part(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn spearman_matches_scipy_with_ties() {
        // scipy 1.17.1 `spearmanr` (scripts/reference/.venv): -0.9035398058696475 and 0.8.
        let severity = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0];
        let magnitude = [5.0, 4.0, 6.0, 3.0, 4.0, 2.5, 1.0, 2.5, 0.5];
        assert!((spearman(&severity, &magnitude).unwrap() + 0.9035398058696475).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 30.0, 25.0]).unwrap() - 0.8).abs() < 1e-12);
        assert_eq!(average_ranks(&[2.0, 1.0, 2.0, 3.0]), vec![2.5, 1.0, 2.5, 4.0]);
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    }

    #[test]
    fn pearson_hand_computed() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap() - 1.0).abs() < 1e-15);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-15);
        assert_eq!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    }

    #[test]
    fn orders_members_by_magnitude() {
        let x = array![[1.0, 0.0], [3.0, 0.1], [2.0, 0.5], [0.0, 1.0]];
        let r = magnitude_report(&x, &[0, 0, 0, -1]);
        assert_eq!(r.clusters.len(), 1);
        assert_eq!(r.clusters[0].members_by_magnitude, vec![1, 2, 0]);
    }
}
