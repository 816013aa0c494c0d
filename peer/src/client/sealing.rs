//! Olm sealing and opening for one contact, split around the relay. What needs a round
//! trip comes first, with no lock held: claiming a one-time key for a contact there is no
//! session with ([`ClientState::claim_keys`] claims many at once, a few in flight), and
//! asking the relay whose key a first contact's message was sealed with
//! ([`ClientState::check_sender`]). The sealing or opening itself ([`ClientState::olm_seal`],
//! [`ClientState::olm_open`]) then runs under the identity lock, a `std` mutex whose guard
//! cannot live across an `.await` (clippy's `await_holding_lock`, and the `Send` bound of
//! every spawned task): a slow relay never keeps the inbox waiting behind a send.

use std::collections::HashMap;
use uchat_wire::request;

use futures_util::{StreamExt, stream};
use uchat_wire::{IdentityKeys, KeyShare, SignedKey, UserName};

use super::{ClientError, ClientState, to_records, unexpected};
use crate::connection::ConnectionError;
use crate::core::share::{self, Missed, ShareStep};
use crate::crypto::olm::{self, Identity, SessionSet};
use crate::envelope::Envelope;
use crate::store::{ContactSessions, IdentityFlag, PinnedIdentity, SessionRecord};
use crate::trust::{IdentityCheck, check_identity};

/// Key claims in flight at once when many contacts need one (a group's or a post's first
/// share): enough to hide the round trips, few enough not to flood the relay.
const CLAIMS_IN_FLIGHT: usize = 16;

/// A contact's one-time (or fallback) key, claimed from the relay, with the identity keys
/// the relay gave with it.
pub(super) struct ClaimedKey {
    identity: IdentityKeys,
    key: SignedKey,
}

/// Keys claimed for several contacts: each contact's key, or why it could not be had.
pub(super) type Claims = HashMap<UserName, Result<ClaimedKey, ClientError>>;

/// One Olm message for a contact, with the state to commit alongside it.
pub(super) struct OlmSealed {
    /// The envelope for the relay.
    pub(super) envelope: Vec<u8>,
    /// The contact's full new set of sessions.
    pub(super) sessions: Vec<SessionRecord>,
    /// The contact's identity to pin, on first contact.
    pub(super) pin: Option<PinnedIdentity>,
}

/// What opening an Olm envelope found.
pub(super) struct OlmOpened {
    /// The plaintext, or why there is none.
    pub(super) plaintext: Result<Vec<u8>, String>,
    /// What the sender's key was: known, new (pinned now) or changed.
    pub(super) flag: IdentityFlag,
    /// The sender's identity to pin, on first contact.
    pub(super) pin: Option<PinnedIdentity>,
    /// The sender's sessions to save, if decrypting changed them.
    pub(super) sessions: Option<Vec<SessionRecord>>,
    /// Whether decrypting opened a new inbound session, using up a one-time key: the
    /// account must be saved after the sessions.
    pub(super) account_changed: bool,
}

/// An envelope whose sender key has been compared with the pin (or, on first contact,
/// with the relay's record), ready to open under the lock; or why it cannot be opened.
pub(super) type CheckedEnvelope = Result<(Envelope, IdentityFlag, Option<PinnedIdentity>), String>;

impl ClientState {
    /// Whether a message to `to` needs a key claimed first: there is no session made with
    /// their pinned identity key (or nothing is pinned yet).
    fn needs_claim(&self, to: &UserName) -> Result<bool, ClientError> {
        let Some(pinned) = self.store.pinned_identity(to)? else {
            return Ok(true);
        };
        Ok(!self.sessions(to)?.can_send_to(&pinned.identity.curve25519))
    }

    /// Claims one of `to`'s keys from the relay (a round trip; call it with no lock held).
    async fn claim_key(&self, to: &UserName) -> Result<ClaimedKey, ClientError> {
        let claimed = self.call(request::ClaimKey { user: to.clone() }).await?;
        Ok(ClaimedKey {
            identity: claimed.identity,
            key: claimed.key,
        })
    }

