//! What the CLI prints: `--json` lines (their own types, so cli.md's shapes cannot change
//! by accident when library types do) and the human forms.

use serde::Serialize;
use uchat_store::{EntryStatus, HistoryEntry, IdentityFlag};
use uchat_wire::UserName;

/// One `--json` line.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum JsonLine<'a> {
    Message {
        id: String,
        from: &'a str,
        to: &'a str,
        group: Option<&'a str>,
        text: Option<&'a str>,
        ts: u64,
        status: &'static str,
        identity: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        problem: Option<&'a str>,
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
        to: &'a str,
    },
    SafetyNumber {
        user: &'a str,
        digits: &'a str,
        /// The number of the identity the relay serves now, if it differs from the pinned.
        changed_digits: Option<&'a str>,
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
    }
}

/// A message as one JSON line.
#[allow(clippy::too_many_arguments)]
pub(crate) fn message_line<'a>(
    id: String,
    from: &'a UserName,
    to: &'a UserName,
    text: Option<&'a str>,
    ts: u64,
    status: EntryStatus,
    identity: IdentityFlag,
    problem: Option<&'a str>,
) -> JsonLine<'a> {
    JsonLine::Message {
        id,
        from: from.as_str(),
        to: to.as_str(),
        group: None,
        text,
        ts,
        status: status_name(status),
        identity: identity_name(identity),
        problem,
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
    let warn = match entry.flags.identity {
        IdentityFlag::Changed => " [identity key changed!]",
        IdentityFlag::New | IdentityFlag::Known => "",
    };
    let body = match (&entry.text, entry.status) {
        (Some(text), EntryStatus::Failed) => format!(
            "{text} [not sent: {}]",
            entry.flags.note.as_deref().unwrap_or("refused")
        ),
        (Some(text), EntryStatus::Pending) => format!("{text} [waiting in outbox]"),
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
    fn times_format_as_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_764_060_300_000), "2025-11-25 08:45:00");
    }
}
