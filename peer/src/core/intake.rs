//! What an incoming 1:1 message is, once Olm has had its go at it, with no I/O: a body to
//! show, a receipt, or something kept as undecryptable with the reason ([`judge_opened`]);
//! and which message ids a receipt may move ([`receipt_ids`]). `ClientState::take_in_messages`
//! asks these and commits the answer. A message is never dropped for failing: it is kept,
//! marked, so the person sees that something arrived.

use uchat_wire::MessageId;

use crate::body::Body;
use crate::envelope::{Content, MAX_RECEIPT_IDS, Payload, ReceiptKind};
use crate::store::IdentityFlag;

/// What an opened 1:1 message turned out to be.
#[derive(Debug, PartialEq)]
pub(crate) enum Intake {
    /// Something to show, written at `sent_ms` by the sender's clock.
    Show {
        /// The text or file.
        body: Body,
        /// The sender's clock when they wrote it.
        sent_ms: u64,
    },
    /// A receipt: `ids` of this user's messages were delivered or read.
    Receipt {
        /// Delivered or read.
        kind: ReceiptKind,
        /// The messages it names, as the sender listed them.
        ids: Vec<MessageId>,
    },
    /// Kept in history as undecryptable, with why; written at `sent_ms` by the sender's
    /// clock if the payload could be read that far.
    Undecryptable {
        /// Why it cannot be shown.
        problem: String,
        /// The sender's clock, from a payload that was read but cannot be shown.
        sent_ms: Option<u64>,
    },
}

/// Kept as undecryptable for `problem`, with no time of the sender's.
fn unreadable(problem: impl Into<String>) -> Intake {
    Intake::Undecryptable {
        problem: problem.into(),
        sent_ms: None,
    }
}

/// Judges what Olm made of a message the relay delivered under `relay_id`: its plaintext
/// (or why there is none) and what the sender's identity key was (`flag`).
///
/// The rules: a payload must name the id the relay delivered it under and must not be a
/// group message; a receipt counts only from a sender whose key did not change (otherwise
/// it is kept like any content this version cannot show); content this version does not
/// know is kept, not dropped.
pub(crate) fn judge_opened(
    plaintext: &Result<Vec<u8>, String>,
    relay_id: MessageId,
    flag: IdentityFlag,
) -> Intake {
    let plain = match plaintext {
        Ok(plain) => plain,
        Err(problem) => return unreadable(problem.clone()),
    };
    let payload = match Payload::from_bytes(plain) {
        Ok(payload) => payload,
        Err(e) => return unreadable(e.to_string()),
    };
    if payload.id != relay_id {
        return unreadable("message id inside the encryption does not match the relay's");
    }
    if payload.group.is_some() {
        return unreadable("a group message delivered as a 1:1 message");
    }
    match payload.content {
        Content::Receipt { kind, ids } if flag != IdentityFlag::Changed => {
            Intake::Receipt { kind, ids }
        }
        content => match Body::from_content(content) {
            Ok(Some(body)) => Intake::Show {
                body,
                sent_ms: payload.sent_ms,
            },
            Ok(None) => Intake::Undecryptable {
                problem: "content this version of Uchat cannot show".into(),
                sent_ms: Some(payload.sent_ms),
            },
            Err(problem) => Intake::Undecryptable {
                problem,
                sent_ms: Some(payload.sent_ms),
            },
        },
    }
}

