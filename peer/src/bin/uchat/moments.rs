//! `uchat moments …`: post to friends, read the feed, like, comment, delete.
//!
//! Every command takes in pending events first, so the keys of posts shared while this
//! profile was away are here before the feed is read.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use uchat_peer::Client;
use uchat_peer::moment::Moment;
use uchat_wire::msg::moment::MAX_FEED_PAGE;
use uchat_wire::{CommentId, ErrorCode, PostId};

use crate::output::{JsonLine, MomentCommentLine, MomentImageLine, format_time};
use crate::{CATCH_UP_TIMEOUT, Invocation, parse_user, read_text};

/// `uchat moments …`
#[derive(Subcommand, Debug)]
pub(crate) enum MomentsCommand {
    /// Post to your friends ("-" reads the text from standard input); up to 9 pictures
    Post {
        text: String,
        /// A picture to attach (repeat for more, up to 9)
        #[arg(long = "image")]
        images: Vec<PathBuf>,
        /// Only these friends see it, comma-separated (default: all your friends)
        #[arg(long, value_delimiter = ',')]
        to: Vec<String>,
    },
    /// Your feed, newest first: your posts and your friends'
    Feed {
        /// Posts per page
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Continue after a page: the `next` cursor it printed
        #[arg(long)]
        before: Option<u64>,
    },
    /// One post by its id
    Show { id: String },
    /// Like a post
    Like { id: String },
    /// Take back your like
    Unlike { id: String },
    /// Comment on a post, or reply to someone's comment there
    Comment {
        id: String,
        text: String,
        /// Reply to this person (the author, or someone who commented)
        #[arg(long)]
        reply_to: Option<String>,
    },
    /// Delete your post, or a comment (yours, or one on your post), by its id
    Delete { id: String },
}

fn post_id(raw: &str) -> Result<PostId> {
    PostId::from_hex(raw).with_context(|| format!("'{raw}' is not a post id"))
}

pub(crate) async fn moments(ctx: &Invocation, command: MomentsCommand) -> Result<()> {
    // Read and check before connecting, so a bad argument costs no password prompt.
    if let MomentsCommand::Feed { limit, .. } = &command {
        anyhow::ensure!(
            (1..=MAX_FEED_PAGE).contains(limit),
            "--limit takes 1 to {MAX_FEED_PAGE} posts per page; got {limit}"
        );
    }
    let text = match &command {
        MomentsCommand::Post { text, .. } | MomentsCommand::Comment { text, .. } => {
            Some(read_text(ctx, text)?)
        }
        _ => None,
    };
    let client = ctx.open().await?;
    let result = match client.catch_up(CATCH_UP_TIMEOUT).await {
        Ok(()) => run(ctx, &client, command, text.unwrap_or_default()).await,
        Err(e) => Err(e.into()),
    };
    client.close().await;
    result
}

/// Runs one `uchat moments` command on the open, caught-up `client`; `text` is the post's
/// or comment's text, read before connecting.
async fn run(
    ctx: &Invocation,
    client: &Client,
    command: MomentsCommand,
    text: String,
) -> Result<()> {
    match command {
        MomentsCommand::Post { images, to, .. } => post(ctx, client, &text, &images, &to).await?,
        MomentsCommand::Feed { limit, before } => print_feed(ctx, client, limit, before).await?,
        MomentsCommand::Show { id } => {
            print_moment(ctx, &client.moments().get(post_id(&id)?).await?)
        }
        MomentsCommand::Like { id } => {
            client.moments().like(post_id(&id)?).await?;
            done(ctx, client, "like", "liked");
        }
        MomentsCommand::Unlike { id } => {
            client.moments().unlike(post_id(&id)?).await?;
            done(ctx, client, "unlike", "like taken back");
        }
        MomentsCommand::Comment { id, reply_to, .. } => {
            comment(ctx, client, &id, &text, reply_to.as_deref()).await?;
        }
        MomentsCommand::Delete { id } => delete(ctx, client, &id).await?,
    }
    Ok(())
}

/// `uchat moments post`: posts `text` with `images` to the friends in `to` (all of them
/// if empty), warning about each friend it could not be shared with.
async fn post(
    ctx: &Invocation,
    client: &Client,
    text: &str,
    images: &[PathBuf],
    to: &[String],
) -> Result<()> {
    let to = to
        .iter()
        .map(|u| parse_user(u))
        .collect::<Result<Vec<_>>>()?;
    let audience = (!to.is_empty()).then_some(to.as_slice());
    let posted = client
        .moments()
        .post(text, images, audience, &|_, _| {})
        .await?;
    for (user, why) in &posted.not_shared {
        let warning = format!("the post was not shared with {user}: {why}");
        eprintln!("uchat: warning: {}", crate::terminal::shown(&warning));
    }
    ctx.print(
        JsonLine::MomentPosted {
            id: posted.id.to_string(),
            ts: posted.posted_ms,
            shared_with: posted.shared_with.iter().map(|u| u.as_str()).collect(),
            not_shared: posted.not_shared.iter().map(|(u, _)| u.as_str()).collect(),
        },
        || match posted.shared_with.len() {
            0 => format!("{} (only you can see it)", posted.id),
            1 => format!("{} (shared with 1 friend)", posted.id),
            n => format!("{} (shared with {n} friends)", posted.id),
        },
    );
    Ok(())
}

