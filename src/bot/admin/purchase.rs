//! `/stars @username N` and `/premium @username 3|6|12`: the admin buys for a username
//! through the preferred provider of the family. The recipient is checked with the
//! provider and the cost quoted before the confirm button, which shows the cost.
//!
//! On confirm the order is written like any other (`admin_id` set, buyer and chat =
//! the admin) and moved `awaiting_payment → paid` by `Actor::Admin`: the admin's
//! confirmation stands in for a payment, and there is no payment row. No buyer paid,
//! so the order's price is recorded as the provider cost, in the cost's currency
//! (it is what the shop spends; /stats counts admin orders apart from revenue). From
//! `paid` on, the engine drives it as every order: submitted with the stored
//! idempotency key, polled, and the goods announced in the admin's chat. Should it
//! fail, there is nothing to refund: the engine closes it and tells the admin.

use chrono::Utc;
use rust_i18n::t;

use super::{Action, Ctx, money_text, provider_name, username_text};
use crate::bot::HandlerResult;
use crate::domain::{Actor, Money, OrderStatus, ProductFamily, TelegramUsername};
use crate::providers::{
    OrderRequest, PREMIUM_MONTHS, ProductRef, ProviderId, Recipient, RecipientCheck, STARS_QUANTITY,
};
use crate::store::NewOrder;

/// How long the order row waits between creation and the admin's `paid` (the poller
/// expires unpaid orders past this).
const ROW_DEADLINE: chrono::Duration = chrono::Duration::minutes(10);

/// What an admin asked to buy, with the cost quoted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Purchase {
    pub username: TelegramUsername,
    /// Stars (`quantity`) or Premium (`months`).
    pub months: Option<u8>,
    pub quantity: u32,
    pub provider: ProviderId,
    pub cost: Money,
}

impl Purchase {
    fn family(&self) -> ProductFamily {
        match self.months {
            Some(_) => ProductFamily::TelegramPremium,
            None => ProductFamily::TelegramStars,
        }
    }

    fn product(&self, provider: ProviderId) -> ProductRef {
        match self.months {
            Some(months) => ProductRef::telegram_premium(provider, months),
            None => ProductRef::telegram_stars(provider),
        }
    }

    fn title(&self) -> String {
        match self.months {
            Some(months) => format!("Telegram Premium, {months} months"),
            None => format!("Telegram Stars × {}", self.quantity),
        }
    }

    fn what(&self, ctx: &Ctx) -> String {
        match self.months {
            Some(months) => t!("admin.purchase.premium", locale = ctx.l(), months = months),
            None => t!(
                "admin.purchase.stars",
                locale = ctx.l(),
                count = self.quantity
            ),
        }
        .into_owned()
    }
}

/// `@username N`, or why not.
fn parse_args(args: &str) -> Option<(&str, &str)> {
    let mut words = args.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(user), Some(n), None) => Some((user, n)),
        _ => None,
    }
}

pub(super) async fn stars_command(ctx: &Ctx, args: &str) -> HandlerResult {
    let Some((user, count)) = parse_args(args) else {
        ctx.say(t!("admin.usage.stars", locale = ctx.l())).await?;
        return Ok(());
    };
    let username = match TelegramUsername::parse(user) {
        Ok(name) => name,
        Err(error) => {
            ctx.say(t!(error.message_key(), locale = ctx.l())).await?;
            return Ok(());
        }
    };
    let quantity = count
        .parse::<u32>()
        .ok()
        .filter(|n| STARS_QUANTITY.contains(n));
    let Some(quantity) = quantity else {
        ctx.say(t!(
            "admin.purchase.bad_stars",
            locale = ctx.l(),
            min = STARS_QUANTITY.start(),
            max = STARS_QUANTITY.end()
        ))
        .await?;
        return Ok(());
    };
    quote(ctx, username, None, quantity).await
}

pub(super) async fn premium_command(ctx: &Ctx, args: &str) -> HandlerResult {
    let Some((user, months)) = parse_args(args) else {
        ctx.say(t!("admin.usage.premium", locale = ctx.l())).await?;
        return Ok(());
    };
    let username = match TelegramUsername::parse(user) {
        Ok(name) => name,
        Err(error) => {
            ctx.say(t!(error.message_key(), locale = ctx.l())).await?;
            return Ok(());
        }
    };
    let months = months
        .parse::<u8>()
        .ok()
        .filter(|m| PREMIUM_MONTHS.contains(m));
    let Some(months) = months else {
        ctx.say(t!("admin.purchase.bad_months", locale = ctx.l()))
            .await?;
        return Ok(());
    };
    quote(ctx, username, Some(months), 1).await
}

