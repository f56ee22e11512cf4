//! Admin commands end to end: the real handler tree on the fake Bot API, the engine,
//! and the Fragment and Agent sandboxes.

use std::time::Duration;

use chrono::Utc;
use kiosk::bot::admin::BalanceWatch;
use kiosk::domain::{Actor, Money, OrderId, OrderStatus, TelegramUsername};
use kiosk::providers::{ProductRef, ProviderId, Recipient};
use kiosk::sandbox::telegram::{ChatMessage, PaymentOutcome, SimUser};
use kiosk::store::{EngineStep, NewOrder};
use rust_decimal::Decimal;

use crate::helpers::{ADMIN, TestShop, WAIT, expect_text, tap, tap_starting};

/// Sends `text` and returns the first bot message after it.
async fn reply_to(user: &SimUser, text: &str) -> ChatMessage {
    let sent = user.send_text(text);
    user.wait_for(move |m| m.from_bot && m.message_id > sent, WAIT)
        .await
        .unwrap_or_else(|_| panic!("no reply to {text:?}; chat: {:#?}", user.chat()))
}

/// The callback data of the button labelled with `prefix` on `message`.
fn button_data(message: &ChatMessage, prefix: &str) -> String {
    message
        .keyboard_rows()
        .into_iter()
        .flatten()
        .find(|(text, _)| text.starts_with(prefix))
        .map(|(_, data)| data)
        .unwrap_or_else(|| panic!("no button {prefix:?} on {message:#?}"))
}

/// A buyer's whole Stars purchase through the dialogue; returns the order id.
async fn buyer_buys_stars(shop: &TestShop, user: &SimUser) -> OrderId {
    user.send_command("/start");
    tap(user, "⭐ Telegram Stars").await;
    tap_starting(user, "👤 For me").await;
    let ask = expect_text(user, "How many?").await;
    user.tap_button(ask.message_id, "100").unwrap();
    tap_starting(user, "Pay ").await;
    let invoice = user
        .wait_for(|m| m.from_bot && m.invoice.is_some(), WAIT)
        .await
        .unwrap();
    assert!(matches!(
        user.pay(invoice.message_id).await.unwrap(),
        PaymentOutcome::Paid(_)
    ));
    expect_text(user, "is complete").await;
    let order = shop
        .store
        .orders_of_buyer(user.id(), 1, 0)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(order.status, OrderStatus::Completed);
    order.id
}

#[tokio::test]
async fn from_anyone_else_the_commands_answer_like_an_unknown_command() {
    let shop = TestShop::spawn().await;
    let paid = buyer_buys_stars(&shop, &shop.buyer(40, Some("curious_one"), "en")).await;
    let user = shop.buyer(41, Some("nosy_buyer"), "en");
    let unknown = reply_to(&user, "/nonexistent").await;
    assert!(unknown.body().contains("I did not understand that"));
    for command in [
        "/balance".to_owned(),
        "/stars @nosy_buyer 100".to_owned(),
        "/premium @nosy_buyer 3".to_owned(),
        format!("/order {paid}"),
        format!("/refund {paid}"),
        format!("/retry {paid}"),
        "/stats 30d".to_owned(),
        "/broadcast hello everyone".to_owned(),
        "/balance@kiosk_test_bot".to_owned(),
    ] {
        let reply = reply_to(&user, &command).await;
        assert_eq!(reply.body(), unknown.body(), "{command}");
        assert!(reply.inline_keyboard.is_empty(), "{command}");
    }
    // `/orders` is also the buyer's own command: a buyer gets their own (empty) list,
    // not the shop's.
    let own = reply_to(&user, "/orders").await;
    assert_eq!(own.body(), "You have no orders yet.");
    let own = reply_to(&user, "/orders completed").await;
    assert!(!own.body().contains(&format!("#{paid}")), "{}", own.body());
    // A forged admin button reads like any other stale payload.
    let garbage = user.forge_tap(unknown.message_id, "zz:1").unwrap();
    let garbage = user.wait_callback_answer(&garbage, WAIT).await.unwrap();
    let forged = user
        .forge_tap(unknown.message_id, "adm:y:0123456789abcdef")
        .unwrap();
    let forged = user.wait_callback_answer(&forged, WAIT).await.unwrap();
    assert_eq!(forged.text, garbage.text);
    // Nothing happened: no order, no refund, no broadcast to the other buyer.
    assert_eq!(
        shop.store.orders_of_buyer(41, 10, 0).await.unwrap().len(),
        0
    );
    assert!(shop.telegram.refunds().is_empty());
    assert_eq!(
        shop.store.order(paid).await.unwrap().unwrap().status,
        OrderStatus::Completed
    );
    assert!(
        !shop
            .telegram
            .chat(40)
            .iter()
            .any(|m| m.body().contains("hello everyone"))
    );
    assert!(
        !shop
            .telegram
            .chat(ADMIN)
            .iter()
            .any(|m| m.from_bot && m.body().contains("Provider balances"))
    );
}

