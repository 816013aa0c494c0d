//! The desktop app, driven through its widgets (egui_kittest) against a real relay: two
//! people register, become friends, talk, make a group, share a moment and call; a relay
//! outage shows a banner and loses nothing typed; and a picture with absurd sides, sent by
//! a hostile client or already stored, shows without a preview instead of crashing the app.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use egui_kittest::kittest::Queryable;
use uchat_gui::i18n::{Lang, Tr};
use uchat_gui::worker::AudioSettings;
use uchat_tests::gui::Gui;
use uchat_tests::{PASSWORD, Peer, TestRelay};

const WAIT: Duration = Duration::from_secs(30);

/// alice's app in English, bob's in Chinese (the harness fails on any glyph no font has,
/// so the Chinese screens prove the CJK font is in use).
fn two_apps(
    relay: &TestRelay,
    dir: &std::path::Path,
    alice_audio: AudioSettings,
    bob_audio: AudioSettings,
) -> Result<(Gui, Gui)> {
    let alice = Gui::register("alice", &dir.join("alice"), relay, Lang::En, alice_audio)?;
    let bob = Gui::register("bob", &dir.join("bob"), relay, Lang::ZhCn, bob_audio)?;
    Ok((alice, bob))
}

/// alice asks bob on the contacts screen; bob accepts on his.
fn befriend_in_the_apps(alice: &mut Gui, bob: &mut Gui) -> Result<()> {
    let zh = Lang::ZhCn;
    alice.ask_friend("bob", "hi, it's alice")?;
    bob.until("the request reaching bob", WAIT, |h| {
        !h.state().model.requests.incoming.is_empty()
    })?;
    bob.click(zh.tr(Tr::Contacts))?;
    bob.wait_for("“hi, it's alice”", WAIT)?;
    bob.click(zh.tr(Tr::Accept))?;
    alice.wait_until_friends_with("bob")
}

#[test]
fn two_people_register_befriend_talk_make_a_group_share_a_moment_and_take_a_call_in_the_app()
-> Result<()> {
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let heard = dir.path().join("bob-heard.wav");
    let said = dir.path().join("alice-says.wav");
    let voice = uchat_peer::voice::analysis::speech_like(4.0, 7);
    uchat_tests::write_wav(&said, &voice)?;
    let (mut alice, mut bob) = two_apps(
        &relay,
        dir.path(),
        AudioSettings {
            input_wav: Some(said),
            ..AudioSettings::default()
        },
        AudioSettings {
            output_wav: Some(heard.clone()),
            ..AudioSettings::default()
        },
    )?;
    let (en, zh) = (Lang::En, Lang::ZhCn);
    befriend_in_the_apps(&mut alice, &mut bob)?;

    // 1:1 messages both ways; bob's arrives in alice's open chat without her doing anything.
    alice.click(en.tr(Tr::Message))?;
    alice.type_into(en.tr(Tr::MessagePlaceholder), "hello bob, dinner tonight?")?;
    alice.click(en.tr(Tr::Send))?;
    alice.until("alice's message being sent", WAIT, |h| {
        status_of(h, "hello bob, dinner tonight?")
            .is_some_and(uchat_peer::store::EntryStatus::is_sent)
    })?;
    bob.click(zh.tr(Tr::Chats))?;
    bob.wait_for(&uchat_gui::i18n::unread(zh, 1), WAIT)?;
    bob.click("alice")?;
    bob.wait_for("hello bob, dinner tonight?", WAIT)?;
    assert!(
        !bob.shows(&uchat_gui::i18n::unread(zh, 1)),
        "opening the chat clears its unread count"
    );
    // Bob has seen it: alice's open chat shows her message as read.
    alice.until("bob's read mark on alice's message", WAIT, |h| {
        status_of(h, "hello bob, dinner tonight?") == Some(uchat_peer::store::EntryStatus::Read)
    })?;
    alice.wait_for("✓✓", WAIT)?;
    bob.type_into(zh.tr(Tr::MessagePlaceholder), "好啊，七点见！")?;
    bob.click(zh.tr(Tr::Send))?;
    alice.wait_for("好啊，七点见！", WAIT)?;

    // A group: alice makes it with bob; both see it; a message in it reaches bob.
    alice.click(en.tr(Tr::Groups))?;
    alice.type_into(en.tr(Tr::GroupName), "周末计划")?;
    alice.tick("bob")?;
    alice.click(en.tr(Tr::Create))?;
    alice.click("周末计划")?;
    alice.wait_for(&uchat_gui::i18n::member_count(en, 2), WAIT)?;
    bob.click(zh.tr(Tr::Groups))?;
    bob.click("周末计划")?;
    bob.wait_for(&uchat_gui::i18n::member_count(zh, 2), WAIT)?;
    alice.click(en.tr(Tr::Message))?;
    alice.type_into(en.tr(Tr::MessagePlaceholder), "去爬山吧")?;
    alice.click(en.tr(Tr::Send))?;
    bob.click(zh.tr(Tr::Message))?;
    bob.wait_for("去爬山吧", WAIT)?;

    // A moment: bob posts, alice sees it and likes it, bob sees the like.
    bob.click(zh.tr(Tr::Moments))?;
    bob.type_into(zh.tr(Tr::MomentPlaceholder), "今天天气真好")?;
    bob.click(zh.tr(Tr::PostMoment))?;
    bob.wait_for("今天天气真好", WAIT)?;
    alice.click(en.tr(Tr::Moments))?;
    alice.wait_for("今天天气真好", WAIT)?;
    alice.click(en.tr(Tr::Like))?;
    alice.wait_for(en.tr(Tr::Unlike), WAIT)?;
    bob.wait_for(&uchat_gui::i18n::liked_by(zh, &["alice"]), WAIT)?;

    // A call: alice calls bob from the chat (her microphone is a WAV file); bob answers
    // the incoming-call dialog; what he hears (written to a WAV) is alice's voice.
    alice.click(en.tr(Tr::Chats))?;
    alice.click("bob")?;
    alice.click(en.tr(Tr::Call))?;
    bob.wait_for(&uchat_gui::i18n::calling_you(zh, "alice"), WAIT)?;
    bob.click(zh.tr(Tr::Answer))?;
    bob.wait_for(zh.tr(Tr::HangUp), WAIT)?;
    bob.wait_for_part(zh.tr(Tr::InCall), WAIT)?;
    // alice's file plays for 4 s; then bob hangs up.
    bob.until("four seconds of voice", Duration::from_secs(20), |h| {
        h.state()
            .model
            .call
            .as_ref()
            .is_some_and(|c| c.stats.len() >= 5)
    })?;
    bob.click(zh.tr(Tr::HangUp))?;
    bob.wait_for_part(zh.tr(Tr::CallEnded), WAIT)?;
    alice.wait_for_part(en.tr(Tr::CallEnded), WAIT)?;
    let heard = uchat_peer::voice::audio::read_wav_mono_48k(&heard).context("bob's recording")?;
    // Each half second is aligned on its own: on a loaded machine the media loop may
    // stall and the jitter buffer then shifts the delay mid-call, which moves the whole
    // recording off one lag though every word is heard (call.rs holds the delay to
    // account on a quiet path; this test is about the app's wiring).
    let fit = uchat_peer::voice::analysis::align(&voice, &heard, 48_000 * 3);
    let windowed = uchat_peer::voice::analysis::windowed_correlation(
        &voice,
        &heard,
        fit.lag,
        48_000 / 2,
        48 * 120,
    );
    eprintln!(
        "bob heard alice at correlation {:.3} overall, {windowed:.3} in half-second windows",
        fit.correlation
    );
    assert!(
        windowed >= 0.8,
        "bob hears alice's voice: {windowed:.3}, {fit:?}"
    );
    Ok(())
}

