//! `/order <id>` (one order and its whole event log), `/orders [status]` (the newest
//! orders), `/refund <id>` and `/retry <id>` (each after a confirm step).
//!
//! A refund is idempotent: the order moves to `refunded` by compare-and-set first (so
//! of two refunds, and of a refund racing the engine, one wins), then the Stars go
//! back through the engine's `refundStarPayment` (a charge refunded before counts as
//! done), and the payment is marked refunded. The buyer is told once, by whoever
//! marked the payment. Should the Telegram call fail, the order stays `refunded` with
//! its payment unrefunded, and `/refund` again retries the call only. A fiat payment is
//! refunded by the admin's hand (the admin is told what and to whom); an admin's own
//! order has no payment and just closes.

use chrono::{DateTime, Utc};
use rust_i18n::t;
use teloxide::prelude::*;

use super::{Action, Ctx, money_text, parse_order_id, provider_name};
use crate::bot::HandlerResult;
use crate::bot::screens::recipient_label;
use crate::domain::{Actor, OrderId, OrderStatus};
use crate::store::{EngineStep, Order, StoreError, StoredPayment};

/// Orders listed by `/orders`.
const LIST_LIMIT: u32 = 20;

fn time_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn status_text(ctx: &Ctx, status: OrderStatus) -> String {
    format!(
        "{} ({})",
        status.as_str(),
        t!(format!("status.{}", status.as_str()), locale = ctx.l())
    )
}

pub(super) async fn order_command(ctx: &Ctx, args: &str) -> HandlerResult {
    let Some(id) = parse_order_id(args) else {
        ctx.say(t!("admin.usage.order", locale = ctx.l())).await?;
        return Ok(());
    };
    let Some(order) = ctx.shop.store.order(id).await? else {
        ctx.say(t!("admin.order.not_found", locale = ctx.l(), id = id))
            .await?;
        return Ok(());
    };
    let events = ctx.shop.store.order_events(id).await?;
    let payment = ctx.shop.store.payment_of(id).await?;
    let l = ctx.l();
    let mut text = t!(
        "admin.order.header",
        locale = l,
        id = order.id,
        title = order.product_title,
        status = status_text(ctx, order.status),
        provider = provider_name(order.provider),
        reference = order.provider_order_id.as_deref().unwrap_or("—"),
        recipient = recipient_label(ctx.lang, &order.recipient),
        quantity = order.quantity,
        cost = money_text(ctx.lang, &order.cost),
        price = money_text(ctx.lang, &order.price),
        buyer = order.buyer_id,
        created = time_text(order.created_at)
    )
    .into_owned();
    if let Some(admin) = order.admin_id {
        text.push('\n');
        text.push_str(&t!("admin.order.by_admin", locale = l, admin = admin));
    }
    if let Some(payment) = &payment {
        text.push('\n');
        text.push_str(&payment_line(ctx, payment));
    }
    if let Some(reason) = &order.failure_reason {
        text.push('\n');
        text.push_str(&t!("admin.order.failure", locale = l, reason = reason));
    }
    text.push_str("\n\n");
    text.push_str(&t!("admin.order.history", locale = l));
    for event in &events {
        text.push('\n');
        text.push_str(&t!(
            "admin.order.event",
            locale = l,
            at = time_text(event.at),
            from = event.from.map_or("—", OrderStatus::as_str),
            to = event.to.as_str(),
            actor = event.actor,
            reason = event.reason
        ));
    }
    ctx.say(text).await?;
    Ok(())
}

fn payment_line(ctx: &Ctx, payment: &StoredPayment) -> String {
    match payment.refunded_at {
        Some(at) => t!(
            "admin.order.payment_refunded",
            locale = ctx.l(),
            amount = money_text(ctx.lang, &payment.amount),
            charge = payment.telegram_payment_charge_id,
            at = time_text(at)
        ),
        None => t!(
            "admin.order.payment",
            locale = ctx.l(),
            amount = money_text(ctx.lang, &payment.amount),
            charge = payment.telegram_payment_charge_id
        ),
    }
    .into_owned()
}

