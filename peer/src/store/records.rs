//! The records the peer's local store keeps: plain structs that are the on-disk values,
//! encoded as MessagePack with named fields (`rmp_serde::to_vec_named`).
//!
//! Compatibility rules, as for the wire: enum variants are stored by name, so never rename,
//! remove or reuse one; fields added later get `#[serde(default)]`.
//!
//! Secrets (session tokens, sealed pickles) and message plaintext never reach `Debug`:
//! those impls are written by hand and print lengths only.

use std::fmt;

use serde::{Deserialize, Serialize};
use uchat_wire::{
    FileId, GroupChange, GroupId, GroupInfo, IdentityKeys, KeyShare, MessageId, ProfileSummary,
    UserName,
};

/// The peer's own account, as kept in its profile.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// Who is logged in here.
    pub username: UserName,
    /// The relay, as `HOST:PORT`.
    pub relay: String,
    /// The session token for resuming; empty after logout.
    #[serde(with = "serde_bytes")]
    pub token: Vec<u8>,
    /// The Olm account, sealed by the caller under the password-derived key.
    pub account_pickle: String,
    /// The salt of the password key derivation.
    #[serde(with = "serde_bytes")]
    pub kdf_salt: Vec<u8>,
}

impl fmt::Debug for ProfileRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileRecord")
            .field("username", &self.username)
            .field("relay", &self.relay)
            .field("token", &format_args!("<{} bytes>", self.token.len()))
            .field(
                "account_pickle",
                &format_args!("<{} bytes>", self.account_pickle.len()),
            )
            .field("kdf_salt", &format_args!("<{} bytes>", self.kdf_salt.len()))
            .finish()
    }
}

/// A contact's identity keys as pinned on first use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedIdentity {
    /// The pinned public keys.
    pub identity: IdentityKeys,
    /// When they were pinned, in ms since the Unix epoch.
    pub pinned_ms: u64,
}

/// One Olm session with a contact, sealed by the caller (opaque here).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// vodozemac's session id.
    pub session_id: String,
    /// The sealed session pickle.
    pub pickle: String,
    /// When the session last encrypted or decrypted successfully, in ms since the Unix epoch.
    pub last_used_ms: u64,
    /// The contact's Curve25519 identity key this session was made with. Only sessions
    /// whose key is the contact's pinned key may be used to send.
    #[serde(default, with = "serde_bytes")]
    pub peer_key: Vec<u8>,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("session_id", &self.session_id)
            .field("pickle", &format_args!("<{} bytes>", self.pickle.len()))
            .field("last_used_ms", &self.last_used_ms)
            .field("peer_key", &format_args!("<{} bytes>", self.peer_key.len()))
            .finish()
    }
}

/// Where a history entry stands. Stored by variant name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryStatus {
    /// Outgoing, waiting in the outbox for the relay.
    Pending,
    /// Outgoing, durably queued by the relay.
    Sent,
    /// Incoming and decrypted.
    Received,
    /// Incoming but could not be decrypted; kept and shown, never dropped.
    Undecryptable,
    /// Outgoing, refused by the relay for good (the reason is in [`EntryFlags::note`]).
    Failed,
    /// Outgoing, and the recipient's device said it has it (a delivery receipt).
    Delivered,
    /// Outgoing, and the recipient said they have seen it (a read receipt).
    Read,
}

impl EntryStatus {
    /// How far an outgoing message has come: pending, sent, delivered, read (`None` for
    /// incoming and failed entries). An outgoing status only ever moves forward, so a
    /// receipt that overtakes the relay's reply to the send is not undone by it.
    pub fn progress(self) -> Option<u8> {
        match self {
            EntryStatus::Pending => Some(0),
            EntryStatus::Sent => Some(1),
            EntryStatus::Delivered => Some(2),
            EntryStatus::Read => Some(3),
            EntryStatus::Received | EntryStatus::Undecryptable | EntryStatus::Failed => None,
        }
    }

