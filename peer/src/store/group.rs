//! A peer's groups, a second `impl` block of [`PeerStore`]: the groups it is or was in,
//! its outbound Megolm session per group, and the inbound sessions other members shared.
//!
//! Sessions arrive sealed by the caller. A group message about to be sent changes several
//! contacts' Olm sessions (the key shares), the outbound session, the history and the
//! outbox; [`PeerStore::commit_group_outbound`] commits all of it at once. Received group
//! events go through [`PeerStore::commit_inbound`], whose commit carries the group session
//! and group state they change.

use redb::ReadableTable;
use uchat_wire::{GroupId, UserName};

use crate::store::error::StoreError;
use crate::store::local::{PeerStore, append_history, put_outbox_in, put_pin, put_sessions};
use crate::store::records::{
    HistoryEntry, InboundGroupRecord, LocalGroup, OutboundGroupRecord, OutboxEntry, PinnedIdentity,
    SessionRecord,
};
use crate::store::tables::{
    INBOUND_GROUP_SESSIONS, OUTBOUND_GROUP_SESSIONS, PEER_GROUPS, decode, encode, read, write,
};

/// One contact's Olm state after encrypting a key share for them.
#[derive(Clone, Debug)]
pub struct ContactSessions {
    /// The member the key share was encrypted for; `sessions` and `pin` are theirs.
    pub contact: UserName,
    /// Their full new set of Olm sessions.
    pub sessions: Vec<SessionRecord>,
    /// Their identity to pin, on first contact.
    pub pin: Option<PinnedIdentity>,
}

/// Everything one group message about to be sent changes, for
/// [`PeerStore::commit_group_outbound`].
#[derive(Clone, Debug)]
pub struct GroupOutboundCommit {
    /// The Olm state of every member a key share was encrypted for.
    pub contacts: Vec<ContactSessions>,
    /// The group and the sender's outbound session after encrypting.
    pub outbound: (GroupId, OutboundGroupRecord),
    /// The history entry (normally pending; skipped if one with its id exists, as when a
    /// waiting message is encrypted again for new members).
    pub entry: HistoryEntry,
    /// The message for the relay (replacing an outbox entry with the same id in place).
    pub outbox: OutboxEntry,
    /// The pending upload this message carries, if any (marked sent as it, as for
    /// [`crate::store::OutboundCommit::done_upload`]).
    pub done_upload: Option<String>,
}

/// Saves what this peer knows of a group, merged with what is stored, in one transaction:
/// each of `seen` and `latest` keeps the higher epoch (the given one on a tie), so the
/// event intake and a reply from the relay, racing, never undo each other.
pub(crate) fn put_group_in(
    tx: &redb::WriteTransaction,
    group: &LocalGroup,
) -> Result<(), StoreError> {
    let mut table = tx.open_table(PEER_GROUPS)?;
    let key = group.latest.id.0.as_slice();
    let stored: Option<LocalGroup> = table
        .get(key)?
        .map(|v| decode(v.value(), "group"))
        .transpose()?;
    let merged = match stored {
        None => group.clone(),
        Some(stored) => LocalGroup {
            seen: match (stored.seen, &group.seen) {
                (Some(old), Some(new)) if old.epoch > new.epoch => Some(old),
                (old, None) => old,
                (_, new) => new.clone(),
            },
            latest: if stored.latest.epoch > group.latest.epoch {
                stored.latest
            } else {
                group.latest.clone()
            },
        },
    };
    table.insert(key, encode(&merged, "group")?.as_slice())?;
    Ok(())
}

pub(crate) fn put_inbound_group_session_in(
    tx: &redb::WriteTransaction,
    session: &InboundGroupRecord,
) -> Result<(), StoreError> {
    tx.open_table(INBOUND_GROUP_SESSIONS)?.insert(
        (
            session.group.0.as_slice(),
            session.sender.as_str(),
            session.session_id.as_str(),
        ),
        encode(session, "group session")?.as_slice(),
    )?;
    Ok(())
}

impl PeerStore {
    /// Saves what this peer knows of a group, merged with what is stored (see
    /// `put_group_in`: the higher epoch of each view wins).
    pub fn put_group(&self, group: &LocalGroup) -> Result<(), StoreError> {
        write(self.db(), |tx| put_group_in(tx, group))
    }

