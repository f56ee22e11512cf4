//! The store against a real SQLite file: atomic transitions under a race, payments
//! applied once, the unpaid-order limit, and dialogue state surviving a reopen.

use std::sync::Arc;

use chrono::{Duration, Utc};
use kiosk::domain::{Actor, Money, OrderId, OrderStatus, ProductFamily, TelegramUsername};
use kiosk::providers::{ProductRef, ProviderId, Recipient};
use kiosk::store::{DialogueStorage, NewOrder, NewPayment, PaymentOutcome, Store, StoreError};
use teloxide::dispatching::dialogue::Storage;
use teloxide::types::ChatId;

async fn store_in(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}", dir.path().join("kiosk.db").display());
    Store::open_and_migrate(&url).await.unwrap()
}

fn stars_order(buyer: i64, price: u64) -> NewOrder {
    NewOrder {
        chat_id: buyer,
        buyer_id: buyer,
        product: ProductRef {
            provider: ProviderId::Fragment,
            family: ProductFamily::TelegramStars,
            category: "stars".into(),
            item: "stars".into(),
            variant: None,
        },
        product_title: "100 Telegram Stars".into(),
        recipient: Recipient::TelegramUsername(TelegramUsername::parse("@durov").unwrap()),
        quantity: 100,
        amount: None,
        cost: Money::parse("1.5000", "USD").unwrap(),
        price: Money::stars(price),
        payment_deadline: Utc::now() + Duration::minutes(15),
        admin_id: None,
    }
}

fn payment(buyer: i64, order: Option<OrderId>, charge: &str, stars: u64) -> NewPayment {
    NewPayment {
        buyer_id: buyer,
        telegram_payment_charge_id: charge.into(),
        provider_payment_charge_id: None,
        amount: Money::stars(stars),
        invoice_payload: order.map(|o| o.to_string()).unwrap_or_default(),
        order_id: order,
    }
}

#[tokio::test]
async fn an_order_is_stored_exactly_with_its_creation_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    let order = store
        .create_order(&stars_order(7, 130), 3, &Actor::Buyer(7))
        .await
        .unwrap();
    let read = store.order(order.id).await.unwrap().unwrap();
    assert_eq!(read, order);
    assert_eq!(
        read.cost.amount.to_string(),
        "1.5000",
        "decimal text kept digit for digit"
    );
    assert_eq!(read.status, OrderStatus::AwaitingPayment);
    assert_eq!(read.idempotency_key.len(), 36);
    let events = store.order_events(order.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].from, events[0].to),
        (None, OrderStatus::AwaitingPayment)
    );
    assert_eq!(events[0].actor, "buyer:7");
    // A face value round-trips exactly.
    let mut top_up = stars_order(7, 10);
    top_up.amount = Some(Money::parse("500.00", "RUB").unwrap());
    let stored = store
        .create_order(&top_up, 3, &Actor::Buyer(7))
        .await
        .unwrap();
    assert_eq!(
        store.order(stored.id).await.unwrap().unwrap().amount,
        top_up.amount
    );
    // Each order gets its own idempotency key.
    let second = store
        .create_order(&stars_order(7, 130), 3, &Actor::Buyer(7))
        .await
        .unwrap();
    assert_ne!(second.idempotency_key, order.idempotency_key);
}

#[tokio::test]
async fn a_buyer_sees_only_their_own_orders() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    let mine = store
        .create_order(&stars_order(1, 10), 3, &Actor::Buyer(1))
        .await
        .unwrap();
    let theirs = store
        .create_order(&stars_order(2, 10), 3, &Actor::Buyer(2))
        .await
        .unwrap();
    assert!(store.order_of_buyer(mine.id, 1).await.unwrap().is_some());
    assert!(store.order_of_buyer(theirs.id, 1).await.unwrap().is_none());
    let listed = store.orders_of_buyer(1, 10, 0).await.unwrap();
    assert_eq!(
        listed.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![mine.id]
    );
}

#[tokio::test]
async fn the_unpaid_limit_holds_even_under_concurrent_creates() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_order(&stars_order(5, 10), 3, &Actor::Buyer(5))
                .await
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::TooManyUnpaid { limit: 3 }) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 3);
}

