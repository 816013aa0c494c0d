//! A group message as the relay hands it to a member: group envelope parsing, Megolm
//! message parsing, signature, MAC and replay checks, and the intake of whatever opens;
//! also the parsing of a shared session key.
//!
//! Input: a mode byte, then: the group envelope bytes as the relay delivers them (mode
//! 0), a bare Megolm message (1: no envelope lengths to undo mutations), or a session key
//! as one member shares it with another (2). The inbound session is made afresh from the
//! fixture's key for every input; a message is opened twice, and the second time must be
//! refused as a replay.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uchat_fuzz::fixture;
use uchat_fuzz::received;
use uchat_peer::crypto::megolm::{InboundGroupSession, MegolmError};
use uchat_peer::envelope::GroupEnvelope;

const SESSION_KEY: &[u8] = include_bytes!("../fixtures/megolm.key");

fn open(message: &[u8]) {
    let mut session = fixture::inbound_group_session(SESSION_KEY);
    let Ok(opened) = session.decrypt(message) else {
        return;
    };
    received::take_in(&opened.plaintext);
    assert!(
        matches!(session.decrypt(message), Err(MegolmError::Replayed { index }) if index == opened.index),
        "a message opened twice"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok(envelope) = GroupEnvelope::from_bytes(rest) {
                open(&envelope.body);
            }
        }
        1 => open(rest),
        _ => {
            let Ok(session) = InboundGroupSession::from_key(rest) else {
                return;
            };
            let exported = session.export_first();
            let again = InboundGroupSession::from_key(&exported).expect("an exported key imports");
            assert_eq!(again.id(), session.id());
            assert_eq!(again.first_known_index(), session.first_known_index());
        }
    }
});