/// `uchat moments feed`: a page of up to `limit` posts before the cursor `before`, then
/// how to ask for the next page.
async fn print_feed(
    ctx: &Invocation,
    client: &Client,
    limit: u32,
    before: Option<u64>,
) -> Result<()> {
    let page = client.moments().feed(before, limit).await?;
    for moment in &page.posts {
        print_moment(ctx, moment);
    }
    ctx.print(
        JsonLine::MomentPage {
            count: page.posts.len(),
            next: page.next,
        },
        || match page.next {
            Some(next) => format!("-- more: uchat moments feed --before {next}"),
            None => "-- end of feed".to_string(),
        },
    );
    Ok(())
}

/// `uchat moments comment`: comments `text` on post `id`, as a reply to `reply_to` if
/// given, and prints the comment's id.
async fn comment(
    ctx: &Invocation,
    client: &Client,
    id: &str,
    text: &str,
    reply_to: Option<&str>,
) -> Result<()> {
    let reply_to = reply_to.map(parse_user).transpose()?;
    let comment = client
        .moments()
        .comment(post_id(id)?, text, reply_to.as_ref())
        .await?;
    ctx.print(
        JsonLine::Done {
            action: "comment",
            user: client.me().as_str(),
        },
        || comment.to_string(),
    );
    Ok(())
}

/// `uchat moments delete`: deletes the post `id`, or, if there is no such post, the
/// comment `id` (their ids look alike).
async fn delete(ctx: &Invocation, client: &Client, id: &str) -> Result<()> {
    // Post and comment ids look alike: a post first, then a comment.
    let post = post_id(id)?;
    match client.moments().delete(post).await {
        Ok(()) => done(ctx, client, "delete_moment", "post deleted"),
        Err(e) if e.code() == Some(ErrorCode::NoSuchPost) => {
            client.moments().delete_comment(CommentId(post.0)).await?;
            done(ctx, client, "delete_comment", "comment deleted");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

fn done(ctx: &Invocation, client: &Client, action: &str, human: &str) {
    ctx.print(
        JsonLine::Done {
            action,
            user: client.me().as_str(),
        },
        || human.to_string(),
    );
}

fn print_moment(ctx: &Invocation, m: &Moment) {
    let images = m
        .images
        .iter()
        .map(|f| MomentImageLine {
            file: f.file.to_string(),
            name: &f.name,
            size: f.size,
            mime: &f.mime,
            thumbnail_bytes: f.thumbnail.as_ref().map(Vec::len),
            width: f.dimensions.map(|d| d.0),
            height: f.dimensions.map(|d| d.1),
        })
        .collect();
    let comments = m
        .comments
        .iter()
        .map(|c| MomentCommentLine {
            id: c.id.to_string(),
            author: c.author.as_str(),
            reply_to: c.reply_to.as_ref().map(|u| u.as_str()),
            text: &c.text,
            ts: c.commented_ms,
        })
        .collect();
    ctx.print(
        JsonLine::Moment {
            id: m.id.to_string(),
            author: m.author.as_str(),
            text: m.text.as_deref(),
            ts: m.posted_ms,
            cursor: m.cursor,
            images,
            likes: m.likes.iter().map(|l| l.user.as_str()).collect(),
            comments,
            problem: m.problem.as_deref(),
        },
        || human_moment(m),
    );
}

fn human_moment(m: &Moment) -> String {
    let mut out = format!("{} · {} · {}\n", m.author, format_time(m.posted_ms), m.id);
    match (&m.text, &m.problem) {
        (Some(text), _) => out.push_str(&format!("  {text}\n")),
        (None, Some(problem)) => out.push_str(&format!("  [cannot be shown: {problem}]\n")),
        (None, None) => {}
    }
    for f in &m.images {
        out.push_str(&format!(
            "  [picture {} {} bytes: uchat download {} DIR]\n",
            f.name, f.size, f.file
        ));
    }
    if !m.likes.is_empty() {
        let names: Vec<&str> = m.likes.iter().map(|l| l.user.as_str()).collect();
        out.push_str(&format!("  ♥ {}\n", names.join(", ")));
    }
    for c in &m.comments {
        match &c.reply_to {
            Some(to) => out.push_str(&format!("  {} → {}: {}\n", c.author, to, c.text)),
            None => out.push_str(&format!("  {}: {}\n", c.author, c.text)),
        }
    }
    out.trim_end().to_string()
}
