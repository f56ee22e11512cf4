//! The FazerCards webhook receiver: an axum router the engine mounts on `KIOSK_LISTEN`.
//!
//! For each `POST` [`WEBHOOK_PATH`]:
//! 1. The raw body's HMAC-SHA256 must match `X-Webhook-Signature` (constant-time,
//!    [`client::verify_signature`]); otherwise 401, and nothing is read or written.
//! 2. The body is decoded; the event id is the body's `event_id` (covered by the
//!    signature), else the `X-Webhook-Event-Id` header; both present and different is 400.
//! 3. Only `order.status_changed` is acted on; every other event is answered 200.
//! 4. The delivery is recorded with [`Store::first_webhook_delivery`]; a replay is answered
//!    200 and changes nothing.
//! 5. A [`ProviderEvent`] (provider + order id, no status, no goods) goes to the engine,
//!    which asks `order_status` itself. When the engine cannot take it (channel closed,
//!    or full for [`ENGINE_WAIT`]) the delivery is forgotten and 503 asks FazerCards to
//!    retry later.
//!
//! The handling runs in its own task, so a sender hanging up mid-request cannot leave a
//! delivery recorded but never passed on.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::sync::mpsc;

use super::client::{self, WebhookEventKind};
use crate::providers::{ProviderEvent, ProviderId};
use crate::secret::Secret;
use crate::store::Store;

/// Where the router listens for FazerCards deliveries.
pub const WEBHOOK_PATH: &str = "/webhooks/fazercards";
/// How long a delivery waits for room in the engine's channel before asking for a retry.
pub const ENGINE_WAIT: Duration = Duration::from_secs(5);

const PROVIDER: ProviderId = ProviderId::FazerCards;

/// What the receiver needs: the webhook secret, the store (for deduplication) and the
/// engine's event channel. `Debug` hides the secret.
#[derive(Clone)]
pub struct WebhookState {
    inner: Arc<Inner>,
}

struct Inner {
    secret: Secret,
    store: Store,
    events: mpsc::Sender<ProviderEvent>,
}

impl WebhookState {
    pub fn new(secret: Secret, store: Store, events: mpsc::Sender<ProviderEvent>) -> Self {
        Self {
            inner: Arc::new(Inner {
                secret,
                store,
                events,
            }),
        }
    }
}

impl fmt::Debug for WebhookState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookState")
            .field("secret", &self.inner.secret)
            .finish_non_exhaustive()
    }
}

/// `POST /webhooks/fazercards`, to be merged into the engine's listener.
pub fn webhook_router(state: WebhookState) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .with_state(state)
}

async fn receive(State(state): State<WebhookState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    match tokio::spawn(handle(state, headers, body)).await {
        Ok(status) => status,
        Err(error) => {
            tracing::error!(%error, "FazerCards webhook handler failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

async fn handle(state: WebhookState, headers: HeaderMap, body: Bytes) -> StatusCode {
    let inner = &state.inner;
    let signed = header(&headers, client::SIGNATURE_HEADER).is_some_and(|signature| {
        client::verify_signature(inner.secret.expose().as_bytes(), &body, signature)
    });
    if !signed {
        tracing::warn!(
            bytes = body.len(),
            "FazerCards webhook with a missing or bad signature refused"
        );
        return StatusCode::UNAUTHORIZED;
    }
    let event = match client::parse_webhook_event(&body) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, "signed FazerCards webhook body cannot be read");
            return StatusCode::BAD_REQUEST;
        }
    };
    let header_id = header(&headers, client::EVENT_ID_HEADER);
    let body_id = Some(event.event_id.trim()).filter(|id| !id.is_empty());
    let event_id = match (body_id, header_id) {
        (Some(b), Some(h)) if b != h => {
            tracing::warn!(
                body = b,
                header = h,
                "FazerCards webhook event ids disagree"
            );
            return StatusCode::BAD_REQUEST;
        }
        (Some(id), _) | (None, Some(id)) => id.to_owned(),
        (None, None) => return StatusCode::BAD_REQUEST,
    };
    if event.kind() != WebhookEventKind::OrderStatusChanged {
        tracing::debug!(event = %event.event, %event_id, "FazerCards webhook ignored");
        return StatusCode::OK;
    }
    let Some(change) = event.order_status_change() else {
        tracing::warn!(%event_id, "order.status_changed without an order id or status; ignored");
        return StatusCode::OK;
    };
    match inner
        .store
        .first_webhook_delivery(PROVIDER, &event_id)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(%event_id, "FazerCards webhook replay ignored");
            return StatusCode::OK;
        }
        Err(error) => {
            tracing::error!(%error, %event_id, "cannot record a FazerCards webhook delivery");
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    let sent = match tokio::time::timeout(ENGINE_WAIT, inner.events.reserve()).await {
        Ok(Ok(permit)) => {
            permit.send(ProviderEvent {
                provider: PROVIDER,
                provider_order_id: change.order_id.clone(),
            });
            true
        }
        Ok(Err(_closed)) => false,
        Err(_elapsed) => false,
    };
    if sent {
        tracing::info!(%event_id, order_id = %change.order_id, status = change.status.as_str(), "FazerCards order changed");
        return StatusCode::OK;
    }
    tracing::warn!(%event_id, "the engine is not taking events; asking FazerCards to retry");
    if let Err(error) = inner
        .store
        .forget_webhook_delivery(PROVIDER, &event_id)
        .await
    {
        tracing::error!(%error, %event_id, "cannot forget a FazerCards webhook delivery");
    }
    StatusCode::SERVICE_UNAVAILABLE
}
