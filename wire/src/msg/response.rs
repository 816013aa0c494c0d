//! The relay's answer to one request.

use serde::{Deserialize, Serialize};

use crate::ProtocolVersion;
use crate::error::ErrorCode;
use crate::ids::{GroupId, Seq, UserName};
use crate::msg::call::CallEndReason;
use crate::msg::group::GroupInfo;
use crate::msg::moment::MomentItem;
use crate::msg::request::{IdentityKeys, SessionToken, SignedKey};
use crate::msg::social::{FriendEntry, FriendRequestEntry, ProfileSummary};

/// The answer to a request: a [`Reply`] or an [`ErrorReply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
pub enum Response {
    /// The request succeeded.
    Ok(Reply),
    /// The request failed.
    Error(ErrorReply),
}

impl Response {
    /// Shorthand for an error response.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Response::Error(ErrorReply {
            code,
            message: message.into(),
        })
    }
}

/// A failure with a code to act on and a message to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct ErrorReply {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong and what to do, for people.
    pub message: String,
}

/// What a successful request returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
pub enum Reply {
    /// [`Welcome`]: the answer to `Hello`.
    Welcome(Welcome),
    /// [`Session`]: the answer to `Register`, `Login`, `Resume`.
    Session(Session),
    /// The request was carried out; nothing to return.
    Done,
    /// [`KeyCount`]: the answer to `UploadKeys`, `KeyCount`, `ReplaceIdentity`.
    KeyCount(KeyCount),
    /// [`ClaimedKey`]: the answer to `ClaimKey`.
    ClaimedKey(ClaimedKey),
    /// [`Identity`]: the answer to `Identity`.
    Identity(Identity),
    /// [`Sent`]: the answer to `Send`, `GroupSend`.
    Sent(Sent),
    /// [`Presence`]: the answer to `Presence`.
    Presence(Presence),
    /// [`FriendRequestSent`]: the answer to `FriendRequest`.
    FriendRequestSent(FriendRequestSent),
    /// [`Friends`]: the answer to `Friends`.
    Friends(Friends),
    /// [`FriendRequests`]: the answer to `FriendRequests`.
    FriendRequests(FriendRequests),
    /// [`Profile`]: the answer to `SetProfile`, `GetProfile`.
    Profile(Profile),
    /// [`Group`]: the answer to `CreateGroup`, `GroupInfo`, `InviteToGroup`, `KickFromGroup`.
    Group(Group),
    /// [`Groups`]: the answer to `Groups`.
    Groups(Groups),
    /// [`UploadReady`]: the answer to `UploadFile`.
    UploadReady(UploadReady),
    /// [`Uploaded`]: the answer to `UploadFile`.
    Uploaded(Uploaded),
    /// [`DownloadReady`]: the answer to `DownloadFile`.
    DownloadReady(DownloadReady),
    /// [`CallRinging`]: the answer to `CallInvite`.
    CallRinging(CallRinging),
    /// [`CallEnded`]: the answer to `CallInvite`.
    CallEnded(CallEnded),
    /// [`CallConnected`]: the answer to `CallAnswer`.
    CallConnected(CallConnected),
    /// [`MomentPosted`]: the answer to `MomentPost`.
    MomentPosted(MomentPosted),
    /// [`MomentFeed`]: the answer to `MomentFeed`.
    MomentFeed(MomentFeed),
    /// [`Moment`]: the answer to `MomentGet`.
    Moment(Moment),
    /// [`MomentCommented`]: the answer to `MomentComment`.
    MomentCommented(MomentCommented),
    /// [`FriendsPage`]: the answer to `FriendsPage`.
    FriendsPage(FriendsPage),
    /// [`GroupsPage`]: the answer to `GroupsPage`.
    GroupsPage(GroupsPage),
    /// [`FriendRequestsPage`]: the answer to `IncomingFriendRequestsPage`, `OutgoingFriendRequestsPage`.
    FriendRequestsPage(FriendRequestsPage),
    /// A reply this peer does not know (from a newer relay).
    #[serde(other, deserialize_with = "crate::msg::skip_unknown_body")]
    Unknown,
}

/// Answer to `Hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The relay's protocol version.
    pub protocol: ProtocolVersion,
    /// Relay software name and version.
    pub relay: String,
}

/// Answer to `Register`, `Login` and `Resume`: the session is logged in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The canonical username.
    pub username: UserName,
    /// Token for later `Resume` requests.
    pub token: SessionToken,
    /// Highest sequence number in the user's queue right now: once the peer has taken
    /// in events up to here, it has caught up.
    pub queue_head: Seq,
    /// Every event up to here was already acknowledged and deleted, so none of them
    /// will be pushed: a peer has caught up once it has taken in everything after this
    /// and up to `queue_head` (nothing, if they are equal).
    #[serde(default)]
    pub acked_through: Seq,
}

/// Answer to `KeyCount` and `UploadKeys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCount {
    /// One-time keys left in the relay's stock.
    pub one_time_keys: u64,
}

/// Answer to `ClaimKey`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedKey {
    /// The user whose key was claimed, as the request named them.
    pub user: UserName,
    /// Their identity keys.
    pub identity: IdentityKeys,
    /// The claimed key.
    pub key: SignedKey,
    /// True if the stock was empty and this is the (reusable) fallback key.
    pub fallback: bool,
}

/// Answer to `Identity`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user whose keys these are, as the request named them.
    pub user: UserName,
    /// Their identity keys.
    pub identity: IdentityKeys,
}

