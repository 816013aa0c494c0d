//! `uchat group …`.
//!
//! Every command takes in pending events first (when the relay is reachable), so the local
//! view of a group (its members and epoch) is current before anything is sent or shown.

use anyhow::{Context, Result};
use clap::Subcommand;
use uchat_peer::Client;
use uchat_wire::UserName;

use crate::output::{JsonLine, group_line, human_group};
use crate::{CATCH_UP_TIMEOUT, Invocation, parse_user, read_text};

/// `uchat group …`
#[derive(Subcommand, Debug)]
pub(crate) enum GroupCommand {
    /// Make a group you own, with some of your friends in it
    Create {
        name: String,
        /// Friends to add, comma-separated (U1,U2)
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
    },
    /// List the groups you are in
    List,
    /// List a group's members (#NAME or the group's id)
    Members { group: String },
    /// Add a friend to a group you own
    Invite { group: String, user: String },
    /// Remove a member from a group you own
    Kick { group: String, user: String },
    /// Leave a group (if you own it, the longest-standing member takes it over)
    Leave { group: String },
    /// Send a text message to a group ("-" reads the text from standard input)
    Send { group: String, text: String },
    /// Send a file or picture to a group; progress on stderr. Run again after an
    /// interruption, it finishes that send (never sending the file twice)
    SendFile {
        group: String,
        path: std::path::PathBuf,
        /// The name the members see (default: the file's own)
        #[arg(long)]
        name: Option<String>,
        /// Send it as a new message even if an earlier run sent this very file already
        #[arg(long)]
        again: bool,
    },
}

pub(crate) async fn group(ctx: &Invocation, command: GroupCommand) -> Result<()> {
    // Read before connecting, so a bad argument costs no password prompt.
    let text = match &command {
        GroupCommand::Send { text, .. } => Some(read_text(ctx, text)?),
        _ => None,
    };
    let client = ctx.open().await?;
    // Offline, a message still goes into the outbox (as `send` does); everything else
    // then fails with the connection error.
    let caught_up = match client.is_online() {
        true => client.catch_up(CATCH_UP_TIMEOUT).await,
        false => Ok(()),
    };
    let result = match caught_up {
        Ok(()) => run(ctx, &client, command, text).await,
        Err(e) => Err(e.into()),
    };
    client.close().await;
    result
}

fn parse_members(raw: &[String]) -> Result<Vec<UserName>> {
    raw.iter()
        .filter(|m| !m.trim().is_empty())
        .map(|m| parse_user(m.trim()))
        .collect()
}

/// Runs one `uchat group` command on the open, caught-up `client`; `text` is what `send`
/// read before connecting.
async fn run(
    ctx: &Invocation,
    client: &Client,
    command: GroupCommand,
    text: Option<String>,
) -> Result<()> {
    match command {
        GroupCommand::Create { name, members } => create(ctx, client, &name, &members).await?,
        GroupCommand::List => {
            for group in client.groups().list().await? {
                ctx.print(group_line(&group), || human_group(&group));
            }
        }
        GroupCommand::Members { group } => list_members(ctx, client, &group).await?,
        GroupCommand::Invite { group, user } => invite(ctx, client, &group, &user).await?,
        GroupCommand::Kick { group, user } => {
            let user = parse_user(&user)?;
            let id = resolve(client, &group).await?;
            let info = client.groups().kick(id, &user).await?;
            ctx.print(group_line(&info), || human_group(&info));
        }
        GroupCommand::Leave { group } => leave(ctx, client, &group).await?,
        GroupCommand::SendFile {
            group,
            path,
            name,
            again,
        } => {
            let id = resolve(client, &group).await?;
            crate::file::send(
                ctx,
                client,
                uchat_peer::FileTarget::Group(id),
                &path,
                name.as_deref(),
                again,
            )
            .await?;
        }
        GroupCommand::Send { group, .. } => send_text(ctx, client, &group, text).await?,
    }
    Ok(())
}

/// `uchat group create`: makes the group, with a note naming the friends who could not
/// be added.
async fn create(ctx: &Invocation, client: &Client, name: &str, members: &[String]) -> Result<()> {
    let members = parse_members(members)?;
    let group = client.groups().create(name, &members).await?;
    let missing: Vec<&UserName> = members.iter().filter(|m| !group.has_member(m)).collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|m| m.as_str()).collect();
        eprintln!(
            "uchat: note: {} could not be added to the group",
            names.join(", ")
        );
    }
    ctx.print(group_line(&group), || human_group(&group));
    Ok(())
}

/// `uchat group members`: one line per member, the owner marked.
async fn list_members(ctx: &Invocation, client: &Client, group: &str) -> Result<()> {
    let id = resolve(client, group).await?;
    let info = client.groups().get(id).await?;
    for member in &info.members {
        ctx.print(
            JsonLine::GroupMember {
                group: info.id.to_string(),
                user: member.user.as_str(),
                owner: member.user == info.owner,
                joined_ms: member.joined_ms,
            },
            || {
                let owner = if member.user == info.owner {
                    " (owner)"
                } else {
                    ""
                };
                format!("{}{owner}", member.user)
            },
        );
    }
    Ok(())
}

/// `uchat group invite`: adds `user`, with a note if the relay did not take them in.
async fn invite(ctx: &Invocation, client: &Client, group: &str, user: &str) -> Result<()> {
    let user = parse_user(user)?;
    let id = resolve(client, group).await?;
    let info = client.groups().invite(id, &user).await?;
    if !info.has_member(&user) {
        eprintln!("uchat: note: {user} could not be added to the group");
    }
    ctx.print(group_line(&info), || human_group(&info));
    Ok(())
}

/// `uchat group leave`: leaves the group (an owner's group passes to the longest-standing
/// member).
async fn leave(ctx: &Invocation, client: &Client, group: &str) -> Result<()> {
    let id = resolve(client, group).await?;
    client.groups().leave(id).await?;
    ctx.print(
        JsonLine::Done {
            action: "leave_group",
            user: client.me().as_str(),
        },
        || format!("you left the group {id}"),
    );
    Ok(())
}

/// `uchat group send`: sends `text` (read before connecting) and prints the message id.
async fn send_text(
    ctx: &Invocation,
    client: &Client,
    group: &str,
    text: Option<String>,
) -> Result<()> {
    let id = resolve(client, group).await?;
    let text = text.context("the message text")?;
    let message = client.groups().send_text(id, &text).await?;
    ctx.print(
        JsonLine::Sent {
            id: message.to_string(),
            to: id.to_string(),
            group: Some(id.to_string()),
        },
        || message.to_string(),
    );
    Ok(())
}

/// A group named on the command line, looked up among the local groups and, if it is not
/// there, among the relay's list (a group this peer has not heard of yet).
pub(crate) async fn resolve(client: &Client, name: &str) -> Result<uchat_wire::GroupId> {
    match client.groups().resolve(name) {
        Ok(id) => Ok(id),
        // Offline, the local answer is the best there is.
        Err(local) if !client.is_online() => Err(local.into()),
        Err(_) => {
            client.groups().list().await?;
            Ok(client.groups().resolve(name)?)
        }
    }
}
