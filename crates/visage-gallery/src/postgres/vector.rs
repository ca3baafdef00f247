//! pgvector's `vector` type in sqlx's binary protocol, so templates cross
//! the wire as exact f32 bits (no decimal formatting and parsing).
//!
//! pgvector's `vector_send`/`vector_recv` layout, network byte order:
//! `dim: i16 | unused: i16 (0) | dim × f32`.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueFormat, PgValueRef, Postgres};

/// One pgvector `vector` value.
#[derive(Clone, Debug, PartialEq)]
pub struct PgVector(pub Vec<f32>);

impl sqlx::Type<Postgres> for PgVector {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("vector")
    }
}

impl PgHasArrayType for PgVector {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("_vector")
    }
}

impl sqlx::Encode<'_, Postgres> for PgVector {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        let dim = i16::try_from(self.0.len()).map_err(|_| format!("a vector of {} values: pgvector holds at most 16000", self.0.len()))?;
        buf.extend_from_slice(&dim.to_be_bytes());
        buf.extend_from_slice(&0i16.to_be_bytes());
        for value in &self.0 {
            buf.extend_from_slice(&value.to_be_bytes());
        }
        Ok(IsNull::No)
    }
}

impl sqlx::Decode<'_, Postgres> for PgVector {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        if value.format() != PgValueFormat::Binary {
            return Err("pgvector value in text format: expected binary".into());
        }
        decode_binary(value.as_bytes()?).map(PgVector).map_err(Into::into)
    }
}

fn decode_binary(bytes: &[u8]) -> Result<Vec<f32>, String> {
    if bytes.len() < 4 {
        return Err(format!("pgvector value of {} bytes: shorter than its header", bytes.len()));
    }
    let dim = i16::from_be_bytes([bytes[0], bytes[1]]);
    let body = &bytes[4..];
    if dim < 0 || body.len() != dim as usize * 4 {
        return Err(format!("pgvector value says {dim} dimensions but carries {} bytes of them", body.len()));
    }
    Ok(body.chunks_exact(4).map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_layout_is_pgvectors() {
        // [1, -2.5] as pgvector_send writes it: 0x0002 0x0000 3f800000 c0200000.
        let bytes = [0, 2, 0, 0, 0x3f, 0x80, 0, 0, 0xc0, 0x20, 0, 0];
        assert_eq!(decode_binary(&bytes).unwrap(), vec![1.0, -2.5]);
        let mut buf = PgArgumentBuffer::default();
        let _ = sqlx::Encode::<Postgres>::encode_by_ref(&PgVector(vec![1.0, -2.5]), &mut buf).unwrap();
        assert_eq!(&buf[..], &bytes);
        assert!(decode_binary(&bytes[..10]).unwrap_err().contains("says 2 dimensions but carries 6 bytes"));
    }
}
