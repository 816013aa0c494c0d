//! What the CLI prints: `--json` lines (their own types, so cli.md's shapes cannot change
//! by accident when library types do) and the human forms.

use serde::Serialize;
use uchat_peer::store::{EntryStatus, HistoryEntry, IdentityFlag};
use uchat_wire::{GroupChange, GroupInfo};

/// A call's figures at hang-up.
#[derive(Serialize)]
pub(crate) struct CallSummaryLine {
    pub(crate) duration_s: f64,
    pub(crate) path: &'static str,
    pub(crate) frames_sent: u64,
    pub(crate) frames_received: u64,
    pub(crate) loss: f64,
    pub(crate) fec_recovered: u64,
    pub(crate) concealed: u64,
    pub(crate) mouth_to_ear_ms: Option<f64>,
    pub(crate) rtt_ms: Option<f64>,
    pub(crate) max_jitter_ms: f64,
}

/// A picture of a post; `file` is its id, for `download`.
#[derive(Serialize)]
pub(crate) struct MomentImageLine<'a> {
    pub(crate) file: String,
    pub(crate) name: &'a str,
    pub(crate) size: u64,
    pub(crate) mime: &'a str,
    pub(crate) thumbnail_bytes: Option<usize>,
    pub(crate) width: Option<u32>,
    pub(crate) height: Option<u32>,
}

/// A comment of a post.
#[derive(Serialize)]
pub(crate) struct MomentCommentLine<'a> {
    pub(crate) id: String,
    pub(crate) author: &'a str,
    pub(crate) reply_to: Option<&'a str>,
    pub(crate) text: &'a str,
    pub(crate) ts: u64,
}

/// One `--json` line.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum JsonLine<'a> {
    /// A 1:1 or group message (for a group message, `to` and `group` are the group's id).
    Message {
        id: String,
        from: &'a str,
        to: String,
        group: Option<String>,
        text: Option<&'a str>,
        ts: u64,
        status: &'static str,
        identity: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        problem: Option<&'a str>,
    },
    Receipt {
        /// "delivered" or "read".
        kind: &'static str,
        /// Who sent it (the recipient of the messages).
        from: &'a str,
        /// The messages whose status moved.
        ids: Vec<String>,
    },
    Presence {
        user: &'a str,
        online: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        last_seen_ms: Option<u64>,
    },
    /// A friend request to this user (an event, or an incoming entry of `friends requests`).
    FriendRequest {
        from: &'a str,
        note: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<u64>,
    },
    /// A request this user sent (`friends add`, or an outgoing entry of `friends requests`).
    FriendRequestSent {
        to: &'a str,
        note: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<u64>,
        /// `friends add` only: true if the other side had asked first.
        #[serde(skip_serializing_if = "Option::is_none")]
        became_friends: Option<bool>,
    },
    FriendAccepted {
        user: &'a str,
    },
    FriendRemoved {
        user: &'a str,
    },
    /// One entry of `friends list`.
    Friend {
        user: &'a str,
        online: bool,
        last_seen_ms: Option<u64>,
        since_ms: u64,
        blocked: bool,
        signature: &'a str,
        avatar_version: Option<&'a str>,
        identity_changed: bool,
    },
    /// A profile (`profile show`/`profile set`, or a friend's change as an event).
    Profile {
        user: &'a str,
        signature: &'a str,
        avatar_version: Option<&'a str>,
        updated_ms: u64,
        /// `profile show` only: the avatar's size, and whether it came from the cache.
        #[serde(skip_serializing_if = "Option::is_none")]
        avatar_bytes: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        avatar_from_cache: Option<bool>,
    },
    IdentityChanged {
        user: &'a str,
    },
    /// The friend list could not be checked for identity and profile changes.
    FriendSyncFailed {
        reason: &'a str,
    },
    /// A command that changes something and returns nothing else.
    Done {
        action: &'a str,
        user: &'a str,
    },
    Registered {
        user: &'a str,
        relay: &'a str,
    },
    LoggedIn {
        user: &'a str,
        relay: &'a str,
        new_device: bool,
    },
    LoggedOut {},
    Whoami {
        user: Option<&'a str>,
        relay: Option<&'a str>,
    },
    Sent {
        id: String,
        to: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        group: Option<String>,
    },
    /// A group (`group create/list/invite/kick`).
    Group {
        id: String,
        name: &'a str,
        owner: &'a str,
        epoch: u64,
        created_ms: u64,
        members: Vec<&'a str>,
    },
    /// One member of a group (`group members`).
    GroupMember {
        group: String,
        user: &'a str,
        owner: bool,
        joined_ms: u64,
    },
    /// A membership change (an event, or an entry of `history #GROUP`).
    GroupEvent {
        group: String,
        /// Events only: the group's name and membership epoch after the change.
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<u64>,
        change: &'static str,
        user: Option<&'a str>,
        by: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        new_owner: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<u64>,
    },
    /// A file message (an event, or an entry of `history`); `id` is the file's id, for
    /// `download`.
    File {
        id: String,
        message_id: String,
        from: &'a str,
        to: String,
        group: Option<String>,
        name: &'a str,
        size: u64,
        md5: String,
        mime: &'a str,
        ts: u64,
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        thumbnail_bytes: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        width: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        height: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        saved_to: Option<&'a str>,
    },
    /// What one `send-file` or `download` run moved, in bytes of ciphertext.
    Transfer {
        direction: &'static str,
        file: String,
        bytes: u64,
        resumed_at: u64,
        total: u64,
    },
    /// A downloaded file, checked and saved.
    Saved {
        file: String,
        path: &'a str,
        size: u64,
        md5: String,
    },
    /// A group message refused as forged, replayed or from a non-member (nothing stored).
    Rejected {
        group: String,
        from: &'a str,
        reason: &'a str,
    },
    SafetyNumber {
        user: &'a str,
        digits: &'a str,
        /// The number of the identity the relay serves now, if it differs from the pinned.
        changed_digits: Option<&'a str>,
    },
    /// A call's state: ringing (placed), incoming, connected, rejected, ended (with why
    /// and, for a call that connected, by whom and its summary), missed, or ignored
    /// (signalling that cannot be genuine).
    Call {
        state: &'static str,
        call: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        by: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        summary: Option<CallSummaryLine>,
    },
    /// A connected call's figures, once a second.
    CallStats {
        path: &'static str,
        loss: f64,
        jitter_ms: f64,
        rtt_ms: Option<f64>,
        buffer_ms: u32,
        target_ms: u32,
        bitrate: i32,
        mouth_to_ear_ms: Option<f64>,
        fec_recovered: u64,
        concealed: u64,
        frames_sent: u64,
        frames_received: u64,
    },
    /// No sound device: the call goes on with silence.
    Audio {
        direction: &'a str,
        note: &'a str,
    },
    /// A post this user made (`moments post`).
    MomentPosted {
        id: String,
        ts: u64,
        shared_with: Vec<&'a str>,
        not_shared: Vec<&'a str>,
    },
    /// A post in the feed (`moments feed`, `moments show`).
    Moment {
        id: String,
        author: &'a str,
        text: Option<&'a str>,
        ts: u64,
        cursor: u64,
        images: Vec<MomentImageLine<'a>>,
        likes: Vec<&'a str>,
        comments: Vec<MomentCommentLine<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        problem: Option<&'a str>,
    },
    /// The end of a feed page: `next` is the cursor for `moments feed --before`.
    MomentPage {
        count: usize,
        next: Option<u64>,
    },
    /// Something happened to a moment: a friend `posted`, or someone `liked` or
    /// `commented` on this user's post (or replied to them there).
    MomentEvent {
        kind: &'static str,
        post: String,
        by: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<&'a str>,
    },
    Connection {
        state: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'a str>,
    },
    Error {
        code: &'a str,
        message: &'a str,
        /// The message the error is about (kept in the outbox), if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
}

