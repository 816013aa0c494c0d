//! Moving a file's ciphertext to and from the relay, chunk by chunk, on a stream of its
//! own ([`RelayLink::open_transfer`]).
//!
//! Upload: the file is read and sealed one 64 KiB chunk at a time (each its own random IV
//! and tag, see [`crate::crypto::chunk`]) from the chunk the relay asks for, so a broken
//! upload resumes where the relay's disk stopped. Download: every chunk's tag is checked
//! before it is decrypted and written; the plaintext goes to a partial file that grows
//! chunk by chunk, so a broken download resumes after the last chunk written, and the
//! caller checks the whole file's MD5 before it is shown as complete.
//!
//! Nothing here knows where the key travels or what the file is called.

use std::io::SeekFrom;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use uchat_wire::msg::file::{
    FILE_CHUNK_PLAINTEXT_BYTES, FILE_CHUNK_SEALED_BYTES, file_chunks, sealed_file_bytes,
};
use uchat_wire::{FileAccess, FileId, Reply, Request};

use crate::connection::{ConnectionError, RelayLink};
use crate::crypto::chunk::{self, ChunkError, FileKey};

/// Chunks written between two syncs of a partial download (and checkpoints): 8 MiB.
const CHUNKS_PER_CHECKPOINT: u64 = 128;

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Talking to the relay failed (or it refused).
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// A local file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file being sent changed size while it was read.
    #[error("{} changed while it was being sent (it is no longer {expected} bytes); send it again", path.display())]
    Changed {
        /// The file.
        path: std::path::PathBuf,
        /// The size it had.
        expected: u64,
    },
    /// A chunk from the relay failed its integrity check.
    #[error(
        "the file failed its integrity check at chunk {index}: the relay's copy is damaged or was tampered with; nothing was kept"
    )]
    Integrity {
        /// The chunk.
        index: u64,
    },
    /// The relay's copy is not the length the message says.
    #[error(
        "the relay holds {got} bytes for this file, but the message says {expected}: it is not the file that was sent"
    )]
    WrongLength {
        /// What the message implies.
        expected: u64,
        /// What the relay said.
        got: u64,
    },
    /// The relay's stream ended early.
    #[error(
        "the relay's stream ended after {got} of {expected} bytes; run the command again to resume"
    )]
    Truncated {
        /// Bytes expected.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// The relay answered something unexpected.
    #[error("unexpected answer from the relay to {0}")]
    Unexpected(&'static str),
    /// The chunk cipher failed (no randomness).
    #[error(transparent)]
    Chunk(#[from] ChunkError),
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TransferError + 'a {
    move |source| TransferError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn stream_error(e: impl std::fmt::Display) -> TransferError {
    TransferError::Connection(ConnectionError::Unreachable {
        relay: "the relay".into(),
        reason: e.to_string(),
    })
}

/// The file a transfer moves: its id, key and plaintext length.
#[derive(Clone, Copy, Debug)]
pub struct FileSpec<'a> {
    /// The file's id (bound into every chunk's MAC).
    pub id: FileId,
    /// Its key.
    pub key: &'a FileKey,
    /// Its plaintext length.
    pub plain_size: u64,
}

/// What one run of a transfer moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved {
    /// Bytes of ciphertext sent or fetched in this run.
    pub bytes: u64,
    /// Bytes of ciphertext the relay (upload) or the partial file (download) had already.
    pub resumed_at: u64,
    /// The file's whole ciphertext length.
    pub total: u64,
}

/// Uploads the file at `path` as `spec`, resuming where the relay's copy stops.
/// `progress(done, total)` is called in bytes of ciphertext.
pub async fn upload(
    link: &RelayLink,
    path: &Path,
    spec: FileSpec<'_>,
    access: FileAccess,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Moved, TransferError> {
    let FileSpec {
        id: file,
        key,
        plain_size,
    } = spec;
    let total = sealed_file_bytes(plain_size);
    let request = Request::UploadFile {
        file,
        size: total,
        access,
    };
    let (mut send, mut recv, reply) = link.open_transfer(&request).await?;
    let Reply::UploadReady { offset } = reply else {
        return Err(TransferError::Unexpected("an upload"));
    };
    progress(offset, total);
    let chunks = file_chunks(plain_size);
    let first = offset / FILE_CHUNK_SEALED_BYTES;
    let mut sent = 0u64;
    if offset < total {
        let mut input = tokio::fs::File::open(path)
            .await
            .map_err(io("cannot open", path))?;
        input
            .seek(SeekFrom::Start(first * FILE_CHUNK_PLAINTEXT_BYTES))
            .await
            .map_err(io("cannot read", path))?;
        let mut plain = vec![0u8; FILE_CHUNK_PLAINTEXT_BYTES as usize];
        for index in first..chunks {
            let want = (plain_size - index * FILE_CHUNK_PLAINTEXT_BYTES)
                .min(FILE_CHUNK_PLAINTEXT_BYTES) as usize;
            input
                .read_exact(&mut plain[..want])
                .await
                .map_err(|_| TransferError::Changed {
                    path: path.to_path_buf(),
                    expected: plain_size,
                })?;
            let sealed = chunk::encrypt_chunk_random_iv(key, &file.0, index, &plain[..want])?;
            send.write_all(&sealed).await.map_err(stream_error)?;
            sent += sealed.len() as u64;
            progress(offset + sent, total);
        }
    }
    send.finish().map_err(stream_error)?;
    match link.read_reply(&mut recv).await? {
        Reply::Uploaded { .. } => Ok(Moved {
            bytes: sent,
            resumed_at: offset,
            total,
        }),
        _ => Err(TransferError::Unexpected("an upload")),
    }
}

/// The sealed length of chunk `index` of a file whose ciphertext is `total` bytes.
fn sealed_chunk_len(index: u64, chunks: u64, total: u64) -> u64 {
    if index + 1 < chunks {
        FILE_CHUNK_SEALED_BYTES
    } else {
        total - index * FILE_CHUNK_SEALED_BYTES
    }
}

/// Downloads `spec` into the partial file `part`, after the `verified` chunks it holds
/// already (anything past them is cut off).
/// `checkpoint(chunks)` is called after each sync with how many chunks the partial file now
/// holds, so a caller can record it; `progress(done, total)` in bytes of ciphertext. On an
/// integrity failure the partial file is deleted.
pub async fn download(
    link: &RelayLink,
    spec: FileSpec<'_>,
    part: &Path,
    verified: u64,
    checkpoint: &mut (dyn FnMut(u64) + Send),
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Moved, TransferError> {
    let FileSpec {
        id: file,
        key,
        plain_size,
    } = spec;
    let total = sealed_file_bytes(plain_size);
    let chunks = file_chunks(plain_size);
    let verified = verified.min(chunks);
    let offset = verified * FILE_CHUNK_SEALED_BYTES;
    let mut out = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(part)
        .await
        .map_err(io("cannot write", part))?;
    out.set_len(verified * FILE_CHUNK_PLAINTEXT_BYTES)
        .await
        .map_err(io("cannot write", part))?;
    out.seek(SeekFrom::End(0))
        .await
        .map_err(io("cannot write", part))?;
    if verified == chunks {
        return Ok(Moved {
            bytes: 0,
            resumed_at: total,
            total,
        });
    }
    let request = Request::DownloadFile { file, offset };
    let (_send, mut recv, reply) = link.open_transfer(&request).await?;
    let Reply::DownloadReady { size } = reply else {
        return Err(TransferError::Unexpected("a download"));
    };
    if size != total {
        return Err(TransferError::WrongLength {
            expected: total,
            got: size,
        });
    }
    progress(offset, total);
    let mut fetched = 0u64;
    let mut sealed = Vec::with_capacity(FILE_CHUNK_SEALED_BYTES as usize);
    for index in verified..chunks {
        let len = sealed_chunk_len(index, chunks, total) as usize;
        sealed.resize(len, 0);
        if let Err(e) = recv.read_exact(&mut sealed).await {
            out.sync_data().await.map_err(io("cannot write", part))?;
            checkpoint(index);
            tracing::debug!(error = %e, "download stream ended early");
            return Err(TransferError::Truncated {
                expected: total,
                got: offset + fetched,
            });
        }
        let plain = match chunk::decrypt_chunk(key, &file.0, index, &sealed) {
            Ok(plain) => plain,
            Err(
                ChunkError::BadTag { .. }
                | ChunkError::BadPadding { .. }
                | ChunkError::TooShort { .. },
            ) => {
                drop(out);
                let _ = tokio::fs::remove_file(part).await;
                return Err(TransferError::Integrity { index });
            }
            Err(e) => return Err(e.into()),
        };
        out.write_all(&plain)
            .await
            .map_err(io("cannot write", part))?;
        fetched += len as u64;
        progress(offset + fetched, total);
        if (index + 1) % CHUNKS_PER_CHECKPOINT == 0 {
            out.flush().await.map_err(io("cannot write", part))?;
            out.sync_data().await.map_err(io("cannot write", part))?;
            checkpoint(index + 1);
        }
    }
    out.flush().await.map_err(io("cannot write", part))?;
    out.sync_data().await.map_err(io("cannot write", part))?;
    checkpoint(chunks);
    Ok(Moved {
        bytes: fetched,
        resumed_at: offset,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_layout_matches_the_chunk_cipher() {
        assert_eq!(
            chunk::sealed_len(chunk::CHUNK_PLAINTEXT_BYTES) as u64,
            FILE_CHUNK_SEALED_BYTES
        );
        assert_eq!(
            chunk::CHUNK_PLAINTEXT_BYTES as u64,
            FILE_CHUNK_PLAINTEXT_BYTES
        );
        for size in [0u64, 1, 15, 16, 65_535, 65_536, 65_537, 1_000_000] {
            let chunks = file_chunks(size);
            let total = sealed_file_bytes(size);
            let by_chunk: u64 = (0..chunks)
                .map(|i| {
                    let plain = (size - (i * FILE_CHUNK_PLAINTEXT_BYTES).min(size))
                        .min(FILE_CHUNK_PLAINTEXT_BYTES);
                    chunk::sealed_len(plain as usize) as u64
                })
                .sum();
            assert_eq!(by_chunk, total, "size {size}");
            assert_eq!(
                sealed_chunk_len(chunks - 1, chunks, total),
                chunk::sealed_len((size - (chunks - 1) * FILE_CHUNK_PLAINTEXT_BYTES) as usize)
                    as u64
            );
        }
    }
}
