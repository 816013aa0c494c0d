//! Groups on the client: making and managing them, sending group messages (Megolm, with the
//! session key shared to each member over Olm) and taking in group events.
//!
//! Sending: each member keeps one outbound Megolm session per group. It is replaced when
//! the membership changes, after 1,000 messages and after 7 days
//! ([`megolm::needs_rotation`]). Its key goes to every other member inside an Olm message,
//! always from the session's first message (every member of a session's epoch may read all
//! of it), bundled with each message until the relay has taken one for that member (a
//! bundle written offline and never delivered, or answered as a duplicate, shares
//! nothing); the relay queues the keys before the message in one transaction. Keys go only
//! to the members of [`LocalGroup::seen`], the membership built from events, each of which
//! left a notice in the group's history: a relay cannot add a reader without it showing.
//! A message names the epoch its keys were shared for; if the relay's epoch moved on
//! (someone joined or left meanwhile), the client waits for those events and encrypts the
//! waiting message again, on a new session for the new members, under the same id. So a
//! removed member never receives a key to it and a new member never receives a key to
//! anything sent before they joined.
//!
//! Receiving: membership events are taken in in queue order, and each message is checked
//! against the membership they built: a message whose sender is not a member, whose
//! session that sender did not share, whose signature or MAC fails, whose signed sender,
//! group or id differ from the relay's, or that replays an earlier one is refused
//! ([`ClientEvent::GroupMessageRejected`]) and stored nowhere. A message without a key
//! (which the ordering above should make impossible) is kept as undecryptable, as 1:1
//! messages are.

use std::ops::ControlFlow;
use std::time::Duration;
use uchat_wire::{reply, request};

use sha2::{Digest, Sha256};
use uchat_wire::msg::group::check_group_name;
use uchat_wire::msg::page::MAX_PAGE_ENTRIES;
use uchat_wire::{
    Call, ErrorCode, ErrorReply, GroupChange, GroupId, GroupInfo, GroupMember, GroupSummary,
    MAX_TEXT_BYTES, MessageId, Seq, UserName,
};

use super::page::fetch_pages;
use super::{Client, ClientError, ClientState, ConnectionError, now_ms, random_id};
use crate::body::Body;
use crate::core::group_intake::{self, GroupIntake, GroupOpened, ViewStep};
use crate::core::group_send;
use crate::core::outbox::{self, Delivery};
use crate::core::share::Missed;
use crate::crypto::megolm::{
    self, InboundGroupSession, MegolmError, OutboundGroupSession, SealedInbound,
};
use crate::envelope::{Content, GroupEnvelope, Payload};
use crate::event::{ClientEvent, ReceivedMessage};
use crate::store::{
    ConversationId, EntryFlags, EntryStatus, GroupOutboundCommit, GroupOutbox, HistoryEntry,
    IdentityFlag, InboundCommit, InboundGroupRecord, LocalGroup, OutboundGroupRecord, OutboxEntry,
};

/// How long a new message waits for membership events the relay has already committed
/// (they are on their way down the event stream) before it is encrypted for the members
/// known.
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(10);
/// How long a waiting message, refused for an old epoch, waits (holding the outbox) for
/// the events that bring the new one; later, the outbox task tries it again when they come.
const REFUSED_MEMBERSHIP_WAIT: Duration = Duration::from_secs(2);

fn not_a_member(group: GroupId) -> ClientError {
    ConnectionError::Refused(ErrorReply {
        code: ErrorCode::NoSuchGroup,
        message: format!("you are not a member of group {group}"),
    })
    .into()
}

/// The first 16 bytes of a SHA-256 over `parts`, as an id.
fn derived_id(parts: &[&[u8]]) -> MessageId {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    MessageId(id)
}

/// The id a key share is marked taken in under: derived from its bytes, so that it never
/// equals the id of the message it was bundled with.
fn key_share_id(ciphertext: &[u8]) -> MessageId {
    derived_id(&[b"uchat-group-key-share-v1", ciphertext])
}

