//! Files on the client: sending a file or picture to a contact or a group, and saving a
//! received one, both resumable across runs.
//!
//! Sending: the file's MD5, a thumbnail (for pictures), a fresh key and id are recorded as a
//! pending upload before a byte goes out, so a run cut off halfway resumes with the same
//! key and id where the relay's copy stops; once the relay has the whole file, the file
//! message is committed to history and outbox in the same transaction that marks the
//! pending upload as sent as that message, and goes out like any message; a run of the same
//! command after an interruption finds the message instead of sending the file again
//! ([`Repeat::Finish`]). Saving: the file name from the message
//! is made safe ([`crate::filename`]); the plaintext grows in a hidden partial file in the
//! destination folder, each chunk checked before it is written, its progress recorded, and
//! only once the whole file's MD5 matches does it take its name.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;
use uchat_wire::request;

use tokio::io::AsyncReadExt;
use uchat_wire::{FileAccess, FileId, GroupId, MessageId, UserName};

use super::group::Draft;
use super::{Client, ClientError, now_ms};
use crate::body::{Body, MAX_FILE_NAME_BYTES};
use crate::crypto::chunk::FileKey;
use crate::filename::{free_name_in, safe_file_name};
use crate::store::{ConversationId, EntryStatus, FileRef, PendingDownload, PendingUpload};
use crate::thumbnail::{image_mime, thumbnail_of};
use crate::transfer::{self, FileSpec, Moved, TransferError};

/// Pictures up to this size get a thumbnail (decoding a bigger one costs too much memory).
const MAX_THUMBNAIL_SOURCE_BYTES: u64 = 64 << 20;

/// Where a file goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileTarget {
    /// A friend, the only user besides the sender who may fetch the file.
    User(UserName),
    /// A group's members.
    Group(GroupId),
}

/// What [`Files::send`] does when an earlier run already made a message of the same
/// file (the same path, size and modification time, under the same name) for the same
/// chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// Finish what that run started: its message is sent if it still waits, and a message
    /// that went out already is reported instead of sent twice (a command run again after
    /// an interruption, as the CLI's is).
    Finish,
    /// Send the file as a new message (the app, where choosing a file twice means twice).
    SendAgain,
}

/// The key a pending upload is recorded under: the chat, the file's canonical path, size
/// and modification time, and the name it is sent as. The name is part of it: the same file
/// sent again under another name is another message, not a rerun.
pub fn pending_upload_key(
    conversation: &ConversationId,
    canonical: &Path,
    size: u64,
    modified_ms: u64,
    name: &str,
) -> String {
    format!(
        "{}\u{0}{}\u{0}{size}\u{0}{modified_ms}\u{0}{name}",
        conversation.as_str(),
        canonical.display()
    )
}

/// How long [`Repeat::Finish`] remembers a file it sent: what a rerun of an interrupted
/// command may find (a week, as the relay remembers a message id against re-sends).
pub const REMEMBER_SENT_FILES_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// A sent file.
#[derive(Clone, Debug)]
pub struct SentFile {
    /// The file message's id.
    pub message: MessageId,
    /// The file's id (what recipients download).
    pub file: FileRef,
    /// What this run uploaded.
    pub moved: Moved,
    /// True if an earlier run had sent this message already and this run sent nothing.
    pub earlier: bool,
}

impl SentFile {
    /// A file an earlier run uploaded, as message `message`.
    fn of_earlier_run(message: MessageId, file: FileRef, earlier: bool) -> Self {
        let total = uchat_wire::msg::file::sealed_file_bytes(file.size);
        Self {
            message,
            file,
            moved: Moved {
                bytes: 0,
                resumed_at: total,
                total,
            },
            earlier,
        }
    }
}

/// What [`Files::send`] does after looking for an earlier run of the same send.
enum Earlier {
    /// The earlier run's message went out, before or just now: this is the answer.
    Done(SentFile),
    /// Upload the file: resuming this pending upload, or (`None`) as a new one.
    Upload(Option<PendingUpload>),
}

/// The name a file at `path` is sent as: `name` if given, else the file's own name;
/// refused if empty or too long for a file message.
fn name_to_send(path: &Path, name: Option<&str>) -> Result<String, ClientError> {
    let name = match name {
        Some(name) => name.to_string(),
        None => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into()),
    };
    if name.is_empty() || name.len() > MAX_FILE_NAME_BYTES {
        return Err(ClientError::InvalidInput(format!(
            "a file name must be 1 to {MAX_FILE_NAME_BYTES} bytes"
        )));
    }
    Ok(name)
}

