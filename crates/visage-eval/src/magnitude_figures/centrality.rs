//! How central a face is in its cluster, two ways, and how that ranks with
//! its magnitude. MagFace's claim (§3.3, and its clustering figure, whose
//! confidences come from GCN-V): the larger `‖x‖`, the closer the face sits
//! to its cluster's centre.
//!
//! - [`centre_cosines`]: the cosine of the face's direction to the mean
//!   direction of the *other* faces of its cluster. Leaving the face out
//!   keeps a small cluster's centre from leaning towards each member in
//!   turn (in a pair, each face would otherwise count for half its centre).
//! - [`knn_confidences`]: GCN-V's vertex confidence (Yang et al., CVPR 2020,
//!   eq. 1) with the cluster labels as the labels:
//!   `c_i = (1/|N_i|) Σ_{j ∈ N_i} (𝟙[y_j = y_i] − 𝟙[y_j ≠ y_i]) · cos(x_i, x_j)`
//!   over the `k` most similar other faces `N_i`. High where a face's
//!   neighbourhood is dense with its own cluster, low at a border.
//!
//! Clusters are integer labels; a negative label (noise) is a cluster of one.

use ndarray::Array2;
use serde::Serialize;

use crate::cluster::distance::normalize_rows;
use crate::cluster::magnitude::spearman;

/// Per face, the cosine to the mean direction of the other faces of its
/// cluster (`x` raw or unit rows, one per label). `None` for a face alone in
/// its cluster (or noise), or when the others' directions cancel out.
pub fn centre_cosines(x: &Array2<f64>, clusters: &[i64]) -> Vec<Option<f64>> {
    assert_eq!(x.nrows(), clusters.len(), "one cluster label per row");
    let unit = normalize_rows(x);
    let mut sums: std::collections::HashMap<i64, (ndarray::Array1<f64>, usize)> = std::collections::HashMap::new();
    for (row, &label) in unit.rows().into_iter().zip(clusters).filter(|(_, &l)| l >= 0) {
        let entry = sums.entry(label).or_insert_with(|| (ndarray::Array1::zeros(x.ncols()), 0));
        entry.0 += &row;
        entry.1 += 1;
    }
    unit.rows()
        .into_iter()
        .zip(clusters)
        .map(|(row, label)| {
            let (sum, members) = sums.get(label)?;
            if *members < 2 {
                return None;
            }
            let others = sum - &row;
            let norm = others.dot(&others).sqrt();
            (norm > 0.0).then(|| row.dot(&others) / norm)
        })
        .collect()
}

/// Per face, GCN-V's confidence over its `k` most similar other faces
/// (cosine; ties to the lower index); `k` is capped at the number of other
/// faces. `None` when there is no other face or `k` is 0.
pub fn knn_confidences(x: &Array2<f64>, clusters: &[i64], k: usize) -> Vec<Option<f64>> {
    assert_eq!(x.nrows(), clusters.len(), "one cluster label per row");
    let n = x.nrows();
    let k = k.min(n.saturating_sub(1));
    if k == 0 {
        return vec![None; n];
    }
    let unit = normalize_rows(x);
    let similarity = unit.dot(&unit.t());
    let same = |i: usize, j: usize| clusters[i] >= 0 && clusters[i] == clusters[j];
    (0..n)
        .map(|i| {
            let mut others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            others.sort_by(|&a, &b| similarity[[i, b]].total_cmp(&similarity[[i, a]]).then(a.cmp(&b)));
            let sum: f64 = others[..k].iter().map(|&j| if same(i, j) { similarity[[i, j]] } else { -similarity[[i, j]] }).sum();
            Some(sum / k as f64)
        })
        .collect()
}

/// The rank correlation of magnitude with a centrality measure.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Correlation {
    /// Faces that have a value of the measure (the pairs correlated).
    pub faces: usize,
    /// Spearman's ρ (ties at their mean rank, as scipy's `spearmanr`);
    /// `None` (JSON `null`) below 3 faces or when either side is constant.
    pub spearman_rho: Option<f64>,
}

