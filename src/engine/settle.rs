//! One drive of one order, and the one function every provider answer goes through
//! ([`Engine::apply_answer`]): a `place_order` reply, a reconciliation, a poll, a
//! webhook. The terminal changes claim their message in the same transaction, so of
//! two racing tasks only the one whose compare-and-set won tells the buyer.

use chrono::Utc;
use rust_i18n::t;

use super::buyer_paid::{followed, is_buyer_paid};
use super::notify::{
    delivered_text, reason_from_column, reason_to_column, refund_by_hand_text, refunded_text,
};
use super::submit::attention_key;
use super::{Engine, EngineError, Flow, MAX_BACKOFF, Next, STEPS_PER_DRIVE};
use crate::domain::{OrderId, OrderStatus};
use crate::providers::{Delivery, ProviderError, ProviderOrderStatus};
use crate::store::{EngineStep, Order};

/// The claim of the message that settles an order for the buyer (goods or refund).
pub fn announce_key(id: OrderId) -> String {
    format!("order:{id}:announce")
}

pub fn expired_key(id: OrderId) -> String {
    format!("order:{id}:expired")
}

impl Engine {
    /// Moves the order as far as it goes now; says when to look again.
    pub(crate) async fn step(&self, id: OrderId) -> Result<Next, EngineError> {
        for _ in 0..STEPS_PER_DRIVE {
            let Some(order) = self.inner.store.order(id).await? else {
                return Ok(Next::Idle);
            };
            let flow = match order.status {
                // Crypto orders the buyer pays the provider for: src/engine/buyer_paid.rs.
                status if is_buyer_paid(&order) && followed(status) => {
                    self.follow_buyer_paid(&order).await?
                }
                OrderStatus::AwaitingPayment => self.expire_if_due(&order).await?,
                // A new provider call is not started while shutting down: the next
                // start takes the paid order up.
                OrderStatus::Paid if self.stopping() => Flow::Wait(Next::Idle),
                OrderStatus::Paid => self.submit_paid(&order).await?,
                OrderStatus::Submitted if order.provider_order_id.is_none() => {
                    if self.stopping() {
                        Flow::Wait(Next::Idle)
                    } else {
                        self.submit_pending(&order).await?
                    }
                }
                OrderStatus::Submitted | OrderStatus::Processing => {
                    self.poll_provider(&order).await?
                }
                OrderStatus::Failed => self.settle_failed(&order).await?,
                OrderStatus::NeedsAttention => {
                    self.alert_attention(&order).await;
                    Flow::Wait(Next::Idle)
                }
                OrderStatus::Completed | OrderStatus::Expired | OrderStatus::Refunded => {
                    Flow::Wait(Next::Idle)
                }
            };
            match flow {
                Flow::Again => continue,
                Flow::Wait(next) => return Ok(next),
            }
        }
        Ok(Next::Poll)
    }

    /// The one transition function for a provider's word on an order: from the order's
    /// current status (submitted or processing) to processing, completed or failed,
    /// recording the provider's order id. Only the task whose compare-and-set wins
    /// announces.
    pub(crate) async fn apply_answer(
        &self,
        order: &Order,
        provider_order_id: Option<String>,
        status: ProviderOrderStatus,
    ) -> Result<Flow, EngineError> {
        let from = order.status;
        match status {
            ProviderOrderStatus::Pending | ProviderOrderStatus::AwaitingBuyerPayment(_) => {
                if from != OrderStatus::Submitted {
                    return Ok(Flow::Wait(Next::Poll));
                }
                let mut step = EngineStep::new(
                    order.id,
                    from,
                    OrderStatus::Processing,
                    format!("accepted by {}", order.provider),
                );
                step.changes.provider_order_id = provider_order_id;
                Ok(if self.apply(&[step]).await? {
                    Flow::Wait(Next::Poll)
                } else {
                    Flow::Again
                })
            }
            ProviderOrderStatus::Completed(delivery) => {
                let key = announce_key(order.id);
                let mut step = EngineStep::new(
                    order.id,
                    from,
                    OrderStatus::Completed,
                    format!("delivered by {}", order.provider),
                );
                step.changes.provider_order_id = provider_order_id;
                step.changes.delivered = Some(delivery.clone());
                step.claim = Some(key.clone());
                if !self.apply(&[step]).await? {
                    return Ok(Flow::Again);
                }
                tracing::info!(order = %order.id, "completed");
                self.announce_delivery(order, &delivery, &key).await;
                self.inner.completed.notify_one();
                Ok(Flow::Wait(Next::Idle))
            }
            ProviderOrderStatus::Failed {
                reason,
                detail,
                money_returned,
            } => {
                let mut step = EngineStep::new(
                    order.id,
                    from,
                    OrderStatus::Failed,
                    format!("{} failed the order: {detail}", order.provider),
                );
                step.changes.provider_order_id = provider_order_id;
                step.changes.failure_reason = Some(reason_to_column(reason));
                if !self.apply(&[step]).await? {
                    return Ok(Flow::Again);
                }
                if !money_returned {
                    self.alert_admins(|l| {
                        t!(
                            "engine.admin.provider_kept_money",
                            locale = l.code(),
                            id = order.id,
                            provider = order.provider,
                            detail = detail
                        )
                        .into_owned()
                    })
                    .await;
                }
                Ok(Flow::Again)
            }
        }
    }

