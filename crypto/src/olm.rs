//! Olm accounts and sessions (vodozemac): identity keys, signed one-time and fallback keys,
//! and the per-contact set of Double Ratchet sessions.
//!
//! Pure: no I/O. Private state leaves this module only as pickles sealed under a
//! [`LocalKey`](super::password::LocalKey).

use std::fmt;

use uchat_wire::{IdentityKeys, SignedKey};
use vodozemac::olm::{Account, OlmMessage, Session, SessionConfig, SessionPickle};
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature};

use super::password::LocalKey;

/// Domain label signed together with every published one-time or fallback key.
const SIGNED_KEY_LABEL: &[u8] = b"uchat-signed-key-v1";

/// Sessions kept per contact; the least recently used beyond this are dropped.
pub const MAX_SESSIONS_PER_CONTACT: usize = 8;

/// Why an Olm operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OlmError {
    /// The sealed account or session could not be opened: the password is wrong (or the
    /// file was damaged).
    #[error("cannot unlock the local keys: wrong password, or the profile is damaged")]
    WrongPassword,
    /// A key from the relay is not a valid key.
    #[error("malformed {what} from the relay")]
    MalformedKey {
        /// Which key.
        what: &'static str,
    },
    /// A one-time key's signature does not verify against the owner's identity.
    #[error("the claimed key is not signed by the contact's identity key")]
    BadSignature,
    /// The message could not be parsed as Olm.
    #[error("malformed Olm message")]
    MalformedMessage,
    /// No session could decrypt the message.
    #[error("no session with this contact matches the message")]
    NoMatchingSession,
    /// A new session could not be created from the message.
    #[error("cannot create a session from the message: {reason}")]
    SessionCreation {
        /// What vodozemac objected to.
        reason: String,
    },
    /// There is no session to encrypt with.
    #[error("no session with this contact yet")]
    NoSession,
    /// Encryption failed.
    #[error("encryption failed: {reason}")]
    Encryption {
        /// What vodozemac said when encrypting.
        reason: String,
    },
}

fn curve_key(bytes: &[u8], what: &'static str) -> Result<Curve25519PublicKey, OlmError> {
    Curve25519PublicKey::from_slice(bytes).map_err(|_| OlmError::MalformedKey { what })
}

fn ed_key(bytes: &[u8]) -> Result<Ed25519PublicKey, OlmError> {
    let arr: &[u8; 32] = bytes.try_into().map_err(|_| OlmError::MalformedKey {
        what: "signing key",
    })?;
    Ed25519PublicKey::from_slice(arr).map_err(|_| OlmError::MalformedKey {
        what: "signing key",
    })
}

fn signed_key_message(key: &[u8]) -> Vec<u8> {
    [SIGNED_KEY_LABEL, key].concat()
}

/// Checks that `key` is signed by `identity`'s Ed25519 key.
pub fn verify_signed_key(identity: &IdentityKeys, key: &SignedKey) -> Result<(), OlmError> {
    let signer = ed_key(&identity.ed25519)?;
    let signature =
        Ed25519Signature::from_slice(&key.signature).map_err(|_| OlmError::BadSignature)?;
    signer
        .verify(&signed_key_message(&key.key), &signature)
        .map_err(|_| OlmError::BadSignature)
}

/// This account's Olm identity: its long-term keys and its stock of one-time keys.
pub struct Identity {
    account: Account,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.account.curve25519_key().to_base64())
    }
}

impl Identity {
    /// A fresh account with new identity keys.
    pub fn generate() -> Self {
        Self {
            account: Account::new(),
        }
    }

    /// The public keys the relay stores and serves.
    pub fn public_keys(&self) -> IdentityKeys {
        IdentityKeys {
            curve25519: self.account.curve25519_key().to_bytes().to_vec(),
            ed25519: self.account.ed25519_key().as_bytes().to_vec(),
        }
    }

    fn sign(&self, key: Curve25519PublicKey) -> SignedKey {
        let bytes = key.to_bytes().to_vec();
        let signature = self
            .account
            .sign(signed_key_message(&bytes))
            .to_bytes()
            .to_vec();
        SignedKey {
            key: bytes,
            signature,
        }
    }

    /// Makes `count` new one-time keys, signed, and marks them published.
    pub fn new_one_time_keys(&mut self, count: usize) -> Vec<SignedKey> {
        let created = self.account.generate_one_time_keys(count).created;
        self.account.mark_keys_as_published();
        created.into_iter().map(|key| self.sign(key)).collect()
    }

