//! A webhook and the poller racing for the same news announce once — within one
//! process (one drive at a time per order) and across two engines on one database
//! (the store's compare-and-set decides).

use std::sync::Arc;
use std::time::Duration;

use kiosk::domain::OrderStatus;
use kiosk::providers::{ProviderEvent, ProviderId};
use kiosk::sandbox::telegram::PaymentOutcome;
use kiosk::store::Store;

use crate::double::Double;
use crate::support::*;

#[tokio::test]
async fn webhook_and_poll_racing_announce_once() {
    let world = World::new().await;
    let provider = Arc::new(Double::new(ProviderId::FazerCards, true));
    let running = world.run(world.registry(vec![provider.clone()])).await;
    let buyer = world.buyer(80, "en");
    let mut new = world.stars_new_order(&buyer, "@racer", 100, 500);
    new.product = kiosk::providers::ProductRef::telegram_stars(ProviderId::FazerCards);
    let order = world.create(new).await;
    let invoice = world.invoice(&order).await;
    assert!(matches!(
        buyer.pay(invoice).await.expect("pay"),
        PaymentOutcome::Paid(_)
    ));
    let processing = world.wait_status(order.id, OrderStatus::Processing).await;
    let poid = processing.provider_order_id.expect("provider order");

    // A second engine on the same database, as a second process would be.
    let other_store = Store::open(&world.db_url()).await.expect("store");
    let other = kiosk::engine::Engine::new(
        other_store,
        world.bot.clone(),
        world.config.clone(),
        world.registry(vec![provider.clone()]),
    );
    *provider.status_delay.lock().expect("lock") = Duration::from_millis(20);
    provider.set_status(Double::codes(&["RACE-1"]));
    let event = ProviderEvent {
        provider: ProviderId::FazerCards,
        provider_order_id: poid,
    };
    let mut racers = Vec::new();
    for i in 0..10 {
        let event = event.clone();
        let sender = running.events.clone();
        let here = running.engine.clone();
        let there = other.clone();
        racers.push(tokio::spawn(async move {
            match i % 3 {
                0 => sender.send(event).await.expect("send"),
                1 => here.handle_event(event).await,
                _ => there.handle_event(event).await,
            }
        }));
    }
    for racer in racers {
        racer.await.expect("racer");
    }
    world.wait_status(order.id, OrderStatus::Completed).await;
    world.settle().await;
    assert_eq!(world.sends_with(80, "is complete"), 1, "announced once");
    let completions = world
        .store
        .order_events(order.id)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.to == OrderStatus::Completed)
        .count();
    assert_eq!(completions, 1);
    assert!(
        provider
            .status_calls
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 2,
        "they did race"
    );
    running.stop().await;
}
