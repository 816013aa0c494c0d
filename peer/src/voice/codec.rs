//! Opus at 48 kHz mono in 20 ms frames, with in-band FEC and a bitrate that follows the
//! loss the other side reports; and the decoder's three ways to fill a frame: decode it,
//! recover it from the next packet's FEC data, or conceal it.

use opus::{Application, Bitrate, Channels, Signal};

/// Samples per second.
pub const SAMPLE_RATE: u32 = 48_000;
/// Milliseconds per frame.
pub const FRAME_MS: u32 = 20;
/// Samples per frame (mono).
pub const FRAME_SAMPLES: usize = (SAMPLE_RATE / 1000 * FRAME_MS) as usize;
/// Opus's encoder lookahead at 48 kHz (312 samples): how far the decoded sound lags.
pub const OPUS_LOOKAHEAD_MS: f64 = 6.5;
/// Largest Opus packet this encoder writes.
const MAX_PACKET_BYTES: usize = 1000;

/// An Opus failure (bad arguments or a corrupt packet from a faulty peer).
#[derive(Debug, thiserror::Error)]
#[error("opus {what} failed: {source}")]
pub struct CodecError {
    what: &'static str,
    #[source]
    source: opus::Error,
}

fn failed(what: &'static str) -> impl FnOnce(opus::Error) -> CodecError {
    move |source| CodecError { what, source }
}

/// The bitrate (bit/s) for a reported loss: lower as loss rises, which eases congestion
/// and leaves the FEC copy its share of a smaller packet, never below what keeps speech
/// clear.
pub fn bitrate_for_loss(loss: f64) -> i32 {
    match loss {
        l if l < 0.02 => 32_000,
        l if l < 0.05 => 28_000,
        l if l < 0.10 => 24_000,
        _ => 20_000,
    }
}

/// The loss percentage the encoder plans its FEC for: what was measured, with a floor so a
/// first loss burst on a clean path is covered too.
pub fn fec_loss_percent(loss: f64) -> i32 {
    ((loss * 100.0).ceil() as i32).clamp(5, 40)
}

/// The sending half: PCM frames in, Opus packets out.
pub struct VoiceEncoder {
    encoder: opus::Encoder,
    bitrate: i32,
    loss_percent: i32,
}

impl std::fmt::Debug for VoiceEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceEncoder")
            .field("bitrate", &self.bitrate)
            .field("loss_percent", &self.loss_percent)
            .finish()
    }
}

impl VoiceEncoder {
    /// A VoIP encoder with in-band FEC on, planned for no loss yet.
    pub fn new() -> Result<Self, CodecError> {
        let mut encoder = opus::Encoder::new(SAMPLE_RATE, Channels::Mono, Application::Voip)
            .map_err(failed("encoder setup"))?;
        encoder
            .set_inband_fec(true)
            .map_err(failed("enabling FEC"))?;
        encoder
            .set_signal(Signal::Voice)
            .map_err(failed("setting the signal type"))?;
        let mut this = Self {
            encoder,
            bitrate: 0,
            loss_percent: 0,
        };
        this.adapt(0.0)?;
        Ok(this)
    }

    /// Follows the loss the receiver reported (a fraction, 0 to 1).
    pub fn adapt(&mut self, loss: f64) -> Result<(), CodecError> {
        let bitrate = bitrate_for_loss(loss);
        let loss_percent = fec_loss_percent(loss);
        if bitrate != self.bitrate {
            self.encoder
                .set_bitrate(Bitrate::Bits(bitrate))
                .map_err(failed("setting the bitrate"))?;
            self.bitrate = bitrate;
        }
        if loss_percent != self.loss_percent {
            self.encoder
                .set_packet_loss_perc(loss_percent)
                .map_err(failed("setting the expected loss"))?;
            self.loss_percent = loss_percent;
        }
        Ok(())
    }

    /// The target bitrate now, bit/s.
    pub fn bitrate(&self) -> i32 {
        self.bitrate
    }

    /// Encodes one frame of [`FRAME_SAMPLES`] samples.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<Vec<u8>, CodecError> {
        self.encoder
            .encode_vec(pcm, MAX_PACKET_BYTES)
            .map_err(failed("encoding"))
    }
}

