//! Reading and writing whole frames on quinn streams.

use uchat_wire::FrameError;
use uchat_wire::frame::FrameDecoder;

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
}

/// Reads exactly one frame's body, refusing bodies over `max_body_bytes` as soon as the
/// header arrives.
pub(super) async fn read_frame(
    recv: &mut quinn::RecvStream,
    max_body_bytes: usize,
) -> Result<Vec<u8>, ReadFrameError> {
    let mut decoder = FrameDecoder::new(max_body_bytes);
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0usize;
    loop {
        if let Some(body) = decoder.next_frame()? {
            return Ok(body);
        }
        let want = decoder.wanted().min(buf.len());
        match recv.read(&mut buf[..want]).await? {
            Some(n) => {
                received += n;
                decoder.push(&buf[..n])?;
            }
            None if received == 0 => return Err(ReadFrameError::Empty),
            None => {
                decoder.finish()?;
                return Err(ReadFrameError::Empty);
            }
        }
    }
}
