//! The media loop of one call: every 20 ms it captures a frame, encodes, seals and sends
//! it, and plays the jitter buffer's choice for the turn; datagrams that arrive are opened,
//! checked against the replay window and handed to the buffer (audio), answered (probes)
//! or fed to the encoder (the other side's loss reports). Once a second it probes the RTT,
//! reports its loss to the other side and publishes [`CallStats`].
//!
//! Datagrams come and go through a [`DatagramLink`], so the same loop runs over a QUIC
//! connection to the relay or, in the benchmark, over an in-process path.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use uchat_wire::msg::call::{VOICE_HEADER_BYTES, voice_datagram, voice_leg};

use super::audio::{AudioInput, AudioOutput};
use super::codec::{FRAME_MS, FRAME_SAMPLES, VoiceDecoder, VoiceEncoder, may_carry_fec};
use super::jitter::{JitterBuffer, Playout};
use super::packet::VoicePacket;
use super::stats::{CallPath, CallStats, CallSummary, Receiver};
use crate::crypto::voice::{CallKeys, ReplayWindow};

/// How often statistics are published, the RTT probed and loss reported.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Where datagrams go and come from.
pub struct DatagramLink {
    /// Sends one datagram; false if it could not be sent (the path is gone or full).
    pub send: Box<dyn Fn(Vec<u8>) -> bool + Send + Sync>,
    /// The datagrams that arrive.
    pub receive: mpsc::Receiver<Vec<u8>>,
}

impl std::fmt::Debug for DatagramLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramLink").finish_non_exhaustive()
    }
}

impl DatagramLink {
    /// A link over a QUIC connection's datagrams (a task forwards what arrives, until
    /// the link is dropped).
    pub fn over_quic(conn: quinn::Connection) -> Self {
        let (tx, receive) = mpsc::channel(256);
        let reader = conn.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    datagram = reader.read_datagram() => {
                        let Ok(datagram) = datagram else { break };
                        if tx.send(datagram.to_vec()).await.is_err() {
                            break;
                        }
                    }
                    _ = tx.closed() => break,
                }
            }
        });
        Self {
            send: Box::new(move |datagram| conn.send_datagram(datagram.into()).is_ok()),
            receive,
        }
    }

    /// Two links joined in this process, each datagram from one arriving at the other
    /// unless `drop_it` (called with a running count) says to lose it: the benchmark's
    /// network-free path.
    pub fn pair(
        drop_it: impl Fn(u64) -> bool + Send + Sync + 'static,
    ) -> (DatagramLink, DatagramLink) {
        let drop_it = std::sync::Arc::new(drop_it);
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (a_tx, a_rx) = mpsc::channel::<Vec<u8>>(1024);
        let (b_tx, b_rx) = mpsc::channel::<Vec<u8>>(1024);
        let side = |tx: mpsc::Sender<Vec<u8>>, rx| {
            let (drop_it, count) = (drop_it.clone(), count.clone());
            DatagramLink {
                send: Box::new(move |datagram| {
                    let n = count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    drop_it(n) || tx.try_send(datagram).is_ok()
                }),
                receive: rx,
            }
        };
        (side(b_tx, a_rx), side(a_tx, b_rx))
    }
}

/// What the media loop needs to know about the call.
#[derive(Debug, Clone, Copy)]
pub struct MediaSettings {
    /// This side's leg handle: what its datagrams start with, and what the relay puts on
    /// the datagrams meant for it.
    pub leg: u32,
    /// How the voice travels.
    pub path: CallPath,
    /// No datagram from the other side for this long ends the call.
    pub silence_timeout: Duration,
    /// End the call once the input has ended and this much more has played (a WAV file
    /// told to end the call when it is over).
    pub end_after_input: Option<Duration>,
}

/// Why the media loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEnd {
    /// Told to stop (a hang-up, from either side).
    Stopped,
    /// The input ended (and `end_after_input` passed).
    InputEnded,
    /// Nothing arrived from the other side for the silence timeout.
    PeerSilent,
}

/// The loop's counters and tools for one call.
struct Media {
    keys: CallKeys,
    settings: MediaSettings,
    encoder: VoiceEncoder,
    decoder: VoiceDecoder,
    jitter: JitterBuffer,
    replay: ReplayWindow,
    receiver: Receiver,
    started: Instant,
    seq: u32,
    frame: u32,
    frames_sent: u64,
    rejected: u64,
}