/// A file's modification time in ms since the Unix epoch (0 where the system has none).
fn modified_ms(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

/// The folder `dest`, made if needed, as a canonical path; refused if it is a file.
async fn folder_to_save_into(dest: &Path) -> Result<PathBuf, ClientError> {
    if dest.exists() && !dest.is_dir() {
        return Err(ClientError::InvalidInput(format!(
            "{} is a file; name a folder to save into",
            dest.display()
        )));
    }
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(io_error("cannot make the folder", dest))?;
    tokio::fs::canonicalize(dest)
        .await
        .map_err(io_error("cannot open the folder", dest))
}

/// A saved file.
#[derive(Clone, Debug)]
pub struct SavedFile {
    /// Where it is now.
    pub path: PathBuf,
    /// The file as its message described it.
    pub file: FileRef,
    /// What this run downloaded.
    pub moved: Moved,
}

/// A progress callback: bytes done and in all (of ciphertext).
pub type ProgressFn<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

fn io_error<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ClientError + 'a {
    move |source| {
        ClientError::Transfer(TransferError::Io {
            what,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The metadata of the regular file at `path`; a clear error for anything else.
pub(super) async fn file_metadata(path: &Path) -> Result<std::fs::Metadata, ClientError> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(io_error("cannot read", path))?;
    if !meta.is_file() {
        return Err(ClientError::InvalidInput(format!(
            "{} is not a file",
            path.display()
        )));
    }
    Ok(meta)
}

fn random_file_id() -> Result<FileId, ClientError> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|e| crate::crypto::password::KeyDerivationError::Random {
        reason: e.to_string(),
    })?;
    Ok(FileId(id))
}

/// The MIME type and thumbnail of the file at `path`, from its first bytes (and all of
/// it, for a picture).
async fn describe(path: &Path, size: u64) -> Result<(String, Option<FileThumb>), ClientError> {
    let mut head = vec![0u8; 64];
    let mut input = tokio::fs::File::open(path)
        .await
        .map_err(io_error("cannot open", path))?;
    let n = input
        .read(&mut head)
        .await
        .map_err(io_error("cannot read", path))?;
    let Some(mime) = image_mime(&head[..n]) else {
        return Ok(("application/octet-stream".into(), None));
    };
    if size > MAX_THUMBNAIL_SOURCE_BYTES {
        return Ok((mime.into(), None));
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(io_error("cannot read", path))?;
    let thumb = tokio::task::spawn_blocking(move || thumbnail_of(&bytes))
        .await
        .ok()
        .flatten()
        .map(|t| FileThumb {
            jpeg: t.jpeg,
            dimensions: (t.width, t.height),
        });
    Ok((mime.into(), thumb))
}

/// A new file to upload, `size` bytes at `path` named `name`: its type and thumbnail (for
/// a picture), a fresh id and key; the MD5 is added as it is sent.
pub(super) async fn new_file_ref(
    path: &Path,
    name: String,
    size: u64,
) -> Result<FileRef, ClientError> {
    let (mime, thumb) = describe(path, size).await?;
    let key = FileKey::generate().map_err(TransferError::Chunk)?;
    Ok(FileRef {
        file: random_file_id()?,
        name,
        size,
        mime,
        md5: Vec::new(),
        key: key.to_bytes().to_vec(),
        thumbnail: thumb.as_ref().map(|t| t.jpeg.clone()),
        dimensions: thumb.map(|t| t.dimensions),
        saved_to: None,
    })
}

struct FileThumb {
    jpeg: Vec<u8>,
    dimensions: (u32, u32),
}

/// Gives the checked partial file `part` its name in `dest`: `wanted` if free, else the
/// next free one. Never replaces anything (not even a dangling link): the name is taken by
/// a hard link, which fails if something is there, then the partial name goes.
async fn save_without_replacing(
    part: &Path,
    dest: &Path,
    safe: &str,
    wanted: &str,
) -> Result<PathBuf, ClientError> {
    let mut target = PathBuf::from(wanted);
    for _ in 0..100 {
        match tokio::fs::hard_link(part, &target).await {
            Ok(()) => {
                tokio::fs::remove_file(part)
                    .await
                    .map_err(io_error("cannot save", &target))?;
                return Ok(target);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                target = free_name_in(dest, safe);
            }
            // A file system without hard links: rename, once the name is seen free.
            Err(_) if tokio::fs::symlink_metadata(&target).await.is_err() => {
                tokio::fs::rename(part, &target)
                    .await
                    .map_err(io_error("cannot save", &target))?;
                return Ok(target);
            }
            Err(e) => return Err(io_error("cannot save", &target)(e)),
        }
    }
    Err(ClientError::InvalidInput(format!(
        "cannot find a free name for {safe} in {}",
        dest.display()
    )))
}

/// Files: sending, finding and downloading them (`client.files()`).
#[derive(Clone, Copy)]
pub struct Files<'a> {
    client: &'a Client,
}

impl Client {
    /// Files: sending, finding and downloading them.
    pub fn files(&self) -> Files<'_> {
        Files { client: self }
    }
}

