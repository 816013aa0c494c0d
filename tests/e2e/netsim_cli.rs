//! The `uchat-netsim` command line: profiles, and a proxy a user puts between a peer and
//! the relay, which prints its counters when stopped.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use uchat_tests::{Peer, TestRelay, befriend, bin, texts};

#[test]
fn profiles_lists_every_named_network() -> Result<()> {
    let out = Command::new(bin("uchat-netsim")).arg("profiles").output()?;
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout)?;
    for name in ["lan", "wifi", "4g", "3g", "satellite", "lossy"] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing:\n{text}"
        );
    }
    assert!(text.contains("50 ms ± 20 ms, loss 5.0 %"), "{text}");
    Ok(())
}

#[test]
fn a_proxy_carries_chat_and_reports_its_counters_on_sigterm() -> Result<()> {
    let relay = TestRelay::start()?;
    let mut proxy = KillOnDrop(
        Command::new(bin("uchat-netsim"))
            .args([
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                &relay.addr,
            ])
            .args(["--profile", "lossy", "--loss", "10", "--seed", "42"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let mut lines = BufReader::new(proxy.0.stdout.take().context("stdout")?).lines();
    let start = lines.next().context("a start line")??;
    // "uchat-netsim proxy listening on ADDR forwarding to …"
    let addr = start
        .split_whitespace()
        .nth(4)
        .context("an address")?
        .to_string();
    let alice = Peer::via(&addr, "alice")?;
    let bob = Peer::via(&relay.addr, "bob")?;
    alice.ok(&[
        "--relay-fingerprint",
        &relay.fingerprint,
        "register",
        "alice",
    ])?;
    bob.ok(&["register", "bob"])?;
    befriend(&alice, &bob)?;
    for i in 0..3 {
        alice.send("bob", &format!("through netsim {i}"))?;
    }
    assert_eq!(
        texts(&bob.history("alice")?),
        ["through netsim 0", "through netsim 1", "through netsim 2"]
    );
    Command::new("kill")
        .args(["-TERM", &proxy.0.id().to_string()])
        .status()?;
    assert!(proxy.0.wait()?.success());
    let report: Vec<String> = lines.map_while(Result::ok).collect();
    let up = report
        .iter()
        .find(|l| l.starts_with("up:"))
        .context("an up line")?;
    let down = report
        .iter()
        .find(|l| l.starts_with("down:"))
        .context("a down line")?;
    // With 10 % loss each way, the counters must show traffic and drops both ways.
    assert!(count(up, "sent") > 20 && count(up, "dropped") > 0, "{up}");
    assert!(
        count(down, "delivered") > 20 && count(down, "dropped") > 0,
        "{down}"
    );
    Ok(())
}

/// Kills the child process if the test fails before it is stopped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The number after `word` in a counters line ("up:   sent 12, delivered 11, dropped 1 …").
fn count(line: &str, word: &str) -> u64 {
    line.split([',', ':'])
        .map(str::trim)
        .find_map(|part| part.strip_prefix(word))
        .and_then(|rest| rest.trim().split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn bad_proxy_arguments_get_clear_errors() -> Result<()> {
    for (args, expected) in [
        (vec!["--loss", "120"], "percentage from 0 to 100"),
        (vec!["--profile", "moon"], "no profile named"),
        (vec!["--burst-loss", "0.5"], "P_GB,P_BG"),
        (vec!["--nat", "cone"], "cone"),
    ] {
        let out = Command::new(bin("uchat-netsim"))
            .args([
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:9",
            ])
            .args(&args)
            .output()?;
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8(out.stderr)?;
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    Ok(())
}