#[test]
fn losing_the_relay_shows_a_banner_and_what_was_typed_meanwhile_is_sent_when_it_returns()
-> Result<()> {
    let mut relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let en = Lang::En;
    let (mut alice, bob) = alice_in_the_app_with_bob(&relay, &dir.path().join("alice"))?;
    alice.click(en.tr(Tr::Message))?;
    alice.type_into(en.tr(Tr::MessagePlaceholder), "before the outage")?;
    alice.click(en.tr(Tr::Send))?;
    alice.until("the first message being sent", WAIT, |h| {
        status_of(h, "before the outage").is_some_and(uchat_peer::store::EntryStatus::is_sent)
    })?;
    assert!(
        !alice.shows(en.tr(Tr::Reconnecting)),
        "no banner while connected"
    );

    relay.terminate()?;
    alice.wait_for(en.tr(Tr::Reconnecting), WAIT)?;
    alice.type_into(
        en.tr(Tr::MessagePlaceholder),
        "written while the relay was down",
    )?;
    alice.click(en.tr(Tr::Send))?;
    alice.until("the message waiting in the outbox", WAIT, |h| {
        status_of(h, "written while the relay was down")
            == Some(uchat_peer::store::EntryStatus::Pending)
    })?;
    alice.wait_for("written while the relay was down", WAIT)?;
    // Typed but not sent: stays in the composer across the outage.
    alice.type_into(en.tr(Tr::MessagePlaceholder), "a draft, not sent yet")?;

    relay.restart()?;
    alice.until("the banner going away", Duration::from_secs(60), |h| {
        h.state().model.online
    })?;
    assert!(
        !alice.shows(en.tr(Tr::Reconnecting)),
        "the banner is gone once back"
    );
    alice.until("the queued message being sent", WAIT, |h| {
        status_of(h, "written while the relay was down")
            .is_some_and(uchat_peer::store::EntryStatus::is_sent)
    })?;
    let history = bob.history("alice")?;
    let texts: Vec<&str> = history.iter().filter_map(|e| e["text"].as_str()).collect();
    assert_eq!(
        texts,
        ["before the outage", "written while the relay was down"],
        "{history:?}"
    );
    let draft = alice
        .harness
        .query_all_by_label(en.tr(Tr::MessagePlaceholder))
        .find_map(|node| node.value())
        .unwrap_or_default();
    assert_eq!(draft, "a draft, not sent yet");
    Ok(())
}

/// Whether a file whose name `named` accepts is in the loaded history and sent.
fn file_sent(
    harness: &egui_kittest::Harness<'static, uchat_gui::UchatApp>,
    named: impl Fn(&str) -> bool,
) -> bool {
    harness
        .state()
        .model
        .conversations
        .values()
        .flat_map(|c| c.entries())
        .any(|e| e.file.as_ref().is_some_and(|f| named(&f.name)) && e.status.is_sent())
}

/// The status of alice's message `text` in her loaded history.
fn status_of(
    harness: &egui_kittest::Harness<'static, uchat_gui::UchatApp>,
    text: &str,
) -> Option<uchat_peer::store::EntryStatus> {
    harness
        .state()
        .model
        .conversations
        .values()
        .flat_map(|c| c.entries())
        .find(|e| e.text.as_deref() == Some(text))
        .map(|e| e.status)
}

#[test]
fn a_relay_fingerprint_given_up_front_must_match_and_needs_no_comparing() -> Result<()> {
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let en = Lang::En;
    let connect = format!("{} / {}", en.tr(Tr::SignIn), en.tr(Tr::Register));
    let options = |home: &str, fingerprint: &str| -> Result<uchat_gui::AppOptions> {
        Ok(uchat_gui::AppOptions {
            home: dir.path().join(home),
            relay: relay.addr.clone(),
            lang: Some(en),
            audio: AudioSettings::default(),
            utc_offset: time::UtcOffset::UTC,
            password: None,
            tour: None,
            relay_fingerprint: Some(fingerprint.parse()?),
        })
    };

    // Another certificate's fingerprint: the app refuses the relay and names both.
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let mut refused = Gui::start_with("mallory's target", options("refused", &wrong)?)?;
    refused.click(&connect)?;
    refused.wait_for_part(&relay.fingerprint, WAIT)?;
    assert!(
        refused.shows_part(&wrong),
        "the error names the fingerprint given"
    );
    assert!(
        !refused.shows(en.tr(Tr::Username)),
        "nothing is sent to a relay with the wrong certificate"
    );

    // The right one: no first-use comparison to confirm, straight to the account.
    let mut app = Gui::start_with("alice", options("alice", &relay.fingerprint)?)?;
    app.click(&connect)?;
    app.wait_for(en.tr(Tr::RelayFingerprint), WAIT)?;
    assert!(!app.shows(en.tr(Tr::FingerprintTrusted)));
    app.type_into(en.tr(Tr::Username), "alice")?;
    app.type_into(en.tr(Tr::Password), PASSWORD)?;
    app.click(en.tr(Tr::Register))?;
    app.until("signing in", WAIT, |h| h.state().model.me.is_some())?;
    Ok(())
}