    async fn announce_delivery(&self, order: &Order, delivery: &Delivery, key: &str) {
        let lang = self.language_of(order.buyer_id).await;
        let text = delivered_text(lang, order, delivery);
        self.send_claimed(key, order.id, order.chat_id, text).await;
    }

    async fn poll_provider(&self, order: &Order) -> Result<Flow, EngineError> {
        let Some(provider_order_id) = order.provider_order_id.clone() else {
            return Ok(Flow::Wait(Next::Poll));
        };
        let Some(provider) = self.inner.registry.get(order.provider) else {
            let provider = order.provider;
            self.alert_admins_once(
                &format!("order:{}:no_provider", order.id),
                Some(order.id),
                |l| {
                    t!(
                        "engine.admin.provider_disabled",
                        locale = l.code(),
                        id = order.id,
                        provider = provider
                    )
                    .into_owned()
                },
            )
            .await;
            return Ok(Flow::Wait(Next::After(MAX_BACKOFF)));
        };
        match provider.order_status(&provider_order_id).await {
            Ok(status) => self.apply_answer(order, None, status).await,
            Err(ProviderError::Retryable { retry_after, .. }) => {
                Ok(Flow::Wait(retry_after.map_or(Next::Poll, Next::After)))
            }
            Err(error) => {
                tracing::warn!(order = %order.id, %error, "asking the provider about an order");
                Ok(Flow::Wait(Next::Poll))
            }
        }
    }

    /// A failed order: Stars go back at once (`refundStarPayment` with the payment's
    /// charge id, recorded with the move to `refunded`), the buyer is told why and the
    /// admins are alerted; a fiat payment is refunded by an admin's hand.
    async fn settle_failed(&self, order: &Order) -> Result<Flow, EngineError> {
        let reason = reason_from_column(order.failure_reason.as_deref());
        let detail = t!(reason.message_key(), locale = "en").into_owned();
        let Some(payment) = self.inner.store.payment_of(order.id).await? else {
            if order.admin_id.is_some() {
                return self.close_failed_admin_order(order, reason).await;
            }
            self.alert_admins_once(
                &format!("order:{}:failed_unpaid", order.id),
                Some(order.id),
                |l| {
                    t!(
                        "engine.admin.failed_unpaid",
                        locale = l.code(),
                        id = order.id,
                        detail = detail
                    )
                    .into_owned()
                },
            )
            .await;
            return Ok(Flow::Wait(Next::After(MAX_BACKOFF)));
        };
        let key = announce_key(order.id);
        let amount = payment.amount.to_string();
        if !payment.amount.currency.is_stars() {
            let charge = payment.telegram_payment_charge_id.clone();
            self.alert_admins_once(
                &format!("order:{}:refund_by_hand", order.id),
                Some(order.id),
                |l| {
                    t!(
                        "engine.admin.refund_by_hand",
                        locale = l.code(),
                        id = order.id,
                        detail = detail,
                        amount = amount,
                        buyer = order.buyer_id,
                        charge = charge
                    )
                    .into_owned()
                },
            )
            .await;
            if self.inner.store.claim_notice(&key, Some(order.id)).await? {
                let lang = self.language_of(order.buyer_id).await;
                let text = refund_by_hand_text(lang, order.id, reason, &payment.amount);
                self.send_claimed(&key, order.id, order.chat_id, text).await;
            }
            return Ok(Flow::Wait(Next::After(MAX_BACKOFF)));
        }
        if payment.refunded_at.is_none()
            && let Err(error) = self
                .refund_stars(payment.buyer_id, &payment.telegram_payment_charge_id)
                .await
        {
            tracing::warn!(order = %order.id, %error, "refunding Stars; will retry");
            return Ok(Flow::Wait(Next::Poll));
        }
        let mut step = EngineStep::new(
            order.id,
            OrderStatus::Failed,
            OrderStatus::Refunded,
            format!("refunded charge {}", payment.telegram_payment_charge_id),
        );
        step.refunded_payment = Some(payment.id);
        step.claim = Some(key.clone());
        if !self.apply(&[step]).await? {
            return Ok(Flow::Again);
        }
        tracing::info!(order = %order.id, "refunded");
        let lang = self.language_of(order.buyer_id).await;
        let text = refunded_text(lang, order.id, reason, &payment.amount);
        self.send_claimed(&key, order.id, order.chat_id, text).await;
        self.alert_admins(|l| {
            t!(
                "engine.admin.refunded",
                locale = l.code(),
                id = order.id,
                detail = detail,
                amount = amount
            )
            .into_owned()
        })
        .await;
        Ok(Flow::Wait(Next::Idle))
    }