    /// Makes a new signed fallback key (the previous one still works for a while).
    pub fn new_fallback_key(&mut self) -> Option<SignedKey> {
        self.account.generate_fallback_key();
        let key = self.account.fallback_key().into_values().next();
        self.account.mark_keys_as_published();
        key.map(|key| self.sign(key))
    }

    /// The account, encrypted under `key`, for the local store.
    pub fn seal(&self, key: &LocalKey) -> String {
        self.account.pickle().encrypt(key.bytes())
    }

    /// Opens a sealed account; fails with [`OlmError::WrongPassword`] under the wrong key.
    pub fn unseal(sealed: &str, key: &LocalKey) -> Result<Self, OlmError> {
        let pickle = vodozemac::olm::AccountPickle::from_encrypted(sealed, key.bytes())
            .map_err(|_| OlmError::WrongPassword)?;
        Ok(Self {
            account: Account::from_pickle(pickle),
        })
    }

    /// Opens an outbound session to a contact from a key claimed from the relay, after
    /// checking the key's signature.
    pub fn open_outbound(
        &self,
        theirs: &IdentityKeys,
        claimed: &SignedKey,
    ) -> Result<Session, OlmError> {
        verify_signed_key(theirs, claimed)?;
        let identity_key = curve_key(&theirs.curve25519, "identity key")?;
        let one_time_key = curve_key(&claimed.key, "one-time key")?;
        self.account
            .create_outbound_session(SessionConfig::version_1(), identity_key, one_time_key)
            .map_err(|e| OlmError::SessionCreation {
                reason: e.to_string(),
            })
    }
}

/// An Olm message as carried in an [`Envelope`](crate::envelope::Envelope).
pub fn message_from_parts(message_type: u8, body: &[u8]) -> Result<OlmMessage, OlmError> {
    OlmMessage::from_parts(message_type.into(), body).map_err(|_| OlmError::MalformedMessage)
}

/// Splits an Olm message into its type and body.
pub fn message_to_parts(message: &OlmMessage) -> (u8, Vec<u8>) {
    let (message_type, body) = message.to_parts();
    (u8::try_from(message_type).unwrap_or(u8::MAX), body)
}

/// One session, the contact key it was made with, and when it last worked.
struct Entry {
    session: Session,
    peer_key: Vec<u8>,
    last_used_ms: u64,
}

/// A decrypted Olm message.
#[derive(Debug)]
pub struct Decrypted {
    /// What the message said.
    pub plaintext: Vec<u8>,
    /// Whether the message opened a new inbound session and so used up a one-time key:
    /// the account changed and must be saved with the session.
    pub account_changed: bool,
}

impl Decrypted {
    fn on_a_known_session(plaintext: Vec<u8>) -> Self {
        Self {
            plaintext,
            account_changed: false,
        }
    }
}

/// Every session with one contact.
///
/// Keeps every inbound session (two peers that open sessions to each other at the same
/// moment both keep working) and sends on the one most recently used successfully among
/// those made with the contact's pinned identity key: a session opened by someone with
/// another key can be read (and is flagged) but is never used to send.
#[derive(Default)]
pub struct SessionSet {
    entries: Vec<Entry>,
}

impl fmt::Debug for SessionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionSet({} sessions)", self.entries.len())
    }
}

/// A sealed session as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSession {
    /// vodozemac's session id.
    pub session_id: String,
    /// The pickle, encrypted under the local key.
    pub pickle: String,
    /// When it last encrypted or decrypted successfully.
    pub last_used_ms: u64,
    /// The contact's Curve25519 identity key the session was made with.
    pub peer_key: Vec<u8>,
}

impl SessionSet {
    /// Opens sealed sessions.
    pub fn unseal(sealed: &[SealedSession], key: &LocalKey) -> Result<Self, OlmError> {
        let entries = sealed
            .iter()
            .map(|s| {
                let pickle = SessionPickle::from_encrypted(&s.pickle, key.bytes())
                    .map_err(|_| OlmError::WrongPassword)?;
                Ok(Entry {
                    session: Session::from_pickle(pickle),
                    peer_key: s.peer_key.clone(),
                    last_used_ms: s.last_used_ms,
                })
            })
            .collect::<Result<Vec<_>, OlmError>>()?;
        Ok(Self { entries })
    }

