//! The gallery's data model: identities, their face templates, the pooled
//! identity template, and the quality screen that refuses faces at enrolment.
//!
//! ## Pooling
//!
//! An identity is searched through one template, pooled from its faces:
//!
//! ```text
//! t = Σᵢ wᵢ·eᵢ / ‖Σᵢ wᵢ·eᵢ‖,   wᵢ = ‖xᵢ‖ / Σⱼ ‖xⱼ‖
//! ```
//!
//! where `eᵢ = xᵢ/‖xᵢ‖` is face i's unit embedding and `‖xᵢ‖` its feature
//! magnitude. With MagFace and AdaFace training the magnitude grows with
//! face quality (MagFace §3.2: a face's magnitude ranks its recognisability;
//! AdaFace uses ‖x‖ as its image-quality proxy), so sharp frontal faces pull
//! the template more than blurred or profile ones. Weights ∝ magnitude make
//! the numerator simply the sum of the raw features `Σᵢ xᵢ` — insightface's
//! IJB template pooling without feature normalisation. The common factor
//! `1/Σⱼ‖xⱼ‖` cancels in the renormalisation, so only the direction is kept:
//! the template is a unit vector and a search score is a cosine similarity.
//! For plain ArcFace models the magnitude carries less quality signal, and
//! the pooled template is close to the plain mean direction.

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{GalleryError, Result};

/// Identities are numbered per gallery, from 1, never reused.
pub type IdentityId = u64;

/// One enrolled face: its unit embedding, how good it is, where it came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// `x / ‖x‖`: the identity direction (stored as little-endian f32, base64).
    #[serde(with = "f32_base64")]
    pub embedding: Vec<f32>,
    /// `‖x‖` of the raw feature: the face's quality, and its pooling weight.
    pub magnitude: f32,
    /// Where the face came from (a file name, an upload id): for people, not for search.
    pub source: String,
}

/// A person in the gallery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The gallery's number for the identity (an import gives a new one).
    pub id: IdentityId,
    /// Unique within the gallery; how callers address the identity ([`check_name`]).
    pub name: String,
    /// Free-form JSON the caller attaches (`null` when none).
    #[serde(default)]
    pub metadata: serde_json::Value,
    /// Every enrolled face, oldest first; never empty in a stored identity.
    pub templates: Vec<Template>,
}

/// What listings show of an identity: everything but the vectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdentitySummary {
    /// [`Identity::id`].
    pub id: IdentityId,
    /// [`Identity::name`].
    pub name: String,
    /// [`Identity::metadata`].
    pub metadata: serde_json::Value,
    /// How many faces are enrolled.
    pub templates: usize,
    /// The largest magnitude `‖x‖` among its faces (0 with none).
    pub best_quality: f32,
}

impl Identity {
    /// The identity without its vectors, as listings show it.
    pub fn summary(&self) -> IdentitySummary {
        IdentitySummary {
            id: self.id,
            name: self.name.clone(),
            metadata: self.metadata.clone(),
            templates: self.templates.len(),
            best_quality: self.templates.iter().map(|t| t.magnitude).fold(0.0, f32::max),
        }
    }

    /// The identity's search template: see the module docs.
    pub fn pooled_template(&self) -> Vec<f32> {
        pool_templates(&self.templates)
    }
}

/// Quality-weighted pooling (module docs): `normalise(Σ ‖xᵢ‖·eᵢ)`.
/// Falls back to the unweighted mean direction when every magnitude is 0,
/// and returns the zero vector (every score 0) for faces that cancel exactly.
pub fn pool_templates(templates: &[Template]) -> Vec<f32> {
    let Some(first) = templates.first() else { return Vec::new() };
    let dim = first.embedding.len();
    let all_zero = templates.iter().all(|t| t.magnitude <= 0.0);
    let mut sum = vec![0.0f64; dim];
    for template in templates {
        let weight = if all_zero { 1.0 } else { f64::from(template.magnitude.max(0.0)) };
        for (s, &e) in sum.iter_mut().zip(&template.embedding) {
            *s += weight * f64::from(e);
        }
    }
    let norm = sum.iter().map(|s| s * s).sum::<f64>().sqrt();
    if norm == 0.0 {
        return vec![0.0; dim];
    }
    sum.iter().map(|s| (s / norm) as f32).collect()
}