#[tokio::test]
async fn balance_shows_every_provider_and_names_the_ones_that_did_not_answer() {
    let shop = TestShop::spawn().await;
    let admin = shop.admin();
    let reply = reply_to(&admin, "/balance").await;
    let body = reply.body();
    assert!(body.contains("Provider balances"), "{body}");
    assert!(body.contains("fragment\nwallet: 100.00 TON"), "{body}");
    assert!(body.contains("commission debt: 0.00 TON"), "{body}");
    assert!(
        body.contains("agent\nEUR: 100.00 EUR\nUSD: 500.00 USD"),
        "{body}"
    );
    assert!(!body.contains("below"), "{body}");
    assert!(!body.contains("Did not answer"), "{body}");
    // CryptoCardy is enabled (virtual cards) but has no shop balance to report.
    assert!(!body.contains("no adapter"), "{body}");

    shop.fragment.set_balance(Decimal::new(5, 0));
    shop.agent.server_error_next(10, 500);
    let reply = reply_to(&admin, "/balance").await;
    let body = reply.body();
    assert!(body.contains("wallet: 5.00 TON ⚠️ below 20"), "{body}");
    assert!(
        !body.contains("debt: 0.00 TON ⚠️"),
        "a debt is not a balance: {body}"
    );
    assert!(body.contains("Did not answer:\nagent: "), "{body}");
}

#[tokio::test]
async fn the_balance_watch_alerts_below_the_threshold_once_and_after_an_order() {
    let shop = TestShop::spawn().await;
    let admin = shop.admin();
    admin.send_command("/orders"); // the admin has written to the bot
    expect_text(&admin, "No orders").await;
    let watch = BalanceWatch::new(
        shop.engine_bot(),
        shop.store.clone(),
        std::sync::Arc::new(shop.config()),
        shop.registry(),
    );
    // Above the threshold: no alert. Then one purchase takes it below.
    shop.fragment.set_balance(Decimal::new(21, 0));
    let task = watch
        .clone()
        .spawn(shop.engine(), Duration::from_secs(3600));
    let placed = reply_to(&admin, "/stars @watch_target 100").await;
    admin
        .tap(placed.message_id, &button_data(&placed, "✅ Buy"))
        .unwrap();
    expect_text(&admin, "is complete").await;
    let alert = expect_text(&admin, "balance is low").await;
    assert!(alert.body().contains("fragment"), "{}", alert.body());
    assert!(alert.body().contains("below the threshold of 20"));
    // Still low at the next check: not alerted again.
    watch.check().await;
    task.abort();
    let alerts = admin
        .chat()
        .iter()
        .filter(|m| m.from_bot && m.body().contains("balance is low"))
        .count();
    assert_eq!(alerts, 1);
}