#[tokio::test]
async fn illegal_transitions_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    let order = store
        .create_order(&stars_order(1, 10), 3, &Actor::Buyer(1))
        .await
        .unwrap();
    let err = store
        .transition(
            order.id,
            OrderStatus::AwaitingPayment,
            OrderStatus::Completed,
            &Actor::engine(),
            "skip",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Transition(_)), "{err}");
    // A stale `from` is a conflict, not a silent overwrite.
    let err = store
        .transition(
            order.id,
            OrderStatus::Paid,
            OrderStatus::Submitted,
            &Actor::engine(),
            "stale",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                actual: Some(OrderStatus::AwaitingPayment),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        store.order(order.id).await.unwrap().unwrap().status,
        OrderStatus::AwaitingPayment
    );
    assert_eq!(store.order_events(order.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn two_tasks_racing_one_transition_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    for round in 0..20 {
        let order = store
            .create_order(&stars_order(100 + round, 10), 3, &Actor::Buyer(1))
            .await
            .unwrap();
        store
            .transition(
                order.id,
                OrderStatus::AwaitingPayment,
                OrderStatus::Paid,
                &Actor::engine(),
                "paid",
            )
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let race = |name: &'static str| {
            let store = store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .transition(
                        order.id,
                        OrderStatus::Paid,
                        OrderStatus::Submitted,
                        &Actor::System(name.into()),
                        "submit",
                    )
                    .await
            })
        };
        let (a, b) = (race("poller"), race("webhook"));
        let results = [a.await.unwrap(), b.await.unwrap()];
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        assert!(results.iter().any(|r| matches!(
            r,
            Err(StoreError::Conflict {
                actual: Some(OrderStatus::Submitted),
                ..
            })
        )));
        let events = store.order_events(order.id).await.unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|e| e.to == OrderStatus::Submitted)
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn a_successful_payment_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    let order = store
        .create_order(&stars_order(9, 130), 3, &Actor::Buyer(9))
        .await
        .unwrap();
    let first = store
        .apply_payment(&payment(9, Some(order.id), "charge-1", 130))
        .await
        .unwrap();
    assert_eq!(first, PaymentOutcome::Paid(order.id));
    let replay = store
        .apply_payment(&payment(9, Some(order.id), "charge-1", 130))
        .await
        .unwrap();
    assert_eq!(replay, PaymentOutcome::Duplicate);
    assert_eq!(
        store.order(order.id).await.unwrap().unwrap().status,
        OrderStatus::Paid
    );
    assert_eq!(store.payments_of_order(order.id).await.unwrap().len(), 1);
    let paid_events = store.order_events(order.id).await.unwrap();
    assert_eq!(
        paid_events
            .iter()
            .filter(|e| e.to == OrderStatus::Paid)
            .count(),
        1
    );
}

#[tokio::test]
async fn payments_that_match_no_payable_order_are_recorded_for_refund() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    let order = store
        .create_order(&stars_order(9, 130), 3, &Actor::Buyer(9))
        .await
        .unwrap();
    // Wrong amount.
    let wrong = store
        .apply_payment(&payment(9, Some(order.id), "c-amount", 129))
        .await
        .unwrap();
    assert!(matches!(wrong, PaymentOutcome::Unmatched { .. }));
    // Another buyer's order.
    let other = store
        .apply_payment(&payment(10, Some(order.id), "c-buyer", 130))
        .await
        .unwrap();
    assert!(matches!(other, PaymentOutcome::Unmatched { .. }));
    // No order named.
    let none = store
        .apply_payment(&payment(9, None, "c-none", 130))
        .await
        .unwrap();
    assert!(matches!(none, PaymentOutcome::Unmatched { .. }));
    // Expired meanwhile.
    let mut late = stars_order(11, 50);
    late.payment_deadline = Utc::now() - Duration::seconds(1);
    let late = store
        .create_order(&late, 3, &Actor::Buyer(11))
        .await
        .unwrap();
    let expired = store
        .apply_payment(&payment(11, Some(late.id), "c-late", 50))
        .await
        .unwrap();
    assert!(matches!(expired, PaymentOutcome::Unmatched { .. }));
    assert_eq!(
        store.order(order.id).await.unwrap().unwrap().status,
        OrderStatus::AwaitingPayment
    );
    assert_eq!(
        store.order(late.id).await.unwrap().unwrap().status,
        OrderStatus::AwaitingPayment
    );
}