pub(super) async fn orders_command(ctx: &Ctx, args: &str) -> HandlerResult {
    let filter = match args.trim() {
        "" => None,
        name => match OrderStatus::parse(&name.to_ascii_lowercase()) {
            Some(status) => Some(status),
            None => {
                let statuses = OrderStatus::ALL.map(OrderStatus::as_str).join(", ");
                ctx.say(t!(
                    "admin.orders.bad_status",
                    locale = ctx.l(),
                    statuses = statuses
                ))
                .await?;
                return Ok(());
            }
        },
    };
    let orders = ctx.shop.store.recent_orders(filter, LIST_LIMIT).await?;
    if orders.is_empty() {
        ctx.say(t!("admin.orders.none", locale = ctx.l())).await?;
        return Ok(());
    }
    let mut text = match filter {
        Some(status) => t!(
            "admin.orders.title_status",
            locale = ctx.l(),
            status = status.as_str()
        ),
        None => t!("admin.orders.title", locale = ctx.l()),
    }
    .into_owned();
    for order in &orders {
        text.push('\n');
        text.push_str(&t!(
            "admin.orders.line",
            locale = ctx.l(),
            id = order.id,
            status = order.status.as_str(),
            title = order.product_title,
            price = money_text(ctx.lang, &order.price),
            created = order.created_at.format("%m-%d %H:%M").to_string()
        ));
        if order.admin_id.is_some() {
            text.push_str(" · admin");
        }
    }
    ctx.say(text).await?;
    Ok(())
}

/// An order the admin may refund now, or what to tell the admin instead.
async fn refundable(ctx: &Ctx, id: OrderId) -> Result<Result<Order, String>, StoreError> {
    let Some(order) = ctx.shop.store.order(id).await? else {
        return Ok(Err(
            t!("admin.order.not_found", locale = ctx.l(), id = id).into_owned()
        ));
    };
    match order.status {
        OrderStatus::Paid
        | OrderStatus::Completed
        | OrderStatus::NeedsAttention
        | OrderStatus::Failed => Ok(Ok(order)),
        OrderStatus::Refunded => {
            // A refund whose Telegram call failed earlier may be retried.
            let unrefunded = ctx
                .shop
                .store
                .payment_of(id)
                .await?
                .is_some_and(|p| p.refunded_at.is_none() && p.amount.currency.is_stars());
            if unrefunded {
                Ok(Ok(order))
            } else {
                Ok(Err(
                    t!("admin.refund.already", locale = ctx.l(), id = id).into_owned()
                ))
            }
        }
        status => Ok(Err(t!(
            "admin.refund.not_refundable",
            locale = ctx.l(),
            id = id,
            status = status.as_str()
        )
        .into_owned())),
    }
}

pub(super) async fn refund_command(ctx: &Ctx, args: &str) -> HandlerResult {
    let Some(id) = parse_order_id(args) else {
        ctx.say(t!("admin.usage.refund", locale = ctx.l())).await?;
        return Ok(());
    };
    let order = match refundable(ctx, id).await? {
        Ok(order) => order,
        Err(refusal) => {
            ctx.say(refusal).await?;
            return Ok(());
        }
    };
    let payment = ctx.shop.store.payment_of(id).await?;
    let amount = payment
        .as_ref()
        .map(|p| money_text(ctx.lang, &p.amount))
        .unwrap_or_else(|| t!("admin.refund.no_payment_amount", locale = ctx.l()).into_owned());
    let text = t!(
        "admin.refund.confirm",
        locale = ctx.l(),
        id = id,
        title = order.product_title,
        status = order.status.as_str(),
        amount = amount,
        buyer = order.buyer_id
    )
    .into_owned();
    let label = t!("admin.refund.button", locale = ctx.l(), id = id).into_owned();
    ctx.ask(text, label, Action::Refund(id)).await
}

pub(super) async fn refund_confirmed(ctx: &Ctx, id: OrderId) -> HandlerResult {
    // One refund of an order at a time in this process; the store's compare-and-set
    // and Telegram's CHARGE_ALREADY_REFUNDED cover everything else.
    if ctx.state.refunding.insert(id, ()).is_some() {
        ctx.say(t!("admin.refund.in_progress", locale = ctx.l(), id = id))
            .await?;
        return Ok(());
    }
    let outcome = refund(ctx, id).await;
    ctx.state.refunding.remove(&id);
    outcome
}

