//! The fixed keys and sessions the crypto targets open the fuzzer's bytes with.
//!
//! Olm and Megolm keys come from the operating system's randomness, so the seed generator
//! makes them once and checks them in under `fixtures/` (sealed, as the peer's store keeps
//! them); the seed corpora hold real messages encrypted to them. A target restores the
//! same state for every input, so a failing input fails again when it is replayed. The
//! file and post keys are plain constants.

use serde::{Deserialize, Serialize};
use uchat_peer::crypto::chunk::FileKey;
use uchat_peer::crypto::megolm::InboundGroupSession;
use uchat_peer::crypto::olm::{Identity, SealedSession, SessionSet};
use uchat_peer::crypto::password::LocalKey;
use uchat_wire::{CommentId, PostId, UserName};

/// The local key the fixtures' pickles are sealed under.
pub const LOCAL_KEY: [u8; 32] = [0x5a; 32];

/// The file key of the chunk target (any 64 bytes are a key).
pub const FILE_KEY: [u8; FileKey::BYTES] = [0x17; FileKey::BYTES];

/// The post key of the moment target.
pub const POST_KEY: [u8; FileKey::BYTES] = [0x42; FileKey::BYTES];

/// The post the moment target opens.
pub const POST: PostId = PostId([0x50; 16]);

/// The comment the moment target's sealed comments are.
pub const COMMENT: CommentId = CommentId([0xc0; 16]);

/// The author of the moment target's post (and of the sealed comments).
pub fn author() -> UserName {
    UserName::parse("alice").expect("a valid constant name")
}

/// The receiving side of an established Olm conversation, as the store seals it.
///
/// `bob` has opened alice's first (pre-key) message and answered; alice's later messages
/// in the seed corpus are normal messages on that session. bob's account still holds an
/// unused one-time key and a fallback key, so a new pre-key message can start a session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OlmFixture {
    /// bob's account, sealed under [`LOCAL_KEY`].
    pub account: String,
    /// bob's sessions with alice, sealed under [`LOCAL_KEY`].
    pub sessions: Vec<FixtureSession>,
    /// alice's Curve25519 identity key, as her envelopes carry it.
    pub sender_key: Vec<u8>,
}

/// One sealed session, as [`SealedSession`] (which has no serde).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FixtureSession {
    /// vodozemac's session id.
    pub session_id: String,
    /// The sealed pickle.
    pub pickle: String,
    /// When it was last used.
    pub last_used_ms: u64,
    /// alice's key it was made with.
    pub peer_key: Vec<u8>,
}

impl From<&SealedSession> for FixtureSession {
    fn from(s: &SealedSession) -> Self {
        Self {
            session_id: s.session_id.clone(),
            pickle: s.pickle.clone(),
            last_used_ms: s.last_used_ms,
            peer_key: s.peer_key.clone(),
        }
    }
}

impl OlmFixture {
    /// Reads the fixture file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        rmp_serde::from_slice(bytes).expect("fixtures/olm.msgpack is written by the seed generator")
    }

    /// The fixture's bytes, for the file.
    pub fn to_bytes(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("plain strings and bytes encode")
    }

    /// A fresh copy of bob's account and sessions: each input starts from the same state.
    pub fn restore(&self) -> (Identity, SessionSet) {
        let key = LocalKey::from_bytes(LOCAL_KEY);
        let identity = Identity::unseal(&self.account, &key).expect("the fixture's account");
        let sealed: Vec<SealedSession> = self
            .sessions
            .iter()
            .map(|s| SealedSession {
                session_id: s.session_id.clone(),
                pickle: s.pickle.clone(),
                last_used_ms: s.last_used_ms,
                peer_key: s.peer_key.clone(),
            })
            .collect();
        let sessions = SessionSet::unseal(&sealed, &key).expect("the fixture's sessions");
        (identity, sessions)
    }
}

/// The inbound group session of the Megolm target, from the fixture's session key.
pub fn inbound_group_session(key: &[u8]) -> InboundGroupSession {
    InboundGroupSession::from_key(key).expect("fixtures/megolm.key is a Megolm session key")
}

/// The chunk target's file key.
pub fn file_key() -> FileKey {
    FileKey::from_bytes(&FILE_KEY).expect("64 bytes")
}

/// The moment target's post key.
pub fn post_key() -> FileKey {
    FileKey::from_bytes(&POST_KEY).expect("64 bytes")
}
