//! [`StoreError`]: everything a store method can fail with, in domain terms.
//!
//! redb's own errors are turned into [`StoreError::Io`] or text here, so callers match on
//! what went wrong for them, not on storage internals. (The `From` impls exist only so the
//! crate can use `?` on redb calls.)

use std::path::PathBuf;

use uchat_wire::{CommentId, FileId, GroupId, PostId, UserName};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (or another handle in this one) holds the database file open.
    #[error("profile in use by another uchat process: {}", path.display())]
    InUse {
        /// The database file.
        path: PathBuf,
    },
    /// The database file could not be opened or created.
    #[error("cannot open the store {}: {reason}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What redb or the file system said.
        reason: String,
    },
    /// Reading or writing the database file failed at the operating-system level
    /// (for example, the disk is full).
    #[error("store i/o failed: {source}")]
    Io {
        /// The error redb passed on from the file system.
        source: std::io::Error,
    },
    /// The database refused an operation for a reason other than i/o.
    #[error("store failure: {reason}")]
    Database {
        /// What redb said.
        reason: String,
    },
    /// A stored record could not be decoded: the file was damaged or written by an
    /// incompatible version.
    #[error("corrupt {what} in the store: {reason}")]
    Corrupt {
        /// Which kind of record.
        what: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A record could not be encoded for storage.
    #[error("cannot encode {what} for the store: {reason}")]
    Encode {
        /// Which kind of record.
        what: &'static str,
        /// What the encoder said.
        reason: String,
    },
    /// An account with this name already exists.
    #[error("username '{username}' is taken")]
    UsernameTaken {
        /// The requested name.
        username: UserName,
    },
    /// The operation names an account that does not exist.
    #[error("no account named '{username}'")]
    UnknownUser {
        /// The name given.
        username: UserName,
    },
    /// The recipient's durable queue already holds as many events as allowed.
    #[error("the queue of '{recipient}' is full ({len} undelivered events)")]
    QueueFull {
        /// Whose queue.
        recipient: UserName,
        /// Events waiting in it.
        len: u64,
    },
    /// A user tried to befriend or block themselves.
    #[error("you cannot befriend or block yourself; name another user")]
    SelfRelation,
    /// The two users are not friends, and the operation needs them to be.
    #[error("'{user}' and '{other}' are not friends; send a friend request first")]
    NotFriends {
        /// Who asked.
        user: UserName,
        /// The other side.
        other: UserName,
    },
    /// A friend request to someone who is a friend already.
    #[error("you and '{other}' are friends already")]
    AlreadyFriends {
        /// The user the request was for, a friend already.
        other: UserName,
    },
    /// A friend request to someone who has one from this user pending already.
    #[error("a friend request to '{to}' is pending already; wait for them to answer")]
    DuplicateRequest {
        /// Who it is for.
        to: UserName,
    },
    /// Accepting or rejecting a friend request that is not there (never sent, answered
    /// already, or dropped by a block).
    #[error("there is no pending friend request from '{from}'")]
    NoSuchRequest {
        /// Who it was supposed to come from.
        from: UserName,
    },
    /// A friend request or message to someone this user blocked.
    #[error("you blocked '{other}'; unblock them first")]
    BlockedByYou {
        /// The blocked user.
        other: UserName,
    },
    /// A per-user limit of the social layer is reached (on either side).
    #[error("the limit on {what} ({limit}) is reached")]
    LimitReached {
        /// What is limited: "friends" or "pending friend requests".
        what: &'static str,
        /// The limit in force.
        limit: u64,
    },
    /// The group does not exist, or the asker is not a member (not told apart).
    #[error("no group {group} among yours")]
    NoSuchGroup {
        /// The group asked for.
        group: GroupId,
    },
    /// Only the group's owner may do this.
    #[error("only the owner of group {group} ('{owner}') may do that")]
    NotGroupOwner {
        /// The group the asker is a member of but does not own.
        group: GroupId,
        /// Its owner.
        owner: UserName,
    },
    /// A group message was made for another membership epoch.
    #[error("the members of group {group} changed (epoch {epoch} now)")]
    GroupChanged {
        /// The group the message was for.
        group: GroupId,
        /// Its epoch now.
        epoch: u64,
    },
    /// The user is in the group already.
    #[error("'{user}' is in group {group} already")]
    AlreadyMember {
        /// The user who was to be added.
        user: UserName,
        /// The group they are in already.
        group: GroupId,
    },
    /// The user is not a member of the group.
    #[error("'{user}' is not a member of group {group}")]
    NotGroupMember {
        /// The user who is not in the group: one to be removed, or one a key share was for.
        user: UserName,
        /// The group they are not in.
        group: GroupId,
    },
    /// The user is in as many groups as one may be.
    #[error("'{user}' is in {limit} groups already, as many as one may be")]
    TooManyGroups {
        /// Who would join one group too many: the group's maker or a member being added.
        user: UserName,
        /// The limit in force.
        limit: u64,
    },
    /// No such file.
    #[error("no file {id}")]
    NoSuchFile {
        /// The file asked for: never uploaded, or its retention ended.
        id: FileId,
    },
    /// The asker may not download the file.
    #[error("not allowed to download file {id}")]
    NotAllowed {
        /// The file, which the asker neither uploaded nor is among those allowed to fetch.
        id: FileId,
    },
    /// The file's upload has not finished.
    #[error("file {id} is still being uploaded")]
    FileIncomplete {
        /// The file whose upload is still under way.
        id: FileId,
    },
    /// Another upload has this id.
    #[error("file id {id} is taken by another upload")]
    FileIdTaken {
        /// The id asked for, held by an upload of another owner or size.
        id: FileId,
    },
    /// The file is larger than the relay takes.
    #[error("a file of {size} bytes is over the relay's limit of {max} bytes")]
    FileTooLarge {
        /// The file's ciphertext length in bytes, as the upload declared it.
        size: u64,
        /// The relay's largest file, in bytes of ciphertext.
        max: u64,
    },
    /// The uploader's storage is full.
    #[error("storing {size} more bytes would pass the quota of {quota} bytes ({used} used)")]
    QuotaExceeded {
        /// Bytes in use.
        used: u64,
        /// Bytes asked for.
        size: u64,
        /// The uploader's file quota, in bytes of ciphertext.
        quota: u64,
    },
    /// The writer's moments take their whole quota.
    #[error(
        "your moments take {used} of {quota} bytes; {size} more do not fit (delete old posts or comments)"
    )]
    MomentQuotaExceeded {
        /// Bytes in use.
        used: u64,
        /// Bytes asked for.
        size: u64,
        /// The writer's moment quota in bytes, counting each item's sealed bytes and 256
        /// more.
        quota: u64,
    },
    /// No such post among those the asker may see.
    #[error("no post {post} among those you may see (deleted, or not shared with you)")]
    NoSuchPost {
        /// The post asked for: never posted, deleted, or not visible to the asker.
        post: PostId,
    },
    /// No such comment on a post the asker may see.
    #[error("no comment {comment} among those you may see")]
    NoSuchComment {
        /// The comment asked for: gone, or not visible to the asker.
        comment: CommentId,
    },
    /// Only the post's author (or, for a comment, its writer) may do this.
    #[error("only its author may {action}")]
    NotYours {
        /// What was refused, such as "delete this post".
        action: &'static str,
    },
    /// A moment's id (a post's or a comment's) is taken by another one.
    #[error("the id of this {what} is taken; choose another")]
    MomentIdTaken {
        /// "post" or "comment".
        what: &'static str,
    },
    /// A reply names someone it cannot answer.
    #[error("{reason}")]
    InvalidReply {
        /// Why the reply was refused, in words for the user (the whole error message).
        reason: String,
    },
    /// The owner tried to remove themselves.
    #[error("the owner cannot be removed from group {group}; leave it instead")]
    OwnerCannotBeRemoved {
        /// The group its owner tried to remove themselves from.
        group: GroupId,
    },
}

impl uchat_db::DbError for StoreError {
    fn in_use(path: PathBuf) -> Self {
        StoreError::InUse { path }
    }
    fn open(path: PathBuf, reason: String) -> Self {
        StoreError::Open { path, reason }
    }
    fn corrupt(what: &'static str, reason: String) -> Self {
        StoreError::Corrupt { what, reason }
    }
    fn encode(what: &'static str, reason: String) -> Self {
        StoreError::Encode { what, reason }
    }
}

uchat_db::redb_errors!(StoreError);

impl StoreError {
    /// Whether this failure means the transaction it happened in may hold half a write
    /// (a storage or encoding failure), so that nothing of it may be committed. Every
    /// other error is a refusal, decided before anything was written.
    pub fn aborts_transaction(&self) -> bool {
        matches!(
            self,
            StoreError::InUse { .. }
                | StoreError::Open { .. }
                | StoreError::Io { .. }
                | StoreError::Database { .. }
                | StoreError::Corrupt { .. }
                | StoreError::Encode { .. }
        )
    }
}
