//! A headless desktop for running the real `uchat-gui` binary: an X server (Xvfb, on a
//! display it picks itself), a private D-Bus session bus, and a monitor that records what
//! is said on that bus (desktop notifications among it). Everything stops when dropped.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{PASSWORD, bin};

/// Xvfb, a session bus and its monitor.
pub struct Desktop {
    /// The X display, such as ":5".
    pub display: String,
    /// The session bus address.
    pub bus: String,
    xvfb: Child,
    dbus: Child,
    monitor: Child,
    said: Arc<Mutex<String>>,
}

/// Starts `program` with `args` and reads the first line it prints.
fn first_line(program: &str, args: &[&str]) -> Result<(Child, String)> {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {program}: install xvfb, dbus-daemon and dbus-bin (scripts/test does)"
            )
        })?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep the pipe open (and drained) while the program runs.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(line) if !line.trim().is_empty() => Ok((child, line.trim().to_string())),
        _ => {
            let _ = child.kill();
            bail!("{program} did not start within 20 s")
        }
    }
}

impl Desktop {
    /// Starts the X server, the bus and the monitor.
    pub fn start() -> Result<Desktop> {
        let (xvfb, number) = first_line(
            "Xvfb",
            &[
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x1024x24",
                "-nolisten",
                "tcp",
            ],
        )?;
        let (dbus, bus) = first_line(
            "dbus-daemon",
            &["--session", "--nofork", "--nopidfile", "--print-address=1"],
        )?;
        let mut monitor = Command::new("dbus-monitor")
            .args(["--address", &bus])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start dbus-monitor: install dbus-bin (scripts/test does)")?;
        let mut stdout = monitor.stdout.take().context("stdout")?;
        let said = Arc::new(Mutex::new(String::new()));
        let sink = said.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Ok(Desktop {
            display: format!(":{number}"),
            bus,
            xvfb,
            dbus,
            monitor,
            said,
        })
    }

    /// `uchat-gui` on profile directory `home` (unlocked with the tests' password), on
    /// this display and bus, in a window of `size` ("WIDTHxHEIGHT").
    pub fn app(&self, home: &Path, size: &str) -> Result<Child> {
        Command::new(bin("uchat-gui"))
            .arg("--home")
            .arg(home)
            .args(["--size", size, "--lang", "en"])
            .env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("UCHAT_PASSWORD", PASSWORD)
            .env_remove("UCHAT_HOME")
            .env_remove("UCHAT_RELAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start uchat-gui")
    }

    /// Everything said on the bus so far, as dbus-monitor prints it.
    pub fn bus_log(&self) -> String {
        self.said
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Waits up to `limit` for the bus log to hold `text`.
    pub fn wait_for_on_bus(&self, text: &str, limit: Duration) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let log = self.bus_log();
            if log.contains(text) {
                return Ok(log);
            }
            if Instant::now() > deadline {
                bail!("{text:?} was not said on the session bus within {limit:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Desktop {
    /// Runs the ignored test `test` of this test binary in a process of its own on this
    /// display and bus, with `env` besides (a test cannot change its own environment, and
    /// a file chooser is a program the app starts, which inherits it). Fails with what it
    /// printed unless it ran and passed.
    pub fn run_test_inside(&self, test: &str, env: &[(&str, &str)]) -> Result<()> {
        let out = Command::new(std::env::current_exe()?)
            .args([
                test,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env_remove("WAYLAND_DISPLAY")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {test}"))?;
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || !printed.contains("1 passed") {
            bail!("{test} on the headless desktop failed:\n{printed}");
        }
        Ok(())
    }
}

/// In the file chooser window whose title matches `title` (a regular expression; GTK's
/// chooser, which the portal and zenity show), types `path` into its location bar and
/// presses Enter, as a person choosing that file would; retries while the window stays
/// open. Uses xdotool on `$DISPLAY`.
pub fn choose_in_file_chooser(title: &str, path: &Path, limit: Duration) -> Result<()> {
    let xdotool = |args: &[&str]| -> Result<String> {
        let out = Command::new("xdotool")
            .args(args)
            .stderr(Stdio::null())
            .output()
            .context("cannot run xdotool: install xdotool (scripts/test does)")?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let deadline = Instant::now() + limit;
    let window = loop {
        let found = xdotool(&["search", "--onlyvisible", "--name", title])?;
        if let Some(window) = found.lines().next() {
            break window.to_string();
        }
        if Instant::now() > deadline {
            bail!("no window titled {title:?} appeared within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let path = path.to_str().context("a path xdotool can type")?;
    while !xdotool(&["search", "--onlyvisible", "--name", title])?.is_empty() {
        if Instant::now() > deadline {
            bail!("the file chooser {title:?} did not take {path:?} within {limit:?}");
        }
        // The location bar opens on Ctrl+L; what is typed before it is there is lost.
        xdotool(&["windowfocus", "--sync", &window])?;
        xdotool(&["key", "--window", &window, "ctrl+l"])?;
        std::thread::sleep(Duration::from_millis(500));
        xdotool(&["key", "--window", &window, "ctrl+a"])?;
        xdotool(&["type", "--delay", "30", path])?;
        std::thread::sleep(Duration::from_millis(300));
        xdotool(&["key", "Return"])?;
        std::thread::sleep(Duration::from_millis(1500));
    }
    Ok(())
}

impl Drop for Desktop {
    fn drop(&mut self) {
        for child in [&mut self.monitor, &mut self.dbus, &mut self.xvfb] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
