//! The desktop's file chooser (the XDG portal, or zenity; through `rfd`), run on a thread
//! of its own so that the window keeps drawing while it is open.
//!
//! Whether the desktop has a chooser at all is asked, not guessed from how soon "nothing"
//! came back: zenity on the `PATH`, or a portal on the session bus that offers the file
//! chooser. (A guess by time failed on a loaded machine, where failing to reach either
//! took over a second.)

use std::path::PathBuf;
use std::sync::mpsc;

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
    /// No chooser could be shown: the desktop has neither the portal nor zenity.
    NoChooser,
}

/// The bus name of the desktop portal, which offers the file chooser.
const PORTAL: &str = "org.freedesktop.portal.Desktop";

/// Whether `zenity` is an executable file in a folder of `path` (a `PATH` value).
fn zenity_on(path: &std::ffi::OsStr) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path).any(|dir| {
        std::fs::metadata(dir.join("zenity"))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Where the portal serves its interfaces.
const PORTAL_PATH: &str = "/org/freedesktop/portal/desktop";

/// The portal's file chooser interface, which it offers only when a backend (GTK, KDE, ...)
/// can show one.
const FILE_CHOOSER: &str = "org.freedesktop.portal.FileChooser";

/// Whether the session bus has a portal that offers the file chooser (asking starts the
/// portal if it is installed but not running).
fn portal_on_session_bus() -> bool {
    zbus::block_on(async {
        let bus = zbus::Connection::session().await.ok()?;
        let portal = zbus::fdo::IntrospectableProxy::builder(&bus)
            .destination(PORTAL)
            .path(PORTAL_PATH)
            .build()
            .await
            .ok()?;
        let description = portal.introspect().await.ok()?;
        Some(description.contains(FILE_CHOOSER))
    })
    .unwrap_or(false)
}

/// Whether the desktop can show a file chooser.
fn chooser_available() -> bool {
    std::env::var_os("PATH").is_some_and(|path| zenity_on(&path)) || portal_on_session_bus()
}

/// What the chooser's thread hands back.
enum Answer {
    /// What was chosen (nothing, if the chooser was closed).
    Chosen(Vec<PathBuf>),
    /// There is no chooser to show.
    NoChooser,
}

/// At most one file chooser at a time.
#[derive(Default)]
pub struct FilePicker {
    open: Option<Pending>,
}

struct Pending {
    purpose: PickFor,
    answer: mpsc::Receiver<Answer>,
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
            let answer = if !chooser_available() {
                Answer::NoChooser
            } else if many {
                Answer::Chosen(dialog.pick_files().unwrap_or_default())
            } else {
                Answer::Chosen(dialog.pick_file().into_iter().collect())
            };
            let _ = tx.send(answer);
            ctx.request_repaint();
        });
        self.open = Some(Pending { purpose, answer });
    }

    /// What the chooser gave, once it has closed.
    pub fn poll(&mut self) -> Option<Picked> {
        let pending = self.open.as_ref()?;
        let answer = match pending.answer.try_recv() {
            Ok(answer) => answer,
            Err(mpsc::TryRecvError::Empty) => return None,
            Err(mpsc::TryRecvError::Disconnected) => Answer::Chosen(Vec::new()),
        };
        let pending = self.open.take()?;
        Some(match answer {
            Answer::NoChooser => Picked::NoChooser,
            Answer::Chosen(chosen) if chosen.is_empty() => Picked::Nothing,
            Answer::Chosen(chosen) => Picked::Files(pending.purpose, chosen),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zenity_is_found_only_as_an_executable_on_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = std::env::join_paths([std::path::Path::new("/nonexistent"), dir.path()])
            .expect("joins");
        assert!(!zenity_on(&path));
        let zenity = dir.path().join("zenity");
        std::fs::write(&zenity, "#!/bin/sh\n").expect("writes");
        assert!(!zenity_on(&path), "not executable");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&zenity, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(zenity_on(&path));
    }
}
