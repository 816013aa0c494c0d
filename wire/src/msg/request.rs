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
    /// Opens the conversation and checks protocol compatibility.
    Hello {
        /// The peer's protocol version.
        protocol: ProtocolVersion,
        /// Free-form client name and version, for the relay's logs.
        client: String,
    },
    /// Creates an account with its public identity keys; logs in on success.
    Register {
        /// The wanted name.
        username: UserName,
        /// The password (hashed by the relay with argon2id, never stored as is).
        password: Password,
        /// Public identity keys of the account's Olm account.
        identity: IdentityKeys,
        /// An initial stock of signed one-time keys.
        one_time_keys: Vec<SignedKey>,
        /// A signed fallback key, used when the one-time stock runs out.
        fallback_key: Option<SignedKey>,
    },
    /// Logs in with a password; the reply carries a session token for [`Request::Resume`].
    Login {
        /// The account to log in to; failed attempts on it are counted and rate-limited.
        username: UserName,
        /// Its password.
        password: Password,
    },
    /// Logs in with a session token from an earlier `Login` or `Register`.
    Resume {
        /// The account the token was issued to: a token is valid only with its own account.
        username: UserName,
        /// A token an earlier `Session` reply gave; the relay keeps only its SHA-256 hash.
        token: SessionToken,
    },
    /// Revokes the current session token.
    Logout,
    /// Adds one-time keys to the stock and/or replaces the fallback key.
    UploadKeys {
        /// New one-time keys.
        one_time_keys: Vec<SignedKey>,
        /// A new fallback key.
        fallback_key: Option<SignedKey>,
    },
    /// How many one-time keys of mine the relay still holds.
    KeyCount,
    /// Claims one of `user`'s one-time keys (each is handed out once) or, if the stock is
    /// empty, their fallback key; used to open an Olm session to them.
    ClaimKey {
        /// Whose key: a friend or group co-member of the asker (else `NotFriends`).
        user: UserName,
    },
    /// Fetches `user`'s public identity keys without claiming anything.
    Identity {
        /// Whose keys to fetch: any registered user (else `UnknownUser`).
        user: UserName,
    },
    /// Sends an end-to-end encrypted message. The relay answers only once the message is
    /// committed to the recipient's durable queue. Re-sending the same `id` is idempotent.
    Send {
        /// The recipient, a friend of the sender; if they blocked the sender, the message
        /// is answered as sent and dropped.
        to: UserName,
        /// Sender-chosen unique id (also inside the ciphertext).
        id: MessageId,
        /// Opaque to the relay.
        #[serde(with = "crate::bytes")]
        ciphertext: Vec<u8>,
    },
    /// Acknowledges every durable event up to and including `through`: the relay deletes them.
    Ack {
        /// The highest sequence number the peer has stored.
        through: Seq,
    },
    /// Asks which of `users` are online. The relay answers only for the asker's friends
    /// (and the asker); anyone else is left out of the answer.
    Presence {
        /// The users to ask about.
        users: Vec<UserName>,
    },
    /// Asks `to` to become friends, with a note they see. If `to` has already asked the
    /// sender, the two become friends at once. A request to someone who blocked the sender
    /// is answered like any other and goes nowhere.
    FriendRequest {
        /// Whom to ask.
        to: UserName,
        /// A short note shown with the request (see `social::MAX_NOTE_CHARS`).
        note: String,
    },
    /// Accepts the pending request from `from`: both become friends.
    AcceptFriend {
        /// Who asked.
        from: UserName,
    },
    /// Declines the pending request from `from` (they are not told).
    RejectFriend {
        /// Who asked.
        from: UserName,
    },
    /// Ends the friendship with `user` on both sides.
    RemoveFriend {
        /// The friend to remove, who gets a `FriendRemoved` event (else `NotFriends`).
        user: UserName,
    },
    /// Blocks `user`: their requests and messages are dropped without telling them, and
    /// they no longer see the blocker's presence or profile changes.
    Block {
        /// Whom to block.
        user: UserName,
    },
    /// Lifts a block.
    Unblock {
        /// Whom to unblock.
        user: UserName,
    },
    /// Lists the asker's friends with presence, identity keys and profiles, all in one
    /// answer: refused with `TooLarge` once the list outgrows a frame (newer peers ask
    /// for `FriendsPage`s).
    Friends,
    /// Lists the asker's pending friend requests, both directions, all in one answer:
    /// refused with `TooLarge` once they outgrow a frame (newer peers ask for
    /// `IncomingFriendRequestsPage`s and `OutgoingFriendRequestsPage`s).
    FriendRequests,
    /// Changes the asker's own profile; fields left `None` stay as they are.
    SetProfile {
        /// The new signature (empty clears it).
        #[serde(default)]
        signature: Option<String>,
        /// The avatar change.
        #[serde(default)]
        avatar: Option<AvatarChange>,
    },
    /// Fetches the profile of the asker or one of their friends. The avatar image comes
    /// with the answer only if its version differs from `known_avatar_version`.
    GetProfile {
        /// Whose profile.
        user: UserName,
        /// The avatar version the peer already holds, if any.
        #[serde(default)]
        known_avatar_version: Option<String>,
    },
    /// Replaces this account's identity keys, for a move to a new device: the relay drops
    /// the old one-time and fallback keys and stocks these. Contacts will see that the
    /// identity changed. Answered with `KeyCount`.
    ReplaceIdentity {
        /// The new public identity keys.
        identity: IdentityKeys,
        /// A stock of one-time keys signed by the new identity.
        one_time_keys: Vec<SignedKey>,
        /// A fallback key signed by the new identity.
        fallback_key: Option<SignedKey>,
    },
    /// Makes a group owned by the asker with `members` (each a friend of the asker's);
    /// answered with `Group`.
    CreateGroup {
        /// The group's name (see `group::check_group_name`).
        name: String,
        /// The other members, each a friend of the asker.
        members: Vec<UserName>,
    },
    /// Lists the groups the asker is a member of, all in one answer (`Groups`): refused
    /// with `TooLarge` once they outgrow a frame (newer peers ask for `GroupsPage`s).
    Groups,
    /// One group's state, for its members only; answered with `Group`.
    GroupInfo {
        /// The group; a non-member is told `NoSuchGroup`, as if it did not exist.
        group: GroupId,
    },
    /// Adds `user` (a friend of the owner) to the group; owner only. Answered with `Group`.
    InviteToGroup {
        /// The group to add to, one the asker owns.
        group: GroupId,
        /// Whom to add.
        user: UserName,
    },
    /// Removes `user` from the group; owner only. Answered with `Group`.
    KickFromGroup {
        /// The group to remove from, one the asker owns.
        group: GroupId,
        /// Whom to remove.
        user: UserName,
    },
    /// Leaves the group. An owner who leaves hands it to the longest-standing member; the
    /// last member leaving deletes it. Answered with `Done`.
    LeaveGroup {
        /// The group to leave; a non-member is told `NoSuchGroup`.
        group: GroupId,
    },
    /// Asks the relay to queue, for the asker alone, the group's whole member list as a
    /// `GroupChanged` event with [`GroupChange::Synced`](crate::GroupChange::Synced): for a
    /// device that has no membership view to apply changes to (a new device). Answered
    /// with `Done`; members only.
    SyncGroup {
        /// The group whose member list to queue; a non-member is told `NoSuchGroup`.
        group: GroupId,
    },
    /// Sends one Megolm-encrypted message to every other member. The relay commits, in one
    /// transaction, each key share to its member's queue and then the message to every
    /// member's queue, and only then answers `Sent`. Refused with `GroupChanged` if the
    /// group's epoch is no longer `epoch`. Re-sending the same `id` is idempotent.
    GroupSend {
        /// The group to send to; a non-member is told `NoSuchGroup`.
        group: GroupId,
        /// The membership epoch the sender's session keys were shared for.
        epoch: u64,
        /// Sender-chosen unique id (also inside the ciphertext).
        id: MessageId,
        /// Opaque to the relay.
        #[serde(with = "crate::bytes")]
        ciphertext: Vec<u8>,
        /// Session keys for members who do not hold the sender's current session yet.
        #[serde(default)]
        key_shares: Vec<KeyShare>,
    },
    /// Starts or resumes an upload on this stream. The relay answers `UploadReady` with
    /// the offset (a chunk boundary) from which it wants the ciphertext; the peer then
    /// writes the bytes from there to `size` on the same stream and finishes it, and the
    /// relay answers a second time: `Uploaded` once every byte is on its disk, or an error.
    UploadFile {
        /// The file, chosen by the uploader (bound into every chunk's MAC).
        file: FileId,
        /// Its ciphertext length (`file::sealed_file_bytes` of the plaintext length).
        size: u64,
        /// Who may download it besides the uploader.
        access: FileAccess,
    },
    /// Downloads a complete file, for those allowed to. The relay answers `DownloadReady`
    /// and writes the ciphertext from `offset` (a chunk boundary) to the end on this stream.
    DownloadFile {
        /// The file to fetch, uploaded by the asker or shared with them by its
        /// [`FileAccess`].
        file: FileId,
        /// Where to start, in bytes of ciphertext.
        offset: u64,
    },
    /// Rings `to`, a friend: answered with `CallRinging` (the caller's voice leg), or with
    /// `CallEnded` when the call cannot ring (`Busy`, `Offline`: a missed call is queued).
    CallInvite {
        /// The call, chosen by the caller.
        call: CallId,
        /// Whom to ring, a friend; if they blocked the caller, the answer is `CallEnded`
        /// with `Offline` and they are not told.
        to: UserName,
        /// Opaque to the relay: an Olm envelope with the caller's ephemeral call key.
        #[serde(with = "crate::bytes")]
        offer: Vec<u8>,
    },
    /// Takes a call ringing for the asker: answered with `CallConnected` (the callee's voice
    /// leg); `NoSuchCall` if no such call rings for the asker.
    CallAnswer {
        /// The ringing call to take, as its `CallIncoming` named it.
        call: CallId,
        /// Opaque to the relay: an Olm envelope with the callee's ephemeral call key.
        #[serde(with = "crate::bytes")]
        answer: Vec<u8>,
    },
    /// Refuses a call ringing for the asker; answered with `Done`, or `NoSuchCall`.
    CallReject {
        /// The ringing call to refuse, as its `CallIncoming` named it.
        call: CallId,
    },
    /// Ends a call the asker is in (the caller cancels one still ringing); answered with
    /// `Done`, or `NoSuchCall`.
    CallHangup {
        /// The call to end: one the asker placed or took.
        call: CallId,
    },
    /// Posts a moment: its sealed text and pictures, and its key for each viewer (each a
    /// friend of the asker) inside an Olm message. Answered with `MomentPosted` once the
    /// post and every share are committed; re-sending the same `id` is idempotent.
    MomentPost {
        /// The post, chosen by the author.
        id: PostId,
        /// Opaque to the relay: the post sealed under its key.
        #[serde(with = "crate::bytes")]
        ciphertext: Vec<u8>,
        /// The post's key for each viewer.
        #[serde(default)]
        shares: Vec<KeyShare>,
    },
    /// A page of the asker's feed, newest first: their own posts and those their friends
    /// shared with them. Answered with `MomentFeed`.
    MomentFeed {
        /// Only posts before this cursor (a `MomentFeed` answer's `next`); `None` starts
        /// at the newest.
        #[serde(default)]
        before: Option<u64>,
        /// Most posts wanted (at most `moment::MAX_FEED_PAGE`).
        limit: u32,
    },
    /// One post, if the asker may see it; answered with `Moment`, or `NoSuchPost`.
    MomentGet {
        /// The post wanted; one the asker may not see is answered `NoSuchPost`.
        post: PostId,
    },
    /// Likes a post the asker may see; the author is told. Answered with `Done`; liking
    /// again changes nothing.
    MomentLike {
        /// The post to like; one the asker may not see is answered `NoSuchPost`.
        post: PostId,
        /// Opaque to the relay: the like sealed under the post's key.
        #[serde(with = "crate::bytes")]
        ciphertext: Vec<u8>,
    },
    /// Takes back the asker's like; answered with `Done`.
    MomentUnlike {
        /// The post whose like by the asker to take back.
        post: PostId,
    },
    /// Comments on a post the asker may see, or replies to someone's comment there; the
    /// author (and the one replied to) are told. Answered with `MomentCommented`;
    /// re-sending the same `id` is idempotent.
    MomentComment {
        /// The post to comment on; one the asker may not see is answered `NoSuchPost`.
        post: PostId,
        /// The comment, chosen by its author.
        id: CommentId,
        /// Whom it answers: the post's author or someone who commented on it.
        #[serde(default)]
        reply_to: Option<UserName>,
        /// Opaque to the relay: the comment sealed under the post's key.
        #[serde(with = "crate::bytes")]
        ciphertext: Vec<u8>,
    },
    /// Deletes one of the asker's posts with its likes and comments; answered with `Done`.
    MomentDelete {
        /// The post to delete, one of the asker's own (another's is answered `NotAllowed`).
        post: PostId,
    },
    /// Deletes a comment the asker wrote, or one on the asker's post; answered with `Done`.
    MomentDeleteComment {
        /// The comment to delete: one the asker wrote or one on the asker's post, else
        /// `NotAllowed` (or `NoSuchComment` if the asker cannot see it).
        comment: CommentId,
    },
    /// A page of the asker's friends, in name order, with presence, identity keys and
    /// profiles; answered with `FriendsPage`. Unlike `Friends`, it works for a list of any
    /// length (see [`crate::msg::page`]).
    FriendsPage {
        /// Only friends after this name (a `FriendsPage` answer's `next`); `None` starts
        /// at the first.
        #[serde(default)]
        after: Option<UserName>,
        /// Most friends wanted (at most `page::MAX_PAGE_ENTRIES`).
        limit: u32,
    },
    /// A page of the groups the asker is in, in id order; answered with `GroupsPage`.
    GroupsPage {
        /// Only groups after this id (a `GroupsPage` answer's `next`); `None` starts at
        /// the first.
        #[serde(default)]
        after: Option<GroupId>,
        /// Most groups wanted (at most `page::MAX_PAGE_ENTRIES`).
        limit: u32,
    },
    /// A page of the pending friend requests others sent the asker, in name order of who
    /// sent them; answered with `FriendRequestsPage`.
    IncomingFriendRequestsPage {
        /// Only requests from names after this one (a `FriendRequestsPage` answer's
        /// `next`); `None` starts at the first.
        #[serde(default)]
        after: Option<UserName>,
        /// Most requests wanted (at most `page::MAX_PAGE_ENTRIES`).
        limit: u32,
    },
    /// A page of the asker's own friend requests still waiting for an answer, in name
    /// order of whom they are for; answered with `FriendRequestsPage`.
    OutgoingFriendRequestsPage {
        /// Only requests to names after this one (a `FriendRequestsPage` answer's
        /// `next`); `None` starts at the first.
        #[serde(default)]
        after: Option<UserName>,
        /// Most requests wanted (at most `page::MAX_PAGE_ENTRIES`).
        limit: u32,
    },
    /// A request this relay does not know (from a newer peer).
    #[serde(other, deserialize_with = "crate::msg::skip_unknown_body")]
    Unknown,
}

