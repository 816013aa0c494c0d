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
