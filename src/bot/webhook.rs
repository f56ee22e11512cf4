//! Telegram's webhook mode (`KIOSK_WEBHOOK_URL`): updates arrive as POSTs on the
//! `KIOSK_LISTEN` server instead of through long polling.
//!
//! Each start registers the URL with a fresh random secret token, and a request
//! without that token is refused, so only Telegram can feed the shop updates. Updates
//! go to the dispatcher through a bounded queue: when the shop is busy the request
//! waits for room, and Telegram (which sends one chat's updates in order) waits with
//! it, instead of the shop buffering without limit. After the dispatcher is told to
//! stop, new requests get 503 and Telegram delivers them again after the restart.

use std::convert::Infallible;
use std::pin::Pin;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use futures_util::Stream;
use rand::Rng;
use rand::distributions::Alphanumeric;
use teloxide::prelude::*;
use teloxide::stop::{StopFlag, StopToken, mk_stop_token};
use teloxide::types::Update;
use teloxide::update_listeners::{AsUpdateStream, UpdateListener};
use tokio::sync::mpsc;
use url::Url;

use super::KioskBot;

const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
/// Updates accepted but not yet taken by the dispatcher.
const QUEUE: usize = 256;

/// The route to serve and the listener to dispatch from.
pub struct TelegramWebhook {
    pub router: Router,
    pub listener: WebhookListener,
}

/// Registers `url` with Telegram (`setWebhook` with a new secret token) and returns the
/// route for its path.
pub async fn register(
    bot: &KioskBot,
    url: &Url,
) -> Result<TelegramWebhook, teloxide::RequestError> {
    let secret = new_secret();
    bot.set_webhook(url.clone())
        .secret_token(secret.clone())
        .await?;
    Ok(receiver(url.path(), secret))
}

/// The route at `path` that takes updates carrying `secret`, and its listener.
pub fn receiver(path: &str, secret: String) -> TelegramWebhook {
    let (sender, updates) = mpsc::channel(QUEUE);
    let (stop, flag) = mk_stop_token();
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let router = Router::new()
        .route(&path, post(take_update))
        .with_state(Receiver {
            secret,
            sender,
            flag: flag.clone(),
        });
    TelegramWebhook {
        router,
        listener: WebhookListener {
            updates,
            stop,
            flag,
        },
    }
}

/// A secret token as Telegram allows it (1–256 of `A-Za-z0-9_-`).
fn new_secret() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(48)
        .map(char::from)
        .collect()
}

#[derive(Clone)]
struct Receiver {
    secret: String,
    sender: mpsc::Sender<Update>,
    flag: StopFlag,
}

async fn take_update(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let offered = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !same_bytes(offered, receiver.secret.as_bytes()) {
        tracing::warn!("a Telegram webhook request with a missing or wrong token header: refused");
        return StatusCode::UNAUTHORIZED;
    }
    if receiver.flag.is_stopped() {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let update: Update = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(error) => {
            // Telegram would send it again forever; nothing later can read it either.
            tracing::warn!(%error, "an update the Bot API types cannot read: skipped");
            return StatusCode::OK;
        }
    };
    match receiver.sender.send(update).await {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Compares without stopping at the first difference, so response times say nothing
/// about how much of a guessed token was right.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The dispatcher's source of updates in webhook mode.
pub struct WebhookListener {
    updates: mpsc::Receiver<Update>,
    stop: StopToken,
    flag: StopFlag,
}

impl<'a> AsUpdateStream<'a> for WebhookListener {
    type StreamErr = Infallible;
    type Stream = Pin<Box<dyn Stream<Item = Result<Update, Infallible>> + Send + 'a>>;

    fn as_stream(&'a mut self) -> Self::Stream {
        let flag = self.flag.clone();
        Box::pin(futures_util::stream::unfold(
            (&mut self.updates, flag),
            |(updates, mut flag)| async move {
                tokio::select! {
                    update = updates.recv() => update.map(|u| (Ok(u), (updates, flag))),
                    () = &mut flag => None,
                }
            },
        ))
    }
}

impl UpdateListener for WebhookListener {
    type Err = Infallible;

    fn stop_token(&mut self) -> StopToken {
        self.stop.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_in_telegrams_alphabet() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert_eq!(a.len(), 48);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn token_comparison_needs_every_byte() {
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"ab"));
        assert!(!same_bytes(b"", b"a"));
    }
}
