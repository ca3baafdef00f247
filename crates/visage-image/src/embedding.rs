//! A face's embedding as both halves of MagFace's reading use it: the unit
//! vector is the identity, the norm of the raw feature is the quality.

/// One face's recogniser output.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceEmbedding {
    /// The raw feature, as the model outputs it (with flip TTA, the mean of
    /// the face's and its mirror's: the direction of insightface's sum, the
    /// magnitude — the quality — on the scale of one pass).
    pub feature: Vec<f32>,
    /// `‖feature‖`: for MagFace-style models the magnitude is the quality score.
    pub norm: f32,
    /// `feature / ‖feature‖`: the identity, compared by dot product (cosine).
    pub embedding: Vec<f32>,
}

impl FaceEmbedding {
    /// Splits a raw feature into norm and unit vector (the norm summed in f64).
    /// A zero feature, or one whose norm is NaN, gets norm as computed and an all-zero
    /// embedding, so its cosine to anything is 0.
    pub fn from_feature(feature: Vec<f32>) -> Self {
        let norm = feature.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt() as f32;
        let embedding = if norm > 0.0 { feature.iter().map(|v| v / norm).collect() } else { vec![0.0; feature.len()] };
        Self { feature, norm, embedding }
    }

    /// Cosine similarity of two faces (dot product of the unit embeddings), in [−1, 1]
    /// up to rounding. Both must come from the same model: embeddings of different
    /// lengths are not refused, the dot product just stops at the shorter one.
    pub fn cosine(&self, other: &FaceEmbedding) -> f32 {
        self.embedding.iter().zip(&other.embedding).map(|(a, b)| a * b).sum()
    }
}
