//! The courier: the outbox's only sender. One task per client takes errands (send the
//! outbox and say what became of a message; commit receipts to it) and nudges (a
//! membership event a waiting group message needed, delivery receipts gathered), and
//! sends the outbox oldest first. So messages reach the relay in the order they were
//! written with no lock held across the relay's answers: a caller waits for its own
//! answer, and everything else goes on. Errands that arrive during a run are served
//! together by the next one.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use uchat_wire::{MessageId, UserName};

use super::{ClientError, ClientState, settlement, tell_all};
use crate::core::outbox::{Delivery, OutboxRun};
use crate::envelope::ReceiptKind;

/// What a caller asks of the courier.
pub(super) enum Errand {
    /// Send the outbox, then answer what became of `watch` (`None` when the run did not
    /// reach it: an earlier message waits, or an earlier run sent it).
    Send {
        /// The message the caller waits for, if any.
        watch: Option<MessageId>,
        /// Where the answer goes.
        answer: oneshot::Sender<Result<Option<Delivery>, ClientError>>,
    },
    /// Encrypt receipts of `kind` for `messages` and commit them to the outbox, answer,
    /// then send the outbox.
    Receipts {
        /// Delivered or read.
        kind: ReceiptKind,
        /// The messages the receipts are for, with their senders.
        messages: Vec<(UserName, MessageId)>,
        /// Where the answer goes once the receipts are committed.
        answer: oneshot::Sender<Result<(), ClientError>>,
    },
}

/// Serves errands and nudges until the client goes (its handle aborts this task).
pub(super) async fn run_courier(
    inner: Arc<ClientState>,
    mut errands: mpsc::UnboundedReceiver<Errand>,
) {
    loop {
        let mut batch = Vec::new();
        // Errands first: a caller waits for its answer, while a nudge only asks for a run
        // that serving the errand makes anyway.
        tokio::select! {
            biased;
            errand = errands.recv() => match errand {
                Some(errand) => batch.push(errand),
                None => return,
            },
            () = inner.outbox_wake.notified() => {}
        }
        while let Ok(errand) = errands.try_recv() {
            batch.push(errand);
        }
        inner.run_errands(batch).await;
    }
}

impl ClientState {
    /// Asks the courier to send the outbox and waits for it; returns what became of
    /// `watch` (see [`Errand::Send`]).
    pub(super) async fn send_outbox(
        &self,
        watch: Option<MessageId>,
    ) -> Result<Option<Delivery>, ClientError> {
        let (answer, answered) = oneshot::channel();
        self.courier
            .send(Errand::Send { watch, answer })
            .map_err(|_| ClientError::Closing)?;
        answered.await.map_err(|_| ClientError::Closing)?
    }

    /// Asks the courier to commit receipts of `kind` for `messages` to the outbox and
    /// waits until they are committed (they leave with the run that follows).
    pub(super) async fn queue_receipts_by_courier(
        &self,
        kind: ReceiptKind,
        messages: Vec<(UserName, MessageId)>,
    ) -> Result<(), ClientError> {
        let (answer, answered) = oneshot::channel();
        self.courier
            .send(Errand::Receipts {
                kind,
                messages,
                answer,
            })
            .map_err(|_| ClientError::Closing)?;
        answered.await.map_err(|_| ClientError::Closing)?
    }

    /// One courier run: the receipts asked for and those gathered since the last run go
    /// into the outbox, then the outbox goes to the relay and each caller hears about
    /// its message.
    async fn run_errands(&self, batch: Vec<Errand>) {
        let mut sends = Vec::new();
        for errand in batch {
            match errand {
                Errand::Send { watch, answer } => sends.push((watch, answer)),
                Errand::Receipts {
                    kind,
                    messages,
                    answer,
                } => {
                    let _ = answer.send(self.queue_receipts(kind, messages).await);
                }
            }
        }
        self.queue_delivered_receipts().await;
        let watches: Vec<MessageId> = sends.iter().filter_map(|(watch, _)| *watch).collect();
        match self.run_outbox(watches).await {
            Ok(mut run) => {
                for (watch, answer) in sends {
                    let _ = answer.send(Ok(watch.and_then(|id| run.outcome_of(id))));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "the outbox run stopped");
                tell_all(e, sends.into_iter().map(|(_, answer)| answer));
            }
        }
    }

    /// Sends the outbox in order, oldest first, and stops at the first message that must
    /// wait: sending a later one before it would reorder the conversation. Only the
    /// courier calls this. Returns the run, which knows what became of `watches`, once
    /// what became of each message is committed.
    async fn run_outbox(&self, watches: Vec<MessageId>) -> Result<OutboxRun, ClientError> {
        let mut run = OutboxRun::new(self.store.outbox()?, watches);
        // 1:1 messages the relay answered, recorded together when the run ends: one
        // durable commit for the run, not one per message. (A crash before it only sends
        // them again, and the relay knows them by id.)
        let mut settled = Vec::new();
        while let Some(entry) = run.next_entry() {
            let delivery = match &entry.group {
                Some(part) => match self.deliver_group(&entry, part).await {
                    Ok(delivery) => delivery,
                    Err(e) => {
                        self.record_settled(settled)?;
                        return Err(e);
                    }
                },
                None => {
                    let delivery = self.deliver_direct(&entry).await;
                    settled.extend(settlement(entry.id, &delivery));
                    delivery
                }
            };
            match &delivery {
                Delivery::Sent { .. } => tracing::debug!(id = %entry.id, "sent"),
                Delivery::Refused(e) => {
                    tracing::warn!(id = %entry.id, error = %e, "message refused")
                }
                Delivery::Later(e) => {
                    tracing::debug!(id = %entry.id, error = %e, "message waits in the outbox")
                }
            }
            run.settled(entry.id, delivery);
        }
        self.record_settled(settled)?;
        Ok(run)
    }
}
