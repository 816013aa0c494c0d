//! File chunk opening: what a downloading peer does with each chunk the relay streams.
//!
//! Input: a mode byte, a file id (a length byte and up to 32 bytes), a chunk index (8
//! bytes), then:
//! - mode 0: the sealed chunk as it arrives (the seeds are real chunks under the fixed
//!   key); opening must not panic;
//! - mode 1: a plaintext and an IV in front of it, sealed and opened again, which must
//!   give the plaintext back, at the length `sealed_len` promises;
//! - mode 2: an IV and ciphertext from a sender who holds the key (every recipient of the
//!   file does), tagged as the documented layout says, so that the fuzzer reaches the
//!   decryption and padding checks behind the tag: they must accept it or say
//!   `BadPadding`, and never `BadTag`;
//! - mode 3: bytes offered as a file key.

#![no_main]

use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use uchat_fuzz::fixture::{self, FILE_KEY};
use uchat_fuzz::input::Input;
use uchat_peer::crypto::chunk::{self, ChunkError, FileKey, IV_BYTES};

/// The tag as chunk.rs documents it: HMAC-SHA256 under the key's second half over
/// `"uchat-chunk-v1" || len(file_id) as u64 BE || file_id || index as u64 BE || iv ||
/// ciphertext`.
fn documented_tag(file_id: &[u8], index: u64, iv_and_ciphertext: &[u8]) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&FILE_KEY[32..]).expect("HMAC takes any key");
    mac.update(b"uchat-chunk-v1");
    mac.update(&(file_id.len() as u64).to_be_bytes());
    mac.update(file_id);
    mac.update(&index.to_be_bytes());
    mac.update(iv_and_ciphertext);
    mac.finalize().into_bytes().to_vec()
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.u8() % 4;
    let file_id = input.short_bytes(32);
    let index = input.u64();
    let key = fixture::file_key();
    match mode {
        0 => {
            let _ = chunk::decrypt_chunk(&key, file_id, index, input.rest());
        }
        1 => {
            let iv: [u8; IV_BYTES] = input.array();
            let plaintext = input.rest();
            let sealed = chunk::encrypt_chunk(&key, file_id, index, plaintext, iv);
            assert_eq!(sealed.len(), chunk::sealed_len(plaintext.len()));
            let opened = chunk::decrypt_chunk(&key, file_id, index, &sealed);
            assert_eq!(opened.as_deref(), Ok(plaintext));
            let elsewhere = chunk::decrypt_chunk(&key, file_id, index.wrapping_add(1), &sealed);
            assert_eq!(
                elsewhere,
                Err(ChunkError::BadTag {
                    index: index.wrapping_add(1)
                })
            );
        }
        2 => {
            let iv_and_ciphertext = input.rest();
            let mut sealed = iv_and_ciphertext.to_vec();
            sealed.extend_from_slice(&documented_tag(file_id, index, iv_and_ciphertext));
            match chunk::decrypt_chunk(&key, file_id, index, &sealed) {
                Ok(_) | Err(ChunkError::BadPadding { .. } | ChunkError::TooShort { .. }) => {}
                Err(e) => panic!("a chunk tagged as documented was refused: {e}"),
            }
        }
        _ => {
            let bytes = input.rest();
            match FileKey::from_bytes(bytes) {
                Ok(key) => assert_eq!(key.to_bytes().as_slice(), bytes),
                Err(e) => assert_eq!(e, ChunkError::BadKeyLength { len: bytes.len() }),
            }
        }
    }
});
