//! `uchat call`, `uchat answer` and `uchat reject`: voice calls from the command line,
//! with WAV files, the sound card or silence as the audio, a `call_stats` line every
//! second and a summary when the call ends.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use uchat_peer::voice::audio::{
    AudioInput, AudioOutput, PcmInput, WavOutput, input_or_silence, output_or_silence,
};
use uchat_peer::voice::stats::{CallStats, CallSummary};
use uchat_peer::{CallEnd, CallProgress, Client, ConnectedCall, Placed, TalkOptions};
use uchat_wire::{CallEndReason, CallId, UserName};

use crate::output::{CallSummaryLine, JsonLine};
use crate::{Invocation, parse_seconds, parse_user};

/// Where a call's audio comes from and goes to.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct AudioArgs {
    /// Send this WAV file instead of the microphone (any rate and channel count); without
    /// --for the call ends once it has played
    #[arg(long)]
    input: Option<PathBuf>,
    /// Write what you hear to this WAV file (48 kHz mono) instead of the speaker
    #[arg(long)]
    output: Option<PathBuf>,
    /// Hang up after this many seconds of talking
    #[arg(long = "for")]
    for_secs: Option<f64>,
}

/// Opens the input: the WAV file, else the default microphone, else silence (and says
/// so: no microphone is normal).
fn open_input(ctx: &Invocation, args: &AudioArgs) -> Result<Box<dyn AudioInput>> {
    if let Some(path) = &args.input {
        return Ok(Box::new(PcmInput::from_wav(path)?));
    }
    let (input, problem) = input_or_silence(None);
    if let Some(e) = problem {
        audio_note(ctx, "input", &format!("{e}; sending silence"));
    }
    Ok(input)
}

/// Opens the output: the WAV file, else the default speaker, else nowhere (and says so).
fn open_output(ctx: &Invocation, args: &AudioArgs) -> Result<Box<dyn AudioOutput>> {
    if let Some(path) = &args.output {
        return Ok(Box::new(WavOutput::create(path)?));
    }
    let (output, problem) = output_or_silence(None);
    if let Some(e) = problem {
        audio_note(
            ctx,
            "output",
            &format!("{e}; the call goes on without sound"),
        );
    }
    Ok(output)
}

fn audio_note(ctx: &Invocation, direction: &str, note: &str) {
    ctx.print(JsonLine::Audio { direction, note }, || {
        format!("uchat: no sound {direction}: {note}")
    });
}

fn call_line<'a>(
    state: &'static str,
    call: CallId,
    peer: Option<&'a str>,
    reason: Option<&'static str>,
) -> JsonLine<'a> {
    JsonLine::Call {
        state,
        call: call.to_string(),
        peer,
        reason,
        by: None,
        summary: None,
    }
}

/// Prints a connected call's statistics line.
fn stats_printer(json: bool) -> impl FnMut(CallStats) + Send + 'static {
    move |stats: CallStats| {
        let line = JsonLine::CallStats {
            path: stats.path.as_str(),
            loss: stats.loss,
            jitter_ms: stats.jitter_ms,
            rtt_ms: stats.rtt_ms,
            buffer_ms: stats.buffer_ms,
            target_ms: stats.target_ms,
            bitrate: stats.bitrate,
            mouth_to_ear_ms: stats.mouth_to_ear_ms,
            fec_recovered: stats.fec_recovered,
            concealed: stats.concealed,
            frames_sent: stats.frames_sent,
            frames_received: stats.frames_received,
        };
        if json {
            line.print();
        } else {
            eprintln!(
                "{}: loss {:.1}%, jitter {:.0} ms, rtt {}, buffer {} ms, {} kbit/s, {} recovered by FEC, {} concealed",
                stats.path.as_str(),
                stats.loss * 100.0,
                stats.jitter_ms,
                stats
                    .rtt_ms
                    .map_or_else(|| "?".to_owned(), |r| format!("{r:.0} ms")),
                stats.buffer_ms,
                stats.bitrate / 1000,
                stats.fec_recovered,
                stats.concealed
            );
        }
    }
}

fn summary_line(summary: &CallSummary) -> CallSummaryLine {
    CallSummaryLine {
        duration_s: summary.duration_s,
        path: summary.path.as_str(),
        frames_sent: summary.frames_sent,
        frames_received: summary.frames_received,
        loss: summary.loss,
        fec_recovered: summary.fec_recovered,
        concealed: summary.concealed,
        mouth_to_ear_ms: summary.mouth_to_ear_ms,
        rtt_ms: summary.rtt_ms,
        max_jitter_ms: summary.max_jitter_ms,
    }
}

fn print_ended(ctx: &Invocation, call: CallId, peer: &UserName, reason: CallEndReason) {
    ctx.print(
        call_line("ended", call, Some(peer.as_str()), Some(reason.as_str())),
        || {
            format!(
                "the call with {peer} did not connect: {}",
                human_reason(reason)
            )
        },
    );
}

/// A reason in words.
pub(crate) fn human_reason(reason: CallEndReason) -> &'static str {
    match reason {
        CallEndReason::Rejected => "rejected",
        CallEndReason::Cancelled => "cancelled before it was answered",
        CallEndReason::Busy => "busy in another call",
        CallEndReason::Timeout => "nobody answered",
        CallEndReason::HungUp => "hung up",
        CallEndReason::Offline => "not online (they will see a missed call)",
        CallEndReason::ConnectionLost => "the connection was lost",
        CallEndReason::Unknown => "ended",
    }
}

