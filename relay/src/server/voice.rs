//! The I/O around the book of calls: carrying out what it decides (ephemeral pushes,
//! durable missed calls), ending calls whose ringing timed out, and forwarding voice
//! datagrams between the two legs of a call, which the relay cannot read.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use uchat_wire::msg::call::{VOICE_HEADER_BYTES, voice_datagram, voice_leg};
use uchat_wire::{Push, PushEvent, UserName};

use super::calls::CallAction;
use super::connection::Connection;
use super::{RelayState, blocking, now_ms};

/// How often ringing calls are checked against their deadline.
const RING_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// Pushes `event` (ephemeral) to every connection of `user`, if online.
pub(super) fn notify(shared: &RelayState, user: &UserName, event: PushEvent) {
    let push = Push {
        seq: None,
        relay_ts_ms: now_ms(),
        event,
    };
    if let Some(frame) = super::online::ephemeral_frame(&push)
        && shared.online.push_ephemeral(user, &frame)
    {
        shared.metrics.ephemeral_events_pushed.inc();
    }
}

/// Pushes the events and queues the missed calls the book asked for.
pub(super) async fn carry_out(shared: &Arc<RelayState>, actions: Vec<CallAction>) {
    for action in actions {
        match action {
            CallAction::Notify { user, event } => notify(shared, &user, event),
            CallAction::Missed {
                callee,
                caller,
                call,
                reason,
            } => {
                let store = shared.store.clone();
                let event = PushEvent::MissedCall {
                    call,
                    from: caller,
                    reason,
                };
                let recipient = callee.clone();
                let max = shared.limits.queue();
                match blocking(move || store.enqueue(&recipient, &event, None, now_ms(), max)).await
                {
                    Ok(_) => shared.online.wake(&callee),
                    // A full queue or a failing disk costs the missed-call notice only.
                    Err(e) => {
                        tracing::warn!(user = %callee, error = %e.message, "missed call not queued")
                    }
                }
            }
        }
    }
}

/// Ends ringing calls at their deadline until `stop` turns true.
pub(super) async fn run_ring_timer(shared: Arc<RelayState>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(RING_CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let actions = shared.calls().expire(shared.clock_ms());
        if !actions.is_empty() {
            carry_out(&shared, actions).await;
        }
    }
}

/// Forwards the voice datagrams that arrive on `connection` until it closes: each goes to
/// the other leg of the call its handle names, with that leg's handle in its header.
/// Anything else (no call, a leg of another connection, a call not yet answered) is
/// dropped and counted.
pub(super) async fn forward_datagrams(connection: Arc<Connection>, shared: Arc<RelayState>) {
    while let Ok(datagram) = connection.conn.read_datagram().await {
        let route = voice_leg(&datagram).and_then(|leg| shared.calls().route(connection.id, leg));
        let target = route.and_then(|route| {
            shared
                .online
                .connection_by_id(route.connection)
                .map(|conn| (conn, route.leg))
        });
        let Some((target, leg)) = target else {
            shared.metrics.voice_datagrams_dropped.inc();
            continue;
        };
        let out = voice_datagram(leg, &datagram[VOICE_HEADER_BYTES..]);
        let counter = match target.send_datagram(out.into()) {
            Ok(()) => &shared.metrics.voice_datagrams_forwarded,
            Err(_) => &shared.metrics.voice_datagrams_dropped,
        };
        counter.inc();
    }
}
