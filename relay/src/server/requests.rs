//! Request handling: one function per request kind, and the one place where internal
//! failures become wire error codes ([`store_failure`]) and answers become frames (an
//! answer too large for one is refused with `TooLarge`, never a reset stream). Friends,
//! friend requests and presence live in [`social`], profiles in [`profile`], groups in
//! [`group`]; the lists that can grow long are cut into pages by [`super::page`].

mod call;
mod group;
mod moment;
mod profile;
mod social;

use std::net::IpAddr;
use std::sync::{Arc, PoisonError};
use std::time::Instant;
use uchat_wire::{reply, request};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};
use uchat_store::{
    AccountRecord, BatchOutcome, BatchWrite, MessageOutcome, RequestDirection, StoreError,
};
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::msg::page::{MAX_PAGE_ENTRIES, PAGE_BYTE_BUDGET};
use uchat_wire::{
    ErrorCode, ErrorReply, FrameError, IdentityKeys, MAX_CIPHERTEXT_BYTES, MessageId,
    PROTOCOL_VERSION, Password, PushEvent, Reply, Request, Response, Seq, SessionToken, SignedKey,
    UserName,
};

use super::connection::{CLOSE_IDENTITY_REPLACED, Connection, Login, went_offline};
use super::online::ConnectionId;
use super::page::PageLimits;
use super::rate_limit::AttemptTicket;
use super::{RelayState, blocking, now_ms};

/// Passwords shorter than this are refused at registration (NIST SP 800-63B's minimum).
const MIN_PASSWORD_CHARS: usize = 8;
/// Longer passwords are refused: argon2 would hash them fine, but nobody types 1 KiB.
const MAX_PASSWORD_BYTES: usize = 1024;
/// One-time keys accepted in one request.
pub(super) const MAX_KEYS_PER_REQUEST: usize = 200;

/// What a request handler comes to: the reply, or the refusal sent back as an error.
pub(super) type Answer = Result<Reply, ErrorReply>;

pub(super) fn fail(code: ErrorCode, message: impl Into<String>) -> ErrorReply {
    ErrorReply {
        code,
        message: message.into(),
    }
}

/// The page limits for a page request asking for `limit` entries: at most
/// [`MAX_PAGE_ENTRIES`] (at least one), and [`PAGE_BYTE_BUDGET`] bytes of them.
pub(super) fn page_limits(limit: u32) -> PageLimits {
    PageLimits {
        max_entries: limit.clamp(1, MAX_PAGE_ENTRIES) as usize,
        max_bytes: PAGE_BYTE_BUDGET,
    }
}

/// What an older peer is told when the whole list it asked for no longer fits in one
/// answer; `what` is the list and its verb ("your friend list is").
pub(super) fn too_long_for_one_answer(what: &str) -> ErrorReply {
    fail(
        ErrorCode::TooLarge,
        format!(
            "{what} too long for one answer; upgrade uchat, which asks for it a page at a time"
        ),
    )
}

