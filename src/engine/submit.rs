//! Paid → submitted → the provider. The row is written before every call: the order
//! moves to `submitted` (provider set) first, and `submit_started_at` marks a call that
//! may be in flight. The stored idempotency key goes with every call.
//!
//! Provider answers: an order (any status) → [`Engine::apply_answer`]; retryable →
//! the order stays submitted and is tried again later; rejected (or the provider's
//! configuration is broken) → the next provider that sells the same goods for no more
//! than the buyer paid, else failed → refund; ambiguous → `needs_attention` and the
//! admins are alerted, never retried blindly.
//!
//! After a crash, a submitted order with no provider order but a call marked in flight
//! is placed again with the same key only where the provider is replay-safe; elsewhere
//! the provider is asked first (`reconcile`), and the order is placed again only when
//! the provider shows no such order.

use std::sync::Arc;

use chrono::Utc;
use rust_i18n::t;

use super::notify::reason_to_column;
use super::{Engine, EngineError, Flow, Next};
use crate::domain::OrderStatus;
use crate::providers::{OrderRequest, ProductRef, Provider, ProviderError};
use crate::store::{EngineStep, Order, StoreError, SubmitMark};

/// How far before the recorded start of an interrupted call reconciliation looks
/// (clock differences between us and the provider).
const RECONCILE_MARGIN: chrono::Duration = chrono::Duration::minutes(2);

pub(crate) fn request_of(order: &Order, product: &ProductRef) -> OrderRequest {
    OrderRequest {
        product: product.clone(),
        recipient: order.recipient.clone(),
        quantity: order.quantity,
        amount: order.amount.clone(),
    }
}

