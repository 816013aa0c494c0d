//! How `uchat listen` prints each [`ClientEvent`]: its `--json` line, or a line for people,
//! by area.

use uchat_peer::{ClientEvent, ReceiptKind};

use crate::output::{self, JsonLine, entry_line, human_change, human_entry};
use crate::{Invocation, call, social};

impl Invocation {
    /// Prints one event `listen` received.
    pub(crate) fn print_event(&self, event: &ClientEvent) {
        match event {
            ClientEvent::Message(_)
            | ClientEvent::GroupChanged { .. }
            | ClientEvent::GroupMessageRejected { .. } => self.print_chat_event(event),
            ClientEvent::Presence { .. }
            | ClientEvent::FriendRequest { .. }
            | ClientEvent::FriendAccepted { .. }
            | ClientEvent::FriendRemoved { .. }
            | ClientEvent::ProfileChanged { .. }
            | ClientEvent::IdentityChanged { .. }
            | ClientEvent::FriendSyncFailed { .. } => self.print_social_event(event),
            ClientEvent::CallIncoming { .. }
            | ClientEvent::CallAccepted { .. }
            | ClientEvent::CallEnded { .. }
            | ClientEvent::MissedCall { .. }
            | ClientEvent::CallSignalIgnored { .. } => self.print_call_event(event),
            ClientEvent::MomentPosted { .. }
            | ClientEvent::MomentLiked { .. }
            | ClientEvent::MomentCommented { .. } => self.print_moment_event(event),
            ClientEvent::Disconnected { .. }
            | ClientEvent::OutboxSettled { .. }
            | ClientEvent::Receipt { .. }
            | ClientEvent::Reconnected => self.print_delivery_event(event),
        }
    }

    /// A message, or a change of or refusal in a group.
    fn print_chat_event(&self, event: &ClientEvent) {
        match event {
            ClientEvent::Message(m) => {
                let entry = m.history_entry(m.sent_ms);
                self.print(entry_line(&entry), || match m.group {
                    Some(group) => format!("#{group} {}", human_entry(&entry)),
                    None => human_entry(&entry),
                });
            }
            ClientEvent::GroupChanged { group, change } => {
                let (kind, user, by, new_owner) = output::describe_change(change);
                self.print(
                    JsonLine::GroupEvent {
                        group: group.id.to_string(),
                        name: Some(&group.name),
                        epoch: Some(group.epoch),
                        change: kind,
                        user,
                        by,
                        new_owner,
                        ts: None,
                    },
                    || format!("#{}: {}", group.name, human_change(change)),
                );
            }
            ClientEvent::GroupMessageRejected {
                group,
                from,
                reason,
            } => self.print(
                JsonLine::Rejected {
                    group: group.to_string(),
                    from: from.as_str(),
                    reason,
                },
                || format!("WARNING: a message to group {group} claiming to be from {from} was refused: {reason}"),
            ),
            // The other kinds are printed by the other `print_*_event` functions.
            _ => {}
        }
    }

    /// Presence, friends' requests and changes, profiles and identity warnings.
    fn print_social_event(&self, event: &ClientEvent) {
        match event {
            ClientEvent::Presence {
                user,
                online,
                last_seen_ms,
            } => self.print(
                JsonLine::Presence {
                    user: user.as_str(),
                    online: *online,
                    last_seen_ms: *last_seen_ms,
                },
                || format!("{user} is {}", if *online { "online" } else { "offline" }),
            ),
            ClientEvent::FriendRequest { from, note } => self.print(
                JsonLine::FriendRequest {
                    from: from.as_str(),
                    note,
                    ts: None,
                },
                || social::incoming_line(from.as_str(), note),
            ),
            ClientEvent::FriendAccepted { user } => self.print(
                JsonLine::FriendAccepted {
                    user: user.as_str(),
                },
                || format!("{user} accepted: you are friends now"),
            ),
            ClientEvent::FriendRemoved { user } => self.print(
                JsonLine::FriendRemoved {
                    user: user.as_str(),
                },
                || format!("{user} removed you as a friend"),
            ),
            ClientEvent::ProfileChanged { user, profile } => self.print(
                JsonLine::Profile {
                    user: user.as_str(),
                    signature: &profile.signature,
                    avatar_version: profile.avatar_version.as_deref(),
                    updated_ms: profile.updated_ms,
                    avatar_bytes: None,
                    avatar_from_cache: None,
                },
                || format!("{user} changed their profile: {}", profile.signature),
            ),
            ClientEvent::IdentityChanged { user } => self.print(
                JsonLine::IdentityChanged {
                    user: user.as_str(),
                },
                || {
                    format!(
                        "WARNING: {user}'s identity key has changed; compare safety numbers (uchat safety-number {user}) before trusting it"
                    )
                },
            ),
            ClientEvent::FriendSyncFailed { reason } => self.print(
                JsonLine::FriendSyncFailed { reason },
                || {
                    format!(
                        "WARNING: friends' identity keys could not be checked ({reason}); run uchat friends list to check again"
                    )
                },
            ),
            // The other kinds are printed by the other `print_*_event` functions.
            _ => {}
        }
    }

