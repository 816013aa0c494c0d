//! Protocol messages: [`request`] (peer → relay), [`response`] (relay → peer, one per
//! request) and [`push`] (relay → peer on the event stream).

pub mod call;
pub mod file;
pub mod group;
pub mod moment;
pub mod page;
pub mod push;
pub mod request;
pub mod response;
pub mod social;
pub mod typed;

/// Reads and discards the body of a variant this build does not know, for the `Unknown`
/// catch-alls of the adjacently tagged enums.
///
/// `#[serde(other)]` alone decodes an unknown variant's body as a unit, so it accepts a
/// newer unit variant but fails on one that carries a body ("invalid type: map, expected
/// unit variant"); with this as its `deserialize_with`, any body is skipped.
pub(crate) fn skip_unknown_body<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    <serde::de::IgnoredAny as serde::Deserialize>::deserialize(d).map(|_| ())
}

#[cfg(test)]
mod tests {
    //! Codec properties of every message type: round trips through the frame decoder in
    //! arbitrary splits, robustness against perturbed bytes, pinned byte snapshots, and
    //! checks that rmp-serde gives the forward compatibility the protocol relies on.

    use proptest::prelude::*;
    use proptest::sample::Index;
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};

    use crate::frame::{self, FrameDecoder, MAX_CONTROL_FRAME_BYTES};
    use crate::{
        AvatarChange, CallEndReason, CallId, CommentId, ErrorCode, ErrorReply, FriendEntry,
        FriendRequestEntry, GroupChange, GroupId, GroupInfo, GroupMember, IdentityKeys, KeyShare,
        MessageId, MomentComment, MomentItem, MomentLike, PROTOCOL_VERSION, Password, PostId,
        PresenceEntry, ProfileSummary, ProtocolVersion, Push, PushEvent, Reply, Request, Response,
        Seq, SessionToken, SignedKey, UserName,
    };

    // ---- generators -------------------------------------------------------------------

    fn user_name() -> impl Strategy<Value = UserName> {
        "[a-z][a-z0-9_.-]{0,31}".prop_map(|s| UserName::parse(&s).expect("the regex is valid"))
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..80)
    }

    /// Arbitrary Unicode, plus text that is surely Chinese and emoji.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z 你好世界微信聊天🎉😀🌍👍🏽\u{200d}]{0,24}",
            Just("你好，世界 🌍👨‍👩‍👧".to_owned()),
        ]
    }

    fn protocol() -> impl Strategy<Value = ProtocolVersion> {
        (any::<u16>(), any::<u16>()).prop_map(|(major, minor)| ProtocolVersion { major, minor })
    }

    fn identity_keys() -> impl Strategy<Value = IdentityKeys> {
        (bytes(), bytes()).prop_map(|(curve25519, ed25519)| IdentityKeys {
            curve25519,
            ed25519,
        })
    }

    fn signed_key() -> impl Strategy<Value = SignedKey> {
        (bytes(), bytes()).prop_map(|(key, signature)| SignedKey { key, signature })
    }

    fn signed_keys() -> impl Strategy<Value = Vec<SignedKey>> {
        proptest::collection::vec(signed_key(), 0..4)
    }

    fn seq() -> impl Strategy<Value = Seq> {
        any::<u64>().prop_map(Seq)
    }

    fn message_id() -> impl Strategy<Value = MessageId> {
        any::<[u8; 16]>().prop_map(MessageId)
    }

    fn group_id() -> impl Strategy<Value = GroupId> {
        any::<[u8; 16]>().prop_map(GroupId)
    }

    fn group_info() -> impl Strategy<Value = GroupInfo> {
        (
            group_id(),
            text(),
            user_name(),
            any::<u64>(),
            any::<u64>(),
            proptest::collection::vec(
                (user_name(), any::<u64>())
                    .prop_map(|(user, joined_ms)| GroupMember { user, joined_ms }),
                0..4,
            ),
        )
            .prop_map(|(id, name, owner, epoch, created_ms, members)| GroupInfo {
                id,
                name,
                owner,
                epoch,
                created_ms,
                members,
            })
    }

    fn group_change() -> impl Strategy<Value = GroupChange> {
        prop_oneof![
            user_name().prop_map(|by| GroupChange::Created { by }),
            (user_name(), user_name()).prop_map(|(user, by)| GroupChange::Joined { user, by }),
            (user_name(), proptest::option::of(user_name()))
                .prop_map(|(user, new_owner)| GroupChange::Left { user, new_owner }),
            (user_name(), user_name()).prop_map(|(user, by)| GroupChange::Removed { user, by }),
            Just(GroupChange::Synced),
            Just(GroupChange::Unknown),
        ]
    }

    fn key_shares() -> impl Strategy<Value = Vec<KeyShare>> {
        proptest::collection::vec(
            (user_name(), bytes()).prop_map(|(to, ciphertext)| KeyShare { to, ciphertext }),
            0..3,
        )
    }

    /// Requests added with groups (protocol 1.2).
    fn group_request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (text(), proptest::collection::vec(user_name(), 0..4)).prop_map(|(name, members)| {
                Request::CreateGroup(crate::request::CreateGroup { name, members })
            }),
            Just(Request::Groups),
            group_id().prop_map(|group| Request::GroupInfo(crate::request::GroupInfo { group })),
            (group_id(), user_name()).prop_map(|(group, user)| Request::InviteToGroup(
                crate::request::InviteToGroup { group, user }
            )),
            (group_id(), user_name()).prop_map(|(group, user)| Request::KickFromGroup(
                crate::request::KickFromGroup { group, user }
            )),
            group_id().prop_map(|group| Request::LeaveGroup(crate::request::LeaveGroup { group })),
            group_id().prop_map(|group| Request::SyncGroup(crate::request::SyncGroup { group })),
            (
                any::<[u8; 16]>(),
                any::<u64>(),
                prop_oneof![
                    proptest::collection::vec(user_name(), 0..3)
                        .prop_map(|users| crate::msg::file::FileAccess::Users { users }),
                    group_id().prop_map(|group| crate::msg::file::FileAccess::Group { group }),
                ]
            )
                .prop_map(|(file, size, access)| Request::UploadFile(
                    crate::request::UploadFile {
                        file: crate::FileId(file),
                        size,
                        access
                    }
                )),
            (any::<[u8; 16]>(), any::<u64>()).prop_map(|(file, offset)| Request::DownloadFile(
                crate::request::DownloadFile {
                    file: crate::FileId(file),
                    offset
                }
            )),
            (
                group_id(),
                any::<u64>(),
                message_id(),
                bytes(),
                key_shares()
            )
                .prop_map(|(group, epoch, id, ciphertext, key_shares)| {
                    Request::GroupSend(crate::request::GroupSend {
                        group,
                        epoch,
                        id,
                        ciphertext,
                        key_shares,
                    })
                }),
        ]
    }

    fn profile_summary() -> impl Strategy<Value = ProfileSummary> {
        (text(), proptest::option::of("[0-9a-f]{16}"), any::<u64>()).prop_map(
            |(signature, avatar_version, updated_ms)| ProfileSummary {
                signature,
                avatar_version,
                updated_ms,
            },
        )
    }

    fn avatar_change() -> impl Strategy<Value = AvatarChange> {
        prop_oneof![
            Just(AvatarChange::Remove),
            bytes().prop_map(|png| AvatarChange::Set { png }),
        ]
    }

    fn friend_request_entry() -> impl Strategy<Value = FriendRequestEntry> {
        (user_name(), text(), any::<u64>()).prop_map(|(user, note, created_ms)| {
            FriendRequestEntry {
                user,
                note,
                created_ms,
            }
        })
    }

    fn friend_entry() -> impl Strategy<Value = FriendEntry> {
        (
            user_name(),
            any::<u64>(),
            any::<bool>(),
            proptest::option::of(any::<u64>()),
            any::<bool>(),
            identity_keys(),
            profile_summary(),
        )
            .prop_map(
                |(user, since_ms, online, last_seen_ms, blocked, identity, profile)| FriendEntry {
                    user,
                    since_ms,
                    online,
                    last_seen_ms,
                    blocked,
                    identity,
                    profile,
                },
            )
    }

    /// Requests added with the social layer (protocol 1.1), kept apart so that
    /// `prop_oneof!` stays within its arity.
    fn social_request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (user_name(), text()).prop_map(|(to, note)| Request::FriendRequest(
                crate::request::FriendRequest { to, note }
            )),
            user_name()
                .prop_map(|from| Request::AcceptFriend(crate::request::AcceptFriend { from })),
            user_name()
                .prop_map(|from| Request::RejectFriend(crate::request::RejectFriend { from })),
            user_name()
                .prop_map(|user| Request::RemoveFriend(crate::request::RemoveFriend { user })),
            user_name().prop_map(|user| Request::Block(crate::request::Block { user })),
            user_name().prop_map(|user| Request::Unblock(crate::request::Unblock { user })),
            Just(Request::Friends),
            Just(Request::FriendRequests),
            (
                proptest::option::of(text()),
                proptest::option::of(avatar_change())
            )
                .prop_map(|(signature, avatar)| Request::SetProfile(
                    crate::request::SetProfile { signature, avatar }
                )),
            (user_name(), proptest::option::of("[0-9a-f]{16}")).prop_map(
                |(user, known_avatar_version)| Request::GetProfile(crate::request::GetProfile {
                    user,
                    known_avatar_version,
                })
            ),
        ]
    }

    fn call_id() -> impl Strategy<Value = CallId> {
        any::<[u8; 16]>().prop_map(CallId)
    }

    fn call_end_reason() -> impl Strategy<Value = CallEndReason> {
        proptest::sample::select(vec![
            CallEndReason::Rejected,
            CallEndReason::Cancelled,
            CallEndReason::Busy,
            CallEndReason::Timeout,
            CallEndReason::HungUp,
            CallEndReason::Offline,
            CallEndReason::ConnectionLost,
        ])
    }

    fn call_request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (call_id(), user_name(), bytes()).prop_map(|(call, to, offer)| Request::CallInvite(
                crate::request::CallInvite { call, to, offer }
            )),
            (call_id(), bytes()).prop_map(|(call, answer)| Request::CallAnswer(
                crate::request::CallAnswer { call, answer }
            )),
            call_id().prop_map(|call| Request::CallReject(crate::request::CallReject { call })),
            call_id().prop_map(|call| Request::CallHangup(crate::request::CallHangup { call })),
        ]
    }

    fn call_reply() -> impl Strategy<Value = Reply> {
        prop_oneof![
            (any::<u32>(), any::<u64>()).prop_map(|(leg, ring_timeout_ms)| Reply::CallRinging(
                crate::reply::CallRinging {
                    leg,
                    ring_timeout_ms
                }
            )),
            call_end_reason()
                .prop_map(|reason| Reply::CallEnded(crate::reply::CallEnded { reason })),
            any::<u32>().prop_map(|leg| Reply::CallConnected(crate::reply::CallConnected { leg })),
        ]
    }

    fn call_push_event() -> impl Strategy<Value = PushEvent> {
        prop_oneof![
            (call_id(), user_name(), bytes(), any::<u64>()).prop_map(
                |(call, from, offer, ring_left_ms)| PushEvent::CallIncoming {
                    call,
                    from,
                    offer,
                    ring_left_ms
                }
            ),
            (call_id(), bytes())
                .prop_map(|(call, answer)| PushEvent::CallAccepted { call, answer }),
            (call_id(), call_end_reason())
                .prop_map(|(call, reason)| PushEvent::CallEnded { call, reason }),
            (call_id(), user_name(), call_end_reason())
                .prop_map(|(call, from, reason)| PushEvent::MissedCall { call, from, reason }),
        ]
    }

    fn post_id() -> impl Strategy<Value = PostId> {
        any::<[u8; 16]>().prop_map(PostId)
    }

    fn moment_comment() -> impl Strategy<Value = MomentComment> {
        (
            any::<[u8; 16]>(),
            post_id(),
            user_name(),
            proptest::option::of(user_name()),
            any::<u64>(),
            bytes(),
        )
            .prop_map(|(id, post, author, reply_to, commented_ms, ciphertext)| {
                MomentComment {
                    id: CommentId(id),
                    post,
                    author,
                    reply_to,
                    commented_ms,
                    ciphertext,
                }
            })
    }

    fn moment_item() -> impl Strategy<Value = MomentItem> {
        (
            post_id(),
            user_name(),
            (any::<u64>(), any::<u64>()),
            bytes(),
            proptest::collection::vec(
                (user_name(), any::<u64>(), bytes()).prop_map(|(user, liked_ms, ciphertext)| {
                    MomentLike {
                        user,
                        liked_ms,
                        ciphertext,
                    }
                }),
                0..3,
            ),
            proptest::collection::vec(moment_comment(), 0..3),
        )
            .prop_map(
                |(id, author, (posted_ms, cursor), ciphertext, likes, comments)| MomentItem {
                    id,
                    author,
                    posted_ms,
                    cursor,
                    ciphertext,
                    likes,
                    comments,
                },
            )
    }

    /// Requests added with moments (protocol 1.5).
    fn moment_request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (post_id(), bytes(), key_shares()).prop_map(|(id, ciphertext, shares)| {
                Request::MomentPost(crate::request::MomentPost {
                    id,
                    ciphertext,
                    shares,
                })
            }),
            (proptest::option::of(any::<u64>()), any::<u32>()).prop_map(|(before, limit)| {
                Request::MomentFeed(crate::request::MomentFeed { before, limit })
            }),
            post_id().prop_map(|post| Request::MomentGet(crate::request::MomentGet { post })),
            (post_id(), bytes()).prop_map(|(post, ciphertext)| Request::MomentLike(
                crate::request::MomentLike { post, ciphertext }
            )),
            post_id().prop_map(|post| Request::MomentUnlike(crate::request::MomentUnlike { post })),
            moment_comment().prop_map(|c| Request::MomentComment(crate::request::MomentComment {
                post: c.post,
                id: c.id,
                reply_to: c.reply_to,
                ciphertext: c.ciphertext,
            })),
            post_id().prop_map(|post| Request::MomentDelete(crate::request::MomentDelete { post })),
            any::<[u8; 16]>().prop_map(|id| Request::MomentDeleteComment(
                crate::request::MomentDeleteComment {
                    comment: CommentId(id)
                }
            )),
        ]
    }

    fn moment_reply() -> impl Strategy<Value = Reply> {
        prop_oneof![
            (
                any::<u64>(),
                any::<bool>(),
                proptest::collection::vec(user_name(), 0..2)
            )
                .prop_map(|(posted_ms, duplicate, unshared)| Reply::MomentPosted(
                    crate::reply::MomentPosted {
                        posted_ms,
                        duplicate,
                        unshared
                    }
                )),
            (
                proptest::collection::vec(moment_item(), 0..3),
                proptest::option::of(any::<u64>())
            )
                .prop_map(|(posts, next)| Reply::MomentFeed(
                    crate::reply::MomentFeed { posts, next }
                )),
            moment_item().prop_map(|post| Reply::Moment(crate::reply::Moment { post })),
            any::<u64>().prop_map(|commented_ms| Reply::MomentCommented(
                crate::reply::MomentCommented { commented_ms }
            )),
        ]
    }

    fn moment_push_event() -> impl Strategy<Value = PushEvent> {
        prop_oneof![
            (post_id(), user_name(), bytes()).prop_map(|(post, author, ciphertext)| {
                PushEvent::MomentShared {
                    post,
                    author,
                    ciphertext,
                }
            }),
            (post_id(), user_name(), bytes()).prop_map(|(post, by, ciphertext)| {
                PushEvent::MomentLiked {
                    post,
                    by,
                    ciphertext,
                }
            }),
            moment_comment().prop_map(|comment| PushEvent::MomentCommented { comment }),
        ]
    }

    /// The paged list requests (protocol 1.6).
    fn page_request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (proptest::option::of(user_name()), any::<u32>()).prop_map(|(after, limit)| {
                Request::FriendsPage(crate::request::FriendsPage { after, limit })
            }),
            (proptest::option::of(group_id()), any::<u32>()).prop_map(|(after, limit)| {
                Request::GroupsPage(crate::request::GroupsPage { after, limit })
            }),
            (proptest::option::of(user_name()), any::<u32>()).prop_map(|(after, limit)| {
                Request::IncomingFriendRequestsPage(crate::request::IncomingFriendRequestsPage {
                    after,
                    limit,
                })
            }),
            (proptest::option::of(user_name()), any::<u32>()).prop_map(|(after, limit)| {
                Request::OutgoingFriendRequestsPage(crate::request::OutgoingFriendRequestsPage {
                    after,
                    limit,
                })
            }),
        ]
    }

    /// The paged list replies (protocol 1.6).
    fn page_reply() -> impl Strategy<Value = Reply> {
        prop_oneof![
            (
                proptest::collection::vec(friend_entry(), 0..3),
                proptest::option::of(user_name())
            )
                .prop_map(|(friends, next)| Reply::FriendsPage(
                    crate::reply::FriendsPage { friends, next }
                )),
            (
                proptest::collection::vec(group_info(), 0..3),
                proptest::option::of(group_id())
            )
                .prop_map(|(groups, next)| Reply::GroupsPage(
                    crate::reply::GroupsPage { groups, next }
                )),
            (
                proptest::collection::vec(friend_request_entry(), 0..3),
                proptest::option::of(user_name())
            )
                .prop_map(|(requests, next)| Reply::FriendRequestsPage(
                    crate::reply::FriendRequestsPage { requests, next }
                )),
        ]
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            page_request(),
            social_request(),
            moment_request(),
            call_request(),
            group_request(),
            (protocol(), text()).prop_map(|(protocol, client)| Request::Hello(
                crate::request::Hello { protocol, client }
            )),
            (
                user_name(),
                text(),
                identity_keys(),
                signed_keys(),
                proptest::option::of(signed_key())
            )
                .prop_map(
                    |(username, password, identity, one_time_keys, fallback_key)| {
                        Request::Register(crate::request::Register {
                            username,
                            password: Password::new(password),
                            identity,
                            one_time_keys,
                            fallback_key,
                        })
                    }
                ),
            (user_name(), text()).prop_map(|(username, password)| Request::Login(
                crate::request::Login {
                    username,
                    password: Password::new(password),
                }
            )),
            (user_name(), bytes()).prop_map(|(username, token)| Request::Resume(
                crate::request::Resume {
                    username,
                    token: SessionToken(token),
                }
            )),
            Just(Request::Logout),
            (signed_keys(), proptest::option::of(signed_key())).prop_map(
                |(one_time_keys, fallback_key)| Request::UploadKeys(crate::request::UploadKeys {
                    one_time_keys,
                    fallback_key,
                })
            ),
            Just(Request::KeyCount),
            user_name().prop_map(|user| Request::ClaimKey(crate::request::ClaimKey { user })),
            user_name().prop_map(|user| Request::Identity(crate::request::Identity { user })),
            (user_name(), message_id(), bytes()).prop_map(|(to, id, ciphertext)| Request::Send(
                crate::request::Send { to, id, ciphertext }
            )),
            seq().prop_map(|through| Request::Ack(crate::request::Ack { through })),
            proptest::collection::vec(user_name(), 0..5)
                .prop_map(|users| Request::Presence(crate::request::Presence { users })),
            (
                identity_keys(),
                signed_keys(),
                proptest::option::of(signed_key())
            )
                .prop_map(|(identity, one_time_keys, fallback_key)| {
                    Request::ReplaceIdentity(crate::request::ReplaceIdentity {
                        identity,
                        one_time_keys,
                        fallback_key,
                    })
                }),
            Just(Request::Unknown),
        ]
    }

    /// Numbers every `Request` variant. The match has no wildcard, so adding a variant
    /// fails to compile here until the generator above covers it too.
    fn request_variant(r: &Request) -> usize {
        match r {
            Request::Hello(_) => 0,
            Request::Register(_) => 1,
            Request::Login(_) => 2,
            Request::Resume(_) => 3,
            Request::Logout => 4,
            Request::UploadKeys(_) => 5,
            Request::KeyCount => 6,
            Request::ClaimKey(_) => 7,
            Request::Identity(_) => 8,
            Request::Send(_) => 9,
            Request::Ack(_) => 10,
            Request::Presence(_) => 11,
            Request::Unknown => 12,
            Request::ReplaceIdentity(_) => 13,
            Request::FriendRequest(_) => 14,
            Request::AcceptFriend(_) => 15,
            Request::RejectFriend(_) => 16,
            Request::RemoveFriend(_) => 17,
            Request::Block(_) => 18,
            Request::Unblock(_) => 19,
            Request::Friends => 20,
            Request::FriendRequests => 21,
            Request::SetProfile(_) => 22,
            Request::GetProfile(_) => 23,
            Request::CreateGroup(_) => 24,
            Request::Groups => 25,
            Request::GroupInfo(_) => 26,
            Request::InviteToGroup(_) => 27,
            Request::KickFromGroup(_) => 28,
            Request::LeaveGroup(_) => 29,
            Request::GroupSend(_) => 30,
            Request::SyncGroup(_) => 31,
            Request::UploadFile(_) => 32,
            Request::DownloadFile(_) => 33,
            Request::CallInvite(_) => 34,
            Request::CallAnswer(_) => 35,
            Request::CallReject(_) => 36,
            Request::CallHangup(_) => 37,
            Request::MomentPost(_) => 38,
            Request::MomentFeed(_) => 39,
            Request::MomentGet(_) => 40,
            Request::MomentLike(_) => 41,
            Request::MomentUnlike(_) => 42,
            Request::MomentComment(_) => 43,
            Request::MomentDelete(_) => 44,
            Request::MomentDeleteComment(_) => 45,
            Request::FriendsPage(_) => 46,
            Request::GroupsPage(_) => 47,
            Request::IncomingFriendRequestsPage(_) => 48,
            Request::OutgoingFriendRequestsPage(_) => 49,
        }
    }
    const REQUEST_VARIANTS: usize = 50;

    const ERROR_CODES: [ErrorCode; 38] = [
        ErrorCode::UnsupportedProtocol,
        ErrorCode::ProtocolViolation,
        ErrorCode::Malformed,
        ErrorCode::FrameTooLarge,
        ErrorCode::NotAuthenticated,
        ErrorCode::InvalidUsername,
        ErrorCode::InvalidPassword,
        ErrorCode::UsernameTaken,
        ErrorCode::UnknownUser,
        ErrorCode::WrongPassword,
        ErrorCode::InvalidToken,
        ErrorCode::RateLimited,
        ErrorCode::TooLarge,
        ErrorCode::QueueFull,
        ErrorCode::BadKeys,
        ErrorCode::NoKeysAvailable,
        ErrorCode::Internal,
        ErrorCode::Unknown,
        ErrorCode::NotFriends,
        ErrorCode::AlreadyFriends,
        ErrorCode::DuplicateRequest,
        ErrorCode::NoSuchRequest,
        ErrorCode::InvalidInput,
        ErrorCode::BlockedByYou,
        ErrorCode::LimitReached,
        ErrorCode::NoSuchGroup,
        ErrorCode::NotGroupOwner,
        ErrorCode::GroupChanged,
        ErrorCode::AlreadyMember,
        ErrorCode::NotGroupMember,
        ErrorCode::NotAllowed,
        ErrorCode::NoSuchFile,
        ErrorCode::QuotaExceeded,
        ErrorCode::FileIncomplete,
        ErrorCode::NoSuchCall,
        ErrorCode::InCall,
        ErrorCode::NoSuchPost,
        ErrorCode::NoSuchComment,
    ];

    /// Numbers every `ErrorCode`; see [`request_variant`].
    fn error_code_variant(c: ErrorCode) -> usize {
        match c {
            ErrorCode::UnsupportedProtocol => 0,
            ErrorCode::ProtocolViolation => 1,
            ErrorCode::Malformed => 2,
            ErrorCode::FrameTooLarge => 3,
            ErrorCode::NotAuthenticated => 4,
            ErrorCode::InvalidUsername => 5,
            ErrorCode::InvalidPassword => 6,
            ErrorCode::UsernameTaken => 7,
            ErrorCode::UnknownUser => 8,
            ErrorCode::WrongPassword => 9,
            ErrorCode::InvalidToken => 10,
            ErrorCode::RateLimited => 11,
            ErrorCode::TooLarge => 12,
            ErrorCode::QueueFull => 13,
            ErrorCode::BadKeys => 14,
            ErrorCode::NoKeysAvailable => 15,
            ErrorCode::Internal => 16,
            ErrorCode::Unknown => 17,
            ErrorCode::NotFriends => 18,
            ErrorCode::AlreadyFriends => 19,
            ErrorCode::DuplicateRequest => 20,
            ErrorCode::NoSuchRequest => 21,
            ErrorCode::InvalidInput => 22,
            ErrorCode::BlockedByYou => 23,
            ErrorCode::LimitReached => 24,
            ErrorCode::NoSuchGroup => 25,
            ErrorCode::NotGroupOwner => 26,
            ErrorCode::GroupChanged => 27,
            ErrorCode::AlreadyMember => 28,
            ErrorCode::NotGroupMember => 29,
            ErrorCode::NotAllowed => 30,
            ErrorCode::NoSuchFile => 31,
            ErrorCode::QuotaExceeded => 32,
            ErrorCode::FileIncomplete => 33,
            ErrorCode::NoSuchCall => 34,
            ErrorCode::InCall => 35,
            ErrorCode::NoSuchPost => 36,
            ErrorCode::NoSuchComment => 37,
        }
    }

    /// Replies added with the social layer (protocol 1.1).
    fn social_reply() -> impl Strategy<Value = Reply> {
        prop_oneof![
            any::<bool>().prop_map(|became_friends| Reply::FriendRequestSent(
                crate::reply::FriendRequestSent { became_friends }
            )),
            proptest::collection::vec(friend_entry(), 0..3)
                .prop_map(|friends| Reply::Friends(crate::reply::Friends { friends })),
            (
                proptest::collection::vec(friend_request_entry(), 0..3),
                proptest::collection::vec(friend_request_entry(), 0..3)
            )
                .prop_map(|(incoming, outgoing)| Reply::FriendRequests(
                    crate::reply::FriendRequests { incoming, outgoing }
                )),
            (
                user_name(),
                profile_summary(),
                proptest::option::of(bytes())
            )
                .prop_map(|(user, profile, avatar)| Reply::Profile(
                    crate::reply::Profile {
                        user,
                        profile,
                        avatar
                    }
                )),
        ]
    }

    fn reply() -> impl Strategy<Value = Reply> {
        prop_oneof![
            page_reply(),
            social_reply(),
            moment_reply(),
            call_reply(),
            group_info().prop_map(|group| Reply::Group(crate::reply::Group { group })),
            proptest::collection::vec(group_info(), 0..3)
                .prop_map(|groups| Reply::Groups(crate::reply::Groups { groups })),
            prop_oneof![
                any::<u64>()
                    .prop_map(|offset| Reply::UploadReady(crate::reply::UploadReady { offset })),
                any::<u64>().prop_map(|size| Reply::Uploaded(crate::reply::Uploaded { size })),
                (any::<u64>(), proptest::option::of(user_name())).prop_map(|(size, owner)| {
                    Reply::DownloadReady(crate::reply::DownloadReady { size, owner })
                }),
            ],
            (protocol(), text()).prop_map(|(protocol, relay)| Reply::Welcome(
                crate::reply::Welcome { protocol, relay }
            )),
            (user_name(), bytes(), seq(), seq()).prop_map(
                |(username, token, queue_head, acked_through)| Reply::Session(
                    crate::reply::Session {
                        username,
                        token: SessionToken(token),
                        queue_head,
                        acked_through,
                    }
                )
            ),
            Just(Reply::Done),
            any::<u64>().prop_map(|one_time_keys| Reply::KeyCount(crate::reply::KeyCount {
                one_time_keys
            })),
            (user_name(), identity_keys(), signed_key(), any::<bool>()).prop_map(
                |(user, identity, key, fallback)| Reply::ClaimedKey(crate::reply::ClaimedKey {
                    user,
                    identity,
                    key,
                    fallback,
                })
            ),
            (user_name(), identity_keys()).prop_map(|(user, identity)| Reply::Identity(
                crate::reply::Identity { user, identity }
            )),
            (
                any::<u64>(),
                any::<bool>(),
                proptest::collection::vec(user_name(), 0..2)
            )
                .prop_map(|(relay_ts_ms, duplicate, unshared)| Reply::Sent(
                    crate::reply::Sent {
                        relay_ts_ms,
                        duplicate,
                        unshared
                    }
                )),
            proptest::collection::vec(
                (
                    user_name(),
                    any::<bool>(),
                    proptest::option::of(any::<u64>())
                )
                    .prop_map(|(user, online, last_seen_ms)| PresenceEntry {
                        user,
                        online,
                        last_seen_ms,
                    }),
                0..4
            )
            .prop_map(|users| Reply::Presence(crate::reply::Presence { users })),
            Just(Reply::Unknown),
        ]
    }

    /// Numbers every `Reply` variant; see [`request_variant`].
    fn reply_variant(r: &Reply) -> usize {
        match r {
            Reply::Welcome(_) => 0,
            Reply::Session(_) => 1,
            Reply::Done => 2,
            Reply::KeyCount(_) => 3,
            Reply::ClaimedKey(_) => 4,
            Reply::Identity(_) => 5,
            Reply::Sent(_) => 6,
            Reply::Presence(_) => 7,
            Reply::Unknown => 8,
            Reply::FriendRequestSent(_) => 9,
            Reply::Friends(_) => 10,
            Reply::FriendRequests(_) => 11,
            Reply::Profile(_) => 12,
            Reply::Group(_) => 13,
            Reply::Groups(_) => 14,
            Reply::UploadReady(_) => 15,
            Reply::Uploaded(_) => 16,
            Reply::DownloadReady(_) => 17,
            Reply::CallRinging(_) => 18,
            Reply::CallEnded(_) => 19,
            Reply::CallConnected(_) => 20,
            Reply::MomentPosted(_) => 21,
            Reply::MomentFeed(_) => 22,
            Reply::Moment(_) => 23,
            Reply::MomentCommented(_) => 24,
            Reply::FriendsPage(_) => 25,
            Reply::GroupsPage(_) => 26,
            Reply::FriendRequestsPage(_) => 27,
        }
    }
    const REPLY_VARIANTS: usize = 28;

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            reply().prop_map(Response::Ok),
            (proptest::sample::select(&ERROR_CODES[..]), text())
                .prop_map(|(code, message)| Response::error(code, message)),
        ]
    }

    fn push_event() -> impl Strategy<Value = PushEvent> {
        prop_oneof![
            call_push_event(),
            moment_push_event(),
            (user_name(), message_id(), bytes()).prop_map(|(from, id, ciphertext)| {
                PushEvent::Message {
                    from,
                    id,
                    ciphertext,
                }
            }),
            (
                user_name(),
                any::<bool>(),
                proptest::option::of(any::<u64>())
            )
                .prop_map(|(user, online, last_seen_ms)| PushEvent::Presence {
                    user,
                    online,
                    last_seen_ms,
                }),
            (user_name(), text()).prop_map(|(from, note)| PushEvent::FriendRequest { from, note }),
            user_name().prop_map(|by| PushEvent::FriendAccepted { by }),
            user_name().prop_map(|by| PushEvent::FriendRemoved { by }),
            (user_name(), profile_summary())
                .prop_map(|(user, profile)| PushEvent::Profile { user, profile }),
            user_name().prop_map(|user| PushEvent::IdentityChanged { user }),
            (group_id(), user_name(), message_id(), bytes()).prop_map(
                |(group, from, id, ciphertext)| PushEvent::GroupMessage {
                    group,
                    from,
                    id,
                    ciphertext,
                }
            ),
            (group_id(), user_name(), bytes()).prop_map(|(group, from, ciphertext)| {
                PushEvent::GroupKey {
                    group,
                    from,
                    ciphertext,
                }
            }),
            (
                group_info(),
                group_change(),
                proptest::option::of(proptest::collection::vec(
                    (user_name(), any::<u64>())
                        .prop_map(|(user, joined_ms)| GroupMember { user, joined_ms }),
                    0..3
                ))
            )
                .prop_map(|(group, change, members)| PushEvent::GroupChanged {
                    group: group.summary(),
                    change,
                    members,
                }),
            Just(PushEvent::Unknown),
            Just(PushEvent::Withdrawn),
        ]
    }

    /// Numbers every `PushEvent` variant; see [`request_variant`].
    fn push_event_variant(e: &PushEvent) -> usize {
        match e {
            PushEvent::Message { .. } => 0,
            PushEvent::Presence { .. } => 1,
            PushEvent::Unknown => 2,
            PushEvent::FriendRequest { .. } => 3,
            PushEvent::FriendAccepted { .. } => 4,
            PushEvent::FriendRemoved { .. } => 5,
            PushEvent::Profile { .. } => 6,
            PushEvent::IdentityChanged { .. } => 7,
            PushEvent::GroupMessage { .. } => 8,
            PushEvent::GroupKey { .. } => 9,
            PushEvent::GroupChanged { .. } => 10,
            PushEvent::CallIncoming { .. } => 11,
            PushEvent::CallAccepted { .. } => 12,
            PushEvent::CallEnded { .. } => 13,
            PushEvent::MissedCall { .. } => 14,
            PushEvent::MomentShared { .. } => 15,
            PushEvent::MomentLiked { .. } => 16,
            PushEvent::MomentCommented { .. } => 17,
            PushEvent::Withdrawn => 18,
        }
    }
    const PUSH_EVENT_VARIANTS: usize = 19;

    fn push() -> impl Strategy<Value = Push> {
        (proptest::option::of(seq()), any::<u64>(), push_event()).prop_map(
            |(seq, relay_ts_ms, event)| Push {
                seq,
                relay_ts_ms,
                event,
            },
        )
    }

    // ---- helpers ----------------------------------------------------------------------

    fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
        frame::encode(msg, MAX_CONTROL_FRAME_BYTES).expect("test messages are small")
    }

    /// Encodes `msgs` back to back, feeds the stream to a decoder in pieces cut at `cuts`
    /// and returns every message decoded, checking that nothing is left over.
    fn decode_in_pieces<T: Serialize + DeserializeOwned>(msgs: &[T], cuts: &[Index]) -> Vec<T> {
        let stream: Vec<u8> = msgs.iter().flat_map(|m| encode(m)).collect();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        cuts.push(0);
        cuts.push(stream.len());
        cuts.sort_unstable();
        let mut decoder = FrameDecoder::new(MAX_CONTROL_FRAME_BYTES);
        let mut out = Vec::new();
        for piece in cuts.windows(2) {
            decoder
                .push(&stream[piece[0]..piece[1]])
                .expect("valid header");
            while let Some(msg) = decoder.next_message::<T>().expect("valid body") {
                out.push(msg);
            }
        }
        decoder.finish().expect("nothing left over");
        out
    }

    /// One way to damage an encoded frame.
    #[derive(Clone, Debug)]
    enum Mutation {
        FlipBit(Index, u8),
        Overwrite(Index, u8),
        Insert(Index, u8),
        Delete(Index),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
            (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Mutation::Overwrite(at, b)),
            (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
            any::<Index>().prop_map(Mutation::Delete),
        ]
    }

    fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
        for m in mutations {
            match *m {
                Mutation::FlipBit(at, bit) if !bytes.is_empty() => {
                    let i = at.index(bytes.len());
                    bytes[i] ^= 1 << bit;
                }
                Mutation::Overwrite(at, b) if !bytes.is_empty() => {
                    let i = at.index(bytes.len());
                    bytes[i] = b;
                }
                Mutation::Insert(at, b) => {
                    let i = at.index(bytes.len() + 1);
                    bytes.insert(i, b);
                }
                Mutation::Delete(at) if !bytes.is_empty() => {
                    let i = at.index(bytes.len());
                    bytes.remove(i);
                }
                _ => {}
            }
        }
    }

    /// Decodes `bytes` as every message type, through the frame decoder and, with a
    /// corrected header, as a whole frame. Only a panic fails; errors are expected.
    fn decode_as_everything(bytes: &[u8]) {
        fn through_decoder<T: DeserializeOwned>(bytes: &[u8]) {
            let mut decoder = FrameDecoder::new(MAX_CONTROL_FRAME_BYTES);
            if decoder.push(bytes).is_ok() {
                while let Ok(Some(_)) = decoder.next_message::<T>() {}
                let _ = decoder.finish();
            }
        }
        through_decoder::<Request>(bytes);
        through_decoder::<Response>(bytes);
        through_decoder::<Push>(bytes);

        let body = bytes.get(frame::HEADER_BYTES..).unwrap_or_default();
        let _ = frame::decode_body::<Request>(body);
        let _ = frame::decode_body::<Response>(body);
        let _ = frame::decode_body::<Push>(body);
    }

    fn alice() -> UserName {
        UserName::parse("alice").expect("valid")
    }

    // ---- round trips ------------------------------------------------------------------

    proptest! {
        #[test]
        fn requests_round_trip_through_the_decoder_in_arbitrary_pieces(
            msgs in proptest::collection::vec(request(), 1..4),
            cuts in proptest::collection::vec(any::<Index>(), 0..8),
        ) {
            prop_assert_eq!(decode_in_pieces(&msgs, &cuts), msgs);
        }

        #[test]
        fn responses_round_trip_through_the_decoder_in_arbitrary_pieces(
            msgs in proptest::collection::vec(response(), 1..4),
            cuts in proptest::collection::vec(any::<Index>(), 0..8),
        ) {
            prop_assert_eq!(decode_in_pieces(&msgs, &cuts), msgs);
        }

        #[test]
        fn pushes_round_trip_through_the_decoder_in_arbitrary_pieces(
            msgs in proptest::collection::vec(push(), 1..4),
            cuts in proptest::collection::vec(any::<Index>(), 0..8),
        ) {
            prop_assert_eq!(decode_in_pieces(&msgs, &cuts), msgs);
        }

        #[test]
        fn decoding_perturbed_requests_never_panics(
            msg in request(),
            mutations in proptest::collection::vec(mutation(), 1..8),
        ) {
            let mut bytes = encode(&msg);
            mutate(&mut bytes, &mutations);
            decode_as_everything(&bytes);
        }

        #[test]
        fn decoding_perturbed_responses_never_panics(
            msg in response(),
            mutations in proptest::collection::vec(mutation(), 1..8),
        ) {
            let mut bytes = encode(&msg);
            mutate(&mut bytes, &mutations);
            decode_as_everything(&bytes);
        }

        #[test]
        fn decoding_perturbed_pushes_never_panics(
            msg in push(),
            mutations in proptest::collection::vec(mutation(), 1..8),
        ) {
            let mut bytes = encode(&msg);
            mutate(&mut bytes, &mutations);
            decode_as_everything(&bytes);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            decode_as_everything(&bytes);
        }
    }

    #[test]
    fn the_generators_cover_every_variant() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;

        fn seen<T: std::fmt::Debug>(
            strategy: impl Strategy<Value = T>,
            variant: impl Fn(&T) -> usize,
            count: usize,
        ) -> Vec<bool> {
            let mut runner = TestRunner::deterministic();
            let mut seen = vec![false; count];
            for _ in 0..2000 {
                let value = strategy.new_tree(&mut runner).expect("generates").current();
                seen[variant(&value)] = true;
            }
            seen
        }
        assert_eq!(
            seen(request(), request_variant, REQUEST_VARIANTS),
            vec![true; REQUEST_VARIANTS]
        );
        assert_eq!(
            seen(reply(), reply_variant, REPLY_VARIANTS),
            vec![true; REPLY_VARIANTS]
        );
        assert_eq!(
            seen(push_event(), push_event_variant, PUSH_EVENT_VARIANTS),
            vec![true; PUSH_EVENT_VARIANTS]
        );
        let codes: Vec<usize> = ERROR_CODES.iter().map(|c| error_code_variant(*c)).collect();
        assert_eq!(codes, (0..ERROR_CODES.len()).collect::<Vec<_>>());
    }

    /// Where the encodings of two samples of every request, reply and push kind are kept,
    /// one `kind index, hex` line each.
    const EVERY_KIND_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/every_kind.hex");

    /// Two samples of each kind from `strategy` (a deterministic run), encoded, as lines
    /// `"{prefix} {variant} {hex}"`.
    fn every_kind_lines<T: Serialize>(
        prefix: &str,
        strategy: impl Strategy<Value = T>,
        variant: impl Fn(&T) -> usize,
        count: usize,
    ) -> Vec<String> {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;
        let mut runner = TestRunner::deterministic();
        let mut taken = vec![0; count];
        let mut lines = Vec::new();
        for _ in 0..4000 {
            let value = strategy.new_tree(&mut runner).expect("generates").current();
            let kind = variant(&value);
            if taken[kind] < 2 {
                taken[kind] += 1;
                let bytes = rmp_serde::to_vec_named(&value).expect("encodes");
                lines.push(format!("{prefix} {kind} {}", hex::encode(bytes)));
            }
        }
        lines
    }

    /// Decodes `hex` as a `T` and encodes it again: the bytes must not change.
    fn same_after_round_trip<T: Serialize + DeserializeOwned>(hex: &str) -> bool {
        let bytes = hex::decode(hex).expect("hex");
        let value: T = rmp_serde::from_slice(&bytes).expect("decodes");
        rmp_serde::to_vec_named(&value).expect("encodes") == bytes
    }

    /// Every kind of request, reply and push, as encoded when the file was written (two
    /// samples each), still decodes to a value that encodes to the same bytes, and every
    /// kind is there: a change of a message type's shape that changes its bytes fails here.
    /// `UCHAT_WRITE_EVERY_KIND=1` writes the file afresh (only for a deliberate new kind).
    #[test]
    fn every_message_kind_keeps_its_bytes() {
        if std::env::var_os("UCHAT_WRITE_EVERY_KIND").is_some() {
            let mut lines =
                every_kind_lines("request", request(), request_variant, REQUEST_VARIANTS);
            lines.extend(every_kind_lines(
                "reply",
                reply(),
                reply_variant,
                REPLY_VARIANTS,
            ));
            lines.extend(every_kind_lines(
                "push",
                push_event(),
                push_event_variant,
                PUSH_EVENT_VARIANTS,
            ));
            std::fs::write(EVERY_KIND_FILE, lines.join("\n") + "\n").expect("writes");
        }
        let file = std::fs::read_to_string(EVERY_KIND_FILE).expect("the samples file");
        let mut kinds = std::collections::BTreeSet::new();
        for line in file.lines() {
            let mut words = line.split(' ');
            let (Some(prefix), Some(kind), Some(hex)) = (words.next(), words.next(), words.next())
            else {
                panic!("a bad line: {line}");
            };
            let kind: usize = kind.parse().expect("a kind index");
            let (same, decoded_kind) = match prefix {
                "request" => {
                    let bytes = hex::decode(hex).expect("hex");
                    let value: Request = rmp_serde::from_slice(&bytes).expect("decodes");
                    (
                        same_after_round_trip::<Request>(hex),
                        request_variant(&value),
                    )
                }
                "reply" => {
                    let bytes = hex::decode(hex).expect("hex");
                    let value: Reply = rmp_serde::from_slice(&bytes).expect("decodes");
                    (same_after_round_trip::<Reply>(hex), reply_variant(&value))
                }
                "push" => {
                    let bytes = hex::decode(hex).expect("hex");
                    let value: PushEvent = rmp_serde::from_slice(&bytes).expect("decodes");
                    (
                        same_after_round_trip::<PushEvent>(hex),
                        push_event_variant(&value),
                    )
                }
                other => panic!("a bad kind of line: {other}"),
            };
            assert!(same, "{prefix} kind {kind} encodes differently now: {hex}");
            assert_eq!(decoded_kind, kind, "{prefix} {hex} decodes as another kind");
            kinds.insert((prefix.to_owned(), kind));
        }
        for (prefix, count) in [
            ("request", REQUEST_VARIANTS),
            ("reply", REPLY_VARIANTS),
            ("push", PUSH_EVENT_VARIANTS),
        ] {
            for kind in 0..count {
                assert!(
                    kinds.contains(&(prefix.to_owned(), kind)),
                    "no sample of {prefix} kind {kind}"
                );
            }
        }
    }

    // ---- byte snapshots ---------------------------------------------------------------
    //
    // These pin the exact bytes on the wire. If one fails, the format changed: that breaks
    // every deployed peer or relay unless the change is deliberate and compatible.
    // The expected bodies were first written out by hand from the MessagePack spec (fixmap
    // 0x8N, fixstr 0xa0 + length, positive fixint, uint64 0xcf, true 0xc3) and agree byte
    // for byte with rmp-serde's output.

    #[test]
    fn hello_bytes_are_pinned() {
        // A fixed version rather than PROTOCOL_VERSION, so the pin survives minor bumps.
        let hello = Request::Hello(crate::request::Hello {
            protocol: ProtocolVersion { major: 1, minor: 1 },
            client: "uchat/test".into(),
        });
        // length 0x3c; {"type": "Hello", "body": {"protocol": {"major": 1, "minor": 1},
        // "client": "uchat/test"}}
        let expected = concat!(
            "0000003c",
            "82a474797065a548656c6c6f",
            "a4626f6479",
            "82a870726f746f636f6c82a56d616a6f7201a56d696e6f7201",
            "a6636c69656e74aa75636861742f74657374",
        );
        let bytes = encode(&hello);
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(
            frame::decode_frame::<Request>(&bytes, MAX_CONTROL_FRAME_BYTES),
            Ok(hello)
        );
    }

    #[test]
    fn error_response_bytes_are_pinned() {
        let response = Response::error(ErrorCode::UnknownUser, "no user");
        // length 0x33; {"type": "Error", "body": {"code": "UnknownUser", "message": "no user"}}
        let expected = concat!(
            "00000033",
            "82a474797065a54572726f72",
            "a4626f6479",
            "82a4636f6465ab556e6b6e6f776e55736572",
            "a76d657373616765a76e6f2075736572",
        );
        let bytes = encode(&response);
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(
            frame::decode_frame::<Response>(&bytes, MAX_CONTROL_FRAME_BYTES),
            Ok(response)
        );
    }

    #[test]
    fn presence_push_bytes_are_pinned() {
        let push = Push {
            seq: Some(Seq(7)),
            relay_ts_ms: 1_767_225_600_000,
            event: PushEvent::Presence {
                user: alice(),
                online: true,
                last_seen_ms: None,
            },
        };
        // length 0x49; {"seq": 7, "relay_ts_ms": 1767225600000 (2026-01-01, uint64), "event":
        // {"type": "Presence", "body": {"user": "alice", "online": true}}}
        let expected = concat!(
            "00000049",
            "83a3736571 07",
            "ab72656c61795f74735f6d73cf0000019b76daa800",
            "a56576656e74",
            "82a474797065a850726573656e6365",
            "a4626f6479",
            "82a475736572a5616c696365a66f6e6c696e65c3",
        )
        .replace(' ', "");
        let bytes = encode(&push);
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(
            frame::decode_frame::<Push>(&bytes, MAX_CONTROL_FRAME_BYTES),
            Ok(push)
        );
    }

    #[test]
    fn friends_page_request_bytes_are_pinned() {
        let request = Request::FriendsPage(crate::request::FriendsPage {
            after: Some(alice()),
            limit: 1000,
        });
        // length 0x2d; {"type": "FriendsPage", "body": {"after": "alice", "limit": 1000
        // (uint16)}}
        let expected = concat!(
            "0000002d",
            "82a474797065ab467269656e647350616765",
            "a4626f6479",
            "82a56166746572a5616c696365",
            "a56c696d6974cd03e8",
        );
        let bytes = encode(&request);
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(
            frame::decode_frame::<Request>(&bytes, MAX_CONTROL_FRAME_BYTES),
            Ok(request)
        );
    }

    #[test]
    fn the_first_page_request_may_leave_out_its_cursor() {
        // What a peer that writes only the limit sends: {"type": "GroupsPage", "body":
        // {"limit": 50}}.
        let bytes = concat!(
            "0000001e",
            "82a474797065aa47726f75707350616765",
            "a4626f6479",
            "81a56c696d697432",
        );
        let bytes = hex::decode(bytes).expect("hex");
        assert_eq!(
            frame::decode_frame::<Request>(&bytes, MAX_CONTROL_FRAME_BYTES),
            Ok(Request::GroupsPage(crate::request::GroupsPage {
                after: None,
                limit: 50
            }))
        );
    }

    #[test]
    fn groups_page_reply_bytes_are_pinned() {
        let response = Response::Ok(Reply::GroupsPage(crate::reply::GroupsPage {
            groups: Vec::new(),
            next: Some(GroupId([0x11; 16])),
        }));
        // length 0x44; {"type": "Ok", "body": {"type": "GroupsPage", "body": {"groups": [],
        // "next": 16 bytes (bin8)}}}
        let expected = concat!(
            "00000044",
            "82a474797065a24f6b",
            "a4626f6479",
            "82a474797065aa47726f75707350616765",
            "a4626f6479",
            "82a667726f75707390",
            "a46e657874c410",
            "11111111111111111111111111111111",
        );
        let bytes = encode(&response);
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(
            frame::decode_frame::<Response>(&bytes, MAX_CONTROL_FRAME_BYTES),
            Ok(response)
        );
    }

    #[test]
    fn friend_requests_page_reply_bytes_are_pinned() {
        let response = Response::Ok(Reply::FriendRequestsPage(
            crate::reply::FriendRequestsPage {
                requests: vec![FriendRequestEntry {
                    user: alice(),
                    note: "你好".into(),
                    created_ms: 1_767_225_600_000,
                }],
                next: None,
            },
        ));
        // length 0x69; {"type": "Ok", "body": {"type": "FriendRequestsPage", "body":
        // {"requests": [{"user": "alice", "note": "你好", "created_ms": 1767225600000
        // (uint64)}], "next": nil}}}: the last page.
        let expected = concat!(
            "00000069",
            "82a474797065a24f6b",
            "a4626f6479",
            "82a474797065b2467269656e64526571756573747350616765",
            "a4626f6479",
            "82a8726571756573747391",
            "83a475736572a5616c696365",
            "a46e6f7465a6e4bda0e5a5bd",
            "aa637265617465645f6d73cf0000019b76daa800",
            "a46e657874c0",
        );
        let bytes = encode(&response);
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(
            frame::decode_frame::<Response>(&bytes, MAX_CONTROL_FRAME_BYTES),
            Ok(response)
        );
    }

    // ---- forward compatibility --------------------------------------------------------
    //
    // Look-alike types as a newer peer or relay might define them: the same names and
    // shapes, plus fields and variants this build does not know. Encoding them gives the
    // exact bytes a newer build would send.

    #[derive(Serialize)]
    #[serde(tag = "type", content = "body")]
    enum NewerRequest {
        Hello {
            protocol: ProtocolVersion,
            client: String,
            features: Vec<String>,
        },
        Typing {
            to: String,
            active: bool,
        },
        Wave,
    }

    #[derive(Serialize)]
    #[serde(tag = "type", content = "body")]
    enum NewerResponse {
        Ok(NewerReply),
        Error {
            code: NewerErrorCode,
            message: String,
        },
    }

    #[derive(Serialize)]
    #[serde(tag = "type", content = "body")]
    enum NewerReply {
        Sent { relay_ts_ms: u64, replicas: u8 },
        Receipts { read_through: u64 },
        Pong,
    }

    #[derive(Serialize)]
    enum NewerErrorCode {
        UnknownUser,
        PaymentRequired,
    }

    #[derive(Serialize)]
    struct NewerPush {
        seq: Option<u64>,
        relay_ts_ms: u64,
        event: NewerPushEvent,
        priority: u8,
    }

    #[derive(Serialize)]
    #[serde(tag = "type", content = "body")]
    enum NewerPushEvent {
        Presence {
            user: String,
            online: bool,
            device: String,
        },
        Reaction {
            from: String,
            emoji: String,
        },
        Ping,
    }

    fn decode_newer<T: DeserializeOwned>(newer: &impl Serialize) -> Result<T, crate::FrameError> {
        frame::decode_frame(&encode(newer), MAX_CONTROL_FRAME_BYTES)
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let hello = NewerRequest::Hello {
            protocol: PROTOCOL_VERSION,
            client: "uchat/9".into(),
            features: vec!["typing".into()],
        };
        assert_eq!(
            decode_newer::<Request>(&hello),
            Ok(Request::Hello(crate::request::Hello {
                protocol: PROTOCOL_VERSION,
                client: "uchat/9".into(),
            }))
        );

        let sent = NewerResponse::Ok(NewerReply::Sent {
            relay_ts_ms: 5,
            replicas: 3,
        });
        assert_eq!(
            decode_newer::<Response>(&sent),
            Ok(Response::Ok(Reply::Sent(crate::reply::Sent {
                relay_ts_ms: 5,
                duplicate: false,
                unshared: Vec::new(),
            })))
        );

        let push = NewerPush {
            seq: Some(3),
            relay_ts_ms: 9,
            event: NewerPushEvent::Presence {
                user: "bob".into(),
                online: false,
                device: "phone".into(),
            },
            priority: 1,
        };
        assert_eq!(
            decode_newer::<Push>(&push),
            Ok(Push {
                seq: Some(Seq(3)),
                relay_ts_ms: 9,
                event: PushEvent::Presence {
                    user: UserName::parse("bob").expect("valid"),
                    online: false,
                    last_seen_ms: None,
                },
            })
        );
    }

    #[test]
    fn unknown_unit_variants_decode_as_the_catch_all() {
        assert_eq!(
            decode_newer::<Request>(&NewerRequest::Wave),
            Ok(Request::Unknown)
        );
        assert_eq!(
            decode_newer::<Response>(&NewerResponse::Ok(NewerReply::Pong)),
            Ok(Response::Ok(Reply::Unknown))
        );
        let ping = NewerPush {
            seq: None,
            relay_ts_ms: 1,
            event: NewerPushEvent::Ping,
            priority: 0,
        };
        assert_eq!(
            decode_newer::<Push>(&ping),
            Ok(Push {
                seq: None,
                relay_ts_ms: 1,
                event: PushEvent::Unknown,
            })
        );
    }

    #[test]
    fn unknown_error_codes_decode_as_the_catch_all() {
        let error = NewerResponse::Error {
            code: NewerErrorCode::PaymentRequired,
            message: "pay up".into(),
        };
        assert_eq!(
            decode_newer::<Response>(&error),
            Ok(Response::Error(ErrorReply {
                code: ErrorCode::Unknown,
                message: "pay up".into(),
            }))
        );
        let known = NewerResponse::Error {
            code: NewerErrorCode::UnknownUser,
            message: "no user".into(),
        };
        assert_eq!(
            decode_newer::<Response>(&known),
            Ok(Response::error(ErrorCode::UnknownUser, "no user"))
        );
    }

    // Fails with the catch-alls declared as plain `#[serde(other)]`: serde then decodes the
    // unknown variant's body as a unit and refuses a map. The fix is checked on a look-alike
    // type in `a_catch_all_with_deserialize_with_skips_unknown_bodies` below.
    #[test]
    fn unknown_variants_with_a_body_decode_as_the_catch_all() {
        let typing = NewerRequest::Typing {
            to: "bob".into(),
            active: true,
        };
        assert_eq!(decode_newer::<Request>(&typing), Ok(Request::Unknown));

        let receipts = NewerResponse::Ok(NewerReply::Receipts { read_through: 4 });
        assert_eq!(
            decode_newer::<Response>(&receipts),
            Ok(Response::Ok(Reply::Unknown))
        );

        let reaction = NewerPush {
            seq: Some(8),
            relay_ts_ms: 2,
            event: NewerPushEvent::Reaction {
                from: "bob".into(),
                emoji: "👍".into(),
            },
            priority: 0,
        };
        assert_eq!(
            decode_newer::<Push>(&reaction),
            Ok(Push {
                seq: Some(Seq(8)),
                relay_ts_ms: 2,
                event: PushEvent::Unknown,
            })
        );
    }

    /// The fix for `unknown_variants_with_a_body_decode_as_the_catch_all`, checked on a
    /// look-alike of `PushEvent`:
    /// `#[serde(other)]` alone hands the body of an unknown variant to a visitor that accepts
    /// only unit or nil, so a body-carrying variant fails with "invalid type: map, expected
    /// unit variant"; adding `deserialize_with` that skips any value makes it decode.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "type", content = "body")]
    enum FixedPushEvent {
        Presence {
            user: UserName,
            online: bool,
        },
        #[serde(other, deserialize_with = "skip_unknown_body")]
        Unknown,
    }

    fn skip_unknown_body<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| ())
    }

    #[test]
    fn a_catch_all_with_deserialize_with_skips_unknown_bodies() {
        let reaction = NewerPushEvent::Reaction {
            from: "bob".into(),
            emoji: "👍".into(),
        };
        assert_eq!(decode_newer(&reaction), Ok(FixedPushEvent::Unknown));
        assert_eq!(
            decode_newer(&NewerPushEvent::Ping),
            Ok(FixedPushEvent::Unknown)
        );
        let presence = NewerPushEvent::Presence {
            user: "bob".into(),
            online: true,
            device: "phone".into(),
        };
        assert_eq!(
            decode_newer(&presence),
            Ok(FixedPushEvent::Presence {
                user: UserName::parse("bob").expect("valid"),
                online: true,
            })
        );
        // What this build itself sends for `Unknown` (no body) still decodes.
        assert_eq!(
            decode_newer(&PushEvent::Unknown),
            Ok(FixedPushEvent::Unknown)
        );
    }
}
