//! `feedbench`: how long a page of the moments feed takes with many posts.
//!
//! It starts a relay in this process, has `--friends` friends of one viewer post
//! `--posts` posts each (through the real `uchat_peer::Client`), and then has the viewer
//! walk the whole feed `--rounds` times, `--page` posts a page. Each page's latency runs
//! from the request to the decrypted, checked posts in hand (relay read, QUIC round trip,
//! opening every post, like and comment). A sample of posts also gets likes and comments,
//! so pages carry what a real feed carries. Bounded by count and by `--time-limit`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use uchat_relay::{RelayConfig, Server};
use uchat_tests::feed::FeedFixture;

/// Feed page latency through a real relay.
#[derive(Parser, Debug)]
#[command(name = "feedbench", about)]
struct Args {
    /// Friends who post to the viewer
    #[arg(long, default_value_t = 20)]
    friends: usize,
    /// Posts per friend
    #[arg(long, default_value_t = 50)]
    posts: usize,
    /// Posts per page
    #[arg(long, default_value_t = 20)]
    page: u32,
    /// Whole walks through the feed to time
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Give up after this many seconds
    #[arg(long, default_value_t = 600)]
    time_limit: u64,
}

fn line(name: &str, h: &Histogram<u64>) -> String {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "{name}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} pages)",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        h.max() as f64 / 1000.0,
        h.len()
    )
}

async fn run(args: Args) -> Result<()> {
    if args.friends == 0 || args.posts == 0 || args.page == 0 || args.rounds == 0 {
        bail!("need at least one friend, post, post per page and round");
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let deadline = Instant::now() + Duration::from_secs(args.time_limit);
    let scratch = tempfile::tempdir()?;
    let mut config = RelayConfig::new("127.0.0.1:0".parse()?, scratch.path().join("relay"));
    config.limits.max_failed_logins_per_address = u32::MAX;
    uchat_tests::allow_many_users(&mut config.limits);
    let server = Server::spawn(config).await?;
    let relay = server.local_addr().to_string();
    let fingerprint = server.fingerprint().to_string().parse()?;
    let total = args.friends * args.posts;
    eprintln!("posting {total} posts from {} friends…", args.friends);
    let started = Instant::now();
    let fixture = FeedFixture::populate(
        &relay,
        Some(fingerprint),
        "fb",
        args.friends,
        args.posts,
        Duration::from_secs(args.time_limit),
    )
    .await?;
    let setup = started.elapsed();
    // Every tenth post gets a like and a comment from the viewer.
    for (id, _) in fixture.posted.iter().step_by(10) {
        fixture.viewer.moments().like(*id).await?;
        fixture.viewer.moments().comment(*id, "赞 👍", None).await?;
    }
    let mut pages = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).context("bounds")?;
    let mut first_pages = pages.clone();
    for _ in 0..args.rounds {
        let mut before = None;
        let mut seen = 0;
        loop {
            if Instant::now() > deadline {
                bail!("the time limit of {} s ran out", args.time_limit);
            }
            let asked = Instant::now();
            let page = fixture.viewer.moments().feed(before, args.page).await?;
            let us = asked.elapsed().as_micros() as u64;
            pages.record(us.max(1))?;
            if before.is_none() {
                first_pages.record(us.max(1))?;
            }
            seen += page.posts.len();
            if page.posts.iter().any(|m| m.problem.is_some()) {
                bail!("a post did not open");
            }
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        if seen != total {
            bail!("a walk through the feed showed {seen} posts, not {total}");
        }
    }
    println!(
        "feed of {total} posts from {} friends, {} per page, {} walks (setup {:.1} s)",
        args.friends,
        args.page,
        args.rounds,
        setup.as_secs_f64()
    );
    println!("{}", line("every page", &pages));
    println!("{}", line("first page", &first_pages));
    fixture.close().await;
    server.shutdown().await;
    Ok(())
}

fn main() {
    uchat_tests::run_main("feedbench", run(Args::parse()));
}
