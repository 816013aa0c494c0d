//! Files and pictures through the CLI contract (`send-file`, `group send-file`,
//! `download`, the `file` line): byte-for-byte round trips, resuming after a killed run,
//! access, the relay holding ciphertext only, integrity, and hostile names.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use uchat_wire::{reply, request};

use anyhow::{Context, Result, bail};
use uchat_tests::{Peer, TestRelay, befriend, contains_bytes, files_under, json_lines};

/// A distinctive 64-byte marker planted in files, searched for in the relay's data.
const MARKER: &[u8; 64] = b"UCHAT-PLAINTEXT-MARKER-0123456789abcdefghijklmnopqrstuvwxyz-END!";

/// `len` pseudo-random bytes (xorshift, so tests need no extra crate), with the marker
/// planted at a few places.
fn random_file(path: &Path, len: usize, seed: u64) -> Result<()> {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    for at in [0, len / 3, len - MARKER.len()] {
        bytes[at..at + MARKER.len()].copy_from_slice(MARKER);
    }
    std::fs::write(path, bytes)?;
    Ok(())
}

fn md5_hex(path: &Path) -> Result<String> {
    use md5::{Digest, Md5};
    Ok(hex::encode(Md5::digest(std::fs::read(path)?)))
}

/// The `transfer` line of a run's output.
fn transfer(out: &str) -> Result<serde_json::Value> {
    json_lines(out)?
        .into_iter()
        .find(|l| l["type"] == "transfer")
        .context("a transfer line")
}

fn friends(relay: &TestRelay, names: &[&str]) -> Result<Vec<Peer>> {
    let peers = names
        .iter()
        .map(|n| Peer::register(relay, n))
        .collect::<Result<Vec<_>>>()?;
    befriend(&peers[0], &peers[1])?;
    Ok(peers)
}

#[test]
fn a_50_mib_file_and_a_picture_reach_an_offline_recipient_byte_for_byte() -> Result<()> {
    let relay = TestRelay::start()?;
    let peers = friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);
    let dir = tempfile::tempdir()?;
    let big = dir.path().join("random.bin");
    random_file(&big, 50 << 20, 7)?;
    let picture = dir.path().join("照片.png");
    image::RgbImage::from_fn(800, 600, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, 77])
    })
    .save(&picture)?;

    // bob is offline (no uchat process) while alice uploads both.
    for path in [&big, &picture] {
        let out = alice.ok(&["--json", "send-file", "bob", path.to_str().context("path")?])?;
        let moved = transfer(&out)?;
        assert_eq!(moved["resumed_at"], 0);
        assert_eq!(moved["bytes"], moved["total"]);
    }
    let files = bob.files_in("alice")?;
    assert_eq!(files.len(), 2, "{files:?}");
    assert_eq!(files[0]["name"], "random.bin");
    assert_eq!(files[0]["size"], 50 << 20);
    assert_eq!(files[0]["md5"], md5_hex(&big)?);
    assert_eq!(files[1]["name"], "照片.png");
    assert_eq!(files[1]["mime"], "image/png");
    assert_eq!(
        (files[1]["width"].as_u64(), files[1]["height"].as_u64()),
        (Some(800), Some(600))
    );
    assert!(
        files[1]["thumbnail_bytes"].as_u64().is_some_and(|n| n > 0),
        "{}",
        files[1]
    );

    let dest = dir.path().join("bob's downloads");
    for (file, original) in files.iter().zip([&big, &picture]) {
        let id = file["id"].as_str().context("file id")?;
        let out = bob.ok(&["--json", "download", id, dest.to_str().context("path")?])?;
        let saved = json_lines(&out)?
            .into_iter()
            .find(|l| l["type"] == "saved")
            .context("a saved line")?;
        let path = PathBuf::from(saved["path"].as_str().context("path")?);
        assert_eq!(path.parent(), Some(std::fs::canonicalize(&dest)?.as_path()));
        assert_eq!(md5_hex(&path)?, md5_hex(original)?, "byte for byte");
    }
    // The sender's own history holds them as read (bob's history showed them).
    let sent = alice.files_in("bob")?;
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|f| f["status"] == "read"), "{sent:?}");
    Ok(())
}

