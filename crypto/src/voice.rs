//! The voice datagram cipher: per-call keys from a fresh X25519 agreement, AES-256-CTR with
//! an IV derived from the call and the sequence number (never sent), an HMAC-SHA256 tag
//! truncated to 80 bits as SRTP does, and a replay window.
//!
//! Each side makes an ephemeral X25519 key for the call ([`CallKeyPair`]) and sends its
//! public half inside the Olm-encrypted offer or answer, so only the two peers learn it and
//! each knows whose it is. Both then derive, with HKDF-SHA256 over the shared secret salted
//! with the call id, one AES key, one HMAC key and one IV salt per direction. A sealed body
//! is `seq (u32, big-endian) || ciphertext || tag (10 bytes)`; the tag covers the call id,
//! the sequence number and the ciphertext, and is checked in constant time before
//! anything is decrypted.

use aes::Aes256;
use aes::cipher::{KeyIvInit, StreamCipher};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uchat_wire::CallId;
use x25519_dalek::{EphemeralSecret, PublicKey};
use zeroize::{Zeroize, ZeroizeOnDrop};

type Aes256Ctr = ctr::Ctr32BE<Aes256>;

/// Bytes of the truncated tag (80 bits).
pub const TAG_BYTES: usize = 10;
/// Bytes of the sequence number in front of the ciphertext.
pub const SEQ_BYTES: usize = 4;
/// What sealing adds to a plaintext.
pub const OVERHEAD_BYTES: usize = SEQ_BYTES + TAG_BYTES;
/// How far behind the newest sequence number a datagram may arrive and still be taken.
pub const REPLAY_WINDOW: u32 = 128;

const HKDF_INFO: &[u8] = b"uchat voice v1";

/// Why a voice datagram was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoiceCryptoError {
    /// Shorter than a sequence number and a tag.
    #[error("voice datagram of {len} bytes is shorter than the {OVERHEAD_BYTES}-byte minimum")]
    TooShort {
        /// Its length.
        len: usize,
    },
    /// The tag does not match: not sealed with this call's key, or altered.
    #[error("voice datagram {seq} failed its authentication check")]
    BadTag {
        /// Its claimed sequence number.
        seq: u32,
    },
    /// A sequence number seen already, or too old to tell.
    #[error("voice datagram {seq} is a replay or too old")]
    Replayed {
        /// Its sequence number.
        seq: u32,
    },
    /// The other side's public key is not a usable X25519 key.
    #[error("the other side's call key is not a valid X25519 public key")]
    BadPublicKey,
}

/// Which end of the call this side is; each direction has its own keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallRole {
    /// Placed the call.
    Caller,
    /// Answered it.
    Callee,
}

/// This side's ephemeral X25519 key for one call. The secret is used once, in
/// [`CallKeyPair::agree`], and is gone afterwards.
pub struct CallKeyPair {
    secret: EphemeralSecret,
    public: PublicKey,
}

impl std::fmt::Debug for CallKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallKeyPair")
            .field("public", &hex::encode(self.public.as_bytes()))
            .finish_non_exhaustive()
    }
}

impl CallKeyPair {
    /// A fresh key pair from the operating system's randomness.
    pub fn generate() -> Self {
        let secret = EphemeralSecret::random();
        let public = PublicKey::from(&secret);
        Self { secret, public }
    }

    /// The public half, for the offer or answer.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.public.to_bytes()
    }

    /// Agrees with the other side's public key and derives the call's keys for `role`.
    /// A low-order public key (which would make the secret predictable) is refused.
    pub fn agree(
        self,
        theirs: &[u8],
        call: CallId,
        role: CallRole,
    ) -> Result<CallKeys, VoiceCryptoError> {
        let theirs: [u8; 32] = theirs
            .try_into()
            .map_err(|_| VoiceCryptoError::BadPublicKey)?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(theirs));
        if !shared.was_contributory() {
            return Err(VoiceCryptoError::BadPublicKey);
        }
        Ok(CallKeys::derive(shared.as_bytes(), call, role))
    }
}

#[derive(Zeroize, ZeroizeOnDrop)]
struct DirectionKeys {
    aes: [u8; 32],
    mac: [u8; 32],
    iv_salt: [u8; 12],
}

impl DirectionKeys {
    const BYTES: usize = 32 + 32 + 12;

