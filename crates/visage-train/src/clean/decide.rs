//! The cleaning rule, over plain arrays: each sample's cosines to its own
//! class's sub-centres, the class's dominant sub-centre, and the angle that
//! keeps or drops the sample.

use ndarray::Array2;

/// What cleaning decided for one sample.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleDecision {
    /// The sub-centre of its own class it is closest to (largest cosine).
    pub nearest_subcentre: usize,
    /// Its angle to its class's dominant sub-centre, in degrees.
    pub angle_deg: f64,
    /// Whether `angle_deg` is at most the threshold (the sample stays).
    pub kept: bool,
}

/// What cleaning decided for one class.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassDecision {
    /// The sub-centre most of the class's samples are nearest to.
    pub dominant_subcentre: usize,
    /// Per sub-centre, how many of the class's samples are nearest to it.
    pub nearest_counts: Vec<usize>,
}

impl ClassDecision {
    /// The class's samples (the readable ones that were embedded).
    pub fn samples(&self) -> usize {
        self.nearest_counts.iter().sum()
    }

    /// Fraction of the class's samples nearest to the dominant sub-centre (0 for an empty class).
    pub fn dominant_share(&self) -> f64 {
        self.nearest_counts[self.dominant_subcentre] as f64 / self.samples().max(1) as f64
    }
}

/// What [`decide`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Decisions {
    /// One per sample, in the order of the cosine rows.
    pub samples: Vec<SampleDecision>,
    /// One per class, by label (`classes` of them, empty classes included).
    pub classes: Vec<ClassDecision>,
}

/// `N × K`: each sample's cosine to each of the K sub-centres of its own class
/// (`centres` is `classes·K × D`, row `c·K + j` = sub-centre `j` of class `c`;
/// neither features nor centres need be unit length). A zero row has cosine 0
/// to everything (90°), so it is dropped rather than kept by accident.
pub fn own_class_cosines(features: &Array2<f64>, centres: &Array2<f64>, labels: &[usize], k: usize) -> Array2<f64> {
    assert_eq!(features.nrows(), labels.len(), "one label per feature row");
    assert_eq!(features.ncols(), centres.ncols(), "features and centres have the same dimension");
    let unit = |row: ndarray::ArrayView1<f64>| {
        let norm = row.dot(&row).sqrt();
        if norm > 0.0 {
            row.to_owned() / norm
        } else {
            row.to_owned()
        }
    };
    let mut cosines = Array2::zeros((labels.len(), k));
    for ((row, &label), mut out) in features.rows().into_iter().zip(labels).zip(cosines.rows_mut()) {
        let x = unit(row);
        for j in 0..k {
            out[j] = x.dot(&unit(centres.row(label * k + j))).clamp(-1.0, 1.0);
        }
    }
    cosines
}