    /// Whether the relay has this outgoing message (sent, delivered or read).
    pub fn is_sent(self) -> bool {
        self.progress().is_some_and(|p| p >= 1)
    }
}

/// What the peer knew about the sender's identity key when the entry was stored.
/// Stored by variant name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IdentityFlag {
    /// It matches the pinned key.
    #[default]
    Known,
    /// First contact: the key was pinned now (trust on first use).
    New,
    /// It differs from the pinned key (or from the relay's record on first contact).
    Changed,
}

/// Annotations of a history entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryFlags {
    /// The sender's identity status.
    pub identity: IdentityFlag,
    /// Why the message could not be decrypted or sent, if so.
    #[serde(default)]
    pub note: Option<String>,
    /// Incoming: this user has seen it (and a read receipt went back for a 1:1 message).
    #[serde(default)]
    pub read: bool,
}

/// Which conversation a history entry belongs to: a contact's name for a 1:1 chat, or `#`
/// and a group's id. Stored as that text, so entries written before groups existed (whose
/// conversation was a user name) read back unchanged.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(String);

impl ConversationId {
    /// The 1:1 conversation with `user`.
    pub fn direct(user: &UserName) -> Self {
        Self(user.as_str().to_string())
    }

    /// The conversation of `group`.
    pub fn group(group: GroupId) -> Self {
        Self(format!("#{group}"))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The group, if this is a group's conversation.
    pub fn group_id(&self) -> Option<GroupId> {
        self.0
            .strip_prefix('#')
            .and_then(|hex| GroupId::from_hex(hex).ok())
    }
}

impl From<&UserName> for ConversationId {
    fn from(user: &UserName) -> Self {
        Self::direct(user)
    }
}

impl fmt::Debug for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conversation({})", self.0)
    }
}

/// One message in the peer's local history.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The sender's message id.
    pub id: MessageId,
    /// The conversation it belongs to (for 1:1 chats, the other user).
    pub conversation: ConversationId,
    /// The sender (for a membership notice, who made the change).
    pub from: UserName,
    /// The recipient; in a group's conversation, the local user.
    pub to: UserName,
    /// The sender's clock when it was written, in ms since the Unix epoch.
    pub sent_ms: u64,
    /// For incoming messages, the local clock when stored; for outgoing ones, the local
    /// clock when written, replaced by the relay's clock once the relay has queued it
    /// ([`crate::PeerStore::settle_all`]). In ms since the Unix epoch.
    pub received_ms: u64,
    /// The text, if any (`None` when it could not be decrypted).
    #[serde(default)]
    pub text: Option<String>,
    /// Where a message has got to: pending, sent, delivered, read or failed if outgoing;
    /// received or undecryptable if incoming.
    pub status: EntryStatus,
    /// The sender's identity status, why the message failed if it did, and whether it was
    /// read.
    pub flags: EntryFlags,
    /// The group, for an entry of a group's conversation.
    #[serde(default)]
    pub group: Option<GroupId>,
    /// For a membership notice (someone joined, left or was removed) instead of a
    /// message: what changed.
    #[serde(default)]
    pub group_change: Option<GroupChange>,
    /// For a file message: the file.
    #[serde(default)]
    pub file: Option<FileRef>,
    /// Where the store keeps it: the store's count of history entries when it was
    /// appended, so entries sort by it in the order they were stored. It is the entry's
    /// key, not part of the stored record: filled in when an entry is read, and ignored
    /// (0 by convention) in one about to be appended.
    #[serde(skip)]
    pub position: u64,
}

/// A file a message carries, as the history keeps it: enough to fetch, check and decrypt
/// it. Its `Debug` never shows the key, the name or the picture.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// The file on the relay.
    pub file: FileId,
    /// The name its sender gave it (made safe only when it is saved).
    pub name: String,
    /// Plaintext bytes.
    pub size: u64,
    /// Its MIME type.
    pub mime: String,
    /// MD5 of the plaintext.
    #[serde(with = "serde_bytes")]
    pub md5: Vec<u8>,
    /// The file key (64 bytes).
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// A small JPEG of a picture.
    #[serde(default, with = "serde_bytes")]
    pub thumbnail: Option<Vec<u8>>,
    /// A picture's width and height.
    #[serde(default)]
    pub dimensions: Option<(u32, u32)>,
    /// Where it was saved, once downloaded and checked.
    #[serde(default)]
    pub saved_to: Option<String>,
}

