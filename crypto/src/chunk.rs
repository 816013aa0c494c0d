//! The file chunk cipher: AES-256-CBC with PKCS7 padding, then HMAC-SHA256 over the
//! ciphertext (encrypt-then-MAC), one sealed chunk per 64 KiB of file.
//!
//! Every file gets a fresh random [`FileKey`]. A sealed chunk is
//! `iv (16) || ciphertext || tag (32)`; each chunk has its own IV and tag, so a transfer can
//! resume at any chunk and a receiver can check each chunk as it arrives. The tag also covers
//! the file id and the chunk's index, so chunks cannot be reordered, dropped into another
//! position or spliced in from another file without failing the integrity check.
//!
//! [`decrypt_chunk`] verifies the tag in constant time before it decrypts anything, so
//! tampered bytes never reach the CBC decryptor and padding errors cannot act as an oracle.
//!
//! This module is pure: it does no I/O and knows nothing of files, transfers or where the key
//! travels (inside the Olm-encrypted message, with the file's name, size and type).

use std::fmt;

use aes::Aes256;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Plaintext bytes per chunk: every chunk of a file but the last holds exactly this many.
///
/// 64 KiB keeps the per-chunk overhead (64 bytes at most: IV, padding and tag) under 0.1%
/// while a lost or resumed chunk costs little to send again.
pub const CHUNK_PLAINTEXT_BYTES: usize = 64 * 1024;

/// Length of the IV at the start of a sealed chunk (one AES block).
pub const IV_BYTES: usize = 16;

/// Length of the HMAC-SHA256 tag at the end of a sealed chunk.
pub const TAG_BYTES: usize = 32;

/// AES block size; PKCS7 pads the ciphertext to a multiple of it.
const BLOCK_BYTES: usize = 16;

/// The shortest possible sealed chunk: IV, one block (PKCS7 pads even empty input to a full
/// block) and the tag.
pub const MIN_SEALED_BYTES: usize = IV_BYTES + BLOCK_BYTES + TAG_BYTES;

/// Domain separation for the tag, so a MAC computed here can never be mistaken for one
/// computed for another purpose with the same key. Bump the version if the layout changes.
const DOMAIN_LABEL: &[u8] = b"uchat-chunk-v1";

/// Why a chunk could not be sealed or opened, or a key not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The sealed chunk is shorter than an IV, one block and a tag.
    #[error("sealed chunk of {len} bytes is shorter than the minimum of {min} bytes")]
    TooShort {
        /// Bytes given.
        len: usize,
        /// The shortest valid sealed chunk.
        min: usize,
    },
    /// The tag did not match: the chunk was altered, truncated, belongs to another position
    /// or file, or was sealed under another key.
    #[error("chunk {index} failed its integrity check (tampered or corrupted)")]
    BadTag {
        /// The chunk's index in its file.
        index: u64,
    },
    /// The tag matched but the plaintext's padding did not. Only a sender holding the key
    /// can produce this (a buggy or malicious one), since the tag is checked first.
    #[error("chunk {index} has invalid padding after decryption")]
    BadPadding {
        /// The chunk's index in its file.
        index: u64,
    },
    /// The operating system's random source failed.
    #[error("no randomness available: {reason}")]
    Random {
        /// What failed.
        reason: String,
    },
    /// Key bytes of the wrong length.
    #[error("a file key is {expected} bytes, got {len}", expected = FileKey::BYTES)]
    BadKeyLength {
        /// Bytes given.
        len: usize,
    },
}

/// A per-file key: a 32-byte AES-256 key and a 32-byte HMAC-SHA256 key, independent and
/// random. Zeroized on drop; its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct FileKey {
    aes: [u8; 32],
    mac: [u8; 32],
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileKey(<{} bytes>)", Self::BYTES)
    }
}

impl FileKey {
    /// Length of the key's byte form: the AES key, then the HMAC key.
    pub const BYTES: usize = 64;

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, ChunkError> {
        let mut bytes = Zeroizing::new([0u8; Self::BYTES]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|e| ChunkError::Random {
            reason: e.to_string(),
        })?;
        Self::from_bytes(bytes.as_slice())
    }

