//! File transfers: an upload or a download takes a whole bidirectional stream. After the
//! request frame and the relay's first answer, raw ciphertext follows on the stream; the
//! relay stores it as it comes in `files/` in the data directory and never reads it for
//! anything but sending it on (it is encrypted end to end; the relay has no key).
//!
//! Upload: `UploadReady { offset }` (what is on disk already, at a chunk boundary), then the
//! peer's bytes from there to the end, synced to disk and recorded in the store every
//! [`COMMIT_EVERY_BYTES`] so a broken transfer resumes near where it stopped; once the last
//! byte is on disk the file is renamed into place, the folder is synced (so the new name
//! outlives a power cut), the file is marked complete, and the relay answers `Uploaded`. Download: `DownloadReady { size }`, then the bytes from the asked offset.
//!
//! One upload per file at a time: a new upload of a file another stream is still receiving
//! (a peer that lost its connection, or was killed, and runs again before the relay has
//! noticed) takes over: the old stream stops and records what it received, and the new one
//! resumes from there.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use uchat_wire::reply;

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use uchat_store::FileLimits;
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::msg::file::chunk_boundary;
use uchat_wire::{ErrorCode, FileAccess, FileId, Reply, Response, UserName};

use super::connection::{Connection, STREAM_ERROR_BAD_FRAME};
use super::requests::{Answer, fail};
use super::{RelayState, blocking, now_ms};

/// The folder in the data directory that holds files' ciphertext.
pub(crate) const FILES_DIR: &str = "files";

/// Bytes received between two syncs to disk (and records of progress): what a broken
/// upload may have to send again, at most.
const COMMIT_EVERY_BYTES: u64 = 8 << 20;

/// Bytes read from or written to a stream at a time.
const IO_BYTES: usize = 256 * 1024;

/// How long a new upload waits for the one it takes over to stop.
const TAKEOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The folder of files' ciphertext, and the uploads under way (each with the signal that
/// stops it).
pub(crate) struct FileDir {
    dir: PathBuf,
    uploading: Mutex<HashMap<FileId, Arc<tokio::sync::Notify>>>,
}

