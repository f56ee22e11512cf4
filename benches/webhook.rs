//! Webhook → buyer latency: FazerCards finishes open orders one after another and its
//! fake POSTs each signed `order.status_changed` event (HMAC-SHA256, as the real API)
//! to the shop's webhook route on a loopback `KIOSK_LISTEN` server; the engine asks the
//! order's status (inside the 120/min status budget the fake enforces), completes the
//! order and messages the buyer. Timed from the provider finishing the order until the
//! fake Telegram has the buyer's message. The poller runs as in production (5 s).
//! Prints figures; asserts nothing about speed (that belongs to no test).
//!
//! Run: `cargo bench --bench webhook` (about 2½ minutes). `KIOSK_BENCH_EVENTS` (200)
//! and `KIOSK_BENCH_EVENT_RATE` (events per second, 1.5: above the 1/s FazerCards'
//! 60 order creations a minute allow) change the load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kiosk::config::{Config, Env};
use kiosk::engine::Engine;
use kiosk::providers::ProviderRegistry;
use kiosk::providers::fazercards::FazerCardsProvider;
use kiosk::providers::fazercards::client::{ApiKey, FazerClient, RateLimits};
use kiosk::providers::fazercards::webhook::{WEBHOOK_PATH, WebhookState, webhook_router};
use kiosk::sandbox::fazercards::{self, FakeOptions};
use kiosk::sandbox::telegram::FakeTelegram;
use kiosk::secret::Secret;
use kiosk::store::Store;
use teloxide::prelude::*;
use tokio::sync::mpsc;

#[path = "../tests/fixtures/orders.rs"]
mod fixtures;
use fixtures::processing_order;

const TOKEN: &str = "123456:BENCH";
const WEBHOOK_SECRET: &str = "bench-webhook-secret";
const WAIT: Duration = Duration::from_secs(120);

fn env_value<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let events: usize = env_value("KIOSK_BENCH_EVENTS", 200);
    let rate: f64 = env_value("KIOSK_BENCH_EVENT_RATE", 1.5_f64).max(0.01);

    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("bench.db").display());
    let env: Env = [
        ("KIOSK_DATABASE_URL", db.as_str()),
        ("KIOSK_ADMINS", "900"),
        ("KIOSK_POLL_INTERVAL", "5s"),
        ("KIOSK_FULFILMENT_ALERT_AFTER", "6h"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = Arc::new(
        Config::from_parts(&env, std::path::Path::new("bench.toml"), None).expect("config"),
    );
    let store = Store::open_and_migrate(&db).await.expect("store");
    let telegram = FakeTelegram::start("127.0.0.1:0".parse().expect("addr"), TOKEN)
        .await
        .expect("fake telegram");
    let fake = fazercards::start("127.0.0.1:0".parse().expect("addr"), FakeOptions::default())
        .await
        .expect("fazercards fake");

    // One buyer per order, so each message is waited for in its own chat.
    let references = fake.seed_processing_orders(events);
    let mut orders = Vec::with_capacity(events);
    for (i, reference) in references.iter().enumerate() {
        let buyer = 10_000 + i as i64;
        telegram
            .user(buyer, "Buyer", None, "en")
            .send_command("/start");
        orders.push((buyer, processing_order(&store, buyer, reference).await));
    }

    let client = FazerClient::new(
        fake.base_url(),
        ApiKey::new(fake.api_key()),
        Duration::from_secs(30),
        RateLimits::default(),
    )
    .expect("client");
    let mut registry = ProviderRegistry::new(config.providers.preferences.clone());
    registry.register(Arc::new(FazerCardsProvider::from_client(client)));
    let bot = Bot::new(TOKEN)
        .set_api_url(telegram.api_url().parse().expect("url"))
        .throttle(Default::default());
    let engine = Engine::new(store.clone(), bot, config, registry);
    let (events_tx, events_rx) = mpsc::channel(64);
    engine.start(events_rx);

    // The KIOSK_LISTEN server with the webhook route, as `kiosk run` mounts it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let listen = listener.local_addr().expect("address");
    let router = webhook_router(WebhookState::new(
        Secret::new(WEBHOOK_SECRET),
        store.clone(),
        events_tx,
    ));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    fake.set_webhook(
        format!("http://{listen}{WEBHOOK_PATH}")
            .parse()
            .expect("webhook url"),
        WEBHOOK_SECRET,
    );

    let telegram = Arc::new(telegram);
    let gap = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let mut waits = Vec::with_capacity(events);
    for (i, (buyer, order)) in orders.iter().enumerate() {
        let due = started + gap.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let needle = format!("#{order}");
        let telegram = telegram.clone();
        let finished_at = Instant::now();
        if !fake.finish_order(&references[i]) {
            continue;
        }
        let chat = *buyer;
        waits.push(tokio::spawn(async move {
            telegram
                .wait_for(
                    chat,
                    move |m| m.body().contains(&needle) && m.body().contains("complete"),
                    WAIT,
                )
                .await
                .ok()
                .map(|_| finished_at.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(events);
    let mut lost = 0usize;
    for wait in waits {
        match wait.await {
            Ok(Some(latency)) => latencies.push(latency),
            _ => lost += 1,
        }
    }
    let elapsed = started.elapsed();
    engine.shutdown().await;
    server.abort();

    latencies.sort();
    let (granted, rejected) = fake.rate_log("order_status");
    let lists = granted.iter().filter(|(_, p)| p == "/orders").count();
    println!();
    println!(
        "{} webhook events at {rate} a second over {elapsed:.1?} (poller running, interval 5 s)",
        latencies.len() + lost
    );
    println!(
        "provider finished → buyer's message at the fake Telegram: p50 {:.1?}, p99 {:.1?}, max {:.1?}{}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
        if lost > 0 {
            format!(" ({lost} never arrived within {WAIT:?})")
        } else {
            String::new()
        }
    );
    println!(
        "under 1 s: {} of {}",
        latencies
            .iter()
            .filter(|l| **l < Duration::from_secs(1))
            .count(),
        latencies.len() + lost
    );
    println!(
        "status calls: {} ({lists} list pages, {} single orders); 429 answers from the fake: {rejected}",
        granted.len(),
        granted.len() - lists
    );
    telegram.shutdown().await;
}
