//! 1:1 messages: `Send` (answered only once the message is durably queued) and `Ack`.

use std::sync::Arc;
use uchat_wire::reply;

use uchat_store::{BatchOutcome, BatchWrite, MessageOutcome};
use uchat_wire::{ErrorCode, ErrorReply, MAX_CIPHERTEXT_BYTES, MessageId, Seq, UserName};

use super::{fail, mismatched_outcome};
use crate::server::{RelayState, now_ms};

/// Queues `from`'s message for `to` (a friend; silently dropped if `to` blocked `from`)
/// and answers `Sent` once it is committed; a resent id is answered as a duplicate.
pub(super) async fn send(
    shared: &Arc<RelayState>,
    from: UserName,
    to: UserName,
    id: MessageId,
    ciphertext: Vec<u8>,
) -> Result<reply::Sent, ErrorReply> {
    if ciphertext.len() > MAX_CIPHERTEXT_BYTES {
        return Err(fail(
            ErrorCode::TooLarge,
            format!(
                "message of {} bytes exceeds the limit of {MAX_CIPHERTEXT_BYTES} bytes; send it as a file",
                ciphertext.len()
            ),
        ));
    }
    let size = ciphertext.len();
    // Committed (durably, with whatever else is waiting) before the sender hears "sent":
    // the delivery rule. The store checks the friendship and blocks in the same transaction.
    let outcome = shared
        .committer
        .commit(BatchWrite::Message {
            from: from.clone(),
            to: to.clone(),
            id,
            ciphertext,
            now_ms: now_ms(),
            limit: shared.limits.queue(),
        })
        .await?;
    let BatchOutcome::Message(outcome) = outcome else {
        return Err(mismatched_outcome());
    };
    let enqueued = match outcome {
        MessageOutcome::Queued(enqueued) => enqueued,
        // The recipient blocked the sender: answered like a delivery, so they cannot tell.
        MessageOutcome::Dropped { relay_ts_ms } => {
            tracing::debug!(%from, %to, "message from a blocked sender dropped");
            return Ok(reply::Sent {
                relay_ts_ms,
                duplicate: false,
                unshared: Vec::new(),
            });
        }
    };
    if !enqueued.duplicate {
        shared.metrics.messages_queued.inc();
        shared.metrics.message_bytes_queued.inc_by(size as u64);
        shared.online.wake(&to);
    }
    tracing::debug!(%from, %to, bytes = size, seq = %enqueued.seq, duplicate = enqueued.duplicate, "message queued");
    Ok(reply::Sent {
        relay_ts_ms: enqueued.relay_ts_ms,
        duplicate: enqueued.duplicate,
        unshared: Vec::new(),
    })
}

/// Deletes `user`'s queued events up to `through`, durably, before answering.
pub(super) async fn ack(
    shared: &Arc<RelayState>,
    user: UserName,
    through: Seq,
) -> Result<(), ErrorReply> {
    shared
        .committer
        .commit(BatchWrite::Ack { user, through })
        .await?;
    Ok(())
}
