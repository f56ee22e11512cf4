//! Buyer-paid (crypto) orders: the buyer pays the provider on-chain, and the shop's
//! order mirrors the provider's own states (DESIGN.md, "Two kinds of checkout"). No
//! Telegram invoice and no Stars payment exist for these orders: nothing is ever
//! charged twice and nothing is refunded by the shop.
//!
//! - [`Engine::open_checkout`]: the dialogue wrote the order row (`awaiting_payment`,
//!   idempotency key, the 30-minute deadline); the call is marked in flight on the row,
//!   then the provider order is created and its checkout (address, coin amount,
//!   network, deadline) recorded with it. A refusal closes the row as `expired` (nothing
//!   was created); an ambiguous answer (a timeout) parks it for an admin, never resent.
//! - [`Engine::follow_buyer_paid`]: the poller asks the provider about every open
//!   buyer-paid order every `limits.poll_interval` (5 s by default), from the start of
//!   the process on, and records the provider's state (My orders shows it in words).
//!   The payment seen → `paid → submitted → processing` in one transaction (the buyer
//!   told once; "submitted" because the provider order exists already); Done →
//!   `completed` with the goods (the usual delivery message); Expired, PaymentFailed or
//!   PaymentSetupFailed while unpaid → `expired`, explained; a failure after the payment
//!   (Refunded, or any end once paid) → `failed → refunded`: the shop holds nothing of
//!   the buyer's, so it closes at once, and the buyer is told in plain words what the
//!   provider's state means for them.
//!
//! Cryptorefills orders are also followed on their event stream ([`super::order_feed`]),
//! opened as soon as the provider order exists: each event drives the order at once.
//!
//! Each buyer message is claimed in the same transaction as its transition (the
//! `notices` table), so a webhook, a poll and a restart between them speak once.

use std::time::Duration;

use chrono::Utc;
use rust_i18n::t;
use teloxide::utils::html::escape;

use super::submit::request_of;
use super::{Engine, EngineError, Flow, Next, PROVIDER_TIMEOUT};
use crate::config::Language;
use crate::domain::{OrderId, OrderStatus};
use crate::providers::cryptorefills::client::OrderState;
use crate::providers::{
    BuyerReason, Checkout, CryptoCheckout, ProviderError, ProviderId, ProviderOrderStatus,
};
use crate::store::{EngineStep, Order, SubmitMark};

use super::notify::reason_to_column;
use super::settle::{announce_key, expired_key};

/// What became of the provider order of a new buyer-paid order.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckoutOutcome {
    /// Created: the buyer pays this.
    Ready(CryptoCheckout),
    /// Created, but not waiting for a payment (the provider answered with another
    /// state): the engine follows it and tells the buyer how it ends.
    Followed,
    /// The provider refused, or could not be reached before anything was created: the
    /// order is closed unpaid, and the buyer may try again.
    Refused(ProviderError),
    /// The outcome is unknown (a timeout after the request may have arrived): parked
    /// for an admin, the buyer told not to pay.
    Parked,
}

/// The statuses in which the engine follows a buyer-paid order itself.
pub fn followed(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::AwaitingPayment
            | OrderStatus::Paid
            | OrderStatus::Submitted
            | OrderStatus::Processing
            | OrderStatus::Failed
    )
}

/// Whether `order` is paid by the buyer to the provider directly.
pub fn is_buyer_paid(order: &Order) -> bool {
    order.provider.checkout() == Checkout::BuyerPaid && order.admin_id.is_none()
}

/// The notice of the buyer's payment seen by the provider.
pub fn payment_seen_key(id: OrderId) -> String {
    format!("order:{id}:payment_seen")
}

/// How long a call creating a provider order may be in flight before a missing answer
/// means it was interrupted (a crash): then it is parked, never repeated.
fn call_in_doubt_after() -> chrono::Duration {
    chrono::Duration::from_std(PROVIDER_TIMEOUT * 2).unwrap_or(chrono::Duration::minutes(1))
}

/// Ask again at the poller's own pace (`limits.poll_interval`).
const AT_POLL_PACE: Next = Next::After(Duration::ZERO);

