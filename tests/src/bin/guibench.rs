//! `guibench`: the desktop app's frame time (CPU) with a long chat and a long feed.
//!
//! It builds the real `UchatApp` with a model holding one conversation of `--messages`
//! messages (English and Chinese, some long, some files with thumbnails, a new day every
//! 500) and a feed of `--posts` posts (pictures, likes, comments), and runs frames on a
//! headless egui context at 1100×720: each frame is the app's whole `ui` (layout) plus
//! tessellation into triangles, which is what a frame costs the CPU before the GPU draws
//! it. Scenarios: sitting at the bottom, scrolling a page per frame through the chat, and
//! scrolling through the feed. Bounded by count (`--frames`) and by `--time-limit`.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use uchat_gui::i18n::Lang;
use uchat_gui::model::Chat;
use uchat_gui::worker::AudioSettings;
use uchat_gui::{AppOptions, Screen, UchatApp};
use uchat_peer::Friend;
use uchat_peer::moment::{Moment, MomentCommentView, MomentLikeView};
use uchat_peer::store::{ConversationId, EntryFlags, EntryStatus, FileRef, HistoryEntry};
use uchat_wire::{CommentId, FileId, MessageId, PostId, ProfileSummary, UserName};

/// Frame time of the desktop app with a long chat and a long feed.
#[derive(Parser, Debug)]
#[command(name = "guibench", about)]
struct Args {
    /// Messages in the conversation
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// Posts in the feed
    #[arg(long, default_value_t = 1_000)]
    posts: usize,
    /// Frames timed per scenario
    #[arg(long, default_value_t = 600)]
    frames: usize,
    /// Language of the window (en or zh-CN)
    #[arg(long, default_value = "zh-CN")]
    lang: String,
    /// Give up after this many seconds
    #[arg(long, default_value_t = 300)]
    time_limit: u64,
}

fn id16(n: u64, salt: u8) -> [u8; 16] {
    let mut id = [salt; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id
}

fn thumbnail() -> Result<Vec<u8>> {
    let image = image::RgbaImage::from_fn(96, 72, |x, y| {
        image::Rgba([(x * 2) as u8, (y * 3) as u8, 180, 255])
    });
    let mut png = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(png)
}

/// A received picture with `png` as its thumbnail.
fn picture(file: FileId, name: String, png: &[u8]) -> FileRef {
    FileRef {
        file,
        name,
        size: 123_456,
        mime: "image/png".into(),
        md5: vec![0; 16],
        key: vec![0; 32],
        thumbnail: Some(png.to_vec()),
        dimensions: Some((96, 72)),
        saved_to: None,
    }
}

const TEXTS: [&str; 6] = [
    "好的，明天见！",
    "Did you see the photos from the trip? The mountains were amazing.",
    "晚上七点在老地方吃火锅，别迟到了。",
    "ok",
    "这是一条比较长的消息，用来测试自动换行：我们周末去爬山，然后去吃饭，最后看电影。大家觉得怎么样？有什么想法都可以说。",
    "line one\nline two\nline three",
];

fn messages(me: &UserName, friend: &UserName, count: usize, png: &[u8]) -> Vec<HistoryEntry> {
    let start_ms = 1_700_000_000_000u64;
    (0..count)
        .map(|i| {
            let mine = i % 3 == 0;
            let at = start_ms + (i as u64 / 500) * 86_400_000 + (i as u64 % 500) * 60_000;
            let file = (i % 97 == 0)
                .then(|| picture(FileId(id16(i as u64, 7)), format!("照片-{i}.png"), png));
            HistoryEntry {
                id: MessageId(id16(i as u64, 1)),
                conversation: ConversationId::direct(friend),
                from: if mine { me.clone() } else { friend.clone() },
                to: if mine { friend.clone() } else { me.clone() },
                sent_ms: at,
                received_ms: at,
                text: file
                    .is_none()
                    .then(|| format!("{} #{i}", TEXTS[i % TEXTS.len()])),
                status: if mine {
                    EntryStatus::Sent
                } else {
                    EntryStatus::Received
                },
                flags: EntryFlags::default(),
                group: None,
                group_change: None,
                file,
                position: i as u64 + 1,
            }
        })
        .collect()
}

fn posts(friend: &UserName, me: &UserName, count: usize, png: &[u8]) -> Vec<Moment> {
    (0..count)
        .map(|i| {
            let at = 1_700_000_000_000u64 + (count - i) as u64 * 3_600_000;
            let images = (0..(i % 4))
                .map(|k| {
                    picture(
                        FileId(id16((i * 10 + k) as u64, 9)),
                        format!("p{i}-{k}.png"),
                        png,
                    )
                })
                .collect();
            Moment {
                id: PostId(id16(i as u64, 3)),
                author: friend.clone(),
                posted_ms: at,
                cursor: (count - i) as u64,
                text: Some(format!("{} ({i})", TEXTS[i % TEXTS.len()])),
                images,
                likes: (0..(i % 3))
                    .map(|_| MomentLikeView {
                        user: me.clone(),
                        liked_ms: at + 1,
                    })
                    .collect(),
                comments: (0..(i % 5))
                    .map(|k| MomentCommentView {
                        id: CommentId(id16((i * 10 + k) as u64, 4)),
                        author: me.clone(),
                        reply_to: None,
                        text: format!("评论 {k}: 太棒了！"),
                        commented_ms: at + 2,
                    })
                    .collect(),
                problem: None,
            }
        })
        .collect()
}

fn input(time: f64, events: Vec<egui::Event>) -> egui::RawInput {
    egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1100.0, 720.0),
        )),
        time: Some(time),
        events,
        ..Default::default()
    }
}

