//! Faces → persons: agglomerative clustering of the unit embeddings with
//! average linkage on cosine distance, cut where groups stop being similar
//! enough to be one person. Average linkage (UPGMA) rather than single: one
//! look-alike pair must not chain two people together, and rather than
//! complete: one bad photo of a person must not split them.
//!
//! [`GroupingRule::QualityFirst`] uses the magnitude too (MagFace's
//! reading: a face with a small feature norm is a poor witness of its
//! identity). The confident faces (magnitude at least
//! [`WEAK_MAGNITUDE_RATIO`] of the median) are grouped first; each weak
//! face then joins the person whose faces it is most similar to on average,
//! if that mean cosine reaches the threshold and beats the runner-up by
//! [`AMBIGUITY_MARGIN`]; otherwise it stays a person of its own. So a blurry
//! face that half-resembles two people cannot merge them.

use ndarray::Array2;
use visage_eval::cluster::{ahc, AhcConfig, AhcStop, Linkage, Metric};

/// How faces become persons.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupingRule {
    /// Every face clustered at once.
    AllAtOnce,
    /// Confident faces clustered first, weak ones attached after (module docs).
    #[default]
    QualityFirst,
}

impl std::fmt::Display for GroupingRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::AllAtOnce => "average-linkage clustering of all faces at the threshold",
            Self::QualityFirst => "average-linkage clustering of the confident faces at the threshold; weak faces (magnitude < 0.8 × median) attached to their closest person when unambiguous",
        })
    }
}

/// A face is weak when its magnitude is below this fraction of the median.
pub const WEAK_MAGNITUDE_RATIO: f32 = 0.8;

/// A weak face joins a person only when its mean cosine to that person
/// beats the runner-up by this much.
pub const AMBIGUITY_MARGIN: f32 = 0.05;

/// How to turn faces into persons.
#[derive(Clone, Copy, Debug)]
pub struct IdentityConfig {
    /// Two groups are one person while their mean pairwise cosine similarity
    /// is at least this (the recogniser's verification threshold).
    pub same_person_cosine: f32,
    /// Linkage of the agglomerative clustering ([`IdentityConfig::new`]: average).
    pub linkage: Linkage,
    /// Whether weak faces are attached after the confident ones are clustered.
    pub rule: GroupingRule,
}

impl IdentityConfig {
    /// Average linkage and the default rule ([`GroupingRule::QualityFirst`]) at this threshold.
    pub fn new(same_person_cosine: f32) -> Self {
        Self { same_person_cosine, linkage: Linkage::Average, rule: GroupingRule::default() }
    }
}

/// The person of each embedding (unit vectors; `magnitudes` are the raw
/// features' norms, used by [`GroupingRule::QualityFirst`]): 0 is the person
/// with the most faces, ties broken by who appears first, so labels are
/// stable across runs.
pub fn group_identities(embeddings: &[&[f32]], magnitudes: &[f32], config: &IdentityConfig) -> Vec<usize> {
    let n = embeddings.len();
    if n == 0 {
        return Vec::new();
    }
    let weak: Vec<bool> = match config.rule {
        GroupingRule::AllAtOnce => vec![false; n],
        GroupingRule::QualityFirst => {
            let mut sorted: Vec<f32> = magnitudes.iter().copied().filter(|m| m.is_finite()).collect();
            sorted.sort_by(f32::total_cmp);
            let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
            (0..n).map(|i| magnitudes.get(i).is_some_and(|&m| m < WEAK_MAGNITUDE_RATIO * median)).collect()
        }
    };
    let confident: Vec<usize> = (0..n).filter(|&i| !weak[i]).collect();
    let mut labels = vec![-1i64; n];
    if !confident.is_empty() {
        for (i, label) in confident.iter().zip(cluster(embeddings, &confident, config)) {
            labels[*i] = label;
        }
    }
    let mut next = labels.iter().max().map_or(0, |&m| m + 1);
    let persons = next as usize;
    for i in (0..n).filter(|&i| weak[i]) {
        // Mean cosine to each person's confident faces.
        let mut sum = vec![0f64; persons];
        let mut count = vec![0usize; persons];
        for &j in &confident {
            let p = labels[j] as usize;
            sum[p] += dot(embeddings[i], embeddings[j]);
            count[p] += 1;
        }
        let mut means: Vec<(usize, f64)> = (0..persons).map(|p| (p, sum[p] / count[p].max(1) as f64)).collect();
        means.sort_by(|a, b| b.1.total_cmp(&a.1));
        let threshold = f64::from(config.same_person_cosine);
        let clear = match means.as_slice() {
            [(p, best), rest @ ..] if *best >= threshold && rest.first().is_none_or(|r| best - r.1 >= f64::from(AMBIGUITY_MARGIN)) => Some(*p),
            _ => None,
        };
        labels[i] = match clear {
            Some(p) => p as i64,
            None => {
                next += 1;
                next - 1
            }
        };
    }
    order_by_size(&labels)
}