impl JsonLine<'_> {
    pub(crate) fn print(&self) {
        match serde_json::to_string(self) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("uchat: cannot print JSON: {e}"),
        }
    }
}

pub(crate) fn identity_name(flag: IdentityFlag) -> &'static str {
    match flag {
        IdentityFlag::Known => "known",
        IdentityFlag::New => "new",
        IdentityFlag::Changed => "changed",
    }
}

pub(crate) fn status_name(status: EntryStatus) -> &'static str {
    match status {
        EntryStatus::Pending => "pending",
        EntryStatus::Sent => "sent",
        EntryStatus::Received => "received",
        EntryStatus::Undecryptable => "undecryptable",
        EntryStatus::Failed => "failed",
        EntryStatus::Delivered => "delivered",
        EntryStatus::Read => "read",
    }
}

/// A history entry (or a received message) as one JSON line: a message, or a membership
/// change of a group.
pub(crate) fn entry_line(entry: &HistoryEntry) -> JsonLine<'_> {
    let group = entry.group.map(|g| g.to_string());
    if let (Some(change), Some(id)) = (&entry.group_change, &group) {
        let (kind, user, by, new_owner) = describe_change(change);
        return JsonLine::GroupEvent {
            group: id.clone(),
            name: None,
            epoch: None,
            change: kind,
            user,
            by,
            new_owner,
            ts: Some(entry.sent_ms),
        };
    }
    let to = group
        .clone()
        .unwrap_or_else(|| entry.to.as_str().to_string());
    if let Some(file) = &entry.file {
        return JsonLine::File {
            id: file.file.to_string(),
            message_id: entry.id.to_string(),
            from: entry.from.as_str(),
            to,
            group,
            name: &file.name,
            size: file.size,
            md5: hex::encode(&file.md5),
            mime: &file.mime,
            ts: entry.sent_ms,
            status: status_name(entry.status),
            thumbnail_bytes: file.thumbnail.as_ref().map(Vec::len),
            width: file.dimensions.map(|d| d.0),
            height: file.dimensions.map(|d| d.1),
            saved_to: file.saved_to.as_deref(),
        };
    }
    JsonLine::Message {
        id: entry.id.to_string(),
        from: entry.from.as_str(),
        to,
        group,
        text: entry.text.as_deref(),
        ts: entry.sent_ms,
        status: status_name(entry.status),
        identity: identity_name(entry.flags.identity),
        problem: entry.flags.note.as_deref(),
    }
}

