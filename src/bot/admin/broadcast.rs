//! `/broadcast <text>`: after a confirm step, the text (plain, as typed) goes to every
//! user who has not blocked the bot, admins excepted, one message at a time.
//!
//! Telegram allows about 30 messages a second overall. Every call the broadcast makes
//! (the messages and the edits of its progress message) starts at least
//! [`BROADCAST_GAP`] after the previous one, and each waits for Telegram's answer before
//! the next begins; so any 26 consecutive calls span at least 24 gaps (960 ms) and any
//! 31 at least 1,160 ms, even if the network delays some of them: never more than 30
//! in any second, with room left for the shop's ordinary replies meanwhile.
//!
//! The broadcast paces itself and calls the plain `Bot` under the shop's `Throttle`:
//! the throttle releases queued requests in 250 ms batches, so a one-at-a-time sender
//! behind it would get 4 messages a second, and a batch lands as a burst. The progress
//! message is edited every few seconds and ends with the counts: sent, blocked (the
//! user blocked the bot: recorded, and skipped by later broadcasts), failed. A
//! `Retry-After` answer is waited out and the message tried once more.
//!
//! A broadcast runs in the background of the process that started it; if the process
//! stops, the broadcast stops where it was (the admin has the counts so far).

use std::time::Duration;

use rust_i18n::t;
use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::MessageId;
use tokio::time::Instant;

use super::{Action, Ctx};
use crate::bot::HandlerResult;

/// The least time between two calls of a broadcast: 40 ms, 25 a second at most.
pub const BROADCAST_GAP: Duration = Duration::from_millis(40);
/// How often the progress message is edited.
const PROGRESS_EVERY: Duration = Duration::from_secs(3);
/// Telegram's limit on a message's text.
const MAX_TEXT_CHARS: usize = 4096;

/// How a broadcast ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastCounts {
    pub total: usize,
    pub sent: usize,
    pub blocked: usize,
    pub failed: usize,
}

impl BroadcastCounts {
    fn done(&self) -> usize {
        self.sent + self.blocked + self.failed
    }
}

/// Spaces calls at least [`BROADCAST_GAP`] apart.
struct Pacer {
    next: Instant,
}

impl Pacer {
    fn new() -> Self {
        Self {
            next: Instant::now(),
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep_until(self.next).await;
        self.next = Instant::now() + BROADCAST_GAP;
    }
}

pub(super) async fn command(ctx: &Ctx, args: &str) -> HandlerResult {
    let text = args.trim();
    if text.is_empty() {
        ctx.say(t!("admin.usage.broadcast", locale = ctx.l()))
            .await?;
        return Ok(());
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        ctx.say(t!(
            "admin.broadcast.too_long",
            locale = ctx.l(),
            max = MAX_TEXT_CHARS
        ))
        .await?;
        return Ok(());
    }
    let recipients = ctx
        .shop
        .store
        .broadcast_recipients(&ctx.shop.config.admins)
        .await?;
    if recipients.is_empty() {
        ctx.say(t!("admin.broadcast.nobody", locale = ctx.l()))
            .await?;
        return Ok(());
    }
    let question = t!(
        "admin.broadcast.confirm",
        locale = ctx.l(),
        count = recipients.len(),
        text = text
    )
    .into_owned();
    let label = t!(
        "admin.broadcast.button",
        locale = ctx.l(),
        count = recipients.len()
    )
    .into_owned();
    ctx.ask(question, label, Action::Broadcast(text.to_owned()))
        .await
}

pub(super) async fn confirmed(ctx: &Ctx, text: String) -> HandlerResult {
    let recipients = ctx
        .shop
        .store
        .broadcast_recipients(&ctx.shop.config.admins)
        .await?;
    let counts = BroadcastCounts {
        total: recipients.len(),
        ..Default::default()
    };
    let progress = ctx.say(progress_text(ctx, &counts)).await?;
    tracing::info!(
        admin = ctx.admin,
        recipients = counts.total,
        "broadcast started"
    );
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let counts = run(&ctx, &recipients, &text, progress.id, counts).await;
        tracing::info!(admin = ctx.admin, ?counts, "broadcast finished");
    });
    Ok(())
}

fn progress_text(ctx: &Ctx, counts: &BroadcastCounts) -> String {
    t!(
        "admin.broadcast.progress",
        locale = ctx.l(),
        done = counts.done(),
        total = counts.total,
        sent = counts.sent,
        blocked = counts.blocked,
        failed = counts.failed
    )
    .into_owned()
}

async fn run(
    ctx: &Ctx,
    recipients: &[i64],
    text: &str,
    progress: MessageId,
    mut counts: BroadcastCounts,
) -> BroadcastCounts {
    let mut pacer = Pacer::new();
    let mut last_progress = Instant::now();
    for &user in recipients {
        pacer.wait().await;
        let mut outcome = ctx.bot.inner().send_message(ChatId(user), text).await;
        if let Err(RequestError::RetryAfter(wait)) = &outcome {
            tokio::time::sleep(wait.duration()).await;
            pacer.wait().await;
            outcome = ctx.bot.inner().send_message(ChatId(user), text).await;
        }
        match outcome {
            Ok(_) => counts.sent += 1,
            Err(RequestError::Api(ApiError::BotBlocked)) => {
                counts.blocked += 1;
                if let Err(error) = ctx.shop.store.set_user_blocked(user, true).await {
                    tracing::warn!(user, %error, "recording a blocked user");
                }
            }
            Err(error) => {
                counts.failed += 1;
                tracing::info!(user, %error, "a broadcast message was not delivered");
            }
        }
        if last_progress.elapsed() >= PROGRESS_EVERY && counts.done() < counts.total {
            pacer.wait().await;
            edit(ctx, progress, progress_text(ctx, &counts)).await;
            last_progress = Instant::now();
        }
    }
    pacer.wait().await;
    let done = t!(
        "admin.broadcast.done",
        locale = ctx.l(),
        total = counts.total,
        sent = counts.sent,
        blocked = counts.blocked,
        failed = counts.failed
    )
    .into_owned();
    edit(ctx, progress, done).await;
    counts
}

async fn edit(ctx: &Ctx, message: MessageId, text: String) {
    if let Err(error) = ctx
        .bot
        .inner()
        .edit_message_text(ctx.chat, message, text)
        .await
    {
        tracing::debug!(%error, "editing the broadcast progress");
    }
}