/// Answer to `Send` and `GroupSend`: the message is durably queued for its recipients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// The relay's clock when it committed the message, in ms since the Unix epoch.
    pub relay_ts_ms: u64,
    /// True if this id was queued before (a retry after a lost answer): nothing new was
    /// queued, so nothing this request carried (key shares above all) reached anyone.
    #[serde(default)]
    pub duplicate: bool,
    /// Members a `GroupSend` carried a key share for that the relay did not queue
    /// (their queue is far over its quota): they still need one.
    #[serde(default)]
    pub unshared: Vec<UserName>,
}

/// Answer to `Presence`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// One entry per asked user who is the asker or one of their friends; anyone else
    /// asked about is left out.
    pub users: Vec<PresenceEntry>,
}

/// Answer to `FriendRequest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendRequestSent {
    /// True if the other side had asked first, so the two are friends now.
    pub became_friends: bool,
}

/// Answer to `Friends`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Friends {
    /// Every friend, in name order.
    pub friends: Vec<FriendEntry>,
}

/// Answer to `FriendRequests`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendRequests {
    /// Requests others sent to the asker, oldest first.
    pub incoming: Vec<FriendRequestEntry>,
    /// Requests the asker sent that are still pending, oldest first.
    pub outgoing: Vec<FriendRequestEntry>,
}

/// Answer to `GetProfile` and `SetProfile`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The user the profile belongs to: the asker or one of their friends.
    pub user: UserName,
    /// Their profile as the relay keeps it now (the image itself is in `avatar`).
    pub profile: ProfileSummary,
    /// The avatar PNG, if the user has one and the asker's known version differs.
    #[serde(default, with = "crate::bytes")]
    pub avatar: Option<Vec<u8>>,
}

/// Answer to `CreateGroup`, `GroupInfo`, `InviteToGroup` and `KickFromGroup`: the
/// group's state now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The group's state after the request, with its whole member list.
    pub group: GroupInfo,
}

/// Answer to `Groups`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Groups {
    /// Every group the asker is in, oldest first.
    pub groups: Vec<GroupInfo>,
}

/// First answer to `UploadFile`: send the ciphertext from `offset` on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadReady {
    /// Bytes the relay holds already (a chunk boundary; the whole size if complete).
    pub offset: u64,
}

/// Second answer to `UploadFile`: every byte is on the relay's disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploaded {
    /// The file's ciphertext length.
    pub size: u64,
}

/// Answer to `DownloadFile`: the ciphertext from the asked offset follows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadReady {
    /// The file's whole ciphertext length.
    pub size: u64,
    /// Who uploaded it, so a downloader can check it is the sender of the message
    /// that named it.
    #[serde(default)]
    pub owner: Option<UserName>,
}

/// Answer to `CallInvite`: the call rings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRinging {
    /// The caller's voice leg: the handle its datagrams start with.
    pub leg: u32,
    /// How long the relay lets it ring, in ms.
    pub ring_timeout_ms: u64,
}

/// Answer to `CallInvite` when the call cannot ring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEnded {
    /// Why (`Busy`, `Offline`).
    pub reason: CallEndReason,
}

/// Answer to `CallAnswer`: the call is connected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallConnected {
    /// The callee's voice leg: the handle its datagrams start with.
    pub leg: u32,
}

/// Answer to `MomentPost`: the post and its shares are stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentPosted {
    /// The relay's clock when the post was stored, ms since the Unix epoch.
    pub posted_ms: u64,
    /// True if this id was posted before (a retry after a lost answer).
    #[serde(default)]
    pub duplicate: bool,
    /// Viewers the post was not shared with (their queue is far over its quota).
    #[serde(default)]
    pub unshared: Vec<UserName>,
}

/// Answer to `MomentFeed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentFeed {
    /// The page, newest first.
    pub posts: Vec<MomentItem>,
    /// The cursor to ask `before` for the next page; `None` at the end.
    #[serde(default)]
    pub next: Option<u64>,
}

/// Answer to `MomentGet`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    /// The post as the asker may see it: only the likes and comments shown to them.
    pub post: MomentItem,
}

/// Answer to `MomentComment`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentCommented {
    /// The relay's clock when the comment was stored, ms since the Unix epoch.
    pub commented_ms: u64,
}

/// Answer to `FriendsPage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendsPage {
    /// The page, in name order.
    pub friends: Vec<FriendEntry>,
    /// The cursor to ask `after` for the next page; `None` at the end.
    #[serde(default)]
    pub next: Option<UserName>,
}

/// Answer to `GroupsPage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupsPage {
    /// The page, in id order.
    pub groups: Vec<GroupInfo>,
    /// The cursor to ask `after` for the next page; `None` at the end.
    #[serde(default)]
    pub next: Option<GroupId>,
}

/// Answer to `IncomingFriendRequestsPage` and `OutgoingFriendRequestsPage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendRequestsPage {
    /// The page, in name order of the other side.
    pub requests: Vec<FriendRequestEntry>,
    /// The cursor to ask `after` for the next page; `None` at the end.
    #[serde(default)]
    pub next: Option<UserName>,
}

/// Whether one user is online.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEntry {
    /// One of the asked users: the asker or a friend (the relay leaves anyone else out).
    pub user: UserName,
    /// True while at least one of their peers is connected.
    pub online: bool,
    /// When they were last connected, ms since the Unix epoch (None if never, or online).
    #[serde(default)]
    pub last_seen_ms: Option<u64>,
}
