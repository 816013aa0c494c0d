//! `uchat-gui`: the Uchat desktop app.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use uchat_gui::i18n::Lang;
use uchat_gui::tour::{Stop, Tour};
use uchat_gui::worker::AudioSettings;
use uchat_gui::{AppOptions, Screen, UchatApp};

/// Uchat desktop app: end-to-end encrypted chat through your own relay.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Profile directory (keys, history, downloads); the same one the `uchat` CLI uses.
    #[arg(long, env = "UCHAT_HOME")]
    home: Option<PathBuf>,
    /// The relay offered on the sign-in screen, HOST:PORT.
    #[arg(long, env = "UCHAT_RELAY", default_value = "127.0.0.1:7700")]
    relay: String,
    /// Language: en or zh-CN (default: the system's).
    #[arg(long, env = "UCHAT_LANG")]
    lang: Option<String>,
    /// Send this 48 kHz WAV file in calls instead of the microphone.
    #[arg(long)]
    audio_in: Option<PathBuf>,
    /// Write what calls play to this WAV file instead of the speaker.
    #[arg(long)]
    audio_out: Option<PathBuf>,
    /// Pin the relay's certificate up front (sha256:<hex>, printed by uchat-relay at start)
    /// instead of comparing it on first use.
    #[arg(long, env = "UCHAT_RELAY_FINGERPRINT")]
    relay_fingerprint: Option<String>,
    /// Read the password from the first line of standard input and unlock the profile
    /// this directory holds at start (or set UCHAT_PASSWORD).
    #[arg(long)]
    password_stdin: bool,
    /// Take the screenshot tour: save a PNG of each main screen into DIR, then close.
    #[arg(long, value_name = "DIR")]
    tour: Option<PathBuf>,
    /// With --tour: also wait for a call to ring, answer it and picture the call.
    #[arg(long)]
    tour_call: bool,
    /// Window size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1100x720")]
    size: String,
}

fn main() -> Result<()> {
    // The local offset can only be read safely while the process has one thread.
    let utc_offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let lang = match cli.lang.as_deref() {
        Some(value) => Some(
            Lang::parse(value)
                .with_context(|| format!("--lang takes en or zh-CN, not {value:?}"))?,
        ),
        None => None,
    };
    let (width, height) = cli
        .size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<f32>().ok()?, h.parse::<f32>().ok()?)))
        .with_context(|| {
            format!(
                "--size takes WIDTHxHEIGHT such as 1100x720, not {:?}",
                cli.size
            )
        })?;
    let home = cli.home.unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".uchat")
    });
    let password = if cli.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        Some(line.trim_end_matches(['\r', '\n']).to_string())
    } else {
        std::env::var("UCHAT_PASSWORD").ok()
    };
    let relay_fingerprint = cli
        .relay_fingerprint
        .as_deref()
        .map(str::parse::<uchat_wire::CertFingerprint>)
        .transpose()
        .context("--relay-fingerprint takes sha256:<hex>, as uchat-relay prints it at start")?;
    let tour = cli.tour.map(|dir| {
        let mut stops = vec![
            Stop::Screen(Screen::Chats),
            Stop::Screen(Screen::Contacts),
            Stop::Screen(Screen::Groups),
            Stop::Screen(Screen::Moments),
            Stop::Screen(Screen::Settings),
        ];
        if cli.tour_call {
            stops.extend([Stop::IncomingCall, Stop::InCall]);
        }
        let prefix = uchat_peer::Client::whoami(&home)
            .ok()
            .flatten()
            .map_or_else(|| "uchat".to_string(), |(user, _)| user.to_string());
        Tour::new(dir, prefix, stops)
    });
    let options = AppOptions {
        password,
        relay_fingerprint,
        tour,
        home,
        relay: cli.relay,
        lang,
        audio: AudioSettings {
            input_wav: cli.audio_in,
            output_wav: cli.audio_out,
            ..AudioSettings::default()
        },
        utc_offset,
    };
    let native = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("Uchat")
            .with_inner_size([width, height])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "Uchat",
        native,
        Box::new(move |cc| {
            let font = uchat_gui::fonts::install_cjk_font(&cc.egui_ctx);
            let app = UchatApp::new(options, font)?;
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| {
        anyhow::anyhow!("cannot open the window: {e} (is DISPLAY or WAYLAND_DISPLAY set?)")
    })
}
