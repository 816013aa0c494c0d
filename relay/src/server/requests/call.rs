//! Call signalling: invite, answer, reject and hang up. The book of calls
//! (`server::calls`) decides; this module checks who may call whom, asks the book, and
//! carries out what it says (`server::voice::carry_out`).

use std::sync::Arc;
use uchat_wire::{InviteAnswer, reply};

use uchat_store::Reach;
use uchat_wire::msg::call::MAX_CALL_SIGNAL_BYTES;
use uchat_wire::{CallEndReason, CallId, ErrorCode, ErrorReply, UserName};

use super::fail;
use crate::server::calls::{CallError, Invited};
use crate::server::connection::Connection;
use crate::server::{RelayState, blocking, voice};

fn refused(e: CallError) -> ErrorReply {
    let code = match e {
        CallError::IdInUse(_) => ErrorCode::InvalidInput,
        CallError::InCall => ErrorCode::InCall,
        CallError::NoSuchCall(_) => ErrorCode::NoSuchCall,
    };
    fail(code, e.to_string())
}

fn check_signal(what: &str, bytes: &[u8]) -> Result<(), ErrorReply> {
    if bytes.is_empty() || bytes.len() > MAX_CALL_SIGNAL_BYTES {
        return Err(fail(
            ErrorCode::InvalidInput,
            format!(
                "a call {what} must be 1 to {MAX_CALL_SIGNAL_BYTES} bytes, got {}",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// A leg handle's randomness.
fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    // A handle is routing, not a secret: a failed getrandom falls back to a fixed value
    // that the book turns into an unused one.
    let _ = getrandom::fill(&mut bytes);
    u32::from_be_bytes(bytes)
}

/// `me` rings `to`, a friend who has not blocked them.
pub(super) async fn invite(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    me: UserName,
    call: CallId,
    to: UserName,
    offer: Vec<u8>,
) -> Result<InviteAnswer, ErrorReply> {
    check_signal("offer", &offer)?;
    if to == me {
        return Err(fail(ErrorCode::InvalidInput, "you cannot call yourself"));
    }
    let store = shared.store.clone();
    let (caller, callee) = (me.clone(), to.clone());
    let reach = blocking(move || store.may_call(&caller, &callee)).await?;
    let they_blocked = reach == Reach::Silenced;
    // Someone who blocked the caller looks offline to them, and hears nothing.
    let online = !they_blocked && shared.online.is_online(&to);
    let (invited, mut actions) = shared
        .calls()
        .invite(
            shared.clock_ms(),
            call,
            &me,
            connection.id,
            &to,
            offer,
            online,
            random_u32(),
        )
        .map_err(refused)?;
    if they_blocked {
        actions.clear();
    }
    voice::carry_out(shared, actions).await;
    if matches!(invited, Invited::Ringing { .. }) {
        shared.metrics.calls_placed.inc();
    }
    tracing::debug!(from = %me, %to, ?invited, "call invite");
    Ok(match invited {
        Invited::Ringing { leg } => InviteAnswer::Ringing(reply::CallRinging {
            leg,
            ring_timeout_ms: shared.calls().ring_timeout_ms(),
        }),
        Invited::Ended(reason) => InviteAnswer::Ended(reply::CallEnded { reason }),
    })
}

/// `me` takes `call`.
pub(super) async fn answer(
    connection: &Arc<Connection>,
    shared: &Arc<RelayState>,
    me: UserName,
    call: CallId,
    answer: Vec<u8>,
) -> Result<reply::CallConnected, ErrorReply> {
    check_signal("answer", &answer)?;
    let (leg, actions) = shared
        .calls()
        .answer(call, &me, connection.id, answer, random_u32())
        .map_err(refused)?;
    voice::carry_out(shared, actions).await;
    tracing::debug!(user = %me, "call answered");
    Ok(reply::CallConnected { leg })
}

/// `me` refuses `call`.
pub(super) async fn reject(
    shared: &Arc<RelayState>,
    me: UserName,
    call: CallId,
) -> Result<(), ErrorReply> {
    let actions = shared.calls().reject(call, &me).map_err(refused)?;
    voice::carry_out(shared, actions).await;
    tracing::debug!(user = %me, reason = %CallEndReason::Rejected, "call ended");
    Ok(())
}

/// `me` ends `call`.
pub(super) async fn hang_up(
    shared: &Arc<RelayState>,
    me: UserName,
    call: CallId,
) -> Result<(), ErrorReply> {
    let actions = shared.calls().hang_up(call, &me).map_err(refused)?;
    voice::carry_out(shared, actions).await;
    tracing::debug!(user = %me, "call hung up");
    Ok(())
}
