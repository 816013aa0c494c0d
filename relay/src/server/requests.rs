//! Request handling: one function per request kind, and the one place where internal
//! failures become wire error codes ([`store_failure`]) and answers become frames (an
//! answer too large for one is refused with `TooLarge`, never a reset stream). `dispatch`
//! names every request kind, with no catch-all. Accounts and sessions live in [`account`],
//! keys in [`keys`], 1:1 messages in [`message`], friends, friend requests and presence in
//! [`social`], profiles in [`profile`], groups in [`group`], calls in [`call`], moments in
//! [`moment`]; the lists that can grow long are cut into pages by [`super::page`].

mod account;
mod call;
mod group;
mod keys;
mod message;
mod moment;
mod profile;
mod social;

use account::{login, logout, register, resume};
use keys::{claim_key, identity, key_count, replace_identity, upload_keys};
use message::{ack, send};

use std::sync::Arc;
use uchat_wire::{reply, request};

use uchat_store::{RequestDirection, StoreError};
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::msg::page::{MAX_PAGE_ENTRIES, PAGE_BYTE_BUDGET};
use uchat_wire::{
    ErrorCode, ErrorReply, FrameError, PROTOCOL_VERSION, Reply, Request, Response, UserName,
};

use super::RelayState;
use super::connection::Connection;
use super::page::PageLimits;

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
        Request::UploadKeys(ask) => answer(upload_keys(shared, me()?, ask).await),
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

    use std::net::IpAddr;

    use uchat_wire::{IdentityKeys, Password, SignedKey};

    use super::account::*;
    use super::*;
    use crate::server::connection::Login;
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

    fn keys(one_time: &[u8], fallback: Option<u8>) -> request::UploadKeys {
        request::UploadKeys {
            one_time_keys: one_time.iter().copied().map(key).collect(),
            fallback_key: fallback.map(key),
        }
    }

    async fn register_alice(
        shared: &Arc<RelayState>,
        password: &str,
        identity_byte: u8,
        upload: request::UploadKeys,
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