    /// Claims a key for each of `contacts` there is no session with, [`CLAIMS_IN_FLIGHT`]
    /// at a time, with no lock held. Contacts with a session are not in the answer.
    pub(super) async fn claim_keys<'a>(
        &self,
        contacts: impl IntoIterator<Item = &'a UserName>,
    ) -> Result<Claims, ClientError> {
        let mut wanted = Vec::new();
        for contact in contacts {
            if self.needs_claim(contact)? {
                wanted.push(contact.clone());
            }
        }
        Ok(stream::iter(wanted)
            .map(|contact| async move {
                let claimed = self.claim_key(&contact).await;
                (contact, claimed)
            })
            .buffer_unordered(CLAIMS_IN_FLIGHT)
            .collect()
            .await)
    }

    /// Runs `seal` under the identity lock, with `to`'s key claimed first (and no lock
    /// held) if there is no session to them. `seal` answers `None` if it needed a key it
    /// was not given (a session went away between the check and the lock): a key is
    /// claimed then, and `seal` runs once more with it.
    pub(super) async fn sealed<T>(
        &self,
        to: &UserName,
        mut seal: impl FnMut(&mut Identity, Option<&ClaimedKey>) -> Result<Option<T>, ClientError>,
    ) -> Result<T, ClientError> {
        let mut claimed = None;
        if self.needs_claim(to)? {
            claimed = Some(self.claim_key(to).await?);
        }
        loop {
            if let Some(done) = seal(&mut self.identity(), claimed.as_ref())? {
                return Ok(done);
            }
            if claimed.is_some() {
                // `olm_seal` never asks for a key when it was given one.
                return Err(unexpected("claim key"));
            }
            claimed = Some(self.claim_key(to).await?);
        }
    }

    /// Encrypts `plaintext` for `to` in one Olm message, on the preferred session made
    /// with `to`'s pinned identity key; without one, on a new session from `claimed`,
    /// whose identity is checked against the pin first (a different key refuses it).
    /// `None` if there is no session and no key was claimed. Returns the envelope and the
    /// state to commit with it. The caller holds the identity lock (`identity`).
    pub(super) fn olm_seal(
        &self,
        identity: &Identity,
        to: &UserName,
        plaintext: &[u8],
        now: u64,
        claimed: Option<&ClaimedKey>,
    ) -> Result<Option<OlmSealed>, ClientError> {
        let session_error = |source| ClientError::Session {
            user: to.clone(),
            source,
        };
        let mut sessions = self.sessions(to)?;
        let pinned = self.store.pinned_identity(to)?;
        let mut pin = None;
        let peer_key = match pinned.as_ref().map(|p| &p.identity.curve25519) {
            Some(key) if sessions.can_send_to(key) => key.clone(),
            _ => {
                let Some(claimed) = claimed else {
                    return Ok(None);
                };
                match check_identity(pinned.as_ref().map(|p| &p.identity), &claimed.identity) {
                    IdentityCheck::Changed => {
                        return Err(ClientError::IdentityChanged { user: to.clone() });
                    }
                    IdentityCheck::FirstSeen => {
                        pin = Some(PinnedIdentity {
                            identity: claimed.identity.clone(),
                            pinned_ms: now,
                        });
                    }
                    IdentityCheck::Known => {}
                }
                let session = identity
                    .open_outbound(&claimed.identity, &claimed.key)
                    .map_err(session_error)?;
                sessions.add(session, &claimed.identity.curve25519, now);
                claimed.identity.curve25519.clone()
            }
        };
        let message = sessions
            .encrypt(plaintext, &peer_key, now)
            .map_err(session_error)?;
        let (message_type, body) = olm::message_to_parts(&message);
        let envelope = Envelope {
            sender_key: identity.public_keys().curve25519,
            message_type,
            body,
        };
        Ok(Some(OlmSealed {
            envelope: envelope.to_bytes(),
            sessions: to_records(sessions.seal(&self.key)),
            pin,
        }))
    }

    /// Reads an Olm envelope from `from` and compares its sender key with the pin, or on
    /// first contact with the relay's record of `from`'s account (a round trip: call it
    /// with no lock held). An envelope that does not parse is a problem for the history,
    /// not an error: errors are failures to reach the relay or the store.
    pub(super) async fn check_sender(
        &self,
        from: &UserName,
        ciphertext: &[u8],
        now: u64,
    ) -> Result<CheckedEnvelope, ClientError> {
        let envelope = match Envelope::from_bytes(ciphertext) {
            Ok(envelope) => envelope,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let seen = &envelope.sender_key;
        let (flag, pin) = match self.store.pinned_identity(from)? {
            Some(pinned) if &pinned.identity.curve25519 == seen => (IdentityFlag::Known, None),
            Some(_) => (IdentityFlag::Changed, None),
            None => {
                let published = match self.call(request::Identity { user: from.clone() }).await {
                    Ok(published) => Some(published.identity),
                    // The relay has no such account: the key is nobody's.
                    Err(ConnectionError::Refused(_) | ConnectionError::UnexpectedReply { .. }) => {
                        None
                    }
                    // A network failure proves nothing: leave the event queued
                    // (unacknowledged) and try again on the next connection.
                    Err(e) => return Err(e.into()),
                };
                match published {
                    Some(keys) if &keys.curve25519 == seen => {
                        let pin = PinnedIdentity {
                            identity: keys,
                            pinned_ms: now,
                        };
                        (IdentityFlag::New, Some(pin))
                    }
                    _ => (IdentityFlag::Changed, None),
                }
            }
        };
        Ok(Ok((envelope, flag, pin)))
    }

    /// Decrypts a checked envelope from `from` with the sessions made with its sender key,
    /// creating an inbound session from a pre-key message. A failure to decrypt is a
    /// `problem` in the answer, not an error. The caller holds the identity lock
    /// (`identity`).
    pub(super) fn olm_open(
        &self,
        identity: &mut Identity,
        from: &UserName,
        checked: CheckedEnvelope,
        now: u64,
    ) -> Result<OlmOpened, ClientError> {
        let mut sessions = match &checked {
            Ok(_) => self.sessions(from)?,
            Err(_) => SessionSet::default(),
        };
        let opened = olm_open_with(identity, &mut sessions, checked, now);
        let sessions = opened
            .decrypted
            .then(|| to_records(sessions.seal(&self.key)));
        Ok(OlmOpened {
            plaintext: opened.plaintext,
            flag: opened.flag,
            pin: opened.pin,
            sessions,
            account_changed: opened.account_changed,
        })
    }
}

