//! Crashes in the middle: the process dies while a provider call is in flight (its
//! runtime is dropped, as a kill would end it) and a new engine starts on the same
//! database. Exactly one provider order and one announcement.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use kiosk::domain::{Money, OrderId, OrderStatus};
use kiosk::engine::Engine;
use kiosk::providers::{ProductRef, ProviderId};
use kiosk::store::{EngineStep, NewPayment, PaymentOutcome, Store, SubmitMark};
use teloxide::prelude::*;

use crate::double::{Double, Place};
use crate::support::*;

/// A paid Stars order at `provider` (the payment recorded as Telegram would).
async fn paid_order(world: &World, buyer: i64, provider: ProviderId) -> kiosk::store::Order {
    let user = world.buyer(buyer, "en");
    let mut new = world.stars_new_order(&user, "@restart_gift", 100, 500);
    new.product = ProductRef::telegram_stars(provider);
    let order = world.create(new).await;
    let outcome = world
        .store
        .apply_payment(&NewPayment {
            buyer_id: buyer,
            telegram_payment_charge_id: format!("charge-{}", order.id),
            provider_payment_charge_id: None,
            amount: Money::stars(500),
            invoice_payload: order.id.to_string(),
            order_id: Some(order.id),
        })
        .await
        .expect("payment");
    assert_eq!(outcome, PaymentOutcome::Paid(order.id));
    order
}

/// Runs an engine in its own runtime until `provider` has been called once, then
/// drops the runtime mid-call: a crash, as far as the order is concerned.
fn crash_during_place(
    db: String,
    api_url: String,
    config: Arc<kiosk::config::Config>,
    provider: Arc<Double>,
    order: OrderId,
) {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let store = Store::open(&db).await.expect("store");
            let bot = Bot::new(TOKEN)
                .set_api_url(api_url.parse().expect("url"))
                .throttle(test_limits());
            let mut registry =
                kiosk::providers::ProviderRegistry::new(config.providers.preferences.clone());
            registry.register(provider.clone());
            let engine = Engine::new(store, bot, config, registry);
            tokio::spawn(async move { engine.drive(order).await });
            while provider.place_calls() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        drop(runtime);
    })
    .join()
    .expect("crashed thread");
}