/// Spearman's ρ of `magnitudes` and `measure` over the faces whose measure
/// (and magnitude) is defined and finite.
pub fn rank_correlation(magnitudes: &[f64], measure: &[Option<f64>]) -> Correlation {
    let (mags, values): (Vec<f64>, Vec<f64>) =
        magnitudes.iter().zip(measure).filter_map(|(&m, v)| v.filter(|v| v.is_finite() && m.is_finite()).map(|v| (m, v))).unzip();
    Correlation { faces: mags.len(), spearman_rho: spearman(&mags, &values) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Eight raw 3-d features in two clusters and one noise face. The
    /// expected values below are NumPy's and scipy's, printed by
    /// `scripts/reference/magnitude_figures_reference.py` (scipy 1.17.1,
    /// numpy 2.4.6), which computes them without this crate.
    fn fixture() -> (Array2<f64>, Vec<i64>) {
        let x = array![
            [3.0, 0.2, 0.1],
            [1.0, 0.5, 0.0],
            [2.0, -0.3, 0.4],
            [0.5, 0.4, 0.6],
            [0.1, 2.5, 0.2],
            [-0.2, 1.0, 0.3],
            [0.6, 1.5, -0.2],
            [0.3, 0.3, 1.0]
        ];
        (x, vec![0, 0, 0, 0, 1, 1, 1, -1])
    }

    const CENTRE_COSINES: [f64; 7] = [
        0.929_826_554_691_304_3,
        0.895_606_454_716_614,
        0.870_496_015_730_493_1,
        0.675_076_694_864_337_9,
        0.998_395_160_824_218_3,
        0.874_458_296_874_053_9,
        0.853_042_502_516_603_5,
    ];
    const KNN_CONFIDENCES: [f64; 8] = [
        0.835_726_621_543_519_6,
        0.327_526_796_650_864_4,
        0.795_333_819_912_568_9,
        0.140_685_684_840_097_16,
        0.447_810_307_205_698_3,
        0.400_063_188_928_208_5,
        0.314_576_186_430_736_04,
        -0.595_569_161_831_811_2,
    ];
    const RHO_CENTRE: f64 = 0.678_571_428_571_428_7;
    const RHO_KNN: f64 = 0.761_904_761_904_762_1;

    #[test]
    fn centre_cosines_match_numpy() {
        let (x, y) = fixture();
        let got = centre_cosines(&x, &y);
        assert_eq!(got[7], None, "noise has no cluster");
        for (i, want) in CENTRE_COSINES.iter().enumerate() {
            assert!((got[i].unwrap() - want).abs() < 1e-12, "face {i}: {:?} vs {want}", got[i]);
        }
        // A pair: each face's centre is the other face.
        let pair = centre_cosines(&array![[1.0, 0.0], [1.0, 1.0], [0.0, 5.0]], &[3, 3, 4]);
        assert!((pair[0].unwrap() - 0.5f64.sqrt()).abs() < 1e-15 && (pair[1].unwrap() - 0.5f64.sqrt()).abs() < 1e-15);
        assert_eq!(pair[2], None, "a singleton has no other member");
    }

    #[test]
    fn knn_confidences_match_numpy() {
        let (x, y) = fixture();
        let got = knn_confidences(&x, &y, 3);
        for (i, want) in KNN_CONFIDENCES.iter().enumerate() {
            assert!((got[i].unwrap() - want).abs() < 1e-12, "face {i}: {:?} vs {want}", got[i]);
        }
        assert_eq!(knn_confidences(&array![[1.0, 0.0]], &[0], 5), vec![None]);
        // k above the other faces is capped: one neighbour, same cluster, cosine 0.
        assert_eq!(knn_confidences(&array![[1.0, 0.0], [0.0, 1.0]], &[0, 0], 10), vec![Some(0.0), Some(0.0)]);
    }

    #[test]
    fn spearman_of_magnitude_and_centrality_matches_scipy() {
        let (x, y) = fixture();
        let magnitudes = crate::cluster::distance::row_norms(&x);
        let centre = rank_correlation(&magnitudes, &centre_cosines(&x, &y));
        assert_eq!(centre.faces, 7, "the noise face has no centre cosine");
        assert!((centre.spearman_rho.unwrap() - RHO_CENTRE).abs() < 1e-12, "{centre:?}");
        let knn = rank_correlation(&magnitudes, &knn_confidences(&x, &y, 3));
        assert_eq!(knn.faces, 8);
        assert!((knn.spearman_rho.unwrap() - RHO_KNN).abs() < 1e-12, "{knn:?}");
        assert_eq!(rank_correlation(&[1.0, 2.0], &[Some(1.0), Some(2.0)]).spearman_rho, None);
    }
}
