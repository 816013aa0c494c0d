//! A 1:1 message as the relay hands it to a peer: envelope parsing, Olm message parsing
//! and decryption on an established session (or a new session from a pre-key message),
//! and the intake of whatever opens.
//!
//! Input: a mode byte, then either (even) the envelope bytes exactly as the relay delivers
//! them, or (odd) an Olm message type byte and body, sent under alice's key without the
//! envelope around it, so that mutations of the Olm bytes are not undone by the envelope's
//! length fields. bob's state is restored from the fixture for every input.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use uchat_fuzz::fixture::OlmFixture;
use uchat_fuzz::received;
use uchat_peer::crypto::olm;
use uchat_peer::envelope::Envelope;

static FIXTURE: LazyLock<OlmFixture> =
    LazyLock::new(|| OlmFixture::from_bytes(include_bytes!("../fixtures/olm.msgpack")));

/// Well after the fixture's sessions were last used.
const NOW_MS: u64 = 1_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (sender_key, message_type, body) = if mode % 2 == 0 {
        match Envelope::from_bytes(rest) {
            Ok(envelope) => (envelope.sender_key, envelope.message_type, envelope.body),
            Err(_) => return,
        }
    } else {
        let Some((&message_type, body)) = rest.split_first() else {
            return;
        };
        (FIXTURE.sender_key.clone(), message_type, body.to_vec())
    };
    let Ok(message) = olm::message_from_parts(message_type, &body) else {
        return;
    };
    let (mut identity, mut sessions) = FIXTURE.restore();
    if let Ok(opened) = sessions.decrypt(&mut identity, &sender_key, &message, NOW_MS) {
        received::take_in(&opened.plaintext);
    }
});
