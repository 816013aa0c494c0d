//! Delivered and read receipts for 1:1 messages. Each is an ordinary Olm message
//! ([`Content::Receipt`]) through the outbox, so the relay sees only that a small message
//! went back. Delivery receipts are gathered for a moment and sent one per sender for
//! everything taken in meanwhile (a backlog of a thousand messages costs a few receipts,
//! not a thousand); read receipts go when the user opens a conversation
//! ([`Client::mark_read`]). A receipt is taken in only for this user's own messages to
//! the receipt's sender, and a status never goes back. A user may stop sending read
//! receipts ([`Client::set_read_receipts`]); as in Signal, they then see no one's either.
//! Delivery receipts always go.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use uchat_wire::{MessageId, UserName};

use super::{Client, ClientError, ClientState};
use crate::envelope::{Content, MAX_RECEIPT_IDS, ReceiptKind};
use crate::store::{ConversationId, EntryStatus};

/// How long delivery receipts gather before they are queued.
const GATHER: Duration = Duration::from_millis(50);

/// The device setting that says whether this user sends (and sees) read receipts.
const READ_RECEIPTS: &str = "read-receipts";

impl ReceiptKind {
    /// The history status a receipt of this kind moves a message to.
    pub(super) fn status(self) -> EntryStatus {
        match self {
            ReceiptKind::Delivered => EntryStatus::Delivered,
            ReceiptKind::Read => EntryStatus::Read,
        }
    }
}

impl Client {
    /// Whether this user sends read receipts (and sees other people's): on unless turned
    /// off on this device.
    pub fn read_receipts(&self) -> Result<bool, ClientError> {
        self.inner.read_receipts()
    }

    /// Turns read receipts on or off on this device.
    pub fn set_read_receipts(&self, on: bool) -> Result<(), ClientError> {
        Ok(self.inner.store.set_setting(READ_RECEIPTS, on)?)
    }

    /// The conversation's incoming messages not yet seen (those after the last one seen),
    /// oldest first: what a chat list counts as unread.
    pub fn unread(&self, conversation: &ConversationId) -> Result<Vec<MessageId>, ClientError> {
        let unread = self.inner.store.unread(conversation, &self.inner.me)?;
        Ok(unread.into_iter().map(|m| m.id).collect())
    }

    /// Marks the conversation's incoming messages as seen (the user opened it, or the CLI
    /// printed its history) and, in a 1:1 conversation, queues a read receipt for them
    /// (unless read receipts are off).
    /// Returns how many messages it marked. The receipt leaves with the next outbox run.
    pub async fn mark_read(&self, conversation: &ConversationId) -> Result<usize, ClientError> {
        let inner = &self.inner;
        let unread = inner.store.unread(conversation, &inner.me)?;
        if unread.is_empty() {
            return Ok(0);
        }
        if conversation.group_id().is_none() && inner.read_receipts()? {
            let ids: Vec<(UserName, MessageId)> =
                unread.iter().map(|m| (m.from.clone(), m.id)).collect();
            inner
                .queue_receipts_by_courier(ReceiptKind::Read, ids)
                .await?;
        }
        inner.store.mark_read(conversation, &unread)?;
        Ok(unread.len())
    }
}

impl ClientState {
    /// Whether read receipts are on on this device (see [`Client::read_receipts`]).
    pub(super) fn read_receipts(&self) -> Result<bool, ClientError> {
        Ok(self.store.setting(READ_RECEIPTS, true)?)
    }

    /// Remembers that message `id` from `from` was taken in, for the next delivery receipt.
    pub(super) fn note_delivered(&self, from: &UserName, id: MessageId) {
        self.delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((from.clone(), id));
        self.receipts_wake.notify_one();
    }

    /// Queues in the outbox the delivery receipts for everything taken in so far. Only
    /// the courier calls this, so receipts are queued in the order messages were taken
    /// in. A receipt that cannot be made (no session and no relay to claim a key from) is
    /// logged and dropped: receipts are a courtesy, and the message itself is safe.
    pub(super) async fn queue_delivered_receipts(&self) {
        let taken = std::mem::take(
            &mut *self
                .delivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if taken.is_empty() {
            return;
        }
        if let Err(e) = self.queue_receipts(ReceiptKind::Delivered, taken).await {
            tracing::warn!(error = %e, "cannot queue delivery receipts");
        }
    }

    /// Has the courier queue the delivery receipts waiting (see
    /// [`ClientState::queue_delivered_receipts`]) and send the outbox, and waits for it;
    /// what cannot go now stays in the outbox for the next run.
    pub(super) async fn send_delivered_receipts(&self) {
        if let Err(e) = self.send_outbox(None).await {
            tracing::debug!(error = %e, "receipts wait in the outbox");
        }
    }

    /// Encrypts and commits to the outbox one receipt of `kind` per sender (and per
    /// [`MAX_RECEIPT_IDS`] messages) for `messages`. Only the courier calls this.
    pub(super) async fn queue_receipts(
        &self,
        kind: ReceiptKind,
        messages: Vec<(UserName, MessageId)>,
    ) -> Result<(), ClientError> {
        let mut by_sender: BTreeMap<UserName, Vec<MessageId>> = BTreeMap::new();
        for (from, id) in messages {
            by_sender.entry(from).or_default().push(id);
        }
        let mut first_error = None;
        for (to, ids) in by_sender {
            for chunk in ids.chunks(MAX_RECEIPT_IDS) {
                let content = Content::Receipt {
                    kind,
                    ids: chunk.to_vec(),
                };
                if let Err(e) = self.commit_olm_outbound(&to, content, None, None).await {
                    tracing::debug!(%to, error = %e, "cannot queue a receipt");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Has delivery receipts queued and sent shortly after messages are taken in, gathering
/// those that arrive together into one receipt per sender: nudges the courier, which
/// queues whatever waits in `delivered` at the start of its run.
pub(super) async fn run_receipts(inner: Arc<ClientState>) {
    loop {
        inner.receipts_wake.notified().await;
        tokio::time::sleep(GATHER).await;
        inner.outbox_wake.notify_one();
    }
}
