//! The event pusher: streams a logged-in user's durable queue down one relay-opened
//! unidirectional stream, then waits for more, writing ephemeral events (presence, profile
//! changes) on the same stream as they come.
//!
//! The redb queue is the truth and a wake-up is only a hint: the pusher always re-reads the
//! queue after its cursor, so a missed or coalesced wake-up delays nothing for long and
//! loses nothing. Events stay queued until the peer acknowledges them (`Request::Ack`); a
//! new connection starts from the oldest unacknowledged event.
//!
//! A pusher lives as long as its login: it stops when the [`PusherGuard`] kept in the
//! connection's login state is dropped (logout, connection end), and it checks before each
//! batch that the connection is still logged in as its user. If the queue cannot be read,
//! it closes the whole connection, so the peer reconnects instead of waiting on a stream
//! that will never deliver again.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, broadcast, watch};
use uchat_store::QueuedEvent;
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::{Push, Seq, UserName};

use super::connection::{CLOSE_STALLED, CLOSE_STORAGE_ERROR, Connection, STREAM_ERROR_LOGGED_OUT};
use super::online::EphemeralFrame;
use super::{RelayState, blocking};

/// Events read from the store per batch, at most.
const BATCH: usize = 256;

/// Bytes of events read from the store per batch, at most (beyond the first event): what a
/// pusher holds in memory while a slow peer reads, whatever the events' sizes. Before it
/// was bounded by count alone: 256 events of 512 KiB, 128 MiB per connection.
const BATCH_BYTES: u64 = 1 << 20;

/// How long one frame may take to be written (the peer reading it, as QUIC flow control
/// lets the relay go on) before the relay gives up on the connection. The peer reconnects
/// and resumes from its last acknowledgement, so nothing is lost.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Keeps a pusher running; dropping it stops the pusher at its next await point.
pub(super) struct PusherGuard {
    _alive: watch::Sender<()>,
}

/// The pusher's side of a [`PusherGuard`]: tells whether the guard was dropped.
pub(super) struct StopSignal {
    alive: watch::Receiver<()>,
}

/// A guard for the connection's login state and the signal for the pusher it keeps.
pub(super) fn stop_pair() -> (PusherGuard, StopSignal) {
    let (alive, signal) = watch::channel(());
    (PusherGuard { _alive: alive }, StopSignal { alive: signal })
}

impl StopSignal {
    /// Whether the guard is gone.
    fn is_stopped(&self) -> bool {
        self.alive.has_changed().is_err()
    }

    /// Resolves once the guard is gone (at once if it already is; safe to call again).
    async fn stopped(&mut self) {
        // Nobody sends on the channel, so `changed` only returns when the sender drops.
        while self.alive.changed().await.is_ok() {}
    }
}

/// What a pusher waits on.
pub(super) struct Inputs {
    /// Woken when the user's durable queue grows.
    pub(super) wake: Arc<Notify>,
    /// The user's ephemeral events.
    pub(super) ephemeral: broadcast::Receiver<EphemeralFrame>,
}

