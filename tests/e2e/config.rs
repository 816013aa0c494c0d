//! The relay's settings from a TOML file, with flags winning over it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

#[test]
fn the_relay_reads_a_toml_config_and_refuses_unknown_keys() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("from-config");
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata = \"{}\"\nmetrics = \"off\"\nidle_timeout_secs = 12\n",
            data.display()
        ),
    )?;
    let mut child = Command::new(uchat_tests::bin("uchat-relay"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let line = BufReader::new(stdout)
        .lines()
        .next()
        .context("a start line")??;
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("uchat-relay listening on 127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains("fingerprint: sha256:"), "{line}");
    assert!(
        data.join("relay.redb").exists(),
        "the data directory comes from the file"
    );

    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisten_port = 5\n")?;
    let out = Command::new(uchat_tests::bin("uchat-relay"))
        .arg("--config")
        .arg(&config)
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr)?;
    assert!(
        err.contains("invalid config file") && err.contains("listen_port"),
        "{err}"
    );
    Ok(())
}