async fn refund(ctx: &Ctx, id: OrderId) -> HandlerResult {
    let order = match refundable(ctx, id).await? {
        Ok(order) => order,
        Err(refusal) => {
            ctx.say(refusal).await?;
            return Ok(());
        }
    };
    let store = &ctx.shop.store;
    if order.status != OrderStatus::Refunded {
        let step = EngineStep::new(
            id,
            order.status,
            OrderStatus::Refunded,
            format!("refunded by admin {}", ctx.admin),
        );
        match store.apply_steps(&Actor::Admin(ctx.admin), &[step]).await {
            Ok(()) => {}
            Err(StoreError::Conflict { actual, .. }) => {
                let status = actual.map_or("—", OrderStatus::as_str);
                ctx.say(t!(
                    "admin.refund.moved",
                    locale = ctx.l(),
                    id = id,
                    status = status
                ))
                .await?;
                return Ok(());
            }
            Err(other) => return Err(other.into()),
        }
        tracing::info!(order = %id, admin = ctx.admin, "refunded by an admin");
    }
    let Some(payment) = store.payment_of(id).await? else {
        ctx.say(t!("admin.refund.no_payment", locale = ctx.l(), id = id))
            .await?;
        return Ok(());
    };
    let amount = money_text(ctx.lang, &payment.amount);
    if !payment.amount.currency.is_stars() {
        ctx.say(t!(
            "admin.refund.by_hand",
            locale = ctx.l(),
            id = id,
            amount = amount,
            buyer = payment.buyer_id,
            charge = payment.telegram_payment_charge_id
        ))
        .await?;
        return Ok(());
    }
    if payment.refunded_at.is_none() {
        if let Err(error) = ctx
            .engine
            .refund_stars(payment.buyer_id, &payment.telegram_payment_charge_id)
            .await
        {
            tracing::warn!(order = %id, %error, "an admin's Stars refund failed");
            ctx.say(t!(
                "admin.refund.call_failed",
                locale = ctx.l(),
                id = id,
                detail = error.to_string()
            ))
            .await?;
            return Ok(());
        }
        if store.mark_payment_refunded(payment.id).await? {
            tell_buyer(ctx, &order, &payment).await;
        }
    }
    ctx.say(t!(
        "admin.refund.done",
        locale = ctx.l(),
        id = id,
        amount = amount,
        buyer = payment.buyer_id
    ))
    .await?;
    Ok(())
}

async fn tell_buyer(ctx: &Ctx, order: &Order, payment: &StoredPayment) {
    let store = &ctx.shop.store;
    let key = format!("order:{}:admin_refund", order.id);
    match store.claim_notice(&key, Some(order.id)).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(error) => {
            tracing::warn!(order = %order.id, %error, "claiming a refund notice");
            return;
        }
    }
    let lang = store
        .language_for(order.buyer_id, ctx.shop.config.shop.default_language)
        .await
        .unwrap_or(ctx.shop.config.shop.default_language);
    let text = t!(
        "admin.refund.buyer",
        locale = lang.code(),
        id = order.id,
        amount = money_text(lang, &payment.amount)
    )
    .into_owned();
    let outcome = match ctx.bot.send_message(ChatId(order.chat_id), text).await {
        Ok(_) => "sent".to_owned(),
        Err(error) => format!("failed: {error}"),
    };
    if let Err(error) = store.finish_notice(&key, &outcome).await {
        tracing::warn!(order = %order.id, %error, "recording a refund notice");
    }
}

pub(super) async fn retry_command(ctx: &Ctx, args: &str) -> HandlerResult {
    let Some(id) = parse_order_id(args) else {
        ctx.say(t!("admin.usage.retry", locale = ctx.l())).await?;
        return Ok(());
    };
    let Some(order) = ctx.shop.store.order(id).await? else {
        ctx.say(t!("admin.order.not_found", locale = ctx.l(), id = id))
            .await?;
        return Ok(());
    };
    if order.status != OrderStatus::NeedsAttention {
        ctx.say(t!(
            "admin.retry.not_parked",
            locale = ctx.l(),
            id = id,
            status = order.status.as_str()
        ))
        .await?;
        return Ok(());
    }
    let text = t!(
        "admin.retry.confirm",
        locale = ctx.l(),
        id = id,
        title = order.product_title,
        provider = provider_name(order.provider),
        reference = order.provider_order_id.as_deref().unwrap_or("—")
    )
    .into_owned();
    let label = t!("admin.retry.button", locale = ctx.l(), id = id).into_owned();
    ctx.ask(text, label, Action::Retry(id)).await
}

/// `needs_attention → submitted` by the admin; the engine then asks the provider first
/// where a call may have gone through (reconcile), and places the order only where
/// that is safe.
pub(super) async fn retry_confirmed(ctx: &Ctx, id: OrderId) -> HandlerResult {
    let alert_after = chrono::Duration::from_std(ctx.shop.config.limits.fulfilment_alert_after)
        .unwrap_or(chrono::Duration::minutes(30));
    let mut step = EngineStep::new(
        id,
        OrderStatus::NeedsAttention,
        OrderStatus::Submitted,
        format!("retried by admin {}", ctx.admin),
    );
    step.changes.fulfilment_deadline = Some(Utc::now() + alert_after);
    match ctx
        .shop
        .store
        .apply_steps(&Actor::Admin(ctx.admin), &[step])
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict { actual, .. }) => {
            let status = actual.map_or("—", OrderStatus::as_str);
            ctx.say(t!(
                "admin.retry.not_parked",
                locale = ctx.l(),
                id = id,
                status = status
            ))
            .await?;
            return Ok(());
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(order = %id, admin = ctx.admin, "retried by an admin");
    ctx.say(t!("admin.retry.done", locale = ctx.l(), id = id))
        .await?;
    let engine = ctx.engine.clone();
    ctx.engine
        .spawn_tracked(async move { engine.drive(id).await });
    Ok(())
}