/// Pushes `user`'s queue to this connection until the login ends or the stream fails.
pub(super) async fn run(
    connection: Arc<Connection>,
    shared: Arc<RelayState>,
    user: UserName,
    inputs: Inputs,
    mut stop: StopSignal,
) {
    let Inputs {
        wake,
        mut ephemeral,
    } = inputs;
    let mut ephemeral_open = true;
    let opened = tokio::select! {
        // Priority: a login that already ended needs no stream.
        biased;
        _ = stop.stopped() => return,
        opened = connection.conn.open_uni() => opened,
    };
    let mut stream = match opened {
        Ok(stream) => stream,
        Err(e) => {
            tracing::debug!(%user, error = %e, "cannot open event stream");
            return;
        }
    };
    let mut cursor = Seq(0);
    loop {
        if stop.is_stopped() || !connection.is_logged_in_as(&user) {
            let _ = stream.finish();
            return;
        }
        // Register interest before reading the queue, so an event committed between the
        // read and the wait still wakes us.
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();

        let store = shared.store.clone();
        let who = user.clone();
        let Ok(batch) =
            blocking(move || store.pending_batch(&who, cursor, BATCH, BATCH_BYTES)).await
        else {
            // `blocking` logged the cause; the peer reconnects and its next pusher retries.
            tracing::warn!(%user, remote = %connection.remote, "cannot read queue; closing the connection");
            connection
                .conn
                .close(CLOSE_STORAGE_ERROR.into(), b"relay storage error");
            return;
        };
        // A batch cut short by its byte budget is full too: more may wait.
        let full = !batch.is_empty();
        tokio::select! {
            // Priority: a logout stops the pusher even while a slow peer holds up a write.
            biased;
            _ = stop.stopped() => {
                let _ = stream.reset(STREAM_ERROR_LOGGED_OUT.into());
                return;
            }
            written = write_batch(&mut stream, &shared, &user, batch, &mut cursor) => {
                if let Err(e) = written {
                    tracing::debug!(%user, error = %e, "event stream closed");
                    if matches!(e, PushError::Stalled) {
                        close_stalled(&connection, &user);
                    }
                    return;
                }
            }
        }
        if full {
            continue;
        }
        // Wait for durable events, writing ephemeral ones meanwhile.
        loop {
            tokio::select! {
                // Priority: stopping over new events; durable events over ephemeral ones.
                biased;
                _ = stop.stopped() => {
                    let _ = stream.finish();
                    return;
                }
                _ = woken.as_mut() => break,
                received = ephemeral.recv(), if ephemeral_open => match received {
                    Ok(frame) => {
                        if let Err(e) = write_frame(&mut stream, &frame).await {
                            tracing::debug!(%user, error = %e, "event stream closed");
                            if matches!(e, PushError::Stalled) {
                                close_stalled(&connection, &user);
                            }
                            return;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(%user, missed, "slow event stream skipped ephemeral events");
                    }
                    // The registry dropped the user's entry: this login is ending.
                    Err(RecvError::Closed) => ephemeral_open = false,
                },
            }
        }
    }
}

/// Why the event stream ended.
#[derive(Debug, thiserror::Error)]
enum PushError {
    /// The stream failed (the peer went away or stopped it).
    #[error(transparent)]
    Write(#[from] quinn::WriteError),
    /// The peer did not take a frame within [`WRITE_TIMEOUT`].
    #[error("the peer read nothing for {WRITE_TIMEOUT:?}")]
    Stalled,
}

/// Writes one frame, within [`WRITE_TIMEOUT`].
async fn write_frame(stream: &mut quinn::SendStream, bytes: &[u8]) -> Result<(), PushError> {
    tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(bytes))
        .await
        .map_err(|_| PushError::Stalled)??;
    Ok(())
}

/// Closes a connection whose peer stopped reading its events.
fn close_stalled(connection: &Connection, user: &UserName) {
    tracing::info!(%user, remote = %connection.remote, "event stream stalled; closing the connection");
    connection
        .conn
        .close(CLOSE_STALLED.into(), b"events not read in time; reconnect");
}

/// Writes one batch of queued events as `Push` frames in one write (one wake-up of the
/// connection, and as few packets as the frames fit in), moving `cursor` past them.
async fn write_batch(
    stream: &mut quinn::SendStream,
    shared: &RelayState,
    user: &UserName,
    batch: Vec<QueuedEvent>,
    cursor: &mut Seq,
) -> Result<(), PushError> {
    let (bytes, frames, last) = encode_batch(user, batch);
    if !bytes.is_empty() {
        write_frame(stream, &bytes).await?;
        shared.metrics.events_pushed.inc_by(frames);
    }
    if let Some(last) = last {
        *cursor = last;
    }
    Ok(())
}

/// The `Push` frames of `batch` back to back, how many there are, and the last seq in
/// the batch (an event too large for a frame is skipped, and logged).
fn encode_batch(user: &UserName, batch: Vec<QueuedEvent>) -> (Vec<u8>, u64, Option<Seq>) {
    let mut bytes = Vec::new();
    let mut frames = 0;
    let mut last = None;
    for queued in batch {
        let seq = queued.seq;
        let push = Push {
            seq: Some(seq),
            relay_ts_ms: queued.relay_ts_ms,
            event: queued.event,
        };
        match frame::encode(&push, MAX_CONTROL_FRAME_BYTES) {
            Ok(frame) => {
                bytes.extend_from_slice(&frame);
                frames += 1;
            }
            Err(e) => {
                tracing::error!(%user, %seq, error = %e, "queued event does not fit in a frame; skipped");
            }
        }
        last = Some(seq);
    }
    (bytes, frames, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uchat_wire::frame::FrameDecoder;
    use uchat_wire::{MessageId, PushEvent};

    #[test]
    fn a_batch_is_its_frames_back_to_back_and_skips_what_cannot_be_framed() {
        let alice = UserName::parse("alice").expect("valid");
        let event = |seq: u64, len: usize| QueuedEvent {
            seq: Seq(seq),
            relay_ts_ms: seq,
            event: PushEvent::Message {
                from: alice.clone(),
                id: MessageId([seq as u8; 16]),
                ciphertext: vec![7; len],
            },
        };
        let batch = vec![
            event(4, 10),
            event(5, MAX_CONTROL_FRAME_BYTES + 1),
            event(6, 20),
        ];
        let (bytes, frames, last) = encode_batch(&alice, batch);
        assert_eq!((frames, last), (2, Some(Seq(6))));
        let mut decoder = FrameDecoder::new(MAX_CONTROL_FRAME_BYTES);
        decoder.push(&bytes).expect("takes the bytes");
        let mut seqs = Vec::new();
        while let Some(push) = decoder.next_message::<Push>().expect("decodes") {
            seqs.push(push.seq);
        }
        assert_eq!(seqs, [Some(Seq(4)), Some(Seq(6))]);
        assert_eq!(encode_batch(&alice, Vec::new()), (Vec::new(), 0, None));
    }

    #[test]
    fn dropping_the_guard_stops_the_pusher() {
        let (guard, signal) = stop_pair();
        assert!(!signal.is_stopped());
        drop(guard);
        assert!(signal.is_stopped());
    }

    #[tokio::test]
    async fn stopped_resolves_once_the_guard_is_dropped_and_stays_resolved() {
        let (guard, mut signal) = stop_pair();
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), signal.stopped());
        assert!(
            waiting.await.is_err(),
            "still running while the guard lives"
        );
        drop(guard);
        signal.stopped().await;
        signal.stopped().await;
    }
}
