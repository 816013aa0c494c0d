//! Groups on the client: making and managing them, sending group messages (Megolm, with the
//! session key shared to each member over Olm) and taking in group events.
//!
//! Sending: each member keeps one outbound Megolm session per group. It is replaced when
//! the membership changes, after 1,000 messages and after 7 days
//! ([`megolm::needs_rotation`]); a session's key goes to every other member inside an
//! Olm message, bundled with each message until the relay has taken one for that member
//! (a bundle written offline and never delivered shares nothing), and the relay queues the
//! keys before the message in one transaction. A message names the membership epoch its keys
//! were shared for; if the relay's epoch moved on (someone joined or left meanwhile), the
//! waiting message is encrypted again on a new session for the new members and re-sent
//! under the same id, so a removed member never receives a key to it and a new member
//! never receives a key to anything older.
//!
//! Receiving: membership events are taken in in queue order, and each message is checked
//! against the membership they built ([`LocalGroup::seen`]): a message whose sender is
//! not a member, whose session was not shared by that sender, whose signature or MAC
//! fails or that replays an earlier one is refused ([`ClientEvent::GroupMessageRejected`])
//! and stored nowhere. A message without a key (which the ordering above should make
//! impossible) is kept as undecryptable, as 1:1 messages are.

use sha2::{Digest, Sha256};
use uchat_store::{
    ContactSessions, ConversationId, EntryFlags, EntryStatus, GroupOutboundCommit, GroupOutbox,
    HistoryEntry, IdentityFlag, InboundCommit, InboundGroupRecord, LocalGroup, OutboundGroupRecord,
    OutboxEntry,
};
use uchat_wire::msg::group::check_group_name;
use uchat_wire::{
    ErrorCode, GroupChange, GroupId, GroupInfo, KeyShare, MAX_TEXT_BYTES, MessageId, Reply,
    Request, Seq, UserName,
};

use super::{Client, ClientError, ConnectionError, Delivery, Inner, now_ms, random_id};
use crate::crypto::megolm::{
    self, InboundGroupSession, MegolmError, OutboundGroupSession, SealedInbound,
};
use crate::envelope::{Content, GroupEnvelope, Payload};
use crate::event::{ClientEvent, ReceivedMessage};

fn unexpected(request: &'static str) -> ClientError {
    ClientError::Unexpected { request }
}

/// The id of the history entry for a membership change: one per group and epoch, so a
/// redelivered event is recognized and stored once.
fn notice_id(group: GroupId, epoch: u64) -> MessageId {
    let digest = Sha256::new()
        .chain_update(b"uchat-group-notice-v1")
        .chain_update(group.0)
        .chain_update(epoch.to_be_bytes())
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    MessageId(id)
}

/// The id a key share is marked taken in under: derived from its bytes, so that it never
/// equals the id of the message it was bundled with.
fn key_share_id(ciphertext: &[u8]) -> MessageId {
    let digest = Sha256::new()
        .chain_update(b"uchat-group-key-share-v1")
        .chain_update(ciphertext)
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    MessageId(id)
}

/// Who made a membership change (the sender of its history entry).
fn actor(change: &GroupChange, group: &GroupInfo) -> UserName {
    match change {
        GroupChange::Created { by }
        | GroupChange::Joined { by, .. }
        | GroupChange::Removed { by, .. } => by.clone(),
        GroupChange::Left { user, .. } => user.clone(),
        GroupChange::Unknown => group.owner.clone(),
    }
}

/// A group this user is in, as [`Client::groups`] lists it.
pub type Group = GroupInfo;

/// What a waiting group message needs to be encrypted again.
struct Draft {
    id: MessageId,
    text: String,
    sent_ms: u64,
}

impl Client {
    /// Makes a group named `name` with `members` (each a friend of this user's), owned by
    /// this user. Members who blocked this user are left out.
    pub async fn create_group(
        &self,
        name: &str,
        members: &[UserName],
    ) -> Result<GroupInfo, ClientError> {
        check_group_name(name).map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        if members.contains(&self.inner.me) {
            return Err(ClientError::InvalidInput(
                "you are in every group you make; list only the other members".into(),
            ));
        }
        let request = Request::CreateGroup {
            name: name.to_string(),
            members: members.to_vec(),
        };
        self.inner.group_request(request, "create group").await
    }

