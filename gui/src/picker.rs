//! The desktop's file chooser (the XDG portal, or zenity; through `rfd`), run on a thread
//! of its own so that the window keeps drawing while it is open.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::model::Chat;

/// What the chosen files are for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickFor {
    /// To send to this chat.
    Chat(Chat),
    /// Pictures for the moment being written.
    MomentPictures,
    /// The new avatar.
    Avatar,
}

impl PickFor {
    /// Whether several files may be chosen at once.
    fn many(&self) -> bool {
        !matches!(self, PickFor::Avatar)
    }

    /// Whether the chooser offers pictures only.
    fn pictures_only(&self) -> bool {
        !matches!(self, PickFor::Chat(_))
    }
}

/// What became of a file chooser.
#[derive(Debug, PartialEq, Eq)]
pub enum Picked {
    /// These files were chosen.
    Files(PickFor, Vec<PathBuf>),
    /// Nothing was chosen.
    Nothing,
    /// Nothing was chosen so soon after asking that no chooser can have been shown: the
    /// desktop has neither the portal nor zenity.
    NoChooser,
}

/// Sooner than this, "nothing chosen" means no chooser appeared: nobody cancels that fast.
const TOO_SOON: Duration = Duration::from_millis(700);

/// At most one file chooser at a time.
#[derive(Default)]
pub struct FilePicker {
    open: Option<Pending>,
}

struct Pending {
    purpose: PickFor,
    since: Instant,
    answer: mpsc::Receiver<Vec<PathBuf>>,
}

impl FilePicker {
    /// Whether a chooser is open.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Opens the desktop's file chooser for `purpose` titled `title` (several files but
    /// for an avatar, pictures only but for a chat), unless one is open already. `ctx` is
    /// asked to repaint when it closes.
    pub fn open(&mut self, purpose: PickFor, title: &str, ctx: &eframe::egui::Context) {
        if self.is_open() {
            return;
        }
        let (tx, answer) = mpsc::channel();
        let mut dialog = rfd::FileDialog::new().set_title(title);
        if purpose.pictures_only() {
            let extensions = uchat_peer::thumbnail::picture_extensions();
            dialog = dialog.add_filter("Pictures", &extensions);
        }
        if let Some(home) = std::env::var_os("HOME") {
            dialog = dialog.set_directory(home);
        }
        let ctx = ctx.clone();
        let many = purpose.many();
        std::thread::spawn(move || {
            let chosen = if many {
                dialog.pick_files().unwrap_or_default()
            } else {
                dialog.pick_file().into_iter().collect()
            };
            let _ = tx.send(chosen);
            ctx.request_repaint();
        });
        self.open = Some(Pending {
            purpose,
            since: Instant::now(),
            answer,
        });
    }

    /// What the chooser gave, once it has closed.
    pub fn poll(&mut self) -> Option<Picked> {
        let pending = self.open.as_ref()?;
        let chosen = match pending.answer.try_recv() {
            Ok(chosen) => chosen,
            Err(mpsc::TryRecvError::Empty) => return None,
            Err(mpsc::TryRecvError::Disconnected) => Vec::new(),
        };
        let pending = self.open.take()?;
        Some(if !chosen.is_empty() {
            Picked::Files(pending.purpose, chosen)
        } else if pending.since.elapsed() < TOO_SOON {
            Picked::NoChooser
        } else {
            Picked::Nothing
        })
    }
}
