//! One operation of the traffic, run against one client: what each kind of operation
//! does and how its outcome is counted.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use uchat_peer::{Client, FileTarget, Repeat};
use uchat_wire::{FileId, GroupId, PostId};

use crate::clients::{close_client, open_client};
use crate::mix::Op;
use crate::shared::{LIVE_POSTS_PER_AUTHOR, RECONNECT_WITHIN, SoakWorld, lock};

/// A message text of about `len` bytes, Chinese and ASCII mixed like real chat.
fn text_of(seq: u64, len: usize) -> String {
    let mut text = format!("soak {seq}: ");
    let mut i = 0;
    while text.len() < len && i < 4096 {
        text.push_str(if i % 3 == 0 { "你好，" } else { "hello " });
        i += 1;
    }
    text
}

/// One operation's inputs, drawn by the driver so a run replays from its seed.
pub(crate) struct Job {
    /// What to do.
    pub(crate) op: Op,
    /// The client that does it.
    pub(crate) who: usize,
    /// A random number for the operation's own choices.
    pub(crate) pick: u64,
    /// A sequence number for texts and file names.
    pub(crate) seq: u64,
    /// For `Like` and `Comment`: the post.
    pub(crate) post: Option<PostId>,
    /// For `Download`: the file.
    pub(crate) file: Option<FileId>,
    /// For `Offline`: how long the client stays away.
    pub(crate) offline_for: Duration,
}

/// Runs one operation with the client's slot locked.
pub(crate) async fn run_job(
    shared: Arc<SoakWorld>,
    job: Job,
    mut slot: tokio::sync::OwnedMutexGuard<Option<Arc<Client>>>,
) {
    let op = job.op;
    if op == Op::Offline {
        offline(&shared, &job, &mut slot).await;
        return;
    }
    let Some(client) = (*slot).clone() else {
        return;
    };
    if !client.is_online() {
        match client.reconnect(RECONNECT_WITHIN).await {
            Ok(()) => shared.done(Op::Reconnect),
            Err(e) => {
                shared.fail(Op::Reconnect, &e.to_string());
                return;
            }
        }
    }
    let who = job.who;
    let partners = &shared.partners[who];
    let partner = partners[(job.pick as usize) % partners.len()];
    match op {
        Op::Text => {
            let len = 20 + (job.pick % 400) as usize;
            let text = text_of(job.seq, len);
            let result = client.send_text(&shared.names[partner], &text).await;
            shared.sent(op, result, vec![partner]);
        }
        Op::GroupText => {
            let mine: Vec<&(GroupId, Vec<usize>)> = shared
                .groups
                .iter()
                .filter(|(_, members)| members.contains(&who))
                .collect();
            let Some((group, members)) = mine.get((job.pick as usize) % mine.len().max(1)) else {
                return;
            };
            let text = text_of(job.seq, 40 + (job.pick % 200) as usize);
            let result = client.groups().send_text(*group, &text).await;
            let to = members.iter().copied().filter(|&m| m != who).collect();
            shared.sent(op, result, to);
        }
        Op::File => match send_file(&shared, &client, &job, partner).await {
            Ok(()) => {}
            Err(e) => shared.fail(op, &format!("{e:#}")),
        },
        Op::Download => {
            let Some(file) = job.file else { return };
            let dest = shared.scratch.join(format!("in{who}"));
            let quiet = |_: u64, _: u64| {};
            match client.files().download(file, &dest, &quiet).await {
                Ok(saved) => {
                    let _ = tokio::fs::remove_file(&saved.path).await;
                    shared.done(op);
                }
                Err(e) => shared.fail(op, &e.to_string()),
            }
        }
        Op::Post => post(&shared, &client, &job).await,
        Op::Like | Op::Comment => {
            let Some(post) = job.post else { return };
            let result = if op == Op::Like {
                client.moments().like(post).await
            } else {
                let text = text_of(job.seq, 10 + (job.pick % 80) as usize);
                client
                    .moments()
                    .comment(post, &text, None)
                    .await
                    .map(|_| ())
            };
            match result {
                Ok(()) => shared.done(op),
                Err(e) => shared.fail(op, &e.to_string()),
            }
        }
        Op::Feed => match client.moments().feed(None, 20).await {
            Ok(_) => shared.done(op),
            Err(e) => shared.fail(op, &e.to_string()),
        },
        Op::Presence => {
            let users = partners.iter().map(|&p| shared.names[p].clone()).collect();
            match client.presence(users).await {
                Ok(_) => shared.done(op),
                Err(e) => shared.fail(op, &e.to_string()),
            }
        }
        Op::Profile => {
            let signature = format!("soak {} 签名", job.seq);
            match client
                .social()
                .set_profile(Some(signature.as_str()), None)
                .await
            {
                Ok(_) => shared.done(op),
                Err(e) => shared.fail(op, &e.to_string()),
            }
        }
        Op::Offline | Op::Delete | Op::Reconnect => {}
    }
}