/// Index of the largest value; ties go to the lowest index (so the result
/// does not depend on anything but the numbers).
fn argmax_lowest(values: impl IntoIterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.into_iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Angle in degrees of a cosine (clamped to [−1, 1]).
pub fn angle_deg(cosine: f64) -> f64 {
    cosine.clamp(-1.0, 1.0).acos().to_degrees()
}

/// Per class, the dominant sub-centre: the one the most samples of the class
/// are nearest to. A tie between sub-centres goes to the lowest index; a class
/// without samples gets sub-centre 0 (and drops nothing, having nothing).
pub fn dominant_subcentres(nearest: &[usize], labels: &[usize], classes: usize, k: usize) -> Vec<ClassDecision> {
    let mut counts = vec![vec![0usize; k]; classes];
    for (&j, &label) in nearest.iter().zip(labels) {
        counts[label][j] += 1;
    }
    counts
        .into_iter()
        .map(|nearest_counts| ClassDecision { dominant_subcentre: argmax_lowest(nearest_counts.iter().map(|&n| n as f64)), nearest_counts })
        .collect()
}

/// The cleaning rule on `N × K` own-class cosines ([`own_class_cosines`]):
/// each sample's nearest sub-centre, each class's dominant one, and a sample
/// is kept when its angle to the dominant sub-centre is at most
/// `max_angle_deg` (a sample exactly at the threshold is kept; "exceeds" drops).
pub fn decide(cosines: &Array2<f64>, labels: &[usize], classes: usize, max_angle_deg: f64) -> Decisions {
    let k = cosines.ncols();
    let nearest: Vec<usize> = cosines.rows().into_iter().map(|row| argmax_lowest(row.iter().copied())).collect();
    let class_decisions = dominant_subcentres(&nearest, labels, classes, k);
    let samples = cosines
        .rows()
        .into_iter()
        .zip(labels)
        .zip(&nearest)
        .map(|((row, &label), &nearest_subcentre)| {
            let angle = angle_deg(row[class_decisions[label].dominant_subcentre]);
            SampleDecision { nearest_subcentre, angle_deg: angle, kept: angle <= max_angle_deg }
        })
        .collect();
    Decisions { samples, classes: class_decisions }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clean::DEFAULT_MAX_ANGLE_DEG;
    use ndarray::array;

    /// A unit vector in the plane at `degrees` from the x axis.
    fn at(degrees: f64) -> [f64; 2] {
        let r = degrees.to_radians();
        [r.cos(), r.sin()]
    }

    #[test]
    fn angles_of_hand_made_cosines() {
        assert_eq!(angle_deg(1.0), 0.0);
        assert_eq!(angle_deg(0.0), 90.0);
        assert_eq!(angle_deg(-1.0), 180.0);
        // acos(1/2) = 60° and acos(−1/√2) = 135°, to rounding.
        assert!((angle_deg(0.5) - 60.0).abs() < 1e-12);
        assert!((angle_deg(-std::f64::consts::FRAC_1_SQRT_2) - 135.0).abs() < 1e-12);
        // Rounding past ±1 is clamped, not NaN.
        assert_eq!(angle_deg(1.0 + 1e-12), 0.0);
    }

    #[test]
    fn cosines_are_to_the_own_class_subcentres_only() {
        // 2 classes × K = 2 in 2-d; the centres are not unit length.
        let centres = array![[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [0.0, -0.5]];
        let features = array![[5.0, 5.0], [5.0, 5.0], [0.0, 0.0]];
        let cosines = own_class_cosines(&features, &centres, &[0, 1, 1], 2);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        let expected = array![[h, h], [-h, -h], [0.0, 0.0]];
        assert!((&cosines - &expected).iter().all(|d| d.abs() < 1e-12), "{cosines}");
    }

    #[test]
    fn dominant_subcentre_is_the_most_common_nearest_and_ties_go_to_the_lowest() {
        // Class 0 (K = 3): nearest 2, 2, 1 → dominant 2. Class 1: nearest 1, 0 → tie → 0.
        // Class 2: no samples → 0.
        let classes = dominant_subcentres(&[2, 2, 1, 1, 0], &[0, 0, 0, 1, 1], 3, 3);
        assert_eq!(classes[0], ClassDecision { dominant_subcentre: 2, nearest_counts: vec![0, 1, 2] });
        assert_eq!(classes[1], ClassDecision { dominant_subcentre: 0, nearest_counts: vec![1, 1, 0] });
        assert_eq!(classes[2], ClassDecision { dominant_subcentre: 0, nearest_counts: vec![0, 0, 0] });
        assert!((classes[0].dominant_share() - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(classes[2].dominant_share(), 0.0);
    }

    #[test]
    fn samples_beyond_the_threshold_of_the_dominant_subcentre_are_dropped() {
        // One class, K = 2: sub-centre 0 along x, sub-centre 1 at 100°.
        // Samples at 10°, −20°, 40° are nearest to 0 (dominant, 3 of 5);
        // 95° and 120° are nearest to 1 and lie 95° and 120° from sub-centre 0.
        let s0 = at(0.0);
        let s1 = at(100.0);
        let centres = array![[s0[0], s0[1]], [s1[0], s1[1]]];
        let angles = [10.0, -20.0, 40.0, 95.0, 120.0];
        let features = Array2::from_shape_fn((5, 2), |(i, d)| at(angles[i])[d]);
        let labels = [0; 5];
        let decisions = decide(&own_class_cosines(&features, &centres, &labels, 2), &labels, 1, DEFAULT_MAX_ANGLE_DEG);
        assert_eq!(decisions.classes[0].dominant_subcentre, 0);
        let nearest: Vec<usize> = decisions.samples.iter().map(|d| d.nearest_subcentre).collect();
        assert_eq!(nearest, [0, 0, 0, 1, 1]);
        for (decision, expected) in decisions.samples.iter().zip([10.0, 20.0, 40.0, 95.0, 120.0]) {
            assert!((decision.angle_deg - expected).abs() < 1e-9, "{} vs {expected}", decision.angle_deg);
        }
        let kept: Vec<bool> = decisions.samples.iter().map(|d| d.kept).collect();
        assert_eq!(kept, [true, true, true, false, false]);
        // With a 30° threshold the 40° sample goes too.
        let strict = decide(&own_class_cosines(&features, &centres, &labels, 2), &labels, 1, 30.0);
        assert_eq!(strict.samples.iter().map(|d| d.kept).collect::<Vec<_>>(), [true, true, false, false, false]);
    }

    #[test]
    fn the_threshold_is_inclusive_and_splits_just_around_75_degrees() {
        // Cosines given directly: exactly 90° (cos 0) with a 90° threshold is
        // kept; 74.999° kept and 75.001° dropped at the default 75°.
        let cosines = array![[0.0], [1.0]];
        let at_90 = decide(&cosines, &[0, 0], 1, 90.0);
        assert_eq!(at_90.samples[0].angle_deg, 90.0);
        assert!(at_90.samples[0].kept);
        let near = array![[74.999f64.to_radians().cos()], [75.001f64.to_radians().cos()], [1.0]];
        let decisions = decide(&near, &[0, 0, 0], 1, 75.0);
        assert_eq!(decisions.samples.iter().map(|d| d.kept).collect::<Vec<_>>(), [true, false, true]);
    }

    #[test]
    fn the_dominant_subcentre_decides_even_when_a_sample_is_nearer_another() {
        // Class 1 of 2, K = 2: sub-centre 1 (at 0°) is dominant (2 samples
        // nearest), sub-centre 0 at 180°. A sample at 170° is 10° from its
        // nearest (0) but 170° from the dominant one: dropped. A tie in the
        // nearest-count (1 vs 1) in class 0 goes to sub-centre 0.
        let c = |d: f64| at(d);
        let rows = [c(90.0), c(-90.0), c(180.0), c(0.0)];
        let centres = Array2::from_shape_fn((4, 2), |(i, d)| rows[i][d]);
        let angles = [80.0, -80.0, 5.0, -5.0, 170.0];
        let labels = [0, 0, 1, 1, 1];
        let features = Array2::from_shape_fn((5, 2), |(i, d)| at(angles[i])[d]);
        let decisions = decide(&own_class_cosines(&features, &centres, &labels, 2), &labels, 2, 75.0);
        assert_eq!(decisions.classes[0], ClassDecision { dominant_subcentre: 0, nearest_counts: vec![1, 1] });
        assert_eq!(decisions.classes[1], ClassDecision { dominant_subcentre: 1, nearest_counts: vec![1, 2] });
        let angles_to_dominant: Vec<f64> = decisions.samples.iter().map(|d| d.angle_deg).collect();
        for (got, expected) in angles_to_dominant.iter().zip([10.0, 170.0, 5.0, 5.0, 170.0]) {
            assert!((got - expected).abs() < 1e-9, "{angles_to_dominant:?}");
        }
        assert_eq!(decisions.samples.iter().map(|d| d.kept).collect::<Vec<_>>(), [true, false, true, true, false]);
        assert_eq!(decisions.samples[4].nearest_subcentre, 0);
    }
}
