//! Requests a peer sends to the relay, one per bidirectional stream.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ProtocolVersion;
use crate::ids::{CallId, CommentId, FileId, GroupId, MessageId, PostId, Seq, UserName};
use crate::msg::file::FileAccess;
use crate::msg::group::KeyShare;
use crate::msg::social::AvatarChange;

/// A request. The first on a connection must be [`Request::Hello`]; everything but
/// `Hello`, `Register`, `Login` and `Resume` needs a logged-in session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
pub enum Request {
    /// [`Hello`], answered with [`Reply::Welcome`].
    Hello(Hello),
    /// [`Register`], answered with [`Reply::Session`].
    Register(Register),
    /// [`Login`], answered with [`Reply::Session`].
    Login(Login),
    /// [`Resume`], answered with [`Reply::Session`].
    Resume(Resume),
    /// Revokes the current session token.
    Logout,
    /// [`UploadKeys`], answered with [`Reply::KeyCount`].
    UploadKeys(UploadKeys),
    /// How many one-time keys of mine the relay still holds.
    KeyCount,
    /// [`ClaimKey`], answered with [`Reply::ClaimedKey`].
    ClaimKey(ClaimKey),
    /// [`Identity`], answered with [`Reply::Identity`].
    Identity(Identity),
    /// [`Send`], answered with [`Reply::Sent`].
    Send(Send),
    /// [`Ack`], answered with [`Reply::Done`].
    Ack(Ack),
    /// [`Presence`], answered with [`Reply::Presence`].
    Presence(Presence),
    /// [`FriendRequest`], answered with [`Reply::FriendRequestSent`].
    FriendRequest(FriendRequest),
    /// [`AcceptFriend`], answered with [`Reply::Done`].
    AcceptFriend(AcceptFriend),
    /// [`RejectFriend`], answered with [`Reply::Done`].
    RejectFriend(RejectFriend),
    /// [`RemoveFriend`], answered with [`Reply::Done`].
    RemoveFriend(RemoveFriend),
    /// [`Block`], answered with [`Reply::Done`].
    Block(Block),
    /// [`Unblock`], answered with [`Reply::Done`].
    Unblock(Unblock),
    /// Lists the asker's friends with presence, identity keys and profiles, all in one
    /// answer: refused with `TooLarge` once the list outgrows a frame (newer peers ask
    /// for `FriendsPage`s).
    Friends,
    /// Lists the asker's pending friend requests, both directions, all in one answer:
    /// refused with `TooLarge` once they outgrow a frame (newer peers ask for
    /// `IncomingFriendRequestsPage`s and `OutgoingFriendRequestsPage`s).
    FriendRequests,
    /// [`SetProfile`], answered with [`Reply::Profile`].
    SetProfile(SetProfile),
    /// [`GetProfile`], answered with [`Reply::Profile`].
    GetProfile(GetProfile),
    /// [`ReplaceIdentity`], answered with [`Reply::KeyCount`].
    ReplaceIdentity(ReplaceIdentity),
    /// [`CreateGroup`], answered with [`Reply::Group`].
    CreateGroup(CreateGroup),
    /// Lists the groups the asker is a member of, all in one answer (`Groups`): refused
    /// with `TooLarge` once they outgrow a frame (newer peers ask for `GroupsPage`s).
    Groups,
    /// [`GroupInfo`], answered with [`Reply::Group`].
    GroupInfo(GroupInfo),
    /// [`InviteToGroup`], answered with [`Reply::Group`].
    InviteToGroup(InviteToGroup),
    /// [`KickFromGroup`], answered with [`Reply::Group`].
    KickFromGroup(KickFromGroup),
    /// [`LeaveGroup`], answered with [`Reply::Done`].
    LeaveGroup(LeaveGroup),
    /// [`SyncGroup`], answered with [`Reply::Done`].
    SyncGroup(SyncGroup),
    /// [`GroupSend`], answered with [`Reply::Sent`].
    GroupSend(GroupSend),
    /// [`UploadFile`], answered with [`Reply::UploadReady`] (and `Uploaded` once the bytes are in).
    UploadFile(UploadFile),
    /// [`DownloadFile`], answered with [`Reply::DownloadReady`].
    DownloadFile(DownloadFile),
    /// [`CallInvite`], answered with [`Reply::CallRinging`] (or `CallEnded` if the call cannot ring).
    CallInvite(CallInvite),
    /// [`CallAnswer`], answered with [`Reply::CallConnected`].
    CallAnswer(CallAnswer),
    /// [`CallReject`], answered with [`Reply::Done`].
    CallReject(CallReject),
    /// [`CallHangup`], answered with [`Reply::Done`].
    CallHangup(CallHangup),
    /// [`MomentPost`], answered with [`Reply::MomentPosted`].
    MomentPost(MomentPost),
    /// [`MomentFeed`], answered with [`Reply::MomentFeed`].
    MomentFeed(MomentFeed),
    /// [`MomentGet`], answered with [`Reply::Moment`].
    MomentGet(MomentGet),
    /// [`MomentLike`], answered with [`Reply::Done`].
    MomentLike(MomentLike),
    /// [`MomentUnlike`], answered with [`Reply::Done`].
    MomentUnlike(MomentUnlike),
    /// [`MomentComment`], answered with [`Reply::MomentCommented`].
    MomentComment(MomentComment),
    /// [`MomentDelete`], answered with [`Reply::Done`].
    MomentDelete(MomentDelete),
    /// [`MomentDeleteComment`], answered with [`Reply::Done`].
    MomentDeleteComment(MomentDeleteComment),
    /// [`FriendsPage`], answered with [`Reply::FriendsPage`].
    FriendsPage(FriendsPage),
    /// [`GroupsPage`], answered with [`Reply::GroupsPage`].
    GroupsPage(GroupsPage),
    /// [`IncomingFriendRequestsPage`], answered with [`Reply::FriendRequestsPage`].
    IncomingFriendRequestsPage(IncomingFriendRequestsPage),
    /// [`OutgoingFriendRequestsPage`], answered with [`Reply::FriendRequestsPage`].
    OutgoingFriendRequestsPage(OutgoingFriendRequestsPage),
    /// A request this relay does not know (from a newer peer).
    #[serde(other, deserialize_with = "crate::msg::skip_unknown_body")]
    Unknown,
}