#[test]
fn a_picture_pasted_into_a_chat_is_sent_as_a_png_once_confirmed() -> Result<()> {
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let en = Lang::En;
    let alice_home = dir.path().join("alice");
    let (mut alice, bob) = alice_in_the_app_with_bob(&relay, &alice_home)?;
    alice.click(en.tr(Tr::Message))?;

    // A picture far wider than a texture may be (copied from a web page, say): its preview
    // is scaled down to fit.
    let wide = egui::ColorImage::filled([20_000, 2], egui::Color32::BLUE);
    alice.paste_picture(std::sync::Arc::new(wide));
    alice.wait_for_part("20000×2", WAIT)?;
    pictures_are_preview_sized(&alice);
    alice.click(en.tr(Tr::DiscardPicture))?;

    // What was copied: a 40×30 gradient.
    let pixels: Vec<egui::Color32> = (0..30u8)
        .flat_map(|y| (0..40u8).map(move |x| egui::Color32::from_rgb(x * 6, y * 8, 200)))
        .collect();
    let picture = std::sync::Arc::new(egui::ColorImage::new([40, 30], pixels.clone()));
    // Pasting shows it for confirmation; discarding sends nothing.
    alice.paste_picture(picture.clone());
    alice.wait_for_part(en.tr(Tr::PastedPicture), WAIT)?;
    assert!(alice.shows_part("40×30"), "the preview names the size");
    alice.click(en.tr(Tr::DiscardPicture))?;
    assert!(!alice.shows_part(en.tr(Tr::PastedPicture)));
    alice.paste_picture(picture);
    alice.click(en.tr(Tr::SendPicture))?;
    alice.until("the picture sent", WAIT, |h| {
        file_sent(h, |name| name.starts_with("pasted-"))
    })?;
    let pasted_dir = alice_home.join(uchat_gui::pasted::PASTED_DIR);
    alice.until("the pasted file removed once on the relay", WAIT, |_| {
        std::fs::read_dir(&pasted_dir).is_ok_and(|d| d.count() == 0)
    })?;
    drop(alice);

    let files = bob.files_in("alice")?;
    assert_eq!(files.len(), 1, "exactly the one confirmed: {files:?}");
    let file = &files[0];
    assert_eq!(file["mime"], "image/png", "{file}");
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(40), Some(30))
    );
    let dest = dir.path().join("bob's downloads");
    std::fs::create_dir_all(&dest)?;
    let id = file["id"].as_str().context("file id")?;
    bob.ok(&["download", id, dest.to_str().context("path")?])?;
    let saved = std::fs::read_dir(&dest)?
        .next()
        .context("a saved file")??
        .path();
    let got = image::open(&saved)?.to_rgb8();
    let sent: Vec<[u8; 3]> = pixels.iter().map(|c| [c.r(), c.g(), c.b()]).collect();
    let received: Vec<[u8; 3]> = got.pixels().map(|p| p.0).collect();
    assert_eq!(received, sent, "bob gets the pixels alice copied");
    Ok(())
}

#[test]
fn settings_list_the_sound_devices_and_keep_the_one_chosen() -> Result<()> {
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let en = Lang::En;
    let mut app = Gui::register(
        "alice",
        &dir.path().join("alice"),
        &relay,
        en,
        AudioSettings::default(),
    )?;
    app.click(en.tr(Tr::Settings))?;
    app.until("the sound devices listed", WAIT, |h| {
        h.state().model.sound_devices.is_some()
    })?;
    let devices = app
        .harness
        .state()
        .model
        .sound_devices
        .clone()
        .unwrap_or_default();
    eprintln!("sound devices here: {devices:?}");
    // Both choices start at the system's default.
    assert_eq!(app.harness.state().audio_settings().input_device, None);
    assert_eq!(app.harness.state().audio_settings().output_device, None);
    match devices.inputs.first() {
        Some(device) => {
            // Choosing one by its name makes it the one calls open.
            app.choose(en.tr(Tr::InputDevice), &device.name)?;
            assert_eq!(
                app.harness.state().audio_settings().input_device.as_deref(),
                Some(device.id.as_str())
            );
        }
        None => assert!(
            app.shows_part(en.tr(Tr::NoDevicesFound)),
            "says there are none"
        ),
    }
    Ok(())
}

