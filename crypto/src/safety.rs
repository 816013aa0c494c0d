//! Safety numbers: 60 digits two people compare to verify each other's identity keys.
//!
//! Each side's half is 30 digits derived from its username and public identity keys by
//! iterated SHA-512 (5,200 rounds, as Signal's numeric fingerprints do); the two halves are
//! sorted so both people see the same number.

use sha2::{Digest, Sha512};
use uchat_wire::{IdentityKeys, UserName};

const VERSION: &[u8] = &[0, 1];
const ITERATIONS: usize = 5200;

fn half(user: &UserName, keys: &IdentityKeys) -> String {
    let mut identity = Vec::with_capacity(64);
    identity.extend_from_slice(&keys.curve25519);
    identity.extend_from_slice(&keys.ed25519);
    let mut hash = Sha512::new()
        .chain_update(VERSION)
        .chain_update(&identity)
        .chain_update(user.as_str().as_bytes())
        .finalize();
    for _ in 1..ITERATIONS {
        hash = Sha512::new()
            .chain_update(hash)
            .chain_update(&identity)
            .finalize();
    }
    hash[..30]
        .chunks(5)
        .map(|chunk| {
            let n = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", n % 100_000)
        })
        .collect()
}

/// The safety number for two users, as 12 groups of 5 digits separated by spaces.
pub fn safety_number(a: (&UserName, &IdentityKeys), b: (&UserName, &IdentityKeys)) -> String {
    let mut halves = [half(a.0, a.1), half(b.0, b.1)];
    halves.sort();
    let digits = halves.concat();
    digits
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seed: u8) -> IdentityKeys {
        IdentityKeys {
            curve25519: vec![seed; 32],
            ed25519: vec![seed.wrapping_add(1); 32],
        }
    }

    #[test]
    fn both_sides_see_the_same_digits_and_a_changed_key_changes_them() {
        let alice = UserName::parse("alice").expect("valid");
        let bob = UserName::parse("bob").expect("valid");
        let ab = safety_number((&alice, &keys(1)), (&bob, &keys(2)));
        let ba = safety_number((&bob, &keys(2)), (&alice, &keys(1)));
        assert_eq!(ab, ba);
        assert_eq!(ab.split(' ').count(), 12);
        assert!(ab.replace(' ', "").chars().all(|c| c.is_ascii_digit()));
        assert_eq!(ab.replace(' ', "").len(), 60);
        let changed = safety_number((&alice, &keys(1)), (&bob, &keys(3)));
        assert_ne!(ab, changed);
    }
}