/// What opening an envelope on sessions the caller holds found (see [`olm_open_with`]).
pub(super) struct OpenedWith {
    /// The plaintext, or why there is none.
    pub(super) plaintext: Result<Vec<u8>, String>,
    /// What the sender's key was: known, new (pinned now) or changed.
    pub(super) flag: IdentityFlag,
    /// The sender's identity to pin, on first contact.
    pub(super) pin: Option<PinnedIdentity>,
    /// Whether the sessions moved (the message decrypted), so they must be saved.
    pub(super) decrypted: bool,
    /// Whether a new inbound session used up a one-time key of the account.
    pub(super) account_changed: bool,
}

/// Decrypts a checked envelope with `sessions` (the sender's, which it moves on), under
/// the identity lock the caller holds. Used by [`ClientState::olm_open`] and by the
/// inbox's batches, which keep each sender's sessions in memory from one message to the
/// next until their one commit.
pub(super) fn olm_open_with(
    identity: &mut Identity,
    sessions: &mut SessionSet,
    checked: CheckedEnvelope,
    now: u64,
) -> OpenedWith {
    let (envelope, flag, pin) = match checked {
        Ok(checked) => checked,
        Err(problem) => {
            return OpenedWith {
                plaintext: Err(problem),
                flag: IdentityFlag::Known,
                pin: None,
                decrypted: false,
                account_changed: false,
            };
        }
    };
    let decrypted = olm::message_from_parts(envelope.message_type, &envelope.body)
        .and_then(|m| sessions.decrypt(identity, &envelope.sender_key, &m, now));
    match decrypted {
        Err(e) => OpenedWith {
            plaintext: Err(e.to_string()),
            flag,
            pin,
            decrypted: false,
            account_changed: false,
        },
        Ok(opened) => OpenedWith {
            plaintext: Ok(opened.plaintext),
            flag,
            pin,
            decrypted: true,
            account_changed: opened.account_changed,
        },
    }
}

/// A key sealed over Olm for each of several recipients.
#[derive(Default)]
pub(super) struct KeyShares {
    /// One Olm message per recipient, for the relay to queue.
    pub(super) key_shares: Vec<KeyShare>,
    /// The Olm state the shares moved, to commit with what carries them.
    pub(super) contacts: Vec<ContactSessions>,
    /// The recipients who got no share this time, and why.
    pub(super) missed: Vec<(UserName, Missed)>,
}

impl KeyShares {
    /// Whether some share waits for the relay (a group message is encrypted again first).
    pub(super) fn waits(&self) -> bool {
        self.missed
            .iter()
            .any(|(_, missed)| matches!(missed, Missed::Waits(_)))
    }
}

impl ClientState {
    /// Seals `share` (a payload's bytes: a group session's or a post's key) for each of
    /// `to` over Olm under the identity lock (`identity`), with the keys claimed for them
    /// before it (`claims`): the shares made, the Olm state to commit with them, and who
    /// got none ([`share::after_claim`], [`share::after_seal`]).
    pub(super) fn seal_key_shares(
        &self,
        identity: &Identity,
        to: &[&UserName],
        mut claims: Claims,
        share: &[u8],
        now: u64,
    ) -> Result<KeyShares, ClientError> {
        let mut shares = KeyShares::default();
        for &recipient in to {
            let claimed = match share::after_claim(claims.remove(recipient))? {
                ShareStep::Go(claimed) => claimed,
                ShareStep::Missed(missed) => {
                    shares.missed.push((recipient.clone(), missed));
                    continue;
                }
            };
            let sealed = self.olm_seal(identity, recipient, share, now, claimed.as_ref());
            match share::after_seal(sealed)? {
                ShareStep::Go(sealed) => {
                    shares.key_shares.push(KeyShare {
                        to: recipient.clone(),
                        ciphertext: sealed.envelope,
                    });
                    shares.contacts.push(ContactSessions {
                        contact: recipient.clone(),
                        sessions: sealed.sessions,
                        pin: sealed.pin,
                    });
                }
                ShareStep::Missed(missed) => shares.missed.push((recipient.clone(), missed)),
            }
        }
        Ok(shares)
    }
}
