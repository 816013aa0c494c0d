//! Each client's life: the listener that takes in its events, and closing and opening
//! its profile again.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::broadcast::error::RecvError;
use uchat_peer::{Client, ClientEvent};

use crate::mix::Op;
use crate::shared::{DOWNLOADS_MAX, LIKEABLE_MAX, PASSWORD, RECONNECT_WITHIN, SoakWorld, lock};

/// Takes in one client's events until its client closes (or the run's hard stop):
/// counts arrivals, notes files to download and posts to like.
pub(crate) async fn listen(
    shared: Arc<SoakWorld>,
    who: usize,
    mut events: tokio::sync::broadcast::Receiver<ClientEvent>,
) {
    loop {
        let event = match tokio::time::timeout_at(shared.hard_stop, events.recv()).await {
            Err(_) | Ok(Err(RecvError::Closed)) => return,
            Ok(Err(RecvError::Lagged(n))) => {
                shared.counters.lagged.fetch_add(n, Ordering::Relaxed);
                continue;
            }
            Ok(Ok(event)) => event,
        };
        match event {
            ClientEvent::Message(m) => {
                let readable = m.text.is_some() || m.file.is_some();
                lock(&shared.ledger).arrive(who, m.id, readable);
                if let Some(file) = m.file {
                    let mut downloads = lock(&shared.downloads);
                    if downloads.len() >= DOWNLOADS_MAX {
                        downloads.pop_front();
                        shared
                            .counters
                            .downloads_dropped
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    downloads.push_back((who, file.file));
                }
            }
            ClientEvent::MomentPosted { post, .. } => {
                let mut posts = lock(&shared.posts);
                if posts.likeable.len() >= LIKEABLE_MAX {
                    posts.likeable.pop_front();
                }
                posts.likeable.push_back((who, post));
            }
            ClientEvent::Disconnected { .. } => {
                shared.counters.disconnects.fetch_add(1, Ordering::Relaxed);
            }
            ClientEvent::GroupMessageRejected { reason, .. } => {
                shared.fail(
                    Op::GroupText,
                    &format!("a member rejected a group message: {reason}"),
                );
            }
            _ => {}
        }
    }
}

/// Starts the listener of a client just opened in `who`'s slot.
pub(crate) fn start_listener(shared: &Arc<SoakWorld>, who: usize, client: &Client) {
    let handle = tokio::spawn(listen(shared.clone(), who, client.subscribe()));
    if let Some(old) = lock(&shared.slots[who].listener).replace(handle) {
        old.abort();
    }
}

/// Closes `client` and waits a little for its listener to take in what was left.
pub(crate) async fn close_client(shared: &SoakWorld, who: usize, client: Arc<Client>) {
    match Arc::try_unwrap(client) {
        Ok(client) => client.close().await,
        // Another holder is a bug in this program; the client still goes when it drops.
        Err(_) => shared.fail(Op::Offline, "client still shared at close"),
    }
    let handle = lock(&shared.slots[who].listener).take();
    if let Some(handle) = handle {
        let abort = handle.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), handle)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// Opens `who`'s profile again through its path, reconnecting if the first dial failed.
pub(crate) async fn open_client(shared: &Arc<SoakWorld>, who: usize) -> Result<Arc<Client>> {
    let client = Client::open(shared.options[who].clone(), PASSWORD).await?;
    start_listener(shared, who, &client);
    if !client.is_online() {
        client.reconnect(RECONNECT_WITHIN).await?;
    }
    Ok(Arc::new(client))
}

/// Closes every client still open and stops every listener (at the end of the run).
pub(crate) async fn close_all(shared: &SoakWorld) {
    for slot in &shared.slots {
        let client = slot.client.lock().await.take();
        if let Some(client) = client
            && let Ok(client) = Arc::try_unwrap(client)
        {
            client.close().await;
        }
        if let Some(listener) = lock(&slot.listener).take() {
            listener.abort();
        }
    }
}
