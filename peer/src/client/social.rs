//! The social side of [`Client`]: friend requests, the friend list (both fetched a page at
//! a time, so any length works), blocking, profiles and avatars, and keeping the local
//! contacts cache and identity pins in step with the relay.
//!
//! The relay is the truth for the friend graph and profiles; the peer keeps a cache
//! (`crate::store::ContactRecord`) so that the app can show contacts offline and download an
//! avatar only when its version changed. Each friend's identity keys are pinned the first
//! time the peer sees them; a friend whose keys on the relay differ from the pin is
//! reported with [`ClientEvent::IdentityChanged`] on every connect until the user compares
//! safety numbers and trusts the new keys.

use std::collections::HashSet;
use uchat_wire::{reply, request};

use uchat_wire::msg::page::MAX_PAGE_ENTRIES;
use uchat_wire::msg::social::{TextRuleError, check_note, check_signature};
use uchat_wire::{
    AvatarChange, FriendEntry, FriendRequestEntry, ProfileSummary, PushEvent, UserName,
};

use super::page::fetch_pages;
use super::{Client, ClientError, ClientState, now_ms};
use crate::event::ClientEvent;
use crate::store::{ContactRecord, PinnedIdentity};
use crate::trust::{IdentityCheck, check_identity};

/// One friend, as [`Social::friends`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Friend {
    /// The friend; [`Social::friends`] lists them in name order, as the relay does.
    pub user: UserName,
    /// When the friendship began, ms since the Unix epoch.
    pub since_ms: u64,
    /// Whether they are online now.
    pub online: bool,
    /// When they were last online (offline friends only, if known).
    pub last_seen_ms: Option<u64>,
    /// True if this user blocked them.
    pub blocked: bool,
    /// Their profile.
    pub profile: ProfileSummary,
    /// True if their identity keys on the relay differ from the ones pinned here.
    pub identity_changed: bool,
}

/// Pending friend requests, as [`Social::friend_requests`] lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FriendRequests {
    /// Requests to this user, oldest first.
    pub incoming: Vec<FriendRequestEntry>,
    /// Requests this user sent that wait for an answer, oldest first.
    pub outgoing: Vec<FriendRequestEntry>,
}

/// A user's profile with the avatar image, as [`Social::profile`] returns it.
#[derive(Clone, PartialEq, Eq)]
pub struct Profile {
    /// Whose profile.
    pub user: UserName,
    /// Signature, avatar version and change time.
    pub profile: ProfileSummary,
    /// The avatar PNG, if they have one.
    pub avatar: Option<Vec<u8>>,
    /// True if the avatar came from the local cache (its version had not changed).
    pub avatar_from_cache: bool,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("user", &self.user)
            .field("profile", &self.profile)
            .field("avatar", &self.avatar.as_ref().map(Vec::len))
            .field("avatar_from_cache", &self.avatar_from_cache)
            .finish()
    }
}

/// A change to this user's own avatar, for [`Social::set_profile`].
#[derive(Clone, PartialEq, Eq)]
pub enum NewAvatar {
    /// Remove the avatar.
    Remove,
    /// Use this PNG (made with [`crate::avatar::avatar_from_file`] or `avatar_from_bytes`).
    Png(Vec<u8>),
}

impl std::fmt::Debug for NewAvatar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NewAvatar::Remove => f.write_str("Remove"),
            NewAvatar::Png(png) => write!(f, "Png(<{} bytes>)", png.len()),
        }
    }
}

/// A record for a user the cache knows nothing about.
fn empty_contact(user: &UserName) -> ContactRecord {
    ContactRecord {
        user: user.clone(),
        friend: false,
        since_ms: 0,
        profile: ProfileSummary::default(),
        avatar: None,
    }
}

impl From<TextRuleError> for ClientError {
    fn from(e: TextRuleError) -> Self {
        ClientError::InvalidInput(e.to_string())
    }
}

/// A page of friend requests from a `FriendRequestsPage` answer.
fn requests_page(page: reply::FriendRequestsPage) -> (Vec<FriendRequestEntry>, Option<UserName>) {
    (page.requests, page.next)
}

/// Friends, friend requests, blocks and profiles (`client.social()`).
#[derive(Clone, Copy)]
pub struct Social<'a> {
    client: &'a Client,
}

