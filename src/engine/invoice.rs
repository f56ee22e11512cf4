//! The Telegram Stars invoice of an order, and what becomes of it when the order
//! expires unpaid. The payload is the order id and nothing else: pre-checkout and
//! `successful_payment` look everything else up in the order row.

use rust_i18n::t;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, LabeledPrice, MessageId};

use super::{Engine, EngineError};
use crate::bot::KioskBot;
use crate::config::Language;
use crate::domain::OrderStatus;
use crate::secret::Secret;
use crate::store::{Order, Store};

/// Telegram's limits for an invoice's title and description.
const TITLE_MAX: usize = 32;
const DESCRIPTION_MAX: usize = 255;

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

/// Sends the Stars invoice of an order awaiting payment (payload: the order id; XTR;
/// one price) and remembers its message, which is edited when the order expires.
pub async fn send_invoice(
    bot: &KioskBot,
    store: &Store,
    order: &Order,
) -> Result<Message, EngineError> {
    send_invoice_with(bot, store, order, None).await
}

/// [`send_invoice`] for an order priced in Stars or, with the Telegram Payments
/// provider token of `[payments.fiat]`, in that fiat currency.
pub async fn send_invoice_with(
    bot: &KioskBot,
    store: &Store,
    order: &Order,
    fiat_provider_token: Option<&Secret>,
) -> Result<Message, EngineError> {
    if order.status != OrderStatus::AwaitingPayment {
        return Err(EngineError::Invalid(format!(
            "order {} is {}, not awaiting payment",
            order.id, order.status
        )));
    }
    let provider_token = match (order.price.currency.is_stars(), fiat_provider_token) {
        (true, _) => None,
        (false, Some(token)) => Some(token.expose().to_owned()),
        (false, None) => {
            return Err(EngineError::Invalid(format!(
                "order {} is priced in {} and no fiat payment provider is configured",
                order.id, order.price.currency
            )));
        }
    };
    let amount = order
        .price
        .to_minor_units()
        .ok()
        .filter(|a| *a > 0)
        .ok_or_else(|| {
            EngineError::Invalid(format!(
                "order {}: {:?} is not a payable price",
                order.id, order.price
            ))
        })?;
    let lang = store.language_for(order.buyer_id, Language::En).await?;
    let l = lang.code();
    let title = if order.product_title.trim().is_empty() {
        t!("engine.invoice.title", locale = l, id = order.id).into_owned()
    } else {
        clip(order.product_title.trim(), TITLE_MAX)
    };
    let description = clip(
        &t!(
            "engine.invoice.description",
            locale = l,
            id = order.id,
            title = order.product_title
        ),
        DESCRIPTION_MAX,
    );
    let mut invoice = bot.send_invoice(
        ChatId(order.chat_id),
        title.clone(),
        description,
        order.id.to_string(),
        order.price.currency.as_str().to_owned(),
        [LabeledPrice::new(title, amount)],
    );
    if let Some(token) = provider_token {
        invoice = invoice.provider_token(token);
    }
    let message = invoice.await?;
    store.set_invoice_message(order.id, message.id.0).await?;
    Ok(message)
}

impl Engine {
    /// The expired order's invoice says so on its button (an invoice has no text to
    /// edit); paying it is refused at pre-checkout anyway.
    pub(crate) async fn mark_invoice_expired(&self, order: &Order) -> Result<(), EngineError> {
        let Some(message_id) = order.invoice_message_id else {
            return Ok(());
        };
        let lang = self.language_of(order.buyer_id).await;
        let label = t!(
            "engine.invoice.expired",
            locale = lang.code(),
            id = order.id
        );
        self.inner
            .bot
            .edit_message_reply_markup(ChatId(order.chat_id), MessageId(message_id))
            .reply_markup(InlineKeyboardMarkup::new([[InlineKeyboardButton::pay(
                label.into_owned(),
            )]]))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_counts_characters() {
        assert_eq!(clip("short", 32), "short");
        let long = "Звёзды Telegram для @очень_длинного_имени";
        let clipped = clip(long, 32);
        assert_eq!(clipped.chars().count(), 32);
        assert!(clipped.ends_with('…'));
    }
}
