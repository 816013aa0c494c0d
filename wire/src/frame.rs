//! Length-prefixed MessagePack frames.
//!
//! A frame is a big-endian `u32` body length followed by the body: a MessagePack map with
//! named fields (rmp-serde's `to_vec_named`), so that fields can be added without breaking
//! older peers. The decoder is sans-IO: feed it whatever bytes arrived with
//! [`FrameDecoder::push`], take complete frames with [`FrameDecoder::next_message`], and call
//! [`FrameDecoder::finish`] at end of stream to detect a truncated frame.
//! An oversized frame is rejected as soon as its header is seen, before its body is buffered.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::FrameError;

/// Size of the length prefix.
pub const HEADER_BYTES: usize = 4;

/// Limit for control frames (requests, responses, pushed events): 1 MiB, as design.md sets.
pub const MAX_CONTROL_FRAME_BYTES: usize = 1 << 20;

/// Encodes `msg` as one frame (header and body).
///
/// Fails with [`FrameError::TooLarge`] when the body would exceed `max_body_bytes`, so a
/// sender learns of an oversized message before anything is written.
pub fn encode<T: Serialize>(msg: &T, max_body_bytes: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; HEADER_BYTES];
    rmp_serde::encode::write_named(&mut out, msg).map_err(|e| FrameError::Malformed {
        reason: e.to_string(),
    })?;
    let len = out.len() - HEADER_BYTES;
    if len > max_body_bytes {
        return Err(FrameError::TooLarge {
            len,
            max: max_body_bytes,
        });
    }
    let len32 = u32::try_from(len).map_err(|_| FrameError::TooLarge {
        len,
        max: max_body_bytes,
    })?;
    out[..HEADER_BYTES].copy_from_slice(&len32.to_be_bytes());
    Ok(out)
}

/// How many bytes `value` takes as a frame body (without the header), counted without
/// building the body; a value that cannot be encoded counts as `usize::MAX`, too large
/// for anything. Lets the relay cut a long list into pages that fit in a frame.
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    let mut counter = ByteCounter(0);
    match rmp_serde::encode::write_named(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// A writer that keeps only the number of bytes written to it.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How deeply MessagePack values from the network may nest. Uchat's deepest message nests
/// about ten levels; rmp-serde's own limit (1,024) is deeper than a debug build's 2 MiB
/// thread stack reaches (it overflowed at about 700 levels, aborting the relay on one
/// small frame sent before login).
pub const MAX_NESTING: usize = 64;

/// Decodes MessagePack `bytes` from the network (a frame's body, or what a peer decrypted)
/// with nesting limited to [`MAX_NESTING`].
pub fn decode_msgpack<'de, T: serde::Deserialize<'de>>(
    bytes: &'de [u8],
) -> Result<T, rmp_serde::decode::Error> {
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes);
    deserializer.set_max_depth(MAX_NESTING);
    T::deserialize(&mut deserializer)
}

/// Decodes a MessagePack body (without its header).
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    decode_msgpack(body).map_err(|e| FrameError::Malformed {
        reason: e.to_string(),
    })
}

/// Decodes exactly one complete frame from `bytes`; trailing bytes are malformed.
pub fn decode_frame<T: DeserializeOwned>(
    bytes: &[u8],
    max_body_bytes: usize,
) -> Result<T, FrameError> {
    let mut decoder = FrameDecoder::new(max_body_bytes);
    decoder.push(bytes)?;
    let msg = decoder.next_message()?;
    decoder.finish()?;
    msg.ok_or(FrameError::Truncated {
        expected: HEADER_BYTES,
        received: bytes.len(),
    })
}

/// Incremental frame decoder over a byte stream.
///
/// Calling order: any number of `push` and `next_*` calls in any order, then `finish` once
/// the stream has ended.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max_body_bytes: usize,
}