/// Average-linkage AHC of the `members` at the threshold.
fn cluster(embeddings: &[&[f32]], members: &[usize], config: &IdentityConfig) -> Vec<i64> {
    let dim = embeddings[members[0]].len();
    let matrix = Array2::from_shape_fn((members.len(), dim), |(i, j)| f64::from(embeddings[members[i]][j]));
    // Merges happen strictly below the cut: cosine ≥ t ⇔ distance ≤ 1 − t,
    // nudged by one part in 10⁹ so a pair exactly at the threshold merges.
    let cut = 1.0 - f64::from(config.same_person_cosine) + 1e-9;
    let labels = ahc(&matrix, &AhcConfig { linkage: config.linkage, metric: Metric::Cosine, stop: AhcStop::DistanceThreshold(cut) });
    // Dense labels 0..k in order of first appearance.
    let mut seen: Vec<i64> = Vec::new();
    labels
        .iter()
        .map(|l| match seen.iter().position(|s| s == l) {
            Some(p) => p as i64,
            None => {
                seen.push(*l);
                seen.len() as i64 - 1
            }
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
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
        let all = IdentityConfig { rule: GroupingRule::AllAtOnce, ..IdentityConfig::new(0.5) };
        let labels = group_identities(&refs, &[1.0; 6], &all);
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
        let labels = |t: f32| group_identities(&refs, &[1.0; 3], &IdentityConfig { rule: GroupingRule::AllAtOnce, ..IdentityConfig::new(t) });
        assert_eq!(labels(0.65), vec![0, 1, 2]);
        assert_eq!(labels(0.6), vec![0, 0, 1]);
        assert_eq!(labels(0.0), vec![0, 0, 1]);
        assert_eq!(labels(-0.1), vec![0, 0, 0]);
    }

    /// A weak face between two persons bridges them when all faces are
    /// clustered at once, and stays apart under the quality-first rule.
    #[test]
    fn a_weak_face_between_two_persons_does_not_merge_them() {
        // A at 0° and 10°, B at 70° and 80°, a weak face at 40°: every
        // neighbouring pair has cosine ≥ cos 40° = 0.766... but A–B pairs
        // are at 60–80° (cosines 0.17–0.5). Threshold 0.45.
        let faces = [unit(0.0), unit(10.0), unit(70.0), unit(80.0), unit(40.0)];
        let refs: Vec<&[f32]> = faces.iter().map(|f| f.as_slice()).collect();
        let magnitudes = [20.0, 21.0, 19.0, 22.0, 8.0];
        let quality = group_identities(&refs, &magnitudes, &IdentityConfig::new(0.45));
        // Mean cosine of the weak face to A = (cos 40 + cos 30)/2 = 0.816, to B = (cos 30 + cos 40)/2: a tie → alone.
        assert_eq!(quality[0], quality[1]);
        assert_eq!(quality[2], quality[3]);
        assert_ne!(quality[0], quality[2]);
        assert!(quality[4] != quality[0] && quality[4] != quality[2], "{quality:?}");
        // The weak face closer to A (at 20°) joins A: cosines to A 0.970/0.985 vs B 0.643/0.5.
        let faces = [unit(0.0), unit(10.0), unit(70.0), unit(80.0), unit(20.0)];
        let refs: Vec<&[f32]> = faces.iter().map(|f| f.as_slice()).collect();
        let quality = group_identities(&refs, &magnitudes, &IdentityConfig::new(0.45));
        assert_eq!(quality[4], quality[0]);
    }
}
