//! Sharing a key over Olm with several recipients, with no I/O: what one recipient's
//! claimed key ([`after_claim`]) and sealing ([`after_seal`]) come to. A group session's
//! key (`ClientState::encrypt_for_group`) and a post's key (`share_post_key`) go through
//! the same steps, in `ClientState::seal_key_shares`.

use crate::client::ClientError;
use crate::connection::ConnectionError;

/// What one recipient's share comes to at a step of making it.
#[derive(Debug, PartialEq)]
pub(crate) enum ShareStep<T> {
    /// On to the next step with this.
    Go(T),
    /// No share for this recipient this time, and why.
    Missed(Missed),
}

/// Why a recipient gets no share this time.
#[derive(Debug, PartialEq)]
pub(crate) enum Missed {
    /// They cannot be given the key now (the relay refuses their keys, their identity
    /// changed, no session can be made): a group message goes without their share and the
    /// key goes with a later one; a post is not shared with them.
    CannotGo(String),
    /// Their share waits for the relay (offline, with no Olm session to them yet): a group
    /// message is marked incomplete and encrypted again, sharing the key, before it goes.
    Waits(String),
}

impl Missed {
    /// Why, in words.
    pub(crate) fn reason(&self) -> &str {
        match self {
            Missed::CannotGo(why) | Missed::Waits(why) => why,
        }
    }
}

/// What a key claimed for a member (`None`: none was needed, a session exists) allows.
pub(crate) fn after_claim<K>(
    claim: Option<Result<K, ClientError>>,
) -> Result<ShareStep<Option<K>>, ClientError> {
    match claim {
        None => Ok(ShareStep::Go(None)),
        Some(Ok(key)) => Ok(ShareStep::Go(Some(key))),
        Some(Err(ClientError::Connection(ConnectionError::Refused(e)))) => {
            Ok(ShareStep::Missed(Missed::CannotGo(e.to_string())))
        }
        Some(Err(ClientError::Connection(e))) => {
            Ok(ShareStep::Missed(Missed::Waits(e.to_string())))
        }
        Some(Err(e)) => Err(e),
    }
}

/// What sealing the key for a member came to: a share (`Some`), or none because the
/// session to them went away after the keys were claimed (`None`: it waits), or an error.
pub(crate) fn after_seal<S>(
    sealed: Result<Option<S>, ClientError>,
) -> Result<ShareStep<S>, ClientError> {
    match sealed {
        Ok(Some(sealed)) => Ok(ShareStep::Go(sealed)),
        Ok(None) => Ok(ShareStep::Missed(Missed::Waits(
            "the session went away meanwhile".into(),
        ))),
        Err(e @ (ClientError::IdentityChanged { .. } | ClientError::Session { .. })) => {
            Ok(ShareStep::Missed(Missed::CannotGo(e.to_string())))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::user;
    use uchat_wire::{ErrorCode, ErrorReply};

    fn refused(code: ErrorCode) -> ClientError {
        ClientError::Connection(ConnectionError::Refused(ErrorReply {
            code,
            message: "no".into(),
        }))
    }

    fn offline() -> ClientError {
        ClientError::Connection(ConnectionError::Unreachable {
            relay: "relay".into(),
            reason: "offline".into(),
        })
    }

    #[test]
    fn a_refused_claim_skips_the_member_and_an_offline_one_waits() -> Result<(), ClientError> {
        assert_eq!(after_claim::<u8>(None)?, ShareStep::Go(None));
        assert_eq!(after_claim(Some(Ok(7u8)))?, ShareStep::Go(Some(7)));
        let skipped = after_claim::<u8>(Some(Err(refused(ErrorCode::NotFriends))))?;
        assert!(
            matches!(skipped, ShareStep::Missed(Missed::CannotGo(_))),
            "{skipped:?}"
        );
        let waits = after_claim::<u8>(Some(Err(offline())))?;
        assert!(
            matches!(waits, ShareStep::Missed(Missed::Waits(_))),
            "{waits:?}"
        );
        // Anything else (the store failing, say) stops the send.
        assert!(after_claim::<u8>(Some(Err(ClientError::EmptyMessage))).is_err());
        Ok(())
    }

    #[test]
    fn a_changed_identity_skips_the_member_and_a_lost_session_waits() -> Result<(), ClientError> {
        assert_eq!(after_seal(Ok(Some(3u8)))?, ShareStep::Go(3));
        let waits = after_seal::<u8>(Ok(None))?;
        assert!(
            matches!(waits, ShareStep::Missed(Missed::Waits(_))),
            "{waits:?}"
        );
        let changed = ClientError::IdentityChanged { user: user("bob") };
        let skipped = after_seal::<u8>(Err(changed))?;
        assert!(
            matches!(skipped, ShareStep::Missed(Missed::CannotGo(_))),
            "{skipped:?}"
        );
        assert!(after_seal::<u8>(Err(offline())).is_err());
        Ok(())
    }
}