    /// [`PeerStore::put_group`] for each of `groups`, in one transaction: what a page of
    /// the relay's group list brings, at one commit rather than one per group.
    pub fn put_groups(&self, groups: &[LocalGroup]) -> Result<(), StoreError> {
        if groups.is_empty() {
            return Ok(());
        }
        write(self.db(), |tx| {
            groups.iter().try_for_each(|group| put_group_in(tx, group))
        })
    }

    /// What this peer knows of `group`, if it ever was in it.
    pub fn group(&self, group: GroupId) -> Result<Option<LocalGroup>, StoreError> {
        read(self.db(), |tx| {
            tx.open_table(PEER_GROUPS)?
                .get(group.0.as_slice())?
                .map(|v| decode(v.value(), "group"))
                .transpose()
        })
    }

    /// Every group this peer is or was in, in no particular order.
    pub fn groups(&self) -> Result<Vec<LocalGroup>, StoreError> {
        read(self.db(), |tx| {
            let table = tx.open_table(PEER_GROUPS)?;
            let mut out = Vec::new();
            for item in table.iter()? {
                out.push(decode(item?.1.value(), "group")?);
            }
            Ok(out)
        })
    }

    /// This peer's outbound session for `group`, if it has one.
    pub fn outbound_group_session(
        &self,
        group: GroupId,
    ) -> Result<Option<OutboundGroupRecord>, StoreError> {
        read(self.db(), |tx| {
            tx.open_table(OUTBOUND_GROUP_SESSIONS)?
                .get(group.0.as_slice())?
                .map(|v| decode(v.value(), "outbound group session"))
                .transpose()
        })
    }

    /// Forgets this peer's outbound session for `group`, so that the next message starts
    /// a new one (after a membership change).
    pub fn drop_outbound_group_session(&self, group: GroupId) -> Result<(), StoreError> {
        write(self.db(), |tx| {
            tx.open_table(OUTBOUND_GROUP_SESSIONS)?
                .remove(group.0.as_slice())?;
            Ok(())
        })
    }

    /// The session `sender` shared for `group` with id `session_id`, if any.
    pub fn inbound_group_session(
        &self,
        group: GroupId,
        sender: &UserName,
        session_id: &str,
    ) -> Result<Option<InboundGroupRecord>, StoreError> {
        read(self.db(), |tx| {
            tx.open_table(INBOUND_GROUP_SESSIONS)?
                .get((group.0.as_slice(), sender.as_str(), session_id))?
                .map(|v| decode(v.value(), "group session"))
                .transpose()
        })
    }

    /// The relay took the key shares for `delivered` that went with a message encrypted on
    /// session `session_id` of `group`: they need no other. Does nothing if the group's
    /// outbound session is another one by now.
    pub fn record_key_shares_delivered(
        &self,
        group: GroupId,
        session_id: &str,
        delivered: &[UserName],
    ) -> Result<(), StoreError> {
        if delivered.is_empty() {
            return Ok(());
        }
        write(self.db(), |tx| {
            let mut table = tx.open_table(OUTBOUND_GROUP_SESSIONS)?;
            let current: Option<OutboundGroupRecord> = table
                .get(group.0.as_slice())?
                .map(|v| decode(v.value(), "outbound group session"))
                .transpose()?;
            let Some(mut record) = current.filter(|r| r.session_id == session_id) else {
                return Ok(());
            };
            for user in delivered {
                if !record.shared_with.contains(user) {
                    record.shared_with.push(user.clone());
                }
            }
            table.insert(
                group.0.as_slice(),
                encode(&record, "outbound group session")?.as_slice(),
            )?;
            Ok(())
        })
    }

