//! Paid orders of each family complete and the goods arrive, once.

use kiosk::domain::OrderStatus;
use kiosk::sandbox::telegram::PaymentOutcome;
use teloxide::types::SuccessfulPayment;

use crate::support::*;

#[tokio::test]
async fn paid_stars_order_completes_through_fragment() {
    let world = World::new().await;
    let running = world
        .run(world.registry(vec![world.fragment_provider()]))
        .await;
    let buyer = world.buyer(42, "en");
    let order = world.stars_order(&buyer, "@buyer_one", 100, 500).await;
    let invoice = world.invoice(&order).await;

    let paid = buyer.pay(invoice).await.expect("pay");
    assert!(matches!(paid, PaymentOutcome::Paid(_)), "{paid:?}");
    let done = world.wait_message(42, "is complete").await;
    assert!(
        done.body().contains(&format!("#{}", order.id)),
        "{}",
        done.body()
    );
    assert!(done.body().contains("100 Telegram Stars"));
    let order = world.wait_status(order.id, OrderStatus::Completed).await;
    assert!(
        order
            .provider_order_id
            .as_deref()
            .is_some_and(|p| p.starts_with("ord:"))
    );
    assert!(order.delivered.is_some());
    assert_eq!(world.fragment.counts().orders_paid, 1);
    world.settle().await;
    assert_eq!(world.messages_with(42, "is complete").len(), 1);
    assert!(world.messages_with(42, "Payment received").len() == 1);
    assert!(world.fake.refunds().is_empty());
    running.stop().await;
}

#[tokio::test]
async fn paid_voucher_order_delivers_codes_in_monospace() {
    let world = World::new().await;
    let running = world
        .run(world.registry(vec![world.agent_provider()]))
        .await;
    let buyer = world.buyer(43, "ru");
    let order = world.voucher_order(&buyer, 2000).await;
    let invoice = world.invoice(&order).await;
    assert!(matches!(
        buyer.pay(invoice).await.expect("pay"),
        PaymentOutcome::Paid(_)
    ));

    let done = world.wait_message(43, "выполнен").await;
    assert_eq!(done.parse_mode.as_deref(), Some("HTML"));
    assert!(
        done.body().contains(&format!("№{}", order.id)),
        "{}",
        done.body()
    );
    let order = world.wait_status(order.id, OrderStatus::Completed).await;
    let delivered = order.delivered.expect("delivery stored");
    assert_eq!(delivered.codes.len(), 2);
    for code in &delivered.codes {
        let escaped = teloxide::utils::html::escape(code);
        assert!(
            done.body().contains(&format!("<code>{escaped}</code>")),
            "{code} not in monospace: {}",
            done.body()
        );
    }
    assert_eq!(world.agent.counts().live_orders, 1);
    world.settle().await;
    assert_eq!(world.messages_with(43, "выполнен").len(), 1);
    running.stop().await;
}

/// Invariant 3: a successful_payment is applied once.
#[tokio::test]
async fn replayed_successful_payment_places_one_provider_order() {
    let world = World::new().await;
    let running = world
        .run(world.registry(vec![world.fragment_provider()]))
        .await;
    let buyer = world.buyer(44, "en");
    let order = world.stars_order(&buyer, "@buyer_two", 50, 300).await;
    let invoice = world.invoice(&order).await;
    let PaymentOutcome::Paid(record) = buyer.pay(invoice).await.expect("pay") else {
        panic!("not paid");
    };
    // Telegram (or a bug upstream) delivers the same charge again, several times at once.
    let payment: SuccessfulPayment = serde_json::from_value(serde_json::json!({
        "currency": record.payment.currency,
        "total_amount": record.payment.total_amount,
        "invoice_payload": record.payment.invoice_payload,
        "telegram_payment_charge_id": record.payment.telegram_payment_charge_id,
        "provider_payment_charge_id": record.payment.provider_payment_charge_id,
    }))
    .expect("payment json");
    let replays: Vec<_> = (0..5)
        .map(|_| {
            let engine = running.engine.clone();
            let payment = payment.clone();
            tokio::spawn(async move { engine.accept_payment(44, &payment).await })
        })
        .collect();
    for replay in replays {
        replay.await.expect("replay");
    }
    world.wait_status(order.id, OrderStatus::Completed).await;
    world.wait_message(44, "is complete").await;
    world.settle().await;
    assert_eq!(world.fragment.counts().orders_paid, 1, "one provider order");
    assert_eq!(
        world
            .store
            .payments_of_order(order.id)
            .await
            .expect("payments")
            .len(),
        1
    );
    assert_eq!(world.messages_with(44, "is complete").len(), 1);
    assert_eq!(world.messages_with(44, "Payment received").len(), 1);
    assert!(world.fake.refunds().is_empty(), "a replay is not refunded");
    running.stop().await;
}

#[tokio::test]
async fn unpaid_order_expires_and_its_invoice_says_so() {
    let world = World::new().await;
    let running = world
        .run(world.registry(vec![world.fragment_provider()]))
        .await;
    let buyer = world.buyer(45, "en");
    let mut new = world.stars_new_order(&buyer, "@buyer_three", 50, 300);
    new.payment_deadline = chrono::Utc::now() + chrono::Duration::milliseconds(300);
    let order = world.create(new).await;
    let invoice = world.invoice(&order).await;

    world.wait_status(order.id, OrderStatus::Expired).await;
    let edited = world
        .fake
        .wait_for(
            45,
            |m| {
                m.message_id == invoice
                    && m.inline_keyboard
                        .iter()
                        .flatten()
                        .any(|b| b.text.contains("Expired"))
            },
            WAIT,
        )
        .await
        .expect("the invoice says it expired");
    assert!(edited.invoice.is_some());
    let refused = buyer.pay(invoice).await.expect("pay attempt");
    assert!(
        matches!(refused, PaymentOutcome::Rejected { .. }),
        "{refused:?}"
    );
    assert!(world.fake.payments().is_empty());
    assert_eq!(world.fragment.counts().orders_paid, 0);
    running.stop().await;
}