/// Runs `uchat ARGS` as `peer` and kills it (SIGKILL) once `halfway()` says so; fails if
/// the run ends by itself first.
fn kill_halfway(peer: &Peer, args: &[&str], halfway: impl Fn() -> bool) -> Result<()> {
    let mut child = peer
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if halfway() {
            child.kill()?;
            child.wait()?;
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("uchat {args:?} ended ({status}) before it was halfway");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("uchat {args:?} never got halfway");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The largest file in `dir` whose name ends with `suffix`.
fn largest(dir: &Path, suffix: &str) -> u64 {
    files_under(dir)
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

#[test]
fn killed_uploads_and_downloads_resume_without_sending_it_all_again() -> Result<()> {
    let relay = TestRelay::start()?;
    let peers = friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("video.bin");
    let size = 50usize << 20;
    random_file(&file, size, 11)?;
    let path = file.to_str().context("path")?;
    let files_dir = relay.data_dir().join("files");

    kill_halfway(alice, &["--json", "send-file", "bob", path], || {
        largest(&files_dir, ".part") as usize > size / 2
    })?;
    let out = alice.ok(&["--json", "send-file", "bob", path])?;
    let moved = transfer(&out)?;
    let (bytes, total) = (
        moved["bytes"].as_u64().context("bytes")?,
        moved["total"].as_u64().context("total")?,
    );
    assert!(
        bytes * 10 < total * 6,
        "the second upload sent {bytes} of {total} bytes"
    );
    assert!(moved["resumed_at"].as_u64() > Some(0));

    let id = bob
        .files_in("alice")?
        .first()
        .and_then(|f| f["id"].as_str().map(String::from))
        .context("bob got the file")?;
    let dest = dir.path().join("dest");
    let dest_str = dest.to_str().context("path")?;
    kill_halfway(bob, &["--json", "download", &id, dest_str], || {
        largest(&dest, ".uchat-part") as usize > size / 2
    })?;
    let out = bob.ok(&["--json", "download", &id, dest_str])?;
    let moved = transfer(&out)?;
    let (bytes, total) = (
        moved["bytes"].as_u64().context("bytes")?,
        moved["total"].as_u64().context("total")?,
    );
    assert!(
        bytes * 10 < total * 6,
        "the second download fetched {bytes} of {total} bytes"
    );
    assert_eq!(md5_hex(&dest.join("video.bin"))?, md5_hex(&file)?);
    assert_eq!(
        files_under(&dest).len(),
        1,
        "no partial file is left: {:?}",
        files_under(&dest)
    );
    Ok(())
}

#[test]
fn only_those_allowed_fetch_a_file_and_the_relay_never_holds_its_plaintext() -> Result<()> {
    let mut relay = TestRelay::start()?;
    let peers = friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);
    let carol = Peer::register(&relay, "carol")?;
    let dave = Peer::register(&relay, "dave")?;
    befriend(alice, &dave)?;
    let dir = tempfile::tempdir()?;
    let secret = dir.path().join("secret.bin");
    random_file(&secret, 300_000, 3)?;
    alice.ok(&["send-file", "bob", secret.to_str().context("path")?])?;
    let id = bob.files_in("alice")?[0]["id"]
        .as_str()
        .context("id")?
        .to_string();
    // carol learned the id somehow; dave is alice's friend, but the file was not for him.
    for outsider in [&carol, &dave] {
        let err =
            outsider.fails(&["download", &id, dir.path().join("x").to_str().context("p")?])?;
        assert!(err.contains("not allowed to download file"), "{err}");
    }
    assert!(!dir.path().join("x").exists() || files_under(&dir.path().join("x")).is_empty());
    // A group file is for the members at upload time.
    alice.ok(&["group", "create", "g", "--members", "dave"])?;
    alice.ok(&["group", "send-file", "#g", secret.to_str().context("path")?])?;
    let group_file = dave
        .history("#g")?
        .into_iter()
        .find(|l| l["type"] == "file")
        .context("dave got the group file")?;
    let group_id = group_file["id"].as_str().context("id")?;
    dave.ok(&[
        "download",
        group_id,
        dir.path().join("dave").to_str().context("p")?,
    ])?;
    let err = bob.fails(&[
        "download",
        group_id,
        dir.path().join("b").to_str().context("p")?,
    ])?;
    assert!(err.contains("not allowed"), "{err}");

    relay.terminate()?;
    let log = relay.log();
    assert!(
        log.contains("file uploaded"),
        "the debug log records transfers:\n{log}"
    );
    assert!(
        !log.contains(std::str::from_utf8(MARKER)?),
        "the relay's log holds the file's plaintext"
    );
    let stored = files_under(relay.data_dir());
    assert!(
        stored
            .iter()
            .any(|p| p.starts_with(relay.data_dir().join("files")))
    );
    for path in stored {
        let bytes = std::fs::read(&path)?;
        assert!(
            !contains_bytes(&bytes, MARKER),
            "{} holds the file's plaintext",
            path.display()
        );
    }
    Ok(())
}

#[test]
fn a_flipped_byte_on_the_relay_fails_the_download_and_leaves_nothing() -> Result<()> {
    let mut relay = TestRelay::start()?;
    let peers = friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("doc.bin");
    random_file(&file, 1 << 20, 5)?;
    alice.ok(&["send-file", "bob", file.to_str().context("path")?])?;
    let id = bob.files_in("alice")?[0]["id"]
        .as_str()
        .context("id")?
        .to_string();
    relay.terminate()?;
    let stored = relay.data_dir().join("files").join(&id);
    let mut bytes = std::fs::read(&stored)?;
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&stored, bytes)?;
    relay.restart()?;

    let dest = dir.path().join("dest");
    let err = bob.fails(&["download", &id, dest.to_str().context("path")?])?;
    assert!(
        err.contains("failed its integrity check at chunk 8"),
        "{err}"
    );
    assert!(
        files_under(&dest).is_empty(),
        "nothing is left: {:?}",
        files_under(&dest)
    );
    Ok(())
}

#[test]
fn hostile_file_names_are_saved_safely_inside_the_destination() -> Result<()> {
    let relay = TestRelay::start()?;
    let peers = friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);
    let dir = tempfile::tempdir()?;
    let content = dir.path().join("content.txt");
    std::fs::write(&content, b"harmless")?;
    let long = "长".repeat(300); // 900 bytes: within what a sender may send, far over a file system's limit
    let names = ["../../etc/passwd", "/abs", "CON", "..", long.as_str()];
    for name in names {
        alice.ok(&[
            "send-file",
            "bob",
            content.to_str().context("p")?,
            "--name",
            name,
        ])?;
    }
    // A local file whose name is not UTF-8, sent under its own name.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = dir
            .path()
            .join(std::ffi::OsStr::from_bytes(b"bad\xff\xfename.txt"));
        std::fs::write(&odd, b"odd")?;
        let status = alice.command(&["send-file", "bob"]).arg(&odd).status()?;
        assert!(status.success());
    }
    let dest = dir.path().join("inbox");
    let files = bob.files_in("alice")?;
    assert!(files.len() >= names.len());
    for file in &files {
        bob.ok(&[
            "download",
            file["id"].as_str().context("id")?,
            dest.to_str().context("p")?,
        ])?;
    }
    let saved = files_under(&dest);
    assert_eq!(saved.len(), files.len(), "{saved:?}");
    let dest = std::fs::canonicalize(&dest)?;
    let mut names: Vec<String> = saved
        .iter()
        .map(|p| {
            assert_eq!(
                p.parent(),
                Some(dest.as_path()),
                "{} is outside",
                p.display()
            );
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    names.sort();
    assert!(names.contains(&"passwd".to_string()), "{names:?}");
    assert!(names.contains(&"abs".to_string()), "{names:?}");
    assert!(names.contains(&"_CON".to_string()), "{names:?}");
    assert!(names.contains(&"file".to_string()), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("长") && n.len() <= 200),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("bad") && n.ends_with("name.txt")),
        "{names:?}"
    );
    assert!(!dir.path().join("etc").exists());
    Ok(())
}

