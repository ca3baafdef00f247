//! Faces → persons: agglomerative clustering of the unit embeddings with
//! average linkage on cosine distance, cut where groups stop being similar
//! enough to be one person. Average linkage (UPGMA) rather than single: one
//! look-alike pair must not chain two people together, and rather than
//! complete: one bad photo of a person must not split them.

use ndarray::Array2;
use visage_eval::cluster::{ahc, AhcConfig, AhcStop, Linkage, Metric};

#[derive(Clone, Copy, Debug)]
pub struct IdentityConfig {
    /// Two groups are one person while their mean pairwise cosine similarity
    /// is at least this (the recogniser's verification threshold).
    pub same_person_cosine: f32,
    pub linkage: Linkage,
}

impl IdentityConfig {
    pub fn new(same_person_cosine: f32) -> Self {
        Self { same_person_cosine, linkage: Linkage::Average }
    }
}

/// The person of each embedding: 0 is the person with the most faces, ties
/// broken by who appears first, so labels are stable across runs.
pub fn group_identities(embeddings: &[&[f32]], config: &IdentityConfig) -> Vec<usize> {
    let n = embeddings.len();
    if n == 0 {
        return Vec::new();
    }
    let dim = embeddings[0].len();
    let matrix = Array2::from_shape_fn((n, dim), |(i, j)| f64::from(embeddings[i][j]));
    // Merges happen strictly below the cut: cosine ≥ t ⇔ distance ≤ 1 − t,
    // nudged by one part in 10⁹ so a pair exactly at the threshold merges.
    let cut = 1.0 - f64::from(config.same_person_cosine) + 1e-9;
    let labels = ahc(&matrix, &AhcConfig { linkage: config.linkage, metric: Metric::Cosine, stop: AhcStop::DistanceThreshold(cut) });
    order_by_size(&labels)
}

/// Relabels clusters 0, 1, … by decreasing size, then first appearance.
fn order_by_size(labels: &[i64]) -> Vec<usize> {
    let mut groups: Vec<(i64, usize, usize)> = Vec::new(); // (label, size, first index)
    for (i, &label) in labels.iter().enumerate() {
        match groups.iter_mut().find(|g| g.0 == label) {
            Some(group) => group.1 += 1,
            None => groups.push((label, 1, i)),
        }
    }
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
    labels.iter().map(|label| groups.iter().position(|g| g.0 == *label).expect("every label has a group")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(angle_deg: f32) -> Vec<f32> {
        let a = angle_deg.to_radians();
        vec![a.cos(), a.sin(), 0.0]
    }

    #[test]
    fn groups_by_angle_and_orders_by_size() {
        // Person A near 0°, person B near 90° (three faces), one stranger at 200°.
        let faces = [unit(0.0), unit(90.0), unit(10.0), unit(95.0), unit(200.0), unit(85.0)];
        let refs: Vec<&[f32]> = faces.iter().map(|f| f.as_slice()).collect();
        // cos 10° = 0.985 within A; cos 80° = 0.17 between A and B.
        let labels = group_identities(&refs, &IdentityConfig::new(0.5));
        assert_eq!(labels, vec![1, 0, 1, 0, 2, 0]);
    }

    #[test]
    fn average_linkage_cut_is_the_mean_pairwise_cosine() {
        // Faces at 0°, 50°, 120°: cosines 0.643 (0–50), 0.342 (50–120),
        // −0.5 (0–120). Average linkage merges 0° with 50° first, then that
        // pair with 120° at the mean cosine (0.342 − 0.5)/2 = −0.079. Single
        // linkage would join at 0.342 and complete linkage at −0.5, so the
        // cuts at 0 and −0.1 tell average linkage from both.
        let faces = [unit(0.0), unit(50.0), unit(120.0)];
        let refs: Vec<&[f32]> = faces.iter().map(|f| f.as_slice()).collect();
        let labels = |t: f32| group_identities(&refs, &IdentityConfig::new(t));
        assert_eq!(labels(0.65), vec![0, 1, 2]);
        assert_eq!(labels(0.6), vec![0, 0, 1]);
        assert_eq!(labels(0.0), vec![0, 0, 1]);
        assert_eq!(labels(-0.1), vec![0, 0, 0]);
    }
}
