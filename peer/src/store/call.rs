//! A peer's call offers, a fourth `impl` block of [`PeerStore`]: the other side's public
//! call key from each offer this peer opened, so that a process started to answer a call
//! another process of the same profile heard ring (an Olm message opens only once) can
//! still take it. The keys are public; offers older than a day are forgotten.

use redb::ReadableTable;
use uchat_wire::{CallId, UserName};

use crate::store::error::StoreError;
use crate::store::local::PeerStore;
use crate::store::records::{CallOfferRecord, PinnedIdentity, SessionRecord};
use crate::store::tables::{CALL_OFFERS, decode, encode, read, write};

/// How long an opened offer is kept: far beyond any ring timeout.
const OFFER_KEPT_MS: u64 = 24 * 60 * 60 * 1000;

impl PeerStore {
    /// Remembers the opened offer of `call`, and forgets offers older than a day.
    pub fn put_call_offer(&self, call: CallId, offer: &CallOfferRecord) -> Result<(), StoreError> {
        write(self.db(), |tx| {
            let mut table = tx.open_table(CALL_OFFERS)?;
            let mut stale = Vec::new();
            for row in table.iter()? {
                let (key, value) = row?;
                let old: CallOfferRecord = decode(value.value(), "call offer")?;
                if old.received_ms.saturating_add(OFFER_KEPT_MS) < offer.received_ms {
                    stale.push(key.value().to_vec());
                }
            }
            for key in stale {
                table.remove(key.as_slice())?;
            }
            table.insert(call.0.as_slice(), encode(offer, "call offer")?.as_slice())?;
            Ok(())
        })
    }

    /// Saves the Olm sessions with `contact` (and pins them, on first contact) after a
    /// message that goes to no history, such as a call's offer or answer.
    pub fn commit_olm_state(
        &self,
        contact: &UserName,
        sessions: &[SessionRecord],
        pin: Option<&PinnedIdentity>,
    ) -> Result<(), StoreError> {
        write(self.db(), |tx| {
            crate::store::local::put_sessions(tx, contact, sessions)?;
            crate::store::local::put_pin(tx, contact, pin)
        })
    }

    /// The opened offer of `call` from `from`, if this peer has one.
    pub fn call_offer(
        &self,
        call: CallId,
        from: &UserName,
    ) -> Result<Option<CallOfferRecord>, StoreError> {
        read(self.db(), |tx| {
            let table = tx.open_table(CALL_OFFERS)?;
            let Some(value) = table.get(call.0.as_slice())? else {
                return Ok(None);
            };
            let offer: CallOfferRecord = decode(value.value(), "call offer")?;
            Ok((&offer.from == from).then_some(offer))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_is_found_for_its_caller_only_and_old_ones_are_forgotten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = PeerStore::open(&dir.path().join("peer.redb")).expect("opens");
        let alice = UserName::parse("alice").expect("valid");
        let mallory = UserName::parse("mallory").expect("valid");
        let offer = |received_ms| CallOfferRecord {
            from: alice.clone(),
            key: vec![9; 32],
            received_ms,
        };
        store
            .put_call_offer(CallId([1; 16]), &offer(1))
            .expect("puts");
        assert_eq!(
            store.call_offer(CallId([1; 16]), &alice).expect("reads"),
            Some(offer(1))
        );
        assert_eq!(
            store.call_offer(CallId([1; 16]), &mallory).expect("reads"),
            None
        );
        store
            .put_call_offer(CallId([2; 16]), &offer(OFFER_KEPT_MS + 2))
            .expect("puts");
        assert_eq!(
            store.call_offer(CallId([1; 16]), &alice).expect("reads"),
            None
        );
    }
}
