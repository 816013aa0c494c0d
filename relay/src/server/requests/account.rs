//! Accounts and sessions: `Register` (with the retry of one whose answer was lost),
//! `Login` (argon2 on the password workers, rate-limited per account and address),
//! `Resume` with a session token, `Logout`, and binding a logged-in user to the connection.

use std::net::IpAddr;
use std::sync::{Arc, PoisonError};
use std::time::Instant;
use uchat_wire::{reply, request};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};
use uchat_store::{AccountRecord, StoreError};
use uchat_wire::{
    ErrorCode, ErrorReply, IdentityKeys, Password, PushEvent, SessionToken, UserName,
};

use crate::server::connection::{CLOSE_IDENTITY_REPLACED, Connection, Login, went_offline};
use crate::server::online::ConnectionId;
use crate::server::rate_limit::AttemptTicket;
use crate::server::{RelayState, blocking, now_ms};

use super::keys::{check_identity_keys, check_upload, store_keys};
use super::{fail, store_failure, throttled};

/// Passwords shorter than this are refused at registration (NIST SP 800-63B's minimum).
pub(super) const MIN_PASSWORD_CHARS: usize = 8;

/// Longer passwords are refused: argon2 would hash them fine, but nobody types 1 KiB.
pub(super) const MAX_PASSWORD_BYTES: usize = 1024;

