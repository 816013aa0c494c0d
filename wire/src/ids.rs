//! Identifiers and validated names: [`UserName`], [`MessageId`], [`GroupId`], [`FileId`],
//! [`CallId`], [`Seq`], [`CertFingerprint`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a name or identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Usernames are 1 to 32 characters long.
    #[error("username must be 1 to {max} characters, got {len}")]
    Length {
        /// Characters given.
        len: usize,
        /// The most characters allowed ([`UserName::MAX_LEN`]).
        max: usize,
    },
    /// A character outside the allowed set.
    #[error(
        "username may contain only letters a-z, digits, '_', '-' and '.', and must start with a letter or digit (found {found:?})"
    )]
    Character {
        /// The offending character.
        found: char,
    },
    /// A hex identifier of the wrong form.
    #[error("expected {expected}, got {got:?}")]
    Format {
        /// What was expected.
        expected: &'static str,
        /// What was given (shortened).
        got: String,
    },
}

/// A username, canonicalized to lowercase ASCII.
///
/// Accepts `a-z`, `0-9`, `_`, `-`, `.`; upper-case input is folded to lower case so that
/// `Alice` and `alice` are one account. Deserializing validates too, so a relay never
/// stores a name it would refuse at registration.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    /// Longest accepted username, in characters.
    pub const MAX_LEN: usize = 32;

    /// Validates and canonicalizes a username.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let len = raw.chars().count();
        if len == 0 || len > Self::MAX_LEN {
            return Err(NameError::Length {
                len,
                max: Self::MAX_LEN,
            });
        }
        let lower = raw.to_ascii_lowercase();
        for (i, c) in lower.chars().enumerate() {
            let ok = c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || (i > 0 && matches!(c, '_' | '-' | '.'));
            if !ok {
                return Err(NameError::Character { found: c });
            }
        }
        Ok(Self(lower))
    }

    /// The canonical name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

impl FromStr for UserName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for UserName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A 16-byte random identifier shown as 32 hex digits: the struct (serialized as 16 bytes),
/// `from_hex`, `Display` (the hex) and `Debug` (`Name(hex)`). `$expected` names what the
/// parse error says was expected.
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $expected:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(#[serde(with = "crate::bytes")] pub [u8; 16]);

        impl $name {
            /// Parses 32 hex digits.
            pub fn from_hex(s: &str) -> Result<Self, NameError> {
                let mut out = [0u8; 16];
                hex::decode_to_slice(s, &mut out).map_err(|_| NameError::Format {
                    expected: $expected,
                    got: s.chars().take(40).collect(),
                })?;
                Ok(Self(out))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
}

hex_id!(
    /// A message's unique id: 16 random bytes chosen by the sender, shown as 32 hex digits.
    MessageId,
    "32 hex digits"
);

hex_id!(
    /// A group's unique id: 16 random bytes chosen by the relay when the group is made,
    /// shown as 32 hex digits.
    GroupId,
    "a group id of 32 hex digits"
);

hex_id!(
    /// A file's unique id: 16 random bytes chosen by the uploader, shown as 32 hex digits.
    /// It is also bound into every chunk's MAC, so chunks cannot move between files.
    FileId,
    "a file id of 32 hex digits"
);

hex_id!(
    /// A call's unique id: 16 random bytes chosen by the caller, shown as 32 hex digits.
    /// Both peers bind it into the call's keys.
    CallId,
    "a call id of 32 hex digits"
);

hex_id!(
    /// A moment's (a post's) unique id: 16 random bytes chosen by its author, shown as 32
    /// hex digits. Both the post's ciphertext and its comments' bind it.
    PostId,
    "a post id of 32 hex digits"
);

hex_id!(
    /// A comment's unique id: 16 random bytes chosen by its author, shown as 32 hex digits.
    CommentId,
    "a comment id of 32 hex digits"
);

/// Position of an event in one user's durable queue; strictly increasing, starting at 1.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// SHA-256 fingerprint of a relay's TLS certificate (DER), written `sha256:<64 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertFingerprint(pub [u8; 32]);

impl CertFingerprint {
    const PREFIX: &'static str = "sha256:";
}

impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, hex::encode(self.0))
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for CertFingerprint {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NameError::Format {
            expected: "a fingerprint of the form sha256:<64 hex digits>",
            got: s.chars().take(80).collect(),
        };
        let hex_part = s.trim().strip_prefix(Self::PREFIX).ok_or_else(bad)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part.to_ascii_lowercase(), &mut out).map_err(|_| bad())?;
        Ok(Self(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_folded_to_lowercase_and_validated() {
        assert_eq!(UserName::parse("Alice").expect("ok").as_str(), "alice");
        assert!(UserName::parse("bob_2.x-y").is_ok());
        assert!(matches!(
            UserName::parse(""),
            Err(NameError::Length { len: 0, .. })
        ));
        assert!(matches!(
            UserName::parse(&"a".repeat(33)),
            Err(NameError::Length { len: 33, .. })
        ));
        assert!(matches!(
            UserName::parse("_x"),
            Err(NameError::Character { found: '_' })
        ));
        assert!(matches!(
            UserName::parse("张三"),
            Err(NameError::Character { .. })
        ));
        assert!(UserName::parse("a/b").is_err());
    }

    #[test]
    fn deserializing_an_invalid_username_fails() {
        let bytes = rmp_serde::to_vec("../etc").expect("encodes");
        assert!(rmp_serde::from_slice::<UserName>(&bytes).is_err());
    }

    #[test]
    fn fingerprints_round_trip_through_text() {
        let fp = CertFingerprint([0xab; 32]);
        let text = fp.to_string();
        assert!(text.starts_with("sha256:abab"));
        assert_eq!(text.parse::<CertFingerprint>().expect("parses"), fp);
        assert!("sha1:abcd".parse::<CertFingerprint>().is_err());
        assert!("sha256:zz".parse::<CertFingerprint>().is_err());
    }

    #[test]
    fn message_ids_round_trip_through_hex() {
        let id = MessageId([7; 16]);
        assert_eq!(MessageId::from_hex(&id.to_string()).expect("parses"), id);
        assert!(MessageId::from_hex("123").is_err());
        let group = GroupId([0xa5; 16]);
        assert_eq!(
            GroupId::from_hex(&group.to_string()).expect("parses"),
            group
        );
        assert!(GroupId::from_hex("#family").is_err());
        let call = CallId([7; 16]);
        assert_eq!(CallId::from_hex(&call.to_string()).ok(), Some(call));
        assert_eq!(format!("{call:?}"), format!("CallId({call})"));
        let err = CallId::from_hex("xyz").expect_err("not hex");
        assert!(
            err.to_string().contains("a call id of 32 hex digits"),
            "{err}"
        );
    }
}
