//! Group sending's rules, with no I/O: whom a group message goes to and whose copy of the
//! session key it still has to carry ([`recipients`], [`still_to_share`]), and when a
//! waiting message is encrypted again before it goes ([`needs_reencryption`]); what one
//! member's claimed key and sealing come to is [`super::share`]'s.
//! `ClientState::encrypt_for_group` and `deliver_group` ask these.
//!
//! Keys go only to the members of the view membership events built (`LocalGroup::seen`),
//! never to a member only a relay reply names; a share counts as given only once the
//! relay took a message carrying it (`outbox::shares_given`).

use uchat_wire::{GroupInfo, UserName};

use crate::store::{GroupOutbox, LocalGroup};

/// The view a message to the group is encrypted for: the membership events built, if this
/// user (`me`) is a member of it; `None` if there is no view or this user is not in it.
pub(crate) fn sending_view(local: Option<LocalGroup>, me: &UserName) -> Option<GroupInfo> {
    local
        .and_then(|g| g.seen)
        .filter(|seen| seen.has_member(me))
}

/// Everyone in `view` but this user: who the message is for.
pub(crate) fn recipients<'a>(view: &'a GroupInfo, me: &UserName) -> Vec<&'a UserName> {
    view.members
        .iter()
        .map(|m| &m.user)
        .filter(|user| *user != me)
        .collect()
}

/// The `recipients` the relay has not yet taken a share of this session from
/// (`shared_with`): whose copy of the key the message carries.
pub(crate) fn still_to_share<'a>(
    recipients: &[&'a UserName],
    shared_with: &[UserName],
) -> Vec<&'a UserName> {
    recipients
        .iter()
        .copied()
        .filter(|user| !shared_with.contains(user))
        .collect()
}

/// Whether a message waiting in the outbox (`part`) must be encrypted again before it
/// goes: some share waited for the relay, or the view has moved to another epoch
/// (`seen_epoch`) since it was encrypted, so its keys went to other members.
pub(crate) fn needs_reencryption(part: &GroupOutbox, seen_epoch: Option<u64>) -> bool {
    part.incomplete || seen_epoch.is_some_and(|epoch| epoch != part.epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures::{GROUP, group_of, user};

    fn names(users: &[&UserName]) -> Vec<String> {
        users.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn keys_go_only_to_the_members_events_named_and_not_to_me() {
        let local = LocalGroup {
            seen: Some(group_of(4, &["alice", "bob", "carol"])),
            // A relay reply that names mallory; no event did.
            latest: group_of(5, &["alice", "bob", "carol", "mallory"]),
        };
        let me = user("alice");
        let view = sending_view(Some(local), &me).expect("a member");
        assert_eq!(view.epoch, 4);
        assert_eq!(names(&recipients(&view, &me)), ["bob", "carol"]);
    }

    #[test]
    fn there_is_no_sending_without_a_view_that_has_me_in_it() {
        let me = user("alice");
        let removed = LocalGroup {
            seen: Some(group_of(6, &["bob"])),
            latest: group_of(6, &["bob"]),
        };
        assert_eq!(sending_view(Some(removed), &me), None);
        let replies_only = LocalGroup {
            seen: None,
            latest: group_of(2, &["alice", "bob"]),
        };
        assert_eq!(sending_view(Some(replies_only), &me), None);
        assert_eq!(sending_view(None, &me), None);
    }

    #[test]
    fn a_share_the_relay_took_is_not_carried_again() {
        let view = group_of(4, &["alice", "bob", "carol", "dave"]);
        let me = user("alice");
        let to = recipients(&view, &me);
        let left = still_to_share(&to, &[user("carol")]);
        assert_eq!(names(&left), ["bob", "dave"]);
        assert!(still_to_share(&to, &[user("bob"), user("carol"), user("dave")]).is_empty());
    }

    #[test]
    fn a_waiting_message_is_encrypted_again_if_a_share_waited_or_the_epoch_moved() {
        let part = |epoch, incomplete| GroupOutbox {
            group: GROUP,
            epoch,
            session_id: "s".into(),
            key_shares: Vec::new(),
            incomplete,
        };
        assert!(!needs_reencryption(&part(4, false), Some(4)));
        assert!(!needs_reencryption(&part(4, false), None));
        assert!(needs_reencryption(&part(4, true), Some(4)));
        assert!(needs_reencryption(&part(4, false), Some(5)));
    }
}
