//! Megolm group sessions (vodozemac): the outbound session a member encrypts group
//! messages with, and the inbound sessions it decrypts the other members' messages with.
//!
//! Pure: no I/O. A session's key travels to each member inside an Olm message (see the
//! client); here it is only bytes. Every group message is signed by its session's Ed25519
//! key and carries a MAC, both checked on decryption, and an inbound session remembers
//! which message indexes it has opened, so a replayed message is refused even if the
//! relay hands it over under a new id.
//!
//! Calling order, sender: [`OutboundGroupSession::new`], then at once
//! [`OutboundGroupSession::share_source`] (kept, sealed, to share the key from the first
//! message on with [`InboundGroupSession::export_first`], however late a member gets it:
//! every member of a session's epoch may read all of it), then
//! [`OutboundGroupSession::encrypt`] per message; a new session whenever the membership
//! changes ([`needs_rotation`]). Receiver: [`InboundGroupSession::from_key`] once per
//! shared key, then [`InboundGroupSession::decrypt`] per message.

use std::collections::BTreeSet;
use std::fmt;

use vodozemac::megolm::{
    DecryptionError, ExportedSessionKey, GroupSession, GroupSessionPickle,
    InboundGroupSessionPickle, MegolmMessage, SessionConfig, SessionKey,
};

use super::password::LocalKey;

/// Messages one outbound session encrypts before it is replaced (design.md; Matrix's
/// default too).
pub const ROTATE_AFTER_MESSAGES: u32 = 1000;
/// Age after which an outbound session is replaced, in ms (7 days).
pub const ROTATE_AFTER_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// Why a Megolm operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MegolmError {
    /// A sealed session could not be opened: the password is wrong (or the file damaged).
    #[error("cannot unlock a group session: wrong password, or the profile is damaged")]
    WrongPassword,
    /// A shared session key is not a valid Megolm session key (or not validly signed).
    #[error("malformed group session key")]
    MalformedKey,
    /// The bytes are not a Megolm message.
    #[error("malformed group message")]
    MalformedMessage,
    /// The message's signature or MAC does not verify: it was tampered with or forged.
    #[error("the group message failed its authenticity check (tampered with or forged)")]
    Forged,
    /// The message is older than what this session was shared from.
    #[error("the group message predates the session key this member was given")]
    UnknownIndex,
    /// This session already opened a message with this index.
    #[error("the group message was replayed (index {index} was seen already)")]
    Replayed {
        /// The message index.
        index: u32,
    },
}

/// The session this member encrypts its group messages with.
pub struct OutboundGroupSession {
    session: GroupSession,
}

impl fmt::Debug for OutboundGroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OutboundGroupSession({}, index {})",
            self.session.session_id(),
            self.session.message_index()
        )
    }
}

impl Default for OutboundGroupSession {
    fn default() -> Self {
        Self::new()
    }
}

impl OutboundGroupSession {
    /// A fresh session with new random keys.
    pub fn new() -> Self {
        Self {
            session: GroupSession::new(SessionConfig::version_1()),
        }
    }

    /// The session's id (its public signing key, base64).
    pub fn id(&self) -> String {
        self.session.session_id()
    }

    /// The session key to share with members, at the current index: a member given it can
    /// read this and every later message, none before.
    pub fn key(&self) -> Vec<u8> {
        self.session.session_key().to_bytes()
    }

    /// An inbound copy of this session from its current index, to share the key from
    /// there later (call it when the session is new, so members get it from the start).
    pub fn share_source(&self) -> InboundGroupSession {
        InboundGroupSession {
            session: vodozemac::megolm::InboundGroupSession::new(
                &self.session.session_key(),
                SessionConfig::version_1(),
            ),
            seen: BTreeSet::new(),
        }
    }

    /// How many messages this session has encrypted.
    pub fn message_index(&self) -> u32 {
        self.session.message_index()
    }