/// Who made a membership change (the sender of its history entry).
fn actor(change: &GroupChange, group: &GroupSummary) -> UserName {
    match change {
        GroupChange::Created { by }
        | GroupChange::Joined { by, .. }
        | GroupChange::Removed { by, .. } => by.clone(),
        GroupChange::Left { user, .. } => user.clone(),
        GroupChange::Synced | GroupChange::Unknown => group.owner.clone(),
    }
}

/// A group this user is in, as [`Groups::list`] lists it.
pub type Group = GroupInfo;

/// What a waiting group message needs to be encrypted again.
pub(super) struct Draft {
    pub(super) id: MessageId,
    pub(super) body: Body,
    pub(super) sent_ms: u64,
}

impl Draft {
    /// The draft as `me`'s history shows it once written to `group` at `now`: pending
    /// until the relay takes it.
    fn history_entry(&self, group: GroupId, me: &UserName, now: u64) -> HistoryEntry {
        HistoryEntry {
            id: self.id,
            conversation: ConversationId::group(group),
            from: me.clone(),
            to: me.clone(),
            sent_ms: self.sent_ms,
            received_ms: now,
            text: self.body.text(),
            status: EntryStatus::Pending,
            flags: EntryFlags::default(),
            group: Some(group),
            group_change: None,
            file: self.body.file(),
            position: 0,
        }
    }
}

/// Logs the members a group key share could not go to: for good (a warning) or until
/// the relay answers again.
fn report_missed_shares(group: GroupId, missed: &[(UserName, Missed)]) {
    for (member, missed) in missed {
        match missed {
            Missed::CannotGo(why) => {
                tracing::warn!(%group, %member, error = %why, "cannot share the group key with a member");
            }
            Missed::Waits(why) => {
                tracing::debug!(%group, %member, reason = %why, "key share waits for the relay");
            }
        }
    }
}

/// Groups: making and managing them and sending to them (`client.groups()`).
#[derive(Clone, Copy)]
pub struct Groups<'a> {
    client: &'a Client,
}

impl Client {
    /// Groups: making and managing them and sending to them.
    pub fn groups(&self) -> Groups<'_> {
        Groups { client: self }
    }
}