impl fmt::Debug for FileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileRef")
            .field("file", &self.file)
            .field("name", &format_args!("<{} bytes>", self.name.len()))
            .field("size", &self.size)
            .field("mime", &self.mime)
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field(
                "thumbnail",
                &self
                    .thumbnail
                    .as_ref()
                    .map(|t| format!("<{} bytes>", t.len())),
            )
            .field("saved_to", &self.saved_to.is_some())
            .finish()
    }
}

/// An upload that started and has not yet become a message: what its next run needs to
/// resume it (the same key and id, so the relay's bytes still fit).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpload {
    /// The file as the message will carry it.
    pub file: FileRef,
    /// The local file being sent.
    pub path: String,
    /// Its modification time when the upload started, ms since the Unix epoch.
    pub modified_ms: u64,
    /// Whom or which group it goes to.
    pub conversation: ConversationId,
    /// When the upload started, ms since the Unix epoch.
    pub created_ms: u64,
    /// The file message that carries it, once that is in the outbox: a run that finds this
    /// sends or reports that message rather than the file again. The record is forgotten
    /// a week after the upload started (`PeerStore::forget_sent_uploads_before`).
    #[serde(default)]
    pub sent_as: Option<MessageId>,
}

impl fmt::Debug for PendingUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingUpload")
            .field("file", &self.file)
            .field("conversation", &self.conversation)
            .field("sent_as", &self.sent_as)
            .finish()
    }
}

/// A download under way: where its partial file is and how many chunks it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDownload {
    /// The file being fetched, as the message or moment that offered it named it.
    pub file: FileId,
    /// The partial file, in the destination folder.
    pub part_path: String,
    /// Where the file goes once checked.
    pub final_path: String,
    /// Chunks verified and written to the partial file.
    pub chunks: u64,
}

impl fmt::Debug for HistoryEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryEntry")
            .field("id", &self.id)
            .field("conversation", &self.conversation)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("sent_ms", &self.sent_ms)
            .field("received_ms", &self.received_ms)
            .field(
                "text",
                &self.text.as_ref().map(|t| format!("<{} bytes>", t.len())),
            )
            .field("status", &self.status)
            .field("flags", &self.flags)
            .field("group", &self.group)
            .field("group_change", &self.group_change)
            .field("file", &self.file)
            .finish()
    }
}

/// An encrypted message waiting to be handed to the relay.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The message id (the same as its history entry's).
    pub id: MessageId,
    /// The recipient of a 1:1 message; for a group message, the local user (see `group`).
    pub to: UserName,
    /// The envelope bytes for the relay.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
    /// When it was written, in ms since the Unix epoch.
    pub created_ms: u64,
    /// For a group message: the group, the epoch it was encrypted for and the key shares
    /// that go with it (`to` is then the local user and `ciphertext` the Megolm envelope).
    #[serde(default)]
    pub group: Option<GroupOutbox>,
}

/// The group part of an [`OutboxEntry`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOutbox {
    /// The group the message is for; the relay fans it out to every other member.
    pub group: GroupId,
    /// The membership epoch the sender's session was shared for.
    pub epoch: u64,
    /// The sender's Megolm session the message is encrypted with.
    #[serde(default)]
    pub session_id: String,
    /// Session keys for members the relay has not yet taken one from.
    pub key_shares: Vec<KeyShare>,
    /// True if some member's key share could not be made for want of the relay (no Olm
    /// session with them yet, and offline): the message is encrypted again before it goes.
    #[serde(default)]
    pub incomplete: bool,
}

impl fmt::Debug for GroupOutbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupOutbox")
            .field("group", &self.group)
            .field("epoch", &self.epoch)
            .field("session_id", &self.session_id)
            .field("key_shares", &self.key_shares.len())
            .field("incomplete", &self.incomplete)
            .finish()
    }
}

