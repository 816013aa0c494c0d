//! Crash consistency beyond 1:1 (issue #19): the relay is SIGKILLed at seeded random
//! moments while four users run the real `uchat` CLI at once (1:1 and group messages, file
//! uploads of a few MiB, moments with likes and comments), retrying as a user would. After
//! the last restart everything a command acknowledged must be there exactly once: messages
//! in every recipient's history (1:1 in the order sent), files downloading with their MD5,
//! posts, likes and comments in every viewer's feed; and an upload cut off by a kill must
//! resume from the relay's last recorded offset instead of from zero. Running `send-file`
//! again after an interruption must not deliver the file twice either (one kill lands just
//! after an upload ends, while the file's message is on its way). A command that never ends
//! with the relay up fails the test too, after every other check.
//!
//! The kill schedule and each user's plan of commands come from one seed: `UCHAT_CRASH_SEED`
//! or [`DEFAULT_SEED`]; a failure names it. The interleaving of four processes with the
//! kills still depends on timing, so a seed replays the same schedule, not the same race.
//!
//! A user whose command hangs on a relay that died under it gives up (the test SIGKILLs the
//! command a moment after the relay's kill, as Ctrl-C would end it) and runs it again:
//! without that, every command in flight would wait for QUIC's idle timeout, since a
//! restarted relay cannot reset connections it has never heard of.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use uchat_tests::{Peer, TestRelay, files_under, json_lines, register_friends};
use uchat_wire::msg::file::chunk_boundary;

/// The seed CI runs with; `UCHAT_CRASH_SEED` overrides it.
const DEFAULT_SEED: u64 = 19;

/// How many times the relay is SIGKILLed (the issue asks for at least 10).
const KILLS: usize = 12;

/// The users, every two of them friends, all in one group.
const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// The group every user is in.
const GROUP: &str = "#crew";

/// The relay syncs an upload and records its progress every 8 MiB (`COMMIT_EVERY_BYTES` in
/// `relay/src/server/files.rs`): after a kill past this point the upload must resume from
/// the chunk boundary below it, not from zero.
const UPLOAD_COMMIT_BYTES: u64 = 8 << 20;

/// The file whose upload the first kill aims at: large enough to pass one recorded commit
/// and still be uploading.
const BIG_FILE_BYTES: u64 = 16 << 20;

/// The other files: a few MiB, so that timed kills land in some of them too.
const SMALL_FILE_BYTES: u64 = 3 << 20;

/// How long after the relay's kill a command still running is given up. A command never
/// reconnects, so one that was talking to the killed relay can only wait for the idle
/// timeout; this leaves it time to finish local work it was already doing.
const GIVE_UP_AFTER_KILL: Duration = Duration::from_secs(1);

/// No command may take longer than this with the relay up: a command waits at most 60 s
/// for the relay's backlog (`CATCH_UP_TIMEOUT`), so one still running after 70 s is stuck.
const COMMAND_LIMIT: Duration = Duration::from_secs(70);

/// One outage lasts longer than the CLI's 5 s connect timeout, so that commands started
/// meanwhile find the relay unreachable: a message then waits in the outbox (`send` fails
/// naming it) and must go out on a later run.
const LONG_OUTAGE: Duration = Duration::from_millis(6500);

/// Attempts at one action (a user retrying after failures) before the user moves on, and
/// how many of them may start after the kills are over (when every attempt should work).
const TRIES: u32 = 30;
const TRIES_AFTER_KILLS: u32 = 3;

/// Actions in a user's plan; the kills usually end the traffic first.
const PLAN_LEN: usize = 40;

/// The whole run of traffic and kills may not take longer than this.
const CHAOS_LIMIT: Duration = Duration::from_secs(150);

#[test]
fn everything_acknowledged_arrives_exactly_once_across_twelve_relay_sigkills() -> Result<()> {
    let seed = match std::env::var("UCHAT_CRASH_SEED") {
        Ok(raw) => raw
            .trim()
            .parse()
            .with_context(|| format!("UCHAT_CRASH_SEED={raw:?} is not a u64"))?,
        Err(_) => DEFAULT_SEED,
    };
    eprintln!("crash test seed {seed} (rerun with UCHAT_CRASH_SEED={seed})");
    crash_run(seed).with_context(|| format!("crash test failed with UCHAT_CRASH_SEED={seed}"))
}