    /// A key from its byte form (as carried inside the encrypted message).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChunkError> {
        if bytes.len() != Self::BYTES {
            return Err(ChunkError::BadKeyLength { len: bytes.len() });
        }
        let mut key = Self {
            aes: [0u8; 32],
            mac: [0u8; 32],
        };
        key.aes.copy_from_slice(&bytes[..32]);
        key.mac.copy_from_slice(&bytes[32..]);
        Ok(key)
    }

    /// The key's byte form: the AES key, then the HMAC key. Zeroized when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; Self::BYTES]> {
        let mut out = Zeroizing::new([0u8; Self::BYTES]);
        out[..32].copy_from_slice(&self.aes);
        out[32..].copy_from_slice(&self.mac);
        out
    }

    /// The HMAC over everything a chunk's tag covers, ready to finalize or verify:
    /// `"uchat-chunk-v1" || len(file_id) as u64 BE || file_id || index as u64 BE || iv ||
    /// ciphertext`. The length prefix keeps `(file_id, index)` pairs unambiguous.
    fn chunk_mac(&self, file_id: &[u8], index: u64, iv: &[u8], ciphertext: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.mac)
            .expect("HMAC accepts keys of any length");
        mac.update(DOMAIN_LABEL);
        mac.update(&(file_id.len() as u64).to_be_bytes());
        mac.update(file_id);
        mac.update(&index.to_be_bytes());
        mac.update(iv);
        mac.update(ciphertext);
        mac
    }
}

/// Length of the sealed chunk for `plaintext_len` bytes of plaintext: IV, the plaintext
/// padded up to the next whole block (a full extra block if it is already whole), and tag.
pub fn sealed_len(plaintext_len: usize) -> usize {
    IV_BYTES + (plaintext_len / BLOCK_BYTES + 1) * BLOCK_BYTES + TAG_BYTES
}

/// Seals chunk `index` of file `file_id` with the given IV.
///
/// The IV must be unpredictable and never reused under the same key: use
/// [`encrypt_chunk_random_iv`] unless you are writing a test or a known-answer vector.
/// Any plaintext length is accepted; a file's chunks are [`CHUNK_PLAINTEXT_BYTES`] long
/// except the last.
pub fn encrypt_chunk(
    key: &FileKey,
    file_id: &[u8],
    index: u64,
    plaintext: &[u8],
    iv: [u8; IV_BYTES],
) -> Vec<u8> {
    let ciphertext = cbc::Encryptor::<Aes256>::new((&key.aes).into(), &iv.into())
        .encrypt_padded_vec::<Pkcs7>(plaintext);
    let tag = key.chunk_mac(file_id, index, &iv, &ciphertext).finalize();

    let mut sealed = Vec::with_capacity(IV_BYTES + ciphertext.len() + TAG_BYTES);
    sealed.extend_from_slice(&iv);
    sealed.extend_from_slice(&ciphertext);
    sealed.extend_from_slice(&tag.into_bytes());
    sealed
}

/// Seals chunk `index` of file `file_id` under a fresh random IV.
pub fn encrypt_chunk_random_iv(
    key: &FileKey,
    file_id: &[u8],
    index: u64,
    plaintext: &[u8],
) -> Result<Vec<u8>, ChunkError> {
    let mut iv = [0u8; IV_BYTES];
    getrandom::fill(&mut iv).map_err(|e| ChunkError::Random {
        reason: e.to_string(),
    })?;
    Ok(encrypt_chunk(key, file_id, index, plaintext, iv))
}

