//! Events the relay pushes on its unidirectional stream.

use serde::{Deserialize, Serialize};

use crate::ids::{MessageId, Seq, UserName};
use crate::msg::social::ProfileSummary;

/// One pushed event. Durable events carry `seq` and stay queued until acknowledged;
/// ephemeral ones (presence, profile and identity changes) have none and need no
/// acknowledgement: a peer that was offline learns those from `Request::Friends`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    /// Position in the user's durable queue, or `None` for an ephemeral event.
    #[serde(default)]
    pub seq: Option<Seq>,
    /// The relay's clock when the event was queued, in ms since the Unix epoch.
    pub relay_ts_ms: u64,
    /// What happened.
    pub event: PushEvent,
}

/// What a pushed event says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
pub enum PushEvent {
    /// An end-to-end encrypted 1:1 message.
    Message {
        /// The authenticated sender.
        from: UserName,
        /// The sender's message id.
        id: MessageId,
        /// Opaque to the relay.
        #[serde(with = "serde_bytes")]
        ciphertext: Vec<u8>,
    },
    /// A friend came online or went offline (ephemeral).
    Presence {
        /// Who.
        user: UserName,
        /// Whether they are online now.
        online: bool,
        /// When they went offline, ms since the Unix epoch (offline events only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seen_ms: Option<u64>,
    },
    /// Someone asks to become friends (durable).
    FriendRequest {
        /// Who asks.
        from: UserName,
        /// Their note.
        note: String,
    },
    /// A friend request of this user's was accepted, or two requests met (durable).
    FriendAccepted {
        /// The new friend.
        by: UserName,
    },
    /// A friend ended the friendship (durable).
    FriendRemoved {
        /// The former friend.
        by: UserName,
    },
    /// A friend changed their profile (ephemeral).
    Profile {
        /// Who.
        user: UserName,
        /// Their profile now.
        profile: ProfileSummary,
    },
    /// A friend published new identity keys (a new device); compare safety numbers
    /// (ephemeral).
    IdentityChanged {
        /// Who.
        user: UserName,
    },
    /// An event this peer does not know (from a newer relay); skipped and acknowledged.
    #[serde(other, deserialize_with = "crate::msg::skip_unknown_body")]
    Unknown,
}
