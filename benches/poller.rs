//! The poller against FazerCards' order-status budget: 10,000 open FazerCards orders in a
//! fresh store, the FazerCards fake enforcing the published 120 status calls per minute
//! (429 above; `GET /orders` and `GET /orders/:id` both count), the real engine with its
//! poller running at the default 5 s interval, and the fake finishing a few orders as
//! time goes on (as a provider would). Prints the busiest 60 s window of status calls,
//! the fake's 429s, the orders settled and how long a full sweep of the 10,000 takes.
//! Prints figures; asserts nothing about speed (that belongs to no test).
//!
//! Run: `cargo bench --bench poller` (about 2½ minutes). Longer or shorter:
//! `KIOSK_BENCH_SECONDS=600 cargo bench --bench poller`; `KIOSK_BENCH_ORDERS` changes
//! the 10,000, `KIOSK_BENCH_SETTLE_EVERY_MS` the pace of orders the fake finishes (3000).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use kiosk::config::{Config, Env};
use kiosk::domain::{OrderId, OrderStatus};
use kiosk::engine::Engine;
use kiosk::providers::ProviderRegistry;
use kiosk::providers::fazercards::FazerCardsProvider;
use kiosk::providers::fazercards::client::{ApiKey, FazerClient, RateLimits};
use kiosk::sandbox::fazercards::{self, FakeOptions};
use kiosk::sandbox::telegram::FakeTelegram;
use kiosk::store::Store;
use teloxide::prelude::*;
use tokio::sync::mpsc;

#[path = "../tests/fixtures/orders.rs"]
mod fixtures;
use fixtures::processing_order;

const TOKEN: &str = "123456:BENCH";
const BUYERS: i64 = 100;
const WINDOW: Duration = Duration::from_secs(60);
const PAGE: usize = 100;