/// Runs `frames` frames, giving each the events `events(i)`, and records each frame's CPU
/// time (layout and tessellation).
fn measure(
    ctx: &egui::Context,
    app: &mut UchatApp,
    frames: usize,
    clock: &mut f64,
    deadline: Instant,
    mut events: impl FnMut(&mut UchatApp, usize) -> Vec<egui::Event>,
) -> Result<Histogram<u64>> {
    let mut histogram = Histogram::<u64>::new(3)?;
    for i in 0..frames {
        if Instant::now() > deadline {
            bail!("time limit reached");
        }
        *clock += 1.0 / 60.0;
        let raw = input(*clock, events(app, i));
        let start = Instant::now();
        let mut output = ctx.run_ui(raw, |ui| app.ui(ui));
        // Textures go to the GPU in a real window; here they are not drawn.
        output.textures_delta.clear();
        let primitives = ctx.tessellate(output.shapes, output.pixels_per_point);
        let took = start.elapsed();
        std::hint::black_box(primitives);
        histogram.record(took.as_micros() as u64)?;
    }
    Ok(histogram)
}

fn line(name: &str, h: &Histogram<u64>) -> String {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "{name}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} frames)",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        h.max() as f64 / 1000.0,
        h.len()
    )
}

fn wheel(delta_y: f32) -> Vec<egui::Event> {
    vec![
        egui::Event::PointerMoved(egui::pos2(700.0, 400.0)),
        egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, delta_y),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        },
    ]
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.messages == 0 || args.posts == 0 || args.frames == 0 {
        bail!("need at least one message, post and frame");
    }
    let lang = Lang::parse(&args.lang).unwrap_or(Lang::ZhCn);
    let deadline = Instant::now() + Duration::from_secs(args.time_limit);
    let scratch = tempfile::tempdir()?;
    let ctx = egui::Context::default();
    let font = uchat_gui::fonts::install_cjk_font(&ctx);
    if !font.is_loaded() {
        eprintln!(
            "guibench: no CJK font; Chinese text is measured as boxes (install {})",
            uchat_gui::fonts::FONT_PACKAGES
        );
    }
    let mut app = UchatApp::new(
        AppOptions {
            home: scratch.path().join("home"),
            relay: "127.0.0.1:1".into(),
            lang: Some(lang),
            audio: AudioSettings::default(),
            utc_offset: time::UtcOffset::UTC,
            password: None,
            tour: None,
            relay_fingerprint: None,
        },
        font,
    )?;
    let me = UserName::parse("alice")?;
    let friend = UserName::parse("bob")?;
    let png = thumbnail()?;
    let built = Instant::now();
    app.model.me = Some(me.clone());
    app.model.online = true;
    app.model.friends = vec![Friend {
        user: friend.clone(),
        since_ms: 0,
        online: true,
        last_seen_ms: None,
        blocked: false,
        profile: ProfileSummary {
            signature: "在路上".into(),
            avatar_version: None,
            updated_ms: 0,
        },
        identity_changed: false,
    }];
    let chat = Chat::Direct(friend.clone());
    let history = messages(&me, &friend, args.messages, &png);
    app.model
        .conversation_mut(&chat)
        .take_page(history, args.messages + 1);
    app.model.feed = posts(&friend, &me, args.posts, &png);
    app.model.feed_revision += 1;
    println!(
        "guibench: {} messages, {} posts built in {:.0} ms; window 1100x720, {}",
        args.messages,
        args.posts,
        built.elapsed().as_secs_f64() * 1000.0,
        lang.native_name()
    );

    let mut clock = 0.0;
    app.open_chat(chat.clone());
    let first = Instant::now();
    let mut output = ctx.run_ui(input(clock, Vec::new()), |ui| app.ui(ui));
    output.textures_delta.clear();
    std::hint::black_box(ctx.tessellate(output.shapes, output.pixels_per_point));
    println!(
        "first frame of the chat (row estimates for every message, fonts): {:.2} ms",
        first.elapsed().as_secs_f64() * 1000.0
    );
    // Warm up: let the glyph atlas and thumbnails settle.
    measure(&ctx, &mut app, 30, &mut clock, deadline, |_, _| Vec::new())?;
    let idle = measure(&ctx, &mut app, args.frames, &mut clock, deadline, |_, _| {
        Vec::new()
    })?;
    println!("{}", line("chat, at the bottom", &idle));
    let scrolling = measure(&ctx, &mut app, args.frames, &mut clock, deadline, |_, _| {
        wheel(600.0)
    })?;
    println!("{}", line("chat, scrolling up 600 px a frame", &scrolling));
    let (offset, height) = app.chat_scrolled();
    println!("  now {offset:.0} px down a chat {height:.0} px tall");
    let flinging = measure(&ctx, &mut app, args.frames, &mut clock, deadline, |_, i| {
        wheel(if i % 2 == 0 { 40_000.0 } else { -15_000.0 })
    })?;
    println!("{}", line("chat, jumping 15-40k px a frame", &flinging));
    let (offset, height) = app.chat_scrolled();
    println!("  now {offset:.0} px down a chat {height:.0} px tall");

    // Back to the newest messages, then one arrives every frame (the model takes it in
    // as it would from the network; only the new row is laid out).
    measure(&ctx, &mut app, 30, &mut clock, deadline, |_, _| {
        wheel(-1.0e9)
    })?;
    let mut arrivals = messages(&me, &friend, args.messages + args.frames, &png)
        .into_iter()
        .skip(args.messages);
    let arriving = measure(
        &ctx,
        &mut app,
        args.frames,
        &mut clock,
        deadline,
        |app, _| {
            if let Some(entry) = arrivals.next() {
                app.model.conversation_mut(&chat).push(entry);
            }
            Vec::new()
        },
    )?;
    println!(
        "{}",
        line("chat, a message arriving every frame", &arriving)
    );

    app.set_screen(Screen::Moments);
    measure(&ctx, &mut app, 30, &mut clock, deadline, |_, _| Vec::new())?;
    let feed_idle = measure(&ctx, &mut app, args.frames, &mut clock, deadline, |_, _| {
        Vec::new()
    })?;
    println!("{}", line("feed, at the top", &feed_idle));
    let feed_scrolling = measure(&ctx, &mut app, args.frames, &mut clock, deadline, |_, _| {
        wheel(-400.0)
    })?;
    println!(
        "{}",
        line("feed, scrolling down 400 px a frame", &feed_scrolling)
    );
    let worst = [
        &idle,
        &scrolling,
        &flinging,
        &arriving,
        &feed_idle,
        &feed_scrolling,
    ]
    .iter()
    .map(|h| h.value_at_quantile(0.99))
    .max()
    .unwrap_or(0);
    println!(
        "worst p99 {:.2} ms: {}",
        worst as f64 / 1000.0,
        if worst < 8_000 {
            "under the 8 ms budget"
        } else {
            "OVER the 8 ms budget"
        }
    );
    Ok(())
}
