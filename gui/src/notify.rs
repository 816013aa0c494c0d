//! Desktop notifications: the freedesktop notification service on the session D-Bus
//! (through notify-rust), for new messages and calls while the window is not focused.
//! Talking to the bus may block, so notifications go to a thread of their own; without a
//! notification service (no desktop session) the first failure is logged and the rest
//! are dropped quietly: the window's attention request and title still tell the user.

use std::sync::mpsc::{Receiver, Sender, channel};

use crate::i18n::{self, Lang};

/// Something that wants the user's attention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attention {
    /// A message in a chat (`chat` is its title) with the start of its text.
    Message {
        /// The chat's title: the sender, or the group's name.
        chat: String,
        /// The start of the message (its text, or the file's name).
        preview: String,
    },
    /// `from` is calling.
    Call {
        /// The caller.
        from: String,
    },
}

impl Attention {
    /// The notification's title and body, in `lang`.
    pub fn text(&self, lang: Lang) -> (String, String) {
        match self {
            Attention::Message { chat, preview } => (chat.clone(), preview.clone()),
            Attention::Call { from } => ("Uchat".into(), i18n::calling_you(lang, from)),
        }
    }
}

/// Hands notifications to the desktop from a thread of its own.
#[derive(Debug)]
pub struct Notifier {
    to_thread: Option<Sender<(String, String)>>,
}

impl Notifier {
    /// Starts the notification thread (none if the thread cannot start).
    pub fn start() -> Notifier {
        let (tx, rx) = channel();
        let started = std::thread::Builder::new()
            .name("uchat-notify".into())
            .spawn(move || show_all(rx));
        if let Err(e) = &started {
            tracing::warn!(error = %e, "no desktop notifications: cannot start their thread");
        }
        Notifier {
            to_thread: started.ok().map(|_| tx),
        }
    }

    /// Shows a notification with `summary` and `body`, without waiting.
    pub fn show(&self, summary: String, body: String) {
        if let Some(tx) = &self.to_thread {
            let _ = tx.send((summary, body));
        }
    }
}

fn show_all(notifications: Receiver<(String, String)>) {
    let mut warned = false;
    for (summary, body) in notifications {
        let shown = notify_rust::Notification::new()
            .appname("Uchat")
            .summary(&summary)
            .body(&body)
            .show();
        if let Err(e) = shown
            && !warned
        {
            tracing::warn!(error = %e, "desktop notifications are not available");
            warned = true;
        }
    }
}
