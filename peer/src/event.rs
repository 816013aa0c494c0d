//! Events a [`Client`](crate::Client) reports to its user.

use crate::store::{ConversationId, EntryFlags, EntryStatus, FileRef, HistoryEntry, IdentityFlag};
use uchat_wire::{
    CallEndReason, CallId, GroupChange, GroupId, GroupInfo, MessageId, PostId, ProfileSummary,
    UserName,
};

use crate::envelope::ReceiptKind;

/// Something the user should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A 1:1 or group message arrived (new, not a duplicate).
    Message(ReceivedMessage),
    /// `user` says they have (delivered) or have seen (read) this user's 1:1 messages
    /// `ids`; only ids whose status moved forward are named.
    Receipt {
        /// The recipient of the messages.
        user: UserName,
        /// Delivered or read.
        kind: ReceiptKind,
        /// The messages whose status changed.
        ids: Vec<MessageId>,
    },
    /// A group's membership changed (someone joined, left or was removed, or the group was
    /// made with this user in it).
    GroupChanged {
        /// The group after the change.
        group: GroupInfo,
        /// What changed.
        change: GroupChange,
    },
    /// A group message was refused because it cannot be genuine: its signature or MAC does
    /// not verify, its sender is not a member, or it replays an earlier message. Nothing
    /// was stored.
    GroupMessageRejected {
        /// The group it claimed to be for.
        group: GroupId,
        /// Who it claimed to be from.
        from: UserName,
        /// Why it was refused.
        reason: String,
    },
    /// A friend came online or went offline.
    Presence {
        /// The friend whose presence changed.
        user: UserName,
        /// Whether they are online now.
        online: bool,
        /// When they went offline (offline events), ms since the Unix epoch.
        last_seen_ms: Option<u64>,
    },
    /// Someone asks to be friends.
    FriendRequest {
        /// Who asks.
        from: UserName,
        /// Their note.
        note: String,
    },
    /// A friend request of this user's was accepted: `user` is a friend now.
    FriendAccepted {
        /// The new friend.
        user: UserName,
    },
    /// `user` ended the friendship.
    FriendRemoved {
        /// The former friend.
        user: UserName,
    },
    /// A friend changed their signature or avatar.
    ProfileChanged {
        /// The friend whose profile changed.
        user: UserName,
        /// Their profile now.
        profile: ProfileSummary,
    },
    /// A friend's identity keys on the relay differ from the ones pinned here: compare
    /// safety numbers before trusting them (`Client::trust`).
    IdentityChanged {
        /// The friend whose keys on the relay no longer match the pinned ones.
        user: UserName,
    },
    /// The friend list could not be brought up to date (on connect, or after a new
    /// friendship), so friends' identity key and profile changes while this peer was away
    /// are not known: any [`ClientEvent::IdentityChanged`] it would have raised is missing.
    /// `Social::friends` checks again.
    FriendSyncFailed {
        /// Why, for people.
        reason: String,
    },
    /// A friend calls: answer with `Calls::answer` or refuse with
    /// `Calls::reject`. Its offer opened, so it is genuinely from `from`.
    CallIncoming {
        /// The call's id, chosen by the caller; `Calls::reject` takes it.
        call: CallId,
        /// Who calls.
        from: UserName,
        /// How long it rings at most, ms.
        ring_left_ms: u64,
    },
    /// The callee took a call this user placed (its answer opened and names the call).
    CallAccepted {
        /// The call this user placed that was taken.
        call: CallId,
    },
    /// A call this user is in, placed or rang by ended.
    CallEnded {
        /// The call that ended: one this user placed, was rung by or was in.
        call: CallId,
        /// Why, as the relay said: `Rejected`, `Cancelled`, `HungUp`, `Timeout` or
        /// `ConnectionLost`.
        reason: CallEndReason,
    },
    /// A call this user missed (durable: also seen after being offline).
    MissedCall {
        /// The missed call's id, as the caller chose it.
        call: CallId,
        /// Who called.
        from: UserName,
        /// Why it was missed.
        reason: CallEndReason,
        /// When, by the relay's clock, ms since the Unix epoch.
        at_ms: u64,
    },
    /// Call signalling that cannot be genuine was ignored: an answer or an end for a call
    /// this user is not in, or an offer or answer that does not open.
    CallSignalIgnored {
        /// The call it named.
        call: CallId,
        /// Why it was ignored.
        reason: String,
    },
    /// A friend posted a moment for this user (its key arrived).
    MomentPosted {
        /// The new post's id; its key is stored, so `Moments::get` can open it.
        post: PostId,
        /// Who posted it.
        author: UserName,
    },
    /// Someone liked this user's post.
    MomentLiked {
        /// The liked post, one of this user's own.
        post: PostId,
        /// Who liked it.
        by: UserName,
        /// When, by the relay's clock, ms since the Unix epoch.
        at_ms: u64,
    },
    /// Someone commented on this user's post, or replied to this user there.
    MomentCommented {
        /// The post commented on: this user's own, or one where they were replied to.
        post: PostId,
        /// The comment as this user sees it, its text decrypted under the post's key.
        comment: crate::moment::MomentCommentView,
    },
    /// A message of this user's left the outbox: the relay queued it (now `Sent` in
    /// history) or refused it for good (`Failed`). Also for messages written offline and
    /// sent on reconnecting.
    OutboxSettled {
        /// The message's id; its history entry says which way it went (`Sent` or `Failed`).
        id: MessageId,
    },
    /// The connection to the relay dropped; the client reconnects with backoff.
    Disconnected {
        /// Why, for people: what QUIC said about the closed connection, or the error.
        reason: String,
    },
    /// The connection is back.
    Reconnected,
}