/// The ids a receipt of `kind` may move forward: none for a read receipt while this
/// device sends none itself (`read_receipts_on` false: who shows nothing sees nothing),
/// and at most [`MAX_RECEIPT_IDS`] of them.
pub(crate) fn receipt_ids(
    kind: ReceiptKind,
    ids: &[MessageId],
    read_receipts_on: bool,
) -> &[MessageId] {
    if kind == ReceiptKind::Read && !read_receipts_on {
        return &[];
    }
    &ids[..ids.len().min(MAX_RECEIPT_IDS)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use uchat_wire::GroupId;

    const ID: MessageId = MessageId([7; 16]);

    fn sealed(content: Content, id: MessageId, group: Option<GroupId>) -> Result<Vec<u8>, String> {
        Ok(Payload {
            id,
            sent_ms: 1_234,
            content,
            group,
            sender: None,
        }
        .to_bytes())
    }

    fn text(words: &str) -> Content {
        Content::Text { text: words.into() }
    }

    fn receipt() -> Content {
        Content::Receipt {
            kind: ReceiptKind::Delivered,
            ids: vec![MessageId([1; 16])],
        }
    }

    fn undecryptable(intake: &Intake) -> &str {
        match intake {
            Intake::Undecryptable { problem, .. } => problem,
            other => panic!("expected undecryptable, got {other:?}"),
        }
    }

    #[test]
    fn a_text_is_shown_at_the_senders_time() {
        let intake = judge_opened(&sealed(text("你好"), ID, None), ID, IdentityFlag::Known);
        assert_eq!(
            intake,
            Intake::Show {
                body: Body::Text("你好".into()),
                sent_ms: 1_234
            }
        );
        // A changed identity still shows the text; the flag goes with the entry.
        let intake = judge_opened(&sealed(text("hi"), ID, None), ID, IdentityFlag::Changed);
        assert!(matches!(intake, Intake::Show { .. }), "{intake:?}");
    }

    #[test]
    fn what_cannot_be_read_is_kept_as_undecryptable_with_the_reason() {
        let failed = judge_opened(&Err("no session".into()), ID, IdentityFlag::Known);
        assert_eq!(undecryptable(&failed), "no session");
        let garbage = judge_opened(&Ok(vec![0xc1, 0x00]), ID, IdentityFlag::Known);
        assert!(!undecryptable(&garbage).is_empty());
        let unknown = judge_opened(&sealed(Content::Unknown, ID, None), ID, IdentityFlag::Known);
        assert!(undecryptable(&unknown).contains("cannot show"));
        // A payload that was read keeps the sender's time; one that was not has none.
        assert!(matches!(
            unknown,
            Intake::Undecryptable {
                sent_ms: Some(1_234),
                ..
            }
        ));
        assert!(matches!(
            failed,
            Intake::Undecryptable { sent_ms: None, .. }
        ));
    }

    #[test]
    fn a_payload_moved_to_another_id_or_out_of_a_group_is_refused() {
        let moved = judge_opened(
            &sealed(text("hi"), MessageId([8; 16]), None),
            ID,
            IdentityFlag::Known,
        );
        assert!(undecryptable(&moved).contains("does not match"));
        let from_group = judge_opened(
            &sealed(text("hi"), ID, Some(GroupId([3; 16]))),
            ID,
            IdentityFlag::Known,
        );
        assert!(undecryptable(&from_group).contains("group message"));
    }

    #[test]
    fn a_receipt_counts_only_from_an_unchanged_identity() {
        let known = judge_opened(&sealed(receipt(), ID, None), ID, IdentityFlag::Known);
        assert_eq!(
            known,
            Intake::Receipt {
                kind: ReceiptKind::Delivered,
                ids: vec![MessageId([1; 16])]
            }
        );
        let new = judge_opened(&sealed(receipt(), ID, None), ID, IdentityFlag::New);
        assert!(matches!(new, Intake::Receipt { .. }), "{new:?}");
        let changed = judge_opened(&sealed(receipt(), ID, None), ID, IdentityFlag::Changed);
        assert!(undecryptable(&changed).contains("cannot show"));
    }

    #[test]
    fn read_receipts_are_ignored_while_this_device_sends_none_and_capped() {
        let ids: Vec<MessageId> = (0..=MAX_RECEIPT_IDS)
            .map(|n| MessageId([(n % 251) as u8; 16]))
            .collect();
        assert!(receipt_ids(ReceiptKind::Read, &ids, false).is_empty());
        assert_eq!(
            receipt_ids(ReceiptKind::Read, &ids, true).len(),
            MAX_RECEIPT_IDS
        );
        assert_eq!(
            receipt_ids(ReceiptKind::Delivered, &ids, false).len(),
            MAX_RECEIPT_IDS,
            "delivery receipts always count"
        );
        assert_eq!(
            receipt_ids(ReceiptKind::Delivered, &ids[..2], true),
            &ids[..2]
        );
    }
}