#[test]
fn a_message_while_the_window_is_not_focused_raises_a_desktop_notification() -> Result<()> {
    let relay = TestRelay::start()?;
    let alice = Peer::register(&relay, "alice")?;
    let bob = Peer::register(&relay, "bob")?;
    uchat_tests::befriend(&alice, &bob)?;
    // The real app, in an X server with no window manager (so its window never has the
    // focus), on a private session bus whose traffic is recorded.
    let desktop = uchat_tests::desktop::Desktop::start()?;
    let mut app = desktop.app(alice.home(), "480x360")?;
    let online = (|| -> Result<()> {
        let start = std::time::Instant::now();
        loop {
            let friends = bob.ok(&["--json", "friends", "list"])?;
            if friends.contains(r#""online":true"#) {
                return Ok(());
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(60),
                "alice's app did not come online: {friends}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    })();
    let said = online.and_then(|()| {
        bob.send("alice", "有空吗？ <b>are you free tonight?</b> & after")?;
        desktop.wait_for_on_bus("are you free tonight?", WAIT)
    });
    let _ = app.kill();
    let _ = app.wait();
    let said = said?;
    let call = said
        .split("method call")
        .find(|c| c.contains("member=Notify") && c.contains("are you free tonight?"))
        .context("a Notify call")?;
    assert!(
        call.contains("interface=org.freedesktop.Notifications"),
        "{call}"
    );
    assert!(call.contains(r#"string "Uchat""#), "the app's name: {call}");
    assert!(
        call.contains(r#"string "bob""#),
        "the sender as the title: {call}"
    );
    assert!(call.contains("有空吗？"), "the message's text: {call}");
    // No notification service answers here, so whether it reads markup is unknown: the
    // markup bob wrote is escaped, to show as he wrote it rather than in bold.
    assert!(
        call.contains("&lt;b&gt;are you free tonight?&lt;/b&gt; &amp; after"),
        "the message's markup escaped: {call}"
    );
    Ok(())
}

#[test]
fn with_read_receipts_off_neither_side_sees_read_only_delivered() -> Result<()> {
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let en = Lang::En;
    let (mut alice, bob) = alice_in_the_app_with_bob(&relay, &dir.path().join("alice"))?;
    alice.click(en.tr(Tr::Settings))?;
    alice.tick(en.tr(Tr::SendReadReceipts))?;
    alice.until("read receipts off", WAIT, |h| {
        h.state().model.read_receipts == Some(false)
    })?;

    // bob's message: alice's device says it has it, but opening the chat sends no read.
    let id = bob.send("alice", "did you read this?")?;
    alice.click(en.tr(Tr::Chats))?;
    alice.click("bob")?;
    alice.wait_for("did you read this?", WAIT)?;
    alice.run_until("alice's delivery receipt reaching bob", WAIT, || {
        Ok(bob.status_of("alice", &id)? == "delivered")
    })?;
    // The chat stays open a while longer: still no read receipt.
    let open_until = std::time::Instant::now() + Duration::from_secs(1);
    alice.until(
        "another second in the open chat",
        Duration::from_secs(5),
        |_| std::time::Instant::now() > open_until,
    )?;
    assert_eq!(
        bob.status_of("alice", &id)?,
        "delivered",
        "no read receipt from alice"
    );

    // alice's message: bob reads it and sends his read receipt, which alice does not take.
    alice.type_into(en.tr(Tr::MessagePlaceholder), "hello bob")?;
    alice.click(en.tr(Tr::Send))?;
    alice.until("alice's message sent", WAIT, |h| {
        status_of(h, "hello bob").is_some_and(uchat_peer::store::EntryStatus::is_sent)
    })?;
    bob.history("alice")?;
    alice.until("alice's message delivered", WAIT, |h| {
        status_of(h, "hello bob") == Some(uchat_peer::store::EntryStatus::Delivered)
    })?;
    let shown_until = std::time::Instant::now() + Duration::from_secs(2);
    alice.until(
        "two seconds after bob read it",
        Duration::from_secs(5),
        |h| {
            assert_ne!(
                status_of(h, "hello bob"),
                Some(uchat_peer::store::EntryStatus::Read),
                "alice sees no read receipts while she sends none"
            );
            std::time::Instant::now() > shown_until
        },
    )?;
    Ok(())
}

/// alice registered in the app (in English, on profile directory `home`) and bob, with
/// the CLI, her friend.
fn alice_in_the_app_with_bob(relay: &TestRelay, home: &std::path::Path) -> Result<(Gui, Peer)> {
    let bob = Peer::register(relay, "bob")?;
    let en = Lang::En;
    let mut alice = Gui::register("alice", home, relay, en, AudioSettings::default())?;
    alice.ask_friend("bob", "")?;
    bob.ok(&["friends", "accept", "alice"])?;
    alice.wait_until_friends_with("bob")?;
    Ok((alice, bob))
}

/// Files for alice to share, in `dir`: a text file named `notes_name` (with its size) and
/// a picture for her avatar.
fn files_to_share(dir: &std::path::Path, notes_name: &str) -> Result<(PathBuf, usize, PathBuf)> {
    let notes = dir.join(notes_name);
    let text = "day 1: 香山\n".repeat(100);
    std::fs::write(&notes, &text)?;
    let face = dir.join("face.png");
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]))
        .save(&face)?;
    Ok((notes, text.len(), face))
}

/// bob has exactly one file from alice: `name`, of `size` bytes.
fn bob_has_the_one_file(bob: &Peer, name: &str, size: usize) -> Result<()> {
    let files = bob.files_in("alice")?;
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0]["name"], name);
    assert_eq!(files[0]["size"], size);
    Ok(())
}

#[test]
fn files_dropped_on_the_window_go_to_the_open_chat_or_become_the_avatar() -> Result<()> {
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let en = Lang::En;
    let (mut alice, bob) = alice_in_the_app_with_bob(&relay, &dir.path().join("alice"))?;
    let (notes, size, face) = files_to_share(dir.path(), "旅行计划.txt")?;

    // Onto the open chat: sent to bob.
    alice.click(en.tr(Tr::Message))?;
    alice.drop_file(&notes);
    alice.until("the dropped file sent", WAIT, |h| {
        file_sent(h, |name| name == "旅行计划.txt")
    })?;
    bob_has_the_one_file(&bob, "旅行计划.txt", size)?;

    // Onto the profile: it becomes the avatar to save.
    alice.click(en.tr(Tr::Profile))?;
    alice.drop_file(&face);
    assert_eq!(
        alice.harness.state().inputs_avatar(),
        face.display().to_string()
    );
    alice.click(en.tr(Tr::Save))?;
    alice.run_until("bob seeing alice's avatar", WAIT, || {
        let shown = bob.ok(&["--json", "profile", "show", "alice"])?;
        let line: serde_json::Value = serde_json::from_str(shown.lines().next().unwrap_or("{}"))?;
        Ok(line["avatar_bytes"].as_u64().is_some_and(|n| n > 0))
    })?;
    Ok(())
}

#[test]
fn unread_counts_last_across_restarts_of_the_app_until_the_chat_is_opened() -> Result<()> {
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let zh = Lang::ZhCn;
    let home = dir.path().join("alice");
    let (alice, bob) = alice_in_the_app_with_bob(&relay, &home)?;
    drop(alice);
    let reopen = || reopen(&relay, &home, zh);
    let three_unread = uchat_gui::i18n::unread(zh, 3);

    // Three messages while the app is closed: counted when it starts.
    let mut last = String::new();
    for text in ["一", "二", "三"] {
        last = bob.send("alice", text)?;
    }
    let mut alice = reopen()?;
    alice.wait_for(&three_unread, WAIT)?;
    alice.wait_for("三", WAIT)?;
    drop(alice);

    // Not opened: still unread after another restart, with nothing new arriving.
    let mut alice = reopen()?;
    alice.wait_for(&three_unread, WAIT)?;

    // Opened: read, and bob is told so.
    alice.click("bob")?;
    alice.until("the count cleared", WAIT, |h| {
        h.query_all_by_label(&three_unread).next().is_none()
    })?;
    alice.run_until("alice's read receipt reaching bob", WAIT, || {
        Ok(bob.status_of("alice", &last)? == "read")
    })?;
    drop(alice);

    // And read for good: the chat list shows the last message but no count.
    let mut alice = reopen()?;
    alice.wait_for("三", WAIT)?;
    for _ in 0..10 {
        alice.harness.step();
    }
    assert!(
        !alice.shows_part("条未读"),
        "nothing unread after the chat was opened"
    );
    Ok(())
}

/// How many members `peer` sees in its only group (`None` when it is in none).
fn members_seen_by(peer: &Peer) -> Result<Option<Vec<String>>> {
    let groups = uchat_tests::json_lines(&peer.ok(&["--json", "group", "list"])?)?;
    Ok(groups.first().map(|g| {
        g["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.as_str().or(m["user"].as_str()).map(str::to_string))
            .collect()
    }))
}

/// Steps `app` until `peer`'s view of its group satisfies `done`.
fn until_peer_sees(
    app: &mut Gui,
    peer: &Peer,
    what: &str,
    done: impl Fn(&Option<Vec<String>>) -> bool,
) -> Result<()> {
    app.run_until(what, WAIT, || Ok(done(&members_seen_by(peer)?)))
}

#[test]
fn in_the_app_a_group_is_made_grown_and_pruned_searched_and_left() -> Result<()> {
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let en = Lang::En;
    let (mut alice, bob) = alice_in_the_app_with_bob(&relay, &dir.path().join("alice"))?;
    let carol = Peer::register(&relay, "carol")?;
    carol.ok(&["friends", "add", "alice"])?;
    alice.click(en.tr(Tr::Contacts))?;
    alice.click(en.tr(Tr::Accept))?;
    alice.wait_until_friends_with("carol")?;

    // alice makes the group with bob, then invites carol.
    alice.click(en.tr(Tr::Groups))?;
    alice.type_into(en.tr(Tr::GroupName), "周末爬山")?;
    alice.tick("bob")?;
    alice.click(en.tr(Tr::Create))?;
    alice.click("周末爬山")?;
    alice.wait_for(&uchat_gui::i18n::member_count(en, 2), WAIT)?;
    until_peer_sees(&mut alice, &bob, "bob in the new group", |m| {
        m.as_ref().is_some_and(|m| m.len() == 2)
    })?;
    alice.type_into(en.tr(Tr::InviteWho), "carol")?;
    alice.click(en.tr(Tr::Invite))?;
    alice.wait_for(&uchat_gui::i18n::member_count(en, 3), WAIT)?;
    until_peer_sees(&mut alice, &carol, "carol invited", |m| {
        m.as_ref().is_some_and(|m| m.len() == 3)
    })?;

    // Messages, and the search box over them.
    // (carol's comes last: the chat list shows it as the group's latest.)
    bob.ok(&["group", "send", "#周末爬山", "I'll bring water"])?;
    carol.ok(&["group", "send", "#周末爬山", "周六去香山吗？"])?;
    alice.click(en.tr(Tr::Message))?;
    alice.wait_for("I'll bring water", WAIT)?;
    alice.wait_for("周六去香山吗？", WAIT)?;
    alice.type_into(en.tr(Tr::Search), "香山")?;
    alice.until("the search leaving one message", WAIT, |h| {
        h.query_all_by_label("I'll bring water").next().is_none()
    })?;
    assert!(alice.shows("周六去香山吗？"), "the match stays");
    alice.type_into(en.tr(Tr::Search), "")?;
    alice.wait_for("I'll bring water", WAIT)?;

    // alice removes bob: he is out, carol stays.
    alice.click(en.tr(Tr::Groups))?;
    alice.click("周末爬山")?;
    let kick_bob = alice
        .harness
        .query_all_by_role_and_label(egui::accesskit::Role::Button, en.tr(Tr::Kick))
        .count();
    assert_eq!(kick_bob, 2, "the owner can remove each of the two others");
    // Members are listed in order; bob comes before carol.
    alice
        .harness
        .query_all_by_role_and_label(egui::accesskit::Role::Button, en.tr(Tr::Kick))
        .next()
        .context("a remove button")?
        .click();
    alice.harness.step();
    alice.wait_for(&uchat_gui::i18n::member_count(en, 2), WAIT)?;
    until_peer_sees(&mut alice, &bob, "bob removed", Option::is_none)?;
    until_peer_sees(&mut alice, &carol, "carol without bob", |m| {
        m.as_ref()
            .is_some_and(|m| m.len() == 2 && !m.iter().any(|u| u == "bob"))
    })?;

    // A group alice is only a member of: she leaves it in the app.
    carol.ok(&["group", "create", "读书会", "--members", "alice"])?;
    alice.wait_for("读书会", WAIT)?;
    alice.click("读书会")?;
    assert!(
        !alice.shows(en.tr(Tr::Kick)),
        "only the owner removes members"
    );
    alice.click(en.tr(Tr::Leave))?;
    alice.run_until("carol seeing alice leave", WAIT, || {
        let groups = uchat_tests::json_lines(&carol.ok(&["--json", "group", "list"])?)?;
        let book = groups.iter().find(|g| g["name"] == "读书会");
        Ok(book.and_then(|g| g["members"].as_array().map(Vec::len)) == Some(1))
    })?;
    alice.until("the group gone from alice's list", WAIT, |h| {
        !h.state().model.groups.iter().any(|g| g.name == "读书会")
    })?;
    Ok(())
}

#[test]
fn in_the_app_safety_numbers_match_and_a_changed_key_is_trusted_only_with_its_digits() -> Result<()>
{
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let en = Lang::En;
    let (mut alice, bob) = alice_in_the_app_with_bob(&relay, &dir.path().join("alice"))?;
    let digits = bob.ok(&["safety-number", "alice"])?.trim().to_string();
    alice.click(en.tr(Tr::Contacts))?;
    alice.click(en.tr(Tr::SafetyNumber))?;
    alice.wait_for(&digits, WAIT)?;
    alice.click(en.tr(Tr::Close))?;

    // bob on a new device: new keys, which alice's app flags.
    let laptop = Peer::new(&relay, "bob")?;
    laptop.ok(&["login", "bob", "--new-device"])?;
    alice.until("the changed key flagged", WAIT, |h| {
        h.state()
            .model
            .friends
            .iter()
            .any(|f| f.user.as_str() == "bob" && f.identity_changed)
    })?;
    let changed = laptop.ok(&["safety-number", "alice"])?.trim().to_string();
    alice.click(en.tr(Tr::SafetyNumber))?;
    alice.wait_for(en.tr(Tr::IdentityChanged), WAIT)?;
    alice.wait_for(&changed, WAIT)?;
    // Other digits are refused and change nothing.
    alice.type_into(en.tr(Tr::SafetyNumber), "12345 67890")?;
    alice.click(en.tr(Tr::Trust))?;
    alice.wait_for_part("not the safety number", WAIT)?;
    assert!(
        alice
            .harness
            .state()
            .model
            .friends
            .iter()
            .any(|f| f.user.as_str() == "bob" && f.identity_changed),
        "still flagged"
    );
    // The compared digits: trusted, and the laptop's messages are from a known key.
    alice.click(en.tr(Tr::SafetyNumber))?;
    alice.type_into(en.tr(Tr::SafetyNumber), &changed)?;
    alice.click(en.tr(Tr::Trust))?;
    alice.until("the new key trusted", WAIT, |h| {
        h.state()
            .model
            .friends
            .iter()
            .any(|f| f.user.as_str() == "bob" && !f.identity_changed)
    })?;
    laptop.send("alice", "from my new laptop")?;
    alice.click(en.tr(Tr::Chats))?;
    alice.click("bob")?;
    alice.wait_for("from my new laptop", WAIT)?;
    let entry = alice
        .harness
        .state()
        .model
        .conversation(&uchat_gui::model::Chat::Direct(
            uchat_wire::UserName::parse("bob")?,
        ))
        .and_then(|c| c.last().cloned())
        .context("the laptop's message")?;
    assert_eq!(entry.flags.identity, uchat_peer::store::IdentityFlag::Known);
    Ok(())
}

#[test]
fn chinese_typed_through_an_input_method_is_what_is_sent() -> Result<()> {
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let en = Lang::En;
    let (mut alice, bob) = alice_in_the_app_with_bob(&relay, &dir.path().join("alice"))?;
    alice.click(en.tr(Tr::Message))?;
    alice.type_into(en.tr(Tr::MessagePlaceholder), "ok: ")?;
    // What a pinyin input method sends while composing, then on choosing the characters.
    alice.input_method(&["n", "ni", "ni h", "ni hao"], "你好");
    alice.input_method(&["shi", "shijie"], "世界");
    alice.click(en.tr(Tr::Send))?;
    alice.run_until("bob receiving the message", WAIT, || {
        let got = bob.history("alice")?;
        Ok(got.iter().any(|m| m["text"] == "ok: 你好世界"))
    })?;
    Ok(())
}

/// Clicks `button` in `app` and picks `path` in the file chooser it opens, until `done`.
/// The chooser's window is titled as the button for the portal, or "zenity" (where there
/// is no portal, as here).
fn choose_in_the_app(
    app: &mut Gui,
    button: &str,
    path: &std::path::Path,
    done: impl FnMut(&egui_kittest::Harness<'static, uchat_gui::UchatApp>) -> bool,
) -> Result<()> {
    app.click(button)?;
    let title = format!("^({}|zenity)$", button.trim_end_matches('…'));
    let path = path.to_path_buf();
    let chooser = std::thread::spawn(move || {
        uchat_tests::desktop::choose_in_file_chooser(&title, &path, WAIT)
    });
    let what = format!("{} taking {button:?}'s choice", app.name);
    app.until(&what, WAIT, done)?;
    chooser
        .join()
        .map_err(|_| anyhow::anyhow!("the chooser thread panicked"))?
}

#[test]
fn files_chosen_in_the_desktops_file_chooser_are_sent_or_become_the_avatar() -> Result<()> {
    let desktop = uchat_tests::desktop::Desktop::start()?;
    desktop.run_test_inside(
        "gui::on_a_desktop_files_chosen_in_the_file_chooser_are_sent_or_become_the_avatar",
        &[],
    )
}

#[test]
#[ignore = "needs a display: run by files_chosen_in_the_desktops_file_chooser_are_sent_or_become_the_avatar"]
fn on_a_desktop_files_chosen_in_the_file_chooser_are_sent_or_become_the_avatar() -> Result<()> {
    anyhow::ensure!(std::env::var_os("DISPLAY").is_some(), "no DISPLAY");
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let en = Lang::En;
    let (mut alice, bob) = alice_in_the_app_with_bob(&relay, &dir.path().join("alice"))?;
    // (An ASCII name: xdotool types it into the chooser.)
    let (plan, size, face) = files_to_share(dir.path(), "trip-plan.txt")?;

    // In the chat with bob: the chooser (zenity here, as there is no portal) picks the file.
    alice.click(en.tr(Tr::Message))?;
    choose_in_the_app(&mut alice, en.tr(Tr::ChooseFile), &plan, |h| {
        file_sent(h, |name| name == "trip-plan.txt")
    })?;
    bob_has_the_one_file(&bob, "trip-plan.txt", size)?;

    // On the profile: one picture, which becomes the avatar to save.
    alice.click(en.tr(Tr::Profile))?;
    let want = face.display().to_string();
    choose_in_the_app(&mut alice, en.tr(Tr::ChooseAvatar), &face, |h| {
        h.state().inputs_avatar() == want
    })?;
    Ok(())
}

#[test]
fn without_a_file_chooser_on_the_desktop_the_app_says_what_to_install() -> Result<()> {
    let desktop = uchat_tests::desktop::Desktop::start()?;
    // A PATH without zenity, and a session bus without the portal.
    desktop.run_test_inside(
        "gui::on_a_desktop_without_a_file_chooser_the_app_says_what_to_install",
        &[("PATH", "/nonexistent")],
    )
}

#[test]
#[ignore = "needs a display: run by without_a_file_chooser_on_the_desktop_the_app_says_what_to_install"]
fn on_a_desktop_without_a_file_chooser_the_app_says_what_to_install() -> Result<()> {
    anyhow::ensure!(std::env::var_os("DISPLAY").is_some(), "no DISPLAY");
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let zh = Lang::ZhCn;
    let mut app = Gui::register(
        "alice",
        &dir.path().join("alice"),
        &relay,
        zh,
        AudioSettings::default(),
    )?;
    app.click(zh.tr(Tr::Profile))?;
    app.click(zh.tr(Tr::ChooseAvatar))?;
    app.wait_for_part("apt-get install zenity", WAIT)?;
    assert_eq!(app.harness.state().inputs_avatar(), "", "nothing chosen");
    Ok(())
}

/// A PNG of `width`×`height` black pixels: a few hundred bytes, whatever its sides.
fn black_png(width: u32, height: u32) -> Result<Vec<u8>> {
    let mut png = Vec::new();
    image::RgbaImage::new(width, height)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(png)
}

/// Has `sender`'s next `uchat send-file TO PATH` carry `thumbnail` instead of the one its
/// client would make: what a hostile sender's own client can do. The client resumes the
/// upload recorded in its store for that conversation, path, size and modification time
/// (the key `Files::send` writes) with whatever the record says.
fn plant_thumbnail(
    sender: &Peer,
    to: &str,
    path: &std::path::Path,
    thumbnail: Vec<u8>,
) -> Result<()> {
    let meta = std::fs::metadata(path)?;
    let modified_ms = meta.modified()?.duration_since(std::time::UNIX_EPOCH)?;
    let modified_ms = u64::try_from(modified_ms.as_millis())?;
    let canonical = std::fs::canonicalize(path)?;
    let conversation = uchat_peer::store::ConversationId::direct(&uchat_wire::UserName::parse(to)?);
    let name = path
        .file_name()
        .context("a file name")?
        .to_string_lossy()
        .into_owned();
    let key = uchat_peer::client::pending_upload_key(
        &conversation,
        &canonical,
        meta.len(),
        modified_ms,
        &name,
    );
    let store =
        uchat_peer::store::PeerStore::open(&sender.home().join(uchat_peer::client::STORE_FILE))?;
    store.put_pending_upload(
        &key,
        &uchat_peer::store::PendingUpload {
            file: uchat_peer::store::FileRef {
                file: uchat_wire::FileId([0x5a; 16]),
                name,
                size: meta.len(),
                mime: "image/png".into(),
                md5: Vec::new(),
                key: vec![0x42; 64],
                thumbnail: Some(thumbnail),
                dimensions: None,
                saved_to: None,
            },
            path: canonical.display().to_string(),
            modified_ms,
            conversation,
            created_ms: uchat_gui::model::now_ms(),
            sent_as: None,
        },
    )?;
    Ok(())
}

/// The sides of every picture the app made a texture of (the font atlas aside).
fn picture_sides(harness: &egui_kittest::Harness<'static, uchat_gui::UchatApp>) -> Vec<[usize; 2]> {
    let manager = harness.ctx.tex_manager();
    let manager = manager.read();
    manager
        .allocated()
        .filter(|(_, meta)| meta.name != "egui_font_texture")
        .map(|(_, meta)| meta.size)
        .collect()
}

/// Fails unless every picture `app` shows is at most a thumbnail's size a side.
fn pictures_are_preview_sized(app: &Gui) {
    let side = uchat_peer::thumbnail::THUMBNAIL_SIDE as usize;
    let sides = picture_sides(&app.harness);
    assert!(
        sides.iter().all(|[w, h]| *w <= side && *h <= side),
        "pictures larger than {side} a side: {sides:?}"
    );
}

/// alice's app on `home` started again and unlocked with the tests' password.
fn reopen(relay: &TestRelay, home: &std::path::Path, lang: Lang) -> Result<Gui> {
    Gui::start_with(
        "alice",
        uchat_gui::AppOptions {
            home: home.to_path_buf(),
            relay: relay.addr.clone(),
            lang: Some(lang),
            audio: AudioSettings::default(),
            utc_offset: time::UtcOffset::UTC,
            password: Some(PASSWORD.to_string()),
            tour: None,
            relay_fingerprint: None,
        },
    )
}

/// The row of file `name` of `size` bytes, as a chat shows it in English.
fn file_row(name: &str, size: usize) -> String {
    format!(
        "[{}] {name} ({})",
        Lang::En.tr(Tr::File),
        uchat_gui::i18n::file_size(size as u64)
    )
}

#[test]
fn a_thumbnail_20000_pixels_wide_shows_as_a_file_without_a_preview_and_the_chat_goes_on()
-> Result<()> {
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let en = Lang::En;
    let home = dir.path().join("alice");
    let (mut alice, bob) = alice_in_the_app_with_bob(&relay, &home)?;
    alice.click(en.tr(Tr::Message))?;

    // bob's client sends a picture whose thumbnail is the 20000×1 picture itself.
    let wide = dir.path().join("wide.png");
    let hostile = black_png(20_000, 1)?;
    std::fs::write(&wide, &hostile)?;
    plant_thumbnail(&bob, "alice", &wide, hostile.clone())?;
    bob.ok(&["send-file", "alice", &wide.display().to_string()])?;
    let sent = bob.files_in("alice")?;
    assert_eq!(
        sent[0]["thumbnail_bytes"],
        hostile.len(),
        "the hostile thumbnail is what went out: {sent:?}"
    );
    // Then an honest picture and a message.
    let photo = dir.path().join("photo.png");
    image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([x as u8, y as u8, 90])).save(&photo)?;
    bob.ok(&["send-file", "alice", &photo.display().to_string()])?;
    bob.send("alice", "still there?")?;

    // alice's open chat shows all three, the honest picture with its preview.
    let photo_size = std::fs::metadata(&photo)?.len() as usize;
    alice.wait_for(&file_row("wide.png", hostile.len()), WAIT)?;
    alice.wait_for(&file_row("photo.png", photo_size), WAIT)?;
    alice.wait_for("still there?", WAIT)?;
    alice.until("the honest picture's preview", WAIT, |h| {
        picture_sides(h).contains(&[320, 240])
    })?;
    pictures_are_preview_sized(&alice);
    // alice's client left the hostile thumbnail out as it took the message in.
    let stored = alice
        .harness
        .state()
        .model
        .conversations
        .values()
        .flat_map(|c| c.entries())
        .find_map(|e| e.file.clone().filter(|f| f.name == "wide.png"))
        .context("the file message")?;
    assert_eq!(stored.thumbnail, None);

    // And on every later start the chat opens from what was stored.
    drop(alice);
    let mut alice = reopen(&relay, &home, en)?;
    alice.click("bob")?;
    alice.wait_for(&file_row("wide.png", hostile.len()), WAIT)?;
    alice.wait_for("still there?", WAIT)?;
    pictures_are_preview_sized(&alice);
    Ok(())
}

#[test]
fn pictures_with_absurd_sides_already_stored_or_in_the_feed_show_without_a_preview() -> Result<()> {
    let relay = TestRelay::start()?;
    let dir = tempfile::tempdir()?;
    let en = Lang::En;
    let home = dir.path().join("alice");
    let (alice, _bob) = alice_in_the_app_with_bob(&relay, &home)?;
    drop(alice);

    // In alice's history as an earlier version stored it: bob's picture with a 20000×1
    // thumbnail, then a message.
    let bob = uchat_wire::UserName::parse("bob")?;
    let me = uchat_wire::UserName::parse("alice")?;
    let wide = black_png(20_000, 1)?;
    let picture = |n: u8, name: &str, thumbnail: &[u8]| uchat_peer::store::FileRef {
        file: uchat_wire::FileId([n; 16]),
        name: name.into(),
        size: 1234,
        mime: "image/png".into(),
        md5: vec![0; 16],
        key: vec![n; 64],
        thumbnail: Some(thumbnail.to_vec()),
        dimensions: None,
        saved_to: None,
    };
    let now = uchat_gui::model::now_ms();
    let entry = |n: u8, text: Option<&str>, file: Option<uchat_peer::store::FileRef>| {
        uchat_peer::store::HistoryEntry {
            id: uchat_wire::MessageId([n; 16]),
            conversation: uchat_peer::store::ConversationId::direct(&bob),
            from: bob.clone(),
            to: me.clone(),
            sent_ms: now,
            received_ms: now,
            text: text.map(str::to_string),
            status: uchat_peer::store::EntryStatus::Received,
            flags: uchat_peer::store::EntryFlags::default(),
            group: None,
            group_change: None,
            file,
            position: 0,
        }
    };
    {
        let store = uchat_peer::store::PeerStore::open(&home.join(uchat_peer::client::STORE_FILE))?;
        for stored in [
            entry(1, None, Some(picture(1, "wide.png", &wide))),
            entry(2, Some("stored after it"), None),
        ] {
            store.commit_inbound(&uchat_peer::store::InboundCommit {
                sessions: Vec::new(),
                pin: None,
                from: bob.clone(),
                id: stored.id,
                entry: Some(stored),
                seq: uchat_wire::Seq(0),
                group_session: None,
                group: None,
            })?;
        }
    }
    let mut alice = reopen(&relay, &home, en)?;
    alice.click("bob")?;
    alice.wait_for(&file_row("wide.png", 1234), WAIT)?;
    alice.wait_for("stored after it", WAIT)?;
    pictures_are_preview_sized(&alice);

    // A post in the feed with such a picture, put straight into the window's model (a
    // post's pictures come only from its author's client): it shows as its name.
    let post = uchat_peer::moment::Moment {
        id: uchat_wire::PostId([9; 16]),
        author: bob.clone(),
        posted_ms: now,
        cursor: 1,
        text: Some("看我的新照片".into()),
        problem: None,
        images: vec![picture(3, "wide.png", &wide)],
        likes: Vec::new(),
        comments: Vec::new(),
    };
    alice.until("the feed loaded at the start", WAIT, |h| {
        h.state().model.feed_revision > 0
    })?;
    let app = alice.harness.state_mut();
    app.set_screen(uchat_gui::Screen::Moments);
    app.model.feed = vec![post];
    app.model.feed_revision += 1;
    alice.wait_for("看我的新照片", WAIT)?;
    alice.wait_for(&format!("[{}] wide.png", en.tr(Tr::Picture)), WAIT)?;
    pictures_are_preview_sized(&alice);
    Ok(())
}
