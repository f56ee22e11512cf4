//! Telegram's two payment updates. `pre_checkout_query` (no chat: mounted beside the
//! dialogue) is answered at once from the order row; `successful_payment` is recorded
//! once ([`Store::apply_payment`]) and hands the order to the engine, or, when it pays
//! for no payable order, is refunded at once.

use chrono::{DateTime, Utc};
use rust_i18n::t;
use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::{PreCheckoutQuery, SuccessfulPayment, TelegramTransactionId};
use teloxide::utils::html::escape;

use super::notify::amount_text;
use super::{Engine, EngineError};
use crate::bot::{HandlerError, HandlerResult, KioskBot};
use crate::domain::{Currency, Money, OrderId, OrderStatus};
use crate::i18n;
use crate::store::{NewPayment, PaymentOutcome, Store, StoredPayment};

/// Why a pre-checkout is refused; each names a sentence in `locales/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The payload names no order of this buyer (garbage, someone else's, unknown).
    UnknownOrder,
    /// Paid already, expired, cancelled.
    NotPayable,
    /// Past its payment deadline.
    Expired,
    /// Another currency or another total than the order's price.
    AmountMismatch,
    /// The shop cannot check right now (database unavailable): refuse, never guess.
    Unavailable,
}

impl Refusal {
    pub fn message_key(self) -> &'static str {
        match self {
            Self::UnknownOrder => "engine.precheckout.unknown_order",
            Self::NotPayable => "engine.precheckout.not_payable",
            Self::Expired => "engine.precheckout.expired",
            Self::AmountMismatch => "engine.precheckout.amount_mismatch",
            Self::Unavailable => "engine.precheckout.unavailable",
        }
    }
}

/// The order an invoice payload names: the order id in plain digits, nothing else.
pub fn parse_payload(payload: &str) -> Option<OrderId> {
    if payload.is_empty() || payload.len() > 18 || !payload.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    payload.parse().ok().map(OrderId)
}

/// May `buyer` pay `total_amount` (smallest units) of `currency` for the order named
/// by `payload`? Only for their own order, awaiting payment, before its deadline, in
/// the order's currency and for exactly its price.
pub async fn check_pre_checkout(
    store: &Store,
    buyer: i64,
    payload: &str,
    currency: &str,
    total_amount: u32,
) -> Result<OrderId, Refusal> {
    let id = parse_payload(payload).ok_or(Refusal::UnknownOrder)?;
    let order = store
        .order_of_buyer(id, buyer)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "reading an order for pre-checkout");
            Refusal::Unavailable
        })?
        .ok_or(Refusal::UnknownOrder)?;
    // A crypto order is paid to its provider, never through Telegram: never twice.
    if order.status != OrderStatus::AwaitingPayment || super::buyer_paid::is_buyer_paid(&order) {
        return Err(Refusal::NotPayable);
    }
    if order.payment_deadline <= Utc::now() {
        return Err(Refusal::Expired);
    }
    let currency = Currency::parse(currency).map_err(|_| Refusal::AmountMismatch)?;
    if currency != order.price.currency
        || Money::from_minor_units(total_amount, currency) != order.price
    {
        return Err(Refusal::AmountMismatch);
    }
    Ok(id)
}

pub(crate) fn handlers() -> UpdateHandler<HandlerError> {
    dptree::entry()
        .branch(Update::filter_pre_checkout_query().endpoint(pre_checkout))
        .branch(
            Update::filter_message()
                .filter_map(|msg: Message| msg.successful_payment().cloned())
                .endpoint(successful_payment),
        )
}