impl Client {
    /// Friends, friend requests, blocks and profiles.
    pub fn social(&self) -> Social<'_> {
        Social { client: self }
    }
}

impl Social<'_> {
    /// Asks `user` to be friends, with `note`; returns true if they had asked first, so the
    /// two are friends now.
    pub async fn add_friend(self, user: &UserName, note: &str) -> Result<bool, ClientError> {
        if user == &self.client.inner.me {
            return Err(ClientError::InvalidInput(
                "you cannot send a friend request to yourself".into(),
            ));
        }
        check_note(note)?;
        let request = request::FriendRequest {
            to: user.clone(),
            note: note.to_string(),
        };
        let sent = self.client.inner.call(request).await?;
        if sent.became_friends {
            self.client.inner.befriended(user).await;
        }
        Ok(sent.became_friends)
    }

    /// Accepts `user`'s pending friend request and pins their identity keys.
    pub async fn accept_friend(self, user: &UserName) -> Result<(), ClientError> {
        self.client
            .inner
            .call(request::AcceptFriend { from: user.clone() })
            .await?;
        self.client.inner.befriended(user).await;
        Ok(())
    }

    /// Declines `user`'s pending friend request (they are not told).
    pub async fn reject_friend(self, user: &UserName) -> Result<(), ClientError> {
        self.client
            .inner
            .call(request::RejectFriend { from: user.clone() })
            .await?;
        Ok(())
    }

    /// Ends the friendship with `user` on both sides.
    pub async fn remove_friend(self, user: &UserName) -> Result<(), ClientError> {
        self.client
            .inner
            .call(request::RemoveFriend { user: user.clone() })
            .await?;
        self.client.inner.store.remove_contact(user)?;
        Ok(())
    }

    /// Blocks `user`: their requests and messages are dropped without telling them.
    pub async fn block(self, user: &UserName) -> Result<(), ClientError> {
        if user == &self.client.inner.me {
            return Err(ClientError::InvalidInput(
                "you cannot block yourself".into(),
            ));
        }
        self.client
            .inner
            .call(request::Block { user: user.clone() })
            .await?;
        Ok(())
    }

    /// Lifts a block on `user`.
    pub async fn unblock(self, user: &UserName) -> Result<(), ClientError> {
        self.client
            .inner
            .call(request::Unblock { user: user.clone() })
            .await?;
        Ok(())
    }

    /// The friend list with presence and profiles, from the relay; brings the local cache
    /// and identity pins up to date on the way.
    pub async fn friends(self) -> Result<Vec<Friend>, ClientError> {
        self.client.inner.sync_friends().await
    }

    /// Pending friend requests, both directions, each oldest first: page by page, or in
    /// one answer from a relay older than paging.
    pub async fn friend_requests(self) -> Result<FriendRequests, ClientError> {
        let link = self.client.inner.link()?;
        let incoming = fetch_pages(
            &link,
            "incoming friend requests",
            |after| request::IncomingFriendRequestsPage {
                after,
                limit: MAX_PAGE_ENTRIES,
            },
            requests_page,
        )
        .await?;
        let outgoing = match incoming {
            Some(_) => {
                fetch_pages(
                    &link,
                    "outgoing friend requests",
                    |after| request::OutgoingFriendRequestsPage {
                        after,
                        limit: MAX_PAGE_ENTRIES,
                    },
                    requests_page,
                )
                .await?
            }
            None => None,
        };
        let mut requests = match (incoming, outgoing) {
            (Some(incoming), Some(outgoing)) => FriendRequests { incoming, outgoing },
            _ => {
                let whole = link.call(request::FriendRequests).await?;
                FriendRequests {
                    incoming: whole.incoming,
                    outgoing: whole.outgoing,
                }
            }
        };
        // Pages come in name order; people read requests oldest first.
        for list in [&mut requests.incoming, &mut requests.outgoing] {
            list.sort_by(|a, b| (a.created_ms, &a.user).cmp(&(b.created_ms, &b.user)));
        }
        Ok(requests)
    }

    /// Changes this user's signature and/or avatar; friends online see it at once.
    pub async fn set_profile(
        self,
        signature: Option<&str>,
        avatar: Option<NewAvatar>,
    ) -> Result<ProfileSummary, ClientError> {
        if let Some(signature) = signature {
            check_signature(signature)?;
        }
        let request = request::SetProfile {
            signature: signature.map(str::to_string),
            avatar: avatar.clone().map(|a| match a {
                NewAvatar::Remove => AvatarChange::Remove,
                NewAvatar::Png(png) => AvatarChange::Set { png },
            }),
        };
        let profile = self.client.inner.call(request).await?.profile;
        // Keep our own avatar in the cache too, so `profile show` needs no download.
        let mut own = self.client.inner.cached_contact(&self.client.inner.me)?;
        own.avatar = match (avatar, &own.avatar) {
            (Some(NewAvatar::Png(png)), _) => Some(png),
            (Some(NewAvatar::Remove), _) => None,
            (None, cached) => cached.clone(),
        };
        own.profile = profile.clone();
        self.client.inner.store.put_contact(&own)?;
        Ok(profile)
    }

    /// `user`'s profile (this user's own, or a friend's). The avatar is downloaded only if
    /// its version differs from the cached one.
    pub async fn profile(self, user: &UserName) -> Result<Profile, ClientError> {
        let mut cached = self.client.inner.cached_contact(user)?;
        let known = cached
            .avatar
            .as_ref()
            .and(cached.profile.avatar_version.clone());
        let request = request::GetProfile {
            user: user.clone(),
            known_avatar_version: known.clone(),
        };
        let reply::Profile {
            profile,
            avatar: downloaded,
            ..
        } = self.client.inner.call(request).await?;
        let avatar_from_cache = downloaded.is_none()
            && profile.avatar_version.is_some()
            && profile.avatar_version == known;
        cached.avatar = match downloaded {
            Some(png) => Some(png),
            None if avatar_from_cache => cached.avatar,
            None => None,
        };
        cached.profile = profile.clone();
        self.client.inner.store.put_contact(&cached)?;
        Ok(Profile {
            user: user.clone(),
            profile,
            avatar: cached.avatar,
            avatar_from_cache,
        })
    }
}

