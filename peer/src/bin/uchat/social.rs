//! `uchat friends …` and `uchat profile …`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use uchat_peer::avatar::avatar_from_file;
use uchat_peer::{Client, Friend, NewAvatar, Profile};

use crate::output::{JsonLine, format_time};
use crate::{Invocation, parse_user};

/// `uchat friends …`
#[derive(Subcommand, Debug)]
pub(crate) enum FriendsCommand {
    /// List friends with presence and signature
    List,
    /// List pending friend requests, to you and from you
    Requests,
    /// Ask USER to be your friend
    Add {
        user: String,
        /// A note shown with the request
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Accept USER's friend request
    Accept { user: String },
    /// Decline USER's friend request (they are not told)
    Reject { user: String },
    /// End the friendship with USER (on both sides)
    Remove { user: String },
    /// Block USER: their requests and messages are dropped without telling them
    Block { user: String },
    /// Lift a block
    Unblock { user: String },
}

/// `uchat profile …`
#[derive(Subcommand, Debug)]
pub(crate) enum ProfileCommand {
    /// Show your profile, or a friend's
    Show {
        user: Option<String>,
        /// Write the avatar (PNG) to this file
        #[arg(long)]
        avatar_out: Option<PathBuf>,
    },
    /// Change your signature and/or avatar
    Set {
        /// A short text shown to your friends ("" clears it)
        #[arg(long)]
        signature: Option<String>,
        /// A picture (PNG, JPEG, GIF, WebP, BMP); it is cropped square and resized
        #[arg(long, conflicts_with = "remove_avatar")]
        avatar: Option<PathBuf>,
        /// Remove your avatar
        #[arg(long)]
        remove_avatar: bool,
    },
}

pub(crate) async fn friends(ctx: &Invocation, command: FriendsCommand) -> Result<()> {
    let client = ctx.open().await?;
    let result = run_friends(ctx, &client, command).await;
    client.close().await;
    result
}

/// Runs one `uchat friends` command on the open `client`.
async fn run_friends(ctx: &Invocation, client: &Client, command: FriendsCommand) -> Result<()> {
    let done = |action: &str, user: &uchat_wire::UserName, human: String| {
        ctx.print(
            JsonLine::Done {
                action,
                user: user.as_str(),
            },
            || human,
        );
    };
    match command {
        FriendsCommand::List => list_friends(ctx, client).await?,
        FriendsCommand::Requests => list_requests(ctx, client).await?,
        FriendsCommand::Add { user, note } => add_friend(ctx, client, &user, &note).await?,
        FriendsCommand::Accept { user } => {
            let user = parse_user(&user)?;
            client.social().accept_friend(&user).await?;
            done("accept", &user, format!("you and {user} are friends now"));
        }
        FriendsCommand::Reject { user } => {
            let user = parse_user(&user)?;
            client.social().reject_friend(&user).await?;
            done("reject", &user, format!("declined {user}'s friend request"));
        }
        FriendsCommand::Remove { user } => {
            let user = parse_user(&user)?;
            client.social().remove_friend(&user).await?;
            done("remove", &user, format!("{user} is no longer your friend"));
        }
        FriendsCommand::Block { user } => {
            let user = parse_user(&user)?;
            client.social().block(&user).await?;
            done("block", &user, format!("blocked {user}"));
        }
        FriendsCommand::Unblock { user } => {
            let user = parse_user(&user)?;
            client.social().unblock(&user).await?;
            done("unblock", &user, format!("unblocked {user}"));
        }
    }
    Ok(())
}

/// `uchat friends list`: one line per friend, with presence, signature, and a warning
/// where their identity key changed.
async fn list_friends(ctx: &Invocation, client: &Client) -> Result<()> {
    for f in client.social().friends().await? {
        ctx.print(
            JsonLine::Friend {
                user: f.user.as_str(),
                online: f.online,
                last_seen_ms: f.last_seen_ms,
                since_ms: f.since_ms,
                blocked: f.blocked,
                signature: &f.profile.signature,
                avatar_version: f.profile.avatar_version.as_deref(),
                identity_changed: f.identity_changed,
            },
            || human_friend(&f),
        );
    }
    Ok(())
}

/// A friend in human form: name, presence, signature and markers.
fn human_friend(f: &Friend) -> String {
    let state = match (f.online, f.last_seen_ms) {
        (true, _) => "online".to_string(),
        (false, Some(ms)) => format!("offline, last seen {} UTC", format_time(ms)),
        (false, None) => "offline".to_string(),
    };
    let mut line = format!("{} ({state})", f.user);
    if !f.profile.signature.is_empty() {
        line.push_str(&format!(" — {}", f.profile.signature));
    }
    if f.blocked {
        line.push_str(" [blocked]");
    }
    if f.identity_changed {
        line.push_str(&format!(
            " [identity key changed! compare: uchat safety-number {}]",
            f.user
        ));
    }
    line
}

/// `uchat friends requests`: the requests to this user, then those from them.
async fn list_requests(ctx: &Invocation, client: &Client) -> Result<()> {
    let requests = client.social().friend_requests().await?;
    for r in &requests.incoming {
        ctx.print(
            JsonLine::FriendRequest {
                from: r.user.as_str(),
                note: &r.note,
                ts: Some(r.created_ms),
            },
            || incoming_line(r.user.as_str(), &r.note),
        );
    }
    for r in &requests.outgoing {
        ctx.print(
            JsonLine::FriendRequestSent {
                to: r.user.as_str(),
                note: &r.note,
                ts: Some(r.created_ms),
                became_friends: None,
            },
            || format!("you asked {} to be friends (waiting for an answer)", r.user),
        );
    }
    Ok(())
}

/// `uchat friends add`: asks `user` to be friends, or says they are friends already if
/// `user` had asked first.
async fn add_friend(ctx: &Invocation, client: &Client, user: &str, note: &str) -> Result<()> {
    let user = parse_user(user)?;
    let became_friends = client.social().add_friend(&user, note).await?;
    ctx.print(
        JsonLine::FriendRequestSent {
            to: user.as_str(),
            note,
            ts: None,
            became_friends: Some(became_friends),
        },
        || {
            if became_friends {
                format!("{user} had asked you too: you are friends now")
            } else {
                format!("friend request sent to {user}")
            }
        },
    );
    Ok(())
}

/// An incoming friend request in human form.
pub(crate) fn incoming_line(from: &str, note: &str) -> String {
    if note.is_empty() {
        format!("{from} asks to be your friend (uchat friends accept {from})")
    } else {
        format!("{from} asks to be your friend: \"{note}\" (uchat friends accept {from})")
    }
}

pub(crate) async fn profile(ctx: &Invocation, command: ProfileCommand) -> Result<()> {
    match command {
        ProfileCommand::Show { user, avatar_out } => show_profile(ctx, user, avatar_out).await,
        ProfileCommand::Set {
            signature,
            avatar,
            remove_avatar,
        } => set_profile(ctx, signature, avatar, remove_avatar).await,
    }
}

/// `uchat profile show`: `user`'s profile (this user's by default), its avatar written to
/// `avatar_out` if given.
async fn show_profile(
    ctx: &Invocation,
    user: Option<String>,
    avatar_out: Option<PathBuf>,
) -> Result<()> {
    let user = user.map(|u| parse_user(&u)).transpose()?;
    let client = ctx.open().await?;
    let whose = user.unwrap_or_else(|| client.me().clone());
    let result = client.social().profile(&whose).await;
    client.close().await;
    let profile = result?;
    if let (Some(path), Some(png)) = (&avatar_out, &profile.avatar) {
        std::fs::write(path, png)
            .with_context(|| format!("cannot write the avatar to {}", path.display()))?;
    }
    let p = &profile.profile;
    ctx.print(
        JsonLine::Profile {
            user: whose.as_str(),
            signature: &p.signature,
            avatar_version: p.avatar_version.as_deref(),
            updated_ms: p.updated_ms,
            avatar_bytes: Some(profile.avatar.as_ref().map_or(0, Vec::len)),
            avatar_from_cache: Some(profile.avatar_from_cache),
        },
        || human_profile(&whose, &profile, avatar_out.as_deref()),
    );
    Ok(())
}

/// `whose` profile in human form: the signature, then the avatar's size and where it was
/// saved (or how to save it).
fn human_profile(
    whose: &uchat_wire::UserName,
    profile: &Profile,
    avatar_out: Option<&std::path::Path>,
) -> String {
    let p = &profile.profile;
    let signature = if p.signature.is_empty() {
        "(no signature)"
    } else {
        &p.signature
    };
    let avatar = match (&profile.avatar, avatar_out) {
        (Some(png), Some(path)) => {
            format!("avatar: {} bytes, saved to {}", png.len(), path.display())
        }
        (Some(png), None) => format!(
            "avatar: {} bytes (save it with --avatar-out FILE.png)",
            png.len()
        ),
        (None, _) => "no avatar".to_string(),
    };
    format!("{whose}: {signature}\n{avatar}")
}

/// `uchat profile set`: changes the signature and/or avatar, all checked before the
/// password is asked for.
async fn set_profile(
    ctx: &Invocation,
    signature: Option<String>,
    avatar: Option<PathBuf>,
    remove_avatar: bool,
) -> Result<()> {
    anyhow::ensure!(
        signature.is_some() || avatar.is_some() || remove_avatar,
        "nothing to change: give --signature TEXT, --avatar PICTURE or --remove-avatar"
    );
    // Checked before asking for the password or connecting.
    let new_avatar = match (avatar, remove_avatar) {
        (Some(path), _) => Some(NewAvatar::Png(avatar_from_file(&path)?)),
        (None, true) => Some(NewAvatar::Remove),
        (None, false) => None,
    };
    if let Some(signature) = &signature {
        uchat_wire::msg::social::check_signature(signature)?;
    }
    let client = ctx.open().await?;
    let result = client
        .social()
        .set_profile(signature.as_deref(), new_avatar)
        .await;
    let me = client.me().clone();
    client.close().await;
    let p = result?;
    ctx.print(
        JsonLine::Profile {
            user: me.as_str(),
            signature: &p.signature,
            avatar_version: p.avatar_version.as_deref(),
            updated_ms: p.updated_ms,
            avatar_bytes: None,
            avatar_from_cache: None,
        },
        || "profile updated".to_string(),
    );
    Ok(())
}