fn env_number(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The most instants inside any sliding window of `WINDOW` (instants sorted).
fn busiest_window(instants: &[tokio::time::Instant]) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..instants.len() {
        while instants[end].duration_since(instants[start]) >= WINDOW {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let run_for = Duration::from_secs(env_number("KIOSK_BENCH_SECONDS", 120));
    let open_orders = env_number("KIOSK_BENCH_ORDERS", 10_000) as usize;
    let settle_every = Duration::from_millis(env_number("KIOSK_BENCH_SETTLE_EVERY_MS", 3_000));

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
    for id in 0..BUYERS {
        telegram
            .user(1_000 + id, "Buyer", None, "en")
            .send_command("/start");
    }
    let fake = fazercards::start("127.0.0.1:0".parse().expect("addr"), FakeOptions::default())
        .await
        .expect("fazercards fake");

    let seeding = Instant::now();
    let references = fake.seed_processing_orders(open_orders);
    let mut by_reference: HashMap<String, OrderId> = HashMap::new();
    for (i, reference) in references.iter().enumerate() {
        let buyer = 1_000 + (i as i64 % BUYERS);
        let id = processing_order(&store, buyer, reference).await;
        by_reference.insert(reference.clone(), id);
    }
    println!(
        "seeded {open_orders} processing FazerCards orders (store and fake) in {:.1?}",
        seeding.elapsed()
    );

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
    let (_events, events_rx) = mpsc::channel(64);

    let started = tokio::time::Instant::now();
    let wall = Instant::now();
    engine.start(events_rx);

    // The provider finishes orders as time goes on, oldest and newest alike.
    let mut finished: Vec<(String, chrono::DateTime<Utc>)> = Vec::new();
    let mut next = 0usize;
    while wall.elapsed() < run_for {
        tokio::time::sleep(settle_every).await;
        // Spread over the whole list: a stride through it.
        let pick = (next * 7_919) % references.len().max(1);
        next += 1;
        if fake.finish_order(&references[pick]) {
            finished.push((references[pick].clone(), Utc::now()));
        }
    }
    let elapsed = started.elapsed();
    engine.shutdown().await;

    let (granted, rejected) = fake.rate_log("order_status");
    let mut instants: Vec<tokio::time::Instant> = granted.iter().map(|(t, _)| *t).collect();
    instants.sort();
    let mut lists: Vec<tokio::time::Instant> = granted
        .iter()
        .filter(|(_, path)| path == "/orders")
        .map(|(t, _)| *t)
        .collect();
    lists.sort();
    let singles = granted.len() - lists.len();
    let all_429: usize = [
        "order_status",
        "catalog",
        "create_order",
        "account",
        "payment",
        "other",
    ]
    .iter()
    .map(|c| fake.rate_log(c).1)
    .sum();

    let mut settled = 0usize;
    let mut noticed: Vec<Duration> = Vec::new();
    for (reference, at) in &finished {
        if let Some(id) = by_reference.get(reference)
            && let Ok(Some(order)) = store.order(*id).await
            && order.status == OrderStatus::Completed
        {
            settled += 1;
            noticed.push((order.updated_at - *at).to_std().unwrap_or_default());
        }
    }
    noticed.sort();
    let still_open = store
        .orders_with_status(&[OrderStatus::Processing], u32::MAX)
        .await
        .map(|o| o.len())
        .unwrap_or(0);

    let pages_per_sweep = open_orders.div_ceil(PAGE);
    let minutes = elapsed.as_secs_f64() / 60.0;
    println!();
    println!("run: {elapsed:.1?} with the poller (interval 5 s), {open_orders} open orders");
    println!(
        "status calls: {} in total ({} list pages of {PAGE}, {singles} single orders), {:.1} per minute on average",
        granted.len(),
        lists.len(),
        granted.len() as f64 / minutes.max(f64::EPSILON)
    );
    println!(
        "status calls in the busiest sliding 60 s window: {} (budget 120)",
        busiest_window(&instants)
    );
    println!("429 answers from the fake: {rejected} for order status, {all_429} in all categories");
    println!(
        "orders settled: {settled} of {} the provider finished during the run ({} still processing)",
        finished.len(),
        still_open
    );
    if let (Some(first), Some(last)) = (noticed.first(), noticed.last()) {
        println!(
            "provider finished → order completed by the poller alone: median {:.1?}, min {first:.1?}, max {last:.1?}",
            noticed[noticed.len() / 2]
        );
    }
    if lists.len() >= pages_per_sweep {
        let sweeps: Vec<String> = lists
            .chunks_exact(pages_per_sweep)
            .map(|pages| format!("{:.1?}", pages[pages.len() - 1].duration_since(pages[0])))
            .collect();
        println!(
            "full sweeps of {open_orders} orders ({pages_per_sweep} list pages each), measured: {}",
            sweeps.join(", ")
        );
        // The first sweep enjoys an empty 60 s window; after it the pace is the share.
        if let Some(end) = lists.last() {
            let recent = lists
                .iter()
                .filter(|t| end.duration_since(**t) < WINDOW)
                .count();
            if lists.len() > recent && recent > 1 {
                println!(
                    "steady state: {recent} list pages in the last 60 s → a full sweep every {:.0} s (computed)",
                    pages_per_sweep as f64 * 60.0 / recent as f64
                );
            }
        }
    } else if lists.len() >= 2 {
        let span = lists[lists.len() - 1].duration_since(lists[0]);
        let per_page = span.as_secs_f64() / (lists.len() - 1) as f64;
        println!(
            "full sweep of {open_orders} orders ({pages_per_sweep} list pages): {:.1?} (computed from the measured rate, {} pages in {span:.1?}; run longer for a measured one)",
            Duration::from_secs_f64(per_page * pages_per_sweep as f64),
            lists.len()
        );
    } else {
        println!("full sweep: too few list pages in this run to say");
    }
    println!(
        "for comparison, one status call per order inside 120/min: {:.1} minutes per sweep",
        open_orders as f64 / 120.0
    );
    telegram.shutdown().await;
}