pub(super) fn check_password_policy(password: &Password) -> Result<(), ErrorReply> {
    let chars = password.expose().chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(fail(
            ErrorCode::InvalidPassword,
            format!("password must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.expose().len() > MAX_PASSWORD_BYTES {
        return Err(fail(
            ErrorCode::InvalidPassword,
            format!("password must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// What the peer is told when a username exists (the same words as the store's refusal).
pub(super) fn username_taken(username: &UserName) -> ErrorReply {
    store_failure(StoreError::UsernameTaken {
        username: username.clone(),
    })
}

/// How a Register was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Registered {
    /// A new account.
    New,
    /// The retry of an earlier Register whose reply was lost.
    Retry,
}

/// Creates the account with its keys in one store transaction and logs the connection in.
pub(super) async fn register(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    ask: request::Register,
) -> Result<reply::Session, ErrorReply> {
    let keys = request::UploadKeys {
        one_time_keys: ask.one_time_keys,
        fallback_key: ask.fallback_key,
    };
    let (username, ip) = (ask.username, connection.remote.ip());
    match admit_register(shared, ip, &username, ask.password, ask.identity, keys).await? {
        Registered::New => tracing::info!(user = %username, "registered"),
        Registered::Retry => {
            tracing::info!(user = %username, "registration retried after a lost reply");
        }
    }
    start_session(connection, shared, username, true).await
}

/// Everything Register does before the session starts: checks the request, then creates
/// the account with its keys, or accepts a retry ([`retry_register`]) if the name exists.
pub(super) async fn admit_register(
    shared: &Arc<RelayState>,
    ip: IpAddr,
    username: &UserName,
    password: Password,
    identity: IdentityKeys,
    keys: request::UploadKeys,
) -> Result<Registered, ErrorReply> {
    check_password_policy(&password)?;
    check_identity_keys(&identity)?;
    check_upload(&keys)?;
    if let Some(existing) = account_named(shared, username).await? {
        return retry_register(shared, ip, existing, password, &identity, keys).await;
    }
    // Counted before the argon2 hash, so a loop of registrations costs the relay nothing.
    shared.throttles.register(ip).map_err(throttled)?;
    let account = AccountRecord {
        username: username.clone(),
        password_hash: hash_password(shared, password.clone()).await?,
        identity: identity.clone(),
        created_ms: now_ms(),
    };
    let store = shared.store.clone();
    let max_stock = shared.limits.max_one_time_keys;
    let (one_time_keys, fallback_key) = (keys.one_time_keys.clone(), keys.fallback_key.clone());
    let registered = blocking(move || {
        store.register_account(&account, &one_time_keys, fallback_key.as_ref(), max_stock)
    })
    .await;
    match registered {
        Ok(_) => Ok(Registered::New),
        // Someone registered the name since the lookup, perhaps this peer's own earlier
        // attempt still in flight: judge it as a retry.
        Err(e) if e.code == ErrorCode::UsernameTaken => {
            let Some(existing) = account_named(shared, username).await? else {
                return Err(e);
            };
            retry_register(shared, ip, existing, password, &identity, keys).await
        }
        Err(e) => Err(e),
    }
}

/// A Register for a name that exists succeeds only as the retry of an earlier Register
/// whose reply was lost: the same identity keys and the right password. Then new one-time
/// keys are added and the fallback key is set; anything else is `UsernameTaken`.
///
/// Identity keys are public, so this is a password check like Login's and is rate limited
/// the same way; a wrong password counts as a failed login.
pub(super) async fn retry_register(
    shared: &Arc<RelayState>,
    ip: IpAddr,
    existing: AccountRecord,
    password: Password,
    identity: &IdentityKeys,
    keys: request::UploadKeys,
) -> Result<Registered, ErrorReply> {
    let username = existing.username;
    if existing.identity != *identity {
        return Err(username_taken(&username));
    }
    let ticket = reserve_login_attempt(shared, ip, &username)?;
    if !verify_password(shared, password, existing.password_hash).await? {
        shared.metrics.failed_logins.inc();
        return Err(username_taken(&username));
    }
    login_succeeded(shared, ticket);
    store_keys(shared, &username, keys).await?;
    Ok(Registered::Retry)
}

/// Runs argon2 work on the relay's password workers once a permit is free (see
/// `password.rs`): each hash or verification holds 19 MiB for a while, so a flood of
/// logins waits there instead of allocating without bound.
pub(super) async fn password_work<T, F>(shared: &RelayState, work: F) -> Result<T, ErrorReply>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    shared.password_work.run(work).await.map_err(|e| {
        tracing::error!(error = %e, "password work failed");
        fail(ErrorCode::Internal, "password check failed; try again")
    })
}

/// The argon2id PHC string of `password`.
pub(super) async fn hash_password(
    shared: &RelayState,
    password: Password,
) -> Result<String, ErrorReply> {
    password_work(shared, move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
    })
    .await?
    .map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        fail(ErrorCode::Internal, "password hashing failed; try again")
    })
}

/// Whether `password` matches the stored argon2 `hash`.
pub(super) async fn verify_password(
    shared: &RelayState,
    password: Password,
    hash: String,
) -> Result<bool, ErrorReply> {
    password_work(shared, move || {
        Argon2::default()
            .verify_password(password.expose().as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
}

pub(super) async fn login(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    username: UserName,
    password: Password,
) -> Result<reply::Session, ErrorReply> {
    check_login(shared, connection.remote.ip(), &username, password).await?;
    start_session(connection, shared, username, true).await
}

/// Checks `username`'s password for a login from `ip`, within the failed-login budget.
pub(super) async fn check_login(
    shared: &Arc<RelayState>,
    ip: IpAddr,
    username: &UserName,
    password: Password,
) -> Result<(), ErrorReply> {
    let ticket = reserve_login_attempt(shared, ip, username)?;
    if !ticket.backoff.is_zero() {
        tracing::info!(user = %username, %ip, backoff_ms = ticket.backoff.as_millis() as u64, "login attempt on a much-guessed account waits");
        tokio::time::sleep(ticket.backoff).await;
    }
    let Some(account) = account_named(shared, username).await? else {
        shared.metrics.failed_logins.inc();
        return Err(fail(
            ErrorCode::UnknownUser,
            format!("no user named '{username}' on this relay; register first"),
        ));
    };
    if !verify_password(shared, password, account.password_hash).await? {
        shared.metrics.failed_logins.inc();
        tracing::info!(user = %username, %ip, "wrong password");
        return Err(fail(
            ErrorCode::WrongPassword,
            format!("wrong password for '{username}'"),
        ));
    }
    login_succeeded(shared, ticket);
    Ok(())
}

/// Admits one password check for `username` from `ip`, counting it as failed until
/// [`login_succeeded`] says otherwise; [`ErrorCode::RateLimited`] if the address used up
/// its budget for this account or for all.
pub(super) fn reserve_login_attempt(
    shared: &RelayState,
    ip: IpAddr,
    username: &UserName,
) -> Result<AttemptTicket, ErrorReply> {
    shared
        .login_limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .try_attempt(username, ip, Instant::now())
        .map_err(|wait| {
            fail(
                ErrorCode::RateLimited,
                format!(
                    "too many failed logins; try again in {} s",
                    wait.as_secs().max(1)
                ),
            )
        })
}

/// The password verified: the attempt was no failure after all.
pub(super) fn login_succeeded(shared: &RelayState, ticket: AttemptTicket) {
    shared
        .login_limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .record_success(ticket);
}

pub(super) fn token_hash(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

pub(super) async fn resume(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    username: UserName,
    token: SessionToken,
) -> Result<reply::Session, ErrorReply> {
    let store = shared.store.clone();
    let name = username.clone();
    let hash = token_hash(&token.0);
    // Comparing SHA-256 digests by lookup leaks nothing useful about the token: an attacker
    // would need a preimage to exploit timing of the digest comparison. The queue's span
    // is read on the same trip to a blocking thread (a resume is the commonest login);
    // a message queued after it still reaches this login through its pusher.
    let span = blocking(move || {
        if !store.has_session(&name, hash)? {
            return Ok(None);
        }
        store.queue_span(&name).map(Some)
    })
    .await?;
    let Some((acked_through, queue_head)) = span else {
        return Err(fail(
            ErrorCode::InvalidToken,
            "the saved session is no longer valid; log in again with your password",
        ));
    };
    bind_user(connection, shared, &username, hash, false)?;
    Ok(reply::Session {
        username,
        token,
        queue_head,
        acked_through,
    })
}

/// What a login beyond the account's connection limit is told.
pub(super) fn too_many_connections(max: usize) -> ErrorReply {
    fail(
        ErrorCode::LimitReached,
        format!(
            "this account has {max} connections to the relay already (each device, app and uchat command holds one); close one and try again"
        ),
    )
}

/// Makes a new session token for `username` and logs this connection in;
/// `password_login` says the password was just checked (Register or Login).
pub(super) async fn start_session(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    username: UserName,
    password_login: bool,
) -> Result<reply::Session, ErrorReply> {
    // Checked before a session is stored, so a refused login leaves no token behind (the
    // join in `bind_user` checks again, for logins racing this one).
    let max = shared.limits.max_connections_per_user;
    if !connection.is_logged_in_as(&username) && shared.online.connections_of(&username) >= max {
        return Err(too_many_connections(max));
    }
    let mut token = vec![0u8; 32];
    getrandom::fill(&mut token)
        .map_err(|_| fail(ErrorCode::Internal, "no randomness available"))?;
    let hash = token_hash(&token);
    let store = shared.store.clone();
    let name = username.clone();
    // The queue's span rides the same trip to a blocking thread, as in `resume`.
    let (acked_through, queue_head) = blocking(move || {
        store.add_session(&name, hash, now_ms())?;
        store.queue_span(&name)
    })
    .await?;
    if let Err(refused) = bind_user(connection, shared, &username, hash, password_login) {
        let store = shared.store.clone();
        let name = username.clone();
        blocking(move || store.remove_session(&name, hash)).await?;
        return Err(refused);
    }
    Ok(reply::Session {
        username,
        token: SessionToken(token),
        queue_head,
        acked_through,
    })
}

/// Logs this connection in as `username` (or refreshes its login as the same user) and
/// registers it as online; the connection task then starts its pusher.
pub(super) fn bind_user(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    username: &UserName,
    token_hash: [u8; 32],
    password_login: bool,
) -> Result<(), ErrorReply> {
    let mut state = connection.state();
    match &mut state.login {
        Some(login) if login.user == *username => {
            login.token_hash = token_hash;
            login.password_login = password_login;
            Ok(())
        }
        Some(login) => Err(fail(
            ErrorCode::ProtocolViolation,
            format!("this connection is already logged in as '{}'", login.user),
        )),
        None => {
            let max = shared.limits.max_connections_per_user;
            let Some(joined) =
                shared
                    .online
                    .join(username, connection.id, connection.conn.clone(), max)
            else {
                return Err(too_many_connections(max));
            };
            state.login = Some(Login {
                user: username.clone(),
                wake: joined.wake,
                ephemeral: Some(joined.ephemeral),
                token_hash,
                password_login,
                pusher: None,
            });
            state.login_by = None;
            // A call ringing for the user rings on this connection too.
            let ringing = shared.calls().ringing_for(username, shared.clock_ms());
            for event in ringing {
                crate::server::voice::notify(shared, username, event);
            }
            if joined.came_online {
                shared.metrics.users_online.inc();
                shared.announcer.announce(
                    username,
                    PushEvent::Presence {
                        user: username.clone(),
                        online: true,
                        last_seen_ms: None,
                    },
                );
            }
            tracing::info!(user = %username, remote = %connection.remote, "online");
            Ok(())
        }
    }
}

/// Revokes this connection's session token and ends its login: later requests get
/// `NotAuthenticated`, the pusher stops, and the user goes offline if this was their last
/// connection. Other devices stay logged in.
pub(super) async fn logout(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    user: UserName,
) -> Result<(), ErrorReply> {
    let token = connection
        .state()
        .login
        .as_ref()
        .map(|login| login.token_hash);
    if let Some(hash) = token {
        let store = shared.store.clone();
        let name = user.clone();
        blocking(move || store.remove_session(&name, hash)).await?;
    }
    // Taking the login out of the state makes this the only place that ends it: the
    // connection's own end finds nothing left to do, and a second Logout does nothing.
    if let Some(login) = connection.take_login(shared.limits.login_timeout) {
        went_offline(shared, connection.id, login).await;
    }
    tracing::info!(%user, remote = %connection.remote, "logged out");
    Ok(())
}

/// The token hash of `login` if its password was checked on this connection; replacing
/// identity keys needs that, not just a saved token, since a stolen token must not be
/// enough to take over an account's identity.
pub(super) fn require_password_login(login: Option<&Login>) -> Result<[u8; 32], ErrorReply> {
    match login {
        Some(login) if login.password_login => Ok(login.token_hash),
        _ => Err(fail(
            ErrorCode::NotAuthenticated,
            "replacing identity keys needs a fresh password login (uchat login --new-device)",
        )),
    }
}

/// Closes every connection of `user` except `keep`; returns how many.
pub(super) fn close_other_connections(
    shared: &RelayState,
    user: &UserName,
    keep: ConnectionId,
) -> usize {
    let others = shared.online.others(user, keep);
    for conn in &others {
        conn.close(
            CLOSE_IDENTITY_REPLACED.into(),
            b"identity replaced by a new device; log in again",
        );
    }
    others.len()
}

/// The account named `whose`, if any.
pub(super) async fn account_named(
    shared: &Arc<RelayState>,
    whose: &UserName,
) -> Result<Option<AccountRecord>, ErrorReply> {
    let store = shared.store.clone();
    let name = whose.clone();
    blocking(move || store.account(&name)).await
}
