//! How many bytes of request frames the relay holds in memory at once: at most
//! [`CONNECTION_FRAME_BYTES`] for one connection and [`RELAY_FRAME_BYTES`] for all of them.
//!
//! A request stream reserves its frame's announced length once the 4-byte header is in,
//! before it reads the body, and keeps the reservation while the request is handled. A
//! connection over its budget simply stops being read, and QUIC flow control holds the
//! sender back; nothing is refused, so a client that sends a burst of large messages is
//! slowed, not failed.

use std::sync::Arc;

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// Request bytes one connection may have in memory: four of the largest requests.
pub(super) const CONNECTION_FRAME_BYTES: usize = 4 << 20;

/// Request bytes the whole relay may have in memory.
pub(super) const RELAY_FRAME_BYTES: usize = 256 << 20;

/// The relay-wide budget, shared by every connection.
pub(super) struct FrameBudget {
    relay: Arc<Semaphore>,
}

/// The budget one request stream reserves from: its connection's and the relay's.
pub(super) struct StreamBudget {
    relay: Arc<Semaphore>,
    connection: Arc<Semaphore>,
}

/// Bytes reserved for one frame; given back when dropped.
pub(super) struct Reserved {
    _connection: OwnedSemaphorePermit,
    _relay: OwnedSemaphorePermit,
}

impl FrameBudget {
    /// A relay-wide budget of [`RELAY_FRAME_BYTES`].
    pub(super) fn new() -> Self {
        Self {
            relay: Arc::new(Semaphore::new(RELAY_FRAME_BYTES)),
        }
    }

    /// The budget of a stream on the connection whose own budget is `connection`.
    pub(super) fn for_connection(&self, connection: &Arc<Semaphore>) -> StreamBudget {
        StreamBudget {
            relay: self.relay.clone(),
            connection: connection.clone(),
        }
    }
}

impl StreamBudget {
    /// Waits until `bytes` fit in the connection's budget, then in the relay's (in that
    /// order, so one connection waits behind its own requests before it holds any of the
    /// relay's). A frame larger than a budget is limited elsewhere (the frame limit).
    pub(super) async fn reserve(&self, bytes: usize) -> Result<Reserved, AcquireError> {
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        let connection = self.connection.clone().acquire_many_owned(bytes).await?;
        let relay = self.relay.clone().acquire_many_owned(bytes).await?;
        Ok(Reserved {
            _connection: connection,
            _relay: relay,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_connection_waits_for_its_own_budget_and_others_are_not_held_up() {
        let relay = FrameBudget::new();
        let one = Arc::new(Semaphore::new(CONNECTION_FRAME_BYTES));
        let other = Arc::new(Semaphore::new(CONNECTION_FRAME_BYTES));
        let stream = relay.for_connection(&one);
        let held = stream.reserve(CONNECTION_FRAME_BYTES).await.expect("fits");
        let waiting = tokio::time::timeout(Duration::from_millis(50), stream.reserve(1)).await;
        assert!(waiting.is_err(), "over its own budget, a connection waits");
        let elsewhere = relay.for_connection(&other).reserve(1 << 20).await;
        assert!(elsewhere.is_ok(), "another connection goes on");
        drop(held);
        tokio::time::timeout(Duration::from_secs(1), stream.reserve(1))
            .await
            .expect("room again")
            .expect("open");
    }
}