    /// Call signalling: ringing, answered, ended, missed, ignored.
    fn print_call_event(&self, event: &ClientEvent) {
        match event {
            ClientEvent::CallIncoming { call, from, .. } => self.print(
                JsonLine::Call {
                    state: "incoming",
                    call: call.to_string(),
                    peer: Some(from.as_str()),
                    reason: None,
                    by: None,
                    summary: None,
                },
                || format!("{from} is calling (answer with `uchat answer`)"),
            ),
            ClientEvent::CallAccepted { call } => self.print(
                JsonLine::Call {
                    state: "accepted",
                    call: call.to_string(),
                    peer: None,
                    reason: None,
                    by: None,
                    summary: None,
                },
                || format!("call {call} was answered"),
            ),
            ClientEvent::CallEnded { call, reason } => self.print(
                JsonLine::Call {
                    state: "ended",
                    call: call.to_string(),
                    peer: None,
                    reason: Some(reason.as_str()),
                    by: None,
                    summary: None,
                },
                || format!("call {call} ended: {}", call::human_reason(*reason)),
            ),
            ClientEvent::MissedCall {
                call,
                from,
                reason,
                at_ms,
            } => self.print(
                JsonLine::Call {
                    state: "missed",
                    call: call.to_string(),
                    peer: Some(from.as_str()),
                    reason: Some(reason.as_str()),
                    by: None,
                    summary: None,
                },
                || {
                    format!(
                        "missed call from {from} at {} ({})",
                        output::format_time(*at_ms),
                        call::human_reason(*reason)
                    )
                },
            ),
            ClientEvent::CallSignalIgnored { call, reason } => self.print(
                JsonLine::Call {
                    state: "ignored",
                    call: call.to_string(),
                    peer: None,
                    reason: Some(reason),
                    by: None,
                    summary: None,
                },
                || format!("WARNING: call signalling ignored ({call}): {reason}"),
            ),
            // The other kinds are printed by the other `print_*_event` functions.
            _ => {}
        }
    }

    /// Moments: a friend's post, a like or a comment on one of this user's.
    fn print_moment_event(&self, event: &ClientEvent) {
        match event {
            ClientEvent::MomentPosted { post, author } => self.print(
                JsonLine::MomentEvent {
                    kind: "posted",
                    post: post.to_string(),
                    by: author.as_str(),
                    comment: None,
                    text: None,
                    reply_to: None,
                },
                || format!("{author} posted a moment ({post}): uchat moments feed"),
            ),
            ClientEvent::MomentLiked { post, by, .. } => self.print(
                JsonLine::MomentEvent {
                    kind: "liked",
                    post: post.to_string(),
                    by: by.as_str(),
                    comment: None,
                    text: None,
                    reply_to: None,
                },
                || format!("{by} liked your moment {post}"),
            ),
            ClientEvent::MomentCommented { post, comment } => self.print(
                JsonLine::MomentEvent {
                    kind: "commented",
                    post: post.to_string(),
                    by: comment.author.as_str(),
                    comment: Some(comment.id.to_string()),
                    text: Some(&comment.text),
                    reply_to: comment.reply_to.as_ref().map(|u| u.as_str()),
                },
                || match &comment.reply_to {
                    Some(to) => format!(
                        "{} replied to {to} on moment {post}: {}",
                        comment.author, comment.text
                    ),
                    None => format!(
                        "{} commented on your moment {post}: {}",
                        comment.author, comment.text
                    ),
                },
            ),
            // The other kinds are printed by the other `print_*_event` functions.
            _ => {}
        }
    }

    /// The connection and what became of this user's messages.
    fn print_delivery_event(&self, event: &ClientEvent) {
        match event {
            ClientEvent::Disconnected { reason } => self.print(
                JsonLine::Connection {
                    state: "disconnected",
                    reason: Some(reason),
                },
                || format!("disconnected from the relay ({reason}); reconnecting…"),
            ),
            // A send's own command reports it; `listen` has no line for it.
            ClientEvent::OutboxSettled { .. } => {}
            ClientEvent::Receipt { user, kind, ids } => {
                let kind = match kind {
                    ReceiptKind::Delivered => "delivered",
                    ReceiptKind::Read => "read",
                };
                self.print(
                    JsonLine::Receipt {
                        kind,
                        from: user.as_str(),
                        ids: ids.iter().map(ToString::to_string).collect(),
                    },
                    || match ids.len() {
                        1 => format!("{user}: {kind} (message {})", ids[0]),
                        n => format!("{user}: {kind} ({n} messages)"),
                    },
                )
            }
            ClientEvent::Reconnected => self.print(
                JsonLine::Connection {
                    state: "connected",
                    reason: None,
                },
                || "reconnected".to_string(),
            ),
            // The other kinds are printed by the other `print_*_event` functions.
            _ => {}
        }
    }
}