    fn from_okm(okm: &[u8]) -> Self {
        let mut keys = DirectionKeys {
            aes: [0; 32],
            mac: [0; 32],
            iv_salt: [0; 12],
        };
        keys.aes.copy_from_slice(&okm[..32]);
        keys.mac.copy_from_slice(&okm[32..64]);
        keys.iv_salt.copy_from_slice(&okm[64..76]);
        keys
    }

    /// The CTR starting block: the direction's 12-byte salt with the sequence number
    /// XORed into its last four bytes (distinct for every seq), then a 32-bit block
    /// counter starting at zero.
    fn iv(&self, seq: u32) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..12].copy_from_slice(&self.iv_salt);
        for (byte, s) in iv[8..12].iter_mut().zip(seq.to_be_bytes()) {
            *byte ^= s;
        }
        iv
    }

    fn tag(&self, call: &CallId, seq: u32, ciphertext: &[u8]) -> [u8; TAG_BYTES] {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.mac).expect("HMAC takes any key");
        mac.update(&call.0);
        mac.update(&seq.to_be_bytes());
        mac.update(ciphertext);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&full[..TAG_BYTES]);
        tag
    }
}

/// One call's voice keys, as seen from one side: what it seals with and what it opens with.
pub struct CallKeys {
    call: CallId,
    send: DirectionKeys,
    receive: DirectionKeys,
}

impl std::fmt::Debug for CallKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallKeys")
            .field("call", &self.call)
            .finish_non_exhaustive()
    }
}

impl CallKeys {
    /// Derives both directions' keys from the agreed secret.
    fn derive(shared: &[u8; 32], call: CallId, role: CallRole) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(&call.0), shared);
        let mut okm = [0u8; 2 * DirectionKeys::BYTES];
        hk.expand(HKDF_INFO, &mut okm)
            .expect("152 bytes is within HKDF-SHA256's output limit");
        let caller_to_callee = DirectionKeys::from_okm(&okm[..DirectionKeys::BYTES]);
        let callee_to_caller = DirectionKeys::from_okm(&okm[DirectionKeys::BYTES..]);
        okm.zeroize();
        let (send, receive) = match role {
            CallRole::Caller => (caller_to_callee, callee_to_caller),
            CallRole::Callee => (callee_to_caller, caller_to_callee),
        };
        Self {
            call,
            send,
            receive,
        }
    }

    /// Seals `plaintext` as datagram `seq` (each seq at most once per call).
    pub fn seal(&self, seq: u32, plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD_BYTES);
        out.extend_from_slice(&seq.to_be_bytes());
        let start = out.len();
        out.extend_from_slice(plaintext);
        Aes256Ctr::new((&self.send.aes).into(), &self.send.iv(seq).into())
            .apply_keystream(&mut out[start..]);
        let tag = self.send.tag(&self.call, seq, &out[start..]);
        out.extend_from_slice(&tag);
        out
    }

    /// Checks and opens a sealed body; returns its sequence number and plaintext. The
    /// replay check is the caller's ([`ReplayWindow`]), after this succeeds.
    pub fn open(&self, sealed: &[u8]) -> Result<(u32, Vec<u8>), VoiceCryptoError> {
        if sealed.len() < OVERHEAD_BYTES {
            return Err(VoiceCryptoError::TooShort { len: sealed.len() });
        }
        let (head, rest) = sealed.split_at(SEQ_BYTES);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_BYTES);
        let seq = u32::from_be_bytes(
            head.try_into()
                .map_err(|_| VoiceCryptoError::TooShort { len: sealed.len() })?,
        );
        let expected = self.receive.tag(&self.call, seq, ciphertext);
        if !bool::from(expected.ct_eq(tag)) {
            return Err(VoiceCryptoError::BadTag { seq });
        }
        let mut plaintext = ciphertext.to_vec();
        Aes256Ctr::new((&self.receive.aes).into(), &self.receive.iv(seq).into())
            .apply_keystream(&mut plaintext);
        Ok((seq, plaintext))
    }
}

/// Which sequence numbers have been taken, within [`REPLAY_WINDOW`] of the newest (as
/// IPsec and SRTP keep).
#[derive(Debug, Default, Clone)]
pub struct ReplayWindow {
    newest: Option<u32>,
    /// Bit `i` set: `newest - i` was taken.
    seen: u128,
}

