//! CBOR encoding of wire types (ciborium), strict on the way in: exactly one
//! item, nothing after it.

use serde::{de::DeserializeOwned, Serialize};

/// A message that is not the CBOR of the expected type.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CborError {
    /// Not CBOR, or CBOR of another shape.
    #[error("malformed CBOR: {0}")]
    Malformed(String),
    /// A valid item followed by more bytes.
    #[error("{0} unexpected bytes after the CBOR item")]
    TrailingBytes(usize),
}

/// Encodes a wire value. Encoding into a `Vec` cannot fail for our types.
pub fn to_cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    ciborium::into_writer(value, &mut buf).expect("writing CBOR into a Vec cannot fail");
    buf
}

/// Decodes exactly one wire value from `bytes`.
pub fn from_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CborError> {
    let mut rest = bytes;
    let value = ciborium::from_reader(&mut rest).map_err(|e| CborError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CborError::TrailingBytes(rest.len()));
    }
    Ok(value)
}
