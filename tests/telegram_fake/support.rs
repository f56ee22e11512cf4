//! Shared setup for the fake Telegram tests: a fake server, a real teloxide `Bot`
//! pointed at it, and helpers to drain updates the way a polling bot does.
#![allow(dead_code)]

use std::time::Duration;

use kiosk::sandbox::telegram::{FakeTelegram, SimUser};
use teloxide::prelude::*;
use teloxide::types::{Update, UpdateKind};

pub const TOKEN: &str = "123:TEST";
pub const WAIT: Duration = Duration::from_secs(5);

/// A 1x1 RGBA PNG.
pub const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0xDA, 0x63, 0x64, 0x60, 0xF8, 0x5F,
    0x0F, 0x00, 0x02, 0x87, 0x01, 0x80, 0xEB, 0x47, 0xBA, 0x92, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

pub async fn start() -> (FakeTelegram, Bot) {
    let fake = FakeTelegram::start("127.0.0.1:0".parse().expect("addr"), TOKEN)
        .await
        .expect("fake telegram starts");
    let bot = Bot::new(TOKEN).set_api_url(fake.api_url().parse().expect("api url"));
    (fake, bot)
}

/// A fake, a bot, and user 42 ("Alice", @alice, en) who already sent /start.
/// The /start update is confirmed so tests begin with an empty queue.
pub async fn start_with_alice() -> (FakeTelegram, Bot, SimUser) {
    let (fake, bot) = start().await;
    let alice = fake.user(42, "Alice", Some("alice"), "en");
    alice.send_command("/start");
    let ups = next_updates(&bot, 1).await;
    assert_eq!(ups.len(), 1);
    (fake, bot, alice)
}

/// Long-polls (timeout 2 s per call) until at least `n` updates arrived, confirms them
/// (next call's offset) and returns them.
pub async fn next_updates(bot: &Bot, n: usize) -> Vec<Update> {
    let mut got: Vec<Update> = Vec::new();
    let mut offset: Option<i32> = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} updates arrived",
            got.len()
        );
        let mut req = bot.get_updates().timeout(2);
        if let Some(o) = offset {
            req = req.offset(o);
        }
        let batch = req.await.expect("getUpdates");
        for u in batch {
            offset = Some(u.id.0 as i32 + 1);
            got.push(u);
        }
    }
    if let Some(o) = offset {
        bot.get_updates()
            .offset(o)
            .timeout(0)
            .await
            .expect("confirm updates");
    }
    got
}

pub fn message(u: &Update) -> &Message {
    match &u.kind {
        UpdateKind::Message(m) => m,
        other => panic!("expected a message update, got {other:?}"),
    }
}