    /// Encrypts one message; returns the Megolm message bytes.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Vec<u8> {
        self.session.encrypt(plaintext).to_bytes()
    }

    /// The session, encrypted under `key`, for the local store.
    pub fn seal(&self, key: &LocalKey) -> String {
        self.session.pickle().encrypt(key.bytes())
    }

    /// Opens a sealed session.
    pub fn unseal(sealed: &str, key: &LocalKey) -> Result<Self, MegolmError> {
        let pickle = GroupSessionPickle::from_encrypted(sealed, key.bytes())
            .map_err(|_| MegolmError::WrongPassword)?;
        Ok(Self {
            session: GroupSession::from_pickle(pickle),
        })
    }
}

/// Whether an outbound session made at `created_ms` for membership `epoch`, having
/// encrypted `messages`, must be replaced before encrypting for `current_epoch` at `now_ms`:
/// on every membership change, after [`ROTATE_AFTER_MESSAGES`] and after
/// [`ROTATE_AFTER_MS`].
pub fn needs_rotation(
    epoch: u64,
    current_epoch: u64,
    created_ms: u64,
    messages: u32,
    now_ms: u64,
) -> bool {
    epoch != current_epoch
        || messages >= ROTATE_AFTER_MESSAGES
        || now_ms.saturating_sub(created_ms) >= ROTATE_AFTER_MS
}

/// A session another member shared with this one, and the message indexes it has opened.
pub struct InboundGroupSession {
    session: vodozemac::megolm::InboundGroupSession,
    seen: BTreeSet<u32>,
}

impl fmt::Debug for InboundGroupSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "InboundGroupSession({}, {} seen)",
            self.session.session_id(),
            self.seen.len()
        )
    }
}

/// A decrypted group message.
#[derive(Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The decrypted bytes, whose signature and MAC checked out; not yet parsed.
    pub plaintext: Vec<u8>,
    /// Its index in the sender's session.
    pub index: u32,
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Decrypted(<{} bytes>, index {})",
            self.plaintext.len(),
            self.index
        )
    }
}

/// A sealed inbound session as the store keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedInbound {
    /// The pickle, encrypted under the local key.
    pub pickle: String,
    /// The message indexes opened so far.
    pub seen: Vec<u32>,
}

impl fmt::Debug for SealedInbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SealedInbound(<{} bytes>, {} seen)",
            self.pickle.len(),
            self.seen.len()
        )
    }
}

impl InboundGroupSession {
    /// A session from a key a member shared (over an authenticated Olm channel): a session
    /// key ([`OutboundGroupSession::key`]) or an exported one
    /// ([`InboundGroupSession::export_first`]).
    pub fn from_key(key: &[u8]) -> Result<Self, MegolmError> {
        let config = SessionConfig::version_1();
        let session = match SessionKey::from_bytes(key) {
            Ok(key) => vodozemac::megolm::InboundGroupSession::new(&key, config),
            Err(_) => {
                let key =
                    ExportedSessionKey::from_bytes(key).map_err(|_| MegolmError::MalformedKey)?;
                vodozemac::megolm::InboundGroupSession::import(&key, config)
            }
        };
        Ok(Self {
            session,
            seen: BTreeSet::new(),
        })
    }

    /// The key from the first message this session can open, to share with a member.
    pub fn export_first(&self) -> Vec<u8> {
        self.session.export_at_first_known_index().to_bytes()
    }

    /// The index of the first message this session can open.
    pub fn first_known_index(&self) -> u32 {
        self.session.first_known_index()
    }

    /// Takes over the messages opened so far by `earlier`, another copy of this session
    /// (when a better copy, one that opens earlier messages, replaces it).
    pub fn keep_seen_of(&mut self, earlier: &InboundGroupSession) {
        self.seen.extend(earlier.seen.iter().copied());
    }

    /// The session's id; equal to the sender's [`OutboundGroupSession::id`].
    pub fn id(&self) -> String {
        self.session.session_id()
    }

