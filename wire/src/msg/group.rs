//! Groups' shared types and input rules: a group's state as the relay keeps it, membership
//! changes, and the Megolm session keys a sender hands to the other members.
//!
//! The relay knows who is in which group (design.md allows it to see membership) but never
//! what is said: a group message is one Megolm ciphertext, fanned out to every member's
//! durable queue, and each session key travels to each member inside an Olm message
//! ([`KeyShare`]) that only that member can open.

use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, UserName};

/// Longest group name, in characters.
pub const MAX_GROUP_NAME_CHARS: usize = 64;
/// Most members a group may have, the owner included (WeChat's limit for a group chat).
pub const MAX_GROUP_MEMBERS: usize = 500;
/// Largest Olm message carrying one session key, in bytes. A key share is about 600 bytes
/// (a pre-key message wrapping a ~230-byte Megolm session key); this leaves room to spare
/// while keeping a share for every member of the largest group, plus the largest message,
/// inside one control frame.
pub const MAX_KEY_SHARE_BYTES: usize = 1024;

/// Why a group name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupNameError {
    /// Empty, or only spaces.
    #[error("the group name is empty; give the group a name")]
    Empty,
    /// Longer than [`MAX_GROUP_NAME_CHARS`].
    #[error("the group name is {chars} characters long; the limit is {max}")]
    TooLong {
        /// Its length in characters.
        chars: usize,
        /// The most characters allowed ([`MAX_GROUP_NAME_CHARS`]).
        max: usize,
    },
    /// Contains a control character or starts with `#` (which names groups on the
    /// command line).
    #[error("the group name may not contain {what}; use plain text on one line")]
    Character {
        /// What was found.
        what: String,
    },
}

/// Checks a group name: 1 to [`MAX_GROUP_NAME_CHARS`] characters on one line, not starting
/// with `#`, not blank.
pub fn check_group_name(name: &str) -> Result<(), GroupNameError> {
    if name.trim().is_empty() {
        return Err(GroupNameError::Empty);
    }
    let chars = name.chars().count();
    if chars > MAX_GROUP_NAME_CHARS {
        return Err(GroupNameError::TooLong {
            chars,
            max: MAX_GROUP_NAME_CHARS,
        });
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(GroupNameError::Character {
            what: format!("a control character (U+{:04X})", u32::from(c)),
        });
    }
    if name.starts_with('#') {
        return Err(GroupNameError::Character {
            what: "a leading '#'".into(),
        });
    }
    Ok(())
}

/// One member of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    /// The member's username; the owner is a member too and has an entry like anyone else.
    pub user: UserName,
    /// When they joined, by the relay's clock, ms since the Unix epoch.
    pub joined_ms: u64,
}

/// A group's state after some change: what every member's view is built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// The group's id, chosen at random by the relay when the group was made.
    pub id: GroupId,
    /// Its name (not unique).
    pub name: String,
    /// Who may invite and remove members.
    pub owner: UserName,
    /// The membership version: raised by every join, leave, removal and change of owner.
    /// A [`crate::Request::GroupSend`] names the epoch its keys were shared for, and the
    /// relay refuses one made for another epoch.
    pub epoch: u64,
    /// When the group was made, ms since the Unix epoch.
    pub created_ms: u64,
    /// The members, longest-standing first.
    pub members: Vec<GroupMember>,
}

impl GroupInfo {
    /// Whether `user` is a member.
    pub fn has_member(&self, user: &UserName) -> bool {
        self.members.iter().any(|m| &m.user == user)
    }

    /// The group without its member list.
    pub fn summary(&self) -> GroupSummary {
        GroupSummary {
            id: self.id,
            name: self.name.clone(),
            owner: self.owner.clone(),
            epoch: self.epoch,
            created_ms: self.created_ms,
        }
    }
}

/// A group's state without its members, as a [`crate::PushEvent::GroupChanged`] carries it
/// to members who already know the list and only need the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSummary {
    /// The group's id, chosen at random by the relay when the group was made.
    pub id: GroupId,
    /// Its name.
    pub name: String,
    /// Its owner after the change.
    pub owner: UserName,
    /// Its membership epoch after the change.
    pub epoch: u64,
    /// When the group was made, ms since the Unix epoch.
    pub created_ms: u64,
}