/// The buyer's sentence for a provider state (`cryptorefills.state.*`).
pub fn state_sentence(lang: Language, provider: ProviderId, state: &str) -> Option<String> {
    (provider == ProviderId::Cryptorefills)
        .then(|| t!(OrderState::parse(state).message_key(), locale = lang.code()).into_owned())
}

/// The buyer paid the provider: `awaiting_payment → paid → submitted` (the provider
/// order exists already, so "submitted" is where the engine follows it).
fn paid_steps(order: &Order, state: Option<&OrderState>) -> Vec<EngineStep> {
    vec![
        EngineStep::new(
            order.id,
            OrderStatus::AwaitingPayment,
            OrderStatus::Paid,
            format!(
                "{} reports the buyer's payment ({})",
                order.provider,
                state.map_or("paid", OrderState::as_str)
            ),
        ),
        EngineStep::new(
            order.id,
            OrderStatus::Paid,
            OrderStatus::Submitted,
            format!("followed at {}", order.provider),
        ),
    ]
}

/// How a buyer-paid order ended, as the buyer reads it (HTML).
fn ended_text(lang: Language, order: &Order, sentence: &str) -> String {
    let l = lang.code();
    format!(
        "{}\n\n{}",
        escape(&t!(
            "crypto_checkout.engine.ended",
            locale = l,
            id = order.id,
            title = order.product_title
        )),
        escape(sentence)
    )
}

impl Engine {
    /// Creates the provider order of the unpaid buyer-paid order `id` (see the module
    /// doc). Called once, by the dialogue, right after it wrote the row.
    pub async fn open_checkout(&self, id: OrderId) -> Result<CheckoutOutcome, EngineError> {
        let store = &self.inner.store;
        let Some(order) = store.order(id).await? else {
            return Err(EngineError::Invalid(format!("order {id} does not exist")));
        };
        if !is_buyer_paid(&order) {
            return Err(EngineError::Invalid(format!(
                "order {id} is not buyer-paid"
            )));
        }
        let Some(provider) = self.inner.registry.get(order.provider) else {
            let error = ProviderError::Configuration {
                provider: order.provider,
                detail: "the provider is not enabled".into(),
            };
            self.close_unopened(&order, &error).await?;
            return Ok(CheckoutOutcome::Refused(error));
        };
        // The row says a call is in flight before it starts: a crash during the call
        // leaves the mark, and the poller parks the order instead of calling again.
        if !store.mark_checkout_call(id, Utc::now()).await? {
            return Err(EngineError::Invalid(format!(
                "order {id} is not waiting for its provider order"
            )));
        }
        let request = request_of(&order, &order.product);
        match provider
            .place_order(id, &order.idempotency_key, &request)
            .await
        {
            Ok(placed) => {
                let checkout = match &placed.status {
                    ProviderOrderStatus::AwaitingBuyerPayment(checkout) => Some(checkout.clone()),
                    _ => None,
                };
                let recorded = store
                    .record_checkout(id, &placed.provider_order_id, checkout.as_ref())
                    .await?;
                tracing::info!(order = %id, provider = %order.provider, provider_order = %placed.provider_order_id, "buyer-paid order created");
                if !recorded {
                    // Moved meanwhile (an admin): the poller follows whatever it is now.
                    return Ok(CheckoutOutcome::Followed);
                }
                if order.provider == ProviderId::Cryptorefills {
                    self.watch_order_feed(id, &placed.provider_order_id);
                }
                match checkout {
                    Some(checkout) => Ok(CheckoutOutcome::Ready(checkout)),
                    None => {
                        let engine = self.clone();
                        self.spawn_tracked(async move { engine.drive(id).await });
                        Ok(CheckoutOutcome::Followed)
                    }
                }
            }
            Err(ProviderError::Ambiguous {
                provider_order_id,
                detail,
                ..
            }) => {
                let Some(fresh) = store.order(id).await? else {
                    return Ok(CheckoutOutcome::Parked);
                };
                self.park(&fresh, &detail, provider_order_id).await?;
                Ok(CheckoutOutcome::Parked)
            }
            Err(error) => {
                self.close_unopened(&order, &error).await?;
                Ok(CheckoutOutcome::Refused(error))
            }
        }
    }