    /// An admin's /stars or /premium that failed: no buyer paid, so nothing goes back
    /// through `refundStarPayment`; the order is closed (failed → refunded, nothing to
    /// return) and the admin who placed it is told in their chat.
    async fn close_failed_admin_order(
        &self,
        order: &Order,
        reason: crate::providers::BuyerReason,
    ) -> Result<Flow, EngineError> {
        let key = announce_key(order.id);
        let mut step = EngineStep::new(
            order.id,
            OrderStatus::Failed,
            OrderStatus::Refunded,
            "an admin's order: no buyer payment to return",
        );
        step.claim = Some(key.clone());
        if !self.apply(&[step]).await? {
            return Ok(Flow::Again);
        }
        let lang = self.language_of(order.buyer_id).await;
        let text = teloxide::utils::html::escape(&t!(
            "admin.purchase.failed",
            locale = lang.code(),
            id = order.id,
            reason = t!(reason.message_key(), locale = lang.code())
        ));
        self.send_claimed(&key, order.id, order.chat_id, text).await;
        Ok(Flow::Wait(Next::Idle))
    }

    /// An unpaid order past its deadline expires, and its invoice says so.
    async fn expire_if_due(&self, order: &Order) -> Result<Flow, EngineError> {
        if order.payment_deadline > Utc::now() {
            return Ok(Flow::Wait(Next::Idle));
        }
        let key = expired_key(order.id);
        let mut step = EngineStep::new(
            order.id,
            OrderStatus::AwaitingPayment,
            OrderStatus::Expired,
            "payment deadline passed",
        );
        step.claim = Some(key.clone());
        if !self.apply(&[step]).await? {
            return Ok(Flow::Again);
        }
        let outcome = match self.mark_invoice_expired(order).await {
            Ok(()) => "sent".to_owned(),
            Err(error) => {
                tracing::info!(order = %order.id, %error, "marking an invoice expired");
                format!("failed: {error}")
            }
        };
        self.inner.store.finish_notice(&key, &outcome).await?;
        Ok(Flow::Wait(Next::Idle))
    }

    pub(crate) async fn alert_attention(&self, order: &Order) {
        let reference = order
            .provider_order_id
            .clone()
            .unwrap_or_else(|| "—".to_owned());
        self.alert_admins_once(&attention_key(order.id), Some(order.id), |l| {
            t!(
                "engine.admin.needs_attention",
                locale = l.code(),
                id = order.id,
                provider = order.provider,
                reference = reference,
                detail = "needs_attention"
            )
            .into_owned()
        })
        .await;
    }

    /// An order the buyer paid for and that is open longer than the shop's limit.
    pub(crate) async fn alert_if_stuck(&self, order: &Order, now: chrono::DateTime<Utc>) {
        if !matches!(
            order.status,
            OrderStatus::Paid
                | OrderStatus::Submitted
                | OrderStatus::Processing
                | OrderStatus::Failed
        ) {
            return;
        }
        let limit = chrono::Duration::from_std(self.inner.config.limits.fulfilment_alert_after)
            .unwrap_or(chrono::Duration::minutes(30));
        let deadline = order
            .fulfilment_deadline
            .unwrap_or(order.updated_at + limit);
        if deadline > now {
            return;
        }
        let minutes = limit.num_minutes();
        let status = order.status;
        self.alert_admins_once(&format!("order:{}:stuck", order.id), Some(order.id), |l| {
            t!(
                "engine.admin.stuck",
                locale = l.code(),
                id = order.id,
                status = status,
                minutes = minutes
            )
            .into_owned()
        })
        .await;
    }

    /// Messages claimed before a crash and never marked sent: they may or may not have
    /// reached the reader. Never sent twice: the admins are asked to check instead.
    pub(crate) async fn recover_unsent_notices(&self) {
        let unsent = match self.inner.store.unsent_notices().await {
            Ok(unsent) => unsent,
            Err(error) => {
                tracing::warn!(%error, "reading unsent notices");
                return;
            }
        };
        for (key, order) in unsent {
            let id = order.map_or_else(|| "—".to_owned(), |o| o.to_string());
            let kind = key.rsplit(':').next().unwrap_or("").to_owned();
            tracing::warn!(%key, "a message was in flight at the last stop");
            self.alert_admins(|l| {
                t!(
                    "engine.admin.in_doubt",
                    locale = l.code(),
                    id = id,
                    kind = kind
                )
                .into_owned()
            })
            .await;
            if let Err(error) = self.inner.store.finish_notice(&key, "in_doubt").await {
                tracing::warn!(%error, "recording an in-doubt notice");
            }
        }
    }
}