    /// Seals every session for the store.
    pub fn seal(&self, key: &LocalKey) -> Vec<SealedSession> {
        self.entries
            .iter()
            .map(|e| SealedSession {
                session_id: e.session.session_id(),
                pickle: e.session.pickle().encrypt(key.bytes()),
                last_used_ms: e.last_used_ms,
                peer_key: e.peer_key.clone(),
            })
            .collect()
    }

    /// Whether a session made with `peer_key` exists to send on.
    pub fn can_send_to(&self, peer_key: &[u8]) -> bool {
        self.entries.iter().any(|e| e.peer_key == peer_key)
    }

    /// Adds a session made with the contact's `peer_key`, as the most recently used.
    pub fn add(&mut self, session: Session, peer_key: &[u8], now_ms: u64) {
        self.entries.push(Entry {
            session,
            peer_key: peer_key.to_vec(),
            last_used_ms: now_ms,
        });
        self.trim();
    }

    fn trim(&mut self) {
        if self.entries.len() > MAX_SESSIONS_PER_CONTACT {
            self.entries
                .sort_by_key(|e| std::cmp::Reverse(e.last_used_ms));
            self.entries.truncate(MAX_SESSIONS_PER_CONTACT);
        }
    }

    fn preferred(&mut self, peer_key: &[u8]) -> Option<&mut Entry> {
        // Ties go to the later-added session, which is the newer one.
        self.entries
            .iter_mut()
            .rev()
            .filter(|e| e.peer_key == peer_key)
            .max_by_key(|e| e.last_used_ms)
    }

    /// Encrypts on the preferred session among those made with `peer_key`, the contact's
    /// pinned identity key.
    pub fn encrypt(
        &mut self,
        plaintext: &[u8],
        peer_key: &[u8],
        now_ms: u64,
    ) -> Result<OlmMessage, OlmError> {
        let entry = self.preferred(peer_key).ok_or(OlmError::NoSession)?;
        let message = entry
            .session
            .encrypt(plaintext)
            .map_err(|e| OlmError::Encryption {
                reason: e.to_string(),
            })?;
        entry.last_used_ms = entry.last_used_ms.max(now_ms);
        Ok(message)
    }

