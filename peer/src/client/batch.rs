//! Taking in a run of pushed 1:1 messages at once. The relay pushes a backlog in batches,
//! and committing each message on its own costs a durable commit (a disk flush) apiece.
//! Here each message of a run is first checked against its sender's pinned identity with
//! no lock held (a first contact's key may need a relay round trip), then all are opened
//! one after another under the identity lock, each sender's sessions held in memory from
//! one message to the next, and the run (receipts included) is committed in one
//! transaction, each sender's sessions with its last event; only then is it reported,
//! counted as taken in and acknowledged.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use uchat_wire::{MessageId, Push, PushEvent, Seq, UserName};

use super::sealing::{OpenedWith, olm_open_with};
use super::{ClientError, ClientState, now_ms, to_records};
use crate::body::Body;
use crate::core::intake::{self, Intake};
use crate::crypto::olm::SessionSet;
use crate::envelope::ReceiptKind;
use crate::event::{ClientEvent, ReceivedMessage};
use crate::store::{InboundCommit, InboundReceipt};

/// A pushed 1:1 message, as the relay sent it.
pub(super) struct Pushed {
    /// Who sent it, as the relay names them.
    pub(super) from: UserName,
    /// The sender's message id.
    pub(super) id: MessageId,
    /// The Olm envelope.
    pub(super) ciphertext: Vec<u8>,
    /// When the relay took it.
    pub(super) relay_ts_ms: u64,
    /// Its place in this user's queue.
    pub(super) seq: Seq,
}

impl Pushed {
    /// The 1:1 message `push` carries, if it is one.
    pub(super) fn of(push: Push) -> Option<Self> {
        match push.event {
            PushEvent::Message {
                from,
                id,
                ciphertext,
            } => Some(Self {
                from,
                id,
                ciphertext,
                relay_ts_ms: push.relay_ts_ms,
                seq: push.seq.unwrap_or_default(),
            }),
            _ => None,
        }
    }
}

/// What to report of one event once the run is committed.
enum Report {
    /// A message to show (perhaps as undecryptable).
    Message(Box<ReceivedMessage>),
    /// A receipt: its status changes come back from the commit.
    Receipt { from: UserName, kind: ReceiptKind },
}

/// A run opened and not yet committed.
#[derive(Default)]
struct OpenedRun {
    /// One commit per event, in queue order, with its receipt if it is one; sessions are
    /// filled in at the end, with each sender's last event.
    events: Vec<(InboundCommit, Option<InboundReceipt>)>,
    /// What to report of each of `events`.
    reports: Vec<Report>,
    /// Each sender's sessions as they stand, and whether they moved.
    sessions: HashMap<UserName, (SessionSet, bool)>,
    /// Queue positions taken in (redeliveries included).
    seqs: Vec<Seq>,
    /// Whether a new inbound session used up a one-time key.
    account_changed: bool,
}