impl Engine {
    /// Applies steps in one transaction; `Ok(false)` when another task moved the order
    /// first (the caller looks at the order again).
    pub(crate) async fn apply(&self, steps: &[EngineStep]) -> Result<bool, EngineError> {
        match self.inner.store.apply_steps(&Self::actor(), steps).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict { id, actual, .. }) => {
                tracing::debug!(order = %id, ?actual, "another task moved the order first");
                Ok(false)
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Paid → submitted at the order's provider: the row before any call.
    pub(crate) async fn submit_paid(&self, order: &Order) -> Result<Flow, EngineError> {
        let alert_after =
            chrono::Duration::from_std(self.inner.config.limits.fulfilment_alert_after)
                .unwrap_or(chrono::Duration::minutes(30));
        let mut step = EngineStep::new(
            order.id,
            OrderStatus::Paid,
            OrderStatus::Submitted,
            format!("submitting to {}", order.provider),
        );
        step.changes.provider = Some(order.provider);
        step.changes.fulfilment_deadline = Some(Utc::now() + alert_after);
        step.submit = SubmitMark::Clear;
        self.apply(&[step]).await?;
        Ok(Flow::Again)
    }

    /// A submitted order without a provider order: place it, or first find out what
    /// became of a call that was interrupted.
    pub(crate) async fn submit_pending(&self, order: &Order) -> Result<Flow, EngineError> {
        let Some(provider) = self.inner.registry.get(order.provider) else {
            let error = ProviderError::Configuration {
                provider: order.provider,
                detail: "the provider is not enabled".into(),
            };
            return self.reroute_or_fail(order, error).await;
        };
        let request = request_of(order, &order.product);
        if let Some(started) = self.inner.store.submit_started_at(order.id).await?
            && !provider.replay_safe(&order.product)
        {
            match provider
                .reconcile(order.id, &request, started - RECONCILE_MARGIN)
                .await
            {
                Ok(Some(found)) => {
                    tracing::info!(order = %order.id, provider_order = %found.provider_order_id, "reconciled an interrupted call");
                    return self
                        .apply_answer(order, Some(found.provider_order_id), found.status)
                        .await;
                }
                Ok(None) => {
                    tracing::info!(order = %order.id, "the provider has no such order: placing it again");
                }
                Err(ProviderError::Retryable { retry_after, .. }) => {
                    return Ok(Flow::Wait(retry_after.map_or(Next::Poll, Next::After)));
                }
                Err(error @ ProviderError::Configuration { .. }) => {
                    tracing::warn!(order = %order.id, %error, "cannot reconcile now");
                    return Ok(Flow::Wait(Next::Poll));
                }
                Err(error) => {
                    return self
                        .park(order, &format!("reconciliation failed: {error}"), None)
                        .await;
                }
            }
        }
        self.place(order, provider, request).await
    }

    async fn place(
        &self,
        order: &Order,
        provider: Arc<dyn Provider>,
        request: OrderRequest,
    ) -> Result<Flow, EngineError> {
        if !self
            .inner
            .store
            .mark_submit(order.id, SubmitMark::Start(Utc::now()))
            .await?
        {
            return Ok(Flow::Again);
        }
        let answer = provider
            .place_order(order.id, &order.idempotency_key, &request)
            .await;
        match answer {
            Ok(placed) => {
                tracing::info!(order = %order.id, provider = %order.provider, provider_order = %placed.provider_order_id, "placed");
                self.apply_answer(order, Some(placed.provider_order_id), placed.status)
                    .await
            }
            Err(ProviderError::Retryable {
                retry_after,
                detail,
                ..
            }) => {
                tracing::info!(order = %order.id, %detail, "the provider asks to try again later");
                self.inner
                    .store
                    .mark_submit(order.id, SubmitMark::Clear)
                    .await?;
                Ok(Flow::Wait(retry_after.map_or(Next::Poll, Next::After)))
            }
            Err(ProviderError::Ambiguous {
                provider_order_id,
                detail,
                ..
            }) => self.park(order, &detail, provider_order_id).await,
            Err(error) => self.reroute_or_fail(order, error).await,
        }
    }

    /// The providers after the order's own in the preference order that sell the same
    /// goods (only provider-neutral products, Stars and Premium, can move).
    fn alternatives(&self, order: &Order) -> Vec<(Arc<dyn Provider>, ProductRef)> {
        let selling = self.inner.registry.for_family(order.family);
        let rest: Vec<Arc<dyn Provider>> =
            match selling.iter().position(|p| p.id() == order.provider) {
                Some(at) => selling[at + 1..].to_vec(),
                None => selling
                    .into_iter()
                    .filter(|p| p.id() != order.provider)
                    .collect(),
            };
        rest.into_iter()
            .filter_map(|p| order.product.at(p.id()).map(|product| (p, product)))
            .collect()
    }

    /// The provider refused before charging: the next one that can sell it for no more
    /// than the buyer paid, else the order fails (and is refunded).
    pub(crate) async fn reroute_or_fail(
        &self,
        order: &Order,
        error: ProviderError,
    ) -> Result<Flow, EngineError> {
        tracing::warn!(order = %order.id, %error, "the provider refused the order");
        if error.alerts_admins() {
            let detail = error.to_string();
            self.alert_admins(|l| {
                t!(
                    "engine.admin.provider_error",
                    locale = l.code(),
                    id = order.id,
                    provider = order.provider,
                    detail = detail
                )
                .into_owned()
            })
            .await;
        }
        // An admin's order is priced at its provider cost (no buyer paid): that is the cap.
        let paid_usd = if order.admin_id.is_some() {
            self.inner.pricing.cost_in_usd(&order.price).ok()
        } else {
            self.paid_in_usd(&order.price)
        };
        for (candidate, product) in self.alternatives(order) {
            let Some(paid_usd) = paid_usd else { break };
            let request = request_of(order, &product);
            let cost = match candidate.quote(&request).await {
                Ok(quote) => quote.cost,
                Err(quote_error) => {
                    tracing::info!(order = %order.id, provider = %candidate.id(), %quote_error, "no quote from the next provider");
                    continue;
                }
            };
            let cost_usd = match self.inner.pricing.cost_in_usd(&cost) {
                Ok(usd) => usd,
                Err(pricing_error) => {
                    tracing::info!(order = %order.id, provider = %candidate.id(), %pricing_error, "cannot compare the next provider's cost");
                    continue;
                }
            };
            if cost_usd > paid_usd {
                tracing::info!(order = %order.id, provider = %candidate.id(), %cost_usd, %paid_usd, "the next provider costs more than the buyer paid");
                continue;
            }
            let failed = EngineStep::new(
                order.id,
                OrderStatus::Submitted,
                OrderStatus::Failed,
                format!("{error}"),
            );
            let mut again = EngineStep::new(
                order.id,
                OrderStatus::Failed,
                OrderStatus::Submitted,
                format!("rerouted to {}", candidate.id()),
            );
            again.changes.provider = Some(candidate.id());
            again.product = Some(product);
            again.submit = SubmitMark::Clear;
            again.clear_provider_order = true;
            if self.apply(&[failed, again]).await? {
                tracing::info!(order = %order.id, from = %order.provider, to = %candidate.id(), "rerouted");
            }
            return Ok(Flow::Again);
        }
        let mut failed = EngineStep::new(
            order.id,
            order.status,
            OrderStatus::Failed,
            format!("{error}"),
        );
        failed.changes.failure_reason = Some(reason_to_column(error.buyer_reason()));
        failed.submit = SubmitMark::Clear;
        self.apply(&[failed]).await?;
        Ok(Flow::Again)
    }

    /// An answer nobody can read: parked for an admin, who is alerted once, with the
    /// provider's order id when there is one.
    pub(crate) async fn park(
        &self,
        order: &Order,
        detail: &str,
        provider_order_id: Option<String>,
    ) -> Result<Flow, EngineError> {
        tracing::error!(order = %order.id, %detail, ?provider_order_id, "ambiguous: parked for an admin");
        let key = attention_key(order.id);
        let mut step = EngineStep::new(
            order.id,
            order.status,
            OrderStatus::NeedsAttention,
            format!("ambiguous: {detail}"),
        );
        step.changes.provider_order_id = provider_order_id.clone();
        step.claim = Some(key.clone());
        if !self.apply(&[step]).await? {
            return Ok(Flow::Again);
        }
        let reference = provider_order_id.unwrap_or_else(|| "—".to_owned());
        self.alert_admins(|l| {
            t!(
                "engine.admin.needs_attention",
                locale = l.code(),
                id = order.id,
                provider = order.provider,
                reference = reference,
                detail = detail
            )
            .into_owned()
        })
        .await;
        self.inner.store.finish_notice(&key, "sent").await?;
        Ok(Flow::Wait(Next::Idle))
    }
}

pub(crate) fn attention_key(id: crate::domain::OrderId) -> String {
    format!("order:{id}:attention")
}