    /// Nothing was created at the provider: the unpaid order closes as expired (the
    /// dialogue tells the buyer why); the admins hear of a broken configuration.
    async fn close_unopened(
        &self,
        order: &Order,
        error: &ProviderError,
    ) -> Result<(), EngineError> {
        tracing::info!(order = %order.id, %error, "the provider did not create the order");
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
        let mut step = EngineStep::new(
            order.id,
            OrderStatus::AwaitingPayment,
            OrderStatus::Expired,
            format!("the provider did not create the order: {error}"),
        );
        step.changes.failure_reason = Some(reason_to_column(error.buyer_reason()));
        step.submit = SubmitMark::Clear;
        // Claimed without a message: the dialogue answers the buyer itself.
        step.claim = Some(expired_key(order.id));
        self.apply(&[step]).await?;
        self.inner
            .store
            .finish_notice(&expired_key(order.id), "told in the dialogue")
            .await?;
        Ok(())
    }

    /// One look at an open buyer-paid order (see the module doc).
    pub(crate) async fn follow_buyer_paid(&self, order: &Order) -> Result<Flow, EngineError> {
        let created = order.provider_order_id.is_some();
        match order.status {
            OrderStatus::AwaitingPayment | OrderStatus::Submitted | OrderStatus::Processing
                if created => {}
            OrderStatus::Paid if created => {
                let step = EngineStep::new(
                    order.id,
                    OrderStatus::Paid,
                    OrderStatus::Submitted,
                    format!("followed at {}", order.provider),
                );
                self.apply(&[step]).await?;
                return Ok(Flow::Again);
            }
            OrderStatus::AwaitingPayment => return self.unopened(order).await,
            OrderStatus::Failed => return self.close_buyer_paid(order, None).await,
            // Paid or submitted without a provider order: only an admin's move gets a
            // buyer-paid order here, and the shop never creates a second provider
            // order the buyer was not shown. Closed, and the buyer told.
            OrderStatus::Paid | OrderStatus::Submitted => {
                let mut step = EngineStep::new(
                    order.id,
                    order.status,
                    OrderStatus::Failed,
                    "a buyer-paid order is not placed again by the shop",
                );
                step.changes.failure_reason = Some(reason_to_column(BuyerReason::Other));
                step.submit = SubmitMark::Clear;
                self.apply(&[step]).await?;
                return Ok(Flow::Again);
            }
            _ => return Ok(Flow::Wait(Next::Idle)),
        }
        let provider_order_id = order.provider_order_id.clone().unwrap_or_default();
        if order.provider == ProviderId::Cryptorefills {
            self.watch_order_feed(order.id, &provider_order_id);
        }
        let answer = match (order.provider, self.inner.registry.cryptorefills()) {
            (ProviderId::Cryptorefills, Some(refills)) => refills
                .order_state(&provider_order_id)
                .await
                .map(|(state, status)| (Some(state), status)),
            _ => match self.inner.registry.get(order.provider) {
                Some(provider) => provider
                    .order_status(&provider_order_id)
                    .await
                    .map(|status| (None, status)),
                None => {
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
                    return Ok(Flow::Wait(Next::Poll));
                }
            },
        };
        let (state, status) = match answer {
            Ok(answer) => answer,
            Err(ProviderError::Retryable { retry_after, .. }) => {
                return Ok(Flow::Wait(retry_after.map_or(AT_POLL_PACE, Next::After)));
            }
            Err(error) => {
                tracing::warn!(order = %order.id, %error, "asking the provider about a buyer-paid order");
                return Ok(Flow::Wait(Next::Poll));
            }
        };
        if let Some(state) = &state {
            self.inner
                .store
                .set_provider_state(order.id, state.as_str())
                .await?;
        }
        // Nothing the shop acts on yet: still unpaid, or a state this build does not know.
        let no_news = match &state {
            Some(state) => matches!(
                state,
                OrderState::Created
                    | OrderState::WaitingForPayment
                    | OrderState::PartialPaymentStarted
                    | OrderState::Unknown(_)
            ),
            None => matches!(status, ProviderOrderStatus::AwaitingBuyerPayment(_)),
        };
        let unpaid = order.status == OrderStatus::AwaitingPayment;
        match status {
            _ if no_news => Ok(Flow::Wait(AT_POLL_PACE)),
            // Paid, then delivered or failed, between two looks: the payment first.
            ProviderOrderStatus::Completed(_) if unpaid => {
                self.apply(&paid_steps(order, state.as_ref())).await?;
                Ok(Flow::Again)
            }
            // The one delivery path of every order: goods stored, claimed, told once.
            ProviderOrderStatus::Completed(_) => self.apply_answer(order, None, status).await,
            ProviderOrderStatus::Failed { reason, .. } if unpaid => {
                let never_paid = match &state {
                    Some(state) => matches!(
                        state,
                        OrderState::Expired
                            | OrderState::PaymentSetupFailed
                            | OrderState::PaymentFailed
                    ),
                    None => reason == BuyerReason::PaymentExpired,
                };
                if never_paid {
                    return self.expire_buyer_paid(order, state.as_ref()).await;
                }
                self.apply(&paid_steps(order, state.as_ref())).await?;
                Ok(Flow::Again)
            }
            ProviderOrderStatus::Failed { reason, detail, .. } => {
                let mut failed = EngineStep::new(
                    order.id,
                    order.status,
                    OrderStatus::Failed,
                    format!("{} ended the order: {detail}", order.provider),
                );
                failed.changes.failure_reason = Some(reason_to_column(reason));
                self.apply(&[failed]).await?;
                Ok(Flow::Again)
            }
            ProviderOrderStatus::Pending | ProviderOrderStatus::AwaitingBuyerPayment(_)
                if unpaid =>
            {
                self.payment_seen(order, state.as_ref()).await
            }
            ProviderOrderStatus::Pending | ProviderOrderStatus::AwaitingBuyerPayment(_) => {
                if order.status == OrderStatus::Submitted {
                    let step = EngineStep::new(
                        order.id,
                        OrderStatus::Submitted,
                        OrderStatus::Processing,
                        format!("{} is delivering", order.provider),
                    );
                    if !self.apply(&[step]).await? {
                        return Ok(Flow::Again);
                    }
                }
                Ok(Flow::Wait(AT_POLL_PACE))
            }
        }
    }

