//! `uchat send-file`, `uchat group send-file` and `uchat download`: transfers with a
//! progress bar on standard error (rate and time left; hidden when standard error is not a
//! terminal) and, with `--json`, a `transfer` line saying what this run moved.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use uchat_peer::{Client, FileTarget, Repeat};
use uchat_wire::FileId;

use crate::output::{JsonLine, format_size};
use crate::{CATCH_UP_TIMEOUT, Invocation};

/// A progress bar for a transfer of `what`.
fn bar(what: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, {eta} left",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// Sends the file at `path` to `target`, or finishes an earlier run's send of it (unless
/// `again`).
pub(crate) async fn send(
    ctx: &Invocation,
    client: &Client,
    target: FileTarget,
    path: &Path,
    name: Option<&str>,
    again: bool,
) -> Result<()> {
    let progress = bar("uploading");
    let on_progress = {
        let progress = progress.clone();
        move |done: u64, total: u64| {
            progress.set_length(total);
            progress.set_position(done);
        }
    };
    let repeat = if again {
        Repeat::SendAgain
    } else {
        Repeat::Finish
    };
    let sent = client
        .files()
        .send(&target, path, name, repeat, &on_progress)
        .await;
    progress.finish_and_clear();
    let sent = sent?;
    let (to, group) = match &target {
        FileTarget::User(user) => (user.as_str().to_string(), None),
        FileTarget::Group(group) => (group.to_string(), Some(group.to_string())),
    };
    ctx.print_json(JsonLine::Transfer {
        direction: "upload",
        file: sent.file.file.to_string(),
        bytes: sent.moved.bytes,
        resumed_at: sent.moved.resumed_at,
        total: sent.moved.total,
    });
    ctx.print(
        JsonLine::Sent {
            id: sent.message.to_string(),
            to,
            group,
        },
        || {
            let earlier = if sent.earlier {
                "; an earlier run sent it, so nothing was sent now (--again sends it once more)"
            } else {
                ""
            };
            format!(
                "{} (file {}, {}{earlier})",
                sent.message,
                sent.file.file,
                format_size(sent.file.size)
            )
        },
    );
    Ok(())
}

/// `uchat download FILE_ID DEST`.
pub(crate) async fn download(ctx: &Invocation, file: &str, dest: &Path) -> Result<()> {
    let file = FileId::from_hex(file.trim())?;
    let client = ctx.open().await?;
    let result = async {
        if client.is_online() {
            client.catch_up(CATCH_UP_TIMEOUT).await?;
        }
        let progress = bar("downloading");
        let on_progress = {
            let progress = progress.clone();
            move |done: u64, total: u64| {
                progress.set_length(total);
                progress.set_position(done);
            }
        };
        let saved = client.files().download(file, dest, &on_progress).await;
        progress.finish_and_clear();
        anyhow::Ok(saved?)
    }
    .await;
    client.close().await;
    let saved = result?;
    let path = saved.path.display().to_string();
    ctx.print_json(JsonLine::Transfer {
        direction: "download",
        file: file.to_string(),
        bytes: saved.moved.bytes,
        resumed_at: saved.moved.resumed_at,
        total: saved.moved.total,
    });
    ctx.print(
        JsonLine::Saved {
            file: file.to_string(),
            path: &path,
            size: saved.file.size,
            md5: hex::encode(&saved.file.md5),
        },
        || {
            format!(
                "saved {path} ({}, MD5 checked)",
                format_size(saved.file.size)
            )
        },
    );
    Ok(())
}
