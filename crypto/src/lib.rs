//! End-to-end cryptography, pure and tested on its own: nothing here touches the network
//! or the disk.
//!
//! - [`olm`]: vodozemac Olm accounts and Double Ratchet sessions for 1:1 messages.
//! - [`megolm`]: vodozemac Megolm sessions for group messages.
//! - [`chunk`]: the AES-256-CBC + HMAC-SHA256 chunk cipher for files.
//! - [`moment`]: posts, likes and comments sealed under a post's key.
//! - [`password`]: the argon2id-derived key that seals private state on disk.
//! - [`safety`]: safety numbers for verifying a contact's identity.
//! - [`voice`]: the per-call keys and the voice datagram cipher with its replay window.

pub mod chunk;
pub mod megolm;
pub mod moment;
pub mod olm;
pub mod password;
pub mod safety;
pub mod voice;
