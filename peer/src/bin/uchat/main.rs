//! `uchat`: the command-line client. Parses flags, runs one command against the relay, and
//! prints the result (one JSON object per line with `--json`). On failure it prints one
//! line on stderr (and an `{"type":"error"}` line with `--json`) and exits non-zero.

mod account;
mod call;
mod events;
mod file;
mod group;
mod identity;
mod message;
mod moments;
mod output;
mod social;
mod terminal;

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio::sync::broadcast::error::RecvError;
use uchat_peer::{Client, ClientError, ClientEvent, ClientOptions};
use uchat_wire::{CertFingerprint, UserName};

use output::{JsonLine, entry_line, human_entry};
use uchat_peer::store::{ConversationId, HistoryEntry};

/// Uchat: end-to-end encrypted chat through your own relay.
#[derive(Parser, Debug)]
#[command(name = "uchat", version, about)]
struct Cli {
    /// Relay address HOST:PORT (remembered in the profile after register/login)
    #[arg(long, global = true, env = "UCHAT_RELAY")]
    relay: Option<String>,
    /// Profile directory [default: ~/.uchat]
    #[arg(long, global = true, env = "UCHAT_HOME")]
    home: Option<PathBuf>,
    /// Pin the relay's certificate up front (sha256:<hex>, printed by uchat-relay at start)
    #[arg(long, global = true, env = "UCHAT_RELAY_FINGERPRINT")]
    relay_fingerprint: Option<String>,
    /// Print one JSON object per line
    #[arg(long, global = true)]
    json: bool,
    /// Read the password from the first line of standard input
    #[arg(long, global = true)]
    password_stdin: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create an account (and its identity keys) and log in
    Register { user: String },
    /// Log in again in this profile directory
    Login {
        user: String,
        /// Move the account to this profile directory: make new identity keys and log out
        /// every other device (contacts see the identity change)
        #[arg(long)]
        new_device: bool,
    },
    /// End the session (keys stay, sealed under the password)
    Logout,
    /// Show who is logged in here
    Whoami,
    /// Send a text message ("-" reads the text from standard input)
    Send { user: String, text: String },
    /// Send a file or picture to USER (pictures get a thumbnail); progress on stderr. Run
    /// again after an interruption, it finishes that send (never sending the file twice)
    SendFile {
        user: String,
        path: PathBuf,
        /// The name the recipient sees (default: the file's own)
        #[arg(long)]
        name: Option<String>,
        /// Send it as a new message even if an earlier run sent this very file already
        #[arg(long)]
        again: bool,
    },
    /// Save a received file (FILE_ID from `history` or `listen`) into the folder DEST,
    /// checking every chunk and the MD5; resumes a cut-off download
    Download { file_id: String, dest: PathBuf },
    /// Show the conversation with USER or a group (#NAME or its id), after taking in
    /// pending messages
    History {
        user: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Stay online and print events as they arrive
    Listen {
        /// Stop after this many seconds (default: until Ctrl-C)
        #[arg(long = "for")]
        for_secs: Option<f64>,
    },
    /// Show the digits to compare with a contact to verify their identity
    SafetyNumber { user: String },
    /// Accept a contact's changed identity key: give the new safety number you compared
    /// with them (shown by `safety-number USER`)
    Trust { user: String, digits: String },
    /// Show whether friends are online
    Presence { users: Vec<String> },
    /// Friends and friend requests
    Friends {
        #[command(subcommand)]
        command: social::FriendsCommand,
    },
    /// Your profile (signature, avatar) and your friends'
    Profile {
        #[command(subcommand)]
        command: social::ProfileCommand,
    },
    /// Groups: make, list, invite, kick, leave, send
    Group {
        #[command(subcommand)]
        command: group::GroupCommand,
    },
    /// Moments (朋友圈): post to friends, read the feed, like, comment, delete
    Moments {
        #[command(subcommand)]
        command: moments::MomentsCommand,
    },
    /// Call a friend: rings, talks, hangs up; prints call statistics every second
    Call {
        user: String,
        #[command(flatten)]
        audio: call::AudioArgs,
        /// Give up if nobody answers within this many seconds (default: the relay's ring
        /// timeout)
        #[arg(long = "ring")]
        ring_secs: Option<f64>,
    },
    /// Take a ringing call (waiting for one to ring) and talk
    Answer {
        #[command(flatten)]
        audio: call::AudioArgs,
        /// How long to wait for a call to ring
        #[arg(long = "wait", default_value_t = 60.0)]
        wait_secs: f64,
        /// Only a call from this user
        #[arg(long)]
        from: Option<String>,
    },
    /// Refuse a ringing call (waiting for one to ring)
    Reject {
        /// How long to wait for a call to ring
        #[arg(long = "wait", default_value_t = 60.0)]
        wait_secs: f64,
        /// Only a call from this user
        #[arg(long)]
        from: Option<String>,
    },
}

/// How this command was invoked: the client options from the flags and environment, and
/// the output and password-input choices every subcommand honours.
struct Invocation {
    options: ClientOptions,
    json: bool,
    password_stdin: bool,
}

fn default_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".uchat")
}