/// Opens the conversation and checks protocol compatibility.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The peer's protocol version.
    pub protocol: ProtocolVersion,
    /// Free-form client name and version, for the relay's logs.
    pub client: String,
}

/// Creates an account with its public identity keys; logs in on success.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// The wanted name.
    pub username: UserName,
    /// The password (hashed by the relay with argon2id, never stored as is).
    pub password: Password,
    /// Public identity keys of the account's Olm account.
    pub identity: IdentityKeys,
    /// An initial stock of signed one-time keys.
    pub one_time_keys: Vec<SignedKey>,
    /// A signed fallback key, used when the one-time stock runs out.
    pub fallback_key: Option<SignedKey>,
}

/// Logs in with a password; the reply carries a session token for [`Request::Resume`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    /// The account to log in to; failed attempts on it are counted and rate-limited.
    pub username: UserName,
    /// Its password.
    pub password: Password,
}

/// Logs in with a session token from an earlier `Login` or `Register`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The account the token was issued to: a token is valid only with its own account.
    pub username: UserName,
    /// A token an earlier `Session` reply gave; the relay keeps only its SHA-256 hash.
    pub token: SessionToken,
}

/// Adds one-time keys to the stock and/or replaces the fallback key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadKeys {
    /// New one-time keys.
    pub one_time_keys: Vec<SignedKey>,
    /// A new fallback key.
    pub fallback_key: Option<SignedKey>,
}

/// Claims one of `user`'s one-time keys (each is handed out once) or, if the stock is
/// empty, their fallback key; used to open an Olm session to them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimKey {
    /// Whose key: a friend or group co-member of the asker (else `NotFriends`).
    pub user: UserName,
}

/// Fetches `user`'s public identity keys without claiming anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Whose keys to fetch: any registered user (else `UnknownUser`).
    pub user: UserName,
}

