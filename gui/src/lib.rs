//! Uchat's desktop app: an egui window over [`uchat_peer`].
//!
//! The network runs in [`worker`] on a tokio runtime of its own; the window ([`app`])
//! sends it [`worker::Command`]s and takes in [`worker::Update`]s into the [`model`] at
//! the start of each frame, so no frame waits on the network or the disk. Every string is
//! in [`i18n`] (English and Simplified Chinese); [`fonts`] makes Chinese render; every
//! picture from the network becomes a texture through [`picture`]'s bounded decode.

pub mod app;
pub mod fonts;
pub mod i18n;
pub mod model;
pub mod notify;
pub mod pasted;
pub mod picker;
pub mod picture;
pub mod tour;
pub mod view;
pub mod worker;

pub use app::{AppOptions, Screen, UchatApp};
