//! Typed calls: every request kind names the reply kind the relay answers it with
//! ([`Call`]), so a peer asks `link.call(request::ClaimKey { .. })` and gets a
//! `reply::ClaimedKey` back, and the relay's handlers return the reply kind their request
//! is answered with. Another kind of reply to a call is an error the caller names
//! ([`FromReply`] tells it apart), never a silently ignored answer.

use crate::msg::request::{self, Request};
use crate::msg::response::{self as reply, Reply};

/// A request kind and the reply the relay answers it with when it succeeds.
pub trait Call: Into<Request> {
    /// The body of the successful answer.
    type Reply: FromReply;
}

/// A reply kind, told apart from the others.
pub trait FromReply: Sized {
    /// This kind's body, or `None` if the reply is of another kind.
    fn from_reply(reply: Reply) -> Option<Self>;
}

/// `Done`, the answer of requests that return nothing but success.
impl FromReply for () {
    fn from_reply(reply: Reply) -> Option<Self> {
        match reply {
            Reply::Done => Some(()),
            _ => None,
        }
    }
}

impl From<()> for Reply {
    fn from((): ()) -> Reply {
        Reply::Done
    }
}

/// What a `CallInvite` is answered with: the callee's phone rings, or the call ended
/// before it could (busy, offline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InviteAnswer {
    /// It rings.
    Ringing(reply::CallRinging),
    /// It cannot ring, and why.
    Ended(reply::CallEnded),
}

impl FromReply for InviteAnswer {
    fn from_reply(reply: Reply) -> Option<Self> {
        match reply {
            Reply::CallRinging(ringing) => Some(InviteAnswer::Ringing(ringing)),
            Reply::CallEnded(ended) => Some(InviteAnswer::Ended(ended)),
            _ => None,
        }
    }
}

impl From<InviteAnswer> for Reply {
    fn from(answer: InviteAnswer) -> Reply {
        match answer {
            InviteAnswer::Ringing(ringing) => Reply::CallRinging(ringing),
            InviteAnswer::Ended(ended) => Reply::CallEnded(ended),
        }
    }
}

/// Each reply kind with a body: taken out of a [`Reply`], and put into one.
macro_rules! reply_kinds {
    ($($kind:ident),* $(,)?) => {$(
        impl FromReply for reply::$kind {
            fn from_reply(reply: Reply) -> Option<Self> {
                match reply {
                    Reply::$kind(body) => Some(body),
                    _ => None,
                }
            }
        }

        impl From<reply::$kind> for Reply {
            fn from(body: reply::$kind) -> Reply {
                Reply::$kind(body)
            }
        }
    )*};
}

reply_kinds!(
    CallConnected,
    CallEnded,
    CallRinging,
    ClaimedKey,
    DownloadReady,
    FriendRequestSent,
    FriendRequests,
    FriendRequestsPage,
    Friends,
    FriendsPage,
    Group,
    Groups,
    GroupsPage,
    Identity,
    KeyCount,
    Moment,
    MomentCommented,
    MomentFeed,
    MomentPosted,
    Presence,
    Profile,
    Sent,
    Session,
    UploadReady,
    Uploaded,
    Welcome,
);

/// Each request kind with a body: put into a [`Request`].
macro_rules! request_bodies {
    ($($kind:ident),* $(,)?) => {$(
        impl From<request::$kind> for Request {
            fn from(body: request::$kind) -> Request {
                Request::$kind(body)
            }
        }
    )*};
}

request_bodies!(
    Hello,
    Register,
    Login,
    Resume,
    UploadKeys,
    ReplaceIdentity,
    ClaimKey,
    Identity,
    Send,
    Ack,
    Presence,
    FriendRequest,
    AcceptFriend,
    RejectFriend,
    RemoveFriend,
    Block,
    Unblock,
    SetProfile,
    GetProfile,
    CreateGroup,
    GroupInfo,
    InviteToGroup,
    KickFromGroup,
    LeaveGroup,
    SyncGroup,
    GroupSend,
    UploadFile,
    DownloadFile,
    CallInvite,
    CallAnswer,
    CallReject,
    CallHangup,
    MomentPost,
    MomentFeed,
    MomentGet,
    MomentLike,
    MomentUnlike,
    MomentComment,
    MomentDelete,
    MomentDeleteComment,
    FriendsPage,
    GroupsPage,
    IncomingFriendRequestsPage,
    OutgoingFriendRequestsPage,
);