/// A face offered for enrolment, as the inference pipeline gives it.
#[derive(Clone, Debug)]
pub struct FaceSample {
    /// The unit embedding `x/‖x‖`.
    pub embedding: Vec<f32>,
    /// `‖x‖`.
    pub magnitude: f32,
    /// `[x1, y1, x2, y2]` in photo pixels, when the face was detected.
    pub bbox: Option<[f32; 4]>,
    /// Where the face came from (becomes [`Template::source`]); refusals
    /// name it, and idempotent enrolments fingerprint it.
    pub source: String,
}

/// Which faces a gallery accepts. The magnitude scale depends on the
/// recogniser (the bundled 128-d ArcFace gives ≈ 7–9 for clear faces,
/// ≈ 3.5 for detector false positives; MagFace spans ≈ 10–110), so the
/// threshold is a per-gallery setting, never a constant.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityPolicy {
    /// Refuse faces whose magnitude `‖x‖` is below this (`None`: no magnitude rule).
    pub min_magnitude: Option<f32>,
    /// Refuse faces whose box is narrower or shorter than this (photo pixels):
    /// below it the 112×112 crop is mostly upsampled blur.
    pub min_face_px: f32,
}

impl Default for QualityPolicy {
    fn default() -> Self {
        Self { min_magnitude: None, min_face_px: 20.0 }
    }
}

/// Why a face was not enrolled.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The photo has no detectable face.
    NoFace,
    /// The photo could not be read or decoded.
    Unreadable {
        /// The decoder's or the pipeline's error.
        message: String,
    },
    /// The face's box is narrower or shorter than the gallery's
    /// [`QualityPolicy::min_face_px`].
    TooSmall {
        /// Box width, photo pixels.
        width: f32,
        /// Box height, photo pixels.
        height: f32,
        /// The gallery's minimum side, photo pixels.
        min_face_px: f32,
    },
    /// The face's magnitude is below the gallery's
    /// [`QualityPolicy::min_magnitude`].
    LowQuality {
        /// The face's `‖x‖`.
        magnitude: f32,
        /// The gallery's minimum `‖x‖`.
        min_magnitude: f32,
    },
    /// The embedding has NaN/∞ or is not unit length (a model failure).
    BadEmbedding {
        /// Which: "not finite", or the norm found.
        message: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoFace => write!(f, "no face found"),
            Refusal::Unreadable { message } => write!(f, "unreadable: {message}"),
            Refusal::TooSmall { width, height, min_face_px } => {
                write!(f, "face too small: {width:.0}×{height:.0} px, the gallery needs at least {min_face_px:.0} px a side")
            }
            Refusal::LowQuality { magnitude, min_magnitude } => {
                write!(f, "quality too low: ‖x‖ = {magnitude:.3}, the gallery needs at least {min_magnitude}")
            }
            Refusal::BadEmbedding { message } => write!(f, "bad embedding: {message}"),
        }
    }
}

/// A face that was refused, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RefusedFace {
    /// The face's [`FaceSample::source`] (or the photo's path at the CLI).
    pub source: String,
    /// Why; in JSON its fields sit beside `source`, with a `reason` code.
    #[serde(flatten)]
    pub refusal: Refusal,
}

impl QualityPolicy {
    /// Accepts a face as a template, or says why not.
    pub fn screen(&self, face: &FaceSample) -> std::result::Result<Template, Refusal> {
        if let Some([x1, y1, x2, y2]) = face.bbox {
            let (width, height) = (x2 - x1, y2 - y1);
            if width < self.min_face_px || height < self.min_face_px {
                return Err(Refusal::TooSmall { width, height, min_face_px: self.min_face_px });
            }
        }
        if !face.magnitude.is_finite() || face.embedding.iter().any(|v| !v.is_finite()) {
            return Err(Refusal::BadEmbedding { message: "not finite".into() });
        }
        let norm = face.embedding.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>().sqrt();
        if (norm - 1.0).abs() > 1e-3 {
            return Err(Refusal::BadEmbedding { message: format!("norm {norm:.4}, expected a unit vector") });
        }
        if let Some(min_magnitude) = self.min_magnitude {
            if face.magnitude < min_magnitude {
                return Err(Refusal::LowQuality { magnitude: face.magnitude, min_magnitude });
            }
        }
        Ok(Template { embedding: face.embedding.clone(), magnitude: face.magnitude, source: face.source.clone() })
    }
}