impl Files<'_> {
    /// Sends the file at `path` to `target` as `name` (the file's own name by default):
    /// uploads it (resuming an upload a previous run started), then sends the file message.
    /// `repeat` says what to do if a previous run made the message already.
    pub async fn send(
        self,
        target: &FileTarget,
        path: &Path,
        name: Option<&str>,
        repeat: Repeat,
        progress: ProgressFn<'_>,
    ) -> Result<SentFile, ClientError> {
        let meta = file_metadata(path).await?;
        let name_override = name;
        let name = name_to_send(path, name)?;
        let (conversation, access) = self.destination(target)?;
        let size = meta.len();
        let modified_ms = modified_ms(&meta);
        let canonical = tokio::fs::canonicalize(path)
            .await
            .map_err(io_error("cannot read", path))?;
        let upload_key = pending_upload_key(&conversation, &canonical, size, modified_ms, &name);
        self.client
            .inner
            .store
            .forget_sent_uploads_before(now_ms().saturating_sub(REMEMBER_SENT_FILES_MS))?;
        let earlier = match self.earlier_upload(&upload_key, repeat).await? {
            Earlier::Done(sent) => return Ok(sent),
            Earlier::Upload(earlier) => earlier,
        };
        let pending = match earlier {
            Some(pending) => pending,
            None => {
                let pending = PendingUpload {
                    file: new_file_ref(path, name, size).await?,
                    path: canonical.display().to_string(),
                    modified_ms,
                    conversation: conversation.clone(),
                    created_ms: now_ms(),
                    sent_as: None,
                };
                self.client
                    .inner
                    .store
                    .put_pending_upload(&upload_key, &pending)?;
                pending
            }
        };
        let mut file = pending.file;
        if let Some(name) = name_override {
            // Not sent yet: a resumed upload takes the name given now.
            file.name = name.to_string();
        }
        let moved = self.upload(path, &mut file, access, progress).await?;
        let body = Body::File(file.clone());
        let message = self.send_file_message(target, body, upload_key).await?;
        Ok(SentFile {
            message,
            file,
            moved,
            earlier: false,
        })
    }

    /// The chat a file for `target` goes into, and who may fetch it from the relay; a file
    /// to this user themselves is refused.
    fn destination(self, target: &FileTarget) -> Result<(ConversationId, FileAccess), ClientError> {
        Ok(match target {
            FileTarget::User(user) => {
                if user == &self.client.inner.me {
                    return Err(ClientError::SelfMessage);
                }
                (
                    ConversationId::direct(user),
                    FileAccess::Users {
                        users: vec![user.clone()],
                    },
                )
            }
            FileTarget::Group(group) => (
                ConversationId::group(*group),
                FileAccess::Group { group: *group },
            ),
        })
    }

    /// What an earlier run of the same send left under `upload_key`, as `repeat` wants it
    /// used: with [`Repeat::Finish`], a message it made is sent now if it still waits in
    /// the outbox, or reported if it went out; otherwise its upload, if any, is resumed.
    async fn earlier_upload(
        self,
        upload_key: &str,
        repeat: Repeat,
    ) -> Result<Earlier, ClientError> {
        let earlier = match (self.client.inner.store.pending_upload(upload_key)?, repeat) {
            // An earlier run got as far as the message. If it still waits in the outbox,
            // this run sends it; if it went out, this run says so. Either way the file is
            // not uploaded again under a new id, nor delivered twice.
            (
                Some(PendingUpload {
                    sent_as: Some(id),
                    file,
                    ..
                }),
                Repeat::Finish,
            ) => {
                if self.client.inner.store.in_outbox(id)? {
                    let message = self.client.finish_send(id).await?;
                    return Ok(Earlier::Done(SentFile::of_earlier_run(
                        message, file, false,
                    )));
                }
                let went_out = self
                    .client
                    .inner
                    .store
                    .history_entry(&self.client.inner.me, id)?
                    .is_some_and(|entry| {
                        matches!(
                            entry.status,
                            EntryStatus::Sent | EntryStatus::Delivered | EntryStatus::Read
                        )
                    });
                if went_out {
                    return Ok(Earlier::Done(SentFile::of_earlier_run(id, file, true)));
                }
                // Given up (refused by the relay): a new attempt.
                None
            }
            // A new message of a file sent before.
            (
                Some(PendingUpload {
                    sent_as: Some(_), ..
                }),
                Repeat::SendAgain,
            ) => None,
            (earlier, _) => earlier,
        };
        Ok(Earlier::Upload(earlier))
    }

    /// Seals the file message `body` for `target` into the outbox, marking the pending
    /// upload `upload_key` as sent as it in the same transaction, and sends it.
    async fn send_file_message(
        self,
        target: &FileTarget,
        body: Body,
        upload_key: String,
    ) -> Result<MessageId, ClientError> {
        match target {
            FileTarget::User(user) => {
                let outbox = self
                    .client
                    .inner
                    .encrypt_for(user, &body, Some(upload_key))
                    .await?;
                self.client.finish_send(outbox.id).await
            }
            FileTarget::Group(group) => {
                let draft = Draft {
                    id: super::random_id()?,
                    body,
                    sent_ms: now_ms(),
                };
                let outbox = self
                    .client
                    .inner
                    .encrypt_for_group(*group, &draft, Some(upload_key))
                    .await?;
                self.client.finish_send(outbox.id).await
            }
        }
    }

    /// Uploads the file at `path` as `file` (its id and key) for `access`, resuming where
    /// the relay's copy stops, and records its MD5 in `file`.
    pub(super) async fn upload(
        self,
        path: &Path,
        file: &mut FileRef,
        access: FileAccess,
        progress: ProgressFn<'_>,
    ) -> Result<Moved, ClientError> {
        let key = FileKey::from_bytes(&file.key).map_err(TransferError::Chunk)?;
        let link = self.client.inner.link()?;
        let spec = FileSpec {
            id: file.file,
            key: &key,
            plain_size: file.size,
            uploader: None,
        };
        let (moved, md5) = transfer::upload(&link, path, spec, access, progress).await?;
        file.md5 = md5;
        Ok(moved)
    }

    /// The file message carrying `file`, if this peer has one.
    pub fn local(self, file: FileId) -> Result<Option<FileRef>, ClientError> {
        Ok(self
            .client
            .inner
            .store
            .file_message(file)?
            .and_then(|e| e.file))
    }

    /// Downloads received file `file` into the folder `dest` (made if needed), under its
    /// sender's name made safe (and numbered if taken), resuming a download a previous run
    /// started there. Every chunk's MAC and then the whole file's MD5 are checked; on a
    /// failure nothing is left in `dest`.
    pub async fn download(
        self,
        file: FileId,
        dest: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<SavedFile, ClientError> {
        let (from, reference) = self.received_file(file).await?;
        let dest = folder_to_save_into(dest).await?;
        let key = FileKey::from_bytes(&reference.key).map_err(TransferError::Chunk)?;
        let safe = safe_file_name(&reference.name);
        let pending = self.pending_download_into(file, &dest, &safe).await?;
        let part = PathBuf::from(&pending.part_path);
        let spec = FileSpec {
            id: file,
            key: &key,
            plain_size: reference.size,
            uploader: Some(&from),
        };
        let (moved, md5) = self.download_part(spec, &pending, progress).await?;
        if md5 != reference.md5 {
            let _ = tokio::fs::remove_file(&part).await;
            self.client.inner.store.remove_pending_download(file)?;
            return Err(ClientError::InvalidInput(
                "the downloaded file's MD5 differs from the sender's: it was not kept".into(),
            ));
        }
        let final_path = save_without_replacing(&part, &dest, &safe, &pending.final_path).await?;
        let mut pending = pending;
        pending.final_path = final_path.display().to_string();
        self.client
            .inner
            .store
            .mark_file_saved(file, &pending.final_path)?;
        self.client.inner.store.remove_pending_download(file)?;
        Ok(SavedFile {
            path: final_path,
            file: reference,
            moved,
        })
    }

    /// Who sent received file `file`, and the file as their message (or the moment that
    /// showed it) describes it. An id found in neither is asked of the relay, whose
    /// refusal is the clearer answer; else it is reported as unknown here.
    async fn received_file(self, file: FileId) -> Result<(UserName, FileRef), ClientError> {
        match self.client.inner.store.file_message(file)? {
            Some(entry) => match entry.file {
                Some(reference) => Ok((entry.from, reference)),
                None => Err(ClientError::InvalidInput(format!("{file} is not a file"))),
            },
            // A picture of a moment this user opened downloads the same way.
            None => match self.client.inner.store.moment_image(file)? {
                Some(image) => Ok((image.author, image.file)),
                None => {
                    // Without the message there is no key; the relay still says whether
                    // the id is one this user may fetch at all, the clearer answer.
                    let link = self.client.inner.link()?;
                    let probe = request::DownloadFile { file, offset: 0 };
                    if let Err(e @ crate::connection::ConnectionError::Refused(_)) =
                        link.transfer(probe).await
                    {
                        return Err(e.into());
                    }
                    Err(ClientError::InvalidInput(format!(
                        "no file {file} in your messages or moments (file ids are in `uchat history`, `uchat moments feed` and `uchat listen --json`)"
                    )))
                }
            },
        }
    }

    /// The download of `file` into the folder `dest` that a previous run started, or a new
    /// one (recorded), its partial file hidden in `dest` beside a free name made of `safe`.
    /// A partial file a run started into another folder is given up.
    async fn pending_download_into(
        self,
        file: FileId,
        dest: &Path,
        safe: &str,
    ) -> Result<PendingDownload, ClientError> {
        let pending = match self.client.inner.store.pending_download(file)? {
            Some(p) if Path::new(&p.part_path).parent() == Some(dest) => Some(p),
            // Started into another folder: that partial file is given up.
            Some(p) => {
                let _ = tokio::fs::remove_file(&p.part_path).await;
                None
            }
            None => None,
        };
        Ok(match pending {
            Some(pending) => pending,
            None => {
                let final_path = free_name_in(dest, safe);
                let part_path = dest.join(format!(".{safe}.{file}.uchat-part"));
                let pending = PendingDownload {
                    file,
                    part_path: part_path.display().to_string(),
                    final_path: final_path.display().to_string(),
                    chunks: 0,
                };
                self.client.inner.store.put_pending_download(&pending)?;
                pending
            }
        })
    }

    /// Downloads `spec` into `pending`'s partial file after the chunks it holds, recording
    /// progress as it goes; returns what moved and the partial file's MD5. A failure that
    /// a rerun cannot mend forgets the pending download: a damaged chunk (whose partial
    /// file the transfer deleted), or a refusal, the wrong uploader or the wrong length
    /// (whose partial file is deleted here).
    async fn download_part(
        self,
        spec: FileSpec<'_>,
        pending: &PendingDownload,
        progress: ProgressFn<'_>,
    ) -> Result<(Moved, Vec<u8>), ClientError> {
        let file = spec.id;
        let part = PathBuf::from(&pending.part_path);
        let link = self.client.inner.link()?;
        let store = self.client.inner.store.clone();
        let mut record = pending.clone();
        let checkpoint = Box::new(move |chunks: u64| {
            record.chunks = chunks;
            if let Err(e) = store.put_pending_download(&record) {
                tracing::warn!(error = %e, "cannot record download progress");
            }
        });
        match transfer::download(&link, spec, &part, pending.chunks, checkpoint, progress).await {
            Ok(moved) => Ok(moved),
            Err(e @ TransferError::Integrity { .. }) => {
                self.client.inner.store.remove_pending_download(file)?;
                Err(e.into())
            }
            // Refused for good (not allowed, expired, not the sender's file): nothing is
            // kept to resume.
            Err(
                e @ (TransferError::Connection(crate::connection::ConnectionError::Refused(_))
                | TransferError::NotTheSender { .. }
                | TransferError::WrongLength { .. }),
            ) => {
                let _ = tokio::fs::remove_file(&part).await;
                self.client.inner.store.remove_pending_download(file)?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }
}