/// Writes a small file, sends it to `partner` and removes the local copy.
async fn send_file(shared: &SoakWorld, client: &Client, job: &Job, partner: usize) -> Result<()> {
    let dir = shared.scratch.join(format!("out{}", job.who));
    tokio::fs::create_dir_all(&dir).await?;
    let path = dir.join(format!("soak-{}.bin", job.seq));
    // 4 to 256 KiB: small transfers, one to four chunks.
    let len = 4096 + (job.pick % (252 * 1024)) as usize;
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i as u64 ^ job.seq).wrapping_mul(31) as u8)
        .collect();
    tokio::fs::write(&path, &bytes).await?;
    let quiet = |_: u64, _: u64| {};
    let result = client
        .files()
        .send(
            &FileTarget::User(shared.names[partner].clone()),
            &path,
            None,
            // Every file is new (its own sequence number): the app's behaviour.
            Repeat::SendAgain,
            &quiet,
        )
        .await;
    let _ = tokio::fs::remove_file(&path).await;
    shared.sent(Op::File, result.map(|sent| sent.message), vec![partner]);
    Ok(())
}

/// Posts a moment to every friend; beyond `LIVE_POSTS_PER_AUTHOR` deletes the oldest.
async fn post(shared: &SoakWorld, client: &Client, job: &Job) {
    let text = text_of(job.seq, 30 + (job.pick % 300) as usize);
    let posted = match client.moments().post(&text, &[], None, &|_, _| {}).await {
        Ok(posted) => posted,
        Err(e) => return shared.fail(Op::Post, &e.to_string()),
    };
    shared.done(Op::Post);
    let oldest = {
        let mut posts = lock(&shared.posts);
        let live = posts.live.entry(job.who).or_default();
        live.push_back(posted.id);
        let oldest = if live.len() > LIVE_POSTS_PER_AUTHOR {
            live.pop_front()
        } else {
            None
        };
        if let Some(gone) = oldest {
            posts.likeable.retain(|(_, p)| *p != gone);
        }
        oldest
    };
    if let Some(gone) = oldest {
        match client.moments().delete(gone).await {
            Ok(()) => shared.done(Op::Delete),
            Err(e) => shared.fail(Op::Delete, &e.to_string()),
        }
    }
}

/// Closes the client, stays away, opens the profile again. On a slot left empty by an
/// earlier failure, only opens it.
async fn offline(shared: &Arc<SoakWorld>, job: &Job, slot: &mut Option<Arc<Client>>) {
    let who = job.who;
    if let Some(client) = slot.take() {
        shared.counters.offline.fetch_add(1, Ordering::Relaxed);
        close_client(shared, who, client).await;
        tokio::time::sleep(job.offline_for).await;
    }
    match open_client(shared, who).await {
        Ok(client) => {
            *slot = Some(client);
            shared.counters.offline.fetch_sub(1, Ordering::Relaxed);
            shared.done(Op::Offline);
        }
        // The slot stays empty (and counted offline); a later Offline job tries again.
        Err(e) => shared.fail(Op::Offline, &format!("reopen: {e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_reach_their_length_and_stay_bounded() {
        for len in [0, 20, 419] {
            let text = text_of(7, len);
            assert!(text.starts_with("soak 7: "));
            assert!(
                text.len() >= len && text.len() < len + 16,
                "{len}: {}",
                text.len()
            );
        }
        assert!(text_of(1, usize::MAX).len() < 4096 * 10);
    }
}
