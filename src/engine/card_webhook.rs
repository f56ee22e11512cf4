//! The CryptoCardy webhook receiver: `POST /webhooks/cryptocardy` on `KIOSK_LISTEN`,
//! mounted by `kiosk run` when `KIOSK_CRYPTOCARDY_WEBHOOK_URL` is set (that URL, public,
//! must lead here). Each new card registers it with a secret derived from
//! `KIOSK_SECRET_KEY`; a delivery is checked against that secret and handed to the
//! [`CardDesk`], which refreshes the card it names from the provider.
//!
//! Answers: 200 handled (or about no card of ours, or a replay), 401 unsigned or forged,
//! 400 unreadable, 503 the provider could not be asked (its retry tries again), 500 the
//! shop's own trouble. Nothing of the body is logged.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::bot::KioskBot;
use crate::cards::CardError;
use crate::engine::cards::CardDesk;
use crate::providers::cryptocardy::client::SIGNATURE_HEADERS;

/// Where the router listens for CryptoCardy deliveries.
pub const WEBHOOK_PATH: &str = "/webhooks/cryptocardy";

#[derive(Clone)]
struct Receiver {
    desk: Arc<CardDesk>,
    bot: KioskBot,
}

/// The route, over the desk that sells the cards and the bot that tells their owners.
pub fn webhook_router(desk: Arc<CardDesk>, bot: KioskBot) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .with_state(Receiver { desk, bot })
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some(signature) = SIGNATURE_HEADERS
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|value| value.to_str().ok())
    else {
        tracing::warn!("cryptocardy webhook without a signature refused");
        return StatusCode::UNAUTHORIZED;
    };
    match receiver
        .desk
        .receive_webhook(&receiver.bot, &body, signature)
        .await
    {
        Ok(()) => StatusCode::OK,
        Err(CardError::BadSignature) => StatusCode::UNAUTHORIZED,
        Err(CardError::NotFound) => StatusCode::OK,
        Err(CardError::Unavailable(error) | CardError::Uncertain(error)) => {
            tracing::info!(%error, "cryptocardy webhook: the card could not be refreshed yet");
            StatusCode::SERVICE_UNAVAILABLE
        }
        Err(CardError::Provider(error)) => {
            tracing::warn!(%error, "cryptocardy webhook not understood");
            StatusCode::BAD_REQUEST
        }
        Err(error) => {
            tracing::error!(%error, "cryptocardy webhook");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}
