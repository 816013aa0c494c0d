//! One task per peer connection: accepts request streams, remembers who is logged in, and
//! owns the event pusher while someone is.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use uchat_wire::request;

use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;
use uchat_store::BatchWrite;
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::{ErrorCode, PushEvent, Request, Response, UserName};

use super::online::ConnectionId;
use super::stream::{ReadFrameError, read_frame};
use super::{RelayState, files, now_ms, push, requests, voice};

/// QUIC application error code for a request stream refused because of a bad frame.
pub(super) const STREAM_ERROR_BAD_FRAME: u32 = 1;
/// QUIC application error code for an event stream cut off because its login ended.
pub(super) const STREAM_ERROR_LOGGED_OUT: u32 = 2;

/// QUIC application close code: the relay is shutting down.
pub(super) const CLOSE_SHUTDOWN: u32 = 0;
/// QUIC application close code: the relay could not read its storage; reconnect later.
pub(super) const CLOSE_STORAGE_ERROR: u32 = 1;
/// QUIC application close code: another device replaced the account's identity keys, and
/// this connection's session was revoked.
pub(super) const CLOSE_IDENTITY_REPLACED: u32 = 2;
/// QUIC application close code: the relay or the address holds as many connections as it
/// may (see `admission.rs`).
pub(super) const CLOSE_TOO_MANY_CONNECTIONS: u32 = 3;
/// QUIC application close code: the connection did not log in within the login timeout.
pub(super) const CLOSE_LOGIN_TIMEOUT: u32 = 4;
/// QUIC application close code: the peer did not read its event stream for so long that
/// the relay stopped waiting (it reconnects and resumes from its last acknowledgement).
pub(super) const CLOSE_STALLED: u32 = 5;

/// Request streams a connection may have open at once before it logs in: enough for
/// Hello and a login, too few to pin much memory.
const PRELOGIN_BIDI_STREAMS: u32 = 4;
/// What a connection that has not logged in may make the relay buffer in all (its
/// requests are at most [`MAX_PRELOGIN_FRAME_BYTES`] each).
const PRELOGIN_RECEIVE_WINDOW_BYTES: u32 = 256 * 1024;

/// How long one request frame may take to arrive before login, and after. A 1 MiB request
/// over a slow mobile link (~50 kB/s) takes about 20 s.
const PRELOGIN_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Request frame limit until the connection is logged in: 64 KiB.
///
/// The largest request an unauthenticated peer has reason to send is `Register` with 200
/// signed one-time keys (`requests::MAX_KEYS_PER_REQUEST`), about 25 KiB; anyone may open
/// connections, so each of their streams must not make the relay buffer a full 1 MiB
/// control frame. After login, [`MAX_CONTROL_FRAME_BYTES`] applies.
pub(super) const MAX_PRELOGIN_FRAME_BYTES: usize = 64 * 1024;

/// What one connection knows about itself.
pub(super) struct Connection {
    pub(super) conn: quinn::Connection,
    pub(super) id: ConnectionId,
    pub(super) remote: SocketAddr,
    pub(super) state: Mutex<ConnState>,
    /// Bytes of request frames this connection may have in memory at once.
    pub(super) frame_bytes: Arc<tokio::sync::Semaphore>,
}

/// Login state of a connection.
pub(super) struct ConnState {
    pub(super) said_hello: bool,
    /// Who is logged in on this connection, if anyone.
    pub(super) login: Option<Login>,
    /// When the connection must be logged in by, while it is not (from its start, and
    /// again from a logout); `None` while logged in.
    pub(super) login_by: Option<tokio::time::Instant>,
}

/// One login of a connection, from Register, Login or Resume until Logout or the end of
/// the connection. Kept as one value so that ending it clears everything at once.
pub(super) struct Login {
    pub(super) user: UserName,
    /// Wakes this connection's pusher when the user's queue grows.
    pub(super) wake: Arc<Notify>,
    /// The user's ephemeral events, until the connection task hands them to the pusher.
    pub(super) ephemeral: Option<broadcast::Receiver<super::online::EphemeralFrame>>,
    /// SHA-256 of the session token this connection logged in with (revoked by Logout).
    pub(super) token_hash: [u8; 32],
    /// True if the password was checked on this connection (Register or Login), false after
    /// a Resume with a saved token. Only a fresh password login may replace identity keys.
    pub(super) password_login: bool,
    /// Keeps this login's pusher running; `None` until the connection task starts it.
    pub(super) pusher: Option<push::PusherGuard>,
}

