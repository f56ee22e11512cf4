//! DESIGN.md's money invariants not covered elsewhere in this binary (2 and 3: see
//! failures.rs, restart.rs, purchase.rs).

use std::sync::Arc;
use std::time::Duration;

use kiosk::domain::{Money, OrderStatus};
use kiosk::providers::ProviderId;
use kiosk::sandbox::telegram::PaymentOutcome;
use rust_decimal::Decimal;

use crate::double::Double;
use crate::support::*;

/// Invariant 1: no provider order without a recorded successful payment.
#[tokio::test]
async fn no_provider_order_without_a_recorded_payment() {
    let world = World::new().await;
    let provider = Arc::new(Double::new(ProviderId::Fragment, true));
    let running = world.run(world.registry(vec![provider.clone()])).await;
    let buyer = world.buyer(90, "en");
    let order = world.stars_order(&buyer, "@unpaid", 50, 300).await;
    world.invoice(&order).await;
    for _ in 0..3 {
        running.engine.drive(order.id).await;
        running.engine.sweep().await;
    }
    world.settle().await;
    assert_eq!(provider.place_calls(), 0);
    assert_eq!(
        world.order(order.id).await.status,
        OrderStatus::AwaitingPayment
    );
    running.stop().await;
}

/// Invariant 4: an order nobody settles alerts the admins (once) with its number.
#[tokio::test]
async fn a_paid_order_stuck_past_its_deadline_alerts_the_admins_once() {
    let world = World::with_env(&[("KIOSK_FULFILMENT_ALERT_AFTER", "200ms")]).await;
    let provider = Arc::new(Double::new(ProviderId::Fragment, true));
    let running = world.run(world.registry(vec![provider.clone()])).await;
    let buyer = world.buyer(91, "en");
    let order = world.stars_order(&buyer, "@slow", 50, 300).await;
    let invoice = world.invoice(&order).await;
    assert!(matches!(
        buyer.pay(invoice).await.expect("pay"),
        PaymentOutcome::Paid(_)
    ));
    let alert = world.wait_message(ADMIN, "longer than").await;
    assert!(
        alert.body().contains(&format!("#{}", order.id)),
        "{}",
        alert.body()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(world.messages_with(ADMIN, "longer than").len(), 1);
    running.stop().await;
}

/// Invariant 5: amounts compare exactly — a provider costing exactly what the buyer
/// paid is acceptable, one costing a hundredth of a cent more is not.
#[tokio::test]
async fn reroute_cost_comparison_is_exact_decimal() {
    for (cost, rerouted) in [("6.50", true), ("6.5000", true), ("6.5001", false)] {
        let world = World::new().await;
        world.fragment.set_balance(Decimal::ZERO);
        let second = Arc::new(Double::new(ProviderId::FazerCards, true));
        second.set_cost(Money::parse(cost, "USD").expect("money"));
        second.set_status(Double::codes(&[]));
        let running = world
            .run(world.registry(vec![world.fragment_provider(), second.clone()]))
            .await;
        let buyer = world.buyer(92, "en");
        let order = world.stars_order(&buyer, "@exact", 100, 500).await;
        let invoice = world.invoice(&order).await;
        assert!(matches!(
            buyer.pay(invoice).await.expect("pay"),
            PaymentOutcome::Paid(_)
        ));
        let expected = if rerouted {
            OrderStatus::Completed
        } else {
            OrderStatus::Refunded
        };
        world.wait_status(order.id, expected).await;
        assert_eq!(second.place_calls(), usize::from(rerouted), "cost {cost}");
        running.stop().await;
    }
}

/// Invariant 6: the engine's Debug output carries no secret.
#[tokio::test]
async fn the_engine_prints_no_secret() {
    let world = World::new().await;
    let engine = world.engine(world.registry(vec![world.fragment_provider()]));
    let shown = format!("{engine:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(!shown.contains("abandon"), "{shown}");
    assert!(shown.contains("Fragment"), "{shown}");
}