/// What the peer is told when a rate limit refuses its request.
pub(super) fn throttled(refusal: super::throttle::Throttled) -> ErrorReply {
    fail(ErrorCode::RateLimited, refusal.message())
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
        StoreError::SelfRelation => fail(
            ErrorCode::InvalidInput,
            "you cannot send a friend request to, or block, yourself",
        ),
        StoreError::NotFriends { other, .. } => fail(
            ErrorCode::NotFriends,
            format!(
                "'{other}' is not your friend; send a friend request first (uchat friends add {other})"
            ),
        ),
        StoreError::AlreadyFriends { other } => fail(
            ErrorCode::AlreadyFriends,
            format!("you and '{other}' are friends already"),
        ),
        StoreError::DuplicateRequest { to } => fail(
            ErrorCode::DuplicateRequest,
            format!("you already asked '{to}' to be friends; wait for them to answer"),
        ),
        StoreError::NoSuchRequest { from } => fail(
            ErrorCode::NoSuchRequest,
            format!(
                "there is no pending friend request from '{from}' (see uchat friends requests)"
            ),
        ),
        StoreError::BlockedByYou { other } => fail(
            ErrorCode::BlockedByYou,
            format!("you blocked '{other}'; unblock them first (uchat friends unblock {other})"),
        ),
        StoreError::LimitReached { what, limit } => fail(
            ErrorCode::LimitReached,
            format!("the limit of {limit} {what} is reached"),
        ),
        StoreError::NoSuchGroup { group } => fail(
            ErrorCode::NoSuchGroup,
            format!("no group {group} among your groups (see uchat group list)"),
        ),
        StoreError::NotGroupOwner { owner, .. } => fail(
            ErrorCode::NotGroupOwner,
            format!("only the group's owner ('{owner}') may do that"),
        ),
        StoreError::GroupChanged { epoch, .. } => fail(
            ErrorCode::GroupChanged,
            format!(
                "the group's members changed (now at epoch {epoch}); fetch the group and send again"
            ),
        ),
        StoreError::AlreadyMember { user, .. } => fail(
            ErrorCode::AlreadyMember,
            format!("'{user}' is in the group already"),
        ),
        StoreError::NotGroupMember { user, .. } => fail(
            ErrorCode::NotGroupMember,
            format!("'{user}' is not a member of the group"),
        ),
        StoreError::NoSuchFile { id } => fail(
            ErrorCode::NoSuchFile,
            format!("no file {id} on this relay (it may have expired)"),
        ),
        StoreError::NotAllowed { id } => fail(
            ErrorCode::NotAllowed,
            format!("you are not allowed to download file {id}"),
        ),
        StoreError::FileIncomplete { id } => fail(
            ErrorCode::FileIncomplete,
            format!("file {id} is still being uploaded; try again later"),
        ),
        StoreError::FileIdTaken { id } => fail(
            ErrorCode::InvalidInput,
            format!("file id {id} is taken by another upload; choose another id"),
        ),
        StoreError::FileTooLarge { size, max } => fail(
            ErrorCode::TooLarge,
            format!("a file of {size} bytes is over this relay's limit of {max} bytes"),
        ),
        StoreError::QuotaExceeded { used, size, quota } => fail(
            ErrorCode::QuotaExceeded,
            format!(
                "your files on this relay take {used} of {quota} bytes; {size} more do not fit (old files expire, or ask the operator for more)"
            ),
        ),
        StoreError::TooManyGroups { user, limit } => fail(
            ErrorCode::LimitReached,
            format!("'{user}' is in {limit} groups already, as many as one may be"),
        ),
        e @ StoreError::MomentQuotaExceeded { .. } => fail(ErrorCode::QuotaExceeded, e.to_string()),
        e @ StoreError::NoSuchPost { .. } => fail(ErrorCode::NoSuchPost, e.to_string()),
        e @ StoreError::NoSuchComment { .. } => fail(ErrorCode::NoSuchComment, e.to_string()),
        e @ StoreError::NotYours { .. } => fail(ErrorCode::NotAllowed, e.to_string()),
        e @ (StoreError::MomentIdTaken { .. } | StoreError::InvalidReply { .. }) => {
            fail(ErrorCode::InvalidInput, e.to_string())
        }
        StoreError::OwnerCannotBeRemoved { .. } => fail(
            ErrorCode::InvalidInput,
            "the owner cannot remove themselves; leave the group instead (uchat group leave)",
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

/// Answers one request with the frame to write back.
pub(super) async fn handle(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    request: Request,
) -> Result<Vec<u8>, FrameError> {
    let kind = request.kind();
    let result = match dispatch(connection, shared, request).await {
        Ok(reply) => encode_reply(kind, reply),
        Err(error) => Err(error),
    };
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
        Ok(frame) => Ok(frame),
        Err(error) => {
            tracing::debug!(remote = %connection.remote, request = kind, code = %error.code, "request refused");
            frame::encode(&Response::Error(error), MAX_CONTROL_FRAME_BYTES)
        }
    }
}

/// The frame of a successful answer to a `kind` request. An answer too large for a frame
/// is refused with `TooLarge` instead, so the peer learns why rather than seeing its
/// stream reset. Every list that can grow without bound is paged, so this is the net
/// under a mistake, not a way lists end.
fn encode_reply(kind: &str, reply: Reply) -> Result<Vec<u8>, ErrorReply> {
    frame::encode(&Response::Ok(reply), MAX_CONTROL_FRAME_BYTES).map_err(|e| {
        tracing::error!(request = kind, error = %e, "an answer does not fit in a frame");
        match e {
            FrameError::TooLarge { len, max } => fail(
                ErrorCode::TooLarge,
                format!(
                    "the answer to this request would be {len} bytes, more than one frame holds ({max})"
                ),
            ),
            _ => fail(ErrorCode::Internal, "the relay could not encode its answer"),
        }
    })
}

async fn dispatch(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    request: Request,
) -> Answer {
    if let Request::Hello(request::Hello { protocol, client }) = &request {
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
        return Ok(Reply::Welcome(reply::Welcome {
            protocol: PROTOCOL_VERSION,
            relay: format!("uchat-relay/{}", env!("CARGO_PKG_VERSION")),
        }));
    }
    if !connection.state().said_hello {
        return Err(fail(
            ErrorCode::ProtocolViolation,
            "send Hello before any other request",
        ));
    }
    if matches!(
        request,
        Request::Register(_) | Request::Login(_) | Request::Resume(_)
    ) && let Some(user) = connection.user()
    {
        // Refused before anything is checked or stored: a second login would otherwise
        // create an account, or swap a password login for a token one.
        return Err(fail(
            ErrorCode::ProtocolViolation,
            format!("this connection is already logged in as '{user}'; log out first"),
        ));
    }
    // Every kind by name, no catch-all: a new kind does not compile until it is answered.
    let me = || signed_in(connection);
    match request {
        // Answered above, before the check that one came first.
        Request::Hello(_) => Err(fail(ErrorCode::ProtocolViolation, "hello twice")),
        Request::Register(ask) => answer(register(connection, shared, ask).await),
        Request::Login(ask) => answer(login(connection, shared, ask.username, ask.password).await),
        Request::Resume(ask) => answer(resume(connection, shared, ask.username, ask.token).await),
        Request::Unknown => Err(fail(
            ErrorCode::ProtocolViolation,
            "unknown request; this relay may be older than the client",
        )),
        Request::Logout => answer(logout(connection, shared, me()?).await),
        Request::UploadKeys(ask) => answer(upload_keys(shared, me()?, ask.into()).await),
        Request::KeyCount => answer(key_count(shared, me()?).await),
        Request::ReplaceIdentity(ask) => {
            answer(replace_identity(connection, shared, me()?, ask).await)
        }
        Request::ClaimKey(ask) => answer(claim_key(shared, me()?, ask.user).await),
        Request::Identity(ask) => {
            me()?;
            answer(identity(shared, ask.user).await)
        }
        Request::Send(ask) => answer(send(shared, me()?, ask.to, ask.id, ask.ciphertext).await),
        Request::Ack(ask) => answer(ack(shared, me()?, ask.through).await),
        Request::Presence(ask) => answer(social::presence(shared, me()?, ask.users).await),
        Request::FriendRequest(ask) => {
            answer(social::request(shared, me()?, ask.to, ask.note).await)
        }
        Request::AcceptFriend(ask) => answer(social::accept(shared, me()?, ask.from).await),
        Request::RejectFriend(ask) => answer(social::reject(shared, me()?, ask.from).await),
        Request::RemoveFriend(ask) => answer(social::remove(shared, me()?, ask.user).await),
        Request::Block(ask) => answer(social::set_blocked(shared, me()?, ask.user, true).await),
        Request::Unblock(ask) => answer(social::set_blocked(shared, me()?, ask.user, false).await),
        Request::Friends => answer(social::list(shared, me()?).await),
        Request::FriendRequests => answer(social::requests(shared, me()?).await),
        Request::SetProfile(ask) => {
            answer(profile::set(shared, me()?, ask.signature, ask.avatar).await)
        }
        Request::GetProfile(ask) => {
            let known = ask.known_avatar_version;
            answer(profile::get(shared, me()?, ask.user, known).await)
        }
        Request::CreateGroup(ask) => {
            answer(group::create(shared, me()?, ask.name, ask.members).await)
        }
        Request::Groups => answer(group::list(shared, me()?).await),
        Request::GroupInfo(ask) => answer(group::info(shared, me()?, ask.group).await),
        Request::InviteToGroup(ask) => {
            answer(group::invite(shared, me()?, ask.group, ask.user).await)
        }
        Request::KickFromGroup(ask) => {
            answer(group::kick(shared, me()?, ask.group, ask.user).await)
        }
        Request::LeaveGroup(ask) => answer(group::leave(shared, me()?, ask.group).await),
        Request::SyncGroup(ask) => answer(group::sync(shared, me()?, ask.group).await),
        Request::GroupSend(ask) => answer(group::send(shared, me()?, ask).await),
        // Transfers are served on their stream before dispatch (connection.rs).
        Request::UploadFile(_) | Request::DownloadFile(_) => Err(fail(
            ErrorCode::ProtocolViolation,
            "a transfer needs a stream of its own",
        )),
        Request::CallInvite(ask) => {
            answer(call::invite(connection, shared, me()?, ask.call, ask.to, ask.offer).await)
        }
        Request::CallAnswer(ask) => {
            answer(call::answer(connection, shared, me()?, ask.call, ask.answer).await)
        }
        Request::CallReject(ask) => answer(call::reject(shared, me()?, ask.call).await),
        Request::CallHangup(ask) => answer(call::hang_up(shared, me()?, ask.call).await),
        Request::MomentPost(ask) => {
            answer(moment::post(shared, me()?, ask.id, ask.ciphertext, ask.shares).await)
        }
        Request::MomentFeed(ask) => {
            answer(moment::feed(shared, me()?, ask.before, ask.limit).await)
        }
        Request::MomentGet(ask) => answer(moment::get(shared, me()?, ask.post).await),
        Request::MomentLike(ask) => {
            answer(moment::like(shared, me()?, ask.post, ask.ciphertext).await)
        }
        Request::MomentUnlike(ask) => answer(moment::unlike(shared, me()?, ask.post).await),
        Request::MomentComment(ask) => answer(moment::comment(shared, me()?, ask).await),
        Request::MomentDelete(ask) => answer(moment::delete(shared, me()?, ask.post).await),
        Request::MomentDeleteComment(ask) => {
            answer(moment::delete_comment(shared, me()?, ask.comment).await)
        }
        Request::FriendsPage(ask) => {
            answer(social::list_page(shared, me()?, ask.after, ask.limit).await)
        }
        Request::GroupsPage(ask) => {
            answer(group::list_page(shared, me()?, ask.after, ask.limit).await)
        }
        Request::IncomingFriendRequestsPage(ask) => {
            let direction = RequestDirection::Incoming;
            answer(social::requests_page(shared, me()?, direction, ask.after, ask.limit).await)
        }
        Request::OutgoingFriendRequestsPage(ask) => {
            let direction = RequestDirection::Outgoing;
            answer(social::requests_page(shared, me()?, direction, ask.after, ask.limit).await)
        }
    }
}

/// A handler's typed reply as the [`Reply`] it is sent as.
fn answer<R: Into<Reply>>(result: Result<R, ErrorReply>) -> Answer {
    result.map(Into::into)
}

/// The user this connection is logged in as, or the refusal of a request that needs one.
fn signed_in(connection: &Connection) -> Result<UserName, ErrorReply> {
    connection
        .user()
        .ok_or_else(|| fail(ErrorCode::NotAuthenticated, "log in first"))
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

/// Signed one-time keys and an optional fallback key, as a request carries them.
struct KeyUpload {
    one_time_keys: Vec<SignedKey>,
    fallback_key: Option<SignedKey>,
}

impl From<request::UploadKeys> for KeyUpload {
    fn from(upload: request::UploadKeys) -> Self {
        KeyUpload {
            one_time_keys: upload.one_time_keys,
            fallback_key: upload.fallback_key,
        }
    }
}

impl KeyUpload {
    /// [`ErrorCode::TooLarge`] or [`ErrorCode::BadKeys`] unless the keys are acceptable.
    fn check(&self) -> Result<(), ErrorReply> {
        check_keys(&self.one_time_keys, self.fallback_key.as_ref())
    }
}

/// What the peer is told when a username exists (the same words as the store's refusal).
fn username_taken(username: &UserName) -> ErrorReply {
    store_failure(StoreError::UsernameTaken {
        username: username.clone(),
    })
}

/// How a Register was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Registered {
    /// A new account.
    New,
    /// The retry of an earlier Register whose reply was lost.
    Retry,
}

/// Creates the account with its keys in one store transaction and logs the connection in.
async fn register(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    ask: request::Register,
) -> Result<reply::Session, ErrorReply> {
    let request::Register {
        username,
        password,
        identity,
        one_time_keys,
        fallback_key,
    } = ask;
    let keys = KeyUpload {
        one_time_keys,
        fallback_key,
    };
    let ip = connection.remote.ip();
    match admit_register(shared, ip, &username, password, identity, keys).await? {
        Registered::New => tracing::info!(user = %username, "registered"),
        Registered::Retry => {
            tracing::info!(user = %username, "registration retried after a lost reply");
        }
    }
    start_session(connection, shared, username, true).await
}

/// Everything Register does before the session starts: checks the request, then creates
/// the account with its keys, or accepts a retry ([`retry_register`]) if the name exists.
async fn admit_register(
    shared: &Arc<RelayState>,
    ip: IpAddr,
    username: &UserName,
    password: Password,
    identity: IdentityKeys,
    keys: KeyUpload,
) -> Result<Registered, ErrorReply> {
    check_password_policy(&password)?;
    check_identity_keys(&identity)?;
    keys.check()?;
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
async fn retry_register(
    shared: &Arc<RelayState>,
    ip: IpAddr,
    existing: AccountRecord,
    password: Password,
    identity: &IdentityKeys,
    keys: KeyUpload,
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

/// Adds one-time keys to `user`'s stock and sets the fallback key if one is given;
/// returns the stock size. Both steps are idempotent, so a retried upload is harmless.
async fn store_keys(
    shared: &Arc<RelayState>,
    user: &UserName,
    keys: KeyUpload,
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

/// Runs argon2 work on the relay's password workers once a permit is free (see
/// `password.rs`): each hash or verification holds 19 MiB for a while, so a flood of
/// logins waits there instead of allocating without bound.
async fn password_work<T, F>(shared: &RelayState, work: F) -> Result<T, ErrorReply>
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
async fn hash_password(shared: &RelayState, password: Password) -> Result<String, ErrorReply> {
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
async fn verify_password(
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

async fn login(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    username: UserName,
    password: Password,
) -> Result<reply::Session, ErrorReply> {
    check_login(shared, connection.remote.ip(), &username, password).await?;
    start_session(connection, shared, username, true).await
}

/// Checks `username`'s password for a login from `ip`, within the failed-login budget.
async fn check_login(
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
fn reserve_login_attempt(
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
fn login_succeeded(shared: &RelayState, ticket: AttemptTicket) {
    shared
        .login_limiter
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .record_success(ticket);
}

fn token_hash(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

async fn resume(
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
fn too_many_connections(max: usize) -> ErrorReply {
    fail(
        ErrorCode::LimitReached,
        format!(
            "this account has {max} connections to the relay already (each device, app and uchat command holds one); close one and try again"
        ),
    )
}

/// Makes a new session token for `username` and logs this connection in;
/// `password_login` says the password was just checked (Register or Login).
async fn start_session(
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
fn bind_user(
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
                super::voice::notify(shared, username, event);
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
async fn logout(
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

async fn upload_keys(
    shared: &Arc<RelayState>,
    user: UserName,
    keys: KeyUpload,
) -> Result<reply::KeyCount, ErrorReply> {
    keys.check()?;
    let count = store_keys(shared, &user, keys).await?;
    Ok(reply::KeyCount {
        one_time_keys: count,
    })
}

/// The token hash of `login` if its password was checked on this connection; replacing
/// identity keys needs that, not just a saved token, since a stolen token must not be
/// enough to take over an account's identity.
fn require_password_login(login: Option<&Login>) -> Result<[u8; 32], ErrorReply> {
    match login {
        Some(login) if login.password_login => Ok(login.token_hash),
        _ => Err(fail(
            ErrorCode::NotAuthenticated,
            "replacing identity keys needs a fresh password login (uchat login --new-device)",
        )),
    }
}

/// Publishes a new device's identity keys, revokes every other session of the user in the
/// same store transaction, and closes the user's other connections, whose keys are now
/// stale.
async fn replace_identity(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    user: UserName,
    ask: request::ReplaceIdentity,
) -> Result<reply::KeyCount, ErrorReply> {
    let request::ReplaceIdentity {
        identity,
        one_time_keys,
        fallback_key,
    } = ask;
    let keys = KeyUpload {
        one_time_keys,
        fallback_key,
    };
    let keep_token_hash = require_password_login(connection.state().login.as_ref())?;
    check_identity_keys(&identity)?;
    keys.check()?;
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

/// Closes every connection of `user` except `keep`; returns how many.
fn close_other_connections(shared: &RelayState, user: &UserName, keep: ConnectionId) -> usize {
    let others = shared.online.others(user, keep);
    for conn in &others {
        conn.close(
            CLOSE_IDENTITY_REPLACED.into(),
            b"identity replaced by a new device; log in again",
        );
    }
    others.len()
}

async fn key_count(
    shared: &Arc<RelayState>,
    user: UserName,
) -> Result<reply::KeyCount, ErrorReply> {
    let store = shared.store.clone();
    let count = blocking(move || store.one_time_key_count(&user)).await?;
    Ok(reply::KeyCount {
        one_time_keys: count,
    })
}

/// The account named `whose`, if any.
async fn account_named(
    shared: &Arc<RelayState>,
    whose: &UserName,
) -> Result<Option<AccountRecord>, ErrorReply> {
    let store = shared.store.clone();
    let name = whose.clone();
    blocking(move || store.account(&name)).await
}

/// The account named `whose`, or [`ErrorCode::UnknownUser`].
async fn account_of(
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
async fn claim_key(
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

async fn identity(
    shared: &Arc<RelayState>,
    whose: UserName,
) -> Result<reply::Identity, ErrorReply> {
    let account = account_of(shared, &whose).await?;
    Ok(reply::Identity {
        user: whose,
        identity: account.identity,
    })
}

async fn send(
    shared: &Arc<RelayState>,
    from: UserName,
    to: UserName,
    id: MessageId,
    ciphertext: Vec<u8>,
) -> Result<reply::Sent, ErrorReply> {
    if ciphertext.len() > MAX_CIPHERTEXT_BYTES {
        return Err(fail(
            ErrorCode::TooLarge,
            format!(
                "message of {} bytes exceeds the limit of {MAX_CIPHERTEXT_BYTES} bytes; send it as a file",
                ciphertext.len()
            ),
        ));
    }
    let size = ciphertext.len();
    // Committed (durably, with whatever else is waiting) before the sender hears "sent":
    // the delivery rule. The store checks the friendship and blocks in the same transaction.
    let outcome = shared
        .committer
        .commit(BatchWrite::Message {
            from: from.clone(),
            to: to.clone(),
            id,
            ciphertext,
            now_ms: now_ms(),
            limit: shared.limits.queue(),
        })
        .await?;
    let BatchOutcome::Message(outcome) = outcome else {
        return Err(mismatched_outcome());
    };
    let enqueued = match outcome {
        MessageOutcome::Queued(enqueued) => enqueued,
        // The recipient blocked the sender: answered like a delivery, so they cannot tell.
        MessageOutcome::Dropped { relay_ts_ms } => {
            tracing::debug!(%from, %to, "message from a blocked sender dropped");
            return Ok(reply::Sent {
                relay_ts_ms,
                duplicate: false,
                unshared: Vec::new(),
            });
        }
    };
    if !enqueued.duplicate {
        shared.metrics.messages_queued.inc();
        shared.metrics.message_bytes_queued.inc_by(size as u64);
        shared.online.wake(&to);
    }
    tracing::debug!(%from, %to, bytes = size, seq = %enqueued.seq, duplicate = enqueued.duplicate, "message queued");
    Ok(reply::Sent {
        relay_ts_ms: enqueued.relay_ts_ms,
        duplicate: enqueued.duplicate,
        unshared: Vec::new(),
    })
}

async fn ack(shared: &Arc<RelayState>, user: UserName, through: Seq) -> Result<(), ErrorReply> {
    shared
        .committer
        .commit(BatchWrite::Ack { user, through })
        .await?;
    Ok(())
}

/// The committer answered a write with another kind's outcome: a bug, reported as one.
pub(super) fn mismatched_outcome() -> ErrorReply {
    tracing::error!("the committer answered a write with the outcome of another kind");
    fail(
        ErrorCode::Internal,
        "the relay failed internally; try again",
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::Notify;

    use super::*;
    use crate::server::tests::test_shared;

    const PASSWORD: &str = "correct horse";

    fn alice() -> UserName {
        UserName::parse("alice").expect("valid")
    }

    fn ip() -> IpAddr {
        "192.0.2.1".parse().expect("ip")
    }

    fn identity(b: u8) -> IdentityKeys {
        IdentityKeys {
            curve25519: vec![b; 32],
            ed25519: vec![b; 32],
        }
    }

    fn key(b: u8) -> SignedKey {
        SignedKey {
            key: vec![b; 32],
            signature: vec![b; 64],
        }
    }

    fn keys(one_time: &[u8], fallback: Option<u8>) -> KeyUpload {
        KeyUpload {
            one_time_keys: one_time.iter().copied().map(key).collect(),
            fallback_key: fallback.map(key),
        }
    }

    async fn register_alice(
        shared: &Arc<RelayState>,
        password: &str,
        identity_byte: u8,
        upload: KeyUpload,
    ) -> Result<Registered, ErrorReply> {
        let password = Password::new(password);
        admit_register(
            shared,
            ip(),
            &alice(),
            password,
            identity(identity_byte),
            upload,
        )
        .await
    }

    fn login(password_login: bool) -> Login {
        Login {
            user: alice(),
            wake: Arc::new(Notify::new()),
            ephemeral: None,
            token_hash: [7; 32],
            password_login,
            pusher: None,
        }
    }

    #[test]
    fn an_answer_too_large_for_a_frame_is_refused_with_too_large_not_cut_off() {
        let friend = |i: u32| uchat_wire::FriendEntry {
            user: UserName::parse(&format!("friend{i:05}")).expect("valid"),
            since_ms: 1,
            online: false,
            last_seen_ms: None,
            blocked: false,
            identity: identity(1),
            profile: uchat_wire::ProfileSummary {
                signature: "签名".repeat(100),
                avatar_version: None,
                updated_ms: 1,
            },
        };
        let few = Reply::Friends(reply::Friends {
            friends: (0..3).map(friend).collect(),
        });
        let frame = encode_reply("friends", few.clone()).expect("fits");
        assert_eq!(
            frame::decode_frame::<Response>(&frame, MAX_CONTROL_FRAME_BYTES),
            Ok(Response::Ok(few))
        );
        let many = Reply::Friends(reply::Friends {
            friends: (0..5000).map(friend).collect(),
        });
        let err = encode_reply("friends", many).expect_err("too large");
        assert_eq!(err.code, ErrorCode::TooLarge);
        assert!(
            err.message
                .starts_with("the answer to this request would be ")
                && err
                    .message
                    .ends_with(" bytes, more than one frame holds (1048576)"),
            "{}",
            err.message
        );
    }

    #[test]
    fn page_requests_ask_for_one_to_a_thousand_entries() {
        assert_eq!(page_limits(0).max_entries, 1);
        assert_eq!(page_limits(20).max_entries, 20);
        assert_eq!(page_limits(u32::MAX).max_entries, 1000);
        assert_eq!(page_limits(7).max_bytes, PAGE_BYTE_BUDGET);
    }

    #[test]
    fn replacing_identity_needs_a_password_login_on_this_connection() {
        assert_eq!(require_password_login(Some(&login(true))), Ok([7; 32]));
        for refused in [None, Some(&login(false))] {
            let err = require_password_login(refused).expect_err("refused");
            assert_eq!(err.code, ErrorCode::NotAuthenticated);
            assert_eq!(
                err.message,
                "replacing identity keys needs a fresh password login (uchat login --new-device)"
            );
        }
    }

    #[tokio::test]
    async fn register_stores_the_account_with_its_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = test_shared(dir.path(), 1);
        let registered = register_alice(&shared, PASSWORD, 1, keys(&[1, 2], Some(3))).await;
        assert_eq!(registered, Ok(Registered::New));
        let account = shared
            .store
            .account(&alice())
            .expect("reads")
            .expect("exists");
        assert_eq!(account.identity, identity(1));
        assert_eq!(
            shared.store.one_time_key_count(&alice()).expect("counts"),
            2
        );
    }

    #[tokio::test]
    async fn a_retried_register_with_the_same_identity_and_password_succeeds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = test_shared(dir.path(), 1);
        register_alice(&shared, PASSWORD, 1, keys(&[1, 2], Some(3)))
            .await
            .expect("registers");
        // The reply was lost; the peer sends the same Register again, maybe with more keys.
        let again = register_alice(&shared, PASSWORD, 1, keys(&[1, 2, 4], Some(5))).await;
        assert_eq!(again, Ok(Registered::Retry));
        assert_eq!(
            shared.store.one_time_key_count(&alice()).expect("counts"),
            3
        );
        for _ in 0..3 {
            shared.store.claim_key(&alice()).expect("claims");
        }
        let fallback = shared
            .store
            .claim_key(&alice())
            .expect("claims")
            .expect("some");
        assert_eq!((fallback.key, fallback.fallback), (key(5), true));
    }

    #[tokio::test]
    async fn a_register_for_a_taken_name_fails_without_the_identity_or_the_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = test_shared(dir.path(), 1);
        register_alice(&shared, PASSWORD, 1, keys(&[1], None))
            .await
            .expect("registers");
        let other_identity = register_alice(&shared, PASSWORD, 2, keys(&[8], None)).await;
        let wrong_password = register_alice(&shared, "not the password", 1, keys(&[9], None)).await;
        for refused in [other_identity, wrong_password] {
            let err = refused.expect_err("taken");
            assert_eq!(err.code, ErrorCode::UsernameTaken);
            assert_eq!(err.message, "the username 'alice' is taken; choose another");
        }
        let account = shared
            .store
            .account(&alice())
            .expect("reads")
            .expect("exists");
        assert_eq!(account.identity, identity(1), "the account is untouched");
        assert_eq!(
            shared.store.one_time_key_count(&alice()).expect("counts"),
            1
        );
        // Only the wrong password was a password guess.
        assert_eq!(shared.metrics.failed_logins.get(), 1);
    }

    #[tokio::test]
    async fn argon2_work_waits_for_a_free_permit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = test_shared(dir.path(), 1);
        let held = shared
            .password_work
            .permits()
            .acquire_owned()
            .await
            .expect("open");
        let hashing = tokio::spawn({
            let shared = shared.clone();
            async move { hash_password(&shared, Password::new(PASSWORD)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!hashing.is_finished(), "no permit, no hashing");
        drop(held);
        let hash = tokio::time::timeout(Duration::from_secs(30), hashing)
            .await
            .expect("hashes once the permit is free")
            .expect("does not panic")
            .expect("hashes");
        let verified = verify_password(&shared, Password::new(PASSWORD), hash.clone()).await;
        assert_eq!(verified, Ok(true));
        let wrong = verify_password(&shared, Password::new("nope nope"), hash).await;
        assert_eq!(wrong, Ok(false));
    }

    #[tokio::test]
    async fn parallel_logins_beyond_the_budget_are_refused_before_any_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = test_shared(dir.path(), 1);
        register_alice(&shared, PASSWORD, 1, keys(&[], None))
            .await
            .expect("registers");
        let budget = shared.limits.max_failed_logins_per_account_address as usize;
        // Hold the only argon2 permit, so no attempt can finish its verification.
        let held = shared
            .password_work
            .permits()
            .acquire_owned()
            .await
            .expect("open");
        let mut attempts = tokio::task::JoinSet::new();
        for _ in 0..=budget {
            let shared = shared.clone();
            attempts.spawn(async move {
                check_login(&shared, ip(), &alice(), Password::new("wrong password")).await
            });
        }
        let first = tokio::time::timeout(Duration::from_secs(5), attempts.join_next())
            .await
            .expect("one attempt is refused at once")
            .expect("one task")
            .expect("does not panic");
        assert_eq!(first.expect_err("refused").code, ErrorCode::RateLimited);
        drop(held);
        while let Some(outcome) = attempts.join_next().await {
            let err = outcome
                .expect("does not panic")
                .expect_err("wrong password");
            assert_eq!(err.code, ErrorCode::WrongPassword);
        }
        // The budget is spent: even the right password must wait now.
        let right = check_login(&shared, ip(), &alice(), Password::new(PASSWORD)).await;
        assert_eq!(right.expect_err("limited").code, ErrorCode::RateLimited);
    }

    #[tokio::test]
    async fn guesses_from_one_address_do_not_lock_the_owner_out_from_another() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = test_shared(dir.path(), 2);
        register_alice(&shared, PASSWORD, 1, keys(&[], None))
            .await
            .expect("registers");
        let attacker: IpAddr = "198.51.100.7".parse().expect("ip");
        let budget = shared.limits.max_failed_logins_per_account_address;
        let mut limited = 0;
        for _ in 0..budget + 5 {
            let guess = check_login(&shared, attacker, &alice(), Password::new("guess 1234")).await;
            match guess.expect_err("wrong").code {
                ErrorCode::WrongPassword => {}
                ErrorCode::RateLimited => limited += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            limited, 5,
            "the attacker's address is stopped at its budget"
        );
        // Alice, from her own address, still gets in (after a short back-off at most).
        assert_eq!(
            check_login(&shared, ip(), &alice(), Password::new(PASSWORD)).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn a_successful_login_clears_the_accounts_failures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = test_shared(dir.path(), 1);
        register_alice(&shared, PASSWORD, 1, keys(&[], None))
            .await
            .expect("registers");
        let budget = shared.limits.max_failed_logins_per_account_address;
        for _ in 1..budget {
            let wrong = check_login(&shared, ip(), &alice(), Password::new("wrong password")).await;
            assert_eq!(wrong.expect_err("wrong").code, ErrorCode::WrongPassword);
        }
        assert_eq!(
            check_login(&shared, ip(), &alice(), Password::new(PASSWORD)).await,
            Ok(())
        );
        let wrong = check_login(&shared, ip(), &alice(), Password::new("wrong password")).await;
        assert_eq!(
            wrong.expect_err("counted afresh").code,
            ErrorCode::WrongPassword
        );
    }
}