    /// The provider saw the buyer's payment: `processing`, and the buyer hears it once.
    async fn payment_seen(
        &self,
        order: &Order,
        state: Option<&OrderState>,
    ) -> Result<Flow, EngineError> {
        let alert_after =
            chrono::Duration::from_std(self.inner.config.limits.fulfilment_alert_after)
                .unwrap_or(chrono::Duration::minutes(30));
        let key = payment_seen_key(order.id);
        let mut steps = paid_steps(order, state);
        let mut delivering = EngineStep::new(
            order.id,
            OrderStatus::Submitted,
            OrderStatus::Processing,
            format!("{} is delivering", order.provider),
        );
        delivering.changes.fulfilment_deadline = Some(Utc::now() + alert_after);
        delivering.claim = Some(key.clone());
        steps.push(delivering);
        if !self.apply(&steps).await? {
            return Ok(Flow::Again);
        }
        let lang = self.language_of(order.buyer_id).await;
        let sentence = state
            .map(|s| t!(s.message_key(), locale = lang.code()).into_owned())
            .unwrap_or_else(|| {
                t!("crypto_checkout.engine.payment_seen", locale = lang.code()).into_owned()
            });
        let text = format!(
            "{}\n{}",
            escape(&t!(
                "crypto_checkout.engine.order_line",
                locale = lang.code(),
                id = order.id,
                title = order.product_title
            )),
            escape(&sentence)
        );
        self.send_claimed(&key, order.id, order.chat_id, text).await;
        Ok(Flow::Wait(AT_POLL_PACE))
    }