impl Connection {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The logged-in user, if any.
    pub(super) fn user(&self) -> Option<UserName> {
        self.state().login.as_ref().map(|login| login.user.clone())
    }

    /// Whether this connection is logged in as `user`.
    pub(super) fn is_logged_in_as(&self, user: &UserName) -> bool {
        self.state()
            .login
            .as_ref()
            .is_some_and(|login| &login.user == user)
    }

    /// Ends the login, if any, and returns it; its pusher stops when it is dropped. Only
    /// one caller can take a given login, so its "went offline" bookkeeping runs once.
    /// The connection must log in again within `login_timeout` or be closed.
    pub(super) fn take_login(&self, login_timeout: std::time::Duration) -> Option<Login> {
        let mut state = self.state();
        let login = state.login.take();
        if login.is_some() {
            state.login_by = Some(tokio::time::Instant::now() + login_timeout);
        }
        login
    }
}

/// The request frame limit for a connection that is (or is not yet) logged in.
pub(super) fn request_frame_limit(logged_in: bool) -> usize {
    if logged_in {
        MAX_CONTROL_FRAME_BYTES
    } else {
        MAX_PRELOGIN_FRAME_BYTES
    }
}

/// Serves one incoming connection until it closes.
pub(super) async fn serve(
    incoming: quinn::Incoming,
    shared: Arc<RelayState>,
    handshake: super::admission::Handshake,
) {
    let remote = incoming.remote_address();
    let handshaken = incoming.await;
    drop(handshake);
    let conn = match handshaken {
        Ok(conn) => conn,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "handshake failed");
            return;
        }
    };
    // Held until this task ends, however it ends.
    let _slot = match shared.admission.admit(remote.ip()) {
        Ok(slot) => slot,
        Err(refusal) => {
            tracing::info!(%remote, %refusal, "connection refused");
            conn.close(
                CLOSE_TOO_MANY_CONNECTIONS.into(),
                refusal.to_string().as_bytes(),
            );
            return;
        }
    };
    // Until login: few streams and a small window (raised in `start_pusher`).
    conn.set_max_concurrent_bi_streams(PRELOGIN_BIDI_STREAMS.into());
    conn.set_receive_window(PRELOGIN_RECEIVE_WINDOW_BYTES.into());
    tracing::debug!(%remote, "connection open");
    shared.metrics.connections.inc();
    let login_timeout = shared.limits.login_timeout;
    let connection = Arc::new(Connection {
        conn: conn.clone(),
        id: ConnectionId(conn.stable_id()),
        remote,
        state: Mutex::new(ConnState {
            said_hello: false,
            login: None,
            login_by: Some(tokio::time::Instant::now() + login_timeout),
        }),
        frame_bytes: Arc::new(tokio::sync::Semaphore::new(
            super::budget::CONNECTION_FRAME_BYTES,
        )),
    });
    let mut tasks = JoinSet::new();
    tasks.spawn(voice::forward_datagrams(connection.clone(), shared.clone()));
    loop {
        let login_by = connection.state().login_by;
        tokio::select! {
            // Priority: new request streams first; then the login deadline; reaping
            // finished tasks last.
            biased;
            stream = conn.accept_bi() => {
                let Ok((send, recv)) = stream else { break };
                tasks.spawn(serve_stream(connection.clone(), shared.clone(), send, recv));
            }
            () = tokio::time::sleep_until(login_by.unwrap_or_else(tokio::time::Instant::now)),
                if login_by.is_some() =>
            {
                // A login that finished as the deadline passed wins.
                if connection.state().login_by.is_some_and(|by| by <= tokio::time::Instant::now()) {
                    tracing::debug!(%remote, "no login in time; closing");
                    let reason = format!("log in within {} s of connecting", login_timeout.as_secs());
                    conn.close(CLOSE_LOGIN_TIMEOUT.into(), reason.as_bytes());
                    break;
                }
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
        start_pusher(&connection, &shared, &mut tasks);
    }
    tasks.shutdown().await;
    shared.metrics.connections.dec();
    let ended = shared.calls().connection_closed(connection.id);
    voice::carry_out(&shared, ended).await;
    if let Some(login) = connection.take_login(login_timeout) {
        went_offline(&shared, connection.id, login).await;
    }
    tracing::debug!(%remote, reason = %conn.close_reason().map(|r| r.to_string()).unwrap_or_default(), "connection closed");
}

/// Starts the pusher of the current login if it has none yet (after a Register, Login or
/// Resume, including a new login after a Logout).
fn start_pusher(connection: &Arc<Connection>, shared: &Arc<RelayState>, tasks: &mut JoinSet<()>) {
    let mut state = connection.state();
    let Some(login) = state.login.as_mut() else {
        return;
    };
    if login.pusher.is_some() {
        return;
    }
    // Set once per login in `bind_user`; taken here with the pusher's start.
    let Some(ephemeral) = login.ephemeral.take() else {
        return;
    };
    // Logged in: the full stream count and window.
    connection
        .conn
        .set_max_concurrent_bi_streams(super::MAX_CONCURRENT_BIDI_STREAMS.into());
    connection
        .conn
        .set_receive_window(super::CONNECTION_RECEIVE_WINDOW_BYTES.into());
    let (guard, stop) = push::stop_pair();
    login.pusher = Some(guard);
    tasks.spawn(push::run(
        connection.clone(),
        shared.clone(),
        login.user.clone(),
        push::Inputs {
            wake: login.wake.clone(),
            ephemeral,
        },
        stop,
    ));
}

/// The bookkeeping for a login that ended (logout or connection end): unregisters the
/// connection and, if it was the user's last, counts the user offline, records when they
/// were last seen and tells their online friends. Takes the [`Login`] by value, so it runs
/// once per login.
pub(super) async fn went_offline(shared: &Arc<RelayState>, id: ConnectionId, login: Login) {
    let Login { user, pusher, .. } = login;
    drop(pusher);
    // Leaving happens before the first await, so a task aborted at that await has still
    // left the registry: the count stays right even then.
    if !shared.online.leave(&user, id) {
        return;
    }
    shared.metrics.users_online.dec();
    let now = now_ms();
    shared.announcer.announce(
        &user,
        PushEvent::Presence {
            user: user.clone(),
            online: false,
            last_seen_ms: Some(now),
        },
    );
    let recorded = shared
        .committer
        .commit(BatchWrite::LastSeen {
            user: user.clone(),
            ms: now,
        })
        .await;
    if let Err(e) = recorded {
        tracing::warn!(%user, error = %e.message, "could not record last seen");
    }
    tracing::info!(%user, "offline");
}

/// Reads one request, answers it, and closes the stream.
async fn serve_stream(
    connection: Arc<Connection>,
    shared: Arc<RelayState>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let logged_in = connection.state().login.is_some();
    let (max_frame_bytes, read_timeout) = if logged_in {
        (request_frame_limit(true), REQUEST_TIMEOUT)
    } else {
        (request_frame_limit(false), PRELOGIN_REQUEST_TIMEOUT)
    };
    let budget = shared.frame_budget.for_connection(&connection.frame_bytes);
    let read = tokio::time::timeout(
        read_timeout,
        read_frame(&mut recv, max_frame_bytes, &budget),
    )
    .await
    .unwrap_or(Err(ReadFrameError::TimedOut(read_timeout)));
    // Held while the request is handled: its body, and what it decodes to, are in memory.
    let (body, _held) = match read {
        Ok((body, held)) => (Ok(body), Some(held)),
        Err(e) => (Err(e), None),
    };
    let error_frame = |response: Response| frame::encode(&response, MAX_CONTROL_FRAME_BYTES);
    let answer = match body {
        Ok(body) => match frame::decode_body::<Request>(&body) {
            // A transfer keeps the stream: raw ciphertext follows its request or answer.
            Ok(Request::UploadFile(_) | Request::DownloadFile(_))
                if !connection.state().said_hello =>
            {
                error_frame(Response::error(
                    ErrorCode::ProtocolViolation,
                    "send Hello before any other request",
                ))
            }
            Ok(Request::UploadFile(request::UploadFile { file, size, access })) => {
                let request = files::UploadRequest { file, size, access };
                return files::upload(connection, shared, request, send, recv).await;
            }
            Ok(Request::DownloadFile(request::DownloadFile { file, offset })) => {
                return files::download(connection, shared, file, offset, send, recv).await;
            }
            Ok(request) => requests::handle(&connection, &shared, request).await,
            Err(e) => {
                let _ = recv.stop(STREAM_ERROR_BAD_FRAME.into());
                tracing::info!(remote = %connection.remote, error = %e, "malformed request");
                error_frame(Response::error(e.code(), format!("request rejected: {e}")))
            }
        },
        Err(ReadFrameError::Frame(e)) => {
            let _ = recv.stop(STREAM_ERROR_BAD_FRAME.into());
            tracing::info!(remote = %connection.remote, error = %e, "bad request frame");
            error_frame(Response::error(e.code(), format!("request rejected: {e}")))
        }
        Err(ReadFrameError::Empty) => error_frame(Response::error(
            ErrorCode::Malformed,
            "request rejected: the stream ended before a complete request frame",
        )),
        Err(ReadFrameError::TimedOut(limit)) => {
            let _ = recv.stop(STREAM_ERROR_BAD_FRAME.into());
            tracing::info!(remote = %connection.remote, "request frame too slow");
            error_frame(Response::error(
                ErrorCode::Malformed,
                format!(
                    "request rejected: the request frame did not arrive within {} s",
                    limit.as_secs()
                ),
            ))
        }
        Err(ReadFrameError::Read(e)) => {
            tracing::debug!(remote = %connection.remote, error = %e, "request stream failed");
            return;
        }
        Err(ReadFrameError::Closed) => return,
    };
    // An answer too large for a frame became a `TooLarge` refusal in `requests::handle`;
    // only an error message beyond a frame (none is) could still fail here.
    let bytes = match answer {
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

#[cfg(test)]
mod tests {
    use super::*;
    use uchat_wire::{IdentityKeys, Password, SignedKey};

    use crate::server::requests::MAX_KEYS_PER_REQUEST;

    #[test]
    fn the_largest_register_fits_the_prelogin_frame_limit() {
        let key = SignedKey {
            key: vec![0xff; 32],
            signature: vec![0xff; 64],
        };
        let register = Request::Register(request::Register {
            username: UserName::parse(&"a".repeat(UserName::MAX_LEN)).expect("valid"),
            password: Password::new("p".repeat(1024)),
            identity: IdentityKeys {
                curve25519: vec![0xff; 32],
                ed25519: vec![0xff; 32],
            },
            one_time_keys: vec![key.clone(); MAX_KEYS_PER_REQUEST],
            fallback_key: Some(key),
        });
        let bytes = frame::encode(&register, MAX_CONTROL_FRAME_BYTES).expect("encodes");
        assert!(
            bytes.len() < MAX_PRELOGIN_FRAME_BYTES,
            "{} bytes",
            bytes.len()
        );
        // Room to spare, so a field added later does not lock out new users.
        assert!(
            bytes.len() * 2 < MAX_PRELOGIN_FRAME_BYTES,
            "{} bytes",
            bytes.len()
        );
    }

    #[test]
    fn frames_are_limited_to_64_kib_until_login_and_1_mib_after() {
        assert_eq!(request_frame_limit(false), 64 * 1024);
        assert_eq!(request_frame_limit(true), MAX_CONTROL_FRAME_BYTES);
    }

    #[test]
    fn an_oversized_prelogin_frame_is_refused_naming_the_limit() {
        let mut decoder = uchat_wire::frame::FrameDecoder::new(request_frame_limit(false));
        let header = (100_000u32).to_be_bytes();
        let err = decoder.push(&header).expect_err("too large");
        assert_eq!(err.code(), ErrorCode::FrameTooLarge);
        assert_eq!(
            err.to_string(),
            "frame of 100000 bytes exceeds the limit of 65536 bytes"
        );
    }
}
