//! Voice calls: the signalling types and the voice datagram's routing header.
//!
//! A call is set up over the relay with requests ([`crate::Request::CallInvite`],
//! [`crate::Request::CallAnswer`], [`crate::Request::CallReject`],
//! [`crate::Request::CallHangup`]) and ephemeral pushes (`CallIncoming`, `CallAccepted`,
//! `CallEnded`); a call the callee never took leaves a durable `MissedCall` in their queue.
//! The offer and the answer are opaque to the relay: Olm envelopes that carry each side's
//! ephemeral X25519 key, from which the peers derive the call's voice keys.
//!
//! Voice travels in QUIC datagrams on each leg's connection to the relay. A datagram is a
//! [`VOICE_HEADER_BYTES`]-byte routing header, the leg's handle, followed by bytes the relay
//! does not read: it looks the handle up, writes the other leg's handle in its place and
//! sends the datagram on the other leg's connection.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a call ended (or never started).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEndReason {
    /// The callee refused the call.
    Rejected,
    /// The caller gave up before the callee answered.
    Cancelled,
    /// The callee is in another call.
    Busy,
    /// Nobody answered within the relay's ring timeout.
    Timeout,
    /// One side hung up.
    HungUp,
    /// The callee is not online; a missed call waits in their queue.
    Offline,
    /// One side's connection to the relay died.
    ConnectionLost,
    /// A reason this build does not know (sent by a newer relay).
    #[serde(other)]
    Unknown,
}

impl CallEndReason {
    /// The reason's stable name, as the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallEndReason::Rejected => "rejected",
            CallEndReason::Cancelled => "cancelled",
            CallEndReason::Busy => "busy",
            CallEndReason::Timeout => "timeout",
            CallEndReason::HungUp => "hung_up",
            CallEndReason::Offline => "offline",
            CallEndReason::ConnectionLost => "connection_lost",
            CallEndReason::Unknown => "unknown",
        }
    }
}

impl fmt::Display for CallEndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bytes of a voice datagram's routing header: the leg handle, a big-endian `u32`.
pub const VOICE_HEADER_BYTES: usize = 4;

/// Largest offer or answer the relay carries (an Olm envelope of a few hundred bytes).
pub const MAX_CALL_SIGNAL_BYTES: usize = 8 * 1024;

/// The leg handle at the front of a voice datagram, or `None` if it is too short.
pub fn voice_leg(datagram: &[u8]) -> Option<u32> {
    let head: [u8; VOICE_HEADER_BYTES] = datagram.get(..VOICE_HEADER_BYTES)?.try_into().ok()?;
    Some(u32::from_be_bytes(head))
}

/// A voice datagram: `leg`'s handle, then `body`.
pub fn voice_datagram(leg: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(VOICE_HEADER_BYTES + body.len());
    out.extend_from_slice(&leg.to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_names_its_leg_and_short_ones_name_none() {
        let d = voice_datagram(0xdead_beef, b"opaque");
        assert_eq!(voice_leg(&d), Some(0xdead_beef));
        assert_eq!(&d[VOICE_HEADER_BYTES..], b"opaque");
        assert_eq!(voice_leg(&[1, 2, 3]), None);
    }
}