impl Groups<'_> {
    /// Makes a group named `name` with `members` (each a friend of this user's), owned by
    /// this user. Members who blocked this user are left out.
    pub async fn create(self, name: &str, members: &[UserName]) -> Result<GroupInfo, ClientError> {
        check_group_name(name).map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        if members.contains(&self.client.inner.me) {
            return Err(ClientError::InvalidInput(
                "you are in every group you make; list only the other members".into(),
            ));
        }
        let request = request::CreateGroup {
            name: name.to_string(),
            members: members.to_vec(),
        };
        self.client.inner.group_request(request).await
    }

    /// The groups this user is in, from the relay, oldest first: page by page, or in one
    /// answer from a relay older than paging.
    pub async fn list(self) -> Result<Vec<Group>, ClientError> {
        let link = self.client.inner.link()?;
        let paged = fetch_pages(
            &link,
            "groups",
            |after| request::GroupsPage {
                after,
                limit: MAX_PAGE_ENTRIES,
            },
            |page| (page.groups, page.next),
        )
        .await?;
        let mut groups = match paged {
            Some(groups) => groups,
            None => link.call(request::Groups).await?.groups,
        };
        // Pages come in id order; the list reads oldest first.
        groups.sort_by_key(|g| (g.created_ms, g.id));
        let learned: Vec<LocalGroup> = groups
            .iter()
            .map(|info| LocalGroup {
                seen: None,
                latest: info.clone(),
            })
            .collect();
        self.client.inner.store.put_groups(&learned)?;
        Ok(groups)
    }

    /// Asks the relay for the whole member list of every group this user is in, for a
    /// device that has no view of them (it arrives as a `Synced` event, in order with
    /// everything else).
    pub async fn sync(self) -> Result<(), ClientError> {
        for group in self.list().await? {
            self.client.inner.request_sync(group.id).await?;
        }
        Ok(())
    }

    /// One group's state (members, owner), for its members.
    pub async fn get(self, group: GroupId) -> Result<Group, ClientError> {
        self.client
            .inner
            .group_request(request::GroupInfo { group })
            .await
    }

    /// Adds `user` (a friend of this user's) to `group`; owner only.
    pub async fn invite(self, group: GroupId, user: &UserName) -> Result<Group, ClientError> {
        let request = request::InviteToGroup {
            group,
            user: user.clone(),
        };
        self.client.inner.group_request(request).await
    }

    /// Removes `user` from `group`; owner only.
    pub async fn kick(self, group: GroupId, user: &UserName) -> Result<Group, ClientError> {
        let request = request::KickFromGroup {
            group,
            user: user.clone(),
        };
        self.client.inner.group_request(request).await
    }

    /// Leaves `group` (handing it to the longest-standing member if this user owns it).
    pub async fn leave(self, group: GroupId) -> Result<(), ClientError> {
        self.client
            .inner
            .call(request::LeaveGroup { group })
            .await?;
        // Recorded at once: the relay tells nobody when the last member leaves.
        if let Some(mut local) = self.client.inner.store.group(group)? {
            let me = &self.client.inner.me;
            local.latest.members.retain(|m| &m.user != me);
            if let Some(seen) = local.seen.as_mut() {
                seen.members.retain(|m| &m.user != me);
            }
            self.client.inner.store.put_group(&local)?;
        }
        Ok(())
    }

    /// Finds a group by `#NAME` (unique among this user's groups), by its id, or by `#ID`:
    /// first among the groups this user is in, then among those they were in (whose
    /// history stays readable).
    pub fn resolve(self, name: &str) -> Result<GroupId, ClientError> {
        let wanted = name.strip_prefix('#').unwrap_or(name);
        if let Ok(id) = GroupId::from_hex(wanted) {
            return Ok(id);
        }
        let groups = self.client.inner.store.groups()?;
        let me = &self.client.inner.me;
        for current in [true, false] {
            let matching: Vec<&LocalGroup> = groups
                .iter()
                .filter(|g| g.latest.name == wanted && g.latest.has_member(me) == current)
                .collect();
            match matching.as_slice() {
                [one] => return Ok(one.latest.id),
                [] => continue,
                many => {
                    let ids: Vec<String> = many.iter().map(|g| g.latest.id.to_string()).collect();
                    return Err(ClientError::InvalidInput(format!(
                        "{} of your groups are named '{wanted}'; name one by its id: {}",
                        many.len(),
                        ids.join(", ")
                    )));
                }
            }
        }
        Err(ClientError::InvalidInput(format!(
            "you are in no group named '{wanted}' (see uchat group list)"
        )))
    }

    /// What this peer knows of `group` (also after leaving it), without asking the relay.
    pub fn local(self, group: GroupId) -> Result<Option<LocalGroup>, ClientError> {
        Ok(self.client.inner.store.group(group)?)
    }

    /// Sends a text message to `group`; returns its id once the relay has durably queued
    /// it for every other member.
    pub async fn send_text(self, group: GroupId, text: &str) -> Result<MessageId, ClientError> {
        if text.is_empty() {
            return Err(ClientError::EmptyMessage);
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(ClientError::MessageTooLarge {
                len: text.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        // Membership events the relay reported already (by answering a create or invite)
        // are on their way: keys follow them, not the reply.
        if self.client.is_online()
            && let Some(local) = self.client.inner.store.group(group)?
        {
            let seen = self
                .client
                .inner
                .wait_for_membership(group, local.latest.epoch, MEMBERSHIP_WAIT)
                .await?;
            // No view of the group (a new device): ask for the member list, then wait.
            if seen.is_none() && local.latest.has_member(&self.client.inner.me) {
                self.client.inner.request_sync(group).await?;
                self.client
                    .inner
                    .wait_for_membership(group, local.latest.epoch, MEMBERSHIP_WAIT)
                    .await?;
            }
        }
        let draft = Draft {
            id: random_id()?,
            body: Body::Text(text.to_string()),
            sent_ms: now_ms(),
        };
        let outbox = self
            .client
            .inner
            .encrypt_for_group(group, &draft, None)
            .await?;
        self.client.finish_send(outbox.id).await
    }

    /// Tries to decrypt a group message as the relay would deliver it, without storing
    /// anything or marking it seen: what this user's keys can read of it. For checking that
    /// a removed member cannot read what was sent after their removal.
    pub async fn try_decrypt(
        self,
        group: GroupId,
        from: &UserName,
        ciphertext: &[u8],
    ) -> Result<String, ClientError> {
        let envelope = GroupEnvelope::from_bytes(ciphertext)
            .map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        let record = self
            .client
            .inner
            .store
            .inbound_group_session(group, from, &envelope.session_id)?
            .ok_or_else(|| {
                ClientError::InvalidInput(format!(
                    "no key for this message: {from} never shared its session with you"
                ))
            })?;
        // What the keys can read, not whether it was read before: no replay check here.
        let record = InboundGroupRecord {
            seen: Vec::new(),
            ..record
        };
        let mut session = self.client.inner.unseal_inbound(&record)?;
        let decrypted = session
            .decrypt(&envelope.body)
            .map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        let payload = Payload::from_bytes(&decrypted.plaintext)
            .map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        match payload.content {
            Content::Text { text } => Ok(text),
            _ => Err(ClientError::InvalidInput("not a text message".into())),
        }
    }
}

impl ClientState {
    /// Sends a request answered with `Group`, records the group and returns it.
    async fn group_request<C>(&self, request: C) -> Result<GroupInfo, ClientError>
    where
        C: Call<Reply = reply::Group>,
    {
        let group = self.call(request).await?.group;
        self.learn_group(&group)?;
        Ok(group)
    }

    /// Records a group's state as the relay reported it outside the event stream: for
    /// names and lists only (`latest`); keys follow the membership events (`seen`), which
    /// the store's merge keeps.
    fn learn_group(&self, info: &GroupInfo) -> Result<(), ClientError> {
        self.store.put_group(&LocalGroup {
            seen: None,
            latest: info.clone(),
        })?;
        Ok(())
    }

    /// Asks the relay to queue this group's whole member list for this user.
    async fn request_sync(&self, group: GroupId) -> Result<(), ClientError> {
        self.call(request::SyncGroup { group }).await?;
        Ok(())
    }

    /// Waits (up to `limit`) until the membership events up to `epoch` have been taken in;
    /// the group as they built it.
    async fn wait_for_membership(
        &self,
        group: GroupId,
        epoch: u64,
        limit: Duration,
    ) -> Result<Option<GroupInfo>, ClientError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let seen = self.store.group(group)?.and_then(|g| g.seen);
            if seen.as_ref().is_some_and(|s| s.epoch >= epoch)
                || tokio::time::Instant::now() >= deadline
            {
                return Ok(seen);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn unseal_inbound(
        &self,
        record: &InboundGroupRecord,
    ) -> Result<InboundGroupSession, ClientError> {
        InboundGroupSession::unseal(
            &SealedInbound {
                pickle: record.pickle.clone(),
                seen: record.seen.clone(),
            },
            &self.key,
        )
        .map_err(|e| ClientError::InvalidInput(e.to_string()))
    }

    /// This user's outbound session for `group` at `epoch`, or a new one (with the inbound
    /// copy its key shares are made from) if the membership changed or it is used up.
    fn outbound_session(
        &self,
        group: GroupId,
        epoch: u64,
        now: u64,
    ) -> Result<
        (
            OutboundGroupSession,
            InboundGroupSession,
            OutboundGroupRecord,
        ),
        ClientError,
    > {
        let keys = |e: MegolmError| ClientError::InvalidInput(e.to_string());
        if let Some(record) = self.store.outbound_group_session(group)?
            && !megolm::needs_rotation(record.epoch, epoch, record.created_ms, record.messages, now)
        {
            let session = OutboundGroupSession::unseal(&record.pickle, &self.key).map_err(keys)?;
            let mut record = record;
            let source = if record.share_pickle.is_empty() {
                // Made before shares came from the first message: from here on, then.
                let source = session.share_source();
                record.share_pickle = source.seal(&self.key).pickle;
                source
            } else {
                let sealed = SealedInbound {
                    pickle: record.share_pickle.clone(),
                    seen: Vec::new(),
                };
                InboundGroupSession::unseal(&sealed, &self.key).map_err(keys)?
            };
            return Ok((session, source, record));
        }
        let session = OutboundGroupSession::new();
        let source = session.share_source();
        let record = OutboundGroupRecord {
            session_id: session.id(),
            pickle: String::new(),
            epoch,
            created_ms: now,
            messages: 0,
            shared_with: Vec::new(),
            share_pickle: source.seal(&self.key).pickle,
        };
        Ok((session, source, record))
    }

    /// Encrypts `draft` for `group` on this user's current session (a new one if the
    /// membership changed or the session is used up), with key shares for every member
    /// the relay has not yet taken one from, and commits it (history, outbox, sessions). A
    /// draft already in the outbox keeps its place.
    pub(super) async fn encrypt_for_group(
        &self,
        group: GroupId,
        draft: &Draft,
        done_upload: Option<String>,
    ) -> Result<OutboxEntry, ClientError> {
        let view = group_send::sending_view(self.store.group(group)?, &self.me)
            .ok_or_else(|| not_a_member(group))?;
        let recipients = group_send::recipients(&view, &self.me);
        // Round trips first, with no lock held: a key for every member without a session.
        let claims = self.claim_keys(recipients.iter().copied()).await?;
        let identity = self.identity();
        let now = now_ms();
        let epoch = view.epoch;
        let (mut session, source, mut record) = self.outbound_session(group, epoch, now)?;
        let share = Payload {
            id: random_id()?,
            sent_ms: now,
            content: Content::GroupKey {
                group,
                session_id: session.id(),
                key: source.export_first(),
                epoch,
            },
            group: None,
            sender: None,
        };
        let to = group_send::still_to_share(&recipients, &record.shared_with);
        let shares = self.seal_key_shares(&identity, &to, claims, &share.to_bytes(), now)?;
        let incomplete = shares.waits();
        report_missed_shares(group, &shares.missed);
        let payload = Payload {
            id: draft.id,
            sent_ms: draft.sent_ms,
            content: draft.body.content(),
            group: Some(group),
            sender: Some(self.me.clone()),
        };
        let envelope = GroupEnvelope {
            session_id: session.id(),
            body: session.encrypt(&payload.to_bytes()),
        };
        record.messages = session.message_index();
        record.pickle = session.seal(&self.key);
        let outbox = OutboxEntry {
            id: draft.id,
            to: self.me.clone(),
            ciphertext: envelope.to_bytes(),
            created_ms: draft.sent_ms,
            group: Some(GroupOutbox {
                group,
                epoch,
                session_id: session.id(),
                key_shares: shares.key_shares,
                incomplete,
            }),
        };
        self.store.commit_group_outbound(&GroupOutboundCommit {
            contacts: shares.contacts,
            outbound: (group, record),
            entry: draft.history_entry(group, &self.me, now),
            outbox: outbox.clone(),
            done_upload,
        })?;
        Ok(outbox)
    }

    /// Hands one group message to the relay. If the group's members changed since it was
    /// encrypted, it is encrypted again for the members now (same id, same place in the
    /// outbox) and handed over once more.
    pub(super) async fn deliver_group(
        &self,
        entry: &OutboxEntry,
        part: &GroupOutbox,
    ) -> Result<Delivery, ClientError> {
        let mut entry = entry.clone();
        let seen_epoch = self
            .store
            .group(part.group)?
            .and_then(|g| g.seen)
            .map(|g| g.epoch);
        if group_send::needs_reencryption(part, seen_epoch) {
            match self.encrypt_again(&entry, part.group).await? {
                ControlFlow::Continue(fresh) => entry = fresh,
                ControlFlow::Break(later) => return Ok(later),
            }
        }
        for attempt in 0..2 {
            let Some(part) = entry.group.clone() else {
                break;
            };
            let request = request::GroupSend {
                group: part.group,
                epoch: part.epoch,
                id: entry.id,
                ciphertext: entry.ciphertext.clone(),
                key_shares: part.key_shares.clone(),
            };
            let sent = match self.link() {
                Ok(link) => link.call(request).await,
                Err(e) => Err(e),
            };
            match sent {
                Err(ConnectionError::Refused(error))
                    if error.code == ErrorCode::GroupChanged && attempt == 0 =>
                {
                    match self.catch_up_with_relay(&entry, part.group).await? {
                        ControlFlow::Continue(fresh) => entry = fresh,
                        ControlFlow::Break(delivery) => return Ok(delivery),
                    }
                }
                other => {
                    let given = outbox::shares_given(&part.key_shares, &other);
                    let delivery = self.settle_delivery(&entry, other)?;
                    if !given.is_empty() {
                        self.store.record_key_shares_delivered(
                            part.group,
                            &part.session_id,
                            &given,
                        )?;
                    }
                    return Ok(delivery);
                }
            }
        }
        Ok(Delivery::Later(self.unreachable(
            "the group's members keep changing; the message waits",
        )))
    }

    /// After the relay refused `entry` for an old epoch: learns the relay's epoch, waits
    /// for the membership events that bring it, and encrypts the message again for the
    /// members they name (`Continue`); or what becomes of the message if that cannot be
    /// done now (`Break`: it waits, or fails if the relay refuses the group for good).
    async fn catch_up_with_relay(
        &self,
        entry: &OutboxEntry,
        group: GroupId,
    ) -> Result<ControlFlow<Delivery, OutboxEntry>, ClientError> {
        let epoch = match self.call(request::GroupInfo { group }).await {
            Ok(reply::Group { group }) => {
                let epoch = group.epoch;
                self.learn_group(&group)?;
                epoch
            }
            Err(e @ ConnectionError::Refused(_)) => {
                return self.settle_delivery(entry, Err(e)).map(ControlFlow::Break);
            }
            Err(e) => return Ok(ControlFlow::Break(Delivery::Later(e))),
        };
        let seen = self
            .wait_for_membership(group, epoch, REFUSED_MEMBERSHIP_WAIT)
            .await?;
        if seen.is_none_or(|s| s.epoch < epoch) {
            return Ok(ControlFlow::Break(Delivery::Later(self.unreachable(
                "the group's membership events have not arrived yet; the message waits",
            ))));
        }
        self.encrypt_again(entry, group).await
    }

    fn unreachable(&self, reason: &str) -> ConnectionError {
        ConnectionError::Unreachable {
            relay: self.relay.clone(),
            reason: reason.into(),
        }
    }

    /// Encrypts a waiting group message again, from its history entry, for the group's
    /// members now, under the same id (`Continue` with the fresh entry); `Break` with the
    /// message waiting if it has no history entry to take the text from.
    async fn encrypt_again(
        &self,
        entry: &OutboxEntry,
        group: GroupId,
    ) -> Result<ControlFlow<Delivery, OutboxEntry>, ClientError> {
        let history = self.store.history_entry(&self.me, entry.id)?;
        let Some((history, body)) = history.and_then(|h| Body::of_entry(&h).map(|body| (h, body)))
        else {
            return Ok(ControlFlow::Break(Delivery::Later(
                self.unreachable("the group is unknown"),
            )));
        };
        let draft = Draft {
            id: entry.id,
            body,
            sent_ms: history.sent_ms,
        };
        match self.encrypt_for_group(group, &draft, None).await {
            Ok(fresh) => Ok(ControlFlow::Continue(fresh)),
            // No longer a member: the relay will refuse it for good, which marks it failed.
            Err(ClientError::Connection(ConnectionError::Refused(_))) => {
                Ok(ControlFlow::Continue(entry.clone()))
            }
            Err(e) => Err(e),
        }
    }

    /// The id of the history entry for the change to `epoch` of `group`: one per group and
    /// epoch, so a redelivered event is stored once, and keyed with this profile's local
    /// key, so nobody else can send a message under that id to hide the notice.
    fn notice_id(&self, group: GroupId, epoch: u64) -> MessageId {
        let digest = self
            .key
            .keyed_digest(b"uchat-group-notice-v2", &[&group.0, &epoch.to_be_bytes()]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        MessageId(id)
    }

    /// A group membership event: move the view as [`group_intake::next_view`] rules (or
    /// ask the relay for the list when the event does not follow on), store a notice in
    /// the group's history, tell the user.
    pub(super) async fn take_in_group_changed(
        &self,
        summary: GroupSummary,
        change: GroupChange,
        members: Option<Vec<GroupMember>>,
        relay_ts_ms: u64,
        seq: Seq,
    ) -> Result<(), ClientError> {
        let stored = self.store.group(summary.id)?;
        let view = stored.as_ref().and_then(|g| g.seen.clone());
        let seen = match group_intake::next_view(view, &summary, &change, members, relay_ts_ms) {
            ViewStep::Stale => return Ok(()),
            ViewStep::Moved(seen) => seen,
            ViewStep::AskForList(view) => {
                tracing::warn!(group = %summary.id, to = summary.epoch, "membership view out of step; asking for the list");
                if let Err(e) = self.request_sync(summary.id).await {
                    tracing::warn!(group = %summary.id, error = %e, "cannot ask for the member list");
                }
                // Nothing to build a view from yet: the list is on its way.
                let Some(view) = view else {
                    return Ok(());
                };
                view
            }
        };
        let latest = group_intake::latest_of(stored, &seen);
        let from = actor(&change, &summary);
        let id = self.notice_id(summary.id, summary.epoch);
        let entry = HistoryEntry {
            id,
            conversation: ConversationId::group(summary.id),
            from: from.clone(),
            to: self.me.clone(),
            sent_ms: relay_ts_ms,
            received_ms: now_ms(),
            text: None,
            status: EntryStatus::Received,
            flags: EntryFlags::default(),
            group: Some(summary.id),
            group_change: Some(change.clone()),
            file: None,
            position: 0,
        };
        self.store.commit_inbound(&InboundCommit {
            sessions: Vec::new(),
            pin: None,
            entry: Some(entry),
            from,
            id,
            seq,
            group_session: None,
            group: Some(LocalGroup {
                seen: Some(seen.clone()),
                latest,
            }),
        })?;
        let _ = self.events.send(ClientEvent::GroupChanged {
            group: seen,
            change,
        });
        // A group message waiting in the outbox may have waited for this.
        self.outbox_wake.notify_one();
        Ok(())
    }

    /// A member's session key, inside an Olm message: checked and kept for their messages.
    pub(super) async fn take_in_group_key(
        &self,
        group: GroupId,
        from: UserName,
        ciphertext: &[u8],
        seq: Seq,
    ) -> Result<(), ClientError> {
        let id = key_share_id(ciphertext);
        self.take_in_olm_key(
            &from,
            id,
            ciphertext,
            seq,
            |payload, flag, now| self.accept_group_key(group, &from, payload, flag, now),
            |mut commit, session| {
                commit.group_session = session.cloned().flatten();
                self.store.commit_inbound(&commit)
            },
        )
        .await?;
        Ok(())
    }

    /// The inbound session a key share carries, if it is acceptable: for this group, from
    /// a member whose identity did not change, a valid session. `Ok(None)` if this sender's
    /// copy of the session opens as early messages already (its seen indexes stay); a copy
    /// that opens earlier ones replaces it, keeping them.
    fn accept_group_key(
        &self,
        group: GroupId,
        from: &UserName,
        payload: Payload,
        flag: IdentityFlag,
        now: u64,
    ) -> Result<Option<InboundGroupRecord>, String> {
        let Content::GroupKey {
            group: named,
            session_id,
            key,
            epoch,
        } = payload.content
        else {
            return Err("not a group key".into());
        };
        if named != group {
            return Err("the key names another group than the relay says".into());
        }
        if flag == IdentityFlag::Changed {
            return Err(format!(
                "{from}'s identity key changed; compare safety numbers"
            ));
        }
        let local = self.store.group(group).map_err(|e| e.to_string())?;
        if !local
            .and_then(|g| g.seen)
            .is_some_and(|g| g.has_member(from))
        {
            return Err(format!("{from} is not a member of the group"));
        }
        let mut session = InboundGroupSession::from_key(&key).map_err(|e| e.to_string())?;
        if session.id() != session_id {
            return Err("the session id does not match the key".into());
        }
        let known = self
            .store
            .inbound_group_session(group, from, &session_id)
            .map_err(|e| e.to_string())?;
        if let Some(known) = &known {
            let held = self.unseal_inbound(known).map_err(|e| e.to_string())?;
            if held.first_known_index() <= session.first_known_index() {
                return Ok(None);
            }
            session.keep_seen_of(&held);
        }
        let sealed = session.seal(&self.key);
        Ok(Some(InboundGroupRecord {
            group,
            sender: from.clone(),
            session_id,
            pickle: sealed.pickle,
            seen: sealed.seen,
            epoch,
            received_ms: known.map_or(now, |k| k.received_ms),
        }))
    }

    /// A group message: checked, decrypted and stored, or refused.
    pub(super) async fn take_in_group_message(
        &self,
        group: GroupId,
        from: UserName,
        id: MessageId,
        ciphertext: &[u8],
        relay_ts_ms: u64,
        seq: Seq,
    ) -> Result<(), ClientError> {
        if self.store.has_message(&from, id)? {
            return Ok(());
        }
        let reject = |reason: String| {
            tracing::warn!(%group, %from, %id, reason, "group message refused");
            let _ = self.events.send(ClientEvent::GroupMessageRejected {
                group,
                from: from.clone(),
                reason,
            });
            Ok(())
        };
        let local = self.store.group(group)?;
        if !group_intake::may_write(local.as_ref(), &from, &self.me) {
            return reject(format!("{from} is not a member of the group"));
        }
        let envelope = match GroupEnvelope::from_bytes(ciphertext) {
            Ok(envelope) => envelope,
            Err(e) => return reject(e.to_string()),
        };
        let now = now_ms();
        let (opened, updated) = self.open_group_message(group, &from, &envelope)?;
        let (body, problem, sent_ms) =
            match group_intake::judge_group_message(opened, group, id, &from, relay_ts_ms) {
                GroupIntake::Refused(reason) => return reject(reason),
                GroupIntake::Kept {
                    body,
                    problem,
                    sent_ms,
                } => (body, problem, sent_ms),
            };
        if problem.is_some() {
            tracing::warn!(%group, %from, %id, "group message could not be decrypted; kept as undecryptable");
        }
        let received = ReceivedMessage {
            id,
            from: from.clone(),
            to: self.me.clone(),
            text: body.as_ref().and_then(Body::text),
            sent_ms,
            identity: IdentityFlag::Known,
            problem,
            group: Some(group),
            file: body.as_ref().and_then(Body::file),
        };
        self.store.commit_inbound(&InboundCommit {
            sessions: Vec::new(),
            pin: None,
            entry: Some(received.history_entry(now)),
            from,
            id,
            seq,
            group_session: updated,
            group: None,
        })?;
        let _ = self.events.send(ClientEvent::Message(received));
        Ok(())
    }

    /// Decrypts a group message with the session `from` shared for it, if any: what Megolm
    /// made of it, and the session record advanced past it (to commit with the message) if
    /// it opened.
    fn open_group_message(
        &self,
        group: GroupId,
        from: &UserName,
        envelope: &GroupEnvelope,
    ) -> Result<(GroupOpened, Option<InboundGroupRecord>), ClientError> {
        let Some(record) = self
            .store
            .inbound_group_session(group, from, &envelope.session_id)?
        else {
            return Ok((GroupOpened::NoKey, None));
        };
        let mut session = self.unseal_inbound(&record)?;
        let decrypted = session.decrypt(&envelope.body).map(|d| d.plaintext);
        let updated = decrypted.is_ok().then(|| {
            let sealed = session.seal(&self.key);
            InboundGroupRecord {
                pickle: sealed.pickle,
                seen: sealed.seen,
                ..record
            }
        });
        Ok((GroupOpened::Decrypted(decrypted), updated))
    }
}