/// Sends an end-to-end encrypted message. The relay answers only once the message is
/// committed to the recipient's durable queue. Re-sending the same `id` is idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Send {
    /// The recipient, a friend of the sender; if they blocked the sender, the message
    /// is answered as sent and dropped.
    pub to: UserName,
    /// Sender-chosen unique id (also inside the ciphertext).
    pub id: MessageId,
    /// Opaque to the relay.
    #[serde(with = "crate::bytes")]
    pub ciphertext: Vec<u8>,
}

/// Acknowledges every durable event up to and including `through`: the relay deletes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The highest sequence number the peer has stored.
    pub through: Seq,
}

/// Asks which of `users` are online. The relay answers only for the asker's friends
/// (and the asker); anyone else is left out of the answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The users to ask about.
    pub users: Vec<UserName>,
}

/// Asks `to` to become friends, with a note they see. If `to` has already asked the
/// sender, the two become friends at once. A request to someone who blocked the sender
/// is answered like any other and goes nowhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendRequest {
    /// Whom to ask.
    pub to: UserName,
    /// A short note shown with the request (see `social::MAX_NOTE_CHARS`).
    pub note: String,
}

/// Accepts the pending request from `from`: both become friends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptFriend {
    /// Who asked.
    pub from: UserName,
}

/// Declines the pending request from `from` (they are not told).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectFriend {
    /// Who asked.
    pub from: UserName,
}

/// Ends the friendship with `user` on both sides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveFriend {
    /// The friend to remove, who gets a `FriendRemoved` event (else `NotFriends`).
    pub user: UserName,
}

/// Blocks `user`: their requests and messages are dropped without telling them, and
/// they no longer see the blocker's presence or profile changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Whom to block.
    pub user: UserName,
}

/// Lifts a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unblock {
    /// Whom to unblock.
    pub user: UserName,
}

/// Changes the asker's own profile; fields left `None` stay as they are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetProfile {
    /// The new signature (empty clears it).
    #[serde(default)]
    pub signature: Option<String>,
    /// The avatar change.
    #[serde(default)]
    pub avatar: Option<AvatarChange>,
}

/// Fetches the profile of the asker or one of their friends. The avatar image comes
/// with the answer only if its version differs from `known_avatar_version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetProfile {
    /// Whose profile.
    pub user: UserName,
    /// The avatar version the peer already holds, if any.
    #[serde(default)]
    pub known_avatar_version: Option<String>,
}

/// Replaces this account's identity keys, for a move to a new device: the relay drops
/// the old one-time and fallback keys and stocks these. Contacts will see that the
/// identity changed. Answered with `KeyCount`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplaceIdentity {
    /// The new public identity keys.
    pub identity: IdentityKeys,
    /// A stock of one-time keys signed by the new identity.
    pub one_time_keys: Vec<SignedKey>,
    /// A fallback key signed by the new identity.
    pub fallback_key: Option<SignedKey>,
}

/// Makes a group owned by the asker with `members` (each a friend of the asker's);
/// answered with `Group`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateGroup {
    /// The group's name (see `group::check_group_name`).
    pub name: String,
    /// The other members, each a friend of the asker.
    pub members: Vec<UserName>,
}

/// One group's state, for its members only; answered with `Group`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The group; a non-member is told `NoSuchGroup`, as if it did not exist.
    pub group: GroupId,
}

/// Adds `user` (a friend of the owner) to the group; owner only. Answered with `Group`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteToGroup {
    /// The group to add to, one the asker owns.
    pub group: GroupId,
    /// Whom to add.
    pub user: UserName,
}

/// Removes `user` from the group; owner only. Answered with `Group`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KickFromGroup {
    /// The group to remove from, one the asker owns.
    pub group: GroupId,
    /// Whom to remove.
    pub user: UserName,
}

/// Leaves the group. An owner who leaves hands it to the longest-standing member; the
/// last member leaving deletes it. Answered with `Done`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveGroup {
    /// The group to leave; a non-member is told `NoSuchGroup`.
    pub group: GroupId,
}