/// The whole scenario for one seed.
fn crash_run(seed: u64) -> Result<()> {
    let began = Instant::now();
    let mut relay = TestRelay::start()?;
    let peers = register_friends(&relay, &USERS)?;
    let members = USERS[1..].join(",");
    peers[0].ok(&["group", "create", &GROUP[1..], "--members", &members])?;
    let files = tempfile::tempdir()?;
    let sources = Sources::make(files.path())?;
    let setup = began.elapsed();

    let chaos = Chaos::default();
    let ledger = Ledger::default();
    let kill_plan = kill_plan(&mut Rng::new(seed));
    let chaos_began = Instant::now();
    let (kills, workers) = std::thread::scope(|scope| {
        let workers: Vec<_> = peers
            .iter()
            .enumerate()
            .map(|(i, peer)| {
                let plan = user_plan(i, &mut Rng::new(seed ^ (0x9e37_79b9 * (i as u64 + 1))));
                let user = User {
                    peer,
                    chaos: &chaos,
                    ledger: &ledger,
                    rng: Mutex::new(Rng::new(seed.rotate_left(17) ^ i as u64)),
                };
                let sources = &sources;
                scope.spawn(move || user.run(&plan, sources))
            })
            .collect();
        let kills = kill_repeatedly(&mut relay, &chaos, &kill_plan);
        // Whatever happened to the kills, the users must stop.
        chaos.stop.store(true, Ordering::SeqCst);
        let workers: Vec<Result<()>> = workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a user's thread panicked")))
            })
            .collect();
        (kills, workers)
    });
    let kills = kills?;
    for (name, result) in USERS.iter().zip(workers) {
        result.with_context(|| format!("{name}'s traffic"))?;
    }
    let chaos_took = chaos_began.elapsed();

    // Everyone runs once to send what waits in their outbox and take in what arrived, then
    // again to take in what the others' outboxes sent meanwhile.
    for _ in 0..2 {
        each_user(&peers, |peer| {
            must(peer, &["history", GROUP], &chaos)?;
            Ok(())
        })?;
    }
    let attempts = ledger.into_attempts();
    let report = Report::new(&attempts, &kills, &chaos);
    eprintln!("{report}");

    let histories = each_user(&peers, |peer| {
        let mut conversations = BTreeMap::new();
        for with in USERS.iter().filter(|u| **u != peer.name).chain([&GROUP]) {
            let out = must(
                peer,
                &["--json", "history", with, "--limit", "100000"],
                &chaos,
            )?;
            conversations.insert(with.to_string(), json_lines(&out)?);
        }
        Ok(conversations)
    })?;
    let histories: HashMap<&str, _> = USERS.iter().copied().zip(histories).collect();
    eprintln!("{}", arrived_anyway(&attempts, &histories));
    check_messages(&attempts, &histories)?;
    let sent_twice = check_files(
        &peers,
        &attempts,
        &histories,
        &sources,
        files.path(),
        &chaos,
    )?;
    let feeds = each_user(&peers, |peer| feed(peer, &chaos))?;
    let feeds: HashMap<&str, _> = USERS.iter().copied().zip(feeds).collect();
    check_moments(&attempts, &feeds)?;
    check_resumed_upload(&kills, &histories, &relay.log())?;
    ensure!(
        !relay.log().contains("panicked"),
        "the relay panicked:\n{}",
        relay.log()
    );
    // Last, so that every other check has had its say.
    let hangs = chaos.hangs.lock().unwrap_or_else(PoisonError::into_inner);
    ensure!(
        hangs.is_empty() && sent_twice.is_empty(),
        "everything else checked out, but:\n{}",
        hangs
            .iter()
            .chain(&sent_twice)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "crash test seed {seed}: setup {:.1} s, traffic and {} kills {:.1} s, checks {:.1} s, total {:.1} s",
        setup.as_secs_f64(),
        kills.len(),
        chaos_took.as_secs_f64(),
        (began.elapsed() - setup - chaos_took).as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

/// splitmix64: small, seedable, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A duration between `lo_ms` and `hi_ms` milliseconds.
    fn millis(&mut self, lo_ms: u64, hi_ms: u64) -> Duration {
        Duration::from_millis(lo_ms + self.below(hi_ms - lo_ms + 1))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len() as u64) as usize])
    }
}

/// What the relay killer and the users share: when the relay was killed, and when to stop.
#[derive(Default)]
struct Chaos {
    kills: Mutex<Vec<Instant>>,
    stop: AtomicBool,
    /// Commands given up because the relay died under them.
    given_up: Mutex<usize>,
    /// Commands that ran over [`COMMAND_LIMIT`] with no kill to blame, described.
    hangs: Mutex<Vec<String>>,
}

impl Chaos {
    /// The first kill after `since`, if any.
    fn kill_after(&self, since: Instant) -> Option<Instant> {
        self.kills
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .find(|k| *k > since)
    }
}

/// One kill: when, and what it aims at.
#[derive(Debug, Clone)]
struct Kill {
    /// What the kill waits for (at most `wait`); without an aim it waits `wait`.
    aim: Option<Aim>,
    wait: Duration,
    /// How long the relay stays down.
    down: Duration,
}

/// A moment an aimed kill waits for.
#[derive(Debug, Clone)]
enum Aim {
    /// An upload's partial file on the relay growing to a length in this range.
    Uploading(Range<u64>),
    /// This long after the relay logged an upload's end, just before it answers `Uploaded`:
    /// the uploader is then committing the file's message to its outbox and sending it.
    Uploaded(Duration),
}

/// The first kill lands in the big upload past the relay's first recorded commit, the
/// second (most likely) in a small one, the third just after an upload ends; of the rest,
/// about a third aim at whatever upload is under way, the others come after a random
/// pause. The relay comes back within 0.6 s, except once after [`LONG_OUTAGE`].
fn kill_plan(rng: &mut Rng) -> Vec<Kill> {
    let past_commit = UPLOAD_COMMIT_BYTES
        + (1 << 19)
        + rng.below(BIG_FILE_BYTES - UPLOAD_COMMIT_BYTES - (2 << 20));
    let mut plan = vec![Kill {
        aim: Some(Aim::Uploading(past_commit..BIG_FILE_BYTES)),
        wait: Duration::from_secs(45),
        down: rng.millis(0, 600),
    }];
    let long_outage = 3 + rng.below(KILLS as u64 - 4) as usize;
    for i in 1..KILLS {
        // Only a small file's partial file stays under its size (a resumed big one starts
        // past 8 MiB).
        let small = (256 << 10) + rng.below(SMALL_FILE_BYTES - (512 << 10));
        let (aim, wait) = match i {
            1 => (
                Some(Aim::Uploading(small..SMALL_FILE_BYTES)),
                Duration::from_secs(8),
            ),
            2 => (
                Some(Aim::Uploaded(rng.millis(1, 8))),
                Duration::from_secs(10),
            ),
            _ => (
                (rng.below(3) == 0).then_some(Aim::Uploading(small..SMALL_FILE_BYTES)),
                rng.millis(800, 3200),
            ),
        };
        plan.push(Kill {
            aim,
            wait,
            down: match i == long_outage {
                true => LONG_OUTAGE,
                false => rng.millis(0, 600),
            },
        });
    }
    plan
}

/// What one kill hit.
#[derive(Debug)]
struct KillRecord {
    /// Uploads' partial files growing on the relay when it died: (file id, bytes).
    uploading: Vec<(String, u64)>,
    /// Uploads the relay had just finished (file ids).
    uploaded: Vec<String>,
}