impl Request {
    /// A short name for logs and metrics (never the content).
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::Register { .. } => "register",
            Request::Login { .. } => "login",
            Request::Resume { .. } => "resume",
            Request::Logout => "logout",
            Request::UploadKeys { .. } => "upload_keys",
            Request::KeyCount => "key_count",
            Request::ClaimKey { .. } => "claim_key",
            Request::Identity { .. } => "identity",
            Request::Send { .. } => "send",
            Request::Ack { .. } => "ack",
            Request::Presence { .. } => "presence",
            Request::ReplaceIdentity { .. } => "replace_identity",
            Request::FriendRequest { .. } => "friend_request",
            Request::AcceptFriend { .. } => "accept_friend",
            Request::RejectFriend { .. } => "reject_friend",
            Request::RemoveFriend { .. } => "remove_friend",
            Request::Block { .. } => "block",
            Request::Unblock { .. } => "unblock",
            Request::Friends => "friends",
            Request::FriendRequests => "friend_requests",
            Request::SetProfile { .. } => "set_profile",
            Request::GetProfile { .. } => "get_profile",
            Request::CreateGroup { .. } => "create_group",
            Request::Groups => "groups",
            Request::GroupInfo { .. } => "group_info",
            Request::InviteToGroup { .. } => "invite_to_group",
            Request::KickFromGroup { .. } => "kick_from_group",
            Request::LeaveGroup { .. } => "leave_group",
            Request::GroupSend { .. } => "group_send",
            Request::SyncGroup { .. } => "sync_group",
            Request::UploadFile { .. } => "upload_file",
            Request::DownloadFile { .. } => "download_file",
            Request::CallInvite { .. } => "call_invite",
            Request::CallAnswer { .. } => "call_answer",
            Request::CallReject { .. } => "call_reject",
            Request::CallHangup { .. } => "call_hangup",
            Request::MomentPost { .. } => "moment_post",
            Request::MomentFeed { .. } => "moment_feed",
            Request::MomentGet { .. } => "moment_get",
            Request::MomentLike { .. } => "moment_like",
            Request::MomentUnlike { .. } => "moment_unlike",
            Request::MomentComment { .. } => "moment_comment",
            Request::MomentDelete { .. } => "moment_delete",
            Request::MomentDeleteComment { .. } => "moment_delete_comment",
            Request::FriendsPage { .. } => "friends_page",
            Request::GroupsPage { .. } => "groups_page",
            Request::IncomingFriendRequestsPage { .. } => "incoming_friend_requests_page",
            Request::OutgoingFriendRequestsPage { .. } => "outgoing_friend_requests_page",
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
