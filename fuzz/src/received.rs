//! What a peer does with a decrypted 1:1 or group message, for the crypto targets to run
//! on every plaintext that opens: parse the [`Payload`], take its content in as a
//! [`Body`], and make a received file's name safe.

use uchat_peer::body::Body;
use uchat_peer::envelope::{Content, Payload};
use uchat_peer::filename::{MAX_NAME_BYTES, safe_file_name};

/// Takes in a decrypted payload the way the client does; panics only if a rule the
/// receiving side relies on is broken.
pub fn take_in(plaintext: &[u8]) {
    let Ok(payload) = Payload::from_bytes(plaintext) else {
        return;
    };
    let _ = format!("{payload:?}");
    if let Content::File(file) = &payload.content {
        check_safe_name(&file.name);
    }
    let _ = Body::from_content(payload.content);
}

/// A received name, made safe, is one plain name within the length limit.
pub fn check_safe_name(name: &str) {
    let safe = safe_file_name(name);
    assert!(!safe.is_empty(), "an empty name from {name:?}");
    assert!(
        safe.len() <= MAX_NAME_BYTES,
        "{} bytes from {name:?}",
        safe.len()
    );
    assert!(
        !safe.contains(['/', '\\']) && !safe.chars().any(char::is_control),
        "{safe:?} from {name:?} is not a plain name"
    );
    assert!(safe != "." && safe != "..", "{safe:?} from {name:?}");
}
