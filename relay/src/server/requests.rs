//! Request handling: one function per request kind, and the one place where internal
//! failures become wire error codes ([`store_failure`]).

use std::sync::{Arc, PoisonError};
use std::time::Instant;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};
use uchat_store::{AccountRecord, StoreError};
use uchat_wire::{
    ErrorCode, ErrorReply, IdentityKeys, MAX_CIPHERTEXT_BYTES, MessageId, PROTOCOL_VERSION,
    Password, PresenceEntry, PushEvent, Reply, Request, Response, Seq, SessionToken, SignedKey,
    UserName,
};

use super::connection::Connection;
use super::{Shared, blocking, now_ms};

/// Passwords shorter than this are refused at registration (NIST SP 800-63B's minimum).
const MIN_PASSWORD_CHARS: usize = 8;
/// Longer passwords are refused: argon2 would hash them fine, but nobody types 1 KiB.
const MAX_PASSWORD_BYTES: usize = 1024;
/// One-time keys accepted in one request.
const MAX_KEYS_PER_REQUEST: usize = 200;

type Handled = Result<Reply, ErrorReply>;

fn fail(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        code,
        message: message.into(),
    }
}

/// Maps a store failure to what the peer is told. Internal details go to the log only.
pub(super) fn store_failure(e: StoreError) -> ErrorReply {
    match e {
        StoreError::UsernameTaken { username } => fail(
            ErrorCode::UsernameTaken,
            format!("the username '{username}' is taken; choose another"),
        ),
        StoreError::UnknownUser { username } => fail(
            ErrorCode::UnknownUser,
            format!("no user named '{username}' on this relay"),
        ),
        StoreError::QueueFull { recipient, len } => fail(
            ErrorCode::QueueFull,
            format!(
                "{recipient}'s message queue is full ({len} undelivered); try again after they come online"
            ),
        ),
        other => {
            tracing::error!(error = %other, "store failure");
            fail(
                ErrorCode::Internal,
                "the relay failed to store or read data; try again",
            )
        }
    }
}

/// Answers one request.
pub(super) async fn handle(
    connection: &Arc<Connection>,
    shared: &Arc<Shared>,
    request: Request,
) -> Response {
    let kind = request.kind();
    let result = dispatch(connection, shared, request).await;
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(error) => error.code.to_string(),
    };
    shared
        .metrics
        .requests
        .get_or_create(&super::metrics::RequestLabels { kind, outcome })
        .inc();
    match result {
        Ok(reply) => Response::Ok(reply),
        Err(error) => {
            tracing::debug!(remote = %connection.remote, request = kind, code = %error.code, "request refused");
            Response::Error(error)
        }
    }
}

async fn dispatch(connection: &Arc<Connection>, shared: &Arc<Shared>, request: Request) -> Handled {
    if let Request::Hello { protocol, client } = &request {
        if protocol.major != PROTOCOL_VERSION.major {
            return Err(fail(
                ErrorCode::UnsupportedProtocol,
                format!(
                    "this relay speaks protocol {PROTOCOL_VERSION}, the client speaks {protocol}; upgrade the older side"
                ),
            ));
        }
        connection.state().said_hello = true;
        tracing::debug!(remote = %connection.remote, client = %client.chars().take(64).collect::<String>(), "hello");
        return Ok(Reply::Welcome {
            protocol: PROTOCOL_VERSION,
            relay: format!("uchat-relay/{}", env!("CARGO_PKG_VERSION")),
        });
    }
    if !connection.state().said_hello {
        return Err(fail(
            ErrorCode::ProtocolViolation,
            "send Hello before any other request",
        ));
    }
    match request {
        Request::Hello { .. } => unreachable_hello(),
        Request::Register {
            username,
            password,
            identity,
            one_time_keys,
            fallback_key,
        } => {
            register(
                connection,
                shared,
                username,
                password,
                identity,
                one_time_keys,
                fallback_key,
            )
            .await
        }
        Request::Login { username, password } => {
            login(connection, shared, username, password).await
        }
        Request::Resume { username, token } => resume(connection, shared, username, token).await,
        Request::Unknown => Err(fail(
            ErrorCode::ProtocolViolation,
            "unknown request; this relay may be older than the client",
        )),
        authenticated => {
            let Some(user) = connection.state().user.clone() else {
                return Err(fail(ErrorCode::NotAuthenticated, "log in first"));
            };
            match authenticated {
                Request::Logout => logout(connection, shared, user).await,
                Request::UploadKeys {
                    one_time_keys,
                    fallback_key,
                } => upload_keys(shared, user, one_time_keys, fallback_key).await,
                Request::KeyCount => key_count(shared, user).await,
                Request::ReplaceIdentity {
                    identity,
                    one_time_keys,
                    fallback_key,
                } => replace_identity(shared, user, identity, one_time_keys, fallback_key).await,
                Request::ClaimKey { user: whose } => claim_key(shared, whose).await,
                Request::Identity { user: whose } => identity(shared, whose).await,
                Request::Send { to, id, ciphertext } => {
                    send(shared, user, to, id, ciphertext).await
                }
                Request::Ack { through } => ack(shared, user, through).await,
                Request::Presence { users } => presence(shared, users).await,
                _ => unreachable_hello(),
            }
        }
    }
}

