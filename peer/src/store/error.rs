//! [`StoreError`]: why the peer's local store could not do what was asked.

use std::path::PathBuf;

/// A failure of the peer's local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (another `uchat` or the app) has this profile open.
    #[error("profile in use by another uchat process: {}", path.display())]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// The database file could not be opened.
    #[error("cannot open the store {}: {reason}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What redb said.
        reason: String,
    },
    /// Reading or writing the disk failed.
    #[error("store i/o failed: {source}")]
    Io {
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// redb failed (other than by i/o).
    #[error("store failure: {reason}")]
    Database {
        /// What redb said.
        reason: String,
    },
    /// A stored value does not decode.
    #[error("corrupt {what} in the store: {reason}")]
    Corrupt {
        /// What kind of record.
        what: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A value could not be encoded for storage.
    #[error("cannot encode {what} for the store: {reason}")]
    Encode {
        /// What kind of record.
        what: &'static str,
        /// What the encoder said.
        reason: String,
    },
    /// The store holds no profile yet, so there is nothing to update.
    #[error("this profile holds no account yet")]
    NoProfile,
}

impl uchat_db::DbError for StoreError {
    fn in_use(path: PathBuf) -> Self {
        StoreError::InUse { path }
    }
    fn open(path: PathBuf, reason: String) -> Self {
        StoreError::Open { path, reason }
    }
    fn corrupt(what: &'static str, reason: String) -> Self {
        StoreError::Corrupt { what, reason }
    }
    fn encode(what: &'static str, reason: String) -> Self {
        StoreError::Encode { what, reason }
    }
}

uchat_db::redb_errors!(StoreError);