    /// Unpaid past the provider's window: `expired`, and the buyer told once.
    async fn expire_buyer_paid(
        &self,
        order: &Order,
        state: Option<&OrderState>,
    ) -> Result<Flow, EngineError> {
        let key = expired_key(order.id);
        let mut step = EngineStep::new(
            order.id,
            OrderStatus::AwaitingPayment,
            OrderStatus::Expired,
            format!("{}: the payment window closed unpaid", order.provider),
        );
        step.changes.failure_reason = Some(reason_to_column(BuyerReason::PaymentExpired));
        step.claim = Some(key.clone());
        if !self.apply(&[step]).await? {
            return Ok(Flow::Again);
        }
        tracing::info!(order = %order.id, "buyer-paid order expired unpaid");
        let lang = self.language_of(order.buyer_id).await;
        let sentence = t!(
            state.unwrap_or(&OrderState::Expired).message_key(),
            locale = lang.code()
        )
        .into_owned();
        self.send_claimed(
            &key,
            order.id,
            order.chat_id,
            ended_text(lang, order, &sentence),
        )
        .await;
        Ok(Flow::Wait(Next::Idle))
    }

    /// A failed buyer-paid order: the shop holds nothing of the buyer's (any refund is
    /// the provider's, to the buyer's wallet), so it closes as `refunded` at once and
    /// the buyer is told what the provider's state means for them.
    pub(crate) async fn close_buyer_paid(
        &self,
        order: &Order,
        state: Option<&str>,
    ) -> Result<Flow, EngineError> {
        let key = announce_key(order.id);
        let mut step = EngineStep::new(
            order.id,
            OrderStatus::Failed,
            OrderStatus::Refunded,
            "buyer-paid: nothing held by the shop; the provider settles with the buyer",
        );
        step.claim = Some(key.clone());
        if !self.apply(&[step]).await? {
            return Ok(Flow::Again);
        }
        let stored = match state {
            Some(state) => Some(state.to_owned()),
            None => self
                .inner
                .store
                .provider_states(&[order.id])
                .await?
                .remove(&order.id),
        };
        let lang = self.language_of(order.buyer_id).await;
        let sentence = stored
            .as_deref()
            .and_then(|s| state_sentence(lang, order.provider, s))
            .unwrap_or_else(|| {
                let reason = super::notify::reason_from_column(order.failure_reason.as_deref());
                t!(reason.message_key(), locale = lang.code()).into_owned()
            });
        tracing::info!(order = %order.id, state = ?stored, "buyer-paid order closed");
        self.send_claimed(
            &key,
            order.id,
            order.chat_id,
            ended_text(lang, order, &sentence),
        )
        .await;
        Ok(Flow::Wait(Next::Idle))
    }

    /// An unpaid order with no provider order: its creating call is in flight (wait),
    /// was interrupted (parked: it may have created an order), or never started (it
    /// expires at its deadline, like any unpaid order).
    async fn unopened(&self, order: &Order) -> Result<Flow, EngineError> {
        match self.inner.store.submit_started_at(order.id).await? {
            Some(started) => {
                let doubt = started + call_in_doubt_after();
                let now = Utc::now();
                if doubt > now {
                    let wait = (doubt - now).to_std().unwrap_or(Duration::ZERO);
                    return Ok(Flow::Wait(Next::After(wait)));
                }
                self.park(
                    order,
                    "the call creating the provider order was interrupted; the provider may hold an order nobody was shown",
                    None,
                )
                .await
            }
            None if order.payment_deadline <= Utc::now() => {
                let mut step = EngineStep::new(
                    order.id,
                    OrderStatus::AwaitingPayment,
                    OrderStatus::Expired,
                    "payment deadline passed before a provider order was created",
                );
                step.claim = Some(expired_key(order.id));
                if !self.apply(&[step]).await? {
                    return Ok(Flow::Again);
                }
                // No checkout was ever shown: nothing to tell the buyer.
                self.inner
                    .store
                    .finish_notice(&expired_key(order.id), "nothing shown")
                    .await?;
                Ok(Flow::Wait(Next::Idle))
            }
            None => Ok(Flow::Wait(Next::Idle)),
        }
    }
}