impl ClientState {
    /// Takes in `run`, pushed 1:1 messages in queue order, with one commit for all.
    pub(super) async fn take_in_messages(&self, run: Vec<Pushed>) -> Result<(), ClientError> {
        let now = now_ms();
        // Round trips first, with no lock held; a redelivery (stored already, or twice in
        // this run) needs only its acknowledgement.
        let mut checked = Vec::with_capacity(run.len());
        let mut in_run = HashSet::new();
        for message in run {
            let again = !in_run.insert((message.from.clone(), message.id))
                || self.store.has_message(&message.from, message.id)?;
            let envelope = match again {
                true => None,
                false => Some(
                    self.check_sender(&message.from, &message.ciphertext, now)
                        .await?,
                ),
            };
            checked.push((message, envelope));
        }
        let read_receipts_on = self.read_receipts()?;
        let mut identity = self.identity();
        let mut run = OpenedRun::default();
        for (message, envelope) in checked {
            run.seqs.push(message.seq);
            let Some(envelope) = envelope else { continue };
            let held = match run.sessions.entry(message.from.clone()) {
                Entry::Occupied(held) => held.into_mut(),
                Entry::Vacant(empty) => match self.sessions(&message.from) {
                    Ok(sessions) => empty.insert((sessions, false)),
                    Err(e) => {
                        // An earlier message of the run may have used up a one-time key:
                        // nothing of the run is committed, so the account goes back too.
                        if run.account_changed {
                            self.put_back_account(&mut identity)?;
                        }
                        return Err(e);
                    }
                },
            };
            let opened = olm_open_with(&mut identity, &mut held.0, envelope, now);
            held.1 |= opened.decrypted;
            run.account_changed |= opened.account_changed;
            let judged = intake::judge_opened(&opened.plaintext, message.id, opened.flag);
            self.add_opened(&mut run, message, opened, judged, read_receipts_on, now);
        }
        for (from, (sessions, moved)) in &run.sessions {
            let last = run.events.iter_mut().rev().find(|(c, _)| &c.from == from);
            if let (true, Some((last, _))) = (*moved, last) {
                last.sessions = to_records(sessions.seal(&self.key));
            }
        }
        let mut changed = Vec::new();
        if !run.events.is_empty() {
            self.commit_olm_with(&mut identity, run.account_changed, || {
                changed = self.store.commit_inbound_all(&run.events, &self.me)?;
                Ok(())
            })?;
        }
        drop(identity);
        self.report(run.reports, changed);
        for seq in run.seqs {
            self.mark_processed(seq);
        }
        Ok(())
    }

    /// Adds one opened event to `run`: a message to show, one kept as undecryptable, or a
    /// receipt (whose ids `core::intake::receipt_ids` limits).
    fn add_opened(
        &self,
        run: &mut OpenedRun,
        message: Pushed,
        opened: OpenedWith,
        judged: Intake,
        read_receipts_on: bool,
        now: u64,
    ) {
        let commit = |entry| InboundCommit {
            sessions: Vec::new(),
            pin: opened.pin.clone(),
            entry,
            from: message.from.clone(),
            id: message.id,
            seq: message.seq,
            group_session: None,
            group: None,
        };
        let (body, sent_ms, problem) = match judged {
            Intake::Receipt { kind, ids } => {
                let on = kind == ReceiptKind::Delivered || read_receipts_on;
                let ids = intake::receipt_ids(kind, &ids, on).to_vec();
                let receipt = InboundReceipt {
                    status: kind.status(),
                    ids,
                };
                run.events.push((commit(None), Some(receipt)));
                run.reports.push(Report::Receipt {
                    from: message.from.clone(),
                    kind,
                });
                return;
            }
            Intake::Show { body, sent_ms } => (Some(body), sent_ms, None),
            Intake::Undecryptable { problem, sent_ms } => {
                tracing::warn!(from = %message.from, id = %message.id, "message could not be decrypted; kept as undecryptable");
                (None, sent_ms.unwrap_or(message.relay_ts_ms), Some(problem))
            }
        };
        let received = ReceivedMessage {
            id: message.id,
            from: message.from.clone(),
            to: self.me.clone(),
            text: body.as_ref().and_then(Body::text),
            sent_ms,
            identity: opened.flag,
            problem,
            group: None,
            file: body.as_ref().and_then(Body::file),
        };
        run.events
            .push((commit(Some(received.history_entry(now))), None));
        run.reports.push(Report::Message(Box::new(received)));
    }

    /// Reports a committed run: its messages (and notes them for delivery receipts) and
    /// the status changes of its receipts (`changed`, per event, from the commit).
    fn report(&self, reports: Vec<Report>, changed: Vec<Vec<MessageId>>) {
        // One report per event, and the commit answered one list of ids per event.
        for (report, ids) in reports.into_iter().zip(changed) {
            match report {
                Report::Message(received) => {
                    if received.problem.is_none() {
                        self.note_delivered(&received.from, received.id);
                    }
                    let _ = self.events.send(ClientEvent::Message(*received));
                }
                Report::Receipt { from, kind } if !ids.is_empty() => {
                    let _ = self.events.send(ClientEvent::Receipt {
                        user: from,
                        kind,
                        ids,
                    });
                }
                Report::Receipt { .. } => {}
            }
        }
    }
}
