//! The social layer's shared types and input rules: friends, friend requests and profiles.
//!
//! The limits here are checked twice: by the peer, to give a clear error before anything is
//! sent, and by the relay, which enforces them whatever a peer sends.

use serde::{Deserialize, Serialize};

use crate::ids::UserName;
use crate::msg::request::IdentityKeys;

/// Longest note on a friend request, in characters.
pub const MAX_NOTE_CHARS: usize = 200;
/// Longest profile signature, in characters.
pub const MAX_SIGNATURE_CHARS: usize = 200;
/// Largest avatar the relay stores, in bytes (a 256×256 RGBA PNG of pure noise is ~263 KB).
pub const MAX_AVATAR_BYTES: usize = 384 * 1024;
/// Largest avatar side the relay accepts, in pixels; avatars are square.
pub const MAX_AVATAR_SIDE: u32 = 512;

/// Why a note or signature is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextRuleError {
    /// Longer than allowed.
    #[error("the {what} is {chars} characters long; the limit is {max}")]
    TooLong {
        /// "note" or "signature".
        what: &'static str,
        /// Its length in characters.
        chars: usize,
        /// The most characters allowed ([`MAX_NOTE_CHARS`] or [`MAX_SIGNATURE_CHARS`]).
        max: usize,
    },
    /// Contains a control character (a line break, a tab, an escape…).
    #[error("the {what} contains a control character (U+{code:04X}); use plain text on one line")]
    ControlCharacter {
        /// "note" or "signature".
        what: &'static str,
        /// The offending character's code point.
        code: u32,
    },
}

fn check_short_text(text: &str, what: &'static str, max: usize) -> Result<(), TextRuleError> {
    let chars = text.chars().count();
    if chars > max {
        return Err(TextRuleError::TooLong { what, chars, max });
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(TextRuleError::ControlCharacter {
            what,
            code: u32::from(c),
        });
    }
    Ok(())
}

/// Checks a friend request's note: at most [`MAX_NOTE_CHARS`], one line.
pub fn check_note(note: &str) -> Result<(), TextRuleError> {
    check_short_text(note, "note", MAX_NOTE_CHARS)
}

/// Checks a profile signature: at most [`MAX_SIGNATURE_CHARS`], one line.
pub fn check_signature(signature: &str) -> Result<(), TextRuleError> {
    check_short_text(signature, "signature", MAX_SIGNATURE_CHARS)
}

/// A user's public profile as the relay keeps it (the avatar image travels separately).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSummary {
    /// Short text the user shows to friends; empty if none.
    pub signature: String,
    /// Version tag of the avatar (a hash of its bytes), `None` if the user has none. A peer
    /// holding this version already need not download the avatar again.
    #[serde(default)]
    pub avatar_version: Option<String>,
    /// When the profile last changed, ms since the Unix epoch (0 if never set).
    pub updated_ms: u64,
}

/// A change to the avatar in [`crate::Request::SetProfile`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
pub enum AvatarChange {
    /// Remove the avatar.
    Remove,
    /// Replace the avatar with this PNG image: square, at most [`MAX_AVATAR_SIDE`] pixels a
    /// side and [`MAX_AVATAR_BYTES`] long (the peer resizes pictures before sending).
    Set {
        /// The PNG file's bytes.
        #[serde(with = "crate::bytes")]
        png: Vec<u8>,
    },
}

impl std::fmt::Display for AvatarChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AvatarChange::Remove => f.write_str("remove"),
            AvatarChange::Set { png } => write!(f, "set ({} bytes)", png.len()),
        }
    }
}

/// One friend, as [`crate::Reply::Friends`] lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendEntry {
    /// The friend's username; [`crate::Reply::Friends`] is in order of it.
    pub user: UserName,
    /// When the friendship began, ms since the Unix epoch.
    pub since_ms: u64,
    /// Whether the friend is online now.
    pub online: bool,
    /// When the friend was last online, ms since the Unix epoch (`None` if online or never).
    #[serde(default)]
    pub last_seen_ms: Option<u64>,
    /// True if the asking user has blocked this friend.
    #[serde(default)]
    pub blocked: bool,
    /// The friend's public identity keys as the relay serves them now, so the peer can
    /// compare them with the keys it pinned without another request.
    pub identity: IdentityKeys,
    /// The friend's profile.
    pub profile: ProfileSummary,
}

/// One pending friend request, as [`crate::Reply::FriendRequests`] lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendRequestEntry {
    /// The other side: who sent it (incoming) or who it is for (outgoing).
    pub user: UserName,
    /// The note the sender wrote.
    pub note: String,
    /// When it was sent, ms since the Unix epoch.
    pub created_ms: u64,
}

/// Checks `png` as the relay does before storing it as an avatar: at most
/// [`MAX_AVATAR_BYTES`], a PNG that decodes within [`MAX_AVATAR_SIDE`] a side (and side² × 8
/// bytes of allocation), square and not empty; why not, in words for the user.
#[cfg(feature = "avatar-check")]
pub fn check_avatar(png: &[u8]) -> Result<(), String> {
    if png.len() > MAX_AVATAR_BYTES {
        return Err(format!(
            "the avatar is {} bytes; the limit is {MAX_AVATAR_BYTES} bytes (uchat resizes pictures before sending)",
            png.len()
        ));
    }
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(png), image::ImageFormat::Png);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_AVATAR_SIDE);
    limits.max_image_height = Some(MAX_AVATAR_SIDE);
    limits.max_alloc = Some(u64::from(MAX_AVATAR_SIDE * MAX_AVATAR_SIDE) * 8);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| format!("the avatar is not a readable PNG image of at most {MAX_AVATAR_SIDE}×{MAX_AVATAR_SIDE} pixels: {e}"))?;
    if image.width() != image.height() || image.width() == 0 {
        return Err(format!(
            "the avatar must be square; it is {}×{} pixels",
            image.width(),
            image.height()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_and_signatures_are_limited_by_characters_not_bytes() {
        // 200 Chinese characters are 600 bytes and still fine.
        assert_eq!(check_signature(&"你".repeat(MAX_SIGNATURE_CHARS)), Ok(()));
        assert_eq!(check_note(&"👋".repeat(MAX_NOTE_CHARS)), Ok(()));
        assert_eq!(
            check_signature(&"你".repeat(2000)),
            Err(TextRuleError::TooLong {
                what: "signature",
                chars: 2000,
                max: MAX_SIGNATURE_CHARS
            })
        );
        assert_eq!(
            check_note(&"a".repeat(MAX_NOTE_CHARS + 1))
                .expect_err("too long")
                .to_string(),
            "the note is 201 characters long; the limit is 200"
        );
    }

    #[test]
    fn control_characters_are_refused_with_their_code_point() {
        assert_eq!(check_note(""), Ok(()));
        let err = check_signature("line one\nline two").expect_err("refused");
        assert_eq!(
            err.to_string(),
            "the signature contains a control character (U+000A); use plain text on one line"
        );
        assert!(check_note("bell \u{7}").is_err());
        assert_eq!(check_note("你好，我是 alice 🌸"), Ok(()));
    }
}