    /// Decrypts one message after checking its signature and MAC; a genuine message whose
    /// index this session opened before is refused as [`MegolmError::Replayed`].
    pub fn decrypt(&mut self, message: &[u8]) -> Result<Decrypted, MegolmError> {
        let message =
            MegolmMessage::from_bytes(message).map_err(|_| MegolmError::MalformedMessage)?;
        // Authenticity first, so a damaged copy of a seen message is called forged, not
        // replayed.
        let decrypted = self.session.decrypt(&message).map_err(|e| match e {
            DecryptionError::UnknownMessageIndex(..) => MegolmError::UnknownIndex,
            DecryptionError::Signature(_)
            | DecryptionError::InvalidMAC(_)
            | DecryptionError::InvalidMACLength(..)
            | DecryptionError::InvalidPadding(_) => MegolmError::Forged,
        })?;
        let index = decrypted.message_index;
        if !self.seen.insert(index) {
            return Err(MegolmError::Replayed { index });
        }
        Ok(Decrypted {
            plaintext: decrypted.plaintext,
            index,
        })
    }

    /// The session, encrypted under `key`, with the indexes it has opened.
    pub fn seal(&self, key: &LocalKey) -> SealedInbound {
        SealedInbound {
            pickle: self.session.pickle().encrypt(key.bytes()),
            seen: self.seen.iter().copied().collect(),
        }
    }

