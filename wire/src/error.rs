//! Errors that cross the wire ([`ErrorCode`]) and errors of the frame codec ([`FrameError`]).

use serde::{Deserialize, Serialize};

/// Why the relay refused a request. Sent inside [`crate::ErrorReply`] with a human message.
///
/// Variants are serialized by name; never rename or reuse one. Codes a peer does not know
/// decode as [`ErrorCode::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The peer's protocol major version is not supported by the relay.
    UnsupportedProtocol,
    /// A request arrived out of order (for example anything before `Hello`).
    ProtocolViolation,
    /// The frame was not valid MessagePack for a request.
    Malformed,
    /// The frame exceeded the size limit.
    FrameTooLarge,
    /// The request needs a logged-in session.
    NotAuthenticated,
    /// The username is not acceptable (length or characters).
    InvalidUsername,
    /// The password is not acceptable (too short or too long).
    InvalidPassword,
    /// Someone already registered this username.
    UsernameTaken,
    /// No account has this username.
    UnknownUser,
    /// The password does not match.
    WrongPassword,
    /// The session token is unknown or was revoked; log in again.
    InvalidToken,
    /// Too many attempts; try again later.
    RateLimited,
    /// A message or key bundle is larger than allowed.
    TooLarge,
    /// The recipient's queue is full; they must come online and catch up first.
    QueueFull,
    /// Keys were missing or malformed.
    BadKeys,
    /// The recipient has no keys to start a session with.
    NoKeysAvailable,
    /// The relay failed internally; the request may be retried.
    Internal,
    /// The other user is not a friend: 1:1 messages and profiles are for friends only.
    NotFriends,
    /// The two users are friends already.
    AlreadyFriends,
    /// A friend request to this user is pending already.
    DuplicateRequest,
    /// There is no pending friend request from this user.
    NoSuchRequest,
    /// The request's content is not acceptable (a request to oneself, a note, signature or
    /// avatar that breaks the rules); the message says which rule.
    InvalidInput,
    /// The sender blocked the recipient; unblock them first.
    BlockedByYou,
    /// A per-user limit (friends, pending requests) is reached.
    LimitReached,
    /// No such group among the asker's groups (it does not exist, or they are not in it).
    NoSuchGroup,
    /// Only the group's owner may do this.
    NotGroupOwner,
    /// The group's members changed since the sender shared its keys: fetch the group,
    /// share a new session and send again.
    GroupChanged,
    /// The user is in the group already.
    AlreadyMember,
    /// The user is not a member of the group.
    NotGroupMember,
    /// The asker may not do this to this thing (download this file, delete someone
    /// else's post or comment).
    NotAllowed,
    /// No such file (never uploaded, or deleted when its retention ended).
    NoSuchFile,
    /// The uploader's file storage on the relay is full.
    QuotaExceeded,
    /// The file's upload has not finished; try again later.
    FileIncomplete,
    /// No such call rings for, or includes, the asker.
    NoSuchCall,
    /// The asker is in another call already; hang up first.
    InCall,
    /// No such post among those the asker may see (never posted, deleted, or not shared
    /// with them).
    NoSuchPost,
    /// No such comment on a post the asker may see.
    NoSuchComment,
    /// A code this build does not know (sent by a newer relay).
    #[serde(other)]
    Unknown,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// An error and its causes as one line, for a program's last words: each cause is added
/// after ": " unless the text so far already says it (many of our errors put their cause
/// into their own message, so that logs of the error alone are complete).
pub fn describe_error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

/// A frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more bytes than the limit allows.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced body length.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended mid-frame: expected {expected} bytes, received {received}")]
    Truncated {
        /// Bytes the frame needed (header and body).
        expected: usize,
        /// Bytes that arrived.
        received: usize,
    },
    /// The body was not valid MessagePack for the expected type.
    #[error("malformed frame body: {reason}")]
    Malformed {
        /// What the decoder objected to.
        reason: String,
    },
}

impl FrameError {
    /// The wire code a relay answers with when a request frame fails this way.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            FrameError::Truncated { .. } | FrameError::Malformed { .. } => ErrorCode::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct ReadFailed {
        path: &'static str,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the avatar is unusable")]
    struct Unusable(#[source] ReadFailed);

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let inner = ReadFailed {
            path: "me.png",
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        };
        assert_eq!(
            describe_error_chain(&inner),
            "cannot read me.png: no such file"
        );
        assert_eq!(
            describe_error_chain(&Unusable(inner)),
            "the avatar is unusable: cannot read me.png: no such file"
        );
    }
}
