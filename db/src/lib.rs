//! The redb plumbing Uchat's two stores share: the relay's (`uchat-store`) and the peer's
//! local one (`uchat_peer::store`). Each store keeps its own tables, records and error
//! type; this crate gives them the same way to open a database ([`open_database`]), run one
//! transaction ([`read`], [`write`]), encode and decode MessagePack records ([`encode`],
//! [`decode`]) and take named counters ([`next_counter`]), generic over the store's error
//! through [`DbError`]. [`redb_errors!`] writes the conversions from redb's errors, and
//! [`store_helpers!`] each store's copies of the helpers with its error type fixed.

use std::path::{Path, PathBuf};

/// redb itself, for [`redb_errors!`] and [`store_helpers!`].
pub use redb;
/// serde, for [`store_helpers!`].
pub use serde;

use redb::ReadableTable;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a store's error must be able to say for the helpers here: redb's own failures
/// (see [`redb_errors!`]) and the few this crate finds itself.
pub trait DbError:
    From<redb::TransactionError>
    + From<redb::TableError>
    + From<redb::StorageError>
    + From<redb::CommitError>
{
    /// Another handle (another process) holds the database file's lock.
    fn in_use(path: PathBuf) -> Self;
    /// The database file could not be opened, for `reason`.
    fn open(path: PathBuf, reason: String) -> Self;
    /// A stored `what` does not decode, or a counter ran out.
    fn corrupt(what: &'static str, reason: String) -> Self;
    /// A `what` could not be encoded for storage.
    fn encode(what: &'static str, reason: String) -> Self;
}

/// Implements `From` for redb's error types on a store error with an `Io { source }` and a
/// `Database { reason }` variant: i/o failures are kept as such, everything else becomes
/// text.
#[macro_export]
macro_rules! redb_errors {
    ($error:ty) => {
        impl From<$crate::redb::Error> for $error {
            fn from(e: $crate::redb::Error) -> Self {
                match e {
                    $crate::redb::Error::Io(source) => Self::Io { source },
                    other => Self::Database {
                        reason: other.to_string(),
                    },
                }
            }
        }
        $crate::redb_errors!(@via $error;
            $crate::redb::TransactionError,
            $crate::redb::TableError,
            $crate::redb::StorageError,
            $crate::redb::CommitError);
    };
    (@via $error:ty; $($from:ty),*) => {$(
        impl From<$from> for $error {
            fn from(e: $from) -> Self {
                Self::from($crate::redb::Error::from(e))
            }
        }
    )*};
}

/// Writes a store's own `encode`, `decode`, `next_counter`, `open_database`, `write` and
/// `read`: this crate's helpers with the store's error type fixed, so that `?` at their
/// call sites needs no type annotation. Invoke it once, in the store's tables module.
/// With `commit_on = PATH`, each write transaction (its durable commit waits on the disk)
/// runs inside `PATH(|| ..)`: a store called from async tasks hands it to a blocking
/// thread there.
#[macro_export]
macro_rules! store_helpers {
    ($error:ty) => {
        $crate::store_helpers!($error, commit_on = $crate::run_here);
    };
    ($error:ty, commit_on = $commit_on:path) => {
        /// Encodes a record for storage.
        pub(crate) fn encode<T: $crate::serde::Serialize>(
            value: &T,
            what: &'static str,
        ) -> Result<Vec<u8>, $error> {
            $crate::encode(value, what)
        }

        /// Decodes a stored record.
        pub(crate) fn decode<T: $crate::serde::de::DeserializeOwned>(
            bytes: &[u8],
            what: &'static str,
        ) -> Result<T, $error> {
            $crate::decode(bytes, what)
        }

        /// Takes the next value (starting at 1) of a named counter inside a write
        /// transaction.
        pub(crate) fn next_counter(
            counters: &mut $crate::redb::Table<'_, &str, u64>,
            name: &str,
        ) -> Result<u64, $error> {
            $crate::next_counter(counters, name)
        }

        /// Opens (creating if needed) the database at `path` and creates `tables` in it,
        /// so that read transactions can open every table.
        pub(crate) fn open_database(
            path: &std::path::Path,
            cache_bytes: usize,
            create_tables: impl FnOnce(
                &$crate::redb::WriteTransaction,
            ) -> Result<(), $crate::redb::TableError>,
        ) -> Result<$crate::redb::Database, $error> {
            $crate::open_database(path, cache_bytes, create_tables)
        }

        /// Runs `f` in one write transaction and commits it durably; if `f` fails,
        /// nothing it wrote is kept.
        pub(crate) fn write<T>(
            db: &$crate::redb::Database,
            f: impl FnOnce(&$crate::redb::WriteTransaction) -> Result<T, $error>,
        ) -> Result<T, $error> {
            $commit_on(|| $crate::write(db, f))
        }

        /// Runs `f` in one read transaction (a consistent snapshot).
        pub(crate) fn read<T>(
            db: &$crate::redb::Database,
            f: impl FnOnce(&$crate::redb::ReadTransaction) -> Result<T, $error>,
        ) -> Result<T, $error> {
            $crate::read(db, f)
        }
    };
}

/// Encodes a record for storage (MessagePack with named fields).
pub fn encode<T: Serialize, E: DbError>(value: &T, what: &'static str) -> Result<Vec<u8>, E> {
    rmp_serde::to_vec_named(value).map_err(|e| E::encode(what, e.to_string()))
}

/// Decodes a stored record.
pub fn decode<T: DeserializeOwned, E: DbError>(bytes: &[u8], what: &'static str) -> Result<T, E> {
    rmp_serde::from_slice(bytes).map_err(|e| E::corrupt(what, e.to_string()))
}

/// Takes the next value (starting at 1) of a named counter inside a write transaction.
pub fn next_counter<E: DbError>(
    counters: &mut redb::Table<'_, &str, u64>,
    name: &str,
) -> Result<u64, E> {
    let current = counters.get(name)?.map(|v| v.value()).unwrap_or(0);
    let next = current
        .checked_add(1)
        .ok_or_else(|| E::corrupt("counter", format!("{name} is exhausted")))?;
    counters.insert(name, next)?;
    Ok(next)
}

/// Opens (creating if needed) the database at `path` with a cache of `cache_bytes` and
/// creates `tables` in it, so that read transactions can open every table.
pub fn open_database<E: DbError>(
    path: &Path,
    cache_bytes: usize,
    create_tables: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::TableError>,
) -> Result<redb::Database, E> {
    let db = redb::Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| match e {
            // Both mean another handle holds the file's lock.
            redb::DatabaseError::DatabaseAlreadyOpen
            | redb::DatabaseError::LockProtocolMismatch => E::in_use(path.to_path_buf()),
            other => E::open(path.to_path_buf(), other.to_string()),
        })?;
    let tx = db.begin_write()?;
    create_tables(&tx)?;
    tx.commit()?;
    Ok(db)
}

/// Runs `work` where it is: the write transactions of a store called from blocking threads
/// only (the relay's).
pub fn run_here<T>(work: impl FnOnce() -> T) -> T {
    work()
}

/// Runs `f` in one write transaction and commits it durably; if `f` fails, nothing it
/// wrote is kept.
pub fn write<T, E: DbError>(
    db: &redb::Database,
    f: impl FnOnce(&redb::WriteTransaction) -> Result<T, E>,
) -> Result<T, E> {
    let tx = db.begin_write()?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// Runs `f` in one read transaction (a consistent snapshot).
pub fn read<T, E: DbError>(
    db: &redb::Database,
    f: impl FnOnce(&redb::ReadTransaction) -> Result<T, E>,
) -> Result<T, E> {
    use redb::ReadableDatabase;
    let tx = db.begin_read()?;
    f(&tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum TestError {
        InUse,
        Open,
        Corrupt(String),
        Encode,
        Io { source: std::io::Error },
        Database { reason: String },
    }

    redb_errors!(TestError);

    impl DbError for TestError {
        fn in_use(_: PathBuf) -> Self {
            TestError::InUse
        }
        fn open(_: PathBuf, _: String) -> Self {
            TestError::Open
        }
        fn corrupt(what: &'static str, reason: String) -> Self {
            TestError::Corrupt(format!("{what}: {reason}"))
        }
        fn encode(_: &'static str, _: String) -> Self {
            TestError::Encode
        }
    }

    const COUNTERS: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("counters");

    #[test]
    fn counters_count_from_one_and_a_failed_write_keeps_nothing() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = open_database::<TestError>(&dir.path().join("t.redb"), 1 << 20, |tx| {
            tx.open_table(COUNTERS).map(drop)
        })
        .expect("opens");
        let taken = write::<_, TestError>(&db, |tx| {
            let mut counters = tx.open_table(COUNTERS)?;
            Ok([
                next_counter::<TestError>(&mut counters, "a")?,
                next_counter::<TestError>(&mut counters, "a")?,
                next_counter::<TestError>(&mut counters, "b")?,
            ])
        })
        .expect("writes");
        assert_eq!(taken, [1, 2, 1]);
        let failed = write::<(), TestError>(&db, |tx| {
            next_counter::<TestError>(&mut tx.open_table(COUNTERS)?, "a")?;
            Err(TestError::Encode)
        });
        assert!(matches!(failed, Err(TestError::Encode)));
        let a = read::<_, TestError>(&db, |tx| {
            Ok(tx.open_table(COUNTERS)?.get("a")?.map(|v| v.value()))
        })
        .expect("reads");
        assert_eq!(a, Some(2), "the failed write's counter step was not kept");
        // A second handle on the same file is told apart from other failures.
        let again = open_database::<TestError>(&dir.path().join("t.redb"), 1 << 20, |_| Ok(()));
        assert!(matches!(again, Err(TestError::InUse)), "{again:?}");
    }

    #[test]
    fn redb_failures_keep_io_errors_as_such() {
        let io = TestError::from(redb::Error::Io(std::io::Error::other("disk gone")));
        assert!(
            matches!(&io, TestError::Io { source } if source.to_string() == "disk gone"),
            "{io:?}"
        );
        let other = TestError::from(redb::Error::DatabaseAlreadyOpen);
        assert!(
            matches!(&other, TestError::Database { reason } if !reason.is_empty()),
            "{other:?}"
        );
    }

    #[test]
    fn a_record_that_does_not_decode_is_corruption_naming_what_it_was() {
        let bytes = encode::<_, TestError>(&("x", 1u8), "pair").expect("encodes");
        let back: (String, u8) = decode::<_, TestError>(&bytes, "pair").expect("decodes");
        assert_eq!(back, ("x".to_string(), 1));
        let bad = decode::<u64, TestError>(&[0xc1], "history entry");
        assert!(
            matches!(&bad, Err(TestError::Corrupt(reason)) if reason.starts_with("history entry")),
            "{bad:?}"
        );
    }
}
