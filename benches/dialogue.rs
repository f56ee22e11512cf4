//! Dialogue throughput and latency: 200 buyers at once moving through menus over the
//! fake Bot API on loopback, then the resident memory with 10,000 stored dialogues.
//! Prints figures; asserts nothing about speed (that belongs to no test).
//!
//! Run: `cargo bench --bench dialogue`

use std::sync::Arc;
use std::time::{Duration, Instant};

use kiosk::bot::{self, KioskBot, Shop, State};
use kiosk::config::{Config, Env};
use kiosk::engine::Engine;
use kiosk::providers::ProviderRegistry;
use kiosk::sandbox::telegram::{FakeTelegram, SimUser};
use kiosk::store::{DialogueStorage, Store};
use teloxide::adaptors::throttle::Limits;
use teloxide::dispatching::dialogue::Storage;
use teloxide::prelude::*;
use teloxide::types::ChatId;

const TOKEN: &str = "123456:BENCH";
const BUYERS: i64 = 200;
const ROUNDS: usize = 10;
const STORED_DIALOGUES: i64 = 10_000;
const WAIT: Duration = Duration::from_secs(60);

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// One buyer: /start, then ROUNDS × (My orders, Menu), each tap timed until the edit
/// shows at the fake.
async fn buyer_walk(user: SimUser) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(ROUNDS * 2 + 1);
    let started = Instant::now();
    user.send_command("/start");
    let menu = user
        .wait_for(
            |m| m.from_bot && m.button_with_text("🧾 My orders").is_some(),
            WAIT,
        )
        .await
        .expect("menu");
    latencies.push(started.elapsed());
    let id = menu.message_id;
    for round in 0..ROUNDS {
        // My orders (an empty list), then back to the menu: two edits of one message.
        let tapped = Instant::now();
        user.tap_button(id, "🧾 My orders").expect("button");
        let edits = 2 * round as u32 + 1;
        user.wait_for(
            move |m| m.message_id == id && m.edits >= edits && m.body().contains("no orders yet"),
            WAIT,
        )
        .await
        .expect("orders screen");
        latencies.push(tapped.elapsed());
        let tapped = Instant::now();
        user.tap_button(id, "🏠 Menu").expect("button");
        let edits = edits + 1;
        user.wait_for(
            move |m| {
                m.message_id == id
                    && m.edits >= edits
                    && m.button_with_text("🧾 My orders").is_some()
            },
            WAIT,
        )
        .await
        .expect("menu screen");
        latencies.push(tapped.elapsed());
    }
    latencies
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let telegram = FakeTelegram::start("127.0.0.1:0".parse().unwrap(), TOKEN)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = Store::open_and_migrate(&url).await.unwrap();
    let env: Env = [
        ("KIOSK_DATABASE_URL".to_owned(), url),
        ("KIOSK_POLL_INTERVAL".to_owned(), "5s".to_owned()),
    ]
    .into_iter()
    .collect();
    let toml = "[limits]\nflood_per_minute = 100000\n";
    let config =
        Arc::new(Config::from_parts(&env, std::path::Path::new("bench.toml"), Some(toml)).unwrap());
    // Telegram's own per-chat limits are the real bottleneck in production; lifted here
    // to measure the shop.
    let bot: KioskBot = Bot::new(TOKEN)
        .set_api_url(telegram.api_url().parse().unwrap())
        .throttle(Limits {
            messages_per_sec_chat: 10_000,
            messages_per_min_chat: 1_000_000,
            messages_per_min_channel_or_supergroup: 1_000_000,
            messages_per_sec_overall: 100_000,
        });
    let engine = Engine::new(
        store.clone(),
        bot.clone(),
        config.clone(),
        ProviderRegistry::default(),
    );
    let shop = Arc::new(Shop::new(
        config,
        store.clone(),
        ProviderRegistry::default(),
    ));
    let mut dispatcher = bot::dispatcher(bot, shop, engine);
    let shutdown = dispatcher.shutdown_token();
    let task = tokio::spawn(async move { dispatcher.dispatch().await });

    let rss_before = rss_kib();
    let started = Instant::now();
    let walks: Vec<_> = (0..BUYERS)
        .map(|i| {
            let user = telegram.user(1_000 + i, "Bench", None, "en");
            tokio::spawn(buyer_walk(user))
        })
        .collect();
    let mut latencies = Vec::new();
    for walk in walks {
        latencies.extend(walk.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let updates = latencies.len();
    println!(
        "dialogue: {BUYERS} concurrent buyers, {updates} updates in {:.2} s",
        elapsed.as_secs_f64()
    );
    println!(
        "  throughput: {:.0} updates/s",
        updates as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  reply latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );

    let storage = DialogueStorage::<State>::new(store.clone());
    for chat in 0..STORED_DIALOGUES {
        storage
            .clone()
            .update_dialogue(ChatId(10_000_000 + chat), State::Start)
            .await
            .unwrap();
    }
    let rss_after = rss_kib();
    match (rss_before, rss_after) {
        (Some(before), Some(after)) => println!(
            "memory: resident {:.1} MB after {STORED_DIALOGUES} stored dialogues (was {:.1} MB before the run; includes the fake Bot API in the same process)",
            after as f64 / 1024.0,
            before as f64 / 1024.0
        ),
        _ => println!("memory: /proc/self/status not available on this system"),
    }
    if let Ok(done) = shutdown.shutdown() {
        done.await;
    }
    task.await.unwrap();
}
