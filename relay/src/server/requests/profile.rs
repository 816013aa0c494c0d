//! Profiles: a signature and an avatar per user, readable by the user and their friends
//! (and by someone the user asked to be friends, who may look before answering), changed
//! only by the user. Asking someone to be friends does not open their profile to the asker.
//!
//! `SetProfile` carries no user name: it always changes the profile of the session's own
//! user, so nobody can write someone else's. Changes go to online friends at once through
//! the announcer; offline friends see them in their next `Friends` answer.

use std::sync::Arc;
use uchat_wire::reply;

use uchat_store::AvatarUpdate;
use uchat_wire::msg::social::{check_avatar, check_signature};
use uchat_wire::{AvatarChange, ErrorCode, ErrorReply, PushEvent, UserName};

use super::fail;
use crate::server::{RelayState, blocking, now_ms};

/// Changes `me`'s signature and/or avatar, then tells their online friends.
pub(super) async fn set(
    shared: &Arc<RelayState>,
    me: UserName,
    signature: Option<String>,
    avatar: Option<AvatarChange>,
) -> Result<reply::Profile, ErrorReply> {
    if let Some(signature) = &signature {
        check_signature(signature).map_err(|e| fail(ErrorCode::InvalidInput, e.to_string()))?;
    }
    if let Some(AvatarChange::Set { png }) = &avatar {
        let png = png.clone();
        // Decoding is CPU work: off the async threads.
        tokio::task::spawn_blocking(move || check_avatar(&png))
            .await
            .map_err(|_| fail(ErrorCode::Internal, "avatar check failed; try again"))?
            .map_err(|reason| fail(ErrorCode::InvalidInput, reason))?;
    }
    let store = shared.store.clone();
    let user = me.clone();
    let profile = blocking(move || {
        let update = match &avatar {
            None => AvatarUpdate::Keep,
            Some(AvatarChange::Remove) => AvatarUpdate::Remove,
            Some(AvatarChange::Set { png }) => AvatarUpdate::Set(png),
        };
        store.set_profile(&user, signature.as_deref(), update, now_ms())
    })
    .await?;
    shared.announcer.announce(
        &me,
        PushEvent::Profile {
            user: me.clone(),
            profile: profile.clone(),
        },
    );
    tracing::debug!(user = %me, "profile changed");
    Ok(reply::Profile {
        user: me,
        profile,
        avatar: None,
    })
}

/// Whether `me` may read `user`'s profile: their own, a friend's, or that of someone whose
/// friend request to `me` is pending (the requester chose to show themselves; the one
/// asked did not); never that of someone who blocked `me`.
fn may_read(
    shared: &RelayState,
    me: &UserName,
    user: &UserName,
) -> Result<bool, uchat_store::StoreError> {
    if me == user {
        return Ok(true);
    }
    // Someone `user` blocked stops seeing their profile, as they stop getting its changes.
    Ok(
        (shared.store.are_friends(me, user)? || shared.store.has_pending_request(user, me)?)
            && !shared.store.has_blocked(user, me)?,
    )
}

fn not_allowed(user: &UserName) -> ErrorReply {
    fail(
        ErrorCode::NotFriends,
        format!(
            "'{user}' is not your friend; profiles are shown to friends only (send a friend request first)"
        ),
    )
}

/// `user`'s profile for `me`, with the avatar image unless `me` holds its version already.
pub(super) async fn get(
    shared: &Arc<RelayState>,
    me: UserName,
    user: UserName,
    known_avatar_version: Option<String>,
) -> Result<reply::Profile, ErrorReply> {
    let shared_for_read = shared.clone();
    let whose = user.clone();
    let found = blocking(move || {
        if !may_read(&shared_for_read, &me, &whose)? {
            return Ok(None);
        }
        let store = &shared_for_read.store;
        let Some(profile) = store.profile(&whose)? else {
            return Ok(None);
        };
        let avatar = match &profile.avatar_version {
            Some(version) if Some(version) != known_avatar_version.as_ref() => {
                store.avatar(&whose)?.map(|(_, bytes)| bytes)
            }
            _ => None,
        };
        Ok(Some((profile, avatar)))
    })
    .await?;
    let (profile, avatar) = found.ok_or_else(|| not_allowed(&user))?;
    Ok(reply::Profile {
        user,
        profile,
        avatar,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use uchat_wire::msg::social::{MAX_AVATAR_BYTES, MAX_AVATAR_SIDE};

    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbaImage::from_pixel(width, height, image::Rgba([200, 30, 30, 255]));
        let mut out = Cursor::new(Vec::new());
        image
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("encodes");
        out.into_inner()
    }

    #[test]
    fn a_small_square_png_is_a_valid_avatar() {
        assert_eq!(check_avatar(&png(256, 256)), Ok(()));
        assert_eq!(check_avatar(&png(MAX_AVATAR_SIDE, MAX_AVATAR_SIDE)), Ok(()));
    }

    #[test]
    fn non_images_oversized_and_odd_shaped_avatars_are_refused_with_the_reason() {
        let text = check_avatar(b"this is not a picture").expect_err("refused");
        assert!(
            text.starts_with("the avatar is not a readable PNG image"),
            "{text}"
        );
        let wide = check_avatar(&png(200, 100)).expect_err("refused");
        assert_eq!(wide, "the avatar must be square; it is 200×100 pixels");
        let huge =
            check_avatar(&png(MAX_AVATAR_SIDE + 1, MAX_AVATAR_SIDE + 1)).expect_err("refused");
        assert!(
            huge.starts_with("the avatar is not a readable PNG image"),
            "{huge}"
        );
        let long = check_avatar(&vec![0; MAX_AVATAR_BYTES + 1]).expect_err("refused");
        assert!(long.contains("the limit is 393216 bytes"), "{long}");
    }

    #[test]
    fn a_truncated_png_is_refused() {
        let mut bytes = png(64, 64);
        bytes.truncate(bytes.len() / 2);
        assert!(check_avatar(&bytes).is_err());
    }
}