/// SIGKILLs and restarts the relay as `plan` says; every restart must reopen its database.
fn kill_repeatedly(relay: &mut TestRelay, chaos: &Chaos, plan: &[Kill]) -> Result<Vec<KillRecord>> {
    let files = relay.data_dir().join("files");
    let mut parts = PartWatch::default();
    let mut records = Vec::new();
    for (i, kill) in plan.iter().enumerate() {
        let deadline = Instant::now() + kill.wait;
        let mut uploaded = Vec::new();
        let (_, mut log_read) = relay.log_after(0);
        let uploading = loop {
            let growing = parts.growing(&files);
            let hit = match &kill.aim {
                Some(Aim::Uploading(range)) => {
                    growing.iter().any(|(_, bytes)| range.contains(bytes))
                }
                Some(Aim::Uploaded(after)) => {
                    let (new, len) = relay.log_after(log_read);
                    log_read = len;
                    uploaded = new
                        .lines()
                        .map(without_colours)
                        .filter(|l| l.contains("file uploaded"))
                        .filter_map(|l| {
                            Some(l.split(" file=").nth(1)?.split(' ').next()?.to_string())
                        })
                        .collect();
                    if !uploaded.is_empty() {
                        std::thread::sleep(*after);
                    }
                    !uploaded.is_empty()
                }
                None => false,
            };
            if hit || Instant::now() >= deadline {
                break growing;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        relay.kill_9();
        chaos
            .kills
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Instant::now());
        records.push(KillRecord {
            uploading,
            uploaded,
        });
        std::thread::sleep(kill.down);
        relay.restart().with_context(|| {
            format!(
                "the relay did not start again after kill {} of {} (its database must open after any SIGKILL)",
                i + 1,
                plan.len()
            )
        })?;
    }
    Ok(records)
}

/// Watches the relay's partial upload files between polls.
#[derive(Default)]
struct PartWatch {
    last: HashMap<PathBuf, u64>,
}

impl PartWatch {
    /// The partial files that grew since the last poll, as (file id, bytes).
    fn growing(&mut self, dir: &Path) -> Vec<(String, u64)> {
        let mut growing = Vec::new();
        for path in files_under(dir) {
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".part"))
                .map(String::from)
            else {
                continue;
            };
            let Ok(len) = std::fs::metadata(&path).map(|m| m.len()) else {
                continue;
            };
            if self
                .last
                .insert(path, len)
                .is_some_and(|before| before < len)
            {
                growing.push((id, len));
            }
        }
        growing
    }
}

/// The files users send, with their MD5s.
struct Sources {
    big: (PathBuf, String),
    small: Vec<(PathBuf, String)>,
}

impl Sources {
    fn make(dir: &Path) -> Result<Self> {
        let big = random_file(&dir.join("big.bin"), BIG_FILE_BYTES, 1)?;
        let small = (0..3)
            .map(|i| random_file(&dir.join(format!("small-{i}.bin")), SMALL_FILE_BYTES, 2 + i))
            .collect::<Result<_>>()?;
        Ok(Self { big, small })
    }
}

/// Writes `len` pseudo-random bytes to `path`; returns it with its MD5.
fn random_file(path: &Path, len: u64, seed: u64) -> Result<(PathBuf, String)> {
    let mut rng = Rng::new(seed);
    let mut bytes = Vec::with_capacity(len as usize + 8);
    while (bytes.len() as u64) < len {
        bytes.extend_from_slice(&rng.next().to_le_bytes());
    }
    bytes.truncate(len as usize);
    std::fs::write(path, &bytes)?;
    Ok((path.to_path_buf(), md5_hex(&bytes)))
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(bytes))
}

/// One action a user takes (with retries).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    /// A 1:1 message to another user.
    Direct,
    /// A message to the group.
    Group,
    /// The big file to bob.
    BigFile,
    /// A small file (`small[i]`) to another user, or to the group for the last one.
    SmallFile(usize),
    Post,
    Like,
    Comment,
    /// `history` of some conversation: takes in (and acknowledges) what waits.
    Read,
}

/// User `i`'s plan: alice starts with the big file (the first kill aims at it); every
/// other user sends one small file somewhere in the first part of their plan.
fn user_plan(i: usize, rng: &mut Rng) -> Vec<Action> {
    let mut plan: Vec<Action> = (0..PLAN_LEN)
        .map(|_| match rng.below(100) {
            0..30 => Action::Direct,
            30..50 => Action::Group,
            50..62 => Action::Post,
            62..74 => Action::Like,
            74..86 => Action::Comment,
            _ => Action::Read,
        })
        .collect();
    if i == 0 {
        plan[0] = Action::BigFile;
    } else {
        plan[1 + rng.below(6) as usize] = Action::SmallFile(i - 1);
    }
    plan
}

/// What an attempt was.
#[derive(Debug, Clone)]
enum Item {
    Direct {
        to: String,
        text: String,
    },
    Group {
        text: String,
    },
    File {
        /// `None`: the group.
        to: Option<String>,
        name: String,
        md5: String,
        size: u64,
        /// The `transfer` line, when the run printed one.
        transfer: Option<Value>,
    },
    Post {
        text: String,
    },
    Like {
        post: String,
    },
    Comment {
        post: String,
        text: String,
    },
}

/// What the command said about it.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// It reported success (with the id it printed, if any).
    Acked(Option<String>),
    /// It failed but said the message waits in the outbox under this id.
    Queued(String),
    /// It failed, was given up, or printed nothing usable: the item may or may not exist.
    Unknown(String),
}