impl Media {
    /// A call's media state before its first frame, with a fresh encoder and decoder.
    fn new(keys: CallKeys, settings: MediaSettings) -> Result<Self, super::VoiceError> {
        Ok(Media {
            keys,
            settings,
            encoder: VoiceEncoder::new()?,
            decoder: VoiceDecoder::new()?,
            jitter: JitterBuffer::new(),
            replay: ReplayWindow::default(),
            receiver: Receiver::default(),
            started: Instant::now(),
            seq: 0,
            frame: 0,
            frames_sent: 0,
            rejected: 0,
        })
    }

    fn clock_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn seal(&mut self, packet: &VoicePacket) -> Vec<u8> {
        let sealed = self.keys.seal(self.seq, &packet.to_bytes());
        self.seq = self.seq.wrapping_add(1);
        voice_datagram(self.settings.leg, &sealed)
    }

    /// Seals `packet` and sends it through `send`; false if it could not be sent.
    fn send(&mut self, packet: &VoicePacket, send: &dyn Fn(Vec<u8>) -> bool) -> bool {
        let sealed = self.seal(packet);
        send(sealed)
    }

    /// Encodes the captured frame `pcm` and sends it as the next audio packet, counting it
    /// as sent if it went out.
    fn send_frame(
        &mut self,
        pcm: &[i16],
        send: &dyn Fn(Vec<u8>) -> bool,
    ) -> Result<(), super::VoiceError> {
        let opus = self.encoder.encode(pcm)?;
        let packet = VoicePacket::Audio {
            frame: self.frame,
            sent_ms: self.clock_ms() as u32,
            opus,
        };
        self.frame = self.frame.wrapping_add(1);
        if self.send(&packet, send) {
            self.frames_sent += 1;
        }
        Ok(())
    }

    /// The once-a-second report: publishes the interval's statistics through `on_stats`,
    /// then sends the other side this side's loss report and an RTT probe.
    fn report(&mut self, on_stats: &mut impl FnMut(CallStats), send: &dyn Fn(Vec<u8>) -> bool) {
        let (stats, report_packet) = self.stats();
        on_stats(stats);
        let now = self.clock_ms() as u32;
        for packet in [report_packet, VoicePacket::Ping { sent_ms: now }] {
            self.send(&packet, send);
        }
    }

    /// Opens one arrived datagram; answers probes through `reply`.
    fn take(&mut self, datagram: &[u8], reply: &mut Vec<VoicePacket>) {
        if voice_leg(datagram) != Some(self.settings.leg) {
            self.rejected += 1;
            return;
        }
        let Ok((seq, plaintext)) = self.keys.open(&datagram[VOICE_HEADER_BYTES..]) else {
            self.rejected += 1;
            return;
        };
        if self.replay.accept(seq).is_err() {
            self.rejected += 1;
            return;
        }
        let now = self.clock_ms();
        match VoicePacket::from_bytes(&plaintext) {
            Ok(VoicePacket::Audio {
                frame,
                sent_ms,
                opus,
            }) => {
                self.receiver.frame_arrived(frame, sent_ms, now);
                self.jitter.push(frame, opus, sent_ms, now);
            }
            Ok(VoicePacket::Ping { sent_ms }) => reply.push(VoicePacket::Pong {
                echo_ms: sent_ms,
                at_ms: now as u32,
            }),
            Ok(VoicePacket::Pong { echo_ms, at_ms }) => {
                self.receiver.probe_answered(echo_ms, at_ms, now);
            }
            Ok(VoicePacket::Report { loss_permille, .. }) => {
                let loss = f64::from(loss_permille.min(1000)) / 1000.0;
                if let Err(e) = self.encoder.adapt(loss) {
                    tracing::warn!(error = %e, "could not adapt the encoder");
                }
            }
            Err(_) => self.rejected += 1,
        }
    }

    /// Plays the jitter buffer's choice for this turn into `pcm`.
    fn play_turn(&mut self, pcm: &mut [i16]) {
        let now = self.clock_ms();
        let result = match self.jitter.pop(now) {
            Playout::Silence => {
                pcm.fill(0);
                Ok(())
            }
            Playout::Frame { opus, sent_ms, .. } => {
                self.receiver.played(sent_ms, now);
                self.decoder.decode(&opus, pcm)
            }
            Playout::Recover { next_opus, .. } if may_carry_fec(&next_opus) => {
                self.receiver.recovered();
                self.decoder.recover(&next_opus, pcm)
            }
            Playout::Recover { .. } | Playout::Conceal => {
                self.receiver.concealed();
                self.decoder.conceal(pcm)
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "a frame could not be decoded; playing silence");
            pcm.fill(0);
        }
    }