    /// The groups this user is in, from the relay (the local copies are brought up to
    /// date on the way).
    pub async fn groups(&self) -> Result<Vec<Group>, ClientError> {
        let groups = match self.inner.link()?.request(&Request::Groups).await? {
            Reply::Groups { groups } => groups,
            _ => return Err(unexpected("groups")),
        };
        for group in &groups {
            self.inner.learn_group(group)?;
        }
        Ok(groups)
    }

    /// One group's state (members, owner), for its members.
    pub async fn group(&self, group: GroupId) -> Result<Group, ClientError> {
        self.inner
            .group_request(Request::GroupInfo { group }, "group info")
            .await
    }

    /// Adds `user` (a friend of this user's) to `group`; owner only.
    pub async fn invite_to_group(
        &self,
        group: GroupId,
        user: &UserName,
    ) -> Result<Group, ClientError> {
        let request = Request::InviteToGroup {
            group,
            user: user.clone(),
        };
        self.inner.group_request(request, "invite").await
    }

    /// Removes `user` from `group`; owner only.
    pub async fn kick_from_group(
        &self,
        group: GroupId,
        user: &UserName,
    ) -> Result<Group, ClientError> {
        let request = Request::KickFromGroup {
            group,
            user: user.clone(),
        };
        self.inner.group_request(request, "kick").await
    }

    /// Leaves `group` (handing it to the longest-standing member if this user owns it).
    pub async fn leave_group(&self, group: GroupId) -> Result<(), ClientError> {
        match self
            .inner
            .link()?
            .request(&Request::LeaveGroup { group })
            .await?
        {
            Reply::Done => Ok(()),
            _ => Err(unexpected("leave group")),
        }
    }

