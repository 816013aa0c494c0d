//! Byte fields on the wire: written as MessagePack `bin`, as `serde_bytes` writes them, and
//! read back only from `bin`. `serde_bytes` alone also takes a string where bytes belong;
//! a frame that does that is malformed, and saying so keeps the protocol's types exact
//! (and what the relay stores exactly what a peer meant).
//!
//! Used as `#[serde(with = "crate::bytes")]` on `Vec<u8>`, `[u8; 16]` and
//! `Option<Vec<u8>>` fields.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;

/// Writes `bytes` as MessagePack `bin`.
pub(crate) fn serialize<T, S>(bytes: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    T: ?Sized + serde_bytes::Serialize,
    S: Serializer,
{
    serde_bytes::serialize(bytes, serializer)
}

/// Reads a value that must have been written as `bin`.
pub(crate) fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: FromBin,
    D: Deserializer<'de>,
{
    T::from_bin(deserializer)
}

/// A field type read from `bin` only.
pub(crate) trait FromBin: Sized {
    /// Reads `Self` from `deserializer`, refusing anything but bytes.
    fn from_bin<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error>;
}

/// Takes bytes, and nothing else.
struct BinOnly;

impl Visitor<'_> for BinOnly {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }
}

impl FromBin for Vec<u8> {
    fn from_bin<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_byte_buf(BinOnly)
    }
}

impl<const N: usize> FromBin for [u8; N] {
    fn from_bin<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = Vec::<u8>::from_bin(deserializer)?;
        let len = bytes.len();
        bytes
            .try_into()
            .map_err(|_| de::Error::invalid_length(len, &format!("{N} bytes").as_str()))
    }
}

/// Takes nothing, or bytes.
struct OptionalBin;

impl<'de> Visitor<'de> for OptionalBin {
    type Value = Option<Vec<u8>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes or nil")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        Vec::<u8>::from_bin(deserializer).map(Some)
    }
}

impl FromBin for Option<Vec<u8>> {
    fn from_bin<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(OptionalBin)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Fields {
        #[serde(with = "crate::bytes")]
        data: Vec<u8>,
        #[serde(with = "crate::bytes")]
        id: [u8; 4],
        #[serde(default, with = "crate::bytes")]
        maybe: Option<Vec<u8>>,
    }

    #[derive(Serialize)]
    struct AsText {
        data: String,
        #[serde(with = "serde_bytes")]
        id: [u8; 4],
    }

    #[test]
    fn bytes_round_trip_as_bin_and_nil() {
        for maybe in [None, Some(vec![]), Some(vec![7; 300])] {
            let fields = Fields {
                data: vec![1, 2, 3],
                id: [9; 4],
                maybe,
            };
            let bytes = rmp_serde::to_vec_named(&fields).expect("encodes");
            assert_eq!(
                crate::frame::decode_msgpack::<Fields>(&bytes).ok(),
                Some(fields)
            );
        }
    }

    #[test]
    fn a_string_or_a_wrong_length_where_bytes_belong_is_refused() {
        let text = AsText {
            data: "looks like bytes".into(),
            id: [1; 4],
        };
        let bytes = rmp_serde::to_vec_named(&text).expect("encodes");
        let err = crate::frame::decode_msgpack::<Fields>(&bytes).expect_err("a string");
        assert!(err.to_string().contains("expected bytes"), "{err}");
        let short = rmp_serde::to_vec_named(&Fields {
            data: vec![],
            id: [0; 4],
            maybe: None,
        })
        .expect("encodes");
        assert!(crate::frame::decode_msgpack::<Fields>(&short).is_ok());
        #[derive(Serialize)]
        struct ShortId {
            #[serde(with = "serde_bytes")]
            data: Vec<u8>,
            #[serde(with = "serde_bytes")]
            id: Vec<u8>,
        }
        let wrong = rmp_serde::to_vec_named(&ShortId {
            data: vec![],
            id: vec![1, 2],
        })
        .expect("encodes");
        let err = crate::frame::decode_msgpack::<Fields>(&wrong).expect_err("2 of 4 bytes");
        assert!(err.to_string().contains("4 bytes"), "{err}");
    }
}