impl ClientState {
    /// The cached record of `user`, or an empty one.
    fn cached_contact(&self, user: &UserName) -> Result<ContactRecord, ClientError> {
        Ok(self
            .store
            .contact(user)?
            .unwrap_or_else(|| empty_contact(user)))
    }

    /// Takes in a social event (presence, a friend request, acceptance or removal, a
    /// profile or identity change) and reports it.
    pub(super) async fn take_in_social(&self, event: PushEvent) -> Result<(), ClientError> {
        match event {
            PushEvent::Presence {
                user,
                online,
                last_seen_ms,
            } => {
                let _ = self.events.send(ClientEvent::Presence {
                    user,
                    online,
                    last_seen_ms,
                });
            }
            PushEvent::FriendRequest { from, note } => {
                let _ = self.events.send(ClientEvent::FriendRequest { from, note });
            }
            PushEvent::FriendAccepted { by } => {
                self.befriended(&by).await;
                let _ = self.events.send(ClientEvent::FriendAccepted { user: by });
            }
            PushEvent::FriendRemoved { by } => {
                self.store.remove_contact(&by)?;
                let _ = self.events.send(ClientEvent::FriendRemoved { user: by });
            }
            PushEvent::Profile { user, profile } => {
                self.profile_changed(&user, &profile)?;
                let _ = self
                    .events
                    .send(ClientEvent::ProfileChanged { user, profile });
            }
            PushEvent::IdentityChanged { user } => self.identity_changed(&user).await,
            // Not social: taken in by `take_in`'s other arms.
            _ => {}
        }
        Ok(())
    }

    /// A new friendship: pin the friend's identity keys now (fetched once, kept locally)
    /// and refresh the cache. Best effort: a failure here is repaired by the next sync.
    pub(super) async fn befriended(&self, user: &UserName) {
        if let Err(e) = self.contact_identity(user).await {
            tracing::warn!(%user, error = %e, "cannot pin the new friend's identity yet");
        }
        self.sync_friends_or_report().await;
    }

    /// [`ClientState::sync_friends`] where nobody waits for its answer (on connect, after a new
    /// friendship): a failure is reported with [`ClientEvent::FriendSyncFailed`], since
    /// the identity changes the sync looks for would otherwise go unseen.
    pub(super) async fn sync_friends_or_report(&self) {
        if let Err(e) = self.sync_friends().await {
            let reason = uchat_wire::describe_error_chain(&e);
            tracing::warn!(error = %reason, "cannot bring the friend list up to date");
            let _ = self.events.send(ClientEvent::FriendSyncFailed { reason });
        }
    }

