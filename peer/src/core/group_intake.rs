//! What incoming group events do, with no I/O: how a membership event moves this member's
//! view of the group ([`next_view`]), who may write to it ([`may_write`]) and what a group
//! message is once Megolm has had its go at it ([`judge_group_message`]).
//! `ClientState::take_in_group_changed` and `take_in_group_message` ask these and commit
//! the answers.
//!
//! The view (`LocalGroup::seen`) is built only from membership events, in queue order, each
//! of which leaves a notice in the group's history; what relay replies report
//! (`LocalGroup::latest`) serves names and lists only. So a relay cannot add a reader or a
//! writer without it showing.

use uchat_wire::{GroupChange, GroupId, GroupInfo, GroupMember, GroupSummary, MessageId, UserName};

use crate::body::Body;
use crate::crypto::megolm::MegolmError;
use crate::envelope::Payload;
use crate::store::LocalGroup;

/// What a membership event does to this member's view of the group.
#[derive(Debug, PartialEq)]
pub(crate) enum ViewStep {
    /// Taken in before (its epoch is behind the view's, or equal and not a full list):
    /// nothing changes and nothing is shown.
    Stale,
    /// The view after the event.
    Moved(GroupInfo),
    /// The event does not follow on from the view (an epoch was skipped, or a change came
    /// with no view to apply it to): the relay is asked for the member list, and the view
    /// stays as it was (`None`: there is none yet).
    AskForList(Option<GroupInfo>),
}

/// How the event `change`, moving the group to `summary` at `relay_ts_ms` (with the whole
/// member list in `members` for a newcomer or a sync), moves `view`.
///
/// A member list is taken only where there is no view to apply the change to, or on an
/// explicit `Synced`; otherwise the change is applied to the view one epoch behind it, so
/// an event cannot slip in a member its notice does not name.
pub(crate) fn next_view(
    view: Option<GroupInfo>,
    summary: &GroupSummary,
    change: &GroupChange,
    members: Option<Vec<GroupMember>>,
    relay_ts_ms: u64,
) -> ViewStep {
    let synced = *change == GroupChange::Synced;
    if let Some(seen) = &view
        && (seen.epoch > summary.epoch || (seen.epoch == summary.epoch && !synced))
    {
        return ViewStep::Stale;
    }
    let full = |members: Vec<GroupMember>| GroupInfo {
        id: summary.id,
        name: summary.name.clone(),
        owner: summary.owner.clone(),
        epoch: summary.epoch,
        created_ms: summary.created_ms,
        members,
    };
    match (view, members) {
        (None, Some(members)) => ViewStep::Moved(full(members)),
        (Some(_), Some(members)) if synced => ViewStep::Moved(full(members)),
        (Some(mut group), _) if group.epoch + 1 == summary.epoch => {
            change.apply(&mut group, summary, relay_ts_ms);
            ViewStep::Moved(group)
        }
        (view, _) => ViewStep::AskForList(view),
    }
}

/// The group at the highest epoch known, given what was stored (`stored`, from relay
/// replies) and the view events built (`seen`).
pub(crate) fn latest_of(stored: Option<LocalGroup>, seen: &GroupInfo) -> GroupInfo {
    match stored {
        Some(local) if local.latest.epoch > seen.epoch => local.latest,
        _ => seen.clone(),
    }
}

/// Whether `from` may write to the group this user (`me`) keeps as `local`: a member of
/// the view events built, and not this user (a message of mine does not come back to me).
pub(crate) fn may_write(local: Option<&LocalGroup>, from: &UserName, me: &UserName) -> bool {
    from != me
        && local
            .and_then(|g| g.seen.as_ref())
            .is_some_and(|seen| seen.has_member(from))
}

/// What Megolm made of a group message.
#[derive(Debug)]
pub(crate) enum GroupOpened {
    /// The sender never shared the session the message names with this user.
    NoKey,
    /// The session was there; decrypting gave this.
    Decrypted(Result<Vec<u8>, MegolmError>),
}

/// What an incoming group message turned out to be.
#[derive(Debug, PartialEq)]
pub(crate) enum GroupIntake {
    /// Refused, with why: stored nowhere, the person told (forged, replayed, malformed,
    /// or naming another group, id or sender than the relay says).
    Refused(String),
    /// Kept in history: `body` to show, or the `problem` that keeps it undecryptable;
    /// written at `sent_ms` (the sender's clock if the payload was read, else the relay's).
    Kept {
        /// The text or file, if it can be shown.
        body: Option<Body>,
        /// Why it cannot be shown, if it cannot.
        problem: Option<String>,
        /// When it was written.
        sent_ms: u64,
    },
}