async fn pre_checkout(bot: KioskBot, engine: Engine, query: PreCheckoutQuery) -> HandlerResult {
    let buyer = i64::try_from(query.from.id.0).unwrap_or(-1);
    let verdict = check_pre_checkout(
        &engine.inner.store,
        buyer,
        &query.invoice_payload,
        &query.currency,
        query.total_amount,
    )
    .await;
    match verdict {
        Ok(order) => {
            tracing::info!(%order, "pre-checkout accepted");
            bot.answer_pre_checkout_query(query.id, true).await?;
        }
        Err(refusal) => {
            tracing::info!(?refusal, payload = %query.invoice_payload, "pre-checkout refused");
            let chosen = engine
                .inner
                .store
                .user_language(buyer)
                .await
                .unwrap_or(None);
            let lang = i18n::resolve(
                chosen,
                query.from.language_code.as_deref(),
                engine.inner.config.shop.default_language,
            );
            bot.answer_pre_checkout_query(query.id, false)
                .error_message(t!(refusal.message_key(), locale = lang.code()))
                .await?;
        }
    }
    Ok(())
}

async fn successful_payment(
    engine: Engine,
    msg: Message,
    payment: SuccessfulPayment,
) -> HandlerResult {
    let buyer = msg
        .from
        .as_ref()
        .and_then(|u| i64::try_from(u.id.0).ok())
        .unwrap_or(msg.chat.id.0);
    engine.accept_payment(buyer, &payment).await;
    Ok(())
}

impl Engine {
    /// Records a `successful_payment` once and acts on it: the order is submitted, a
    /// replay changes nothing, and a payment for no payable order is refunded.
    pub async fn accept_payment(&self, buyer: i64, payment: &SuccessfulPayment) {
        let charge = payment.telegram_payment_charge_id.0.clone();
        let Ok(currency) = Currency::parse(&payment.currency) else {
            tracing::error!(%charge, currency = %payment.currency, "a payment in an unreadable currency");
            let detail = format!("{} {}", payment.total_amount, payment.currency);
            self.alert_admins(|l| {
                t!(
                    "engine.admin.payment_by_hand",
                    locale = l.code(),
                    charge = charge,
                    amount = detail,
                    buyer = buyer
                )
                .into_owned()
            })
            .await;
            return;
        };
        let new = NewPayment {
            buyer_id: buyer,
            telegram_payment_charge_id: charge.clone(),
            provider_payment_charge_id: Some(payment.provider_payment_charge_id.clone())
                .filter(|p| !p.is_empty()),
            amount: Money::from_minor_units(payment.total_amount, currency),
            invoice_payload: payment.invoice_payload.clone(),
            order_id: parse_payload(&payment.invoice_payload),
        };
        self.record_payment(&new, Utc::now()).await;
    }