/// Checks the recipient with the preferred provider, quotes, and asks to confirm.
async fn quote(
    ctx: &Ctx,
    username: TelegramUsername,
    months: Option<u8>,
    quantity: u32,
) -> HandlerResult {
    let family = match months {
        Some(_) => ProductFamily::TelegramPremium,
        None => ProductFamily::TelegramStars,
    };
    let Some(provider) = ctx.shop.providers.for_family(family).into_iter().next() else {
        ctx.say(t!("admin.purchase.no_provider", locale = ctx.l()))
            .await?;
        return Ok(());
    };
    let mut purchase = Purchase {
        username,
        months,
        quantity,
        provider: provider.id(),
        cost: Money::usd(rust_decimal::Decimal::ZERO),
    };
    let product = purchase.product(provider.id());
    let recipient = Recipient::TelegramUsername(purchase.username.clone());
    let refused = |reason: crate::providers::BuyerReason| {
        t!(
            "admin.purchase.refused",
            locale = ctx.l(),
            provider = provider_name(purchase.provider),
            reason = t!(reason.message_key(), locale = ctx.l())
        )
        .into_owned()
    };
    match provider.check_recipient(&product, &recipient).await {
        Ok(RecipientCheck::Refused(reason)) => {
            ctx.say(refused(reason)).await?;
            return Ok(());
        }
        Ok(RecipientCheck::Confirmed { .. } | RecipientCheck::Unchecked) => {}
        Err(error) => {
            ctx.say(provider_error(ctx, purchase.provider, &error))
                .await?;
            return Ok(());
        }
    }
    let request = OrderRequest {
        product,
        recipient,
        quantity,
        amount: None,
    };
    purchase.cost = match provider.quote(&request).await {
        Ok(quote) => quote.cost,
        Err(crate::providers::ProviderError::Rejected { reason, .. }) => {
            ctx.say(refused(reason)).await?;
            return Ok(());
        }
        Err(error) => {
            ctx.say(provider_error(ctx, purchase.provider, &error))
                .await?;
            return Ok(());
        }
    };
    let cost = money_text(ctx.lang, &purchase.cost);
    let usd = ctx
        .shop
        .pricing
        .cost_in_usd(&purchase.cost)
        .map(|usd| format!(" (≈ {} USD)", usd.round_dp(2)))
        .unwrap_or_default();
    let text = t!(
        "admin.purchase.confirm",
        locale = ctx.l(),
        what = purchase.what(ctx),
        username = username_text(&purchase.username),
        provider = provider_name(purchase.provider),
        cost = format!("{cost}{usd}")
    )
    .into_owned();
    let label = t!("admin.purchase.button", locale = ctx.l(), cost = cost).into_owned();
    ctx.ask(text, label, Action::Buy(purchase)).await
}

fn provider_error(
    ctx: &Ctx,
    provider: ProviderId,
    error: &crate::providers::ProviderError,
) -> String {
    t!(
        "admin.purchase.provider_error",
        locale = ctx.l(),
        provider = provider_name(provider),
        detail = error.to_string()
    )
    .into_owned()
}

/// The confirm tap: the order row, `paid` by the admin, then the engine.
pub(super) async fn confirmed(ctx: &Ctx, purchase: Purchase) -> HandlerResult {
    let actor = Actor::Admin(ctx.admin);
    let new = NewOrder {
        chat_id: ctx.chat.0,
        buyer_id: ctx.admin,
        product: purchase.product(purchase.provider),
        product_title: purchase.title(),
        recipient: Recipient::TelegramUsername(purchase.username.clone()),
        quantity: purchase.quantity,
        amount: None,
        cost: purchase.cost.clone(),
        price: purchase.cost.clone(),
        payment_deadline: Utc::now() + ROW_DEADLINE,
        admin_id: Some(ctx.admin),
    };
    debug_assert_eq!(new.product.family, purchase.family());
    let order = ctx.shop.store.create_order(&new, u32::MAX, &actor).await?;
    ctx.shop
        .store
        .transition(
            order.id,
            OrderStatus::AwaitingPayment,
            OrderStatus::Paid,
            &actor,
            &format!("admin {} confirmed; no buyer payment", ctx.admin),
        )
        .await?;
    tracing::info!(order = %order.id, admin = ctx.admin, provider = %purchase.provider, "admin purchase");
    ctx.say(t!(
        "admin.purchase.placed",
        locale = ctx.l(),
        id = order.id,
        provider = provider_name(purchase.provider)
    ))
    .await?;
    let engine = ctx.engine.clone();
    let id = order.id;
    ctx.engine
        .spawn_tracked(async move { engine.drive(id).await });
    Ok(())
}
