//! Shared pieces of Uchat's fuzz targets: a reader that splits the fuzzer's bytes into
//! the parts a target needs ([`input`]), the fixed keys and sessions the crypto targets
//! open messages with ([`fixture`]), and what a peer does with a decrypted message
//! ([`received`]).
//!
//! The targets themselves are in `fuzz_targets/`; `src/bin/seed.rs` writes the fixtures
//! and the seed corpora. Nothing here is used outside fuzzing.

pub mod fixture;
pub mod input;
pub mod received;
