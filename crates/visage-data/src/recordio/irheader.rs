//! MXNet's image record payload: `IRHeader { flag: u32, label: f32, id: u64,
//! id2: u64 }` (24 bytes, little-endian), then `flag` extra `f32` labels when
//! `flag > 0`, then the encoded image. MXNet's `pack` stores a scalar label in
//! `label` with `flag = 0`, and a label vector as `flag = len` extra floats
//! with `label = 0`; readers take the vector when `flag > 0`.

/// Size of the fixed header.
pub const IRHEADER_BYTES: usize = 24;

/// One record's payload, parsed: MXNet's `IRHeader`, the extra labels and
/// the encoded image (docs/spec/formats.md).
#[derive(Clone, Debug, PartialEq)]
pub struct ImageRecord {
    /// Number of extra `f32` labels in `label_vector`; 0 for a scalar label.
    pub flag: u32,
    /// The scalar label field (0 when the labels are a vector).
    pub label: f32,
    /// MXNet's record id; insightface's packs (and [`crate::InsightfacePacker`])
    /// set it to the record's key.
    pub id: u64,
    /// MXNet's second id; 0 in the records this crate writes.
    pub id2: u64,
    /// The `flag` extra labels (empty when `flag = 0`).
    pub label_vector: Vec<f32>,
    /// The encoded image (empty for insightface's header and identity records).
    pub image: Vec<u8>,
}

impl ImageRecord {
    /// A record as MXNet's `pack` writes it: scalar label, `flag = 0`.
    pub fn with_scalar_label(label: f32, id: u64, id2: u64, image: Vec<u8>) -> Self {
        Self { flag: 0, label, id, id2, label_vector: Vec::new(), image }
    }

    /// A record with a label vector: `flag = labels.len()`, `label = 0`.
    pub fn with_label_vector(labels: Vec<f32>, id: u64, id2: u64, image: Vec<u8>) -> Self {
        Self { flag: labels.len() as u32, label: 0.0, id, id2, label_vector: labels, image }
    }

    /// The label insightface trains on: the scalar, or the vector's first entry.
    pub fn primary_label(&self) -> f32 {
        if self.flag > 0 {
            self.label_vector.first().copied().unwrap_or(self.label)
        } else {
            self.label
        }
    }

    /// The payload bytes: the 24-byte little-endian header, `label_vector`,
    /// then the image. The header's `flag` field is written as stored, so it
    /// should equal `label_vector.len()` (the constructors ensure it).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(IRHEADER_BYTES + 4 * self.label_vector.len() + self.image.len());
        out.extend_from_slice(&self.flag.to_le_bytes());
        out.extend_from_slice(&self.label.to_le_bytes());
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.id2.to_le_bytes());
        for value in &self.label_vector {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&self.image);
        out
    }

    /// Parses a record payload; the error says which part is missing.
    pub fn parse(mut payload: Vec<u8>) -> Result<Self, String> {
        if payload.len() < IRHEADER_BYTES {
            return Err(format!("{} bytes, shorter than the 24-byte image record header", payload.len()));
        }
        let u32_at = |at: usize| u32::from_le_bytes(payload[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().unwrap());
        let flag = u32_at(0);
        let label = f32::from_bits(u32_at(4));
        let (id, id2) = (u64_at(8), u64_at(16));
        let labels_end = IRHEADER_BYTES as u64 + 4 * u64::from(flag);
        if labels_end > payload.len() as u64 {
            return Err(format!(
                "header flag {flag} announces {flag} float labels ({} bytes) but only {} bytes follow the header",
                4 * u64::from(flag),
                payload.len() - IRHEADER_BYTES
            ));
        }
        let labels_end = labels_end as usize;
        let label_vector = payload[IRHEADER_BYTES..labels_end].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let image = payload.split_off(labels_end);
        Ok(Self { flag, label, id, id2, label_vector, image })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_and_vector_labels_round_trip_with_mxnet_layout() {
        let scalar = ImageRecord::with_scalar_label(7.0, 3, 0, b"JPEG".to_vec());
        let bytes = scalar.to_bytes();
        // flag 0 | 7.0f32 = 0x40e00000 | id 3 | id2 0 | image
        assert_eq!(&bytes[..8], &[0, 0, 0, 0, 0x00, 0x00, 0xe0, 0x40]);
        assert_eq!(&bytes[8..16], &3u64.to_le_bytes());
        assert_eq!(&bytes[24..], b"JPEG");
        assert_eq!(ImageRecord::parse(bytes).unwrap(), scalar);
        assert_eq!(scalar.primary_label(), 7.0);

        let vector = ImageRecord::with_label_vector(vec![5.0, 0.5], 0, 0, Vec::new());
        let bytes = vector.to_bytes();
        assert_eq!(bytes.len(), 32);
        assert_eq!(&bytes[..4], &2u32.to_le_bytes());
        let parsed = ImageRecord::parse(bytes).unwrap();
        assert_eq!(parsed.primary_label(), 5.0);
        assert_eq!(parsed.label_vector, [5.0, 0.5]);
        assert!(parsed.image.is_empty());
    }

    #[test]
    fn short_payloads_say_what_is_missing() {
        assert_eq!(ImageRecord::parse(vec![0; 10]).unwrap_err(), "10 bytes, shorter than the 24-byte image record header");
        let mut bytes = ImageRecord::with_scalar_label(1.0, 0, 0, Vec::new()).to_bytes();
        bytes[0] = 3;
        bytes.extend_from_slice(&[0; 4]);
        assert_eq!(ImageRecord::parse(bytes).unwrap_err(), "header flag 3 announces 3 float labels (12 bytes) but only 4 bytes follow the header");
    }
}
