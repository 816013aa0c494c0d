//! What peers say to each other inside the relay's opaque `ciphertext` bytes.
//!
//! [`Envelope`] is the outer layer the relay carries: the sender's Curve25519 identity key
//! and one Olm message. Inside the Olm message is a [`Payload`]: the message id and the
//! sender's timestamp (so neither can be altered by the relay) and the content.
//! A group message is a [`GroupEnvelope`]: the sender's Megolm session id and one Megolm
//! message, whose plaintext is a [`Payload`] naming the group. A member's Megolm session
//! key travels to each other member as [`Content::GroupKey`] inside a 1:1 Olm message.
//! All are MessagePack with named fields, like the wire protocol.

use serde::{Deserialize, Serialize};
use uchat_wire::{CallId, FileId, GroupId, MessageId, PostId};

/// Why an envelope or payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not valid MessagePack of the expected shape.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// "envelope" or "payload".
        what: &'static str,
        /// Decoder message.
        reason: String,
    },
}

/// The outer, relay-visible layer of a 1:1 message (all of it opaque to the relay).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Sender's Curve25519 identity key (32 bytes).
    #[serde(with = "serde_bytes")]
    pub sender_key: Vec<u8>,
    /// Olm message type: 0 pre-key, 1 normal.
    pub message_type: u8,
    /// Olm message body.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// The decrypted content of a 1:1 message. Its `Debug` never shows the content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// Must equal the id the relay delivered the message under.
    pub id: MessageId,
    /// Sender's clock, ms since the Unix epoch.
    pub sent_ms: u64,
    /// What was said.
    pub content: Content,
    /// The group a group message was written to (`None` in 1:1 messages), so the relay
    /// cannot move a message from one group to another.
    #[serde(default)]
    pub group: Option<GroupId>,
    /// The sender of a group message, signed with it: the relay's `from` must match, so a
    /// member who re-shares someone else's session as their own cannot pass off that
    /// person's messages as theirs (`None` in 1:1 messages, where Olm binds the sender).
    #[serde(default)]
    pub sender: Option<uchat_wire::UserName>,
}

/// A file message's content. Its `Debug` never shows the key, the name or the picture.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileContent {
    /// The file on the relay (bound into every chunk's MAC).
    pub file: FileId,
    /// The name the sender gave it (never trusted as a path: see `filename`).
    pub name: String,
    /// Plaintext bytes.
    pub size: u64,
    /// Its MIME type, as the sender saw it (`application/octet-stream` if unknown).
    pub mime: String,
    /// MD5 of the plaintext: the transfer checksum checked after the download
    /// (authenticity comes from every chunk's MAC).
    #[serde(with = "serde_bytes")]
    pub md5: Vec<u8>,
    /// The file key (AES-256 and HMAC-SHA256 keys, 64 bytes).
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// A small JPEG of a picture, shown at once.
    #[serde(default, with = "serde_bytes")]
    pub thumbnail: Option<Vec<u8>>,
    /// A picture's width and height, in pixels.
    #[serde(default)]
    pub dimensions: Option<(u32, u32)>,
}

impl std::fmt::Debug for FileContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileContent")
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
            .finish()
    }
}

/// The outer, relay-visible layer of a group message (all of it opaque to the relay).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEnvelope {
    /// The sender's Megolm session id, to find the inbound session.
    pub session_id: String,
    /// The Megolm message.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// The kinds of content a message can carry. Its `Debug` shows only the kind and size.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
