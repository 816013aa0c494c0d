//! `uchat send` and `uchat presence`.

use anyhow::Result;

use crate::output::{self, JsonLine};
use crate::{CATCH_UP_TIMEOUT, Invocation, parse_user, read_text, terminal};

/// Sends `text` (`-`: standard input) to `user`; prints its id the moment the relay has it.
pub(crate) async fn send(ctx: &Invocation, user: &str, text: &str) -> Result<()> {
    let to = parse_user(user)?;
    let text = read_text(ctx, text)?;
    let client = ctx.open().await?;
    let result = client.send_text(&to, &text).await;
    if let Ok(id) = &result {
        // Printed the moment the relay has it, so a script never resends a message
        // that was in fact sent.
        ctx.print(
            JsonLine::Sent {
                id: id.to_string(),
                to: to.as_str().to_string(),
                group: None,
            },
            || id.to_string(),
        );
        if client.is_online()
            && let Err(e) = client.catch_up(CATCH_UP_TIMEOUT).await
        {
            let warning = format!("the message was sent, but {e}");
            eprintln!("uchat: warning: {}", terminal::shown(&warning));
        }
    }
    client.close().await;
    result?;
    Ok(())
}

/// Prints whether each of `users` is online, or when they were last seen.
pub(crate) async fn presence(ctx: &Invocation, users: &[String]) -> Result<()> {
    let users = users
        .iter()
        .map(|u| parse_user(u))
        .collect::<Result<Vec<_>>>()?;
    let client = ctx.open().await?;
    let entries = client.presence(users).await?;
    client.close().await;
    for e in &entries {
        ctx.print(
            JsonLine::Presence {
                user: e.user.as_str(),
                online: e.online,
                last_seen_ms: e.last_seen_ms,
            },
            || match (e.online, e.last_seen_ms) {
                (true, _) => format!("{} is online", e.user),
                (false, Some(ms)) => format!(
                    "{} is offline (last seen {} UTC)",
                    e.user,
                    output::format_time(ms)
                ),
                (false, None) => format!("{} is offline", e.user),
            },
        );
    }
    Ok(())
}