/// Names are how people and the CLI address identities: non-empty, no
/// control characters, no surrounding spaces, at most 256 bytes.
pub fn check_name(name: &str) -> Result<()> {
    let bad = |reason: &str| Err(GalleryError::BadName { name: name.to_string(), reason: reason.to_string() });
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 256 {
        return bad("longer than 256 bytes");
    }
    if name.trim() != name {
        return bad("leading or trailing spaces");
    }
    if name.chars().any(char::is_control) {
        return bad("control characters");
    }
    Ok(())
}

/// How deeply metadata may nest arrays and objects. Deep enough for any
/// record people attach to a person; far below the 128 levels at which
/// serde_json refuses a document, so the metadata inside a log record, a
/// snapshot line or an export (a few levels more) always reads back.
pub const METADATA_MAX_DEPTH: usize = 32;
/// The most bytes metadata may take as compact JSON: it is copied into every
/// listing and search answer, so it stays small.
pub const METADATA_MAX_BYTES: usize = 64 << 10;
/// The longest object key in metadata, in bytes.
pub const METADATA_MAX_KEY_BYTES: usize = 256;

/// Refuses metadata that could not be stored and read back as it is (`what`
/// names the field in the error). NaN and ±∞ cannot occur: a JSON value
/// holds only finite numbers. The walk is iterative, so a value built
/// deeper than any parser allows is refused, not a stack overflow.
pub fn check_metadata(what: &str, metadata: &serde_json::Value) -> Result<()> {
    let mut pending = vec![(metadata, 0usize)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
            serde_json::Value::Array(items) => Box::new(items.iter()),
            serde_json::Value::Object(map) => {
                if let Some(key) = map.keys().find(|key| key.len() > METADATA_MAX_KEY_BYTES) {
                    let shown: String = key.chars().take(32).collect();
                    return Err(GalleryError::invalid(
                        what,
                        format!("key \"{shown}…\" is {} bytes long; keys may have at most {METADATA_MAX_KEY_BYTES}", key.len()),
                    ));
                }
                Box::new(map.values())
            }
            _ => continue,
        };
        if depth + 1 > METADATA_MAX_DEPTH {
            return Err(GalleryError::invalid(what, format!("nested more than {METADATA_MAX_DEPTH} levels deep (arrays and objects); flatten it")));
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    let bytes = serde_json::to_vec(metadata).expect("a JSON value serialises").len();
    if bytes > METADATA_MAX_BYTES {
        return Err(GalleryError::invalid(what, format!("{bytes} bytes as JSON; at most {METADATA_MAX_BYTES} are allowed")));
    }
    Ok(())
}

/// f32 vectors as base64 of their little-endian bytes: exact (JSON decimals
/// of f32 round-trip only through careful parsing) and 2× smaller than text.
pub mod f32_base64 {
    use super::*;

    /// Writes `values` as one base64 string (4 bytes per value).
    pub fn serialize<S: Serializer>(values: &[f32], serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Reads a base64 string back; refuses invalid base64 and a byte count
    /// that is not a multiple of 4.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Vec<f32>, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom(format!("{} bytes is not a whole number of f32", bytes.len())));
        }
        Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    fn template(e: &[f32], magnitude: f32) -> Template {
        Template { embedding: unit(e), magnitude, source: String::new() }
    }

    #[test]
    fn pooling_weights_by_magnitude_and_renormalises() {
        // e1 = (1, 0), ‖x1‖ = 3; e2 = (0, 1), ‖x2‖ = 1 → Σ = (3, 1) → (3, 1)/√10.
        let pooled = pool_templates(&[template(&[1.0, 0.0], 3.0), template(&[0.0, 1.0], 1.0)]);
        let expected = [3.0 / 10f32.sqrt(), 1.0 / 10f32.sqrt()];
        assert!((pooled[0] - expected[0]).abs() < 1e-6 && (pooled[1] - expected[1]).abs() < 1e-6, "{pooled:?}");
        // Equal magnitudes: the mean direction (1, 1)/√2.
        let pooled = pool_templates(&[template(&[1.0, 0.0], 5.0), template(&[0.0, 1.0], 5.0)]);
        assert!((pooled[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        // One face: its own embedding.
        let single = template(&[0.6, 0.8], 2.0);
        assert_eq!(pool_templates(std::slice::from_ref(&single)), single.embedding);
        // Opposite faces of equal weight cancel: the zero vector, not NaN.
        assert_eq!(pool_templates(&[template(&[1.0, 0.0], 1.0), template(&[-1.0, 0.0], 1.0)]), vec![0.0, 0.0]);
    }

    #[test]
    fn screen_refuses_with_the_reason() {
        let policy = QualityPolicy { min_magnitude: Some(8.0), min_face_px: 20.0 };
        let face = |magnitude, bbox| FaceSample { embedding: unit(&[1.0, 2.0]), magnitude, bbox, source: "a.jpg".into() };
        assert!(policy.screen(&face(8.5, Some([0.0, 0.0, 40.0, 50.0]))).is_ok());
        let low = policy.screen(&face(6.92, Some([0.0, 0.0, 40.0, 50.0]))).unwrap_err();
        assert_eq!(low, Refusal::LowQuality { magnitude: 6.92, min_magnitude: 8.0 });
        assert_eq!(low.to_string(), "quality too low: ‖x‖ = 6.920, the gallery needs at least 8");
        let small = policy.screen(&face(9.0, Some([10.0, 10.0, 25.0, 60.0]))).unwrap_err();
        assert_eq!(small, Refusal::TooSmall { width: 15.0, height: 50.0, min_face_px: 20.0 });
        let mut not_unit = face(9.0, None);
        not_unit.embedding = vec![1.0, 1.0];
        assert!(matches!(policy.screen(&not_unit), Err(Refusal::BadEmbedding { .. })));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("Barack Obama").is_ok());
        for bad in ["", " obama", "a\nb", &"x".repeat(257)] {
            assert!(matches!(check_name(bad), Err(GalleryError::BadName { .. })), "{bad:?}");
        }
    }

    #[test]
    fn metadata_is_bounded() {
        let nested = |depth: usize| -> serde_json::Value { serde_json::from_str(&("[".repeat(depth) + &"]".repeat(depth))).unwrap() };
        assert!(check_metadata("metadata", &nested(METADATA_MAX_DEPTH)).is_ok());
        let err = check_metadata("metadata", &nested(METADATA_MAX_DEPTH + 1)).unwrap_err();
        assert!(err.is_bad_input());
        assert_eq!(err.to_string(), "metadata: nested more than 32 levels deep (arrays and objects); flatten it");
        assert!(check_metadata("metadata", &nested(127)).is_err());
        // Depth counts objects too, and scalars add none.
        let mut value = serde_json::json!("leaf");
        for _ in 0..32 {
            value = serde_json::json!({ "k": value });
        }
        assert!(check_metadata("metadata", &value).is_ok());
        assert!(check_metadata("metadata", &serde_json::json!([value])).is_err());
        // Size: the compact JSON of 64 KiB exactly passes, one byte more fails.
        let fits = serde_json::Value::String("x".repeat(METADATA_MAX_BYTES - 2));
        assert!(check_metadata("metadata", &fits).is_ok());
        let over = serde_json::Value::String("x".repeat(METADATA_MAX_BYTES - 1));
        assert_eq!(check_metadata("metadata", &over).unwrap_err().to_string(), "metadata: 65537 bytes as JSON; at most 65536 are allowed");
        let long_key = serde_json::json!({ "k".repeat(257): 1 });
        assert!(check_metadata("metadata of `x`", &long_key).unwrap_err().to_string().starts_with("metadata of `x`: key \"kkk"));
        assert!(check_metadata("metadata", &serde_json::json!({ "k".repeat(256): f64::NAN })).is_ok(), "json! turns NaN into null");
    }

    #[test]
    fn vectors_round_trip_exactly_through_json() {
        let t = Template { embedding: vec![0.1, -1.0 / 3.0, f32::MIN_POSITIVE, 1.0], magnitude: 7.5, source: "x".into() };
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("\"embedding\":\"zczMPauqqr4AAIAAAACAPw==\""), "{json}");
        assert_eq!(serde_json::from_str::<Template>(&json).unwrap(), t);
        let err = serde_json::from_str::<Template>(r#"{"embedding":"AAA=","magnitude":1,"source":""}"#).unwrap_err();
        assert!(err.to_string().contains("not a whole number of f32"), "{err}");
    }
}