/// A flag's number of seconds as a duration, or an error naming the flag.
pub(crate) fn parse_seconds(flag: &str, secs: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| anyhow::anyhow!("{flag} takes a number of seconds, 0 or more; got {secs}"))
}

fn parse_user(raw: &str) -> Result<UserName> {
    UserName::parse(raw).with_context(|| format!("invalid username '{raw}'"))
}

impl Invocation {
    fn password(&self, prompt: &str) -> Result<String> {
        if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            let password = line.trim_end_matches(['\n', '\r']).to_string();
            anyhow::ensure!(!password.is_empty(), "empty password on standard input");
            return Ok(password);
        }
        if let Ok(password) = std::env::var("UCHAT_PASSWORD") {
            return Ok(password);
        }
        rpassword::prompt_password(prompt).context(
            "no password: pass --password-stdin or set UCHAT_PASSWORD (no terminal to prompt on)",
        )
    }

    async fn open(&self) -> Result<Client> {
        let password = self.password("Password: ")?;
        Ok(Client::open(self.options.clone(), &password).await?)
    }

    /// Prints `line` with `--json`, and nothing otherwise.
    fn print_json(&self, line: JsonLine<'_>) {
        if self.json {
            line.print();
        }
    }

    /// Prints `line` with `--json`, and otherwise what `human` makes of it, with control
    /// characters escaped (see `terminal.rs`).
    fn print(&self, line: JsonLine<'_>, human: impl FnOnce() -> String) {
        if self.json {
            line.print();
        } else {
            println!("{}", terminal::shown(&human()));
        }
    }
}

/// How long a command waits for the relay's backlog before giving up.
pub(crate) const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

async fn run(cli: Cli) -> Result<()> {
    let relay_fingerprint = cli
        .relay_fingerprint
        .as_deref()
        .map(|s| s.parse::<CertFingerprint>())
        .transpose()
        .context("invalid --relay-fingerprint")?;
    let ctx = Invocation {
        options: ClientOptions {
            home: cli.home.clone().unwrap_or_else(default_home),
            relay: cli.relay.clone(),
            relay_fingerprint,
        },
        json: cli.json,
        password_stdin: cli.password_stdin,
    };
    match cli.command {
        Command::Register { user } => account::register(&ctx, &user).await?,
        Command::Login {
            user,
            new_device: new_device_allowed,
        } => account::login(&ctx, &user, new_device_allowed).await?,
        Command::Logout => account::logout(&ctx).await?,
        Command::Whoami => account::whoami(&ctx)?,
        Command::Send { user, text } => message::send(&ctx, &user, &text).await?,
        Command::History { user, limit } => {
            let client = ctx.open().await?;
            let listed = history(&client, &user, limit).await;
            client.close().await;
            for entry in &listed? {
                ctx.print(entry_line(entry), || human_entry(entry));
            }
        }
        Command::Listen { for_secs } => listen(&ctx, for_secs).await?,
        Command::SendFile {
            user,
            path,
            name,
            again,
        } => {
            let to = parse_user(&user)?;
            let client = ctx.open().await?;
            let result = file::send(
                &ctx,
                &client,
                uchat_peer::FileTarget::User(to),
                &path,
                name.as_deref(),
                again,
            )
            .await;
            client.close().await;
            result?;
        }
        Command::Download { file_id, dest } => file::download(&ctx, &file_id, &dest).await?,
        Command::Friends { command } => social::friends(&ctx, command).await?,
        Command::Profile { command } => social::profile(&ctx, command).await?,
        Command::Group { command } => group::group(&ctx, command).await?,
        Command::Moments { command } => moments::moments(&ctx, command).await?,
        Command::Call {
            user,
            audio,
            ring_secs,
        } => call::call(&ctx, &user, audio, ring_secs).await?,
        Command::Answer {
            audio,
            wait_secs,
            from,
        } => call::answer(&ctx, audio, wait_secs, from).await?,
        Command::Reject { wait_secs, from } => call::reject(&ctx, wait_secs, from).await?,
        Command::SafetyNumber { user } => identity::safety_number(&ctx, &user).await?,
        Command::Trust { user, digits } => identity::trust(&ctx, &user, &digits).await?,
        Command::Presence { users } => message::presence(&ctx, &users).await?,
    }
    Ok(())
}

