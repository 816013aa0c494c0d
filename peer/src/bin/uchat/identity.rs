//! `uchat safety-number` and `uchat trust`: checking a contact's identity key.

use anyhow::Result;

use crate::output::JsonLine;
use crate::{Invocation, parse_user};

/// Prints the safety number of this user and `user`, and a warning with the new number if
/// `user`'s key on the relay changed since it was pinned.
pub(crate) async fn safety_number(ctx: &Invocation, user: &str) -> Result<()> {
    let with = parse_user(user)?;
    let client = ctx.open().await?;
    let numbers = client.safety_numbers(&with).await?;
    client.close().await;
    ctx.print(
        JsonLine::SafetyNumber {
            user: with.as_str(),
            digits: &numbers.pinned,
            changed_digits: numbers.changed.as_deref(),
        },
        || match &numbers.changed {
            None => numbers.pinned.clone(),
            Some(changed) => format!(
                "{}\nWARNING: {with}'s identity key on the relay has changed since you pinned it.\n\
                 The new key's safety number is {changed}\n\
                 Compare it with {with} in person or on a call, and only if it matches run:\n  \
                 uchat trust {with} '{changed}'",
                numbers.pinned
            ),
        },
    );
    Ok(())
}

/// Pins `user`'s current identity key, if `digits` is its safety number.
pub(crate) async fn trust(ctx: &Invocation, user: &str, digits: &str) -> Result<()> {
    let with = parse_user(user)?;
    let client = ctx.open().await?;
    let result = client.trust(&with, digits).await;
    client.close().await;
    let number = result?;
    ctx.print(
        JsonLine::SafetyNumber {
            user: with.as_str(),
            digits: &number,
            changed_digits: None,
        },
        || format!("now trusting {with}'s current identity key (safety number {number})"),
    );
    Ok(())
}
