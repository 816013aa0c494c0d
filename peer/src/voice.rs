//! The voice engine: capture → 48 kHz mono → Opus (20 ms, in-band FEC) → sealed datagram;
//! datagram → opened → adaptive jitter buffer → Opus decode, FEC recovery or concealment →
//! playback. The pieces are pure where they can be (`packet`, `jitter`, `stats`,
//! `analysis`); `engine` is the one loop with a clock and a network.
//!
//! - [`audio`]: the input and output traits and their WAV, silence and sound-card kinds.
//! - [`codec`]: Opus encoder and decoder settings.
//! - [`jitter`]: the adaptive jitter buffer.
//! - [`packet`]: what a voice datagram carries.
//! - [`stats`]: call statistics and the summary.
//! - [`engine`]: the media loop.
//! - [`analysis`]: a speech-like test signal and correlation, for tests and benchmarks.

pub mod analysis;
pub mod audio;
pub mod codec;
pub mod engine;
pub mod jitter;
pub mod packet;
pub mod stats;

/// Why the voice engine stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// Opus failed.
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    /// The output could not be written.
    #[error(transparent)]
    Audio(#[from] audio::AudioError),
    /// The engine's task ended without an answer (it panicked or was cancelled).
    #[error("the voice engine's task ended: {0}")]
    Task(String),
}