/// A group as the peer knows it, from two sources that may differ for a moment: the events
/// taken in so far, in queue order (`seen`: who could send the next queued message, and
/// whom keys are shared with, since every change in it came with a notice in the group's
/// history), and the newest state the relay reported at all (`latest`, perhaps fetched
/// ahead of its events: for names and lists only, never for keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalGroup {
    /// The group after the last membership event taken in, if one was.
    #[serde(default)]
    pub seen: Option<GroupInfo>,
    /// The group at the highest epoch known.
    pub latest: GroupInfo,
}

/// This peer's outbound Megolm session for one group, sealed by the caller.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundGroupRecord {
    /// The session's id.
    pub session_id: String,
    /// The sealed session pickle.
    pub pickle: String,
    /// The membership epoch it was made for.
    pub epoch: u64,
    /// When it was made, ms since the Unix epoch.
    pub created_ms: u64,
    /// Messages it has encrypted.
    pub messages: u32,
    /// Members whose key share the relay has taken (queued for them): they need no other.
    /// A share that was only made, not delivered, goes with every message until one is.
    pub shared_with: Vec<UserName>,
    /// An inbound copy of the session from its first message, sealed by the caller: what
    /// every key share is made from, so a member who gets the key late still reads the
    /// session from the start.
    #[serde(default)]
    pub share_pickle: String,
}

impl fmt::Debug for OutboundGroupRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundGroupRecord")
            .field("session_id", &self.session_id)
            .field("pickle", &format_args!("<{} bytes>", self.pickle.len()))
            .field("epoch", &self.epoch)
            .field("created_ms", &self.created_ms)
            .field("messages", &self.messages)
            .field("shared_with", &self.shared_with)
            .field(
                "share_pickle",
                &format_args!("<{} bytes>", self.share_pickle.len()),
            )
            .finish()
    }
}

/// A Megolm session another member shared with this peer, sealed by the caller.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundGroupRecord {
    /// The group whose messages the session is for.
    pub group: GroupId,
    /// The member who shared it (over Olm), the only one whose messages it may open.
    pub sender: UserName,
    /// The session's id.
    pub session_id: String,
    /// The sealed session pickle.
    pub pickle: String,
    /// The message indexes opened so far (a replay of one is refused).
    pub seen: Vec<u32>,
    /// The membership epoch the sender made it for.
    pub epoch: u64,
    /// When it arrived, ms since the Unix epoch.
    pub received_ms: u64,
}

impl fmt::Debug for InboundGroupRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundGroupRecord")
            .field("group", &self.group)
            .field("sender", &self.sender)
            .field("session_id", &self.session_id)
            .field("pickle", &format_args!("<{} bytes>", self.pickle.len()))
            .field("seen", &self.seen.len())
            .field("epoch", &self.epoch)
            .field("received_ms", &self.received_ms)
            .finish()
    }
}

impl fmt::Debug for OutboxEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxEntry")
            .field("id", &self.id)
            .field("to", &self.to)
            .field(
                "ciphertext",
                &format_args!("<{} bytes>", self.ciphertext.len()),
            )
            .field("created_ms", &self.created_ms)
            .field("group", &self.group)
            .finish()
    }
}

/// The other side's public call key from an opened call offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallOfferRecord {
    /// The caller; [`crate::PeerStore::call_offer`] returns the record only to a lookup
    /// naming them.
    pub from: UserName,
    /// The caller's ephemeral X25519 public key.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// When it was opened, ms since the Unix epoch.
    pub received_ms: u64,
}

/// A post's key as a peer keeps it: of a post it wrote, or one shared with it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentKeyRecord {
    /// Who posted it.
    pub author: UserName,
    /// The post key (64 bytes: AES-256 and HMAC-SHA256).
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// When this peer got it, ms since the Unix epoch.
    pub received_ms: u64,
}

impl fmt::Debug for MomentKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MomentKeyRecord")
            .field("author", &self.author)
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field("received_ms", &self.received_ms)
            .finish()
    }
}