/// Asks the relay to queue, for the asker alone, the group's whole member list as a
/// `GroupChanged` event with [`GroupChange::Synced`](crate::GroupChange::Synced): for a
/// device that has no membership view to apply changes to (a new device). Answered
/// with `Done`; members only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncGroup {
    /// The group whose member list to queue; a non-member is told `NoSuchGroup`.
    pub group: GroupId,
}

/// Sends one Megolm-encrypted message to every other member. The relay commits, in one
/// transaction, each key share to its member's queue and then the message to every
/// member's queue, and only then answers `Sent`. Refused with `GroupChanged` if the
/// group's epoch is no longer `epoch`. Re-sending the same `id` is idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSend {
    /// The group to send to; a non-member is told `NoSuchGroup`.
    pub group: GroupId,
    /// The membership epoch the sender's session keys were shared for.
    pub epoch: u64,
    /// Sender-chosen unique id (also inside the ciphertext).
    pub id: MessageId,
    /// Opaque to the relay.
    #[serde(with = "crate::bytes")]
    pub ciphertext: Vec<u8>,
    /// Session keys for members who do not hold the sender's current session yet.
    #[serde(default)]
    pub key_shares: Vec<KeyShare>,
}

/// Starts or resumes an upload on this stream. The relay answers `UploadReady` with
/// the offset (a chunk boundary) from which it wants the ciphertext; the peer then
/// writes the bytes from there to `size` on the same stream and finishes it, and the
/// relay answers a second time: `Uploaded` once every byte is on its disk, or an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadFile {
    /// The file, chosen by the uploader (bound into every chunk's MAC).
    pub file: FileId,
    /// Its ciphertext length (`file::sealed_file_bytes` of the plaintext length).
    pub size: u64,
    /// Who may download it besides the uploader.
    pub access: FileAccess,
}

/// Downloads a complete file, for those allowed to. The relay answers `DownloadReady`
/// and writes the ciphertext from `offset` (a chunk boundary) to the end on this stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadFile {
    /// The file to fetch, uploaded by the asker or shared with them by its
    /// [`FileAccess`].
    pub file: FileId,
    /// Where to start, in bytes of ciphertext.
    pub offset: u64,
}

/// Rings `to`, a friend: answered with `CallRinging` (the caller's voice leg), or with
/// `CallEnded` when the call cannot ring (`Busy`, `Offline`: a missed call is queued).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallInvite {
    /// The call, chosen by the caller.
    pub call: CallId,
    /// Whom to ring, a friend; if they blocked the caller, the answer is `CallEnded`
    /// with `Offline` and they are not told.
    pub to: UserName,
    /// Opaque to the relay: an Olm envelope with the caller's ephemeral call key.
    #[serde(with = "crate::bytes")]
    pub offer: Vec<u8>,
}

/// Takes a call ringing for the asker: answered with `CallConnected` (the callee's voice
/// leg); `NoSuchCall` if no such call rings for the asker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallAnswer {
    /// The ringing call to take, as its `CallIncoming` named it.
    pub call: CallId,
    /// Opaque to the relay: an Olm envelope with the callee's ephemeral call key.
    #[serde(with = "crate::bytes")]
    pub answer: Vec<u8>,
}

/// Refuses a call ringing for the asker; answered with `Done`, or `NoSuchCall`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallReject {
    /// The ringing call to refuse, as its `CallIncoming` named it.
    pub call: CallId,
}

/// Ends a call the asker is in (the caller cancels one still ringing); answered with
/// `Done`, or `NoSuchCall`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallHangup {
    /// The call to end: one the asker placed or took.
    pub call: CallId,
}

/// Posts a moment: its sealed text and pictures, and its key for each viewer (each a
/// friend of the asker) inside an Olm message. Answered with `MomentPosted` once the
/// post and every share are committed; re-sending the same `id` is idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentPost {
    /// The post, chosen by the author.
    pub id: PostId,
    /// Opaque to the relay: the post sealed under its key.
    #[serde(with = "crate::bytes")]
    pub ciphertext: Vec<u8>,
    /// The post's key for each viewer.
    #[serde(default)]
    pub shares: Vec<KeyShare>,
}