    /// Decrypts a message from the contact whose identity key is `their_curve25519`,
    /// using only sessions made with that key, and creating an inbound session from a
    /// pre-key message when none matches (which uses up one of `identity`'s one-time
    /// keys: the only case where the account changes and must be saved).
    pub fn decrypt(
        &mut self,
        identity: &mut Identity,
        their_curve25519: &[u8],
        message: &OlmMessage,
        now_ms: u64,
    ) -> Result<Decrypted, OlmError> {
        if let OlmMessage::PreKey(pre_key) = message {
            let session_id = pre_key.session_id();
            if let Some(entry) = self
                .entries
                .iter_mut()
                .find(|e| e.peer_key == their_curve25519 && e.session.session_id() == session_id)
            {
                let plaintext = entry
                    .session
                    .decrypt(message)
                    .map_err(|_| OlmError::NoMatchingSession)?;
                entry.last_used_ms = now_ms;
                return Ok(Decrypted::on_a_known_session(plaintext));
            }
            let their_key = curve_key(their_curve25519, "identity key")?;
            let created = identity
                .account
                .create_inbound_session(SessionConfig::version_1(), their_key, pre_key)
                .map_err(|e| OlmError::SessionCreation {
                    reason: e.to_string(),
                })?;
            self.add(created.session, their_curve25519, now_ms);
            return Ok(Decrypted {
                plaintext: created.plaintext,
                account_changed: true,
            });
        }
        // A normal message: try the sessions made with the sender's key, most recently
        // used first.
        let mut order: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].peer_key == their_curve25519)
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.entries[i].last_used_ms));
        for i in order {
            let entry = &mut self.entries[i];
            if let Ok(plaintext) = entry.session.decrypt(message) {
                entry.last_used_ms = now_ms;
                return Ok(Decrypted::on_a_known_session(plaintext));
            }
        }
        Err(OlmError::NoMatchingSession)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LocalKey {
        LocalKey::from_bytes([9; 32])
    }

    fn curve(identity: &Identity) -> Vec<u8> {
        identity.public_keys().curve25519
    }

    /// alice opens a session to bob from a claimed one-time key.
    fn pair() -> (Identity, Identity, SessionSet, SessionSet) {
        let alice = Identity::generate();
        let mut bob = Identity::generate();
        let otk = bob.new_one_time_keys(1).remove(0);
        let mut alice_set = SessionSet::default();
        let session = alice
            .open_outbound(&bob.public_keys(), &otk)
            .expect("opens");
        alice_set.add(session, &curve(&bob), 1);
        (alice, bob, alice_set, SessionSet::default())
    }

    #[test]
    fn only_the_message_that_opens_a_session_changes_the_account() {
        let (mut alice, mut bob, mut alice_set, mut bob_set) = pair();
        let (a, b) = (curve(&alice), curve(&bob));
        let first = alice_set.encrypt(b"first", &b, 2).expect("encrypts");
        let second = alice_set.encrypt(b"second", &b, 3).expect("encrypts");
        let opened = bob_set.decrypt(&mut bob, &a, &first, 4).expect("decrypts");
        assert!(opened.account_changed, "the one-time key is used up");
        // Still a pre-key message (alice has not heard back), but on the session now known.
        let again = bob_set.decrypt(&mut bob, &a, &second, 5).expect("decrypts");
        assert_eq!(again.plaintext, b"second");
        assert!(!again.account_changed);
        let reply = bob_set.encrypt(b"reply", &a, 6).expect("encrypts");
        let heard = alice_set
            .decrypt(&mut alice, &b, &reply, 7)
            .expect("decrypts");
        assert!(
            !heard.account_changed,
            "an outbound session's reply changes no account"
        );
        let normal = alice_set.encrypt(b"normal", &b, 8).expect("encrypts");
        let normal = bob_set.decrypt(&mut bob, &a, &normal, 9).expect("decrypts");
        assert!(!normal.account_changed);
    }

    #[test]
    fn messages_delivered_out_of_order_and_late_all_decrypt() {
        let (mut alice, mut bob, mut alice_set, mut bob_set) = pair();
        let (a, b) = (curve(&alice), curve(&bob));
        let sent: Vec<_> = (0..20)
            .map(|i| {
                alice_set
                    .encrypt(format!("m{i}").as_bytes(), &b, 2)
                    .expect("encrypts")
            })
            .collect();
        // Deliver in a scrambled order: the last first, then the rest reversed.
        let mut order: Vec<usize> = (0..20).rev().collect();
        order.swap(0, 7);
        for i in order {
            let plain = bob_set
                .decrypt(&mut bob, &a, &sent[i], 3)
                .expect("decrypts")
                .plaintext;
            assert_eq!(plain, format!("m{i}").as_bytes());
        }
        // A reply, then a long gap with many messages, still works.
        let reply = bob_set.encrypt(b"hi", &a, 4).expect("encrypts");
        alice_set
            .decrypt(&mut alice, &b, &reply, 5)
            .expect("alice decrypts on her outbound session");
        for i in 0..500 {
            let m = alice_set.encrypt(b"later", &b, 6 + i).expect("encrypts");
            if i % 100 == 99 {
                bob_set
                    .decrypt(&mut bob, &a, &m, 7 + i)
                    .expect("decrypts after a gap");
            }
        }
    }

    #[test]
    fn simultaneous_first_messages_keep_both_directions_working() {
        let mut alice = Identity::generate();
        let mut bob = Identity::generate();
        let (a, b) = (curve(&alice), curve(&bob));
        let alice_otk = alice.new_one_time_keys(1).remove(0);
        let bob_otk = bob.new_one_time_keys(1).remove(0);
        let mut alice_set = SessionSet::default();
        let mut bob_set = SessionSet::default();
        let s = alice
            .open_outbound(&bob.public_keys(), &bob_otk)
            .expect("opens");
        alice_set.add(s, &b, 1);
        let s = bob
            .open_outbound(&alice.public_keys(), &alice_otk)
            .expect("opens");
        bob_set.add(s, &a, 1);
        let from_alice = alice_set.encrypt(b"hi bob", &b, 2).expect("encrypts");
        let from_bob = bob_set.encrypt(b"hi alice", &a, 2).expect("encrypts");
        assert_eq!(
            bob_set
                .decrypt(&mut bob, &a, &from_alice, 3)
                .expect("ok")
                .plaintext,
            b"hi bob"
        );
        assert_eq!(
            alice_set
                .decrypt(&mut alice, &b, &from_bob, 3)
                .expect("ok")
                .plaintext,
            b"hi alice"
        );
        for round in 0..5u64 {
            let m = alice_set.encrypt(b"a", &b, 10 + round).expect("encrypts");
            bob_set
                .decrypt(&mut bob, &a, &m, 10 + round)
                .expect("bob decrypts");
            let m = bob_set.encrypt(b"b", &a, 10 + round).expect("encrypts");
            alice_set
                .decrypt(&mut alice, &b, &m, 10 + round)
                .expect("alice decrypts");
        }
    }

    #[test]
    fn a_session_opened_with_another_key_is_read_but_never_sent_on() {
        let (alice, mut bob, mut alice_set, mut bob_set) = pair();
        let (a, b) = (curve(&alice), curve(&bob));
        let first = alice_set.encrypt(b"from alice", &b, 2).expect("encrypts");
        bob_set.decrypt(&mut bob, &a, &first, 2).expect("decrypts");
        // mallory claims one of bob's keys and writes to him (as a malicious relay would,
        // labelling it as coming from alice).
        let mallory = Identity::generate();
        let otk = bob.new_one_time_keys(1).remove(0);
        let mut mallory_set = SessionSet::default();
        let s = mallory
            .open_outbound(&bob.public_keys(), &otk)
            .expect("opens");
        mallory_set.add(s, &b, 3);
        let forged = mallory_set.encrypt(b"I am alice", &b, 3).expect("encrypts");
        let m = curve(&mallory);
        assert_eq!(
            bob_set
                .decrypt(&mut bob, &m, &forged, 10)
                .expect("readable")
                .plaintext,
            b"I am alice"
        );
        // bob's next message to alice still goes on alice's session, not mallory's newer one.
        assert!(bob_set.can_send_to(&a) && bob_set.can_send_to(&m));
        let reply = bob_set
            .encrypt(b"for alice only", &a, 11)
            .expect("encrypts");
        assert!(
            mallory_set
                .decrypt(&mut Identity::generate(), &b, &reply, 12)
                .is_err()
        );
        // A message claimed to be from alice's key is not decrypted by mallory's session.
        let forged2 = mallory_set.encrypt(b"again", &b, 13).expect("encrypts");
        assert!(bob_set.decrypt(&mut bob, &a, &forged2, 13).is_err());
    }

    #[test]
    fn sealed_state_round_trips_and_the_wrong_key_is_refused() {
        let (alice, mut bob, mut alice_set, mut bob_set) = pair();
        let (a, b) = (curve(&alice), curve(&bob));
        let m1 = alice_set.encrypt(b"one", &b, 2).expect("encrypts");
        bob_set.decrypt(&mut bob, &a, &m1, 2).expect("decrypts");
        let sealed_account = bob.seal(&key());
        let sealed_sessions = bob_set.seal(&key());
        assert!(matches!(
            Identity::unseal(&sealed_account, &LocalKey::from_bytes([1; 32])),
            Err(OlmError::WrongPassword)
        ));
        let mut bob2 = Identity::unseal(&sealed_account, &key()).expect("unseals");
        let mut bob_set2 = SessionSet::unseal(&sealed_sessions, &key()).expect("unseals");
        assert!(bob_set2.can_send_to(&a));
        let m2 = alice_set.encrypt(b"two", &b, 3).expect("encrypts");
        assert_eq!(
            bob_set2
                .decrypt(&mut bob2, &a, &m2, 3)
                .expect("decrypts")
                .plaintext,
            b"two"
        );
    }

    #[test]
    fn a_key_not_signed_by_the_identity_is_refused() {
        let alice = Identity::generate();
        let mut bob = Identity::generate();
        let mut mallory = Identity::generate();
        let forged = mallory.new_one_time_keys(1).remove(0);
        assert!(matches!(
            alice.open_outbound(&bob.public_keys(), &forged),
            Err(OlmError::BadSignature)
        ));
        let mut genuine = bob.new_one_time_keys(1).remove(0);
        genuine.signature[0] ^= 1;
        assert!(alice.open_outbound(&bob.public_keys(), &genuine).is_err());
    }

    #[test]
    fn a_message_is_not_decryptable_by_a_third_party() {
        let (alice, bob, mut alice_set, _) = pair();
        let m = alice_set
            .encrypt(b"secret", &curve(&bob), 2)
            .expect("encrypts");
        let mut eve = Identity::generate();
        let mut eve_set = SessionSet::default();
        assert!(eve_set.decrypt(&mut eve, &curve(&alice), &m, 3).is_err());
    }
}