impl FileDir {
    /// The `files/` folder in `data_dir`, made if needed.
    pub(crate) fn open(data_dir: &Path) -> std::io::Result<Self> {
        let dir = data_dir.join(FILES_DIR);
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            uploading: Mutex::new(HashMap::new()),
        })
    }

    /// Where a complete file's ciphertext is.
    fn complete_path(&self, id: FileId) -> PathBuf {
        self.dir.join(id.to_string())
    }

    /// Where an upload under way writes.
    fn partial_path(&self, id: FileId) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }

    /// Whether an upload of `id` is streaming now.
    pub(crate) fn is_uploading(&self, id: FileId) -> bool {
        self.uploading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&id)
    }

    /// Makes the folder's entries durable: a file created or renamed in it is not on disk
    /// after a power cut until its folder is synced, however synced its bytes are.
    async fn sync_entries(&self) -> std::io::Result<()> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
            .await
            .map_err(std::io::Error::other)?
    }

    /// Deletes a file's ciphertext, complete or not (missing is fine).
    pub(crate) fn remove(&self, id: FileId) {
        for path in [self.complete_path(id), self.partial_path(id)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot delete a file")
                }
            }
        }
    }

    /// Claims `id` for one upload, stopping (and waiting for) one already streaming it;
    /// `None` if that one does not stop in time.
    async fn claim(self: &Arc<Self>, id: FileId) -> Option<UploadClaim> {
        let deadline = tokio::time::Instant::now() + TAKEOVER_WAIT;
        loop {
            {
                let mut uploading = self
                    .uploading
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                match uploading.get(&id) {
                    None => {
                        let stop = Arc::new(tokio::sync::Notify::new());
                        uploading.insert(id, stop.clone());
                        return Some(UploadClaim {
                            dir: self.clone(),
                            id,
                            stop,
                        });
                    }
                    Some(running) => running.notify_one(),
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// One upload's hold on its file id, released when dropped.
struct UploadClaim {
    dir: Arc<FileDir>,
    id: FileId,
    /// Notified when a newer upload of the same file takes over.
    stop: Arc<tokio::sync::Notify>,
}

impl Drop for UploadClaim {
    fn drop(&mut self) {
        self.dir
            .uploading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

fn file_limits(shared: &RelayState) -> FileLimits {
    FileLimits {
        max_file_bytes: shared.limits.max_file_bytes,
        quota_bytes: shared.limits.file_quota_bytes,
        retention_ms: u64::try_from(shared.limits.file_retention.as_millis()).unwrap_or(u64::MAX),
        max_files: shared.limits.max_files_per_user,
    }
}

fn io_failure(what: &str, e: &std::io::Error) -> uchat_wire::ErrorReply {
    tracing::error!(error = %e, "{what}");
    fail(
        ErrorCode::Internal,
        "the relay could not store or read the file; try again",
    )
}

/// Writes one answer frame on a transfer stream.
async fn answer(send: &mut quinn::SendStream, answer: Answer) -> Result<(), quinn::WriteError> {
    let response = match answer {
        Ok(reply) => Response::Ok(reply),
        Err(error) => Response::Error(error),
    };
    match frame::encode(&response, MAX_CONTROL_FRAME_BYTES) {
        Ok(bytes) => send.write_all(&bytes).await,
        Err(e) => {
            tracing::error!(error = %e, "answer does not fit in a frame");
            Ok(())
        }
    }
}

/// The logged-in user, or the refusal to send.
fn user_of(connection: &Connection) -> Result<UserName, uchat_wire::ErrorReply> {
    connection
        .user()
        .ok_or_else(|| fail(ErrorCode::NotAuthenticated, "log in first"))
}

/// What an upload request says.
pub(super) struct UploadRequest {
    pub(super) file: FileId,
    pub(super) size: u64,
    pub(super) access: FileAccess,
}

/// Serves one upload stream to its end.
pub(super) async fn upload(
    connection: Arc<Connection>,
    shared: Arc<RelayState>,
    request: UploadRequest,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let outcome = receive(&connection, &shared, request, &mut send, &mut recv).await;
    if let Err(error) = &outcome {
        tracing::debug!(remote = %connection.remote, code = %error.code, message = %error.message, "upload refused");
        let _ = recv.stop(STREAM_ERROR_BAD_FRAME.into());
    }
    let _ = answer(&mut send, outcome).await;
    let _ = send.finish();
    let _ = send.stopped().await;
}

/// The upload itself: checks, the first answer, the bytes, the commit. Returns the final
/// answer.
async fn receive(
    connection: &Connection,
    shared: &Arc<RelayState>,
    request: UploadRequest,
    send: &mut quinn::SendStream,
    recv: &mut quinn::RecvStream,
) -> Answer {
    let user = user_of(connection)?;
    let UploadRequest { file, size, access } = request;
    if let FileAccess::Users { users } = &access
        && users.len() >= shared.limits.max_group_members
    {
        return Err(fail(
            ErrorCode::TooLarge,
            format!(
                "a file may be for at most {} users; send it to a group instead",
                shared.limits.max_group_members - 1
            ),
        ));
    }
    // Only the uploader may take over a stream of this file (see `FileDir::claim`).
    let store = shared.store.clone();
    if let Some(existing) = blocking(move || store.file(file)).await?
        && (existing.owner != user || existing.size != size)
    {
        return Err(fail(
            ErrorCode::InvalidInput,
            format!("file id {file} is taken by another upload; choose another id"),
        ));
    }
    let Some(claim) = shared.files.claim(file).await else {
        return Err(fail(
            ErrorCode::FileIncomplete,
            "this file is being uploaded on another connection; try again when it stops",
        ));
    };
    let store = shared.store.clone();
    let limits = file_limits(shared);
    let owner = user.clone();
    let held = blocking(move || store.begin_upload(&owner, file, size, &access, now_ms(), &limits))
        .await?;
    if held >= size && shared.files.complete_path(file).exists() {
        // Complete on disk (perhaps the relay stopped before recording it): say so.
        let store = shared.store.clone();
        let limits = file_limits(shared);
        blocking(move || store.complete_upload(file, &limits)).await?;
        answer(
            send,
            Ok(Reply::UploadReady(reply::UploadReady { offset: size })),
        )
        .await
        .map_err(|_| fail(ErrorCode::Internal, "the stream closed"))?;
        return Ok(Reply::Uploaded(reply::Uploaded { size }));
    }
    let offset = chunk_boundary(held.min(size));
    let partial = shared.files.partial_path(file);
    let fresh = !tokio::fs::try_exists(&partial).await.unwrap_or(false);
    let mut out = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&partial)
        .await
        .map_err(|e| io_failure("cannot open an upload file", &e))?;
    if fresh {
        // The store will count bytes of this file as held: its name must outlive a crash.
        shared
            .files
            .sync_entries()
            .await
            .map_err(|e| io_failure("cannot sync the files folder", &e))?;
    }
    out.set_len(offset)
        .await
        .map_err(|e| io_failure("cannot trim an upload file", &e))?;
    out.seek(SeekFrom::Start(offset))
        .await
        .map_err(|e| io_failure("cannot seek in an upload file", &e))?;
    answer(send, Ok(Reply::UploadReady(reply::UploadReady { offset })))
        .await
        .map_err(|_| fail(ErrorCode::Internal, "the stream closed"))?;

    let mut position = offset;
    let mut committed = offset;
    let mut buf = vec![0u8; IO_BYTES];
    loop {
        let read = tokio::select! {
            // Priority: a newer upload of this file takes over.
            biased;
            () = claim.stop.notified() => {
                tracing::debug!(%file, position, "upload taken over by a newer stream");
                break;
            }
            read = recv.read(&mut buf) => read,
        };
        let n = match read {
            Ok(Some(n)) => n,
            Ok(None) => break,
            // The peer went away: keep what arrived for the next try.
            Err(e) => {
                tracing::debug!(%file, error = %e, position, "upload stream broke");
                break;
            }
        };
        if position + n as u64 > size {
            return Err(fail(
                ErrorCode::ProtocolViolation,
                format!("the upload is longer than the announced {size} bytes"),
            ));
        }
        out.write_all(&buf[..n])
            .await
            .map_err(|e| io_failure("cannot write an upload file", &e))?;
        position += n as u64;
        shared.metrics.file_bytes_received.inc_by(n as u64);
        if position - committed >= COMMIT_EVERY_BYTES {
            committed = commit(shared, &mut out, file, position).await?;
        }
    }
    commit(shared, &mut out, file, position).await?;
    if position < size {
        return Err(fail(
            ErrorCode::FileIncomplete,
            format!("the upload stopped at {position} of {size} bytes; send it again to resume"),
        ));
    }
    drop(out);
    tokio::fs::rename(&partial, shared.files.complete_path(file))
        .await
        .map_err(|e| io_failure("cannot finish an upload file", &e))?;
    // Synced before the store records the file complete and the uploader hears so.
    shared
        .files
        .sync_entries()
        .await
        .map_err(|e| io_failure("cannot sync the files folder", &e))?;
    let store = shared.store.clone();
    let limits = file_limits(shared);
    blocking(move || store.complete_upload(file, &limits)).await?;
    shared.metrics.files_uploaded.inc();
    tracing::debug!(%user, %file, size, resumed_at = offset, "file uploaded");
    Ok(Reply::Uploaded(reply::Uploaded { size }))
}

/// Syncs what was written and records it; returns the new committed length.
async fn commit(
    shared: &RelayState,
    out: &mut tokio::fs::File,
    file: FileId,
    position: u64,
) -> Result<u64, uchat_wire::ErrorReply> {
    out.flush()
        .await
        .map_err(|e| io_failure("cannot write an upload file", &e))?;
    out.sync_data()
        .await
        .map_err(|e| io_failure("cannot sync an upload file", &e))?;
    let store = shared.store.clone();
    let limits = file_limits(shared);
    blocking(move || store.record_upload_progress(file, position, now_ms(), &limits)).await?;
    Ok(position)
}

/// Serves one download stream.
pub(super) async fn download(
    connection: Arc<Connection>,
    shared: Arc<RelayState>,
    file: FileId,
    offset: u64,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let _ = recv.stop(0u32.into());
    match open_download(&connection, &shared, file, offset).await {
        Ok((mut input, size, owner)) => {
            if answer(
                &mut send,
                Ok(Reply::DownloadReady(reply::DownloadReady {
                    size,
                    owner: Some(owner),
                })),
            )
            .await
            .is_err()
            {
                return;
            }
            stream_out(&shared, file, &mut input, &mut send).await;
        }
        Err(error) => {
            tracing::debug!(remote = %connection.remote, code = %error.code, "download refused");
            let _ = answer(&mut send, Err(error)).await;
        }
    }
    let _ = send.finish();
    let _ = send.stopped().await;
}

/// Writes a file's ciphertext from where `input` stands to its end.
async fn stream_out(
    shared: &RelayState,
    file: FileId,
    input: &mut tokio::fs::File,
    send: &mut quinn::SendStream,
) {
    let mut buf = vec![0u8; IO_BYTES];
    loop {
        let n = match input.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) => {
                tracing::error!(%file, error = %e, "cannot read a file");
                let _ = send.reset(STREAM_ERROR_BAD_FRAME.into());
                return;
            }
        };
        if send.write_all(&buf[..n]).await.is_err() {
            return; // the peer went away; it resumes later
        }
        shared.metrics.file_bytes_sent.inc_by(n as u64);
    }
}

async fn open_download(
    connection: &Connection,
    shared: &Arc<RelayState>,
    file: FileId,
    offset: u64,
) -> Result<(tokio::fs::File, u64, UserName), uchat_wire::ErrorReply> {
    let user = user_of(connection)?;
    let store = shared.store.clone();
    let record = blocking(move || store.file_for_download(&user, file, now_ms())).await?;
    if offset > record.size || offset != chunk_boundary(offset) {
        return Err(fail(
            ErrorCode::InvalidInput,
            format!(
                "offset {offset} is not a chunk boundary within the file's {} bytes",
                record.size
            ),
        ));
    }
    let mut input = tokio::fs::File::open(shared.files.complete_path(file))
        .await
        .map_err(|e| io_failure("cannot open a file", &e))?;
    input
        .seek(SeekFrom::Start(offset))
        .await
        .map_err(|e| io_failure("cannot seek in a file", &e))?;
    Ok((input, record.size, record.owner))
}
