//! Events the relay pushes on its unidirectional stream.

use serde::{Deserialize, Serialize};

use crate::ids::{MessageId, Seq, UserName};

/// One pushed event. Durable events carry `seq` and stay queued until acknowledged;
/// ephemeral ones (presence) have none and need no acknowledgement.
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
    /// A user came online or went offline.
    Presence {
        /// Who.
        user: UserName,
        /// Whether they are online now.
        online: bool,
    },
    /// An event this peer does not know (from a newer relay); skipped and acknowledged.
    #[serde(other, deserialize_with = "crate::msg::skip_unknown_body")]
    Unknown,
}
