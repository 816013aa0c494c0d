//! `uchat register`, `login`, `logout` and `whoami`: the profile directory's account.

use anyhow::Result;
use uchat_peer::Client;

use crate::output::JsonLine;
use crate::{CATCH_UP_TIMEOUT, Invocation, parse_user};

/// Registers `user` on the relay and logs this profile in as them.
pub(crate) async fn register(ctx: &Invocation, user: &str) -> Result<()> {
    let user = parse_user(user)?;
    let password = ctx.password("Choose a password: ")?;
    let client = Client::register(ctx.options.clone(), user.clone(), &password).await?;
    let relay = ctx.options.relay.clone().unwrap_or_default();
    ctx.print(
        JsonLine::Registered {
            user: user.as_str(),
            relay: &relay,
        },
        || format!("registered and logged in as {user} on {relay}"),
    );
    client.close().await;
    Ok(())
}

/// Logs this profile in as `user`; with `new_device_allowed`, a profile without their
/// keys makes new ones (contacts then see the identity change).
pub(crate) async fn login(ctx: &Invocation, user: &str, new_device_allowed: bool) -> Result<()> {
    let user = parse_user(user)?;
    let password = ctx.password("Password: ")?;
    let client = Client::login(
        ctx.options.clone(),
        user.clone(),
        &password,
        new_device_allowed,
    )
    .await?;
    let new_device = client.is_new_device();
    if new_device {
        eprintln!(
            "uchat: this profile directory had no keys for {user}, so new identity keys were made for it; \
             your contacts will see that your identity changed and should compare safety numbers with you"
        );
    }
    client.catch_up(CATCH_UP_TIMEOUT).await?;
    let relay = Client::whoami(&ctx.options.home)
        .ok()
        .flatten()
        .map(|(_, relay)| relay)
        .unwrap_or_default();
    client.close().await;
    ctx.print(
        JsonLine::LoggedIn {
            user: user.as_str(),
            relay: &relay,
            new_device,
        },
        || format!("logged in as {user} on {relay}"),
    );
    Ok(())
}

/// Logs out: the relay forgets this device's session.
pub(crate) async fn logout(ctx: &Invocation) -> Result<()> {
    let client = ctx.open().await?;
    client.logout().await?;
    ctx.print(JsonLine::LoggedOut {}, || "logged out".to_string());
    Ok(())
}

/// Says who this profile is logged in as, and on which relay.
pub(crate) fn whoami(ctx: &Invocation) -> Result<()> {
    let who = Client::whoami(&ctx.options.home)?;
    let (user, relay) = match &who {
        Some((user, relay)) => (Some(user.as_str()), Some(relay.as_str())),
        None => (None, None),
    };
    ctx.print(JsonLine::Whoami { user, relay }, || match (user, relay) {
        (Some(user), Some(relay)) => format!("{user} on {relay}"),
        _ => "not logged in".to_string(),
    });
    Ok(())
}