    /// Atomic commit of a group message about to be sent: in one transaction, replaces the
    /// Olm sessions (and pins) of every key share's member, saves the outbound session,
    /// appends the history entry (unless its (from, id) exists) and puts the message in the
    /// outbox (replacing an entry with the same id in its place).
    pub fn commit_group_outbound(&self, c: &GroupOutboundCommit) -> Result<(), StoreError> {
        write(self.db(), |tx| {
            for contact in &c.contacts {
                put_sessions(tx, &contact.contact, &contact.sessions)?;
                put_pin(tx, &contact.contact, contact.pin.as_ref())?;
            }
            let (group, outbound) = &c.outbound;
            tx.open_table(OUTBOUND_GROUP_SESSIONS)?.insert(
                group.0.as_slice(),
                encode(outbound, "outbound group session")?.as_slice(),
            )?;
            append_history(tx, &c.entry)?;
            if let Some(upload) = &c.done_upload {
                crate::store::file::upload_sent_as_in(tx, upload, c.outbox.id)?;
            }
            put_outbox_in(tx, &c.outbox, &c.entry.from)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::{ConversationId, EntryFlags, EntryStatus, GroupOutbox};
    use uchat_wire::{GroupInfo, GroupMember, MessageId};

    fn user(name: &str) -> UserName {
        UserName::parse(name).expect("valid")
    }

    const G: GroupId = GroupId([3; 16]);

    fn info(epoch: u64, members: &[&str]) -> GroupInfo {
        GroupInfo {
            id: G,
            name: "家人".into(),
            owner: user("alice"),
            epoch,
            created_ms: 1,
            members: members
                .iter()
                .map(|m| GroupMember {
                    user: user(m),
                    joined_ms: 1,
                })
                .collect(),
        }
    }

    fn outbound(messages: u32) -> OutboundGroupRecord {
        OutboundGroupRecord {
            session_id: "s1".into(),
            pickle: "sealed".into(),
            epoch: 2,
            created_ms: 5,
            messages,
            shared_with: vec![user("bob")],
            share_pickle: "sealed share".into(),
        }
    }

    #[test]
    fn groups_and_sessions_are_kept_per_group_and_sender() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = PeerStore::open(&dir.path().join("peer.redb")).expect("opens");
        assert_eq!(store.group(G).expect("reads"), None);
        let group = LocalGroup {
            seen: Some(info(1, &["alice", "bob"])),
            latest: info(2, &["alice", "bob", "dave"]),
        };
        store.put_group(&group).expect("saves");
        assert_eq!(store.group(G).expect("reads"), Some(group.clone()));
        assert_eq!(store.groups().expect("lists"), std::slice::from_ref(&group));
        // A reply from the relay that knows no events (seen: None), or an older one, does
        // not undo what the events built.
        store
            .put_group(&LocalGroup {
                seen: None,
                latest: info(1, &["alice"]),
            })
            .expect("saves");
        assert_eq!(store.group(G).expect("reads"), Some(group));
        let session = InboundGroupRecord {
            group: G,
            sender: user("bob"),
            session_id: "bob-session".into(),
            pickle: "sealed".into(),
            seen: vec![0, 1],
            epoch: 2,
            received_ms: 9,
        };
        store
            .write_inbound_session_for_test(&session)
            .expect("saves");
        assert_eq!(
            store
                .inbound_group_session(G, &user("bob"), "bob-session")
                .expect("reads"),
            Some(session)
        );
        assert_eq!(
            store
                .inbound_group_session(G, &user("dave"), "bob-session")
                .expect("reads"),
            None,
            "bound to its sender"
        );
    }

    #[test]
    fn groups_put_together_merge_like_groups_put_one_by_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = PeerStore::open(&dir.path().join("peer.redb")).expect("opens");
        let known = LocalGroup {
            seen: Some(info(3, &["alice", "bob"])),
            latest: info(3, &["alice", "bob"]),
        };
        store.put_group(&known).expect("saves");
        let mut other = info(1, &["alice"]);
        other.id = GroupId([9; 16]);
        let replies = [
            // An older reply for the known group: it keeps what it has.
            LocalGroup {
                seen: None,
                latest: info(2, &["alice"]),
            },
            LocalGroup {
                seen: None,
                latest: other.clone(),
            },
        ];
        store.put_groups(&replies).expect("saves");
        assert_eq!(store.group(G).expect("reads"), Some(known));
        assert_eq!(
            store.group(other.id).expect("reads").map(|g| g.latest),
            Some(other)
        );
        store.put_groups(&[]).expect("nothing to do");
    }

    /// A group message from alice to group G with one Olm session to bob, its outbound
    /// session at `messages` messages and `ciphertext` in the outbox: what a send commits,
    /// and with another ciphertext what a re-encryption of the same message commits.
    fn group_commit(messages: u32, ciphertext: &[u8]) -> GroupOutboundCommit {
        let id = MessageId([1; 16]);
        GroupOutboundCommit {
            contacts: vec![ContactSessions {
                contact: user("bob"),
                sessions: vec![SessionRecord {
                    session_id: "olm".into(),
                    pickle: "sealed".into(),
                    last_used_ms: 1,
                    peer_key: vec![2; 32],
                }],
                pin: None,
            }],
            outbound: (G, outbound(messages)),
            entry: HistoryEntry {
                id,
                conversation: ConversationId::group(G),
                from: user("alice"),
                to: user("alice"),
                sent_ms: 1,
                received_ms: 1,
                text: Some("大家好".into()),
                status: EntryStatus::Pending,
                flags: EntryFlags::default(),
                group: Some(G),
                group_change: None,
                file: None,
                position: 0,
            },
            outbox: OutboxEntry {
                id,
                to: user("alice"),
                ciphertext: ciphertext.to_vec(),
                created_ms: 1,
                group: Some(GroupOutbox {
                    group: G,
                    epoch: 2,
                    session_id: "s1".into(),
                    key_shares: vec![],
                    incomplete: false,
                }),
            },
            done_upload: None,
        }
    }

    /// A new store (in the temporary folder returned with it, which must outlive it) into
    /// which the group message of [`group_commit`] was committed.
    fn store_with_group_message(
        messages: u32,
        ciphertext: &[u8],
    ) -> (tempfile::TempDir, PeerStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = PeerStore::open(&dir.path().join("peer.redb")).expect("opens");
        store
            .commit_group_outbound(&group_commit(messages, ciphertext))
            .expect("commits");
        (dir, store)
    }

    #[test]
    fn a_group_message_commit_saves_everything_and_a_reencryption_keeps_its_place() {
        let (_dir, store) = store_with_group_message(1, b"first");
        store
            .commit_group_outbound(&group_commit(2, b"again"))
            .expect("commits");
        let outbox = store.outbox().expect("reads");
        assert_eq!(outbox.len(), 1, "replaced in place");
        assert_eq!(outbox[0].ciphertext, b"again");
        assert_eq!(
            store
                .history(&ConversationId::group(G), 10)
                .expect("reads")
                .len(),
            1
        );
        assert_eq!(
            store.outbound_group_session(G).expect("reads"),
            Some(outbound(2))
        );
        assert_eq!(store.olm_sessions(&user("bob")).expect("reads").len(), 1);
    }

    #[test]
    fn key_shares_are_recorded_for_the_current_outbound_session_only_until_it_is_dropped() {
        let (_dir, store) = store_with_group_message(2, b"first");
        store
            .record_key_shares_delivered(G, "another session", &[user("carol")])
            .expect("ignored");
        assert_eq!(
            store.outbound_group_session(G).expect("reads"),
            Some(outbound(2))
        );
        store
            .record_key_shares_delivered(G, "s1", &[user("bob"), user("carol")])
            .expect("records");
        let shared = store
            .outbound_group_session(G)
            .expect("reads")
            .expect("some");
        assert_eq!(shared.shared_with, [user("bob"), user("carol")]);
        store.drop_outbound_group_session(G).expect("drops");
        assert_eq!(store.outbound_group_session(G).expect("reads"), None);
    }

    #[test]
    fn a_conversation_id_names_its_group_and_a_direct_one_none() {
        assert_eq!(ConversationId::group(G).group_id(), Some(G));
        assert_eq!(ConversationId::direct(&user("bob")).group_id(), None);
    }

    impl PeerStore {
        fn write_inbound_session_for_test(
            &self,
            session: &InboundGroupRecord,
        ) -> Result<(), StoreError> {
            write(self.db(), |tx| put_inbound_group_session_in(tx, session))
        }
    }
}