impl Outcome {
    /// The id of a message that must arrive.
    fn promised_id(&self) -> Option<&str> {
        match self {
            Outcome::Acked(Some(id)) | Outcome::Queued(id) => Some(id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Attempt {
    user: String,
    /// The action in the user's plan this attempt was for (retries share it).
    action: usize,
    /// The user's own order of attempts.
    order: usize,
    item: Item,
    outcome: Outcome,
}

/// Every attempt of every user, in each user's order.
#[derive(Default)]
struct Ledger(Mutex<Vec<Attempt>>);

impl Ledger {
    fn push(&self, attempt: Attempt) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(attempt);
    }

    /// Acknowledged posts not by `user` (for likes and comments).
    fn posts(&self, not_by: Option<&str>) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|a| not_by.is_none_or(|u| a.user != u))
            .filter_map(|a| match (&a.item, &a.outcome) {
                (Item::Post { .. }, Outcome::Acked(Some(id))) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    fn into_attempts(self) -> Vec<Attempt> {
        self.0.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a command ended.
#[derive(Debug)]
enum Ended {
    Exited(ExitStatus),
    /// The relay died under it and the user gave up (SIGKILL, as Ctrl-C would end it).
    GaveUp,
    /// It ran over [`COMMAND_LIMIT`] with no kill to blame.
    Hung,
}

/// One finished (or given up) command.
struct Run {
    ended: Ended,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The `--json` lines printed (lines that do not parse are left out).
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn line(&self, kind: &str) -> Option<Value> {
        self.lines().into_iter().find(|l| l["type"] == kind)
    }

    fn succeeded(&self) -> bool {
        matches!(&self.ended, Ended::Exited(s) if s.success())
    }

    /// Why it did not succeed, for the ledger.
    fn why(&self) -> String {
        match &self.ended {
            Ended::Exited(status) => format!("{status}: {}", self.stderr.trim()),
            Ended::GaveUp => "given up after the relay died under it".into(),
            Ended::Hung => format!("ran over {COMMAND_LIMIT:?}"),
        }
    }

    /// The outcome of `send`, `group send` or `send-file`.
    fn message_outcome(&self) -> Outcome {
        if let Some(sent) = self.line("sent")
            && let Some(id) = sent["id"].as_str()
        {
            return Outcome::Acked(Some(id.to_string()));
        }
        if let Some(error) = self.line("error")
            && let Some(id) = error["id"].as_str()
        {
            return Outcome::Queued(id.to_string());
        }
        Outcome::Unknown(self.why())
    }
}

/// One user running their plan.
struct User<'a> {
    peer: &'a Peer,
    chaos: &'a Chaos,
    ledger: &'a Ledger,
    rng: Mutex<Rng>,
}

impl User<'_> {
    fn name(&self) -> &str {
        &self.peer.name
    }

    fn run(&self, plan: &[Action], sources: &Sources) -> Result<()> {
        let began = Instant::now();
        let mut order = 0;
        for (n, action) in plan.iter().enumerate() {
            if self.chaos.stop.load(Ordering::SeqCst) || began.elapsed() > CHAOS_LIMIT {
                break;
            }
            let think = self.rng().millis(0, 150);
            std::thread::sleep(think);
            self.act(n, *action, sources, &mut order)?;
        }
        Ok(())
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, Rng> {
        self.rng.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn others(&self) -> Vec<&'static str> {
        USERS
            .iter()
            .copied()
            .filter(|u| *u != self.name())
            .collect()
    }

    /// One action, tried until the command reports success, says the message waits in
    /// the outbox, or [`TRIES`] attempts failed.
    fn act(&self, n: usize, action: Action, sources: &Sources, order: &mut usize) -> Result<()> {
        let me = self.name().to_string();
        let others = self.others();
        let to = self.rng().pick(&others).copied().unwrap_or("alice");
        let target_post = match action {
            Action::Like => self.rng().pick(&self.ledger.posts(Some(&me))).cloned(),
            Action::Comment => self.rng().pick(&self.ledger.posts(None)).cloned(),
            _ => None,
        };
        if matches!(action, Action::Like | Action::Comment) && target_post.is_none() {
            // Nothing to like yet: read instead.
            return self.act(n, Action::Read, sources, order);
        }
        let post = target_post.unwrap_or_default();
        let mut after_kills = 0;
        for attempt in 1..=TRIES {
            if self.chaos.stop.load(Ordering::SeqCst) {
                after_kills += 1;
                if after_kills > TRIES_AFTER_KILLS {
                    break;
                }
            }
            let tag = format!("{n}.{attempt}");
            let (item, outcome) = match action {
                Action::Read => {
                    // Whatever becomes of it, the next action reads again.
                    let with = self.rng().pick(&[to, GROUP]).copied().unwrap_or(GROUP);
                    self.cli(&["--json", "history", with, "--limit", "5"])?;
                    return Ok(());
                }
                Action::Direct => {
                    let text = format!("{me}→{to} {tag} 消息");
                    let run = self.cli(&["--json", "send", to, &text])?;
                    let outcome = run.message_outcome();
                    (
                        Item::Direct {
                            to: to.into(),
                            text,
                        },
                        outcome,
                    )
                }
                Action::Group => {
                    let text = format!("{me}→{GROUP} {tag} 大家好");
                    let run = self.cli(&["--json", "group", "send", GROUP, &text])?;
                    let outcome = run.message_outcome();
                    (Item::Group { text }, outcome)
                }
                Action::BigFile | Action::SmallFile(_) => {
                    let (source, to) = match action {
                        Action::BigFile => (&sources.big, Some("bob")),
                        Action::SmallFile(i) => (
                            &sources.small[i],
                            // The last small file goes to the group.
                            (i + 1 < sources.small.len()).then_some(to),
                        ),
                        _ => unreachable!("a file action"),
                    };
                    // A run again is the same command: the same name (a new name would be
                    // a new message).
                    let name = format!("{me}-{n}.bin");
                    let path = source.0.to_str().context("a UTF-8 path")?;
                    let run = match to {
                        Some(to) => {
                            self.cli(&["--json", "send-file", to, path, "--name", &name])?
                        }
                        None => self.cli(&[
                            "--json",
                            "group",
                            "send-file",
                            GROUP,
                            path,
                            "--name",
                            &name,
                        ])?,
                    };
                    let outcome = run.message_outcome();
                    let item = Item::File {
                        to: to.map(String::from),
                        name,
                        md5: source.1.clone(),
                        size: std::fs::metadata(&source.0)?.len(),
                        transfer: run.line("transfer"),
                    };
                    (item, outcome)
                }
                Action::Post => {
                    let text = format!("{me} moment {tag} 春天");
                    let run = self.cli(&["--json", "moments", "post", &text])?;
                    let outcome = match run.line("moment_posted") {
                        Some(posted) => match posted["id"].as_str() {
                            Some(id) => Outcome::Acked(Some(id.to_string())),
                            None => Outcome::Unknown(format!("a post line without id: {posted}")),
                        },
                        None => Outcome::Unknown(run.why()),
                    };
                    (Item::Post { text }, outcome)
                }
                Action::Like => {
                    let run = self.cli(&["--json", "moments", "like", &post])?;
                    let outcome = match run.succeeded() {
                        true => Outcome::Acked(None),
                        false => Outcome::Unknown(run.why()),
                    };
                    (Item::Like { post: post.clone() }, outcome)
                }
                Action::Comment => {
                    let text = format!("{me} says {tag} 好");
                    // Without --json the command prints the comment's id.
                    let run = self.cli(&["moments", "comment", &post, &text])?;
                    let outcome = match (run.succeeded(), run.stdout.trim()) {
                        (true, id) if !id.is_empty() => Outcome::Acked(Some(id.to_string())),
                        _ => Outcome::Unknown(run.why()),
                    };
                    (
                        Item::Comment {
                            post: post.clone(),
                            text,
                        },
                        outcome,
                    )
                }
            };
            let done = !matches!(outcome, Outcome::Unknown(_));
            self.ledger.push(Attempt {
                user: me.clone(),
                action: n,
                order: *order,
                item,
                outcome,
            });
            *order += 1;
            if done {
                return Ok(());
            }
        }
        Ok(())
    }

    fn cli(&self, args: &[&str]) -> Result<Run> {
        run(self.peer, args, self.chaos)
    }
}

/// Runs `uchat ARGS` as `peer` to its end, or gives it up: a moment after the relay is
/// killed under it, or after [`COMMAND_LIMIT`] (a hang, recorded in `chaos`).
fn run(peer: &Peer, args: &[&str], chaos: &Chaos) -> Result<Run> {
    let mut stdout = tempfile::tempfile()?;
    let mut stderr = tempfile::tempfile()?;
    let started = Instant::now();
    let mut child = peer
        .command(args)
        .stdout(Stdio::from(stdout.try_clone()?))
        .stderr(Stdio::from(stderr.try_clone()?))
        .spawn()
        .with_context(|| format!("cannot run uchat {args:?}"))?;
    let ended = loop {
        if let Some(status) = child.try_wait()? {
            break Ended::Exited(status);
        }
        let killed = chaos.kill_after(started);
        if killed.is_some_and(|k| k.elapsed() >= GIVE_UP_AFTER_KILL) {
            let _ = child.kill();
            child.wait()?;
            *chaos
                .given_up
                .lock()
                .unwrap_or_else(PoisonError::into_inner) += 1;
            break Ended::GaveUp;
        }
        if started.elapsed() > COMMAND_LIMIT {
            let _ = child.kill();
            child.wait()?;
            break Ended::Hung;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |file: &mut std::fs::File| -> Result<String> {
        file.rewind()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let run = Run {
        ended,
        stdout: read(&mut stdout)?,
        stderr: read(&mut stderr)?,
    };
    if let Ended::Hung = run.ended {
        chaos
            .hangs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(format!(
                "`uchat {}` as {} was still running after {COMMAND_LIMIT:?} with the relay up \
                 (SIGKILLed); it had printed {:?} and on stderr {:?}",
                args.join(" "),
                peer.name,
                run.stdout,
                run.stderr
            ));
    }
    Ok(run)
}

/// Runs `uchat ARGS` as `peer` once the traffic is over, when it must succeed; returns its
/// standard output. A run that hangs is recorded and run again, as a user would after
/// Ctrl-C (three runs at most).
fn must(peer: &Peer, args: &[&str], chaos: &Chaos) -> Result<String> {
    for _ in 0..3 {
        let run = run(peer, args, chaos)?;
        if run.succeeded() {
            return Ok(run.stdout);
        }
        if !matches!(run.ended, Ended::Hung) {
            bail!(
                "`uchat {}` as {} failed: {}",
                args.join(" "),
                peer.name,
                run.why()
            );
        }
    }
    bail!(
        "`uchat {}` as {} hung three times",
        args.join(" "),
        peer.name
    )
}

/// Runs `work` for every user at once (their profiles are separate); results in
/// [`USERS`]' order.
fn each_user<T: Send>(peers: &[Peer], work: impl Fn(&Peer) -> Result<T> + Sync) -> Result<Vec<T>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = peers
            .iter()
            .map(|peer| {
                let work = &work;
                scope.spawn(move || work(peer).with_context(|| format!("as {}", peer.name)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a user's thread panicked")))
            })
            .collect()
    })
}

/// Each user's history per conversation (the other users, and the group).
type Histories<'a> = HashMap<&'a str, BTreeMap<String, Vec<Value>>>;

/// The messages (text lines) of a history.
fn messages(history: &[Value]) -> impl Iterator<Item = &Value> {
    history.iter().filter(|l| l["type"] == "message")
}

/// Every promised (acknowledged or queued) 1:1 and group message is in every recipient's
/// history exactly once, with its id and sender; no text shows twice anywhere; nothing is
/// undecryptable; 1:1 messages arrive in the order they were sent; and every sender's
/// outbox is empty.
fn check_messages(attempts: &[Attempt], histories: &Histories<'_>) -> Result<()> {
    for (user, conversations) in histories {
        for (with, history) in conversations {
            let mut seen = HashSet::new();
            for m in messages(history) {
                ensure!(
                    m["status"] != "undecryptable" && m.get("problem").is_none(),
                    "{user}'s history with {with} holds a message that does not open: {m}"
                );
                ensure!(
                    m["status"] != "pending" && m["status"] != "failed",
                    "{user}'s own message to {with} never left the outbox: {m}"
                );
                let text = m["text"].as_str().unwrap_or_default();
                ensure!(
                    seen.insert(text.to_string()),
                    "{user}'s history with {with} shows {text:?} twice: {history:#?}"
                );
            }
        }
    }
    for attempt in attempts {
        let (conversation_of, text): (Vec<(&str, String)>, &str) = match &attempt.item {
            Item::Direct { to, text } => (
                vec![
                    (to.as_str(), attempt.user.clone()),
                    (attempt.user.as_str(), to.clone()),
                ],
                text,
            ),
            Item::Group { text } => (
                USERS.iter().map(|u| (*u, GROUP.to_string())).collect(),
                text,
            ),
            _ => continue,
        };
        for (reader, with) in conversation_of {
            let found: Vec<&Value> = messages(&histories[reader][&with])
                .filter(|m| m["text"] == text)
                .collect();
            match attempt.outcome.promised_id() {
                Some(id) => ensure!(
                    found.len() == 1 && found[0]["id"] == id && found[0]["from"] == attempt.user,
                    "{:?} message {text:?} (id {id}) from {} shows {} times in {reader}'s history with {with}: {found:?}",
                    attempt.outcome,
                    attempt.user,
                    found.len()
                ),
                None => ensure!(
                    found.len() <= 1,
                    "an unacknowledged message {text:?} shows {} times in {reader}'s history",
                    found.len()
                ),
            }
        }
    }
    // Per sender and recipient, what arrived came in the order it was sent.
    for (i, from) in USERS.iter().enumerate() {
        for to in USERS.iter().skip(i + 1).chain(USERS.iter().take(i)) {
            let sent: HashMap<&str, usize> = attempts
                .iter()
                .filter(|a| a.user == *from)
                .filter_map(|a| match &a.item {
                    Item::Direct { to: t, text } if t == to => Some((text.as_str(), a.order)),
                    _ => None,
                })
                .collect();
            let arrived: Vec<(usize, &str)> = messages(&histories[to][*from])
                .filter(|m| m["from"] == *from)
                .filter_map(|m| {
                    let text = m["text"].as_str()?;
                    Some((*sent.get(text)?, text))
                })
                .collect();
            ensure!(
                arrived.windows(2).all(|w| w[0].0 < w[1].0),
                "{from}'s messages reached {to} out of the order sent: {arrived:?}"
            );
        }
    }
    Ok(())
}

/// Every promised file is in its recipients' histories once, with the right name, size and
/// MD5, and downloads intact; a file whose send was not acknowledged but arrived anyway
/// must download intact too. Returns, as findings, files a recipient got more than once
/// because the user ran `send-file` again after an interrupted run.
fn check_files(
    peers: &[Peer],
    attempts: &[Attempt],
    histories: &Histories<'_>,
    sources: &Sources,
    dir: &Path,
    chaos: &Chaos,
) -> Result<Vec<String>> {
    let mut downloads: Vec<(&Peer, String, String)> = Vec::new();
    for attempt in attempts {
        let Item::File {
            to,
            name,
            md5,
            size,
            ..
        } = &attempt.item
        else {
            continue;
        };
        let readers: Vec<(&str, String)> = match to {
            Some(to) => vec![(to.as_str(), attempt.user.clone())],
            None => USERS
                .iter()
                .filter(|u| **u != attempt.user)
                .map(|u| (*u, GROUP.to_string()))
                .collect(),
        };
        for (reader, with) in readers {
            // A run that finished an earlier run's send reports that run's message, which
            // carries the earlier run's name: an acknowledged file is found by its message.
            let found: Vec<&Value> = histories[reader][&with]
                .iter()
                .filter(|l| {
                    l["type"] == "file"
                        && match attempt.outcome.promised_id() {
                            Some(id) => l["message_id"] == id,
                            None => l["name"] == name.as_str(),
                        }
                })
                .collect();
            match attempt.outcome.promised_id() {
                Some(id) => ensure!(
                    found.len() == 1 && found[0]["message_id"] == id,
                    "{:?} file {name} (message {id}) from {} shows {} times in {reader}'s history with {with}: {found:?}",
                    attempt.outcome,
                    attempt.user,
                    found.len()
                ),
                None => ensure!(
                    found.len() <= 1,
                    "an unacknowledged file {name} shows {} times in {reader}'s history",
                    found.len()
                ),
            }
            for file in found {
                ensure!(
                    file["md5"] == md5.as_str() && file["size"] == *size,
                    "{reader} was told {name} has another size or MD5: {file}"
                );
                let id = file["id"].as_str().context("a file id")?.to_string();
                let peer = peers
                    .iter()
                    .find(|p| p.name == reader)
                    .context("the reader")?;
                downloads.push((peer, id, md5.clone()));
            }
        }
    }
    ensure!(
        downloads.iter().any(|(_, _, md5)| *md5 == sources.big.1),
        "the big file never arrived: {attempts:#?}"
    );
    each_user(peers, |peer| {
        let dest = dir.join(format!("{}-downloads", peer.name));
        let dest = dest.to_str().context("a UTF-8 path")?;
        for (_, id, md5) in downloads.iter().filter(|(p, ..)| p.name == peer.name) {
            let out = must(peer, &["--json", "download", id, dest], chaos)?;
            let saved = json_lines(&out)?
                .into_iter()
                .find(|l| l["type"] == "saved")
                .context("a saved line")?;
            let path = saved["path"].as_str().context("a saved path")?;
            let bytes = std::fs::read(path)?;
            ensure!(
                saved["md5"] == md5.as_str() && md5_hex(&bytes) == *md5,
                "file {id} downloaded by {} is not the one sent (MD5 {} on disk, {md5} sent)",
                peer.name,
                md5_hex(&bytes)
            );
        }
        Ok(())
    })?;
    Ok(sent_again(attempts, histories))
}

/// Files a recipient got more than once from one `send-file` action: the user ran the same
/// command again after an interrupted run, as the README says to ("run it again after an
/// interruption and it resumes the upload"), and it sent the file a second time.
fn sent_again(attempts: &[Attempt], histories: &Histories<'_>) -> Vec<String> {
    let mut actions: BTreeMap<(&str, usize), Vec<&Attempt>> = BTreeMap::new();
    for attempt in attempts {
        if let Item::File { .. } = attempt.item {
            actions
                .entry((attempt.user.as_str(), attempt.action))
                .or_default()
                .push(attempt);
        }
    }
    let mut findings = Vec::new();
    for ((user, _), tries) in actions {
        let Item::File { to, .. } = &tries[0].item else {
            continue;
        };
        let readers: Vec<(&str, String)> = match to {
            Some(to) => vec![(to.as_str(), user.to_string())],
            None => USERS
                .iter()
                .filter(|u| **u != user)
                .map(|u| (*u, GROUP.to_string()))
                .collect(),
        };
        let described: Vec<String> = tries
            .iter()
            .map(|t| match &t.item {
                Item::File { name, transfer, .. } => format!(
                    "{name}: {:?}{}",
                    t.outcome,
                    transfer
                        .as_ref()
                        .map(|t| format!(", uploaded from byte {}", t["resumed_at"]))
                        .unwrap_or_default()
                ),
                _ => String::new(),
            })
            .collect();
        for (reader, with) in readers {
            let got: Vec<&str> = histories[reader][&with]
                .iter()
                .filter(|l| l["type"] == "file")
                .filter_map(|l| l["name"].as_str())
                .filter(|name| {
                    tries
                        .iter()
                        .any(|t| matches!(&t.item, Item::File { name: n, .. } if n == name))
                })
                .collect();
            if got.len() > 1 {
                findings.push(format!(
                    "{reader} got {user}'s file {} times ({got:?}) from one send-file action: a \
                     run cut off after the upload ended still sent its file message (from the \
                     outbox), and running the command again, as the README says to after an \
                     interruption, uploaded the file anew instead of finding it sent; the runs: \
                     {described:#?}",
                    got.len()
                ));
            }
        }
    }
    findings
}

/// Every page of `peer`'s feed, as `moment` lines.
fn feed(peer: &Peer, chaos: &Chaos) -> Result<Vec<Value>> {
    let mut posts = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..20 {
        let mut args = vec!["--json", "moments", "feed", "--limit", "50"];
        if let Some(before) = &before {
            args.extend(["--before", before]);
        }
        let lines = json_lines(&must(peer, &args, chaos)?)?;
        posts.extend(lines.iter().filter(|l| l["type"] == "moment").cloned());
        match lines.iter().find(|l| l["type"] == "moment_page") {
            Some(page) if !page["next"].is_null() => before = Some(page["next"].to_string()),
            _ => return Ok(posts),
        }
    }
    bail!("{}'s feed did not end within 20 pages", peer.name)
}

/// Every acknowledged post is in every user's feed exactly once and opens; every
/// acknowledged like shows once among its post's likes, every acknowledged comment once
/// among its comments, for every viewer (they are all friends, so all see everything);
/// nothing unacknowledged shows twice.
fn check_moments(attempts: &[Attempt], feeds: &HashMap<&str, Vec<Value>>) -> Result<()> {
    for (viewer, posts) in feeds {
        let mut ids = HashSet::new();
        for post in posts {
            ensure!(
                post.get("problem").is_none() && post["text"].is_string(),
                "{viewer} cannot open a post in the feed: {post}"
            );
            let id = post["id"].as_str().unwrap_or_default();
            ensure!(ids.insert(id), "{viewer}'s feed shows post {id} twice");
            let mut texts = HashSet::new();
            for comment in post["comments"].as_array().into_iter().flatten() {
                let text = comment["text"].as_str().unwrap_or_default();
                ensure!(
                    texts.insert(text),
                    "{viewer} sees the comment {text:?} twice on post {id}: {post}"
                );
            }
            let likes: Vec<&str> = post["likes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let unique: HashSet<&&str> = likes.iter().collect();
            ensure!(
                unique.len() == likes.len(),
                "{viewer} sees a like twice on post {id}: {likes:?}"
            );
        }
        let texts: Vec<&str> = posts.iter().filter_map(|p| p["text"].as_str()).collect();
        let unique: HashSet<&&str> = texts.iter().collect();
        ensure!(
            unique.len() == texts.len(),
            "{viewer}'s feed shows a post's text twice: {texts:?}"
        );
    }
    for attempt in attempts {
        let acked = matches!(attempt.outcome, Outcome::Acked(_));
        for (viewer, posts) in feeds {
            match &attempt.item {
                Item::Post { text } => {
                    let found: Vec<&Value> = posts.iter().filter(|p| p["text"] == *text).collect();
                    match &attempt.outcome {
                        Outcome::Acked(Some(id)) => ensure!(
                            found.len() == 1
                                && found[0]["id"] == *id
                                && found[0]["author"] == attempt.user,
                            "post {id} ({text:?}) by {} shows {} times in {viewer}'s feed",
                            attempt.user,
                            found.len()
                        ),
                        _ => ensure!(found.len() <= 1, "{text:?} shows twice for {viewer}"),
                    }
                }
                Item::Like { post } if acked => {
                    let seen = posts.iter().find(|p| p["id"] == *post).with_context(|| {
                        format!("post {post} liked by {} in {viewer}'s feed", attempt.user)
                    })?;
                    let likes = seen["likes"].as_array().into_iter().flatten();
                    let count = likes.filter(|l| **l == attempt.user.as_str()).count();
                    ensure!(
                        count == 1,
                        "{}'s acknowledged like of {post} shows {count} times for {viewer}: {seen}",
                        attempt.user
                    );
                }
                Item::Comment { post, text } => {
                    let Some(seen) = posts.iter().find(|p| p["id"] == *post) else {
                        bail!(
                            "post {post} commented by {} is not in {viewer}'s feed",
                            attempt.user
                        );
                    };
                    let found: Vec<&Value> = seen["comments"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|c| c["text"] == *text)
                        .collect();
                    match &attempt.outcome {
                        Outcome::Acked(Some(id)) => ensure!(
                            found.len() == 1
                                && found[0]["id"] == *id
                                && found[0]["author"] == attempt.user,
                            "comment {id} ({text:?}) by {} shows {} times for {viewer}: {seen}",
                            attempt.user,
                            found.len()
                        ),
                        _ => ensure!(found.len() <= 1, "{text:?} shows twice for {viewer}"),
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The first kill cut the big upload past the relay's first recorded commit; the run that
/// finished that upload (same file id: the CLI's pending upload) must have started there,
/// not from zero, and the file must have reached bob.
fn check_resumed_upload(
    kills: &[KillRecord],
    histories: &Histories<'_>,
    relay_log: &str,
) -> Result<()> {
    let (file_id, cut_at) = kills
        .first()
        .and_then(|k| k.uploading.iter().max_by_key(|(_, bytes)| *bytes))
        .with_context(|| format!("the first kill did not land in an upload: {kills:?}"))?;
    ensure!(
        *cut_at > UPLOAD_COMMIT_BYTES,
        "the first kill cut the big upload at {cut_at} bytes only, before the relay's first commit"
    );
    ensure!(
        histories["bob"]["alice"]
            .iter()
            .any(|l| l["type"] == "file" && l["id"] == file_id.as_str()),
        "the upload the first kill cut (file {file_id}) never reached bob"
    );
    // The relay logs each finished upload with the offset it resumed at.
    let lines: Vec<String> = relay_log
        .lines()
        .map(without_colours)
        .filter(|l| l.contains(file_id.as_str()))
        .collect();
    let resumed_at: Vec<u64> = lines
        .iter()
        .filter(|l| l.contains("file uploaded"))
        .filter_map(|l| {
            let rest = l.split("resumed_at=").nth(1)?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    ensure!(
        resumed_at.len() == 1 && resumed_at[0] >= chunk_boundary(UPLOAD_COMMIT_BYTES),
        "the big upload (file {file_id}), cut at {cut_at} bytes, finished resuming at \
         {resumed_at:?} (the relay records every {UPLOAD_COMMIT_BYTES} bytes and resumes at \
         the chunk boundary below); the relay \
         logged:\n{}",
        lines.join("\n")
    );
    eprintln!(
        "big upload {file_id}: cut at {cut_at} bytes, resumed at {} bytes",
        resumed_at[0]
    );
    Ok(())
}

/// Which unacknowledged messages and files arrived all the same (they waited in the
/// sender's outbox, or the relay had them when it died): for files, each one is a copy the
/// recipient got besides the one the user's retry sent.
fn arrived_anyway(attempts: &[Attempt], histories: &Histories<'_>) -> String {
    let mut lines = Vec::new();
    for attempt in attempts {
        if !matches!(attempt.outcome, Outcome::Unknown(_)) {
            continue;
        }
        let (reader, with, kind, what) = match &attempt.item {
            Item::Direct { to, text } => (to.as_str(), attempt.user.clone(), "message", text),
            Item::Group { text } => (attempt.user.as_str(), GROUP.to_string(), "message", text),
            Item::File { to, name, .. } => match to {
                Some(to) => (to.as_str(), attempt.user.clone(), "file", name),
                None => (attempt.user.as_str(), GROUP.to_string(), "file", name),
            },
            _ => continue,
        };
        let arrived = histories[reader][&with].iter().any(|l| match kind {
            "file" => l["type"] == "file" && l["name"] == what.as_str(),
            _ => l["type"] == "message" && l["text"] == what.as_str(),
        });
        if arrived {
            lines.push(format!(
                "unacknowledged {kind} {what:?} from {} arrived anyway",
                attempt.user
            ));
        }
    }
    match lines.is_empty() {
        true => "no unacknowledged message or file arrived".into(),
        false => lines.join("\n"),
    }
}

/// `line` without the terminal colour codes the relay's log writes around fields.
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC '[' parameters, ended by a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What happened, printed with the seed so a failure can be read.
struct Report {
    lines: Vec<String>,
}

impl Report {
    fn new(attempts: &[Attempt], kills: &[KillRecord], chaos: &Chaos) -> Self {
        let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for a in attempts {
            let kind = match a.item {
                Item::Direct { .. } => "1:1",
                Item::Group { .. } => "group",
                Item::File { .. } => "file",
                Item::Post { .. } => "post",
                Item::Like { .. } => "like",
                Item::Comment { .. } => "comment",
            };
            let outcome = match a.outcome {
                Outcome::Acked(_) => "acknowledged",
                Outcome::Queued(_) => "queued",
                Outcome::Unknown(_) => "unknown",
            };
            *counts.entry((kind, outcome)).or_default() += 1;
        }
        let mut lines = vec![format!(
            "{} kills; {} commands given up after a kill",
            kills.len(),
            chaos
                .given_up
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        )];
        for (i, k) in kills.iter().enumerate() {
            if !k.uploading.is_empty() {
                lines.push(format!(
                    "kill {} landed in uploads {:?}",
                    i + 1,
                    k.uploading
                ));
            }
            if !k.uploaded.is_empty() {
                lines.push(format!(
                    "kill {} came just after uploads {:?} ended",
                    i + 1,
                    k.uploaded
                ));
            }
        }
        for a in attempts {
            if let Item::File {
                name,
                transfer: Some(t),
                ..
            } = &a.item
            {
                lines.push(format!(
                    "{name}: this run sent {} of {} bytes, resuming at {}",
                    t["bytes"], t["total"], t["resumed_at"]
                ));
            }
        }
        for ((kind, outcome), n) in counts {
            lines.push(format!("{kind}: {n} {outcome}"));
        }
        Self { lines }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.lines.join("\n"))
    }
}