/// Each request kind without a body: put into a [`Request`].
macro_rules! bare_requests {
    ($($kind:ident),* $(,)?) => {$(
        impl From<request::$kind> for Request {
            fn from(request::$kind: request::$kind) -> Request {
                Request::$kind
            }
        }
    )*};
}

bare_requests!(Logout, KeyCount, Friends, FriendRequests, Groups);

/// Each request kind and what it is answered with.
macro_rules! calls {
    ($($kind:ident => $reply:ty),* $(,)?) => {$(
        impl Call for request::$kind {
            type Reply = $reply;
        }
    )*};
}

calls!(
    Hello => reply::Welcome,
    Register => reply::Session,
    Login => reply::Session,
    Resume => reply::Session,
    Logout => (),
    UploadKeys => reply::KeyCount,
    KeyCount => reply::KeyCount,
    ReplaceIdentity => reply::KeyCount,
    ClaimKey => reply::ClaimedKey,
    Identity => reply::Identity,
    Send => reply::Sent,
    Ack => (),
    Presence => reply::Presence,
    FriendRequest => reply::FriendRequestSent,
    AcceptFriend => (),
    RejectFriend => (),
    RemoveFriend => (),
    Block => (),
    Unblock => (),
    Friends => reply::Friends,
    FriendRequests => reply::FriendRequests,
    SetProfile => reply::Profile,
    GetProfile => reply::Profile,
    CreateGroup => reply::Group,
    Groups => reply::Groups,
    GroupInfo => reply::Group,
    InviteToGroup => reply::Group,
    KickFromGroup => reply::Group,
    LeaveGroup => (),
    SyncGroup => (),
    GroupSend => reply::Sent,
    UploadFile => reply::UploadReady,
    DownloadFile => reply::DownloadReady,
    CallInvite => InviteAnswer,
    CallAnswer => reply::CallConnected,
    CallReject => (),
    CallHangup => (),
    MomentPost => reply::MomentPosted,
    MomentFeed => reply::MomentFeed,
    MomentGet => reply::Moment,
    MomentLike => (),
    MomentUnlike => (),
    MomentComment => reply::MomentCommented,
    MomentDelete => (),
    MomentDeleteComment => (),
    FriendsPage => reply::FriendsPage,
    GroupsPage => reply::GroupsPage,
    IncomingFriendRequestsPage => reply::FriendRequestsPage,
    OutgoingFriendRequestsPage => reply::FriendRequestsPage,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CallEndReason, CallId, MessageId, UserName};

    /// What the relay would answer `call` with, as a peer takes it apart.
    fn take<C: Call>(_call: &C, reply: Reply) -> Option<C::Reply> {
        C::Reply::from_reply(reply)
    }

    #[test]
    fn a_call_takes_only_the_reply_kind_it_is_answered_with() {
        let send = request::Send {
            to: UserName::parse("bob").expect("a valid name"),
            id: MessageId([1; 16]),
            ciphertext: vec![1, 2],
        };
        let sent = reply::Sent {
            relay_ts_ms: 5,
            duplicate: false,
            unshared: Vec::new(),
        };
        assert_eq!(take(&send, Reply::Sent(sent.clone())), Some(sent));
        assert_eq!(take(&send, Reply::Done), None);
        assert_eq!(take(&send, Reply::Unknown), None);
        let hang_up = request::CallHangup {
            call: CallId([2; 16]),
        };
        assert_eq!(take(&hang_up, Reply::Done), Some(()));
        assert!(matches!(Request::from(send), Request::Send(_)));
        assert!(matches!(
            Request::from(request::KeyCount),
            Request::KeyCount
        ));
    }

    #[test]
    fn an_invite_is_answered_by_ringing_or_by_the_end_of_the_call() {
        let invite = request::CallInvite {
            call: CallId([3; 16]),
            to: UserName::parse("bob").expect("a valid name"),
            offer: vec![9],
        };
        let ended = reply::CallEnded {
            reason: CallEndReason::Busy,
        };
        let ringing = reply::CallRinging {
            leg: 4,
            ring_timeout_ms: 30_000,
        };
        assert_eq!(
            take(&invite, Reply::CallEnded(ended.clone())),
            Some(InviteAnswer::Ended(ended.clone()))
        );
        assert_eq!(
            take(&invite, Reply::CallRinging(ringing.clone())),
            Some(InviteAnswer::Ringing(ringing.clone()))
        );
        assert_eq!(take(&invite, Reply::Done), None);
        assert_eq!(
            Reply::from(InviteAnswer::Ended(ended.clone())),
            Reply::CallEnded(ended)
        );
    }
}