    /// Opens a sealed session.
    pub fn unseal(sealed: &SealedInbound, key: &LocalKey) -> Result<Self, MegolmError> {
        let pickle = InboundGroupSessionPickle::from_encrypted(&sealed.pickle, key.bytes())
            .map_err(|_| MegolmError::WrongPassword)?;
        Ok(Self {
            session: vodozemac::megolm::InboundGroupSession::from_pickle(pickle),
            seen: sealed.seen.iter().copied().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_key() -> LocalKey {
        LocalKey::from_bytes([9; 32])
    }

    #[test]
    fn members_given_the_key_read_every_message_in_any_order() {
        let mut alice = OutboundGroupSession::new();
        let mut bob = InboundGroupSession::from_key(&alice.key()).expect("valid key");
        assert_eq!(bob.id(), alice.id());
        let first = alice.encrypt("你好，大家 👋".as_bytes());
        let second = alice.encrypt(b"second");
        assert_eq!(alice.message_index(), 2);
        let late = bob.decrypt(&second).expect("decrypts");
        assert_eq!((late.plaintext.as_slice(), late.index), (&b"second"[..], 1));
        let early = bob.decrypt(&first).expect("out of order is fine");
        assert_eq!(early.plaintext, "你好，大家 👋".as_bytes());
        assert!(
            !format!("{early:?}").contains("大家"),
            "Debug hides plaintext"
        );
    }

    #[test]
    fn a_member_given_a_later_key_cannot_read_earlier_messages() {
        let mut alice = OutboundGroupSession::new();
        let before = alice.encrypt(b"before dave joined");
        let mut dave = InboundGroupSession::from_key(&alice.key()).expect("valid key");
        let after = alice.encrypt(b"after");
        assert!(matches!(
            dave.decrypt(&before),
            Err(MegolmError::UnknownIndex)
        ));
        assert_eq!(dave.decrypt(&after).expect("decrypts").plaintext, b"after");
    }

    #[test]
    fn tampered_forged_and_replayed_messages_are_refused() {
        let mut alice = OutboundGroupSession::new();
        let start_key = alice.key();
        let mut bob = InboundGroupSession::from_key(&start_key).expect("valid key");
        let message = alice.encrypt(b"pay 10 yuan");
        // Any flipped byte breaks the signature or the MAC (or the framing). The framing is
        // protobuf, so a flip that turns a field tag into an unknown one decodes to the very
        // same message: accepting that is no forgery, as long as nothing else comes out.
        for i in 0..message.len() {
            let mut tampered = message.clone();
            tampered[i] ^= 0x40;
            let mut fresh = InboundGroupSession::from_key(&start_key).expect("valid");
            match fresh.decrypt(&tampered) {
                Err(
                    MegolmError::Forged | MegolmError::MalformedMessage | MegolmError::UnknownIndex,
                ) => {}
                Ok(same) => assert_eq!(
                    (same.plaintext.as_slice(), same.index),
                    (&b"pay 10 yuan"[..], 0),
                    "byte {i} flipped gave another message"
                ),
                Err(other) => panic!("byte {i} flipped: unexpected {other:?}"),
            }
        }
        // A session key someone made up themselves signs its own messages: they are no
        // use against alice's session, even with her session's id copied.
        let mut mallory = OutboundGroupSession::new();
        let forged = mallory.encrypt(b"pay 1000 yuan");
        assert!(matches!(bob.decrypt(&forged), Err(MegolmError::Forged)));
        // The genuine message opens once; its replay is refused.
        assert_eq!(
            bob.decrypt(&message).expect("genuine").plaintext,
            b"pay 10 yuan"
        );
        assert!(matches!(
            bob.decrypt(&message),
            Err(MegolmError::Replayed { index: 0 })
        ));
        // Also after sealing and unsealing: the seen indexes are kept.
        let sealed = bob.seal(&local_key());
        let mut reopened = InboundGroupSession::unseal(&sealed, &local_key()).expect("opens");
        assert!(matches!(
            reopened.decrypt(&message),
            Err(MegolmError::Replayed { .. })
        ));
        assert!(matches!(
            InboundGroupSession::from_key(b"not a session key"),
            Err(MegolmError::MalformedKey)
        ));
    }

    #[test]
    fn sealed_sessions_need_the_right_key_and_keep_their_ratchet() {
        let mut alice = OutboundGroupSession::new();
        alice.encrypt(b"one");
        let sealed = alice.seal(&local_key());
        assert!(!sealed.contains(&alice.id()), "the pickle is encrypted");
        assert!(matches!(
            OutboundGroupSession::unseal(&sealed, &LocalKey::from_bytes([1; 32])),
            Err(MegolmError::WrongPassword)
        ));
        let mut reopened = OutboundGroupSession::unseal(&sealed, &local_key()).expect("opens");
        assert_eq!(reopened.message_index(), 1);
        let mut bob = InboundGroupSession::from_key(&reopened.key()).expect("valid");
        assert_eq!(
            bob.decrypt(&reopened.encrypt(b"two"))
                .expect("decrypts")
                .index,
            1
        );
    }

    #[test]
    fn a_key_shared_from_the_share_source_opens_the_session_from_its_first_message() {
        let mut alice = OutboundGroupSession::new();
        let source = alice.share_source();
        let first = alice.encrypt(b"first");
        let second = alice.encrypt(b"second");
        // Shared late, after two messages: still from the start.
        let late = source.export_first();
        let mut bob = InboundGroupSession::from_key(&late).expect("valid exported key");
        assert_eq!((bob.id(), bob.first_known_index()), (alice.id(), 0));
        assert_eq!(bob.decrypt(&first).expect("opens").plaintext, b"first");
        // A worse copy (from the current index) opens only later messages; a better copy
        // takes over what it has seen.
        let mut worse = InboundGroupSession::from_key(&alice.key()).expect("valid key");
        assert_eq!(worse.first_known_index(), 2);
        assert!(matches!(
            worse.decrypt(&second),
            Err(MegolmError::UnknownIndex)
        ));
        let mut better = InboundGroupSession::from_key(&late).expect("valid");
        better.keep_seen_of(&bob);
        assert!(matches!(
            better.decrypt(&first),
            Err(MegolmError::Replayed { index: 0 })
        ));
        assert_eq!(better.decrypt(&second).expect("opens").index, 1);
        // The sealed source keeps its ratchet at the start.
        let sealed = source.seal(&local_key());
        let reopened = InboundGroupSession::unseal(&sealed, &local_key()).expect("opens");
        assert_eq!(reopened.export_first(), late);
    }

    #[test]
    fn sessions_rotate_on_membership_changes_age_and_use() {
        assert!(!needs_rotation(3, 3, 0, 10, 1000));
        assert!(needs_rotation(3, 4, 0, 10, 1000), "membership changed");
        assert!(
            needs_rotation(3, 3, 0, ROTATE_AFTER_MESSAGES, 1000),
            "used up"
        );
        assert!(needs_rotation(3, 3, 0, 1, ROTATE_AFTER_MS), "a week old");
    }
}