/// Opens chunk `index` of file `file_id`.
///
/// The tag is verified (in constant time) before anything is decrypted; a chunk sealed for
/// another index or file, or altered in any bit, fails with [`ChunkError::BadTag`].
pub fn decrypt_chunk(
    key: &FileKey,
    file_id: &[u8],
    index: u64,
    sealed: &[u8],
) -> Result<Vec<u8>, ChunkError> {
    let too_short = || ChunkError::TooShort {
        len: sealed.len(),
        min: MIN_SEALED_BYTES,
    };
    if sealed.len() < MIN_SEALED_BYTES {
        return Err(too_short());
    }
    let (iv, rest) = sealed
        .split_first_chunk::<IV_BYTES>()
        .ok_or_else(too_short)?;
    let (ciphertext, tag) = rest.split_last_chunk::<TAG_BYTES>().ok_or_else(too_short)?;

    key.chunk_mac(file_id, index, iv, ciphertext)
        .verify_slice(tag)
        .map_err(|_| ChunkError::BadTag { index })?;

    // Only the key holder can get here, so a ciphertext that is not whole blocks or whose
    // padding is wrong comes from a faulty sender, not from tampering in transit.
    cbc::Decryptor::<Aes256>::new((&key.aes).into(), iv.into())
        .decrypt_padded_vec::<Pkcs7>(ciphertext)
        .map_err(|_| ChunkError::BadPadding { index })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Key bytes 0x00..=0x3f: AES key 00..1f, HMAC key 20..3f.
    fn vector_key() -> FileKey {
        let bytes: Vec<u8> = (0u8..64).collect();
        FileKey::from_bytes(&bytes).expect("64 bytes")
    }

    /// IV bytes 0xa0..=0xaf.
    fn vector_iv() -> [u8; IV_BYTES] {
        std::array::from_fn(|i| 0xa0 + i as u8)
    }

    const VECTOR_FILE_ID: &[u8] = b"file-0001";

    fn test_key(seed: u8) -> FileKey {
        FileKey::from_bytes(&[seed; FileKey::BYTES]).expect("64 bytes")
    }

    // Known-answer vectors, computed once by this implementation and cross-checked with two
    // independent implementations, which gave the same bytes:
    // 1. the OpenSSL 3.0.19 command line, with K = 000102..1f, M = 202122..3f, IV = a0a1..af
    //    and mac.bin = "uchat-chunk-v1" || 0000000000000009 || "file-0001" ||
    //    <index as 8 bytes BE> || IV || ciphertext, assembled with printf and `xxd -r -p`:
    //      openssl enc -aes-256-cbc -K $K -iv $IV -in pt.bin | xxd -p   (PKCS7 is its default)
    //      openssl dgst -sha256 -mac HMAC -macopt hexkey:$M mac.bin
    // 2. Python 3 with `cryptography` 48 (AES-256-CBC, PKCS7 padder) and the standard
    //    library's `hmac` + `hashlib.sha256` over the same MAC input.
    // A sealed chunk is IV || ciphertext || tag.

    /// Index 3, plaintext "Uchat chunk test vector: 你好 🌍\n" (37 bytes of UTF-8).
    const VECTOR_TEXT_SEALED: &str = concat!(
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        "e8e93e185669fa6f96a4a7667e8886ec573d6c8bf72309b2d4af0a70ca3c4146",
        "817e318d80e63b17fbfa06373979dda9",
        "4ed30a6e6c94432da622b42a2b8b87af1ed8554038595c1a19b77f7a895250df",
    );

    /// Index 0, empty plaintext (one block of padding).
    const VECTOR_EMPTY_SEALED: &str = concat!(
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        "600d07a3b9b2c4e4082153d6d1707aa6",
        "dba57226beeff9b417930f41ce6ace4ce0caed5af5780ac6cd2a03f449545e14",
    );

    #[test]
    fn sealed_bytes_match_vectors_cross_checked_with_openssl_and_python() {
        let key = vector_key();
        let text = "Uchat chunk test vector: 你好 🌍\n".as_bytes();
        assert_eq!(text.len(), 37);

        let sealed = encrypt_chunk(&key, VECTOR_FILE_ID, 3, text, vector_iv());
        assert_eq!(hex::encode(&sealed), VECTOR_TEXT_SEALED);
        assert_eq!(sealed.len(), sealed_len(text.len()));
        assert_eq!(
            decrypt_chunk(&key, VECTOR_FILE_ID, 3, &sealed).expect("opens"),
            text
        );

        let sealed = encrypt_chunk(&key, VECTOR_FILE_ID, 0, b"", vector_iv());
        assert_eq!(hex::encode(&sealed), VECTOR_EMPTY_SEALED);
        assert_eq!(sealed.len(), MIN_SEALED_BYTES);
        assert_eq!(
            decrypt_chunk(&key, VECTOR_FILE_ID, 0, &sealed).expect("opens"),
            b""
        );
    }

    #[test]
    fn chunks_of_every_boundary_size_round_trip() {
        let key = FileKey::generate().expect("randomness");
        for len in [0, 1, 15, 16, 17, 31, 32, CHUNK_PLAINTEXT_BYTES] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let sealed = encrypt_chunk_random_iv(&key, b"f", 9, &plaintext).expect("randomness");
            assert_eq!(sealed.len(), sealed_len(len), "length for {len}");
            let opened = decrypt_chunk(&key, b"f", 9, &sealed).expect("opens");
            assert_eq!(opened, plaintext, "round trip of {len} bytes");
        }
    }

    #[test]
    fn sealed_len_counts_iv_padding_and_tag() {
        assert_eq!(sealed_len(0), 64);
        assert_eq!(sealed_len(15), 64);
        assert_eq!(sealed_len(16), 80);
        assert_eq!(sealed_len(17), 80);
        assert_eq!(sealed_len(CHUNK_PLAINTEXT_BYTES), 16 + 65536 + 16 + 32);
    }

    #[test]
    fn random_ivs_differ_so_equal_chunks_seal_differently() {
        let key = test_key(1);
        let a = encrypt_chunk_random_iv(&key, b"f", 0, b"same").expect("randomness");
        let b = encrypt_chunk_random_iv(&key, b"f", 0, b"same").expect("randomness");
        assert_ne!(a[..IV_BYTES], b[..IV_BYTES]);
        assert_ne!(a, b);
    }

    #[test]
    fn flipping_any_single_bit_fails_the_integrity_check() {
        let key = test_key(2);
        let plaintext = b"twenty bytes, secret";
        let sealed = encrypt_chunk(&key, b"file", 4, plaintext, [5; IV_BYTES]);
        assert_eq!(sealed.len(), 80);
        for bit in 0..sealed.len() * 8 {
            let mut tampered = sealed.clone();
            tampered[bit / 8] ^= 1 << (bit % 8);
            match decrypt_chunk(&key, b"file", 4, &tampered) {
                Err(ChunkError::BadTag { index: 4 }) => {}
                other => panic!("bit {bit} flipped: expected BadTag, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_chunk_opened_at_another_index_or_in_another_file_fails() {
        let key = test_key(3);
        let sealed = encrypt_chunk(&key, b"file-a", 1, b"chunk one", [9; IV_BYTES]);
        assert_eq!(
            decrypt_chunk(&key, b"file-a", 2, &sealed),
            Err(ChunkError::BadTag { index: 2 })
        );
        assert_eq!(
            decrypt_chunk(&key, b"file-a", 1 + (1 << 32), &sealed),
            Err(ChunkError::BadTag {
                index: 1 + (1 << 32)
            })
        );
        assert_eq!(
            decrypt_chunk(&key, b"file-b", 1, &sealed),
            Err(ChunkError::BadTag { index: 1 })
        );
        // The length prefix stops a byte moving between the file id and what follows it.
        assert_eq!(
            decrypt_chunk(&key, b"file-a\0", 1, &sealed),
            Err(ChunkError::BadTag { index: 1 })
        );
        assert!(decrypt_chunk(&key, b"file-a", 1, &sealed).is_ok());
    }

    #[test]
    fn a_chunk_opened_with_another_key_fails() {
        let sealed = encrypt_chunk(&test_key(4), b"f", 0, b"hello", [1; IV_BYTES]);
        assert_eq!(
            decrypt_chunk(&test_key(5), b"f", 0, &sealed),
            Err(ChunkError::BadTag { index: 0 })
        );
    }

    #[test]
    fn truncated_or_extended_chunks_fail_cleanly() {
        let key = test_key(6);
        let sealed = encrypt_chunk(&key, b"f", 7, &[0x42; 40], [2; IV_BYTES]);
        for cut in 0..sealed.len() {
            match decrypt_chunk(&key, b"f", 7, &sealed[..cut]) {
                Err(ChunkError::TooShort { len, min }) => {
                    assert_eq!((len, min), (cut, MIN_SEALED_BYTES));
                    assert!(cut < MIN_SEALED_BYTES);
                }
                Err(ChunkError::BadTag { index: 7 }) => assert!(cut >= MIN_SEALED_BYTES),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(
            decrypt_chunk(&key, b"f", 7, &longer),
            Err(ChunkError::BadTag { index: 7 })
        );
    }

    #[test]
    fn bad_padding_under_a_valid_tag_is_reported_not_returned() {
        // Only a key holder can make this: a valid tag over a ciphertext whose last block
        // decrypts to invalid padding.
        let key = test_key(7);
        let iv = [3u8; IV_BYTES];
        let raw = cbc::Encryptor::<Aes256>::new((&key.aes).into(), &iv.into())
            .encrypt_padded_vec::<aes::cipher::block_padding::NoPadding>(&[0u8; 16]);
        let tag = key.chunk_mac(b"f", 0, &iv, &raw).finalize().into_bytes();
        let sealed = [&iv[..], &raw, &tag].concat();
        assert_eq!(
            decrypt_chunk(&key, b"f", 0, &sealed),
            Err(ChunkError::BadPadding { index: 0 })
        );
    }

    #[test]
    fn file_keys_round_trip_and_never_show_their_bytes() {
        let key = FileKey::generate().expect("randomness");
        let again = FileKey::from_bytes(key.to_bytes().as_slice()).expect("64 bytes");
        assert_eq!(key, again);
        assert_ne!(key, FileKey::generate().expect("randomness"));
        assert_eq!(format!("{key:?}"), "FileKey(<64 bytes>)");
        assert_eq!(format!("{:?}", vector_key()), "FileKey(<64 bytes>)");
        assert_eq!(
            FileKey::from_bytes(&[0; 63]),
            Err(ChunkError::BadKeyLength { len: 63 })
        );
        assert_eq!(
            FileKey::from_bytes(&[0; 65]),
            Err(ChunkError::BadKeyLength { len: 65 })
        );
    }

    #[test]
    fn error_messages_are_lowercase_and_name_the_chunk() {
        assert_eq!(
            ChunkError::BadTag { index: 12 }.to_string(),
            "chunk 12 failed its integrity check (tampered or corrupted)"
        );
        assert_eq!(
            ChunkError::BadKeyLength { len: 3 }.to_string(),
            "a file key is 64 bytes, got 3"
        );
    }

    proptest! {
        #[test]
        fn decrypting_arbitrary_bytes_never_panics(
            sealed in proptest::collection::vec(any::<u8>(), 0..300),
            file_id in proptest::collection::vec(any::<u8>(), 0..40),
            index in any::<u64>(),
        ) {
            let result = decrypt_chunk(&test_key(8), &file_id, index, &sealed);
            prop_assert!(
                matches!(result, Err(ChunkError::TooShort { .. } | ChunkError::BadTag { .. })),
                "{result:?}"
            );
        }

        #[test]
        fn arbitrary_chunks_round_trip(
            plaintext in proptest::collection::vec(any::<u8>(), 0..600),
            file_id in proptest::collection::vec(any::<u8>(), 0..40),
            index in any::<u64>(),
            iv in any::<[u8; IV_BYTES]>(),
        ) {
            let key = test_key(9);
            let sealed = encrypt_chunk(&key, &file_id, index, &plaintext, iv);
            prop_assert_eq!(sealed.len(), sealed_len(plaintext.len()));
            prop_assert_eq!(decrypt_chunk(&key, &file_id, index, &sealed), Ok(plaintext));
        }
    }
}