async fn restart_after_crash(replay_safe: bool) {
    let world = World::new().await;
    let provider = Arc::new(Double::new(ProviderId::FazerCards, replay_safe));
    provider.set_place(Place::CreateThenHang);
    let order = paid_order(&world, 70, ProviderId::FazerCards).await;
    let (db, url, config, p) = (
        world.db_url(),
        world.fake.api_url(),
        world.config.clone(),
        provider.clone(),
    );
    tokio::task::spawn_blocking(move || crash_during_place(db, url, config, p, order.id))
        .await
        .expect("crash");
    let stranded = world.order(order.id).await;
    assert_eq!(stranded.status, OrderStatus::Submitted);
    assert_eq!(stranded.provider_order_id, None);
    assert!(
        world
            .store
            .submit_started_at(order.id)
            .await
            .expect("read")
            .is_some()
    );
    assert_eq!(
        provider.order_count(),
        1,
        "the provider took the order before the crash"
    );

    provider.set_place(Place::Accept);
    provider.set_status(Double::codes(&["KEY-1"]));
    let running = world.run(world.registry(vec![provider.clone()])).await;
    world.wait_status(order.id, OrderStatus::Completed).await;
    world.wait_message(70, "is complete").await;
    world.settle().await;
    assert_eq!(provider.order_count(), 1, "exactly one provider order");
    assert_eq!(world.messages_with(70, "is complete").len(), 1);
    let keys = provider.keys();
    assert!(keys.iter().all(|k| *k == order.idempotency_key), "{keys:?}");
    if replay_safe {
        assert_eq!(keys.len(), 2, "replayed with the same key");
        assert_eq!(
            provider
                .reconcile_calls
                .load(std::sync::atomic::Ordering::SeqCst),
            0
        );
    } else {
        assert_eq!(keys.len(), 1, "never placed blindly again");
        assert_eq!(
            provider
                .reconcile_calls
                .load(std::sync::atomic::Ordering::SeqCst),
            1
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn crash_mid_call_at_a_replay_safe_provider_replays_with_the_same_key() {
    restart_after_crash(true).await;
}

#[tokio::test]
async fn crash_mid_call_at_a_non_replay_safe_provider_reconciles_first() {
    restart_after_crash(false).await;
}

/// The row said a call was starting but the provider never saw it: reconciliation
/// finds nothing, and the order is placed (once).
#[tokio::test]
async fn crash_before_the_call_reached_the_provider_places_it_once() {
    let world = World::new().await;
    let provider = Arc::new(Double::new(ProviderId::FazerCards, false));
    provider.set_status(Double::codes(&[]));
    let order = paid_order(&world, 71, ProviderId::FazerCards).await;
    let mut submitted =
        EngineStep::new(order.id, OrderStatus::Paid, OrderStatus::Submitted, "test");
    submitted.submit = SubmitMark::Start(Utc::now());
    world
        .store
        .apply_steps(&kiosk::domain::Actor::engine(), &[submitted])
        .await
        .expect("submitted");

    let running = world.run(world.registry(vec![provider.clone()])).await;
    world.wait_status(order.id, OrderStatus::Completed).await;
    world.settle().await;
    assert_eq!(
        provider
            .reconcile_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(provider.order_count(), 1);
    assert_eq!(world.messages_with(71, "is complete").len(), 1);
    running.stop().await;
}

/// Against the Fragment sandbox (not replay-safe): the payment went through before the
/// crash; after the restart the wallet's transactions show it, and nothing is bought
/// twice.
#[tokio::test]
async fn crash_after_fragment_took_the_money_buys_nothing_twice() {
    let world = World::new().await;
    let fragment = world.fragment_provider();
    let order = paid_order(&world, 72, ProviderId::Fragment).await;
    let mut submitted =
        EngineStep::new(order.id, OrderStatus::Paid, OrderStatus::Submitted, "test");
    submitted.submit = SubmitMark::Start(Utc::now());
    world
        .store
        .apply_steps(&kiosk::domain::Actor::engine(), &[submitted])
        .await
        .expect("submitted");
    // The call the crashed process made, answered into the void.
    let request = kiosk::providers::OrderRequest {
        product: order.product.clone(),
        recipient: order.recipient.clone(),
        quantity: order.quantity,
        amount: None,
    };
    fragment
        .place_order(order.id, &order.idempotency_key, &request)
        .await
        .expect("placed before the crash");
    assert_eq!(world.fragment.counts().orders_paid, 1);
    // Fragment's wallet lists a purchase once it is done, and a restart takes longer
    // than the sandbox's purchase: wait for it, as the next start would.
    let deadline = tokio::time::Instant::now() + WAIT;
    while world.fragment.counts().requests_done == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the purchase never finished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let running = world.run(world.registry(vec![fragment])).await;
    world.wait_status(order.id, OrderStatus::Completed).await;
    world.wait_message(72, "is complete").await;
    world.settle().await;
    assert_eq!(world.fragment.counts().orders_paid, 1, "bought once");
    assert_eq!(world.messages_with(72, "is complete").len(), 1);
    running.stop().await;
}

/// A graceful stop lets the transition in flight finish; the next start resumes the
/// rest, and nothing is announced twice.
#[tokio::test]
async fn graceful_stop_finishes_the_transition_in_flight() {
    let world = World::new().await;
    let provider = Arc::new(Double::new(ProviderId::FazerCards, true));
    let order = paid_order(&world, 73, ProviderId::FazerCards).await;
    let running = world.run(world.registry(vec![provider.clone()])).await;
    world.wait_status(order.id, OrderStatus::Processing).await;
    *provider.status_delay.lock().expect("lock") = Duration::from_millis(300);
    provider.set_status(Double::codes(&["LATE-1"]));
    let poid = world.order(order.id).await.provider_order_id.expect("poid");
    running
        .events
        .send(kiosk::providers::ProviderEvent {
            provider: ProviderId::FazerCards,
            provider_order_id: poid,
        })
        .await
        .expect("event");
    while provider
        .status_calls
        .load(std::sync::atomic::Ordering::SeqCst)
        == 0
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    running.stop().await;
    // The poll that was in flight when the stop came has finished its transition.
    assert_eq!(world.order(order.id).await.status, OrderStatus::Completed);
    assert_eq!(world.sends_with(73, "is complete"), 1);

    let again = world.run(world.registry(vec![provider.clone()])).await;
    world.settle().await;
    assert_eq!(world.sends_with(73, "is complete"), 1);
    again.stop().await;
}
