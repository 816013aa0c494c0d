//! Identity and one-time keys: uploading and counting them, replacing an identity (a new
//! device, password login only), claiming a contact's key and fetching their identity.

use std::sync::Arc;
use uchat_wire::{reply, request};

use uchat_store::{AccountRecord, StoreError};
use uchat_wire::{ErrorCode, ErrorReply, IdentityKeys, PushEvent, SignedKey, UserName};

use crate::server::connection::Connection;
use crate::server::{RelayState, blocking};

use super::account::{account_named, close_other_connections, require_password_login};
use super::{MAX_KEYS_PER_REQUEST, fail, store_failure};

pub(super) fn check_identity_keys(identity: &IdentityKeys) -> Result<(), ErrorReply> {
    if identity.curve25519.len() != 32 || identity.ed25519.len() != 32 {
        return Err(fail(
            ErrorCode::BadKeys,
            "identity keys must be 32-byte Curve25519 and Ed25519 keys",
        ));
    }
    Ok(())
}

pub(super) fn check_key(key: &SignedKey) -> Result<(), ErrorReply> {
    if key.key.len() != 32 || key.signature.len() != 64 {
        return Err(fail(
            ErrorCode::BadKeys,
            "a signed key must be 32 key bytes with a 64-byte signature",
        ));
    }
    Ok(())
}

pub(super) fn check_keys(
    one_time_keys: &[SignedKey],
    fallback: Option<&SignedKey>,
) -> Result<(), ErrorReply> {
    if one_time_keys.len() > MAX_KEYS_PER_REQUEST {
        return Err(fail(
            ErrorCode::TooLarge,
            format!("at most {MAX_KEYS_PER_REQUEST} one-time keys per request"),
        ));
    }
    one_time_keys.iter().chain(fallback).try_for_each(check_key)
}

/// [`ErrorCode::TooLarge`] or [`ErrorCode::BadKeys`] unless the keys a `Register`,
/// `UploadKeys` or `ReplaceIdentity` carries are acceptable.
pub(super) fn check_upload(keys: &request::UploadKeys) -> Result<(), ErrorReply> {
    check_keys(&keys.one_time_keys, keys.fallback_key.as_ref())
}

/// Adds one-time keys to `user`'s stock and sets the fallback key if one is given;
/// returns the stock size. Both steps are idempotent, so a retried upload is harmless.
pub(super) async fn store_keys(
    shared: &Arc<RelayState>,
    user: &UserName,
    keys: request::UploadKeys,
) -> Result<u64, ErrorReply> {
    let store = shared.store.clone();
    let max_stock = shared.limits.max_one_time_keys;
    let user = user.clone();
    blocking(move || {
        if let Some(fallback) = &keys.fallback_key {
            store.set_fallback_key(&user, fallback)?;
        }
        store.add_one_time_keys(&user, &keys.one_time_keys, max_stock)
    })
    .await
}

pub(super) async fn upload_keys(
    shared: &Arc<RelayState>,
    user: UserName,
    keys: request::UploadKeys,
) -> Result<reply::KeyCount, ErrorReply> {
    check_upload(&keys)?;
    let count = store_keys(shared, &user, keys).await?;
    Ok(reply::KeyCount {
        one_time_keys: count,
    })
}

/// Publishes a new device's identity keys, revokes every other session of the user in the
/// same store transaction, and closes the user's other connections, whose keys are now
/// stale.
pub(super) async fn replace_identity(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    user: UserName,
    ask: request::ReplaceIdentity,
) -> Result<reply::KeyCount, ErrorReply> {
    let keys = request::UploadKeys {
        one_time_keys: ask.one_time_keys,
        fallback_key: ask.fallback_key,
    };
    let identity = ask.identity;
    let keep_token_hash = require_password_login(connection.state().login.as_ref())?;
    check_identity_keys(&identity)?;
    check_upload(&keys)?;
    let store = shared.store.clone();
    let max_stock = shared.limits.max_one_time_keys;
    let name = user.clone();
    let count = blocking(move || {
        store.replace_identity(
            &name,
            &identity,
            &keys.one_time_keys,
            keys.fallback_key.as_ref(),
            max_stock,
            keep_token_hash,
        )
    })
    .await?;
    let closed = close_other_connections(shared, &user, connection.id);
    shared
        .announcer
        .announce(&user, PushEvent::IdentityChanged { user: user.clone() });
    tracing::info!(%user, closed, "identity keys replaced (new device)");
    Ok(reply::KeyCount {
        one_time_keys: count,
    })
}

pub(super) async fn key_count(
    shared: &Arc<RelayState>,
    user: UserName,
) -> Result<reply::KeyCount, ErrorReply> {
    let store = shared.store.clone();
    let count = blocking(move || store.one_time_key_count(&user)).await?;
    Ok(reply::KeyCount {
        one_time_keys: count,
    })
}

/// The account named `whose`, or [`ErrorCode::UnknownUser`].
pub(super) async fn account_of(
    shared: &Arc<RelayState>,
    whose: &UserName,
) -> Result<AccountRecord, ErrorReply> {
    account_named(shared, whose).await?.ok_or_else(|| {
        fail(
            ErrorCode::UnknownUser,
            format!("no user named '{whose}' on this relay"),
        )
    })
}

/// Hands out one of `whose`'s keys to `me`, a friend of theirs or a member of a group with
/// them (who must share group keys): only they may start a session, so strangers cannot
/// drain anyone's one-time keys. A friend on either side of a block gets only the reusable
/// fallback key: a block is silent (answered like any claim), and a blocked friend drains
/// nothing.
pub(super) async fn claim_key(
    shared: &Arc<RelayState>,
    me: UserName,
    whose: UserName,
) -> Result<reply::ClaimedKey, ErrorReply> {
    let account = account_of(shared, &whose).await?;
    let store = shared.store.clone();
    let (asker, owner) = (me.clone(), whose.clone());
    let relation = blocking(move || {
        let related = store.are_friends(&asker, &owner)? || store.share_a_group(&asker, &owner)?;
        let blocked = store.has_blocked(&owner, &asker)? || store.has_blocked(&asker, &owner)?;
        Ok((related, blocked))
    })
    .await?;
    let claimed = match relation {
        (false, _) => {
            return Err(store_failure(StoreError::NotFriends {
                user: me,
                other: whose,
            }));
        }
        (true, false) => {
            let store = shared.store.clone();
            let name = whose.clone();
            blocking(move || store.claim_key(&name)).await?
        }
        (true, true) => {
            let store = shared.store.clone();
            let name = whose.clone();
            blocking(move || store.fallback_key(&name)).await?
        }
    };
    let claimed = claimed.ok_or_else(|| {
        fail(
            ErrorCode::NoKeysAvailable,
            format!(
                "'{whose}' has no keys left to start a conversation; they must come online once"
            ),
        )
    })?;
    Ok(reply::ClaimedKey {
        user: whose,
        identity: account.identity,
        key: claimed.key,
        fallback: claimed.fallback,
    })
}

pub(super) async fn identity(
    shared: &Arc<RelayState>,
    whose: UserName,
) -> Result<reply::Identity, ErrorReply> {
    let account = account_of(shared, &whose).await?;
    Ok(reply::Identity {
        user: whose,
        identity: account.identity,
    })
}
