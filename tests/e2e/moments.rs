//! Moments (朋友圈) through the CLI contract (`moments post/feed/show/like/unlike/comment/
//! delete`, `listen --json`), and a feed of a thousand posts through the client library.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use uchat_tests::feed::FeedFixture;
use uchat_tests::{
    JsonListener, Peer, TestRelay, befriend, contains_bytes, files_under, json_lines,
};

/// Registers `names` on `relay`, without making anyone friends.
fn users(relay: &TestRelay, names: &[&str]) -> Result<Vec<Peer>> {
    names.iter().map(|n| Peer::register(relay, n)).collect()
}

/// `peer`'s feed (first page of up to 50), as `moment` lines.
fn feed(peer: &Peer) -> Result<Vec<Value>> {
    Ok(
        json_lines(&peer.ok(&["--json", "moments", "feed", "--limit", "50"])?)?
            .into_iter()
            .filter(|l| l["type"] == "moment")
            .collect(),
    )
}

/// The post `id` in `peer`'s feed, if it is there.
fn in_feed(peer: &Peer, id: &str) -> Result<Option<Value>> {
    Ok(feed(peer)?.into_iter().find(|m| m["id"] == id))
}

/// Posts `text` as `peer` with extra arguments; returns the post's id.
fn post(peer: &Peer, text: &str, extra: &[&str]) -> Result<String> {
    let out = peer.ok(&[&["--json", "moments", "post", text], extra].concat())?;
    let line = json_lines(&out)?
        .into_iter()
        .find(|l| l["type"] == "moment_posted")
        .context("a moment_posted line")?;
    Ok(line["id"].as_str().context("an id")?.to_string())
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

fn comment_authors(post: &Value) -> Vec<String> {
    post["comments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["author"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn picture(dir: &Path, name: &str, shade: u8) -> Result<PathBuf> {
    let path = dir.join(name);
    image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 199) as u8, (y % 211) as u8, shade])
    })
    .save(&path)?;
    Ok(path)
}

#[test]
fn friends_see_a_post_a_stranger_cannot_and_the_relay_holds_no_plaintext() -> Result<()> {
    let relay = TestRelay::start()?;
    let peers = users(&relay, &["alice", "bob", "carol", "dave"])?;
    let (alice, bob, carol, dave) = (&peers[0], &peers[1], &peers[2], &peers[3]);
    befriend(alice, bob)?;
    befriend(alice, carol)?;
    let dir = tempfile::tempdir()?;
    let photo = picture(dir.path(), "西湖.png", 40)?;
    let text = "今天去了西湖 moment-secret-7f3a 🌸";
    let id = post(alice, text, &["--image", photo.to_str().context("path")?])?;

    for friend in [bob, carol] {
        let seen = in_feed(friend, &id)?.with_context(|| format!("{} sees it", friend.name))?;
        assert_eq!(seen["author"], "alice");
        assert_eq!(seen["text"], text);
        let images = seen["images"].as_array().context("images")?;
        assert_eq!(images.len(), 1);
        assert_eq!(images[0]["name"], "西湖.png");
        assert!(
            images[0]["thumbnail_bytes"].as_u64().unwrap_or(0) > 0,
            "{seen}"
        );
        assert_eq!(images[0]["width"], 640);
    }
    // The author sees it too.
    assert!(in_feed(alice, &id)?.is_some());
    // The picture downloads in full for a friend.
    let file = in_feed(bob, &id)?.context("post")?["images"][0]["file"]
        .as_str()
        .context("file id")?
        .to_string();
    let saved = dir.path().join("saved");
    bob.ok(&["download", &file, saved.to_str().context("path")?])?;
    assert_eq!(
        std::fs::read(saved.join("西湖.png"))?,
        std::fs::read(&photo)?
    );

    // dave, a stranger, has nothing in his feed and cannot fetch the post or its picture.
    assert!(feed(dave)?.is_empty());
    let err = dave.fails(&["moments", "show", &id])?;
    assert!(err.contains("no post") && err.contains("may see"), "{err}");
    let lines = json_lines(
        &dave
            .run(&["--json", "moments", "show", &id])?
            .stdout_string(),
    )?;
    assert_eq!(lines.last().context("an error line")?["code"], "NoSuchPost");
    let err = dave.fails(&["download", &file, saved.to_str().context("path")?])?;
    assert!(
        err.contains("may not") || err.contains("not allowed"),
        "{err}"
    );

    // A comment, then nothing of either in the relay's data directory or log.
    let said = "好美 comment-secret-91bd";
    bob.ok(&["moments", "comment", &id, said])?;
    let seen = in_feed(alice, &id)?.context("post")?;
    assert_eq!(seen["comments"][0]["text"], said);
    let log = relay.log();
    for file in files_under(relay.data_dir()) {
        let bytes = std::fs::read(&file)?;
        for secret in ["moment-secret-7f3a", "comment-secret-91bd", "西湖"] {
            assert!(
                !contains_bytes(&bytes, secret.as_bytes()),
                "{} holds {secret}",
                file.display()
            );
        }
    }
    assert!(!log.contains("moment-secret-7f3a") && !log.contains("comment-secret-91bd"));
    Ok(())
}