/// Talks on a connected call and prints how it ended.
async fn talk(
    ctx: &Invocation,
    client: &Client,
    connected: ConnectedCall,
    audio: &AudioArgs,
) -> Result<()> {
    let (call, peer) = (connected.call, connected.peer.clone());
    ctx.print(
        call_line("connected", call, Some(peer.as_str()), None),
        || format!("connected with {peer}"),
    );
    let duration = audio
        .for_secs
        .map(|s| parse_seconds("--for", s))
        .transpose()?;
    let options = TalkOptions {
        duration,
        // A file without --for: hang up once it has played and the far end heard it.
        end_after_input: (audio.input.is_some() && duration.is_none())
            .then_some(Duration::from_secs(1)),
        ..TalkOptions::default()
    };
    // Capture starts only now, on a call this user placed or took.
    let input = open_input(ctx, audio)?;
    let output = open_output(ctx, audio)?;
    let talk = client
        .calls()
        .talk(connected, input, output, options, stats_printer(ctx.json));
    let CallEnd {
        reason,
        by_me,
        summary,
    } = tokio::select! {
        ended = talk => ended?,
        _ = tokio::signal::ctrl_c() => {
            // Dropping the talk future stops the engine; tell the relay too.
            let _ = client.calls().hang_up(call).await;
            anyhow::bail!("interrupted: hung up the call with {peer}");
        }
    };
    let by = if by_me { "me" } else { peer.as_str() };
    ctx.print(
        JsonLine::Call {
            state: "ended",
            call: call.to_string(),
            peer: Some(peer.as_str()),
            reason: Some(reason.as_str()),
            by: Some(by),
            summary: Some(summary_line(&summary)),
        },
        || {
            format!(
                "call with {peer} ended ({}, by {by}) after {:.1} s: {} frames sent, {} received, loss {:.1}%, {} recovered by FEC, {} concealed, mouth-to-ear {}",
                human_reason(reason),
                summary.duration_s,
                summary.frames_sent,
                summary.frames_received,
                summary.loss * 100.0,
                summary.fec_recovered,
                summary.concealed,
                summary
                    .mouth_to_ear_ms
                    .map_or_else(|| "unknown".to_owned(), |d| format!("{d:.0} ms")),
            )
        },
    );
    Ok(())
}

/// `uchat call USER`: rings, talks, hangs up.
pub(crate) async fn call(
    ctx: &Invocation,
    user: &str,
    audio: AudioArgs,
    ring_secs: Option<f64>,
) -> Result<()> {
    let to = parse_user(user)?;
    let give_up = ring_secs.map(|s| parse_seconds("--ring", s)).transpose()?;
    let client = ctx.open().await?;
    let result = async {
        let placed = match client.calls().place(&to).await? {
            Placed::Ringing(placed) => placed,
            Placed::Ended { call, reason } => {
                print_ended(ctx, call, &to, reason);
                return Ok(());
            }
        };
        ctx.print(
            call_line("ringing", placed.call, Some(to.as_str()), None),
            || format!("ringing {to}…"),
        );
        let progress = tokio::select! {
            progress = client.calls().wait_for_answer(&placed, give_up) => progress?,
            _ = tokio::signal::ctrl_c() => {
                let _ = client.calls().hang_up(placed.call).await;
                anyhow::bail!("interrupted: cancelled the call to {to}");
            }
        };
        match progress {
            CallProgress::Ended(reason) => {
                print_ended(ctx, placed.call, &to, reason);
                Ok(())
            }
            CallProgress::Connected(connected) => talk(ctx, &client, *connected, &audio).await,
        }
    }
    .await;
    client.close().await;
    result
}

/// Says the callee is online (scripts wait for this line), then waits up to `wait` for a
/// call to ring (from `from`, if given).
async fn wait_for_ring(
    ctx: &Invocation,
    client: &Client,
    wait: Duration,
    from: Option<&UserName>,
) -> Result<uchat_peer::IncomingCall> {
    ctx.print(
        JsonLine::Connection {
            state: "connected",
            reason: None,
        },
        || "waiting for a call…".to_owned(),
    );
    client
        .calls()
        .wait_for_call(from, wait)
        .await?
        .with_context(|| format!("no call rang within {} s", wait.as_secs_f64()))
}

/// `uchat answer`: waits for a call to ring, takes it and talks.
pub(crate) async fn answer(
    ctx: &Invocation,
    audio: AudioArgs,
    wait_secs: f64,
    from: Option<String>,
) -> Result<()> {
    let from = from.as_deref().map(parse_user).transpose()?;
    let wait = parse_seconds("--wait", wait_secs)?;
    let client = ctx.open().await?;
    let result = async {
        let incoming = wait_for_ring(ctx, &client, wait, from.as_ref()).await?;
        ctx.print(
            call_line(
                "incoming",
                incoming.call,
                Some(incoming.from.as_str()),
                None,
            ),
            || format!("{} is calling; answering", incoming.from),
        );
        let connected = client
            .calls()
            .answer(&incoming)
            .await
            .with_context(|| format!("could not answer {}'s call", incoming.from))?;
        talk(ctx, &client, connected, &audio).await
    }
    .await;
    client.close().await;
    result
}

/// `uchat reject`: waits for a call to ring and refuses it.
pub(crate) async fn reject(ctx: &Invocation, wait_secs: f64, from: Option<String>) -> Result<()> {
    let from = from.as_deref().map(parse_user).transpose()?;
    let wait = parse_seconds("--wait", wait_secs)?;
    let client = ctx.open().await?;
    let result = async {
        let incoming = wait_for_ring(ctx, &client, wait, from.as_ref()).await?;
        client.calls().reject(incoming.call).await?;
        ctx.print(
            call_line(
                "rejected",
                incoming.call,
                Some(incoming.from.as_str()),
                Some(CallEndReason::Rejected.as_str()),
            ),
            || format!("refused the call from {}", incoming.from),
        );
        Ok(())
    }
    .await;
    client.close().await;
    result
}