impl ReplayWindow {
    /// Takes `seq` if it is new and not too old; otherwise refuses it.
    pub fn accept(&mut self, seq: u32) -> Result<(), VoiceCryptoError> {
        let Some(newest) = self.newest else {
            self.newest = Some(seq);
            self.seen = 1;
            return Ok(());
        };
        if seq > newest {
            let shift = seq - newest;
            self.seen = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.newest = Some(seq);
            return Ok(());
        }
        let behind = newest - seq;
        if behind >= REPLAY_WINDOW {
            return Err(VoiceCryptoError::Replayed { seq });
        }
        let bit = 1u128 << behind;
        if self.seen & bit != 0 {
            return Err(VoiceCryptoError::Replayed { seq });
        }
        self.seen |= bit;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: CallId = CallId([3; 16]);

    fn pair() -> (CallKeys, CallKeys) {
        let alice = CallKeyPair::generate();
        let bob = CallKeyPair::generate();
        let (alice_public, bob_public) = (alice.public_bytes(), bob.public_bytes());
        let caller = alice
            .agree(&bob_public, CALL, CallRole::Caller)
            .expect("agrees");
        let callee = bob
            .agree(&alice_public, CALL, CallRole::Callee)
            .expect("agrees");
        (caller, callee)
    }

    #[test]
    fn each_side_opens_what_the_other_sealed_and_not_its_own() {
        let (caller, callee) = pair();
        let sealed = caller.seal(7, b"opus frame");
        assert_eq!(sealed.len(), 10 + OVERHEAD_BYTES);
        assert_eq!(callee.open(&sealed), Ok((7, b"opus frame".to_vec())));
        assert_eq!(
            caller.open(&sealed),
            Err(VoiceCryptoError::BadTag { seq: 7 }),
            "directions have their own keys"
        );
        let back = callee.seal(7, b"reply");
        assert_eq!(caller.open(&back), Ok((7, b"reply".to_vec())));
        assert_ne!(
            &sealed[SEQ_BYTES..SEQ_BYTES + 5],
            &back[SEQ_BYTES..SEQ_BYTES + 5],
            "no shared keystream across directions"
        );
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let (caller, callee) = pair();
        let sealed = caller.seal(1, &[0x55; 40]);
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(callee.open(&bad).is_err(), "bit {i}");
        }
        assert_eq!(
            callee.open(&sealed[..5]),
            Err(VoiceCryptoError::TooShort { len: 5 })
        );
    }

    #[test]
    fn another_call_or_a_third_party_cannot_open_it() {
        let (caller, _) = pair();
        let (_, stranger) = pair();
        let sealed = caller.seal(1, b"secret voice");
        assert!(stranger.open(&sealed).is_err());
    }

    #[test]
    fn the_ciphertext_differs_per_sequence_number() {
        let (caller, _) = pair();
        let a = caller.seal(1, &[0; 32]);
        let b = caller.seal(2, &[0; 32]);
        assert_ne!(a[SEQ_BYTES..36], b[SEQ_BYTES..36]);
        assert_ne!(&a[SEQ_BYTES..36], &[0u8; 32][..], "encrypted");
    }

    #[test]
    fn a_low_order_public_key_is_refused() {
        let alice = CallKeyPair::generate();
        assert_eq!(
            alice.agree(&[0u8; 32], CALL, CallRole::Caller).err(),
            Some(VoiceCryptoError::BadPublicKey)
        );
        let alice = CallKeyPair::generate();
        assert_eq!(
            alice.agree(&[1u8; 5], CALL, CallRole::Caller).err(),
            Some(VoiceCryptoError::BadPublicKey)
        );
    }

    #[test]
    fn the_replay_window_takes_each_number_once_and_refuses_the_too_old() {
        let mut window = ReplayWindow::default();
        assert!(window.accept(10).is_ok());
        assert!(window.accept(10).is_err());
        assert!(window.accept(12).is_ok());
        assert!(window.accept(11).is_ok(), "late but new");
        assert!(window.accept(11).is_err());
        assert!(window.accept(500).is_ok());
        assert!(window.accept(500 - REPLAY_WINDOW + 1).is_ok());
        assert!(
            window.accept(500 - REPLAY_WINDOW).is_err(),
            "too old to tell"
        );
        assert!(window.accept(12).is_err());
        assert!(window.accept(1_000).is_ok(), "a jump clears the window");
        assert!(window.accept(999).is_ok());
    }
}
