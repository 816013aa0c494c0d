//! The screenshot tour (`uchat-gui --tour DIR`): visits each main screen in turn, saves a
//! PNG of the window for each with egui's own screenshot, and closes the window. At the
//! call stop it writes `DIR/PREFIX.waiting-for-call`, so a script knows when to call. Used by
//! `scripts/screenshots` to show what people see, in the README.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui;

use crate::app::Screen;

/// One stop of the tour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A screen (with the first chat open on the chats screen).
    Screen(Screen),
    /// Wait for a call to ring, picture the dialog.
    IncomingCall,
    /// Answer it and picture the call after a few seconds.
    InCall,
}

impl Stop {
    /// The file name of its picture.
    pub fn name(self) -> &'static str {
        match self {
            Stop::Screen(Screen::Chats) => "chat",
            Stop::Screen(Screen::Contacts) => "contacts",
            Stop::Screen(Screen::Groups) => "groups",
            Stop::Screen(Screen::Moments) => "moments",
            Stop::Screen(Screen::Profile) => "profile",
            Stop::Screen(Screen::Settings) => "settings",
            Stop::IncomingCall => "call-incoming",
            Stop::InCall => "call",
        }
    }
}

/// How long each stop settles before its picture (lists load, images decode).
const SETTLE: Duration = Duration::from_millis(2500);
/// How long the tour waits for a call to ring.
const RING_WAIT: Duration = Duration::from_secs(60);

/// Where the tour stands.
#[derive(Debug)]
pub struct Tour {
    dir: PathBuf,
    /// A prefix for the file names (e.g. the user's name).
    prefix: String,
    stops: Vec<Stop>,
    at: usize,
    arrived: Option<Instant>,
    shot_requested: bool,
    shots: (
        std::sync::mpsc::Sender<std::sync::Arc<egui::ColorImage>>,
        std::sync::mpsc::Receiver<std::sync::Arc<egui::ColorImage>>,
    ),
    /// Set once every stop is pictured.
    pub done: bool,
}

impl Tour {
    /// A tour of `stops`, pictures saved as `DIR/PREFIX-NAME.png`.
    pub fn new(dir: PathBuf, prefix: String, stops: Vec<Stop>) -> Tour {
        Tour {
            dir,
            prefix,
            stops,
            at: 0,
            arrived: None,
            shot_requested: false,
            shots: std::sync::mpsc::channel(),
            done: false,
        }
    }

    /// The stop the tour is at.
    pub fn stop(&self) -> Option<Stop> {
        self.stops.get(self.at).copied()
    }

    /// Called each frame once the app is ready: `ready` says whether the stop's content is
    /// there (for a call: it rings). Returns true when the app should move on to the next
    /// stop (the picture was saved).
    pub fn frame(&mut self, ctx: &egui::Context, ready: bool) -> bool {
        if self.done {
            return false;
        }
        let arrived = *self.arrived.get_or_insert_with(|| {
            // Tell whoever drives the tour (scripts/screenshots) that a call may ring now.
            if self.stops.get(self.at) == Some(&Stop::IncomingCall) {
                let marker = self.dir.join(format!("{}.waiting-for-call", self.prefix));
                let _ = std::fs::write(marker, b"");
            }
            Instant::now()
        });
        if let Ok(image) = self.shots.1.try_recv() {
            self.save(&image);
            self.at += 1;
            self.arrived = None;
            self.shot_requested = false;
            if self.at >= self.stops.len() {
                self.done = true;
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            return true;
        }
        let waited = arrived.elapsed();
        let ring_timed_out = self.stop() == Some(Stop::IncomingCall) && waited > RING_WAIT;
        if !self.shot_requested && ((ready && waited > SETTLE) || ring_timed_out) {
            self.shot_requested = true;
            let (shots, repaint) = (self.shots.0.clone(), ctx.clone());
            ctx.request_screenshot(move |image| {
                let _ = shots.send(image);
                repaint.request_repaint();
            });
        }
        ctx.request_repaint_after(Duration::from_millis(100));
        false
    }

    fn save(&self, image: &egui::ColorImage) {
        let Some(stop) = self.stop() else {
            return;
        };
        let path = self
            .dir
            .join(format!("{}-{}.png", self.prefix, stop.name()));
        let [width, height] = image.size;
        let bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
        let result = std::fs::create_dir_all(&self.dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                image::RgbaImage::from_raw(width as u32, height as u32, bytes)
                    .ok_or_else(|| "bad screenshot size".to_string())?
                    .save(&path)
                    .map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => eprintln!("uchat-gui: saved {}", path.display()),
            Err(e) => eprintln!("uchat-gui: cannot save {}: {e}", path.display()),
        }
    }
}