#[tokio::test]
async fn stars_for_a_username_reach_the_provider_once_and_are_announced_to_the_admin() {
    let shop = TestShop::spawn().await;
    let admin = shop.admin();
    let ask = reply_to(&admin, "/stars @star_friend 100").await;
    let body = ask.body();
    assert!(
        body.contains("Buy 100 Telegram Stars for @star_friend through fragment?"),
        "{body}"
    );
    assert!(body.contains("Cost: "), "{body}");
    let confirm = button_data(&ask, "✅ Buy for ");
    assert!(ask.button_with_text("✖️ Cancel").is_some());
    let paid_before = shop.fragment.counts().orders_paid;
    admin.tap(ask.message_id, &confirm).unwrap();
    expect_text(&admin, "is placed with fragment").await;
    let done = expect_text(&admin, "is complete").await;
    assert!(
        done.body().contains("Telegram Stars × 100"),
        "{}",
        done.body()
    );

    // The same confirmation tapped again (a replayed payload) buys nothing more.
    let again = admin.forge_tap(ask.message_id, &confirm).unwrap();
    let answer = admin.wait_callback_answer(&again, WAIT).await.unwrap();
    assert!(
        answer
            .text
            .unwrap_or_default()
            .contains("expired or was used"),
        "the second tap is refused"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(shop.fragment.counts().orders_paid, paid_before + 1);

    let orders = shop.store.orders_of_buyer(ADMIN, 10, 0).await.unwrap();
    assert_eq!(orders.len(), 1);
    let order = &orders[0];
    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(order.admin_id, Some(ADMIN));
    assert_eq!(order.quantity, 100);
    assert_eq!(order.price, order.cost, "no buyer paid: price is the cost");
    assert!(shop.store.payment_of(order.id).await.unwrap().is_none());
    let events = shop.store.order_events(order.id).await.unwrap();
    let paid = events
        .iter()
        .find(|e| e.to == OrderStatus::Paid)
        .expect("a paid event");
    assert_eq!(paid.actor, format!("admin:{ADMIN}"));
    assert_eq!(events[0].actor, format!("admin:{ADMIN}"));
}

#[tokio::test]
async fn premium_for_a_username_is_bought_after_the_confirm() {
    let shop = TestShop::spawn().await;
    let admin = shop.admin();
    let ask = reply_to(&admin, "/premium @gift_friend 6").await;
    assert!(
        ask.body()
            .contains("Telegram Premium for 6 months for @gift_friend"),
        "{}",
        ask.body()
    );
    admin
        .tap(ask.message_id, &button_data(&ask, "✅ Buy for "))
        .unwrap();
    expect_text(&admin, "is complete").await;
    assert_eq!(
        shop.fragment.counts().premium_bought + shop.fragment.counts().orders_paid,
        1
    );
}

#[tokio::test]
async fn stars_with_a_bad_username_or_quantity_are_refused_with_the_reason() {
    let shop = TestShop::spawn().await;
    let admin = shop.admin();
    let cases = [
        ("/stars @ab 100", "That is not a Telegram username"),
        ("/stars star_friend! 100", "That is not a Telegram username"),
        ("/stars @star_friend 10", "from 50 to 10000"),
        ("/stars @star_friend 20000", "from 50 to 10000"),
        ("/stars @star_friend 1.5", "from 50 to 10000"),
        ("/stars @star_friend", "Usage: /stars @username N"),
        ("/premium @star_friend 5", "3, 6 or 12 months"),
        (
            "/stars @ghost_person 100",
            "fragment refused: Telegram has no user",
        ),
        (
            "/premium @premium_owner 3",
            "fragment refused: This account already has",
        ),
    ];
    for (command, reason) in cases {
        let reply = reply_to(&admin, command).await;
        assert!(reply.body().contains(reason), "{command}: {}", reply.body());
        assert!(reply.inline_keyboard.is_empty(), "{command}: no confirm");
    }
    assert!(
        shop.store
            .orders_of_buyer(ADMIN, 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(shop.fragment.counts().orders_paid, 0);
}

#[tokio::test]
async fn refund_twice_refunds_once() {
    let shop = TestShop::spawn().await;
    let buyer = shop.buyer(60, Some("refund_me"), "en");
    let id = buyer_buys_stars(&shop, &buyer).await;
    let admin = shop.admin();
    let ask = reply_to(&admin, &format!("/refund {id}")).await;
    assert!(
        ask.body().contains(&format!("Refund order #{id}")),
        "{}",
        ask.body()
    );
    let confirm = button_data(&ask, "✅ Refund");
    admin.tap(ask.message_id, &confirm).unwrap();
    expect_text(&admin, &format!("Order #{id}: ")).await;
    expect_text(&admin, "refunded to buyer 60").await;
    expect_text(&buyer, "the shop has refunded your").await;
    assert_eq!(shop.telegram.refunds().len(), 1);

    // The command again, and the old button again: nothing more goes back.
    let again = reply_to(&admin, &format!("/refund {id}")).await;
    assert!(
        again.body().contains("is refunded already"),
        "{}",
        again.body()
    );
    assert!(again.inline_keyboard.is_empty());
    let replay = admin.forge_tap(ask.message_id, &confirm).unwrap();
    admin.wait_callback_answer(&replay, WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(shop.telegram.refunds().len(), 1);
    let order = shop.store.order(id).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Refunded);
    let payment = shop.store.payment_of(id).await.unwrap().unwrap();
    assert!(payment.refunded_at.is_some());
    let told = buyer
        .chat()
        .iter()
        .filter(|m| m.body().contains("the shop has refunded"))
        .count();
    assert_eq!(told, 1);
    let events = shop.store.order_events(id).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.to, last.actor.as_str()),
        (OrderStatus::Refunded, "admin:7000001")
    );
}

#[tokio::test]
async fn order_orders_and_stats_show_what_happened() {
    let shop = TestShop::spawn().await;
    let buyer = shop.buyer(61, Some("stats_buyer"), "en");
    let id = buyer_buys_stars(&shop, &buyer).await;
    let admin = shop.admin();

    let order = reply_to(&admin, &format!("/order {id}")).await;
    let body = order.body();
    assert!(
        body.contains(&format!("Order #{id}: Telegram Stars")),
        "{body}"
    );
    assert!(body.contains("Status: completed"), "{body}");
    assert!(body.contains("For: @stats_buyer"), "{body}");
    assert!(body.contains("History:"), "{body}");
    assert!(body.contains("— → awaiting_payment by buyer:61"), "{body}");
    assert!(body.contains("awaiting_payment → paid"), "{body}");
    assert!(body.contains("→ completed by engine"), "{body}");
    let price = shop.store.order(id).await.unwrap().unwrap().price;
    assert!(price.currency.is_stars());
    let stars = price.amount.normalize();
    assert!(
        body.contains(&format!("Payment: {stars} Stars, charge stx")),
        "{body}"
    );

    let missing = reply_to(&admin, "/order 999").await;
    assert!(missing.body().contains("There is no order #999"));
    let usage = reply_to(&admin, "/order abc").await;
    assert!(usage.body().contains("Usage: /order"));

    let list = reply_to(&admin, "/orders completed").await;
    assert!(
        list.body()
            .contains(&format!("#{id} · completed · Telegram Stars")),
        "{}",
        list.body()
    );
    let none = reply_to(&admin, "/orders refunded").await;
    assert!(none.body().contains("No orders."));
    let bad = reply_to(&admin, "/orders shipped").await;
    assert!(bad.body().contains("Unknown status"));

    let stats = reply_to(&admin, "/stats").await;
    let body = stats.body();
    assert!(body.contains("Statistics, today"), "{body}");
    assert!(body.contains("Orders: 1 (completed 1)"), "{body}");
    let usd = (price.amount * Decimal::new(13, 3)).round_dp(2);
    assert!(
        body.contains(&format!("Revenue: {stars} Stars ≈ {usd} USD")),
        "{body}"
    );
    assert!(body.contains("telegram_stars: 1 orders"), "{body}");
    assert!(body.contains("fragment: 1 orders"), "{body}");
    assert!(body.contains("1. Telegram Stars — 1"), "{body}");
    // The test shop offers virtual cards (none issued yet).
    assert!(
        body.contains("Virtual cards issued: 0 (—); live now: 0"),
        "{body}"
    );
    let week = reply_to(&admin, "/stats 7d").await;
    assert!(week.body().contains("last 7 days"));
    let bad = reply_to(&admin, "/stats forever").await;
    assert!(bad.body().contains("Usage: /stats"));
}

#[tokio::test]
async fn retry_sends_a_parked_order_back_to_the_engine() {
    let shop = TestShop::spawn().await;
    let buyer = shop.buyer(62, Some("parked_buyer"), "en");
    buyer.send_command("/start");
    expect_text(&buyer, "what would you like to buy").await;
    // An order parked by an ambiguous answer (made directly in the store).
    let order = shop
        .store
        .create_order(
            &NewOrder {
                chat_id: 62,
                buyer_id: 62,
                product: ProductRef::telegram_stars(ProviderId::Fragment),
                product_title: "Telegram Stars".into(),
                recipient: Recipient::TelegramUsername(
                    TelegramUsername::parse("@parked_buyer").unwrap(),
                ),
                quantity: 50,
                amount: None,
                cost: Money::parse("0.775", "TON").unwrap(),
                price: Money::stars(130),
                payment_deadline: Utc::now() + chrono::Duration::minutes(10),
                admin_id: None,
            },
            5,
            &Actor::Buyer(62),
        )
        .await
        .unwrap();
    shop.store
        .apply_steps(
            &Actor::engine(),
            &[
                EngineStep::new(
                    order.id,
                    OrderStatus::AwaitingPayment,
                    OrderStatus::Paid,
                    "test",
                ),
                EngineStep::new(
                    order.id,
                    OrderStatus::Paid,
                    OrderStatus::NeedsAttention,
                    "ambiguous: test",
                ),
            ],
        )
        .await
        .unwrap();
    let admin = shop.admin();
    admin.send_command("/orders needs_attention");
    // The engine's own alert of the parked order reaches the admin too.
    expect_text(&admin, "is parked and needs an admin").await;
    expect_text(&admin, "Newest orders in needs_attention").await;
    let refused = reply_to(&admin, "/retry 999").await;
    assert!(refused.body().contains("There is no order #999"));
    let ask = reply_to(&admin, &format!("/retry {}", order.id)).await;
    assert!(ask.body().contains("back to fragment"), "{}", ask.body());
    admin
        .tap(ask.message_id, &button_data(&ask, "✅ Retry"))
        .unwrap();
    expect_text(&admin, "is back with the engine").await;
    expect_text(&buyer, "is complete").await;
    assert_eq!(shop.fragment.counts().orders_paid, 1);
    let again = reply_to(&admin, &format!("/retry {}", order.id)).await;
    assert!(
        again.body().contains("only an order in needs_attention"),
        "{}",
        again.body()
    );
    let events = shop.store.order_events(order.id).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.from == Some(OrderStatus::NeedsAttention)
                && e.to == OrderStatus::Submitted
                && e.actor == "admin:7000001")
    );
}