/// Whether an Opus packet can carry FEC data for the frame before it: only SILK and hybrid
/// packets can (TOC configurations 0 to 15), CELT-only ones cannot.
pub fn may_carry_fec(packet: &[u8]) -> bool {
    packet.first().is_some_and(|toc| toc >> 3 < 16)
}

/// The receiving half.
pub struct VoiceDecoder {
    decoder: opus::Decoder,
}

impl std::fmt::Debug for VoiceDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceDecoder").finish_non_exhaustive()
    }
}

impl VoiceDecoder {
    /// A 48 kHz mono decoder.
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self {
            decoder: opus::Decoder::new(SAMPLE_RATE, Channels::Mono)
                .map_err(failed("decoder setup"))?,
        })
    }

    /// Decodes `packet` into `out` (one frame).
    pub fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        self.decoder
            .decode(packet, out, false)
            .map_err(failed("decoding"))?;
        Ok(())
    }

    /// Rebuilds a lost frame from the FEC data in the packet that followed it.
    pub fn recover(&mut self, next_packet: &[u8], out: &mut [i16]) -> Result<(), CodecError> {
        self.decoder
            .decode(next_packet, out, true)
            .map_err(failed("FEC decoding"))?;
        Ok(())
    }

    /// Fills a lost frame with Opus's loss concealment.
    pub fn conceal(&mut self, out: &mut [i16]) -> Result<(), CodecError> {
        self.decoder
            .decode(&[], out, false)
            .map_err(failed("concealment"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::analysis::{align, speech_like};

    /// Encodes and decodes `signal`, losing the frames `lost` picks; a lost frame is
    /// recovered from the next one's FEC data (or concealed, if the next is lost too).
    fn round_trip(signal: &[i16], lost: impl Fn(usize) -> bool) -> (Vec<i16>, usize) {
        let mut encoder = VoiceEncoder::new().expect("encoder");
        encoder.adapt(0.10).expect("adapts");
        let mut decoder = VoiceDecoder::new().expect("decoder");
        let packets: Vec<Vec<u8>> = signal
            .chunks(FRAME_SAMPLES)
            .filter(|c| c.len() == FRAME_SAMPLES)
            .map(|c| encoder.encode(c).expect("encodes"))
            .collect();
        let mut out = Vec::new();
        let mut recovered = 0;
        let mut frame = vec![0i16; FRAME_SAMPLES];
        for (i, packet) in packets.iter().enumerate() {
            if !lost(i) {
                decoder.decode(packet, &mut frame).expect("decodes");
            } else if let Some(next) = packets.get(i + 1).filter(|_| !lost(i + 1)) {
                assert!(may_carry_fec(next));
                decoder.recover(next, &mut frame).expect("recovers");
                recovered += 1;
            } else {
                decoder.conceal(&mut frame).expect("conceals");
            }
            out.extend_from_slice(&frame);
        }
        (out, recovered)
    }

    #[test]
    fn the_lookahead_constant_is_what_libopus_reports() {
        let mut encoder = VoiceEncoder::new().expect("encoder");
        let samples = encoder.encoder.get_lookahead().expect("lookahead");
        assert_eq!(
            f64::from(samples) * 1000.0 / f64::from(SAMPLE_RATE),
            OPUS_LOOKAHEAD_MS
        );
    }

    #[test]
    fn speech_survives_opus_and_ten_percent_loss_with_fec() {
        let signal = speech_like(4.0, 7);
        let (clean, _) = round_trip(&signal, |_| false);
        let clean_fit = align(&signal, &clean, 2_000);
        let (lossy, recovered) = round_trip(&signal, |i| (i * 7919) % 10 == 3);
        let lossy_fit = align(&signal, &lossy, 2_000);
        eprintln!("clean {clean_fit:?}, 10% loss {lossy_fit:?}, {recovered} recovered");
        assert!(clean_fit.correlation > 0.9, "{clean_fit:?}");
        assert!(lossy_fit.correlation > 0.7, "{lossy_fit:?}");
        assert!(recovered > 10);
    }
}