    /// The one path of a Stars or fiat payment, from a `successful_payment` update or
    /// from Telegram's Star ledger ([`super::reconcile`]): recorded once (UNIQUE charge
    /// id; the order's deadline compared with `paid_at`), then the order is driven; a
    /// replay changes nothing; a payment for no payable order is refunded. Returns
    /// false when the payment could not be recorded (the admins were alerted).
    pub(crate) async fn record_payment(&self, new: &NewPayment, paid_at: DateTime<Utc>) -> bool {
        let buyer = new.buyer_id;
        let charge = new.telegram_payment_charge_id.clone();
        // Telegram sends the update once: keep trying to record it rather than lose it.
        let mut outcome = self.inner.store.apply_payment_at(new, paid_at).await;
        for attempt in 1..=5u32 {
            if outcome.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt))).await;
            outcome = self.inner.store.apply_payment_at(new, paid_at).await;
        }
        let recorded = outcome.is_ok();
        match outcome {
            Ok(PaymentOutcome::Paid(order)) => {
                tracing::info!(%order, %charge, "payment recorded");
                let lang = self.language_of(buyer).await;
                let text = escape(&t!("engine.paid", locale = lang.code(), id = order));
                if let Err(error) = self.send_html(buyer, text).await {
                    tracing::warn!(%order, %error, "confirming a payment");
                }
                let engine = self.clone();
                self.spawn_tracked(async move { engine.drive(order).await });
            }
            Ok(PaymentOutcome::Duplicate) => {
                tracing::info!(%charge, "a replayed successful_payment: nothing to do");
            }
            Ok(PaymentOutcome::Unmatched { payment_id }) => {
                tracing::warn!(%charge, payment_id, "a payment for no payable order: refunding");
                match self.inner.store.payment(payment_id).await {
                    Ok(Some(stored)) => self.refund_unmatched(&stored).await,
                    Ok(None) => tracing::error!(payment_id, "a recorded payment vanished"),
                    Err(error) => tracing::warn!(%error, "reading an unmatched payment"),
                }
            }
            Err(error) => {
                tracing::error!(%charge, %error, "cannot record a payment");
                let amount = new.amount.to_string();
                self.alert_admins(|l| {
                    t!(
                        "engine.admin.payment_not_recorded",
                        locale = l.code(),
                        charge = charge,
                        amount = amount,
                        buyer = buyer
                    )
                    .into_owned()
                })
                .await;
            }
        }
        recorded
    }

    /// `refundStarPayment`; a charge refunded before counts as done.
    pub(crate) async fn refund_stars(&self, buyer: i64, charge: &str) -> Result<(), EngineError> {
        let user = u64::try_from(buyer)
            .map(UserId)
            .map_err(|_| EngineError::Invalid(format!("{buyer} is not a Telegram user id")))?;
        match self
            .inner
            .bot
            .refund_star_payment(user, TelegramTransactionId(charge.to_owned()))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.to_string().contains("CHARGE_ALREADY_REFUNDED") => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Gives back a payment that matched no payable order: Stars at once (and the buyer
    /// told by whoever records the refund first); fiat by an admin's hand.
    pub(crate) async fn refund_unmatched(&self, payment: &StoredPayment) {
        let lang = self.language_of(payment.buyer_id).await;
        let amount = amount_text(lang, &payment.amount);
        if payment.amount.currency.is_stars() {
            if let Err(error) = self
                .refund_stars(payment.buyer_id, &payment.telegram_payment_charge_id)
                .await
            {
                tracing::warn!(payment = payment.id, %error, "refunding an unmatched payment; will retry");
                return;
            }
            match self.inner.store.mark_payment_refunded(payment.id).await {
                Ok(true) => {
                    let text = escape(&t!(
                        "engine.payment_refunded",
                        locale = lang.code(),
                        amount = amount
                    ));
                    if let Err(error) = self.send_html(payment.buyer_id, text).await {
                        tracing::warn!(payment = payment.id, %error, "telling a buyer of a refund");
                    }
                }
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "recording a refund"),
            }
            return;
        }
        let charge = payment.telegram_payment_charge_id.clone();
        let shown = payment.amount.to_string();
        self.alert_admins_once(&format!("payment:{}:by_hand", payment.id), None, |l| {
            t!(
                "engine.admin.payment_by_hand",
                locale = l.code(),
                charge = charge,
                amount = shown,
                buyer = payment.buyer_id
            )
            .into_owned()
        })
        .await;
        if let Ok(true) = self
            .inner
            .store
            .claim_notice(&format!("payment:{}:told", payment.id), None)
            .await
        {
            let text = escape(&t!(
                "engine.payment_refund_by_hand",
                locale = lang.code(),
                amount = amount
            ));
            let key = format!("payment:{}:told", payment.id);
            let outcome = match self.send_html(payment.buyer_id, text).await {
                Ok(()) => "sent".to_owned(),
                Err(error) => format!("failed: {error}"),
            };
            if let Err(error) = self.inner.store.finish_notice(&key, &outcome).await {
                tracing::warn!(%error, "recording a notice");
            }
        }
    }

    /// A pre-checkout check without Telegram (for tools and tests).
    pub async fn check_pre_checkout(
        &self,
        buyer: i64,
        payload: &str,
        currency: &str,
        total_amount: u32,
    ) -> Result<OrderId, Refusal> {
        check_pre_checkout(&self.inner.store, buyer, payload, currency, total_amount).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_plain_order_ids() {
        assert_eq!(parse_payload("17"), Some(OrderId(17)));
        for bad in [
            "",
            "+17",
            " 17",
            "17 ",
            "-1",
            "abc",
            "1e3",
            "99999999999999999999",
        ] {
            assert_eq!(parse_payload(bad), None, "{bad:?}");
        }
    }
}
