//! The event pusher: streams a logged-in user's durable queue down one relay-opened
//! unidirectional stream, then waits for more.
//!
//! The redb queue is the truth and a wake-up is only a hint: the pusher always re-reads the
//! queue after its cursor, so a missed or coalesced wake-up delays nothing for long and
//! loses nothing. Events stay queued until the peer acknowledges them (`Request::Ack`); a
//! new connection starts from the oldest unacknowledged event.

use std::sync::Arc;

use tokio::sync::Notify;
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::{Push, Seq, UserName};

use super::connection::Connection;
use super::{Shared, blocking};

/// Events read from the store per batch.
const BATCH: usize = 256;

/// Pushes `user`'s queue to this connection until the connection or stream fails.
pub(super) async fn run(
    connection: Arc<Connection>,
    shared: Arc<Shared>,
    user: UserName,
    wake: Arc<Notify>,
) {
    let mut stream = match connection.conn.open_uni().await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::debug!(%user, error = %e, "cannot open event stream");
            return;
        }
    };
    let mut cursor = Seq(0);
    loop {
        // Register interest before reading the queue, so an event committed between the
        // read and the wait still wakes us.
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();

        let store = shared.store.clone();
        let who = user.clone();
        let batch = match blocking(move || store.pending(&who, cursor, BATCH)).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(%user, error = %e, "cannot read queue");
                return;
            }
        };
        let full = batch.len() == BATCH;
        for queued in batch {
            let push = Push {
                seq: Some(queued.seq),
                relay_ts_ms: queued.relay_ts_ms,
                event: queued.event,
            };
            let bytes = match frame::encode(&push, MAX_CONTROL_FRAME_BYTES) {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::error!(%user, seq = %queued.seq, error = %e, "queued event does not fit in a frame; skipped");
                    cursor = queued.seq;
                    continue;
                }
            };
            if let Err(e) = stream.write_all(&bytes).await {
                tracing::debug!(%user, error = %e, "event stream closed");
                return;
            }
            cursor = queued.seq;
            shared.metrics.events_pushed.inc();
        }
        if !full {
            woken.await;
        }
    }
}
