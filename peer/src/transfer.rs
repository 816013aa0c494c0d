//! Moving a file's ciphertext to and from the relay, chunk by chunk, on a stream of its
//! own ([`RelayLink::transfer`]).
//!
//! Upload: the file is read and sealed one 64 KiB chunk at a time (each its own random IV
//! and tag, see [`crate::crypto::chunk`]) from the chunk the relay asks for, so a broken
//! upload resumes where the relay's disk stopped. Download: every chunk's tag is checked
//! before it is decrypted and written; the plaintext goes to a partial file that grows
//! chunk by chunk, so a broken download resumes after the last chunk written, and the
//! caller checks the whole file's MD5 before it is shown as complete.
//!
//! Nothing here knows where the key travels or what the file is called.

use std::path::Path;
use uchat_wire::{reply, request};

use uchat_wire::msg::file::{
    FILE_CHUNK_PLAINTEXT_BYTES, FILE_CHUNK_SEALED_BYTES, file_chunks, sealed_file_bytes,
};
use uchat_wire::{FileAccess, FileId, UserName};

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
        /// The file being sent, the partial or saved download, or the folder saved into.
        path: std::path::PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file being sent changed size while it was read.
    #[error("{} changed while it was being sent (it is no longer {expected} bytes); send it again", path.display())]
    Changed {
        /// The file being sent, as the user named it.
        path: std::path::PathBuf,
        /// The size it had.
        expected: u64,
    },
    /// A chunk from the relay failed its integrity check.
    #[error(
        "the file failed its integrity check at chunk {index}: the relay's copy is damaged or was tampered with; nothing was kept"
    )]
    Integrity {
        /// The failed chunk's index in the file, from 0; the partial file is deleted.
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
    /// The relay says someone other than the message's sender uploaded the file.
    #[error(
        "the file was uploaded by {uploader}, not by {sender} who sent the message naming it: it was not kept"
    )]
    NotTheSender {
        /// Who uploaded it.
        uploader: UserName,
        /// Who sent the message.
        sender: UserName,
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
    /// For a download: who must have uploaded it (the sender of the message that named
    /// it); the relay says who did.
    pub uploader: Option<&'a UserName>,
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

/// Chunks in flight between the thread that reads or writes the disk (and seals or opens
/// them) and the stream: enough to keep both cores busy, little memory (4 MiB).
const PIPELINE_CHUNKS: usize = 64;

/// Uploads the file at `path` as `spec`, resuming where the relay's copy stops; returns
/// what moved and the MD5 of the whole file's plaintext (the part already on the relay is
/// read again to hash it). Reading and sealing run on a blocking thread while the stream
/// is written, so the two cores share the work. `progress(done, total)` is called in bytes
/// of ciphertext.
pub async fn upload(
    link: &RelayLink,
    path: &Path,
    spec: FileSpec<'_>,
    access: FileAccess,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<(Moved, Vec<u8>), TransferError> {
    let FileSpec {
        id: file,
        key,
        plain_size,
        ..
    } = spec;
    let total = sealed_file_bytes(plain_size);
    let request = request::UploadFile {
        file,
        size: total,
        access,
    };
    let (mut send, mut recv, ready) = link.transfer(request).await?;
    let offset = ready.offset;
    progress(offset, total);
    let first = offset.min(total) / FILE_CHUNK_SEALED_BYTES;
    let (tx, mut rx) = tokio::sync::mpsc::channel(PIPELINE_CHUNKS);
    let producer = {
        let (path, key) = (path.to_path_buf(), key.clone());
        tokio::task::spawn_blocking(move || seal_chunks(&path, file, &key, plain_size, first, tx))
    };
    let mut sent = 0u64;
    let mut stream_failure = None;
    while let Some(sealed) = rx.recv().await {
        if let Err(e) = send.write_all(&sealed).await {
            stream_failure = Some(e);
            break;
        }
        sent += sealed.len() as u64;
        progress(offset + sent, total);
    }
    drop(rx);
    let md5 = producer
        .await
        .map_err(|e| join_error(e, "a cancelled read"))??;
    if let Some(e) = stream_failure {
        return Err(stream_error(e));
    }
    send.finish().map_err(stream_error)?;
    link.read_final::<reply::Uploaded>(&mut recv, "upload_file")
        .await?;
    Ok((
        Moved {
            bytes: sent,
            resumed_at: offset,
            total,
        },
        md5,
    ))
}

/// The blocking half of an upload: hashes the chunks before `first`, then reads, hashes
/// and seals the rest into `tx`; returns the whole file's MD5. Stops early (still hashing
/// nothing more) if the stream side went away.
fn seal_chunks(
    path: &Path,
    file: FileId,
    key: &FileKey,
    plain_size: u64,
    first: u64,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
) -> Result<Vec<u8>, TransferError> {
    use md5::Digest;
    use std::io::Read;
    let mut input = std::fs::File::open(path).map_err(io("cannot open", path))?;
    let mut hash = md5::Md5::new();
    let mut plain = vec![0u8; FILE_CHUNK_PLAINTEXT_BYTES as usize];
    for index in 0..file_chunks(plain_size) {
        let want = (plain_size - index * FILE_CHUNK_PLAINTEXT_BYTES).min(FILE_CHUNK_PLAINTEXT_BYTES)
            as usize;
        input
            .read_exact(&mut plain[..want])
            .map_err(|_| TransferError::Changed {
                path: path.to_path_buf(),
                expected: plain_size,
            })?;
        hash.update(&plain[..want]);
        if index >= first {
            let sealed = chunk::encrypt_chunk_random_iv(key, &file.0, index, &plain[..want])?;
            if tx.blocking_send(sealed).is_err() {
                break;
            }
        }
    }
    Ok(hash.finalize().to_vec())
}

/// The sealed length of chunk `index` of a file whose ciphertext is `total` bytes.
fn sealed_chunk_len(index: u64, chunks: u64, total: u64) -> u64 {
    if index + 1 < chunks {
        FILE_CHUNK_SEALED_BYTES
    } else {
        total - index * FILE_CHUNK_SEALED_BYTES
    }
}

/// Records how many chunks a partial download holds, after each sync.
pub type Checkpoint = Box<dyn FnMut(u64) + Send>;

/// Downloads `spec` into the partial file `part`, after the `verified` chunks it holds
/// already (anything past them, or past what the file really holds, is cut off); returns
/// what moved and the MD5 of the whole partial file (the part it held before is read again
/// to hash it). The partial file is opened only once the relay has said yes, never through
/// a symbolic link. Each chunk's tag and length are checked before it is decrypted and
/// written, on a blocking thread while the stream is read. `checkpoint(chunks)` is called
/// after each sync with how many chunks the partial file now holds; `progress(done,
/// total)` in bytes of ciphertext. On an integrity failure the partial file is deleted.
pub async fn download(
    link: &RelayLink,
    spec: FileSpec<'_>,
    part: &Path,
    verified: u64,
    checkpoint: Checkpoint,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<(Moved, Vec<u8>), TransferError> {
    let FileSpec {
        id: file,
        key,
        plain_size,
        uploader,
    } = spec;
    let total = sealed_file_bytes(plain_size);
    let chunks = file_chunks(plain_size);
    let verified = verified.min(chunks).min(held_chunks(part));
    let offset = verified * FILE_CHUNK_SEALED_BYTES;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(PIPELINE_CHUNKS);
    let job = OpenJob {
        file,
        plain_size,
        verified,
    };
    let stream = if verified < chunks {
        Some(open_download(link, file, offset, total, uploader).await?)
    } else {
        None
    };
    let writer = {
        let (part, key) = (part.to_path_buf(), key.clone());
        tokio::task::spawn_blocking(move || open_chunks(&part, &key, job, rx, checkpoint))
    };
    let received = async {
        let Some((_send, recv)) = stream else {
            return Ok(0);
        };
        receive_chunks(recv, plain_size, verified, &tx, progress).await
    }
    .await;
    drop(tx);
    let written = writer
        .await
        .map_err(|e| join_error(e, "a cancelled write"))?;
    match (written, received) {
        // An integrity failure is the answer, whatever the stream did after.
        (Err(e @ TransferError::Integrity { .. }), _) => Err(e),
        (_, Err(e)) => Err(e),
        (Err(e), Ok(_)) => Err(e),
        (Ok(md5), Ok(fetched)) => Ok((
            Moved {
                bytes: fetched,
                resumed_at: offset,
                total,
            },
            md5,
        )),
    }
}

/// Asks the relay for `file`'s ciphertext from `offset` on; its answer must give the
/// `total` length the message implies and, if the relay names one, the `uploader`
/// expected. Returns the transfer's streams.
async fn open_download(
    link: &RelayLink,
    file: FileId,
    offset: u64,
    total: u64,
    uploader: Option<&UserName>,
) -> Result<(quinn::SendStream, quinn::RecvStream), TransferError> {
    let request = request::DownloadFile { file, offset };
    let (send, recv, ready) = link.transfer(request).await?;
    let reply::DownloadReady { size, owner } = ready;
    if size != total {
        return Err(TransferError::WrongLength {
            expected: total,
            got: size,
        });
    }
    if let (Some(expected), Some(owner)) = (uploader, owner)
        && expected != &owner
    {
        return Err(TransferError::NotTheSender {
            uploader: owner,
            sender: expected.clone(),
        });
    }
    Ok((send, recv))
}

/// Reads the sealed chunks after the first `verified` of a file of `plain_size` bytes from
/// `recv` (which starts right after them) and hands each to the writer through `tx`,
/// reporting `progress`; returns the bytes fetched. Stops early if the writer stopped
/// (its error says why); a stream that ends early is [`TransferError::Truncated`].
async fn receive_chunks(
    mut recv: quinn::RecvStream,
    plain_size: u64,
    verified: u64,
    tx: &tokio::sync::mpsc::Sender<Vec<u8>>,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<u64, TransferError> {
    let total = sealed_file_bytes(plain_size);
    let chunks = file_chunks(plain_size);
    let offset = verified * FILE_CHUNK_SEALED_BYTES;
    progress(offset, total);
    let mut fetched = 0u64;
    for index in verified..chunks {
        let mut sealed = vec![0u8; sealed_chunk_len(index, chunks, total) as usize];
        if recv.read_exact(&mut sealed).await.is_err() {
            return Err(TransferError::Truncated {
                expected: total,
                got: offset + fetched,
            });
        }
        fetched += sealed.len() as u64;
        if tx.send(sealed).await.is_err() {
            break; // the writer stopped: its error says why
        }
        progress(offset + fetched, total);
    }
    Ok(fetched)
}

/// A blocking half of a transfer that did not finish: it panicked, or it was cancelled
/// (`cancelled` says while doing what).
fn join_error(e: tokio::task::JoinError, cancelled: &'static str) -> TransferError {
    TransferError::Unexpected(if e.is_panic() { "a panic" } else { cancelled })
}

/// How many whole chunks the partial file at `part` holds (0 if there is none).
fn held_chunks(part: &Path) -> u64 {
    std::fs::symlink_metadata(part)
        .ok()
        .filter(|m| m.is_file())
        .map_or(0, |m| m.len() / FILE_CHUNK_PLAINTEXT_BYTES)
}

/// Opens (or makes) a partial download, never through a symbolic link.
fn open_partial(part: &Path) -> Result<std::fs::File, TransferError> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).read(true).write(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    options.open(part).map_err(io("cannot write", part))
}

/// What the blocking half of a download works on.
struct OpenJob {
    file: FileId,
    plain_size: u64,
    verified: u64,
}

/// The blocking half of a download: trims the partial file to its verified chunks, hashes
/// them, then opens, writes and hashes each chunk from `rx`, syncing and checkpointing every
/// [`CHUNKS_PER_CHECKPOINT`]; returns the MD5 once the last chunk is in (or an error; on an
/// integrity failure the partial file is deleted).
fn open_chunks(
    part: &Path,
    key: &FileKey,
    job: OpenJob,
    mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    mut checkpoint: Checkpoint,
) -> Result<Vec<u8>, TransferError> {
    use md5::Digest;
    use std::io::{Read, Write};
    let OpenJob {
        file,
        plain_size,
        verified,
    } = job;
    let chunks = file_chunks(plain_size);
    let mut out = open_partial(part)?;
    out.set_len(verified * FILE_CHUNK_PLAINTEXT_BYTES)
        .map_err(io("cannot write", part))?;
    let mut hash = md5::Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = out.read(&mut buf).map_err(io("cannot read", part))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    let mut index = verified;
    let mut unsynced = false;
    while index < chunks {
        let Some(sealed) = rx.blocking_recv() else {
            // The stream ended early: keep what is written for the next run.
            out.sync_data().map_err(io("cannot write", part))?;
            checkpoint(index);
            return Err(TransferError::Truncated {
                expected: chunks,
                got: index,
            });
        };
        let expected = (plain_size - index * FILE_CHUNK_PLAINTEXT_BYTES)
            .min(FILE_CHUNK_PLAINTEXT_BYTES) as usize;
        let plain = match chunk::decrypt_chunk(key, &file.0, index, &sealed) {
            Ok(plain) if plain.len() == expected => plain,
            Ok(_)
            | Err(
                ChunkError::BadTag { .. }
                | ChunkError::BadPadding { .. }
                | ChunkError::TooShort { .. },
            ) => {
                drop(out);
                let _ = std::fs::remove_file(part);
                return Err(TransferError::Integrity { index });
            }
            Err(e) => return Err(e.into()),
        };
        out.write_all(&plain).map_err(io("cannot write", part))?;
        hash.update(&plain);
        index += 1;
        unsynced = true;
        if index % CHUNKS_PER_CHECKPOINT == 0 {
            out.sync_data().map_err(io("cannot write", part))?;
            checkpoint(index);
            unsynced = false;
        }
    }
    if unsynced || verified == chunks {
        out.sync_data().map_err(io("cannot write", part))?;
    }
    checkpoint(chunks);
    Ok(hash.finalize().to_vec())
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