/// A page of the asker's feed, newest first: their own posts and those their friends
/// shared with them. Answered with `MomentFeed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentFeed {
    /// Only posts before this cursor (a `MomentFeed` answer's `next`); `None` starts
    /// at the newest.
    #[serde(default)]
    pub before: Option<u64>,
    /// Most posts wanted (at most `moment::MAX_FEED_PAGE`).
    pub limit: u32,
}

/// One post, if the asker may see it; answered with `Moment`, or `NoSuchPost`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentGet {
    /// The post wanted; one the asker may not see is answered `NoSuchPost`.
    pub post: PostId,
}

/// Likes a post the asker may see; the author is told. Answered with `Done`; liking
/// again changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentLike {
    /// The post to like; one the asker may not see is answered `NoSuchPost`.
    pub post: PostId,
    /// Opaque to the relay: the like sealed under the post's key.
    #[serde(with = "crate::bytes")]
    pub ciphertext: Vec<u8>,
}

/// Takes back the asker's like; answered with `Done`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentUnlike {
    /// The post whose like by the asker to take back.
    pub post: PostId,
}

/// Comments on a post the asker may see, or replies to someone's comment there; the
/// author (and the one replied to) are told. Answered with `MomentCommented`;
/// re-sending the same `id` is idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentComment {
    /// The post to comment on; one the asker may not see is answered `NoSuchPost`.
    pub post: PostId,
    /// The comment, chosen by its author.
    pub id: CommentId,
    /// Whom it answers: the post's author or someone who commented on it.
    #[serde(default)]
    pub reply_to: Option<UserName>,
    /// Opaque to the relay: the comment sealed under the post's key.
    #[serde(with = "crate::bytes")]
    pub ciphertext: Vec<u8>,
}

/// Deletes one of the asker's posts with its likes and comments; answered with `Done`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentDelete {
    /// The post to delete, one of the asker's own (another's is answered `NotAllowed`).
    pub post: PostId,
}

/// Deletes a comment the asker wrote, or one on the asker's post; answered with `Done`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentDeleteComment {
    /// The comment to delete: one the asker wrote or one on the asker's post, else
    /// `NotAllowed` (or `NoSuchComment` if the asker cannot see it).
    pub comment: CommentId,
}

/// A page of the asker's friends, in name order, with presence, identity keys and
/// profiles; answered with `FriendsPage`. Unlike `Friends`, it works for a list of any
/// length (see [`crate::msg::page`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendsPage {
    /// Only friends after this name (a `FriendsPage` answer's `next`); `None` starts
    /// at the first.
    #[serde(default)]
    pub after: Option<UserName>,
    /// Most friends wanted (at most `page::MAX_PAGE_ENTRIES`).
    pub limit: u32,
}

/// A page of the groups the asker is in, in id order; answered with `GroupsPage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupsPage {
    /// Only groups after this id (a `GroupsPage` answer's `next`); `None` starts at
    /// the first.
    #[serde(default)]
    pub after: Option<GroupId>,
    /// Most groups wanted (at most `page::MAX_PAGE_ENTRIES`).
    pub limit: u32,
}

/// A page of the pending friend requests others sent the asker, in name order of who
/// sent them; answered with `FriendRequestsPage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingFriendRequestsPage {
    /// Only requests from names after this one (a `FriendRequestsPage` answer's
    /// `next`); `None` starts at the first.
    #[serde(default)]
    pub after: Option<UserName>,
    /// Most requests wanted (at most `page::MAX_PAGE_ENTRIES`).
    pub limit: u32,
}

/// A page of the asker's own friend requests still waiting for an answer, in name
/// order of whom they are for; answered with `FriendRequestsPage`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingFriendRequestsPage {
    /// Only requests to names after this one (a `FriendRequestsPage` answer's
    /// `next`); `None` starts at the first.
    #[serde(default)]
    pub after: Option<UserName>,
    /// Most requests wanted (at most `page::MAX_PAGE_ENTRIES`).
    pub limit: u32,
}

/// Revokes the current session token; answered with `Done`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logout;

