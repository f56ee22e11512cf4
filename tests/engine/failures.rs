//! Provider refusals: the next provider, else a refund with the right charge id; an
//! ambiguous answer parks the order; a retryable one is retried with the same key;
//! a payment that matches no payable order is refunded at once.

use std::sync::Arc;

use kiosk::domain::{Money, OrderStatus};
use kiosk::providers::{BuyerReason, ProviderId};
use kiosk::sandbox::telegram::PaymentOutcome;
use rust_decimal::Decimal;

use crate::double::{Double, Place};
use crate::support::*;

async fn pay(
    world: &World,
    buyer: &kiosk::sandbox::telegram::SimUser,
    order: &kiosk::store::Order,
) -> String {
    let invoice = world.invoice(order).await;
    match buyer.pay(invoice).await.expect("pay") {
        PaymentOutcome::Paid(record) => record.payment.telegram_payment_charge_id,
        other => panic!("not paid: {other:?}"),
    }
}

#[tokio::test]
async fn failure_everywhere_refunds_the_charge_and_tells_the_buyer() {
    let world = World::new().await;
    world.fragment.set_balance(Decimal::ZERO);
    let second = Arc::new(Double::new(ProviderId::FazerCards, true));
    second.set_place(Place::Reject(BuyerReason::OutOfStock));
    let running = world
        .run(world.registry(vec![world.fragment_provider(), second.clone()]))
        .await;
    let buyer = world.buyer(60, "en");
    let order = world.stars_order(&buyer, "@gift_for_me", 100, 500).await;
    let charge = pay(&world, &buyer, &order).await;

    let order = world.wait_status(order.id, OrderStatus::Refunded).await;
    let refunds = world.fake.refunds();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].telegram_payment_charge_id, charge);
    assert_eq!(refunds[0].user_id, 60);
    let told = world.wait_message(60, "could not be completed").await;
    assert!(told.body().contains(&format!("#{}", order.id)));
    assert!(told.body().contains("out of stock"), "{}", told.body());
    assert!(told.body().contains("500 Stars"), "{}", told.body());
    world.wait_message(ADMIN, &format!("#{}", order.id)).await;
    let payments = world
        .store
        .payments_of_order(order.id)
        .await
        .expect("payments");
    assert!(payments[0].1.is_some(), "the refund is recorded");
    assert_eq!(second.place_calls(), 1, "the second provider was tried");
    assert_eq!(world.fragment.counts().orders_paid, 0);
    world.settle().await;
    assert_eq!(world.fake.refunds().len(), 1);
    assert_eq!(world.messages_with(60, "could not be completed").len(), 1);
    running.stop().await;
}

#[tokio::test]
async fn a_refusal_reroutes_to_the_next_provider() {
    let world = World::new().await;
    world.fragment.set_balance(Decimal::ZERO);
    let second = Arc::new(Double::new(ProviderId::FazerCards, true));
    second.set_status(Double::codes(&[]));
    let running = world
        .run(world.registry(vec![world.fragment_provider(), second.clone()]))
        .await;
    let buyer = world.buyer(61, "en");
    let order = world.stars_order(&buyer, "@gift_for_me", 100, 500).await;
    pay(&world, &buyer, &order).await;

    let done = world.wait_status(order.id, OrderStatus::Completed).await;
    assert_eq!(done.provider, ProviderId::FazerCards);
    assert_eq!(done.product.provider, ProviderId::FazerCards);
    assert_eq!(second.keys(), vec![order.idempotency_key.clone()]);
    world.wait_message(61, "is complete").await;
    assert!(world.fake.refunds().is_empty());
    let events = world.store.order_events(order.id).await.expect("events");
    assert!(
        events
            .iter()
            .any(|e| e.reason.contains("rerouted to fazercards"))
    );
    world.settle().await;
    assert_eq!(world.messages_with(61, "is complete").len(), 1);
    running.stop().await;
}

#[tokio::test]
async fn no_reroute_to_a_provider_that_costs_more_than_the_buyer_paid() {
    let world = World::new().await;
    world.fragment.set_balance(Decimal::ZERO);
    let second = Arc::new(Double::new(ProviderId::FazerCards, true));
    // 500 Stars at 0.013 USD bring 6.50 USD.
    second.set_cost(Money::parse("6.51", "USD").expect("money"));
    let running = world
        .run(world.registry(vec![world.fragment_provider(), second.clone()]))
        .await;
    let buyer = world.buyer(62, "en");
    let order = world.stars_order(&buyer, "@gift_for_me", 100, 500).await;
    pay(&world, &buyer, &order).await;
    world.wait_status(order.id, OrderStatus::Refunded).await;
    assert_eq!(second.place_calls(), 0);
    assert_eq!(world.fake.refunds().len(), 1);
    running.stop().await;
}