#[tokio::test]
async fn transitions_write_their_columns_in_the_same_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    let order = store
        .create_order(&stars_order(3, 10), 3, &Actor::Buyer(3))
        .await
        .unwrap();
    store
        .apply_payment(&payment(3, Some(order.id), "c", 10))
        .await
        .unwrap();
    store
        .transition_with(
            order.id,
            OrderStatus::Paid,
            OrderStatus::Submitted,
            &Actor::engine(),
            "submitting",
            kiosk::store::OrderChanges {
                provider_order_id: Some("ord-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let delivered = kiosk::providers::Delivery {
        codes: vec!["AAAA-BBBB".into()],
        note: None,
        reference: Some("v-9".into()),
    };
    store
        .transition_with(
            order.id,
            OrderStatus::Submitted,
            OrderStatus::Completed,
            &Actor::System("poller".into()),
            "delivered",
            kiosk::store::OrderChanges {
                delivered: Some(delivered.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let done = store.order(order.id).await.unwrap().unwrap();
    assert_eq!(done.provider_order_id.as_deref(), Some("ord-1"));
    assert_eq!(done.delivered, Some(delivered));
    let path: Vec<_> = store
        .order_events(order.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.to)
        .collect();
    assert_eq!(
        path,
        vec![
            OrderStatus::AwaitingPayment,
            OrderStatus::Paid,
            OrderStatus::Submitted,
            OrderStatus::Completed
        ]
    );
    let open = store
        .orders_with_status(
            &[
                OrderStatus::Paid,
                OrderStatus::Submitted,
                OrderStatus::Processing,
            ],
            100,
        )
        .await
        .unwrap();
    assert!(open.is_empty());
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum TestState {
    Menu,
    TypingUsername { product: String, page: u32 },
}

#[tokio::test]
async fn dialogue_state_survives_a_reopened_database() {
    let dir = tempfile::tempdir().unwrap();
    let chat = ChatId(4242);
    let state = TestState::TypingUsername {
        product: "stars-100".into(),
        page: 2,
    };
    {
        let store = store_in(&dir).await;
        let storage = DialogueStorage::<TestState>::new(store.clone());
        storage
            .clone()
            .update_dialogue(chat, TestState::Menu)
            .await
            .unwrap();
        storage
            .clone()
            .update_dialogue(chat, state.clone())
            .await
            .unwrap();
        store.close().await;
    }
    let store = store_in(&dir).await;
    let storage = DialogueStorage::<TestState>::new(store.clone());
    assert_eq!(
        storage.clone().get_dialogue(chat).await.unwrap(),
        Some(state)
    );
    assert_eq!(storage.clone().get_dialogue(ChatId(1)).await.unwrap(), None);
    storage.clone().remove_dialogue(chat).await.unwrap();
    assert_eq!(storage.clone().get_dialogue(chat).await.unwrap(), None);
}

#[tokio::test]
async fn users_language_and_blocked_flag() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    store
        .touch_user(5, Some("buyer"), Some("ru-RU"))
        .await
        .unwrap();
    assert_eq!(store.user_language(5).await.unwrap(), None);
    assert_eq!(
        store
            .language_for(5, kiosk::config::Language::En)
            .await
            .unwrap(),
        kiosk::config::Language::Ru
    );
    assert_eq!(
        store
            .language_for(99, kiosk::config::Language::En)
            .await
            .unwrap(),
        kiosk::config::Language::En
    );
    store
        .set_user_language(5, kiosk::config::Language::Ru)
        .await
        .unwrap();
    assert_eq!(
        store.user_language(5).await.unwrap(),
        Some(kiosk::config::Language::Ru)
    );
    store.set_user_blocked(5, true).await.unwrap();
    assert!(store.is_user_blocked(5).await.unwrap());
    store.touch_user(5, Some("buyer"), None).await.unwrap();
    assert!(
        !store.is_user_blocked(5).await.unwrap(),
        "writing to the bot unblocks"
    );
}

#[tokio::test]
async fn a_webhook_event_is_applied_once_per_provider() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    assert!(
        store
            .first_webhook_delivery(ProviderId::FazerCards, "evt-1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .first_webhook_delivery(ProviderId::FazerCards, "evt-1")
            .await
            .unwrap()
    );
    assert!(
        store
            .first_webhook_delivery(ProviderId::CryptoCardy, "evt-1")
            .await
            .unwrap()
    );
    store
        .forget_webhook_delivery(ProviderId::FazerCards, "evt-1")
        .await
        .unwrap();
    assert!(
        store
            .first_webhook_delivery(ProviderId::FazerCards, "evt-1")
            .await
            .unwrap()
    );
}