    /// Every friend, from the relay: page by page, or in one answer from a relay older
    /// than paging.
    async fn fetch_friends(&self) -> Result<Vec<FriendEntry>, ClientError> {
        let link = self.link()?;
        let paged = fetch_pages(
            &link,
            "friends",
            |after| request::FriendsPage {
                after,
                limit: MAX_PAGE_ENTRIES,
            },
            |page| (page.friends, page.next),
        )
        .await?;
        match paged {
            Some(friends) => Ok(friends),
            None => Ok(link.call(request::Friends).await?.friends),
        }
    }

    /// Fetches the friend list and brings the contacts cache and identity pins up to date,
    /// reporting what changed while this peer was away: profile changes and identity keys
    /// that differ from the pins. Whatever changed is written in one transaction, and
    /// reported once it is.
    pub(super) async fn sync_friends(&self) -> Result<Vec<Friend>, ClientError> {
        let entries = self.fetch_friends().await?;
        let mut friends = Vec::with_capacity(entries.len());
        let mut pins = Vec::new();
        let mut changed_contacts = Vec::new();
        let mut events = Vec::new();
        for entry in entries {
            let pinned = self.store.pinned_identity(&entry.user)?;
            let identity_changed =
                match check_identity(pinned.as_ref().map(|p| &p.identity), &entry.identity) {
                    IdentityCheck::Known => false,
                    IdentityCheck::FirstSeen => {
                        let pin = PinnedIdentity {
                            identity: entry.identity.clone(),
                            pinned_ms: now_ms(),
                        };
                        pins.push((entry.user.clone(), pin));
                        false
                    }
                    IdentityCheck::Changed => {
                        events.push(ClientEvent::IdentityChanged {
                            user: entry.user.clone(),
                        });
                        true
                    }
                };
            let cached = self.store.contact(&entry.user)?;
            let mut record = cached.clone().unwrap_or_else(|| empty_contact(&entry.user));
            if record.friend && record.profile != entry.profile {
                events.push(ClientEvent::ProfileChanged {
                    user: entry.user.clone(),
                    profile: entry.profile.clone(),
                });
            }
            if record.profile.avatar_version != entry.profile.avatar_version {
                record.avatar = None;
            }
            record.friend = true;
            record.since_ms = entry.since_ms;
            record.profile = entry.profile.clone();
            if cached.as_ref() != Some(&record) {
                changed_contacts.push(record);
            }
            friends.push(Friend {
                user: entry.user,
                since_ms: entry.since_ms,
                online: entry.online,
                last_seen_ms: entry.last_seen_ms,
                blocked: entry.blocked,
                profile: entry.profile,
                identity_changed,
            });
        }
        // Friendships that ended while this peer was away.
        let listed: HashSet<&UserName> = friends.iter().map(|f| &f.user).collect();
        let ended: Vec<UserName> = self
            .store
            .contacts()?
            .into_iter()
            .filter(|c| c.friend && c.user != self.me && !listed.contains(&c.user))
            .map(|c| c.user)
            .collect();
        self.store.sync_contacts(&pins, &changed_contacts, &ended)?;
        for event in events {
            let _ = self.events.send(event);
        }
        Ok(friends)
    }

    /// A friend's profile changed (pushed by the relay): update the cache; the avatar is
    /// downloaded when someone asks for it.
    pub(super) fn profile_changed(
        &self,
        user: &UserName,
        profile: &ProfileSummary,
    ) -> Result<(), ClientError> {
        let mut cached = self.cached_contact(user)?;
        if cached.profile.avatar_version != profile.avatar_version {
            cached.avatar = None;
        }
        cached.profile = profile.clone();
        self.store.put_contact(&cached)?;
        Ok(())
    }

    /// A friend published new identity keys: report it if they differ from the pin.
    pub(super) async fn identity_changed(&self, user: &UserName) {
        let Ok(Some(pinned)) = self.store.pinned_identity(user) else {
            return;
        };
        match self.published_identity(user).await {
            Ok(current) if current != pinned.identity => {
                let _ = self
                    .events
                    .send(ClientEvent::IdentityChanged { user: user.clone() });
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(%user, error = %e, "cannot check a changed identity"),
        }
    }
}