/// Invariant 2: an ambiguous answer is never retried blindly.
#[tokio::test]
async fn an_ambiguous_answer_parks_the_order_and_alerts_the_admins() {
    let world = World::new().await;
    let provider = Arc::new(Double::new(ProviderId::Fragment, false));
    provider.set_place(Place::Ambiguous);
    let running = world.run(world.registry(vec![provider.clone()])).await;
    let buyer = world.buyer(63, "en");
    let order = world.stars_order(&buyer, "@gift_for_me", 100, 500).await;
    pay(&world, &buyer, &order).await;

    let parked = world
        .wait_status(order.id, OrderStatus::NeedsAttention)
        .await;
    assert_eq!(parked.provider_order_id.as_deref(), Some("fragment-1"));
    let alert = world.wait_message(ADMIN, &format!("#{}", order.id)).await;
    assert!(alert.body().contains("fragment-1"), "{}", alert.body());
    world.settle().await;
    assert_eq!(provider.place_calls(), 1, "never placed again");
    assert_eq!(world.messages_with(ADMIN, "needs an admin").len(), 1);
    assert!(world.fake.refunds().is_empty(), "an admin decides");
    assert_eq!(
        world.order(order.id).await.status,
        OrderStatus::NeedsAttention
    );
    running.stop().await;
}

/// Invariant 2: the stored key goes with every retry.
#[tokio::test]
async fn a_retryable_refusal_is_retried_with_the_same_key() {
    let world = World::new().await;
    let provider = Arc::new(Double::new(ProviderId::Fragment, false));
    provider.set_place(Place::RetryableTimes(2));
    provider.set_status(Double::codes(&["AAAA-BBBB"]));
    let running = world.run(world.registry(vec![provider.clone()])).await;
    let buyer = world.buyer(64, "en");
    let order = world.stars_order(&buyer, "@gift_for_me", 100, 500).await;
    pay(&world, &buyer, &order).await;
    world.wait_status(order.id, OrderStatus::Completed).await;
    assert_eq!(provider.keys(), vec![order.idempotency_key.clone(); 3]);
    assert_eq!(provider.order_count(), 1);
    assert_eq!(
        provider
            .reconcile_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let done = world.wait_message(64, "is complete").await;
    assert!(done.body().contains("<code>AAAA-BBBB</code>"));
    running.stop().await;
}

#[tokio::test]
async fn a_payment_for_an_order_that_expired_meanwhile_is_refunded_at_once() {
    use teloxide::prelude::*;
    use teloxide::types::UpdateKind;

    let world = World::new().await;
    let provider = Arc::new(Double::new(ProviderId::Fragment, false));
    let buyer = world.buyer(65, "en");
    let order = world.stars_order(&buyer, "@gift_for_me", 50, 300).await;
    let invoice = world.invoice(&order).await;
    // The pre-checkout is answered (ok) before the order expires; the
    // successful_payment is handled after.
    let paying = {
        let buyer = buyer.clone();
        tokio::spawn(async move { buyer.pay(invoice).await })
    };
    let plain = Bot::new(TOKEN).set_api_url(world.fake.api_url().parse().expect("url"));
    let mut offset = 0;
    let query = loop {
        let updates = plain
            .get_updates()
            .offset(offset)
            .timeout(1)
            .await
            .expect("updates");
        let mut found = None;
        for update in updates {
            offset = update.id.0 as i32 + 1;
            if let UpdateKind::PreCheckoutQuery(q) = update.kind {
                found = Some(q);
            }
        }
        if let Some(q) = found {
            break q;
        }
    };
    plain
        .answer_pre_checkout_query(query.id, true)
        .await
        .expect("answer");
    let PaymentOutcome::Paid(record) = paying.await.expect("join").expect("pay") else {
        panic!("not paid");
    };
    plain
        .get_updates()
        .offset(offset)
        .timeout(0)
        .await
        .expect("confirm");
    sqlx::query("UPDATE orders SET payment_deadline = 0 WHERE id = ?")
        .bind(order.id.0)
        .execute(world.store.pool())
        .await
        .expect("expire");

    let running = world.run(world.registry(vec![provider.clone()])).await;
    world.wait_message(65, "refunded in full").await;
    let refunds = world.fake.refunds();
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        refunds[0].telegram_payment_charge_id,
        record.payment.telegram_payment_charge_id
    );
    assert_eq!(provider.place_calls(), 0);
    world.settle().await;
    assert_eq!(world.fake.refunds().len(), 1);
    assert_eq!(world.messages_with(65, "refunded in full").len(), 1);
    assert_ne!(world.order(order.id).await.status, OrderStatus::Paid);
    running.stop().await;
}
