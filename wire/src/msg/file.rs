//! Files' shared types: who may download an uploaded file, and the layout every transfer
//! agrees on.
//!
//! A file travels as its ciphertext only: the uploader encrypts it in chunks of
//! [`FILE_CHUNK_PLAINTEXT_BYTES`], each sealed to exactly [`FILE_CHUNK_SEALED_BYTES`]
//! (the last one shorter), and streams the concatenation after a
//! [`crate::Request::UploadFile`]; the key, name, size, type and MD5 go to the recipients
//! inside an end-to-end encrypted message. Because every sealed chunk but the last has the
//! same length, a transfer resumes at any chunk boundary: the relay reports how many bytes
//! it holds rounded down to a boundary, and a downloader asks from one.

use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, UserName};

/// Plaintext bytes per chunk (every chunk but the last holds exactly this many).
pub const FILE_CHUNK_PLAINTEXT_BYTES: u64 = 64 * 1024;
/// Bytes of one full sealed chunk: a 16-byte IV, the plaintext padded to the next AES block
/// (a full block of padding for a block-aligned chunk) and a 32-byte HMAC-SHA256 tag.
pub const FILE_CHUNK_SEALED_BYTES: u64 = 16 + FILE_CHUNK_PLAINTEXT_BYTES + 16 + 32;

/// The ciphertext length of a file of `plaintext_bytes`: full chunks, then a last one (an
/// empty file is one empty chunk).
pub fn sealed_file_bytes(plaintext_bytes: u64) -> u64 {
    let full = plaintext_bytes / FILE_CHUNK_PLAINTEXT_BYTES;
    let rest = plaintext_bytes % FILE_CHUNK_PLAINTEXT_BYTES;
    let last = if rest == 0 && full > 0 {
        0
    } else {
        16 + (rest / 16 + 1) * 16 + 32
    };
    full * FILE_CHUNK_SEALED_BYTES + last
}

/// How many chunks a file of `plaintext_bytes` has (at least one).
pub fn file_chunks(plaintext_bytes: u64) -> u64 {
    plaintext_bytes.div_ceil(FILE_CHUNK_PLAINTEXT_BYTES).max(1)
}

/// `offset` rounded down to a chunk boundary of the ciphertext.
pub fn chunk_boundary(offset: u64) -> u64 {
    offset - offset % FILE_CHUNK_SEALED_BYTES
}

/// Who may download a file besides its uploader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
pub enum FileAccess {
    /// These users (each a friend of the uploader, or in a group with them).
    Users {
        /// Who may fetch it besides the uploader: each a friend or group co-member of
        /// theirs, fewer in all than the relay's limit on group members.
        users: Vec<UserName>,
    },
    /// The members of this group when the upload starts (the uploader must be one).
    Group {
        /// The group whose members may fetch it, as they stand when the upload first
        /// starts: later joiners may not.
        group: GroupId,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_sizes_follow_the_chunk_layout() {
        assert_eq!(FILE_CHUNK_SEALED_BYTES, 65_600);
        assert_eq!(
            sealed_file_bytes(0),
            64,
            "one empty chunk: IV, a padding block, tag"
        );
        assert_eq!(sealed_file_bytes(1), 64);
        assert_eq!(sealed_file_bytes(16), 80);
        assert_eq!(
            sealed_file_bytes(FILE_CHUNK_PLAINTEXT_BYTES),
            FILE_CHUNK_SEALED_BYTES
        );
        assert_eq!(
            sealed_file_bytes(FILE_CHUNK_PLAINTEXT_BYTES + 1),
            FILE_CHUNK_SEALED_BYTES + 64
        );
        assert_eq!(file_chunks(0), 1);
        assert_eq!(file_chunks(FILE_CHUNK_PLAINTEXT_BYTES * 3), 3);
        assert_eq!(file_chunks(FILE_CHUNK_PLAINTEXT_BYTES * 3 + 1), 4);
        assert_eq!(
            chunk_boundary(FILE_CHUNK_SEALED_BYTES * 2 + 7),
            FILE_CHUNK_SEALED_BYTES * 2
        );
    }
}