#[test]
fn a_listener_sees_the_file_event_and_the_relay_enforces_size_and_quota() -> Result<()> {
    let relay = TestRelay::start_with(&["--max-file-mib", "2", "--file-quota-mib", "3"])?;
    let peers = friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);
    let dir = tempfile::tempdir()?;
    let small = dir.path().join("note.txt");
    std::fs::write(&small, "生日快乐 🎂")?;
    let mut listener = uchat_tests::JsonListener::start(bob, 20)?;
    alice.ok(&["send-file", "bob", small.to_str().context("p")?])?;
    let (_, event) = listener
        .wait_for(Duration::from_secs(10), |l| l["type"] == "file")
        .context("bob's listener prints the file line")?;
    assert_eq!(event["from"], "alice");
    assert_eq!(event["name"], "note.txt");
    assert_eq!(event["size"], "生日快乐 🎂".len());
    assert_eq!(event["md5"], md5_hex(&small)?);
    drop(listener);

    let big = dir.path().join("big.bin");
    random_file(&big, 3 << 20, 9)?;
    let err = alice.fails(&["send-file", "bob", big.to_str().context("p")?])?;
    assert!(err.contains("over this relay's limit"), "{err}");
    let medium = dir.path().join("medium.bin");
    random_file(&medium, (3 << 19) + 1000, 10)?; // 1.5 MiB: two fill the 3 MiB quota
    alice.ok(&["send-file", "bob", medium.to_str().context("p")?])?;
    let other = dir.path().join("other.bin");
    random_file(&other, (3 << 19) + 2000, 12)?;
    let err = alice.fails(&["send-file", "bob", other.to_str().context("p")?])?;
    assert!(err.contains("do not fit"), "{err}");
    let err = alice.fails(&["send-file", "bob", dir.path().to_str().context("p")?])?;
    assert!(err.contains("is not a file"), "{err}");
    let err = alice.fails(&[
        "send-file",
        "bob",
        dir.path().join("missing").to_str().context("p")?,
    ])?;
    assert!(err.contains("cannot read"), "{err}");
    Ok(())
}

