//! What one voice datagram carries once opened: an Opus frame, an RTT probe or its echo,
//! or the receiver's report. A kind byte, then big-endian fields. Pure.

/// A decoded voice packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoicePacket {
    /// One 20 ms Opus frame.
    Audio {
        /// The frame's index since the sender's media started.
        frame: u32,
        /// The sender's call clock (ms) when the frame was complete.
        sent_ms: u32,
        /// The Opus packet.
        opus: Vec<u8>,
    },
    /// An RTT probe.
    Ping {
        /// The prober's call clock (ms).
        sent_ms: u32,
    },
    /// The answer to a probe.
    Pong {
        /// The probe's `sent_ms`, echoed.
        echo_ms: u32,
        /// The answerer's call clock (ms) when it answered.
        at_ms: u32,
    },
    /// What the receiver measured over the last second, for the sender's encoder.
    Report {
        /// Frames lost, in thousandths.
        loss_permille: u16,
        /// Interarrival jitter, ms.
        jitter_ms: u16,
    },
}

const AUDIO: u8 = 1;
const PING: u8 = 2;
const PONG: u8 = 3;
const REPORT: u8 = 4;

/// Why a packet did not decode (only a peer with the call key can send one, so this
/// means a faulty or newer peer).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("voice packet of {len} bytes with kind {kind} is not one this build understands")]
pub struct PacketError {
    kind: u8,
    len: usize,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

impl VoicePacket {
    /// The packet's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        match self {
            VoicePacket::Audio {
                frame,
                sent_ms,
                opus,
            } => {
                out.push(AUDIO);
                out.extend_from_slice(&frame.to_be_bytes());
                out.extend_from_slice(&sent_ms.to_be_bytes());
                out.extend_from_slice(opus);
            }
            VoicePacket::Ping { sent_ms } => {
                out.push(PING);
                out.extend_from_slice(&sent_ms.to_be_bytes());
            }
            VoicePacket::Pong { echo_ms, at_ms } => {
                out.push(PONG);
                out.extend_from_slice(&echo_ms.to_be_bytes());
                out.extend_from_slice(&at_ms.to_be_bytes());
            }
            VoicePacket::Report {
                loss_permille,
                jitter_ms,
            } => {
                out.push(REPORT);
                out.extend_from_slice(&loss_permille.to_be_bytes());
                out.extend_from_slice(&jitter_ms.to_be_bytes());
            }
        }
        out
    }

    /// Decodes a packet.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PacketError> {
        let kind = bytes.first().copied().unwrap_or(0);
        let error = || PacketError {
            kind,
            len: bytes.len(),
        };
        let packet = match kind {
            AUDIO => VoicePacket::Audio {
                frame: u32_at(bytes, 1).ok_or_else(error)?,
                sent_ms: u32_at(bytes, 5).ok_or_else(error)?,
                opus: bytes.get(9..).ok_or_else(error)?.to_vec(),
            },
            PING => VoicePacket::Ping {
                sent_ms: u32_at(bytes, 1).ok_or_else(error)?,
            },
            PONG => VoicePacket::Pong {
                echo_ms: u32_at(bytes, 1).ok_or_else(error)?,
                at_ms: u32_at(bytes, 5).ok_or_else(error)?,
            },
            REPORT => VoicePacket::Report {
                loss_permille: u16_at(bytes, 1).ok_or_else(error)?,
                jitter_ms: u16_at(bytes, 3).ok_or_else(error)?,
            },
            _ => return Err(error()),
        };
        Ok(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_truncations_fail_cleanly() {
        let packets = [
            VoicePacket::Audio {
                frame: 9,
                sent_ms: 180,
                opus: vec![1, 2, 3],
            },
            VoicePacket::Ping { sent_ms: 5 },
            VoicePacket::Pong {
                echo_ms: 5,
                at_ms: 77,
            },
            VoicePacket::Report {
                loss_permille: 100,
                jitter_ms: 30,
            },
        ];
        for packet in packets {
            let bytes = packet.to_bytes();
            assert_eq!(VoicePacket::from_bytes(&bytes), Ok(packet.clone()));
            for cut in 0..bytes.len().min(5) {
                assert!(VoicePacket::from_bytes(&bytes[..cut]).is_err(), "{cut}");
            }
        }
        assert!(VoicePacket::from_bytes(&[99, 0, 0, 0, 0]).is_err());
    }
}
