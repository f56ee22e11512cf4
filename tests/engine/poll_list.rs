//! The poller covers FazerCards' open orders with its order list (a hundred per status
//! call) and asks about single orders only when the list shows them finished.

use std::sync::Arc;
use std::time::Duration;

use kiosk::domain::OrderStatus;
use kiosk::providers::Provider;
use kiosk::providers::fazercards::FazerCardsProvider;
use kiosk::providers::fazercards::client::{ApiKey, FazerClient, RateLimits};
use kiosk::sandbox::fazercards::{self, FakeFazerCards, FakeOptions};

use crate::fixtures::processing_order;
use crate::support::*;

fn provider(fake: &FakeFazerCards) -> Arc<dyn Provider> {
    let client = FazerClient::new(
        fake.base_url(),
        ApiKey::new(fake.api_key()),
        Duration::from_secs(5),
        RateLimits::default(),
    )
    .expect("client");
    Arc::new(FazerCardsProvider::from_client(client))
}

#[tokio::test]
async fn open_orders_are_polled_through_the_order_list() {
    let world = World::new().await;
    let fake = fazercards::start("127.0.0.1:0".parse().expect("addr"), FakeOptions::default())
        .await
        .expect("fazercards fake");
    let buyer = world.buyer(70, "en");
    let references = fake.seed_processing_orders(250);
    let mut orders = Vec::new();
    for reference in &references {
        orders.push(processing_order(&world.store, buyer.id(), reference).await);
    }
    let engine = world.engine(world.registry(vec![provider(&fake)]));

    engine.sweep().await;
    assert_eq!(
        fake.request_count("GET", "/orders"),
        3,
        "250 orders, 3 pages"
    );
    let singles: usize = references
        .iter()
        .map(|r| fake.request_count("GET", &format!("/orders/{r}")))
        .sum();
    assert_eq!(singles, 0, "nothing finished, nothing asked one by one");

    for i in [0, 125, 249] {
        assert!(fake.finish_order(&references[i]));
    }
    engine.sweep().await;
    for i in [0, 125, 249] {
        assert_eq!(
            world.order(orders[i]).await.status,
            OrderStatus::Completed,
            "order {i}"
        );
        assert_eq!(
            fake.request_count("GET", &format!("/orders/{}", references[i])),
            1
        );
    }
    assert_eq!(world.order(orders[1]).await.status, OrderStatus::Processing);
    assert_eq!(fake.request_count("GET", "/orders"), 6);
    assert_eq!(world.sends_with(70, "is complete"), 3);
    let (granted, rejected) = fake.rate_log("order_status");
    assert_eq!(granted.len(), 9);
    assert_eq!(rejected, 0);
    engine.shutdown().await;
}

/// A list that fails is read again by the next sweep: no fall back to one status call
/// per open order, which would spend the whole budget on a hiccup.
#[tokio::test]
async fn a_failing_order_list_does_not_turn_into_single_calls() {
    let world = World::new().await;
    let fake = fazercards::start("127.0.0.1:0".parse().expect("addr"), FakeOptions::default())
        .await
        .expect("fazercards fake");
    let buyer = world.buyer(71, "en");
    let references = fake.seed_processing_orders(120);
    for reference in &references {
        processing_order(&world.store, buyer.id(), reference).await;
    }
    let engine = world.engine(world.registry(vec![provider(&fake)]));
    fake.inject_server_error(Some("/orders"), 4);

    engine.sweep().await;
    assert_eq!(
        fake.request_count("GET", "/orders"),
        4,
        "the client's attempts"
    );
    let singles: usize = references
        .iter()
        .map(|r| fake.request_count("GET", &format!("/orders/{r}")))
        .sum();
    assert_eq!(singles, 0);

    engine.sweep().await;
    assert_eq!(
        fake.request_count("GET", "/orders"),
        6,
        "two pages next time"
    );
    engine.shutdown().await;
}