impl FrameDecoder {
    /// A decoder that refuses bodies larger than `max_body_bytes`.
    pub fn new(max_body_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            max_body_bytes,
        }
    }

    /// Appends bytes that arrived; fails at once if a pending header is over the limit.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        // Within a frame whose length is known, grow the buffer to the frame's end exactly:
        // left to itself a `Vec` doubles, and a 1 MiB frame that never ends would hold 2 MiB.
        let wanted = self.buf.len() + bytes.len();
        if wanted > self.buf.capacity()
            && let Ok(Some(len)) = self.pending_body_len()
            && wanted <= HEADER_BYTES + len
        {
            self.buf.reserve_exact(HEADER_BYTES + len - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
        self.pending_body_len().map(|_| ())
    }

    /// How many more bytes the decoder needs to complete the frame in progress (at least 1
    /// when nothing is buffered). Lets a reader size its next read without overshooting.
    pub fn wanted(&self) -> usize {
        match self.pending_body_len() {
            Ok(Some(len)) => (HEADER_BYTES + len).saturating_sub(self.buf.len()).max(1),
            _ => HEADER_BYTES.saturating_sub(self.buf.len()).max(1),
        }
    }

    /// The body length the frame in progress announced, once its header is in (`None`
    /// before that, or if the header is over the limit: [`FrameDecoder::push`] said so).
    pub fn announced_body_len(&self) -> Option<usize> {
        self.pending_body_len().ok().flatten()
    }

    /// Takes the next complete frame's body, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let Some(len) = self.pending_body_len()? else {
            return Ok(None);
        };
        if self.buf.len() < HEADER_BYTES + len {
            return Ok(None);
        }
        let body = self.buf[HEADER_BYTES..HEADER_BYTES + len].to_vec();
        self.buf.drain(..HEADER_BYTES + len);
        Ok(Some(body))
    }

    /// Takes and decodes the next complete frame, if one is buffered.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        match self.next_frame()? {
            Some(body) => decode_body(&body).map(Some),
            None => Ok(None),
        }
    }

    /// Checks, at end of stream, that no partial frame is left over.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let expected = match self.pending_body_len()? {
            Some(len) => HEADER_BYTES + len,
            None => HEADER_BYTES,
        };
        Err(FrameError::Truncated {
            expected,
            received: self.buf.len(),
        })
    }

    fn pending_body_len(&self) -> Result<Option<usize>, FrameError> {
        let Some(header) = self.buf.first_chunk::<HEADER_BYTES>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*header) as usize;
        if len > self.max_body_bytes {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_body_bytes,
            });
        }
        Ok(Some(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::request::Request;
    use crate::{PROTOCOL_VERSION, Password, UserName};

    fn hello() -> Request {
        Request::Hello(crate::request::Hello {
            protocol: PROTOCOL_VERSION,
            client: "test 你好".into(),
        })
    }

    #[test]
    fn a_frame_round_trips_through_the_decoder_one_byte_at_a_time() {
        let bytes = encode(&hello(), MAX_CONTROL_FRAME_BYTES).expect("encodes");
        let mut decoder = FrameDecoder::new(MAX_CONTROL_FRAME_BYTES);
        let mut got = None;
        for b in &bytes {
            decoder.push(std::slice::from_ref(b)).expect("push");
            if let Some(msg) = decoder.next_message::<Request>().expect("decode") {
                got = Some(msg);
            }
        }
        decoder.finish().expect("nothing left over");
        assert_eq!(got, Some(hello()));
    }

    #[test]
    fn a_frame_in_progress_holds_its_own_length_not_double() {
        let len = 1usize << 20;
        let mut decoder = FrameDecoder::new(MAX_CONTROL_FRAME_BYTES);
        let header = u32::try_from(len).expect("fits").to_be_bytes();
        decoder.push(&header).expect("header");
        let piece = vec![0u8; 64 * 1024];
        for _ in 0..(len / piece.len()) - 1 {
            decoder.push(&piece).expect("body");
        }
        decoder
            .push(&piece[..piece.len() - 1])
            .expect("all but the last byte");
        assert!(
            decoder.buf.capacity() <= HEADER_BYTES + len,
            "{} bytes held for a frame of {}",
            decoder.buf.capacity(),
            HEADER_BYTES + len
        );
        assert_eq!(decoder.next_frame().expect("valid"), None);
    }

    #[test]
    fn encoded_len_counts_the_body_a_frame_carries() {
        let frame = encode(&hello(), MAX_CONTROL_FRAME_BYTES).expect("encodes");
        assert_eq!(encoded_len(&hello()), frame.len() - HEADER_BYTES);
        // An element costs what it adds to a list: its bytes and nothing else (a list's
        // header grows by at most 4 bytes as it lengthens).
        let names: Vec<String> = (0..20).map(|i| format!("名字 {i}")).collect();
        let each: usize = names.iter().map(encoded_len).sum();
        assert_eq!(encoded_len(&names), each + 3);
    }

    #[test]
    fn deeply_nested_values_are_refused_without_exhausting_the_stack() {
        // A Hello map with one unknown field holding 100,000 nested one-element arrays:
        // 100 kB, well within the frame limit.
        let depth = 100_000;
        let mut body = vec![0x83]; // a map of three fields
        for (key, value) in [("protocol", None), ("client", None), ("x", Some(()))] {
            body.push(0xa0 | key.len() as u8);
            body.extend_from_slice(key.as_bytes());
            match (key, value) {
                ("protocol", _) => {
                    let version =
                        rmp_serde::to_vec_named(&crate::PROTOCOL_VERSION).expect("encodes");
                    body.extend_from_slice(&version);
                }
                ("client", _) => body.extend_from_slice(&[0xa1, b'c']),
                _ => {
                    body.extend(std::iter::repeat_n(0x91u8, depth));
                    body.push(0xc0);
                }
            }
        }
        let hello = rmp_serde::to_vec_named(&hello()).expect("encodes");
        assert!(decode_body::<Request>(&hello).is_ok());
        let err = decode_body::<Request>(&body).expect_err("too deep");
        assert!(err.to_string().contains("depth"), "{err}");
        // What Uchat itself sends nests far less.
        let shallow: Vec<u8> = std::iter::repeat_n(0x91u8, MAX_NESTING - 2)
            .chain([0xc0])
            .collect();
        assert!(decode_msgpack::<serde::de::IgnoredAny>(&shallow).is_ok());
    }

    #[test]
    fn an_oversized_header_is_rejected_before_the_body_arrives() {
        let mut decoder = FrameDecoder::new(1024);
        let err = decoder
            .push(&(1025u32).to_be_bytes())
            .expect_err("over the limit");
        assert_eq!(
            err,
            FrameError::TooLarge {
                len: 1025,
                max: 1024
            }
        );
        assert_eq!(err.code(), crate::ErrorCode::FrameTooLarge);
    }

    #[test]
    fn encoding_an_oversized_message_fails_before_sending() {
        let req = Request::Login(crate::request::Login {
            username: UserName::parse("alice").expect("valid"),
            password: Password::new("x".repeat(2000)),
        });
        assert!(matches!(
            encode(&req, 1000),
            Err(FrameError::TooLarge { max: 1000, .. })
        ));
    }

    #[test]
    fn a_truncated_frame_is_reported_at_end_of_stream() {
        let bytes = encode(&hello(), MAX_CONTROL_FRAME_BYTES).expect("encodes");
        for cut in 1..bytes.len() {
            let err = decode_frame::<Request>(&bytes[..cut], MAX_CONTROL_FRAME_BYTES)
                .expect_err("truncated");
            assert!(
                matches!(err, FrameError::Truncated { received, .. } if received == cut),
                "cut at {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn malformed_messagepack_is_rejected_with_a_reason() {
        let body = [0xc1u8, 0xff, 0x00]; // 0xc1 is never valid MessagePack
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        let err = decode_frame::<Request>(&frame, MAX_CONTROL_FRAME_BYTES).expect_err("bad");
        assert!(matches!(err, FrameError::Malformed { .. }), "{err:?}");
        assert_eq!(err.code(), crate::ErrorCode::Malformed);
    }

    #[test]
    fn valid_messagepack_of_the_wrong_shape_is_malformed() {
        let frame = encode(&vec![1u32, 2, 3], MAX_CONTROL_FRAME_BYTES).expect("encodes");
        let err = decode_frame::<Request>(&frame, MAX_CONTROL_FRAME_BYTES).expect_err("bad");
        assert!(matches!(err, FrameError::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn trailing_garbage_after_a_frame_is_reported() {
        let mut bytes = encode(&hello(), MAX_CONTROL_FRAME_BYTES).expect("encodes");
        bytes.extend_from_slice(&[0, 0]);
        assert!(matches!(
            decode_frame::<Request>(&bytes, MAX_CONTROL_FRAME_BYTES),
            Err(FrameError::Truncated { .. })
        ));
    }
}
