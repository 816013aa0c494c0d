//! Reading and writing whole frames on quinn streams.

use uchat_wire::FrameError;
use uchat_wire::frame::FrameDecoder;

use super::budget::{Reserved, StreamBudget};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadFrameError {
    /// The bytes were not a valid frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream ended before any byte arrived.
    #[error("stream ended before a frame")]
    Empty,
    /// The stream failed.
    #[error("stream failed: {0}")]
    Read(#[from] quinn::ReadError),
    /// The frame did not arrive in time.
    #[error("no complete frame within {0:?}")]
    TimedOut(std::time::Duration),
    /// The relay is shutting down.
    #[error("the relay is shutting down")]
    Closed,
}

/// Reads exactly one frame's body, refusing bodies over `max_body_bytes` as soon as the
/// header arrives, and reserving the body's length from `budget` before reading it; the
/// reservation comes back with the body.
pub(super) async fn read_frame(
    recv: &mut quinn::RecvStream,
    max_body_bytes: usize,
    budget: &StreamBudget,
) -> Result<(Vec<u8>, Reserved), ReadFrameError> {
    let mut decoder = FrameDecoder::new(max_body_bytes);
    let mut reserved = None;
    let mut received = 0usize;
    loop {
        if reserved.is_none()
            && let Some(len) = decoder.announced_body_len()
        {
            reserved = Some(
                budget
                    .reserve(len)
                    .await
                    .map_err(|_| ReadFrameError::Closed)?,
            );
        }
        if let Some(body) = decoder.next_frame()? {
            let reserved = match reserved {
                Some(reserved) => reserved,
                None => budget
                    .reserve(0)
                    .await
                    .map_err(|_| ReadFrameError::Closed)?,
            };
            return Ok((body, reserved));
        }
        // Never past the frame in progress: the header alone first, so the body's length
        // is reserved before any of it is read.
        match recv.read_chunk(decoder.wanted(), true).await? {
            Some(chunk) => {
                received += chunk.bytes.len();
                decoder.push(&chunk.bytes)?;
            }
            None if received == 0 => return Err(ReadFrameError::Empty),
            None => {
                decoder.finish()?;
                return Err(ReadFrameError::Empty);
            }
        }
    }
}