/// The standard output of a finished command, as text.
trait StdoutString {
    fn stdout_string(&self) -> String;
}

impl StdoutString for std::process::Output {
    fn stdout_string(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

#[test]
fn likes_and_comments_reach_the_author_and_only_mutual_friends_see_them() -> Result<()> {
    let relay = TestRelay::start()?;
    let peers = users(&relay, &["alice", "bob", "carol"])?;
    let (alice, bob, carol) = (&peers[0], &peers[1], &peers[2]);
    // carol is alice's friend, not bob's.
    befriend(alice, bob)?;
    befriend(alice, carol)?;
    let id = post(alice, "第一条朋友圈", &[])?;

    // alice is offline when bob likes: she hears of it when she comes back.
    bob.ok(&["moments", "like", &id])?;
    let mut listener = JsonListener::start(alice, 30)?;
    let (_, liked) = listener
        .wait_for(Duration::from_secs(15), |l| {
            l["type"] == "moment_event" && l["kind"] == "liked"
        })
        .context("alice hears of the like made while she was away")?;
    assert_eq!(liked["by"], "bob");
    assert_eq!(liked["post"], id.as_str());
    // Online, she hears of a comment at once, with its text.
    bob.ok(&["moments", "comment", &id, "赞！"])?;
    let (_, commented) = listener
        .wait_for(Duration::from_secs(15), |l| {
            l["type"] == "moment_event" && l["kind"] == "commented"
        })
        .context("alice hears of the comment")?;
    assert_eq!(commented["by"], "bob");
    assert_eq!(commented["text"], "赞！");
    drop(listener);

    // alice replies to bob: bob is told, with whom it answers.
    let mut bobs = JsonListener::start(bob, 30)?;
    alice.ok(&["moments", "comment", &id, "谢谢", "--reply-to", "bob"])?;
    let (_, reply) = bobs
        .wait_for(Duration::from_secs(15), |l| {
            l["type"] == "moment_event" && l["kind"] == "commented"
        })
        .context("bob hears of the reply")?;
    assert_eq!(reply["by"], "alice");
    assert_eq!(reply["reply_to"], "bob");
    drop(bobs);
    carol.ok(&["moments", "like", &id])?;

    // alice sees every like and comment; bob sees his own and alice's, not carol's like;
    // carol sees alice's post but nothing of bob's, not even alice's reply to him.
    let at = |peer: &Peer| -> Result<Value> { in_feed(peer, &id)?.context("the post") };
    let by_alice = at(alice)?;
    assert_eq!(names(&by_alice["likes"]), ["bob", "carol"]);
    assert_eq!(comment_authors(&by_alice), ["bob", "alice"]);
    assert_eq!(by_alice["comments"][1]["reply_to"], "bob");
    let by_bob = at(bob)?;
    assert_eq!(names(&by_bob["likes"]), ["bob"]);
    assert_eq!(comment_authors(&by_bob), ["bob", "alice"]);
    let by_carol = at(carol)?;
    assert_eq!(by_carol["text"], "第一条朋友圈");
    assert_eq!(names(&by_carol["likes"]), ["carol"]);
    assert!(comment_authors(&by_carol).is_empty(), "{by_carol}");

    // Unlike takes it back; deleting a comment removes it.
    bob.ok(&["moments", "unlike", &id])?;
    assert_eq!(names(&at(alice)?["likes"]), ["carol"]);
    let bobs_comment = at(bob)?["comments"][0]["id"]
        .as_str()
        .context("comment id")?
        .to_string();
    let err = carol.fails(&["moments", "delete", &bobs_comment])?;
    assert!(err.contains("no comment"), "{err}");
    bob.ok(&["moments", "delete", &bobs_comment])?;
    assert_eq!(comment_authors(&at(alice)?), ["alice"]);

    // A friend online hears of a new post at once.
    let mut carols = JsonListener::start(carol, 30)?;
    let second = post(alice, "第二条", &[])?;
    let (_, posted) = carols
        .wait_for(Duration::from_secs(15), |l| {
            l["type"] == "moment_event" && l["kind"] == "posted"
        })
        .context("carol hears of the new post")?;
    assert_eq!(posted["by"], "alice");
    assert_eq!(posted["post"], second.as_str());
    Ok(())
}

#[test]
fn removing_a_friend_takes_away_their_view_of_past_posts() -> Result<()> {
    let relay = TestRelay::start()?;
    let peers = users(&relay, &["alice", "bob", "carol"])?;
    let (alice, bob, carol) = (&peers[0], &peers[1], &peers[2]);
    befriend(alice, bob)?;
    befriend(alice, carol)?;
    let first = post(alice, "before", &[])?;
    let second = post(alice, "also before", &[])?;
    assert_eq!(feed(bob)?.len(), 2);

    alice.ok(&["friends", "remove", "bob"])?;
    assert!(feed(bob)?.is_empty(), "bob no longer sees alice's posts");
    for id in [&first, &second] {
        let err = bob.fails(&["moments", "show", id])?;
        assert!(err.contains("no post"), "{err}");
        let err = bob.fails(&["moments", "like", id])?;
        assert!(err.contains("no post"), "{err}");
    }
    assert_eq!(feed(carol)?.len(), 2, "carol still sees them");
    // Friends again, the old posts stay out of bob's reach; a new one is his to see.
    befriend(alice, bob)?;
    assert!(feed(bob)?.is_empty());
    let third = post(alice, "after", &[])?;
    assert_eq!(
        feed(bob)?
            .iter()
            .map(|m| m["id"].clone())
            .collect::<Vec<_>>(),
        [third.as_str()]
    );
    Ok(())
}

#[test]
fn bad_moments_are_refused_clearly_and_nothing_is_stored() -> Result<()> {
    let relay = TestRelay::start()?;
    let peers = users(&relay, &["alice", "bob", "carol"])?;
    let (alice, bob, carol) = (&peers[0], &peers[1], &peers[2]);
    befriend(alice, bob)?;
    befriend(alice, carol)?;
    let dir = tempfile::tempdir()?;

    let err = alice.fails(&["moments", "post", ""])?;
    assert!(err.contains("empty post"), "{err}");
    let long = format!("too-long-marker-{}", "长".repeat(9_984));
    assert_eq!(long.chars().count(), 10_000);
    let err = alice.fails(&["moments", "post", &long])?;
    assert!(
        err.contains("at most 2000 characters") && err.contains("10000"),
        "{err}"
    );
    let mut ten = Vec::new();
    for i in 0..10u8 {
        let path = picture(dir.path(), &format!("p{i}.png"), i * 20)?;
        ten.push("--image".to_string());
        ten.push(path.display().to_string());
    }
    let mut args = vec!["moments", "post", "ten pictures"];
    args.extend(ten.iter().map(String::as_str));
    let err = alice.fails(&args)?;
    assert!(err.contains("at most 9 pictures"), "{err}");
    let not_a_picture = dir.path().join("notes.txt");
    std::fs::write(&not_a_picture, "just text")?;
    let err = alice.fails(&[
        "moments",
        "post",
        "with a text file",
        "--image",
        not_a_picture.to_str().context("path")?,
    ])?;
    assert!(err.contains("not a picture"), "{err}");
    let err = alice.fails(&["moments", "post", "for a stranger", "--to", "dave"])?;
    assert!(err.contains("not your friend"), "{err}");
    // None of them left a post, a picture or text anywhere.
    assert!(feed(alice)?.is_empty() && feed(bob)?.is_empty());
    for file in files_under(relay.data_dir()) {
        let bytes = std::fs::read(&file)?;
        assert!(!contains_bytes(&bytes, b"too-long-marker"));
    }
    let stored_files = relay.data_dir().join("files");
    assert!(
        files_under(&stored_files).is_empty(),
        "no picture was uploaded"
    );

    // A post for bob alone: carol cannot comment on or like what she cannot see.
    let for_bob = post(alice, "只给 bob 看", &["--to", "bob"])?;
    assert!(in_feed(carol, &for_bob)?.is_none());
    let err = carol.fails(&["moments", "comment", &for_bob, "let me in"])?;
    assert!(err.contains("no post"), "{err}");
    let err = carol.fails(&["moments", "like", &for_bob])?;
    assert!(err.contains("no post"), "{err}");
    let err = bob.fails(&["moments", "comment", &for_bob, " "])?;
    assert!(err.contains("empty comment"), "{err}");
    let err = bob.fails(&["moments", "comment", &for_bob, "hi", "--reply-to", "carol"])?;
    assert!(err.contains("reply to"), "{err}");
    let err = bob.fails(&["moments", "delete", &for_bob])?;
    assert!(err.contains("only its author"), "{err}");
    let seen = in_feed(alice, &for_bob)?.context("the post")?;
    assert!(
        seen["comments"].as_array().is_some_and(Vec::is_empty),
        "{seen}"
    );
    assert!(
        seen["likes"].as_array().is_some_and(Vec::is_empty),
        "{seen}"
    );

    // Deleted, it is gone for everyone, and liking it is refused.
    alice.ok(&["moments", "delete", &for_bob])?;
    assert!(in_feed(bob, &for_bob)?.is_none() && in_feed(alice, &for_bob)?.is_none());
    let err = bob.fails(&["moments", "like", &for_bob])?;
    assert!(err.contains("no post") && err.contains("deleted"), "{err}");
    let err = alice.fails(&["moments", "show", "not-an-id"])?;
    assert!(err.contains("not a post id"), "{err}");
    Ok(())
}

#[test]
fn the_feed_pages_through_a_thousand_posts_from_twenty_friends() -> Result<()> {
    let relay = TestRelay::start_for_many_users()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let fixture = FeedFixture::populate(
            &relay.addr,
            Some(relay.fingerprint.parse()?),
            "pg",
            20,
            50,
            Duration::from_secs(600),
        )
        .await?;
        assert_eq!(fixture.posted.len(), 1_000);
        let mut shown = Vec::new();
        let mut before = None;
        let mut pages = 0;
        loop {
            let page = fixture.viewer.moments().feed(before, 30).await?;
            pages += 1;
            assert!(
                page.posts.len() <= 30 && !page.posts.is_empty(),
                "page {pages}"
            );
            for moment in &page.posts {
                assert_eq!(moment.problem, None, "every post opens");
                shown.push((moment.id, moment.text.clone().unwrap_or_default()));
            }
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
            assert!(pages < 100, "paging does not end");
        }
        let distinct: HashSet<_> = shown.iter().map(|(id, _)| *id).collect();
        assert_eq!(distinct.len(), shown.len(), "no post is shown twice");
        let mut newest_first = fixture.posted.clone();
        newest_first.reverse();
        assert_eq!(
            shown, newest_first,
            "every post, newest first, none missing"
        );
        assert_eq!(pages, 34);
        fixture.close().await;
        anyhow::Ok(())
    })
}