/// Judges what Megolm made of a message the relay delivered from `from` to `group` under
/// `id` at `relay_ts_ms`.
///
/// The rules: a forged, replayed or malformed message and one whose signed payload names
/// another group, id or sender than the relay says are refused; one without a key (which
/// queue order should make impossible) or with a recoverable failure, or content this
/// version cannot show, is kept as undecryptable, so the person sees that something came.
pub(crate) fn judge_group_message(
    opened: GroupOpened,
    group: GroupId,
    id: MessageId,
    from: &UserName,
    relay_ts_ms: u64,
) -> GroupIntake {
    let kept = |problem: String| GroupIntake::Kept {
        body: None,
        problem: Some(problem),
        sent_ms: relay_ts_ms,
    };
    let plaintext = match opened {
        GroupOpened::NoKey => {
            return kept(format!(
                "{from} never shared the key to this message with you"
            ));
        }
        GroupOpened::Decrypted(Err(
            e
            @ (MegolmError::Forged | MegolmError::Replayed { .. } | MegolmError::MalformedMessage),
        )) => return GroupIntake::Refused(e.to_string()),
        GroupOpened::Decrypted(Err(e)) => return kept(e.to_string()),
        GroupOpened::Decrypted(Ok(plaintext)) => plaintext,
    };
    let payload = match Payload::from_bytes(&plaintext) {
        Ok(payload) => payload,
        Err(e) => return GroupIntake::Refused(e.to_string()),
    };
    if payload.group != Some(group) || payload.id != id || payload.sender.as_ref() != Some(from) {
        return GroupIntake::Refused(
            "the message names another group, id or sender than the relay says".into(),
        );
    }
    let (body, problem) = match Body::from_content(payload.content) {
        Ok(Some(body)) => (Some(body), None),
        Ok(None) => (
            None,
            Some("content this version of Uchat cannot show".into()),
        ),
        Err(problem) => (None, Some(problem)),
    };
    GroupIntake::Kept {
        body,
        problem,
        sent_ms: payload.sent_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{GROUP, group_of, user};
    use crate::envelope::Content;

    const ID: MessageId = MessageId([9; 16]);

    fn members(info: &GroupInfo) -> Vec<&str> {
        info.members.iter().map(|m| m.user.as_str()).collect()
    }

    fn joined(name: &str) -> GroupChange {
        GroupChange::Joined {
            user: user(name),
            by: user("alice"),
        }
    }

    #[test]
    fn a_change_one_epoch_on_is_applied_to_the_view_and_its_list_is_not_taken() {
        let view = group_of(4, &["alice", "bob"]);
        let summary = group_of(5, &[]).summary();
        // A list that names an extra member the change does not: the change wins.
        let list = group_of(5, &["alice", "bob", "carol", "mallory"]).members;
        let step = next_view(Some(view), &summary, &joined("carol"), Some(list), 77);
        let ViewStep::Moved(moved) = step else {
            panic!("{step:?}");
        };
        assert_eq!(moved.epoch, 5);
        assert_eq!(members(&moved), ["alice", "bob", "carol"]);
        assert_eq!(moved.members[2].joined_ms, 77);
    }

    #[test]
    fn an_event_taken_in_before_changes_nothing() {
        let view = group_of(5, &["alice", "bob"]);
        for epoch in [4, 5] {
            let summary = group_of(epoch, &[]).summary();
            let step = next_view(Some(view.clone()), &summary, &joined("carol"), None, 1);
            assert_eq!(step, ViewStep::Stale, "epoch {epoch}");
        }
        // A sync at the same epoch is taken, list and all.
        let list = group_of(5, &["alice", "bob", "carol"]);
        let step = next_view(
            Some(view),
            &list.summary(),
            &GroupChange::Synced,
            Some(list.members.clone()),
            1,
        );
        assert_eq!(step, ViewStep::Moved(list));
    }

    #[test]
    fn a_skipped_epoch_asks_for_the_list_and_keeps_the_view() {
        let view = group_of(4, &["alice", "bob"]);
        let summary = group_of(6, &[]).summary();
        let list = group_of(6, &["alice", "bob", "mallory"]).members;
        let step = next_view(
            Some(view.clone()),
            &summary,
            &joined("mallory"),
            Some(list),
            1,
        );
        assert_eq!(step, ViewStep::AskForList(Some(view)));
        // No view and no list: nothing to build one from yet.
        let step = next_view(None, &summary, &joined("carol"), None, 1);
        assert_eq!(step, ViewStep::AskForList(None));
    }

    #[test]
    fn a_newcomer_takes_the_whole_list() {
        let list = group_of(3, &["alice", "bob", "carol"]);
        let step = next_view(
            None,
            &list.summary(),
            &joined("carol"),
            Some(list.members.clone()),
            1,
        );
        assert_eq!(step, ViewStep::Moved(list));
    }

    #[test]
    fn latest_keeps_the_higher_epoch() {
        let seen = group_of(5, &["alice"]);
        let newer = LocalGroup {
            seen: None,
            latest: group_of(7, &["alice", "bob"]),
        };
        assert_eq!(latest_of(Some(newer), &seen).epoch, 7);
        let older = LocalGroup {
            seen: None,
            latest: group_of(2, &[]),
        };
        assert_eq!(latest_of(Some(older), &seen), seen);
        assert_eq!(latest_of(None, &seen), seen);
    }

    #[test]
    fn only_members_of_the_view_events_built_may_write_and_not_i_myself() {
        let local = LocalGroup {
            seen: Some(group_of(2, &["alice", "bob"])),
            // The relay's reply names mallory; no event did.
            latest: group_of(3, &["alice", "bob", "mallory"]),
        };
        let me = user("alice");
        assert!(may_write(Some(&local), &user("bob"), &me));
        assert!(!may_write(Some(&local), &user("mallory"), &me));
        assert!(!may_write(Some(&local), &me, &me));
        let no_view = LocalGroup {
            seen: None,
            latest: local.latest.clone(),
        };
        assert!(!may_write(Some(&no_view), &user("bob"), &me));
        assert!(!may_write(None, &user("bob"), &me));
    }

    fn plaintext(group: Option<GroupId>, id: MessageId, sender: &str) -> Vec<u8> {
        Payload {
            id,
            sent_ms: 555,
            content: Content::Text { text: "hi".into() },
            group,
            sender: Some(user(sender)),
        }
        .to_bytes()
    }

    fn judge(opened: GroupOpened) -> GroupIntake {
        judge_group_message(opened, GROUP, ID, &user("bob"), 999)
    }

    #[test]
    fn a_good_message_is_shown_at_the_senders_time() {
        let opened = GroupOpened::Decrypted(Ok(plaintext(Some(GROUP), ID, "bob")));
        assert_eq!(
            judge(opened),
            GroupIntake::Kept {
                body: Some(Body::Text("hi".into())),
                problem: None,
                sent_ms: 555,
            }
        );
    }

    #[test]
    fn forged_replayed_malformed_or_misnamed_messages_are_refused() {
        for error in [
            MegolmError::Forged,
            MegolmError::Replayed { index: 4 },
            MegolmError::MalformedMessage,
        ] {
            let intake = judge(GroupOpened::Decrypted(Err(error)));
            assert!(matches!(intake, GroupIntake::Refused(_)), "{intake:?}");
        }
        let misnamed = [
            plaintext(Some(GroupId([4; 16])), ID, "bob"),
            plaintext(None, ID, "bob"),
            plaintext(Some(GROUP), MessageId([1; 16]), "bob"),
            plaintext(Some(GROUP), ID, "carol"),
            b"not a payload".to_vec(),
        ];
        for bytes in misnamed {
            let intake = judge(GroupOpened::Decrypted(Ok(bytes)));
            assert!(matches!(intake, GroupIntake::Refused(_)), "{intake:?}");
        }
    }

    #[test]
    fn a_message_without_its_key_is_kept_as_undecryptable_at_the_relays_time() {
        for opened in [
            GroupOpened::NoKey,
            GroupOpened::Decrypted(Err(MegolmError::UnknownIndex)),
        ] {
            let GroupIntake::Kept {
                body,
                problem,
                sent_ms,
            } = judge(opened)
            else {
                panic!("refused");
            };
            assert_eq!((body, sent_ms), (None, 999));
            assert!(problem.is_some());
        }
    }
}