/// A picture of a post this peer opened, so that it can be downloaded by its file id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MomentImageRecord {
    /// The post the picture is in, one this peer opened.
    pub post: uchat_wire::PostId,
    /// Its author, who uploaded the picture.
    pub author: UserName,
    /// The picture as the post describes it (its key included).
    pub file: FileRef,
}

/// What the peer remembers about one contact: the last profile it saw and the avatar image
/// of that version.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRecord {
    /// The contact's username, the key the record is stored under (one record per user).
    pub user: UserName,
    /// Whether the contact is a friend (as the relay last said).
    pub friend: bool,
    /// When the friendship began, ms since the Unix epoch (0 if not a friend).
    pub since_ms: u64,
    /// The contact's profile as last seen.
    pub profile: ProfileSummary,
    /// The avatar image of `profile.avatar_version`, if downloaded.
    #[serde(default, with = "serde_bytes")]
    pub avatar: Option<Vec<u8>>,
}

impl fmt::Debug for ContactRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContactRecord")
            .field("user", &self.user)
            .field("friend", &self.friend)
            .field("since_ms", &self.since_ms)
            .field("profile", &self.profile)
            .field(
                "avatar",
                &self.avatar.as_ref().map(|a| format!("<{} bytes>", a.len())),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Enum variants are stored by name, so adding or moving one never changes the meaning
    /// of stored bytes.
    #[test]
    fn enums_are_stored_by_variant_name() {
        let bytes = rmp_serde::to_vec_named(&EntryStatus::Undecryptable).expect("encodes");
        assert_eq!(bytes, rmp_serde::to_vec("Undecryptable").expect("encodes"));
        let bytes = rmp_serde::to_vec_named(&IdentityFlag::Changed).expect("encodes");
        assert_eq!(bytes, rmp_serde::to_vec("Changed").expect("encodes"));
    }

    #[test]
    fn debug_shows_lengths_not_secrets_or_plaintext() {
        let profile = ProfileRecord {
            username: UserName::parse("alice").expect("valid"),
            relay: "relay:1".into(),
            token: b"secret-token".to_vec(),
            account_pickle: "sealed-account".into(),
            kdf_salt: vec![7; 16],
        };
        let shown = format!("{profile:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("sealed"),
            "{shown}"
        );
        let entry = HistoryEntry {
            id: MessageId([1; 16]),
            conversation: ConversationId::direct(&UserName::parse("bob").expect("valid")),
            from: UserName::parse("bob").expect("valid"),
            to: UserName::parse("alice").expect("valid"),
            sent_ms: 1,
            received_ms: 2,
            text: Some("attack at dawn".into()),
            status: EntryStatus::Received,
            flags: EntryFlags::default(),
            group: None,
            group_change: None,
            file: None,
            position: 0,
        };
        assert!(!format!("{entry:?}").contains("dawn"));
    }

    #[test]
    fn contact_debug_shows_the_avatar_length_only() {
        let contact = ContactRecord {
            user: UserName::parse("alice").expect("valid"),
            friend: true,
            since_ms: 5,
            profile: ProfileSummary::default(),
            avatar: Some(vec![0xAB; 3]),
        };
        let shown = format!("{contact:?}");
        assert!(
            shown.contains("<3 bytes>") && !shown.contains("171"),
            "{shown}"
        );
    }

    #[test]
    fn a_contact_without_an_avatar_field_decodes_with_none() {
        #[derive(Serialize)]
        struct Old {
            user: UserName,
            friend: bool,
            since_ms: u64,
            profile: ProfileSummary,
        }
        let old = Old {
            user: UserName::parse("alice").expect("valid"),
            friend: false,
            since_ms: 0,
            profile: ProfileSummary::default(),
        };
        let bytes = rmp_serde::to_vec_named(&old).expect("encodes");
        let decoded: ContactRecord = rmp_serde::from_slice(&bytes).expect("decodes");
        assert_eq!(decoded.avatar, None);
    }
}
