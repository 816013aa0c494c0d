//! Trust on first use, for relays and for contacts.
//!
//! Relays: `known_relays` in the profile directory holds one `HOST:PORT sha256:<hex>` line
//! per relay, like SSH's known_hosts. A relay seen for the first time is recorded; a relay
//! presenting another certificate later is refused.
//!
//! Contacts: the first identity key seen for a username is pinned; a different one later is
//! [`IdentityCheck::Changed`] and is shown as a warning, never silently accepted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use uchat_wire::{CertFingerprint, IdentityKeys};

/// File name of the relay pin list in the profile directory.
pub const KNOWN_RELAYS_FILE: &str = "known_relays";

/// Why the pin list could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// File access failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The profile's `known_relays` file (also when writing its temporary copy failed).
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A line is not `HOST:PORT sha256:<hex>`.
    #[error("{path}:{line}: expected 'HOST:PORT sha256:<hex>'")]
    Syntax {
        /// The profile's `known_relays` file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

/// The relay pins of one profile.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KnownRelays {
    pins: BTreeMap<String, CertFingerprint>,
}

impl KnownRelays {
    /// Reads `known_relays` from `home` (empty if absent).
    pub fn load(home: &Path) -> Result<Self, TrustError> {
        let path = home.join(KNOWN_RELAYS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(TrustError::Io { path, source }),
        };
        let mut pins = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(relay), Some(fp), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(TrustError::Syntax { path, line: i + 1 });
            };
            let fp = fp.parse().map_err(|_| TrustError::Syntax {
                path: path.clone(),
                line: i + 1,
            })?;
            pins.insert(relay.to_string(), fp);
        }
        Ok(Self { pins })
    }

    /// The pinned fingerprint of `relay`, if any.
    pub fn pinned(&self, relay: &str) -> Option<CertFingerprint> {
        self.pins.get(relay).copied()
    }

    /// Pins `relay` to `fingerprint` and writes the file.
    pub fn pin(
        &mut self,
        home: &Path,
        relay: &str,
        fingerprint: CertFingerprint,
    ) -> Result<(), TrustError> {
        self.pins.insert(relay.to_string(), fingerprint);
        let path = home.join(KNOWN_RELAYS_FILE);
        let mut text =
            String::from("# Relays this profile trusts: HOST:PORT sha256:<fingerprint>\n");
        for (relay, fp) in &self.pins {
            text.push_str(&format!("{relay} {fp}\n"));
        }
        // Write a new file and rename it over the old one, so a crash never leaves a
        // truncated list (which would silently turn pinning back into trust on first use).
        let tmp = home.join(format!("{KNOWN_RELAYS_FILE}.tmp"));
        let io = |source| TrustError::Io {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::File::create(&tmp).map_err(io)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

/// What a seen identity key means against the pinned one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityCheck {
    /// Nothing was pinned: first contact; pin it.
    FirstSeen,
    /// Matches the pin.
    Known,
    /// Differs from the pin: warn, do not accept silently.
    Changed,
}

/// Compares a seen identity with the pinned one.
pub fn check_identity(pinned: Option<&IdentityKeys>, seen: &IdentityKeys) -> IdentityCheck {
    match pinned {
        None => IdentityCheck::FirstSeen,
        Some(p) if p == seen => IdentityCheck::Known,
        Some(_) => IdentityCheck::Changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_pins_survive_a_reload_and_bad_lines_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut known = KnownRelays::load(dir.path()).expect("empty");
        assert_eq!(known.pinned("127.0.0.1:4433"), None);
        let fp = CertFingerprint([5; 32]);
        known.pin(dir.path(), "127.0.0.1:4433", fp).expect("writes");
        let reloaded = KnownRelays::load(dir.path()).expect("reads");
        assert_eq!(reloaded.pinned("127.0.0.1:4433"), Some(fp));
        std::fs::write(dir.path().join(KNOWN_RELAYS_FILE), "relay-without-fp\n").expect("write");
        assert!(matches!(
            KnownRelays::load(dir.path()),
            Err(TrustError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn identities_are_first_seen_then_known_or_changed() {
        let a = IdentityKeys {
            curve25519: vec![1; 32],
            ed25519: vec![2; 32],
        };
        let b = IdentityKeys {
            curve25519: vec![3; 32],
            ed25519: vec![2; 32],
        };
        assert_eq!(check_identity(None, &a), IdentityCheck::FirstSeen);
        assert_eq!(check_identity(Some(&a), &a), IdentityCheck::Known);
        assert_eq!(check_identity(Some(&a), &b), IdentityCheck::Changed);
    }
}
