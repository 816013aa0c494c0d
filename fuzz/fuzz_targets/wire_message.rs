//! Every message the relay and the peers decode from a frame body: requests (the relay
//! reads them from anyone who connects), responses and pushed events (the peer reads them
//! from the relay).
//!
//! Input: one byte picks the type, the rest is the MessagePack body. Decoding must never
//! panic; what decodes must survive a round trip through a whole frame (decode, encode,
//! decode gives the same value, and encoding it again gives the same bytes), and its
//! `Debug` (hand-written for secrets) must not panic either.

#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uchat_wire::frame;
use uchat_wire::{Push, PushEvent, Request, Response};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(body: &[u8]) {
    let Ok(first) = frame::decode_body::<T>(body) else {
        return;
    };
    let _ = format!("{first:?}");
    let bytes = frame::encode(&first, usize::MAX).expect("what decoded encodes");
    let again: T = frame::decode_frame(&bytes, usize::MAX).expect("what encoded decodes");
    assert_eq!(again, first, "decode, encode, decode changed the value");
    let bytes_again = frame::encode(&again, usize::MAX).expect("encodes");
    assert_eq!(bytes_again, bytes, "encoding is not stable");
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 4 {
        0 => round_trip::<Request>(body),
        1 => round_trip::<Response>(body),
        2 => round_trip::<Push>(body),
        _ => round_trip::<PushEvent>(body),
    }
});