/// A received 1:1 or group message. Its `Debug` shows the text's length, never the text.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The sender's message id.
    pub id: MessageId,
    /// Who sent it (authenticated by the relay, and by the Olm session).
    pub from: UserName,
    /// Who it was for (this user).
    pub to: UserName,
    /// The text; `None` if it could not be decrypted (kept, see `problem`).
    pub text: Option<String>,
    /// Sender's clock, ms since the Unix epoch (relay's clock if undecryptable).
    pub sent_ms: u64,
    /// Whether the sender's identity key was known, new or changed.
    pub identity: IdentityFlag,
    /// Why the message could not be decrypted, if it could not.
    pub problem: Option<String>,
    /// The group, for a group message.
    pub group: Option<GroupId>,
    /// The file, for a file message (then `text` is `None`).
    pub file: Option<FileRef>,
}

impl ReceivedMessage {
    /// The conversation it belongs to: the group's, or the 1:1 one with the sender.
    pub fn conversation(&self) -> ConversationId {
        match self.group {
            Some(group) => ConversationId::group(group),
            None => ConversationId::direct(&self.from),
        }
    }

    /// Its history entry, stored at `received_ms`: received, or undecryptable with the
    /// problem as its note.
    pub fn history_entry(&self, received_ms: u64) -> HistoryEntry {
        HistoryEntry {
            id: self.id,
            conversation: self.conversation(),
            from: self.from.clone(),
            to: self.to.clone(),
            sent_ms: self.sent_ms,
            received_ms,
            text: self.text.clone(),
            status: if self.text.is_some() || self.file.is_some() {
                EntryStatus::Received
            } else {
                EntryStatus::Undecryptable
            },
            flags: EntryFlags {
                identity: self.identity,
                note: self.problem.clone(),
                read: false,
            },
            group: self.group,
            group_change: None,
            file: self.file.clone(),
            position: 0,
        }
    }
}

impl std::fmt::Debug for ReceivedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedMessage")
            .field("id", &self.id)
            .field("from", &self.from)
            .field("to", &self.to)
            .field(
                "text",
                &self.text.as_ref().map(|t| format!("<{} bytes>", t.len())),
            )
            .field("sent_ms", &self.sent_ms)
            .field("identity", &self.identity)
            .field("problem", &self.problem)
            .field("group", &self.group)
            .field("file", &self.file)
            .finish()
    }
}
