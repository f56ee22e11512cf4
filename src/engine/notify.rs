//! Every message the engine writes, built from `locales/` (`engine.*`, `reason.*`) in
//! the reader's language. Messages are HTML: everything interpolated is escaped, and
//! codes and keys are set in monospace (`<code>`).

use rust_i18n::t;
use teloxide::prelude::*;
use teloxide::types::ParseMode;
use teloxide::utils::html::escape;

use super::{Engine, EngineError};
use crate::config::Language;
use crate::domain::{Money, OrderId};
use crate::i18n;
use crate::providers::{BuyerReason, Delivery};
use crate::store::Order;

/// `failure_reason` column ↔ [`BuyerReason`] (its snake_case name).
pub fn reason_to_column(reason: BuyerReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "other".to_owned())
}

pub fn reason_from_column(column: Option<&str>) -> BuyerReason {
    column
        .and_then(|name| serde_json::from_value(serde_json::Value::String(name.to_owned())).ok())
        .unwrap_or(BuyerReason::Other)
}

/// An amount as a buyer reads it: `250 Stars`, `199.00 RUB`.
pub fn amount_text(lang: Language, amount: &Money) -> String {
    if amount.currency.is_stars() {
        use rust_decimal::prelude::ToPrimitive;
        if let Some(n) = amount
            .amount
            .to_u64()
            .filter(|_| amount.amount.fract().is_zero())
        {
            return i18n::plural(lang, "units.stars", n);
        }
    }
    amount.to_string()
}

/// The goods: order number, product, codes in monospace, the provider's note and
/// reference.
pub fn delivered_text(lang: Language, order: &Order, delivery: &Delivery) -> String {
    let l = lang.code();
    let mut text = escape(&t!(
        "engine.delivered.title",
        locale = l,
        id = order.id,
        title = order.product_title
    ));
    if !delivery.codes.is_empty() {
        text.push_str("\n\n");
        text.push_str(&escape(&t!("engine.delivered.codes", locale = l)));
        for code in &delivery.codes {
            text.push_str("\n<code>");
            text.push_str(&escape(code));
            text.push_str("</code>");
        }
    }
    if let Some(note) = delivery.note.as_deref().filter(|n| !n.trim().is_empty()) {
        text.push_str("\n\n");
        text.push_str(&escape(note));
    }
    if let Some(reference) = delivery.reference.as_deref().filter(|r| !r.is_empty()) {
        text.push_str("\n\n");
        text.push_str(&escape(&t!("engine.delivered.reference", locale = l)));
        text.push_str(" <code>");
        text.push_str(&escape(reference));
        text.push_str("</code>");
    }
    text
}

/// The order failed and the Stars went back.
pub fn refunded_text(lang: Language, id: OrderId, reason: BuyerReason, amount: &Money) -> String {
    let l = lang.code();
    escape(&format!(
        "{}\n\n{}",
        t!(
            "engine.failed.title",
            locale = l,
            id = id,
            reason = t!(reason.message_key(), locale = l)
        ),
        t!(
            "engine.failed.refunded",
            locale = l,
            amount = amount_text(lang, amount)
        )
    ))
}

/// The order failed and a fiat payment is refunded by hand.
pub fn refund_by_hand_text(
    lang: Language,
    id: OrderId,
    reason: BuyerReason,
    amount: &Money,
) -> String {
    let l = lang.code();
    escape(&format!(
        "{}\n\n{}",
        t!(
            "engine.failed.title",
            locale = l,
            id = id,
            reason = t!(reason.message_key(), locale = l)
        ),
        t!(
            "engine.failed.refund_by_hand",
            locale = l,
            amount = amount_text(lang, amount)
        )
    ))
}

impl Engine {
    /// The language to write to `user_id` in when no update is at hand.
    pub(crate) async fn language_of(&self, user_id: i64) -> Language {
        let default = self.inner.config.shop.default_language;
        self.inner
            .store
            .language_for(user_id, default)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "reading a user's language");
                default
            })
    }

    pub(crate) async fn send_html(&self, chat: i64, html: String) -> Result<(), EngineError> {
        self.inner
            .bot
            .send_message(ChatId(chat), html)
            .parse_mode(ParseMode::Html)
            .await?;
        Ok(())
    }

    /// Sends a notice claimed earlier and records how it ended. A failure to send is
    /// final too (the claim is never re-sent): the admins hear about it instead.
    pub(crate) async fn send_claimed(&self, key: &str, order: OrderId, chat: i64, html: String) {
        let outcome = match self.send_html(chat, html).await {
            Ok(()) => "sent".to_owned(),
            Err(error) => {
                tracing::warn!(%order, %error, "telling the buyer");
                let detail = error.to_string();
                self.alert_admins(|l| {
                    t!(
                        "engine.admin.not_told",
                        locale = l.code(),
                        id = order,
                        detail = detail
                    )
                    .into_owned()
                })
                .await;
                format!("failed: {error}")
            }
        };
        if let Err(error) = self.inner.store.finish_notice(key, &outcome).await {
            tracing::warn!(%order, %error, "recording a sent notice");
        }
    }

    /// Tells every admin, each in their language (plain text, escaped).
    pub(crate) async fn alert_admins<F>(&self, text: F)
    where
        F: Fn(Language) -> String,
    {
        for admin in self.inner.config.admins.clone() {
            let lang = self.language_of(admin).await;
            let html = escape(&text(lang));
            if let Err(error) = self.send_html(admin, html).await {
                tracing::warn!(admin, %error, "alerting an admin");
            }
        }
        if self.inner.config.admins.is_empty() {
            tracing::warn!(
                "an admin alert with no admins configured: {}",
                text(self.inner.config.shop.default_language)
            );
        }
    }

    /// An admin alert owed once per `key` (a stuck order, a parked order).
    pub(crate) async fn alert_admins_once<F>(&self, key: &str, order: Option<OrderId>, text: F)
    where
        F: Fn(Language) -> String,
    {
        match self.inner.store.claim_notice(key, order).await {
            Ok(true) => {
                self.alert_admins(text).await;
                if let Err(error) = self.inner.store.finish_notice(key, "sent").await {
                    tracing::warn!(%error, "recording an admin alert");
                }
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "claiming an admin alert"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_through_the_column() {
        for reason in [
            BuyerReason::UserNotFound,
            BuyerReason::OutOfStock,
            BuyerReason::TemporarilyUnavailable,
            BuyerReason::Other,
        ] {
            assert_eq!(reason_from_column(Some(&reason_to_column(reason))), reason);
        }
        assert_eq!(reason_from_column(Some("garbage")), BuyerReason::Other);
        assert_eq!(reason_from_column(None), BuyerReason::Other);
    }

    #[test]
    fn stars_amounts_are_pluralised() {
        assert_eq!(amount_text(Language::En, &Money::stars(1)), "1 Star");
        assert_eq!(amount_text(Language::Ru, &Money::stars(5)), "5 звёзд");
    }
}