/// Requests handled before authentication never reach the authenticated branch; answer
/// rather than panic if that ever changes.
fn unreachable_hello() -> Handled {
    Err(fail(ErrorCode::ProtocolViolation, "request out of order"))
}

fn check_password_policy(password: &Password) -> Result<(), ErrorReply> {
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

fn check_identity_keys(identity: &IdentityKeys) -> Result<(), ErrorReply> {
    if identity.curve25519.len() != 32 || identity.ed25519.len() != 32 {
        return Err(fail(
            ErrorCode::BadKeys,
            "identity keys must be 32-byte Curve25519 and Ed25519 keys",
        ));
    }
    Ok(())
}

fn check_key(key: &SignedKey) -> Result<(), ErrorReply> {
    if key.key.len() != 32 || key.signature.len() != 64 {
        return Err(fail(
            ErrorCode::BadKeys,
            "a signed key must be 32 key bytes with a 64-byte signature",
        ));
    }
    Ok(())
}

fn check_keys(one_time_keys: &[SignedKey], fallback: Option<&SignedKey>) -> Result<(), ErrorReply> {
    if one_time_keys.len() > MAX_KEYS_PER_REQUEST {
        return Err(fail(
            ErrorCode::TooLarge,
            format!("at most {MAX_KEYS_PER_REQUEST} one-time keys per request"),
        ));
    }
    one_time_keys.iter().chain(fallback).try_for_each(check_key)
}

#[allow(clippy::too_many_arguments)]
async fn register(
    connection: &Arc<Connection>,
    shared: &Arc<Shared>,
    username: UserName,
    password: Password,
    identity: IdentityKeys,
    one_time_keys: Vec<SignedKey>,
    fallback_key: Option<SignedKey>,
) -> Handled {
    check_password_policy(&password)?;
    check_identity_keys(&identity)?;
    check_keys(&one_time_keys, fallback_key.as_ref())?;
    let password_hash = hash_password(password).await?;
    let account = AccountRecord {
        username: username.clone(),
        password_hash,
        identity,
        created_ms: now_ms(),
    };
    let store = shared.store.clone();
    let max_stock = shared.limits.max_one_time_keys;
    let name = username.clone();
    blocking(move || {
        store.create_account(&account)?;
        store.add_one_time_keys(&name, &one_time_keys, max_stock)?;
        if let Some(fallback) = &fallback_key {
            store.set_fallback_key(&name, fallback)?;
        }
        Ok(())
    })
    .await?;
    tracing::info!(user = %username, "registered");
    start_session(connection, shared, username).await
}

async fn hash_password(password: Password) -> Result<String, ErrorReply> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(|_| fail(ErrorCode::Internal, "password hashing failed; try again"))?
    .map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        fail(ErrorCode::Internal, "password hashing failed; try again")
    })
}