impl GroupChange {
    /// Applies this change to `group` (the state before it), moving it to `summary`'s
    /// epoch, owner and name; `at_ms` is when a new member joined.
    pub fn apply(&self, group: &mut GroupInfo, summary: &GroupSummary, at_ms: u64) {
        match self {
            GroupChange::Joined { user, .. } => {
                if !group.has_member(user) {
                    group.members.push(GroupMember {
                        user: user.clone(),
                        joined_ms: at_ms,
                    });
                }
            }
            GroupChange::Left { user, .. } | GroupChange::Removed { user, .. } => {
                group.members.retain(|m| &m.user != user);
            }
            GroupChange::Created { .. } | GroupChange::Synced | GroupChange::Unknown => {}
        }
        group.name = summary.name.clone();
        group.owner = summary.owner.clone();
        group.epoch = summary.epoch;
    }
}

/// What changed in a group, in a [`crate::PushEvent::GroupChanged`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
pub enum GroupChange {
    /// The group was made by `by` (its owner) with the members in the snapshot.
    Created {
        /// Who made the group: its first owner and first member.
        by: UserName,
    },
    /// `user` was added by `by` (the owner).
    Joined {
        /// The new member.
        user: UserName,
        /// Who invited them.
        by: UserName,
    },
    /// `user` left; if they owned the group, `new_owner` took it over.
    Left {
        /// Who left.
        user: UserName,
        /// The longest-standing member, now the owner, if the owner left.
        #[serde(default)]
        new_owner: Option<UserName>,
    },
    /// `user` was removed by `by` (the owner).
    Removed {
        /// The removed member.
        user: UserName,
        /// Who removed them.
        by: UserName,
    },
    /// Nothing changed: the whole member list, sent to one member who asked for it
    /// (`Request::SyncGroup`) because they had no view to apply changes to.
    Synced,
    /// A change this peer does not know (from a newer relay).
    #[serde(other, deserialize_with = "crate::msg::skip_unknown_body")]
    Unknown,
}

/// A Megolm session key for one member, inside an Olm message only they can open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyShare {
    /// The member it is for.
    pub to: UserName,
    /// Opaque to the relay (an Olm envelope), at most [`MAX_KEY_SHARE_BYTES`].
    #[serde(with = "crate::bytes")]
    pub ciphertext: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_to_the_member_list() {
        let user = |n: &str| UserName::parse(n).expect("valid");
        let mut group = GroupInfo {
            id: GroupId([1; 16]),
            name: "g".into(),
            owner: user("alice"),
            epoch: 1,
            created_ms: 0,
            members: vec![GroupMember {
                user: user("alice"),
                joined_ms: 0,
            }],
        };
        let mut summary = group.summary();
        summary.epoch = 2;
        GroupChange::Joined {
            user: user("bob"),
            by: user("alice"),
        }
        .apply(&mut group, &summary, 5);
        assert_eq!(group.epoch, 2);
        assert!(group.has_member(&user("bob")));
        summary.epoch = 3;
        summary.owner = user("bob");
        GroupChange::Left {
            user: user("alice"),
            new_owner: Some(user("bob")),
        }
        .apply(&mut group, &summary, 6);
        assert_eq!(group.owner, user("bob"));
        assert_eq!(group.members.len(), 1);
    }

    #[test]
    fn group_names_are_one_line_of_up_to_64_characters() {
        assert_eq!(check_group_name("家人 👨‍👩‍👧"), Ok(()));
        assert_eq!(check_group_name(&"群".repeat(MAX_GROUP_NAME_CHARS)), Ok(()));
        assert_eq!(check_group_name("  "), Err(GroupNameError::Empty));
        assert_eq!(
            check_group_name(&"x".repeat(65))
                .expect_err("long")
                .to_string(),
            "the group name is 65 characters long; the limit is 64"
        );
        assert_eq!(
            check_group_name("a\nb").expect_err("control").to_string(),
            "the group name may not contain a control character (U+000A); use plain text on one line"
        );
        assert!(check_group_name("#family").is_err());
    }
}
