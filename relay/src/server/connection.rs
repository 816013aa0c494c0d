//! One task per peer connection: accepts request streams, remembers who is logged in, and
//! owns the event pusher once someone is.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::{ErrorCode, Request, Response, UserName};

use super::stream::{ReadFrameError, read_frame};
use super::{Shared, blocking, now_ms, push, requests};

/// QUIC application error code for a request stream refused because of a bad frame.
pub(super) const STREAM_ERROR_BAD_FRAME: u32 = 1;

/// What one connection knows about itself.
pub(super) struct Connection {
    pub(super) conn: quinn::Connection,
    pub(super) remote: SocketAddr,
    pub(super) state: Mutex<ConnState>,
}

/// Login state of a connection.
#[derive(Default)]
pub(super) struct ConnState {
    pub(super) said_hello: bool,
    pub(super) user: Option<UserName>,
    /// Wakes this connection's pusher when the user's queue grows.
    pub(super) wake: Option<Arc<Notify>>,
    /// SHA-256 of the session token this connection logged in with (revoked by Logout).
    pub(super) token_hash: Option<[u8; 32]>,
}

impl Connection {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves one incoming connection until it closes.
pub(super) async fn serve(incoming: quinn::Incoming, shared: Arc<Shared>) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "handshake failed");
            return;
        }
    };
    tracing::debug!(%remote, "connection open");
    shared.metrics.connections.inc();
    let connection = Arc::new(Connection {
        conn: conn.clone(),
        remote,
        state: Mutex::new(ConnState::default()),
    });
    let mut tasks = JoinSet::new();
    let mut pusher_started = false;
    loop {
        tokio::select! {
            // Priority: new request streams first; reaping finished tasks last.
            biased;
            stream = conn.accept_bi() => {
                let Ok((send, recv)) = stream else { break };
                tasks.spawn(serve_stream(connection.clone(), shared.clone(), send, recv));
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
        if !pusher_started {
            let logged_in = {
                let state = connection.state();
                state.user.clone().zip(state.wake.clone())
            };
            if let Some((user, wake)) = logged_in {
                pusher_started = true;
                tasks.spawn(push::run(connection.clone(), shared.clone(), user, wake));
            }
        }
    }
    tasks.shutdown().await;
    shared.metrics.connections.dec();
    let user = connection.state().user.clone();
    if let Some(user) = user {
        went_offline(&shared, user).await;
    }
    tracing::debug!(%remote, reason = %conn.close_reason().map(|r| r.to_string()).unwrap_or_default(), "connection closed");
}

/// Called once per logged-in connection when it ends.
async fn went_offline(shared: &Arc<Shared>, user: UserName) {
    if shared.online.leave(&user) {
        shared.metrics.users_online.dec();
        let store = shared.store.clone();
        let now = now_ms();
        let name = user.clone();
        if let Err(e) = blocking(move || store.set_last_seen(&name, now)).await {
            tracing::warn!(%user, error = %e, "could not record last seen");
        }
        tracing::info!(%user, "offline");
    }
}

/// Reads one request, answers it, and closes the stream.
async fn serve_stream(
    connection: Arc<Connection>,
    shared: Arc<Shared>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let response = match read_frame(&mut recv, MAX_CONTROL_FRAME_BYTES).await {
        Ok(body) => match frame::decode_body::<Request>(&body) {
            Ok(request) => requests::handle(&connection, &shared, request).await,
            Err(e) => {
                let _ = recv.stop(STREAM_ERROR_BAD_FRAME.into());
                tracing::info!(remote = %connection.remote, error = %e, "malformed request");
                Response::error(e.code(), format!("request rejected: {e}"))
            }
        },
        Err(ReadFrameError::Frame(e)) => {
            let _ = recv.stop(STREAM_ERROR_BAD_FRAME.into());
            tracing::info!(remote = %connection.remote, error = %e, "bad request frame");
            Response::error(e.code(), format!("request rejected: {e}"))
        }
        Err(ReadFrameError::Empty) => Response::error(
            ErrorCode::Malformed,
            "request rejected: the stream ended before a complete request frame",
        ),
        Err(ReadFrameError::Read(e)) => {
            tracing::debug!(remote = %connection.remote, error = %e, "request stream failed");
            return;
        }
    };
    let bytes = match frame::encode(&response, MAX_CONTROL_FRAME_BYTES) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "response does not fit in a frame");
            let _ = send.reset(STREAM_ERROR_BAD_FRAME.into());
            return;
        }
    };
    if send.write_all(&bytes).await.is_ok() {
        let _ = send.finish();
        // Wait until the peer has the response (or gave up) so the stream's data is not
        // discarded when this task ends.
        let _ = send.stopped().await;
    }
}