#[tokio::test]
async fn the_admin_reads_the_commands_in_their_language() {
    let shop = TestShop::spawn().await;
    let admin = shop.telegram.user(ADMIN, "Админ", Some("shop_admin"), "ru");
    let reply = reply_to(&admin, "/stars @ab 100").await;
    assert!(reply.body().contains("Telegram"), "{}", reply.body());
    let balance = reply_to(&admin, "/balance").await;
    assert!(
        balance.body().contains("Балансы поставщиков"),
        "{}",
        balance.body()
    );
    let usage = reply_to(&admin, "/stats forever").await;
    assert!(usage.body().starts_with("Формат"), "{}", usage.body());
}

/// Waits (polling) until `cond` holds.
async fn until(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn broadcast_to_a_thousand_buyers_keeps_within_30_messages_a_second() {
    const BUYERS: i64 = 1_001;
    let shop = TestShop::spawn().await;
    let admin = shop.admin();
    let first = 200_000;
    let users: Vec<SimUser> = (first..first + BUYERS)
        .map(|id| shop.buyer(id, None, "en"))
        .collect();
    for user in &users {
        user.send_text("hi");
    }
    until("every buyer answered", Duration::from_secs(60), || {
        shop.telegram.calls_to("sendMessage").len() >= BUYERS as usize
    })
    .await;
    // Two already blocked the bot as far as the shop knows: not sent to. Ten block it
    // now: Telegram refuses them. One the shop knows but Telegram does not: failed.
    for user in &users[..2] {
        shop.store.set_user_blocked(user.id(), true).await.unwrap();
    }
    for user in &users[2..12] {
        user.block_bot();
    }
    shop.store.touch_user(999_999, None, None).await.unwrap();

    let ask = reply_to(&admin, "/broadcast Big sale today!\nEverything −10%").await;
    assert!(
        ask.body().contains("Send this to 1000 users?"),
        "{}",
        ask.body()
    );
    let start_seq = shop.telegram.calls().last().map_or(0, |c| c.seq);
    admin
        .tap(ask.message_id, &button_data(&ask, "✅ Send to 1000"))
        .unwrap();
    let done = admin
        .wait_for(
            |m| m.from_bot && m.body().contains("Broadcast finished"),
            Duration::from_secs(90),
        )
        .await
        .unwrap_or_else(|_| panic!("no final count; admin chat: {:#?}", admin.chat()));
    assert_eq!(
        done.body(),
        "📣 Broadcast finished: 1000 users — sent 989, blocked 10, failed 1."
    );
    assert!(
        done.edits >= 2,
        "the progress message was edited as it went"
    );

    let calls: Vec<_> = shop
        .telegram
        .calls()
        .into_iter()
        .filter(|c| c.seq > start_seq)
        .filter(|c| {
            c.method == "editMessageText"
                || (c.method == "sendMessage"
                    && c.params.get("chat_id").and_then(|v| v.as_i64()) != Some(ADMIN))
        })
        .collect();
    let sends = calls.iter().filter(|c| c.method == "sendMessage").count();
    assert_eq!(sends, 1000, "one message per recipient");
    let times: Vec<u64> = calls.iter().map(|c| c.at_unix_ms).collect();
    for window in times.windows(31) {
        assert!(
            window[30] - window[0] >= 1000,
            "31 calls within {} ms",
            window[30] - window[0]
        );
    }
    // The text went as typed; the blocked are recorded and skipped next time.
    let received = users[20].chat();
    assert!(
        received
            .iter()
            .any(|m| m.from_bot && m.body() == "Big sale today!\nEverything −10%")
    );
    for user in &users[2..12] {
        assert!(shop.store.is_user_blocked(user.id()).await.unwrap());
    }
    assert_eq!(
        shop.store
            .broadcast_recipients(&[ADMIN])
            .await
            .unwrap()
            .len(),
        BUYERS as usize - 12 + 1
    );
}

#[tokio::test]
async fn a_failed_admin_purchase_is_closed_without_a_stars_refund() {
    let shop = TestShop::spawn().await;
    let admin = shop.admin();
    shop.fragment.fail_next("FRAGMENT_ERROR");
    let ask = reply_to(&admin, "/stars @unlucky_friend 50").await;
    admin
        .tap(ask.message_id, &button_data(&ask, "✅ Buy for "))
        .unwrap();
    let told = expect_text(&admin, "could not be completed").await;
    assert!(
        told.body().contains("Nobody was charged"),
        "{}",
        told.body()
    );
    let order = shop
        .store
        .orders_of_buyer(ADMIN, 1, 0)
        .await
        .unwrap()
        .remove(0);
    let order = shop.store.order(order.id).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Refunded);
    assert!(shop.telegram.refunds().is_empty(), "no refundStarPayment");
    assert!(shop.telegram.calls_to("refundStarPayment").is_empty());
    let events = shop.store.order_events(order.id).await.unwrap();
    assert_eq!(
        events.last().map(|e| e.reason.as_str()),
        Some("an admin's order: no buyer payment to return")
    );
}

#[tokio::test]
async fn a_provider_failing_balance_checks_in_a_row_alerts_the_admins_once() {
    let shop = TestShop::spawn().await;
    let admin = shop.admin();
    admin.send_command("/orders");
    expect_text(&admin, "No orders").await;
    let watch = BalanceWatch::new(
        shop.engine_bot(),
        shop.store.clone(),
        std::sync::Arc::new(shop.config()),
        shop.registry(),
    );
    shop.agent.server_error_next(1_000, 500);
    for _ in 0..kiosk::bot::admin::FAILURES_BEFORE_ALERT + 1 {
        let report = watch.check().await;
        assert_eq!(report.silent.len(), 1);
        assert_eq!(report.silent[0].0, ProviderId::Agent);
    }
    let alert = expect_text(&admin, "balance checks in a row").await;
    assert!(
        alert.body().starts_with("⚠️ agent has failed 3"),
        "{}",
        alert.body()
    );
    let alerts = admin
        .chat()
        .iter()
        .filter(|m| m.body().contains("balance checks in a row"))
        .count();
    assert_eq!(alerts, 1);
}