/// The message text of `send` and `group send`: `-` reads it from standard input.
pub(crate) fn read_text(ctx: &Invocation, text: &str) -> Result<String> {
    if text != "-" {
        return Ok(text.to_string());
    }
    anyhow::ensure!(
        !ctx.password_stdin,
        "cannot read both the password and the text from standard input; set UCHAT_PASSWORD"
    );
    let mut buf = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)
        .context("cannot read the message text from standard input (is it UTF-8?)")?;
    Ok(buf)
}

/// The conversation `with` names (a user, or a group as `#NAME` or `#ID`: a bare id could
/// be a user name) after taking in pending events.
async fn history(client: &Client, with: &str, limit: usize) -> Result<Vec<HistoryEntry>> {
    client.catch_up(CATCH_UP_TIMEOUT).await?;
    if with.starts_with('#') {
        let conversation = ConversationId::group(group::resolve(client, with).await?);
        let entries = client.history(&conversation, limit)?;
        client.mark_read(&conversation).await?;
        return Ok(entries);
    }
    let user = parse_user(with).or_else(|e| {
        // Not a user name; perhaps a group named without its '#'.
        match client.groups().resolve(with) {
            Ok(_) => anyhow::bail!("'{with}' is a group: name it as '#{with}'"),
            Err(_) => Err(e),
        }
    })?;
    let conversation = ConversationId::direct(&user);
    let entries = client.history(&conversation, limit)?;
    if entries.is_empty() && client.groups().resolve(with).is_ok() {
        anyhow::bail!(
            "no messages with a user '{with}'; for your group of that name use '#{with}'"
        );
    }
    // Shown is seen: the sender gets a read receipt (sent as the client closes).
    if let Err(e) = client.mark_read(&conversation).await {
        tracing::warn!(error = %e, "cannot send a read receipt");
    }
    Ok(entries)
}

async fn listen(ctx: &Invocation, for_secs: Option<f64>) -> Result<()> {
    let run_for = for_secs.map(|s| parse_seconds("--for", s)).transpose()?;
    let client = ctx.open().await?;
    let deadline = run_for.map(|d| tokio::time::Instant::now() + d);
    // One stop future for the whole run, so Ctrl-C works while reconnecting too.
    let stop = async move {
        match deadline {
            Some(at) => tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = tokio::signal::ctrl_c() => {}
            },
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    tokio::pin!(stop);
    // The same receiver keeps getting events across reconnects.
    let mut events = client.subscribe();
    let mut online = client.is_online();
    // Scripts wait for this line to know the listener is in place.
    if online {
        ctx.print_event(&ClientEvent::Reconnected);
    }
    loop {
        if !online {
            let remaining = deadline
                .map(|at| at.saturating_duration_since(tokio::time::Instant::now()))
                .unwrap_or(Duration::MAX);
            tokio::select! {
                // Priority: stopping first.
                biased;
                _ = &mut stop => break,
                reconnected = client.reconnect(remaining) => {
                    reconnected?;
                    online = true;
                }
            }
            continue;
        }
        tokio::select! {
            // Priority: stopping first, then events in arrival order.
            biased;
            _ = &mut stop => break,
            event = events.recv() => match event {
                Ok(event) => {
                    online = !matches!(event, ClientEvent::Disconnected { .. });
                    ctx.print_event(&event);
                    // Printed is seen: a 1:1 message gets its read receipt.
                    if let ClientEvent::Message(m) = &event
                        && m.group.is_none()
                        && m.problem.is_none()
                        && let Err(e) = client.mark_read(&ConversationId::direct(&m.from)).await
                    {
                        tracing::debug!(error = %e, "cannot send a read receipt");
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    eprintln!("uchat: {n} events were not printed (too many at once); they are in the history");
                }
                Err(RecvError::Closed) => break,
            }
        }
    }
    client.close().await;
    Ok(())
}

/// The message id an error is about, if any (a message kept in the outbox).
fn error_message_id(e: &anyhow::Error) -> Option<String> {
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::Queued { id, .. }) => Some(id.to_string()),
        _ => None,
    }
}

fn error_code(e: &anyhow::Error) -> String {
    e.downcast_ref::<ClientError>()
        .and_then(ClientError::code)
        .map(|c| c.to_string())
        .unwrap_or_else(|| "client".to_string())
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("uchat: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(cli)) {
        let message = uchat_wire::describe_error_chain(e.as_ref());
        if json {
            JsonLine::Error {
                code: &error_code(&e),
                message: &message,
                id: error_message_id(&e),
            }
            .print();
        }
        eprintln!("uchat: {}", terminal::shown(&message));
        std::process::exit(1);
    }
}
