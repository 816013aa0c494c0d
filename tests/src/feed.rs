//! A feed of many posts from many friends, made through the real client library against a
//! real relay: for the feed paging test and the `feedbench` benchmark.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tokio::sync::broadcast::error::RecvError;
use uchat_peer::{Client, ClientEvent, ClientOptions};
use uchat_wire::{CertFingerprint, PostId, UserName};

/// The password of every fixture user.
const PASSWORD: &str = "feed fixture password";

/// A viewer with `friends` friends who posted to them, round-robin.
pub struct FeedFixture {
    /// The viewer, caught up: every post's key is here.
    pub viewer: Client,
    /// The friends who posted.
    pub friends: Vec<Client>,
    /// Every post, oldest first, with its text.
    pub posted: Vec<(PostId, String)>,
    _homes: tempfile::TempDir,
}

impl FeedFixture {
    /// Registers a viewer and `friends` friends named after `tag` on the relay at `relay`,
    /// and has the friends post `posts_per_friend` posts each, taking turns, to all their
    /// friends (the viewer). Bounded by `time_limit`.
    pub async fn populate(
        relay: &str,
        fingerprint: Option<CertFingerprint>,
        tag: &str,
        friends: usize,
        posts_per_friend: usize,
        time_limit: Duration,
    ) -> Result<Self> {
        tokio::time::timeout(
            time_limit,
            Self::build(relay, fingerprint, tag, friends, posts_per_friend),
        )
        .await
        .context("making the feed took longer than its time limit")?
    }

    async fn build(
        relay: &str,
        fingerprint: Option<CertFingerprint>,
        tag: &str,
        friends: usize,
        posts_per_friend: usize,
    ) -> Result<Self> {
        let homes = tempfile::tempdir()?;
        let register = |name: String| {
            let options = ClientOptions {
                home: homes.path().join(&name),
                relay: Some(relay.to_string()),
                relay_fingerprint: fingerprint,
            };
            async move {
                let user = UserName::parse(&name)?;
                anyhow::Ok(Client::register(options, user, PASSWORD).await?)
            }
        };
        let viewer = register(format!("{tag}v")).await?;
        // Every event from the start, to wait below for each post's key to arrive.
        let mut events = viewer.subscribe();
        let mut posters = Vec::new();
        for i in 0..friends {
            let friend = register(format!("{tag}f{i}")).await?;
            friend.social().add_friend(viewer.me(), "feed").await?;
            viewer.social().accept_friend(friend.me()).await?;
            posters.push(friend);
        }
        let mut posted = Vec::new();
        for round in 0..posts_per_friend {
            for friend in &posters {
                let text = format!("{} 的第 {round} 条朋友圈", friend.me());
                let post = friend.moments().post(&text, &[], None, &|_, _| {}).await?;
                ensure!(
                    post.shared_with == [viewer.me().clone()],
                    "the post was shared with {:?}",
                    post.shared_with
                );
                posted.push((post.id, text));
            }
        }
        // `catch_up` covers only what was queued when the viewer connected; the keys of
        // these posts arrive while it is online, one `MomentPosted` each.
        let mut keys = 0;
        while keys < posted.len() {
            match events.recv().await {
                Ok(ClientEvent::MomentPosted { .. }) => keys += 1,
                Ok(_) => {}
                // Too many at once for the channel: those missed were taken in all the same.
                Err(RecvError::Lagged(missed)) => keys += missed as usize,
                Err(RecvError::Closed) => anyhow::bail!("the viewer's client stopped"),
            }
        }
        Ok(Self {
            viewer,
            friends: posters,
            posted,
            _homes: homes,
        })
    }

    /// Closes every client.
    pub async fn close(self) {
        self.viewer.close().await;
        for friend in self.friends {
            friend.close().await;
        }
    }
}