pub enum Content {
    /// Plain text.
    Text {
        /// The text as typed; senders keep it to [`uchat_wire::MAX_TEXT_BYTES`] bytes.
        text: String,
    },
    /// A file (or picture) uploaded to the relay: what the recipient needs to fetch,
    /// check and decrypt it.
    File(FileContent),
    /// A member's Megolm session for a group, shared with one other member.
    GroupKey {
        /// The group whose messages from the sender the session opens.
        group: GroupId,
        /// The session's id.
        session_id: String,
        /// The Megolm session key.
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        /// The membership epoch the session was made for.
        epoch: u64,
    },
    /// A call's offer or answer: the sender's ephemeral X25519 key for the call's voice
    /// keys, bound to the call id (so a relay cannot move it to another call).
    CallKey {
        /// The call the key is for; the receiver checks it against the call it expects.
        call: CallId,
        /// True in the caller's offer, false in the callee's answer.
        offer: bool,
        /// The sender's ephemeral X25519 public key (32 bytes).
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// A post's key, shared by its author with one viewer.
    MomentKey {
        /// The post the key opens, as the author's `MomentPost` named it.
        post: PostId,
        /// The post key (64 bytes).
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// The recipient's word that it has (or that its user has seen) the sender's 1:1
    /// messages `ids`: a receipt, never shown as a message.
    Receipt {
        /// Delivered or read.
        kind: ReceiptKind,
        /// The messages it speaks for (at most [`MAX_RECEIPT_IDS`] are taken in).
        ids: Vec<MessageId>,
    },
    /// Content from a newer peer that this one cannot show.
    #[serde(other, deserialize_with = "skip_unknown_body")]
    Unknown,
}

/// What a receipt says about the messages it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReceiptKind {
    /// The recipient's device has taken them in.
    Delivered,
    /// The recipient has seen them.
    Read,
}

/// Most message ids one receipt speaks for; a receiver ignores the rest.
pub const MAX_RECEIPT_IDS: usize = 512;

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload")
            .field("id", &self.id)
            .field("sent_ms", &self.sent_ms)
            .field("content", &self.content)
            .field("group", &self.group)
            .field("sender", &self.sender)
            .finish()
    }
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Text { text } => write!(f, "Text(<{} bytes>)", text.len()),
            Content::File(file) => write!(f, "{file:?}"),
            Content::GroupKey {
                group,
                session_id,
                epoch,
                ..
            } => write!(f, "GroupKey({group}, {session_id}, epoch {epoch})"),
            Content::CallKey { call, offer, .. } => write!(f, "CallKey({call}, offer {offer})"),
            Content::MomentKey { post, .. } => write!(f, "MomentKey({post})"),
            Content::Receipt { kind, ids } => write!(f, "Receipt({kind:?}, {} ids)", ids.len()),
            Content::Unknown => f.write_str("Unknown"),
        }
    }
}

/// Lets `Content::Unknown` swallow the body of a content kind this peer does not know
/// (plain `#[serde(other)]` accepts only a missing body).
fn skip_unknown_body<'de, D: serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| ())
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain structs of bytes, strings and integers into a Vec cannot fail.
    rmp_serde::to_vec_named(value).unwrap_or_default()
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &'static str) -> Result<T, EnvelopeError> {
    uchat_wire::frame::decode_msgpack(bytes).map_err(|e| EnvelopeError::Malformed {
        what,
        reason: e.to_string(),
    })
}

impl Envelope {
    /// Serializes for the relay.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
    /// Parses bytes from the relay.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        decode(bytes, "envelope")
    }
}

impl GroupEnvelope {
    /// Serializes for the relay.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
    /// Parses bytes from the relay.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        decode(bytes, "group envelope")
    }
}

impl Payload {
    /// Serializes for encryption.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
    /// Parses decrypted bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        decode(bytes, "payload")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_garbage_is_an_error() {
        let p = Payload {
            id: MessageId([3; 16]),
            sent_ms: 42,
            content: Content::Text {
                text: "你好 👋".into(),
            },
            group: None,
            sender: None,
        };
        assert_eq!(Payload::from_bytes(&p.to_bytes()).expect("decodes"), p);
        assert!(Payload::from_bytes(&[0xc1]).is_err());
        assert!(
            !format!("{p:?}").contains("你好"),
            "Debug must not show content"
        );
    }

    #[test]
    fn content_from_a_newer_peer_decodes_as_unknown() {
        #[derive(Serialize)]
        #[serde(tag = "type", content = "body")]
        enum Newer {
            Sticker { pack: String, index: u32 },
        }
        #[derive(Serialize)]
        struct NewerPayload {
            id: MessageId,
            sent_ms: u64,
            content: Newer,
        }
        let bytes = rmp_serde::to_vec_named(&NewerPayload {
            id: MessageId([1; 16]),
            sent_ms: 5,
            content: Newer::Sticker {
                pack: "cats".into(),
                index: 3,
            },
        })
        .expect("encodes");
        let p = Payload::from_bytes(&bytes).expect("decodes");
        assert_eq!(p.content, Content::Unknown);
        assert!(Envelope::from_bytes(b"not msgpack at all").is_err());
    }
}