/// Asks how many one-time keys of mine the relay still holds; answered with `KeyCount`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyCount;

/// Lists the asker's friends in one answer (older peers; newer ones ask for `FriendsPage`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Friends;

/// Lists the asker's pending friend requests in one answer (older peers; newer ones ask page by page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FriendRequests;

/// Lists the asker's groups in one answer (older peers; newer ones ask for `GroupsPage`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Groups;

impl Request {
    /// A short name for logs and metrics (never the content).
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Hello(_) => "hello",
            Request::Register(_) => "register",
            Request::Login(_) => "login",
            Request::Resume(_) => "resume",
            Request::Logout => "logout",
            Request::UploadKeys(_) => "upload_keys",
            Request::KeyCount => "key_count",
            Request::ClaimKey(_) => "claim_key",
            Request::Identity(_) => "identity",
            Request::Send(_) => "send",
            Request::Ack(_) => "ack",
            Request::Presence(_) => "presence",
            Request::ReplaceIdentity(_) => "replace_identity",
            Request::FriendRequest(_) => "friend_request",
            Request::AcceptFriend(_) => "accept_friend",
            Request::RejectFriend(_) => "reject_friend",
            Request::RemoveFriend(_) => "remove_friend",
            Request::Block(_) => "block",
            Request::Unblock(_) => "unblock",
            Request::Friends => "friends",
            Request::FriendRequests => "friend_requests",
            Request::SetProfile(_) => "set_profile",
            Request::GetProfile(_) => "get_profile",
            Request::CreateGroup(_) => "create_group",
            Request::Groups => "groups",
            Request::GroupInfo(_) => "group_info",
            Request::InviteToGroup(_) => "invite_to_group",
            Request::KickFromGroup(_) => "kick_from_group",
            Request::LeaveGroup(_) => "leave_group",
            Request::GroupSend(_) => "group_send",
            Request::SyncGroup(_) => "sync_group",
            Request::UploadFile(_) => "upload_file",
            Request::DownloadFile(_) => "download_file",
            Request::CallInvite(_) => "call_invite",
            Request::CallAnswer(_) => "call_answer",
            Request::CallReject(_) => "call_reject",
            Request::CallHangup(_) => "call_hangup",
            Request::MomentPost(_) => "moment_post",
            Request::MomentFeed(_) => "moment_feed",
            Request::MomentGet(_) => "moment_get",
            Request::MomentLike(_) => "moment_like",
            Request::MomentUnlike(_) => "moment_unlike",
            Request::MomentComment(_) => "moment_comment",
            Request::MomentDelete(_) => "moment_delete",
            Request::MomentDeleteComment(_) => "moment_delete_comment",
            Request::FriendsPage(_) => "friends_page",
            Request::GroupsPage(_) => "groups_page",
            Request::IncomingFriendRequestsPage(_) => "incoming_friend_requests_page",
            Request::OutgoingFriendRequestsPage(_) => "outgoing_friend_requests_page",
            Request::Unknown => "unknown",
        }
    }
}

/// A password in transit. Its `Debug` never shows the content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Password(<{} bytes>)", self.0.len())
    }
}

/// A bearer session token (32 random bytes). Its `Debug` never shows the content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionToken(#[serde(with = "crate::bytes")] pub Vec<u8>);

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionToken(<{} bytes>)", self.0.len())
    }
}

/// An account's public identity keys, opaque to the relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityKeys {
    /// Curve25519 identity key (32 bytes), used in the Olm handshake.
    #[serde(with = "crate::bytes")]
    pub curve25519: Vec<u8>,
    /// Ed25519 signing key (32 bytes), signs one-time and fallback keys.
    #[serde(with = "crate::bytes")]
    pub ed25519: Vec<u8>,
}

/// A Curve25519 one-time or fallback key with the account's Ed25519 signature over it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedKey {
    /// The public key (32 bytes).
    #[serde(with = "crate::bytes")]
    pub key: Vec<u8>,
    /// Ed25519 signature (64 bytes) by the account's signing key.
    #[serde(with = "crate::bytes")]
    pub signature: Vec<u8>,
}