async fn login(
    connection: &Arc<Connection>,
    shared: &Arc<Shared>,
    username: UserName,
    password: Password,
) -> Handled {
    let ip = connection.remote.ip();
    let limited = shared
        .login_limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .check(&username, ip, Instant::now());
    if let Err(wait) = limited {
        return Err(fail(
            ErrorCode::RateLimited,
            format!(
                "too many failed logins; try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    let store = shared.store.clone();
    let name = username.clone();
    let Some(account) = blocking(move || store.account(&name)).await? else {
        record_failed_login(shared, &username, ip);
        return Err(fail(
            ErrorCode::UnknownUser,
            format!("no user named '{username}' on this relay; register first"),
        ));
    };
    let hash = account.password_hash;
    let verified = tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.expose().as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false);
    if !verified {
        record_failed_login(shared, &username, ip);
        tracing::info!(user = %username, %ip, "wrong password");
        return Err(fail(
            ErrorCode::WrongPassword,
            format!("wrong password for '{username}'"),
        ));
    }
    shared
        .login_limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .record_success(&username);
    start_session(connection, shared, username).await
}

fn record_failed_login(shared: &Shared, username: &UserName, ip: std::net::IpAddr) {
    shared.metrics.failed_logins.inc();
    shared
        .login_limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .record_failure(username, ip, Instant::now());
}

fn token_hash(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

async fn resume(
    connection: &Arc<Connection>,
    shared: &Arc<Shared>,
    username: UserName,
    token: SessionToken,
) -> Handled {
    let store = shared.store.clone();
    let name = username.clone();
    let hash = token_hash(&token.0);
    // Comparing SHA-256 digests by lookup leaks nothing useful about the token: an attacker
    // would need a preimage to exploit timing of the digest comparison.
    if !blocking(move || store.has_session(&name, hash)).await? {
        return Err(fail(
            ErrorCode::InvalidToken,
            "the saved session is no longer valid; log in again with your password",
        ));
    }
    bind_user(connection, shared, &username, hash)?;
    let (queue_head, acked_through) = head(shared, &username).await?;
    Ok(Reply::Session {
        username,
        token,
        queue_head,
        acked_through,
    })
}

/// Makes a new session token for `username` and logs this connection in.
async fn start_session(
    connection: &Arc<Connection>,
    shared: &Arc<Shared>,
    username: UserName,
) -> Handled {
    let mut token = vec![0u8; 32];
    getrandom::fill(&mut token)
        .map_err(|_| fail(ErrorCode::Internal, "no randomness available"))?;
    let hash = token_hash(&token);
    let store = shared.store.clone();
    let name = username.clone();
    blocking(move || store.add_session(&name, hash, now_ms())).await?;
    bind_user(connection, shared, &username, hash)?;
    let (queue_head, acked_through) = head(shared, &username).await?;
    Ok(Reply::Session {
        username,
        token: SessionToken(token),
        queue_head,
        acked_through,
    })
}

fn bind_user(
    connection: &Arc<Connection>,
    shared: &Arc<Shared>,
    username: &UserName,
    token_hash: [u8; 32],
) -> Result<(), ErrorReply> {
    let mut state = connection.state();
    match &state.user {
        Some(current) if current == username => {
            state.token_hash = Some(token_hash);
            Ok(())
        }
        Some(current) => Err(fail(
            ErrorCode::ProtocolViolation,
            format!("this connection is already logged in as '{current}'"),
        )),
        None => {
            state.user = Some(username.clone());
            state.token_hash = Some(token_hash);
            let (wake, came_online) = shared.online.join(username);
            state.wake = Some(wake);
            if came_online {
                shared.metrics.users_online.inc();
            }
            tracing::info!(user = %username, remote = %connection.remote, "online");
            Ok(())
        }
    }
}

/// The user's queue head and the point up to which everything was acknowledged (the
/// queue is the contiguous run after it, see `RelayStore`).
async fn head(shared: &Arc<Shared>, username: &UserName) -> Result<(Seq, Seq), ErrorReply> {
    let store = shared.store.clone();
    let name = username.clone();
    blocking(move || {
        let head = store.queue_head(&name)?;
        let len = store.queue_len(&name)?;
        Ok((head, Seq(head.0.saturating_sub(len))))
    })
    .await
}

async fn logout(connection: &Arc<Connection>, shared: &Arc<Shared>, user: UserName) -> Handled {
    // Revoke the token this connection logged in with; other devices stay logged in.
    let token = connection.state().token_hash;
    if let Some(hash) = token {
        let store = shared.store.clone();
        let name = user.clone();
        blocking(move || store.remove_session(&name, hash)).await?;
    }
    tracing::info!(%user, remote = %connection.remote, "logged out");
    Ok(Reply::Done)
}

async fn upload_keys(
    shared: &Arc<Shared>,
    user: UserName,
    one_time_keys: Vec<SignedKey>,
    fallback_key: Option<SignedKey>,
) -> Handled {
    check_keys(&one_time_keys, fallback_key.as_ref())?;
    let store = shared.store.clone();
    let max_stock = shared.limits.max_one_time_keys;
    let count = blocking(move || {
        if let Some(fallback) = &fallback_key {
            store.set_fallback_key(&user, fallback)?;
        }
        store.add_one_time_keys(&user, &one_time_keys, max_stock)
    })
    .await?;
    Ok(Reply::KeyCount {
        one_time_keys: count,
    })
}

async fn replace_identity(
    shared: &Arc<Shared>,
    user: UserName,
    identity: IdentityKeys,
    one_time_keys: Vec<SignedKey>,
    fallback_key: Option<SignedKey>,
) -> Handled {
    check_identity_keys(&identity)?;
    check_keys(&one_time_keys, fallback_key.as_ref())?;
    let store = shared.store.clone();
    let max_stock = shared.limits.max_one_time_keys;
    let name = user.clone();
    let count = blocking(move || {
        store.replace_identity(
            &name,
            &identity,
            &one_time_keys,
            fallback_key.as_ref(),
            max_stock,
        )
    })
    .await?;
    tracing::info!(%user, "identity keys replaced (new device)");
    Ok(Reply::KeyCount {
        one_time_keys: count,
    })
}

async fn key_count(shared: &Arc<Shared>, user: UserName) -> Handled {
    let store = shared.store.clone();
    let count = blocking(move || store.one_time_key_count(&user)).await?;
    Ok(Reply::KeyCount {
        one_time_keys: count,
    })
}

async fn account_of(shared: &Arc<Shared>, whose: &UserName) -> Result<AccountRecord, ErrorReply> {
    let store = shared.store.clone();
    let name = whose.clone();
    blocking(move || store.account(&name))
        .await?
        .ok_or_else(|| {
            fail(
                ErrorCode::UnknownUser,
                format!("no user named '{whose}' on this relay"),
            )
        })
}

async fn claim_key(shared: &Arc<Shared>, whose: UserName) -> Handled {
    let account = account_of(shared, &whose).await?;
    let store = shared.store.clone();
    let name = whose.clone();
    let claimed = blocking(move || store.claim_key(&name))
        .await?
        .ok_or_else(|| {
            fail(
                ErrorCode::NoKeysAvailable,
                format!(
                    "'{whose}' has no keys left to start a conversation; they must come online once"
                ),
            )
        })?;
    Ok(Reply::ClaimedKey {
        user: whose,
        identity: account.identity,
        key: claimed.key,
        fallback: claimed.fallback,
    })
}

async fn identity(shared: &Arc<Shared>, whose: UserName) -> Handled {
    let account = account_of(shared, &whose).await?;
    Ok(Reply::Identity {
        user: whose,
        identity: account.identity,
    })
}

async fn send(
    shared: &Arc<Shared>,
    from: UserName,
    to: UserName,
    id: MessageId,
    ciphertext: Vec<u8>,
) -> Handled {
    if ciphertext.len() > MAX_CIPHERTEXT_BYTES {
        return Err(fail(
            ErrorCode::TooLarge,
            format!(
                "message of {} bytes exceeds the limit of {MAX_CIPHERTEXT_BYTES} bytes; send it as a file",
                ciphertext.len()
            ),
        ));
    }
    account_of(shared, &to).await?;
    let size = ciphertext.len();
    let event = PushEvent::Message {
        from: from.clone(),
        id,
        ciphertext,
    };
    let store = shared.store.clone();
    let recipient = to.clone();
    let sender = from.clone();
    let max_queue_len = shared.limits.max_queue_len;
    // Committed (durably) before the sender hears "sent": the delivery rule.
    let enqueued = blocking(move || {
        store.enqueue(
            &recipient,
            &event,
            Some((&sender, id)),
            now_ms(),
            max_queue_len,
        )
    })
    .await?;
    if !enqueued.duplicate {
        shared.metrics.messages_queued.inc();
        shared.metrics.message_bytes_queued.inc_by(size as u64);
        shared.online.wake(&to);
    }
    tracing::debug!(%from, %to, bytes = size, seq = %enqueued.seq, duplicate = enqueued.duplicate, "message queued");
    Ok(Reply::Sent {
        relay_ts_ms: enqueued.relay_ts_ms,
    })
}

async fn ack(shared: &Arc<Shared>, user: UserName, through: Seq) -> Handled {
    let store = shared.store.clone();
    blocking(move || store.ack_through(&user, through)).await?;
    Ok(Reply::Done)
}

async fn presence(shared: &Arc<Shared>, users: Vec<UserName>) -> Handled {
    if users.len() > 1000 {
        return Err(fail(
            ErrorCode::TooLarge,
            "ask about at most 1000 users at once",
        ));
    }
    let mut entries = Vec::with_capacity(users.len());
    for user in users {
        let store = shared.store.clone();
        let name = user.clone();
        let known = blocking(move || Ok(store.account(&name)?.is_some())).await?;
        if !known {
            continue;
        }
        let online = shared.online.is_online(&user);
        let last_seen_ms = if online {
            None
        } else {
            let store = shared.store.clone();
            let name = user.clone();
            blocking(move || store.last_seen(&name)).await?
        };
        entries.push(PresenceEntry {
            user,
            online,
            last_seen_ms,
        });
    }
    Ok(Reply::Presence { users: entries })
}