/// A membership change: its name, the member it is about, who made it, the new owner.
pub(crate) fn describe_change(
    change: &GroupChange,
) -> (&'static str, Option<&str>, Option<&str>, Option<&str>) {
    match change {
        GroupChange::Created { by } => ("created", None, Some(by.as_str()), None),
        GroupChange::Joined { user, by } => {
            ("joined", Some(user.as_str()), Some(by.as_str()), None)
        }
        GroupChange::Left { user, new_owner } => (
            "left",
            Some(user.as_str()),
            None,
            new_owner.as_ref().map(|o| o.as_str()),
        ),
        GroupChange::Removed { user, by } => {
            ("removed", Some(user.as_str()), Some(by.as_str()), None)
        }
        GroupChange::Synced => ("synced", None, None, None),
        GroupChange::Unknown => ("unknown", None, None, None),
    }
}

/// A membership change in words.
pub(crate) fn human_change(change: &GroupChange) -> String {
    match change {
        GroupChange::Created { by } => format!("{by} made the group"),
        GroupChange::Joined { user, by } => format!("{by} added {user}"),
        GroupChange::Left {
            user,
            new_owner: Some(owner),
        } => format!("{user} left; {owner} owns the group now"),
        GroupChange::Left { user, .. } => format!("{user} left"),
        GroupChange::Removed { user, by } => format!("{by} removed {user}"),
        GroupChange::Synced => "this device received the member list".to_string(),
        GroupChange::Unknown => "the group changed".to_string(),
    }
}

/// A group as one JSON line.
pub(crate) fn group_line(group: &GroupInfo) -> JsonLine<'_> {
    JsonLine::Group {
        id: group.id.to_string(),
        name: &group.name,
        owner: group.owner.as_str(),
        epoch: group.epoch,
        created_ms: group.created_ms,
        members: group.members.iter().map(|m| m.user.as_str()).collect(),
    }
}

/// A group in words.
pub(crate) fn human_group(group: &GroupInfo) -> String {
    let members: Vec<&str> = group.members.iter().map(|m| m.user.as_str()).collect();
    format!(
        "#{} ({}) owner {}, {} members: {}",
        group.name,
        group.id,
        group.owner,
        members.len(),
        members.join(", ")
    )
}

/// A size in bytes for people: `512 B`, `1.5 KiB`, `20.0 MiB`, `1.00 GiB`.
pub(crate) fn format_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else {
        format!("{:.2} GiB", b / (KIB * KIB * KIB))
    }
}

/// Formats ms since the epoch as UTC `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn format_time(ms: u64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// One history entry in human form.
pub(crate) fn human_entry(entry: &HistoryEntry) -> String {
    if let Some(change) = &entry.group_change {
        return format!(
            "[{}] * {}",
            format_time(entry.sent_ms),
            human_change(change)
        );
    }
    let warn = match entry.flags.identity {
        IdentityFlag::Changed => " [identity key changed!]",
        IdentityFlag::New | IdentityFlag::Known => "",
    };
    if let Some(file) = &entry.file {
        let kind = if file.mime.starts_with("image/") {
            "picture"
        } else {
            "file"
        };
        let saved = file
            .saved_to
            .as_ref()
            .map(|p| format!(", saved to {p}"))
            .unwrap_or_default();
        return format!(
            "[{}] {}: [{kind} {} ({}), id {}{saved}]",
            format_time(entry.sent_ms),
            entry.from,
            file.name,
            format_size(file.size),
            file.file
        );
    }
    let body = match (&entry.text, entry.status) {
        (Some(text), EntryStatus::Failed) => format!(
            "{text} [not sent: {}]",
            entry.flags.note.as_deref().unwrap_or("refused")
        ),
        (Some(text), EntryStatus::Pending) => format!("{text} [waiting in outbox]"),
        (Some(text), EntryStatus::Delivered) => format!("{text} [delivered]"),
        (Some(text), EntryStatus::Read) => format!("{text} [read]"),
        (Some(text), _) => text.clone(),
        (None, _) => format!(
            "[unable to decrypt: {}]",
            entry.flags.note.as_deref().unwrap_or("unknown reason")
        ),
    };
    format!(
        "[{}] {}: {body}{warn}",
        format_time(entry.sent_ms),
        entry.from
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_format_for_people() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(50 << 20), "50.0 MiB");
        assert_eq!(format_size(1 << 30), "1.00 GiB");
    }

    #[test]
    fn times_format_as_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_764_060_300_000), "2025-11-25 08:45:00");
    }
}
