//! Voice datagrams: opening what arrives on a call, the packet inside, and the replay
//! window.
//!
//! Input: a mode byte, then:
//! - mode 0: a datagram body as the relay forwards it, opened with the callee's keys (a
//!   fresh call per run: no input can pass the tag, so this reaches the length and tag
//!   checks); what opens is parsed as a packet;
//! - mode 1: a packet as it is inside the encryption (the sender holds the call key, so
//!   any bytes can arrive here): parsing must not panic, and what parses must encode to
//!   bytes that parse to the same packet;
//! - mode 2: a sequence number and a plaintext sealed by the caller and opened by the
//!   callee, which must give them back;
//! - mode 3: sequence numbers (4 bytes each) offered to a replay window, which must take
//!   exactly those a plain model takes: each number once, and none 128 or more behind
//!   the newest.

#![no_main]

use std::collections::HashSet;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use uchat_fuzz::input::Input;
use uchat_peer::crypto::voice::{
    CallKeyPair, CallKeys, CallRole, OVERHEAD_BYTES, REPLAY_WINDOW, ReplayWindow,
};
use uchat_peer::voice::packet::VoicePacket;
use uchat_wire::CallId;

const CALL: CallId = CallId([0xca; 16]);

/// The caller's and the callee's keys of one call.
static KEYS: LazyLock<(CallKeys, CallKeys)> = LazyLock::new(|| {
    let caller = CallKeyPair::generate();
    let callee = CallKeyPair::generate();
    let (caller_public, callee_public) = (caller.public_bytes(), callee.public_bytes());
    (
        caller
            .agree(&callee_public, CALL, CallRole::Caller)
            .expect("a fresh key agrees"),
        callee
            .agree(&caller_public, CALL, CallRole::Callee)
            .expect("a fresh key agrees"),
    )
});

fn parse(bytes: &[u8]) {
    let Ok(packet) = VoicePacket::from_bytes(bytes) else {
        return;
    };
    let again = VoicePacket::from_bytes(&packet.to_bytes());
    assert_eq!(
        again.as_ref(),
        Ok(&packet),
        "a packet changed through its bytes"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let (caller, callee) = &*KEYS;
    match input.u8() % 4 {
        0 => {
            if let Ok((_, plaintext)) = callee.open(input.rest()) {
                parse(&plaintext);
            }
        }
        1 => parse(input.rest()),
        2 => {
            let seq = input.u32();
            let plaintext = input.rest();
            let sealed = caller.seal(seq, plaintext);
            assert_eq!(sealed.len(), plaintext.len() + OVERHEAD_BYTES);
            assert_eq!(callee.open(&sealed), Ok((seq, plaintext.to_vec())));
            assert!(
                caller.open(&sealed).is_err(),
                "a side opened its own datagram"
            );
        }
        _ => {
            let mut window = ReplayWindow::default();
            let mut taken = HashSet::new();
            let mut newest: Option<u32> = None;
            for seq in input.rest().chunks_exact(4) {
                let seq = u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]);
                let fresh = !taken.contains(&seq)
                    && newest.is_none_or(|n| seq > n || n - seq < REPLAY_WINDOW);
                assert_eq!(
                    window.accept(seq).is_ok(),
                    fresh,
                    "seq {seq} after {newest:?}"
                );
                if fresh {
                    taken.insert(seq);
                    newest = Some(newest.map_or(seq, |n| n.max(seq)));
                }
            }
        }
    }
});
