//! Tampered pre-checkouts are refused, in the buyer's language, and nothing is bought.

use std::sync::Arc;

use kiosk::domain::OrderStatus;
use kiosk::engine::payments::Refusal;
use kiosk::providers::ProviderId;
use kiosk::sandbox::telegram::PaymentOutcome;
use teloxide::prelude::*;
use teloxide::types::LabeledPrice;

use crate::double::Double;
use crate::support::*;

/// An invoice with any payload and amount, as a forger would make it.
async fn forged_invoice(world: &World, chat: i64, payload: &str, stars: u32) -> i32 {
    world
        .bot
        .send_invoice(
            ChatId(chat),
            "Stars",
            "forged",
            payload,
            "XTR",
            [LabeledPrice::new("Stars", stars)],
        )
        .await
        .expect("invoice")
        .id
        .0
}

async fn refused(outcome: PaymentOutcome) -> String {
    match outcome {
        PaymentOutcome::Rejected { error_message } => error_message.unwrap_or_default(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn tampered_pre_checkouts_are_refused() {
    let world = World::new().await;
    let double = Arc::new(Double::new(ProviderId::Fragment, false));
    let running = world.run(world.registry(vec![double.clone()])).await;
    let alice = world.buyer(50, "en");
    let boris = world.buyer(51, "ru");
    let order = world.stars_order(&alice, "@alice_friend", 50, 300).await;
    let boris_order = world.stars_order(&boris, "@boris_friend", 50, 300).await;

    // The amount: one Star less than the order's price.
    let cheap = forged_invoice(&world, 50, &order.id.to_string(), 299).await;
    let text = refused(alice.pay(cheap).await.expect("pay")).await;
    assert!(text.contains("does not match"), "{text}");

    // Garbage in the payload.
    for payload in ["garbage", "-1", "1 OR 1=1", "99999"] {
        let garbage = forged_invoice(&world, 50, payload, 300).await;
        let text = refused(alice.pay(garbage).await.expect("pay")).await;
        assert!(
            text.contains("not for an order of yours"),
            "{payload}: {text}"
        );
    }

    // Another buyer's order, for the right amount.
    let foreign = forged_invoice(&world, 50, &boris_order.id.to_string(), 300).await;
    refused(alice.pay(foreign).await.expect("pay")).await;

    // Expired: past its deadline (whether or not the poller got to it first).
    let mut late = world.stars_new_order(&boris, "@boris_friend", 50, 300);
    late.payment_deadline = chrono::Utc::now() - chrono::Duration::seconds(1);
    let late = world.create(late).await;
    let late_invoice = forged_invoice(&world, 51, &late.id.to_string(), 300).await;
    let text = refused(boris.pay(late_invoice).await.expect("pay")).await;
    assert!(
        text.contains("оплат") || text.contains("Время"),
        "refused in Russian: {text}"
    );

    assert!(world.fake.payments().is_empty(), "no payment went through");
    assert_eq!(double.place_calls(), 0, "nothing was bought");
    // The genuine invoice is still accepted.
    let genuine = world.invoice(&order).await;
    assert!(matches!(
        alice.pay(genuine).await.expect("pay"),
        PaymentOutcome::Paid(_)
    ));
    world.wait_status(order.id, OrderStatus::Processing).await;
    assert_eq!(double.place_calls(), 1);
    running.stop().await;
}

#[tokio::test]
async fn each_refusal_names_its_reason() {
    let world = World::new().await;
    let engine = world.engine(world.registry(vec![]));
    let alice = world.buyer(52, "en");
    let order = world.stars_order(&alice, "@someone", 50, 300).await;
    let id = order.id.to_string();
    assert_eq!(
        engine.check_pre_checkout(52, &id, "XTR", 300).await,
        Ok(order.id)
    );
    assert_eq!(
        engine.check_pre_checkout(52, &id, "XTR", 301).await,
        Err(Refusal::AmountMismatch)
    );
    assert_eq!(
        engine.check_pre_checkout(52, &id, "USD", 300).await,
        Err(Refusal::AmountMismatch)
    );
    assert_eq!(
        engine.check_pre_checkout(53, &id, "XTR", 300).await,
        Err(Refusal::UnknownOrder),
        "another buyer"
    );
    assert_eq!(
        engine.check_pre_checkout(52, "x", "XTR", 300).await,
        Err(Refusal::UnknownOrder)
    );
    let mut late = world.stars_new_order(&alice, "@someone", 50, 300);
    late.payment_deadline = chrono::Utc::now() - chrono::Duration::seconds(1);
    let late = world.create(late).await;
    assert_eq!(
        engine
            .check_pre_checkout(52, &late.id.to_string(), "XTR", 300)
            .await,
        Err(Refusal::Expired)
    );
    world
        .store
        .transition(
            order.id,
            OrderStatus::AwaitingPayment,
            OrderStatus::Expired,
            &kiosk::domain::Actor::engine(),
            "test",
        )
        .await
        .expect("expire");
    assert_eq!(
        engine.check_pre_checkout(52, &id, "XTR", 300).await,
        Err(Refusal::NotPayable)
    );
}