    /// Finds a group by `#NAME` (unique among this user's groups), by its id, or by `#ID`:
    /// first among the groups this user is in, then among those they were in (whose
    /// history stays readable).
    pub fn resolve_group(&self, name: &str) -> Result<GroupId, ClientError> {
        let wanted = name.strip_prefix('#').unwrap_or(name);
        if let Ok(id) = GroupId::from_hex(wanted) {
            return Ok(id);
        }
        let groups = self.inner.store.groups()?;
        let me = &self.inner.me;
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
    pub fn local_group(&self, group: GroupId) -> Result<Option<LocalGroup>, ClientError> {
        Ok(self.inner.store.group(group)?)
    }

    /// Sends a text message to `group`; returns its id once the relay has durably queued
    /// it for every other member.
    pub async fn send_group_text(
        &self,
        group: GroupId,
        text: &str,
    ) -> Result<MessageId, ClientError> {
        if text.is_empty() {
            return Err(ClientError::EmptyMessage);
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(ClientError::MessageTooLarge {
                len: text.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        let now = now_ms();
        let draft = Draft {
            id: random_id()?,
            text: text.to_string(),
            sent_ms: now,
        };
        let outbox = self.inner.encrypt_for_group(group, &draft).await?;
        self.finish_send(outbox.id).await
    }

    /// Tries to decrypt a group message as the relay would deliver it, without storing
    /// anything or marking it seen: what this user's keys can read of it. For checking that
    /// a removed member cannot read what was sent after their removal.
    pub async fn try_decrypt_group_message(
        &self,
        group: GroupId,
        from: &UserName,
        ciphertext: &[u8],
    ) -> Result<String, ClientError> {
        let envelope = GroupEnvelope::from_bytes(ciphertext)
            .map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        let record = self
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
        let mut session = self.inner.unseal_inbound(&record)?;
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

impl Inner {
    /// Sends a request answered with `Group`, records the group and returns it.
    async fn group_request(
        &self,
        request: Request,
        what: &'static str,
    ) -> Result<GroupInfo, ClientError> {
        match self.link()?.request(&request).await? {
            Reply::Group { group } => {
                self.learn_group(&group)?;
                Ok(group)
            }
            _ => Err(unexpected(what)),
        }
    }

    /// Records a group's state as the relay reported it outside the event stream: the
    /// newest state for sending, and also the starting point of a group not known yet.
    fn learn_group(&self, info: &GroupInfo) -> Result<LocalGroup, ClientError> {
        let local = match self.store.group(info.id)? {
            Some(mut local) => {
                if info.epoch > local.latest.epoch {
                    local.latest = info.clone();
                    self.store.put_group(&local)?;
                }
                local
            }
            None => {
                let local = LocalGroup {
                    seen: info.clone(),
                    latest: info.clone(),
                };
                self.store.put_group(&local)?;
                local
            }
        };
        Ok(local)
    }

    /// The group as the relay has it now, recorded locally.
    async fn refresh_group(&self, group: GroupId) -> Result<LocalGroup, ClientError> {
        let info = self
            .group_request(Request::GroupInfo { group }, "group info")
            .await?;
        self.learn_group(&info)
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

    /// Encrypts `draft` for `group` on this user's current session (a new one if the
    /// membership changed or the session is used up), with key shares for every member
    /// who does not hold the session yet, and commits it (history, outbox, sessions). A
    /// draft already in the outbox keeps its place.
    async fn encrypt_for_group(
        &self,
        group: GroupId,
        draft: &Draft,
    ) -> Result<OutboxEntry, ClientError> {
        let identity = self.identity.lock().await;
        let now = now_ms();
        let local = self
            .store
            .group(group)?
            .filter(|g| g.latest.has_member(&self.me))
            .ok_or_else(|| {
                ConnectionError::Refused(uchat_wire::ErrorReply {
                    code: ErrorCode::NoSuchGroup,
                    message: format!("you are not a member of group {group}"),
                })
            })?;
        let epoch = local.latest.epoch;
        let existing = self.store.outbound_group_session(group)?;
        let (mut session, mut record) = match existing {
            Some(record)
                if !megolm::needs_rotation(
                    record.epoch,
                    epoch,
                    record.created_ms,
                    record.messages,
                    now,
                ) =>
            {
                let session = OutboundGroupSession::unseal(&record.pickle, &self.key)
                    .map_err(|e| ClientError::InvalidInput(e.to_string()))?;
                (session, record)
            }
            _ => {
                let session = OutboundGroupSession::new();
                let record = OutboundGroupRecord {
                    session_id: session.id(),
                    pickle: String::new(),
                    epoch,
                    created_ms: now,
                    messages: 0,
                    shared_with: Vec::new(),
                };
                (session, record)
            }
        };
        let mut contacts = Vec::new();
        let mut key_shares = Vec::new();
        let mut incomplete = false;
        let share = Payload {
            id: random_id()?,
            sent_ms: now,
            content: Content::GroupKey {
                group,
                session_id: session.id(),
                key: session.key(),
                epoch,
            },
            group: None,
        };
        let share_bytes = share.to_bytes();
        for member in local.latest.members.iter().map(|m| &m.user) {
            if member == &self.me || record.shared_with.contains(member) {
                continue;
            }
            match self.olm_encrypt(&identity, member, &share_bytes, now).await {
                Ok(sealed) => {
                    key_shares.push(KeyShare {
                        to: member.clone(),
                        ciphertext: sealed.envelope,
                    });
                    contacts.push(ContactSessions {
                        contact: member.clone(),
                        sessions: sealed.sessions,
                        pin: sealed.pin,
                    });
                }
                // Without a session to them this member cannot read this message; the key
                // goes to them with the next message instead. Network failures are not
                // skipped: the whole message waits.
                Err(e @ (ClientError::IdentityChanged { .. } | ClientError::Session { .. })) => {
                    tracing::warn!(%group, %member, error = %e, "cannot share the group key with a member");
                }
                Err(ClientError::Connection(ConnectionError::Refused(e))) => {
                    tracing::warn!(%group, %member, error = %e, "cannot share the group key with a member");
                }
                // Offline with no Olm session to this member yet: the message still goes
                // into the outbox, and is encrypted again (sharing the key) before it goes.
                Err(ClientError::Connection(e)) => {
                    tracing::debug!(%group, %member, error = %e, "key share waits for the relay");
                    incomplete = true;
                }
                Err(e) => return Err(e),
            }
        }
        let payload = Payload {
            id: draft.id,
            sent_ms: draft.sent_ms,
            content: Content::Text {
                text: draft.text.clone(),
            },
            group: Some(group),
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
                key_shares,
                incomplete,
            }),
        };
        self.store.commit_group_outbound(&GroupOutboundCommit {
            contacts,
            outbound: (group, record),
            entry: HistoryEntry {
                id: draft.id,
                conversation: ConversationId::group(group),
                from: self.me.clone(),
                to: self.me.clone(),
                sent_ms: draft.sent_ms,
                received_ms: now,
                text: Some(draft.text.clone()),
                status: EntryStatus::Pending,
                flags: EntryFlags::default(),
                group: Some(group),
                group_change: None,
            },
            outbox: outbox.clone(),
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
        let stale = self
            .store
            .group(part.group)?
            .is_some_and(|g| g.latest.epoch != part.epoch);
        if stale || part.incomplete {
            match self.reencrypt(&entry, part.group).await? {
                Some(fresh) => entry = fresh,
                None => return Ok(Delivery::Later(self.unreachable("the group is unknown"))),
            }
        }
        for attempt in 0..2 {
            let Some(part) = entry.group.clone() else {
                break;
            };
            let request = Request::GroupSend {
                group: part.group,
                epoch: part.epoch,
                id: entry.id,
                ciphertext: entry.ciphertext.clone(),
                key_shares: part.key_shares.clone(),
            };
            let sent = match self.link() {
                Ok(link) => link.request(&request).await,
                Err(e) => Err(e),
            };
            match sent {
                Err(ConnectionError::Refused(error))
                    if error.code == ErrorCode::GroupChanged && attempt == 0 =>
                {
                    match self.refresh_group(part.group).await {
                        Ok(_) => {}
                        Err(ClientError::Connection(ConnectionError::Refused(e))) => {
                            return self.settle_delivery(&entry, Err(ConnectionError::Refused(e)));
                        }
                        Err(e) => return Err(e),
                    }
                    match self.reencrypt(&entry, part.group).await? {
                        Some(fresh) => entry = fresh,
                        None => {
                            return Ok(Delivery::Later(self.unreachable("the group is unknown")));
                        }
                    }
                }
                other => {
                    let sent = matches!(other, Ok(Reply::Sent { .. }));
                    let delivery = self.settle_delivery(&entry, other)?;
                    if sent {
                        let delivered: Vec<UserName> =
                            part.key_shares.iter().map(|s| s.to.clone()).collect();
                        self.store.record_key_shares_delivered(
                            part.group,
                            &part.session_id,
                            &delivered,
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

    fn unreachable(&self, reason: &str) -> ConnectionError {
        ConnectionError::Unreachable {
            relay: self.relay.clone(),
            reason: reason.into(),
        }
    }

    /// Encrypts a waiting group message again, from its history entry, for the group's
    /// members now; `None` if it has no history entry to take the text from.
    async fn reencrypt(
        &self,
        entry: &OutboxEntry,
        group: GroupId,
    ) -> Result<Option<OutboxEntry>, ClientError> {
        let Some(history) = self.store.history_entry(&self.me, entry.id)? else {
            return Ok(None);
        };
        let Some(text) = history.text else {
            return Ok(None);
        };
        let draft = Draft {
            id: entry.id,
            text,
            sent_ms: history.sent_ms,
        };
        match self.encrypt_for_group(group, &draft).await {
            Ok(fresh) => Ok(Some(fresh)),
            // No longer a member: the relay will refuse it for good, which marks it failed.
            Err(ClientError::Connection(ConnectionError::Refused(_))) => Ok(Some(entry.clone())),
            Err(e) => Err(e),
        }
    }

    /// A group membership event: update the group, store a notice in its history, tell
    /// the user.
    pub(super) fn take_in_group_changed(
        &self,
        info: GroupInfo,
        change: GroupChange,
        relay_ts_ms: u64,
        seq: Seq,
    ) -> Result<(), ClientError> {
        let mut local = self.store.group(info.id)?.unwrap_or_else(|| LocalGroup {
            seen: info.clone(),
            latest: info.clone(),
        });
        if info.epoch >= local.seen.epoch {
            local.seen = info.clone();
        }
        if info.epoch >= local.latest.epoch {
            local.latest = info.clone();
        }
        let from = actor(&change, &info);
        let id = notice_id(info.id, info.epoch);
        let entry = HistoryEntry {
            id,
            conversation: ConversationId::group(info.id),
            from: from.clone(),
            to: self.me.clone(),
            sent_ms: relay_ts_ms,
            received_ms: now_ms(),
            text: None,
            status: EntryStatus::Received,
            flags: EntryFlags::default(),
            group: Some(info.id),
            group_change: Some(change.clone()),
        };
        let duplicate = self.store.has_message(&from, id)?;
        self.store.commit_inbound(&InboundCommit {
            sessions: Vec::new(),
            pin: None,
            entry: Some(entry),
            from,
            id,
            seq,
            group_session: None,
            group: Some(local),
        })?;
        if !duplicate {
            let _ = self.events.send(ClientEvent::GroupChanged {
                group: info,
                change,
            });
        }
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
        let mut identity = self.identity.lock().await;
        let now = now_ms();
        let opened = self
            .olm_decrypt(&mut identity, &from, ciphertext, now)
            .await?;
        let verdict = match &opened.plaintext {
            Err(problem) => Err(problem.clone()),
            Ok(plain) => match Payload::from_bytes(plain) {
                Err(e) => Err(e.to_string()),
                Ok(payload) => self.accept_group_key(group, &from, payload, opened.flag, now),
            },
        };
        let group_session = match verdict {
            Ok(record) => record,
            Err(problem) => {
                tracing::warn!(%group, %from, problem, "group key refused");
                None
            }
        };
        let sessions_changed = opened.sessions.is_some();
        let commit = InboundCommit {
            sessions: opened.sessions.unwrap_or_default(),
            pin: opened.pin,
            entry: None,
            from,
            // A key share has no message id of its own; this marks it taken in under an
            // id no message can have (message ids are random, this one is derived).
            id: key_share_id(ciphertext),
            seq,
            group_session,
            group: None,
        };
        self.commit_olm_inbound(&mut identity, &commit, sessions_changed)
    }

    /// The inbound session a key share carries, if it is acceptable: for this group, from
    /// a member, a valid session not claimed by another sender. `Ok(None)` if this session
    /// is known already (its seen indexes stay as they are).
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
        if !local.is_some_and(|g| g.seen.has_member(from)) {
            return Err(format!("{from} is not a member of the group"));
        }
        let session = InboundGroupSession::from_key(&key).map_err(|e| e.to_string())?;
        if session.id() != session_id {
            return Err("the session id does not match the key".into());
        }
        match self
            .store
            .group_session_sender(group, &session_id)
            .map_err(|e| e.to_string())?
        {
            Some(sender) if &sender == from => return Ok(None),
            Some(sender) => {
                return Err(format!("the session belongs to {sender}, not to {from}"));
            }
            None => {}
        }
        let sealed = session.seal(&self.key);
        Ok(Some(InboundGroupRecord {
            group,
            sender: from.clone(),
            session_id,
            pickle: sealed.pickle,
            seen: sealed.seen,
            epoch,
            received_ms: now,
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
        let member = self
            .store
            .group(group)?
            .is_some_and(|g| g.seen.has_member(&from) && from != self.me);
        if !member {
            return reject(format!("{from} is not a member of the group"));
        }
        let envelope = match GroupEnvelope::from_bytes(ciphertext) {
            Ok(envelope) => envelope,
            Err(e) => return reject(e.to_string()),
        };
        let now = now_ms();
        let record = self
            .store
            .inbound_group_session(group, &from, &envelope.session_id)?;
        let mut text = None;
        let mut sent_ms = relay_ts_ms;
        let mut problem = None;
        let mut updated = None;
        match record {
            None => {
                problem = Some(format!(
                    "{from} never shared the key to this message with you"
                ));
            }
            Some(record) => {
                let mut session = self.unseal_inbound(&record)?;
                match session.decrypt(&envelope.body) {
                    Err(
                        e @ (MegolmError::Forged
                        | MegolmError::Replayed { .. }
                        | MegolmError::MalformedMessage),
                    ) => {
                        return reject(e.to_string());
                    }
                    Err(e) => problem = Some(e.to_string()),
                    Ok(decrypted) => {
                        let payload = match Payload::from_bytes(&decrypted.plaintext) {
                            Ok(payload) => payload,
                            Err(e) => return reject(e.to_string()),
                        };
                        if payload.group != Some(group) || payload.id != id {
                            return reject(
                                "the message names another group or id than the relay says".into(),
                            );
                        }
                        sent_ms = payload.sent_ms;
                        match payload.content {
                            Content::Text { text: t } => text = Some(t),
                            _ => problem = Some("content from a newer version of Uchat".into()),
                        }
                        let sealed = session.seal(&self.key);
                        updated = Some(InboundGroupRecord {
                            pickle: sealed.pickle,
                            seen: sealed.seen,
                            ..record
                        });
                    }
                }
            }
        }
        if problem.is_some() {
            tracing::warn!(%group, %from, %id, "group message could not be decrypted; kept as undecryptable");
        }
        let received = ReceivedMessage {
            id,
            from: from.clone(),
            to: self.me.clone(),
            text,
            sent_ms,
            identity: IdentityFlag::Known,
            problem,
            group: Some(group),
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
}