/// A raw connection to the relay logged in as `user` (registered already).
async fn raw_login(relay: &TestRelay, user: &str) -> Result<uchat_peer::connection::RelayLink> {
    use uchat_wire::{PROTOCOL_VERSION, Password, Request, UserName};
    let link = uchat_peer::connection::dial(&relay.addr, Some(relay.fingerprint.parse()?), "known")
        .await?;
    link.request(&Request::Hello(request::Hello {
        protocol: PROTOCOL_VERSION,
        client: "file-test".into(),
    }))
    .await?;
    link.request(&Request::Login(request::Login {
        username: UserName::parse(user)?,
        password: Password::new(uchat_tests::PASSWORD),
    }))
    .await?;
    Ok(link)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_refuses_overlong_uploads_and_a_newer_stream_takes_over_a_stale_one() -> Result<()>
{
    use uchat_wire::{ErrorCode, FileAccess, FileId, Reply, Request, UserName};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let relay = tokio::task::spawn_blocking(|| -> Result<TestRelay> {
        let relay = TestRelay::start()?;
        friends(&relay, &["alice", "bob"])?;
        Ok(relay)
    })
    .await??;
    let access = FileAccess::Users {
        users: vec![UserName::parse("bob")?],
    };
    let upload = |file: FileId, size: u64| {
        Request::UploadFile(request::UploadFile {
            file,
            size,
            access: access.clone(),
        })
    };

    // More bytes than announced: refused, and nothing is stored as complete.
    let alice = raw_login(&relay, "alice").await?;
    let (mut send, mut recv, reply) = alice.open_transfer(&upload(FileId([1; 16]), 1000)).await?;
    assert_eq!(reply, Reply::UploadReady(reply::UploadReady { offset: 0 }));
    let _ = send.write_all(&[0u8; 5000]).await;
    let _ = send.finish();
    match alice.read_reply(&mut recv).await {
        Err(uchat_peer::connection::ConnectionError::Refused(e)) => {
            assert_eq!(e.code, ErrorCode::ProtocolViolation, "{e}");
            assert!(
                e.message.contains("longer than the announced 1000 bytes"),
                "{e}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A stream that stalls halfway (a peer that vanished) is taken over by a newer one,
    // which resumes after what the first delivered.
    let file = FileId([2; 16]);
    let size = 10 * 65_600;
    let (mut stale, _stale_recv, _) = alice.open_transfer(&upload(file, size)).await?;
    stale.write_all(&vec![7u8; 5 * 65_600 + 100]).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = raw_login(&relay, "alice").await?;
    let (mut send, mut recv, reply) = second.open_transfer(&upload(file, size)).await?;
    let Reply::UploadReady(reply::UploadReady { offset }) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(
        offset,
        5 * 65_600,
        "resumes at the last whole chunk received"
    );
    send.write_all(&vec![7u8; (size - offset) as usize]).await?;
    send.finish()?;
    assert_eq!(
        second.read_reply(&mut recv).await?,
        Reply::Uploaded(reply::Uploaded { size })
    );

    // Another user cannot take over (or learn anything about) alice's upload.
    let bob = raw_login(&relay, "bob").await?;
    match bob.open_transfer(&upload(file, size)).await {
        Err(uchat_peer::connection::ConnectionError::Refused(e)) => {
            assert!(e.message.contains("taken by another upload"), "{e}");
        }
        other => panic!("expected a refusal, got {:?}", other.map(|(_, _, r)| r)),
    }
    // bob may download it; an offset that is not a chunk boundary is refused.
    match bob
        .open_transfer(&Request::DownloadFile(request::DownloadFile {
            file,
            offset: 5,
        }))
        .await
    {
        Err(uchat_peer::connection::ConnectionError::Refused(e)) => {
            assert!(e.message.contains("not a chunk boundary"), "{e}");
        }
        other => panic!("expected a refusal, got {:?}", other.map(|(_, _, r)| r)),
    }
    let (_, _, reply) = bob
        .open_transfer(&Request::DownloadFile(request::DownloadFile {
            file,
            offset: 0,
        }))
        .await?;
    assert_eq!(
        reply,
        Reply::DownloadReady(reply::DownloadReady {
            size,
            owner: Some(UserName::parse("alice")?)
        })
    );
    Ok(())
}

#[test]
fn running_send_file_again_finishes_the_earlier_send_and_never_sends_the_file_twice() -> Result<()>
{
    let relay = TestRelay::start()?;
    let peers = friends(&relay, &["alice", "bob"])?;
    let (alice, bob) = (&peers[0], &peers[1]);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("report.bin");
    random_file(&path, 200_000, 7)?;
    let path = path.to_str().context("path")?;
    let first = json_lines(&alice.ok(&["--json", "send-file", "bob", path])?)?;
    let sent_id = |lines: &[serde_json::Value]| -> Result<String> {
        let sent = lines
            .iter()
            .find(|l| l["type"] == "sent")
            .context("a sent line")?;
        Ok(sent["id"].as_str().context("an id")?.to_string())
    };
    let id = sent_id(&first)?;
    // What a user does after an interruption they cannot tell from success: run it again.
    let again = json_lines(&alice.ok(&["--json", "send-file", "bob", path])?)?;
    assert_eq!(sent_id(&again)?, id, "the same message");
    assert_eq!(
        transfer(&alice.ok(&["--json", "send-file", "bob", path])?)?["bytes"],
        0
    );
    let human = alice.ok(&["send-file", "bob", path])?;
    assert!(human.contains("an earlier run sent it"), "{human}");
    assert_eq!(bob.files_in("alice")?.len(), 1);
    // --again means it.
    let more = json_lines(&alice.ok(&["--json", "send-file", "bob", path, "--again"])?)?;
    assert_ne!(sent_id(&more)?, id);
    assert_eq!(bob.files_in("alice")?.len(), 2);
    Ok(())
}