    fn stats(&mut self) -> (CallStats, VoicePacket) {
        let (loss, jitter, delay) = self.receiver.take_interval();
        let stats = CallStats {
            path: self.settings.path,
            loss,
            jitter_ms: jitter,
            rtt_ms: self.receiver.rtt_ms(),
            buffer_ms: self.jitter.depth_ms(),
            target_ms: self.jitter.target_ms(),
            bitrate: self.encoder.bitrate(),
            mouth_to_ear_ms: delay,
            fec_recovered: self.receiver.fec_recovered(),
            concealed: self.receiver.concealed_count(),
            frames_sent: self.frames_sent,
            frames_received: self.receiver.received(),
        };
        let report = VoicePacket::Report {
            loss_permille: (loss * 1000.0).round() as u16,
            jitter_ms: jitter.round().min(f64::from(u16::MAX)) as u16,
        };
        (stats, report)
    }

    fn summary(&self) -> CallSummary {
        let (loss, mouth_to_ear, rtt, max_jitter) = self.receiver.totals();
        CallSummary {
            duration_s: self.started.elapsed().as_secs_f64(),
            path: self.settings.path,
            frames_sent: self.frames_sent,
            frames_received: self.receiver.received(),
            loss,
            fec_recovered: self.receiver.fec_recovered(),
            concealed: self.receiver.concealed_count(),
            mouth_to_ear_ms: mouth_to_ear,
            rtt_ms: rtt,
            max_jitter_ms: max_jitter,
        }
    }
}

/// The media loop's clocks: a turn every frame (missed turns are made up in a burst, so
/// the audio keeps its pace) and a report every [`REPORT_INTERVAL`], the first one
/// interval from now (missed reports are not made up).
fn media_clocks() -> (tokio::time::Interval, tokio::time::Interval) {
    let mut turn = tokio::time::interval(Duration::from_millis(u64::from(FRAME_MS)));
    turn.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut report = tokio::time::interval_at(Instant::now() + REPORT_INTERVAL, REPORT_INTERVAL);
    report.set_missed_tick_behavior(MissedTickBehavior::Delay);
    (turn, report)
}

/// Runs one call's media until `stop` turns true, the input ends (if so configured) or
/// the other side falls silent. Publishes statistics through `on_stats` once a second;
/// returns why it stopped and the call's summary.
pub async fn run_media(
    keys: CallKeys,
    settings: MediaSettings,
    mut link: DatagramLink,
    mut input: Box<dyn AudioInput>,
    mut output: Box<dyn AudioOutput>,
    mut on_stats: impl FnMut(CallStats) + Send,
    mut stop: watch::Receiver<bool>,
) -> Result<(MediaEnd, CallSummary), super::VoiceError> {
    let mut media = Media::new(keys, settings)?;
    let send = &*link.send;
    let (mut turn, mut report) = media_clocks();
    let mut captured = vec![0i16; FRAME_SAMPLES];
    let mut played = vec![0i16; FRAME_SAMPLES];
    let mut last_heard = Instant::now();
    let mut input_ended_at: Option<Instant> = None;
    let mut replies = Vec::new();
    // A first probe at once, so the RTT and clock offset are known within a round trip.
    let probe = VoicePacket::Ping {
        sent_ms: media.clock_ms() as u32,
    };
    media.send(&probe, send);
    let end = loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break MediaEnd::Stopped,
            datagram = link.receive.recv() => {
                let Some(datagram) = datagram else { break MediaEnd::PeerSilent };
                last_heard = Instant::now();
                media.take(&datagram, &mut replies);
                for packet in replies.drain(..) {
                    media.send(&packet, send);
                }
            }
            _ = turn.tick() => {
                if !input.read_frame(&mut captured) && input_ended_at.is_none() {
                    input_ended_at = Some(Instant::now());
                }
                media.send_frame(&captured, send)?;
                media.play_turn(&mut played);
                output.write_frame(&played)?;
                if let (Some(at), Some(drain)) = (input_ended_at, settings.end_after_input)
                    && at.elapsed() >= drain
                {
                    break MediaEnd::InputEnded;
                }
                if last_heard.elapsed() >= settings.silence_timeout {
                    break MediaEnd::PeerSilent;
                }
            }
            _ = report.tick() => media.report(&mut on_stats, send),
        }
    };
    if media.rejected > 0 {
        tracing::debug!(rejected = media.rejected, "voice datagrams refused");
    }
    output.finish()?;
    Ok((end, media.summary()))
}
